"""Pull the mapped Dataverse tables into the mirror, incrementally and crash-safe.

Per table (``mappings/<name>.toml``):

- **Change tracking on** (``delta`` mode): the first sync reads everything with
  ``Prefer: odata.track-changes``; later syncs replay the stored delta link and apply creates,
  updates and deletions. An expired delta token (``0x80044352``) starts a full re-read
  automatically; a full read ends by removing the mirror rows it did not see (records deleted
  while the token was stale).
- **Change tracking off** (``window`` mode): records with ``modifiedon`` at or after the stored
  watermark minus an overlap (clock skew between Dataverse's servers) are read ordered by
  ``modifiedon``, de-duplicated by id; an id-only scan then removes rows deleted in Dynamics.
- Each page is committed together with the table's state (the next link, or the watermark) in
  one transaction. A sync killed between pages resumes from the next link of the last committed
  page: nothing committed is read again, and nothing is lost.
- A mapping change (another column, another type, a new output column) changes the table's
  fingerprint and triggers a full re-read, so no row keeps values read under the old mapping.

The report gives, per table: records read, rows upserted and deleted, pages, mode and duration.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pandas as pd

from connector.errors import (
    AuthError,
    ChangeTokenExpiredError,
    ChangeTrackingDisabledError,
    EndpointError,
    FatalApiError,
    RetriableError,
)
from connector.query import condition
from core.errors import ConfigError, DvsyncError
from jobs.service.mapping import (
    MappingErrors,
    MappingSet,
    OutputColumn,
    TableMapping,
    TableReader,
    validate_against_org,
)
from jobs.service.mirror import Mirror, SyncState, TableLayout, utc_text
from jobs.service.stopping import StopNow

__all__ = [
    "DEFAULT_WINDOW_OVERLAP",
    "ProgressCallback",
    "SyncReport",
    "SyncResult",
    "describe",
    "sync_table",
    "sync_tables",
]

log = logging.getLogger(__name__)

# Dataverse's servers stamp modifiedon with their own clocks; records committed a little late can
# carry a modifiedon just before the watermark. Five minutes covers observed skew with margin, and
# re-reading those records costs little because upserts are idempotent.
DEFAULT_WINDOW_OVERLAP = timedelta(minutes=5)


class ProgressCallback(Protocol):
    """Called after each committed page with the table and the running totals."""

    def __call__(self, table: str, *, read: int, pages: int, done: bool) -> None: ...


class _Client(Protocol):
    def get_table(self, logical_name: str) -> Any: ...

    def iter_change_pages(
        self,
        entity_set: str,
        select: Sequence[str],
        *,
        delta_link: str | None = None,
        resume_link: str | None = None,
        page_size: int = 5000,
        annotations: Sequence[str] | None = None,
    ) -> Iterator[Any]: ...

    def iter_records(
        self,
        entity_set: str,
        select: Sequence[str],
        filter: str | None = None,
        orderby: str | Sequence[str] | None = None,
        page_size: int = 5000,
        formatted_values: bool = False,
        annotations: Sequence[str] | None = None,
    ) -> Iterator[dict[str, Any]]: ...


@dataclass
class SyncReport:
    """What one table's sync did.

    Attributes:
        table: the mirror table.
        mode: ``delta``, ``full`` (a full read with change tracking), ``window`` or ``window-full``.
        read: records received (deleted-record entries not included).
        upserted: rows inserted or updated in the mirror.
        deleted: rows removed from the mirror (deletions, and rows a full read did not see).
        pages: pages committed.
        duration_s: wall time in seconds.
        resumed: the sync continued an interrupted read.
        reason: why a full read happened (first sync, --full, mapping changed, token expired...).
        error: the failure's message, when the table failed; the other tables still ran.
        problems: values that could not be read (stored empty), each with its record id.
    """

    table: str
    mode: str = ""
    read: int = 0
    upserted: int = 0
    deleted: int = 0
    pages: int = 0
    duration_s: float = 0.0
    resumed: bool = False
    reason: str | None = None
    error: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the table synced without error."""
        return self.error is None


