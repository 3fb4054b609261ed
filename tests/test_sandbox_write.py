"""The sandbox's writes over real HTTP: create, update, upsert, delete, etags, lookups, validation.

Status codes, headers and error codes follow ../shared/dataverse-webapi.md §5 and §11.2.
"""

from __future__ import annotations

import re
import uuid

import pytest

ENTITY_ID = re.compile(r".*/accounts\(([0-9a-f-]{36})\)$")


def test_post_returns_204_with_entity_id_and_sets_system_columns(sandbox, sandbox_session):
    r = sandbox_session.post(
        sandbox.api_url + "accounts",
        json={"name": "Sample Account", "revenue": 5000000, "creditonhold": False},
    )
    assert r.status_code == 204
    assert r.content == b""
    new_id = ENTITY_ID.fullmatch(r.headers["OData-EntityId"]).group(1)
    record = sandbox_session.get(f"{sandbox.api_url}accounts({new_id})").json()
    assert record["name"] == "Sample Account"
    assert record["revenue"] == 5000000.0
    assert record["creditonhold"] is False
    assert record["statecode"] == 0 and record["statuscode"] == 1
    assert record["createdon"] == record["modifiedon"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["createdon"])
    who = sandbox_session.get(sandbox.api_url + "WhoAmI").json()
    assert record["_ownerid_value"] == who["UserId"]


def test_post_with_return_representation_gives_201_and_the_record(sandbox, sandbox_session):
    r = sandbox_session.post(
        sandbox.api_url + "leads?$select=firstname,lastname,fullname,subject",
        json={"firstname": "Ada", "lastname": "Lovelace", "subject": "Engines"},
        headers={"Prefer": "return=representation"},
    )
    assert r.status_code == 201
    assert r.headers["Preference-Applied"] == "return=representation"
    body = r.json()
    assert body["@odata.context"].endswith("$metadata#leads(firstname,lastname,fullname,subject)/$entity")
    assert body["fullname"] == "Ada Lovelace"  # computed by the server
    assert r.headers["ETag"] == body["@odata.etag"]
    uuid.UUID(body["leadid"])


def test_patch_updates_bumps_etag_and_modifiedon(sandbox_factory):
    from datetime import UTC, datetime, timedelta

    from conftest import dataverse_session

    from connector.sandbox import SandboxConfig

    clock = [datetime(2026, 6, 1, 9, 0, tzinfo=UTC)]
    sb = sandbox_factory(config=SandboxConfig(clock=lambda: clock[0]))
    s = dataverse_session(sb)
    r = s.post(sb.api_url + "accounts", json={"name": "Before"})
    url = r.headers["OData-EntityId"]
    etag1 = s.get(url).headers["ETag"]
    clock[0] += timedelta(hours=1)
    r = s.patch(url, json={"name": "After"}, headers={"If-Match": "*"})
    assert r.status_code == 204 and r.headers["OData-EntityId"] == url
    record = s.get(url).json()
    assert record["name"] == "After"
    assert record["@odata.etag"] != etag1
    assert record["modifiedon"] == "2026-06-01T10:00:00Z" and record["createdon"] == "2026-06-01T09:00:00Z"
    # A stale etag is refused with ConcurrencyVersionMismatch.
    stale = s.patch(url, json={"name": "Lost update"}, headers={"If-Match": etag1})
    assert stale.status_code == 412
    assert stale.json()["error"] == {
        "code": "0x80060882",
        "message": "The version of the existing record doesn't match the RowVersion property provided.",
    }
    ok = s.patch(
        url,
        json={"name": "Current"},
        headers={"If-Match": record["@odata.etag"], "Prefer": "return=representation"},
    )
    assert ok.status_code == 200 and ok.json()["name"] == "Current"
    stale_delete = s.delete(url, headers={"If-Match": etag1})
    assert stale_delete.status_code == 412


