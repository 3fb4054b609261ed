"""CLV: the CDNOW acceptance figures, parameter recovery, predictions, units, edge cases, flags."""

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import DvsyncError
from jobs.customers.clv import (
    TimeUnitError,
    discount_rate_per_unit,
    fit_bgnbd,
    fit_gamma_gamma,
    flag_customers,
    historical_value,
    parse_duration,
    predict,
    summarize,
)
from jobs.customers.clv_models import (
    bgnbd_conditional_expected_purchases,
    bgnbd_expected_purchases,
    bgnbd_log_likelihood,
    fit_bgnbd_arrays,
    gamma_gamma_log_likelihood,
)
from jobs.customers.orders import OrderDataError, OrderRules, prepare_orders
from jobs.errors import ConvergenceError, InsufficientDataError, JobError, JobInputError

CDNOW = Path(__file__).parent / "data" / "cdnow"


@pytest.fixture(scope="module")
def cdnow_orders():
    orders = pd.read_csv(
        CDNOW / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["master_id", "customer_id", "order_date", "cds", "amount"],
        dtype={"order_date": str},
    )
    orders["order_date"] = pd.to_datetime(orders["order_date"], format="%Y%m%d")
    return orders


@pytest.fixture(scope="module")
def cdnow_summary(cdnow_orders):
    return summarize(cdnow_orders, calibration_end="1997-09-30", time_unit="W")


@pytest.fixture(scope="module")
def cdnow_fits(cdnow_summary):
    return fit_bgnbd(cdnow_summary), fit_gamma_gamma(cdnow_summary)


# ---------------------------------------------------------------------------------------------
# acceptance: the published CDNOW figures


def test_cdnow_summary_is_the_one_the_papers_use(cdnow_summary):
    published = pd.read_csv(CDNOW / "cdnow_customers_summary.csv", index_col="ID")
    assert len(cdnow_summary) == 2357
    assert cdnow_summary.attrs == {"time_unit": "W", "calibration_end": "1997-09-30"}
    assert (cdnow_summary.index.to_numpy() == published.index.to_numpy()).all()
    assert (cdnow_summary["frequency"].to_numpy() == published["frequency"].to_numpy()).all()
    for column in ("recency", "T"):
        assert (cdnow_summary[column].round(2).to_numpy() == published[column].to_numpy()).all()
    assert int((cdnow_summary["frequency"] > 0).sum()) == 946


def test_cdnow_bgnbd_gives_the_published_estimates(cdnow_fits):
    bgnbd, _ = cdnow_fits
    assert bgnbd.converged and bgnbd.time_unit == "W"
    assert round(bgnbd.r, 3) == 0.243
    assert round(bgnbd.alpha, 3) == 4.414
    assert round(bgnbd.a, 3) == 0.793
    assert round(bgnbd.b, 3) == 2.426
    assert round(bgnbd.log_likelihood, 1) == -9582.4


def test_the_fast_grouped_likelihoods_equal_the_row_by_row_formulas(cdnow_fits, cdnow_summary):
    bgnbd, spend = cdnow_fits
    x, t_x, T, m = (cdnow_summary[c].to_numpy() for c in ("frequency", "recency", "T", "monetary_value"))
    row_by_row = bgnbd_log_likelihood(tuple(bgnbd.params.values()), x, t_x, T).sum()
    assert row_by_row == pytest.approx(bgnbd.log_likelihood, abs=1e-6)
    repeat = (x > 0) & (m > 0)
    spend_rows = gamma_gamma_log_likelihood(tuple(spend.params.values()), x[repeat], m[repeat]).sum()
    assert spend_rows == pytest.approx(spend.log_likelihood, abs=1e-6)


def test_cdnow_bgnbd_from_the_published_summary_file_gives_the_same_estimates():
    published = pd.read_csv(CDNOW / "cdnow_customers_summary.csv", index_col="ID")
    bgnbd = fit_bgnbd(published)
    assert bgnbd.time_unit is None  # a plain frame does not say its unit
    assert [round(v, 3) for v in bgnbd.params.values()] == [0.243, 4.414, 0.793, 2.426]
    assert round(bgnbd.log_likelihood, 1) == -9582.4


