"""Per-record digests of what a job reads, so that checking an echo costs the records that echoed.

A sync that brings back records unchanged in what a job reads (dvsync's own write-back moved their
``modifiedon``, or lead handling wrote one clock-dependent value) raises the tables' change
counters, so the job's fingerprint moves. Rather than re-reading and hashing its whole input
tables to find that nothing it reads changed, a job keeps, per input table, one 64-bit digest per
record of the columns it reads (not ``out_`` columns, nor :data:`IGNORED_COLUMNS`) and the table
version they were taken at. On the next run only the records the mirror's ``row_changes`` says
were upserted or deleted since that version are read and hashed; when none of their digests
differ (and no record came or went), every value the job reads is what it computed from.

The digests are updated in place for the changed records only, and saved with the job's state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pandas as pd

from jobs.moments import without_sentinels
from jobs.service.scoring_rows import hash_rows, is_input_column

__all__ = ["RowState", "check_rows", "full_rows", "on_hashed"]

RowState = dict[str, dict[str, Any]]
"""Per table: ``{"version": int, "columns": [(column, type)...], "digests": Series(uint64, by id)}``."""

SCAN_ABOVE = 20_000
"""More changed records than this are found by one scan of the table, not by id look-ups."""

on_hashed: Callable[[str, int], None] | None = None
"""Called with (table, rows) each time rows are hashed: lets tests count the work an echo costs."""


def _columns(mirror: Any, name: str) -> list[tuple[str, str]]:
    layout = mirror.layout(name)
    return [(c, t) for c, t in layout.columns.items() if c == layout.id_column or is_input_column(c)]


def _digests(
    mirror: Any, name: str, ids: list[str] | None = None, frame: pd.DataFrame | None = None
) -> pd.Series:
    """One digest per record of ``name`` (all, those ``ids``, or of ``frame`` read from it already)."""
    layout = mirror.layout(name)
    columns = [c for c, _ in _columns(mirror, name)]
    if frame is None and ids is not None and len(ids) > SCAN_ABOVE:
        # Many changed records (a full re-read): one scan beats id look-ups in chunks.
        frame = mirror.read_frame(name, columns)
        frame, _ = without_sentinels(frame[frame[layout.id_column].isin(ids)].reset_index(drop=True))
    elif frame is None:
        frame, _ = without_sentinels(mirror.read_frame(name, columns, ids=ids))
    if on_hashed is not None:
        on_hashed(name, len(frame))
    if frame.empty:
        return pd.Series([], index=pd.Index([], dtype=object), dtype="uint64")
    return pd.Series(
        hash_rows(frame, columns),
        index=pd.Index(frame[layout.id_column].astype(str).to_numpy(), dtype=object),
    )


def full_rows(
    mirror: Any, tables: Iterable[str], frames: Mapping[str, pd.DataFrame] | None = None
) -> RowState:
    """The digests of every record of ``tables`` (``frames``: a table already read in full, as
    :meth:`Mirror.read_frame` and :func:`without_sentinels` give it, is hashed from there)."""
    names = sorted(set(tables))
    versions = mirror.table_versions(names)
    return {
        name: {
            "version": versions[name],
            "columns": _columns(mirror, name),
            "digests": _digests(mirror, name, frame=(frames or {}).get(name)),
        }
        for name in names
    }


def check_rows(mirror: Any, saved: RowState | None, tables: Iterable[str]) -> tuple[bool, RowState | None]:
    """``(unchanged, rows)``: whether every record of ``tables`` holds the values ``saved`` was
    taken of, reading only the records changed since; ``rows`` is ``saved`` brought up to date
    (None when it cannot be, e.g. a table's columns changed: the caller takes :func:`full_rows`)."""
    names = sorted(set(tables))
    if not saved or sorted(saved) != names:
        return False, None
    versions = mirror.table_versions(names)
    unchanged = True
    rows: RowState = {}
    for name in names:
        entry = saved[name]
        if entry.get("columns") != _columns(mirror, name) or versions[name] < entry.get("version", 0):
            return False, None
        if versions[name] == entry["version"]:
            rows[name] = entry
            continue
        ids = sorted(set(mirror.changed_since(name, entry["version"])))
        fresh = _digests(mirror, name, ids)
        old: pd.Series = entry["digests"]
        known = old.index.intersection(pd.Index(ids, dtype=object))
        came = fresh.index.difference(old.index)
        went = known.difference(fresh.index)
        same_values = (fresh.reindex(known).to_numpy() == old.reindex(known).to_numpy()).all()
        if len(came) or len(went) or not same_values:
            unchanged = False
        digests = pd.concat([old.drop(known), fresh])
        rows[name] = {"version": versions[name], "columns": entry["columns"], "digests": digests}
    return unchanged, rows
