"""Routing leads to a queue over real HTTP against the sandbox: planned, dry run first, written with
AddToQueue (the lead's owner unchanged), audited, not planned again, and undone by rollback unless
a person picked the item since; `dvsync check` names queues the org does not have."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from conftest import SEED_NOW, dataverse_session
from pipeline_support import (  # noqa: F401 - fixtures
    patch,
    provisioned_template,
    psandbox,
    settings_for,
    write_config,
)

from connector import QueueItem, QueueRequest, QueueResult
from connector.sandbox.seed.org import INTAKE_QUEUE_ID, team_id, user_id
from core.tomlfile import parse_toml
from jobs.cli.walkthrough import MAPPINGS_DIR
from jobs.leads.engagement.config import parse_routing
from jobs.service import pipeline
from jobs.service.connect import connect
from jobs.service.mapping import load_mappings
from jobs.service.mirror import Mirror
from jobs.service.pipeline import run_pipeline
from jobs.service.rollback import rollback
from jobs.service.routing import OWNER_COLUMN, QUEUE_COLUMN, OrgDirectory, assign, check_routing
from jobs.service.routing_queue import queue_plan, undo_queue_items

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


class _FakeClient:
    """Queue items in memory, for the planning and undo rules without a server."""

    def __init__(self, items: list[QueueItem]) -> None:
        self.items = items
        self.removed: list[str] = []
        self.added: list[QueueRequest] = []

    def queue_items(self, *, object_ids=None, object_type_code=None):  # type: ignore[no-untyped-def]
        return [i for i in self.items if object_ids is None or i.object_id in object_ids]

    def remove_from_queue(self, queue_item_id: str) -> None:
        self.removed.append(queue_item_id)

    def add_to_queues(self, requests_, batch_size=1000):  # type: ignore[no-untyped-def]
        self.added.extend(requests_)
        return [QueueResult(r.target_id, True, 200, None, None, "item") for r in requests_]


def _directory(items: list[QueueItem]) -> OrgDirectory:
    return OrgDirectory(
        users=pd.DataFrame({"id": ["u1"], "name": ["Una"], "enabled": [True], "person": [True]}),
        teams=pd.DataFrame({"id": ["t1"], "name": ["Intake"]}),
        members=pd.DataFrame({"team_id": ["t1"], "user_id": ["u1"]}),
        queues=pd.DataFrame(
            {
                "id": ["q-in", "q-hot"],
                "name": ["Inbound", "Hot"],
                "owner_id": ["t1", "t1"],
                "owner_type": ["team"] * 2,
            }
        ),
        queue_items=pd.DataFrame(
            {
                "id": [i.id for i in items],
                "queue_id": [i.queue_id for i in items],
                "object_id": [i.object_id for i in items],
                "worker_id": [i.worker_id for i in items],
            }
        ),
    )


def test_queue_rules_move_leads_out_of_the_unassigned_queue_and_skip_leads_queued_elsewhere():
    config = parse_routing(
        parse_toml(
            '[unassigned]\nqueue = "Inbound"\n[[rule]]\nassign = "queue"\nqueue = "Hot"\n', "routing.toml"
        )
    )
    leads = pd.DataFrame(
        {
            "lead_id": ["a", "b", "c"],
            "status": "open",
            "owner_id": "t1",
            "owner_type": "team",
            "created_on": pd.date_range("2026-01-01", periods=3, tz="UTC"),
        }
    )
    items = [QueueItem("i-a", "q-in", "a", "lead", None), QueueItem("i-b", "q-hot", "b", "lead", None)]
    assignments, summary = assign(
        leads, config, _directory(items), audit=pd.DataFrame(columns=["column_name", "outcome", "new_value"])
    )
    plan = queue_plan(assignments).set_index("record_id")
    assert sorted(plan.index) == ["a", "c"]  # b is in a queue already
    assert plan.loc["a", "old_value"] == "/queues(q-in)" and plan.loc["c", "old_value"] is None
    assert set(plan["new_value"]) == {"/queues(q-hot)"} and summary["by_rule"] == {"rule 1": {"Hot": 2}}


def test_rollback_of_queue_items_moves_back_removes_and_refuses_what_changed():
    audit = pd.DataFrame(
        {
            "record_id": ["a", "b", "c", "d", "e", "f"],
            "column_name": QUEUE_COLUMN,
            "old_value": ["/queues(q-in)", None, None, None, "/queues(q-in)", "/queues(q-in)"],
            "new_value": "/queues(q-hot)",
        }
    )
    client = _FakeClient(
        [
            QueueItem("i-a", "q-hot", "a", "lead", None),  # moved in from q-in: moved back
            QueueItem("i-b", "q-hot", "b", "lead", None),  # added: removed
            QueueItem("i-c", "q-hot", "c", "lead", "u1"),  # picked by a person: refused
            QueueItem("i-e", "q-in", "e", "lead", None),  # already back (an interrupted rollback)
            # d (added) is in no queue: as before the run. f (moved in) is in neither queue: refused.
        ]
    )
    undo = undo_queue_items(client, audit, force=False)
    assert [(r.target_id, r.queue_id, r.source_queue_id) for r in client.added] == [("a", "q-in", "q-hot")]
    assert client.removed == ["i-b"] and set(undo.done["outcome"]) == {"restored"}
    assert dict(zip(undo.refused["record_id"], undo.refused["reason"], strict=True)) == {
        "c": "a person is working on the queue item since (picked it)",
        "f": "the lead is no longer in that queue (moved or removed since)",
    }
    assert sorted(undo.confirmed["record_id"]) == ["d", "e"]
    forced = _FakeClient(client.items)
    assert set(undo_queue_items(forced, audit, force=True).done["record_id"]) == {"a", "b", "c"}
