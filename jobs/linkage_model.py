"""The Fellegi-Sunter match model: m and u probabilities per comparison level, learned by EM.

For each compared field and each of its comparison levels, ``m`` is the probability of that level
among true matches and ``u`` among non-matches. A pair's evidence is the sum over fields of the
*match weight* ``log2(m / u)`` of its level (missing values add nothing), plus the prior log-odds
``log2(λ / (1 - λ))``; its match probability is ``1 / (1 + 2 ** -total)``. (Fellegi & Sunter, "A
Theory for Record Linkage", JASA 1969; the EM estimation is Winkler's, 1988.)

Fitting, without labels:

* ``u`` starts from *random* record pairs, which are almost all non-matches (splink does the same);
* ``m``, ``u`` and ``λ`` are then fitted by expectation-maximisation on the candidate pairs that
  blocking produced, treating them as a two-class mixture with fields independent within a class.
  The EM runs on the distinct comparison patterns with their counts, so its cost does not grow
  with the number of pairs. A small pseudo-count keeps every probability away from 0 and 1.

Term-frequency adjustment: when a field agrees exactly on value ``v``, the generic weight assumes
an average value. A rare surname is stronger evidence than "Smith", so the weight is corrected by
``log2(Σ p² / p(v))``: ``p(v)`` is the share of records holding ``v`` and ``Σ p²`` the chance that
two random records agree on this field. Rare values gain weight, common ones lose it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from connector.errors import ConvergenceError

__all__ = [
    "EMResult",
    "FieldModel",
    "LinkageModel",
    "build_model",
    "check_compatible",
    "default_m",
    "default_u",
    "fit_em",
    "probability",
    "term_frequency_weights",
    "u_from_random_pairs",
]

PSEUDO_COUNT = 0.5
"""Added to every level's count in each M-step (a Dirichlet prior) so no probability is 0 or 1."""
TF_LIMIT = 100.0
"""Largest factor by which a term-frequency adjustment may raise or lower a Bayes factor."""


@dataclass(frozen=True)
class FieldModel:
    """The learned probabilities of one compared field.

    Attributes:
        column: the compared column.
        kind: its comparison kind.
        levels: level names, lowest first.
        m: probability of each level among matches.
        u: probability of each level among non-matches.
        tf_adjust: whether exact agreement is weighted by the value's rarity.
    """

    column: str
    kind: str
    levels: tuple[str, ...]
    m: tuple[float, ...]
    u: tuple[float, ...]
    tf_adjust: bool = False

    @property
    def weights(self) -> np.ndarray:
        """Match weight ``log2(m / u)`` per level."""
        return np.log2(np.asarray(self.m) / np.asarray(self.u))

    def describe(self) -> dict[str, dict[str, float]]:
        """Per level: m, u and weight, for reports and documentation."""
        return {
            name: {"m": m, "u": u, "weight": float(w)}
            for name, m, u, w in zip(self.levels, self.m, self.u, self.weights, strict=True)
        }


@dataclass(frozen=True)
class LinkageModel:
    """A fitted (or default) Fellegi-Sunter model.

    Attributes:
        fields: one model per compared field, in comparison order.
        prior: λ, the share of candidate pairs that are matches.
        source: ``"em"`` (fitted on this run's candidate pairs), ``"default"`` (too few pairs to fit:
            default m, u from random pairs) or ``"given"`` (passed in by the caller).
        iterations: EM iterations run (0 when not fitted).
        converged: whether EM met its tolerance.
        pairs: candidate pairs the model was fitted on.
    """

    fields: tuple[FieldModel, ...]
    prior: float
    source: str = "em"
    iterations: int = 0
    converged: bool = True
    pairs: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def prior_weight(self) -> float:
        """The prior log2-odds of a match."""
        return float(np.log2(self.prior / (1.0 - self.prior)))

    def field(self, column: str) -> FieldModel:
        """The model of one column."""
        for model in self.fields:
            if model.column == column:
                return model
        raise KeyError(column)

    def weights(self, levels: np.ndarray) -> np.ndarray:
        """Match weight per pair and field (0 where missing); ``levels`` is pairs x fields, -1 missing."""
        out = np.zeros(levels.shape, dtype=np.float64)
        for index, model in enumerate(self.fields):
            column = levels[:, index]
            present = column >= 0
            out[present, index] = model.weights[column[present]]
        return out

    def with_source(self, source: str) -> LinkageModel:
        """A copy marked with another source (e.g. ``"given"`` when reused on other data)."""
        return LinkageModel(self.fields, self.prior, source, self.iterations, self.converged, self.pairs)


