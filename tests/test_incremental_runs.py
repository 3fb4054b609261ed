"""Runs cost what changed: an unchanged run reuses the jobs and reads no metadata (over real HTTP)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from pipeline_support import (  # noqa: F401 - fixtures
    patch,
    provisioned_template,
    psandbox,
    settings_for,
    write_config,
)

from jobs.console.data_results import _grade_history
from jobs.service import merge_store, plan_memo
from jobs.service.connect import connect
from jobs.service.mapping import load_mappings
from jobs.service.metadata_cache import CachedMetadataClient
from jobs.service.mirror import Mirror
from jobs.service.pipeline import run_pipeline
from jobs.service.settings import CustomerValueRunSettings


@pytest.fixture
def setup(psandbox, tmp_path):  # noqa: F811 - the imported fixture
    config = write_config(tmp_path / "run", psandbox, batch_size=500, tables=None)
    settings = settings_for(config, psandbox)
    mappings = load_mappings(settings.mappings.dir, prefix="dvs")
    with connect(settings) as client, Mirror(settings.mirror.path) as mirror:
        yield settings, mappings, client, mirror


def test_an_unchanged_run_makes_one_delta_request_per_table_and_reuses_every_job(
    setup,
    psandbox,  # noqa: F811 - the imported fixture
    monkeypatch,
):
    settings, mappings, client, mirror = setup
    jobs = ["scoring", "rfm"]
    first = run_pipeline(client, mirror, mappings, settings, jobs=jobs)
    assert first.ok, first.error
    settle = run_pipeline(client, mirror, mappings, settings, jobs=jobs)  # our own writes come back
    assert settle.ok and len(settle.plan) == 0
    # The writes that came back changed no value a job reads: the jobs were not recomputed.
    assert all("reused_from_run" in job.details for job in settle.jobs if job.job in jobs)

    planned: list[str] = []  # the jobs whose results were planned (plan_memo.py)
    counting = plan_memo.plan_table
    monkeypatch.setattr(
        plan_memo, "plan_table", lambda t, r, c, o: planned.extend(r.columns) or counting(t, r, c, o)
    )
    reads: list[str] = []  # the tables read from the mirror, whole or in part
    read_frame = mirror.read_frame
    monkeypatch.setattr(
        mirror, "read_frame", lambda name, *a, **k: reads.append(name) or read_frame(name, *a, **k)
    )
    unchanged = run_pipeline(client, mirror, mappings, settings, jobs=jobs)
    assert unchanged.ok
    assert reads.count("lead") == 1  # read once: the plan takes the held values from that read
    # The reused results equal those of the settle run's empty plan: not planned again.
    assert "score" not in planned and "rfm_segment" not in planned
    assert len(unchanged.plan) == 0
    tables = len(unchanged.tables)
    # Exactly one delta request per mirrored table and nothing else: no metadata, and lead
    # handling's users, teams, memberships and queues come from the mirror's copy.
    assert unchanged.http["requests"] == tables
    for path in ("EntityDefinitions", "systemusers", "teams", "teammemberships", "queues"):
        assert path not in unchanged.http["by_path"]
    assert all(
        job.details.get("reused_from_run") == first.run_id for job in unchanged.jobs if job.job in jobs
    )
    assert mirror.results("lead", run_id=unchanged.run_id).empty  # nothing rewritten
    # The console's grade mix over time comes from each run's scoring report, reused ones too
    # (the mirror keeps the last value per lead, not a copy per run).
    history = {h["run_id"]: h for h in _grade_history(SimpleNamespace(mirror=mirror))}
    assert {first.run_id, unchanged.run_id} <= set(history)
    grades = {g: n for g, n in history[first.run_id].items() if g in ("A", "B", "C", "D")}
    assert sum(grades.values()) == len(mirror.results("lead").dropna(subset=["grade"]))
    assert {g: history[unchanged.run_id][g] for g in grades} == grades

    # An edit of a column scoring reads recomputes it; RFM's orders did not move.
    lead_id = next(iter(mirror.results("lead").index))
    patch(psandbox, "leads", lead_id, {"jobtitle": "Chief Executive Officer"})
    edited = run_pipeline(client, mirror, mappings, settings, jobs=jobs, refresh_metadata=True)
    assert edited.ok
    by_job = {job.job: job for job in edited.jobs}
    assert "reused_from_run" not in by_job["scoring"].details
    assert "reused_from_run" in by_job["rfm"].details
    assert edited.http["by_path"].get("EntityDefinitions", 0) > 0  # --refresh-metadata read them


class _Definitions:
    def __init__(self) -> None:
        self.reads = 0

    def get_table(self, name: str) -> SimpleNamespace:
        self.reads += 1
        return SimpleNamespace(logical_name=name, attributes={"leadid": 1, "dvs_score": 1})


def test_kept_definitions_are_used_while_fresh_and_complete(tmp_path):
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    with Mirror(tmp_path / "m.sqlite", clock=lambda: now[0]) as mirror:
        client = _Definitions()

        def cached(**kwargs) -> CachedMetadataClient:
            return CachedMetadataClient(client, mirror, clock=lambda: now[0], **kwargs)

        cached(needed={"lead": {"leadid"}}).get_table("lead")
        cached(needed={"lead": {"leadid", "dvs_score"}}).get_table("lead")
        assert client.reads == 1  # the second run used the mirror's copy
        cached(needed={"lead": {"leadid", "dvs_trend"}}).get_table("lead")
        assert client.reads == 2  # a mapped column the copy lacks (just provisioned): read again
        now[0] += timedelta(hours=2)
        cached().get_table("lead")
        assert client.reads == 3  # older than an hour
        cached(refresh=True).get_table("lead")
        assert client.reads == 4  # --refresh-metadata
        run = cached()
        run.get_table("lead")
        run.forget(["lead"])  # its sync failed
        cached().get_table("lead")
        assert client.reads == 5


def test_a_not_a_duplicate_ruling_regroups_though_no_table_changed(setup):
    settings, mappings, client, mirror = setup
    first = run_pipeline(client, mirror, mappings, settings, jobs=["duplicates"])
    assert first.ok, first.error
    echo = run_pipeline(client, mirror, mappings, settings, jobs=["duplicates"])  # our writes come back
    assert sum(t["read"] for t in echo.tables.values()) > 0
    # The records that came back differ only in dvsync's own columns and modifiedon: reused.
    assert echo.jobs[0].details.get("reused_from_run") == first.run_id
    again = run_pipeline(client, mirror, mappings, settings, jobs=["duplicates"])
    assert "reused_from_run" in again.jobs[0].details
    kept = mirror.results("lead").dropna(subset=["suggested_master"])
    masters = kept["suggested_master"].str.lower()
    sizes = masters.map(masters.value_counts())
    pairs = kept[(kept.index != masters) & sizes.eq(2)]  # a group of two: the ruling splits it
    record, master = pairs.index[0], pairs["suggested_master"].iloc[0]
    merge_store.record_decision(mirror, "lead", record, master, "not_duplicate")
    ruled = run_pipeline(client, mirror, mappings, settings, jobs=["duplicates"])
    assert ruled.ok, ruled.error
    assert "reused_from_run" not in ruled.jobs[0].details  # the ruling is an input of the job
    after = mirror.results("lead")
    assert str(after["suggested_master"].get(record) or "").lower() != str(master).lower()


def test_customer_value_recomputes_on_every_order_change_unless_nightly(setup, psandbox):  # noqa: F811
    settings, mappings, client, mirror = setup
    day = datetime(2026, 11, 2, 8, tzinfo=UTC)
    nightly = settings.model_copy(
        update={
            "jobs": settings.jobs.model_copy(
                update={"customer_value": CustomerValueRunSettings(recompute="nightly")}
            )
        }
    )

    def run(config, at):
        result = run_pipeline(client, mirror, mappings, config, jobs=["rfm"], clock=lambda: at)
        assert result.ok, result.error
        return result.jobs[0], result

    _, computed = run(nightly, day)
    run(nightly, day)  # our own writes come back
    orders = sorted(mirror.ids("salesorder"))
    patch(psandbox, "salesorders", orders[0], {"datefulfilled": "2026-10-01T10:00:00Z"})
    deferred, result = run(nightly, day + timedelta(hours=2))
    assert deferred.status == "skipped" and deferred.details["computed_in_run"] == computed.run_id
    assert not result.plan["column_name"].str.contains("rfm").any()  # nothing from stale values
    next_day, _ = run(nightly, day + timedelta(days=1))
    assert next_day.status == "ok" and "reused_from_run" not in next_day.details
    # The default: any change of what RFM reads recomputes at once, so results are never stale.
    patch(psandbox, "salesorders", orders[1], {"datefulfilled": "2026-10-02T10:00:00Z"})
    at_once, _ = run(settings, day + timedelta(days=1, hours=1))
    assert at_once.status == "ok" and "reused_from_run" not in at_once.details
