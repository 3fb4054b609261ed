"""The scoring entry points: engine choice, the combined score, and trend against the last run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jobs.leads.scoring import TREND_CODES, choose_engine, parse_rules, score, train_model, trend

AS_OF = pd.Timestamp("2026-06-30T00:00:00Z")
RULES = parse_rules(
    "[score]\nsales_ready = 55\n[grades]\nA = [90, 100]\nB = [55, 89]\nC = [1, 54]\nD = [0, 0]\n"
    '[[rule]]\ncolumn = "source"\nop = "equals"\nvalue = "Partner"\npoints = 60\n',
    "mappings/scoring.toml",
)


def history(qualified: int, disqualified: int) -> pd.DataFrame:
    n = qualified + disqualified + 10
    rng = np.random.default_rng(2)
    return pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(n)],
            "source": rng.choice(["Partner", "Web"], n),
            "status": ["qualified"] * qualified + ["disqualified"] * disqualified + ["open"] * 10,
        }
    )


def test_trend_bands():
    current = pd.Series({"a": 60, "b": 64, "c": 50, "d": 41, "e": 70, "f": 30}, dtype=float)
    previous = pd.Series({"a": 55, "b": 60, "c": 50, "d": 46, "f": np.nan, "gone": 10}, dtype=float)
    result = trend(current, previous)
    assert result.to_dict() == {
        "a": "Improving",  # +5
        "b": "Steady",  # +4
        "c": "Steady",
        "d": "Declining",  # -5
        "e": "Not enough info",  # new lead
        "f": "Not enough info",  # no previous score
    }
    assert trend(current, None).eq("Not enough info").all()
    assert trend(current, previous, steady_band=10)["a"] == "Steady"
    assert TREND_CODES == {"Improving": 0, "Steady": 1, "Declining": 2, "Not enough info": 3}


def test_choose_engine_needs_40_of_each():
    few = choose_engine(history(39, 200))
    assert few.engine == "rules"
    assert few.reason.startswith("39 qualified and 200 disqualified leads; the model needs 40 of each")
    enough = choose_engine(history(40, 40))
    assert enough.engine == "model" and (enough.qualified, enough.disqualified) == (40, 40)


def test_score_uses_the_rules_without_a_model_and_keeps_them_beside_the_model():
    leads = history(60, 60)
    by_rules = score(leads, rules=RULES, as_of=AS_OF)
    assert set(by_rules["engine"]) == {"rules"}
    assert by_rules.loc[leads["source"].eq("Partner").to_numpy(), "score"].eq(60).all()

    model, _ = train_model(leads, label="status", features=["source"])
    by_model = score(leads, rules=RULES, as_of=AS_OF, model=model)
    assert set(by_model["engine"]) == {"model"}
    assert {"probability", "score", "grade", "positive_factors", "negative_factors", "rules_score"} <= set(
        by_model
    )
    assert by_model["rules_score"].equals(by_rules["score"])
    # The org's grade bands and sales-ready threshold from the rules file grade the model too.
    expected = pd.cut(by_model["score"], [-1, 0, 54, 89, 100], labels=["D", "C", "B", "A"]).astype(str)
    assert by_model["grade"].tolist() == expected.tolist()
    assert by_model["sales_ready"].tolist() == (by_model["score"] >= 55).tolist()


@pytest.mark.parametrize("label", ["Qualified", "DISQUALIFIED"])
def test_status_labels_are_case_insensitive(label):
    leads = history(0, 0)
    leads["status"] = label
    choice = choose_engine(leads)
    assert (choice.qualified, choice.disqualified) == (
        (len(leads), 0) if label == "Qualified" else (0, len(leads))
    )


def test_no_leads_to_score_gives_an_empty_result_from_either_engine():
    leads = history(60, 60)
    model, _ = train_model(leads, label="status", features=["source"])
    empty = leads.iloc[:0]
    by_rules = score(empty, rules=RULES, as_of=AS_OF)
    by_model = score(empty, rules=RULES, as_of=AS_OF, model=model)
    assert by_rules.empty and {"score", "grade", "factors"} <= set(by_rules)
    assert by_model.empty and {"probability", "score", "grade", "factors"} <= set(by_model)
