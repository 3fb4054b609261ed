"""The merge preview: both records side by side, the master's changes, the child records that move.

Shared by the merge run (its dry-run table and CSV, and the UpdateContent it sends) and the admin
console's merge confirmation, so what a person approves is what the merge run will show and do.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from jobs.leads.duplicates.survivorship import update_content
from jobs.service.mapping import MappingSet
from jobs.service.mirror import Mirror, MirrorError

__all__ = ["child_counts", "entity_frame", "merge_rows"]

_WRITABLE = frozenset({"string", "integer", "float", "money"})  # mapped fields UpdateContent may carry
_CHILDREN = {
    # table -> (child entity, its column naming the parent, label)
    "account": (("contact", "account_id", "contacts"), ("order", "customer_id", "orders")),
    "contact": (("order", "customer_id", "orders"),),
    "lead": (("activity", "lead_id", "activities"),),
}


def entity_frame(mirror: Mirror, entity: str) -> pd.DataFrame | None:
    """Every mirrored record of ``entity``, or None when no mirrored table holds it."""
    try:
        return mirror.read_entity(entity)
    except MirrorError:
        return None


def child_counts(mirror: Mirror, table: str) -> list[tuple[str, pd.Series]]:
    """Per kind of child record (label), how many each parent id has: read once per table."""
    counts = []
    for entity, column, label in _CHILDREN.get(table, ()):
        frame = entity_frame(mirror, entity)
        if frame is None or column not in frame:
            continue
        counts.append((label, frame[column].dropna().astype(str).str.lower().value_counts()))
    return counts


def _children(counts: list[tuple[str, pd.Series]], record_id: str) -> str:
    return ", ".join(f"{int(c[record_id])} {label}" for label, c in counts if record_id in c.index)


def merge_rows(
    mirror: Mirror,
    mappings: MappingSet,
    table: str,
    records: pd.DataFrame,
    id_column: str,
    taken: pd.DataFrame,
    rules: dict[str, str],
    fields: list[str],
    *,
    counts: list[tuple[str, pd.Series]] | None = None,
) -> pd.DataFrame:
    """One row per merge: both records side by side, the master's changes, the children that move.

    ``counts`` are :func:`child_counts` when the caller already has them (the console keeps them
    per run); read from the mirror otherwise.
    """
    if taken.empty:
        return pd.DataFrame()
    by_id = records.set_index(id_column)
    counts = child_counts(mirror, table) if counts is None else counts
    writable = [
        f for f in fields if (m := mappings.tables[table].fields.get(f)) is not None and m.type in _WRITABLE
    ]
    rows = []
    for group, members in taken.groupby("group", sort=False):
        master_id = members["master_id"].iloc[0]
        master = _as_record(by_id, master_id)
        subs = [_as_record(by_id, s) for s in members["subordinate_id"]]
        changes = update_content(master, subs, writable, rules, modified_column="_modifiedon")
        for position, item in enumerate(members.itertuples(index=False)):
            sub = subs[position]
            row = {
                "table": table,
                "group": group,
                "master_id": master_id,
                "subordinate_id": item.subordinate_id,
                "reason": item.reason,
                "score": None if pd.isna(item.score) else round(float(item.score), 4),
                "master_changes": "; ".join(f"{k}: {master.get(k)!s} -> {v!s}" for k, v in changes.items())
                if position == 0
                else "",
                "children_moving": _children(counts, item.subordinate_id),
                "_update_content": changes if position == 0 else {},
            }
            for name in fields:
                row[f"master.{name}"] = master.get(name)
                row[f"subordinate.{name}"] = sub.get(name)
            rows.append(row)
    return pd.DataFrame(rows)


def _as_record(by_id: pd.DataFrame, record_id: str) -> dict[str, Any]:
    if record_id not in by_id.index:
        return {}
    row = by_id.loc[record_id]
    return {k: (None if _missing(v) else v) for k, v in row.items()}


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
