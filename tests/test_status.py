"""``dvsync status``: last runs with their counters, next scheduled runs, mirror freshness."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from pipeline_support import (  # noqa: F401 - fixtures
    provisioned_template,
    psandbox,
    write_config,
)

from jobs.cli.main import main
from jobs.service.mirror import Mirror
from jobs.service.pipeline import RunLock
from jobs.service.settings import ScheduleSettings
from jobs.service.status import collect_status


def test_status_after_a_run_lists_it_with_counters_freshness_and_next_runs(
    psandbox,  # noqa: F811
    tmp_path,
    monkeypatch,
    capsys,
):
    config = write_config(tmp_path / "st", psandbox)
    monkeypatch.setenv("DVSYNC__AUTH__TOKEN", psandbox.token)
    assert main(["--config", str(config), "run", "--jobs", "rfm", "--json"]) == 0
    run = json.loads(capsys.readouterr().out)

    assert main(["--config", str(config), "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    (last,) = status["runs"]
    assert last["run_id"] == run["run_id"] and last["outcome"] == "ok" and last["kind"] == "run"
    assert last["read"] == sum(t["read"] for t in run["tables"].values()) > 15000
    assert last["written"] == sum(t["written"] for t in run["tables"].values()) > 1000
    assert last["failed"] == 0 and last["retries"] == 0 and last["throttled"] == 0
    assert last["started_at"] <= last["finished_at"]
    assert {t["table"] for t in status["tables"]} == {"salesorder", "account", "contact"}
    assert all(t["mode"] == "delta" and t["age_minutes"] is not None for t in status["tables"])
    assert [r["set"] for r in status["next_runs"]] == sorted(
        [r["set"] for r in status["next_runs"]],
        key=lambda s: [n["set"] for n in status["next_runs"]].index(s),
    )
    assert {r["set"] for r in status["next_runs"]} == {"frequent", "nightly"}  # the defaults
    assert status["pending_writes"] == 0 and status["running"] is None

    assert main(["--config", str(config), "status"]) == 0
    text = capsys.readouterr().out
    assert "Last runs" in text and "Mirror freshness" in text and "Next scheduled runs" in text


def test_status_shows_a_running_run_and_ages_tables_by_the_clock(tmp_path):
    mirror_path = tmp_path / "mirror.sqlite"
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    with Mirror(mirror_path, clock=lambda: now) as mirror:
        run_id = mirror.start_run("run", jobs=["rfm"])
        holder = RunLock(tmp_path / "mirror.sqlite.lock")
        assert holder.acquire()
        try:
            status = collect_status(
                mirror,
                ScheduleSettings(sets={"q": {"cron": "*/15 * * * *", "jobs": ["rfm"]}}),
                lock=RunLock(tmp_path / "mirror.sqlite.lock"),
                now=now,
            )
        finally:
            holder.release()
    assert status["running"] is not None
    assert status["runs"][0]["run_id"] == run_id and status["runs"][0]["outcome"] == "running"
    assert status["next_runs"] == [
        {"set": "q", "at": "2026-06-01T12:15:00+00:00", "jobs": ["rfm"], "cron": "*/15 * * * *"}
    ]