@dataclass
class SyncResult:
    """The reports of one ``dvsync sync`` and the run it was recorded as."""

    run_id: int
    tables: list[SyncReport] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every table synced."""
        return all(t.ok for t in self.tables)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary (``dvsync sync --json``)."""
        return {
            "run_id": self.run_id,
            "ok": self.ok,
            "tables": {t.table: {k: v for k, v in asdict(t).items() if k != "table"} for t in self.tables},
        }


def _layout(reader: TableReader) -> TableLayout:
    mapping = reader.mapping
    return TableLayout(
        name=mapping.name,
        entity=mapping.entity,
        source_table=mapping.table,
        id_column=mapping.id_column,
        columns=reader.columns,
    )


def sync_tables(
    client: _Client,
    mirror: Mirror,
    mappings: MappingSet,
    *,
    tables: Iterable[str] | None = None,
    full: bool = False,
    page_size: int = 5000,
    window_overlap: timedelta = DEFAULT_WINDOW_OVERLAP,
    run_id: int | None = None,
    progress: ProgressCallback | None = None,
    clock: Callable[[], datetime] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> SyncResult:
    """Sync the enabled (or the named) tables into the mirror, recording a run.

    Args:
        client: a DataverseClient (or any object with ``get_table``, ``iter_change_pages`` and
            ``iter_records``).
        mirror: the open mirror.
        mappings: the validated mapping set.
        tables: mirror table names or Dataverse logical names; default every enabled table.
        full: re-read every table in full (rows not seen are removed).
        page_size: records per page (``Prefer: odata.maxpagesize``).
        window_overlap: how far before the watermark a ``modifiedon`` window starts.
        run_id: record into this run (the pipeline's); by default a ``sync`` run is started and
            finished here.
        progress: called after each committed page.
        clock: the current aware time (tests inject one).
        monotonic: a monotonic clock for durations.

    Returns:
        The run id and one report per table; a table that failed carries its error and the
        others still ran.

    Raises:
        ConfigError: an unknown table name.
        AuthError: no token (every table would fail the same way).
    """
    chosen = mappings.enabled_tables(tables)
    own_run = run_id is None
    if own_run:
        run_id = mirror.start_run("sync")
    assert run_id is not None
    result = SyncResult(run_id=run_id)
    unavailable: str | None = None
    try:
        for mapping in chosen:
            outputs = mappings.outputs_for(mapping.name)
            report = SyncReport(table=mapping.name)
            if unavailable:
                report.error = f"not attempted: {unavailable}"
            else:
                log.info("syncing %s", mapping.name)
                try:
                    sync_table(
                        client,
                        mirror,
                        mapping,
                        outputs,
                        full=full,
                        page_size=page_size,
                        window_overlap=window_overlap,
                        progress=progress,
                        clock=clock,
                        monotonic=monotonic,
                        report=report,
                    )
                except (AuthError, EndpointError, ConfigError):
                    # Every table would fail the same way, or a mapping must be fixed (exit code 2
                    # from every command): say it once rather than as a failed table.
                    raise
                except DvsyncError as exc:
                    # The pages committed before the failure stay (and count); the caller shows the
                    # report, so the log is only the debug trail.
                    report.error = str(exc)
                    log.info("sync of %s failed: %s", mapping.name, exc)
                    if isinstance(exc, RetriableError):
                        # The retry policy already spent its budget: Dataverse is unreachable or
                        # overloaded, and the other tables would wait out the same budget in vain.
                        unavailable = f"Dataverse did not answer while syncing {mapping.name}"
            result.tables.append(report)
            mirror.record_run_table(
                run_id,
                mapping.name,
                mode=report.mode or None,
                read=report.read,
                upserted=report.upserted,
                deleted=report.deleted,
                pages=report.pages,
                failed=0 if report.ok else 1,
                duration_s=report.duration_s,
            )
    except BaseException as exc:
        if own_run:
            stopped = isinstance(exc, KeyboardInterrupt | SystemExit | StopNow)
            outcome = "interrupted" if stopped else "failed"
            if isinstance(exc, StopNow):
                mirror.recover_after_stop()
                exc = StopNow("stopped by a signal")
            mirror.finish_run(run_id, outcome, stats=result.as_dict(), error=str(exc) or type(exc).__name__)
        raise
    if own_run:
        failed = [t for t in result.tables if not t.ok]
        mirror.finish_run(
            run_id,
            "ok" if not failed else "failed",
            stats=result.as_dict(),
            error="; ".join(f"{t.table}: {t.error}" for t in failed) or None,
        )
    return result


def sync_table(
    client: _Client,
    mirror: Mirror,
    mapping: TableMapping,
    outputs: Sequence[OutputColumn] = (),
    *,
    full: bool = False,
    page_size: int = 5000,
    window_overlap: timedelta = DEFAULT_WINDOW_OVERLAP,
    progress: ProgressCallback | None = None,
    clock: Callable[[], datetime] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    report: SyncReport | None = None,
) -> SyncReport:
    """Sync one table into the mirror (see the module docstring for the modes).

    ``report``, when given, is filled in as the sync goes, so the caller keeps the counts of the
    pages committed before a failure.

    Raises:
        DataverseError: the read failed; every page committed before the failure stays, and the
            next sync resumes after it.
        ConfigError: the org's data does not fit the mapping (names the file, line and key).
    """
    started = monotonic()
    report = report if report is not None else SyncReport(table=mapping.name)
    try:
        _run_table(client, mirror, mapping, outputs, report, full, page_size, window_overlap, progress, clock)
    finally:
        report.duration_s = round(monotonic() - started, 3)
    return report


def _run_table(
    client: _Client,
    mirror: Mirror,
    mapping: TableMapping,
    outputs: Sequence[OutputColumn],
    report: SyncReport,
    full: bool,
    page_size: int,
    window_overlap: timedelta,
    progress: ProgressCallback | None,
    clock: Callable[[], datetime] | None,
) -> None:
    definition = client.get_table(mapping.table)
    # A column the org lacks would fail the read with a bare 400; name the file, line and the
    # closest real column instead (what `dvsync check` reports).
    problems, _ = validate_against_org(mapping, definition, check_values=False)
    if problems:
        raise MappingErrors(problems)
    reader = TableReader.bind(mapping, definition, outputs)
    mirror.ensure_table(_layout(reader))
    state = mirror.sync_state(mapping.name)
    run = _TableSync(
        client, mirror, reader, state, report, page_size, progress, clock or (lambda: datetime.now(UTC))
    )
    reason = None
    if full:
        reason = "--full"
    elif state.fingerprint is None:
        reason = "first sync"
    elif state.fingerprint != reader.fingerprint:
        reason = "the mapping changed"
    if reason:
        run.reset()
    try:
        if reader.change_tracking:
            before = replace(run.state)
            try:
                run.changes(reason)
            except ChangeTrackingDisabledError:
                # The metadata said on, the table says off: undo what the attempt stored, so that a
                # table already read by a window continues incrementally instead of in full.
                log.warning("%s: change tracking is off; reading a modifiedon window", mapping.table)
                run.state = replace(before)
                mirror.save_sync_state(run.state)
                report.mode, report.reason = "", None
                if before.mode != "window":
                    reason = reason or "change tracking is off"
                run.window(reason, window_overlap)
        else:
            run.window(reason, window_overlap)
    except DvsyncError as exc:
        run.fail(exc)
        raise


class _TableSync:
    """The state machine of one table's sync; every page commits data and state together."""

    def __init__(
        self,
        client: _Client,
        mirror: Mirror,
        reader: TableReader,
        state: SyncState,
        report: SyncReport,
        page_size: int,
        progress: ProgressCallback | None,
        clock: Callable[[], datetime],
    ) -> None:
        self.client = client
        self.mirror = mirror
        self.reader = reader
        self.state = state
        self.report = report
        self.page_size = page_size
        self.progress = progress
        self.clock = clock
        self.name = reader.mapping.name

    def now(self) -> str:
        return utc_text(self.clock())  # type: ignore[return-value]

    def reset(self) -> None:
        """Forget links and watermark: the next read is a full one."""
        self.state.phase = None
        self.state.next_link = None
        self.state.delta_link = None
        self.state.watermark = None

    def fail(self, exc: BaseException) -> None:
        # The failed page rolled back; record the error beside the state of the last good page.
        self.state.last_error = str(exc)[:2000]
        saved = self.mirror.sync_state(self.name)
        saved.last_error = self.state.last_error
        self.mirror.save_sync_state(saved)

    def _start_full(self, mode: str) -> None:
        self.state.generation += 1
        self.state.phase = "full"
        self.state.mode = mode
        self.state.next_link = None
        self.state.watermark = None
        self.state.fingerprint = self.reader.fingerprint
        self.mirror.save_sync_state(self.state)

    def _commit(
        self, records: list[dict[str, Any]], deleted_ids: Sequence[str], update_state: Callable[[], int]
    ) -> None:
        frame = self.reader.frame(records, self.report.problems)
        with self.mirror.transaction():
            upserted = self.mirror.upsert(self.name, frame, generation=self.state.generation)
            deleted = self.mirror.delete(self.name, deleted_ids)
            deleted += update_state()
            self.mirror.save_sync_state(self.state)
        self.report.read += len(records)
        self.report.upserted += upserted
        self.report.deleted += deleted
        self.report.pages += 1
        if self.progress:
            self.progress(self.name, read=self.report.read, pages=self.report.pages, done=False)

    # ------------------------------------------------------------------ change tracking

    def changes(self, reason: str | None) -> None:
        state = self.state
        if state.mode != "delta" and not reason:
            reason = "switching to change tracking"
            self.reset()
        if state.phase and state.next_link:
            self.report.resumed = True
            try:
                self._replay(state.phase, resume_link=state.next_link)
                return
            except ChangeTokenExpiredError:
                reason = "the delta token expired"
            except ChangeTrackingDisabledError:
                raise
            except FatalApiError as exc:
                # The stored next link is no longer accepted (e.g. the paging cookie aged out).
                log.warning(
                    "%s: cannot resume from the stored link (%s); starting the read again", self.name, exc
                )
                self.report.resumed = False
                if state.phase == "full" or not state.delta_link:
                    reason = reason or "the resume link was refused"
            state.next_link = None
        if not reason and state.delta_link:
            try:
                self._replay("delta", delta_link=state.delta_link)
                return
            except ChangeTokenExpiredError:
                reason = "the delta token expired"
                log.info("%s: delta token expired; re-reading the table in full", self.name)
        self._start_full("delta")
        self.report.reason = reason or "no delta link"
        self._replay("full")

    def _replay(self, phase: str, *, delta_link: str | None = None, resume_link: str | None = None) -> None:
        state = self.state
        if phase == "delta" and not resume_link:
            state.phase = "delta"
        self.report.mode = "full" if phase == "full" else "delta"
        pages = self.client.iter_change_pages(
            self.reader.entity_set,
            self.reader.select,
            delta_link=delta_link,
            resume_link=resume_link,
            page_size=self.page_size,
            # The Prefer header, not the link, carries annotations: ask on resumes and deltas too.
            annotations=self.reader.annotations or None,
        )
        finished = False
        for page in pages:

            def update_state(page: Any = page) -> int:
                nonlocal finished
                removed = 0
                if page.next_link:
                    state.phase = phase
                    state.next_link = page.next_link
                    return 0
                if phase == "full":
                    removed = self.mirror.delete_older_generations(self.name, state.generation)
                    state.last_full_sync = self.now()
                state.mode = "delta"
                state.phase = None
                state.next_link = None
                state.delta_link = page.delta_link
                state.fingerprint = self.reader.fingerprint
                state.last_success = self.now()
                state.last_error = None
                finished = True
                return removed

            self._commit(list(page.records), list(page.deleted_ids), update_state)
        if not finished:
            raise FatalApiError(
                f"the change-tracking read of {self.reader.entity_set} ended without a delta link"
            )
        if self.progress:
            self.progress(self.name, read=self.report.read, pages=self.report.pages, done=True)

    # ------------------------------------------------------------------ modifiedon window

    def window(self, reason: str | None, overlap: timedelta) -> None:
        state = self.state
        if state.mode != "window":
            reason = reason or "switching to a modifiedon window"
            self.reset()
        full = bool(reason) or state.watermark is None or state.phase == "full"
        if reason or (state.phase != "full" and state.watermark is None):
            self._start_full("window")
            self.report.reason = reason or "no watermark"
        elif state.phase == "full":
            self.report.resumed = True
        self.report.mode = "window-full" if full else "window"
        start = None
        if state.watermark:
            start = pd.Timestamp(state.watermark).to_pydatetime() - overlap
        pk = self.reader.primary_id
        records = self.client.iter_records(
            self.reader.entity_set,
            self.reader.select,
            filter=condition("modifiedon", "ge", start) if start else None,
            orderby=["modifiedon asc", f"{pk} asc"],
            page_size=self.page_size,
            annotations=self.reader.annotations or None,
        )
        for chunk in _chunks(records, self.page_size):

            def update_state(chunk: list[dict[str, Any]] = chunk) -> int:
                stamps = pd.to_datetime(
                    pd.Series([r.get("modifiedon") for r in chunk]), utc=True, format="ISO8601"
                )
                latest = stamps.max()
                if pd.notna(latest):
                    current = pd.Timestamp(state.watermark) if state.watermark else None
                    if current is None or latest > current:
                        state.watermark = utc_text(latest)
                return 0

            self._commit(chunk, (), update_state)

        def finish() -> int:
            removed = 0
            if state.phase == "full":
                removed = self.mirror.delete_older_generations(self.name, state.generation)
                state.last_full_sync = self.now()
            state.mode = "window"
            state.phase = None
            state.fingerprint = self.reader.fingerprint
            state.last_success = self.now()
            state.last_error = None
            return removed

        removed = 0
        if not full:
            # A modifiedon window cannot see deletions: compare the ids that exist with the mirror's.
            existing = {
                str(r[pk]).lower()
                for r in self.client.iter_records(self.reader.entity_set, [pk], page_size=self.page_size)
            }
            gone = self.mirror.ids(self.name) - existing
            with self.mirror.transaction():
                removed = self.mirror.delete(self.name, gone)
                removed += finish()
                self.mirror.save_sync_state(state)
        else:
            with self.mirror.transaction():
                removed = finish()
                self.mirror.save_sync_state(state)
        self.report.deleted += removed
        if self.progress:
            self.progress(self.name, read=self.report.read, pages=self.report.pages, done=True)


def _chunks(records: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for record in records:
        chunk.append(record)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def describe(result: SyncResult) -> list[dict[str, Any]]:
    """Rows for a summary table: one per table, in sync order."""
    return [
        {
            "table": t.table,
            "mode": t.mode or "-",
            "read": t.read,
            "upserted": t.upserted,
            "deleted": t.deleted,
            "pages": t.pages,
            "seconds": t.duration_s,
            "note": "FAILED (see below)"
            if t.error
            else (("resumed; " if t.resumed else "") + (t.reason or "")).strip("; "),
        }
        for t in result.tables
    ]
