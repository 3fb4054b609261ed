"""Undo a run's write-back: restore the values Dynamics held before it, unless someone changed them since.

For every value a run wrote (its ``written`` audit entries), the affected tables are synced first
so the mirror shows what Dynamics holds now. A value still equal to what the run wrote is restored
to the old value; one that differs (a person, a workflow or a later run changed it) is *refused*
and listed, unless ``force`` is given. The rollback is itself a run (kind ``rollback``): every
restore, refusal and failure is audited under it, so a rollback can be rolled back too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pandas as pd

from core.errors import DvsyncError
from jobs.service.mapping import MappingSet
from jobs.service.mirror import Mirror
from jobs.service.plan import differs
from jobs.service.routing import OWNER_COLUMN, restore_owners
from jobs.service.settings import Settings
from jobs.service.sync import sync_tables

__all__ = ["NothingToRollBackError", "RollbackResult", "rollback"]

log = logging.getLogger(__name__)


class NothingToRollBackError(DvsyncError):
    """The run wrote nothing (or was a dry run)."""

    exit_code = 1


@dataclass
class RollbackResult:
    """What a rollback did.

    Attributes:
        run_id: the rollback's own run id.
        of_run: the run rolled back.
        restored, refused, failed: values per outcome.
        refusals: per refused value: table, record, column, what the run wrote, what Dynamics has.
        failures: per failed value: table, record, column, message.
    """

    run_id: int
    of_run: int
    restored: int = 0
    refused: int = 0
    failed: int = 0
    refusals: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was refused or failed."""
        return not (self.refused or self.failed)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary."""
        return {
            "run_id": self.run_id,
            "rolled_back_run": self.of_run,
            "ok": self.ok,
            "restored": self.restored,
            "refused": self.refused,
            "failed": self.failed,
            "refusals": self.refusals[:100],
            "failures": self.failures[:100],
        }


def rollback(
    client: Any,
    mirror: Mirror,
    mappings: MappingSet,
    settings: Settings,
    run_id: int,
    *,
    force: bool = False,
) -> RollbackResult:
    """Restore the old values of everything run ``run_id`` wrote.

    Args:
        client: a DataverseClient.
        mirror: the open mirror.
        mappings: the mapping set (output columns).
        settings: for the sync and write-back options.
        run_id: the run to undo.
        force: restore values changed since the run too.

    Raises:
        MirrorError: no such run.
        NothingToRollBackError: the run wrote nothing.
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
    own = mirror.start_run("rollback", jobs=None)
    result = RollbackResult(run_id=own, of_run=run_id)
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
            _roll_back_table(client, mirror, mappings, settings, result, table, written, force)
    except BaseException as exc:
        mirror.finish_run(own, "failed", stats=result.as_dict(), error=str(exc) or type(exc).__name__)
        raise
    mirror.finish_run(
        own,
        "ok" if result.ok else "failed",
        stats=result.as_dict(),
        error=None if result.ok else f"{result.refused} refused, {result.failed} failed",
    )
    return result


def _roll_back_table(
    client: Any,
    mirror: Mirror,
    mappings: MappingSet,
    settings: Settings,
    result: RollbackResult,
    table: str,
    written: pd.DataFrame,
    force: bool,
) -> None:
    entries = written[written["table_name"] == table]
    layout = mirror.layout(table)
    outputs = {o.logical_name: o for o in mappings.outputs_for(table, enabled_only=False)}
    rows = mirror.read_frame(table)
    rows = rows.set_index(rows[layout.id_column].astype(str).str.lower())
    restore_parts: list[pd.DataFrame] = []
    refused_parts: list[pd.DataFrame] = []
    for column, items in entries.groupby("column_name"):
        if column == OWNER_COLUMN:
            # Lead routing wrote the owner (a lookup, not an output column): its own restore rule.
            owners_back, owners_refused = restore_owners(items, rows, force)
            restore_parts.append(owners_back)
            refused_parts.append(owners_refused)
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
        changed = differs(now, wrote).to_numpy()
        frame = items.assign(now=now, restore=old, result=output.result)
        if force:
            restore_parts.append(frame)
        else:
            restore_parts.append(frame[~changed])
            refused_parts.append(frame[changed].assign(reason="changed in Dynamics since the run wrote it"))
    restore = pd.concat(restore_parts, ignore_index=True) if restore_parts else pd.DataFrame()
    refused = pd.concat(refused_parts, ignore_index=True) if refused_parts else pd.DataFrame()
    if not refused.empty:
        mirror.record_audit(
            result.run_id,
            table,
            pd.DataFrame(
                {
                    "record_id": refused["record_id"],
                    "column_name": refused["column_name"],
                    "old_value": refused["now"],
                    "new_value": refused["old_value"],
                    "outcome": "refused",
                    "error": refused["reason"],
                }
            ),
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
    if restore.empty:
        return
    # One PATCH per record with all its restored columns.
    updates = [
        (rid, dict(zip(group["column_name"], group["restore"], strict=True)))
        for rid, group in restore.groupby("record_id", sort=True)
    ]
    mapping = mappings.tables[table]
    entity_set = mapping.entity_set or client.get_table(mapping.table).entity_set_name
    outcomes = client.update_many(
        entity_set,
        updates,
        batch_size=settings.writeback.batch_size,
        max_workers=settings.writeback.max_parallel,
    )
    ok = {str(o.id).lower() for o in outcomes if o.ok}
    messages = {str(o.id).lower(): o.message or f"HTTP {o.status}" for o in outcomes if not o.ok}
    done = restore[restore["record_id"].isin(ok)]
    bad = restore[~restore["record_id"].isin(ok)]
    with mirror.transaction():
        mirror.record_audit(
            result.run_id,
            table,
            pd.DataFrame(
                {
                    "record_id": restore["record_id"],
                    "column_name": restore["column_name"],
                    "old_value": restore["now"],
                    "new_value": restore["restore"],
                    "outcome": ["restored" if r in ok else "failed" for r in restore["record_id"]],
                    "error": [messages.get(r) for r in restore["record_id"]],
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
    log.info("rollback of run %d on %s: %d restored, %d failed", result.of_run, table, len(done), len(bad))
