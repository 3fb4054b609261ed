"""``[engine]`` settings and the changed-values rule of the Spark engine (no Spark needed)."""

from __future__ import annotations

import pandas as pd
import pytest

from core.errors import ConfigError
from jobs.engines.spark import changed_rows
from jobs.service.mapping import load_mappings
from jobs.service.settings_load import load_settings


def _load(tmp_path, text: str):
    path = tmp_path / "config.toml"
    path.write_text('[dataverse]\nurl = "https://contoso.crm4.dynamics.com"\n' + text, encoding="utf-8")
    return load_settings(path, env={})


def test_the_engine_defaults_to_pandas_and_reads_spark_settings(tmp_path):
    assert _load(tmp_path, "").engine.kind == "pandas"
    settings = _load(
        tmp_path,
        '[engine]\nkind = "Spark"\n[engine.spark]\nmaster = "local[4]"\nsource = "lake"\n'
        'lake_path = "/lake"\n[engine.spark.conf]\n"spark.sql.shuffle.partitions" = 64\n',
    )
    assert settings.engine.kind == "spark"
    assert settings.engine.spark.master == "local[4]"
    assert settings.engine.spark.conf == {"spark.sql.shuffle.partitions": "64"}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[engine]\nkind = "dask"\n', "engine.kind"),
        ('[engine.spark]\nsource = "lake"\n', "lake_path"),
        ('[engine.spark]\nmastr = "local"\n', "master"),
    ],
)
def test_a_bad_engine_setting_says_where_and_what(tmp_path, text, words):
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, text)
    assert words in str(info.value) and "config.toml" in str(info.value)


def test_only_rows_whose_written_value_would_change_travel_to_the_driver():
    outputs = load_mappings("mappings", prefix="dvs").outputs_for("lead")
    results = pd.DataFrame(
        {"score": [70, 41, 12], "grade": ["A", "C", None], "sales_ready": [True, False, False]},
        index=["a", "b", "c"],
    )
    held = pd.DataFrame(
        {"out_score": [70, 40, 12], "out_grade": ["A", "C", "D"], "out_sales_ready": [True, False, False]},
        index=["a", "b", "c"],
    )
    # b's score moved, c's grade was cleared; a is what Dynamics holds already.
    assert changed_rows(results, held, outputs).tolist() == [False, True, True]
    # An output whose column Dynamics lacks (not provisioned) is never a change.
    assert not changed_rows(results[["score"]], held[["out_grade"]], outputs).any()
