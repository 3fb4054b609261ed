"""Duplicate detection: explainable, unsupervised record linkage for CRM tables.

Pipeline for one run (each step in its own module):

1. **Normalise** every compared column by its kind (:mod:`.comparisons`, :mod:`.normalize`).
2. **Block** (:mod:`.blocking`): the union of several blocking passes, derived from the field
   kinds unless given, decides which pairs are compared; a :class:`~.blocking.BlockingReport`
   tells how many and what was capped.
3. **Compare** each field of each candidate pair into a comparison level (vectorised with
   rapidfuzz, once per distinct pair of values). Two name fields may be swapped (first and last
   name exchanged): when crossing them fits better, the crossed comparison is used and the
   evidence says so.
4. **Score** with a Fellegi-Sunter model fitted by EM without labels, with classes for look-alike
   non-matches (colleagues sharing a company's phone and address; namesakes) and term-frequency
   adjustment (:mod:`jobs.leads.duplicates.linkage_model`): ``score`` is the posterior match probability.
   ``link_records`` fits on both tables as one and scores the cross-table pairs.
5. **Decide**: pairs scoring at least the threshold are returned. The default threshold is 0.5, the
   point where the fitted model says a match is more likely than not (the Bayes decision for equal
   costs of a false merge and a missed one).

Grouping pairs into duplicate groups with a suggested master record is :func:`.clustering.cluster`.

Output schema of :func:`find_duplicates` and :func:`link_records` (one row per matched pair,
highest score first):

=========  =======================================================================================
id_left    id of the first record (in ``link_records``: the left table's record)
id_right   id of the second record (in ``link_records``: the right table's record)
score      match probability, 0..1
evidence   ``dict`` per pair, keyed by compared column, each value a ``dict`` with ``level``
           (``"exact"``, ``"high"``, ``"medium"``, ``"low"`` or ``"missing"``), ``agreed`` (True when
           the values agree: level exact or high; False otherwise; None when missing on a side),
           ``similarity`` (0..1, None when missing), ``weight`` (the log2 Bayes factor the field
           added against the pair's likeliest non-match explanation, term-frequency adjustment
           included; positive for, negative against: a city both records share can still count
           slightly against when colleagues share it more often than duplicates do) and, only for
           swapped names,
           ``swapped: True``. Plain Python values, so ``json.dumps`` works as is.
=========  =======================================================================================

Kept as one module on purpose: both entry points share every private step above (normalise,
block, compare, fit, weigh, explain), which read best in the order a run takes them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, Unpack, overload

import numpy as np
import pandas as pd

from core.errors import ConfigError
from core.tomlfile import closest
from jobs.errors import JobError
from jobs.leads.duplicates.blocking import (
    DEFAULT_MAX_BLOCK_SIZE,
    BlockingPass,
    BlockingReport,
    ColumnCodes,
    candidate_pairs,
    column_codes,
    default_passes,
    parse_pass,
    record_order,
    refinement_keys,
)
from jobs.leads.duplicates.comparisons import KINDS, Derived, compare_codes, derive, prepare
from jobs.leads.duplicates.incremental import MatchCache, NormalisedValues, record_digests
from jobs.leads.duplicates.incremental import signature as settings_signature
from jobs.leads.duplicates.linkage_model import (
    PERSONAL_KINDS,
    LinkageModel,
    build_model,
    check_compatible,
    default_m,
    fit_em,
    term_frequency_weights,
    u_from_random_pairs,
)

__all__ = [
    "DEFAULT_THRESHOLD",
    "DuplicateResult",
    "FieldSpec",
    "MatchOptions",
    "find_duplicates",
    "link_records",
]

DEFAULT_THRESHOLD = 0.5
"""Posterior match probability at which a pair is called a duplicate when no threshold is given."""
MIN_PAIRS_FOR_EM = 200
"""Fewer candidate pairs than this cannot teach EM much: the model then uses default m
probabilities, u from random pairs and a prior of one match per record."""
RANDOM_PAIRS = 200_000
"""Random record pairs compared to estimate u for the default model (all pairs when there are fewer)."""
CHUNK_PAIRS = 250_000
"""Candidate pairs compared and scored at a time, so the working memory is bounded by the chunk."""
SWAP_MARGIN = 0.1
"""How much better (summed similarity) crossing two name fields must fit to count as a swap."""

PAIR_COLUMNS = ["id_left", "id_right", "score", "evidence"]


@dataclass(frozen=True)
class FieldSpec:
    """How one column is compared.

    Attributes:
        kind: a comparison kind from :data:`jobs.leads.duplicates.comparisons.KINDS`.
        tf_adjust: weight exact agreement by the value's rarity; None uses the kind's default
            (on for name, company, text, address and postcode).
    """

    kind: str
    tf_adjust: bool | None = None


FieldsArg = Mapping[str, "str | FieldSpec"]
BlockingArg = Sequence["Sequence[str] | str | BlockingPass"] | None


class MatchOptions(TypedDict, total=False):
    """How :func:`find_duplicates` and :func:`link_records` block, fit and cut; every key optional.

    Keys:
        blocking: blocking passes, each a list of key parts such as
            ``["last_name:soundex", "first_name:initial"]`` (see :mod:`.blocking`); None (the
            default) derives them from the field kinds.
        threshold: the score (match probability) a pair needs to be returned; None uses
            :data:`DEFAULT_THRESHOLD` (0.5).
        swap_names: two ``name`` columns that may be exchanged (first and last name); ``"auto"``
            (the default) uses the two name columns when there are exactly two; None disables.
        phone_region: the ISO country whose national format phone numbers without a country code
            are read in (``"US"`` by default; ``"GB"``, ``"DE"``...).
        max_block_size: block-size cap; larger blocks are paired within a sorted window.
        model: a model from an earlier run to score with instead of fitting one.
        seed: seed of the random pairs used to estimate u (results are reproducible); 0 by default.
        cache: what the last run on this table kept (:class:`.incremental.MatchCache`, updated in
            place): only pairs involving a changed record are compared, and its model is reused
            until the data drifts. The result equals a run without it given the same model.
        normalised: values already normalised (:class:`.incremental.NormalisedValues`), shared by
            the calls of a run and kept between runs; only unseen values are normalised.
    """

    blocking: BlockingArg
    threshold: float | None
    swap_names: tuple[str, str] | Literal["auto"] | None
    phone_region: str
    max_block_size: int
    model: LinkageModel | None
    seed: int
    cache: MatchCache | None
    normalised: NormalisedValues | None


_DEFAULT_OPTIONS: MatchOptions = {
    "blocking": None,
    "threshold": None,
    "swap_names": "auto",
    "phone_region": "US",
    "max_block_size": DEFAULT_MAX_BLOCK_SIZE,
    "model": None,
    "seed": 0,
    "cache": None,
    "normalised": None,
}


def _options(given: Mapping[str, Any], function: str) -> dict[str, Any]:
    """The defaults overlaid with ``given``; an unknown keyword is a TypeError naming the closest."""
    unknown = [k for k in given if k not in _DEFAULT_OPTIONS]
    if unknown:
        near = closest(unknown[0], _DEFAULT_OPTIONS)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise TypeError(f"{function}() got an unexpected keyword argument {unknown[0]!r}{hint}")
    return {**_DEFAULT_OPTIONS, **given}


@dataclass(frozen=True)
class DuplicateResult:
    """Everything one run produced, for callers that want more than the pairs.

    Attributes:
        pairs: the matched pairs (schema in the module docstring).
        blocking: the blocking report: records, candidate pairs, reduction ratio, capping.
        model: the Fellegi-Sunter model used (fitted, default or given); reusable via ``model=``.
        threshold: the score threshold applied.
        candidates: every candidate pair with ``id_left``, ``id_right`` and ``score`` (no evidence),
            for threshold studies and diagnostics.
    """

    pairs: pd.DataFrame
    blocking: BlockingReport
    model: LinkageModel
    threshold: float
    candidates: pd.DataFrame


def field_specs(fields: FieldsArg, columns: Sequence[str], where: str) -> dict[str, FieldSpec]:
    if not fields:
        raise ConfigError("no fields to compare", hint="pass fields={'email': 'email', ...}")
    specs: dict[str, FieldSpec] = {}
    for column, spec in fields.items():
        spec = spec if isinstance(spec, FieldSpec) else FieldSpec(str(spec))
        if spec.kind not in KINDS:
            near = closest(spec.kind, KINDS)
            raise ConfigError(
                f"unknown comparison kind {spec.kind!r} for column {column!r}",
                key=f"fields.{column}",
                hint=(f"did you mean {near[0]!r}? " if near else "") + f"kinds: {', '.join(KINDS)}",
            )
        if column not in columns:
            near = closest(column, columns)
            raise ConfigError(
                f"column {column!r} is not in {where}",
                key=f"fields.{column}",
                hint=f"did you mean {near[0]!r}?" if near else f"columns: {', '.join(map(str, columns))}",
            )
        specs[column] = spec
    return specs


def swap_pair(swap_names: object, specs: Mapping[str, FieldSpec]) -> tuple[str, str] | None:
    names = [c for c, s in specs.items() if s.kind == "name"]
    if swap_names == "auto":
        return (names[0], names[1]) if len(names) == 2 else None
    if swap_names is None:
        return None
    pair = tuple(swap_names)  # type: ignore[arg-type]
    if len(pair) != 2 or any(c not in names for c in pair):
        raise ConfigError(
            f"swap_names must be two compared columns of kind 'name', got {list(pair)}",
            key="swap_names",
            hint=f"name columns here: {names}",
        )
    return pair  # type: ignore[return-value]


def _check_ids(ids: pd.Series, label: str) -> None:
    if ids.isna().any():
        raise JobError(f"{int(ids.isna().sum())} records in {label} have no id; every record needs one")
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        raise JobError(
            f"{len(duplicated)} ids in {label} occur more than once (first: {duplicated.iloc[0]!r}); "
            "ids must be unique"
        )


def check_threshold(threshold: float | None) -> float:
    if threshold is None:
        return DEFAULT_THRESHOLD
    value = float(threshold)
    if not 0.0 < value < 1.0:
        raise ConfigError(
            f"threshold {threshold!r} is not a probability between 0 and 1 (exclusive)",
            key="threshold",
            hint="use e.g. 0.5 (more likely a match than not) or 0.9 (stricter); omit it for the default",
        )
    return value


def blocking_passes(
    blocking: BlockingArg, specs: Mapping[str, FieldSpec], swap: tuple[str, str] | None
) -> list[BlockingPass]:
    """The run's blocking passes: given ones parsed, or derived from the field kinds."""
    if blocking is None:
        return default_passes({c: s.kind for c, s in specs.items()}, swap)
    passes = []
    for index, spec in enumerate(blocking):
        if isinstance(spec, BlockingPass):
            passes.append(spec)
            continue
        try:
            passes.append(parse_pass(spec, list(specs)))
        except ValueError as exc:
            raise ConfigError(str(exc), key=f"blocking.passes[{index}]") from None
    return passes


