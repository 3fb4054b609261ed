"""Comparison kinds: how one field of two records is normalised and compared, and into which level.

A kind turns the similarity of two normalised values into a *comparison level*, an integer from 0
(the values disagree) up to the kind's top level (they are equal). The Fellegi-Sunter model in
:mod:`.linkage_model` learns how much each level of each field says about a match; the levels
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
email     :func:`normalize_email` (plus-addressing)   low; medium: same mailbox name at another domain;
                                                      high: one typo in the mailbox name or in the
                                                      domain; exact. Similarity: Jaro-Winkler of the
                                                      mailbox names, halved across domains
phone     :func:`normalize_phone` (E.164)             low; medium: one digit wrong or swapped; high: the
                                                      same last 8 digits; exact
postcode  :func:`normalize_postcode`                  low; medium: 2 edits; high: 1 edit; exact
date      :func:`normalize_date` (YYYYMMDD)           low; medium: same year and month or 2 edits; high:
                                                      1 edit or day and month swapped; exact
number    :func:`normalize_number`                    low; medium: within 10%; high: 1 digit edit; exact
exact     :func:`normalize_text`                      low; exact
========  ==========================================  ===================================================

The cut-offs are the customary ones of record linkage for names (Jaro-Winkler was built for them at
the US Census Bureau: Winkler, 1990) and were checked on FEBRL 1, 3 and 4 and the sandbox seed; they
only decide which differences are told apart, while the weight each level gets is learned from the
data, not set here.
Similarities come from rapidfuzz's vectorised ``process.cpdist`` and are computed once per distinct
pair of values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from rapidfuzz import fuzz
from rapidfuzz.distance import DamerauLevenshtein, Indel, JaroWinkler
from rapidfuzz.process import cpdist

from jobs.leads.duplicates import normalize as nz
from jobs.leads.duplicates.nicknames import NICKNAMES

__all__ = ["KINDS", "Derived", "Kind", "compare_codes", "compare_values", "derive", "prepare"]

Derived = dict[str, np.ndarray]
"""Features of each distinct value that a kind compares by (an e-mail's domain, a name's formal
form), aligned with the array of values."""
Compare = Callable[[np.ndarray, np.ndarray, np.ndarray, "Derived | None"], tuple[np.ndarray, np.ndarray]]


def _nothing_derived(_values: np.ndarray) -> Derived:
    return {}


@dataclass(frozen=True)
class Kind:
    """A comparison kind.

    Attributes:
        name: the kind's name as written in ``fields``.
        levels: level names from the lowest (disagree) to the highest (exact).
        tf_adjust: whether exact agreement is weighted by how rare the value is, by default.
        blocking: the blocking-key transform the default blocking uses for this kind, or None when
            the kind is too coarse to block on (``number``, ``exact``).
        role: the kind's role in default blocking: ``"unique"`` (equal values alone make a pass:
            emails, phones), ``"identity"`` (says who: names, company, date), ``"location"`` (says
            where: address, text such as a city, postcode) or None (not blocked on).
        derive: the features of each distinct value ``compare`` uses (see :func:`derive`).
    """

    name: str
    levels: tuple[str, ...]
    tf_adjust: bool
    blocking: str | None
    role: str | None
    normalise: Callable[[pd.Series, str], pd.Series]
    compare: Compare
    derive: Callable[[np.ndarray], Derived] = _nothing_derived


def _scores(
    scorer: Callable[..., float], values: np.ndarray, ia: np.ndarray, ib: np.ndarray, scale: float = 1.0
) -> np.ndarray:
    """``scorer`` on each pair ``(values[ia], values[ib])``, vectorised in rapidfuzz's C++ code."""
    if len(ia) == 0:
        return np.zeros(0, dtype=np.float64)
    out = cpdist(values[ia].tolist(), values[ib].tolist(), scorer=scorer, workers=-1, dtype=np.float32)
    return out.astype(np.float64) / scale


