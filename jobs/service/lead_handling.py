"""The lead-handling step of a run: speed-to-lead, stages, re-engagement, and (when enabled) routing.

It runs with the scoring job (stages use the score and the scoring rules' fit and engagement
points) and produces, for the open leads, the results ``first_response_minutes``,
``response_sla_met``, ``temperature``, ``lifecycle_stage``, ``reengage`` and ``reengage_reason``
(written through ``outputs.toml`` like every other result), the assignments of unassigned leads
when ``[routing] enabled`` (written as ``ownerid``, see :mod:`jobs.service.routing`), and the
speed-to-lead summary (median, 90th percentile, breaches per owner, team and source) that the run
report and ``dvsync status --json`` show.

The analytics are :mod:`jobs.leads.engagement`; this module gets the org's directory (who is a
person, who is in which team; kept in the mirror by :mod:`jobs.service.directory_cache`) and
glues the pieces to the pipeline.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from connector.readback import bind_id
from core.errors import ConfigError, DvsyncError
from jobs.leads.engagement import (
    dormant_leads,
    first_responses,
    lead_stages,
    load_routing,
    load_stage_settings,
    response_horizon,
    response_summary,
)
from jobs.leads.scoring import load_rules, score_with_rules
from jobs.moments import without_sentinels
from jobs.service.compute import JobOutcome, scoring_moment
from jobs.service.directory_cache import DirectoryRead, directory_for_run
from jobs.service.mirror import Mirror, MirrorError
from jobs.service.routing import (
    OWNER_COLUMN,
    OWNER_RESULT,
    QUEUE_COLUMN,
    QUEUE_RESULT,
    OrgDirectory,
    assign,
    assignment_plan,
    read_queue_items,
    uses_queues,
)
from jobs.service.routing_queue import queue_plan

__all__ = [
    "JOB",
    "YIELDING_COLUMNS",
    "LeadHandlingOutcome",
    "add_assignments",
    "latest_speed_to_lead",
    "replanned_results",
    "reuse_horizon",
    "routing_landed",
    "run_lead_handling",
    "yielded_message",
]

log = logging.getLogger(__name__)

JOB = "lead_handling"

YIELDING_COLUMNS = frozenset({OWNER_COLUMN})
"""Columns the write-back leaves alone when Dynamics changed them after the sync (optimistic
concurrency: the write carries the synced etag; on 412 the lead is read back, and the assignment is
sent again only while the unassigned owner still holds the lead). A person who took the lead keeps
it: not a failure, not retried; the run reports it and stays ``ok``."""


def yielded_message(column: str) -> str:
    """What the run report and the audit say about a yielding column left alone."""
    if column == OWNER_COLUMN:
        return (
            "not assigned: the lead's owner changed in Dynamics after the sync (someone took it); "
            "left with them"
        )
    return "not written: changed in Dynamics after the sync; left as it is"


@dataclass
class LeadHandlingOutcome(JobOutcome):
    """A :class:`JobOutcome` that also carries the routing assignments (planned as owner writes)."""

    assignments: pd.DataFrame = field(default_factory=pd.DataFrame)
    routed: bool = False  # routing ran on this run's owners (earlier unwritten owner items are stale)


def _open(leads: pd.DataFrame) -> pd.DataFrame:
    return leads[leads["status"].astype("string").str.lower().eq("open").fillna(False).to_numpy()]


def _labels(leads: pd.DataFrame, directory: OrgDirectory | None) -> pd.DataFrame:
    ids = leads["lead_id"].astype(str).str.lower()
    owner = (
        leads["owner_id"].astype("string").str.lower()
        if "owner_id" in leads
        else pd.Series(pd.NA, index=leads.index)
    )
    names = directory.names() if directory is not None else {}
    teams = directory.team_of() if directory is not None else {}
    source = leads["source"] if "source" in leads else pd.Series(pd.NA, index=leads.index)
    return pd.DataFrame(
        {
            "owner": owner.map(lambda o: names.get(o, o), na_action="ignore").to_numpy(),
            "team": owner.map(lambda o: teams.get(o), na_action="ignore").to_numpy(),
            "source": source.to_numpy(),
        },
        index=pd.Index(ids.to_numpy(), name="lead_id"),
    )


def run_lead_handling(
    leads: pd.DataFrame,
    activities: pd.DataFrame | None,
    *,
    mappings_dir: Path,
    now: datetime,
    scores: pd.DataFrame | None,
    directory: OrgDirectory | None,
    routing_enabled: bool,
    audit: pd.DataFrame | None = None,
    directory_problem: str | None = None,
) -> LeadHandlingOutcome:
    """Compute speed-to-lead, stages and re-engagement for the open leads, and route when enabled.

    Args:
        leads: canonical leads, all of them (the summary covers closed ones too).
        activities: canonical activities, or None.
        mappings_dir: where ``scoring.toml`` and ``routing.toml`` are.
        now: the run's moment.
        scores: the scoring job's results (index lead id; ``score``, ``grade``, ``sales_ready``),
            or None: the rules' own score is used.
        directory: the org's users and teams, or None when they could not be read.
        routing_enabled: ``[routing] enabled``.
        audit: the lead audit so far (round-robin continues from it).
        directory_problem: why the directory could not be read, for the message.

    Raises:
        ConfigError: a settings file to fix (the run stops with exit code 2).
    """
    outcome = LeadHandlingOutcome(JOB)
    if leads.empty or "status" not in leads or "created_on" not in leads:
        outcome.status, outcome.message = "skipped", "no leads with status and created_on in the mirror"
        return outcome
    routing = load_routing(mappings_dir / "routing.toml")
    stage_settings, dormant_settings = load_stage_settings(mappings_dir / "scoring.toml")
    rules = load_rules(mappings_dir / "scoring.toml", columns=leads.columns)
    open_leads = _open(leads)
    if open_leads.empty:
        outcome.status, outcome.message = "skipped", "no open leads"
        return outcome
    notes: list[str] = []

    persons = directory.persons() if directory is not None else None
    if activities is not None and "owner_id" not in activities:
        persons = None
        notes.append("activities carry no owner_id, so every outgoing activity counts as a response")
    responses = first_responses(leads, activities, routing.response, now=now, persons=persons)
    created = pd.to_datetime(leads["created_on"], utc=True).set_axis(leads["lead_id"].astype(str).str.lower())
    # Everything but the waiting leads' SLA flags holds for the whole UTC day (see reuse_horizon):
    # the report window starts at a midnight, the points are those of the score's moment.
    day_end = scoring_moment(now)
    summary = response_summary(
        responses,
        _labels(leads, directory),
        since=day_end - timedelta(days=routing.response.report_days + 1),
        created=created,
    )
    summary["sla_minutes"] = routing.response.sla_minutes
    summary["report_days"] = routing.response.report_days

    points = score_with_rules(open_leads, rules, as_of=day_end, activities=activities)
    points = points.set_axis(points.index.astype(str).str.lower())
    if scores is not None and "score" in scores:
        held = scores.set_axis(scores.index.astype(str).str.lower())
        points["score"] = held["score"].reindex(points.index).fillna(points["score"])
        for column in ("grade", "sales_ready"):
            if column in held:
                points[column] = held[column].reindex(points.index).fillna(points[column])
    stages = lead_stages(points, stage_settings, sales_ready=rules.sales_ready)
    dormant = dormant_leads(open_leads, points, activities, dormant_settings, now=now)

    ids = points.index
    results = pd.DataFrame(
        {
            "first_response_minutes": responses["first_response_minutes"].reindex(ids),
            "response_sla_met": responses["response_sla_met"].reindex(ids),
            "temperature": stages["temperature"],
            "lifecycle_stage": stages["lifecycle_stage"],
            "reengage": dormant["reengage"].reindex(ids).astype(bool),
            "reengage_reason": dormant["reengage_reason"].reindex(ids),
        },
        index=ids,
    )
    outcome.results["lead"] = results
    overall = summary["overall"]
    outcome.details = {
        "valid_until": response_horizon(responses, routing.response, now=now, until=day_end).isoformat(),
        "speed_to_lead": summary,
        "stages": {
            "temperature": {str(k): int(v) for k, v in stages["temperature"].value_counts().items()},
            "lifecycle": {str(k): int(v) for k, v in stages["lifecycle_stage"].value_counts().items()},
        },
        "reengage": int(results["reengage"].sum()),
    }
    median = overall["median_minutes"]
    notes.insert(
        0,
        f"{len(results)} open leads; first response median "
        + (f"{median:g}" if median is not None else "n/a")
        + f" business minutes, {overall['breaches']} SLA breach(es) in the last "
        + f"{routing.response.report_days} days; {outcome.details['reengage']} to re-engage",
    )

    if routing_enabled:
        if directory is None:
            outcome.status = "partial"
            notes.append(f"routing skipped: {directory_problem or 'the users and teams could not be read'}")
        elif routing.unassigned is None or not routing.rules:
            outcome.status = "partial"
            notes.append("routing is enabled but mappings/routing.toml has no [unassigned] owner or no rules")
        elif "owner_id" not in leads:
            outcome.status = "partial"
            notes.append(
                "routing skipped: map the owner in lead.toml: "
                'owner_id = { column = "ownerid", type = "lookup" }'
            )
        else:
            frame = leads.copy()
            frame["lead_id"] = frame["lead_id"].astype(str).str.lower()
            frame = frame.set_index("lead_id", drop=False)
            for column in ("score", "grade", "sales_ready"):
                if column in points:
                    frame[column] = points[column].reindex(frame.index)
            empty = pd.DataFrame(columns=["column_name", "outcome", "new_value"])
            assignments, routed = assign(
                frame, routing, directory, audit=audit if audit is not None else empty
            )
            outcome.assignments = assignments
            outcome.routed = True
            outcome.details["routing"] = routed
            notes.append(f"{routed['assigned']} unassigned lead(s) routed")
    outcome.message = "; ".join(notes)
    return outcome


def compute_for_run(
    client: Any,
    mirror: Mirror,
    settings: Any,
    outcomes: list[JobOutcome],
    now: datetime,
    *,
    refresh_directory: bool = False,
    inputs: tuple[pd.DataFrame, pd.DataFrame | None] | None = None,
) -> JobOutcome:
    """The pipeline's call: read what the step needs from the mirror and the org, then run it.

    The org's users and teams come from the mirror's copy while it holds
    (:mod:`jobs.service.directory_cache`); ``refresh_directory`` reads them afresh. ``inputs``:
    the leads and activities as the pipeline already read them (else read from the mirror).
    A configuration mistake raises (the run stops with exit code 2, like the other jobs); anything
    else becomes a failed outcome with the reason.
    """
    try:
        if inputs is not None:
            leads, activities = inputs
        else:
            leads = mirror.read_frame("lead") if "lead" in mirror.layouts() else pd.DataFrame()
            try:
                activities = mirror.read_entity("activity")
            except MirrorError:
                activities = None
        # Dates as the other jobs read them: sentinels (0001-01-01, 9999-12-31) are "no date", in ns.
        leads = without_sentinels(leads)[0]
        activities = without_sentinels(activities)[0] if activities is not None else None
        routing = (
            load_routing(Path(settings.mappings.dir) / "routing.toml") if settings.routing.enabled else None
        )
        found = directory_for_run(
            client,
            mirror,
            leads=leads,
            activities=activities,
            routing=routing,
            now=now,
            max_age=timedelta(hours=settings.routing.directory_max_age_hours),
            refresh=refresh_directory,
        )
        directory, problem = found.directory, found.problem
        # Which leads sit in a queue matters only when the rules route to (or from) a queue; unlike
        # the users and teams, that changes all day, so it is read on each such run, never kept.
        if directory is not None and routing is not None and uses_queues(routing):
            try:
                directory = replace(directory, queue_items=read_queue_items(client))
            except DvsyncError as exc:
                directory, problem = None, f"the leads in queues could not be read ({exc})"
        if problem:
            log.warning("lead handling: %s", problem)
        scoring = next((o for o in outcomes if o.job == "scoring" and "lead" in o.results), None)
        audit = mirror.audit(table="lead") if settings.routing.enabled else None
        outcome = run_lead_handling(
            leads,
            activities,
            mappings_dir=Path(settings.mappings.dir),
            now=now,
            scores=scoring.results["lead"] if scoring is not None else None,
            directory=directory,
            routing_enabled=settings.routing.enabled,
            audit=audit,
            directory_problem=problem,
        )
        outcome.details["directory"] = found.source + (f" ({found.reason})" if found.reason else "")
        outcome.details["computed_at"] = pd.Timestamp(now).isoformat()
        outcome.details["valid_until"] = reuse_horizon(
            outcome, found, now, max_age=timedelta(hours=settings.routing.directory_max_age_hours)
        ).isoformat()
        return outcome
    except ConfigError:
        raise
    except DvsyncError as exc:
        log.error("lead handling failed: %s", exc)
        return JobOutcome(JOB, status="failed", message=str(exc))


def reuse_horizon(
    outcome: JobOutcome, found: DirectoryRead, now: datetime, *, max_age: timedelta
) -> pd.Timestamp:
    """Until when ``outcome`` is what a run would compute again from the same inputs.

    The end of the UTC day (stages use the day's score moment, dormancy counts calendar days, the
    report window starts at a midnight), or earlier: the first moment a waiting lead could pass
    its response target (:func:`jobs.leads.engagement.response_horizon`, set by
    :func:`run_lead_handling`), or the moment the org's directory kept in the mirror grows too old
    and would be read again. Without a directory (it could not be read) a next run tries again:
    the outcome holds for no later moment.
    """
    horizon = pd.Timestamp(outcome.details.get("valid_until") or scoring_moment(now))
    horizon = min(horizon, scoring_moment(now))
    if found.directory is None:
        return pd.Timestamp(now)
    read_at = found.details.get("directory_read_at")
    if read_at:
        horizon = min(horizon, pd.Timestamp(read_at) + max_age)
    return horizon


def add_assignments(
    plan: pd.DataFrame, outcomes: list[JobOutcome], current: dict[str, pd.DataFrame]
) -> pd.DataFrame:
    """Append the routing assignments to the plan (when the lead table is being written this run)."""
    routed = next(
        (o for o in outcomes if isinstance(o, LeadHandlingOutcome) and not o.assignments.empty), None
    )
    if routed is None or "lead" not in current:
        return plan
    assignments = routed.assignments[routed.assignments.index.isin(current["lead"].index)]
    items = pd.concat([assignment_plan(assignments), queue_plan(assignments)], ignore_index=True)
    return pd.concat([plan, items], ignore_index=True) if len(items) else plan


def replanned_results(outcomes: Sequence[JobOutcome]) -> set[tuple[str, str]]:
    """``(table, result)`` of the owner and queue writes when routing re-planned them this run.

    The pipeline retires earlier unwritten items of results a run recomputed; routing's owner and
    queue writes are not output columns, so they are named here.
    """
    routed = any(isinstance(o, LeadHandlingOutcome) and o.routed for o in outcomes)
    return {("lead", OWNER_RESULT), ("lead", QUEUE_RESULT)} if routed else set()


def routing_landed(
    client: Any, mirror: Mirror, table: str, column: str, items: pd.DataFrame
) -> np.ndarray | None:
    """Which of a killed run's owner or queue writes Dynamics now holds (None: not routing's).

    The pipeline settles a killed run's writes by comparing the synced values; an owner is compared
    through the mirror's ``owner_id`` (just synced), a queue item by reading the leads' queue items.
    What landed is then audited as written, so ``dvsync rollback`` can undo it.
    """
    if table != "lead" or column not in (OWNER_COLUMN, QUEUE_COLUMN):
        return None
    ids = [str(r).lower() for r in items["record_id"]]
    none = np.zeros(len(items), dtype=bool)
    if column == OWNER_COLUMN:
        layout = mirror.layout("lead")
        if "owner_id" not in layout.columns:
            return none
        frame = mirror.read_frame("lead", ["owner_id"])
        owners = dict(
            zip(
                frame[layout.id_column].astype(str).str.lower(),
                [str(o).lower() if isinstance(o, str) else None for o in frame["owner_id"].astype(object)],
                strict=True,
            )
        )
        sent = [bind_id(v) for v in items["new_value"]]
        return np.array(
            [s is not None and owners.get(i) == s for i, s in zip(ids, sent, strict=True)], dtype=bool
        )
    try:
        held = {(q.object_id, q.queue_id) for q in client.queue_items(object_ids=ids)}
    except DvsyncError as exc:
        log.warning("cannot read the leads' queue items to settle an interrupted run: %s", exc)
        return none
    wanted = [bind_id(v) for v in items["new_value"]]
    return np.array([(i, w) in held for i, w in zip(ids, wanted, strict=True)], dtype=bool)


def latest_speed_to_lead(runs: pd.DataFrame) -> dict[str, Any] | None:
    """The speed-to-lead summary of the most recent run that computed or reused one (for
    ``dvsync status``), with the run that computed it and until when it holds (``valid_until``:
    runs before then reuse it while the leads and activities do not change)."""
    for row in runs.itertuples():
        stats = row.stats or {}
        details = (stats.get("jobs") or {}).get(JOB) or {}
        if details.get("speed_to_lead"):
            return {
                "run_id": int(row.run_id),
                **details["speed_to_lead"],
                "computed_in_run": int(details.get("reused_from_run") or row.run_id),
                "valid_until": details.get("valid_until"),
            }
    return None