def test_cdnow_gamma_gamma_gives_the_published_estimates(cdnow_fits):
    _, spend = cdnow_fits
    assert spend.converged and spend.n_customers == 946
    assert round(spend.p, 2) == 6.25
    assert round(spend.q, 2) == 3.74
    assert round(spend.v, 2) == 15.44


def test_cdnow_conditional_expectation_matches_the_papers_worked_example(cdnow_fits, cdnow_summary):
    # FHL (2005), section 5: a customer with x = 2, t_x = 30.43, T = 38.86 (CDNOW customer 1) is
    # expected to make 1.226 purchases in the next 39 weeks.
    bgnbd, spend = cdnow_fits
    result = predict(cdnow_summary, bgnbd, spend, horizon=39)
    assert round(result.loc[1, "expected_purchases"], 3) == 1.226
    # The horizon may also be written with its unit; 273 days are 39 weeks.
    assert predict(cdnow_summary, bgnbd, spend, horizon="273D").equals(result)


def test_cdnow_predictions_track_the_holdout_period(cdnow_orders, cdnow_fits, cdnow_summary):
    bgnbd, spend = cdnow_fits
    result = predict(cdnow_summary, bgnbd, spend, horizon="39W")
    holdout = cdnow_orders[cdnow_orders["order_date"] > "1997-09-30"]
    actual = holdout.groupby(["customer_id", "order_date"]).size().groupby("customer_id").size()
    actual = actual.reindex(cdnow_summary.index, fill_value=0)
    # In aggregate within 15 %, and customers the model ranks higher really buy more.
    assert result["expected_purchases"].sum() == pytest.approx(actual.sum(), rel=0.15)
    top = result["expected_purchases"] >= result["expected_purchases"].quantile(0.9)
    assert actual[top].mean() > 4 * actual[~top].mean()
    assert np.isfinite(result.to_numpy()).all()


# ---------------------------------------------------------------------------------------------
# parameter recovery on simulated data