def test_patch_upserts_without_if_match_and_404s_with_it(sandbox, sandbox_session):
    new_id = str(uuid.uuid4())
    url = f"{sandbox.api_url}accounts({new_id})"
    missing = sandbox_session.patch(url, json={"name": "Nope"}, headers={"If-Match": "*"})
    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "code": "0x80040217",
        "message": f"account With Id = {new_id} Does Not Exist",
    }
    assert sandbox_session.get(url).status_code == 404
    created = sandbox_session.patch(
        url, json={"name": "Upserted"}, headers={"Prefer": "return=representation"}
    )
    assert created.status_code == 201 and created.json()["accountid"] == new_id
    updated = sandbox_session.patch(
        url, json={"name": "Upserted again"}, headers={"Prefer": "return=representation"}
    )
    assert updated.status_code == 200
    plain = sandbox_session.patch(url, json={"name": "Plain"})
    assert plain.status_code == 204 and plain.headers["OData-EntityId"] == url
    create_only = sandbox_session.patch(url, json={"name": "Create only"}, headers={"If-None-Match": "*"})
    assert create_only.status_code == 412
    assert sandbox_session.get(url).json()["name"] == "Plain"


def test_delete_then_404(sandbox, sandbox_session):
    url = sandbox_session.post(sandbox.api_url + "contacts", json={"lastname": "Gone"}).headers[
        "OData-EntityId"
    ]
    assert sandbox_session.delete(url).status_code == 204
    assert sandbox_session.get(url).status_code == 404
    again = sandbox_session.delete(url)
    assert again.status_code == 404 and again.json()["error"]["code"] == "0x80040217"


