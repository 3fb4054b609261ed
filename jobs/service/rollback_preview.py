"""What a rollback of a run would do, read from the mirror alone (nothing synced, nothing written).

:func:`jobs.service.rollback.rollback` syncs first and then decides, value by value, whether to
restore or refuse. Before an admin confirms a rollback they want to see that decision; this module
makes the same comparison against the mirror as it stands (so a change made in Dynamics since the
last sync shows up only after the rollback's own sync, which then refuses it).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from jobs.service.mapping import MappingSet
from jobs.service.mirror import Mirror
from jobs.service.plan import differs

__all__ = ["preview_rollback"]


def preview_rollback(
    mirror: Mirror, mappings: MappingSet, run_id: int, *, limit: int = 1000
) -> dict[str, Any]:
    """The values a rollback of ``run_id`` would restore, and those it would refuse.

    Args:
        limit: list at most this many values per outcome (the counts cover all of them).

    Returns:
        ``run_id``, ``kind``, ``dry_run``, ``counts`` per outcome (``restore``, ``refuse``), and
        ``restore`` / ``refuse``: lists of table, record_id, column, ``now`` (what Dynamics holds per
        the mirror), ``restore_to`` and, for refusals, ``reason``.

    Raises:
        MirrorError: no such run.
    """
    target = mirror.run(run_id)
    audit = mirror.audit(run_id)
    written = audit[audit["outcome"].isin(["written", "restored"])]
    written = written.drop_duplicates(["table_name", "record_id", "column_name"], keep="last")
    parts: list[pd.DataFrame] = []
    layouts = mirror.layouts()
    for table, entries in written.groupby("table_name"):
        table = str(table)
        if table not in layouts:
            parts.append(_refused(entries, "the table is no longer mirrored"))
            continue
        id_column = layouts[table].id_column
        outputs = {o.logical_name: o for o in mappings.outputs_for(table, enabled_only=False)}
        wanted = [o.mirror_column for o in outputs.values() if o.mirror_column in layouts[table].columns]
        rows = mirror.read_frame(table, wanted)
        rows = rows.set_index(rows[id_column].astype(str).str.lower())
        for column, items in entries.groupby("column_name"):
            output = outputs.get(str(column))
            if output is None or output.mirror_column not in rows.columns:
                parts.append(_refused(items, f"column {column} is no longer mapped"))
                continue
            present = items["record_id"].isin(rows.index).to_numpy()
            parts.append(_refused(items[~present], "the record no longer exists"))
            items = items[present]
            now = output.to_wire(rows.loc[items["record_id"], output.mirror_column], scaled=True)
            wrote = output.to_wire(pd.Series(list(items["new_value"]), dtype=object), scaled=True)
            old = output.to_wire(pd.Series(list(items["old_value"]), dtype=object), scaled=True)
            changed = differs(now, wrote).to_numpy()
            parts.append(
                pd.DataFrame(
                    {
                        "table": table,
                        "record_id": items["record_id"].to_numpy(),
                        "column": items["column_name"].to_numpy(),
                        "now": pd.Series(now, dtype=object).to_numpy(),
                        "restore_to": pd.Series(old, dtype=object).to_numpy(),
                        "reason": [_CHANGED if c else None for c in changed],
                    }
                )
            )
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=_COLUMNS)
    refused = frame["reason"].notna()
    restore, refuse = frame[~refused].drop(columns=["reason"]), frame[refused]
    return {
        "run_id": run_id,
        "kind": target.get("kind"),
        "dry_run": bool(target.get("dry_run")),
        "counts": {"restore": len(restore), "refuse": len(refuse)},
        "restore": restore.head(limit).to_dict(orient="records"),
        "refuse": refuse.head(limit).to_dict(orient="records"),
    }


_COLUMNS = ["table", "record_id", "column", "now", "restore_to", "reason"]
_CHANGED = "changed in Dynamics since the run wrote it (force restores it anyway)"


def _refused(items: pd.DataFrame, reason: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "table": items["table_name"].to_numpy(),
            "record_id": items["record_id"].to_numpy(),
            "column": items["column_name"].to_numpy(),
            "now": None,
            "restore_to": items["old_value"].to_numpy(),
            "reason": reason,
        },
        columns=_COLUMNS,
    )
