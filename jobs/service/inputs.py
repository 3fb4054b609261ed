"""A job runs only on complete input: which mirror tables each job reads, and which are incomplete.

A table whose sync failed in this run (retries exhausted, a bad value, a dropped token) holds a
partial or stale copy. Computing on it gives wrong values that look right: a lead model trained
without the emails keeps scoring every lead lower until the next retrain, and later clean runs
see nothing to change. So a job whose input is incomplete is *skipped*: its last results stand in
Dynamics, nothing is computed, trained or promoted, and the run says which table and why. The
next run whose syncs succeed computes it as a clean run would.

A table is incomplete when its sync failed in this run, when a read of it is unfinished (a killed
run), when its last sync failed, or when it was never read in full. Tables that were never synced
at all (left out of ``sync.tables``) are not inputs of this setup and do not block.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from jobs.service.mapping import MappingSet
from jobs.service.mirror import Mirror

__all__ = ["JOB_ENTITIES", "blocked_jobs", "incomplete_tables"]

JOB_ENTITIES: dict[str, tuple[str, ...]] = {
    "scoring": ("lead", "activity"),
    "duplicates": ("lead", "contact", "account"),
    "rfm": ("order",),
    "clv": ("order",),
}
"""The canonical entities each job reads (every enabled mapped table of the entity)."""


def incomplete_tables(mirror: Mirror, mappings: MappingSet, failed: Mapping[str, str]) -> dict[str, str]:
    """Enabled mapped tables whose mirror copy cannot be trusted as complete, with the reason.

    Args:
        mirror: the open mirror.
        mappings: the mapping set.
        failed: table -> error, for the tables whose sync failed in this run.
    """
    out: dict[str, str] = {}
    present = set(mirror.layouts())
    for name, mapping in sorted(mappings.tables.items()):
        # A table this setup never syncs (left out of `sync.tables`) is not an input; one that was
        # started and not finished is.
        if not mapping.enabled or (name not in present and name not in failed):
            continue
        if name in failed:
            out[name] = f"its sync failed in this run ({failed[name]})"
            continue
        state = mirror.sync_state(name)
        if state.phase is not None:
            out[name] = "its last read is unfinished; `dvsync sync` completes it"
        elif state.last_error:
            out[name] = f"its last sync failed ({state.last_error})"
        elif state.last_full_sync is None:
            out[name] = "it was never read in full; run `dvsync sync`"
    return out


def blocked_jobs(jobs: Iterable[str], mappings: MappingSet, incomplete: Mapping[str, str]) -> dict[str, str]:
    """Job -> why it is skipped, for each job that reads an incomplete table."""
    blocked: dict[str, str] = {}
    for job in jobs:
        entities: Sequence[str] = JOB_ENTITIES.get(job, ())
        bad = [
            f"{name}: {incomplete[name]}"
            for name, mapping in sorted(mappings.tables.items())
            if mapping.enabled and mapping.entity in entities and name in incomplete
        ]
        if bad:
            blocked[job] = (
                "skipped, its input is incomplete (" + "; ".join(bad) + "); its last results stand, "
                "nothing was computed or trained on partial data"
            )
    return blocked
