"""Lead routing against the org: who exists, who may receive leads, and the ``ownerid`` writes.

The rules (``mappings/routing.toml``, parsed by :mod:`jobs.leads.engagement.config`) name users,
teams and a queue by name. This module reads the org's directory (``systemusers``, ``teams``,
``teammemberships``, ``queues``: small tables, read whole at the start of each run rather than
mirrored), resolves every name to an id, and refuses what cannot work: a name that does not exist
or is ambiguous, a team with no member who can take leads (enabled, interactive users only: an
application user never receives a lead). ``dvsync check`` reports the same problems with the file
line, without writing anything.

An assignment is a plan item like any result: ``column_name`` is ``ownerid@odata.bind`` and the
values are bind paths (``/teams(<id>)`` before, ``/systemusers(<id>)`` after), so the write-back
PATCHes ``{"ownerid@odata.bind": "/systemusers(<id>)"}`` as Microsoft documents for assigning a
record, the dry run lists it in the plan CSV, and the audit keeps the previous owner.
:func:`restore_owners` is the rollback's hook for these items: it puts the previous owner back
unless the lead's owner changed since the run assigned it.

A rule may instead put leads in a queue (``assign = "queue"``): the lead's owner stays, and
:mod:`jobs.service.routing_queue` plans, writes and undoes the ``AddToQueue``. A lead that already
sits in a queue (other than the ``[unassigned]`` queue) was routed there, by a person or an
earlier run, and is left alone like a lead a person holds; that is also why a second run plans
nothing for it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ConfigError, DvsyncError
from core.tomlfile import closest
from jobs.leads.engagement import Principal, ResolvedRule, RoutingConfig, load_routing, route_leads

__all__ = [
    "OWNER_COLUMN",
    "OWNER_RESULT",
    "QUEUE_COLUMN",
    "QUEUE_RESULT",
    "OrgDirectory",
    "assign",
    "assignment_plan",
    "bind_path",
    "check_routing",
    "read_directory",
    "read_queue_items",
    "resolve_rules",
    "restore_owners",
    "round_robin_cursors",
]

log = logging.getLogger(__name__)

OWNER_COLUMN = "ownerid@odata.bind"
"""The plan's column for an assignment: the lead's owner written through its navigation property."""
OWNER_RESULT = "owner"
QUEUE_COLUMN = "AddToQueue"
"""The plan's column for putting a lead in a queue: values are ``/queues(<id>)`` (old: the queue it
was moved out of, or empty)."""
QUEUE_RESULT = "queue"
LEAD_TYPE_CODE = 4
"""``queueitem.objecttypecode`` of a lead."""
ENTITY_SETS = {"systemuser": "systemusers", "team": "teams"}
_LOOKUP_TABLE = "Microsoft.Dynamics.CRM.lookuplogicalname"


def bind_path(owner_type: str, owner_id: str) -> str:
    """``/systemusers(<id>)`` or ``/teams(<id>)``: what ``ownerid@odata.bind`` takes."""
    return f"/{ENTITY_SETS[str(owner_type).lower()]}({str(owner_id).lower()})"


@dataclass
class OrgDirectory:
    """The org's users, teams, memberships and queues, as read at the start of a run.

    Attributes:
        users: ``id``, ``name``, ``enabled``, ``person`` (an interactive user, not an application
            user).
        teams: ``id``, ``name``.
        members: ``team_id``, ``user_id``.
        queues: ``id``, ``name``, ``owner_id``, ``owner_type``.
        queue_items: the leads in a queue (active items): ``id``, ``queue_id``, ``object_id``,
            ``worker_id``; read only when a rule or ``[unassigned]`` names a queue.
    """

    users: pd.DataFrame
    teams: pd.DataFrame
    members: pd.DataFrame
    queues: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["id", "name", "owner_id", "owner_type"])
    )
    queue_items: pd.DataFrame = field(default_factory=lambda: OrgDirectory.no_queue_items())

    @staticmethod
    def no_queue_items() -> pd.DataFrame:
        """The empty ``queue_items`` frame (when no rule uses a queue)."""
        return pd.DataFrame(columns=["id", "queue_id", "object_id", "worker_id"])

    def persons(self) -> set[str]:
        """Ids of users who are people (interactive), for speed-to-lead."""
        return set(self.users.loc[self.users["person"], "id"])

    def names(self) -> dict[str, str]:
        """Id -> name of every user, team and queue."""
        return {
            **dict(zip(self.queues["id"], self.queues["name"], strict=True)),
            **dict(zip(self.teams["id"], self.teams["name"], strict=True)),
            **dict(zip(self.users["id"], self.users["name"], strict=True)),
        }

    def team_of(self) -> dict[str, str]:
        """User id -> the name of their first team (by name), and team id -> its own name."""
        joined = self.members.merge(self.teams, left_on="team_id", right_on="id").sort_values(
            ["user_id", "name"]
        )
        firsts = joined.drop_duplicates("user_id")
        return {
            **dict(zip(firsts["user_id"], firsts["name"], strict=True)),
            **dict(zip(self.teams["id"], self.teams["name"], strict=True)),
        }

    def eligible_members(self, team_id: str) -> tuple[str, ...]:
        """The team's enabled interactive users, ordered by name then id: who may receive leads."""
        ids = set(self.members.loc[self.members["team_id"] == team_id, "user_id"])
        users = self.users[self.users["id"].isin(ids) & self.users["enabled"] & self.users["person"]]
        return tuple(users.sort_values(["name", "id"])["id"])


