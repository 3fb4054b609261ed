"""Runs cost what changed: a job whose inputs did not move is not recomputed.

Each job's inputs are summed up in a *fingerprint*: the change counters of the mirrored tables it
reads (:meth:`Mirror.table_versions`, raised by every sync commit that changed rows), the bytes
of its configuration file, dvsync's version, and for time-dependent jobs the UTC day (scores
decay and customers age by the day, so a job's results hold for the day they were computed for).
When the fingerprint equals the one saved with the job's last results, those results are what a
full recompute would give, and they are reused without reading a single mirrored row.

The write-back's own updates of the ``out_`` columns do not raise a table's counter: they only
record that Dynamics now holds what the job computed, and a recompute that reads those values
back (the trend against the held score, the sticky suggested master) gives the same results.

When the fingerprint moved, the job runs; it gets the caches it saved last time (see
:class:`JobMemory.caches`) to redo only the records that changed, and saves new ones.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from core.version import __version__
from jobs.service import merge_store
from jobs.service.compute import JobOutcome
from jobs.service.merge import _master_by
from jobs.service.mirror import unpack_part
from jobs.service.row_digests import RowState, check_rows

__all__ = [
    "JobMemory",
    "Remembered",
    "job_fingerprint",
    "job_tables",
    "masters_held",
    "nightly_deferral",
]

log = logging.getLogger(__name__)


class Remembered:
    """What was saved for one job: its fingerprint, the run and its outcome, and its caches.

    The parts are unpacked on first use: a reused job needs its outcome, and only a job that
    recomputes needs its caches and per-record digests (the duplicates job's compared pairs are
    most of its state).
    """

    def __init__(self, job: str, fingerprint: str, run_id: int | None, packed: Mapping[str, bytes]) -> None:
        self.fingerprint = fingerprint
        self.run_id = run_id
        self._job = job
        self._packed = dict(packed)
        self._parts: dict[str, Any] = {}

    def _part(self, name: str) -> Any:
        if name not in self._parts:
            blob = self._packed.pop(name, None)
            try:
                self._parts[name] = unpack_part(blob) if blob is not None else None
            except Exception as exc:  # written by another pandas, say: the job recomputes
                log.info("job %s: its saved %s cannot be used (%s)", self._job, name, exc)
                self._parts[name] = None
        return self._parts[name]

    @property
    def outcome(self) -> JobOutcome | None:
        return self._part("outcome")

    @property
    def caches(self) -> dict[str, Any]:
        return dict(self._part("caches") or {})

    @property
    def content(self) -> str | None:
        return self._part("content")

    @property
    def rows(self) -> dict[str, Any] | None:
        return self._part("rows")


def _file_digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "missing"


class JobMemory:
    """Fingerprints, reuse and saving of the jobs' state in the mirror, for one run.

    Args:
        mirror: the open mirror.
        run_id: this run.
        enabled: False forces every job to recompute in full (``dvsync run --full``).
    """

    def __init__(self, mirror: Any, run_id: int, *, enabled: bool = True) -> None:
        self.mirror = mirror
        self.run_id = run_id
        self.enabled = enabled
        self._saved: dict[str, Remembered | None] = {}
        self._staged: dict[str, tuple[str, JobOutcome, dict[str, Any], str | None, Any]] = {}
        self._elsewhere: set[str] = set()

    def tables_of(self, names: Iterable[str] = (), entities: Iterable[str] = ()) -> list[str]:
        """The mirrored tables among ``names``, plus every table of the given canonical entities."""
        layouts = self.mirror.layouts()
        wanted = {n for n in names if n in layouts}
        entity_set = set(entities)
        wanted |= {n for n, layout in layouts.items() if layout.entity in entity_set}
        return sorted(wanted)

    def fingerprint(
        self,
        job: str,
        *,
        tables: Iterable[str],
        files: Iterable[Path] = (),
        day: datetime | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """A digest of everything ``job``'s results depend on (see the module docstring)."""
        names = sorted(set(tables))
        parts = {
            "job": job,
            "dvsync": __version__,
            "tables": self.mirror.table_versions(names),
            "layouts": {n: self.mirror.layout(n).columns for n in names if n in self.mirror.layouts()},
            "files": {str(p.name): _file_digest(Path(p)) for p in files},
            "day": pd.Timestamp(day).tz_convert("UTC").strftime("%Y-%m-%d") if day is not None else None,
            "extra": dict(extra or {}),
        }
        text = json.dumps(parts, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def saved(self, job: str) -> Remembered | None:
        """The state saved for ``job`` by an earlier run (None: never, unreadable, or disabled)."""
        if job not in self._saved:
            state = self.mirror.job_state_packed(job) if self.enabled else None
            self._saved[job] = Remembered(job, *state) if state is not None else None
        return self._saved[job]

    def reuse(self, job: str, fingerprint: str, content: str | None = None) -> JobOutcome | None:
        """The job's last outcome when its inputs did not move since, else None.

        ``fingerprint`` compares the tables' change counters; ``content`` is the job's fingerprint
        without them (``with_tables=False``), given when the per-record digests
        (:mod:`jobs.service.row_digests`) found every record it reads unchanged: rows that came
        back from Dynamics unchanged in what the job reads (our own write-back, say).
        """
        saved = self.saved(job)
        if saved is None or saved.outcome is None:
            return None
        if saved.fingerprint != fingerprint and (content is None or saved.content != content):
            return None
        details = dict(saved.outcome.details)
        message = details.pop("computed_message", saved.outcome.message)
        computed_in = details.pop("reused_from_run", saved.run_id)
        details.pop("seconds", None)
        outcome = replace(
            saved.outcome,
            details={**details, "reused_from_run": computed_in, "computed_message": message},
            message=f"{message} (inputs unchanged since run {computed_in}: reused)",
        )
        log.info("job %s: inputs unchanged since run %s; its results are reused", job, computed_in)
        return outcome

    def caches(self, job: str) -> dict[str, Any]:
        """The caches the job saved last time (empty when none), for an incremental recompute."""
        saved = self.saved(job)
        return dict(saved.caches) if saved is not None else {}

    def previous_results(self, job: str) -> dict[str, pd.DataFrame]:
        """The job's results as its last run saved them (to store only the values that changed)."""
        saved = self.saved(job)
        if saved is None or saved.outcome is None:
            return {}
        return dict(saved.outcome.results)

    def stage(
        self,
        job: str,
        fingerprint: str,
        outcome: JobOutcome,
        caches: Mapping[str, Any] | None = None,
        content: str | None = None,
        rows: Mapping[str, Any] | None = None,
    ) -> None:
        """Keep a computed outcome and its caches until :meth:`commit` (with the run's results);
        ``rows``: the per-record digests of its inputs (:mod:`jobs.service.row_digests`)."""
        self._staged[job] = (fingerprint, outcome, dict(caches or {}), content, rows)

    def commit(self) -> None:
        """Save the staged states (inside the caller's transaction); a failed job's state is dropped."""
        for job in sorted(self._elsewhere):
            self.mirror.clear_job_state(job)
        self._elsewhere.clear()
        for job, (fingerprint, outcome, caches, content, rows) in self._staged.items():
            if outcome.status == "failed":
                self.mirror.clear_job_state(job)
                continue
            payload = {"outcome": outcome, "caches": caches, "content": content, "rows": rows}
            size = self.mirror.save_job_state(job, fingerprint, self.run_id, payload)
            log.debug("job %s: state saved (%d bytes)", job, size)
        self._staged.clear()

    def check_rows(self, job: str, tables: Iterable[str]) -> tuple[bool, RowState | None]:
        """Whether the records of ``tables`` hold the values ``job`` last computed from, reading
        only those changed since (see :func:`jobs.service.row_digests.check_rows`)."""
        saved = self.saved(job)
        return check_rows(self.mirror, saved.rows if saved is not None else None, tables)

    def computed(self, job: str) -> bool:
        """True when ``job`` was computed this run (not reused)."""
        return job in self._staged

    def computed_elsewhere(self, job: str) -> None:
        """``job`` was computed this run by another engine (Spark), whose results hold only the
        changed records: its saved state no longer matches the kept values, so drop it at
        :meth:`commit` (the next pandas run recomputes in full)."""
        self._elsewhere.add(job)

    def partial(self, job: str) -> bool:
        """True when ``job``'s results this run hold only the changed records (see above)."""
        return job in self._elsewhere


def job_fingerprint(
    memory: JobMemory,
    job: str,
    *,
    config_dir: Path,
    now: datetime,
    model_version: str | None = None,
    merge_state: Mapping[str, Any] | None = None,
    with_tables: bool = True,
) -> str:
    """The fingerprint of one of the pipeline's jobs: the tables, file and day it depends on.

    ``with_tables=False`` leaves the tables' counters out, for a reuse whose per-record digests
    (:mod:`jobs.service.row_digests`) stand for the values instead. ``merge_state`` (duplicates
    only): :func:`merge_inputs_state`.
    """
    tables = job_tables(memory, job, merge_state)
    if job == "scoring":
        files = [config_dir / "scoring.toml"]
        day: datetime | None = now
        extra: dict[str, Any] = {"model": model_version}
    elif job == "duplicates":
        state = {k: v for k, v in (merge_state or {}).items() if k != "entities"}
        files, day, extra = [config_dir / "duplicates.toml"], None, {"merge": state}
    else:
        files, day, extra = [config_dir / "customer_value.toml"], now, {}
    if not with_tables:
        extra = {**extra, "tables": tables}
        tables = []
    return memory.fingerprint(job, tables=tables, files=files, day=day, extra=extra)


def job_tables(memory: JobMemory, job: str, merge_state: Mapping[str, Any] | None = None) -> list[str]:
    """The mirrored tables one of the pipeline's jobs reads (``merge_state``: duplicates only)."""
    if job == "scoring":
        return memory.tables_of(["lead"], entities=["activity"])
    if job == "duplicates":
        entities = (merge_state or {}).get("entities", ())
        return memory.tables_of(["lead", "contact", "account"], entities=entities)
    return memory.tables_of(entities=["order"])


def merge_inputs_state(mirror: Any, config_path: Path) -> dict[str, Any]:
    """What the duplicates job reads besides its three tables, through the merge preparation
    (:func:`jobs.service.merge.merge_inputs`): the records dvsync merged away, the pairs a person
    ruled on, and the entities of the derived survivorship columns the master preferences name
    (``order_count`` reads the orders, ``last_activity_on`` the activities). A new "not a
    duplicate" ruling changes no mirrored table, yet must regroup: it is part of the fingerprint.
    """
    state: dict[str, Any] = {}
    entities: set[str] = set()
    for table in ("lead", "contact", "account"):
        ruled = merge_store.memory(mirror, table)
        rows = sorted(zip(ruled["id_a"], ruled["id_b"], ruled["decision"], strict=True))
        merged = sorted(merge_store.merged_ids(mirror, table))
        text = json.dumps([rows, merged], default=str)
        state[table] = hashlib.sha256(text.encode()).hexdigest()
        derived = {m.lstrip("-") for m in _master_by(config_path, table)}
        entities |= {
            e
            for column, e in (("order_count", "order"), ("last_activity_on", "activity"))
            if column in derived
        }
    state["entities"] = sorted(entities)
    return state


def masters_held(mirror: Any, outcome: JobOutcome, frames: Mapping[str, pd.DataFrame]) -> bool:
    """True when Dynamics holds, for every grouped record, the master ``outcome`` suggested for it.

    The duplicates job keeps the master a group already shows (the mirror's ``out_suggested_master``),
    so its results depend on that output column too. When every grouped record holds the master
    the kept results give it, a recompute on the same records picks the same masters: the kept
    results are what it would give. A master edited in Dynamics, or one not written yet, means
    recompute. A table without the column has no held master to follow.
    """
    layouts = mirror.layouts()
    for table, results in outcome.results.items():
        frame = frames.get(table)
        if "suggested_master" not in results or frame is None or "out_suggested_master" not in frame:
            continue
        kept = results["suggested_master"].dropna().astype(str).str.lower()
        if kept.empty:
            continue
        if table not in layouts:
            return False
        ids = frame[layouts[table].id_column].astype(str).str.lower()
        held = frame["out_suggested_master"].set_axis(ids.to_numpy()).astype("string").str.lower()
        held = held[~held.index.duplicated()].reindex(kept.index)
        if not held.eq(kept).fillna(False).all():
            return False
    return True


def nightly_deferral(memory: JobMemory, bases: Mapping[str, str]) -> list[JobOutcome] | None:
    """With ``[jobs.customer_value] recompute = "nightly"``: outcomes that compute and write nothing
    when each job was computed earlier the same UTC day with the same settings (``bases``: per job,
    its fingerprint without the tables, saved as the ``basis`` cache), else None (compute now).

    The results kept from that computation stand in Dynamics; this run plans nothing for them, so
    nothing is written from values the changed orders made stale. The saved state is left as it
    is, so the first run of the next day recomputes.
    """
    outcomes = []
    for job, basis in bases.items():
        saved = memory.saved(job)
        if saved is None or saved.outcome is None or saved.caches.get("basis") != basis:
            return None
        computed_in = saved.outcome.details.get("reused_from_run", saved.run_id)
        outcomes.append(
            JobOutcome(
                job,
                status="skipped",
                message=(
                    f"orders changed since run {computed_in}; recomputed once a day "
                    '([jobs.customer_value] recompute = "nightly"): nothing new written until the '
                    "first run of the next UTC day"
                ),
                details={"deferred_until_next_day": True, "computed_in_run": computed_in},
            )
        )
    log.info("jobs %s: orders changed, recomputed nightly: deferred", ", ".join(bases))
    return outcomes
