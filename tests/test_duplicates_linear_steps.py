"""The linear-time replacements of the dedupe steps that grew faster than the table give what
the steps they replaced gave (those are spelled out here as the reference)."""

import numpy as np
import pandas as pd

from jobs.leads.duplicates.blocking import KeyCodes, column_codes, key_values, parse_pass, record_order
from jobs.leads.duplicates.detect import Comparator, FieldSpec
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


def _partition(codes):
    """Block labels renumbered by first appearance (-1: no block), to compare partitions."""
    return pd.factorize(pd.Series(np.where(np.asarray(codes) < 0, np.nan, codes)))[0]


def test_key_codes_from_distinct_values_give_the_blocks_of_the_key_strings():
    rng = np.random.default_rng(8)
    names = np.array(["ann", "anne", "smith", "smyth", "lee", "x", "42", None], dtype=object)
    streets = np.array(["1 high st", "1 high street", "12 main rd", "main", None], dtype=object)
    prepared = {
        "first_name": pd.Series(rng.choice(names, size=3_000), dtype=object),
        "last_name": pd.Series(rng.choice(names, size=3_000), dtype=object),
        "street": pd.Series(rng.choice(streets, size=3_000), dtype=object),
    }
    columns = list(prepared)
    known = KeyCodes(prepared, column_codes(prepared, columns))
    for spec in (
        ["first_name+last_name"],
        ["first_name+last_name:soundex"],
        ["last_name:soundex"],
        ["street:prefix6"],
        ["first_name:initial"],
        ["street"],
    ):
        (part,) = parse_pass(spec, columns).parts
        want = pd.factorize(key_values(prepared, part), use_na_sentinel=True)[0]
        np.testing.assert_array_equal(_partition(known[part]), _partition(want), err_msg=str(part))


def test_comparator_codes_from_column_codes_are_those_of_the_records():
    rng = np.random.default_rng(9)
    names = np.array(["ann", "lee", "smith", "kim", None], dtype=object)
    prepared = {c: pd.Series(rng.choice(names, size=500), dtype=object) for c in ("first", "last", "city")}
    specs = {c: FieldSpec("name" if c != "city" else "text") for c in prepared}
    comparator = Comparator(prepared, specs, ("first", "last"))
    # The reference: the swapped names' records factorized one column after the other.
    stacked = pd.concat([prepared["first"], prepared["last"]], ignore_index=True)
    codes, uniques = pd.factorize(stacked, use_na_sentinel=True)
    np.testing.assert_array_equal(comparator.codes["first"], codes[:500])
    np.testing.assert_array_equal(comparator.codes["last"], codes[500:])
    assert list(comparator.uniques["first"]) == list(uniques)
    city, city_uniques = pd.factorize(prepared["city"], use_na_sentinel=True)
    np.testing.assert_array_equal(comparator.codes["city"], city)
    assert list(comparator.uniques["city"]) == list(city_uniques)
