"""Lead scoring on the sandbox's seed data: the model and the shipped rules find its real signal.

The seed generator plants a known relation between lead attributes, engagement (activities
regarding the lead) and qualification; a model trained on the closed leads, and the default rules,
must recover it. Dataverse columns are mapped to the canonical names here the way the lead and
activity mappings do (choice values to their labels, statecode to open/qualified/disqualified).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from connector.sandbox import seed
from connector.sandbox.seed import OPTION_LABELS
from jobs.leads.scoring import load_rules, score_leads, score_with_rules, train_model, trend

NOW = datetime(2026, 11, 1, tzinfo=UTC)
RULES = "mappings/scoring.toml"
# Choice labels as the sandbox serves them, so the frame looks like what the mappings produce.
SOURCES = OPTION_LABELS["lead"]["leadsourcecode"]
TIMEFRAMES = OPTION_LABELS["lead"]["purchasetimeframe"]
RATINGS = OPTION_LABELS["lead"]["leadqualitycode"]
LEAD_STATES = {0: "open", 1: "qualified", 2: "disqualified"}
ACTIVITY_STATES = {0: "open", 1: "completed", 2: "canceled", 3: "scheduled"}


def canonical(tables: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    lead = tables["lead"]
    leads = pd.DataFrame(
        {
            "lead_id": lead["leadid"],
            "source": lead["leadsourcecode"].map(SOURCES),
            "industry": lead["industrycode"].astype("string"),
            "employees": pd.to_numeric(lead["numberofemployees"], errors="coerce"),
            "revenue": pd.to_numeric(lead["revenue"], errors="coerce"),
            "budget": pd.to_numeric(lead["budgetamount"], errors="coerce"),
            "purchase_timeframe": lead["purchasetimeframe"].map(TIMEFRAMES),
            "rating": lead["leadqualitycode"].map(RATINGS),
            "job_title": lead["jobtitle"],
            "email": lead["emailaddress1"],
            "phone": lead["telephone1"],
            "country": lead["address1_country"],
            "status": lead["statecode"].map(LEAD_STATES),
            "created_on": lead["createdon"],
            "modified_on": lead["modifiedon"],
        }
    )
    parts = []
    for table in ("email", "phonecall", "appointment"):
        frame = tables[table]
        frame = frame[frame["regardingobjecttypecode"] == "lead"]
        direction = (
            frame["directioncode"].map({True: "outgoing", False: "incoming"})
            if "directioncode" in frame.columns
            else None
        )
        parts.append(
            pd.DataFrame(
                {
                    "activity_id": frame["activityid"],
                    "activity_type": table,
                    "lead_id": frame["regardingobjectid"],
                    # As mappings/*.toml read it: the actual end of an e-mail or call (none until
                    # it is completed), the scheduled start of an appointment.
                    "occurred_on": frame["scheduledstart" if table == "appointment" else "actualend"],
                    "direction": direction,
                    "status": frame["statecode"].map(ACTIVITY_STATES),
                }
            )
        )
    return leads, pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def sandbox():
    data = seed.generate("small", 0, now=NOW, scale=0.2)
    return canonical(data.tables)


def test_the_model_learns_the_sandbox_signal_and_engagement_adds_to_it(sandbox):
    leads, activities = sandbox
    model, report = train_model(leads, label="status", time_column="created_on", activities=activities)
    assert report["n_qualified"] >= 40 and report["n_disqualified"] >= 40
    assert report["validation"]["method"].startswith("time holdout")
    assert report["auc"] > 0.7, report
    _, without = train_model(leads, label="status", time_column="created_on")
    assert report["auc"] > without["auc"]

    open_leads = leads[leads["status"] == "open"]
    scored = score_leads(model, open_leads, activities=activities, as_of=NOW)
    assert len(scored) == len(open_leads)
    assert scored["grade"].nunique() >= 3  # the scores spread over the grades
    assert scored["positive_factors"].map(len).gt(0).mean() > 0.9


def test_the_shipped_rules_rank_sandbox_leads_better_than_chance(sandbox):
    leads, activities = sandbox
    rules = load_rules(RULES)
    closed = leads[leads["status"] != "open"]
    # Score each closed lead as of its own closing: shift its activities so that closing is NOW.
    shift = NOW - closed.set_index("lead_id")["modified_on"]
    shifted = activities[activities["lead_id"].isin(closed["lead_id"])].copy()
    shifted["occurred_on"] = shifted["occurred_on"] + shifted["lead_id"].map(shift)
    scored = score_with_rules(closed, rules, as_of=NOW, activities=shifted)
    auc = roc_auc_score(closed["status"].eq("qualified"), scored["raw_points"])
    assert auc > 0.68, auc

    open_leads = leads[leads["status"] == "open"]
    # Without new activity (upcoming meetings dropped too), behaviour points fade: nobody
    # improves, some decline.
    past = activities[activities["occurred_on"] <= NOW]
    now_scores = score_with_rules(open_leads, rules, as_of=NOW, activities=past)
    later = score_with_rules(open_leads, rules, as_of=NOW + pd.Timedelta(days=45), activities=past)
    moves = trend(later["score"], now_scores["score"])
    assert "Improving" not in set(moves)
    assert (moves == "Declining").any()
