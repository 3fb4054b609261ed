"""The write-back plan: which output columns of which records must change, and from what to what.

Pure functions, DataFrames in and out (no HTTP, no mirror): the pipeline reads the mirror and the
jobs' results, calls :func:`plan_table` per table and :func:`carry_forward` for what earlier runs
could not write, and stores the plan before sending anything.

A value is planned only when it differs from what Dynamics holds according to the mirror (the
``out_<result>`` columns the sync reads back), compared in the *wire form*
(:meth:`jobs.service.mapping.OutputColumn.to_wire`: scaled, rounded to the column's precision, cut to
its length). So a second run with nothing new plans nothing, and a value rounded to the same
number is never rewritten.

Plan schema (one row per record and column): ``table_name``, ``record_id``, ``column_name`` (the
Dataverse logical name), ``result``, ``old_value`` (wire form of what Dynamics holds, None when
empty) and ``new_value`` (wire form to write, None clears the column).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import pandas as pd

from jobs.service.mapping import OutputColumn

__all__ = [
    "COMPANION_RESULTS",
    "PLAN_COLUMNS",
    "add_companions",
    "carry_forward",
    "differs",
    "empty_plan",
    "plan_table",
]

PLAN_COLUMNS = ["table_name", "record_id", "column_name", "result", "old_value", "new_value"]

COMPANION_RESULTS = ("scored_on",)
"""Results written only beside another change of the same record: "when dvsync last computed
these fields". Writing them on their own would rewrite every record on every run."""


def _objects(values: Iterable[object]) -> pd.Series:
    """Wire values as an ``object`` column, None kept as None.

    A plain array of text and None would be read by pandas 3 as its ``str`` dtype, whose missing
    value is NaN: a clear (None) next to new labels became NaN, which JSON cannot carry, and the
    write of that record was refused ("nan cannot be written").
    """
    return pd.Series(list(values), dtype=object)


def empty_plan() -> pd.DataFrame:
    """A plan with no items (the schema above)."""
    return pd.DataFrame({c: pd.Series(dtype=object) for c in PLAN_COLUMNS})


def differs(new: Sequence[object], old: Sequence[object]) -> pd.Series:
    """Elementwise: True where two wire-form value lists differ (None equals None only)."""
    left = pd.Series(list(new), dtype=object)
    right = pd.Series(list(old), dtype=object)
    both_missing = left.isna().to_numpy() & right.isna().to_numpy()
    one_missing = left.isna().to_numpy() ^ right.isna().to_numpy()
    # Object comparison is per element in Python: 3 == 3.0 and True == 1 are equal, as for Dataverse.
    unequal = (left.to_numpy() != right.to_numpy()) & ~both_missing
    return pd.Series(unequal | one_missing, dtype=bool)


def plan_table(
    table: str,
    results: pd.DataFrame,
    current: pd.DataFrame,
    outputs: Iterable[OutputColumn],
) -> pd.DataFrame:
    """Plan the writes of one table: results that differ from what Dynamics holds.

    Args:
        table: the mirror table (``lead``, ``account``, ``contact``).
        results: the job results, index = record id, one column per result name; a result that is
            not a column was not computed this run and is not planned.
        current: the mirror rows, index = record id, with the ``out_<result>`` columns the sync
            read (an output without its column in the mirror was never provisioned: not planned).
        outputs: the table's output columns (disabled ones are skipped); companion results
            (``scored_on``) are added by :func:`add_companions`.

    Returns:
        The plan items (schema in the module docstring), ordered by record and column. Records not
        in the mirror (deleted in Dynamics since) are left out.
    """
    outputs = [o for o in outputs if o.enabled and o.table == table and o.mirror_column in current.columns]
    ids = results.index.astype(str).str.lower()
    results = results.set_axis(ids)
    known = results.index.intersection(current.index.astype(str).str.lower())
    current = current.set_axis(current.index.astype(str).str.lower())
    parts: list[pd.DataFrame] = []
    for output in outputs:
        if output.result in COMPANION_RESULTS or output.result not in results.columns:
            continue
        new = output.to_wire(results.loc[known, output.result])
        old = output.to_wire(current.loc[known, output.mirror_column], scaled=True)
        changed = differs(new, old).to_numpy()
        if not changed.any():
            continue
        parts.append(
            pd.DataFrame(
                {
                    "table_name": table,
                    "record_id": known[changed],
                    "column_name": output.logical_name,
                    "result": output.result,
                    "old_value": _objects(pd.Series(old, dtype=object)[changed]),
                    "new_value": _objects(pd.Series(new, dtype=object)[changed]),
                }
            )
        )
    plan = pd.concat(parts, ignore_index=True) if parts else empty_plan()
    return plan.sort_values(["record_id", "column_name"], ignore_index=True)[PLAN_COLUMNS]


