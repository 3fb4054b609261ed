"""Model files: versions, the JSON report beside them, refusal of mismatched files, promotion."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest

from jobs.leads.scoring import (
    ModelFileError,
    active_version,
    load_model,
    promote_if_better,
    save_model,
    score_leads,
    should_promote,
    train_model,
)

NOW = pd.Timestamp("2026-11-01T00:00:00Z")


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(7)
    n = 400
    source = rng.choice(["Web", "Partner", "Advertisement"], n)
    qualified = rng.random(n) < np.where(source == "Partner", 0.7, np.where(source == "Web", 0.4, 0.15))
    leads = pd.DataFrame(
        {
            "lead_id": [f"L{i}" for i in range(n)],
            "source": source,
            "employees": rng.integers(1, 5000, n).astype(float),
            "status": np.where(qualified, "qualified", "disqualified"),
        }
    )
    trained, _ = train_model(
        leads, label="status", features={"source": "category", "employees": "number"}, now=NOW
    )
    return trained, leads


def test_save_and_load_round_trip_with_versions_and_a_json_report(tmp_path, model):
    trained, leads = model
    first = save_model(copy.deepcopy(trained), tmp_path, now=NOW)
    second = save_model(copy.deepcopy(trained), tmp_path, now=NOW)
    assert (first, second) == ("v0001", "v0002")
    meta = json.loads((tmp_path / "lead-model-v0002.json").read_text())
    assert meta["version"] == "v0002"
    assert meta["report"]["auc"] == trained.report["auc"]
    assert meta["schema"]["features"] == {"employees": "number", "source": "category"}
    loaded = load_model(tmp_path, "v0001", features={"source": "category", "employees": "number"})
    assert loaded.version == "v0001"
    before = score_leads(trained, leads, as_of=NOW)
    after = score_leads(loaded, leads, as_of=NOW)
    pd.testing.assert_frame_equal(before, after)


def test_refuses_a_model_trained_on_other_features(tmp_path, model):
    trained, _ = model
    save_model(copy.deepcopy(trained), tmp_path)
    with pytest.raises(ModelFileError) as caught:
        load_model(tmp_path, "v0001", features={"source": "category", "industry": "category"})
    text = str(caught.value)
    assert "model v0001 was trained on other features" in text
    assert "new ['industry']" in text and "dropped ['employees']" in text and "retrain" in text
    with pytest.raises(ModelFileError, match=r"changed kind \['employees'\]"):
        load_model(tmp_path, "v0001", features={"source": "category", "employees": "category"})


def test_refuses_other_library_versions_formats_and_altered_files(tmp_path, model):
    trained, _ = model
    save_model(copy.deepcopy(trained), tmp_path)
    meta_path = tmp_path / "lead-model-v0001.json"
    meta = json.loads(meta_path.read_text())

    meta_path.write_text(json.dumps({**meta, "sklearn": "0.24.2"}))
    with pytest.raises(ModelFileError, match=r"saved with scikit-learn 0\.24\.2.*retrain"):
        load_model(tmp_path, "v0001")

    meta_path.write_text(json.dumps({**meta, "format": 99}))
    with pytest.raises(ModelFileError, match="model format 99"):
        load_model(tmp_path, "v0001")

    meta_path.write_text(json.dumps(meta))
    with (tmp_path / "lead-model-v0001.joblib").open("ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(ModelFileError, match="does not match the checksum"):
        load_model(tmp_path, "v0001")

    with pytest.raises(ModelFileError, match=r"no lead-scoring model v0009 .*saved versions: v0001"):
        load_model(tmp_path, "v0009")


def test_no_active_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelFileError, match="no active lead-scoring model"):
        load_model(tmp_path)


def test_should_promote_at_95_percent_of_the_active_auc():
    assert should_promote(0.70, None)
    assert should_promote(0.76, 0.80)  # exactly 95%
    assert not should_promote(0.7599, 0.80)
    assert should_promote(0.90, 0.80)


def test_promote_if_better_keeps_the_active_model_unless_the_new_one_is_good_enough(tmp_path, model):
    trained, _ = model
    first = copy.deepcopy(trained)
    first.report = {**trained.report, "auc": 0.80}
    decision = promote_if_better(first, tmp_path, now=NOW)
    assert decision.promoted and decision.version == "v0001" and decision.reason == "no active model yet"
    assert active_version(tmp_path) == "v0001"

    worse = copy.deepcopy(trained)
    worse.report = {**trained.report, "auc": 0.75}
    decision = promote_if_better(worse, tmp_path, now=NOW)
    assert not decision.promoted and decision.version == "v0002"
    assert (
        "kept v0001" in decision.reason
        and "0.750 is below 95% of the active model's 0.800" in decision.reason
    )
    assert active_version(tmp_path) == "v0001"
    assert (tmp_path / "lead-model-v0002.json").exists()  # kept for review

    slightly_worse = copy.deepcopy(trained)
    slightly_worse.report = {**trained.report, "auc": 0.77}
    decision = promote_if_better(slightly_worse, tmp_path, now=NOW)
    assert decision.promoted and decision.previous_version == "v0001"
    assert active_version(tmp_path) == "v0003"
    assert load_model(tmp_path).version == "v0003"
