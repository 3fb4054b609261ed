"""The predictive model: the 40/40 minimum, validation, report, factors, engagement features."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError
from jobs.errors import InsufficientDataError
from jobs.leads.scoring import score_leads, train_model
from jobs.leads.scoring.model import (
    closed_leads,
    engagement_columns,
    engagement_features,
    train_on_features,
    training_features,
    verdict,
)

NOW = pd.Timestamp("2026-11-01T00:00:00Z")
NOW_NAIVE = NOW.tz_localize(None)


def simulate(n: int, *, seed: int = 0, signal: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Closed leads whose qualification depends on source, title, e-mail and engagement."""
    rng = np.random.default_rng(seed)
    source = rng.choice(
        ["Web", "Employee Referral", "Partner", "Advertisement", "Trade Show"], n, p=[0.4, 0.1, 0.1, 0.3, 0.1]
    )
    title = rng.choice(["Sales Director", "Intern", "IT Manager", "CEO", "Analyst"], n)
    email = np.where(rng.random(n) < 0.3, "a@gmail.com", "b@contoso.com")
    employees = np.round(rng.lognormal(4, 1.5, n))
    engaged = rng.poisson(1.5, n)
    logit = (
        -0.8
        + 1.8 * (source == "Employee Referral")
        + 1.2 * (source == "Partner")
        - 1.0 * (source == "Advertisement")
        + 0.9 * np.isin(title, ["Sales Director", "CEO"])
        - 1.2 * (title == "Intern")
        - 0.8 * (email == "a@gmail.com")
        + 0.5 * (engaged - 1.5)
    )
    if not signal:
        logit = np.zeros(n)
    qualified = rng.random(n) < 1 / (1 + np.exp(-logit))
    created = NOW_NAIVE - pd.to_timedelta(rng.uniform(30, 700, n), unit="D")
    modified = created + pd.to_timedelta(rng.uniform(5, 25, n), unit="D")
    ids = np.array([f"L{i}" for i in range(n)])
    leads = pd.DataFrame(
        {
            "lead_id": ids,
            "source": source,
            "job_title": title,
            "email": email,
            "employees": employees,
            "status": np.where(qualified, "qualified", "disqualified"),
            "created_on": created,
            "modified_on": modified,
        }
    )
    rows = np.repeat(np.arange(n), engaged)
    activities = pd.DataFrame(
        {
            "lead_id": ids[rows],
            "activity_type": rng.choice(["email", "phonecall", "appointment"], len(rows)),
            "direction": rng.choice(["incoming", "outgoing"], len(rows)),
            "occurred_on": modified.to_numpy()[rows]
            - pd.to_timedelta(rng.uniform(0, 20, len(rows)), unit="D"),
        }
    )
    return leads, activities


FEATURES = {"source": "category", "job_title": "text", "email": "email", "employees": "number"}


@pytest.fixture(scope="module")
def trained():
    leads, activities = simulate(2500)
    model, report = train_model(
        leads, label="status", features=FEATURES, time_column="created_on", activities=activities, now=NOW
    )
    return leads, activities, model, report


def closed(qualified: int, disqualified: int, open_: int = 0) -> pd.DataFrame:
    n = qualified + disqualified + open_
    status = ["qualified"] * qualified + ["disqualified"] * disqualified + ["open"] * open_
    rng = np.random.default_rng(1)
    return pd.DataFrame({"lead_id": range(n), "status": status, "source": rng.choice(["Web", "Partner"], n)})


def test_refuses_to_train_below_40_of_either_and_says_how_many_it_found():
    with pytest.raises(InsufficientDataError) as caught:
        train_model(closed(39, 120, open_=500), label="status", features=["source"])
    assert "at least 40 qualified and 40 disqualified" in str(caught.value)
    assert "found 39 qualified and 120 disqualified" in str(caught.value)
    with pytest.raises(InsufficientDataError, match="found 41 qualified and 12 disqualified"):
        train_model(closed(41, 12), label="status", features=["source"])
    _, report = train_model(closed(40, 40, open_=30), label="status", features=["source"])
    assert report["n_qualified"] == 40 and report["n_disqualified"] == 40


