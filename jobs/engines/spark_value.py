"""RFM and CLV on Spark, with the pandas engine's answers.

Where the work is distributed:

- **Per-customer figures** (order rules, purchase days, recency / frequency / monetary, the
  BG/NBD summary, historical value): orders are hashed to partitions by customer, and each
  partition runs the pandas functions of :mod:`jobs.customers` on its customers. Every one of
  these figures depends on one customer's orders only, so the values are the pandas engine's.
- **Quantile ranks** (RFM scores): a Spark aggregation per distinct value and a running count,
  ``1 + floor(bins * (values smaller) / n)`` — the min-rank tie rule of
  :func:`jobs.customers.rfm._quantile_scores`: equal values get equal scores.
- **Model fits** (BG/NBD, Gamma-Gamma): on the driver, from the compressed sufficient statistics
  (distinct (frequency, recency, T) rows with their counts; distinct (frequency, monetary)
  rows for Gamma-Gamma), with the weighted fits of :mod:`jobs.customers.clv_models`.
- **Predictions**: per partition with the fitted parameters shipped to the executors;
  high-value flags from a Spark ranking (value descending, id ascending), as the pandas ranking.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from jobs.customers.clv import TIME_UNITS, historical_value, parse_duration, predict, summarize
from jobs.customers.clv_models import fit_bgnbd_arrays, fit_gamma_gamma_arrays
from jobs.customers.config import CustomerValueConfig, load_customer_value_config
from jobs.customers.orders import prepare_orders
from jobs.customers.rfm import score_rfm
from jobs.engines.frames import SparkTable, restore
from jobs.errors import JobError
from jobs.service import compute_value
from jobs.service.compute import JobOutcome

__all__ = ["SparkValueResults", "customer_value_jobs"]

_PER_CUSTOMER_SCHEMA = (
    "customer_id string, customer_type string, recency_days bigint, rfm_frequency bigint, "
    "monetary double, purchases bigint, last_purchase timestamp, average_order_value double, "
    "purchase_frequency double, span double, frequency double, recency double, T double, "
    "monetary_value double"
)


@dataclass
class SparkValueResults:
    """The outcomes (without per-record results) and, per target table, the Spark results."""

    outcomes: list[JobOutcome]
    results: dict[str, dict[str, Any]]  # job -> table -> Spark DataFrame (index column "_id")


def _per_customer(config: CustomerValueConfig, day: pd.Timestamp, dtypes: dict[str, str]) -> Any:
    """The mapInPandas function: one partition's orders -> one row per customer who bought."""
    rules = config.orders
    cols = {"customer_col": rules.customer_col, "date_col": rules.date_col, "amount_col": rules.amount_col}
    segments = config.rfm.segments
    unit = config.clv.time_unit

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        parts = [restore(b, dtypes) for b in batches]
        if not parts:
            return
        orders = pd.concat(parts, ignore_index=True)
        if orders.empty:
            return
        purchases = prepare_orders(orders, rules).purchases
        if purchases.empty:
            return
        rfm = score_rfm(purchases, as_of=day, bins=config.rfm.bins, segments=segments, **cols)
        hist = historical_value(purchases, as_of=day, time_unit=unit, lifespan=1.0, margin=1.0, **cols)
        summary = summarize(purchases, calibration_end=day, time_unit=unit, **cols)
        span = (hist["last_purchase"] - hist["first_purchase"]) / np.timedelta64(1, "D") / TIME_UNITS[unit]
        kinds = (
            orders[[rules.customer_col, "customer_type"]]
            .dropna()
            .assign(customer_type=lambda f: f["customer_type"].astype(str).str.lower())
            .drop_duplicates(rules.customer_col)
            .set_index(rules.customer_col)["customer_type"]
            if "customer_type" in orders.columns
            else pd.Series(dtype=object)
        )
        ids = rfm.index
        yield pd.DataFrame(
            {
                "customer_id": ids.astype(str),
                "customer_type": kinds.reindex(ids).to_numpy(dtype=object),
                "recency_days": rfm["recency_days"].to_numpy(),
                "rfm_frequency": rfm["frequency"].to_numpy(),
                "monetary": rfm["monetary"].to_numpy(),
                "purchases": hist["purchases"].reindex(ids).to_numpy(),
                "last_purchase": pd.to_datetime(hist["last_purchase"].reindex(ids)).to_numpy(),
                "average_order_value": hist["average_order_value"].reindex(ids).to_numpy(),
                "purchase_frequency": hist["purchase_frequency"].reindex(ids).to_numpy(),
                "span": span.reindex(ids).to_numpy(dtype=float),
                "frequency": summary["frequency"].reindex(ids).to_numpy(dtype=float),
                "recency": summary["recency"].reindex(ids).to_numpy(dtype=float),
                "T": summary["T"].reindex(ids).to_numpy(dtype=float),
                "monetary_value": summary["monetary_value"].reindex(ids).to_numpy(dtype=float),
            }
        )

    return run