def simulate_bgnbd(n, r, alpha, a, b, *, T_low, T_high, holdout=0.0, seed=0):
    """Simulate BG/NBD customers; return (x, t_x, T, alive at T, purchases in (T, T + holdout])."""
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1 / alpha, n)
    p = rng.beta(a, b, n)
    T = rng.uniform(T_low, T_high, n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    future = np.zeros(n)
    clock = np.zeros(n)
    active = np.ones(n, dtype=bool)  # a customer can only drop out right after a repeat purchase
    alive_at_T = np.ones(n, dtype=bool)
    while active.any():  # one step per purchase number, vectorised over customers
        clock[active] += rng.exponential(1 / lam[active])
        in_calibration = active & (clock <= T)
        in_holdout = active & (clock > T) & (clock <= T + holdout)
        x[in_calibration] += 1
        t_x[in_calibration] = clock[in_calibration]
        future[in_holdout] += 1
        drop = rng.random(n) < p
        alive_at_T &= ~(in_calibration & drop)
        active = (in_calibration | in_holdout) & ~drop
    return x, t_x, T, alive_at_T, future


def simulate_spend(x, p, q, v, seed=1):
    rng = np.random.default_rng(seed)
    nu = rng.gamma(q, 1 / v, len(x))
    safe = np.maximum(x, 1)
    return np.where(x > 0, rng.gamma(p * safe, 1 / nu) / safe, 0.0)


TRUE_BGNBD = {"r": 0.5, "alpha": 6.0, "a": 0.9, "b": 3.0}
TRUE_GG = {"p": 5.0, "q": 4.0, "v": 20.0}


@pytest.fixture(scope="module")
def simulated():
    x, t_x, T, alive, future = simulate_bgnbd(20_000, **TRUE_BGNBD, T_low=26, T_high=78, holdout=26, seed=42)
    summary = pd.DataFrame(
        {"frequency": x, "recency": t_x, "T": T, "monetary_value": simulate_spend(x, **TRUE_GG)},
        index=pd.RangeIndex(len(x), name="customer_id"),
    )
    summary.attrs["time_unit"] = "W"
    return summary, alive, future


def test_bgnbd_recovers_known_parameters_within_sampling_error(simulated):
    summary, _, _ = simulated
    fit = fit_bgnbd(summary)
    assert fit.converged, fit.message
    for name, truth in TRUE_BGNBD.items():
        estimate, se = fit.params[name], fit.standard_errors[name]
        assert 0 < se < 0.25 * truth
        assert abs(estimate - truth) < 3.5 * se, (name, estimate, truth, se)


def test_gamma_gamma_recovers_known_parameters_within_sampling_error(simulated):
    summary, _, _ = simulated
    fit = fit_gamma_gamma(summary)
    assert fit.converged, fit.message
    assert fit.n_customers > 5000
    assert abs(fit.frequency_monetary_correlation) < 0.1  # simulated independent, as assumed
    for name, truth in TRUE_GG.items():
        estimate, se = fit.params[name], fit.standard_errors[name]
        assert abs(estimate - truth) < 3.5 * se, (name, estimate, truth, se)


def test_p_alive_and_conditional_expectation_match_the_simulated_truth(simulated):
    summary, alive, future = simulated
    true_fit = replace(fit_bgnbd(summary), **TRUE_BGNBD)
    params = tuple(TRUE_BGNBD.values())
    spend = fit_gamma_gamma(summary)
    result = predict(summary, true_fit, spend, horizon=26)
    # Expected number alive and expected holdout purchases, against what the simulation did.
    assert result["p_alive"].sum() == pytest.approx(alive.sum(), rel=0.02)
    assert result["expected_purchases"].sum() == pytest.approx(future.sum(), rel=0.04)
    # Binned by P(alive), the share really alive follows the prediction.
    bins = pd.cut(result["p_alive"], [0, 0.25, 0.5, 0.75, 0.999])
    calibration = (
        pd.DataFrame({"predicted": result["p_alive"], "actual": alive}).groupby(bins, observed=True).mean()
    )
    assert (calibration["predicted"] - calibration["actual"]).abs().max() < 0.05
    # With no history (x = 0, t_x = 0, T = 0), the conditional expectation is the unconditional one.
    t = np.array([1.0, 10.0, 52.0])
    unconditional = bgnbd_expected_purchases(params, t)
    conditional = bgnbd_conditional_expected_purchases(params, t, np.zeros(3), np.zeros(3), np.zeros(3))
    np.testing.assert_allclose(conditional, unconditional, rtol=1e-10)


def test_unconditional_expectation_matches_simulation():
    x, *_ = simulate_bgnbd(40_000, **TRUE_BGNBD, T_low=30, T_high=30, seed=3)
    expected = bgnbd_expected_purchases(tuple(TRUE_BGNBD.values()), 30.0)
    assert x.mean() == pytest.approx(expected, rel=0.03)


# ---------------------------------------------------------------------------------------------
# convergence and refusal


def test_a_fit_that_cannot_converge_is_reported_and_predict_refuses_it():
    # Every repeat buyer bought right at the end of the window: no sign of dropout at all, so the
    # dropout probability runs to zero (a -> 0 or b -> infinity) and the fit is not trustworthy.
    rng = np.random.default_rng(5)
    n = 500
    x = rng.integers(1, 6, n).astype(float)
    T = np.full(n, 40.0)
    fit = fit_bgnbd_arrays(x, T.copy(), T, time_unit="W")
    assert not fit.converged
    assert "edge of the search range" in fit.message and "historical value" in fit.message
    summary = pd.DataFrame({"frequency": x, "recency": T, "T": T, "monetary_value": 10.0 + x})
    summary.attrs["time_unit"] = "W"
    spend = fit_gamma_gamma(summary)
    with pytest.raises(ConvergenceError, match="did not converge"):
        predict(summary, fit, spend, horizon=52)
    with pytest.raises(ConvergenceError):
        fit.raise_if_unconverged()


def test_too_little_history_is_an_insufficient_data_error():
    one_timers = pd.DataFrame({"frequency": [0, 0, 0], "recency": [0.0] * 3, "T": [3.0, 4.0, 5.0]})
    with pytest.raises(InsufficientDataError, match="found 0 of 3"):
        fit_bgnbd(one_timers)
    few = pd.DataFrame(
        {"frequency": [1, 2], "recency": [1.0, 2.0], "T": [3.0, 4.0], "monetary_value": [5.0, 6.0]}
    )
    with pytest.raises(InsufficientDataError, match="found 2"):
        fit_gamma_gamma(few)


def test_malformed_summaries_are_refused():
    bad = pd.DataFrame({"frequency": [1, 0], "recency": [5.0, 0.0], "T": [4.0, 3.0]})
    with pytest.raises(OrderDataError, match="recency after T"):
        fit_bgnbd(bad)
    with pytest.raises(OrderDataError, match="no column"):
        fit_bgnbd(bad.drop(columns="T"))


# ---------------------------------------------------------------------------------------------
# units


def test_durations_are_converted_explicitly_or_refused():
    assert parse_duration(52, "W") == 52
    assert parse_duration("52W", "W") == 52
    assert parse_duration("12M", "W") == pytest.approx(365.2425 / 7)
    assert parse_duration("12 months", "W") == pytest.approx(365.2425 / 7)
    assert parse_duration("1Y", "M") == pytest.approx(12)
    assert parse_duration("14D", "W") == 2
    assert parse_duration(timedelta(days=14), "W") == 2
    assert parse_duration(pd.Timedelta(weeks=3), "D") == 21
    assert parse_duration(pd.offsets.Week(4), "D") == 28
    assert parse_duration(pd.offsets.Day(90), "W") == pytest.approx(90 / 7)
    with pytest.raises(TimeUnitError, match="calendar offset"):
        parse_duration(pd.DateOffset(months=12), "W")
    with pytest.raises(TimeUnitError, match="minutes") as minutes:
        parse_duration("12m", "W")
    # The fix is spelled out with the user's own number, not a template placeholder.
    assert '"12M" or "12 months"' in str(minutes.value)
    with pytest.raises(TimeUnitError, match="number and a unit"):
        parse_duration("52", "W")
    with pytest.raises(TimeUnitError, match="does not say which time unit"):
        parse_duration("52W", None)
    with pytest.raises(TimeUnitError, match="positive"):
        parse_duration(-3, "W")
    assert discount_rate_per_unit(0.10, "Y") == pytest.approx(0.10)
    assert (1 + discount_rate_per_unit(0.10, "W")) ** (365.2425 / 7) == pytest.approx(1.10)


def test_predict_refuses_a_fit_made_in_another_unit(cdnow_orders, cdnow_fits):
    bgnbd, spend = cdnow_fits
    daily = summarize(cdnow_orders, calibration_end="1997-09-30", time_unit="D")
    with pytest.raises(TimeUnitError, match="weeks but this summary is in days"):
        predict(daily, bgnbd, spend, horizon="39W")


def test_summary_in_days_gives_the_same_model_rescaled(cdnow_orders, cdnow_fits):
    bgnbd, _ = cdnow_fits
    daily = fit_bgnbd(summarize(cdnow_orders, calibration_end="1997-09-30", time_unit="D"))
    assert daily.time_unit == "D"
    # Rates scale with the unit (alpha is in time units); the shapes do not.
    assert daily.alpha == pytest.approx(bgnbd.alpha * 7, rel=1e-3)
    for name in ("r", "a", "b"):
        assert daily.params[name] == pytest.approx(bgnbd.params[name], rel=1e-3)


# ---------------------------------------------------------------------------------------------
# discounting, margin


def test_discounting_sums_per_period_expectations(cdnow_fits, cdnow_summary):
    bgnbd, spend = cdnow_fits
    undiscounted = predict(cdnow_summary, bgnbd, spend, horizon=10.5, margin=0.4)
    assert (undiscounted["discounted_purchases"] == undiscounted["expected_purchases"]).all()
    rate = 0.01
    discounted = predict(cdnow_summary, bgnbd, spend, horizon=10.5, discount_rate=rate, margin=0.4)
    # By hand for one customer: periods (0,1], ..., (9,10], (10,10.5], each discounted at its end.
    row = cdnow_summary.loc[1]
    params = tuple(bgnbd.params.values())
    ends = [*range(1, 11), 10.5]
    cumulative = [
        float(bgnbd_conditional_expected_purchases(params, e, row["frequency"], row["recency"], row["T"]))
        for e in ends
    ]
    increments = np.diff([0.0, *cumulative])
    by_hand = sum(inc / (1 + rate) ** k for k, inc in enumerate(increments, start=1))
    assert discounted.loc[1, "discounted_purchases"] == pytest.approx(by_hand, rel=1e-10)
    assert (discounted["clv"] < undiscounted["clv"]).all()
    assert discounted["clv"].to_numpy() == pytest.approx(
        0.4 * discounted["expected_order_value"] * discounted["discounted_purchases"]
    )
    with pytest.raises(ValueError, match="margin"):
        predict(cdnow_summary, bgnbd, spend, horizon=10, margin=30)


def test_bad_arguments_are_dvsync_errors_that_name_the_argument(cdnow_orders, cdnow_fits, cdnow_summary):
    # The CLI reports DvsyncError cleanly; a bare ValueError or a pandas parse error would be a
    # stack trace. JobInputError is both, so Python callers catching ValueError keep working.
    bgnbd, spend = cdnow_fits
    calls = {
        "margin": lambda: predict(cdnow_summary, bgnbd, spend, horizon=10, margin=0),
        "discount_rate": lambda: predict(cdnow_summary, bgnbd, spend, horizon=10, discount_rate=-0.1),
        "calibration_end": lambda: summarize(cdnow_orders, calibration_end="end of Q3"),
        "as_of": lambda: historical_value(cdnow_orders, as_of=pd.NaT),
        "top_percent": lambda: flag_customers(
            cdnow_summary, predict(cdnow_summary, bgnbd, spend, horizon=10), top_percent=0
        ),
        "annual discount rate": lambda: discount_rate_per_unit(-1.0, "W"),
    }
    for name, call in calls.items():
        with pytest.raises(JobInputError, match=name):
            call()
    assert issubclass(JobInputError, ValueError) and issubclass(JobInputError, DvsyncError)


# ---------------------------------------------------------------------------------------------
# real-world edge cases end to end


def messy_orders(n_customers=600, seed=11):
    """Canonical orders with one-time buyers, $0 orders, returns and cancellations.

    Purchases follow BG/NBD (rates per day, dropout after a purchase) from each customer's own
    start day to 2024-12-31, with each customer's own typical order value.
    """
    rng = np.random.default_rng(seed)
    lam = rng.gamma(0.6, 1 / 40, n_customers)
    p_drop = rng.beta(1.0, 3.0, n_customers)
    clock = rng.integers(0, 500, n_customers).astype(float)
    events = [(np.arange(n_customers), clock.copy())]
    active = np.ones(n_customers, dtype=bool)
    while active.any():
        clock[active] += rng.exponential(1 / lam[active])
        active &= clock <= 730
        events.append((np.flatnonzero(active), clock[active].copy()))
        active &= rng.random(n_customers) >= p_drop
    customer = np.concatenate([c for c, _ in events])
    days = np.floor(np.concatenate([d for _, d in events])).astype(int)
    n = len(customer)
    amount = (rng.gamma(4.0, 1.0, n) * rng.gamma(3.0, 20.0, n_customers)[customer]).round(2)
    status = rng.choice(["fulfilled", "invoiced", "cancelled", "active"], n, p=[0.6, 0.3, 0.05, 0.05])
    amount[rng.random(n) < 0.05] = 0.0
    returns = rng.random(n) < 0.05
    amount[returns] = -amount[returns]
    orders = pd.DataFrame(
        {
            "order_id": [f"o{i}" for i in range(n)],
            "customer_id": [f"cust-{i:04d}" for i in customer],
            "order_date": pd.Timestamp("2023-01-01", tz="UTC") + pd.to_timedelta(days, unit="D"),
            "amount": amount,
            "status": status,
        }
    )
    # One repeat customer whose repeat purchases are all $0, and one who returned everything.
    extra = pd.DataFrame(
        {
            "order_id": ["z1", "z2", "z3", "r1", "r2", "r3"],
            "customer_id": ["zero", "zero", "zero", "returner", "returner", "returner"],
            "order_date": pd.to_datetime(
                ["2023-02-01", "2023-05-01", "2023-09-01", "2023-03-01", "2023-04-01", "2023-04-02"], utc=True
            ),
            "amount": [50.0, 0.0, 0.0, 30.0, 20.0, -80.0],
            "status": ["fulfilled"] * 6,
        }
    )
    return pd.concat([orders, extra], ignore_index=True)


@pytest.mark.parametrize(
    "rules", [OrderRules(), OrderRules(zero_amount="count_as_activity", returns="exclude")], ids=repr
)
def test_messy_orders_give_finite_values_for_everyone(rules):
    prepared = prepare_orders(messy_orders(), rules)
    summary = summarize(prepared.purchases, calibration_end="2024-12-31", time_unit="W")
    bgnbd, spend = fit_bgnbd(summary), fit_gamma_gamma(summary)
    assert bgnbd.converged and spend.converged
    result = predict(
        summary, bgnbd, spend, horizon="12M", discount_rate=discount_rate_per_unit(0.1, "W"), margin=0.3
    )
    assert np.isfinite(result.to_numpy()).all()
    assert result.index.equals(summary.index)
    assert ((result["p_alive"] >= 0) & (result["p_alive"] <= 1)).all()
    assert (result["clv"] >= 0).all()
    one_timers = summary["frequency"] == 0
    assert (result.loc[one_timers, "p_alive"] == 1).all()
    np.testing.assert_allclose(result.loc[one_timers, "expected_order_value"], spend.population_mean_spend)
    history = historical_value(prepared.purchases, as_of="2024-12-31")
    assert np.isfinite(history.select_dtypes("number").to_numpy()).all()
    assert (history["value_basis"] == "historical").all()
    if rules.zero_amount == "count_as_activity":
        # Repeat purchases all worth $0: left out of the spend fit, predicted below the average.
        assert summary.loc["zero", "frequency"] == 2 and summary.loc["zero", "monetary_value"] == 0
        assert result.loc["zero", "expected_order_value"] < spend.population_mean_spend
    else:
        assert summary.loc["zero", "frequency"] == 0
        assert summary.loc["returner", "monetary_value"] == 0  # netted to nothing
        assert history.loc["returner", "total_value"] == 0


def test_historical_value_simple_formula_by_hand():
    orders = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "c"],
            "order_date": ["2024-01-01", "2024-01-29", "2024-03-25", "2024-03-01", "2024-04-01"],
            "amount": [100.0, 50.0, 150.0, 80.0, 20.0],
        }
    )
    result = historical_value(orders, as_of="2024-04-01", time_unit="W", margin=0.5)
    a = result.loc["a"]
    assert a["purchases"] == 3 and a["total_value"] == 300 and a["average_order_value"] == 100
    assert a["tenure"] == pytest.approx(13.0)  # 91 days
    # "auto" lifespan: mean first-to-last span of repeat buyers = a's 12 weeks.
    assert a["lifespan"] == pytest.approx(12.0)
    assert a["purchase_frequency"] == pytest.approx(3 / 13)
    assert a["historical_clv"] == pytest.approx(100 * 3 / 13 * 12 * 0.5)
    # c bought today: frequency over at least one week, not divided by zero.
    assert result.loc["c", "purchase_frequency"] == 1.0
    fixed = historical_value(orders, as_of="2024-04-01", time_unit="W", lifespan="2Y")
    assert fixed.loc["b", "lifespan"] == pytest.approx(2 * 365.2425 / 7)


