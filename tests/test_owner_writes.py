"""Owner writes over real HTTP against the sandbox: a lost answer settled by reading the owner back,
and a lead taken by a person between the sync and the write left with that person."""

from __future__ import annotations

from io import StringIO

import pytest
import requests
from conftest import SEED_NOW, dataverse_session
from pipeline_support import (  # noqa: F401 - fixtures
    patch,
    provisioned_template,
    psandbox,
    sandbox_client,
    settings_for,
    write_config,
)
from requests.adapters import HTTPAdapter
from rich.console import Console

from connector.readback import bind_id
from connector.sandbox.seed.org import team_id, user_id
from jobs.cli.render import render_run
from jobs.service import lead_handling
from jobs.service.connect import connect
from jobs.service.mapping import load_mappings
from jobs.service.mirror import Mirror
from jobs.service.pipeline import run_pipeline

OWNER = "ownerid@odata.bind"
LEAD_TABLES = ["lead", "email", "phonecall", "appointment"]


class LosesAnswer(HTTPAdapter):
    """Drops the connection of the first PATCH ``$batch``: after the server applied it, or before."""

    def __init__(self, applied: bool) -> None:
        super().__init__()
        self.applied = applied
        self.lost = 0

    def send(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        body = request.body or b""
        if self.lost == 0 and request.url.endswith("$batch") and b"PATCH " in body:
            self.lost += 1
            if self.applied:
                super().send(request, *args, **kwargs)
            raise requests.ConnectionError("connection reset by peer (simulated)")
        return super().send(request, *args, **kwargs)


def _lead(sandbox, owner: str) -> tuple[str, str]:
    """An open lead held by ``owner`` (a team id): (id, etag)."""
    with dataverse_session(sandbox) as s:
        url = (
            f"{sandbox.api_url}leads?$select=leadid,_ownerid_value&$top=1"
            f"&$filter=statecode eq 0 and _ownerid_value eq {owner}"
        )
        row = s.get(url, timeout=30).json()["value"][0]
    return row["leadid"], row["@odata.etag"]


def _owner(sandbox, lead: str) -> str:
    with dataverse_session(sandbox) as s:
        return s.get(f"{sandbox.api_url}leads({lead})?$select=_ownerid_value", timeout=30).json()[
            "_ownerid_value"
        ]


@pytest.mark.parametrize("applied", [True, False])
@pytest.mark.parametrize("with_etag", [True, False])
def test_a_lost_owner_write_is_settled_by_reading_the_owner_back(sandbox, applied, with_etag):
    intake = team_id("Lead Intake")
    lead, etag = _lead(sandbox, intake)
    target = user_id("Amelia", "Hart")
    adapter = LosesAnswer(applied)
    with sandbox_client(sandbox, adapter) as client:
        update = (
            lead,
            {OWNER: f"/systemusers({target})"},
            *((etag, {OWNER: f"/teams({intake})"}) if with_etag else ()),
        )
        [result] = client.update_many("leads", [update])
    assert adapter.lost == 1
    assert result.ok, result.message
    # Applied: the read-back finds the new owner and does not send it again. Not applied: sent once more.
    assert result.confirmed is applied
    assert _owner(sandbox, lead) == target


def test_a_lead_taken_between_sync_and_write_is_not_moved_and_the_run_says_so(
    psandbox,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    # The run syncs, plans owners, and before it writes: a salesperson takes one planned lead and
    # someone edits another planned lead's description (the unassigned team still holds it).
    config = write_config(
        tmp_path / "race", psandbox, tables=LEAD_TABLES, extra="[routing]\nenabled = true\n"
    )
    settings = settings_for(config, psandbox)
    mappings = load_mappings(settings.mappings.dir, prefix="dvs")
    person = user_id("Amelia", "Hart")
    raced: dict[str, str] = {}
    original = lead_handling.add_assignments

    def race(plan, outcomes, current):  # type: ignore[no-untyped-def]
        planned = original(plan, outcomes, current)
        owners = sorted(planned.loc[planned["column_name"] == OWNER, "record_id"])
        raced["taken"], raced["edited"] = owners[0], owners[1]
        patch(psandbox, "leads", raced["taken"], {OWNER: f"/systemusers({person})"})
        patch(psandbox, "leads", raced["edited"], {"description": "called back, see notes"})
        return planned

    monkeypatch.setattr(lead_handling, "add_assignments", race)
    clock = lambda: SEED_NOW  # noqa: E731
    with connect(settings) as client, Mirror(settings.mirror.path) as mirror:
        run = run_pipeline(client, mirror, mappings, settings, jobs=["scoring"], dry_run=False, clock=clock)
        monkeypatch.setattr(lead_handling, "add_assignments", original)
        audit = mirror.audit(run.run_id, table="lead")
        plan = mirror.plan(run_id=run.run_id)
        again = run_pipeline(client, mirror, mappings, settings, jobs=["scoring"], dry_run=False, clock=clock)

    taken, edited = raced["taken"], raced["edited"]
    # The person keeps the lead; the run is ok and names it; nothing failed, nothing is retried.
    assert _owner(psandbox, taken) == person
    assert run.ok, run.error
    assert run.failures == []
    assert [(s["record_id"], s["column"]) for s in run.skipped] == [(taken, OWNER)]
    assert "someone took it" in run.skipped[0]["message"]
    assert run.tables["lead"]["skipped"] == 1
    report = StringIO()
    render_run(run, Console(file=report, width=220))
    assert f"left alone: lead {taken}: not assigned: the lead's owner changed" in report.getvalue()
    assert "Run " in report.getvalue() and ": ok," in report.getvalue()
    mine = audit[audit["record_id"] == taken].set_index("column_name")["outcome"]
    assert mine[OWNER] == "skipped" and (mine.drop(OWNER) == "written").all()  # its scores were written
    assert plan.loc[(plan["record_id"] == taken) & (plan["column_name"] == OWNER), "status"].tolist() == [
        "skipped"
    ]
    # The other edit did not change the owner: the assignment went through under the new etag.
    assigned = audit[(audit["record_id"] == edited) & (audit["column_name"] == OWNER)]
    assert assigned["outcome"].tolist() == ["written"]
    assert _owner(psandbox, edited) == bind_id(assigned["new_value"].iloc[0])
    # Nothing is left to do: the next run writes nothing, and does not try the taken lead again.
    assert again.ok and again.plan.empty


def test_the_sandbox_refuses_an_owner_write_on_a_stale_etag_as_dataverse_does(sandbox):
    lead, etag = _lead(sandbox, team_id("Lead Intake"))
    with dataverse_session(sandbox) as s:
        taken = s.patch(
            f"{sandbox.api_url}leads({lead})",
            json={OWNER: f"/systemusers({user_id('Amelia', 'Hart')})"},
            headers={"If-Match": etag, "Content-Type": "application/json"},
            timeout=30,
        )
        late = s.patch(
            f"{sandbox.api_url}leads({lead})",
            json={OWNER: f"/systemusers({user_id('Karl', 'Former')})"},
            headers={"If-Match": etag, "Content-Type": "application/json"},
            timeout=30,
        )
    assert taken.status_code == 204
    assert late.status_code == 412 and late.json()["error"]["code"] == "0x80060882"
    assert _owner(sandbox, lead) == user_id("Amelia", "Hart")