def _lower(values: Any) -> pd.Series:
    return pd.Series(values, dtype="string").str.lower()


def read_queue_items(client: Any) -> pd.DataFrame:
    """The leads in a queue now (active queue items): ``id``, ``queue_id``, ``object_id``, ``worker_id``.

    Read on every run whose rules use queues, never kept between runs: routing and the people
    picking work move leads in and out of queues all day, unlike the users and teams.
    """
    items = client.queue_items(object_type_code=LEAD_TYPE_CODE)
    return pd.DataFrame(
        {
            "id": _lower([q.id for q in items]),
            "queue_id": _lower([q.queue_id for q in items]),
            "object_id": _lower([q.object_id for q in items]),
            "worker_id": _lower([q.worker_id for q in items]),
        }
    )


def read_directory(client: Any, *, queue_items: bool = False) -> OrgDirectory:
    """Read users, teams, memberships and queues from the org (a few pages at most).

    Args:
        client: a DataverseClient.
        queue_items: also read which leads sit in a queue (when the routing rules use queues).

    Raises:
        DataverseError: a table cannot be read (e.g. the app user lacks read on teams).
    """
    users = list(
        client.iter_records(
            "systemusers", ["systemuserid", "fullname", "isdisabled", "accessmode", "applicationid"]
        )
    )
    teams = list(client.iter_records("teams", ["teamid", "name"]))
    members = list(client.iter_records("teammemberships", ["teammembershipid", "systemuserid", "teamid"]))
    queues = list(
        client.iter_records("queues", ["queueid", "name", "_ownerid_value"], annotations=[_LOOKUP_TABLE])
    )
    user_frame = pd.DataFrame(
        {
            "id": _lower([u.get("systemuserid") for u in users]),
            "name": pd.Series([u.get("fullname") or "" for u in users], dtype=object),
            "enabled": pd.Series([not u.get("isdisabled") for u in users], dtype=bool),
            # Application users are created with Access Mode 4 (Non-interactive) and an application id.
            "person": pd.Series(
                [u.get("accessmode") != 4 and not u.get("applicationid") for u in users], dtype=bool
            ),
        }
    )
    return OrgDirectory(
        queue_items=read_queue_items(client) if queue_items else OrgDirectory.no_queue_items(),
        users=user_frame,
        teams=pd.DataFrame(
            {
                "id": _lower([t.get("teamid") for t in teams]),
                "name": pd.Series([t.get("name") or "" for t in teams], dtype=object),
            }
        ),
        members=pd.DataFrame(
            {
                "team_id": _lower([m.get("teamid") for m in members]),
                "user_id": _lower([m.get("systemuserid") for m in members]),
            }
        ),
        queues=pd.DataFrame(
            {
                "id": _lower([q.get("queueid") for q in queues]),
                "name": pd.Series([q.get("name") or "" for q in queues], dtype=object),
                "owner_id": _lower([q.get("_ownerid_value") for q in queues]),
                "owner_type": _lower([q.get(f"_ownerid_value@{_LOOKUP_TABLE}") for q in queues]),
            }
        ),
    )


