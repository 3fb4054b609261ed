"""The Spark engine gives the pandas engine's answers (local[2], the small sandbox seed).

One Spark session for the whole test session (on one pytest-xdist worker: the `spark` group).
The pandas engine and the Spark engine each run the whole pipeline once, as a dry run on the same
mirror and clock, so the write-back plans can be compared item for item; the Spark engine trains
its own lead model there. The lake export is checked to give Spark the same canonical tables as
the mirror: the jobs are functions of those tables, so a second whole run from the lake would only
repeat the first (it doubled this module's time).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SPARK_CONF
from pipeline_support import (  # noqa: F401 - fixtures
    provisioned_template,
    psandbox,
    settings_for,
    write_config,
)

from connector.sandbox.lake_export import export_lake
from jobs.customers.clv import fit_bgnbd, fit_gamma_gamma, summarize
from jobs.customers.clv_models import fit_bgnbd_arrays, fit_gamma_gamma_arrays, group_rows
from jobs.customers.orders import prepare_orders
from jobs.engines import spark_scoring
from jobs.engines.frames import restore
from jobs.leads.scoring import load_model
from jobs.leads.scoring import model as model_code
from jobs.service.connect import connect
from jobs.service.engine_run import engine_tables
from jobs.service.mapping import load_mappings
from jobs.service.mirror import Mirror
from jobs.service.pipeline import run_pipeline

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 6, 1, 9, 30, tzinfo=UTC)
JOBS = ["scoring", "duplicates", "rfm", "clv"]
PANDAS_ONLY = {"seconds", "incremental", "reused_from_run", "computed_message", "rescored"}

pytestmark = pytest.mark.xdist_group("spark")


@pytest.fixture(scope="session")
def delta_lake(provisioned_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """A Delta lake export of the provisioned seed (each test's sandbox is a copy of it)."""
    return export_lake(provisioned_template, tmp_path_factory.mktemp("lake") / "delta", layout="delta")


def _plan(result) -> pd.DataFrame:
    plan = result.plan.astype({"new_value": object, "old_value": object})
    plan = plan.assign(new_value=plan["new_value"].map(repr), old_value=plan["old_value"].map(repr))
    return plan.sort_values(["table_name", "record_id", "column_name"], ignore_index=True)


def _run(settings, mappings, mirror, engine: str, **spark_settings):
    settings.engine.kind = engine
    settings.engine.spark.master = "local[2]"
    settings.engine.spark.conf = SPARK_CONF
    for key, value in spark_settings.items():
        setattr(settings.engine.spark, key, value)
    with connect(settings) as client:
        result = run_pipeline(client, mirror, mappings, settings, jobs=JOBS, dry_run=True, clock=lambda: NOW)
    assert result.ok, result.error
    return result


def _outcome(result, job):
    return next(o for o in result.jobs if o.job == job)


def test_both_engines_plan_the_same_writes_from_the_mirror_and_from_lake_exports(
    spark,
    psandbox,  # noqa: F811
    delta_lake,
    tmp_path,
):
    config = write_config(tmp_path / "cfg", psandbox, tables=None)
    settings = settings_for(config, psandbox)
    mappings = load_mappings(settings.mappings.dir, prefix="dvs")
    models = Path(settings.mirror.path).parent / "models" / "lead-scoring"
    with Mirror(settings.mirror.path) as mirror:
        pandas_run = _run(settings, mappings, mirror, "pandas")
        pandas_model = load_model(models)
        shutil.rmtree(models)  # so the Spark engine trains its own, from its distributed feature build
        spark_run = _run(settings, mappings, mirror, "spark")
        with connect(settings) as client:
            from_mirror = engine_tables(client, mirror, mappings, settings, spark)
            # The executors' feature build is the pandas one, row for row in the pandas order.
            built = spark_scoring.training_features(from_mirror["lead"], from_mirror["activity"], spark)
            closed = model_code.closed_leads(mirror.read_frame("lead"))
            pandas_built = model_code.training_features(closed, mirror.read_entity("activity"))
            settings.engine.spark.source, settings.engine.spark.lake_path = "lake", delta_lake
            from_lake = engine_tables(client, mirror, mappings, settings, spark)
    spark_model = load_model(models)

    for job in JOBS:
        got, want = _outcome(spark_run, job), _outcome(pandas_run, job)
        details = {k: v for k, v in got.details.items() if k != "engine" or job == "scoring"}
        # The pandas engine's own bookkeeping of incremental runs (timing, caches) aside.
        wanted = {k: v for k, v in want.details.items() if k not in PANDAS_ONLY}
        assert (got.status, details) == (want.status, wanted), (job, got.message, want.message)
    expected = _plan(pandas_run)
    assert len(expected) > 1000 and set(expected["table_name"]) == {"lead", "contact", "account"}
    pd.testing.assert_frame_equal(_plan(spark_run), expected)

    # RFM cells and lead scores identical; nothing was written before, so every record travels.
    for table in ("account", "contact"):
        want = _outcome(pandas_run, "rfm").results[table]
        got = _outcome(spark_run, "rfm").results[table].reindex(want.index)
        assert (got["rfm_cell"] == want["rfm_cell"]).all() and (
            got["rfm_segment"] == want["rfm_segment"]
        ).all()
        want = _outcome(pandas_run, "clv").results[table]
        got = _outcome(spark_run, "clv").results[table].reindex(want.index)
        np.testing.assert_allclose(got["clv_predicted"], want["clv_predicted"], rtol=1e-6)
        np.testing.assert_allclose(got["p_alive"], want["p_alive"], rtol=1e-6)
        np.testing.assert_allclose(got["clv_historical"], want["clv_historical"], rtol=1e-6)
    want = _outcome(pandas_run, "scoring").results["lead"]
    got = _outcome(spark_run, "scoring").results["lead"].reindex(want.index)
    assert got["score"].astype(int).tolist() == want["score"].tolist()
    assert got["grade"].tolist() == want["grade"].tolist()

    # The model trained on the executors' feature build is the pandas engine's.
    assert len(built) > 500 and "engagement_email_incoming" in built
    # Same instants; frames.restore gives nanosecond stamps where the mirror reads microseconds.
    stamps = [c for c in built.columns if isinstance(built[c].dtype, pd.DatetimeTZDtype)]
    pandas_built = pandas_built.astype({c: built[c].dtype for c in stamps})
    pd.testing.assert_frame_equal(built, pandas_built[list(built.columns)])
    assert spark_model.engagement and pandas_model.engagement
    assert [(g.name, g.levels, g.edges) for g in spark_model.groups] == [
        (g.name, g.levels, g.edges) for g in pandas_model.groups
    ]
    assert spark_model.estimator.C == pandas_model.estimator.C
    np.testing.assert_allclose(
        spark_model.estimator.coef_, pandas_model.estimator.coef_, rtol=1e-9, atol=1e-12
    )
    np.testing.assert_allclose(
        spark_model.estimator.intercept_, pandas_model.estimator.intercept_, rtol=1e-9, atol=1e-12
    )
    assert spark_model.report["auc"] == pandas_model.report["auc"]

    # The lake export gives the jobs the mirror's canonical tables, value for value.
    assert sorted(from_lake) == sorted(from_mirror)
    for name, table in from_mirror.items():
        lake = from_lake[name]
        assert (lake.id_column, dict(lake.dtypes)) == (table.id_column, dict(table.dtypes)), name
        assert sorted(lake.frame.columns) == sorted(table.frame.columns), name
        want, got = (_collected(t, sorted(table.frame.columns)) for t in (table, lake))
        assert len(want) > 100, name
        pd.testing.assert_frame_equal(got, want, obj=name)


def _collected(table, columns: list[str]) -> pd.DataFrame:
    frame = restore(table.frame.select(*columns).toPandas(), table.dtypes)
    return frame.sort_values(table.id_column, kind="stable", ignore_index=True)


def test_the_compressed_summary_fits_the_same_parameters_as_every_customer():
    orders = pd.read_csv(ROOT / "tests/data/cdnow/CDNOW_sample.txt", sep=r"\s+", header=None)
    orders.columns = ["customer_id", "_", "order_date", "quantity", "amount"]
    orders["order_date"] = pd.to_datetime(orders["order_date"].astype(str), format="%Y%m%d")
    purchases = prepare_orders(orders.assign(status="fulfilled")).purchases
    summary = summarize(purchases, calibration_end="1997-09-30", time_unit="W")
    full = fit_bgnbd(summary)
    (x, t_x, T), counts, _ = group_rows(*(summary[c].to_numpy(float) for c in ("frequency", "recency", "T")))
    assert len(x) < len(summary) / 2  # the compression is real
    compressed = fit_bgnbd_arrays(x, t_x, T, time_unit="W", weights=counts)
    for name, value in full.params.items():
        assert compressed.params[name] == pytest.approx(value, rel=1e-6), name
    assert compressed.log_likelihood == pytest.approx(full.log_likelihood, rel=1e-9)
    spend = fit_gamma_gamma(summary)
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    (fx, fm), fcounts, _ = group_rows(
        repeat["frequency"].to_numpy(float), repeat["monetary_value"].to_numpy(float)
    )
    weighted = fit_gamma_gamma_arrays(fx, fm, weights=fcounts)
    for name, value in spend.params.items():
        assert weighted.params[name] == pytest.approx(value, rel=1e-6), name
    assert weighted.frequency_monetary_correlation == pytest.approx(spend.frequency_monetary_correlation)


def test_the_pandas_engine_never_imports_spark():
    code = (
        "import sys, jobs.service.pipeline, jobs.cli.main, jobs.engines, jobs.service.engine_run;"
        "assert not any(m.startswith(('pyspark', 'py4j')) for m in sys.modules), 'pyspark imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_a_csv_lake_export_reads_as_the_delta_one(spark, provisioned_template, delta_lake, tmp_path):  # noqa: F811
    from jobs.service.engine_inputs import read_lake_table

    delta = delta_lake
    csv = export_lake(provisioned_template, tmp_path / "csv", layout="csv")
    assert read_lake_table(csv, "nosuchtable", spark) is None
    for table, key in (("salesorder", "salesorderid"), ("email", "activityid")):
        frames = []
        for root in (delta, csv):
            frame = read_lake_table(root, table, spark).toPandas().sort_values(key, ignore_index=True)
            frames.append(frame.astype(object).where(frame.notna(), None))
        assert len(frames[0]) > 100 and list(frames[0].columns) == list(frames[1].columns)
        assert "IsDelete" in frames[0].columns
        entity_type = "customerid_entitytype" if table == "salesorder" else "regardingobjectid_entitytype"
        assert frames[0][entity_type].notna().any()
        assert frames[0].to_dict("records") == frames[1].to_dict("records"), table
