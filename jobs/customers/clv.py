"""Customer lifetime value: historical value, BG/NBD + Gamma-Gamma predictions, and sales flags.

The pipeline is::

    prepared = prepare_orders(orders, rules)            # jobs.customers.orders: what counts
    summary = summarize(prepared.purchases, calibration_end=today, time_unit="W")
    bgnbd, spend = fit_bgnbd(summary), fit_gamma_gamma(summary)
    value = predict(summary, bgnbd, spend, horizon="52W", discount_rate=0.0019, margin=0.3)
    flags = flag_customers(summary, value, churn_below=0.3)
    history = historical_value(prepared.purchases, as_of=today)   # always available

Units are explicit everywhere. A summary records its ``time_unit`` ("D", "W", "M" or "Y") in
``summary.attrs``; recency, T, fitted rates (``alpha``), the horizon and the discount rate are all
in that unit. A horizon in another unit ("12M", ``pd.Timedelta(days=90)``) is converted through
days (a month is 365.2425 / 12 = 30.436875 days, a year 365.2425 days); a calendar offset
without a fixed length (``pd.DateOffset(months=1)``) or a bare number whose unit cannot be known
is refused with a ``TimeUnitError``.

Edge cases, handled on purpose:

* One-time buyers (``frequency = 0``): BG/NBD gives them P(alive) = 1 (the model lets a customer
  drop out only right after a purchase) and a low purchase expectation; Gamma-Gamma gives them the
  population mean spend ``p v / (q - 1)``.
* Repeat buyers whose repeat purchases are all worth 0 (or netted to 0 by returns) are left out of
  the Gamma-Gamma fit (its density needs positive spend) and predicted with an observed mean of 0,
  which pulls their expected order value below the population mean in proportion to their repeat
  purchases.
* Every output is checked to be finite; a fit that did not converge is refused by ``predict`` with
  a ``ConvergenceError`` (so nothing from it is written back).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

import numpy as np
import pandas as pd

from jobs.customers.clv_models import (
    BgNbdFit,
    GammaGammaFit,
    bgnbd_conditional_expected_purchases,
    bgnbd_p_alive,
    fit_bgnbd_arrays,
    fit_gamma_gamma_arrays,
    gamma_gamma_conditional_spend,
    group_rows,
)
from jobs.customers.orders import DayGroups, OrderDataError, validate_purchases
from jobs.errors import JobError, JobInputError
from jobs.moments import to_day

__all__ = [
    "TIME_UNITS",
    "BgNbdFit",
    "GammaGammaFit",
    "Horizon",
    "TimeUnitError",
    "discount_rate_per_unit",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "flag_customers",
    "historical_value",
    "parse_duration",
    "predict",
    "summarize",
    "unit_words",
]

# Length of each supported time unit in days. Months and years are Gregorian averages, so that a
# conversion between units is one documented multiplication, never a calendar guess.
TIME_UNITS: dict[str, float] = {"D": 1.0, "W": 7.0, "M": 365.2425 / 12, "Y": 365.2425}
_UNIT_WORDS = {"D": "day", "W": "week", "M": "month", "Y": "year"}
_UNIT_ALIASES = {
    "D": "D", "d": "D", "day": "D", "days": "D",
    "W": "W", "w": "W", "week": "W", "weeks": "W",
    "M": "M", "month": "M", "months": "M",
    "Y": "Y", "y": "Y", "year": "Y", "years": "Y",
}  # fmt: skip
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*$")
# Cells of the (customers x periods) grid evaluated at once when discounting, to bound memory.
_DISCOUNT_CHUNK_CELLS = 2_000_000


class TimeUnitError(JobError):
    """A duration or time unit that cannot be read without guessing."""


Horizon = float | int | str | timedelta | pd.Timedelta | pd.DateOffset


def _check_unit(time_unit: str) -> str:
    if time_unit not in TIME_UNITS:
        raise TimeUnitError(
            f"time unit {time_unit!r} is not supported; use one of {list(TIME_UNITS)} "
            "(days, weeks, average months of 30.44 days, years)"
        )
    return time_unit


def unit_words(value: float, time_unit: str) -> str:
    """'1 week', '40 weeks'."""
    word = _UNIT_WORDS[time_unit]
    return f"{value:g} {word}" + ("" if value == 1 else "s")


def parse_duration(value: Horizon, time_unit: str | None) -> float:
    """Return ``value`` expressed in ``time_unit``.

    Accepted: a positive number (already in ``time_unit``); a string "52W", "12M", "90D", "1Y",
    "12 months", "2 years"; a ``timedelta`` / ``pd.Timedelta``; a fixed-length pandas offset
    (``pd.offsets.Day(90)``, ``pd.offsets.Week(4)``).

    Raises:
        TimeUnitError: anything else, including calendar offsets (``pd.DateOffset(months=1)``),
            lowercase "m" (minutes to pandas), a string without a unit, or any non-number when
            ``time_unit`` is None (a summary that does not record its unit).
    """
    if isinstance(value, bool):
        raise TimeUnitError(f"{value!r} is not a duration")
    if isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
        if not math.isfinite(number) or number <= 0:
            raise TimeUnitError(f"a duration must be a positive number, not {value!r}")
        return number
    if time_unit is None:
        raise TimeUnitError(
            f"cannot convert {value!r}: the summary does not say which time unit it is in; build it "
            "with summarize() or set summary.attrs['time_unit'], or give the horizon as a plain "
            "number in the summary's unit"
        )
    _check_unit(time_unit)
    days = _duration_days(value)
    if not math.isfinite(days) or days <= 0:
        raise TimeUnitError(f"a duration must be positive, not {value!r}")
    return days / TIME_UNITS[time_unit]


def _duration_days(value: object) -> float:
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise TimeUnitError(
                f'cannot read the duration {value!r}; write a number and a unit such as "52W", '
                '"12M", "90D", "1Y" or "12 months"'
            )
        number, unit = float(match.group(1)), match.group(2)
        if unit == "m":
            raise TimeUnitError(
                f'{value!r} is ambiguous: lowercase m means minutes to pandas; write "{match.group(1)}M" '
                f'or "{match.group(1)} months" for months'
            )
        key = _UNIT_ALIASES.get(unit) or _UNIT_ALIASES.get(unit.lower() if len(unit) > 1 else unit)
        if key is None:
            raise TimeUnitError(
                f"unknown unit {unit!r} in {value!r}; use D, W, M or Y (days, weeks, months, years)"
            )
        return number * TIME_UNITS[key]
    if isinstance(value, timedelta | pd.Timedelta):
        return pd.Timedelta(value).total_seconds() / 86400
    if isinstance(value, pd.offsets.Day):  # a calendar day in pandas >= 3, one day on naive dates
        return float(value.n)
    if isinstance(value, pd.offsets.Week) and value.weekday is None:
        return 7.0 * value.n
    if isinstance(value, pd.offsets.Tick):
        return pd.Timedelta(value).total_seconds() / 86400
    if isinstance(value, pd.offsets.BaseOffset):
        raise TimeUnitError(
            f'{value!r} is a calendar offset without a fixed length; give the horizon as "12M" '
            "(12 average months of 30.44 days) or as a number in the summary's time unit"
        )
    raise TimeUnitError(f"{value!r} is not a duration")


def discount_rate_per_unit(annual_rate: float, time_unit: str) -> float:
    """Convert an annual discount rate into the equivalent rate per ``time_unit`` (compounded).

    ``(1 + annual) ** (unit_days / 365.2425) - 1``: 10 % a year is 0.183 % a week.
    """
    _check_unit(time_unit)
    if not math.isfinite(annual_rate) or annual_rate < 0:
        raise JobInputError(f"an annual discount rate must be >= 0, not {annual_rate!r}")
    return (1 + annual_rate) ** (TIME_UNITS[time_unit] / TIME_UNITS["Y"]) - 1


# --------------------------------------------------------------------------------------------
# summary


def summarize(
    orders: pd.DataFrame,
    *,
    customer_col: str = "customer_id",
    date_col: str = "order_date",
    amount_col: str = "amount",
    calibration_end: date | datetime | str | pd.Timestamp,
    time_unit: str = "W",
) -> pd.DataFrame:
    """Build the per-customer (frequency, recency, T, monetary_value) summary of the papers.

    Purchases on the same day count as one (their amounts summed). Only purchases up to and
    including the ``calibration_end`` day are used; customers whose first purchase is later are
    not in the summary.

    Args:
        orders: purchases (``prepare_orders`` output or any frame with non-negative amounts).
        customer_col, date_col, amount_col: column names in ``orders``.
        calibration_end: the last day of the observation period (usually today).
        time_unit: "D", "W", "M" (30.436875 days) or "Y" (365.2425 days).

    Returns:
        One row per customer (index = customer id, sorted): ``frequency`` (repeat purchase days),
        ``recency`` (first to last purchase), ``T`` (first purchase to ``calibration_end``), both in
        ``time_unit``, and ``monetary_value`` (mean value of repeat purchase days worth more than
        0; 0 when there are none). ``attrs`` holds ``time_unit`` and ``calibration_end``.

    Raises:
        OrderDataError: bad columns or values in ``orders``.
        JobInputError: ``calibration_end`` is not a date.
        TimeUnitError: an unsupported ``time_unit``.
    """
    unit_days = TIME_UNITS[_check_unit(time_unit)]
    end = to_day(calibration_end, "calibration_end")
    customers, days = validate_purchases(
        orders, customer_col=customer_col, date_col=date_col, amount_col=amount_col, what="order", until=end
    )
    per = _per_customer(customers, days)
    repeat_spend = ~days.first_of_customer & (days.amount > 0)
    n = len(customers)
    spend_total = np.bincount(days.code, weights=np.where(repeat_spend, days.amount, 0.0), minlength=n)
    spend_count = np.bincount(days.code, weights=repeat_spend.astype(float), minlength=n)
    spend_total, spend_count = spend_total[per.present], spend_count[per.present]
    summary = pd.DataFrame(
        {
            "frequency": (per.purchases - 1).astype("int64"),
            "recency": (per.last - per.first) / np.timedelta64(1, "D") / unit_days,
            "T": (end.to_datetime64() - per.first) / np.timedelta64(1, "D") / unit_days,
            "monetary_value": np.where(spend_count > 0, spend_total / np.maximum(spend_count, 1), 0.0),
        },
        index=pd.Index(customers[per.present], name=customer_col),
    )
    summary.attrs["time_unit"] = time_unit
    summary.attrs["calibration_end"] = end.date().isoformat()
    return summary


@dataclass(frozen=True)
class _PerCustomer:
    present: np.ndarray  # codes of customers with a purchase day, ascending
    purchases: np.ndarray
    first: np.ndarray  # datetime64
    last: np.ndarray


def _per_customer(customers: pd.Index, days: DayGroups) -> _PerCustomer:
    """First and last purchase day and purchase-day count per customer (rows sorted by customer, day)."""
    starts = np.flatnonzero(days.first_of_customer)
    ends = np.r_[starts[1:], len(days.code)] - 1 if len(starts) else starts
    return _PerCustomer(
        present=days.code[starts],
        purchases=np.diff(np.r_[starts, len(days.code)]),
        first=days.day[starts],
        last=days.day[ends],
    )


def _check_summary(summary: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in summary.columns]
    if missing:
        raise OrderDataError(
            f"the summary has no column(s) {missing}; build it with jobs.customers.clv.summarize() "
            f"(it has {list(summary.columns)})"
        )
    values = summary[list(columns)].to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise OrderDataError("the summary contains missing or infinite values")
    x, t_x, T = (summary[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T"))
    problems = {
        "a negative or fractional frequency": (x < 0) | (x != np.round(x)),
        "a negative recency": t_x < 0,
        "recency after T (last purchase after the end of calibration)": t_x > T * (1 + 1e-9) + 1e-9,
        "no repeat purchase but a recency above 0": (x == 0) & (t_x > 0),
    }
    for problem, mask in problems.items():
        if mask.any():
            raise OrderDataError(
                f"{int(mask.sum())} customer(s) in the summary have {problem}; build the summary "
                "with jobs.customers.clv.summarize()"
            )


# --------------------------------------------------------------------------------------------
# fits


def fit_bgnbd(summary: pd.DataFrame) -> BgNbdFit:
    """Fit BG/NBD (Fader, Hardie & Lee 2005) by maximum likelihood.

    Returns a fit marked ``converged=False`` with a message saying what to try when the optimiser
    did not reach a trustworthy maximum; ``predict`` refuses such a fit.

    Raises:
        OrderDataError: a malformed summary.
        InsufficientDataError: fewer than two customers with a repeat purchase.
    """
    _check_summary(summary, ("frequency", "recency", "T"))
    return fit_bgnbd_arrays(
        summary["frequency"].to_numpy(dtype=float),
        summary["recency"].to_numpy(dtype=float),
        summary["T"].to_numpy(dtype=float),
        time_unit=summary.attrs.get("time_unit"),
    )


def fit_gamma_gamma(summary: pd.DataFrame) -> GammaGammaFit:
    """Fit the Gamma-Gamma spend model on the repeat buyers (frequency > 0, monetary_value > 0).

    Raises:
        OrderDataError: a malformed summary.
        InsufficientDataError: fewer than 10 such repeat buyers.
    """
    _check_summary(summary, ("frequency", "recency", "T", "monetary_value"))
    x = summary["frequency"].to_numpy(dtype=float)
    m = summary["monetary_value"].to_numpy(dtype=float)
    repeat = (x > 0) & (m > 0)
    return fit_gamma_gamma_arrays(x[repeat], m[repeat])


# --------------------------------------------------------------------------------------------
# prediction


def predict(
    summary: pd.DataFrame,
    bgnbd: BgNbdFit,
    gamma_gamma: GammaGammaFit,
    *,
    horizon: Horizon,
    discount_rate: float = 0.0,
    margin: float = 1.0,
) -> pd.DataFrame:
    """Predict purchases, P(alive), order value and CLV over ``horizon`` for every customer.

    Discounting: the horizon is cut into periods of one time unit (the last one partial); the
    purchases expected in period k, ``E[Y(min(k, H))] - E[Y(k - 1)]``, are discounted by
    ``(1 + discount_rate) ** -k`` (end of period) and summed. With ``discount_rate = 0`` this is
    ``E[Y(H)]``.

    Args:
        summary: from ``summarize`` (its ``time_unit`` is the unit of everything below).
        bgnbd, gamma_gamma: converged fits.
        horizon: how far ahead, in the summary's time unit, or a duration it converts
            (see ``parse_duration``).
        discount_rate: per time unit of the summary (``discount_rate_per_unit`` converts an
            annual rate), >= 0.
        margin: share of revenue that is profit, in (0, 1]; 1 gives revenue CLV.

    Returns:
        One row per summary row: ``expected_purchases`` (undiscounted, over the horizon),
        ``discounted_purchases``, ``p_alive``, ``expected_order_value`` and ``clv``
        (= margin x expected_order_value x discounted_purchases). ``attrs`` holds ``time_unit``
        and ``horizon`` (in that unit).

    Raises:
        ConvergenceError: either fit did not converge.
        JobInputError: a negative ``discount_rate`` or a ``margin`` outside (0, 1].
        TimeUnitError: the horizon cannot be read in the summary's unit, or the fit was made on a
            summary in another unit.
        JobError: a Gamma-Gamma fit with q <= 1 (infinite mean spend), or a non-finite result.
    """
    bgnbd.raise_if_unconverged()
    gamma_gamma.raise_if_unconverged()
    _check_summary(summary, ("frequency", "recency", "T", "monetary_value"))
    unit = summary.attrs.get("time_unit")
    if unit is not None and bgnbd.time_unit is not None and unit != bgnbd.time_unit:
        raise TimeUnitError(
            f"the BG/NBD fit was made on a summary in {_UNIT_WORDS.get(bgnbd.time_unit, bgnbd.time_unit)}s "
            f"but this summary is in {_UNIT_WORDS.get(unit, unit)}s; fit and predict on the same summary"
        )
    unit = unit or bgnbd.time_unit
    horizon_units = parse_duration(horizon, unit)
    if not math.isfinite(discount_rate) or discount_rate < 0:
        raise JobInputError(f"discount_rate must be >= 0 per time unit, not {discount_rate!r}")
    if not math.isfinite(margin) or not 0 < margin <= 1:
        raise JobInputError(f"margin must be a share of revenue in (0, 1], not {margin!r}")
    if gamma_gamma.q <= 1:
        raise JobError(
            f"the Gamma-Gamma fit has q = {gamma_gamma.q:.3g} <= 1, which means an infinite average "
            "order value; a few extreme order values usually cause this: check for data errors "
            "or use the historical value"
        )

    x = summary["frequency"].to_numpy(dtype=float)
    t_x = summary["recency"].to_numpy(dtype=float)
    T = summary["T"].to_numpy(dtype=float)
    m = np.clip(summary["monetary_value"].to_numpy(dtype=float), 0.0, None)
    params = (bgnbd.r, bgnbd.alpha, bgnbd.a, bgnbd.b)

    # Evaluate the BG/NBD expressions once per distinct (x, t_x, T): order data repeat them a lot.
    (ux, ut_x, uT), _, inverse = group_rows(x, t_x, T)
    with np.errstate(all="ignore"):
        expected = bgnbd_conditional_expected_purchases(params, horizon_units, ux, ut_x, uT)
        discounted = (
            _discounted_purchases(params, horizon_units, discount_rate, ux, ut_x, uT)
            if discount_rate > 0
            else expected
        )
        p_alive = bgnbd_p_alive(params, ux, ut_x, uT)
        order_value = gamma_gamma_conditional_spend((gamma_gamma.p, gamma_gamma.q, gamma_gamma.v), x, m)
    result = pd.DataFrame(
        {
            "expected_purchases": expected[inverse],
            "discounted_purchases": discounted[inverse],
            "p_alive": np.clip(p_alive[inverse], 0.0, 1.0),
            "expected_order_value": order_value,
        },
        index=summary.index,
    )
    result["clv"] = margin * result["expected_order_value"] * result["discounted_purchases"]
    bad = ~np.isfinite(result.to_numpy(dtype=float)).all(axis=1)
    if bad.any():
        raise JobError(
            f"the prediction is not finite for {int(bad.sum())} customer(s) "
            f"(e.g. {summary.index[bad][0]!r}); "
            "the fitted parameters are probably extreme: check the fit's message and the summary"
        )
    result.attrs["time_unit"] = unit
    result.attrs["horizon"] = horizon_units
    return result


def _discounted_purchases(
    params: tuple[float, float, float, float],
    horizon: float,
    rate: float,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
) -> np.ndarray:
    periods = math.ceil(horizon - 1e-9)
    ends = np.minimum(np.arange(1, periods + 1, dtype=float), horizon)
    factors = (1 + rate) ** -np.arange(1, periods + 1, dtype=float)
    out = np.empty(len(x))
    chunk = max(1, _DISCOUNT_CHUNK_CELLS // periods)
    for start in range(0, len(x), chunk):  # bounded memory; each chunk is one vectorised call
        s = slice(start, start + chunk)
        cumulative = bgnbd_conditional_expected_purchases(
            params, ends[None, :], x[s, None], t_x[s, None], T[s, None]
        )
        per_period = np.diff(cumulative, axis=1, prepend=0.0)
        out[s] = per_period @ factors
    return out


# --------------------------------------------------------------------------------------------
# historical value


def historical_value(
    orders: pd.DataFrame,
    *,
    as_of: date | datetime | str | pd.Timestamp,
    customer_col: str = "customer_id",
    date_col: str = "order_date",
    amount_col: str = "amount",
    time_unit: str = "W",
    lifespan: Horizon | Literal["auto"] = "auto",
    margin: float = 1.0,
) -> pd.DataFrame:
    """Compute historical value and the simple CLV formula for every customer who bought.

    ``historical_clv = average_order_value x purchase_frequency x lifespan x margin`` where
    ``purchase_frequency`` is purchase days per time unit since the customer's first purchase
    (over at least one unit, so a customer who bought today is not divided by zero) and
    ``lifespan`` is configured, or with ``"auto"`` the mean span from first to last purchase of
    customers who bought more than once (at least one time unit). It needs no model and works from
    a single order, so it is the number to show when the predictive fit is not possible; it is
    labelled ``value_basis = "historical"``.

    Returns:
        One row per customer (index = customer id): ``purchases``, ``total_value``,
        ``average_order_value``, ``first_purchase``, ``last_purchase``, ``tenure`` and
        ``lifespan`` (time units), ``purchase_frequency`` (per time unit), ``historical_clv`` and
        ``value_basis``; ``attrs["time_unit"]``.

    Raises:
        OrderDataError: bad columns or values in ``orders``.
        JobInputError: ``as_of`` is not a date, or a ``margin`` outside (0, 1].
        TimeUnitError: an unsupported unit or unreadable lifespan.
    """
    unit_days = TIME_UNITS[_check_unit(time_unit)]
    if not math.isfinite(margin) or not 0 < margin <= 1:
        raise JobInputError(f"margin must be a share of revenue in (0, 1], not {margin!r}")
    end = to_day(as_of, "as_of")
    customers, days = validate_purchases(
        orders, customer_col=customer_col, date_col=date_col, amount_col=amount_col, what="order", until=end
    )
    per = _per_customer(customers, days)
    total_value = np.bincount(days.code, weights=days.amount, minlength=len(customers))[per.present]
    span = (per.last - per.first) / np.timedelta64(1, "D") / unit_days
    tenure = (end.to_datetime64() - per.first) / np.timedelta64(1, "D") / unit_days
    if isinstance(lifespan, str) and lifespan == "auto":
        repeat = per.purchases > 1
        life = max(float(span[repeat].mean()), 1.0) if repeat.any() else 1.0
    else:
        life = parse_duration(lifespan, time_unit)
    purchases = per.purchases.astype(float)
    aov = total_value / purchases
    frequency = purchases / np.maximum(tenure, 1.0)
    result = pd.DataFrame(
        {
            "purchases": per.purchases.astype("int64"),
            "total_value": total_value,
            "average_order_value": aov,
            "first_purchase": per.first,
            "last_purchase": per.last,
            "tenure": tenure,
            "lifespan": life,
            "purchase_frequency": frequency,
            "historical_clv": aov * frequency * life * margin,
            "value_basis": "historical",
        },
        index=pd.Index(customers[per.present], name=customer_col),
    )
    result.attrs["time_unit"] = time_unit
    return result


# --------------------------------------------------------------------------------------------
# flags


@dataclass(frozen=True)
class _Ranked:
    order: np.ndarray  # positions sorted by clv descending, customer id ascending on ties
    chosen: np.ndarray  # bool per position: flagged high value


def _rank_high_value(
    clv: np.ndarray, index: pd.Index, rule: str, top_percent: float, pareto_share: float
) -> _Ranked:
    by_id = np.argsort(index.to_numpy(), kind="stable")
    order = by_id[np.argsort(-clv[by_id], kind="stable")]
    chosen = np.zeros(len(clv), dtype=bool)
    positive = clv[order] > 0
    if rule == "top_percent":
        k = math.ceil(len(clv) * top_percent / 100)
        chosen[order[:k][positive[:k]]] = True
    else:
        total = clv[clv > 0].sum()
        if total > 0:
            cumulative = np.cumsum(np.where(positive, clv[order], 0.0)) / total
            # The smallest set reaching the share: everyone before the first customer at or above it.
            k = int(np.searchsorted(cumulative, pareto_share - 1e-12) + 1)
            chosen[order[:k][positive[:k]]] = True
    return _Ranked(order=order, chosen=chosen)


def flag_customers(
    summary: pd.DataFrame,
    predictions: pd.DataFrame,
    *,
    high_value: Literal["top_percent", "pareto"] = "top_percent",
    top_percent: float = 20.0,
    pareto_share: float = 0.8,
    churn_below: float = 0.3,
) -> pd.DataFrame:
    """Flag high-value and churn-risk customers, each with a one-line reason for sales.

    Args:
        summary: the summary the predictions were made from.
        predictions: ``predict`` output.
        high_value: "top_percent" flags the top ``top_percent`` % of customers by predicted CLV;
            "pareto" flags the smallest set of customers that makes ``pareto_share`` of the
            predicted value (the 80/20 rule). Customers with no predicted value are never flagged.
        churn_below: churn risk when P(alive) is below this. One-time buyers have P(alive) = 1
            under BG/NBD and are never flagged; their low expected purchases show it instead.

    Returns:
        Index as ``summary``: ``high_value`` (bool), ``high_value_reason``, ``churn_risk`` (bool),
        ``churn_reason`` (reasons are "" when the flag is off).
    """
    if high_value not in ("top_percent", "pareto"):
        raise JobInputError(f"high_value must be 'top_percent' or 'pareto', not {high_value!r}")
    if not 0 < top_percent <= 100:
        raise JobInputError(f"top_percent must be in (0, 100], not {top_percent!r}")
    if not 0 < pareto_share <= 1:
        raise JobInputError(f"pareto_share must be in (0, 1], not {pareto_share!r}")
    if not 0 <= churn_below <= 1:
        raise JobInputError(f"churn_below must be a probability in [0, 1], not {churn_below!r}")
    if not predictions.index.equals(summary.index):
        raise JobError("the predictions and the summary are for different customers; predict on this summary")
    unit = predictions.attrs.get("time_unit") or summary.attrs.get("time_unit")
    horizon = predictions.attrs.get("horizon")
    clv = predictions["clv"].to_numpy(dtype=float)
    ranked = _rank_high_value(clv, summary.index, high_value, top_percent, pareto_share)
    rank = np.empty(len(clv), dtype=np.int64)
    rank[ranked.order] = np.arange(1, len(clv) + 1)
    n = len(clv)
    over = f" over the next {unit_words(round(horizon, 2), unit)}" if unit and horizon else ""
    value_text = pd.Series(clv, index=summary.index).map("{:,.0f}".format)
    if high_value == "top_percent":
        tail = f" (top {top_percent:g}%)"
    else:
        flagged = int(ranked.chosen.sum())
        tail = f" (among the {flagged:,} customers expected to bring {pareto_share:.0%} of predicted value)"
    rank_text = pd.Series(rank, index=summary.index).map("{:,}".format)
    hv_reason = "predicted value " + value_text + over + ": rank " + rank_text + f" of {n:,}" + tail

    p_alive = predictions["p_alive"].to_numpy(dtype=float)
    churn = p_alive < churn_below
    orders = summary["frequency"].to_numpy(dtype=np.int64) + 1
    gap = np.round(summary["T"].to_numpy(dtype=float) - summary["recency"].to_numpy(dtype=float)).astype(
        np.int64
    )
    word = _UNIT_WORDS.get(unit, "time unit") if unit else "time unit"
    gap_text = pd.Series(gap, index=summary.index).map(lambda g: f"{g} {word}" + ("" if g == 1 else "s"))
    churn_reason = (
        pd.Series(orders, index=summary.index).map(lambda k: f"{k:,} order" + ("" if k == 1 else "s"))
        + ", none in the last "
        + gap_text
        + ": "
        + pd.Series(p_alive, index=summary.index).map("{:.0%} likely still active".format)
    )
    return pd.DataFrame(
        {
            "high_value": ranked.chosen,
            "high_value_reason": hv_reason.where(ranked.chosen, ""),
            "churn_risk": churn,
            "churn_reason": churn_reason.where(churn, ""),
        },
        index=summary.index,
    )