def probability(total_weight: np.ndarray) -> np.ndarray:
    """Match probability from a total log2-odds (prior included), numerically safe."""
    return 1.0 / (1.0 + np.exp2(-np.clip(total_weight, -60.0, 60.0)))


def default_m(n_levels: int) -> np.ndarray:
    """Starting m probabilities: most matches agree exactly, a few fuzzily, very few disagree.

    The values are the usual starting point of EM in record linkage (exact 0.8-0.9); EM moves them.
    """
    if n_levels == 2:
        return np.array([0.1, 0.9])
    rest = np.geomspace(0.02, 0.1, n_levels - 1)
    m = np.append(rest, 0.0)
    m[-1] = 1.0 - rest.sum()
    return m


def default_u(n_levels: int) -> np.ndarray:
    """Prior u probabilities: random pairs mostly disagree; used as a weak prior on small tables."""
    if n_levels == 2:
        return np.array([0.95, 0.05])
    rest = np.geomspace(0.06, 0.01, n_levels - 1)
    return np.concatenate([[1.0 - rest.sum()], rest])


U_PRIOR_PAIRS = 20.0
"""Strength, in pairs, of :func:`default_u` as a prior on u: negligible against the 200,000 random
pairs of a real table, decisive for a table of five records."""


def u_from_random_pairs(levels: np.ndarray, n_levels: Sequence[int]) -> list[np.ndarray]:
    """Estimate u per field from the comparison levels of random record pairs (almost all non-matches)."""
    out = []
    for index, count in enumerate(n_levels):
        column = levels[:, index]
        column = column[column >= 0]
        counts = np.bincount(column, minlength=count).astype(np.float64) + U_PRIOR_PAIRS * default_u(count)
        out.append(counts / counts.sum())
    return out


@dataclass(frozen=True)
class EMResult:
    """What :func:`fit_em` found."""

    m: list[np.ndarray]
    u: list[np.ndarray]
    prior: float
    iterations: int
    converged: bool


