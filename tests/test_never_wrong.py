"""Never a wrong value: jobs skip partial input, and a killed run's stale plan is never written.

Over real HTTP against the sandbox, with the sandbox's server-side update log as the witness.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
from pipeline_support import (  # noqa: F401 - fixtures
    TOKEN,
    provisioned_template,
    psandbox,
    read_columns,
    settings_for,
    write_config,
)

from connector.errors import ServiceUnavailableError
from connector.sandbox import Sandbox
from connector.sandbox.update_log import update_counts
from jobs.service.connect import connect
from jobs.service.mapping import load_mappings
from jobs.service.mirror import Mirror
from jobs.service.pipeline import run_pipeline

LEAD_TABLES = ["lead", "email", "phonecall", "appointment"]
SCORES = ["dvs_leadscore", "dvs_leadgrade", "dvs_leadscorefactors", "dvs_leadscoretrend", "dvs_salesready"]
SEGMENT = "dvs_customersegment"


def _start(template: Path, directory: Path) -> Sandbox:
    data = directory / "sandbox"
    data.mkdir(parents=True)
    shutil.copy2(template / "sandbox.sqlite", data / "sandbox.sqlite")
    return Sandbox(data, token=TOKEN).start()


def _scores(sandbox: Sandbox) -> dict:
    return read_columns(sandbox, "leads", SCORES)


def test_a_failed_activity_sync_skips_scoring_and_later_runs_converge_to_clean_values(
    provisioned_template,  # noqa: F811
    tmp_path,
):
    clean = _start(provisioned_template, tmp_path / "clean")
    try:
        settings = settings_for(write_config(tmp_path / "clean-run", clean, tables=LEAD_TABLES), clean)
        mappings = load_mappings(settings.mappings.dir, prefix="dvs")
        with connect(settings) as client, Mirror(settings.mirror.path) as mirror:
            assert run_pipeline(client, mirror, mappings, settings, jobs=["scoring"]).ok
        expected = _scores(clean)
    finally:
        clean.stop()

    sandbox = _start(provisioned_template, tmp_path / "partial")
    try:
        settings = settings_for(write_config(tmp_path / "run", sandbox, tables=LEAD_TABLES), sandbox)
        mappings = load_mappings(settings.mappings.dir, prefix="dvs")
        with connect(settings) as client, Mirror(settings.mirror.path) as mirror:
            # The email table's reads fail as after an exhausted retry budget (the 503s outlasted
            # it); every other table syncs over real HTTP as usual.
            reads = client.iter_change_pages

            def failing_email_reads(entity_set, *args, **kwargs):
                if entity_set == "emails":
                    raise ServiceUnavailableError("503 Service Unavailable (retry budget spent)", status=503)
                return reads(entity_set, *args, **kwargs)

            client.iter_change_pages = failing_email_reads
            first = run_pipeline(client, mirror, mappings, settings, jobs=["scoring"])
            assert first.outcome == "failed"
            (scoring,) = first.jobs
            assert scoring.status == "skipped" and "email" in scoring.message
            assert "skipped because their input is incomplete: scoring" in first.error
            assert first.plan.empty and update_counts(sandbox.data_dir, "lead") == {}
            # No model was trained on the leads without their emails.
            assert not (Path(settings.mirror.path).parent / "models").exists() or not any(
                (Path(settings.mirror.path).parent / "models").rglob("*.*")
            )

            # The service recovers; the next runs are clean and end where a clean run ends.
            client.iter_change_pages = reads
            assert run_pipeline(client, mirror, mappings, settings, jobs=["scoring"]).ok
        assert _scores(sandbox) == expected
    finally:
        sandbox.stop()


def test_a_killed_runs_stale_value_is_never_written_later(psandbox, tmp_path):  # noqa: F811
    settings = settings_for(write_config(tmp_path / "run", psandbox), psandbox)
    mappings = load_mappings(settings.mappings.dir, prefix="dvs")
    with connect(settings) as client, Mirror(settings.mirror.path) as mirror:
        first = run_pipeline(client, mirror, mappings, settings, jobs=["rfm"])
        assert first.ok, first.error
        segments = read_columns(psandbox, "accounts", [SEGMENT])
        account = next(i for i, v in segments.items() if v[SEGMENT] and v[SEGMENT] != "Lost")
        before = update_counts(psandbox.data_dir, "account")[account]

        # A run planned another segment for the account (its orders had changed), then was
        # killed; the orders changed back since, so that pending value is now wrong.
        killed = mirror.start_run("run", jobs=["rfm"])
        stale = pd.DataFrame(
            {
                "table_name": ["account"],
                "record_id": [account],
                "column_name": [SEGMENT],
                "result": ["rfm_segment"],
                "old_value": [segments[account][SEGMENT]],
                "new_value": ["Lost"],
            }
        )
        mirror.save_plan(killed, stale)
        # Another of its writes was applied, but its answer was lost and could not be read back:
        # reported failed, although Dynamics holds it.
        applied = next(i for i, v in segments.items() if v[SEGMENT] and i != account)
        mirror.save_plan(
            killed,
            stale.assign(record_id=[applied], old_value=[None], new_value=[segments[applied][SEGMENT]]),
        )
        mirror.mark_plan(killed, "account", [(applied, SEGMENT)], "failed", error="no answer")
        mirror.finish_run(killed, "interrupted", stats={}, error="killed")

        third = run_pipeline(client, mirror, mappings, settings, jobs=["rfm"])
        assert third.ok, third.error
        assert third.plan.empty  # nothing this run computed differs from Dynamics
        assert mirror.plan(status=["pending", "failed", "sending"]).empty  # the stale item is retired
        # The audit now says what the server holds: the lost answer's write was applied.
        found = mirror.audit(killed, record_id=applied)
        assert found["outcome"].tolist() == ["written"]
        assert found["error"].tolist() == ["found in Dynamics after its answer was lost"]
    assert read_columns(psandbox, "accounts", [SEGMENT])[account][SEGMENT] == segments[account][SEGMENT]
    assert update_counts(psandbox.data_dir, "account")[account] == before