def _quantile_score(frame: Any, column: str, name: str, bins: int, n: int) -> Any:
    """Add ``name``: 1..bins from min-ranks of ``column`` (equal values, equal scores)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    counts = frame.groupBy(column).count()
    before = Window.orderBy(column).rowsBetween(Window.unboundedPreceding, -1)
    ranked = counts.withColumn("_less", F.coalesce(F.sum("count").over(before), F.lit(0)))
    ranked = ranked.select(
        column,
        (1 + F.floor(F.lit(float(bins)) * F.col("_less").cast("double") / F.lit(float(n)))).alias(name),
    )
    return frame.join(F.broadcast(ranked), on=column, how="left")


def _rfm(per: Any, config: CustomerValueConfig, n: int, spark: Any) -> Any:
    from pyspark.sql import functions as F

    bins = config.rfm.bins
    scored = per.withColumn("_neg_recency", -F.col("recency_days"))
    scored = _quantile_score(scored, "_neg_recency", "rfm_recency", bins, n)
    scored = _quantile_score(scored, "rfm_frequency", "_f_score", bins, n)
    scored = _quantile_score(scored, "monetary", "rfm_monetary", bins, n)
    lookup = score_rfm_segments(config)
    cells = spark.createDataFrame(
        pd.DataFrame({"rfm_cell": list(lookup), "rfm_segment": list(lookup.values())})
    )
    cell = F.format_string("%d%d%d", "rfm_recency", "_f_score", "rfm_monetary")
    scored = scored.withColumn("rfm_cell", cell).join(F.broadcast(cells), on="rfm_cell", how="left")
    return scored.select(
        F.col("customer_id").alias("_id"),
        "customer_type",
        F.col("rfm_recency").cast("bigint").alias("rfm_recency"),
        F.col("_f_score").cast("bigint").alias("rfm_frequency"),
        F.col("rfm_monetary").cast("bigint").alias("rfm_monetary"),
        "rfm_cell",
        "rfm_segment",
    )


def score_rfm_segments(config: CustomerValueConfig) -> dict[str, str]:
    """Every cell ("545") -> its segment, from the configured segment map."""
    from jobs.customers.rfm import _resolve_segments

    return _resolve_segments(config.rfm.segments, config.rfm.bins).cell_lookup()


def _fits(per: Any, time_unit: str) -> tuple[Any, Any]:
    """BG/NBD and Gamma-Gamma fitted on the driver from distinct rows with their counts."""
    from pyspark.sql import functions as F

    rows = per.groupBy("frequency", "recency", "T").count().toPandas()
    bgnbd = fit_bgnbd_arrays(
        rows["frequency"].to_numpy(float),
        rows["recency"].to_numpy(float),
        rows["T"].to_numpy(float),
        time_unit=time_unit,
        weights=rows["count"].to_numpy(float),
    )
    spend = (
        per.where((F.col("frequency") > 0) & (F.col("monetary_value") > 0))
        .groupBy("frequency", "monetary_value")
        .count()
        .toPandas()
    )
    gamma = fit_gamma_gamma_arrays(
        spend["frequency"].to_numpy(float),
        spend["monetary_value"].to_numpy(float),
        weights=spend["count"].to_numpy(float),
    )
    return bgnbd, gamma


def _predict(per: Any, bgnbd: Any, gamma: Any, config: CustomerValueConfig, day: pd.Timestamp) -> Any:
    """Predictions per partition with the fits shipped to the executors; checked on the driver first."""
    clv = config.clv
    unit = clv.time_unit
    options = {"horizon": clv.horizon, "discount_rate": clv.discount_rate, "margin": clv.margin}
    probe = pd.DataFrame({"frequency": [1.0], "recency": [1.0], "T": [2.0], "monetary_value": [1.0]})
    probe.attrs["time_unit"] = unit
    predict(probe, bgnbd, gamma, **options)  # raises as the pandas engine would (unconverged, q <= 1)

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            if batch.empty:
                continue
            summary = batch.set_index("customer_id")[["frequency", "recency", "T", "monetary_value"]]
            summary.attrs["time_unit"] = unit
            try:
                out = predict(summary, bgnbd, gamma, **options)
                clv_values, alive = out["clv"].to_numpy(), out["p_alive"].to_numpy()
            except JobError:  # a non-finite prediction: marked, and reported by the driver
                clv_values = np.full(len(summary), np.nan)
                alive = np.full(len(summary), np.nan)
            yield pd.DataFrame(
                {"customer_id": summary.index.astype(str), "clv_predicted": clv_values, "p_alive": alive}
            )

    return per.select("customer_id", "frequency", "recency", "T", "monetary_value").mapInPandas(
        run, "customer_id string, clv_predicted double, p_alive double"
    )


def _high_value(predicted: Any, config: CustomerValueConfig, n: int) -> Any:
    """``high_value`` by the configured rule over a ranking by value (descending), id (ascending)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    flags = config.flags
    order = Window.orderBy(F.col("clv_predicted").desc(), F.col("customer_id").asc())
    ranked = predicted.withColumn("_rank", F.row_number().over(order))
    positive = F.col("clv_predicted") > 0
    if flags.high_value == "top_percent":
        k = math.ceil(n * flags.top_percent / 100)
        return ranked.withColumn("high_value", (F.col("_rank") <= k) & positive)
    total = predicted.where(positive).agg(F.sum("clv_predicted")).first()[0] or 0.0
    if total <= 0:
        return ranked.withColumn("high_value", F.lit(False))
    running = Window.orderBy("_rank").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    share = F.sum(F.when(positive, F.col("clv_predicted")).otherwise(0.0)).over(running) / F.lit(total)
    ranked = ranked.withColumn("_share", share)
    reached = ranked.where(F.col("_share") >= flags.pareto_share - 1e-12).agg(F.min("_rank")).first()[0]
    k = int(reached) if reached is not None else n
    return ranked.withColumn("high_value", (F.col("_rank") <= k) & positive)