def fit_em(
    levels: np.ndarray,
    n_levels: Sequence[int],
    *,
    m_start: Sequence[np.ndarray] | None = None,
    u_start: Sequence[np.ndarray],
    prior_start: float = 0.1,
    max_iterations: int = 500,
    tolerance: float = 1e-6,
) -> EMResult:
    """Fit m, u and λ by EM on comparison levels (pairs x fields, -1 for missing).

    Args:
        levels: comparison levels of the candidate pairs.
        n_levels: number of levels per field.
        m_start: starting m per field (default :func:`default_m`).
        u_start: starting u per field (from random pairs).
        prior_start: starting λ.
        max_iterations: EM iterations at most.
        tolerance: stop when no probability moves more than this in one iteration.

    Raises:
        ConvergenceError: EM ended with the "match" class agreeing less than the "non-match" class
            (the data holds no recognisable duplicates under these fields), or produced NaN.
    """
    patterns, counts = np.unique(levels, axis=0, return_counts=True)
    counts = counts.astype(np.float64)
    m = [np.asarray(x, dtype=np.float64).copy() for x in (m_start or [default_m(k) for k in n_levels])]
    u = [np.asarray(x, dtype=np.float64).copy() for x in u_start]
    prior = float(np.clip(prior_start, 1e-6, 0.5))
    present = patterns >= 0
    safe = np.where(present, patterns, 0)
    converged = False
    iteration = 0
    for iteration in range(1, max_iterations + 1):  # noqa: B007 - the count is reported
        log_m = np.log(prior) + sum(
            np.where(present[:, f], np.log(m[f])[safe[:, f]], 0.0) for f in range(len(m))
        )
        log_u = np.log1p(-prior) + sum(
            np.where(present[:, f], np.log(u[f])[safe[:, f]], 0.0) for f in range(len(u))
        )
        weight = 1.0 / (1.0 + np.exp(np.clip(log_u - log_m, -700, 700)))
        match_counts = weight * counts
        other_counts = counts - match_counts
        new_prior = float(np.clip(match_counts.sum() / counts.sum(), 1e-9, 1 - 1e-9))
        change = abs(new_prior - prior)
        new_m, new_u = [], []
        for f, k in enumerate(n_levels):
            rows = present[:, f]
            mm = np.bincount(safe[rows, f], weights=match_counts[rows], minlength=k) + PSEUDO_COUNT
            uu = np.bincount(safe[rows, f], weights=other_counts[rows], minlength=k) + PSEUDO_COUNT
            mm, uu = mm / mm.sum(), uu / uu.sum()
            change = max(change, float(np.abs(mm - m[f]).max()), float(np.abs(uu - u[f]).max()))
            new_m.append(mm)
            new_u.append(uu)
        m, u, prior = new_m, new_u, new_prior
        if not np.isfinite(change):
            raise ConvergenceError(
                "the duplicate model's EM fit produced invalid numbers; check the compared fields "
                "are not all missing, or pass a threshold and model explicitly"
            )
        if change < tolerance:
            converged = True
            break
    # The class called "match" must be one whose values agree: on at least one field, exact
    # agreement must be its most likely level and likelier than among non-matches. Otherwise EM
    # found some other split (or nothing) and its weights would be meaningless.
    agrees = any(int(np.argmax(mf)) == len(mf) - 1 and mf[-1] > uf[-1] for mf, uf in zip(m, u, strict=True))
    if not agrees:
        raise ConvergenceError(
            "the duplicate model found no group of pairs that agree more than chance; the candidate "
            "pairs hold no recognisable duplicates with these fields (compare more fields, or check "
            "the field kinds)"
        )
    return EMResult(m, u, prior, iteration, converged)


def term_frequency_weights(value_codes: np.ndarray, record_codes: np.ndarray) -> np.ndarray:
    """Term-frequency correction ``log2(Σ p² / p(v))`` for pairs agreeing exactly on value ``v``.

    Args:
        value_codes: the agreed value of each pair, as a code into the field's distinct values.
        record_codes: every record's code for the field (-1 where missing): the value shares ``p``
            are counted here.

    Returns:
        The correction per pair, bounded by ±log2(:data:`TF_LIMIT`).
    """
    present = record_codes[record_codes >= 0]
    if len(present) == 0 or len(value_codes) == 0:
        return np.zeros(len(value_codes), dtype=np.float64)
    shares = np.bincount(present, minlength=int(record_codes.max()) + 1) / len(present)
    agree_chance = float((shares**2).sum())
    with np.errstate(divide="ignore"):
        adjustment = np.log2(agree_chance / shares[value_codes])
    limit = np.log2(TF_LIMIT)
    return np.clip(np.where(np.isfinite(adjustment), adjustment, 0.0), -limit, limit)


def build_model(
    columns: Sequence[str],
    kinds: Sequence[str],
    level_names: Sequence[tuple[str, ...]],
    tf_flags: Sequence[bool],
    m: Sequence[np.ndarray],
    u: Sequence[np.ndarray],
    prior: float,
    **info: object,
) -> LinkageModel:
    """Assemble a :class:`LinkageModel` from per-field arrays."""
    fields = tuple(
        FieldModel(c, k, names, tuple(map(float, mm)), tuple(map(float, uu)), bool(tf))
        for c, k, names, tf, mm, uu in zip(columns, kinds, level_names, tf_flags, m, u, strict=True)
    )
    return LinkageModel(fields, float(prior), **info)  # type: ignore[arg-type]


def check_compatible(model: LinkageModel, fields: Mapping[str, str]) -> None:
    """Raise ValueError unless ``model`` was fitted on exactly these columns and kinds."""
    have = {f.column: f.kind for f in model.fields}
    if have != dict(fields):
        raise ValueError(
            f"the model was fitted on fields {have} but this run compares {dict(fields)}; "
            "fit a model on the same fields, or omit model= to fit one"
        )
