"""Comparison patterns: the distinct rows of comparison levels and how many pairs each stands for.

EM (:mod:`.linkage_model`) runs on the patterns, not on the pairs: a million leads give about two
million candidate pairs but a few thousand patterns. The Spark engine aggregates its pairs into
patterns itself and passes them with their counts; either way the patterns are the same.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MAX_PATTERN_CODES", "comparison_patterns"]


def comparison_patterns(
    levels: np.ndarray, counts: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The distinct comparison patterns of ``levels`` (sorted) and how many pairs each stands for.

    ``counts`` weighs each row of ``levels`` (rows that are already patterns with their counts,
    e.g. aggregated by the Spark engine: ``groupBy(levels).count()``); None counts each row once.
    Either way the same pairs give the same patterns, in the same order, with the same counts,
    so EM gives the same parameters to the last bit.
    """
    weights = None
    if counts is not None:
        weights = np.asarray(counts, dtype=np.float64)
        if weights.shape != (len(levels),) or (weights < 0).any():
            raise ValueError(f"counts must be one non-negative number per row of levels ({len(levels)} rows)")
    levels = np.asarray(levels)
    coded = _pattern_codes(levels)
    if coded is None:  # too many fields and levels for one integer: sort the rows
        patterns, inverse = np.unique(levels, axis=0, return_inverse=True)
        tallies = np.bincount(inverse.ravel(), weights=weights, minlength=len(patterns))
    else:
        codes, radix = coded
        tallies = np.bincount(codes, weights=weights, minlength=int(np.prod(radix)))
        occurring = np.flatnonzero(np.bincount(codes, minlength=len(tallies)))
        tallies = tallies[occurring]
        digits = np.empty((len(occurring), len(radix)), dtype=levels.dtype)
        rest = occurring
        for column in range(len(radix) - 1, -1, -1):
            rest, digit = np.divmod(rest, radix[column])
            digits[:, column] = digit - 1
        patterns = digits
    keep = tallies > 0 if weights is not None else slice(None)
    return patterns[keep], np.asarray(tallies, dtype=np.float64)[keep]


MAX_PATTERN_CODES = 1 << 24
"""Most distinct codes :func:`comparison_patterns` counts in one array (16 million: 9 fields of
four levels and missing need 2 million)."""


def _pattern_codes(levels: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """One integer per row of ``levels`` (-1 missing .. top level per field) whose order is the
    rows' lexicographic order, and the radix of each field; None when they would need more than
    :data:`MAX_PATTERN_CODES` codes or a level below -1.

    Counting the patterns is then a ``bincount``, linear in the pairs; ``np.unique(axis=0)``
    sorted the rows (N log N with a slow row comparison: 5 s of a million-lead run, 15 times
    the 100,000-lead figure).
    """
    if levels.ndim != 2 or levels.shape[1] == 0 or len(levels) == 0:
        return None
    if int(levels.min()) < -1:
        return None
    radix = levels.max(axis=0).astype(np.int64) + 2  # -1 (missing) .. max, shifted to 0 ..
    if float(np.prod(radix.astype(np.float64))) > MAX_PATTERN_CODES:
        return None
    codes = np.zeros(len(levels), dtype=np.int64)
    for column in range(levels.shape[1]):
        codes *= radix[column]
        codes += levels[:, column].astype(np.int64) + 1
    return codes, radix