def _codes(derived: pd.Series) -> np.ndarray:
    """Integer code per distinct value (equal derived values, equal codes; missing never equal)."""
    codes, _ = pd.factorize(derived, use_na_sentinel=True)
    codes = codes.astype(np.int64)
    missing = codes < 0
    codes[missing] = -1 - np.flatnonzero(missing)  # each missing value unequal to everything
    return codes


def _levels(conditions: list[np.ndarray], n: int) -> np.ndarray:
    """Level = index of the highest true condition (conditions listed from level 1 upwards), else 0."""
    level = np.zeros(n, dtype=np.int8)
    for value, condition in enumerate(conditions, start=1):
        level[condition] = value
    return level


# Each comparison gets the distinct normalised values of a column and, per pair, the positions of
# its two values in that array (so equal positions mean equal values). Features of a value
# (nickname, local part of an email) are derived once per distinct value by the kind's ``derive``,
# then indexed per pair; a caller comparing many chunks of pairs over the same values derives them
# once and passes them (``derived``), otherwise each call derives them for the values it is given.


def _ratio_kind(scorer: Callable[..., float], high: float, medium: float) -> Compare:
    def compare(
        values: np.ndarray, ia: np.ndarray, ib: np.ndarray, derived: Derived | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        sim = _scores(scorer, values, ia, ib, 100.0)
        exact = ia == ib
        sim[exact] = 1.0
        return sim, _levels([sim >= medium, sim >= high, exact], len(ia))

    return compare


def _derive_name(values: np.ndarray) -> Derived:
    text = pd.Series(values, dtype=object)
    formal = text.map(NICKNAMES)
    return {
        "formal": _codes(formal.where(formal.notna(), text)),
        "one_letter": (text.str.len() == 1).to_numpy(dtype=bool),
        "first": _codes(text.str[:1]),
    }


def _compare_name(
    values: np.ndarray, ia: np.ndarray, ib: np.ndarray, derived: Derived | None = None
) -> tuple[np.ndarray, np.ndarray]:
    sim = _scores(JaroWinkler.normalized_similarity, values, ia, ib)
    exact = ia == ib
    sim[exact] = 1.0
    derived = _derive_name(values) if derived is None else derived
    formal, one_letter, first = derived["formal"], derived["one_letter"], derived["first"]
    initial = (one_letter[ia] | one_letter[ib]) & (first[ia] == first[ib])
    nickname = formal[ia] == formal[ib]
    return sim, _levels([(sim >= 0.80) | initial, (sim >= 0.92) | nickname, exact], len(ia))


def _derive_email(values: np.ndarray) -> Derived:
    # Compare the mailbox and the domain apart: colleagues' addresses share a long domain, so a
    # whole-address similarity would call "liam.debruin@acme.nl" and "dirk.debruin@acme.nl" close.
    parts = pd.Series(values, dtype=object).str.rpartition("@")
    local = parts[0].where(parts[1] == "@", parts[2]).to_numpy(dtype=object)
    domain = parts[2].where(parts[1] == "@", "").to_numpy(dtype=object)
    return {
        "local": local,
        "domain": domain,
        "local_codes": _codes(pd.Series(local)),
        "domain_codes": _codes(pd.Series(domain)),
        "long_local": pd.Series(local).str.len().to_numpy() >= 3,
    }


def _compare_email(
    values: np.ndarray, ia: np.ndarray, ib: np.ndarray, derived: Derived | None = None
) -> tuple[np.ndarray, np.ndarray]:
    derived = _derive_email(values) if derived is None else derived
    local, domain = derived["local"], derived["domain"]
    local_codes, domain_codes = derived["local_codes"], derived["domain_codes"]
    local_edits = _scores(DamerauLevenshtein.distance, local, ia, ib)
    domain_edits = _scores(DamerauLevenshtein.distance, domain, ia, ib)
    same_local = local_codes[ia] == local_codes[ib]
    same_domain = domain_codes[ia] == domain_codes[ib]
    sim = _scores(JaroWinkler.normalized_similarity, local, ia, ib)
    sim = np.where(same_domain, sim, sim * 0.5)
    exact = ia == ib
    sim[exact] = 1.0
    long_local = derived["long_local"]
    typo = (same_domain & (local_edits <= 1) & long_local[ia]) | (same_local & (domain_edits <= 1))
    elsewhere = same_local & long_local[ia]
    return sim, _levels([elsewhere, typo, exact], len(ia))


def _derive_phone(values: np.ndarray) -> Derived:
    return {"tail": _codes(pd.Series(values, dtype=object).str[-8:])}


def _compare_phone(
    values: np.ndarray, ia: np.ndarray, ib: np.ndarray, derived: Derived | None = None
) -> tuple[np.ndarray, np.ndarray]:
    edits = _scores(DamerauLevenshtein.distance, values, ia, ib)
    sim = _scores(Indel.normalized_similarity, values, ia, ib)
    tail = (_derive_phone(values) if derived is None else derived)["tail"]
    return sim, _levels([edits <= 1, tail[ia] == tail[ib], ia == ib], len(ia))


def _compare_postcode(
    values: np.ndarray, ia: np.ndarray, ib: np.ndarray, derived: Derived | None = None
) -> tuple[np.ndarray, np.ndarray]:
    edits = _scores(DamerauLevenshtein.distance, values, ia, ib)
    sim = _scores(Indel.normalized_similarity, values, ia, ib)
    return sim, _levels([edits <= 2, edits <= 1, ia == ib], len(ia))


def _derive_date(values: np.ndarray) -> Derived:
    text = pd.Series(values, dtype=object)
    # "YYYYMMDD" with day and month exchanged (a US/European entry mix-up): code both spellings in
    # one space, so a value's swapped spelling equals the other value's code.
    swapped_text = text.str[:4] + text.str[6:8] + text.str[4:6]
    joint, _ = pd.factorize(pd.concat([text, swapped_text], ignore_index=True))
    return {"month": _codes(text.str[:6]), "plain": joint[: len(text)], "swapped": joint[len(text) :]}


def _compare_date(
    values: np.ndarray, ia: np.ndarray, ib: np.ndarray, derived: Derived | None = None
) -> tuple[np.ndarray, np.ndarray]:
    edits = _scores(DamerauLevenshtein.distance, values, ia, ib)
    sim = 1.0 - np.minimum(edits, 8) / 8.0
    derived = _derive_date(values) if derived is None else derived
    month, plain, swapped = derived["month"], derived["plain"], derived["swapped"]
    day_month = swapped[ia] == plain[ib]
    return sim, _levels(
        [(month[ia] == month[ib]) | (edits <= 2), (edits <= 1) | day_month, ia == ib], len(ia)
    )


def _derive_number(values: np.ndarray) -> Derived:
    numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce")
    return {"numbers": numbers.to_numpy(dtype=np.float64)}


def _compare_number(
    values: np.ndarray, ia: np.ndarray, ib: np.ndarray, derived: Derived | None = None
) -> tuple[np.ndarray, np.ndarray]:
    edits = _scores(DamerauLevenshtein.distance, values, ia, ib)
    numbers = (_derive_number(values) if derived is None else derived)["numbers"]
    x, y = numbers[ia], numbers[ib]
    scale = np.maximum(np.abs(x), np.abs(y))
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.where(scale > 0, np.abs(x - y) / scale, 0.0)
    relative = np.where(np.isnan(relative), 1.0, relative)
    sim = np.clip(1.0 - relative, 0.0, 1.0)
    exact = (ia == ib) | (x == y)
    sim[exact] = 1.0
    return sim, _levels([relative <= 0.10, edits <= 1, exact], len(ia))


def _compare_exact(
    values: np.ndarray, ia: np.ndarray, ib: np.ndarray, derived: Derived | None = None
) -> tuple[np.ndarray, np.ndarray]:
    exact = ia == ib
    return exact.astype(np.float64), exact.astype(np.int8)


def _plain(function: Callable[[pd.Series], pd.Series]) -> Callable[[pd.Series, str], pd.Series]:
    return lambda series, _region: function(series)


_FOUR = ("low", "medium", "high", "exact")

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            "name", _FOUR, True, "soundex", "identity", _plain(nz.normalize_name), _compare_name, _derive_name
        ),
        Kind(
            "company",
            _FOUR,
            True,
            "prefix4",
            "identity",
            _plain(nz.normalize_company),
            _ratio_kind(fuzz.token_set_ratio, 0.92, 0.80),
        ),
        Kind(
            "text",
            _FOUR,
            True,
            "prefix4",
            "location",
            _plain(nz.normalize_text),
            _ratio_kind(fuzz.ratio, 0.90, 0.75),
        ),
        Kind(
            "address",
            _FOUR,
            True,
            "prefix6",
            "location",
            _plain(nz.normalize_address),
            _ratio_kind(fuzz.token_set_ratio, 0.90, 0.75),
        ),
        Kind(
            "email",
            _FOUR,
            False,
            "exact",
            "unique",
            _plain(nz.normalize_email),
            _compare_email,
            _derive_email,
        ),
        Kind("phone", _FOUR, False, "exact", "unique", nz.normalize_phone, _compare_phone, _derive_phone),
        Kind("postcode", _FOUR, True, "exact", "location", _plain(nz.normalize_postcode), _compare_postcode),
        Kind(
            "date", _FOUR, False, "exact", "identity", _plain(nz.normalize_date), _compare_date, _derive_date
        ),
        Kind(
            "number", _FOUR, False, None, None, _plain(nz.normalize_number), _compare_number, _derive_number
        ),
        Kind("exact", ("low", "exact"), False, None, None, _plain(nz.normalize_text), _compare_exact),
    )
}
"""Every comparison kind by name."""


