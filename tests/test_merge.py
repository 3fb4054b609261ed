"""Merging duplicates over real HTTP against the sandbox: policy, decisions, memory, staleness, cap,
dry run, audit, and a failure half-way through a batch of merges."""

from __future__ import annotations

import itertools
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
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

from jobs.cli.main import main
from jobs.cli.walkthrough import MAPPINGS_DIR
from jobs.service import merge_store
from jobs.service.connect import connect
from jobs.service.mapping import load_mappings
from jobs.service.merge import run_merges
from jobs.service.mirror import Mirror
from jobs.service.pipeline import run_pipeline

DECISION = "dvs_duplicatedecision"
GROUP, MASTER, STATUS = "dvs_duplicategroup", "dvs_suggestedmaster", "dvs_duplicatestatus"


@pytest.fixture
def sandbox(psandbox):  # noqa: F811
    # Every request gets a later time, so "decided after" and "changed after" never tie on a second.
    ticks = itertools.count()
    start = datetime.now(UTC)
    psandbox.service.config = replace(
        psandbox.service.config, clock=lambda: start + timedelta(seconds=next(ticks))
    )
    return psandbox


def _setup(sandbox, tmp_path: Path, merge_section: str = "", tables: tuple[str, ...] = ("contact",)):
    maps = tmp_path / "mappings"
    shutil.copytree(MAPPINGS_DIR, maps)
    if merge_section:
        (maps / "duplicates.toml").write_text(
            (maps / "duplicates.toml").read_text() + "\n" + merge_section, encoding="utf-8"
        )
    config = write_config(tmp_path / "run", sandbox, tables=list(tables))
    config.write_text(config.read_text().replace(MAPPINGS_DIR.as_posix(), maps.as_posix()))
    settings = settings_for(config, sandbox)
    return settings, load_mappings(settings.mappings.dir, prefix="dvs"), maps


def _truth(sandbox) -> dict[str, int]:
    truth = pd.read_csv(sandbox.ground_truth_dir / "duplicates.csv")
    return dict(zip(truth["record_id"].str.lower(), truth["cluster_id"], strict=True))


def _option(client, label: str) -> int:
    options = client.get_table("contact").attributes[DECISION].options
    return next(value for value, text in options.items() if text == label)


def _merged(client, entity_set: str, record_id: str) -> str | None:
    record = client.get_record(entity_set, record_id)
    return record["_masterid_value"] if record.get("merged") else None


def test_policy_merges_are_true_duplicates_capped_and_audited(sandbox, tmp_path):
    settings, mappings, _ = _setup(sandbox, tmp_path, "[contact.merge]\nauto_merge = true\nmax_per_run = 4\n")
    truth = _truth(sandbox)
    with connect(settings) as client, Mirror(settings.mirror.path) as mirror:
        result = run_pipeline(client, mirror, mappings, settings, jobs=["duplicates", "merge"])
        assert result.ok, result.error
        job = next(j for j in result.jobs if j.job == "merge")
        contact = job.details["merges"]["contact"]
        assert 0 < contact["merged"] <= 4 and contact["held_back"] > 0
        audit = merge_store.audit(mirror, run_id=result.run_id, table="contact")
        assert len(audit) == contact["merged"] and set(audit["outcome"]) == {"merged"}
        for row in audit.itertuples():
            assert truth[row.master_id] == truth[row.subordinate_id]  # precision on the ground truth
            assert _merged(client, "contacts", row.subordinate_id) == row.master_id
            assert row.before_subordinate["contactid"] == row.subordinate_id
            assert (
                row.before_subordinate["statecode"] == 0 and row.before_master["contactid"] == row.master_id
            )
        # The next run merges the held-back groups and never tries the merged records again.
        again = run_pipeline(client, mirror, mappings, settings, jobs=["duplicates", "merge"])
        assert again.ok, again.error
        second = merge_store.audit(mirror, run_id=again.run_id, table="contact")
        assert len(second) and not set(second["subordinate_id"]) & set(audit["subordinate_id"])


def test_decision_merge_and_not_a_duplicate_that_stays_suppressed(sandbox, tmp_path):
    settings, mappings, maps = _setup(sandbox, tmp_path)
    with connect(settings) as client, Mirror(settings.mirror.path) as mirror:
        first = run_pipeline(client, mirror, mappings, settings, jobs=["duplicates", "merge"])
        assert first.ok and not merge_store.audit(mirror).shape[0]  # auto-merge is off by default
        shown = read_columns(sandbox, "contacts", [GROUP, MASTER, STATUS])
        grouped = {i: v for i, v in shown.items() if v[MASTER] and v[MASTER] != i}
        merge_id, other_id = sorted(grouped)[:2]
        # The review band is written back for a person to decide (auto-merge is off).
        assert shown[merge_id][STATUS] == "Possible duplicate"
        assert shown[grouped[merge_id][MASTER]][STATUS] == "Suggested master"
        assert grouped[merge_id][MASTER] != grouped[other_id][MASTER]
        patch(sandbox, "contacts", merge_id, {DECISION: _option(client, "Merge into suggested master")})
        patch(sandbox, "contacts", other_id, {DECISION: _option(client, "Not a duplicate")})

        second = run_pipeline(client, mirror, mappings, settings, jobs=["duplicates", "merge"])
        assert second.ok, second.error
        assert _merged(client, "contacts", merge_id) == grouped[merge_id][MASTER]
        assert _merged(client, "contacts", other_id) is None
        memory = merge_store.memory(mirror, "contact")
        assert {(r.decision, r.source) for r in memory.itertuples()} == {("not_duplicate", "dynamics")}
        assert not second.failures, second.failures
        # Suppressed: the next run clears the pair's grouping in Dynamics...
        third = run_pipeline(client, mirror, mappings, settings, jobs=["duplicates"])
        assert third.ok and not third.failures, third.failures
        after = read_columns(sandbox, "contacts", [GROUP, MASTER])
        assert after[other_id][MASTER] in (None, other_id)
        # ...and so does a retrained model (another threshold and field set fitted from scratch).
        text = (
            (maps / "duplicates.toml")
            .read_text()
            .replace(
                '[contact]\nid_column = "contact_id"', '[contact]\nid_column = "contact_id"\nthreshold = 0.3'
            )
        )
        (maps / "duplicates.toml").write_text(text)
        retrained = run_pipeline(client, mirror, mappings, settings, jobs=["duplicates"])
        assert retrained.ok
        assert read_columns(sandbox, "contacts", [MASTER])[other_id][MASTER] in (None, other_id)