def test_time_column_validates_on_the_most_recent_20_percent(trained):
    leads, _, _, report = trained
    validation = report["validation"]
    n = len(leads)
    assert validation["n_validation"] == math.ceil(0.2 * n)
    assert validation["n_train"] == n - math.ceil(0.2 * n)
    assert validation["method"].startswith("time holdout")
    cut = leads["created_on"].sort_values().iloc[n - math.ceil(0.2 * n)]
    assert pd.Timestamp(validation["split_at"]) == cut.tz_localize("UTC")
    assert sum(report["confusion_matrix"].values()) == validation["n_validation"]


def test_the_time_holdout_really_is_the_newest_leads():
    # Partner leads qualified until recently and stopped qualifying in the newest 20%: only a
    # validation on the newest leads sees the model fail; cross-validation mixes old and new.
    n = 500
    rng = np.random.default_rng(11)
    created = pd.date_range("2025-01-01", periods=n, freq="D")
    partner = rng.random(n) < 0.5
    newest = np.arange(n) >= n * 0.8
    qualified = np.where(newest, ~partner, partner) ^ (rng.random(n) < 0.1)
    leads = pd.DataFrame(
        {
            "lead_id": range(n),
            "source": np.where(partner, "Partner", "Web"),
            "status": np.where(qualified, "qualified", "disqualified"),
            "created_on": created,
        }
    )
    _, by_time = train_model(leads, label="status", features=["source"], time_column="created_on")
    _, by_cv = train_model(leads, label="status", features=["source"])
    assert by_time["auc"] < 0.2
    assert by_cv["auc"] > 0.6


def test_without_time_column_it_cross_validates_on_every_lead():
    leads, _ = simulate(600, seed=3)
    _, report = train_model(leads, label="status", features=FEATURES)
    assert report["validation"]["method"].startswith("stratified 5-fold")
    assert sum(report["confusion_matrix"].values()) == 600


def test_time_holdout_needs_both_outcomes():
    leads = closed(60, 60)
    leads["created_on"] = pd.date_range("2025-01-01", periods=120, freq="D")
    leads.loc[:, "status"] = ["disqualified"] * 60 + ["qualified"] * 60  # the newest 24 are all qualified
    with pytest.raises(InsufficientDataError, match=r"validation set.*24 qualified and 0 disqualified"):
        train_model(leads, label="status", features=["source"], time_column="created_on")


def test_report_has_every_metric_and_they_agree_with_the_confusion_matrix(trained):
    _, _, _, report = trained
    for key in (
        "auc",
        "f1",
        "threshold",
        "accuracy",
        "precision",
        "recall",
        "brier",
        "verdict",
        "verdict_text",
    ):
        assert key in report
    cm = report["confusion_matrix"]
    total = sum(cm.values())
    assert report["accuracy"] == pytest.approx((cm["tp"] + cm["tn"]) / total, abs=1e-4)
    assert report["precision"] == pytest.approx(cm["tp"] / (cm["tp"] + cm["fp"]), abs=1e-4)
    assert report["recall"] == pytest.approx(cm["tp"] / (cm["tp"] + cm["fn"]), abs=1e-4)
    assert report["f1"] == pytest.approx(2 * cm["tp"] / (2 * cm["tp"] + cm["fp"] + cm["fn"]), abs=1e-4)
    assert 0 < report["brier"] < 0.25
    assert report["verdict"] == verdict(report["auc"])[0]
    assert report["calibration"] and {"predicted", "observed"} <= set(report["calibration"][0])
    assert report["trained_at"] == NOW.isoformat()


