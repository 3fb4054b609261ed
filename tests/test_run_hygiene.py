"""Issue 17's smaller points over real HTTP: missing columns fail the run, files are private,
abandoned runs are found by the lock, JSON output is valid."""

from __future__ import annotations

import json
import math
import sqlite3

from pipeline_support import settings_for, write_config

from jobs.cli.common import print_json
from jobs.service.connect import connect
from jobs.service.mapping import load_mappings
from jobs.service.mirror import Mirror
from jobs.service.pipeline import RunLock, lock_path_for, run_pipeline
from jobs.service.settings import ScheduleSettings
from jobs.service.status import collect_status


def test_missing_output_columns_fail_the_run_with_the_fix_and_files_are_private(sandbox, tmp_path):
    # The plain sandbox: nothing provisioned, so every output column is missing.
    settings = settings_for(write_config(tmp_path / "run", sandbox), sandbox)
    mappings = load_mappings(settings.mappings.dir, prefix="dvs")
    with connect(settings) as client, Mirror(settings.mirror.path) as mirror:
        result = run_pipeline(client, mirror, mappings, settings, jobs=["rfm"], dry_run=True)
    assert result.outcome == "failed" and not result.ok
    assert "do not exist in Dynamics" in result.error and "dvsync provision" in result.error
    assert len(result.not_provisioned) > 10

    # The mirror (and SQLite's side files), its folder, the lock and the plan CSV hold personal data.
    directory = tmp_path / "run"
    for path in (directory / "mirror.sqlite", result.plan_csv, lock_path_for(directory / "mirror.sqlite")):
        if path.exists():
            assert oct(path.stat().st_mode & 0o777) == "0o600", path
    assert oct(result.plan_csv.parent.stat().st_mode & 0o777) == "0o700"


def test_a_run_killed_in_another_pod_is_recognised_by_the_free_lock(tmp_path):
    path = tmp_path / "mirror.sqlite"
    with Mirror(path) as mirror:
        run_id = mirror.start_run("run", jobs=["rfm"])
    # It ran in a pod that is gone: another hostname, pid 1 (alive here, as this host's init).
    with sqlite3.connect(path) as db:
        db.execute("UPDATE runs SET host = 'dvsync-7f9c-old-pod', pid = 1 WHERE run_id = ?", (run_id,))
    with Mirror(path) as mirror:
        status = collect_status(mirror, ScheduleSettings(sets={}), lock=RunLock(lock_path_for(path)))
    (run,) = status["runs"]
    assert status["running"] is None and run["outcome"] == "interrupted"


def test_json_output_is_valid_for_any_parser(capsys):
    print_json({"age_minutes": math.nan, "share": [1.0, math.inf], "ok": True})
    text = capsys.readouterr().out
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"age_minutes": None, "share": [1.0, None], "ok": True}
