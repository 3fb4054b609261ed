"""The Fellegi-Sunter match model, with classes for look-alike non-matches, learned by EM without labels.

For each compared field and each of its comparison levels, ``m`` is the probability of that level
among true matches and ``u`` among unrelated pairs. In the classic two-class model a pair's
log2-odds of being a match is the prior ``log2(λ / (1 - λ))`` plus, per field, the *match weight*
``log2(m / u)`` of its level (missing values add nothing); the match probability is
``1 / (1 + 2 ** -total)``. (Fellegi & Sunter, "A Theory for Record Linkage", JASA 1969; EM
estimation: Winkler 1988.)

**Look-alike classes.** Blocking hands EM candidate pairs that are alike for reasons other than
being one entity, and in CRM data they vastly outnumber true duplicates (about 0.3% of the
candidates among 100,000 sandbox leads). A two-class model then learns the largest look-alike
group as its "match" class. So, when the fields allow it, the mixture has two more latent classes
(more than two latent classes is how census record linkage tells persons from households, e.g.
Winkler, 1993; Larsen and Rubin, JASA 2001):

* ``same group``: colleagues. They agree on what an organisation shares (company, switchboard,
  address, postcode) and not on who they are (names, email, date of birth). Present when the
  fields include both *personal* kinds (name, email, date) and *shared* ones (the others).
* ``same name``: namesakes. They agree on names and not on shared fields. Present when there are
  name fields and other fields.

A pair's match probability is the posterior of the match class against all the others.

**Starting point.** EM starts from a plain-rule assignment of each comparison pattern to a class
(:func:`starting_classes`: most fields agree -> match; shared agree, personal not -> same group...),
so each class begins meaning what its name says; EM then re-weighs everything. A look-alike class
that ends up meaning something else (a "same group" whose pairs agree on who they are: on FEBRL,
duplicates that changed address) is not in the data: it is dropped and the rest refitted. If the
match class itself drifts to another look-alike group (its members no longer agree on personal and
shared fields), the fit is repeated with the match probabilities held at their rule-based estimate
and the model says so (``anchored``). With too few candidate pairs to learn from, a default model
is used: default ``m``, ``u`` from random record pairs (almost all unrelated).

**Explanation.** The score is exact; each field's ``weight`` is ``log2(m / a)`` where ``a`` is that
field's probability under the pair's likeliest non-match class, so the weights say why the pair is
a match *rather than the best alternative explanation* (with two classes: the Fellegi-Sunter
weight). EM runs on the distinct comparison patterns with their counts, as matrix products over
one-hot rows, so its cost does not grow with the number of pairs. A pseudo-count keeps every
probability away from 0 and 1.

**Term frequencies.** When a field agrees exactly on value ``v``, the generic weight assumes an
average value. A rare surname is stronger evidence than "Smith", so the log2-odds is corrected by
``log2(Σ p² / p(v))``: ``p(v)`` is the share of records holding ``v`` and ``Σ p²`` the chance that
two random records agree on this field. Rare values gain weight, common ones lose it.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from jobs.errors import ConvergenceError
from jobs.leads.duplicates.patterns import comparison_patterns

__all__ = [
    "PERSONAL_KINDS",
    "EMResult",
    "FieldModel",
    "LinkageModel",
    "build_model",
    "check_compatible",
    "comparison_patterns",
    "default_m",
    "default_u",
    "fit_em",
    "probability",
    "starting_classes",
    "term_frequency_weights",
    "tf_adjustment",
    "u_from_random_pairs",
]

PSEUDO_COUNT = 0.5
"""Added to every level's count in each M-step (a Dirichlet prior) so no probability is 0 or 1."""
TF_LIMIT = 100.0
"""Largest factor by which a term-frequency adjustment may raise or lower the odds."""
PERSONAL_KINDS = frozenset({"name", "email", "date"})
ALTERNATIVE_CLASSES = ("same group", "same name")
"""The look-alike non-match classes, in the order they are tried."""
"""Kinds that tell one person from another; the other kinds can be shared by a group."""


