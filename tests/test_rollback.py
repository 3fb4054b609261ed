"""``dvsync rollback``: restores what a run overwrote, refuses values changed since unless forced."""

from __future__ import annotations

import json

import pytest
from pipeline_support import (  # noqa: F401 - fixtures
    patch,
    provisioned_template,
    psandbox,
    read_columns,
    settings_for,
    write_config,
)

from jobs.cli.main import main
from jobs.service.connect import connect
from jobs.service.mapping import load_mappings
from jobs.service.mirror import Mirror
from jobs.service.pipeline import run_pipeline

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

    code = main(["--config", str(config), "rollback", str(run.run_id), "--force", "--json"])
    forced = json.loads(capsys.readouterr().out)
    assert code == 0 and forced["refused"] == 0
    assert all(
        v == {SEGMENT: None, RECENCY: None}
        for v in read_columns(psandbox, "accounts", [SEGMENT, RECENCY]).values()
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
