"""Routing leads to a queue over real HTTP against the sandbox: planned, dry run first, written with
AddToQueue (the lead's owner unchanged), audited, not planned again, and undone by rollback unless
a person picked the item since; `dvsync check` names queues the org does not have."""

from __future__ import annotations

import shutil

import pytest
from conftest import SEED_NOW, dataverse_session
from pipeline_support import (  # noqa: F401 - fixtures
    patch,
    provisioned_template,
    psandbox,
    settings_for,
    write_config,
)

from connector.sandbox.seed.org import INTAKE_QUEUE_ID, team_id, user_id
from jobs.cli.walkthrough import MAPPINGS_DIR
from jobs.service import pipeline
from jobs.service.connect import connect
from jobs.service.mapping import load_mappings
from jobs.service.mirror import Mirror
from jobs.service.pipeline import run_pipeline
from jobs.service.rollback import rollback
from jobs.service.routing import OWNER_COLUMN, QUEUE_COLUMN, check_routing

LEAD_TABLES = ["lead", "email", "phonecall", "appointment"]
ROUTING = """\
[unassigned]
team = "Lead Intake"

[[rule]]
name = "Larger companies to the intake queue"
when = { sales_ready = true, employees = { min = 200 } }
assign = "queue"
queue = "Inbound Leads"

[[rule]]
name = "Other sales-ready leads"
when = { sales_ready = true }
assign = "round_robin"
team = "Inside Sales"
"""


def _queued(sandbox) -> dict[str, dict]:
    """Active queue items by lead: queue, item id, worker."""
    with dataverse_session(sandbox) as s:
        rows = s.get(
            f"{sandbox.api_url}queueitems?$select=queueitemid,_objectid_value,_queueid_value,_workerid_value"
            "&$filter=statecode eq 0",
            timeout=30,
        ).json()["value"]
    return {r["_objectid_value"]: r for r in rows}


def _owners(sandbox) -> dict[str, str]:
    with dataverse_session(sandbox) as s:
        rows = s.get(
            f"{sandbox.api_url}leads?$select=leadid,_ownerid_value",
            headers={"Prefer": "odata.maxpagesize=5000"},
            timeout=30,
        ).json()["value"]
    return {r["leadid"]: r["_ownerid_value"] for r in rows}


def _settings(sandbox, tmp_path):  # type: ignore[no-untyped-def]
    """Settings with routing on and the queue rules above (a copy of the shipped mappings)."""
    mappings_dir = tmp_path / "mappings"
    shutil.copytree(MAPPINGS_DIR, mappings_dir)
    (mappings_dir / "routing.toml").write_text(ROUTING, encoding="utf-8")
    config = write_config(tmp_path / "run", sandbox, tables=LEAD_TABLES, extra="[routing]\nenabled = true\n")
    config.write_text(
        config.read_text(encoding="utf-8").replace(MAPPINGS_DIR.as_posix(), mappings_dir.as_posix()),
        encoding="utf-8",
    )
    settings = settings_for(config, sandbox)
    return settings, load_mappings(settings.mappings.dir, prefix="dvs")