@dataclass(frozen=True)
class FieldModel:
    """The learned probabilities of one compared field.

    Attributes:
        column: the compared column.
        kind: its comparison kind.
        levels: level names, lowest first.
        m: probability of each level among matches.
        u: probability of each level among unrelated pairs.
        tf_adjust: whether exact agreement is weighted by the value's rarity.
        alternatives: probability of each level under each alternative non-match class of the
            model (``LinkageModel.alternative_classes``, same order).
    """

    column: str
    kind: str
    levels: tuple[str, ...]
    m: tuple[float, ...]
    u: tuple[float, ...]
    tf_adjust: bool = False
    alternatives: tuple[tuple[float, ...], ...] = ()

    @property
    def weights(self) -> np.ndarray:
        """Match weight ``log2(m / u)`` per level (match against unrelated)."""
        return np.log2(np.asarray(self.m) / np.asarray(self.u))

    def describe(self, alternative_classes: Sequence[str] = ()) -> dict[str, dict[str, float]]:
        """Per level: m, u, each alternative class's probability, and the weight against unrelated."""
        out = {}
        for index, name in enumerate(self.levels):
            entry = {"m": self.m[index], "u": self.u[index], "weight": float(self.weights[index])}
            for label, probabilities in zip(alternative_classes, self.alternatives, strict=False):
                entry[label] = probabilities[index]
            out[name] = entry
        return out


@dataclass(frozen=True)
class LinkageModel:
    """A fitted (or default) match model.

    Attributes:
        fields: one model per compared field, in comparison order.
        prior: share of candidate pairs that are matches.
        alternative_classes: names of the non-match classes besides "unrelated" (``"same group"``:
            colleagues; ``"same name"``: namesakes), empty for the two-class model.
        alternative_shares: their shares of the candidate pairs.
        source: ``"em"`` (fitted on this run's candidate pairs), ``"default"`` (too few pairs to fit:
            default m, u from random pairs) or ``"given"`` (passed in by the caller).
        iterations: EM iterations run (0 when not fitted).
        converged: whether EM met its tolerance.
        anchored: free EM let the match class drift to another group of look-alike pairs, so the
            match probabilities were held at their rule-based estimate (see :func:`fit_em`).
        pairs: candidate pairs the model was fitted on.
    """

    fields: tuple[FieldModel, ...]
    prior: float
    alternative_classes: tuple[str, ...] = ()
    alternative_shares: tuple[float, ...] = ()
    source: str = "em"
    iterations: int = 0
    converged: bool = True
    anchored: bool = False
    pairs: int = 0

    @property
    def unrelated_share(self) -> float:
        """Share of candidate pairs that are unrelated."""
        return 1.0 - self.prior - sum(self.alternative_shares)

    @property
    def prior_weight(self) -> float:
        """The prior log2-odds of a match against all alternatives."""
        return float(np.log2(self.prior / (1.0 - self.prior)))

    def field(self, column: str) -> FieldModel:
        """The model of one column."""
        for model in self.fields:
            if model.column == column:
                return model
        raise KeyError(column)

    def _tables(self) -> list[np.ndarray]:
        """Per field, log2 P(level | class) as a (classes x levels) array: match, unrelated, others."""
        return [np.log2(np.array([f.m, f.u, *f.alternatives], dtype=np.float64)) for f in self.fields]

    def _class_totals(self, levels: np.ndarray, tables: list[np.ndarray]) -> np.ndarray:
        """log2 of share x likelihood per pair and class, summed field by field (O(pairs) memory)."""
        shares = np.array([self.prior, self.unrelated_share, *self.alternative_shares])
        totals = np.tile(np.log2(np.maximum(shares, 1e-12)), (len(levels), 1))
        for index, table in enumerate(tables):
            column = levels[:, index]
            present = column >= 0
            totals[present] += table[:, column[present]].T
        return totals

    def score(self, levels: np.ndarray, adjustment: np.ndarray | None = None) -> np.ndarray:
        """Match probability per pair.

        Args:
            levels: comparison levels, pairs x fields, -1 where missing.
            adjustment: extra log2-odds per pair (term frequencies), in favour of a match.
        """
        totals = self._class_totals(levels, self._tables())
        match = totals[:, 0] + (0.0 if adjustment is None else adjustment)
        others = np.logaddexp2.reduce(totals[:, 1:], axis=1)
        return probability(match - others)

    def explain(self, levels: np.ndarray, adjustment: np.ndarray | None = None) -> np.ndarray:
        """Per pair and field, the weight behind the score: ``log2(m / a)`` plus the adjustment.

        ``a`` is the field's probability under the pair's likeliest non-match class (unrelated,
        same group, same name), so the weights say why the pair is a match rather than the best
        alternative explanation; 0 where a value is missing.

        Args:
            levels: comparison levels, pairs x fields, -1 where missing.
            adjustment: extra log2-odds per pair and field (term frequencies).
        """
        tables = self._tables()
        alternative = 1 + np.argmax(self._class_totals(levels, tables)[:, 1:], axis=1)
        weights = np.zeros(levels.shape, dtype=np.float64)
        for index, table in enumerate(tables):
            column = levels[:, index]
            present = column >= 0
            level = column[present]
            weights[present, index] = table[0, level] - table[alternative[present], level]
        return weights if adjustment is None else weights + adjustment

    def with_source(self, source: str) -> LinkageModel:
        """A copy marked with another source (e.g. ``"given"`` when reused on other data)."""
        return replace(self, source=source)


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
    """Estimate u per field from the comparison levels of random record pairs (almost all unrelated)."""
    out = []
    for index, count in enumerate(n_levels):
        column = levels[:, index]
        column = column[column >= 0]
        counts = np.bincount(column, minlength=count).astype(np.float64) + U_PRIOR_PAIRS * default_u(count)
        out.append(counts / counts.sum())
    return out


