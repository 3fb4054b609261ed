"""Under 429s, 503s, dropped and truncated answers, every value reaches Dynamics exactly once.

Counted on the server (the sandbox's update log, a trigger per table), not only in dvsync's own
audit: a replayed ``$batch`` whose first answer was lost shows up there even when the final values
are right, and in Dynamics each replay would fire plug-ins and flows again.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pipeline_support import (  # noqa: F401 - fixtures
    TOKEN,
    provisioned_template,
    read_columns,
    settings_for,
    write_config,
)

from connector.http import RetryPolicy
from connector.sandbox import FaultConfig, Sandbox, SandboxConfig
from connector.sandbox.update_log import update_counts
from jobs.service.connect import connect
from jobs.service.mapping import load_mappings
from jobs.service.mirror import Mirror
from jobs.service.pipeline import run_pipeline

RFM = ["dvs_rfmrecency", "dvs_rfmfrequency", "dvs_rfmmonetary", "dvs_customersegment"]


def _run(template: Path, directory: Path, faults: FaultConfig | None) -> tuple[Sandbox, list]:
    data = directory / "sandbox"
    data.mkdir(parents=True)
    shutil.copy2(template / "sandbox.sqlite", data / "sandbox.sqlite")
    sandbox = Sandbox(data, token=TOKEN, config=SandboxConfig(faults=faults or FaultConfig())).start()
    outcomes = []
    try:
        settings = settings_for(
            write_config(directory / "run", sandbox, batch_size=50, max_parallel=2), sandbox
        )
        mappings = load_mappings(settings.mappings.dir, prefix="dvs")
        # Waits pass instantly (Retry-After included): the budget is never the limit here.
        retry = RetryPolicy(sleep=lambda seconds: None, random=lambda: 0.5)
        with connect(settings, retry=retry) as client, Mirror(settings.mirror.path) as mirror:
            for _ in range(3):  # a run left with failures is finished by the next, as a scheduler would
                result = run_pipeline(client, mirror, mappings, settings, jobs=["rfm"])
                outcomes.append(result)
                if result.ok:
                    break
            audit = mirror.audit()
        values = {
            "account": read_columns(sandbox, "accounts", RFM),
            "contact": read_columns(sandbox, "contacts", RFM),
        }
    finally:
        sandbox.stop()
    written = audit[audit["outcome"] == "written"]
    return values, update_counts(data), written, outcomes


def test_a_soak_with_every_fault_kind_ends_exactly_like_a_clean_run(provisioned_template, tmp_path):  # noqa: F811
    clean_values, clean_updates, _, clean_runs = _run(provisioned_template, tmp_path / "clean", None)
    assert clean_runs[-1].ok and sum(clean_updates.values()) > 1000

    faults = FaultConfig(throttle=0.03, unavailable=0.03, drop=0.03, truncate=0.03, seed=17)
    values, updates, audit, runs = _run(provisioned_template, tmp_path / "faulty", faults)
    assert runs[-1].ok, runs[-1].error
    assert sum(r.http["retries"] for r in runs) >= 5  # the faults really hit (429s and 503s counted)

    assert values == clean_values
    # The same records were updated the same number of times on the server: nothing twice.
    assert updates == clean_updates
    # And the audit matches what the server applied, record for record.
    audited = audit.drop_duplicates(["table_name", "record_id"])
    assert len(audited) == sum(updates.values())
    assert set(audited["record_id"]) == set(updates)