# ---------------------------------------------------------------------------------------------
# flags


def test_churn_reason_reads_like_the_issue_example():
    summary = pd.DataFrame(
        {"frequency": [5, 0], "recency": [10.0, 0.0], "T": [50.0, 50.0], "monetary_value": [20.0, 0.0]},
        index=pd.Index(["acme", "solo"], name="customer_id"),
    )
    summary.attrs["time_unit"] = "W"
    predictions = pd.DataFrame(
        {
            "expected_purchases": [0.3, 0.2],
            "p_alive": [0.31, 1.0],
            "expected_order_value": [20.0, 15.0],
            "clv": [6.0, 3.0],
        },
        index=summary.index,
    )
    predictions.attrs.update(time_unit="W", horizon=52.0)
    flags = flag_customers(summary, predictions, churn_below=0.5, top_percent=50)
    assert flags.loc["acme", "churn_risk"]
    assert flags.loc["acme", "churn_reason"] == "6 orders, none in the last 40 weeks: 31% likely still active"
    assert not flags.loc["solo", "churn_risk"] and flags.loc["solo", "churn_reason"] == ""
    assert flags.loc["acme", "high_value"] and not flags.loc["solo", "high_value"]
    assert (
        flags.loc["acme", "high_value_reason"]
        == "predicted value 6 over the next 52 weeks: rank 1 of 2 (top 50%)"
    )