@dataclass(frozen=True)
class EMResult:
    """What :func:`fit_em` found: per-field m, u (and g) and the class shares."""

    m: list[np.ndarray]
    u: list[np.ndarray]
    prior: float
    iterations: int
    converged: bool
    alternatives: list[list[np.ndarray]] = field(default_factory=list)
    alternative_shares: list[float] = field(default_factory=list)
    alternative_classes: list[str] = field(default_factory=list)
    anchored: bool = False


def _agreement(patterns: np.ndarray, n_levels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per pattern and field: present, and agreeing (the top two levels; the top one of two)."""
    present = patterns >= 0
    floor = np.array([k - 1 if k == 2 else k - 2 for k in n_levels])
    return present, present & (patterns >= floor)


def _fraction(agree: np.ndarray, present: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Share of the present fields in ``mask`` that agree, per pattern (NaN when none is present)."""
    shown = (present & mask).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(shown > 0, (agree & mask).sum(axis=1) / shown, np.nan)


def starting_classes(
    patterns: np.ndarray,
    n_levels: Sequence[int],
    roles: Sequence[str],
    include: Sequence[str] = ALTERNATIVE_CLASSES,
) -> tuple[list[str], np.ndarray]:
    """Assign each comparison pattern to a class by plain rules, to start EM where the classes mean
    what their names say.

    Classes: ``match`` (most fields agree, personal and shared alike), ``unrelated``, and, when the
    fields allow telling them apart, ``same group`` (shared fields agree, personal ones do not:
    colleagues) and ``same name`` (names agree, shared fields do not: namesakes). A field "agrees"
    at its top two levels.

    Args:
        patterns: distinct comparison patterns (patterns x fields, -1 missing).
        n_levels: levels per field.
        roles: per field ``"name"``, ``"personal"`` (email, date) or ``"shared"``.
        include: the look-alike classes to consider (when the fields allow them).

    Returns:
        The class names (match and unrelated first) and a 0/1 matrix patterns x classes.
    """
    roles_arr = np.asarray(roles)
    name = roles_arr == "name"
    personal = name | (roles_arr == "personal")
    shared = roles_arr == "shared"
    present, agree = _agreement(patterns, n_levels)
    overall = _fraction(agree, present, np.ones(len(roles), dtype=bool))
    by_person = _fraction(agree, present, personal)
    by_group = _fraction(agree, present, shared)
    by_name = _fraction(agree, present, name)
    person_agrees = np.nan_to_num(by_person, nan=0.0) >= 0.5
    group_agrees = np.nan_to_num(by_group, nan=0.0) >= 0.5
    match = (
        (np.nan_to_num(overall) >= 0.6)
        & (np.isnan(by_person) | person_agrees)
        & (np.isnan(by_group) | group_agrees)
    )
    names = ["match", "unrelated"]
    columns = [match]
    taken = match.copy()
    if "same group" in include and personal.any() and shared.any():
        group = ~taken & group_agrees & ~person_agrees
        names.append("same group")
        columns.append(group)
        taken |= group
    if "same name" in include and name.any() and (~name).any():
        namesake = ~taken & (np.nan_to_num(by_name, nan=0.0) >= 0.5) & ~group_agrees
        names.append("same name")
        columns.append(namesake)
        taken |= namesake
    columns.insert(1, ~taken)
    return names, np.stack(columns, axis=1).astype(np.float64)


def _one_hot(patterns: np.ndarray, n_levels: Sequence[int]) -> np.ndarray:
    """Patterns as 0/1 rows over all (field, level) columns; a missing field has no 1."""
    offsets = np.concatenate([[0], np.cumsum(n_levels)[:-1]])
    hot = np.zeros((len(patterns), int(np.sum(n_levels))), dtype=np.float64)
    rows, fields = np.nonzero(patterns >= 0)
    hot[rows, offsets[fields] + patterns[rows, fields]] = 1.0
    return hot


def _m_step(weighted: np.ndarray, hot: np.ndarray, n_levels: Sequence[int]) -> list[list[np.ndarray]]:
    """Per class and field, level probabilities from pattern weights (with the pseudo-count)."""
    tallies = hot.T @ weighted + PSEUDO_COUNT  # (field, level) x class
    bounds = np.cumsum([0, *n_levels])
    return [
        [tallies[a:b, c] / tallies[a:b, c].sum() for a, b in itertools.pairwise(bounds)]
        for c in range(weighted.shape[1])
    ]


def fit_em(
    levels: np.ndarray,
    n_levels: Sequence[int],
    *,
    counts: np.ndarray | None = None,
    m_start: Sequence[np.ndarray] | None = None,
    u_start: Sequence[np.ndarray] | None = None,
    prior_start: float = 0.1,
    roles: Sequence[str] | None = None,
    max_iterations: int = 500,
    tolerance: float = 1e-6,
) -> EMResult:
    """Fit the class probabilities and shares by EM on comparison levels (pairs x fields, -1 missing).

    Without ``roles`` this is the classic two-class Fellegi-Sunter EM from ``m_start``/``u_start``.
    With ``roles`` the classes of :func:`starting_classes` are fitted, starting from the rule-based
    assignment of each pattern. If free EM then lets the match class drift to a larger group of
    look-alike pairs (its members no longer agree on personal and shared fields), the fit is
    repeated with the match class held at its rule-based estimate (``anchored``).

    Args:
        levels: comparison levels of the candidate pairs (or their distinct patterns, with ``counts``).
        n_levels: number of levels per field.
        counts: pairs per row of ``levels`` when the rows are aggregated patterns (see
            :func:`comparison_patterns`); None when each row is one pair.
        m_start: starting m per field, two-class fit (default :func:`default_m`).
        u_start: starting u per field (from random pairs), two-class fit (required there).
        prior_start: starting share of matches, two-class fit.
        roles: per field ``"name"``, ``"personal"`` or ``"shared"`` for the multi-class fit.
        max_iterations: EM iterations at most.
        tolerance: stop when no probability moves more than this in one iteration.

    Raises:
        ConvergenceError: two-class fit only: EM ended with no class that agrees (the data holds no
            recognisable duplicates under these fields); or invalid numbers.
    """
    # EM works on the distinct patterns with their counts, so pairs or pre-aggregated patterns
    # (the Spark engine's groupBy) fit the same parameters.
    patterns, counts = comparison_patterns(levels, counts)
    hot = _one_hot(patterns, n_levels)
    if roles is None:
        if u_start is None:
            raise ValueError("the two-class fit needs u_start (u from random pairs)")
        names = ["match", "unrelated"]
        classes = [
            [np.asarray(x, dtype=np.float64).copy() for x in (m_start or [default_m(k) for k in n_levels])],
            [np.asarray(x, dtype=np.float64).copy() for x in u_start],
        ]
        prior = float(np.clip(prior_start, 1e-6, 0.5))
        share = np.array([prior, 1.0 - prior])
        result = _iterate(classes, share, hot, counts, n_levels, max_iterations, tolerance, frozen=False)
        anchored = False
    else:
        include = list(ALTERNATIVE_CLASSES)
        while True:
            names, start = starting_classes(patterns, n_levels, roles, include)
            weighted = start * counts[:, None]
            classes = _m_step(weighted, hot, n_levels)
            if weighted[:, 0].sum() == 0:
                # Nothing looks like a duplicate: say so with a model that flags no pair.
                return EMResult(
                    classes[0], classes[1], 1e-9, 0, True, classes[2:], [0.0] * (len(names) - 2), names[2:]
                )
            share = np.clip(weighted.sum(axis=0) / counts.sum(), 1e-4, 1.0)
            share /= share.sum()
            result = _iterate(classes, share, hot, counts, n_levels, max_iterations, tolerance, frozen=False)
            # A look-alike class that ended up meaning something else (a "same group" whose pairs
            # agree on who they are is really more matches) is not in this data: drop it, refit.
            wrong = [
                name
                for name, probs in zip(names[2:], result[0][2:], strict=True)
                if not _class_means_it(name, probs, n_levels, roles)
            ]
            if not wrong:
                break
            include = [c for c in include if c not in wrong]
        anchored = False
        if not _class_means_it("match", result[0][0], n_levels, roles):
            # The match class drifted to another look-alike group: hold it at its rule-based estimate.
            classes = _m_step(start * counts[:, None], hot, n_levels)
            result = _iterate(classes, share, hot, counts, n_levels, max_iterations, tolerance, frozen=True)
            anchored = True
    classes, share, iteration, converged = result
    m, u = classes[0], classes[1]
    if roles is None:
        # The class called "match" must be one whose values agree: on at least one field, exact
        # agreement must be its most likely level and likelier than among unrelated pairs.
        agrees = any(
            int(np.argmax(mf)) == len(mf) - 1 and mf[-1] > uf[-1] for mf, uf in zip(m, u, strict=True)
        )
        if not agrees:
            raise ConvergenceError(
                "the duplicate model found no group of pairs that agree more than chance; the candidate "
                "pairs hold no recognisable duplicates with these fields (compare more fields, or check "
                "the field kinds)"
            )
    return EMResult(
        m,
        u,
        float(share[0]),
        iteration,
        converged,
        classes[2:],
        [float(x) for x in share[2:]],
        names[2:],
        anchored,
    )


def _class_means_it(
    name: str, probs: list[np.ndarray], n_levels: Sequence[int], roles: Sequence[str]
) -> bool:
    """Whether a fitted class still means what its name says (agreement: the top two levels).

    match: personal and shared fields mostly agree; same group: shared agree, personal do not;
    same name: names agree, shared fields do not.
    """
    agree = np.array(
        [float(p[-2:].sum()) if k > 2 else float(p[-1]) for p, k in zip(probs, n_levels, strict=True)]
    )
    roles_arr = np.asarray(roles)

    def mean(mask: np.ndarray) -> float | None:
        return float(agree[mask].mean()) if mask.any() else None

    personal, shared, names = (
        mean(roles_arr != "shared"),
        mean(roles_arr == "shared"),
        mean(roles_arr == "name"),
    )
    if name == "match":
        return (personal is None or personal >= 0.5) and (shared is None or shared >= 0.5)
    if name == "same group":
        return personal is not None and personal < 0.5 and shared is not None and shared >= 0.5
    if name == "same name":
        return names is not None and names >= 0.5 and shared is not None and shared < 0.5
    return True


def _iterate(
    classes: list[list[np.ndarray]],
    share: np.ndarray,
    hot: np.ndarray,
    counts: np.ndarray,
    n_levels: Sequence[int],
    max_iterations: int,
    tolerance: float,
    *,
    frozen: bool,
) -> tuple[list[list[np.ndarray]], np.ndarray, int, bool]:
    """EM iterations; with ``frozen`` the match class's probabilities are held (its share is not).

    Patterns are one-hot rows, so each E-step and M-step is one matrix product.
    """
    iteration = 0
    for iteration in range(1, max_iterations + 1):
        log_tables = np.stack([np.log(np.concatenate(probs)) for probs in classes], axis=1)
        log_like = hot @ log_tables + np.log(np.maximum(share, 1e-300))
        log_like -= log_like.max(axis=1, keepdims=True)
        responsibility = np.exp(log_like)
        responsibility /= responsibility.sum(axis=1, keepdims=True)
        weighted = responsibility * counts[:, None]
        new_share = np.clip(weighted.sum(axis=0) / counts.sum(), 1e-9, 1.0)
        new_classes = _m_step(weighted, hot, n_levels)
        if frozen:
            new_classes[0] = classes[0]
        change = float(np.abs(new_share - share).max())
        for old, new in zip(classes, new_classes, strict=True):
            change = max(change, float(np.abs(np.concatenate(old) - np.concatenate(new)).max()))
        classes, share = new_classes, new_share
        if not np.isfinite(change):
            raise ConvergenceError(
                "the duplicate model's EM fit produced invalid numbers; check the compared fields "
                "are not all missing, or pass a threshold and model explicitly"
            )
        if change < tolerance:
            return classes, share, iteration, True
    return classes, share, iteration, False


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
    return tf_adjustment(shares[value_codes], float((shares**2).sum()))


def tf_adjustment(value_shares: np.ndarray, agree_chance: float) -> np.ndarray:
    """``log2(agree_chance / p(v))`` per pair, bounded by ±log2(:data:`TF_LIMIT`).

    The formula of :func:`term_frequency_weights` for callers that counted the shares elsewhere
    (the Spark engine: ``p(v)`` = records holding ``v`` / records with a value, ``agree_chance``
    = Σ p², both aggregated on the executors).
    """
    with np.errstate(divide="ignore"):
        adjustment = np.log2(agree_chance / np.asarray(value_shares, dtype=np.float64))
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
    *,
    alternative_classes: Sequence[str] = (),
    alternatives: Sequence[Sequence[np.ndarray]] = (),
    alternative_shares: Sequence[float] = (),
    **info: object,
) -> LinkageModel:
    """Assemble a :class:`LinkageModel` from per-field arrays (alternatives: per class, per field)."""
    fields = tuple(
        FieldModel(
            c,
            k,
            names,
            tuple(map(float, m[i])),
            tuple(map(float, u[i])),
            bool(tf_flags[i]),
            tuple(tuple(map(float, cls[i])) for cls in alternatives),
        )
        for i, (c, k, names) in enumerate(zip(columns, kinds, level_names, strict=True))
    )
    return LinkageModel(
        fields,
        float(prior),
        tuple(alternative_classes),
        tuple(float(x) for x in alternative_shares),
        **info,  # type: ignore[arg-type]
    )


def check_compatible(model: LinkageModel, fields: Mapping[str, str]) -> None:
    """Raise ValueError unless ``model`` was fitted on exactly these columns and kinds."""
    have = {f.column: f.kind for f in model.fields}
    if have != dict(fields):
        raise ValueError(
            f"the model was fitted on fields {have} but this run compares {dict(fields)}; "
            "fit a model on the same fields, or omit model= to fit one"
        )
