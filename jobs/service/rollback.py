"""Undo a run's write-back: restore the values Dynamics held before it, unless someone changed them since.

For every value a run wrote (its ``written`` audit entries), the affected tables are synced first
so the mirror shows what Dynamics holds now. Per value:

- still what the run wrote, and no later run wrote it: *restored* to the old value;
- already the old value (an earlier rollback of this run was killed after sending it): recorded
  as restored, not sent again;
- rewritten by a later run (or a rollback of one), or changed in Dynamics (a person, a workflow):
  *refused* and listed, never overwritten, unless ``force`` is given. Restoring it would blank
  another run's or a person's value.

A run is rolled back once: a value an earlier rollback of the same run restored is never touched
again, so repeating ``dvsync rollback RUN_ID`` resumes a rollback that was killed or that refused
values (for ``--force``), and says so when nothing is left to do.

Crash-safe: the restores are sent in chunks and each chunk is audited, with the mirror updated,
in one transaction as soon as its answer is in; a rollback killed at any point resumes without
``--force`` (see the second bullet). The writes carry the etag the sync read, so a lost answer is
read back instead of replayed (:mod:`connector.writeback`).

The rollback is itself a run (kind ``rollback``) that records the run it undoes from its start:
every restore, refusal and failure is audited under it, so a rollback can be rolled back too.
Its outcome is ``ok`` (everything restored), ``partial`` (values refused, none failed),
``refused`` (everything refused) or ``failed``; all refusals are written to a CSV beside the mirror.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from core.errors import DvsyncError
from core.private import private_dir, private_file
from jobs.service.mapping import MappingSet
from jobs.service.mirror import Mirror
from jobs.service.pipeline import FAULT_ENV
from jobs.service.pipeline import _Faults as Faults
from jobs.service.plan import differs
from jobs.service.routing import OWNER_COLUMN, QUEUE_COLUMN, restore_owners
from jobs.service.routing_queue import undo_queue_items
from jobs.service.settings import Settings
from jobs.service.sync import sync_tables

__all__ = ["AlreadyRolledBackError", "NothingToRollBackError", "RollbackResult", "rollback"]

log = logging.getLogger(__name__)

SHOWN = 100
"""Refusals and failures listed in the report; the CSV holds them all."""


class NothingToRollBackError(DvsyncError):
    """The run wrote nothing (or was a dry run)."""

    exit_code = 1


class AlreadyRolledBackError(DvsyncError):
    """Every value the run wrote was already restored by an earlier rollback."""

    exit_code = 1


@dataclass
class RollbackResult:
    """What a rollback did.

    Attributes:
        run_id: the rollback's own run id.
        of_run: the run rolled back.
        restored, refused, failed: values per outcome (``restored`` includes ``confirmed``).
        confirmed: values found already restored (sent by an interrupted rollback of the same run).
        already: values an earlier rollback of the same run had restored (left alone).
        refusals: per refused value: table, record, column, what the run wrote, what Dynamics has.
        failures: per failed value: table, record, column, message.
        refusals_csv: where every refusal is listed, when there were any.
    """

    run_id: int
    of_run: int
    restored: int = 0
    refused: int = 0
    failed: int = 0
    confirmed: int = 0
    already: int = 0
    refusals: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    refusals_csv: Path | None = None

    @property
    def ok(self) -> bool:
        """True when nothing was refused or failed."""
        return not (self.refused or self.failed)

    @property
    def outcome(self) -> str:
        """``ok``, ``partial`` (some refused), ``refused`` (all refused) or ``failed``."""
        if self.failed:
            return "failed"
        if self.refused:
            return "partial" if self.restored else "refused"
        return "ok"

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary."""
        return {
            "run_id": self.run_id,
            "rolled_back_run": self.of_run,
            "outcome": self.outcome,
            "ok": self.ok,
            "restored": self.restored,
            "confirmed_after_interruption": self.confirmed,
            "already_restored": self.already,
            "refused": self.refused,
            "failed": self.failed,
            "refusals": self.refusals[:SHOWN],
            "refusals_more": max(0, len(self.refusals) - SHOWN),
            "refusals_csv": str(self.refusals_csv) if self.refusals_csv else None,
            "failures": self.failures[:SHOWN],
            "failures_more": max(0, len(self.failures) - SHOWN),
        }


@dataclass
class _Context:
    client: Any
    mirror: Mirror
    mappings: MappingSet
    settings: Settings
    result: RollbackResult
    force: bool
    earlier: list[int]
    faults: Faults


