"""RFM: recency, frequency and monetary value per customer, quantile scores and named segments.

``score_rfm`` takes purchases (normally the output of ``jobs.customers.orders.prepare_orders``, so
that statuses, $0 orders and returns are treated as configured) and returns one row per customer.

Definitions (all as of ``as_of``; purchases after it are ignored):

* ``recency_days``: whole days from the last purchase day to ``as_of``'s day.
* ``frequency``: purchase days (several orders on one day count once, as in CLV).
* ``monetary``: total value of those purchases.

Scoring rule (deterministic, independent of row order): each measure is ranked over all customers
with ties sharing the lowest rank (``method="min"``), and the score is
``1 + floor(bins * (rank - 1) / n_customers)``. Customers with equal values therefore always get
equal scores, whatever their order in the input, and a large tie block takes the score of its
lowest member: when half the customers bought once, they all get F = 1 and the next score used is
F = 3 for ``bins = 5`` (score 2 stays empty rather than splitting identical customers). Recency is
ranked in reverse (most recent = ``bins``). No customer-id tie-break is needed because scores
depend on values only; rows come back sorted by customer id.

Segments come from ``mappings/rfm_segments.toml``: named segments that together assign every
score cell exactly once (see that file for the syntax). ``load_segments`` validates coverage for
the file's ``bins`` and names the cells and the entries involved in any gap or overlap.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.defaults import mappings_dir
from core.errors import ConfigError
from core.tomlfile import TomlFile, closest, load_toml
from jobs.customers.orders import validate_purchases
from jobs.moments import to_day

__all__ = ["DEFAULT_SEGMENTS_PATH", "Segment", "SegmentMap", "load_segments", "score_rfm"]

DEFAULT_SEGMENTS_PATH = mappings_dir() / "rfm_segments.toml"
_SELECTOR_KEYS = ("r", "f", "m", "fm", "cells")
_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


@dataclass(frozen=True)
class Segment:
    """A named segment: its description, suggested action and the cells it covers."""

    name: str
    description: str
    action: str
    cells: tuple[str, ...]


@dataclass(frozen=True)
class SegmentMap:
    """Segments that cover every R/F/M score cell of ``bins`` exactly once."""

    bins: int
    segments: tuple[Segment, ...]
    source: str = "<built>"

    def cell_lookup(self) -> dict[str, str]:
        """Map every cell ("545") to its segment name."""
        return {cell: seg.name for seg in self.segments for cell in seg.cells}


def score_rfm(
    orders: pd.DataFrame,
    *,
    as_of: date | datetime | str | pd.Timestamp,
    customer_col: str = "customer_id",
    date_col: str = "order_date",
    amount_col: str = "amount",
    bins: int = 5,
    segments: SegmentMap | str | Path | None = None,
) -> pd.DataFrame:
    """Score every customer on recency, frequency and monetary value and name their segment.

    Args:
        orders: purchases, one row per order or per purchase day (``prepare_orders`` output);
            amounts must be >= 0 (returns netted or excluded beforehand).
        as_of: the day the scores describe; purchases after it are ignored.
        customer_col, date_col, amount_col: column names in ``orders``.
        bins: scores run 1..bins (2 to 9, so a cell is one digit per measure).
        segments: a ``SegmentMap``, a path to a segments TOML file, or None for
            ``mappings/rfm_segments.toml`` (which is written for ``bins = 5``).

    Returns:
        One row per customer (index = customer id, sorted) with ``recency_days``, ``frequency``,
        ``monetary``, ``r_score``, ``f_score``, ``m_score``, ``rfm_cell`` and ``segment``.

    Raises:
        OrderDataError: missing columns, missing values or negative amounts in ``orders``.
        JobInputError: ``as_of`` is not a date.
        ConfigError: ``bins`` out of range, or a segment map written for another ``bins``.
    """
    if not isinstance(bins, int) or isinstance(bins, bool) or not 2 <= bins <= 9:
        raise ConfigError(f"rfm bins must be a whole number from 2 to 9, not {bins!r}", key="rfm.bins")
    segment_map = _resolve_segments(segments, bins)
    as_of_day = to_day(as_of, "as_of")
    customers, days = validate_purchases(
        orders,
        customer_col=customer_col,
        date_col=date_col,
        amount_col=amount_col,
        what="order",
        until=as_of_day,
    )
    # Rows are sorted by (customer, day): a customer's last purchase is the row before the next
    # customer's first.
    present = days.code[days.first_of_customer]
    last_rows = np.r_[np.flatnonzero(days.first_of_customer)[1:] - 1, len(days.code) - 1][: len(present)]
    n = len(customers)
    frequency = np.bincount(days.code, minlength=n)[present]
    monetary = np.bincount(days.code, weights=days.amount, minlength=n)[present]
    recency_days = (as_of_day.to_datetime64() - days.day[last_rows]) // np.timedelta64(1, "D")
    result = pd.DataFrame(
        {
            "recency_days": recency_days.astype("int64"),
            "frequency": frequency.astype("int64"),
            "monetary": monetary.astype(float),
        },
        index=pd.Index(customers[present], name=customer_col),
    )
    result["r_score"] = _quantile_scores(-result["recency_days"].to_numpy(), bins)
    result["f_score"] = _quantile_scores(result["frequency"].to_numpy(), bins)
    result["m_score"] = _quantile_scores(result["monetary"].to_numpy(), bins)
    # Cells and segments through lookup tables indexed by r*100 + f*10 + m (no per-row strings).
    cell_number = result["r_score"].to_numpy() * 100 + result["f_score"].to_numpy() * 10 + result["m_score"]
    cell_names = np.array([f"{i:03d}" for i in range(1000)], dtype=object)
    segment_names = np.full(1000, None, dtype=object)
    for cell, name in segment_map.cell_lookup().items():
        segment_names[int(cell)] = name
    result["rfm_cell"] = cell_names[cell_number.to_numpy()]
    result["segment"] = segment_names[cell_number.to_numpy()]
    return result


def _quantile_scores(values: np.ndarray, bins: int) -> np.ndarray:
    """Scores 1..bins from min-ranks: equal values get equal scores, whatever the row order."""
    n = len(values)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    ranks = pd.Series(values).rank(method="min").to_numpy()
    return (1 + np.floor(bins * (ranks - 1) / n)).astype(np.int64)


def _resolve_segments(segments: SegmentMap | str | Path | None, bins: int) -> SegmentMap:
    if segments is None:
        segments = DEFAULT_SEGMENTS_PATH
    if not isinstance(segments, SegmentMap):
        segments = load_segments(segments)
    if segments.bins != bins:
        raise ConfigError(
            f"the segment map {segments.source} is written for bins = {segments.bins}, but RFM is "
            f"scoring with bins = {bins}",
            hint="use the same bins in customer_value.toml and rfm_segments.toml",
        )
    return segments


# --------------------------------------------------------------------------------------------
# the segments file


def load_segments(path: str | Path) -> SegmentMap:
    """Read and validate a segments file (``mappings/rfm_segments.toml``).

    Raises:
        ConfigError: naming file:line [key] for a syntax error, an unknown key, a score outside
            1..bins, a duplicate name, or cells left unassigned or assigned twice.
    """
    doc = load_toml(path)
    return segments_from_toml(doc)


def segments_from_toml(doc: TomlFile) -> SegmentMap:
    """Build a SegmentMap from a parsed TOML document (see ``load_segments``)."""
    data = doc.data
    unknown = [k for k in data if k not in ("bins", "segment")]
    if unknown:
        raise doc.error(
            unknown[0], f"unknown key {unknown[0]!r}", _did_you_mean(unknown[0], ("bins", "segment"))
        )
    bins = data.get("bins")
    if not isinstance(bins, int) or isinstance(bins, bool) or not 2 <= bins <= 9:
        raise doc.error("bins", f"bins must be a whole number from 2 to 9, not {bins!r}")
    entries = data.get("segment")
    if not isinstance(entries, list) or not entries:
        raise doc.error("segment", "no [[segment]] entries", "add one [[segment]] table per named segment")
    segments: list[Segment] = []
    owner: dict[str, int] = {}
    overlaps: dict[str, list[int]] = {}
    seen_names: dict[str, int] = {}
    for index, entry in enumerate(entries):
        key = ("segment", index)
        if not isinstance(entry, dict):
            raise doc.error(key, "each segment must be a [[segment]] table")
        extra = [k for k in entry if k not in ("name", "description", "action", "match")]
        if extra:
            raise doc.error(
                (*key, extra[0]),
                f"unknown key {extra[0]!r} in a segment",
                _did_you_mean(extra[0], ("name", "description", "action", "match")),
            )
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise doc.error((*key, "name"), "every segment needs a non-empty name")
        if name in seen_names:
            raise doc.error(
                (*key, "name"), f"segment {name!r} is defined twice (also entry {seen_names[name] + 1})"
            )
        seen_names[name] = index
        for text_key in ("description", "action"):
            if not isinstance(entry.get(text_key, ""), str):
                raise doc.error((*key, text_key), f"{text_key} must be text")
        cells = _cells_of_entry(doc, key, entry, bins)
        for cell in cells:
            if cell in owner and owner[cell] != index:
                overlaps.setdefault(cell, [owner[cell]]).append(index)
            owner.setdefault(cell, index)
        segments.append(
            Segment(
                name=name,
                description=entry.get("description", ""),
                action=entry.get("action", ""),
                cells=tuple(sorted(cells)),
            )
        )
    if overlaps:
        first_cell = min(overlaps)
        involved = sorted({i for idx in overlaps.values() for i in idx})
        where = "; ".join(
            f"{entries[i]['name']!r} (line {doc.line_of(('segment', i, 'name'))})" for i in involved
        )
        raise doc.error(
            ("segment", overlaps[first_cell][-1], "match"),
            f"{len(overlaps)} cell(s) assigned to more than one segment: {_cell_list(overlaps)}; "
            f"entries involved: {where}",
            "each R/F/M cell must belong to exactly one segment; narrow one of the ranges",
        )
    all_cells = {"".join(map(str, c)) for c in product(range(1, bins + 1), repeat=3)}
    missing = sorted(all_cells - set(owner))
    if missing:
        raise doc.error(
            "segment",
            f"{len(missing)} of {len(all_cells)} cells belong to no segment: {_cell_list(missing)}",
            "every R/F/M cell needs a segment so no customer is left unlabelled; widen a range or "
            "add a cells list",
        )
    return SegmentMap(bins=bins, segments=tuple(segments), source=str(doc.path))


def _cells_of_entry(doc: TomlFile, key: tuple[Any, ...], entry: dict[str, Any], bins: int) -> set[str]:
    selectors = entry.get("match")
    if isinstance(selectors, dict):
        selectors = [selectors]
    if not isinstance(selectors, list) or not selectors:
        raise doc.error(
            (*key, "match"),
            'a segment needs match = [{ r = "4-5", fm = "4-5" }, ...] (a list of selectors)',
        )
    cells: set[str] = set()
    for selector in selectors:
        if not isinstance(selector, dict) or not selector:
            raise doc.error((*key, "match"), 'each selector is a table such as { r = "1-2", fm = "5" }')
        wrong = [k for k in selector if k not in _SELECTOR_KEYS]
        if wrong:
            raise doc.error(
                (*key, "match"),
                f"unknown selector key {wrong[0]!r}; use r, f, m, fm (mean of F and M, rounded up) or cells",
                _did_you_mean(wrong[0], _SELECTOR_KEYS),
            )
        if "cells" in selector:
            if len(selector) > 1:
                raise doc.error((*key, "match"), "a cells selector lists cells and nothing else")
            cells |= _explicit_cells(doc, key, selector["cells"], bins)
            continue
        allowed = {k: _score_set(doc, key, k, selector.get(k), bins) for k in ("r", "f", "m", "fm")}
        for r, f, m in product(range(1, bins + 1), repeat=3):
            fm = -(-(f + m) // 2)  # mean of F and M, rounded up
            if r in allowed["r"] and f in allowed["f"] and m in allowed["m"] and fm in allowed["fm"]:
                cells.add(f"{r}{f}{m}")
    return cells


def _score_set(doc: TomlFile, key: tuple[Any, ...], name: str, spec: Any, bins: int) -> set[int]:
    if spec is None:
        return set(range(1, bins + 1))
    items = spec if isinstance(spec, list) else [spec]
    scores: set[int] = set()
    for item in items:
        if isinstance(item, int) and not isinstance(item, bool):
            low = high = item
        else:
            match = _RANGE.match(str(item)) if isinstance(item, str) else None
            if not match:
                raise doc.error(
                    (*key, "match"), f'{name} = {spec!r} is not a score or range like "4-5" or [1, 3]'
                )
            low = int(match.group(1))
            high = int(match.group(2) or low)
        if not 1 <= low <= high <= bins:
            raise doc.error(
                (*key, "match"), f"{name} = {spec!r} is outside the scores 1..{bins} (bins = {bins})"
            )
        scores.update(range(low, high + 1))
    return scores


def _explicit_cells(doc: TomlFile, key: tuple[Any, ...], spec: Any, bins: int) -> set[str]:
    if not isinstance(spec, list) or not spec:
        raise doc.error((*key, "match"), 'cells must be a list such as ["555", "554"]')
    cells = set()
    for cell in spec:
        text = str(cell)
        if not (len(text) == 3 and text.isdigit() and all(1 <= int(c) <= bins for c in text)):
            raise doc.error(
                (*key, "match"), f'cell {cell!r} is not three scores from 1 to {bins} such as "545"'
            )
        cells.add(text)
    return cells


def _cell_list(cells: Iterable[str], limit: int = 12) -> str:
    ordered = sorted(cells)
    shown = ", ".join(ordered[:limit])
    return shown + (f" and {len(ordered) - limit} more" if len(ordered) > limit else "")


def _did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    guesses = closest(name, candidates)
    return f"did you mean {guesses[0]!r}?" if guesses else None