def test_a_decision_on_a_group_that_changed_since_is_requeued(sandbox, tmp_path):
    settings, mappings, _ = _setup(sandbox, tmp_path)
    with connect(settings) as client, Mirror(settings.mirror.path) as mirror:
        run_pipeline(client, mirror, mappings, settings, jobs=["duplicates", "merge"])
        shown = read_columns(sandbox, "contacts", [MASTER, "emailaddress1"])
        record_id = next(i for i, v in sorted(shown.items()) if v[MASTER] and v[MASTER] != i)
        master_id = shown[record_id][MASTER]
        patch(sandbox, "contacts", record_id, {DECISION: _option(client, "Merge into suggested master")})
        # Someone edits the master after the decision: what the person compared is gone.
        patch(sandbox, "contacts", master_id, {"jobtitle": "changed", "address1_city": "Elsewhere"})
        result = run_pipeline(client, mirror, mappings, settings, jobs=["duplicates", "merge"])
        assert result.ok, result.error
        assert _merged(client, "contacts", record_id) is None
        decisions = result.jobs[-1].details["merges"]["contact"]
        assert decisions["stale_decisions"] == 1
        assert read_columns(sandbox, "contacts", [DECISION])[record_id][DECISION] is None


def test_dry_run_shows_the_merges_writes_a_csv_and_changes_nothing(sandbox, tmp_path, capsys, monkeypatch):
    settings, mappings, _ = _setup(
        sandbox, tmp_path, "[account.merge]\nauto_merge = true\n", ("account", "contact", "salesorder")
    )
    with connect(settings) as client, Mirror(settings.mirror.path) as mirror:
        run_pipeline(client, mirror, mappings, settings, jobs=["duplicates"])
    monkeypatch.setenv("DVSYNC__AUTH__TOKEN", sandbox.token)
    csv = tmp_path / "merges.csv"
    config = tmp_path / "run" / "config.toml"
    code = main(["--config", str(config), "merge", "--table", "account", "--csv", str(csv)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "merges planned (dry run)" in out and "Dry run: nothing was changed" in out
    frame = pd.read_csv(csv)
    assert len(frame) > 0 and {"master.name", "subordinate.name", "master_changes", "children_moving"} <= set(
        frame.columns
    )
    assert frame["children_moving"].fillna("").str.contains("orders|contacts").any()
    truth = _truth(sandbox)  # precision 1.0 on the seed's ground truth, under the default merge band
    assert all(truth[m] == truth[s] for m, s in zip(frame["master_id"], frame["subordinate_id"], strict=True))
    with connect(settings) as client:
        assert all(_merged(client, "accounts", s) is None for s in frame["subordinate_id"])


def test_a_merge_failing_half_way_leaves_every_group_merged_or_untouched(sandbox, tmp_path):
    settings, mappings, _ = _setup(
        sandbox, tmp_path, "[contact.merge]\nauto_merge = true\nmax_per_run = 12\n"
    )
    with connect(settings) as client, Mirror(settings.mirror.path) as mirror:
        run_pipeline(client, mirror, mappings, settings, jobs=["duplicates"])
        plan = (
            run_merges(client, mirror, mappings, settings, tables=["contact"], dry_run=True).tables[0].preview
        )
        sizes = plan.groupby("group").size()
        big = [g for g in plan["group"].drop_duplicates() if sizes[g] >= 2]
        victim_group = big[len(big) // 2]
        victim = plan.loc[plan["group"] == victim_group, "subordinate_id"].iloc[-1]
        sandbox.service.config = replace(sandbox.service.config, failing_merges=frozenset({victim}))
        report = run_merges(client, mirror, mappings, settings, tables=["contact"], dry_run=False)
        assert not report.ok
        for group in report.tables[0].groups:
            states = [_merged(client, "contacts", s) for s in group["subordinates"]]
            if group["group"] == victim_group:
                assert group["outcome"] == "failed" and "0x80040265" in (group["error"] or "")
                assert states == [None] * len(states)  # untouched, not half-applied
            else:
                assert group["outcome"] == "merged" and states == [group["master_id"]] * len(states)
        audit = merge_store.audit(mirror, table="contact")
        assert set(audit.loc[audit["group_code"] == victim_group, "outcome"]) == {"failed"}