def test_high_value_rules_top_percent_and_pareto():
    ids = pd.Index([f"c{i}" for i in range(10)], name="customer_id")
    clv = np.array([5, 50, 0, 30, 5, 5, 0, 0, 5, 0], dtype=float)  # total 100
    summary = pd.DataFrame({"frequency": 1, "recency": 1.0, "T": 2.0, "monetary_value": 1.0}, index=ids)
    predictions = pd.DataFrame({"p_alive": 0.9, "clv": clv}, index=ids)
    top = flag_customers(summary, predictions, top_percent=20)
    assert list(ids[top["high_value"]]) == ["c1", "c3"]
    pareto = flag_customers(summary, predictions, high_value="pareto", pareto_share=0.8)
    assert list(ids[pareto["high_value"]]) == ["c1", "c3"]  # 50 + 30 = 80 % with two customers
    pareto = flag_customers(summary, predictions, high_value="pareto", pareto_share=0.9)
    # Ties at 5 are broken by customer id, so the result never depends on row order.
    assert list(ids[pareto["high_value"]]) == ["c0", "c1", "c3", "c4"]
    assert (
        "among the 4 customers expected to bring 90% of predicted value"
        in pareto.loc["c0", "high_value_reason"]
    )
    shuffled = np.random.default_rng(0).permutation(10)
    again = flag_customers(
        summary.iloc[shuffled], predictions.iloc[shuffled], high_value="pareto", pareto_share=0.9
    )
    pd.testing.assert_frame_equal(again.sort_index(), pareto.sort_index())
    everything = flag_customers(summary, predictions, top_percent=100)
    assert everything["high_value"].sum() == 6  # customers without predicted value are never flagged
    with pytest.raises(JobError, match="different customers"):
        flag_customers(summary.iloc[:5], predictions)


