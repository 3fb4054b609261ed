"""One Ctrl-C or SIGTERM stops any phase at its next safe point, over real HTTP against the sandbox.

Each test runs ``dvsync`` in a subprocess, waits for the phase to begin (its log line), sends the
signal with ``os.kill`` and checks: the exit code (130 SIGINT, 143 SIGTERM), the message naming
the signal, the run recorded as interrupted, and that the next run finishes the job with nothing
written twice. How quickly each phase stops is printed by ``bench/bench_stop.py``; the bound here
only tells "stopped at the next safe point" from "ignored until the end".
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pipeline_support import (  # noqa: F401 - fixtures
    provisioned_template,
    psandbox,
    write_config,
)

from jobs.service.mirror import Mirror

ROOT = Path(__file__).resolve().parents[1]
# Far above the ~1 s a stop takes, far below the tens of seconds an ignored signal would run on.
STOPPED_WITHIN = 15.0


def start(args: list[str], config: Path, token: str) -> subprocess.Popen:
    env = {**os.environ, "DVSYNC__AUTH__TOKEN": token, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "jobs.cli.main", "--config", str(config), *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop_when(proc: subprocess.Popen, marker: str, signum: int, delay: float = 0.0) -> tuple[int, str, str]:
    """Send ``signum`` once ``marker`` appears in the log; return (exit code, stdout, stderr)."""
    seen: list[str] = []
    try:
        for line in proc.stderr:  # type: ignore[union-attr]
            seen.append(line)
            if marker in line:
                break
        else:
            pytest.fail(f"never saw {marker!r}:\n{''.join(seen)[-3000:]}")
        time.sleep(delay)
        os.kill(proc.pid, signum)
        sent = time.monotonic()
        out, err = proc.communicate(timeout=60)
        assert time.monotonic() - sent < STOPPED_WITHIN
        return proc.returncode, out, "".join(seen) + err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


RUN = ["run", "--no-dry-run", "--json"]


@pytest.mark.slow
def test_each_run_phase_stops_on_one_signal_and_the_next_run_finishes_the_job(psandbox, tmp_path):  # noqa: F811
    # Accounts and contacts only, duplicates only: every phase, at a fraction of a full run's cost.
    config = write_config(
        tmp_path / "sig",
        psandbox,
        tables=["account", "contact"],
        batch_size=20,
        max_parallel=1,
        page_size=200,
    )
    token = psandbox.token
    steps = [
        # (jobs, the log line that says the phase began, signal, pause after it, phases accepted)
        ("duplicates", "run 1: sync", signal.SIGINT, 0.1, {"sync"}),
        ("duplicates", "run 2: compute", signal.SIGTERM, 0.2, {"compute"}),
        # The plan may be done before the signal lands: then the run stops before the first write.
        ("duplicates", "run 3: plan", signal.SIGINT, 0.0, {"plan", "write"}),
        ("duplicates", "record(s) written back", signal.SIGTERM, 0.0, {"write"}),
    ]
    for jobs, marker, signum, delay, phases in steps:
        code, out, err = stop_when(start([*RUN, "--jobs", jobs, "-v"], config, token), marker, signum, delay)
        assert code == 128 + signum, err[-3000:]
        name = signal.Signals(signum).name
        report = json.loads(out)
        assert report["outcome"] == "interrupted" and f"stopped by {name}" in report["error"]
        assert any(f"during {phase}" in report["error"] for phase in phases), report["error"]
        assert f"dvsync: stopped by {name}" in err and "Traceback" not in err
        if "during write" not in report["error"]:
            assert all(t["written"] == 0 for t in report["tables"].values())
    written_before = report["tables"]

    final = subprocess.run(
        [sys.executable, "-m", "jobs.cli.main", "--config", str(config), *RUN, "--jobs", "duplicates"],
        env={**os.environ, "DVSYNC__AUTH__TOKEN": token, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert final.returncode == 0, final.stderr[-3000:]
    assert json.loads(final.stdout)["outcome"] == "ok"
    assert sum(t["written"] for t in written_before.values()) > 0
    with Mirror(tmp_path / "sig" / "mirror.sqlite") as mirror:
        assert mirror.plan(status=["pending", "failed", "sending"]).empty
        audit = mirror.audit()
        runs = mirror.runs(10)
    # dvs_scoredon is rewritten on purpose whenever another result of the record changes.
    written = audit[(audit["outcome"] == "written") & (audit["column_name"] != "dvs_scoredon")]
    keys = list(zip(written["table_name"], written["record_id"], written["column_name"], strict=True))
    assert len(keys) == len(set(keys))  # nothing written twice
    assert list(runs["outcome"])[::-1] == ["interrupted"] * 4 + ["ok"]


def test_provision_stops_between_columns_publishes_them_and_the_next_one_creates_the_rest(sandbox, tmp_path):
    config = write_config(tmp_path / "prov", sandbox)
    code, out, err = stop_when(
        start(["-v", "provision", "--json"], config, sandbox.token), "created column", signal.SIGINT
    )
    assert code == 130, err[-3000:]
    first = json.loads(out)
    assert first["stopped"] and 0 < first["created"] < 30 and first["published"]
    assert "provision stopped by SIGINT" in err and "Traceback" not in err
    rest = subprocess.run(
        [sys.executable, "-m", "jobs.cli.main", "--config", str(config), "provision", "--json"],
        env={**os.environ, "DVSYNC__AUTH__TOKEN": sandbox.token, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rest.returncode == 0, rest.stderr[-3000:]
    second = json.loads(rest.stdout)
    created_first = {(a["table"], a["column"]) for a in first["actions"] if a["status"] == "created"}
    created_then = {(a["table"], a["column"]) for a in second["actions"] if a["status"] == "created"}
    assert created_first and created_then and not created_first & created_then
    assert created_first | created_then == {(a["table"], a["column"]) for a in second["actions"]}


def test_sync_command_stops_on_sigterm_and_the_next_sync_resumes(sandbox, tmp_path):
    config = write_config(tmp_path / "sync", sandbox, page_size=500)
    code, _, err = stop_when(start(["-v", "sync"], config, sandbox.token), "syncing", signal.SIGTERM, 0.5)
    assert code == 143, err[-3000:]
    assert "sync stopped by SIGTERM" in err and "Traceback" not in err
    again = subprocess.run(
        [sys.executable, "-m", "jobs.cli.main", "--config", str(config), "sync", "--json"],
        env={**os.environ, "DVSYNC__AUTH__TOKEN": sandbox.token, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr[-3000:]