def _find(config: RoutingConfig, principal: Principal, frame: pd.DataFrame, what: str) -> str | None:
    """The id of a user/team/queue named by name (case-insensitive) or id; raises on none or several."""
    wanted = principal.name.strip().lower()
    hits = frame[(frame["id"] == wanted) | (frame["name"].astype(str).str.strip().str.lower() == wanted)]
    if len(hits) == 1:
        return str(hits["id"].iloc[0])
    if hits.empty:
        near = closest(principal.name, [str(n) for n in frame["name"]])
        hint = (
            f"did you mean `{near[0]}`?"
            if near
            else f"no {what} of that name; use its name as Dynamics shows it, or its id"
        )
        raise config.error(principal.key, f"no {what} `{principal.name}` in the org", hint)
    raise config.error(
        principal.key, f"{len(hits)} {what}s are called `{principal.name}`", "use the id of the one you mean"
    )


def resolve_rules(
    config: RoutingConfig, directory: OrgDirectory
) -> tuple[tuple[str, str], list[ResolvedRule]]:
    """Resolve the unassigned owner and every rule's target against the org.

    Returns:
        ``((owner_type, owner_id) of the unassigned holder, resolved rules)``.

    Raises:
        ConfigError: the first problem (``check_routing`` lists them all), naming the file line.
    """
    problems = _resolve(config, directory)
    if problems[0]:
        raise problems[0][0]
    return problems[1], problems[2]  # type: ignore[return-value]


def _resolve(
    config: RoutingConfig, directory: OrgDirectory
) -> tuple[list[ConfigError], tuple[str, str] | None, list[ResolvedRule]]:
    errors: list[ConfigError] = []
    holder: tuple[str, str] | None = None
    if config.unassigned is not None:
        try:
            principal = config.unassigned
            if principal.kind == "user":
                holder = ("systemuser", _find(config, principal, directory.users, "user") or "")
            elif principal.kind == "team":
                holder = ("team", _find(config, principal, directory.teams, "team") or "")
            else:
                queue_id = _find(config, principal, directory.queues, "queue")
                row = directory.queues[directory.queues["id"] == queue_id].iloc[0]
                # A lead is owned by a user or a team, never by a queue: leads "in" the queue are
                # the ones its owner holds.
                if pd.isna(row["owner_type"]) or row["owner_type"] not in ENTITY_SETS:
                    raise config.error(
                        principal.key,
                        f"queue `{principal.name}` has no user or team owner",
                        "name the team that holds new leads instead",
                    )
                holder = (str(row["owner_type"]), str(row["owner_id"]))
        except ConfigError as exc:
            errors.append(exc)
    resolved: list[ResolvedRule] = []
    intake = unassigned_queue(config, directory) if not errors else None
    for rule in config.rules:
        try:
            if rule.assign == "queue":
                queue = _find(config, rule.target, directory.queues, "queue") or ""
                if queue == intake:
                    raise config.error(
                        rule.target.key,
                        f"queue `{rule.target.name}` is the [unassigned] queue the leads already sit in",
                        "name the queue the matching leads should move to",
                    )
                resolved.append(ResolvedRule(rule, "queue", (queue,)))
                continue
            if rule.assign == "user":
                user = _find(config, rule.target, directory.users, "user") or ""
                row = directory.users[directory.users["id"] == user].iloc[0]
                if not (row["enabled"] and row["person"]):
                    raise config.error(
                        rule.target.key,
                        f"user `{rule.target.name}` is disabled or an application user",
                        "route to a person who works leads",
                    )
                resolved.append(ResolvedRule(rule, "systemuser", (user,)))
                continue
            team = _find(config, rule.target, directory.teams, "team") or ""
            if rule.assign == "team":
                resolved.append(ResolvedRule(rule, "team", (team,)))
                continue
            members = directory.eligible_members(team)
            if not members:
                raise config.error(
                    rule.target.key,
                    f"team `{rule.target.name}` has no enabled member who can take leads",
                    'add salespeople to the team, or use assign = "team" to give leads to the team itself',
                )
            resolved.append(ResolvedRule(rule, "systemuser", members, cursor_key=team))
        except ConfigError as exc:
            errors.append(exc)
    return errors, holder, resolved


