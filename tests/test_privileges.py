"""`dvsync check` names each privilege the application user lacks, over HTTP against the sandbox.

The sandbox's user holds every privilege except ``SandboxConfig.denied_privileges``; it answers
``RetrieveUserSetOfPrivilegesByNames`` as Dataverse does (held names only).
"""

from __future__ import annotations

import json

import responses

from connector.http import HttpClient
from connector.privileges import held_privileges
from connector.sandbox import SandboxConfig
from core.defaults import mappings_dir
from jobs.cli.main import main
from jobs.service.mapping import load_mappings
from jobs.service.privileges import required_privileges


def _check(sandbox, tmp_path, monkeypatch, capsys, solution: str | None = "dvsync") -> list[dict]:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[dataverse]\nurl = "{sandbox.url}"\n[auth]\nmode = "token"\n'
        f'[mappings]\ndir = "{mappings_dir().as_posix()}"\n'
        + (f'[writeback]\nsolution = "{solution}"\n' if solution else ""),
        encoding="utf-8",
    )
    monkeypatch.setenv("DVSYNC__AUTH__TOKEN", sandbox.token)
    code = main(["--config", str(config), "check", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == (0 if report["ok"] else 2)
    return report["problems"]


def test_the_least_privilege_list_reads_every_mapped_table_and_writes_the_result_tables():
    mappings = load_mappings(mappings_dir(), prefix="dvs")
    names = {r.name for r in required_privileges(mappings.enabled_tables(), mappings, [])}
    assert {
        "prvReadLead",
        "prvReadAccount",
        "prvReadContact",
        "prvReadSalesOrder",
        "prvReadActivity",
    } <= names
    assert {"prvWriteLead", "prvWriteAccount", "prvWriteContact"} <= names
    assert "prvWriteSalesOrder" not in names and "prvCreateAttribute" not in names  # nothing to provision
    with_columns = {r.name for r in required_privileges([], mappings, mappings.outputs[:1])}
    assert {"prvCreateAttribute", "prvWriteSolution"} <= with_columns


def test_check_names_each_missing_privilege(sandbox_factory, tmp_path, monkeypatch, capsys):
    denied = frozenset({"prvWriteLead", "prvReadSalesOrder", "prvCreateAttribute"})
    sandbox = sandbox_factory(config=SandboxConfig(denied_privileges=denied))
    problems = _check(sandbox, tmp_path, monkeypatch, capsys)
    missing = sorted(p["message"] for p in problems if p["key"] == "privileges")
    assert len(missing) == 3, problems
    assert "lacks prvCreateAttribute, needed to create the result columns (dvsync provision)" in missing[0]
    assert "lacks prvReadSalesOrder, needed to read salesorder (salesorder.toml)" in missing[1]
    assert "lacks prvWriteLead, needed to write the results to lead (outputs.toml)" in missing[2]
    assert all("docs/setup-real-org.md" in p["hint"] for p in problems if p["key"] == "privileges")


def test_a_user_with_every_privilege_passes(sandbox, tmp_path, monkeypatch, capsys):
    assert _check(sandbox, tmp_path, monkeypatch, capsys) == []


@responses.activate
def test_held_privileges_sends_the_names_as_a_parameter_alias_and_reads_the_depth():
    url = "https://contoso.crm.dynamics.com/api/data/v9.2/"
    responses.get(
        url + "systemusers(00000000-0000-0000-0000-000000000001)/"
        "Microsoft.Dynamics.CRM.RetrieveUserSetOfPrivilegesByNames(PrivilegeNames=@p)",
        json={"RolePrivileges": [{"PrivilegeName": "prvReadLead", "Depth": "Basic", "PrivilegeId": "x"}]},
    )
    http = HttpClient("https://contoso.crm.dynamics.com", lambda: "t")
    held = held_privileges(http, "00000000-0000-0000-0000-000000000001", ["prvWriteLead", "prvReadLead"])
    assert held == {"prvReadLead": "Basic"}
    sent = responses.calls[0].request.url
    assert "%40p=" in sent or "@p=" in sent
    assert "prvReadLead" in sent and "prvWriteLead" in sent


def test_a_privilege_held_at_user_depth_only_is_reported_too():
    from jobs.service.privileges import check_privileges

    mappings = load_mappings(mappings_dir(), prefix="dvs")
    lead = [mappings.tables["lead"]]

    class Client:
        def held_privileges(self, user_id, names):
            return {name: ("Basic" if name == "prvReadLead" else "Global") for name in names}

    problems = check_privileges(Client(), "u", lead, mappings, [])
    assert [p.message for p in problems] == [
        "the application user holds prvReadLead at User depth only, so it can read lead only for "
        "records it owns (none)"
    ]


def test_check_finds_the_solution_and_its_publisher_prefix(sandbox_factory, tmp_path, monkeypatch, capsys):
    sandbox = sandbox_factory(config=SandboxConfig(solutions={"dvsync": "dvs", "crmtools": "ctl"}))
    assert _check(sandbox, tmp_path, monkeypatch, capsys, solution="dvsync") == []
    missing = _check(sandbox, tmp_path, monkeypatch, capsys, solution="DvSyncDisplayName")
    assert [p["key"] for p in missing] == ["writeback.solution"]
    assert "no solution with the unique name `DvSyncDisplayName`" in missing[0]["message"]
    assert "setup-real-org.md" in missing[0]["hint"]
    other = _check(sandbox, tmp_path, monkeypatch, capsys, solution="crmtools")
    assert [p["key"] for p in other] == ["writeback.publisher_prefix"]
    assert "prefix `ctl`" in other[0]["message"] and 'publisher_prefix = "ctl"' in other[0]["hint"]
