"""One call for the whole customer-value job: order rules, RFM, historical and predicted CLV, flags.

``compute_customer_value(orders, config, as_of=...)`` is what the pipeline runs: it applies
``customer_value.toml`` to the canonical order frame and returns every result with what was left
out and why. The predictive part is optional by nature: with too little history, or a fit that did
not converge, ``predicted`` is None and ``predictive_problem`` says why and what to do, while RFM
and the historical value are still there to write back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import pandas as pd

from jobs.customers.clv import (
    BgNbdFit,
    GammaGammaFit,
    fit_bgnbd,
    fit_gamma_gamma,
    flag_customers,
    historical_value,
    predict,
    summarize,
)
from jobs.customers.config import CustomerValueConfig
from jobs.customers.orders import PreparedOrders, prepare_orders
from jobs.customers.rfm import score_rfm
from jobs.errors import JobError

__all__ = ["CustomerValueResult", "compute_customer_value"]


@dataclass(frozen=True)
class CustomerValueResult:
    """Everything the customer-value job produced for one run.

    Attributes:
        prepared: the purchases and the rows left out by reason.
        rfm: ``score_rfm`` output (one row per customer who bought).
        historical: ``historical_value`` output (same customers).
        summary: the BG/NBD summary (frequency, recency, T, monetary_value; ``attrs`` time unit).
        bgnbd, gamma_gamma: the fits, when they could be made (converged or not: see ``converged``).
        predicted: ``predict`` output joined with ``flag_customers`` output, or None.
        predictive_problem: why ``predicted`` is None (too little history, no convergence), else None.
    """

    prepared: PreparedOrders
    rfm: pd.DataFrame
    historical: pd.DataFrame
    summary: pd.DataFrame
    bgnbd: BgNbdFit | None
    gamma_gamma: GammaGammaFit | None
    predicted: pd.DataFrame | None
    predictive_problem: str | None


def compute_customer_value(
    orders: pd.DataFrame, config: CustomerValueConfig, *, as_of: date | datetime | str | pd.Timestamp
) -> CustomerValueResult:
    """Run the order rules, RFM, historical value, and (when the data allow) predicted CLV and flags.

    Args:
        orders: the canonical order frame (column names as configured in ``[orders]``).
        config: from ``load_customer_value_config``.
        as_of: the day the results describe (usually today); later orders are ignored.

    Raises:
        OrderDataError: the order frame is unusable (missing columns, non-numeric amounts).
    """
    rules = config.orders
    columns = {"customer_col": rules.customer_col, "date_col": rules.date_col, "amount_col": rules.amount_col}
    prepared = prepare_orders(orders, rules)
    purchases = prepared.purchases
    rfm = score_rfm(purchases, as_of=as_of, bins=config.rfm.bins, segments=config.rfm.segments, **columns)
    clv = config.clv
    historical = historical_value(
        purchases,
        as_of=as_of,
        time_unit=clv.time_unit,
        lifespan=config.historical.lifespan,
        margin=clv.margin,
        **columns,
    )
    summary = summarize(purchases, calibration_end=as_of, time_unit=clv.time_unit, **columns)
    bgnbd: BgNbdFit | None = None
    spend: GammaGammaFit | None = None
    try:
        bgnbd = fit_bgnbd(summary)
        spend = fit_gamma_gamma(summary)
        predicted = predict(
            summary, bgnbd, spend, horizon=clv.horizon, discount_rate=clv.discount_rate, margin=clv.margin
        )
    except JobError as exc:  # InsufficientDataError, ConvergenceError, q <= 1: historical only
        return CustomerValueResult(prepared, rfm, historical, summary, bgnbd, spend, None, str(exc))
    flags = config.flags
    flagged = flag_customers(
        summary,
        predicted,
        high_value=flags.high_value,  # type: ignore[arg-type]
        top_percent=flags.top_percent,
        pareto_share=flags.pareto_share,
        churn_below=flags.churn_below,
    )
    joined = predicted.join(flagged)
    joined.attrs.update(predicted.attrs)  # time unit and horizon, which join does not carry over
    return CustomerValueResult(prepared, rfm, historical, summary, bgnbd, spend, joined, None)