def unassigned_queue(config: RoutingConfig, directory: OrgDirectory) -> str | None:
    """The id of the ``[unassigned]`` queue, or None when the unassigned owner is a user or team.

    Raises:
        ConfigError: the queue does not exist (or its name is ambiguous).
    """
    if config.unassigned is None or config.unassigned.kind != "queue":
        return None
    return _find(config, config.unassigned, directory.queues, "queue")


def uses_queues(config: RoutingConfig) -> bool:
    """Whether the rules need to know which leads sit in a queue."""
    named = config.unassigned is not None and config.unassigned.kind == "queue"
    return named or any(rule.assign == "queue" for rule in config.rules)


def check_routing(
    directory_dir: Any, client: Any | None, *, enabled: bool, lead_fields: Sequence[str] | None = None
) -> list[ConfigError]:
    """``dvsync check``: routing.toml loads, and (with a client) names only real users, teams and queues.

    Args:
        directory_dir: the mappings directory.
        client: a DataverseClient, or None for the offline part only.
        enabled: ``[routing] enabled``; the org part runs whenever there are rules, so a consultant
            can validate rules before an admin turns routing on.
        lead_fields: the canonical lead fields the mapping fills; routing needs ``owner_id``.
    """
    try:
        config = load_routing(Path(directory_dir) / "routing.toml")
    except ConfigError as exc:
        return [exc]
    if enabled and lead_fields is not None and "owner_id" not in lead_fields:
        return [
            ConfigError(
                "routing is enabled but lead.toml does not map the lead's owner",
                key="routing.enabled",
                hint='add owner_id = { column = "ownerid", type = "lookup" } and '
                'owner_type = { column = "ownerid", type = "lookup_type" } to [fields] in lead.toml',
            )
        ]
    if client is None or (not config.rules and config.unassigned is None):
        return []
    try:
        directory = read_directory(client)
    except DvsyncError as exc:
        return [
            ConfigError(
                f"cannot read users, teams and queues for routing: {exc}",
                key="routing",
                hint="give the application user read access to users, teams and queues",
            )
        ]
    errors, _, _ = _resolve(config, directory)
    if enabled and config.unassigned is None:
        errors.append(
            ConfigError(
                "routing is enabled but mappings/routing.toml has no [unassigned] owner",
                key="routing.enabled",
                hint="add [unassigned] with the team or user that holds new leads",
            )
        )
    return errors


def round_robin_cursors(audit: pd.DataFrame, rules: Sequence[ResolvedRule]) -> dict[str, int]:
    """How many leads each round-robin team has given out in earlier runs (from the audit).

    Counting the written assignments to the team's current members continues the rotation where
    the last run stopped, so one lead per run does not always go to the first member.
    """
    written = audit[(audit["column_name"] == OWNER_COLUMN) & (audit["outcome"] == "written")]
    cursors: dict[str, int] = {}
    for rule in rules:
        if rule.rule.assign != "round_robin" or not rule.cursor_key:
            continue
        paths = {bind_path("systemuser", m) for m in rule.candidates}
        cursors[rule.cursor_key] = int(written["new_value"].isin(paths).sum())
    return cursors