def test_learns_a_real_signal_and_finds_none_where_there_is_none(trained):
    _, _, _, report = trained
    assert report["auc"] > 0.75
    noise, acts = simulate(1500, seed=5, signal=False)
    _, flat = train_model(noise, label="status", features=FEATURES, activities=acts, time_column="created_on")
    assert flat["auc"] < 0.62
    assert flat["verdict"] == "D"


def test_verdict_bands():
    assert [verdict(a)[0] for a in (0.95, 0.85, 0.8499, 0.75, 0.7, 0.65, 0.6, 0.5)] == list("AABBCCDD")


def test_scores_grades_and_factor_sentences_match_the_training_data(trained):
    leads, activities, model, _ = trained
    out = score_leads(model, leads, activities=activities, as_of=NOW)
    assert out.index.tolist() == leads["lead_id"].tolist()
    assert out["score"].tolist() == np.floor(out["probability"].to_numpy() * 100 + 0.5).astype(int).tolist()
    assert set(out["grade"]) <= set("ABCD")
    assert (out.loc[out["score"] >= 75, "grade"] == "A").all()
    assert (out.loc[out["score"] <= 24, "grade"] == "D").all()
    # The sentence states the qualification rate among training leads with the same source.
    referral = leads["source"] == "Employee Referral"
    rate = (leads.loc[referral, "status"] == "qualified").mean()
    overall = (leads["status"] == "qualified").mean()
    sentence = (
        f"Source = Employee Referral: {rate:.0%} of {referral.sum():,} such leads qualified"
        f" vs {overall:.0%} overall"
    )
    first = out.index[referral.to_numpy()][0]
    assert sentence in out.loc[first, "positive_factors"]
    ad = out.index[(leads["source"] == "Advertisement").to_numpy()][0]
    assert any(s.startswith("Source = Advertisement: ") for s in out.loc[ad, "negative_factors"])
    intern = out.index[(leads["job_title"] == "Intern").to_numpy()][0]
    assert any(s.startswith("Job title contains 'intern': ") for s in out.loc[intern, "negative_factors"])
    assert all(
        len(p) <= 5 and len(q) <= 5
        for p, q in zip(out["positive_factors"], out["negative_factors"], strict=True)
    )
    assert (
        out.loc[first, "factors"] == out.loc[first, "positive_factors"] + out.loc[first, "negative_factors"]
    )


def test_unseen_values_score_as_uncommon_and_blank_numbers_have_their_own_bin(trained):
    _, activities, model, _ = trained
    new = pd.DataFrame(
        {
            "lead_id": ["n1"],
            "source": ["Carrier Pigeon"],
            "job_title": [None],
            "email": [None],
            "employees": [None],
        }
    )
    out = score_leads(model, new, activities=activities.iloc[:0], as_of=NOW)
    assert 0 <= out.loc["n1", "score"] <= 100
    text = " ".join(out.loc["n1", "factors"])
    assert "Email is blank" in text or "Employees is blank" in text or "Source is an uncommon value" in text


def test_infinite_numbers_are_blank_to_the_model_as_to_the_rules():
    leads = closed(60, 60)
    rng = np.random.default_rng(3)
    employees = rng.integers(1, 5000, len(leads)).astype(float)
    employees[:70] = np.inf  # more than half: the upper quantiles would be inf or NaN edges
    employees[70:75] = -np.inf
    model, _ = train_model(leads.assign(employees=employees), label="status", features=["employees"])
    group = next(g for g in model.groups if g.name == "employees")
    assert all(np.isfinite(group.edges)) and not any(
        "inf" in level or "nan" in level for level in group.levels
    )
    out = score_leads(model, pd.DataFrame({"lead_id": ["x"], "employees": [np.inf]}))
    assert any("Employees is blank" in f for f in out.loc["x", "factors"]) or out.loc["x", "factors"] == []