# ---------------------------------------------------------------------------------------------
# the sandbox's seed data


def test_fits_recover_the_sandbox_seed_parameters():
    from connector.sandbox.seed import generate

    seed = generate("small", seed=0)
    truth = seed.parameters
    assert truth["time_unit"] == "week"
    salesorder = seed.tables["salesorder"]
    statuses = {0: "active", 1: "submitted", 2: "cancelled", 3: "fulfilled", 4: "invoiced"}
    orders = pd.DataFrame(
        {
            "order_id": salesorder["salesorderid"],
            "customer_id": salesorder["customerid"],
            # The seed documents which column carries the purchase time of its BG/NBD process.
            "order_date": salesorder[truth["process_orders"]["date_column"]],
            "amount": salesorder["totalamount"],
            "status": salesorder["statecode"].map(statuses),
        }
    )
    # The seed's process values are gross; its returns are noise around them, so leave them out
    # here (the default nets them, which is the business view, not the generating one).
    prepared = prepare_orders(orders, OrderRules(returns="exclude"))
    assert prepared.excluded["status cancelled"] > 0 and prepared.excluded["$0 orders"] > 0
    summary = summarize(prepared.purchases, calibration_end=truth["now"], time_unit="W")
    bgnbd, spend = fit_bgnbd(summary), fit_gamma_gamma(summary)
    assert bgnbd.converged and spend.converged
    for fit, params in ((bgnbd, truth["bgnbd"]), (spend, truth["gamma_gamma"])):
        for name, value in params.items():
            assert abs(fit.params[name] - value) < 3 * fit.standard_errors[name], (
                name,
                fit.params[name],
                value,
            )
    # With the default rules (returns netted) every customer still gets finite values.
    default = prepare_orders(orders)
    summary = summarize(default.purchases, calibration_end=truth["now"], time_unit="W")
    result = predict(summary, fit_bgnbd(summary), fit_gamma_gamma(summary), horizon="12M", margin=0.3)
    assert np.isfinite(result.to_numpy()).all() and len(result) == summary.shape[0]