def test_lookups_are_written_through_odata_bind(sandbox, sandbox_session):
    account_url = sandbox_session.post(sandbox.api_url + "accounts", json={"name": "Buyer Ltd"}).headers[
        "OData-EntityId"
    ]
    account_id = ENTITY_ID.fullmatch(account_url).group(1)
    r = sandbox_session.post(
        sandbox.api_url + "salesorders",
        json={"name": "Order 1", "customerid_account@odata.bind": f"/accounts({account_id})"},
        headers={"Prefer": "return=representation"},
    )
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["_customerid_value"] == account_id
    assert order["_accountid_value"] == account_id  # the read-only denormalised copy
    annotated = sandbox_session.get(
        f"{sandbox.api_url}salesorders({order['salesorderid']})?$select=_customerid_value",
        headers={"Prefer": 'odata.include-annotations="*"'},
    ).json()
    assert annotated["_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "account"
    assert annotated["_customerid_value@OData.Community.Display.V1.FormattedValue"] == "Buyer Ltd"
    # Plain name of a polymorphic lookup: 0x80048d19 (§5.1).
    plain = sandbox_session.post(
        sandbox.api_url + "salesorders",
        json={"name": "Bad", "customerid@odata.bind": f"/accounts({account_id})"},
    )
    assert plain.status_code == 400 and plain.json()["error"]["code"] == "0x80048d19"
    assert "customerid" in plain.json()["error"]["message"]
    # Binding to a record that does not exist.
    ghost = str(uuid.uuid4())
    missing = sandbox_session.post(
        sandbox.api_url + "contacts",
        json={"lastname": "X", "parentcustomerid_account@odata.bind": f"accounts({ghost})"},
    )
    assert missing.status_code == 404 and ghost in missing.json()["error"]["message"]
    # Full URLs are accepted too.
    full = sandbox_session.post(
        sandbox.api_url + "contacts",
        json={"lastname": "Y", "parentcustomerid_account@odata.bind": account_url},
    )
    assert full.status_code == 204


@pytest.mark.parametrize(
    ("body", "code", "fragment"),
    [
        (
            {"Name": "x"},
            "0x0",
            "Invalid property 'Name' was found in entity 'Microsoft.Dynamics.CRM.account'",
        ),
        ({"name": 42}, "0x0", "Cannot convert the literal '42' to the expected type 'Edm.String'"),
        ({"name": "x" * 161}, "0x80044331", "exceeded the maximum allowed length of '160'"),
        ({"numberofemployees": "ten"}, "0x0", "Edm.Int32"),
        ({"creditonhold": "yes"}, "0x0", "Edm.Boolean"),
        ({"industrycode": 999}, "0x80044331", "outside the valid range"),
        ({"revenue": -5}, "0x80044331", "outside the valid range"),
        ({"statecode": 1}, "0x0", "read-only on create"),
        ({"_primarycontactid_value": str(uuid.uuid4())}, "0x0", "Invalid property '_primarycontactid_value'"),
    ],
)
def test_invalid_bodies_get_dataverse_errors(sandbox, sandbox_session, body, code, fragment):
    r = sandbox_session.post(sandbox.api_url + "accounts", json=body)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == code
    assert fragment in error["message"]


def test_read_only_columns_are_refused_and_audit_columns_ignored(sandbox, sandbox_session):
    lead_url = sandbox_session.post(
        sandbox.api_url + "leads", json={"lastname": "Ro", "createdon": "2001-01-01T00:00:00Z"}
    ).headers["OData-EntityId"]
    assert not sandbox_session.get(lead_url).json()["createdon"].startswith("2001")
    r = sandbox_session.patch(lead_url, json={"fullname": "Hacked"}, headers={"If-Match": "*"})
    assert r.status_code == 400 and "read-only" in r.json()["error"]["message"]
    order = sandbox_session.post(sandbox.api_url + "salesorders", json={"name": "T", "totalamount": 5})
    assert order.status_code == 400


def test_state_changes_patch_statecode_and_statuscode_together(sandbox, sandbox_session):
    url = sandbox_session.post(sandbox.api_url + "leads", json={"lastname": "State"}).headers[
        "OData-EntityId"
    ]
    assert (
        sandbox_session.patch(
            url, json={"statecode": 2, "statuscode": 4}, headers={"If-Match": "*"}
        ).status_code
        == 204
    )
    record = sandbox_session.get(url + "?$select=statecode,statuscode").json()
    assert (record["statecode"], record["statuscode"]) == (2, 4)
    bad = sandbox_session.patch(url, json={"statecode": 0, "statuscode": 4}, headers={"If-Match": "*"})
    assert bad.status_code == 400 and "not a valid status code" in bad.json()["error"]["message"]
    assert sandbox_session.patch(url, json={"statecode": 0}, headers={"If-Match": "*"}).status_code == 204
    null_state = sandbox_session.patch(url, json={"statecode": None}, headers={"If-Match": "*"})
    assert null_state.status_code == 400 and null_state.json()["error"]["code"] == "0x80040200"
    assert (
        sandbox_session.get(url + "?$select=statuscode").json()["statuscode"] == 1
    )  # default status of Open


def test_single_property_put_and_delete(sandbox, sandbox_session):
    url = sandbox_session.post(
        sandbox.api_url + "accounts", json={"name": "Prop", "description": "text"}
    ).headers["OData-EntityId"]
    assert sandbox_session.put(url + "/name", json={"value": "Renamed"}).status_code == 204
    assert sandbox_session.get(url + "/name").json()["value"] == "Renamed"
    assert sandbox_session.delete(url + "/description").status_code == 204
    assert sandbox_session.get(url).json()["description"] is None


def test_a_chunked_request_body_is_read(sandbox, sandbox_session):
    def body():
        yield b'{"name": '
        yield b'"Streamed"}'

    r = sandbox_session.post(
        sandbox.api_url + "accounts", data=body(), headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 204
    assert sandbox_session.get(r.headers["OData-EntityId"]).json()["name"] == "Streamed"


def test_create_update_and_upsert_multiple(sandbox, sandbox_session):
    api = sandbox.api_url
    lead = "Microsoft.Dynamics.CRM.lead"
    created = sandbox_session.post(
        api + "leads/Microsoft.Dynamics.CRM.CreateMultiple",
        json={"Targets": [{"@odata.type": lead, "lastname": "A"}, {"@odata.type": lead, "lastname": "B"}]},
    )
    assert created.status_code == 200
    body = created.json()
    assert body["@odata.context"].endswith("$metadata#Microsoft.Dynamics.CRM.CreateMultipleResponse")
    a, b = body["Ids"]
    updated = sandbox_session.post(
        api + "leads/Microsoft.Dynamics.CRM.UpdateMultiple",
        json={
            "Targets": [
                {"@odata.type": lead, "leadid": a, "lastname": "A2"},
                {"@odata.type": lead, "leadid": b, "jobtitle": "CTO"},
            ]
        },
    )
    assert updated.status_code == 204
    assert sandbox_session.get(f"{api}leads({a})?$select=lastname").json()["lastname"] == "A2"
    # One missing record fails the whole action: nothing is applied.
    ghost = str(uuid.uuid4())
    failed = sandbox_session.post(
        api + "leads/Microsoft.Dynamics.CRM.UpdateMultiple",
        json={
            "Targets": [
                {"@odata.type": lead, "leadid": a, "lastname": "A3"},
                {"@odata.type": lead, "leadid": ghost, "lastname": "X"},
            ]
        },
    )
    assert failed.status_code == 404 and failed.json()["error"]["code"] == "0x80040217"
    assert sandbox_session.get(f"{api}leads({a})?$select=lastname").json()["lastname"] == "A2"
    upserted = sandbox_session.post(
        api + "leads/Microsoft.Dynamics.CRM.UpsertMultiple",
        json={
            "Targets": [
                {"@odata.type": lead, "leadid": ghost, "lastname": "New"},
                {"@odata.type": lead, "leadid": a, "lastname": "A4"},
            ]
        },
    )
    assert upserted.status_code == 200 and upserted.json()["Ids"] == [ghost, a]
    assert sandbox_session.get(f"{api}leads({ghost})?$select=lastname").json()["lastname"] == "New"
    wrong = sandbox_session.post(
        api + "leads/Microsoft.Dynamics.CRM.CreateMultiple",
        json={"Targets": [{"@odata.type": "Microsoft.Dynamics.CRM.account", "name": "x"}]},
    )
    assert wrong.status_code == 400


def test_duplicate_detection_only_when_asked(sandbox, sandbox_session):
    api = sandbox.api_url
    first = sandbox_session.post(api + "leads", json={"lastname": "Dup", "emailaddress1": "dup@example.com"})
    assert first.status_code == 204
    # Off by default for the Web API (§9.1): the same e-mail is accepted.
    second = sandbox_session.post(
        api + "leads", json={"lastname": "Dup2", "emailaddress1": "dup@example.com"}
    )
    assert second.status_code == 204
    on = {"MSCRM.SuppressDuplicateDetection": "false"}
    r = sandbox_session.post(
        api + "leads", json={"lastname": "Dup3", "emailaddress1": "DUP@example.com"}, headers=on
    )
    assert r.status_code == 500
    assert r.json()["error"]["code"] == "0x80040333"
    assert r.json()["error"]["message"].startswith("A record was not created or updated because a duplicate")
    other = sandbox_session.post(
        api + "leads", json={"lastname": "Other", "emailaddress1": "other@example.com"}, headers=on
    )
    assert other.status_code == 204
    # Updating a record into a duplicate is refused the same way; inactive records do not count.
    move = {"emailaddress1": "dup@example.com"}
    assert sandbox_session.patch(other.headers["OData-EntityId"], json=move, headers=on).status_code == 500
    for created in (first, second):
        disqualify = {"statecode": 2, "statuscode": 4}
        url = created.headers["OData-EntityId"]
        assert sandbox_session.patch(url, json=disqualify, headers={"If-Match": "*"}).status_code == 204
    assert sandbox_session.patch(other.headers["OData-EntityId"], json=move, headers=on).status_code == 204