class Comparator:
    """Compares candidate pairs field by field, each distinct pair of values once."""

    def __init__(
        self,
        prepared: Mapping[str, pd.Series],
        specs: Mapping[str, FieldSpec],
        swap: tuple[str, str] | None,
        coded: ColumnCodes | None = None,
    ) -> None:
        self.columns = list(specs)
        self.kinds = [specs[c].kind for c in self.columns]
        self.swap = swap
        self.codes: dict[str, np.ndarray] = {}
        self.uniques: dict[str, np.ndarray] = {}
        # Each column's features (an e-mail's domain, a name's formal form), derived once per
        # distinct value on first use and shared by every chunk (and by the two swapped names).
        self._derived: dict[tuple[str, int], Derived] = {}
        joint = [list(swap)] if swap else []
        for column in self.columns:
            if swap and column in swap:
                continue
            joint.append([column])
        coded = coded if coded is not None else column_codes(prepared, self.columns)
        for group in joint:
            if len(group) == 1:
                self.codes[group[0]], self.uniques[group[0]] = coded[group[0]]
                continue
            # The swappable names share one coding: each column's distinct values coded together
            # (the numbering of factorizing the two columns' records one after the other).
            stacked = pd.concat([pd.Series(coded[c][1], dtype=object) for c in group], ignore_index=True)
            joint_codes, uniques = pd.factorize(stacked, use_na_sentinel=True)
            uniques_arr = np.asarray(uniques, dtype=object)
            start = 0
            for column in group:
                codes, distinct = coded[column]
                of_value = np.append(joint_codes[start : start + len(distinct)].astype(np.int64), -1)
                self.codes[column] = of_value[codes]
                self.uniques[column] = uniques_arr
                start += len(distinct)

    def release(self) -> None:
        """Drop the codes, values and features (the comparator cannot compare afterwards)."""
        self.codes.clear()
        self.uniques.clear()
        self._derived.clear()

    def _features(self, kind: str, uniques: np.ndarray) -> Derived:
        key = (kind, id(uniques))  # the arrays live as long as the comparator
        if key not in self._derived:
            self._derived[key] = derive(kind, uniques)
        return self._derived[key]

    def _pairwise(
        self, kind: str, uniques: np.ndarray, a: np.ndarray, b: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Similarity and level per pair of codes (-1 level where a code is missing)."""
        sim = np.full(len(a), np.nan, dtype=np.float64)
        level = np.full(len(a), -1, dtype=np.int8)
        present = (a >= 0) & (b >= 0)
        if not present.any():
            return sim, level
        size = len(uniques) + 1
        combos, inverse = np.unique(a[present] * size + b[present], return_inverse=True)
        features = self._features(kind, uniques)
        u_sim, u_level = compare_codes(kind, uniques, combos // size, combos % size, features)
        sim[present] = u_sim[inverse]
        level[present] = u_level[inverse]
        return sim, level

    def compare(self, first: np.ndarray, second: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return levels (pairs x fields, int8), similarities (float) and the swapped-names flag."""
        n, f = len(first), len(self.columns)
        levels = np.empty((n, f), dtype=np.int8)
        sims = np.empty((n, f), dtype=np.float32)
        for index, (column, kind) in enumerate(zip(self.columns, self.kinds, strict=True)):
            codes = self.codes[column]
            sims[:, index], levels[:, index] = self._pairwise(
                kind, self.uniques[column], codes[first], codes[second]
            )
        swapped = np.zeros(n, dtype=bool)
        if self.swap:
            a, b = self.swap
            ia, ib = self.columns.index(a), self.columns.index(b)
            uniques = self.uniques[a]
            ca, cb = self.codes[a], self.codes[b]
            sim_ab, lev_ab = self._pairwise("name", uniques, ca[first], cb[second])
            sim_ba, lev_ba = self._pairwise("name", uniques, cb[first], ca[second])
            straight = np.nan_to_num(sims[:, ia]) + np.nan_to_num(sims[:, ib])
            crossed = np.nan_to_num(sim_ab) + np.nan_to_num(sim_ba)
            # Both crossed names must be present and close, and crossing must fit clearly better.
            swapped = (lev_ab >= 2) & (lev_ba >= 2) & (crossed > straight + SWAP_MARGIN)
            sims[swapped, ia], levels[swapped, ia] = sim_ab[swapped], lev_ab[swapped]
            sims[swapped, ib], levels[swapped, ib] = sim_ba[swapped], lev_ba[swapped]
        return levels, sims, swapped


def random_pairs(
    n: int, n_left: int | None, count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``count`` random record pairs (all pairs when there are fewer), as index arrays."""
    if n_left is None:
        total = n * (n - 1) // 2
        if total <= count:
            first, second = np.triu_indices(n, k=1)
            return first.astype(np.int64), second.astype(np.int64)
        first = rng.integers(0, n, size=count)
        second = rng.integers(0, n - 1, size=count)
        second = np.where(second >= first, second + 1, second)
        return np.minimum(first, second), np.maximum(first, second)
    n_right = n - n_left
    if n_left * n_right <= count:
        grid = np.indices((n_left, n_right)).reshape(2, -1)
        return grid[0].astype(np.int64), (grid[1] + n_left).astype(np.int64)
    return rng.integers(0, n_left, size=count), rng.integers(n_left, n, size=count)


def fit_model(
    specs: Mapping[str, FieldSpec],
    levels: np.ndarray,
    n: int,
    n_left: int | None,
    seed: int,
    compare_random: Callable[[np.ndarray, np.ndarray], np.ndarray],
    counts: np.ndarray | None = None,
) -> LinkageModel:
    """Fit the model on the candidate pairs' levels (or their patterns with ``counts``).

    ``compare_random(first, second)`` returns the levels of record pairs given as positions
    (0..n-1); it is called only for the default model (too few pairs), on random pairs.
    """
    columns = list(specs)
    kinds = [specs[c].kind for c in columns]
    pairs = len(levels) if counts is None else int(np.sum(counts))
    level_names = [KINDS[k].levels for k in kinds]
    n_levels = [len(names) for names in level_names]
    tf_flags = [
        KINDS[specs[c].kind].tf_adjust if specs[c].tf_adjust is None else specs[c].tf_adjust for c in columns
    ]
    if pairs < MIN_PAIRS_FOR_EM:
        # Too few pairs to learn from: u from random pairs (almost all unrelated), default m and a
        # prior of one match per record.
        first, second = random_pairs(n, n_left, RANDOM_PAIRS, np.random.default_rng(seed))
        random_levels = compare_random(first, second)
        u = u_from_random_pairs(random_levels, n_levels)
        others = (n - n_left) if n_left is not None else n - 1
        prior = 1.0 / max(others, 2)
        m = [default_m(k) for k in n_levels]
        return build_model(columns, kinds, level_names, tf_flags, m, u, prior, source="default", pairs=pairs)
    # Besides unrelated pairs, candidates hold pairs that are alike for another reason than being
    # one entity (colleagues, namesakes); each gets its own class (see jobs.leads.duplicates.linkage_model).
    roles = ["name" if k == "name" else "personal" if k in PERSONAL_KINDS else "shared" for k in kinds]
    result = fit_em(levels, n_levels, counts=counts, roles=roles)
    return build_model(
        columns,
        kinds,
        level_names,
        tf_flags,
        result.m,
        result.u,
        result.prior,
        alternative_classes=result.alternative_classes,
        alternatives=result.alternatives,
        alternative_shares=result.alternative_shares,
        source="em",
        iterations=result.iterations,
        converged=result.converged,
        anchored=result.anchored,
        pairs=pairs,
    )


def _tf_weights(
    comparator: Comparator, model: LinkageModel, levels: np.ndarray, first: np.ndarray
) -> np.ndarray:
    """Term-frequency corrections (log2) per pair and field, non-zero only on exact agreement."""
    out = np.zeros(levels.shape, dtype=np.float32)
    for index, field_model in enumerate(model.fields):
        if not field_model.tf_adjust:
            continue
        codes = comparator.codes[field_model.column]
        exact = levels[:, index] == len(field_model.levels) - 1
        # The agreed value is the first record's value of this field (for swapped names too: the
        # second record holds it in the other name field).
        out[exact, index] = term_frequency_weights(codes[first[exact]], codes)
    return out


def evidence_rows(
    columns: Sequence[str],
    level_names: Sequence[tuple[str, ...]],
    levels: np.ndarray,
    sims: np.ndarray,
    weights: np.ndarray,
    swapped: np.ndarray,
    swap: tuple[str, str] | None,
) -> list[dict[str, dict[str, object]]]:
    """Build the per-pair evidence dictionaries (only for the returned pairs)."""
    per_field = []
    for index, column in enumerate(columns):
        names = np.array([*level_names[index], "missing"], dtype=object)
        level = levels[:, index]
        name = names[np.where(level >= 0, level, len(names) - 1)]
        weight = np.round(weights[:, index].astype(np.float64), 3)
        sim = np.round(sims[:, index].astype(np.float64), 3)
        present = level >= 0
        # The values agree at the top two levels (exact, high); a two-level kind only when exact.
        agree_from = max(len(level_names[index]) - 2, 1)
        agreed = np.where(present, level >= agree_from, None)
        swap_flags = swapped if swap and column in swap else np.zeros(len(level), dtype=bool)
        per_field.append(
            [
                {
                    "level": str(lv),
                    "agreed": None if ag is None else bool(ag),
                    "similarity": float(s) if ok else None,
                    "weight": float(w),
                    **({"swapped": True} if sw else {}),
                }
                for lv, ag, s, ok, w, sw in zip(name, agreed, sim, present, weight, swap_flags, strict=True)
            ]
        )
    return [dict(zip(columns, row, strict=True)) for row in zip(*per_field, strict=True)] if per_field else []


def _run(
    frame: pd.DataFrame,
    ids: np.ndarray,
    specs: dict[str, FieldSpec],
    *,
    n_left: int | None,
    blocking: BlockingArg,
    threshold: float | None,
    swap_names: object,
    phone_region: str,
    max_block_size: int,
    model: LinkageModel | None,
    seed: int,
    cache: MatchCache | None,
    normalised: NormalisedValues | None,
) -> DuplicateResult:
    cut = check_threshold(threshold)
    swap = swap_pair(swap_names, specs)
    prepared = {
        c: (
            normalised.prepare(frame[c], s.kind, phone_region)
            if normalised is not None
            else prepare(frame[c], s.kind, phone_region)
        ).reset_index(drop=True)
        for c, s in specs.items()
    }
    columns = list(specs)
    passes = blocking_passes(blocking, specs, swap)
    coded = column_codes(prepared, columns)  # each column factorized once, for all that follows
    order = record_order(prepared, columns, coded)
    refinements = refinement_keys({c: s.kind for c, s in specs.items()})
    first, second, report = candidate_pairs(
        prepared,
        passes,
        order=order,
        max_block_size=max_block_size,
        n_left=n_left,
        refinements=refinements,
        coded=coded,
    )
    comparator = Comparator(prepared, specs, swap, coded)
    n_fields = len(comparator.columns)
    sig = digests = unchanged = None
    if cache is not None:
        sig = settings_signature(
            {
                "fields": [(c, s.kind, s.tf_adjust) for c, s in specs.items()],
                "swap": swap,
                "region": phone_region,
                "passes": [p.name for p in passes],
                "max_block_size": max_block_size,
                "linking": n_left is not None,
            }
        )
        digests = record_digests(frame, columns)
        unchanged = cache.unchanged(sig, ids, digests)
        levels, swapped, sims = cache.levels_for(
            ids, unchanged, first, second, lambda a, b: _compare_chunked(comparator, a, b, True), n_fields
        )
    else:
        levels, swapped, sims = _compare_chunked(comparator, first, second)

    def compare_random(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return comparator.compare(a, b)[0]

    fitted = model is None
    cached_model = (
        cache.usable_model(sig, unchanged) if cache is not None and model is None else None  # type: ignore[arg-type]
    )
    if model is not None:
        try:
            check_compatible(model, {c: s.kind for c, s in specs.items()})
        except ValueError as exc:
            raise ConfigError(str(exc), key="model") from None
        model = model.with_source("given")
    elif cached_model is not None:
        model, fitted = cached_model, False
    elif n_left is not None:
        # Linking: learn from both tables as one (pairs within each table too). What a duplicate
        # looks like does not depend on the table a record came from; the few cross-table matches
        # alone are too rare among the candidates for EM to find reliably, and one new lead gives
        # no pairs to learn from at all, while the existing table does.
        all_first, all_second, _ = candidate_pairs(
            prepared,
            passes,
            order=order,
            max_block_size=max_block_size,
            n_left=None,
            refinements=refinements,
            coded=coded,
        )
        all_levels, _, _ = _compare_chunked(comparator, all_first, all_second)
        del all_first, all_second
        model = fit_model(specs, all_levels, len(frame), None, seed, compare_random)
        if model.source == "default":
            # Too little to learn from in both tables: the default model, sized for linking.
            model = fit_model(specs, levels, len(frame), n_left, seed, compare_random)
    else:
        model = fit_model(specs, levels, len(frame), None, seed, compare_random)
    score = np.empty(len(first), dtype=np.float64)
    for start in range(0, len(first), CHUNK_PAIRS):
        part = slice(start, start + CHUNK_PAIRS)
        tf = _tf_weights(comparator, model, levels[part], first[part])
        score[part] = model.score(levels[part], tf.sum(axis=1))
    candidates = pd.DataFrame({"id_left": ids[first], "id_right": ids[second], "score": score})
    keep = np.flatnonzero(score >= cut)
    keep = keep[np.argsort(-score[keep], kind="stable")]
    # Similarities are only shown as evidence: without a cache to keep them for every pair, they
    # are computed again for the returned pairs alone.
    kept_sims = sims[keep] if sims is not None else comparator.compare(first[keep], second[keep])[1]
    kept_tf = _tf_weights(comparator, model, levels[keep], first[keep])
    # The normalised values, their codes and derived features are not needed any more: released
    # before the evidence dictionaries (the run's peak), they do not add to it (~400 MB at 1M).
    comparator.release()
    del prepared, coded
    evidence = evidence_rows(
        columns,
        [f.levels for f in model.fields],
        levels[keep],
        kept_sims,
        model.explain(levels[keep], kept_tf),
        swapped[keep],
        swap,
    )
    pairs = pd.DataFrame(
        {
            "id_left": ids[first[keep]],
            "id_right": ids[second[keep]],
            "score": score[keep],
            "evidence": pd.Series(evidence, dtype=object),
        },
        columns=PAIR_COLUMNS,
    )
    if cache is not None:
        cache.keep(sig, ids, digests, first, second, levels, swapped, sims, model, fitted)  # type: ignore[arg-type]
    return DuplicateResult(pairs, report, model, cut, candidates)


def _compare_chunked(
    comparator: Comparator, first: np.ndarray, second: np.ndarray, keep_sims: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Levels, swap flags (and with ``keep_sims`` the similarities) of many pairs, compared
    :data:`CHUNK_PAIRS` at a time, so the per-chunk working arrays never exist for every pair."""
    levels = np.empty((len(first), len(comparator.columns)), dtype=np.int8)
    swapped = np.zeros(len(first), dtype=bool)
    sims = np.empty(levels.shape, dtype=np.float32) if keep_sims else None
    for start in range(0, len(first), CHUNK_PAIRS):
        part = slice(start, start + CHUNK_PAIRS)
        chunk_levels, chunk_sims, swapped[part] = comparator.compare(first[part], second[part])
        levels[part] = chunk_levels
        if sims is not None:
            sims[part] = chunk_sims
    return levels, swapped, sims


@overload
def find_duplicates(
    df: pd.DataFrame,
    *,
    id_column: str,
    fields: FieldsArg,
    report: Literal[False] = False,
    **options: Unpack[MatchOptions],
) -> pd.DataFrame: ...


@overload
def find_duplicates(
    df: pd.DataFrame,
    *,
    id_column: str,
    fields: FieldsArg,
    report: Literal[True],
    **options: Unpack[MatchOptions],
) -> DuplicateResult: ...


def find_duplicates(
    df: pd.DataFrame,
    *,
    id_column: str,
    fields: FieldsArg,
    report: bool = False,
    **options: Unpack[MatchOptions],
) -> pd.DataFrame | DuplicateResult:
    """Find pairs of records in one table that are probably the same real-world entity.

    Args:
        df: the records, one per row.
        id_column: the column holding each record's unique id.
        fields: column -> comparison kind (``"name"``, ``"company"``, ``"text"``, ``"email"``,
            ``"phone"``, ``"address"``, ``"postcode"``, ``"date"``, ``"number"``, ``"exact"``), or a
            :class:`FieldSpec` to switch term-frequency adjustment.
        report: return a :class:`DuplicateResult` (pairs, blocking report, model, threshold)
            instead of only the pairs.
        **options: blocking, threshold, name swap, phone region, block cap, model and seed: see
            :class:`MatchOptions`.

    Returns:
        The matched pairs (``id_left``, ``id_right``, ``score``, ``evidence``), highest score first,
        or a :class:`DuplicateResult` when ``report`` is true.

    Raises:
        ConfigError: an unknown kind or column, a bad threshold, blocking key or phone region.
        JobError: missing or repeated ids.
        ConvergenceError: the model could not be fitted to these records.
    """
    if id_column not in df.columns:
        near = closest(id_column, map(str, df.columns))
        raise ConfigError(
            f"id column {id_column!r} is not in the records",
            key="id_column",
            hint=f"did you mean {near[0]!r}?" if near else None,
        )
    specs = field_specs(fields, list(df.columns), "the records")
    _check_ids(df[id_column], "the records")
    result = _run(
        df.reset_index(drop=True),
        df[id_column].to_numpy(dtype=object),
        specs,
        n_left=None,
        **_options(options, "find_duplicates"),
    )
    return result if report else result.pairs


@overload
def link_records(
    left: pd.DataFrame,
    right: pd.DataFrame,
    *,
    left_id: str,
    right_id: str,
    fields: FieldsArg,
    right_columns: Mapping[str, str] | None = None,
    report: Literal[False] = False,
    **options: Unpack[MatchOptions],
) -> pd.DataFrame: ...


@overload
def link_records(
    left: pd.DataFrame,
    right: pd.DataFrame,
    *,
    left_id: str,
    right_id: str,
    fields: FieldsArg,
    right_columns: Mapping[str, str] | None = None,
    report: Literal[True],
    **options: Unpack[MatchOptions],
) -> DuplicateResult: ...


def link_records(
    left: pd.DataFrame,
    right: pd.DataFrame,
    *,
    left_id: str,
    right_id: str,
    fields: FieldsArg,
    right_columns: Mapping[str, str] | None = None,
    report: bool = False,
    **options: Unpack[MatchOptions],
) -> pd.DataFrame | DuplicateResult:
    """Find records of ``right`` that are probably the same entity as records of ``left``.

    Typical use: new leads (left) against existing contacts or accounts (right). Only left-right
    pairs are scored and returned, but the model is learned from both tables as one (pairs within
    each table too), so even a single new lead is scored by a model fitted on the existing table.
    That costs a deduplication-sized pass over the right table per call: for many small calls,
    fit once (``report=True`` and keep ``.model``) and pass ``model=``.

    Args:
        left: the records to match (e.g. leads).
        right: the records to match against (e.g. contacts).
        left_id: id column of ``left``.
        right_id: id column of ``right``.
        fields: ``left`` column -> comparison kind (see :func:`find_duplicates`).
        right_columns: ``left`` column -> ``right`` column where the names differ (a lead's
            ``company`` is an account's ``name``); columns not listed have the same name.
        report: see :func:`find_duplicates`.
        **options: see :class:`MatchOptions`; blocking passes name the ``left`` columns.

    Returns:
        Pairs with ``id_left`` from ``left`` and ``id_right`` from ``right``, highest score first,
        or a :class:`DuplicateResult` when ``report`` is true.

    Raises:
        ConfigError: an unknown kind or column (on either side), a bad threshold or blocking key.
        JobError: missing or repeated ids.
    """
    mapping = dict(right_columns or {})
    for id_name, frame, label in ((left_id, left, "left"), (right_id, right, "right")):
        if id_name not in frame.columns:
            near = closest(id_name, map(str, frame.columns))
            raise ConfigError(
                f"id column {id_name!r} is not in the {label} records",
                key=f"{label}_id",
                hint=f"did you mean {near[0]!r}?" if near else None,
            )
    specs = field_specs(fields, list(left.columns), "the left records")
    unknown = [c for c in mapping if c not in specs]
    if unknown:
        raise ConfigError(
            f"right_columns maps {unknown[0]!r}, which is not a compared field",
            key=f"right_columns.{unknown[0]}",
            hint=f"compared fields: {', '.join(specs)}",
        )
    renamed = {c: mapping.get(c, c) for c in specs}
    field_specs({renamed[c]: s for c, s in specs.items()}, list(right.columns), "the right records")
    _check_ids(left[left_id], "the left records")
    _check_ids(right[right_id], "the right records")
    combined = pd.concat(
        [
            left[list(specs)].reset_index(drop=True),
            right[[renamed[c] for c in specs]].set_axis(list(specs), axis=1).reset_index(drop=True),
        ],
        ignore_index=True,
    )
    ids = np.concatenate([left[left_id].to_numpy(dtype=object), right[right_id].to_numpy(dtype=object)])
    result = _run(
        combined,
        ids,
        specs,
        n_left=len(left),
        **_options(options, "link_records"),
    )
    return result if report else result.pairs