# ---------------------------------------------------------------------------------------------
# the whole job from customer_value.toml


def test_compute_customer_value_runs_every_part_from_the_config():
    from jobs.customers.config import load_customer_value_config
    from jobs.customers.value import compute_customer_value

    config = load_customer_value_config(
        Path(__file__).resolve().parents[1] / "mappings" / "customer_value.toml"
    )
    result = compute_customer_value(messy_orders(), config, as_of="2024-12-31")
    assert result.predictive_problem is None and result.bgnbd.converged
    customers = result.rfm.index
    assert result.historical.index.equals(customers) and result.summary.index.equals(customers)
    assert set(result.predicted.columns) >= {"clv", "p_alive", "high_value", "churn_reason"}
    assert result.predicted.attrs["horizon"] == pytest.approx(365.2425 / 7)
    assert result.rfm["segment"].notna().all()
    assert result.prepared.excluded["status cancelled"] > 0


def test_compute_customer_value_falls_back_to_history_when_the_model_cannot_be_fitted():
    from jobs.customers.config import load_customer_value_config
    from jobs.customers.value import compute_customer_value

    config = load_customer_value_config(
        Path(__file__).resolve().parents[1] / "mappings" / "customer_value.toml"
    )
    orders = messy_orders().head(0)
    orders = pd.concat(
        [
            orders,
            pd.DataFrame(
                {
                    "order_id": ["1", "2", "3"],
                    "customer_id": ["a", "b", "a"],
                    "order_date": pd.to_datetime(["2024-01-05", "2024-02-01", "2024-03-01"], utc=True),
                    "amount": [100.0, 50.0, 70.0],
                    "status": ["invoiced", "fulfilled", "fulfilled"],
                }
            ),
        ]
    )
    result = compute_customer_value(orders, config, as_of="2024-12-31")
    assert result.predicted is None
    assert "BG/NBD needs customers who bought more than once" in result.predictive_problem
    assert result.historical.loc["a", "total_value"] == 170.0
    assert list(result.rfm.index) == ["a", "b"]
