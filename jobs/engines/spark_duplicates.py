"""Duplicate detection on Spark, with the pandas engine's pairs and scores.

:func:`find_duplicates_spark` runs the steps of :mod:`jobs.leads.duplicates.detect` where the
work is, reusing the pandas functions so that the answers are the same:

1. **Normalise** (executors): every partition runs the pandas normaliser
   (:func:`~jobs.leads.duplicates.comparisons.prepare`) and the blocking-key transforms
   (:func:`~jobs.leads.duplicates.blocking.key_values`). Both are functions of one record's
   values, so a partition gives what the whole table would.
2. **Block** (executors, joins): the same passes as pandas. One aggregation gives every pass's
   block sizes; the driver decides from those alone which optional passes are too coarse (the
   pair budget) and which always-run passes must be sub-blocked by the refining keys (the same
   rule and order as pandas). Records are ranked within a block by their normalised values
   (pandas' sorted neighbourhood), and a record is paired with the next ``max_block_size - 1``
   records of its block by an equi-join on (pass, key, rank + distance), so a block as large
   as "Smith" costs its window, not its square. The union of the passes is de-duplicated.
3. **Compare** (executors, ``mapInPandas`` over candidate pairs joined with both records'
   normalised values): the pandas :class:`~jobs.leads.duplicates.detect.Comparator` on each
   batch of pairs. A pair's levels depend on its two values alone, so they equal pandas'. The
   term-frequency share of the first record's value is counted by a Spark aggregation.
4. **Fit** (driver): the comparison patterns with their counts (``groupBy(levels).count()``),
   fed to the pandas EM, which fits the same parameters from patterns as from pairs.
5. **Score** (executors): the fitted model is shipped with the function; only pairs at or above
   the threshold travel to the driver, where their evidence is written as pandas writes it.

Record order: pandas pairs records in the order of its frame (ties in a block's window, and
which record of a pair is ``id_left``). Here records are taken in the order of their ids, as
the Spark engine hands the pandas engine's code its records; ``find_duplicates`` on the same
records sorted by id gives the same pairs (``tests/test_spark_duplicates.py``).

Linking two tables (leads against contacts and accounts) and the incremental cache stay with the
pandas code on the driver (docs/scale.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ConfigError
from core.tomlfile import closest
from jobs.engines.frames import SparkTable, restore
from jobs.errors import JobError
from jobs.leads.duplicates.blocking import (
    COARSE_REFERENCE_RECORDS,
    DEFAULT_MAX_BLOCK_SIZE,
    DEFAULT_PAIRS_PER_RECORD,
    MIN_PAIR_BUDGET,
    SUB_BLOCK_LIMITS,
    SUB_BLOCK_SIZE,
    BlockingPass,
    BlockingReport,
    KeyPart,
    PassReport,
    block_pairs,
    bounded_pairs_per_record,
    key_values,
    pass_window,
    refinement_keys,
    too_coarse,
    windowed_pair_counts,
)
from jobs.leads.duplicates.comparisons import KINDS, prepare
from jobs.leads.duplicates.detect import (
    PAIR_COLUMNS,
    BlockingArg,
    Comparator,
    FieldsArg,
    FieldSpec,
    blocking_passes,
    check_threshold,
    evidence_rows,
    field_specs,
    fit_model,
    swap_pair,
)
from jobs.leads.duplicates.linkage_model import LinkageModel, check_compatible, tf_adjustment

__all__ = ["SparkDuplicateResult", "find_duplicates_spark"]

_KEY_SEPARATOR = "\x1e"
_REFINE_SEPARATOR = "\x1d"


@dataclass(frozen=True)
class SparkDuplicateResult:
    """What one Spark run produced (as :class:`~jobs.leads.duplicates.detect.DuplicateResult`).

    Attributes:
        pairs: the matched pairs on the driver (``id_left``, ``id_right``, ``score``, ``evidence``).
        blocking: the blocking report.
        model: the model used (fitted on the driver, or given).
        threshold: the score threshold applied.
        candidates: every candidate pair with its score, as a Spark DataFrame (not collected).
    """

    pairs: pd.DataFrame
    blocking: BlockingReport
    model: LinkageModel
    threshold: float
    candidates: Any


@dataclass(frozen=True)
class _Plan:
    """The fields and keys of a run, positional so that Spark column names never clash."""

    columns: list[str]
    specs: dict[str, FieldSpec]
    swap: tuple[str, str] | None
    passes: list[BlockingPass]
    parts: list[KeyPart]  # every key part of a pass or a refinement, each once
    refinements: list[KeyPart]

    def part(self, key: KeyPart) -> str:
        return f"k{self.parts.index(key)}"


def _counted(records: Any) -> int:
    """The number of records, after checking every id is there once (as pandas checks)."""
    from pyspark.sql import functions as F

    row = records.agg(
        F.count(F.lit(1)).alias("rows"), F.count("id").alias("ids"), F.countDistinct("id").alias("distinct")
    ).first()
    if row["rows"] != row["ids"]:
        raise JobError(
            f"{row['rows'] - row['ids']} records in the records have no id; every record needs one"
        )
    if row["ids"] != row["distinct"]:
        repeated = records.groupBy("id").count().where("count > 1")
        first = repeated.orderBy("id").first()["id"]
        raise JobError(
            f"{repeated.count()} ids in the records occur more than once (first: {first!r}); "
            "ids must be unique"
        )
    return int(row["rows"])


def _indexed(frame: Any, id_column: str) -> Any:
    """The records sorted by id, with ``idx`` increasing in id order (not contiguous)."""
    from pyspark.sql import functions as F

    # After the sort, partitions hold consecutive id ranges, and monotonically_increasing_id is
    # (partition << 33) + row within the partition: it increases with the id. Only the order of
    # ``idx`` matters (window ties, which record of a pair is the left one), so no global rank
    # (one partition) is needed; the records are checkpointed once, so it is computed once.
    return frame.orderBy(id_column).withColumn("idx", F.monotonically_increasing_id())


def _normaliser(plan: _Plan, dtypes: Mapping[str, str], region: str) -> Any:
    """mapInPandas: raw records -> idx, id, normalised values ``v<i>``, key parts, signature."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            batch = restore(batch.reset_index(drop=True), dtypes)
            prepared = {
                c: prepare(batch[c], plan.specs[c].kind, region).reset_index(drop=True) for c in plan.columns
            }
            out = {"idx": batch["idx"].astype("int64"), "id": batch["id"].astype(object)}
            signature = pd.Series([""] * len(batch), dtype=object)
            for index, column in enumerate(plan.columns):
                out[f"v{index}"] = prepared[column]
                signature = signature + prepared[column].fillna("") + "\x1f"
            for index, part in enumerate(plan.parts):
                values = key_values(prepared, part).reset_index(drop=True)
                out[f"k{index}"] = values.astype(object).where(values.notna(), None)
            out["sig"] = signature
            yield pd.DataFrame(out)

    return run


