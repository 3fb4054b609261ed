"""An echo costs the records that echoed: a job hashes only the records changed since it computed."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from pipeline_support import patch, provisioned_template, psandbox  # noqa: F401 - fixtures
from test_incremental_runs import setup  # noqa: F401 - the fixture

from jobs.service import row_digests
from jobs.service.mirror import Mirror, TableLayout
from jobs.service.pipeline import run_pipeline
from jobs.service.row_digests import check_rows, full_rows

LAYOUT = TableLayout(
    name="lead",
    entity="lead",
    source_table="lead",
    id_column="lead_id",
    columns={
        "lead_id": "text",
        "email": "text",
        "employees": "int",
        "score_hint": "float",
        "created_on": "datetime",
        "modified_on": "datetime",
        "out_score": "float",
    },
)


def leads(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "lead_id": [f"id{i:05d}" for i in range(n)],
            "email": [None if i % 7 == 0 else f"p{i}@x.com" for i in range(n)],
            "employees": pd.array(
                [None if i % 5 == 0 else int(v) for i, v in enumerate(rng.integers(1, 900, n))]
            ),
            "score_hint": rng.random(n),
            "created_on": pd.Timestamp("2025-01-01", tz="UTC")
            + pd.to_timedelta(rng.integers(0, 10**6, n), "s"),
            "modified_on": pd.Timestamp("2025-06-01", tz="UTC"),
            "out_score": rng.random(n),
        }
    )


@pytest.fixture
def counted(monkeypatch):
    hashed: Counter[str] = Counter()
    monkeypatch.setattr(row_digests, "on_hashed", lambda table, rows: hashed.update({table: rows}))
    return hashed


def test_an_echo_of_k_records_hashes_only_those_k(tmp_path, counted):
    with Mirror(tmp_path / "m.sqlite") as mirror:
        mirror.ensure_table(LAYOUT)
        frame = leads(300)
        mirror.upsert("lead", frame)
        saved = full_rows(mirror, ["lead"])
        assert counted["lead"] == 300
        counted.clear()

        # Five records come back: a new modified_on and our own out_ value, nothing a job reads.
        echo = frame.iloc[[3, 50, 51, 120, 299]].copy()
        echo["modified_on"] = pd.Timestamp("2025-07-01", tz="UTC")
        echo["out_score"] = 0.5
        mirror.upsert("lead", echo)
        unchanged, rows = check_rows(mirror, saved, ["lead"])
        assert unchanged and counted["lead"] == 5
        # Brought up to date for the changed records only, it equals digests taken in full.
        full = full_rows(mirror, ["lead"])["lead"]["digests"]
        assert rows is not None
        assert rows["lead"]["digests"].sort_index().equals(full.sort_index())

        counted.clear()
        assert check_rows(mirror, rows, ["lead"]) == (True, rows)  # nothing since: nothing hashed
        assert counted["lead"] == 0


@pytest.mark.parametrize("scan_above", [20_000, 0])
@pytest.mark.parametrize("change", ["value", "missing", "new", "deleted"])
def test_any_change_of_what_a_job_reads_is_seen(tmp_path, counted, monkeypatch, change, scan_above):
    monkeypatch.setattr(row_digests, "SCAN_ABOVE", scan_above)  # id look-ups, or one scan
    with Mirror(tmp_path / "m.sqlite") as mirror:
        mirror.ensure_table(LAYOUT)
        frame = leads(50, seed=1)
        mirror.upsert("lead", frame)
        saved = full_rows(mirror, ["lead"])
        counted.clear()
        if change == "value":
            mirror.upsert("lead", frame.iloc[[7]].assign(employees=pd.array([12345], dtype="Int64")))
        elif change == "missing":
            mirror.upsert("lead", frame.iloc[[8]].assign(email=None))
        elif change == "new":
            mirror.upsert("lead", leads(51, seed=1).iloc[[50]])
        else:
            mirror.delete("lead", ["id00009"])
        unchanged, rows = check_rows(mirror, saved, ["lead"])
        assert not unchanged and counted["lead"] == (0 if change == "deleted" else 1)  # a gone record: none
        full = full_rows(mirror, ["lead"])["lead"]["digests"]
        assert rows is not None and rows["lead"]["digests"].sort_index().equals(full.sort_index())


def test_a_pipeline_echo_reuses_the_jobs_hashing_only_the_echoed_leads(setup, psandbox, counted):  # noqa: F811
    settings, mappings, client, mirror = setup
    jobs = ["scoring", "duplicates"]
    # One moment for the three runs: lead handling's results hold for its day (a run past midnight
    # recomputes every job of the day, rightly, and would say nothing about echoes).
    moment = datetime(2026, 12, 5, 12, tzinfo=UTC)
    first = run_pipeline(client, mirror, mappings, settings, jobs=jobs, clock=lambda: moment)
    assert first.ok, first.error
    settle = run_pipeline(
        client, mirror, mappings, settings, jobs=jobs, clock=lambda: moment
    )  # our own writes come back
    assert settle.ok, settle.error
    titles = mirror.read_frame("lead", ["job_title"]).set_index("lead_id")["job_title"].iloc[:3]
    for lead_id, title in titles.items():  # an edit that changes no value: only modifiedon moves
        patch(psandbox, "leads", lead_id, {"jobtitle": title})
    counted.clear()
    echo = run_pipeline(client, mirror, mappings, settings, jobs=jobs, clock=lambda: moment)
    assert echo.ok, echo.error
    assert echo.tables["lead"]["read"] >= 3
    by_job = {job.job: job for job in echo.jobs}
    assert "reused_from_run" in by_job["scoring"].details
    assert "reused_from_run" in by_job["duplicates"].details
    assert "reused_from_run" in by_job["lead_handling"].details
    # Scoring, duplicates and lead handling each hashed the leads that came back, and no whole table.
    assert counted["lead"] == 3 * echo.tables["lead"]["read"]
    assert counted["lead"] < mirror.count("lead")


def test_an_order_echo_reuses_rfm_and_clv_hashing_only_the_echoed_orders(setup, psandbox, counted):  # noqa: F811
    settings, mappings, client, mirror = setup
    jobs = ["rfm", "clv"]
    first = run_pipeline(client, mirror, mappings, settings, jobs=jobs)
    assert first.ok, first.error
    settle = run_pipeline(client, mirror, mappings, settings, jobs=jobs)  # our own writes come back
    assert settle.ok, settle.error
    orders = sorted(mirror.ids("salesorder"))
    for order_id in orders[:3]:  # a column RFM and CLV do not read: only modifiedon moves
        patch(psandbox, "salesorders", order_id, {"description": "amended"})
    counted.clear()
    echo = run_pipeline(client, mirror, mappings, settings, jobs=jobs)
    assert echo.ok, echo.error
    assert echo.tables["salesorder"]["read"] == 3
    assert all("reused_from_run" in job.details for job in echo.jobs)
    assert counted["salesorder"] == 2 * 3  # each job hashed the three orders, not the table
    # An order date RFM and CLV read: both recompute, from the orders as they are now.
    patch(psandbox, "salesorders", orders[0], {"datefulfilled": "2026-10-01T10:00:00Z"})
    moved = run_pipeline(client, mirror, mappings, settings, jobs=jobs)
    assert moved.ok, moved.error
    assert not any("reused_from_run" in job.details for job in moved.jobs)
    again = run_pipeline(client, mirror, mappings, settings, jobs=jobs)  # our own writes come back
    assert all("reused_from_run" in job.details for job in again.jobs)
