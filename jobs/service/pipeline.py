"""One run: sync → compute → plan → write back → record, crash-safe at every step.

1. **Sync** the mapped tables into the mirror (:func:`jobs.service.sync.sync_tables`, resumable page by
   page).
2. **Settle** writes left in doubt by a killed run: plan items still ``sending`` whose value the
   sync now shows in Dynamics are marked ``written`` (and audited); the others are retried.
3. **Compute** the enabled jobs on mirror DataFrames (:mod:`jobs.service.compute`).
4. **Plan** (:mod:`jobs.service.plan`): only values that differ from what Dynamics holds, plus what
   earlier runs could not write; the plan is stored before anything is sent. ``dry_run`` writes it
   to a CSV instead and changes nothing in Dynamics.
5. **Write back** with :meth:`DataverseClient.update_many` (``$batch``, continue-on-error,
   ``If-Match`` on the etag the sync read, lost answers settled by reading back, never replayed
   blind; parallel within the cap) in chunks: each chunk's items are marked ``sending``
   before the request, then, in one transaction, marked ``written``/``failed``, audited, and the
   mirror's ``out_`` columns updated. A failed record stays in the plan and is retried next run.

Kill the process anywhere and run again: the sync resumes, the jobs recompute, values Dynamics
already holds are not planned again (nothing written twice) and unwritten ones are (nothing lost).

For tests, ``DVSYNC_FAULT=<point>:<n>[:term]`` kills the process (SIGKILL, or SIGTERM with
``:term``) at a named point: ``sync-page`` (after the n-th committed page), ``computed``,
``planned``, ``write-sent`` (after the n-th chunk was sent, before it is recorded) and
``write-recorded`` (after the n-th chunk was recorded).

Kept as one module on purpose: each step's crash-safety (what is committed before the next step
starts, and how a killed run is resumed) is one protocol read top to bottom.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import logging
import math
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import pandas as pd

from core.errors import ConfigError, DvsyncError
from core.private import private_dir, private_file
from jobs.errors import JobError
from jobs.moments import without_sentinels
from jobs.service import compute, compute_value, lead_handling, routing_queue
from jobs.service.compute import JOB_ORDER, JobOutcome, score_trend
from jobs.service.engine_run import compute_on_engine
from jobs.service.incremental import (
    JobMemory,
    job_fingerprint,
    job_tables,
    masters_held,
    merge_inputs_state,
    nightly_deferral,
)
from jobs.service.inputs import JOB_ENTITIES, blocked_jobs, incomplete_tables
from jobs.service.lead_handling_reuse import lead_handling_for_run
from jobs.service.mapping import MappingSet, OutputColumn
from jobs.service.merge import merge_inputs, run_merge_job
from jobs.service.metadata_cache import CachedMetadataClient, needed_columns
from jobs.service.mirror import Mirror, MirrorError
from jobs.service.mirror.database import note_lock
from jobs.service.plan import (
    COMPANION_RESULTS,
    add_companions,
    carry_forward,
    differs,
    empty_plan,
)
from jobs.service.plan_memo import PlanMemo
from jobs.service.row_digests import full_rows
from jobs.service.settings import KNOWN_JOBS, Settings
from jobs.service.stopping import StopNow, StopRequest
from jobs.service.sync import SyncResult, sync_tables

__all__ = [
    "FAULT_ENV",
    "OPEN_STATUSES",
    "PipelineProgress",
    "PipelineResult",
    "RequestMeter",
    "RunBusyError",
    "RunLock",
    "RunStopped",
    "lock_path_for",
    "run_pipeline",
]

log = logging.getLogger(__name__)

FAULT_ENV = "DVSYNC_FAULT"
OPEN_STATUSES = ("pending", "failed", "sending")
"""Plan items that still have to reach Dynamics (``sending``: sent by a run that was killed)."""
_RETRY_STATUSES = frozenset({429, 502, 503, 504})


class RunStopped(Exception):
    """Raised between pages or chunks when a stop was requested (SIGTERM); the run is recorded."""


class RunBusyError(DvsyncError):
    """Another run holds the lock (``dvsync schedule`` or a ``dvsync run`` elsewhere)."""

    exit_code = 1


class PipelineProgress(Protocol):
    """Receives progress: committed sync pages and written chunks."""

    def sync(self, table: str, *, read: int, pages: int, done: bool) -> None: ...

    def write(self, table: str, *, done: int, total: int) -> None: ...


# ------------------------------------------------------------------------------------ the lock


def lock_path_for(mirror_path: str | Path) -> Path:
    """The lock file beside the mirror: ``mirror.sqlite.lock``."""
    path = Path(mirror_path)
    return path.with_name(path.name + ".lock")


class RunLock:
    """An exclusive ``fcntl.flock`` on a file beside the mirror: one run at a time, across processes.

    The kernel drops the lock when the process dies, so a killed run never leaves it stuck.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self, *, wait: bool = False) -> bool:
        """Take the lock; with ``wait`` block until it is free, else return False when it is held."""
        private_dir(self.path.parent)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        note_lock(self.path, held=True)
        return True

    def holder(self) -> int | None:
        """The pid written by the current holder, if readable."""
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self._fd is not None:
            note_lock(self.path, held=False)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        if not self.acquire():
            holder = self.holder()
            raise RunBusyError(
                "another dvsync run is in progress"
                + (f" (pid {holder})" if holder else "")
                + "; wait for it to finish (`dvsync status` shows it)"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# ------------------------------------------------------------------------------------ metering and faults


class RequestMeter:
    """Counts HTTP requests by path and status through a ``requests`` response hook.

    ``label`` (set by the write-back) attributes ``$batch`` requests to the table being written.
    """

    def __init__(self) -> None:
        self.by_path: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()
        self.label: str | None = None
        self._lock = threading.Lock()

    def hook(self, response: Any, *args: Any, **kwargs: Any) -> None:
        """The ``requests`` response hook."""
        path = urlsplit(response.request.url).path
        segment = path.split("/api/data/", 1)[-1].split("/", 1)[-1] if "/api/data/" in path else path
        name = segment.split("(", 1)[0].split("/", 1)[0] or "/"
        if name == "$batch" and self.label:
            name = f"$batch {self.label}"
        with self._lock:
            self.by_path[name] += 1
            self.by_status[int(response.status_code)] += 1

    @contextlib.contextmanager
    def attached(self, client: Any) -> Iterator[RequestMeter]:
        """Count the requests of ``client`` while the block runs."""
        session = getattr(getattr(client, "http", None), "session", None)
        if session is None:
            yield self
            return
        hooks = session.hooks.setdefault("response", [])
        hooks.append(self.hook)
        try:
            yield self
        finally:
            with contextlib.suppress(ValueError):
                hooks.remove(self.hook)

    def as_dict(self) -> dict[str, Any]:
        """Totals: requests, retried responses (429/5xx), 429s, and requests per path."""
        return {
            "requests": sum(self.by_path.values()),
            "retries": sum(n for s, n in self.by_status.items() if s in _RETRY_STATUSES),
            "throttled": self.by_status.get(429, 0),
            "by_path": dict(sorted(self.by_path.items())),
        }


class _Faults:
    """Deterministic kill points for the crash tests (``DVSYNC_FAULT=point:n[:term]``).

    The process gets SIGKILL at the n-th time it passes ``point`` (SIGTERM with ``:term``, to test
    the graceful stop).
    """

    def __init__(self, spec: str | None) -> None:
        self.point, self.n, self.signal = None, 1, signal.SIGKILL
        if spec:
            point, _, rest = spec.partition(":")
            count, _, kind = rest.partition(":")
            self.point, self.n = point.strip(), int(count or 1)
            if kind.strip().lower() == "term":
                self.signal = signal.SIGTERM
        self.counts: Counter[str] = Counter()

    def hit(self, point: str) -> None:
        if point != self.point:
            return
        self.counts[point] += 1
        if self.counts[point] == self.n:
            log.warning("fault injection: signal %d at %s #%d", self.signal, point, self.n)
            os.kill(os.getpid(), self.signal)


# ------------------------------------------------------------------------------------ result


@dataclass
class PipelineResult:
    """What one run did.

    Attributes:
        run_id: the run's id in the mirror.
        outcome: ``ok``, ``failed`` (a table, a job or some writes failed), ``interrupted``.
        dry_run: nothing was written to Dynamics.
        sync: the sync's per-table reports.
        jobs: what each job produced.
        tables: per table: ``read``, ``upserted``, ``deleted``, ``mode``, ``planned``, ``written``,
            ``failed`` (records), ``read_requests`` and ``write_requests``.
        plan: the plan items (see :mod:`jobs.service.plan`; with ``status`` after the write-back).
        plan_csv: where a dry run wrote its plan.
        confirmed: writes of a killed run found in Dynamics and marked written.
        failures: per failed record: table, record, columns, message.
        skipped: per value deliberately not written (a lead a person took after the sync): table,
            record, column, message. Not a failure: nothing is retried, the run stays ``ok``.
        not_provisioned: output columns that do not exist in Dynamics (``dvsync provision``).
        http: requests, retries, 429s and requests per path.
        duration_s: wall time.
        error: why the run failed or stopped.
    """

    run_id: int
    outcome: str = "running"
    dry_run: bool = False
    sync: SyncResult | None = None
    jobs: list[JobOutcome] = field(default_factory=list)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    plan: pd.DataFrame = field(default_factory=empty_plan)
    plan_csv: Path | None = None
    confirmed: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    not_provisioned: list[str] = field(default_factory=list)
    http: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the run finished without a failure."""
        return self.outcome == "ok"

    def table(self, name: str) -> dict[str, Any]:
        """The counters of one table (created on first use)."""
        return self.tables.setdefault(
            name,
            {
                "read": 0,
                "upserted": 0,
                "deleted": 0,
                "mode": None,
                "planned": 0,
                "written": 0,
                "failed": 0,
                "read_requests": 0,
                "write_requests": 0,
            },
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary (``dvsync run --json``)."""
        return {
            "run_id": self.run_id,
            "outcome": self.outcome,
            "ok": self.ok,
            "dry_run": self.dry_run,
            "mode": "dry-run" if self.dry_run else "write",
            "tables": self.tables,
            "jobs": {j.job: j.as_dict() for j in self.jobs},
            "planned": len(self.plan),
            "plan_csv": str(self.plan_csv) if self.plan_csv else None,
            "confirmed_after_interruption": self.confirmed,
            "failures": self.failures[:50],
            "skipped": self.skipped[:50],
            "not_provisioned": self.not_provisioned,
            "http": self.http,
            "duration_s": self.duration_s,
            "error": self.error,
        }


# ------------------------------------------------------------------------------------ the run


@dataclass
class _Context:
    client: Any
    mirror: Mirror
    mappings: MappingSet
    settings: Settings
    result: PipelineResult
    faults: _Faults
    meter: RequestMeter
    stop: threading.Event
    progress: PipelineProgress | None
    now: datetime
    memory: JobMemory
    ignored_dates: Counter[str] = field(default_factory=Counter)
    phase: str = "sync"
    refresh: bool = False  # --refresh-metadata / --full: the org's directory is read afresh too
    frames: dict[tuple[str, str], pd.DataFrame | None] = field(default_factory=dict)  # read this run


def run_pipeline(
    client: Any,
    mirror: Mirror,
    mappings: MappingSet,
    settings: Settings,
    *,
    jobs: Sequence[str] | None = None,
    dry_run: bool | None = None,
    plan_csv: str | Path | None = None,
    full: bool = False,
    refresh_metadata: bool = False,
    trigger: str = "manual",
    progress: PipelineProgress | None = None,
    stop: threading.Event | None = None,
    clock: Callable[[], datetime] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> PipelineResult:
    """Run sync → compute → plan → write back, recording everything in the mirror.

    Args:
        client: a DataverseClient.
        mirror: the open mirror.
        mappings: the validated mapping set.
        settings: the settings (sync, writeback, mappings, mirror sections).
        jobs: the jobs to run (default ``jobs.enabled``), in any order; run in the canonical one.
        dry_run: plan without writing (default ``writeback.dry_run``); the plan goes to a CSV.
            With ``writeback.enabled = false`` (and no explicit dry run) the results are only kept
            in the mirror.
        plan_csv: where a dry run writes its plan (default ``<mirror dir>/plans/run-<id>.csv``).
        full: re-read every table in full (and recompute every job in full).
        refresh_metadata: read the table definitions from Dataverse instead of the mirror's cache
            (:mod:`jobs.service.metadata_cache`; ``--full`` implies it).
        trigger: who started the run (``manual``, ``schedule:<set>``), kept in the run's stats.
        progress: receives sync pages and write chunks.
        stop: when set (SIGTERM), the run ends after the current page or chunk as ``interrupted``.
        clock: the current aware time.
        monotonic: for the duration.

    Returns:
        The run's :class:`PipelineResult` (also recorded in the mirror).

    Raises:
        ConfigError: an unknown job or a bad job configuration file.
        AuthError: no token (nothing could be read).
    """
    started = monotonic()
    clock = clock or (lambda: datetime.now(UTC))
    chosen = _choose_jobs(jobs if jobs is not None else settings.jobs.enabled)
    dry = settings.writeback.dry_run if dry_run is None else dry_run
    # writeback.enabled = false: compute and keep the results in the mirror, write nothing.
    compute_only = not settings.writeback.enabled and not dry_run
    dry = dry or compute_only
    mirror.mark_abandoned_runs()
    client = CachedMetadataClient(
        client, mirror, needed=needed_columns(mappings), refresh=refresh_metadata or full, clock=clock
    )
    run_id = mirror.start_run("run", jobs=chosen, dry_run=dry)
    result = PipelineResult(run_id=run_id, dry_run=dry)
    ctx = _Context(
        client,
        mirror,
        mappings,
        settings,
        result,
        _Faults(os.environ.get(FAULT_ENV)),
        RequestMeter(),
        stop or threading.Event(),
        progress,
        clock(),
        JobMemory(mirror, run_id, enabled=not full),
        refresh=refresh_metadata or full,
    )
    mode = "dry run: plans only, writes nothing" if dry else "write mode: writes changed values"
    log.info("run %d started (%s): jobs %s", run_id, mode, ", ".join(chosen) or "none")
    log.info("run %d: sync", run_id)
    try:
        with ctx.meter.attached(client):
            # Sync, compute and plan commit nothing half-done (a sync page and its state commit
            # together), so a stop signal may end them at once rather than at the next check.
            with _step(ctx, "sync", abortable=True):
                _sync(ctx, full=full)
            with _step(ctx, "sync"):
                _settle_in_doubt(ctx)
            with _step(ctx, "compute", abortable=True):
                outcomes = _compute(ctx, chosen)
            ctx.faults.hit("computed")
            with _step(ctx, "plan", abortable=True):
                plan = _plan(ctx, outcomes)
            with _step(ctx, "write"):
                pass  # names the phase, and stops here if a signal came at the end of the plan
            if compute_only:
                _save_results(ctx, outcomes)
                log.info("writeback.enabled is false: results kept in the mirror, nothing written")
            elif dry:
                _write_csv(ctx, plan, plan_csv)
            else:
                _store_plan(ctx, plan, outcomes)
                ctx.faults.hit("planned")
                _write_back(ctx, plan)
            if "merge" in chosen and not compute_only:
                ctx.result.jobs.append(
                    run_merge_job(client, mirror, mappings, settings, dry_run=dry, run_id=run_id)
                )
        failed_tables = (
            [f"{t.table} ({t.error})" for t in result.sync.tables if not t.ok] if result.sync else []
        )
        failed_jobs = [j.job for j in result.jobs if j.status == "failed"]
        starved = [j.job for j in result.jobs if j.details.get("incomplete_input")]
        problems = []
        if failed_tables:
            problems.append(f"sync failed for {'; '.join(failed_tables)}")
        if failed_jobs:
            problems.append(f"job(s) failed: {', '.join(failed_jobs)}")
        if starved:
            problems.append(f"job(s) skipped because their input is incomplete: {', '.join(starved)}")
        if result.not_provisioned and not compute_only:
            missing = result.not_provisioned
            problems.append(
                f"{len(missing)} output column(s) do not exist in Dynamics, their results were not "
                f"written ({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}); "
                "run `dvsync provision`, then run again"
            )
        if result.failures:
            problems.append(f"{len(result.failures)} record(s) could not be written (retried next run)")
        result.outcome = "failed" if problems else "ok"
        result.error = "; ".join(problems) or None
    except (RunStopped, StopNow):
        mirror.recover_after_stop()
        name = ctx.stop.signal_name if isinstance(ctx.stop, StopRequest) else "a stop request"
        result.outcome = "interrupted"
        result.error = (
            f"stopped by {name} during {ctx.phase}; everything committed is kept and the next run "
            "finishes the job"
        )
    except BaseException as exc:
        result.outcome = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        result.error = str(exc) or type(exc).__name__
        _finish(ctx, started, monotonic, trigger)
        raise
    _finish(ctx, started, monotonic, trigger)
    return result


@contextlib.contextmanager
def _step(ctx: _Context, phase: str, *, abortable: bool = False) -> Iterator[None]:
    """Name the phase (for the stop message); an abortable one may be ended by a signal at once."""
    if ctx.phase != phase:
        log.info("run %d: %s", ctx.result.run_id, phase)
    ctx.phase = phase
    if ctx.stop.is_set():
        raise RunStopped
    if abortable and isinstance(ctx.stop, StopRequest):
        with ctx.stop.abortable():
            yield
    else:
        yield


def _finish(ctx: _Context, started: float, monotonic: Callable[[], float], trigger: str) -> None:
    result = ctx.result
    result.duration_s = round(monotonic() - started, 3)
    result.http = ctx.meter.as_dict()
    stats = result.as_dict()
    stats["trigger"] = trigger
    ctx.mirror.finish_run(result.run_id, result.outcome, stats=stats, error=result.error)
    log.info("run %d %s in %.1f s", result.run_id, result.outcome, result.duration_s)


def _choose_jobs(jobs: Sequence[str]) -> list[str]:
    from core.tomlfile import closest

    names = [j.strip().lower() for j in jobs if j and j.strip()]
    for name in names:
        if name not in KNOWN_JOBS:
            guess = closest(name, KNOWN_JOBS)
            raise ConfigError(
                f"unknown job `{name}`",
                hint=f"did you mean `{guess[0]}`?" if guess else f"jobs: {', '.join(KNOWN_JOBS)}",
            )
    return [j for j in KNOWN_JOBS if j in names]


# ------------------------------------------------------------------------------------ 1. sync


def _sync(ctx: _Context, *, full: bool) -> None:
    def on_page(table: str, *, read: int, pages: int, done: bool) -> None:
        if ctx.progress is not None:
            ctx.progress.sync(table, read=read, pages=pages, done=done)
        if not done:
            ctx.faults.hit("sync-page")
        if ctx.stop.is_set():
            raise RunStopped

    sync = ctx.settings.sync
    ctx.result.sync = sync_tables(
        ctx.client,
        ctx.mirror,
        ctx.mappings,
        tables=sync.tables or None,
        full=full,
        page_size=sync.page_size,
        window_overlap=timedelta(seconds=sync.window_overlap_seconds),
        run_id=ctx.result.run_id,
        progress=on_page,
    )
    for report in ctx.result.sync.tables:
        counters = ctx.result.table(report.table)
        counters.update(
            read=report.read,
            upserted=report.upserted,
            deleted=report.deleted,
            mode=report.mode or None,
            read_requests=report.pages,
        )
        if report.error:
            counters["error"] = report.error
        if report.problems:
            counters["unreadable_values"] = len(report.problems)
            counters["unreadable_examples"] = report.problems[:5]
    failed = [ctx.mappings.tables[t.table].table for t in ctx.result.sync.tables if not t.ok]
    if isinstance(ctx.client, CachedMetadataClient):
        ctx.client.forget(failed)  # a column it needs may be gone: read its definition afresh


# ------------------------------------------------------------------------------------ 2. settle


def _outputs_by_column(mappings: MappingSet) -> dict[tuple[str, str], OutputColumn]:
    return {(o.table, o.logical_name): o for o in mappings.outputs if o.enabled}


def _current(
    mirror: Mirror,
    mappings: MappingSet,
    tables: Sequence[str],
    read: Mapping[tuple[str, str], pd.DataFrame | None] | None = None,
) -> dict[str, pd.DataFrame]:
    """Per target table: the mirror's ``out_`` columns indexed by lower-case record id.

    ``read``: the tables this run already read whole (``_Context.frames``); their rows as read
    (``("raw", table)``, before sentinel dates were cleared) are used instead of reading again.
    """
    layouts = mirror.layouts()
    current: dict[str, pd.DataFrame] = {}
    for table in tables:
        if table not in layouts:
            continue
        layout = layouts[table]
        columns = [o.mirror_column for o in mappings.outputs_for(table) if o.mirror_column in layout.columns]
        raw = (read or {}).get(("raw", table))
        wanted = [layout.id_column, *[c for c in columns if c != layout.id_column]]
        if raw is not None and set(wanted) <= set(raw.columns):
            frame = raw[wanted]
        else:
            frame = mirror.read_frame(table, columns)
        current[table] = frame.set_index(frame[layout.id_column].astype(str).str.lower()).drop(
            columns=[layout.id_column]
        )
    return current


def _settle_in_doubt(ctx: _Context) -> None:
    """Mark written (and audit) the values a killed run sent that Dynamics now holds.

    ``failed`` items are checked too: a write whose answer was lost and could not even be read
    back is reported failed, yet may have been applied; once the sync shows the value, the audit
    says so, so that it matches what the server holds.
    """
    doubtful = ctx.mirror.plan(status=["sending", "failed"])
    doubtful = doubtful[doubtful["run_id"] != ctx.result.run_id]
    if doubtful.empty:
        return
    by_column = _outputs_by_column(ctx.mappings)
    current = _current(ctx.mirror, ctx.mappings, sorted(doubtful["table_name"].unique()))
    for (run_id, table, column), items in doubtful.groupby(["run_id", "table_name", "column_name"]):
        output = by_column.get((table, column))
        rows = current.get(table)
        # Routing's owner and queue writes are not output columns: lead handling checks those.
        landed = lead_handling.routing_landed(ctx.client, ctx.mirror, str(table), str(column), items)
        if landed is None:
            if output is None or rows is None or output.mirror_column not in rows.columns:
                continue
            held = output.to_wire(rows[output.mirror_column].reindex(items["record_id"]), scaled=True)
            sent = output.to_wire(pd.Series(list(items["new_value"]), dtype=object), scaled=True)
            landed = ~differs(sent, held).to_numpy()
        if not landed.any():
            continue
        done = items[landed]
        why = done["status"].map(
            {
                "sending": "confirmed in Dynamics after the run was interrupted",
                "failed": "found in Dynamics after its answer was lost",
            }
        )
        with ctx.mirror.transaction():
            ctx.mirror.mark_plan(
                int(run_id), table, zip(done["record_id"], done["column_name"], strict=True), "written"
            )
            ctx.mirror.record_audit(int(run_id), table, done.assign(outcome="written", error=why))
        ctx.result.confirmed += len(done)
    if ctx.result.confirmed:
        log.info("%d write(s) of an interrupted run were found in Dynamics", ctx.result.confirmed)


# ------------------------------------------------------------------------------------ 3. compute


def _frame(ctx: _Context, name: str) -> pd.DataFrame:
    # Read once per run (the mirror does not change while the jobs compute): scoring, lead
    # handling and duplicates all read the leads. Each caller gets its own shallow copy.
    if ("table", name) not in ctx.frames:
        mirror = ctx.mirror
        frame = mirror.read_frame(name) if name in mirror.layouts() else pd.DataFrame()
        ctx.frames[("raw", name)] = frame  # as stored: the plan reads its out_ columns from it
        frame, ctx.ignored_dates[name] = without_sentinels(frame)
        ctx.frames[("table", name)] = frame
    return ctx.frames[("table", name)].copy(deep=False)


def _entity(ctx: _Context, entity: str) -> pd.DataFrame | None:
    if ("entity", entity) not in ctx.frames:
        try:
            frame = ctx.mirror.read_entity(entity)
        except MirrorError:
            frame = None
        if frame is not None:
            frame, ctx.ignored_dates[entity] = without_sentinels(frame)
        ctx.frames[("entity", entity)] = frame
    frame = ctx.frames[("entity", entity)]
    return frame.copy(deep=False) if frame is not None else None


def _note_ignored(ctx: _Context, outcomes: Sequence[JobOutcome]) -> None:
    """Say in each job's report how many sentinel dates it read as "no date"."""
    for outcome in outcomes:
        ignored = sum(ctx.ignored_dates.get(s, 0) for s in JOB_ENTITIES.get(outcome.job, ()))
        if ignored:
            outcome.details["dates_ignored"] = ignored
            log.info("job %s: %d date(s) outside 1900..2200 read as no date", outcome.job, ignored)


def _job_failed(job: str, exc: Exception) -> JobOutcome:
    if isinstance(exc, ConfigError):
        raise exc  # a job configuration file to fix: the run stops with exit code 2
    log.error("job %s failed: %s", job, exc)
    return JobOutcome(job, status="failed", message=str(exc))


def _with_held_scores(leads: pd.DataFrame, outcomes: list[JobOutcome]) -> list[JobOutcome]:
    """The outcomes with the scoring results completed by the scores Dynamics holds (``out_*``)."""
    scoring = next((o for o in outcomes if o.job == "scoring" and "lead" in o.results), None)
    if scoring is None or leads.empty:
        return outcomes
    held = pd.DataFrame(index=leads["lead_id"].astype(str).str.lower())
    for column in ("score", "grade", "sales_ready"):
        if f"out_{column}" in leads:
            held[column] = leads[f"out_{column}"].to_numpy()
    changed = scoring.results["lead"]
    changed = changed.set_axis(changed.index.astype(str).str.lower())
    full = changed.combine_first(held[[c for c in held.columns if c in changed.columns]])
    completed = dataclasses.replace(scoring, results={**scoring.results, "lead": full})
    return [completed if o is scoring else o for o in outcomes]


def _compute(ctx: _Context, chosen: Sequence[str]) -> list[JobOutcome]:
    """Run the chosen jobs, reusing what did not change (:mod:`jobs.service.incremental`)."""
    outcomes: list[JobOutcome] = []
    # A job whose input table did not sync completely is skipped on every engine, and never
    # reused either: its last results stand in Dynamics, and its saved state is left as it was.
    failed = {t.table: str(t.error) for t in ctx.result.sync.tables if not t.ok} if ctx.result.sync else {}
    blocked = blocked_jobs(chosen, ctx.mappings, incomplete_tables(ctx.mirror, ctx.mappings, failed))
    for job, why in blocked.items():
        log.warning("job %s %s", job, why)
        outcomes.append(JobOutcome(job, status="skipped", message=why, details={"incomplete_input": True}))
    chosen = [j for j in chosen if j not in blocked]
    if ctx.settings.engine.kind != "pandas":  # the same jobs on Spark (jobs/engines, docs/scale.md)
        computed = compute_on_engine(
            ctx.client, ctx.mirror, ctx.mappings, ctx.settings, chosen, model_dir=_model_dir(ctx), now=ctx.now
        )
        for outcome in computed:
            ctx.memory.computed_elsewhere(outcome.job)
        outcomes += computed
        if "scoring" in chosen:
            # Lead handling runs on the driver, as on pandas; it needs every open lead's score, and
            # the engine returns only the scores that changed: the rest are what Dynamics holds.
            scored = _with_held_scores(_frame(ctx, "lead"), outcomes)
            outcomes.append(
                lead_handling.compute_for_run(
                    ctx.client,
                    ctx.mirror,
                    ctx.settings,
                    scored,
                    ctx.now,
                    refresh_directory=ctx.refresh,
                    inputs=(_frame(ctx, "lead"), _entity(ctx, "activity")),
                )
            )
        ctx.result.jobs = outcomes
        return outcomes
    chosen = [j for j in chosen if j in JOB_ORDER]  # the merge job runs after the write-back
    fingerprints = {job: _fingerprint(ctx, job) for job in chosen}
    reused = {job: ctx.memory.reuse(job, fingerprints[job]) for job in chosen}
    if "scoring" in chosen:
        outcomes.append(reused["scoring"] or _timed(lambda: _scoring(ctx, fingerprints["scoring"])))
        # Speed-to-lead, stages, re-engagement and routing ride with scoring (issue 18); reused
        # while their inputs and the clock allow (lead_handling_reuse.py), never when routing.
        outcomes.append(
            lead_handling_for_run(
                ctx.memory,
                ctx.client,
                ctx.settings,
                outcomes,
                ctx.now,
                refresh=ctx.refresh,
                scoring=(_fingerprint(ctx, "scoring"), outcomes[-1].status),
                scoring_content=(_fingerprint(ctx, "scoring", with_tables=False), outcomes[-1].status),
                inputs=lambda: (_frame(ctx, "lead"), _entity(ctx, "activity")),
            )
        )
    if "duplicates" in chosen:
        outcomes.append(reused["duplicates"] or _timed(lambda: _duplicates(ctx, fingerprints["duplicates"])))
    value_jobs = sorted({j for j in ("rfm", "clv") if j in chosen}, key=JOB_ORDER.index)
    if value_jobs and all(reused[j] is not None for j in value_jobs):
        outcomes.extend(reused[j] for j in value_jobs)  # type: ignore[misc]
    elif value_jobs:
        started = time.perf_counter()
        computed = _customer_value(ctx, value_jobs, fingerprints)
        for outcome in computed:
            outcome.details.setdefault("seconds", round(time.perf_counter() - started, 2))
        outcomes.extend(computed)
    order = {job: position for position, job in enumerate(KNOWN_JOBS)}
    outcomes.sort(key=lambda o: order.get(o.job, len(order)))
    _note_ignored(ctx, outcomes)
    ctx.result.jobs = outcomes
    for outcome in outcomes:
        log.info("job %s: %s (%s)", outcome.job, outcome.status, outcome.message)
    return outcomes


def _timed(run: Callable[[], JobOutcome]) -> JobOutcome:
    started = time.perf_counter()
    outcome = run()
    outcome.details.setdefault("seconds", round(time.perf_counter() - started, 2))
    return outcome


def _fingerprint(ctx: _Context, job: str, *, with_tables: bool = True) -> str:
    return job_fingerprint(
        ctx.memory,
        job,
        config_dir=Path(ctx.settings.mappings.dir),
        now=ctx.now,
        model_version=_model_version(ctx) if job == "scoring" else None,
        merge_state=merge_inputs_state(ctx.mirror, Path(ctx.settings.mappings.dir) / "duplicates.toml")
        if job == "duplicates"
        else None,
        with_tables=with_tables,
    )


def _scoring(ctx: _Context, fingerprint: str) -> JobOutcome:
    leads = _frame(ctx, "lead")
    held_scores = leads.set_index("lead_id")["out_score"] if "out_score" in leads else None
    held_trends = leads.set_index("lead_id")["out_trend"] if "out_trend" in leads else None
    # Only the records changed since scoring last computed are hashed (an echo costs the echo).
    tables = job_tables(ctx.memory, "scoring")
    unchanged, rows = ctx.memory.check_rows("scoring", tables)
    basis = _fingerprint(ctx, "scoring", with_tables=False)
    same = ctx.memory.reuse("scoring", fingerprint, basis if unchanged else None)
    if same is not None and "lead" in same.results:
        # The leads came back from Dynamics unchanged in what scoring reads (our own write-back,
        # or an edit of a column no rule uses): the scores stand; the trend follows what
        # Dynamics holds now, as a recompute's would.
        results = same.results["lead"].copy()
        results["trend"] = score_trend(results["score"], held_scores, held_trends)
        same.results = {**same.results, "lead": results}
        ctx.memory.stage("scoring", fingerprint, same, ctx.memory.caches("scoring"), content=basis, rows=rows)
        return same
    activities = _entity(ctx, "activity")
    caches = ctx.memory.caches("scoring")
    try:
        if not leads.empty and "status" not in leads:
            raise JobError("the leads have no `status` field; map it in lead.toml (statecode)")
        outcome = compute.run_scoring(
            leads,
            activities,
            rules_path=Path(ctx.settings.mappings.dir) / "scoring.toml",
            model_dir=_model_dir(ctx),
            now=ctx.now,
            held_scores=held_scores,
            held_trends=held_trends,
            caches=caches,
            kept=ctx.memory.previous_results("scoring").get("lead"),
        )
    except DvsyncError as exc:
        outcome = _job_failed("scoring", exc)
    # Scoring may have trained and promoted a new model: the state is of that model.
    after = _fingerprint(ctx, "scoring")
    basis = _fingerprint(ctx, "scoring", with_tables=False)
    rows = rows or full_rows(ctx.mirror, tables, {"lead": leads})
    ctx.memory.stage("scoring", after, outcome, caches, content=basis, rows=rows)
    return outcome


def _duplicates(ctx: _Context, fingerprint: str) -> JobOutcome:
    caches = ctx.memory.caches("duplicates")
    config_path = Path(ctx.settings.mappings.dir) / "duplicates.toml"
    state = merge_inputs_state(ctx.mirror, config_path)
    tables = job_tables(ctx.memory, "duplicates", state)
    unchanged, rows = ctx.memory.check_rows("duplicates", tables)
    basis = _fingerprint(ctx, "duplicates", with_tables=False)
    same = ctx.memory.reuse("duplicates", fingerprint, basis if unchanged else None)
    if same is not None and masters_held(ctx.mirror, same, _held_masters(ctx)):
        # The records came back from Dynamics unchanged in what the job reads (our own write-back,
        # or an edit of a column it does not compare) and hold the masters it suggested.
        ctx.memory.stage("duplicates", fingerprint, same, caches, content=basis, rows=rows)
        return same
    frames = {t: _frame(ctx, t) for t in ("lead", "contact", "account")}
    read = dict(frames)
    try:
        # Merged records out, "not a duplicate" pairs kept apart (the fingerprint covers both).
        frames, ruled = merge_inputs(ctx.mirror, frames, config_path)
        outcome = compute.run_duplicates(
            frames, config_path=config_path, caches=caches, now=ctx.now, ruled=ruled
        )
    except DvsyncError as exc:
        outcome = _job_failed("duplicates", exc)
    rows = rows or full_rows(ctx.mirror, tables, read)
    ctx.memory.stage("duplicates", fingerprint, outcome, caches, content=basis, rows=rows)
    return outcome


def _held_masters(ctx: _Context) -> dict[str, pd.DataFrame]:
    """Each duplicates table's ids and the masters Dynamics holds, without reading whole tables
    (the leads are read in full for lead handling anyway)."""
    held = {}
    layouts = ctx.mirror.layouts()
    for table in ("lead", "contact", "account"):
        if ("table", table) in ctx.frames:
            held[table] = _frame(ctx, table)
        elif table in layouts:
            columns = [c for c in ("out_suggested_master",) if c in layouts[table].columns]
            held[table] = ctx.mirror.read_frame(table, columns)
    return held


def _customer_value(ctx: _Context, jobs: Sequence[str], fingerprints: Mapping[str, str]) -> list[JobOutcome]:
    bases = {j: {"basis": _fingerprint(ctx, j, with_tables=False)} for j in jobs}
    # Only the orders changed since each job computed are read and hashed, as for scoring (reading
    # and hashing all of them to find that nothing RFM/CLV read changed cost ~1 s a run).
    tables = job_tables(ctx.memory, jobs[0])
    checked = {j: ctx.memory.check_rows(j, tables) for j in jobs}
    same = {
        j: ctx.memory.reuse(j, fingerprints[j], bases[j]["basis"] if checked[j][0] else None) for j in jobs
    }
    if all(outcome is not None for outcome in same.values()):
        # The orders came back unchanged in what RFM and CLV read: their results stand.
        for job, outcome in same.items():
            basis = bases[job]["basis"]
            ctx.memory.stage(job, fingerprints[job], outcome, bases[job], content=basis, rows=checked[job][1])  # type: ignore[arg-type]
        return list(same.values())  # type: ignore[arg-type]
    orders = _entity(ctx, "order")
    orders = orders if orders is not None else pd.DataFrame()
    if ctx.settings.jobs.customer_value.recompute == "nightly":
        deferred = nightly_deferral(ctx.memory, {j: bases[j]["basis"] for j in jobs})
        if deferred is not None:
            return deferred
    try:
        computed = compute_value.customer_value_jobs(
            orders,
            set(jobs),
            config_path=Path(ctx.settings.mappings.dir) / "customer_value.toml",
            as_of=ctx.now,
        )
    except DvsyncError as exc:
        computed = [_job_failed(j, exc) for j in jobs]
    # The orders as read are hashed from memory when they are one table (read_entity reads each
    # table in full, as full_rows would); the digests are those of the values computed from.
    read = {tables[0]: orders} if len(tables) == 1 and not orders.empty else None
    for outcome in computed:
        job = outcome.job
        rows = checked[job][1] or full_rows(ctx.mirror, tables, read)
        ctx.memory.stage(job, fingerprints[job], outcome, bases[job], content=bases[job]["basis"], rows=rows)
    return computed


def _model_version(ctx: _Context) -> str | None:
    from jobs.leads.scoring.store import active_version

    try:
        return active_version(_model_dir(ctx))
    except DvsyncError:
        return None


def _model_dir(ctx: _Context) -> Path:
    path = ctx.mirror.path
    base = path.parent if path is not None else Path(".dvsync")
    return base / "models" / "lead-scoring"


# ------------------------------------------------------------------------------------ 4. plan


def _plan(ctx: _Context, outcomes: Sequence[JobOutcome]) -> pd.DataFrame:
    failed = {t.table for t in ctx.result.sync.tables if not t.ok} if ctx.result.sync else set()
    for table in sorted(failed & {o.table for o in ctx.mappings.outputs}):
        # Its mirror may be stale: writing now could overwrite a change made since. Next run.
        log.warning("%s: not written this run because its sync failed", table)
    targets = sorted({o.table for o in ctx.mappings.outputs if o.enabled} - failed)
    current = _current(ctx.mirror, ctx.mappings, targets, read=ctx.frames)
    missing = [
        o.logical_name
        for o in ctx.mappings.outputs
        if o.enabled and o.table in current and o.mirror_column not in current[o.table].columns
    ]
    if missing:
        ctx.result.not_provisioned = missing
        log.warning(
            "%d output column(s) do not exist in Dynamics, not written (%s...); run `dvsync provision`",
            len(missing),
            ", ".join(missing[:3]),
        )
    parts = [empty_plan()]
    # A part whose inputs are those of an empty plan is not planned again (plan_memo.py).
    memo = PlanMemo(ctx.mirror, enabled=ctx.memory.enabled)
    for outcome in outcomes:
        for table, frame in outcome.results.items():
            if table in current:
                planned = memo.plan(
                    outcome.job, table, frame, current[table], ctx.mappings.outputs_for(table)
                )
                if planned is not None:
                    parts.append(planned)
    memo.save()
    plan = pd.concat(parts, ignore_index=True)
    plan = add_companions(plan, current, ctx.mappings.outputs, ctx.now)
    earlier = ctx.mirror.plan(status=list(OPEN_STATUSES))
    earlier = earlier[(earlier["run_id"] != ctx.result.run_id) & earlier["table_name"].isin(list(current))]
    plan = lead_handling.add_assignments(plan, outcomes, current)  # lead routing: ownerid writes
    # Only this run's values are written: earlier unwritten items of results it computed are
    # retired (re-planned above from current results); the others wait for a run that computes them.
    computed = {
        (table, str(result))
        for outcome in outcomes
        for table, frame in outcome.results.items()
        for result in [*frame.columns, *(COMPANION_RESULTS if not frame.empty else ())]
    } | lead_handling.replanned_results(outcomes)
    ctx._earlier = carry_forward(earlier, computed)  # type: ignore[attr-defined]
    for table, items in plan.groupby("table_name"):
        ctx.result.table(str(table))["planned"] = int(items["record_id"].nunique())
    ctx.result.plan = plan
    log.info("plan: %d value(s) for %d record(s)", len(plan), plan["record_id"].nunique() if len(plan) else 0)
    return plan


def _write_csv(ctx: _Context, plan: pd.DataFrame, path: str | Path | None) -> None:
    if path is None:
        base = ctx.mirror.path.parent if ctx.mirror.path is not None else Path(".dvsync")
        path = base / "plans" / f"run-{ctx.result.run_id}.csv"
    path = Path(path)
    private_dir(path.parent)
    private_file(path)
    plan.to_csv(path, index=False)
    ctx.result.plan_csv = path


def _store_plan(ctx: _Context, plan: pd.DataFrame, outcomes: Sequence[JobOutcome]) -> None:
    """Store this run's plan and results, and retire the earlier items it carried or settled."""
    earlier: pd.DataFrame = getattr(ctx, "_earlier", pd.DataFrame())
    with ctx.mirror.transaction():
        ctx.mirror.save_plan(ctx.result.run_id, plan)
        if not earlier.empty:
            for (run_id, table), items in earlier.groupby(["run_id", "table_name"]):
                ctx.mirror.mark_plan(
                    int(run_id),
                    str(table),
                    zip(items["record_id"], items["column_name"], strict=True),
                    "superseded",
                    error=f"re-planned by run {ctx.result.run_id}",
                )
        _save_results(ctx, outcomes)


def _save_results(ctx: _Context, outcomes: Sequence[JobOutcome]) -> None:
    """Keep the jobs' results (the last value per record, rewritten where it changed) and state."""
    with ctx.mirror.transaction():
        for outcome in outcomes:
            if ctx.memory.partial(outcome.job):
                # Spark sends back the changed records only: keep them, drop no other value.
                for table, frame in outcome.results.items():
                    if not frame.empty:
                        ctx.mirror.save_results(ctx.result.run_id, table, frame, partial=True)
                continue
            if not ctx.memory.computed(outcome.job) or outcome.job == lead_handling.JOB:
                # Reused, skipped or failed: the values already kept stand. Lead handling's are
                # not kept here (only in its job state): nothing reads them back.
                continue
            previous = ctx.memory.previous_results(outcome.job)
            for table, frame in outcome.results.items():
                if not frame.empty:
                    ctx.mirror.save_results(ctx.result.run_id, table, frame, previous=previous.get(table))
        ctx.memory.commit()


# ------------------------------------------------------------------------------------ 5. write back


def _entity_set(ctx: _Context, table: str) -> str:
    mapping = ctx.mappings.tables[table]
    return mapping.entity_set or ctx.client.get_table(mapping.table).entity_set_name


def _write_back(ctx: _Context, plan: pd.DataFrame) -> None:
    writeback = ctx.settings.writeback
    plan, queued = routing_queue.split_queue_items(plan)  # routing to a queue: AddToQueue, not PATCH
    for table, items in plan.groupby("table_name", sort=True):
        if ctx.stop.is_set():
            raise RunStopped  # between tables: the next run writes what is left
        _write_table(ctx, str(table), items, writeback.batch_size, writeback.max_parallel)
    if not queued.empty and not ctx.stop.is_set():
        keys = list(zip(queued["record_id"], queued["column_name"], strict=True))
        ctx.mirror.mark_plan(ctx.result.run_id, "lead", keys, "sending")
        outcomes = routing_queue.add_to_queues(ctx.client, queued, batch_size=writeback.batch_size)
        _record_chunk(ctx, "lead", queued, outcomes)
        ctx.result.table("lead")["write_requests"] += math.ceil(len(queued) / writeback.batch_size)


def _write_table(
    ctx: _Context, table: str, items: pd.DataFrame, batch_size: int, max_parallel: int | None
) -> None:
    entity_set = _entity_set(ctx, table)
    counters = ctx.result.table(table)
    records = items["record_id"].drop_duplicates().tolist()
    # One PATCH body per record with all its planned columns, sent under If-Match on the etag the
    # sync read (what the plan was made from), with the values the plan expected: a replay after a
    # lost answer is then a no-op, and a record changed since is read back, never overwritten blind.
    bodies: dict[str, dict[str, Any]] = {}
    expected: dict[str, dict[str, Any]] = {}
    for record_id, column, value, old in zip(
        items["record_id"], items["column_name"], items["new_value"], items["old_value"], strict=True
    ):
        # A cleared value can come back from the plan frame as NaN; Dataverse clears with null.
        bodies.setdefault(record_id, {})[column] = (
            None if isinstance(value, float) and math.isnan(value) else value
        )
        expected.setdefault(record_id, {})[column] = old
    etags = _etags(ctx, table)
    total = len(records)
    done = 0
    ctx.meter.label = table
    try:
        while done < total:
            dop = getattr(getattr(ctx.client, "throttle_state", None), "dop_hint", None) or 4
            workers = max(1, min(dop, max_parallel or 52))
            chunk_ids = records[done : done + batch_size * workers]
            chunk = items[items["record_id"].isin(chunk_ids)]
            keys = list(zip(chunk["record_id"], chunk["column_name"], strict=True))
            ctx.mirror.mark_plan(ctx.result.run_id, table, keys, "sending")
            # An owner a person changed since the sync yields: not overwritten, the rest is written.
            yielding = lead_handling.YIELDING_COLUMNS
            updates = [
                (rid, bodies[rid], etags.get(str(rid).lower()), expected[rid], yielding) for rid in chunk_ids
            ]
            outcomes = ctx.client.update_many(
                entity_set, updates, batch_size=batch_size, max_workers=max_parallel
            )
            ctx.faults.hit("write-sent")
            _record_chunk(ctx, table, chunk, outcomes)
            counters["write_requests"] += math.ceil(len(chunk_ids) / batch_size)
            done += len(chunk_ids)
            log.debug("%s: %d of %d record(s) written back", table, done, total)
            ctx.faults.hit("write-recorded")
            if ctx.progress is not None:
                ctx.progress.write(table, done=done, total=total)
            if ctx.stop.is_set() and done < total:
                raise RunStopped
    finally:
        ctx.meter.label = None


def _etags(ctx: _Context, table: str) -> dict[str, str]:
    """Record id -> the etag the sync read (None-free), for the write's ``If-Match``."""
    return ctx.mirror.etags(table)


def _record_chunk(ctx: _Context, table: str, chunk: pd.DataFrame, outcomes: Sequence[Any]) -> None:
    """Mark, audit and mirror one chunk's outcomes in one transaction."""
    ok = {str(o.id).lower() for o in outcomes if o.ok}
    messages = {str(o.id).lower(): (o.message or f"HTTP {o.status}") for o in outcomes if not o.ok}
    yielded = {(str(o.id).lower(), c) for o in outcomes if o.ok for c in getattr(o, "skipped", ())}
    chunk = chunk.assign(record_id=chunk["record_id"].astype(str).str.lower())
    keys = pd.Series(list(zip(chunk["record_id"], chunk["column_name"], strict=True)), index=chunk.index)
    left = keys.isin(yielded).to_numpy(dtype=bool)
    skipped = chunk[left].assign(
        error=[lead_handling.yielded_message(c) for c in chunk.loc[left, "column_name"]]
    )
    chunk = chunk[~left]
    written = chunk[chunk["record_id"].isin(ok)]
    failed = chunk[~chunk["record_id"].isin(ok)]
    run_id = ctx.result.run_id
    layout = ctx.mirror.layout(table)
    with ctx.mirror.transaction():
        if not written.empty:
            ctx.mirror.mark_plan(
                run_id, table, zip(written["record_id"], written["column_name"], strict=True), "written"
            )
            for result, values in written.groupby("result"):
                column = f"out_{result}"
                if column in layout.columns:
                    frame = pd.DataFrame(
                        {layout.id_column: values["record_id"].to_numpy(), column: list(values["new_value"])}
                    )
                    ctx.mirror.set_values(table, frame)
        for message, group in skipped.groupby("error"):
            ctx.mirror.mark_plan(
                run_id,
                table,
                zip(group["record_id"], group["column_name"], strict=True),
                "skipped",
                error=message,
            )
        for message, group in failed.groupby(failed["record_id"].map(messages).fillna("no response")):
            ctx.mirror.mark_plan(
                run_id,
                table,
                zip(group["record_id"], group["column_name"], strict=True),
                "failed",
                error=message,
            )
        audit = pd.concat(
            [
                written.assign(outcome="written", error=None),
                failed.assign(outcome="failed", error=failed["record_id"].map(messages)),
                skipped.assign(outcome="skipped"),
            ],
            ignore_index=True,
        )
        ctx.mirror.record_audit(run_id, table, audit)
        written_records = written["record_id"].nunique()
        failed_records = failed["record_id"].nunique()
        ctx.mirror.record_run_table(run_id, table, written=written_records, failed=failed_records)
    counters = ctx.result.table(table)
    counters["written"] += written_records
    counters["failed"] += failed_records
    if not skipped.empty:
        counters["skipped"] = counters.get("skipped", 0) + int(skipped["record_id"].nunique())
        ctx.result.skipped.extend(
            {"table": table, "record_id": r, "column": c, "message": m}
            for r, c, m in zip(skipped["record_id"], skipped["column_name"], skipped["error"], strict=True)
        )
        log.info(
            "%s: %d value(s) left as Dynamics has them: changed there since the sync", table, len(skipped)
        )
    for record_id, group in failed.groupby("record_id"):
        ctx.result.failures.append(
            {
                "table": table,
                "record_id": record_id,
                "columns": list(group["column_name"]),
                "message": messages.get(record_id, "no response"),
            }
        )
    if failed_records:
        log.warning("%s: %d record(s) could not be written; they stay pending", table, failed_records)
