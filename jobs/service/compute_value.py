"""RFM and customer lifetime value as pipeline jobs: the orders in, per customer table the results
named as ``outputs.toml`` does, with the sentence the run report shows.

The Spark engine (``jobs.engines.spark_value``) gives the same results and reuses the wording here.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from jobs.customers.clv import TIME_UNITS, unit_words
from jobs.customers.config import load_customer_value_config
from jobs.customers.value import CustomerValueResult, compute_customer_value
from jobs.service.compute import JobOutcome

__all__ = ["customer_value_jobs", "horizon_words", "value_reason"]


def value_reason(result: CustomerValueResult, as_of: pd.Timestamp) -> pd.Series:
    """One line per customer: orders, days since the last one, and (when predicted) P(alive)."""
    hist = result.historical
    days = (as_of.normalize() - pd.to_datetime(hist["last_purchase"], utc=True).dt.normalize()).dt.days
    orders = hist["purchases"].astype(int).astype(str)
    noun = np.where(hist["purchases"].to_numpy() == 1, " order", " orders")
    text = orders + noun + ", the last " + days.astype(int).astype(str) + " days ago"
    if result.predicted is not None:
        alive = (result.predicted["p_alive"].reindex(hist.index) * 100).round().astype("Int64")
        text = text + ": " + alive.astype(str) + "% likely still active"
    return text.astype(object)


def customer_value_jobs(
    orders: pd.DataFrame, jobs: set[str], *, config_path: Path, as_of: datetime
) -> list[JobOutcome]:
    """Run RFM and/or CLV on the canonical orders and split the results by customer table.

    The customer's table comes from the orders' ``customer_type`` (``account`` / ``contact``).
    When the predictive models cannot be fitted (too little history, no convergence), the CLV
    job still writes the historical value and leaves the predicted fields out, saying why.
    """
    wanted = [j for j in ("rfm", "clv") if j in jobs]
    outcomes = {j: JobOutcome(j) for j in wanted}
    if orders.empty:
        for outcome in outcomes.values():
            outcome.status, outcome.message = "skipped", "no orders in the mirror"
        return list(outcomes.values())
    config = load_customer_value_config(config_path)
    day = pd.Timestamp(as_of).tz_convert("UTC").normalize()
    result = compute_customer_value(orders, config, as_of=day)
    kinds = (
        orders[["customer_id", "customer_type"]]
        .dropna()
        .assign(customer_id=lambda f: f["customer_id"].astype(str).str.lower())
        .drop_duplicates("customer_id")
        .set_index("customer_id")["customer_type"]
        .astype(str)
        .str.lower()
    )

    def split(frame: pd.DataFrame, outcome: JobOutcome) -> None:
        frame = frame.set_axis(frame.index.astype(str).str.lower())
        of = kinds.reindex(frame.index)
        for table in ("account", "contact"):
            part = frame[of.eq(table).fillna(False).to_numpy()]
            if not part.empty:
                outcome.results[table] = part

    if "rfm" in outcomes:
        rfm = result.rfm
        frame = pd.DataFrame(
            {
                "rfm_recency": rfm["r_score"].astype(int),
                "rfm_frequency": rfm["f_score"].astype(int),
                "rfm_monetary": rfm["m_score"].astype(int),
                "rfm_cell": rfm["rfm_cell"].astype(str).astype(object),
                "rfm_segment": rfm["segment"].astype(object),
            },
            index=rfm.index,
        )
        split(frame, outcomes["rfm"])
        segments = rfm["segment"].value_counts()
        outcomes["rfm"].details = {
            "customers": len(rfm),
            "segments": {str(k): int(v) for k, v in segments.items()},
        }
        outcomes["rfm"].message = f"{len(rfm)} customers in {len(segments)} segments"
    if "clv" in outcomes:
        outcome = outcomes["clv"]
        hist = result.historical
        frame = pd.DataFrame({"clv_historical": hist["historical_clv"].astype(float)}, index=hist.index)
        frame["value_reason"] = value_reason(result, day)
        if result.predicted is not None:
            predicted = result.predicted.reindex(hist.index)
            frame["clv_predicted"] = predicted["clv"].astype(float)
            frame["p_alive"] = predicted["p_alive"].astype(float)
            frame["churn_risk"] = predicted["churn_risk"].astype("boolean")
            frame["high_value"] = predicted["high_value"].astype("boolean")
            over = horizon_words(
                result.predicted.attrs.get("horizon"), result.predicted.attrs.get("time_unit")
            )
            outcome.message = f"{len(hist)} customers valued; spend predicted{over}"
            outcome.details = {
                "customers": len(hist),
                "high_value": int(predicted["high_value"].fillna(False).sum()),
                "churn_risk": int(predicted["churn_risk"].fillna(False).sum()),
            }
        else:
            outcome.status = "partial"
            outcome.message = (
                f"historical value only for {len(hist)} customers; predicted value, still-active %, "
                f"churn risk and high value not written: {result.predictive_problem}"
            )
            outcome.details = {"customers": len(hist), "predictive_problem": result.predictive_problem}
        split(frame, outcome)
    return list(outcomes.values())


def horizon_words(horizon: float | None, time_unit: str | None) -> str:
    """' over the next 52.18 weeks (12 months)': the model's unit, and months for the reader."""
    if not horizon or time_unit not in TIME_UNITS:
        return ""
    months = float(horizon) * TIME_UNITS[time_unit] / TIME_UNITS["M"]
    in_unit = unit_words(round(float(horizon), 2), time_unit)
    in_months = "" if time_unit == "M" else f" ({months:.3g} months)"
    return f" over the next {in_unit}{in_months}"
