"""``dvsync rollback``: restores what a run overwrote, refuses values changed since unless forced."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from pipeline_support import (  # noqa: F401 - fixtures
    patch,
    provisioned_template,
    psandbox,
    read_columns,
    settings_for,
    write_config,
)

from connector.sandbox.update_log import update_counts
from jobs.cli.main import main
from jobs.service.connect import connect
from jobs.service.mapping import load_mappings
from jobs.service.mirror import Mirror
from jobs.service.pipeline import FAULT_ENV, run_pipeline
from jobs.service.settings import ScheduleSettings
from jobs.service.status import collect_status

ROOT = Path(__file__).resolve().parents[1]

SEGMENT = "dvs_customersegment"
RECENCY = "dvs_rfmrecency"


def test_rollback_restores_old_values_refuses_changed_ones_and_force_restores_them(
    psandbox,  # noqa: F811
    tmp_path,
    monkeypatch,
    capsys,
):
    config = write_config(tmp_path / "rb", psandbox)
    settings = settings_for(config, psandbox)
    mappings = load_mappings(settings.mappings.dir, prefix="dvs")
    with connect(settings) as client, Mirror(settings.mirror.path) as mirror:
        run = run_pipeline(client, mirror, mappings, settings, jobs=["rfm"])
    assert run.ok
    accounts = read_columns(psandbox, "accounts", [SEGMENT, RECENCY])
    changed = next(rid for rid, v in accounts.items() if v[SEGMENT])
    patch(psandbox, "accounts", changed, {SEGMENT: "Edited by a salesperson"})

    monkeypatch.setenv("DVSYNC__AUTH__TOKEN", psandbox.token)
    code = main(["--config", str(config), "rollback", str(run.run_id), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1  # something was refused
    assert report["refused"] == 1
    assert report["refusals"][0]["record_id"] == changed
    assert report["refusals"][0]["dynamics_has"] == "Edited by a salesperson"
    assert report["restored"] == len(run.plan) - 1
    after = read_columns(psandbox, "accounts", [SEGMENT, RECENCY])
    assert after[changed] == {SEGMENT: "Edited by a salesperson", RECENCY: None}
    assert all(v[SEGMENT] is None and v[RECENCY] is None for rid, v in after.items() if rid != changed)

    with Mirror(settings.mirror.path) as mirror:
        audit = mirror.audit(report["run_id"])
        assert set(audit["outcome"]) == {"restored", "refused"}
        assert mirror.run(report["run_id"])["kind"] == "rollback"

    # A rollback is a run like any other: undoing it puts the run's values back.
    assert main(["--config", str(config), "rollback", str(report["run_id"]), "--json"]) == 0
    undone = json.loads(capsys.readouterr().out)
    assert undone["restored"] == report["restored"]
    assert read_columns(psandbox, "accounts", [SEGMENT, RECENCY]) == {
        **accounts,
        changed: {**accounts[changed], SEGMENT: "Edited by a salesperson"},
    }
    # ... and is rolled back once: nothing of it is left to restore.
    assert main(["--config", str(config), "rollback", str(report["run_id"])]) == 1
    assert "already rolled back" in capsys.readouterr().err

    # Rolling the first run back again touches only what its first rollback left: the refused
    # value (forced now). The values the rollback of the rollback put back are another run's
    # writes: refused per value, never blanked.
    code = main(["--config", str(config), "rollback", str(run.run_id), "--force", "--json"])
    forced = json.loads(capsys.readouterr().out)
    assert code == 0 and forced["refused"] == 0 and forced["restored"] == 1
    assert forced["already_restored"] == report["restored"]
    after = read_columns(psandbox, "accounts", [SEGMENT, RECENCY])
    assert after == {**accounts, changed: {SEGMENT: None, RECENCY: accounts[changed][RECENCY]}}
    with Mirror(settings.mirror.path) as mirror:
        (last,) = collect_status(mirror, ScheduleSettings(sets={}), limit=1)["runs"]
    assert last["kind"] == "rollback" and last["outcome"] == "ok"


def test_rolling_back_a_run_refuses_what_a_later_run_rewrote_and_lists_all_refusals(
    psandbox,  # noqa: F811
    tmp_path,
    monkeypatch,
    capsys,
):
    config = write_config(tmp_path / "rb", psandbox)
    settings = settings_for(config, psandbox)
    mappings = load_mappings(settings.mappings.dir, prefix="dvs")
    with connect(settings) as client, Mirror(settings.mirror.path) as mirror:
        first = run_pipeline(client, mirror, mappings, settings, jobs=["rfm"])
        assert first.ok
        # Someone blanks the segments; the next run writes them again.
        blanked = [rid for rid, v in read_columns(psandbox, "accounts", [SEGMENT]).items() if v[SEGMENT]][:30]
        for rid in blanked:
            patch(psandbox, "accounts", rid, {SEGMENT: None})
        second = run_pipeline(client, mirror, mappings, settings, jobs=["rfm"])
        assert second.ok and second.tables["account"]["written"] == 30
    before = read_columns(psandbox, "accounts", [SEGMENT])

    monkeypatch.setenv("DVSYNC__AUTH__TOKEN", psandbox.token)
    assert main(["--config", str(config), "rollback", str(first.run_id)]) == 1
    text = capsys.readouterr().out
    # The second run's 30 segments are refused, not blanked; the table shows 20 and says the rest.
    assert read_columns(psandbox, "accounts", [SEGMENT]) == {
        rid: (v if rid in blanked else {SEGMENT: None}) for rid, v in before.items()
    }
    # 30 segments and their 30 "scored on" stamps: 20 shown, the rest counted, all in the CSV.
    assert "... and 40 more; every refusal is listed in" in text
    csv = Path(text.split("every refusal is listed in", 1)[1].split()[0])
    refused = pd.read_csv(csv)
    assert sorted(refused["record_id"]) == sorted(blanked * 2)
    assert set(refused["reason"]) == {f"rewritten by run {second.run_id} since"}
    assert oct(csv.stat().st_mode & 0o777) == "0o600"
    with Mirror(settings.mirror.path) as mirror:
        (last,) = collect_status(mirror, ScheduleSettings(sets={}), limit=1)["runs"]
    # The real outcome: values restored, some refused, none failed.
    assert last["outcome"] == "partial" and last["failed"] == 0 and "60 refused" in last["error"]


def test_a_rollback_killed_midway_resumes_without_force(psandbox, tmp_path):  # noqa: F811
    config = write_config(tmp_path / "rb", psandbox, batch_size=100, max_parallel=1)
    settings = settings_for(config, psandbox)
    mappings = load_mappings(settings.mappings.dir, prefix="dvs")
    with connect(settings) as client, Mirror(settings.mirror.path) as mirror:
        run = run_pipeline(client, mirror, mappings, settings, jobs=["rfm"])
    assert run.ok
    records = run.plan["record_id"].nunique()
    # Killed right after the 3rd chunk was sent, before it was audited: Dynamics has 300 values
    # restored, the mirror knows of 200.
    killed = dvsync(config, psandbox.token, "rollback", str(run.run_id), fault="rollback-sent:3")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    with Mirror(settings.mirror.path) as mirror:
        assert (mirror.audit(kind_run_id(mirror))["outcome"] == "restored").sum() > 0

    resumed = dvsync(config, psandbox.token, "rollback", str(run.run_id), "--json")
    assert resumed.returncode == 0, resumed.stdout[:3000]
    report = json.loads(resumed.stdout)
    assert report["refused"] == 0 and report["failed"] == 0
    assert report["confirmed_after_interruption"] > 0  # the sent, unaudited chunk
    assert all(
        v == {SEGMENT: None, RECENCY: None}
        for v in read_columns(psandbox, "accounts", [SEGMENT, RECENCY]).values()
    )
    # Every record updated exactly twice on the server: the run's write and one restore.
    counts = update_counts(psandbox.data_dir)
    assert len(counts) == records and set(counts.values()) == {2}


def kind_run_id(mirror: Mirror) -> int:
    return int(mirror.runs(1, kind="rollback")["run_id"].iloc[0])


def dvsync(config: Path, token: str, *args: str, fault: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "DVSYNC__AUTH__TOKEN": token, "PYTHONPATH": str(ROOT)}
    env.pop(FAULT_ENV, None)
    if fault:
        env[FAULT_ENV] = fault
    return subprocess.run(
        [sys.executable, "-m", "jobs.cli.main", "--config", str(config), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("dry_run", [True, False])
def test_rollback_of_a_run_without_writes_or_an_unknown_run_is_a_clear_error(
    psandbox,  # noqa: F811
    tmp_path,
    monkeypatch,
    capsys,
    dry_run,
):
    config = write_config(tmp_path / "rb", psandbox)
    monkeypatch.setenv("DVSYNC__AUTH__TOKEN", psandbox.token)
    if dry_run:
        settings = settings_for(config, psandbox)
        mappings = load_mappings(settings.mappings.dir, prefix="dvs")
        with connect(settings) as client, Mirror(settings.mirror.path) as mirror:
            run_id = run_pipeline(client, mirror, mappings, settings, jobs=["rfm"], dry_run=True).run_id
        expected = f"run {run_id} was a dry run"
    else:
        run_id, expected = 99, "no run 99 in the mirror"
    assert main(["--config", str(config), "rollback", str(run_id)]) == 1
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