def _reasons(frame: Any, day: pd.Timestamp, predicted: bool) -> Any:
    """``value_reason`` per partition with the pandas engine's own sentence builder."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            if batch.empty:
                continue
            index = pd.Index(batch["_id"].astype(str))
            hist = pd.DataFrame(
                {
                    "purchases": batch["purchases"].to_numpy(),
                    "last_purchase": pd.to_datetime(batch["last_purchase"], utc=True).to_numpy(),
                },
                index=index,
            )
            pred = pd.DataFrame({"p_alive": batch["p_alive"].to_numpy()}, index=index) if predicted else None
            text = compute_value.value_reason(SimpleNamespace(historical=hist, predicted=pred), day)  # type: ignore[arg-type]
            yield batch.assign(value_reason=text.to_numpy(dtype=object))

    from pyspark.sql.types import StringType, StructField, StructType

    # A new schema: StructType.add would change the frame's own (cached) schema in place.
    schema = StructType([*frame.schema.fields, StructField("value_reason", StringType())])
    return frame.mapInPandas(run, schema)


def customer_value_jobs(
    orders: SparkTable, jobs: set[str], *, config_path: Path, as_of: datetime, spark: Any
) -> SparkValueResults:
    """RFM and/or CLV on Spark: the outcomes, and per job and table the results on Spark.

    Same inputs, configuration and answers as :func:`jobs.service.compute_value.customer_value_jobs`.
    """
    from pyspark.sql import functions as F

    wanted = [j for j in ("rfm", "clv") if j in jobs]
    outcomes = {j: JobOutcome(j) for j in wanted}
    results: dict[str, dict[str, Any]] = {j: {} for j in wanted}
    if orders.frame.isEmpty():
        for outcome in outcomes.values():
            outcome.status, outcome.message = "skipped", "no orders in the mirror"
        return SparkValueResults(list(outcomes.values()), results)
    config = load_customer_value_config(config_path)
    day = pd.Timestamp(as_of).tz_convert("UTC").normalize()
    rules = config.orders
    needed = [c for c in (rules.customer_col, rules.date_col, rules.amount_col, rules.status_col) if c]
    if "customer_type" in orders.frame.columns:
        needed.append("customer_type")
    source = orders.frame.select(*[c for c in dict.fromkeys(needed) if c in orders.frame.columns])
    dtypes = {c: orders.dtypes.get(c, "text") for c in source.columns}
    # The order rules' checks (missing columns, amounts that are not numbers) on a sample, here,
    # so a bad mapping fails with dvsync's message rather than an executor's traceback.
    prepare_orders(restore(orders.frame.limit(1000).toPandas(), orders.dtypes), rules)
    per = (
        source.repartition(F.col(rules.customer_col))
        .mapInPandas(_per_customer(config, day, dtypes), _PER_CUSTOMER_SCHEMA)
        .cache()
    )
    n = per.count()

    def split(frame: Any, job: str) -> None:
        for table in ("account", "contact"):
            part = frame.where(F.col("customer_type") == table).drop("customer_type")
            results[job][table] = part

    if "rfm" in outcomes:
        rfm = _rfm(per, config, n, spark).cache()
        split(rfm, "rfm")
        segments = {str(r[0]): int(r[1]) for r in rfm.groupBy("rfm_segment").count().collect()}
        segments = dict(sorted(segments.items(), key=lambda kv: (-kv[1], kv[0])))
        outcomes["rfm"].details = {"customers": n, "segments": segments}
        outcomes["rfm"].message = f"{n} customers in {len(segments)} segments"
    if "clv" in outcomes:
        _clv(per, config, day, n, outcomes["clv"], results["clv"], split)
    return SparkValueResults(list(outcomes.values()), results)


def _clv(
    per: Any,
    config: CustomerValueConfig,
    day: pd.Timestamp,
    n: int,
    outcome: JobOutcome,
    results: dict[str, Any],
    split: Any,
) -> None:
    from pyspark.sql import functions as F

    clv = config.clv
    lifespan = config.historical.lifespan
    if isinstance(lifespan, str) and lifespan == "auto":
        mean_span = per.where(F.col("purchases") > 1).agg(F.avg("span")).first()[0]
        life = max(float(mean_span), 1.0) if mean_span is not None else 1.0
    else:
        life = parse_duration(lifespan, clv.time_unit)
    historical = (
        (F.col("average_order_value") * F.col("purchase_frequency")) * F.lit(life) * F.lit(clv.margin)
    )
    base = per.select(
        F.col("customer_id").alias("_id"),
        "customer_type",
        historical.alias("clv_historical"),
        "purchases",
        "last_purchase",
    )
    problem: str | None = None
    try:
        bgnbd, gamma = _fits(per, clv.time_unit)
        predicted = _predict(per, bgnbd, gamma, config, day).cache()
        bad = predicted.where(F.isnan("clv_predicted") | F.isnan("p_alive")).count()
        if bad:
            raise JobError(
                f"the prediction is not finite for {bad} customer(s); the fitted parameters are "
                "probably extreme: check the fit's message and the summary"
            )
    except JobError as exc:
        problem = str(exc)
    if problem is None:
        flagged = _high_value(predicted, config, n).select(
            F.col("customer_id").alias("_id"),
            "clv_predicted",
            "p_alive",
            (F.col("p_alive") < F.lit(config.flags.churn_below)).alias("churn_risk"),
            "high_value",
        )
        frame = _reasons(base.join(flagged, on="_id", how="left"), day, predicted=True)
        counts = frame.agg(
            F.sum(F.col("high_value").cast("int")).alias("high"),
            F.sum(F.col("churn_risk").cast("int")).alias("churn"),
        ).first()
        horizon = parse_duration(clv.horizon, clv.time_unit)
        outcome.message = (
            f"{n} customers valued; spend predicted{compute_value.horizon_words(horizon, clv.time_unit)}"
        )
        outcome.details = {
            "customers": n,
            "high_value": int(counts["high"] or 0),
            "churn_risk": int(counts["churn"] or 0),
        }
    else:
        frame = _reasons(base.withColumn("p_alive", F.lit(None).cast("double")), day, predicted=False).drop(
            "p_alive"
        )
        outcome.status = "partial"
        outcome.message = (
            f"historical value only for {n} customers; predicted value, still-active %, "
            f"churn risk and high value not written: {problem}"
        )
        outcome.details = {"customers": n, "predictive_problem": problem}
    split(frame.drop("purchases", "last_purchase"), "clv")
