"""The org's directory (users, teams, memberships, queues) kept in the mirror between runs.

Lead handling needs the directory on every run (who is a person for speed-to-lead, owner and
team names for the summary, team members for routing), but it changes rarely: reading its four
tables on every run made an unchanged run cost four requests more than its delta reads. The
directory is therefore kept in the mirror (a ``job_state`` row, :data:`STATE`) and read from
Dataverse again only when

* there is no usable copy, or ``--refresh-metadata`` / ``--full`` asks for a fresh one;
* the copy is older than ``[routing] directory_max_age_hours`` (24 hours by default), which bounds
  how long a user disabled or moved to another team can go unseen;
* a lead or activity names an owner the copy does not know (a user or team created since), or
* routing is enabled and there are leads to route that were not already waiting when the copy was
  read: routing then works with the teams as they are now.

The owners unknown and the leads waiting at the time of a read are kept with the copy, so a lead
that no rule routes, or an owner that is genuinely not in the directory, does not cause a read on
every run. Change tracking would be the finer tool, but Dataverse offers it only on tables an
admin enabled it for, and ``teammembership`` is an intersect table; an age limit needs no admin.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from core.errors import ConfigError, DvsyncError
from jobs.leads.engagement import RoutingConfig
from jobs.service.routing import OrgDirectory, read_directory, resolve_rules

__all__ = ["DEFAULT_MAX_AGE", "STATE", "DirectoryRead", "directory_for_run", "kept_stamp"]

log = logging.getLogger(__name__)

STATE = "org_directory"
"""The ``job_state`` row the directory is kept in (no job has this name)."""
DEFAULT_MAX_AGE = timedelta(hours=24)


@dataclass
class DirectoryRead:
    """The directory a run uses, and where it came from.

    Attributes:
        directory: the org's directory, or None when it could not be read.
        source: ``dataverse`` (read this run) or ``mirror`` (the kept copy).
        reason: why it was read from Dataverse (empty when the kept copy was used).
        problem: why it could not be read (the error), or None.
    """

    directory: OrgDirectory | None
    source: str
    reason: str = ""
    problem: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def _owners(frame: pd.DataFrame | None) -> set[str]:
    if frame is None or frame.empty or "owner_id" not in frame:
        return set()
    # A few hundred owners over ~10^5 activities: lower-case each distinct id once.
    return {str(owner).lower() for owner in frame["owner_id"].dropna().unique()}


def _waiting(leads: pd.DataFrame, routing: RoutingConfig | None, directory: OrgDirectory) -> set[str] | None:
    """The open leads the unassigned owner holds (to be routed), or None when it cannot be resolved."""
    if routing is None or routing.unassigned is None or "owner_id" not in leads or leads.empty:
        return set()
    try:
        (_kind, holder), _rules = resolve_rules(routing, directory)
    except ConfigError:
        return None
    status = leads["status"].astype("string").str.lower() if "status" in leads else None
    open_rows = status.eq("open").fillna(False).to_numpy() if status is not None else slice(None)
    held = leads.loc[open_rows]
    held = held[held["owner_id"].astype("string").str.lower().eq(holder).fillna(False).to_numpy()]
    return set(held["lead_id"].astype(str).str.lower())


def _why_read(
    kept: dict[str, Any] | None,
    *,
    now: datetime,
    max_age: timedelta,
    owners: set[str],
    routing: RoutingConfig | None,
    leads: pd.DataFrame,
) -> str:
    """Why the kept copy cannot be used ("" when it can)."""
    if kept is None:
        return "no copy kept in the mirror"
    directory: OrgDirectory = kept["directory"]
    age = pd.Timestamp(now) - pd.Timestamp(kept["fetched_at"])
    if age > max_age or age < timedelta(0):
        return f"the kept copy is older than {max_age}"
    known = set(directory.users["id"]) | set(directory.teams["id"])
    new_owners = owners - known - set(kept.get("unknown", ()))
    if new_owners:
        return f"{len(new_owners)} owner(s) not in the kept copy"
    waiting = _waiting(leads, routing, directory)
    if waiting is None:
        return "the routing rules do not resolve against the kept copy"
    new_leads = waiting - set(kept.get("waiting", ()))
    if new_leads:
        return f"{len(new_leads)} lead(s) to route"
    return ""


def kept_stamp(mirror: Any) -> str | None:
    """A digest of the directory copy kept in the mirror (None: none kept), read without
    unpickling it: it changes whenever the copy is read from Dataverse again (a new read time at
    least), so a result computed with one copy is told apart from one computed with the next."""
    return mirror.job_state_digest(STATE)


def directory_for_run(
    client: Any,
    mirror: Any,
    *,
    leads: pd.DataFrame,
    activities: pd.DataFrame | None,
    routing: RoutingConfig | None,
    now: datetime,
    max_age: timedelta = DEFAULT_MAX_AGE,
    refresh: bool = False,
    reader: Callable[[Any], OrgDirectory] = read_directory,
) -> DirectoryRead:
    """The directory for this run: the mirror's copy when it still holds, else read and kept.

    Args:
        client: the DataverseClient (used only when the copy cannot be used).
        mirror: the open mirror.
        leads: canonical leads (their owners, and the ones waiting to be routed).
        activities: canonical activities, or None (their owners).
        routing: the routing rules when routing is enabled, else None.
        now: the run's moment.
        max_age: how long a copy is used.
        refresh: read afresh whatever the copy (``--refresh-metadata``, ``--full``).
        reader: how to read it (the tests count the reads).

    Raises nothing for an unreadable org: the result carries the problem instead (the caller
    decides what a missing directory means).
    """
    state = mirror.job_state(STATE)
    kept = state[2] if state is not None and isinstance(state[2], dict) else None
    if kept is not None and not isinstance(kept.get("directory"), OrgDirectory):
        kept = None
    owners = _owners(leads) | _owners(activities)
    why = (
        "a fresh read was asked for"
        if refresh
        else _why_read(kept, now=now, max_age=max_age, owners=owners, routing=routing, leads=leads)
    )
    if not why and kept is not None:
        log.debug("lead handling: the org's users and teams kept since %s are used", kept["fetched_at"])
        return DirectoryRead(kept["directory"], "mirror", details={"directory_read_at": kept["fetched_at"]})
    try:
        directory = reader(client)
    except DvsyncError as exc:
        return DirectoryRead(None, "dataverse", why, f"the users and teams could not be read ({exc})")
    known = set(directory.users["id"]) | set(directory.teams["id"])
    waiting = _waiting(leads, routing, directory) or set()
    fetched_at = pd.Timestamp(now).isoformat()
    mirror.save_job_state(
        STATE,
        "",
        None,
        {
            "directory": directory,
            "fetched_at": fetched_at,
            "unknown": sorted(owners - known),
            "waiting": sorted(waiting),
        },
    )
    log.info("lead handling: the org's users and teams read from Dataverse (%s)", why)
    return DirectoryRead(directory, "dataverse", why, details={"directory_read_at": fetched_at})