def _earlier_rollbacks(mirror: Mirror, run_id: int) -> list[int]:
    """The rollback runs of ``run_id`` so far, oldest first (finished, failed or killed)."""
    runs = mirror.runs(1_000_000, kind="rollback")
    found = [
        int(r.run_id)
        for r in runs.itertuples()
        if isinstance(r.stats, dict) and r.stats.get("rolled_back_run") == run_id
    ]
    return sorted(found)


def _key(frame: pd.DataFrame) -> pd.Series:
    return (
        frame["table_name"]
        + "\x1f"
        + frame["record_id"].astype(str).str.lower()
        + "\x1f"
        + frame["column_name"]
    )


def rollback(
    client: Any,
    mirror: Mirror,
    mappings: MappingSet,
    settings: Settings,
    run_id: int,
    *,
    force: bool = False,
) -> RollbackResult:
    """Restore the old values of everything run ``run_id`` wrote (that is not restored yet).

    Args:
        client: a DataverseClient.
        mirror: the open mirror.
        mappings: the mapping set (output columns).
        settings: for the sync and write-back options.
        run_id: the run to undo.
        force: restore values changed since the run too (by a person or a later run).

    Raises:
        MirrorError: no such run.
        NothingToRollBackError: the run wrote nothing.
        AlreadyRolledBackError: an earlier rollback restored everything the run wrote.
    """
    target = mirror.run(run_id)
    audit = mirror.audit(run_id)
    # A rollback's own "restored" values count as writes, so a rollback can be undone too.
    written = audit[audit["outcome"].isin(["written", "restored"])]
    if written.empty:
        what = "was a dry run" if target.get("dry_run") else "wrote nothing"
        raise NothingToRollBackError(f"run {run_id} {what}; there is nothing to roll back")
    # The last write of each value in that run is the one to compare with.
    written = written.drop_duplicates(["table_name", "record_id", "column_name"], keep="last")
    mirror.mark_abandoned_runs()
    earlier = _earlier_rollbacks(mirror, run_id)
    restored_before = pd.concat([mirror.audit(r) for r in earlier], ignore_index=True) if earlier else None
    already = 0
    if restored_before is not None and not restored_before.empty:
        done = set(_key(restored_before[restored_before["outcome"] == "restored"]))
        left = ~_key(written).isin(done)
        already = int((~left).sum())
        written = written[left.to_numpy()]
        if written.empty:
            raise AlreadyRolledBackError(
                f"run {run_id} was already rolled back (by run {earlier[-1]}): every value it wrote "
                f"is restored; to put its values back, roll back run {earlier[-1]}"
            )
    own = mirror.start_run("rollback", jobs=None)
    mirror.annotate_run(own, rolled_back_run=run_id)
    result = RollbackResult(run_id=own, of_run=run_id, already=already)
    ctx = _Context(
        client, mirror, mappings, settings, result, force, earlier, Faults(os.environ.get(FAULT_ENV))
    )
    tables = sorted(written["table_name"].unique())
    try:
        sync = sync_tables(
            client,
            mirror,
            mappings,
            tables=tables,
            page_size=settings.sync.page_size,
            window_overlap=timedelta(seconds=settings.sync.window_overlap_seconds),
            run_id=own,
        )
        broken = [t for t in sync.tables if not t.ok]
        if broken:
            raise DvsyncError(
                "cannot compare with Dynamics: the sync failed for "
                + ", ".join(f"{t.table} ({t.error})" for t in broken)
            )
        for table in tables:
            _roll_back_table(ctx, table, written)
        _write_refusals(ctx)
    except BaseException as exc:
        outcome = "interrupted" if isinstance(exc, KeyboardInterrupt | SystemExit) else "failed"
        mirror.finish_run(own, outcome, stats=result.as_dict(), error=str(exc) or type(exc).__name__)
        raise
    problems = []
    if result.refused:
        problems.append(
            f"{result.refused} refused (changed or rewritten since the run; --force restores them)"
        )
    if result.failed:
        problems.append(f"{result.failed} failed (run the rollback again to retry them)")
    mirror.finish_run(own, result.outcome, stats=result.as_dict(), error="; ".join(problems) or None)
    return result


def _later_writes(ctx: _Context, table: str) -> dict[str, int]:
    """Per value key, the latest later run that wrote it (not this run's own rollbacks)."""
    audit = ctx.mirror.audit(table=table)
    mine = {ctx.result.of_run, ctx.result.run_id, *ctx.earlier}
    later = audit[
        (audit["run_id"] > ctx.result.of_run)
        & ~audit["run_id"].isin(list(mine))
        & audit["outcome"].isin(["written", "restored"])
    ]
    return dict(zip(_key(later), later["run_id"].astype(int), strict=True))