def prepare(series: pd.Series, kind: str, phone_region: str = "US") -> pd.Series:
    """Normalise one column for comparison as ``kind`` (see the table in the module docstring)."""
    return KINDS[kind].normalise(series, phone_region)


def derive(kind: str, values: np.ndarray) -> Derived:
    """The features ``kind`` compares ``values`` (distinct normalised values) by, for
    :func:`compare_codes`: derived once for a column, they serve any number of chunks of pairs."""
    return KINDS[kind].derive(np.asarray(values, dtype=object))


def compare_codes(
    kind: str, values: np.ndarray, ia: np.ndarray, ib: np.ndarray, derived: Derived | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Compare pairs given as positions into ``values``, an array of *distinct* normalised values.

    ``derived``: :func:`derive` of the same ``values`` (computed once by a caller that compares
    many chunks of pairs), or None to derive what this call needs.

    Returns the similarity (0..1) and the comparison level of each pair.
    """
    if len(ia) == 0:
        return np.zeros(0, dtype=np.float64), np.zeros(0, dtype=np.int8)
    values = np.asarray(values, dtype=object)
    if derived is not None:
        return KINDS[kind].compare(values, ia, ib, derived)
    if len(values) > 2 * len(ia):
        # A few pairs among many values: derive features (an e-mail's domain, a name's nickname)
        # only for the values these pairs use; positions stay distinct per value, so every level
        # is the same. (A caller comparing a table chunk by chunk passes ``derived`` instead: per
        # chunk, even this grew as the chunks times their values, 4 derivations per value at 1M.)
        used, inverse = np.unique(np.concatenate([ia, ib]), return_inverse=True)
        values, ia, ib = values[used], inverse[: len(ia)], inverse[len(ia) :]
    return KINDS[kind].compare(values, ia, ib)


def compare_values(kind: str, a: Sequence[str], b: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Compare aligned sequences of non-missing normalised values; return (similarity 0..1, level)."""
    codes, uniques = pd.factorize(pd.Series([*a, *b], dtype=object))
    return compare_codes(kind, np.asarray(uniques, dtype=object), codes[: len(a)], codes[len(a) :])