def add_companions(
    plan: pd.DataFrame,
    current: dict[str, pd.DataFrame],
    outputs: Iterable[OutputColumn],
    stamp: datetime,
) -> pd.DataFrame:
    """Add the companion results (``scored_on`` = ``stamp``) for every record ``plan`` changes.

    Args:
        plan: the plan so far.
        current: per table, the mirror rows indexed by record id with their ``out_`` columns.
        outputs: every output column.
        stamp: the run's moment.
    """
    parts = [plan]
    for output in outputs:
        if not output.enabled or output.result not in COMPANION_RESULTS or output.table not in current:
            continue
        rows = current[output.table]
        if output.mirror_column not in rows.columns:
            continue
        touched = pd.Index(plan.loc[plan["table_name"] == output.table, "record_id"].unique())
        if touched.empty:
            continue
        rows = rows.set_axis(rows.index.astype(str).str.lower())
        old = output.to_wire(rows[output.mirror_column].reindex(touched), scaled=True)
        new = output.to_wire(pd.Series([pd.Timestamp(stamp)] * len(touched), index=touched))
        parts.append(
            pd.DataFrame(
                {
                    "table_name": output.table,
                    "record_id": touched,
                    "column_name": output.logical_name,
                    "result": output.result,
                    "old_value": _objects(old),
                    "new_value": _objects(new),
                }
            )
        )
    merged = pd.concat(parts, ignore_index=True)
    return merged.sort_values(["table_name", "record_id", "column_name"], ignore_index=True)[PLAN_COLUMNS]


def carry_forward(
    plan: pd.DataFrame,
    earlier: pd.DataFrame,
    current: dict[str, pd.DataFrame],
    outputs: Iterable[OutputColumn],
) -> pd.DataFrame:
    """Add to ``plan`` the earlier runs' unwritten items that still differ from Dynamics.

    An item that failed or was never sent (the run was stopped or killed) is retried by the next
    run, unless this run planned the same record and column (its newer value wins) or Dynamics
    already holds the value (a write that went through before the process died).

    Args:
        plan: this run's plan.
        earlier: earlier plan items still ``pending``/``failed``/``sending`` (``Mirror.plan`` rows).
        current: per table, the mirror rows indexed by record id with their ``out_`` columns.
        outputs: every output column.

    Returns:
        ``plan`` with the carried items appended (same schema).
    """
    if earlier.empty:
        return plan
    by_column = {(o.table, o.logical_name): o for o in outputs if o.enabled}
    latest = earlier.sort_values("run_id").drop_duplicates(
        ["table_name", "record_id", "column_name"], keep="last"
    )
    planned = set(zip(plan["table_name"], plan["record_id"], plan["column_name"], strict=True))
    keep = [
        (t, r, c) not in planned and (t, c) in by_column and t in current
        for t, r, c in zip(latest["table_name"], latest["record_id"], latest["column_name"], strict=True)
    ]
    latest = latest[keep]
    parts = [plan]
    for (table, column), items in latest.groupby(["table_name", "column_name"], sort=True):
        output = by_column[(table, column)]
        rows = current[table]
        rows = rows.set_axis(rows.index.astype(str).str.lower())
        items = items[items["record_id"].isin(rows.index)]
        if items.empty or output.mirror_column not in rows.columns:
            continue
        old = output.to_wire(rows.loc[items["record_id"], output.mirror_column], scaled=True)
        new = output.to_wire(pd.Series(list(items["new_value"]), dtype=object), scaled=True)
        changed = differs(new, old).to_numpy()
        parts.append(
            pd.DataFrame(
                {
                    "table_name": table,
                    "record_id": items["record_id"].to_numpy()[changed],
                    "column_name": column,
                    "result": items["result"].to_numpy()[changed],
                    "old_value": _objects(pd.Series(old, dtype=object)[changed]),
                    "new_value": _objects(pd.Series(new, dtype=object)[changed]),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)[PLAN_COLUMNS]