def _roll_back_table(ctx: _Context, table: str, written: pd.DataFrame) -> None:
    mirror, result = ctx.mirror, ctx.result
    entries = written[written["table_name"] == table]
    layout = mirror.layout(table)
    outputs = {o.logical_name: o for o in ctx.mappings.outputs_for(table, enabled_only=False)}
    rows = mirror.read_frame(table, include_system=True)
    rows = rows.set_index(rows[layout.id_column].astype(str).str.lower())
    later = _later_writes(ctx, table)
    restore_parts: list[pd.DataFrame] = []
    refused_parts: list[pd.DataFrame] = []
    confirmed_parts: list[pd.DataFrame] = []
    for column, items in entries.groupby("column_name"):
        if column == QUEUE_COLUMN:
            # Lead routing put leads in a queue: taken out again there and then (not a PATCH).
            undone = undo_queue_items(ctx.client, items, force=ctx.force)
            refused_parts.append(undone.refused)
            confirmed_parts.append(undone.confirmed)
            _record_queue_undo(ctx, table, undone.done)
            continue
        if column == OWNER_COLUMN:
            # Lead routing wrote the owner (a lookup, not an output column): its own restore rule.
            owners_back, owners_refused, owners_confirmed = restore_owners(items, rows, ctx.force)
            # Sent with the etag the sync read, like the output columns (If-Match: exactly once).
            owners_back = owners_back.assign(etag=rows.loc[owners_back["record_id"], "_etag"].to_numpy())
            restore_parts.append(owners_back)
            refused_parts.append(owners_refused)
            confirmed_parts.append(owners_confirmed)
            continue
        output = outputs.get(str(column))
        if output is None or output.mirror_column not in rows.columns:
            refused_parts.append(items.assign(now=None, reason=f"column {column} is no longer mapped"))
            continue
        present = items["record_id"].isin(rows.index).to_numpy()
        gone = items[~present]
        if not gone.empty:
            refused_parts.append(gone.assign(now=None, reason="the record no longer exists"))
        items = items[present]
        now = output.to_wire(rows.loc[items["record_id"], output.mirror_column], scaled=True)
        wrote = output.to_wire(pd.Series(list(items["new_value"]), dtype=object), scaled=True)
        old = output.to_wire(pd.Series(list(items["old_value"]), dtype=object), scaled=True)
        frame = items.assign(now=now, restore=old, result=output.result)
        frame["etag"] = rows.loc[items["record_id"], "_etag"].to_numpy()
        rewriter = _key(frame).map(later)
        at_old = ~differs(now, old).to_numpy()
        changed = differs(now, wrote).to_numpy()
        rewritten = rewriter.notna().to_numpy()
        confirmed_parts.append(frame[at_old & ~rewritten])
        blocked = ~at_old & (changed | rewritten)
        if ctx.force:
            restore_parts.append(frame[~(at_old & ~rewritten)])
            continue
        restore_parts.append(frame[~at_old & ~blocked])
        refused = frame[blocked | (at_old & rewritten)]
        reasons = [
            f"rewritten by run {int(r)} since"
            if pd.notna(r)
            else "changed in Dynamics since the run wrote it"
            for r in rewriter[blocked | (at_old & rewritten)]
        ]
        refused_parts.append(refused.assign(reason=reasons))
    refused = pd.concat(refused_parts, ignore_index=True) if refused_parts else pd.DataFrame()
    confirmed = pd.concat(confirmed_parts, ignore_index=True) if confirmed_parts else pd.DataFrame()
    _record_decided(ctx, table, refused, confirmed)
    restore = pd.concat(restore_parts, ignore_index=True) if restore_parts else pd.DataFrame()
    if restore.empty:
        return
    mapping = ctx.mappings.tables[table]
    entity_set = mapping.entity_set or ctx.client.get_table(mapping.table).entity_set_name
    writeback = ctx.settings.writeback
    records = sorted(restore["record_id"].unique())
    step = writeback.batch_size * max(1, writeback.max_parallel or 4)
    for start in range(0, len(records), step):
        chunk = restore[restore["record_id"].isin(records[start : start + step])]
        _restore_chunk(ctx, table, entity_set, layout, chunk)
    log.info("rollback of run %d on %s: %d restored", result.of_run, table, result.restored)


def _record_queue_undo(ctx: _Context, table: str, done: pd.DataFrame) -> None:
    """Audit and count the queue items a rollback took out of their queue (or failed to)."""
    if done.empty:
        return
    result = ctx.result
    ctx.mirror.record_audit(
        result.run_id,
        table,
        pd.DataFrame(
            {
                "record_id": done["record_id"],
                "column_name": done["column_name"],
                "old_value": done["now"],
                "new_value": done["restore"],
                "outcome": done["outcome"],
                "error": done["error"],
            }
        ),
    )
    ok = (done["outcome"] == "restored").to_numpy()
    result.restored += int(ok.sum())
    result.failed += int((~ok).sum())
    result.failures.extend(
        {"table": table, "record_id": r.record_id, "column": r.column_name, "message": r.error}
        for r in done[~ok].itertuples()
    )