def test_routing_to_a_queue_is_planned_written_not_repeated_and_rolled_back(psandbox, tmp_path):  # noqa: F811
    settings, mappings = _settings(psandbox, tmp_path)
    mappings_dir = mappings.directory
    before = _owners(psandbox)
    clock = lambda: SEED_NOW  # noqa: E731

    with connect(settings) as client, Mirror(settings.mirror.path) as mirror:
        assert check_routing(mappings_dir, client, enabled=True) == []
        dry = run_pipeline(client, mirror, mappings, settings, jobs=["scoring"], dry_run=True, clock=clock)
        assert dry.ok, dry.error
        planned = dry.plan[dry.plan["column_name"] == QUEUE_COLUMN]
        assert len(planned) >= 3
        assert (
            set(planned["new_value"]) == {f"/queues({INTAKE_QUEUE_ID})"} and planned["old_value"].isna().all()
        )
        assert QUEUE_COLUMN in dry.plan_csv.read_text(encoding="utf-8")
        assert _queued(psandbox) == {}  # the dry run wrote nothing

        run = run_pipeline(client, mirror, mappings, settings, jobs=["scoring"], dry_run=False, clock=clock)
        assert run.ok, run.error
        queued = _queued(psandbox)
        assert set(queued) == set(planned["record_id"])
        assert {q["_queueid_value"] for q in queued.values()} == {INTAKE_QUEUE_ID}
        after = _owners(psandbox)
        # The queued leads keep their owner (the intake team); the owner rule still assigned others.
        assert all(after[lead] == before[lead] == team_id("Lead Intake") for lead in queued)
        assigned = run.plan[run.plan["column_name"] == OWNER_COLUMN]
        assert len(assigned) > 0 and not set(assigned["record_id"]) & set(queued)
        audit = mirror.audit(run.run_id, table="lead")
        written = audit[(audit["column_name"] == QUEUE_COLUMN) & (audit["outcome"] == "written")]
        assert set(written["record_id"]) == set(queued)
        assert run.as_dict()["jobs"]["lead_handling"]["routing"]["by_rule"][
            "Larger companies to the intake queue"
        ] == {"Inbound Leads": len(queued)}

        # A second run plans nothing: the queued leads are routed already.
        again = run_pipeline(client, mirror, mappings, settings, jobs=["scoring"], dry_run=False, clock=clock)
        assert again.ok and again.plan.empty, again.plan

        # A person picks one queued lead; rollback takes the others out and refuses that one.
        picked = sorted(queued)[0]
        patch(
            psandbox,
            "queueitems",
            queued[picked]["queueitemid"],
            {"workerid@odata.bind": f"/systemusers({user_id('Amelia', 'Hart')})"},
        )
        undo = rollback(client, mirror, mappings, settings, run.run_id)
    left = _queued(psandbox)
    assert set(left) == {picked}
    refused = [r for r in undo.refusals if r["column"] == QUEUE_COLUMN]
    assert [r["record_id"] for r in refused] == [picked] and "working on" in refused[0]["reason"]
    assert _owners(psandbox) == before  # owners restored, the queued leads' owner never changed
    assert undo.failed == 0


def test_check_names_a_queue_the_org_does_not_have(sandbox, tmp_path):
    config = write_config(tmp_path / "check", sandbox, tables=LEAD_TABLES)
    settings = settings_for(config, sandbox)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "routing.toml").write_text(
        '[unassigned]\nqueue = "Inbound Leads"\n\n[[rule]]\nassign = "queue"\nqueue = "Inbound Lead"\n\n'
        '[[rule]]\nassign = "queue"\nqueue = "Inbound Leads"\n',
        encoding="utf-8",
    )
    with connect(settings) as client:
        problems = [str(p) for p in check_routing(bad, client, enabled=True)]
    path = bad / "routing.toml"
    assert (
        f"{path}:6 [rule.0.queue]: no queue `Inbound Lead` in the org (did you mean `Inbound Leads`?)"
        in problems
    )
    assert any(f"{path}:10 [rule.1.queue]" in p and "already sit in" in p for p in problems), problems
    assert len(problems) == 2


def test_a_run_killed_after_sending_routing_writes_is_settled_and_can_be_rolled_back(
    psandbox,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    settings, mappings = _settings(psandbox, tmp_path)
    before = _owners(psandbox)
    clock = lambda: SEED_NOW  # noqa: E731

    def killed(ctx, table, chunk, outcomes):  # type: ignore[no-untyped-def]
        # Sent but never recorded, as when the process dies right after the requests.
        if (chunk["column_name"] == QUEUE_COLUMN).any():
            raise KeyboardInterrupt("killed after sending")

    with connect(settings) as client, Mirror(settings.mirror.path) as mirror:
        monkeypatch.setattr(pipeline, "_record_chunk", killed)
        with pytest.raises(KeyboardInterrupt):
            run_pipeline(client, mirror, mappings, settings, jobs=["scoring"], dry_run=False, clock=clock)
        monkeypatch.undo()
        first = int(mirror.runs()["run_id"].min())
        assert mirror.audit(first).empty  # nothing recorded: the writes are in doubt
        queued = set(_queued(psandbox))
        moved = {k for k, v in _owners(psandbox).items() if v != before[k]}
        assert queued and moved

        again = run_pipeline(client, mirror, mappings, settings, jobs=["scoring"], dry_run=False, clock=clock)
        assert again.ok, again.error
        assert not (again.plan["column_name"].isin([QUEUE_COLUMN, OWNER_COLUMN])).any()
        audit = mirror.audit(first, table="lead")
        settled = audit[audit["outcome"] == "written"]
        assert set(settled.loc[settled["column_name"] == QUEUE_COLUMN, "record_id"]) == queued
        assert set(settled.loc[settled["column_name"] == OWNER_COLUMN, "record_id"]) == moved

        undo = rollback(client, mirror, mappings, settings, first)
    assert undo.ok, undo.refusals[:3]
    assert _queued(psandbox) == {} and _owners(psandbox) == before
