"""Blocking: choose which record pairs are compared at all, and report what it cost and saved.

Comparing every pair of 100,000 leads means five billion pairs; blocking compares only records
that share a *blocking key* in at least one *pass*, and takes the union of all passes. A pass is a
tuple of key parts, all of which must be equal::

    ["email"]                              same normalised email
    ["last_name:soundex", "first_name:initial"]
    ["first_name+last_name:exact"]         the same two names in either order (swapped names)
    ["postcode", "last_name:prefix2"]

A key part is ``column[:transform]`` with the transform one of ``exact`` (the default: the
normalised value), ``soundex``, ``initial`` or ``prefixN`` (the first N characters). Columns joined
by ``+`` form an order-free part: the pair's values are sorted before comparing, so swapped first
and last names share the key.

Passes derived from the field kinds (:func:`default_passes`) that pair two keys are *optional*: one
whose key turns out too coarse for the data (more than :data:`DEFAULT_PAIRS_PER_RECORD` pairs per
record) is skipped, and the report lists it with the pairs it would have produced. On a table of
more than :data:`COARSE_REFERENCE_RECORDS` records a pass is judged as it would be on a table of
that size with the same values (:func:`_too_coarse`): a postcode key pairs a fixed share of all
record pairs, so judged at the table's own size it would pass at 100,000 leads and be dropped at a
million, taking the duplicates only it finds with it.

Every pass that runs (always-run or optional) and would produce more than
:data:`MIN_PAIR_BUDGET` pairs then has each of its blocks larger than :data:`SUB_BLOCK_SIZE`
records *sub-blocked*: its records are split by a refining key (:func:`refinement_keys`: the
locations such as street, city and postcode, then the company and the names, never a column of the
pass itself), one key after
another until no block is too large or the keys run out. A key's blocks grow with the table
(every "James Smith" in the swapped-names pass, every Smith of a postcode in a derived pass), and a
block's pairs grow with its square; split to a size that does not depend on the table, no pass's
pairs per record grow with N (``bench/bench_duplicates_scaling.py`` prints them per pass), while a
duplicate nearly always shares its city, postcode or street too (and the email and phone passes
find those that moved).

Block sizes are then capped: within a block still larger than ``max_block_size`` (its records
share every refining key, or miss them) records are sorted by a similarity-preserving order (their
normalised values) and only records fewer than ``max_block_size`` places apart are paired (a
sorted neighbourhood), so memory stays bounded. The report says how many blocks were capped and
how many pairs that skipped, per pass.

Pairs are generated without a Python loop per pair: after one sort per pass, the pairs at distance
``k`` in the sorted order for ``k = 1 .. max_block_size - 1`` are kept where the keys are equal.

Kept as one module on purpose: parsing, deriving, sub-blocking and bounding passes share the key
codes computed once per run, and read best beside the report they fill.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core.tomlfile import closest
from jobs.leads.duplicates.comparisons import KINDS
from jobs.leads.duplicates.normalize import soundex

__all__ = [
    "BlockingPass",
    "BlockingReport",
    "ColumnCodes",
    "KeyCodes",
    "PassReport",
    "block_pairs",
    "bounded_pairs_per_record",
    "candidate_pairs",
    "column_codes",
    "default_passes",
    "key_values",
    "parse_pass",
    "pass_window",
    "record_order",
    "reference_pairs",
    "refinement_keys",
    "too_coarse",
    "windowed_pair_counts",
]

_TRANSFORM = re.compile(r"^(exact|soundex|initial|prefix([1-9][0-9]?))$")
DEFAULT_MAX_BLOCK_SIZE = 50
"""Records paired within one block before the sorted-neighbourhood cap applies; measured on the
bench (100,000 leads): larger values add pairs, not recall."""
DEFAULT_PAIRS_PER_RECORD = 3.0
"""Pair budget of an optional (derived) pass, per record. A pass giving more is mostly pairing
strangers: a record has rarely more than one or two duplicates. Measured on the synthetic bench
(100,000 leads): skipping such passes cut the candidate pairs from 4.8 to 0.6 million with recall
unchanged (0.9998)."""
SUB_BLOCK_SIZE = 10
"""In any pass of more than :data:`MIN_PAIR_BUDGET` pairs, a block of more records than this is
split by the refining keys (see the module docstring): the pairs of a block grow with its square,
and a key's blocks grow with the table (there are more James Smiths among a million leads, and
more Smiths per postcode), so without a split the pairs per record of a pass would grow with N;
with it every block stays small and they do not."""
MIN_PAIR_BUDGET = 10_000
"""Small tables keep every pass whole: comparing 10,000 pairs is cheap."""
SUB_BLOCK_LIMITS = (SUB_BLOCK_SIZE, 6, 4, 3, 2)
"""On a table larger than :data:`COARSE_REFERENCE_RECORDS`, the block sizes tried in turn (largest
first) until a pass gives no more pairs per record than at the reference size."""
MIN_PASS_PAIRS_PER_RECORD = 0.5
"""Pairs per record any pass may keep on a large table, whatever it gave at the reference size: a
key that only duplicates share (an email) pairs a share of all pairs that shrinks as the table
grows, while its pairs per record stay the same (0.2 planted pairs per record on the bench)."""
COARSE_REFERENCE_RECORDS = 100_000
"""A derived pass on a larger table is judged too coarse as it would be on a table of this many
records with the same values (see :func:`_too_coarse`), so the same passes run at every size."""
MAX_BLOCKING_KEYS = 8
"""At most this many identity/location keys are combined pairwise (at most 28 passes)."""


@dataclass(frozen=True)
class KeyPart:
    """One part of a blocking key: one or more columns (order-free when several) and a transform."""

    columns: tuple[str, ...]
    transform: str = "exact"

    def __str__(self) -> str:
        return "+".join(self.columns) + ("" if self.transform == "exact" else f":{self.transform}")


@dataclass(frozen=True)
class BlockingPass:
    """A blocking pass: records whose key parts are all equal are paired.

    Attributes:
        parts: the key parts, all of which must be equal.
        optional: a derived pass that is skipped (and reported) when it would produce more pairs
            than the run's pair budget, because its key is too coarse for this data.
    """

    parts: tuple[KeyPart, ...]
    optional: bool = False

    @property
    def name(self) -> str:
        """The pass written as in the configuration, e.g. ``last_name:soundex & first_name:initial``."""
        return " & ".join(str(p) for p in self.parts)

    @property
    def columns(self) -> set[str]:
        """Every column the pass reads."""
        return {c for p in self.parts for c in p.columns}


@dataclass(frozen=True)
class PassReport:
    """What one pass did.

    Attributes:
        name: the pass as written.
        keyed_records: records with a complete key (others cannot be paired by this pass).
        blocks: distinct keys held by at least two records.
        largest_block: the size of the largest block.
        capped_blocks: blocks larger than ``max_block_size``, paired only within a sorted window.
        pairs: pairs this pass produced (before the union with other passes).
        pairs_skipped: pairs inside capped blocks that the window left out.
        skipped: the pass was not run because it would have produced more than the pair budget
            (``pairs`` then says how many it would have produced).
    """

    name: str
    keyed_records: int
    blocks: int
    largest_block: int
    capped_blocks: int
    pairs: int
    pairs_skipped: int
    skipped: bool = False


@dataclass(frozen=True)
class BlockingReport:
    """What blocking did in one run.

    Attributes:
        records: records considered (left plus right when linking two tables).
        total_pairs: pairs a full comparison would need.
        candidate_pairs: distinct pairs compared (the union of all passes).
        reduction_ratio: ``1 - candidate_pairs / total_pairs`` (1.0 when there is nothing to compare).
        max_block_size: the cap in force.
        passes: one report per pass.
    """

    records: int
    total_pairs: int
    candidate_pairs: int
    reduction_ratio: float
    max_block_size: int
    passes: tuple[PassReport, ...] = field(default_factory=tuple)

    @property
    def capped_blocks(self) -> int:
        """Blocks capped across all passes."""
        return sum(p.capped_blocks for p in self.passes)

    @property
    def skipped_passes(self) -> tuple[str, ...]:
        """Derived passes not run because their key was too coarse for this data."""
        return tuple(p.name for p in self.passes if p.skipped)

    def summary(self) -> str:
        """One line for logs: records, pairs, reduction ratio, capping and skipped passes."""
        run = len(self.passes) - len(self.skipped_passes)
        return (
            f"{self.records} records, {self.candidate_pairs} candidate pairs of {self.total_pairs} "
            f"(reduction ratio {self.reduction_ratio:.6f}), {run} passes run, "
            f"{len(self.skipped_passes)} skipped as too coarse, "
            f"{self.capped_blocks} blocks capped at {self.max_block_size}"
        )


def parse_pass(spec: Sequence[str] | str, columns: Sequence[str]) -> BlockingPass:
    """Parse a pass written as a list of key parts, checking each column and transform.

    Raises:
        ValueError: a part names an unknown column or transform; the message says which and
            suggests the closest name.
    """
    if isinstance(spec, str):
        spec = [spec]
    if not spec:
        raise ValueError("a blocking pass needs at least one key part, e.g. ['email']")
    parts = []
    for text in spec:
        column_text, _, transform = str(text).partition(":")
        transform = transform.strip() or "exact"
        if not _TRANSFORM.match(transform):
            raise ValueError(
                f"unknown blocking transform {transform!r} in {text!r}: use exact, soundex, initial "
                "or prefixN (N from 1 to 99)"
            )
        names = tuple(c.strip() for c in column_text.split("+"))
        for name in names:
            if name not in columns:
                near = closest(name, columns)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                raise ValueError(
                    f"blocking key {text!r} uses column {name!r}, which is not among the compared "
                    f"fields ({', '.join(columns)}){hint}"
                )
        parts.append(KeyPart(names, transform))
    return BlockingPass(tuple(parts))


def default_passes(
    fields: Mapping[str, str], swap_names: tuple[str, str] | None = None
) -> list[BlockingPass]:
    """Derive blocking passes from the compared fields and their kinds.

    * every email and phone field alone (equal values are strong evidence on their own);
    * a company field alone when no person names are compared (an account table: the company is
      who the record is; among leads, colleagues share it);
    * the two swappable name fields together, order-free (the same person, names swapped);
    * every pair of two keys among the soundex of each name, the first four characters of the
      company, the date, the postcode and the first characters of address and text fields (at most
      :data:`MAX_BLOCKING_KEYS` keys, so at most 28 such passes). A duplicate is found when any two
      of these survive its typos. These passes are *optional*: one whose key is too coarse for the
      data (a city with the first letters of a company) would exceed the pair budget and is
      skipped, which the report shows.

    ``number`` and ``exact`` fields are too coarse to block on (a state, a street number).
    """
    passes: list[BlockingPass] = []
    keys: list[tuple[KeyPart, str]] = []
    has_names = any(KINDS[k].name == "name" for k in fields.values())
    for column, kind_name in fields.items():
        kind = KINDS[kind_name]
        if kind.role is None:
            continue
        if kind.role == "unique" or (kind.name == "company" and not has_names):
            passes.append(BlockingPass((KeyPart((column,), "exact"),)))
        if kind.role in ("identity", "location"):
            keys.append((KeyPart((column,), kind.blocking or "exact"), kind.role))
    if swap_names:
        passes.append(BlockingPass((KeyPart(tuple(swap_names), "exact"),)))
    for (a, _), (b, _) in itertools.combinations(keys[:MAX_BLOCKING_KEYS], 2):
        passes.append(BlockingPass((a, b), optional=True))
    return passes


def refinement_keys(fields: Mapping[str, str]) -> list[KeyPart]:
    """Keys that split an oversized block, most telling first: locations, then identities.

    A location (city, postcode, address) agrees for a duplicate more often than a company or a
    name with its typos, and splits a block of namesakes or colleagues evenly. Short location
    values (a city: ``text``; a postcode) refine by their whole value, since their usual
    transform (the first four letters) would leave Springfield and Springton together; streets,
    companies and names keep their typo-tolerant transform.
    """
    locations, identities = [], []
    for column, kind_name in fields.items():
        kind = KINDS[kind_name]
        if kind.role == "location":
            whole = kind.name in ("text", "postcode")
            locations.append(KeyPart((column,), "exact" if whole else kind.blocking or "exact"))
        elif kind.role == "identity":
            identities.append(KeyPart((column,), kind.blocking or "exact"))
    return locations + identities


def _sub_block(
    codes: np.ndarray,
    prepared: Mapping[str, pd.Series],
    refinements: Sequence[KeyPart],
    cap: int,
    known: dict[KeyPart, np.ndarray],
) -> np.ndarray:
    """Split the blocks larger than ``cap`` by each refining key in turn (records missing a key's
    value stay together within their block); smaller blocks are left as they are.

    Only the records of the oversized blocks are re-coded (they get new codes after the others'),
    so a split costs what those records cost, not the whole table: the bounded passes of a large
    table are split at several sizes, by up to eight keys each. Block codes need not be dense
    (:func:`_dense` makes them so when they would outgrow the table)."""
    codes = _dense(codes)
    for part in refinements:
        keyed = codes >= 0
        if not keyed.any():
            break
        sizes = np.bincount(codes[keyed])
        big = np.flatnonzero(keyed)
        big = big[sizes[codes[big]] > cap]
        if not len(big):
            break
        extra = known[part][big] + 1  # 0: the value is missing
        refined, _ = pd.factorize(codes[big] * (int(known[part].max(initial=-1)) + 2) + extra)
        codes = codes.copy()
        codes[big] = refined.astype(np.int64) + len(sizes)
        if len(sizes) + len(big) > 2 * len(codes):
            codes = _dense(codes)
    return codes


def _dense(codes: np.ndarray) -> np.ndarray:
    """Block codes renumbered 0, 1, ... in order of first appearance (-1, no block, kept)."""
    keyed = codes >= 0
    dense, _ = pd.factorize(codes[keyed])
    out = np.full(len(codes), -1, dtype=np.int64)
    out[keyed] = dense
    return out


def _most_complete_first(
    refinements: Sequence[KeyPart], prepared: Mapping[str, pd.Series], known: dict[KeyPart, np.ndarray]
) -> list[KeyPart]:
    """The refining keys, those missing on fewer records first (in their given order otherwise).

    A record missing a refining key's value is split from those that have one: a duplicate whose
    street was left empty would leave its block at the first split by street, and a pass meant to
    find it despite a typo in its name would not pair it; a key everybody has splits no duplicate
    for missing it.
    """
    return sorted(refinements, key=lambda part: int((known[part] < 0).sum()))


def _transformed(values: pd.Series, transform: str) -> pd.Series:
    if transform == "exact":
        return values
    if transform == "soundex":
        return soundex(values)
    width = 1 if transform == "initial" else int(transform[len("prefix") :])
    out = values.str[:width]
    return out.where(values.notna(), None)


def key_values(prepared: Mapping[str, pd.Series], part: KeyPart) -> pd.Series:
    """The key part's value per record (None where a column is missing): equal values, one block.

    A function of each record's own values, so the Spark engine computes it per partition.
    """
    keys = [_transformed(prepared[c], part.transform) for c in part.columns]
    if len(keys) == 1:
        return keys[0]
    frame = pd.concat(keys, axis=1, ignore_index=True)
    missing = frame.isna().any(axis=1).to_numpy()
    # Order-free: sort each record's values so (a, b) and (b, a) give the same key.
    ordered = np.sort(frame.fillna("").to_numpy(dtype=str), axis=1)
    joined = pd.Series(ordered[:, 0], dtype=object, index=keys[0].index)
    for column in range(1, ordered.shape[1]):
        joined = joined + "\x1f" + ordered[:, column]
    return joined.where(~missing, None)


ColumnCodes = Mapping[str, tuple[np.ndarray, np.ndarray]]
"""Per column, ``pd.factorize`` of its normalised values: a code per record (-1 missing) and the
distinct values (object array)."""


def column_codes(
    prepared: Mapping[str, pd.Series], columns: Sequence[str]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each column's values factorized once, for blocking keys, the record order and the comparator."""
    out = {}
    for column in columns:
        codes, uniques = pd.factorize(prepared[column], use_na_sentinel=True)
        out[column] = (codes.astype(np.int64), np.asarray(uniques, dtype=object))
    return out


class KeyCodes(dict[KeyPart, np.ndarray]):
    """Integer code per record for each key part (-1 where a column is missing), computed on first
    use from each column's distinct values: the partition of :func:`key_values` (records with equal
    keys share a code), without building a million key strings.

    A transform (prefix, soundex) runs once per distinct value, not per record, and an order-free
    part sorts each record's pair of value codes, not its strings: the two names' key took 1.05 s
    at a million leads as strings, 9 times the figure at 100,000 (tested equal to the strings').
    """

    def __init__(self, prepared: Mapping[str, pd.Series], coded: ColumnCodes | None = None) -> None:
        super().__init__()
        self._prepared = prepared
        self._coded = dict(coded or {})

    def _column(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        if column not in self._coded:
            self._coded.update(column_codes(self._prepared, [column]))
        return self._coded[column]

    def __missing__(self, part: KeyPart) -> np.ndarray:
        per_column = []
        transformed = []
        for column in part.columns:
            codes, uniques = self._column(column)
            keys = _transformed(pd.Series(uniques, dtype=object), part.transform)
            per_column.append(codes)
            transformed.append(keys)
        if len(transformed) == 1 and part.transform == "exact":
            self[part] = per_column[0]
            return per_column[0]
        # One coding of the transformed values of every column of the part, so that equal keys
        # of different columns (a first name that is another record's last name) get equal codes.
        joint, _ = pd.factorize(pd.concat(transformed, ignore_index=True), use_na_sentinel=True)
        joint = joint.astype(np.int64)
        record_keys = []
        start = 0
        for codes, keys in zip(per_column, transformed, strict=True):
            of_value = np.append(joint[start : start + len(keys)], -1)  # code -1 picks the last
            record_keys.append(of_value[codes])
            start += len(keys)
        stacked = np.stack(record_keys, axis=1)
        missing = (stacked < 0).any(axis=1)
        stacked.sort(axis=1)  # order-free: (a, b) and (b, a) are one key
        result = stacked[:, 0]
        for column in range(1, stacked.shape[1]):
            result, _ = pd.factorize(result * (int(joint.max(initial=0)) + 1) + stacked[:, column])
            result = result.astype(np.int64)
        result = np.where(missing, -1, result).astype(np.int64)
        self[part] = result
        return result


def _pass_codes(
    prepared: Mapping[str, pd.Series], blocking_pass: BlockingPass, known: dict[KeyPart, np.ndarray]
) -> np.ndarray:
    codes = None
    for part in blocking_pass.parts:
        # A key part recurs in many derived passes (each key is paired with seven others): once.
        part_codes = known[part]
        if codes is None:
            codes = part_codes
            continue
        missing = (codes < 0) | (part_codes < 0)
        combined = codes * (int(part_codes.max(initial=-1)) + 1) + part_codes
        codes, _ = pd.factorize(combined)
        codes = codes.astype(np.int64)
        codes[missing] = -1
    assert codes is not None
    return codes


def _windowed_pairs(
    codes: np.ndarray, order: np.ndarray, window: int, n_left: int | None
) -> tuple[np.ndarray, np.ndarray, PassReport]:
    keyed = np.flatnonzero(codes >= 0)
    # By block, then by order within it (ties by position): one stable sort of one integer key,
    # the same as lexsort by the two, which sorted twice (0.25 s against 0.09 s per million).
    key = codes[keyed] * (int(order.max(initial=0)) + 1) + order[keyed]
    sorted_idx = keyed[np.argsort(key, kind="stable")]
    sorted_codes = codes[sorted_idx]
    firsts, seconds = [], []
    for distance in range(1, window):
        same = sorted_codes[:-distance] == sorted_codes[distance:]
        if not same.any():
            break  # no equal keys this far apart, so none further apart either
        a, b = sorted_idx[:-distance][same], sorted_idx[distance:][same]
        if n_left is not None:
            cross = (a < n_left) != (b < n_left)
            a, b = a[cross], b[cross]
        firsts.append(np.minimum(a, b))
        seconds.append(np.maximum(a, b))
    first = np.concatenate(firsts) if firsts else np.zeros(0, dtype=np.int64)
    second = np.concatenate(seconds) if seconds else np.zeros(0, dtype=np.int64)

    _, sizes = np.unique(sorted_codes, return_counts=True)
    sizes = sizes[sizes >= 2].astype(np.int64)
    capped = sizes[sizes > window]
    # Pairs a block of size s would give, and how many the window of w kept: (w-1)s - w(w-1)/2.
    if n_left is None:
        skipped = int(
            (capped * (capped - 1) // 2 - ((window - 1) * capped - window * (window - 1) // 2)).sum()
        )
    else:
        skipped = -1  # cross pairs of a capped block depend on its mix of sides; counted below
    report = PassReport(
        "", len(keyed), len(sizes), int(sizes.max(initial=0)), len(capped), len(first), skipped
    )
    return first, second, report


def _cross_skipped(codes: np.ndarray, n_left: int, window: int, kept: int) -> int:
    keyed = codes >= 0
    left = np.bincount(codes[:n_left][keyed[:n_left]], minlength=int(codes.max(initial=-1)) + 1)
    right = np.bincount(codes[n_left:][keyed[n_left:]], minlength=int(codes.max(initial=-1)) + 1)
    return int((left * right).sum()) - kept


def _expected_pairs(codes: np.ndarray, window: int, n_left: int | None) -> int:
    """Pairs a pass would produce with the window cap (for linking: left-right pairs, uncapped)."""
    keyed = codes >= 0
    if not keyed.any():
        return 0
    if n_left is not None:
        size = int(codes.max()) + 1
        left = np.bincount(codes[:n_left][keyed[:n_left]], minlength=size)
        right = np.bincount(codes[n_left:][keyed[n_left:]], minlength=size)
        return int((left * right).sum())
    return int(windowed_pair_counts(np.bincount(codes[keyed]), window).sum())


def windowed_pair_counts(sizes: np.ndarray, window: int) -> np.ndarray:
    """Pairs each block of these sizes gives when paired within a sorted window of ``window``
    (all its pairs when it is no larger than the window)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    full = sizes * (sizes - 1) // 2
    windowed = (window - 1) * sizes - window * (window - 1) // 2
    return np.where(sizes <= window, full, windowed)


def _pairs_at_reference(codes: np.ndarray, n_left: int | None) -> float:
    """Pairs a pass's key would give on a table of :data:`COARSE_REFERENCE_RECORDS` records with
    the same distribution of values: the share of record pairs that share the key, which does not
    depend on the table's size, times the reference table's pairs."""
    n = len(codes)
    keyed = codes >= 0
    reference = COARSE_REFERENCE_RECORDS
    if n_left is None:
        return reference_pairs(np.bincount(codes[keyed]), n)
    size = int(codes.max(initial=-1)) + 1
    left = np.bincount(codes[:n_left][keyed[:n_left]], minlength=size).astype(np.float64)
    right = np.bincount(codes[n_left:][keyed[n_left:]], minlength=size).astype(np.float64)
    scale = reference / n  # both sides shrunk alike
    return float((left * right).sum()) * scale * scale


def reference_pairs(sizes: np.ndarray, n: int) -> float:
    """:func:`_pairs_at_reference` of one table from its block sizes (one entry per block) and
    record count: the Spark engine computes the sizes with an aggregation, not from codes."""
    sizes = np.asarray(sizes, dtype=np.float64)
    share = float((sizes * (sizes - 1)).sum()) / (n * (n - 1)) if n > 1 else 0.0
    return share * COARSE_REFERENCE_RECORDS * (COARSE_REFERENCE_RECORDS - 1) / 2


def too_coarse(expected: int, n: int, pairs_per_record: float, sizes: Callable[[], np.ndarray]) -> bool:
    """Whether an optional pass of one table is too coarse (:func:`_too_coarse`), given its
    expected pairs, the table's records and a way to get its block sizes (needed only above
    :data:`COARSE_REFERENCE_RECORDS` records)."""
    if n <= COARSE_REFERENCE_RECORDS:
        return expected > max(MIN_PAIR_BUDGET, int(pairs_per_record * n))
    budget = max(MIN_PAIR_BUDGET, pairs_per_record * COARSE_REFERENCE_RECORDS)
    return reference_pairs(sizes(), n) > budget


def _too_coarse(codes: np.ndarray, expected: int, n_left: int | None, pairs_per_record: float) -> bool:
    """Whether a derived pass's key is too coarse: over its pair budget on this table, judged at
    no more than :data:`COARSE_REFERENCE_RECORDS` records.

    A key of fixed cardinality (a postcode with the initial of a name) pairs a share of all record
    pairs that does not depend on the table, so its pairs per record grow with the table; judged
    at the table's own size, a pass kept at 100,000 leads would be dropped at a million and the
    duplicates only it finds lost with it. Judged at the reference size, the same passes run at
    every size beyond it, and :func:`_pass_window` bounds their pairs.
    """
    if n_left is None:
        return too_coarse(expected, len(codes), pairs_per_record, lambda: np.bincount(codes[codes >= 0]))
    if len(codes) <= COARSE_REFERENCE_RECORDS:
        return expected > max(MIN_PAIR_BUDGET, int(pairs_per_record * len(codes)))
    budget = max(MIN_PAIR_BUDGET, pairs_per_record * COARSE_REFERENCE_RECORDS)
    return _pairs_at_reference(codes, n_left) > budget


def _block_pairs(codes: np.ndarray, window: int) -> int:
    """Pairs a pass's blocks give within a sorted window of ``window``."""
    return block_pairs(np.bincount(codes[codes >= 0]), window)


def block_pairs(sizes: np.ndarray, window: int) -> int:
    """Pairs blocks of these sizes (one entry per block) give within a sorted window of ``window``."""
    sizes = np.asarray(sizes, dtype=np.int64)
    return int(windowed_pair_counts(sizes[sizes >= 2], window).sum())


def _pass_window(codes: np.ndarray, per_record: float, window: int) -> int:
    """The widest sorted window (2 to ``window``) that keeps a pass at ``per_record`` pairs per
    record or fewer (2 when even that gives more: each record's nearest neighbour in its block).

    On a table larger than the reference, a key of fixed cardinality still has blocks that grow
    with the table after sub-blocking (the refining keys have fixed cardinality too: 40 postcodes
    per city); pairing each record with its nearest neighbours in the similarity order only, as
    many as the pass gave per record at the reference size, keeps its pairs per record flat while
    the likeliest pairs (close in every value) stay together.
    """
    return pass_window(np.bincount(codes[codes >= 0]), len(codes), per_record, window)


def pass_window(sizes: np.ndarray, n: int, per_record: float, window: int) -> int:
    """:func:`_pass_window` from a pass's block sizes (one entry per block) and the table's records."""
    allowed = per_record * n
    for width in range(window, 2, -1):
        if block_pairs(sizes, width) <= allowed:
            return width
    return 2


def bounded_pairs_per_record(sizes: np.ndarray, n: int) -> float:
    """The pairs per record a pass of a table larger than the reference may keep (:func:`_bounded`):
    what it gives at :data:`COARSE_REFERENCE_RECORDS` records, or :data:`MIN_PASS_PAIRS_PER_RECORD`."""
    return max(reference_pairs(sizes, n) / COARSE_REFERENCE_RECORDS, MIN_PASS_PAIRS_PER_RECORD)


def _bounded(
    codes: np.ndarray,
    prepared: Mapping[str, pd.Series],
    usable: Sequence[KeyPart],
    known: dict[KeyPart, np.ndarray],
    window: int,
) -> tuple[np.ndarray, int]:
    """A pass's block codes and sorted window on a table larger than the reference, such that it
    gives no more pairs per record than it would at :data:`COARSE_REFERENCE_RECORDS` records (or
    :data:`MIN_PASS_PAIRS_PER_RECORD`, whichever is more).

    Blocks are sub-blocked at each size of :data:`SUB_BLOCK_LIMITS` in turn, largest first, and the
    first that meets the bound is kept; when even the smallest does not (the refining keys ran
    out), the window narrows (:func:`_pass_window`).
    """
    n = len(codes)
    per_record = bounded_pairs_per_record(np.bincount(codes[codes >= 0]), n)
    refined = codes
    for limit in SUB_BLOCK_LIMITS:
        # Each size splits what the larger one left: the same blocks as splitting the pass's
        # blocks afresh (a block split by a key again is unchanged, and every block still over
        # this size goes on through the keys in the same order), at the cost of the big ones only.
        refined = _sub_block(refined, prepared, usable, limit, known)
        if _block_pairs(refined, window) <= per_record * n:
            return refined, window
    return refined, _pass_window(refined, per_record, window)


def _distinct(values: np.ndarray) -> np.ndarray:
    """``np.unique`` of an integer array by sorting: numpy 2.4's ``np.unique`` (no extra outputs)
    goes through a hash table that grows with the pairs and misses the cache (1.9 s for 2
    million pairs, 23 times the figure for 250,000; a sort takes 0.1 s)."""
    ordered = np.sort(values)
    if len(ordered) < 2:
        return ordered
    first = np.empty(len(ordered), dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return ordered[first]


def record_order(
    prepared: Mapping[str, pd.Series], columns: Sequence[str], coded: ColumnCodes | None = None
) -> np.ndarray:
    """Each record's rank in the order of its normalised values, column after column (a missing
    value first): records with close values get close ranks, the ``order`` of :func:`candidate_pairs`.

    The same ranks as sorting the records' values joined with a ``\x1f`` after each (the
    signature the Spark engine sorts by; equal records share a rank), computed per column: each
    column's distinct values are sorted as fixed-width strings (compared in C), and the records
    by the integer ranks. Joining and sorting a million long strings took 4.2 s (20 times the
    100,000-record figure) and kept 170 MB of signatures alive for the whole run. ``coded``:
    :func:`column_codes` of ``prepared`` when the caller has them.
    """
    n = len(prepared[columns[0]]) if columns else 0
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    coded = coded if coded is not None else column_codes(prepared, columns)
    keys = []
    for column in columns:
        codes, uniques = coded[column]
        # The "\x1f" after each value orders a value before its extensions ("ann" before
        # "anna"), and both before a missing one's next column, exactly as in the joined form.
        suffixed = (np.asarray(uniques, dtype=object) + "\x1f").astype(str)
        rank = np.empty(len(uniques) + 1, dtype=np.int64)
        rank[0] = 0  # missing: "" joined, before every value
        rank[np.argsort(suffixed, kind="stable") + 1] = np.arange(1, len(uniques) + 1)
        keys.append(rank[codes.astype(np.int64) + 1])
    by_values = np.lexsort(keys[::-1])
    ordered = np.stack(keys, axis=1)[by_values]
    new_rank = np.ones(n, dtype=np.int64)
    new_rank[0] = 0
    new_rank[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    order = np.empty(n, dtype=np.int64)
    order[by_values] = np.cumsum(new_rank)
    return order


def candidate_pairs(
    prepared: Mapping[str, pd.Series],
    passes: Sequence[BlockingPass],
    *,
    order: np.ndarray,
    max_block_size: int = DEFAULT_MAX_BLOCK_SIZE,
    n_left: int | None = None,
    pairs_per_record: float = DEFAULT_PAIRS_PER_RECORD,
    refinements: Sequence[KeyPart] = (),
    coded: ColumnCodes | None = None,
) -> tuple[np.ndarray, np.ndarray, BlockingReport]:
    """Return the union of all passes' pairs as two index arrays (``first < second``) and a report.

    Args:
        prepared: normalised values per column, one row per record, positional.
        passes: the blocking passes.
        order: an integer rank per record used to sort records inside a block (records with close
            values should have close ranks), so the capped window keeps the likeliest pairs.
        max_block_size: the block-size cap (>= 2).
        n_left: when linking two tables, the first ``n_left`` rows are the left table and only
            left-right pairs are produced; None for deduplicating one table.
        pairs_per_record: the pair budget of an optional pass, per record (at least
            :data:`MIN_PAIR_BUDGET` pairs in all), judged at no more than
            :data:`COARSE_REFERENCE_RECORDS` records.
        refinements: keys that sub-block the oversized blocks of every pass of more than
            :data:`MIN_PAIR_BUDGET` pairs (:func:`refinement_keys`); a pass is not refined by a
            key on its own columns. Without them, only the window caps a block.
        coded: :func:`column_codes` of ``prepared`` when the caller has them (computed otherwise).
    """
    n = len(order)
    window = max(2, int(max_block_size))
    reports = []
    chunks = []
    known = KeyCodes(prepared, coded)
    for blocking_pass in passes:
        codes = _pass_codes(prepared, blocking_pass, known)
        expected = _expected_pairs(codes, window, n_left)
        if blocking_pass.optional and _too_coarse(codes, expected, n_left, pairs_per_record):
            keyed = int((codes >= 0).sum())
            reports.append(PassReport(blocking_pass.name, keyed, 0, 0, 0, expected, 0, skipped=True))
            continue
        pass_window = window
        if refinements and expected > MIN_PAIR_BUDGET:
            # Not a small table (which keeps every pair): split the blocks grown too large, in
            # every pass, so that no pass's pairs per record grow with the table.
            own = blocking_pass.columns
            usable = _most_complete_first(
                [p for p in refinements if not set(p.columns) & own], prepared, known
            )
            if n_left is None and n > COARSE_REFERENCE_RECORDS:
                codes, pass_window = _bounded(codes, prepared, usable, known, window)
            else:
                codes = _sub_block(codes, prepared, usable, SUB_BLOCK_SIZE, known)
        first, second, report = _windowed_pairs(codes, order, pass_window, n_left)
        skipped = report.pairs_skipped
        if n_left is not None:
            skipped = _cross_skipped(codes, n_left, window, len(first))
        reports.append(
            PassReport(
                blocking_pass.name,
                report.keyed_records,
                report.blocks,
                report.largest_block,
                report.capped_blocks,
                report.pairs,
                max(skipped, 0),
            )
        )
        chunks.append(first * n + second)
    union = _distinct(np.concatenate(chunks)) if chunks else np.zeros(0, dtype=np.int64)
    first, second = union // n, union % n
    total = n * (n - 1) // 2 if n_left is None else n_left * (n - n_left)
    reduction = 1.0 - len(union) / total if total else 1.0
    report = BlockingReport(n, total, len(union), reduction, window, tuple(reports))
    return first, second, report