def _pass_key(plan: _Plan, blocking_pass: BlockingPass) -> Any:
    from pyspark.sql import functions as F

    parts: list[Any] = []
    for part in blocking_pass.parts:
        if parts:
            parts.append(F.lit(_KEY_SEPARATOR))
        parts.append(F.col(plan.part(part)))
    return parts[0] if len(parts) == 1 else F.concat(*parts)  # concat: missing when any part is


def _histograms(keyed: Any) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per pass: distinct block sizes and how many blocks have each size."""
    from pyspark.sql import functions as F

    rows = (
        keyed.groupBy("p", "key")
        .count()
        .groupBy("p", "count")
        .agg(F.count(F.lit(1)).alias("blocks"))
        .collect()
    )
    found: dict[int, list[tuple[int, int]]] = {}
    for row in rows:
        found.setdefault(int(row["p"]), []).append((int(row["count"]), int(row["blocks"])))
    return {
        p: (np.array([s for s, _ in v], dtype=np.int64), np.array([b for _, b in v], dtype=np.int64))
        for p, v in found.items()
    }


def _report(name: str, histogram: tuple[np.ndarray, np.ndarray] | None, window: int) -> PassReport:
    if histogram is None:
        return PassReport(name, 0, 0, 0, 0, 0, 0)
    sizes, blocks = histogram
    pairs = int((windowed_pair_counts(sizes, window) * blocks).sum())
    paired = sizes >= 2
    capped = sizes > window
    full = sizes * (sizes - 1) // 2
    skipped = int(((full - windowed_pair_counts(sizes, window)) * blocks)[capped].sum())
    return PassReport(
        name,
        int((sizes * blocks).sum()),
        int(blocks[paired].sum()),
        int(sizes[paired].max(initial=0)),
        int(blocks[capped].sum()),
        pairs,
        skipped,
    )


def _block_sizes(histogram: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """One entry per block (the form blocking's bounds take) from a (sizes, blocks) histogram."""
    if histogram is None:
        return np.zeros(0, dtype=np.int64)
    return np.repeat(histogram[0], histogram[1])


def _sub_block(frame: Any, plan: _Plan, usable: Sequence[KeyPart], limit: int) -> Any:
    """Split the blocks over ``limit`` records by each refining key in turn (as pandas)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    for part in usable:
        frame = frame.withColumn("_size", F.count(F.lit(1)).over(Window.partitionBy("key"))).localCheckpoint(
            eager=True
        )
        if frame.where(F.col("_size") > limit).limit(1).count() == 0:
            break
        # A record missing the refining value stays with the others of its block that miss it.
        extra = F.coalesce(F.concat(F.lit("v"), F.col(plan.part(part))), F.lit("-"))
        refined = F.concat(F.col("key"), F.lit(_REFINE_SEPARATOR), extra)
        frame = frame.withColumn("key", F.when(F.col("_size") > limit, refined).otherwise(F.col("key")))
    return frame.drop("_size")


def _most_complete_first(records: Any, plan: _Plan) -> list[KeyPart]:
    """The refining keys, those missing on fewer records first (blocking._most_complete_first)."""
    from pyspark.sql import functions as F

    if not plan.refinements:
        return []
    row = records.select(
        *[F.sum(F.col(plan.part(k)).isNull().cast("long")).alias(plan.part(k)) for k in plan.refinements]
    ).first()
    return sorted(plan.refinements, key=lambda k: int(row[plan.part(k)] or 0))


def _refined(
    frame: Any, plan: _Plan, p: int, usable: Sequence[KeyPart], n: int, window: int, sizes: np.ndarray
) -> tuple[Any, tuple[np.ndarray, np.ndarray] | None, int]:
    """A pass's blocks split as pandas splits them (blocking.candidate_pairs), their size
    histogram and the pass's window: below the reference size by :data:`SUB_BLOCK_SIZE`; above it, by the
    first of :data:`SUB_BLOCK_LIMITS` that keeps the pass to its pairs per record at the reference
    size, else with a narrower window (blocking._bounded)."""
    if n <= COARSE_REFERENCE_RECORDS:
        refined = _sub_block(frame, plan, usable, SUB_BLOCK_SIZE).localCheckpoint(eager=True)
        return refined, _histograms(refined).get(p), window
    per_record = bounded_pairs_per_record(sizes, n)
    for limit in SUB_BLOCK_LIMITS:
        refined = _sub_block(frame, plan, usable, limit).localCheckpoint(eager=True)
        histogram = _histograms(refined).get(p)
        if block_pairs(_block_sizes(histogram), window) <= per_record * n:
            return refined, histogram, window
    return refined, histogram, pass_window(_block_sizes(histogram), n, per_record, window)


def _candidate_pairs(records: Any, plan: _Plan, n: int, window: int) -> tuple[Any, BlockingReport]:
    """Distinct candidate pairs (``a`` < ``b``, record positions) and the blocking report."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if not plan.passes:  # blocking = []: nothing is compared, as in pandas
        empty = records.sparkSession.createDataFrame([], "a long, b long")
        return empty, BlockingReport(n, n * (n - 1) // 2, 0, 1.0, window, ())
    entries = [
        F.struct(F.lit(p).alias("p"), _pass_key(plan, bp).alias("key")) for p, bp in enumerate(plan.passes)
    ]
    keyed = (
        records.select(
            "idx",
            "sig",
            *[F.col(plan.part(k)) for k in plan.refinements],
            F.explode(F.array(*entries)).alias("e"),
        )
        .select("idx", "sig", *[plan.part(k) for k in plan.refinements], "e.p", "e.key")
        .where(F.col("key").isNotNull())
    )
    histograms = _histograms(keyed)
    ordered: list[KeyPart] | None = None
    run_plain, refined_frames, reports = [], [], {}
    for p, blocking_pass in enumerate(plan.passes):
        histogram = histograms.get(p)
        sizes = _block_sizes(histogram)
        expected = int((windowed_pair_counts(histogram[0], window) * histogram[1]).sum()) if histogram else 0
        if blocking_pass.optional and too_coarse(expected, n, DEFAULT_PAIRS_PER_RECORD, lambda s=sizes: s):
            keyed_records = int(sizes.sum())
            reports[p] = PassReport(blocking_pass.name, keyed_records, 0, 0, 0, expected, 0, skipped=True)
            continue
        if plan.refinements and expected > MIN_PAIR_BUDGET:
            if ordered is None:
                ordered = _most_complete_first(records, plan)
            own = blocking_pass.columns
            usable = [k for k in ordered if not set(k.columns) & own]
            frame, refined_histogram, pass_window_ = _refined(
                keyed.where(F.col("p") == p), plan, p, usable, n, window, sizes
            )
            refined_frames.append(frame.withColumn("w", F.lit(pass_window_)))
            reports[p] = _report(blocking_pass.name, refined_histogram, pass_window_)
            continue
        run_plain.append(p)
        reports[p] = _report(blocking_pass.name, histogram, window)
    blocks = keyed.where(F.col("p").isin(run_plain)).withColumn("w", F.lit(window)) if run_plain else None
    for frame in refined_frames:
        blocks = frame if blocks is None else blocks.unionByName(frame)
    spark = records.sparkSession
    if blocks is None:
        pairs = spark.createDataFrame([], "a long, b long")
    else:
        block = Window.partitionBy("p", "key")
        ranked = (
            blocks.select("p", "key", "idx", "sig", "w")
            .withColumn("size", F.count(F.lit(1)).over(block))
            .where(F.col("size") >= 2)
            # The sorted neighbourhood: records by their normalised values, then their position.
            .withColumn("pos", F.row_number().over(block.orderBy("sig", "idx")) - 1)
        )
        reach = F.least(F.col("size") - 1 - F.col("pos"), F.col("w") - 1)
        ahead = (
            ranked.where(reach >= 1)
            .select("p", "key", "idx", "pos", F.explode(F.sequence(F.lit(1), reach)).alias("d"))
            .select("p", "key", "idx", (F.col("pos") + F.col("d")).alias("pos2"))
        )
        behind = ranked.select("p", "key", F.col("pos").alias("pos2"), F.col("idx").alias("idx2"))
        pairs = (
            ahead.join(behind, ["p", "key", "pos2"])
            .select(F.least("idx", "idx2").alias("a"), F.greatest("idx", "idx2").alias("b"))
            .distinct()
        )
    pairs = pairs.localCheckpoint(eager=True)
    count = pairs.count()
    total = n * (n - 1) // 2
    report = BlockingReport(
        n,
        total,
        count,
        1.0 - count / total if total else 1.0,
        window,
        tuple(reports[p] for p in range(len(plan.passes))),
    )
    return pairs, report


def _term_shares(
    records: Any, plan: _Plan, tf_flags: Sequence[bool]
) -> tuple[Any, dict[int, tuple[int, float]]]:
    """Records with ``c<i>``: how many records share their value of each tf field; per field,
    the records with a value and Σ p² (the chance two random records agree)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    fields = [i for i, flag in enumerate(tf_flags) if flag]
    out = records
    for i in fields:
        value = F.col(f"v{i}")
        out = out.withColumn(
            f"c{i}", F.when(value.isNotNull(), F.count(F.lit(1)).over(Window.partitionBy(value)))
        )
    out = out.localCheckpoint(eager=True)
    if not fields:
        return out, {}
    # Σ over records of their value's count is Σ over values of count², exactly (integers).
    sums = [F.count(f"v{i}").alias(f"n{i}") for i in fields] + [F.sum(f"c{i}").alias(f"q{i}") for i in fields]
    row = out.agg(*sums).first()
    stats: dict[int, tuple[int, float]] = {}
    for i in fields:
        present = int(row[f"n{i}"] or 0)
        stats[i] = (present, int(row[f"q{i}"] or 0) / (present * present) if present else 0.0)
    return out, stats


def _comparer(plan: _Plan, tf_flags: Sequence[bool], stats: Mapping[int, tuple[int, float]]) -> Any:
    """mapInPandas over pairs with both records' values: levels, similarities, tf weights, swap."""
    n_fields = len(plan.columns)
    top = [len(KINDS[plan.specs[c].kind].levels) - 1 for c in plan.columns]

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            k = len(batch)
            prepared = {
                c: pd.concat([batch[f"a_v{i}"], batch[f"b_v{i}"]], ignore_index=True).astype(object)
                for i, c in enumerate(plan.columns)
            }
            prepared = {c: s.where(s.notna(), None) for c, s in prepared.items()}
            comparator = Comparator(prepared, plan.specs, plan.swap)
            positions = np.arange(k, dtype=np.int64)
            levels, sims, swapped = comparator.compare(positions, positions + k)
            tf = np.zeros((k, n_fields), dtype=np.float32)
            for i, flag in enumerate(tf_flags):
                if not flag:
                    continue
                present, agree = stats[i]
                exact = levels[:, i] == top[i]
                counts = batch[f"a_c{i}"].to_numpy(dtype=np.float64)[exact]
                tf[exact, i] = tf_adjustment(counts / present, agree)
            out = {"a": batch["a"], "b": batch["b"], "id_a": batch["a_id"], "id_b": batch["b_id"]}
            for i in range(n_fields):
                out[f"l{i}"] = levels[:, i]
                out[f"s{i}"] = sims[:, i]
                out[f"t{i}"] = tf[:, i]
            out["swapped"] = swapped
            yield pd.DataFrame(out)

    return run


def _compared_schema(n_fields: int) -> str:
    cols = ["a long", "b long", "id_a string", "id_b string"]
    for i in range(n_fields):
        cols += [f"l{i} tinyint", f"s{i} float", f"t{i} float"]
    return ", ".join([*cols, "swapped boolean"])


def _compare(pairs: Any, records: Any, plan: _Plan, tf_flags: Sequence[bool], stats: Any) -> Any:
    from pyspark.sql import functions as F

    n_fields = len(plan.columns)
    tf_fields = [i for i, flag in enumerate(tf_flags) if flag]

    def side(prefix: str) -> Any:
        cols = [F.col("idx").alias(prefix), F.col("id").alias(f"{prefix}_id")]
        cols += [F.col(f"v{i}").alias(f"{prefix}_v{i}") for i in range(n_fields)]
        cols += [F.col(f"c{i}").alias(f"{prefix}_c{i}") for i in tf_fields] if prefix == "a" else []
        return records.select(*cols)

    joined = pairs.join(side("a"), "a").join(side("b"), "b")
    return joined.mapInPandas(_comparer(plan, tf_flags, stats), _compared_schema(n_fields))


def _arrays(frame: pd.DataFrame, prefix: str, n_fields: int, dtype: Any) -> np.ndarray:
    out = np.empty((len(frame), n_fields), dtype=dtype)
    for i in range(n_fields):
        out[:, i] = frame[f"{prefix}{i}"].to_numpy()
    return out


def _scorer(model: LinkageModel, cut: float | None, n_fields: int) -> Any:
    """mapInPandas over compared pairs: the score; with ``cut`` only the pairs at or above it."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            levels = _arrays(batch, "l", n_fields, np.int8)
            tf = _arrays(batch, "t", n_fields, np.float32)
            score = model.score(levels, tf.sum(axis=1))
            if cut is None:
                yield pd.DataFrame({"id_left": batch["id_a"], "id_right": batch["id_b"], "score": score})
                continue
            keep = score >= cut
            yield batch[keep].assign(score=score[keep])

    return run


def find_duplicates_spark(
    table: SparkTable,
    *,
    fields: FieldsArg,
    id_column: str | None = None,
    blocking: BlockingArg = None,
    threshold: float | None = None,
    swap_names: tuple[str, str] | str | None = "auto",
    phone_region: str = "US",
    max_block_size: int = DEFAULT_MAX_BLOCK_SIZE,
    model: LinkageModel | None = None,
    seed: int = 0,
) -> SparkDuplicateResult:
    """:func:`jobs.leads.duplicates.detect.find_duplicates` on Spark (see the module docstring).

    Args:
        table: the records (canonical columns and their mirror types).
        fields, blocking, threshold, swap_names, phone_region, max_block_size, model, seed: as
            :func:`~jobs.leads.duplicates.detect.find_duplicates`.
        id_column: the record id column; the table's own by default.

    Raises:
        ConfigError: an unknown kind or column, a bad threshold or blocking key, a model fitted on
            other fields.
        JobError: missing or repeated ids.
        ConvergenceError: the model could not be fitted to these records.
    """
    from pyspark.sql import functions as F

    id_column = id_column or table.id_column
    frame = table.frame
    if id_column not in frame.columns:
        near = closest(id_column, list(frame.columns))
        raise ConfigError(
            f"id column {id_column!r} is not in the records",
            key="id_column",
            hint=f"did you mean {near[0]!r}?" if near else None,
        )
    specs = field_specs(fields, list(frame.columns), "the records")
    cut = check_threshold(threshold)
    swap = swap_pair(swap_names, specs)
    passes = blocking_passes(blocking, specs, swap)
    refinements = refinement_keys({c: s.kind for c, s in specs.items()})
    parts = list(dict.fromkeys([*[k for p in passes for k in p.parts], *refinements]))
    plan = _Plan(list(specs), specs, swap, passes, parts, refinements)
    if model is not None:
        try:
            check_compatible(model, {c: s.kind for c, s in specs.items()})
        except ValueError as exc:
            raise ConfigError(str(exc), key="model") from None
    for column, spec in specs.items():
        # A bad phone region (or other setting) is a ConfigError here, not a failed Spark task.
        prepare(pd.Series([], dtype=object, name=column), spec.kind, phone_region)
    spark = frame.sparkSession
    raw = _indexed(frame.select(F.col(id_column).alias("id"), *plan.columns), "id")
    dtypes = {c: table.dtypes.get(c, "text") for c in plan.columns}
    schema = ", ".join(
        ["idx long", "id string", *[f"v{i} string" for i in range(len(plan.columns))]]
        + [f"k{i} string" for i in range(len(parts))]
        + ["sig string"]
    )
    records = raw.mapInPandas(_normaliser(plan, dtypes, phone_region), schema).localCheckpoint(eager=True)
    n = _counted(records)
    window = max(2, int(max_block_size))
    pairs, report = _candidate_pairs(records, plan, n, window)

    if model is not None:
        tf_flags = [f.tf_adjust for f in model.fields]
    else:
        tf_flags = [
            KINDS[s.kind].tf_adjust if s.tf_adjust is None else bool(s.tf_adjust) for s in specs.values()
        ]
    shared, stats = _term_shares(records, plan, tf_flags)
    compared = _compare(pairs, shared, plan, tf_flags, stats).localCheckpoint(eager=True)
    n_fields = len(plan.columns)

    if model is None:
        level_columns = [f"l{i}" for i in range(n_fields)]
        patterns = compared.groupBy(*level_columns).count().toPandas()
        pattern_levels = _arrays(patterns, "l", n_fields, np.int8)

        def compare_random(first: np.ndarray, second: np.ndarray) -> np.ndarray:
            # Positions 0..n-1 (pandas' random pairs) to idx; only on this path (too few pairs
            # to fit: in practice a small table) do the record positions come to the driver.
            idx = np.sort(records.select("idx").toPandas()["idx"].to_numpy(np.int64))
            chosen = spark.createDataFrame(
                pd.DataFrame({"a": idx[first], "b": idx[second]}), "a long, b long"
            )
            done = _compare(chosen, shared, plan, tf_flags, stats).select(*level_columns).toPandas()
            return _arrays(done, "l", n_fields, np.int8)

        model = fit_model(
            specs,
            pattern_levels,
            n,
            None,
            seed,
            compare_random,
            counts=patterns["count"].to_numpy(np.float64),
        )
    else:
        model = model.with_source("given")

    kept_schema = f"{_compared_schema(n_fields)}, score double"
    kept = compared.mapInPandas(_scorer(model, cut, n_fields), kept_schema).toPandas()
    kept = kept.sort_values(
        ["score", "a", "b"], ascending=[False, True, True], kind="stable", ignore_index=True
    )
    levels = _arrays(kept, "l", n_fields, np.int8)
    tf = _arrays(kept, "t", n_fields, np.float32)
    evidence = evidence_rows(
        plan.columns,
        [f.levels for f in model.fields],
        levels,
        _arrays(kept, "s", n_fields, np.float32),
        model.explain(levels, tf),
        kept["swapped"].to_numpy(dtype=bool),
        swap,
    )
    found = pd.DataFrame(
        {
            "id_left": kept["id_a"].to_numpy(dtype=object),
            "id_right": kept["id_b"].to_numpy(dtype=object),
            "score": kept["score"].to_numpy(dtype=np.float64),
            "evidence": pd.Series(evidence, dtype=object),
        },
        columns=PAIR_COLUMNS,
    )
    candidates = compared.mapInPandas(
        _scorer(model, None, n_fields), "id_left string, id_right string, score double"
    )
    return SparkDuplicateResult(found, report, model, cut, candidates)