def assign(
    leads: pd.DataFrame,
    config: RoutingConfig,
    directory: OrgDirectory,
    *,
    audit: pd.DataFrame,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Route the unassigned open leads: assignments (with names) and a summary for the report.

    Raises:
        ConfigError: a name the org does not know, or a rule on a missing column.
    """
    holder, rules = resolve_rules(config, directory)
    intake = unassigned_queue(config, directory)
    queued = directory.queue_items
    # A lead in a queue other than the [unassigned] one was routed there already: left alone.
    at_intake = np.array(
        [intake is not None and q == intake for q in queued["queue_id"].astype(object)], dtype=bool
    )
    elsewhere = set(queued.loc[~at_intake, "object_id"].astype(object))
    in_intake = set(queued.loc[at_intake, "object_id"].astype(object))
    status = leads["status"].astype("string").str.lower().eq("open").fillna(False)
    open_counts = (
        leads.loc[status.to_numpy(), "owner_id"].astype("string").str.lower().value_counts().to_dict()
    )
    assignments, _ = route_leads(
        leads,
        rules,
        unassigned=holder,
        open_counts=open_counts,
        cursors=round_robin_cursors(audit, rules),
        config=config,
        exclude=elsewhere,
    )
    # Moved out of the [unassigned] queue when the lead sits in it (AddToQueue's SourceQueue).
    assignments["source_queue_id"] = [
        intake if kind == "queue" and lead in in_intake else None
        for lead, kind in zip(assignments.index, assignments["owner_type"], strict=True)
    ]
    names = directory.names()
    assignments["owner_name"] = assignments["owner_id"].map(names).astype(object)
    counts = assignments.groupby(["rule", "owner_name"]).size() if len(assignments) else pd.Series(dtype=int)
    summary: dict[str, Any] = {
        "unassigned_owner": names.get(holder[1], holder[1]),
        "assigned": len(assignments),
        "by_rule": {
            str(rule): {str(owner): int(n) for (r, owner), n in counts.items() if r == rule}
            for rule in assignments["rule"].unique()
        },
    }
    return assignments, summary


def assignment_plan(assignments: pd.DataFrame) -> pd.DataFrame:
    """Plan items (``jobs.service.plan`` schema) for owner assignments: old and new owner as bind paths.

    Assignments to a queue are planned by :func:`jobs.service.routing_queue.queue_plan`.

    Args:
        assignments: :func:`assign` output (computed from the mirror this run just synced).
    """
    items = assignments[assignments["owner_type"] != "queue"] if len(assignments) else assignments
    if items.empty:
        return pd.DataFrame(
            columns=["table_name", "record_id", "column_name", "result", "old_value", "new_value"]
        )
    return pd.DataFrame(
        {
            "table_name": "lead",
            "record_id": items.index.to_numpy(),
            "column_name": OWNER_COLUMN,
            "result": OWNER_RESULT,
            "old_value": [
                bind_path(t, i)
                for t, i in zip(items["previous_owner_type"], items["previous_owner_id"], strict=True)
            ],
            "new_value": [
                bind_path(t, i) for t, i in zip(items["owner_type"], items["owner_id"], strict=True)
            ],
        }
    )


def restore_owners(
    items: pd.DataFrame, rows: pd.DataFrame, force: bool
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The rollback's hook for ``ownerid@odata.bind`` items: restore the previous owner where unchanged.

    Args:
        items: the run's written audit entries of this column (``record_id``, ``old_value``,
            ``new_value``...).
        rows: the mirror's leads (just synced), indexed by lower-case id, with ``owner_id`` and
            ``owner_type``.
        force: restore even where the owner changed since.

    Returns:
        ``(restore, refused, confirmed)``: ``restore`` has ``now``, ``restore`` (the bind path to
        write) and ``result``; ``refused`` has ``now`` and ``reason``; ``confirmed`` are the leads
        already back with their previous owner (an interrupted rollback sent them): not sent again.
    """
    present = items["record_id"].isin(rows.index).to_numpy()
    gone = items[~present].assign(now=None, reason="the record no longer exists")
    items = items[present]
    if "owner_id" not in rows.columns:
        none = items.iloc[0:0].assign(now=None, restore=None, result=OWNER_RESULT)
        unmapped = items.assign(now=None, reason="the lead's owner is not mapped (owner_id in lead.toml)")
        return none, pd.concat([gone, unmapped]), none
    held = rows.loc[items["record_id"]]
    types = held["owner_type"] if "owner_type" in held else pd.Series("systemuser", index=held.index)
    now = [
        bind_path(t, i) if isinstance(i, str) and str(t).lower() in ENTITY_SETS else None
        for t, i in zip(types.astype(object), held["owner_id"].astype(object), strict=True)
    ]
    frame = items.assign(now=now, restore=list(items["old_value"]), result=OWNER_RESULT)
    changed = np.array([n != w for n, w in zip(now, items["new_value"], strict=True)], dtype=bool)
    at_old = np.array([n == o for n, o in zip(now, items["old_value"], strict=True)], dtype=bool)
    confirmed = frame[at_old]
    if force:
        return frame[~at_old], gone, confirmed
    refused = frame[changed & ~at_old].assign(
        reason="the lead's owner changed in Dynamics since the run assigned it"
    )
    return frame[~changed & ~at_old], pd.concat([gone, refused], ignore_index=True), confirmed
