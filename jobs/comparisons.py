"""Comparison kinds: how one field of two records is normalised and compared, and into which level.

A kind turns the similarity of two normalised values into a *comparison level*, an integer from 0
(the values disagree) up to the kind's top level (they are equal). The Fellegi-Sunter model in
:mod:`jobs.linkage_model` learns how much each level of each field says about a match; the levels
here only decide which differences are worth telling apart. Level ``-1`` means "missing on one
side" and carries no evidence either way.

========  ==========================================  ===================================================
kind      normalisation                               levels (lowest to highest)
========  ==========================================  ===================================================
name      :func:`normalize_name` (titles, accents)    low; medium: Jaro-Winkler >= 0.80 or an initial
                                                      ("J" vs "John"); high: Jaro-Winkler >= 0.92 or the
                                                      same formal name ("Bob" vs "Robert"); exact
company   :func:`normalize_company` (legal suffixes)  low; medium: token-set ratio >= 0.80; high: >= 0.92;
                                                      exact
text      :func:`normalize_text`                      low; medium: Indel ratio >= 0.75; high: >= 0.90; exact
address   :func:`normalize_address` (St, Rd, Ave)     low; medium: token-set ratio >= 0.75; high: >= 0.90;
                                                      exact
email     :func:`normalize_email` (plus-addressing)   low; medium: same local part at another domain;
                                                      high: Indel ratio >= 0.90 or 1 edit (a typo); exact
phone     :func:`normalize_phone` (E.164)             low; medium: one digit wrong or swapped; high: the
                                                      same last 8 digits; exact
postcode  :func:`normalize_postcode`                  low; medium: 2 edits; high: 1 edit; exact
date      :func:`normalize_date` (YYYYMMDD)           low; medium: same year and month or 2 edits; high:
                                                      1 edit or day and month swapped; exact
number    :func:`normalize_number`                    low; medium: within 10%; high: 1 digit edit; exact
exact     :func:`normalize_text`                      low; exact
========  ==========================================  ===================================================

Thresholds follow common record-linkage practice (Jaro-Winkler 0.92/0.80 are splink's and
recordlinkage's usual name cut-offs); the weight each level gets is learned, not set here.
Similarities come from rapidfuzz's vectorised ``process.cpdist`` and are computed once per distinct
pair of values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from rapidfuzz import fuzz
from rapidfuzz.distance import DamerauLevenshtein, Indel, JaroWinkler
from rapidfuzz.process import cpdist

from jobs import normalize as nz
from jobs.nicknames import NICKNAMES

__all__ = ["KINDS", "Kind", "compare_values", "prepare"]

Compare = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Kind:
    """A comparison kind.

    Attributes:
        name: the kind's name as written in ``fields``.
        levels: level names from the lowest (disagree) to the highest (exact).
        tf_adjust: whether exact agreement is weighted by how rare the value is, by default.
        blocking: the blocking-key transform the default blocking uses for this kind, or None when
            the kind is too coarse to block on (``number``, ``exact``).
        strong: whether equal values alone make a blocking pass (emails, phones, company names).
    """

    name: str
    levels: tuple[str, ...]
    tf_adjust: bool
    blocking: str | None
    strong: bool
    normalise: Callable[[pd.Series, str], pd.Series]
    compare: Compare


def _scores(scorer: Callable[..., float], a: np.ndarray, b: np.ndarray, scale: float = 1.0) -> np.ndarray:
    if len(a) == 0:
        return np.zeros(0, dtype=np.float64)
    out = cpdist(list(a), list(b), scorer=scorer, workers=-1, dtype=np.float32)
    return out.astype(np.float64) / scale


def _str(values: np.ndarray) -> pd.Series:
    return pd.Series(values, dtype=object)


def _formal(values: np.ndarray) -> np.ndarray:
    series = _str(values)
    formal = series.map(NICKNAMES)
    return formal.where(formal.notna(), series).to_numpy(dtype=object)


def _levels(conditions: list[np.ndarray], n: int) -> np.ndarray:
    """Level = index of the highest true condition (conditions listed from level 1 upwards), else 0."""
    level = np.zeros(n, dtype=np.int8)
    for value, condition in enumerate(conditions, start=1):
        level[condition] = value
    return level


def _ratio_kind(scorer: Callable[..., float], high: float, medium: float) -> Compare:
    def compare(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sim = _scores(scorer, a, b, 100.0)
        exact = a == b
        sim[exact] = 1.0
        return sim, _levels([sim >= medium, sim >= high, exact], len(a))

    return compare


def _compare_name(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sim = _scores(JaroWinkler.normalized_similarity, a, b)
    exact = a == b
    sim[exact] = 1.0
    sa, sb = _str(a), _str(b)
    one_letter = ((sa.str.len() == 1) | (sb.str.len() == 1)).to_numpy()
    initial = one_letter & (sa.str[:1] == sb.str[:1]).to_numpy()
    nickname = _formal(a) == _formal(b)
    return sim, _levels([(sim >= 0.80) | initial, (sim >= 0.92) | nickname, exact], len(a))


def _compare_email(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sim = _scores(Indel.normalized_similarity, a, b)
    edits = _scores(DamerauLevenshtein.distance, a, b)
    exact = a == b
    local_a = _str(a).str.split("@").str[0]
    local_b = _str(b).str.split("@").str[0]
    same_local = ((local_a == local_b) & (local_a.str.len() >= 3)).to_numpy()
    return sim, _levels([same_local, (sim >= 0.90) | (edits <= 1), exact], len(a))


def _compare_phone(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    edits = _scores(DamerauLevenshtein.distance, a, b)
    sim = _scores(Indel.normalized_similarity, a, b)
    exact = a == b
    same_tail = (_str(a).str[-8:] == _str(b).str[-8:]).to_numpy()
    return sim, _levels([edits <= 1, same_tail, exact], len(a))


def _compare_postcode(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    edits = _scores(DamerauLevenshtein.distance, a, b)
    sim = _scores(Indel.normalized_similarity, a, b)
    return sim, _levels([edits <= 2, edits <= 1, a == b], len(a))


def _compare_date(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    edits = _scores(DamerauLevenshtein.distance, a, b)
    sim = 1.0 - np.minimum(edits, 8) / 8.0
    # "YYYYMMDD" with day and month exchanged: a US/European entry mix-up.
    sa, sb = _str(a), _str(b)
    swapped_b = (sb.str[:4] + sb.str[6:8] + sb.str[4:6]).to_numpy(dtype=object)
    same_month = (sa.str[:6] == sb.str[:6]).to_numpy()
    return sim, _levels([same_month | (edits <= 2), (edits <= 1) | (a == swapped_b), a == b], len(a))


def _to_float(values: np.ndarray) -> np.ndarray:
    return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=np.float64)


def _compare_number(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    edits = _scores(DamerauLevenshtein.distance, a, b)
    x, y = _to_float(a), _to_float(b)
    scale = np.maximum(np.abs(x), np.abs(y))
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.where(scale > 0, np.abs(x - y) / scale, 0.0)
    relative = np.where(np.isnan(relative), 1.0, relative)
    sim = np.clip(1.0 - relative, 0.0, 1.0)
    exact = (a == b) | (x == y)
    sim[exact] = 1.0
    return sim, _levels([relative <= 0.10, edits <= 1, exact], len(a))


def _compare_exact(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    exact = a == b
    return exact.astype(np.float64), exact.astype(np.int8)


def _plain(function: Callable[[pd.Series], pd.Series]) -> Callable[[pd.Series, str], pd.Series]:
    return lambda series, _region: function(series)


_FOUR = ("low", "medium", "high", "exact")

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("name", _FOUR, True, "soundex", False, _plain(nz.normalize_name), _compare_name),
        Kind(
            "company",
            _FOUR,
            True,
            "prefix4",
            True,
            _plain(nz.normalize_company),
            _ratio_kind(fuzz.token_set_ratio, 0.92, 0.80),
        ),
        Kind(
            "text",
            _FOUR,
            True,
            "prefix4",
            False,
            _plain(nz.normalize_text),
            _ratio_kind(fuzz.ratio, 0.90, 0.75),
        ),
        Kind(
            "address",
            _FOUR,
            True,
            "prefix6",
            False,
            _plain(nz.normalize_address),
            _ratio_kind(fuzz.token_set_ratio, 0.90, 0.75),
        ),
        Kind("email", _FOUR, False, "exact", True, _plain(nz.normalize_email), _compare_email),
        Kind("phone", _FOUR, False, "exact", True, nz.normalize_phone, _compare_phone),
        Kind("postcode", _FOUR, True, "exact", False, _plain(nz.normalize_postcode), _compare_postcode),
        Kind("date", _FOUR, False, "exact", False, _plain(nz.normalize_date), _compare_date),
        Kind("number", _FOUR, False, None, False, _plain(nz.normalize_number), _compare_number),
        Kind("exact", ("low", "exact"), False, None, False, _plain(nz.normalize_text), _compare_exact),
    )
}
"""Every comparison kind by name."""


def prepare(series: pd.Series, kind: str, phone_region: str = "US") -> pd.Series:
    """Normalise one column for comparison as ``kind`` (see the table in the module docstring)."""
    return KINDS[kind].normalise(series, phone_region)


def compare_values(kind: str, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compare aligned arrays of non-missing normalised values; return (similarity 0..1, level)."""
    a = np.asarray(a, dtype=object)
    b = np.asarray(b, dtype=object)
    if len(a) == 0:
        return np.zeros(0, dtype=np.float64), np.zeros(0, dtype=np.int8)
    return KINDS[kind].compare(a, b)