def test_engagement_counts_by_type_direction_and_window():
    leads = pd.DataFrame({"lead_id": ["a", "b"], "modified_on": [NOW, NOW - pd.Timedelta(days=100)]})
    acts = pd.DataFrame(
        {
            "lead_id": ["a", "a", "a", "a", "b", "b", "zzz"],
            "activity_type": ["email", "email", "phonecall", "appointment", "email", "email", "email"],
            "direction": ["incoming", "incoming", "outgoing", None, "outgoing", "outgoing", "incoming"],
            "occurred_on": [
                NOW - pd.Timedelta(days=1),
                NOW - pd.Timedelta(days=91),  # outside a's 90-day window
                NOW - pd.Timedelta(days=3),
                NOW + pd.Timedelta(days=3),  # after the reference time
                NOW - pd.Timedelta(days=101),  # inside b's window (ends at its modified_on)
                NOW - pd.Timedelta(days=50),  # after b closed
                NOW,
            ],
        }
    )
    counts = engagement_features(leads, acts, reference=leads["modified_on"])
    assert counts.loc["a"].to_dict() == {
        "engagement_email_incoming": 1,
        "engagement_email_outgoing": 0,
        "engagement_phonecall_incoming": 0,
        "engagement_phonecall_outgoing": 1,
        "engagement_appointment": 0,
    }
    assert counts.loc["b", "engagement_email_outgoing"] == 1


def test_bad_features_and_missing_inputs_are_config_errors(trained):
    leads, activities, model, _ = trained
    with pytest.raises(
        ConfigError, match=r"unknown feature kind 'colour'.*\[features.source\]|\[features.source\].*colour"
    ):
        train_model(leads, label="status", features={"source": "colour"})
    with pytest.raises(ConfigError, match="`industry` is not in the lead data"):
        train_model(leads, label="status", features=["source", "industry"])
    with pytest.raises(ConfigError, match="`status` cannot be a feature: it is the outcome"):
        train_model(leads, label="status", features=["source", "status"])
    with pytest.raises(ConfigError, match="`created_on` is a date"):
        train_model(leads, label="status", features=["source", "created_on"])
    with pytest.raises(ConfigError, match="no label column `outcome`"):
        train_model(leads, label="outcome", features=["source"])
    with pytest.raises(ConfigError, match=r"lack the model's feature column\(s\) \['employees'\]"):
        score_leads(model, leads.drop(columns=["employees"]), activities=activities, as_of=NOW)
    with pytest.raises(ConfigError, match="learned from activities"):
        score_leads(model, leads, as_of=NOW)


def test_features_built_per_group_of_leads_train_the_same_model(trained):
    """The Spark engine's way: features built per bucket of leads, concatenated, fitted."""
    leads, activities, model, report = trained
    open_ = leads.head(30).assign(status="open", lead_id=lambda f: "open-" + f["lead_id"])
    everyone = pd.concat([leads, open_], ignore_index=True)
    buckets = everyone.index % 3
    parts = []
    for bucket in range(3):
        part = closed_leads(everyone[buckets == bucket])
        parts.append(training_features(part, activities[activities["lead_id"].isin(part["lead_id"])]))
    # Back in the order train_model sees the leads in (cross-validation folds follow row order).
    order = {lead: i for i, lead in enumerate(leads["lead_id"])}
    frame = pd.concat(parts, ignore_index=True).sort_values("lead_id", key=lambda s: s.map(order))
    assert len(frame) == len(leads) and set(engagement_columns()) <= set(frame.columns)
    again, again_report = train_on_features(
        frame.reset_index(drop=True),
        features=FEATURES,
        time_column="created_on",
        engagement=True,
        now=NOW,
    )
    np.testing.assert_array_equal(again.estimator.coef_, model.estimator.coef_)
    assert [g.levels for g in again.groups] == [g.levels for g in model.groups]
    assert again_report == report
    with pytest.raises(ConfigError, match="engagement count"):
        train_on_features(leads, features=FEATURES, engagement=True)
