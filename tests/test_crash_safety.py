"""Kill ``dvsync run`` (SIGKILL) during sync, after planning and during write-back, then run again.

The sandbox runs in this process; ``dvsync run`` runs as a subprocess against it over real HTTP
and is killed at a named point by ``DVSYNC_FAULT`` (no timing involved). After the final clean run,
Dynamics must hold exactly what an uninterrupted run writes, every value written once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pipeline_support import (  # noqa: F401 - fixtures
    provisioned_template,
    psandbox,
    read_columns,
    settings_for,
    write_config,
)

from jobs.service.connect import connect
from jobs.service.mapping import load_mappings
from jobs.service.mirror import Mirror
from jobs.service.pipeline import FAULT_ENV, run_pipeline

ROOT = Path(__file__).resolve().parents[1]


def dvsync_run(config: Path, token: str, fault: str | None) -> subprocess.CompletedProcess:
    env = {**os.environ, "DVSYNC__AUTH__TOKEN": token, "PYTHONPATH": str(ROOT)}
    env.pop(FAULT_ENV, None)
    if fault:
        env[FAULT_ENV] = fault
    return subprocess.run(
        [sys.executable, "-m", "jobs.cli.main", "--config", str(config), "run", "--jobs", "rfm", "--json"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def expected_values(sandbox, tmp_path: Path) -> dict[tuple[str, str, str], object]:
    """What an uninterrupted run writes: a dry run's plan on a fresh mirror (timestamps left out)."""
    config = write_config(tmp_path / "reference", sandbox)
    settings = settings_for(config, sandbox)
    mappings = load_mappings(settings.mappings.dir, prefix="dvs")
    with connect(settings) as client, Mirror(settings.mirror.path) as mirror:
        plan = run_pipeline(client, mirror, mappings, settings, jobs=["rfm"], dry_run=True).plan
    plan = plan[plan["column_name"] != "dvs_scoredon"]
    return {
        (t, r, c): v
        for t, r, c, v in zip(
            plan["table_name"], plan["record_id"], plan["column_name"], plan["new_value"], strict=True
        )
    }


# One chain, one kill per stage: during the sync (after 2 of 15 order pages), after the plan was
# stored, right after a chunk was sent but before it was recorded (the worst case: Dynamics has
# the values, the mirror does not know), and after a chunk was recorded.
FAULTS = ["sync-page:2", "planned:1", "write-sent:2", "write-recorded:3"]


@pytest.mark.slow
def test_killed_runs_end_like_an_uninterrupted_run_with_nothing_written_twice(psandbox, tmp_path):  # noqa: F811
    faults = FAULTS
    expected = expected_values(psandbox, tmp_path)
    assert len(expected) > 5000
    config = write_config(tmp_path / "crash", psandbox, batch_size=100, max_parallel=1, page_size=1000)

    for fault in faults:
        killed = dvsync_run(config, psandbox.token, fault)
        assert killed.returncode == -signal.SIGKILL, (fault, killed.stderr[-2000:])
    final = dvsync_run(config, psandbox.token, None)
    assert final.returncode == 0, final.stderr[-2000:]

    # Dynamics holds exactly the values of an uninterrupted run.
    columns = sorted({c for _, _, c in expected})
    held = {
        "account": read_columns(psandbox, "accounts", columns),
        "contact": read_columns(psandbox, "contacts", columns),
    }
    wrong = [
        (key, value, held[key[0]][key[1]][key[2]])
        for key, value in expected.items()
        if held[key[0]][key[1]][key[2]] != value
    ]
    assert wrong == []

    # Every value was written exactly once (the audit of all runs together), none lost.
    with Mirror(tmp_path / "crash" / "mirror.sqlite") as mirror:
        audit = mirror.audit()
        runs = mirror.runs(20)
    written = audit[(audit["outcome"] == "written") & (audit["column_name"] != "dvs_scoredon")]
    keys = list(zip(written["table_name"], written["record_id"], written["column_name"], strict=True))
    assert len(keys) == len(set(keys))
    assert set(keys) == set(expected)
    assert list(runs["outcome"])[::-1] == ["interrupted"] * len(faults) + ["ok"]


def test_sigterm_during_write_back_finishes_the_chunk_records_the_run_and_the_next_run_completes(
    psandbox,  # noqa: F811
    tmp_path,
):
    config = write_config(tmp_path / "term", psandbox, batch_size=100, max_parallel=1)
    stopped = dvsync_run(config, psandbox.token, "write-sent:2:term")
    assert stopped.returncode == 143, stopped.stderr[-2000:]  # 128 + SIGTERM
    report = json.loads(stopped.stdout)
    assert report["outcome"] == "interrupted" and "SIGTERM" in report["error"]
    # The chunk being sent when the signal came was recorded: two chunks of 100 records.
    assert sum(t["written"] for t in report["tables"].values()) == 200
    assert "Traceback" not in stopped.stderr

    final = dvsync_run(config, psandbox.token, None)
    assert final.returncode == 0, final.stderr[-2000:]
    done = json.loads(final.stdout)
    assert done["outcome"] == "ok"
    with Mirror(tmp_path / "term" / "mirror.sqlite") as mirror:
        audit = mirror.audit()
        assert mirror.plan(status=["pending", "failed", "sending"]).empty
    keys = list(zip(audit["table_name"], audit["record_id"], audit["column_name"], strict=True))
    assert len(keys) == len(set(keys)) and set(audit["outcome"]) == {"written"}
