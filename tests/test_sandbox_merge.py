"""The sandbox's Merge action and RetrieveDuplicates function, over real HTTP (and through the connector)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import requests

from connector import DataverseClient
from connector.sandbox import Sandbox, SandboxConfig

JSON = {"Content-Type": "application/json"}


def _first(session: requests.Session, sb: Sandbox, query: str) -> list[dict]:
    return session.get(f"{sb.api_url}{query}", timeout=30).json()["value"]


def _merge(session, sb, table, target, sub, update=None, checks=False):
    body = {
        "Target": {"@odata.type": f"Microsoft.Dynamics.CRM.{table}", f"{table}id": target},
        "Subordinate": {"@odata.type": f"Microsoft.Dynamics.CRM.{table}", f"{table}id": sub},
        "UpdateContent": {"@odata.type": f"Microsoft.Dynamics.CRM.{table}", **(update or {})},
        "PerformParentingChecks": checks,
    }
    return session.post(f"{sb.api_url}Merge", json=body, headers=JSON, timeout=30)


def _account_with_children(session, sb) -> tuple[str, str]:
    """Two accounts: the second has contacts and orders that must move to the first."""
    orders = _first(
        session, sb, "salesorders?$select=_customerid_value&$filter=_accountid_value ne null&$top=50"
    )
    subs = [o["_customerid_value"] for o in orders]
    contacts = _first(
        session,
        sb,
        "contacts?$select=_parentcustomerid_value&$filter=_parentcustomerid_value ne null&$top=200",
    )
    with_contacts = {c["_parentcustomerid_value"] for c in contacts}
    sub = next(s for s in subs if s in with_contacts)
    target = next(
        a["accountid"]
        for a in _first(session, sb, "accounts?$select=accountid&$top=5")
        if a["accountid"] != sub
    )
    return target, sub


def test_merge_account_deactivates_subordinate_moves_children_and_applies_update(sandbox, sandbox_session):
    s, sb = sandbox_session, sandbox
    target, sub = _account_with_children(s, sb)
    contacts = _first(s, sb, f"contacts?$select=contactid&$filter=_parentcustomerid_value eq {sub}")
    orders = _first(s, sb, f"salesorders?$select=salesorderid&$filter=_customerid_value eq {sub}")
    assert contacts and orders
    response = _merge(s, sb, "account", target, sub, {"accountnumber": "A-1234"})
    assert response.status_code == 204, response.text
    merged = s.get(
        f"{sb.api_url}accounts({sub})?$select=statecode,statuscode,merged,_masterid_value", timeout=30
    ).json()
    assert (merged["statecode"], merged["statuscode"], merged["merged"]) == (1, 2, True)
    assert merged["_masterid_value"] == target
    assert (
        s.get(f"{sb.api_url}accounts({target})?$select=accountnumber", timeout=30).json()["accountnumber"]
        == "A-1234"
    )
    assert not _first(s, sb, f"contacts?$select=contactid&$filter=_parentcustomerid_value eq {sub}")
    moved = _first(s, sb, f"contacts?$select=contactid&$filter=_parentcustomerid_value eq {target}")
    assert {c["contactid"] for c in contacts} <= {c["contactid"] for c in moved}
    moved_orders = _first(
        s, sb, f"salesorders?$select=salesorderid,_accountid_value&$filter=_customerid_value eq {target}"
    )
    assert {o["salesorderid"] for o in orders} <= {o["salesorderid"] for o in moved_orders}
    assert all(o["_accountid_value"] == target for o in moved_orders)


def test_merge_lead_moves_activities_and_cancels_the_lead(sandbox, sandbox_session):
    s, sb = sandbox_session, sandbox
    calls = _first(
        s, sb, "phonecalls?$select=_regardingobjectid_value&$filter=_regardingobjectid_value ne null&$top=1"
    )
    sub = calls[0]["_regardingobjectid_value"]
    target = next(
        x["leadid"]
        for x in _first(s, sb, "leads?$select=leadid&$filter=statecode eq 0&$top=3")
        if x["leadid"] != sub
    )
    assert _merge(s, sb, "lead", target, sub).status_code == 204
    lead = s.get(f"{sb.api_url}leads({sub})?$select=statecode,statuscode,merged", timeout=30).json()
    assert (lead["statecode"], lead["statuscode"], lead["merged"]) == (2, 7, True)
    assert not _first(s, sb, f"phonecalls?$select=activityid&$filter=_regardingobjectid_value eq {sub}")


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("itself", 400, "0x80040203"),
        ("different tables", 400, "0x80040203"),
        ("inactive master", 400, "0x80040203"),
        ("missing", 404, "0x80040217"),
        ("not mergeable", 400, "0x80040315"),
        ("no type", 400, "0x0"),
    ],
)
def test_merge_documented_errors_change_nothing(sandbox, sandbox_session, case, status, code):
    s, sb = sandbox_session, sandbox
    accounts = [a["accountid"] for a in _first(s, sb, "accounts?$select=accountid&$top=2")]
    if case == "itself":
        response = _merge(s, sb, "account", accounts[0], accounts[0])
    elif case == "different tables":
        contact = _first(s, sb, "contacts?$select=contactid&$top=1")[0]["contactid"]
        body = {
            "Target": {"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": accounts[0]},
            "Subordinate": {"@odata.type": "Microsoft.Dynamics.CRM.contact", "contactid": contact},
            "PerformParentingChecks": False,
        }
        response = s.post(f"{sb.api_url}Merge", json=body, headers=JSON, timeout=30)
    elif case == "inactive master":
        s.patch(
            f"{sb.api_url}accounts({accounts[0]})",
            json={"statecode": 1, "statuscode": 2},
            headers={**JSON, "If-Match": "*"},
            timeout=30,
        ).raise_for_status()
        response = _merge(s, sb, "account", accounts[0], accounts[1])
    elif case == "missing":
        response = _merge(s, sb, "account", accounts[0], "00000000-0000-0000-0000-00000000abcd")
    elif case == "not mergeable":
        orders = [o["salesorderid"] for o in _first(s, sb, "salesorders?$select=salesorderid&$top=2")]
        response = _merge(s, sb, "salesorder", orders[0], orders[1])
    else:
        body = {
            "Target": {"accountid": accounts[0]},
            "Subordinate": {"accountid": accounts[1]},
            "PerformParentingChecks": False,
        }
        response = s.post(f"{sb.api_url}Merge", json=body, headers=JSON, timeout=30)
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    second = s.get(f"{sb.api_url}accounts({accounts[1]})?$select=merged", timeout=30).json()
    assert not second["merged"]


def test_merge_missing_privilege_and_parenting_checks(sandbox_factory):
    sb = sandbox_factory(SandboxConfig(denied_privileges=frozenset({"prvWriteContact"})))
    from conftest import dataverse_session

    with dataverse_session(sb) as s:
        contacts = _first(
            s,
            sb,
            "contacts?$select=contactid,_parentcustomerid_value"
            "&$filter=_parentcustomerid_value ne null&$top=50",
        )
        a, b = (
            contacts[0],
            next(
                c for c in contacts if c["_parentcustomerid_value"] != contacts[0]["_parentcustomerid_value"]
            ),
        )
        denied = _merge(s, sb, "contact", a["contactid"], b["contactid"])
        assert denied.status_code == 403 and denied.json()["error"]["code"] == "0x80040220"
        assert "prvWriteContact" in denied.json()["error"]["message"]
        sb.service.config = replace(sb.service.config, denied_privileges=frozenset())
        refused = _merge(s, sb, "contact", a["contactid"], b["contactid"], checks=True)
        assert refused.status_code == 400 and "parent" in refused.json()["error"]["message"]
        assert _merge(s, sb, "contact", a["contactid"], b["contactid"], checks=False).status_code == 204


def test_merge_group_through_the_connector_is_all_or_nothing(sandbox):
    sb = sandbox
    client = DataverseClient(sb.url, lambda: sb.token)
    from conftest import dataverse_session

    with dataverse_session(sb) as s:
        ids = [
            a["accountid"] for a in _first(s, sb, "accounts?$select=accountid&$filter=statecode eq 0&$top=4")
        ]
    master, subs = ids[0], ids[1:]
    sb.service.config = replace(sb.service.config, failing_merges=frozenset({subs[2]}))
    outcome = client.merge_group("account", master, [(x, {"accountnumber": "G-1"}) for x in subs])
    assert outcome.status == "failed" and outcome.code == "0x80040265"
    for sub in subs:
        assert not client.get_record("accounts", sub)["merged"]
    assert client.get_record("accounts", master).get("accountnumber") != "G-1"
    sb.service.config = replace(sb.service.config, failing_merges=frozenset())
    assert client.merge_group("account", master, [(x, None) for x in subs]).status == "merged"
    assert all(client.get_record("accounts", x)["_masterid_value"] == master for x in subs)


def test_retrieve_duplicates_answers_from_the_rules(sandbox, sandbox_session):
    s, sb = sandbox_session, sandbox
    account = _first(s, sb, "accounts?$select=accountid,name&$top=1")[0]
    twin = s.post(f"{sb.api_url}accounts", json={"name": account["name"]}, headers=JSON, timeout=30)
    twin_id = twin.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
    p1 = json.dumps(
        {
            "@odata.type": "Microsoft.Dynamics.CRM.account",
            "name": account["name"],
            "accountid": account["accountid"],
        }
    )
    url = f"{sb.api_url}RetrieveDuplicates(BusinessEntity=@p1,MatchingEntityName=@p2,PagingInfo=@p3)"
    found = s.get(
        url, params={"@p1": p1, "@p2": "'account'", "@p3": "{'PageNumber':1,'Count':50}"}, timeout=30
    )
    assert found.status_code == 200, found.text
    assert twin_id in {r["accountid"] for r in found.json()["value"]}
    assert account["accountid"] not in {r["accountid"] for r in found.json()["value"]}
    sb.service.config = replace(sb.service.config, duplicate_rules={})
    none = s.get(
        url, params={"@p1": p1, "@p2": "'account'", "@p3": "{'PageNumber':1,'Count':50}"}, timeout=30
    )
    assert none.status_code == 400 and none.json()["error"]["code"] == "0x80048436"