def _record_decided(ctx: _Context, table: str, refused: pd.DataFrame, confirmed: pd.DataFrame) -> None:
    """Audit the refusals and the values found already restored, before anything is sent."""
    result = ctx.result
    entries = []
    if not refused.empty:
        entries.append(
            pd.DataFrame(
                {
                    "record_id": refused["record_id"],
                    "column_name": refused["column_name"],
                    "old_value": refused["now"],
                    "new_value": refused["old_value"],
                    "outcome": "refused",
                    "error": refused["reason"],
                }
            )
        )
        result.refused += len(refused)
        result.refusals.extend(
            {
                "table": table,
                "record_id": r.record_id,
                "column": r.column_name,
                "run_wrote": r.new_value,
                "dynamics_has": r.now,
                "reason": r.reason,
            }
            for r in refused.itertuples()
        )
    if not confirmed.empty:
        entries.append(
            pd.DataFrame(
                {
                    "record_id": confirmed["record_id"],
                    "column_name": confirmed["column_name"],
                    "old_value": confirmed["new_value"],
                    "new_value": confirmed["restore"],
                    "outcome": "restored",
                    "error": "found restored in Dynamics (sent by an interrupted rollback)",
                }
            )
        )
        result.restored += len(confirmed)
        result.confirmed += len(confirmed)
    if entries:
        ctx.mirror.record_audit(result.run_id, table, pd.concat(entries, ignore_index=True))


def _restore_chunk(ctx: _Context, table: str, entity_set: str, layout: Any, chunk: pd.DataFrame) -> None:
    """Send one chunk, then audit it and update the mirror in one transaction."""
    mirror, result = ctx.mirror, ctx.result
    updates = []
    for rid, group in chunk.groupby("record_id", sort=True):
        etag = group["etag"].iloc[0]
        updates.append(
            (
                rid,
                dict(zip(group["column_name"], group["restore"], strict=True)),
                etag if isinstance(etag, str) and etag else None,
                dict(zip(group["column_name"], group["now"], strict=True)),
            )
        )
    outcomes = ctx.client.update_many(
        entity_set,
        updates,
        batch_size=ctx.settings.writeback.batch_size,
        max_workers=ctx.settings.writeback.max_parallel,
    )
    ctx.faults.hit("rollback-sent")
    ok = {str(o.id).lower() for o in outcomes if o.ok}
    messages = {str(o.id).lower(): o.message or f"HTTP {o.status}" for o in outcomes if not o.ok}
    done = chunk[chunk["record_id"].isin(ok)]
    bad = chunk[~chunk["record_id"].isin(ok)]
    with mirror.transaction():
        mirror.record_audit(
            result.run_id,
            table,
            pd.DataFrame(
                {
                    "record_id": chunk["record_id"],
                    "column_name": chunk["column_name"],
                    "old_value": chunk["now"],
                    "new_value": chunk["restore"],
                    "outcome": ["restored" if r in ok else "failed" for r in chunk["record_id"]],
                    "error": [messages.get(r) for r in chunk["record_id"]],
                }
            ),
        )
        for result_name, values in done.groupby("result"):
            column = f"out_{result_name}"
            if column in layout.columns:
                mirror.set_values(
                    table,
                    pd.DataFrame(
                        {layout.id_column: values["record_id"].to_numpy(), column: list(values["restore"])}
                    ),
                )
        mirror.record_run_table(
            result.run_id, table, written=done["record_id"].nunique(), failed=bad["record_id"].nunique()
        )
    ctx.faults.hit("rollback-recorded")
    result.restored += len(done)
    result.failed += len(bad)
    result.failures.extend(
        {
            "table": table,
            "record_id": r.record_id,
            "column": r.column_name,
            "message": messages.get(r.record_id),
        }
        for r in bad.itertuples()
    )


def _write_refusals(ctx: _Context) -> None:
    """Write every refusal to ``<mirror dir>/rollbacks/rollback-<id>-refused.csv`` (0600)."""
    result = ctx.result
    if not result.refusals:
        return
    base = ctx.mirror.path.parent if ctx.mirror.path is not None else Path(".dvsync")
    path = private_dir(base / "rollbacks") / f"rollback-{result.run_id}-refused.csv"
    private_file(path)
    pd.DataFrame(result.refusals).to_csv(path, index=False)
    result.refusals_csv = path
