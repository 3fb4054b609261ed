"""Incremental scoring equals scoring every open lead, on random change sets.

After each change set (edited fit columns, edits of ``modified_on`` only, leads closed, reopened,
added and deleted, activities added, deleted and moved to another lead) the run with the last
run's caches and results must give exactly the results of a run without them, while scoring only
the open leads whose row or activities changed.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_scoring_sandbox import NOW, canonical

from connector.sandbox import seed
from core.errors import ConfigError
from jobs.service.compute import run_scoring
from jobs.service.scoring_rows import activities_for

RULES = Path(__file__).resolve().parents[1] / "mappings" / "scoring.toml"


@pytest.fixture(scope="module")
def data():
    return canonical(seed.generate("small", 1, now=NOW, scale=0.2).tables)


def change(
    leads: pd.DataFrame, acts: pd.DataFrame, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    leads, acts = leads.copy(), acts.copy()
    n = len(leads)
    picked = rng.choice(n, size=24, replace=False)
    edit, stamp, close, reopen, gone, copy = np.array_split(picked, 6)
    for position in edit:
        column = rng.choice(["employees", "rating", "job_title", "source", "budget"])
        value = {"employees": 5000, "rating": "Hot", "job_title": "CEO", "source": "Partner", "budget": 1e6}
        leads.iat[position, leads.columns.get_loc(column)] = value[column]
    leads.iloc[stamp, leads.columns.get_loc("modified_on")] = pd.Timestamp(NOW)
    leads.iloc[close, leads.columns.get_loc("status")] = "qualified"
    leads.iloc[reopen, leads.columns.get_loc("status")] = "open"
    copies = leads.iloc[copy].copy()
    copies["lead_id"] = [f"00000000-0000-4000-8000-{rng.integers(1 << 40):012x}" for _ in range(len(copies))]
    leads = pd.concat([leads.drop(leads.index[gone]), copies], ignore_index=True)
    moved = rng.choice(len(acts), size=6, replace=False)
    acts.iloc[moved, acts.columns.get_loc("lead_id")] = leads["lead_id"].sample(6, random_state=1).to_numpy()
    added = acts.sample(4, random_state=int(rng.integers(1 << 30))).copy()
    added["activity_id"] = [f"10000000-0000-4000-8000-{i:012x}" for i in range(len(added))]
    added["lead_id"] = leads["lead_id"].sample(4, random_state=2).to_numpy()
    acts = pd.concat([acts.drop(acts.index[rng.choice(len(acts), size=5, replace=False)]), added])
    return leads, acts.reset_index(drop=True)


def test_scoring_only_the_changed_leads_equals_scoring_them_all(data, tmp_path):
    leads, acts = data
    models = tmp_path / "models"
    caches: dict = {}
    last = run_scoring(leads, acts, rules_path=RULES, model_dir=models, now=NOW, caches=caches)
    assert last.details["engine"] == "model" and last.details["rescored"] == last.details["scored"]
    rng = np.random.default_rng(7)
    for _ in range(3):
        leads, acts = change(leads, acts, rng)
        incremental = run_scoring(
            leads, acts, rules_path=RULES, model_dir=models, now=NOW, caches=caches, kept=last.results["lead"]
        )
        full = run_scoring(leads, acts, rules_path=RULES, model_dir=models, now=NOW)
        pd.testing.assert_frame_equal(incremental.results["lead"], full.results["lead"])
        assert 0 < incremental.details["rescored"] < incremental.details["scored"] / 10
        last = incremental
    # Nothing changed: nothing scored; another day (decay): all of them.
    same = run_scoring(
        leads, acts, rules_path=RULES, model_dir=models, now=NOW, caches=caches, kept=last.results["lead"]
    )
    assert same.details["rescored"] == 0
    pd.testing.assert_frame_equal(same.results["lead"], last.results["lead"])
    later = NOW + timedelta(days=1)
    next_day = run_scoring(
        leads, acts, rules_path=RULES, model_dir=models, now=later, caches=caches, kept=same.results["lead"]
    )
    assert next_day.details["rescored"] == next_day.details["scored"]


def test_the_changed_leads_are_scored_with_their_own_activities_and_any_invalid_one(data, tmp_path):
    leads, acts = data
    models = tmp_path / "models"
    caches: dict = {}
    last = run_scoring(leads, acts, rules_path=RULES, model_dir=models, now=NOW, caches=caches)
    some = leads[leads["lead_id"].isin(acts["lead_id"])].head(3)
    picked = activities_for(acts, some)
    assert set(picked["lead_id"]) == set(some["lead_id"]) and 0 < len(picked) < len(acts)
    # An activity of no lead with a type scoring does not know: the changed leads alone must fail
    # as scoring them all does, not pass because that activity is not theirs.
    edited = leads.copy()
    edited.loc[edited.index[:2], "job_title"] = "CEO"
    odd = acts.head(1).assign(
        lead_id=None, activity_type=" Fax ", activity_id="20000000-0000-4000-8000-000000000001"
    )
    bad = pd.concat([acts, odd], ignore_index=True)
    assert len(activities_for(bad, some)) == len(picked) + 1
    with pytest.raises(ConfigError, match="fax") as full:
        run_scoring(edited, bad, rules_path=RULES, model_dir=models, now=NOW)
    with pytest.raises(ConfigError, match="fax") as incremental:
        run_scoring(
            edited, bad, rules_path=RULES, model_dir=models, now=NOW, caches=caches, kept=last.results["lead"]
        )
    assert str(incremental.value) == str(full.value)
