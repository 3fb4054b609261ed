"""The linear-time replacements of the dedupe steps that grew faster than the table give what
the steps they replaced gave (those are spelled out here as the reference)."""

import numpy as np
import pandas as pd

from jobs.leads.duplicates.blocking import record_order
from jobs.leads.duplicates.linkage_model import comparison_patterns


def test_patterns_counted_by_code_equal_the_sorted_rows():
    rng = np.random.default_rng(5)
    levels = rng.integers(-1, 4, size=(5_000, 9)).astype(np.int8)
    levels[:, 2] = rng.integers(-1, 2, size=5_000)  # a two-level field
    levels[:2_500] = levels[2_500:]  # repeats
    patterns, counts = comparison_patterns(levels)
    want, want_counts = np.unique(levels, axis=0, return_counts=True)
    np.testing.assert_array_equal(patterns, want)
    np.testing.assert_array_equal(counts, want_counts.astype(np.float64))
    assert patterns.dtype == levels.dtype
    # Weighted rows (patterns aggregated elsewhere): zero-weight patterns are dropped.
    weights = rng.integers(0, 3, size=len(levels)).astype(np.float64)
    patterns, counts = comparison_patterns(levels, weights)
    rows, inverse = np.unique(levels, axis=0, return_inverse=True)
    sums = np.bincount(inverse.ravel(), weights=weights, minlength=len(rows))
    np.testing.assert_array_equal(patterns, rows[sums > 0])
    np.testing.assert_array_equal(counts, sums[sums > 0])


def test_patterns_of_too_many_fields_for_one_code_still_count():
    rng = np.random.default_rng(6)
    levels = rng.integers(-1, 4, size=(300, 12)).astype(np.int8)  # 5**12 codes: sorted instead
    patterns, counts = comparison_patterns(np.concatenate([levels, levels]))
    np.testing.assert_array_equal(patterns, np.unique(levels, axis=0))
    assert set(counts) == {2.0}


def test_record_order_is_the_order_of_the_joined_values():
    rng = np.random.default_rng(7)
    words = np.array(["ann", "anna", "annabel", "bob", "böb", "zoë", "a b", "ab", None], dtype=object)
    prepared = {c: pd.Series(rng.choice(words, size=2_000), dtype=object) for c in ("first", "last", "city")}
    # The reference: the records' values joined with a separator after each, sorted as strings
    # (as the Spark engine does); equal records share a rank.
    joined = pd.Series([""] * 2_000, dtype=object)
    for column in prepared:
        joined = joined + prepared[column].fillna("") + "\x1f"
    want = pd.factorize(joined, sort=True)[0]
    np.testing.assert_array_equal(record_order(prepared, list(prepared)), want)
