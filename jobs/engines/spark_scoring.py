"""Lead scoring on Spark, with the pandas engine's scores.

- **Which engine** (model or rules) is decided on the driver from the outcome counts, a Spark
  aggregation.
- **Training** (when the active model is missing or older than a week, as on the pandas engine):
  the features are built on the executors: leads and activities are hashed by lead id into
  buckets and cogrouped, and each bucket runs the pandas feature build
  (:func:`jobs.leads.scoring.model.training_features`: the closed leads' feature columns plus their
  engagement counts from their own activities). Only those rows (closed leads × about fifteen
  columns; no activity, no open lead, no unused column) travel to the driver, which sorts them
  into the pandas engine's order and fits with :func:`~jobs.leads.scoring.model.train_on_features`:
  the same frame, so the same coefficients. Why not sufficient statistics: docs/scale.md. The
  model is then saved and promoted exactly as the pandas engine does, so both engines score with
  the same model file.
- **Scoring**: open leads and their activities are hashed by lead id into buckets and cogrouped;
  each bucket runs :func:`jobs.leads.scoring.scorer.score` with the model and the rules shipped to
  the executors. A lead's score depends on its own fields and activities only, so each score is the
  pandas engine's.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jobs.engines.frames import SparkTable, restore, spark_type
from jobs.leads import scoring
from jobs.leads.scoring.common import ACTIVITY_COLUMNS
from jobs.leads.scoring.model import (
    DEFAULT_FEATURES,
    closed_leads,
    engagement_columns,
    train_on_features,
)
from jobs.leads.scoring.model import training_features as model_features
from jobs.service import compute
from jobs.service.compute import JobOutcome

__all__ = ["run_scoring", "training_features"]

_RESULT_SCHEMA = "_id string, score bigint, grade string, factors string, trend string, sales_ready boolean"


def _bucketed(frame: Any, lead_id: str, buckets: int) -> Any:
    """``frame`` with a ``_bucket`` column from its lead id, the same for a lead and its activities."""
    from pyspark.sql import functions as F

    return frame.withColumn("_bucket", F.pmod(F.hash(F.lower(lead_id)), F.lit(buckets)))


def _model(
    leads: SparkTable, activities: SparkTable | None, model_dir: Path, now: datetime, spark: Any
) -> tuple[Any, str]:
    """The model to score with (trained from a distributed feature build when missing or stale)."""
    counts = leads.frame.groupBy("status").count().toPandas()
    # The outcome counts are all the engine choice reads: one row per lead of its status only.
    statuses = pd.DataFrame({"status": np.repeat(counts["status"].to_numpy(dtype=object), counts["count"])})

    def train() -> tuple[Any, dict[str, Any]]:
        frame = training_features(leads, activities, spark)
        return train_on_features(frame, engagement=activities is not None, now=now, **compute.MODEL_TRAINING)

    return compute._lead_model(statuses, None, model_dir, now, train=train)


def training_features(leads: SparkTable, activities: SparkTable | None, spark: Any) -> pd.DataFrame:
    """The closed leads' training rows, built on the executors, in the pandas engine's order.

    The pandas engine trains on the mirror's leads in lead id order; the rows are sorted the same
    way on the driver, since cross-validation folds and the time holdout's ties follow row order.
    """
    from pyspark.sql import functions as F

    label = "status"
    reference = "modified_on"  # train_model's reference_column: a closed lead's closing time
    lead_id = leads.id_column
    features = compute.MODEL_TRAINING.get("features") or DEFAULT_FEATURES  # train_model's choice
    wanted = [lead_id, label, compute.MODEL_TRAINING["time_column"], reference, *features]
    columns = [c for c in dict.fromkeys(wanted) if leads.has(c)]
    lead_types = {c: leads.dtypes.get(c, "text") for c in columns}
    buckets = max(1, int(spark.conf.get("spark.sql.shuffle.partitions")))
    keyed = _bucketed(leads.frame.select(*columns), lead_id, buckets)
    use_activities = activities is not None
    counts = engagement_columns() if use_activities else []
    if activities is not None:
        act_columns = [c for c in (*ACTIVITY_COLUMNS, "direction", "status") if activities.has(c)]
        acts = activities.frame.select(*act_columns).where(F.col("lead_id").isNotNull())
        acts = _bucketed(acts, "lead_id", buckets)
        act_types = {c: activities.dtypes.get(c, "text") for c in act_columns}
    else:  # an empty right side, so every bucket has the same shape
        acts = keyed.select("_bucket").where(F.lit(False))
        act_types = {}
    schema = ", ".join(
        [*(f"`{c}` {spark_type(lead_types[c])}" for c in columns), *(f"`{c}` bigint" for c in counts)]
    )

    def build(lead_part: pd.DataFrame, act_part: pd.DataFrame) -> pd.DataFrame:
        empty = pd.DataFrame({c: [] for c in [*columns, *counts]})
        if lead_part.empty:  # a bucket with activities of unknown leads only
            return empty
        # The label is read by the model's own rule (not re-stated in Spark SQL), so the same
        # leads count as closed on both engines.
        closed = closed_leads(restore(lead_part.drop(columns="_bucket"), lead_types), label)
        if closed.empty:
            return empty
        acts = restore(act_part.drop(columns="_bucket"), act_types) if use_activities else None
        return model_features(closed, acts, reference_column=reference)[[*columns, *counts]]

    rows = keyed.groupBy("_bucket").cogroup(acts.groupBy("_bucket")).applyInPandas(build, schema).toPandas()
    frame = restore(rows, lead_types)
    for column in counts:
        frame[column] = frame[column].astype("int64")
    return frame.sort_values(lead_id, kind="stable", ignore_index=True)


def run_scoring(
    leads: SparkTable,
    activities: SparkTable | None,
    *,
    rules_path: Path,
    model_dir: Path,
    now: datetime,
    spark: Any,
) -> tuple[JobOutcome, Any | None]:
    """Score the open leads on Spark; the outcome and the results (``_id`` + result columns).

    Same inputs, configuration and answers as :func:`jobs.service.compute.run_scoring`, the held
    scores and trends being the leads' ``out_score`` / ``out_trend`` columns.
    """
    from pyspark.sql import functions as F

    outcome = JobOutcome("scoring")
    if leads.frame.isEmpty():
        outcome.status, outcome.message = "skipped", "no leads in the mirror"
        return outcome, None
    rules = scoring.load_rules(rules_path, columns=leads.frame.columns)
    model, reason = _model(leads, activities, model_dir, now, spark)
    is_open = F.lower(F.col("status")) == "open"
    open_leads = leads.frame.where(is_open)
    if open_leads.isEmpty():
        outcome.status, outcome.message = "skipped", "no open leads to score"
        return outcome, None
    buckets = max(1, int(spark.conf.get("spark.sql.shuffle.partitions")))
    lead_id = leads.id_column
    keyed = _bucketed(open_leads, lead_id, buckets)
    as_of = compute.scoring_moment(now)  # the pandas engine's moment: the same scores
    lead_types = dict(leads.dtypes)
    act_types = dict(activities.dtypes) if activities is not None else {}
    use_activities = activities is not None

    def score_bucket(lead_part: pd.DataFrame, act_part: pd.DataFrame) -> pd.DataFrame:
        if lead_part.empty:  # a bucket with activities of closed or unknown leads only
            return pd.DataFrame({c.split()[0]: [] for c in _RESULT_SCHEMA.split(", ")})
        lead_part = restore(lead_part.drop(columns="_bucket"), lead_types)
        lead_part = lead_part.sort_values(lead_id, kind="stable").reset_index(drop=True)
        acts = restore(act_part.drop(columns="_bucket"), act_types) if use_activities else None
        scored = scoring.score(lead_part, rules=rules, as_of=as_of, model=model, activities=acts)
        ids = scored.index.astype(str).str.lower()
        held = pd.to_numeric(lead_part.get("out_score", pd.Series(dtype=float)), errors="coerce")
        held.index = lead_part[lead_id].astype(str).str.lower() if "out_score" in lead_part else held.index
        shown = lead_part.get("out_trend", pd.Series(dtype=object))
        shown.index = lead_part[lead_id].astype(str).str.lower() if "out_trend" in lead_part else shown.index
        # The trend rule of compute.run_scoring: a move inside the steady band keeps the shown trend.
        moved = scoring.trend(scored["score"].set_axis(ids), held.reindex(ids))
        shown = shown.reindex(ids)
        trend = moved.where(~(moved.eq("Steady") & shown.notna()), shown)
        return pd.DataFrame(
            {
                "_id": np.asarray(ids, dtype=object),
                "score": scored["score"].astype(int).to_numpy(),
                "grade": scored["grade"].astype(object).to_numpy(),
                "factors": ["\n".join(f) for f in scored["factors"]],
                "trend": trend.astype(object).to_numpy(),
                "sales_ready": scored["sales_ready"].astype(bool).to_numpy(),
            }
        )

    if use_activities:
        acts = activities.frame.where(F.col("lead_id").isNotNull())
        acts = _bucketed(acts, "lead_id", buckets)
    else:  # an empty right side, so every bucket has the same shape
        acts = keyed.select("_bucket").where(F.lit(False))
    results = (
        keyed.groupBy("_bucket")
        .cogroup(acts.groupBy("_bucket"))
        .applyInPandas(score_bucket, _RESULT_SCHEMA)
        .cache()
    )
    figures = results.agg(
        F.count("*").alias("n"), F.sum(F.col("sales_ready").cast("int")).alias("ready")
    ).first()
    scored_count = int(figures["n"])
    outcome.message = f"{scored_count} open leads scored; {reason}"
    outcome.details = {
        "engine": "model" if model is not None else "rules",
        "scored": scored_count,
        "sales_ready": int(figures["ready"] or 0),
        "grades": {
            str(row["grade"]): int(row["count"])
            for row in sorted(results.groupBy("grade").count().collect(), key=lambda r: str(r["grade"]))
        },
    }
    return outcome, results
