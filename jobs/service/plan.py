"""The write-back plan: which output columns of which records must change, and from what to what.

Pure functions, DataFrames in and out (no HTTP, no mirror): the pipeline reads the mirror and the
jobs' results, calls :func:`plan_table` per table, retires with :func:`carry_forward` what earlier
runs could not write and this run re-planned (never writing an earlier run's value: only values
this run computed are written), and stores the plan before sending anything.

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


def carry_forward(earlier: pd.DataFrame, computed: Iterable[tuple[str, str]]) -> pd.DataFrame:
    """The earlier runs' unwritten items that this run re-planned, and so retires.

    An earlier item (failed, or never sent because its run was stopped or killed) is *never*
    written as it is: its value was computed from data that may have changed since (the lead
    changed, then changed back: the pending value is now wrong). A run that computed the same
    result re-plans the record from its own results (:func:`plan_table`): the item is retired
    whether or not the new plan writes the record. An item whose result this run did not compute
    (its job was not run, or was skipped) stays open for the next run that computes it.

    Args:
        earlier: earlier plan items still ``pending``/``failed``/``sending`` (``Mirror.plan`` rows).
        computed: ``(table, result)`` pairs this run computed (companions included).

    Returns:
        The items of ``earlier`` to mark superseded.
    """
    if earlier.empty:
        return earlier
    done = set(computed)
    keys = zip(earlier["table_name"], earlier["result"], strict=True)
    return earlier[[(t, r) in done for t, r in keys]]
