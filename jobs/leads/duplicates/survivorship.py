"""Which record survives a merge, and which field values it keeps: pure functions over DataFrames.

The master of a group is chosen by ``[<table>.cluster] master`` in ``duplicates.toml``, best first:
``completeness`` (most filled-in fields), a column where later / larger / true wins
(``modified_on``, ``order_count`` "has orders", ``last_activity_on`` "most recent activity"), or
``-column`` where earlier / smaller wins (``-created_on``: the oldest record). The two derived
columns are added by :func:`survivorship_columns` from the orders and activities the mirror holds.

The values that survive (Dataverse's ``UpdateContent``) follow a rule per field
(``[<table>.merge.fields]``):

- ``master_unless_empty`` (default): keep the master's value; when it is empty take the value of
  the most recently modified duplicate that has one;
- ``master``: always keep the master's value, even an empty one;
- ``newest``: the value of the most recently modified record (master included) that has one;
- ``longest``: the longest value among all records (ties: the master's, then the newest).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

__all__ = ["survivorship_columns", "update_content"]


def survivorship_columns(
    table: str,
    records: pd.DataFrame,
    *,
    id_column: str,
    orders: pd.DataFrame | None = None,
    activities: pd.DataFrame | None = None,
    wanted: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Add ``order_count`` (accounts, contacts) and ``last_activity_on`` (leads) to ``records``.

    Args:
        table: ``lead``, ``contact`` or ``account``.
        records: the table's records.
        id_column: their id column.
        orders: canonical orders (``customer_id``); None or empty: every count is 0.
        activities: canonical activities (``lead_id``, ``occurred_on``).
        wanted: master preferences (``["completeness", "order_count"]``); only the derived columns
            they name are added (an extra column would count towards completeness). None: both.

    Returns:
        A copy of ``records`` with the derived columns.
    """
    out = records.copy()
    ids = out[id_column].astype(str).str.lower()
    names = None if wanted is None else {w.lstrip("-") for w in wanted}
    if table in ("account", "contact") and (names is None or "order_count" in names):
        counts = pd.Series(dtype="int64")
        if orders is not None and not orders.empty and "customer_id" in orders:
            counts = orders["customer_id"].dropna().astype(str).str.lower().value_counts()
        out["order_count"] = ids.map(counts).fillna(0).astype("int64").to_numpy()
    if table == "lead" and (names is None or "last_activity_on" in names):
        latest = pd.Series(dtype="datetime64[ns, UTC]")
        if activities is not None and not activities.empty and {"lead_id", "occurred_on"} <= set(activities):
            frame = activities.dropna(subset=["lead_id"])
            stamps = pd.to_datetime(frame["occurred_on"], utc=True, errors="coerce")
            latest = stamps.groupby(frame["lead_id"].astype(str).str.lower()).max()
        out["last_activity_on"] = ids.map(latest).to_numpy()
        out["last_activity_on"] = pd.to_datetime(out["last_activity_on"], utc=True)
    return out


def _empty(value: Any) -> bool:
    if value is None:
        return True
    try:
        if pd.isna(value):
            return True
    except (TypeError, ValueError):
        return False
    return isinstance(value, str) and not value.strip()


def update_content(
    master: Mapping[str, Any],
    duplicates: Sequence[Mapping[str, Any]],
    fields: Sequence[str],
    rules: Mapping[str, str],
    *,
    modified_column: str = "modified_on",
) -> dict[str, Any]:
    """Return the fields whose surviving value differs from the master's, with that value.

    Args:
        master: the surviving record (field → value).
        duplicates: the records merged into it.
        fields: the fields to consider.
        rules: field → rule (see the module docstring); missing fields use ``master_unless_empty``.
        modified_column: the field holding when a record was last modified.
    """

    def stamp(record: Mapping[str, Any]) -> pd.Timestamp:
        value = pd.to_datetime(record.get(modified_column), utc=True, errors="coerce")
        return value if not pd.isna(value) else pd.Timestamp.min.tz_localize("UTC")

    newest_first = sorted(duplicates, key=stamp, reverse=True)
    changes: dict[str, Any] = {}
    for name in fields:
        rule = rules.get(name, "master_unless_empty")
        current = master.get(name)
        value = current
        if rule == "master_unless_empty":
            if _empty(current):
                value = next((d.get(name) for d in newest_first if not _empty(d.get(name))), current)
        elif rule == "newest":
            everyone = sorted([master, *duplicates], key=stamp, reverse=True)
            value = next((r.get(name) for r in everyone if not _empty(r.get(name))), current)
        elif rule == "longest":
            best = current
            for record in newest_first:
                candidate = record.get(name)
                if not _empty(candidate) and len(str(candidate)) > len(str(best if not _empty(best) else "")):
                    best = candidate
            value = best
        if not _empty(value) and (_empty(current) or str(value) != str(current)):
            changes[name] = value.item() if hasattr(value, "item") else value
    return changes
