"""Lead handling reused by a run whose inputs did not move, until its results would change.

Lead handling (:mod:`jobs.service.lead_handling`) reads every lead and activity; recomputing it on
a run that changed nothing cost that run most of its time. Its results hold while its inputs hold
and the clock has not moved past its *validity horizon* (``details["valid_until"]``, see
:func:`jobs.service.lead_handling.reuse_horizon`): the end of the UTC day, or earlier the first
moment a lead still waiting for its first response could pass its target, or the moment the org's
directory kept in the mirror would be read again.

The inputs are summed up in a fingerprint (:class:`jobs.service.incremental.JobMemory`): the
change counters and layouts of the lead and activity tables, ``scoring.toml`` and
``routing.toml``, the UTC day, dvsync's version, the scoring job's fingerprint and status (stages
use its scores), and a digest of the directory copy the step used. The fingerprint is taken again
after the step ran, since the step may read the directory afresh and keep it.

Every run's writes come back in the next run's delta and raise the lead table's counter, though
they changed no value lead handling reads (``out_`` columns are not its inputs). As for scoring,
the step keeps per-record digests of what it reads (:mod:`jobs.service.row_digests`): when the
counters moved, only the records changed since are hashed, and if none of their values moved the
saved outcome is reused (still within its horizon) and kept under the new counters.

Never reused:

* with ``[routing] enabled``: assignments consume the round-robin position kept in the audit and
  depend on who holds each lead now (owners a person changes, queues read on every run);
* with ``--refresh-metadata`` (the directory is to be read afresh) or ``--full`` (nothing is
  reused);
* on the Spark engine, where the scores come from the engine's changed records completed by what
  Dynamics holds, which needs the leads read anyway.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from jobs.service.compute import JobOutcome
from jobs.service.directory_cache import kept_stamp
from jobs.service.incremental import JobMemory, job_tables
from jobs.service.lead_handling import JOB, compute_for_run
from jobs.service.row_digests import RowState, full_rows

__all__ = ["lead_handling_fingerprint", "lead_handling_for_run"]

log = logging.getLogger(__name__)


def lead_handling_fingerprint(
    memory: JobMemory, settings: Any, now: datetime, scoring: tuple[str, str], *, with_tables: bool = True
) -> str:
    """Everything lead handling's results depend on but the clock within the day (module docstring).

    ``scoring``: the scoring job's fingerprint and its outcome's status this run (with
    ``with_tables=False``: its fingerprint without the tables' counters, see below).
    ``with_tables=False`` leaves the tables' counters out, for a content digest: the per-record
    digests (:mod:`jobs.service.row_digests`) then stand for the values.
    """
    mappings = Path(settings.mappings.dir)
    tables = job_tables(memory, "scoring")  # the leads and every activity table
    extra: dict[str, Any] = {
        "scoring": list(scoring),
        "directory": kept_stamp(memory.mirror),
        "routing_enabled": bool(settings.routing.enabled),
        "directory_max_age_hours": settings.routing.directory_max_age_hours,
    }
    if not with_tables:
        extra["tables"], tables = tables, []
    return memory.fingerprint(
        JOB,
        tables=tables,
        files=[mappings / "scoring.toml", mappings / "routing.toml"],
        day=now,
        extra=extra,
    )


def _reusable(memory: JobMemory, fingerprint: str, now: datetime, content: str | None) -> JobOutcome | None:
    saved = memory.saved(JOB)
    if saved is None or saved.outcome is None:
        return None
    details = saved.outcome.details
    try:
        computed_at = pd.Timestamp(details["computed_at"])
        valid_until = pd.Timestamp(details["valid_until"])
    except (KeyError, TypeError, ValueError):
        return None  # saved by a version without a horizon
    stamp = pd.Timestamp(now)
    if not computed_at <= stamp < valid_until:
        if saved.fingerprint == fingerprint or (content is not None and saved.content == content):
            log.info(
                "lead handling: inputs unchanged, but results computed at %s hold only until %s "
                "(a waiting lead may pass its response target, or the directory is due): recomputed",
                computed_at,
                valid_until,
            )
        return None
    return memory.reuse(JOB, fingerprint, content)


def lead_handling_for_run(
    memory: JobMemory,
    client: Any,
    settings: Any,
    outcomes: list[JobOutcome],
    now: datetime,
    *,
    refresh: bool,
    scoring: tuple[str, str],
    scoring_content: tuple[str, str],
    inputs: Callable[[], tuple[pd.DataFrame, pd.DataFrame | None]],
) -> JobOutcome:
    """The lead-handling outcome of a run: the saved one while it holds, else computed and staged.

    Args:
        memory: the run's job memory (its ``mirror`` is the open mirror).
        client: the DataverseClient (the directory is read when the kept copy cannot be used).
        settings: the settings.
        outcomes: the jobs computed so far (scoring's results are the scores stages use).
        now: the run's moment.
        refresh: ``--refresh-metadata`` / ``--full``: the directory is read afresh, nothing reused.
        scoring: the scoring job's fingerprint and outcome status this run.
        scoring_content: the same with the fingerprint taken without the tables' counters (the
            scores are those of the values scoring reads, whatever echoed).
        inputs: the leads and activities, read only when the step is computed.
    """
    tables = job_tables(memory, "scoring")
    rows: RowState | None = None
    checked = False
    if not settings.routing.enabled and not refresh:
        fingerprint = lead_handling_fingerprint(memory, settings, now, scoring)
        saved = memory.saved(JOB)
        if saved is not None and saved.fingerprint == fingerprint:
            reused = _reusable(memory, fingerprint, now, None)
        else:
            # Only the records changed since lead handling last computed are hashed: our own
            # write-back coming back (every run's writes do) changes no value it reads.
            unchanged, rows = memory.check_rows(JOB, tables)
            checked = True
            content = lead_handling_fingerprint(memory, settings, now, scoring_content, with_tables=False)
            reused = _reusable(memory, fingerprint, now, content if unchanged else None)
            if reused is not None:  # the echo: kept under this run's counters, with its rows
                memory.stage(JOB, fingerprint, reused, content=content, rows=rows)
        if reused is not None:
            return reused
    if not checked:
        rows = memory.check_rows(JOB, tables)[1]
    started = time.perf_counter()
    leads, activities = inputs()
    outcome = compute_for_run(
        client, memory.mirror, settings, outcomes, now, refresh_directory=refresh, inputs=(leads, activities)
    )
    outcome.details.setdefault("seconds", round(time.perf_counter() - started, 2))
    # Taken after the step: it may have read the directory afresh and kept the new copy.
    memory.stage(
        JOB,
        lead_handling_fingerprint(memory, settings, now, scoring),
        outcome,
        content=lead_handling_fingerprint(memory, settings, now, scoring_content, with_tables=False),
        rows=rows or full_rows(memory.mirror, tables, {"lead": leads}),
    )
    return outcome
