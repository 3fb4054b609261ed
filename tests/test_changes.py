"""Change tracking: full read with odata.track-changes, delta links, $deletedEntity, typed errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import responses
from responses import matchers

from connector import (
    ChangeTokenExpiredError,
    ChangeTrackingDisabledError,
    DataverseClient,
    ProtocolError,
    RetryPolicy,
)

ORG = "https://contoso.crm.dynamics.com"
BASE = f"{ORG}/api/data/v9.2/"
DATA = Path(__file__).parent / "data" / "dataverse"
ERRORS = json.loads((DATA / "errors.json").read_text())
SELECT = ["name", "accountnumber", "telephone1", "fax"]


def fixture_text(name: str) -> str:
    return (DATA / name).read_text().replace("[Organization URI]", ORG)


def client() -> DataverseClient:
    return DataverseClient(ORG, lambda: "token", retry=RetryPolicy(sleep=lambda s: None))


@responses.activate
def test_first_read_sends_track_changes_and_returns_the_delta_link():
    body = fixture_text("change_tracking_initial.json")
    responses.get(BASE + "accounts", body=body, content_type="application/json")
    changes = client().read_changes("accounts", SELECT)
    assert [r["name"] for r in changes.records] == ["Monte Orton"]
    assert changes.deleted_ids == []
    assert changes.delta_link == json.loads(body)["@odata.deltaLink"]
    assert responses.calls[0].request.headers["Prefer"] == "odata.track-changes,odata.maxpagesize=5000"
    assert "$select=name%2Caccountnumber%2Ctelephone1%2Cfax" in responses.calls[0].request.url


@responses.activate
def test_delta_read_splits_changed_records_from_deleted_ids():
    delta = json.loads(fixture_text("change_tracking_delta.json"))
    link = BASE + "accounts?$select=name,telephone1,fax&$deltatoken=919042%2108%2f22%2f2017%2008%3a10%3a44"
    responses.get(link, json=delta, match=[matchers.query_string_matcher(link.split("?", 1)[1])])
    changes = client().read_changes("accounts", SELECT, delta_link=link)
    assert [r["accountid"] for r in changes.records] == ["60c4e274-0d87-e711-80e5-00155db19e6d"]
    assert changes.deleted_ids == ["2e451703-c686-e711-80e5-00155db19e6d"]
    assert changes.delta_link.endswith("$deltatoken=919058%2108%2f22%2f2017%2008%3a21%3a20")
    assert responses.calls[0].request.url == link  # replayed verbatim


@pytest.mark.parametrize("delta_first", [True, False])
@responses.activate
def test_delta_link_position_in_the_json_does_not_matter(delta_first):
    deleted = {
        "@odata.context": f"{ORG}/api/data/v9.2/$metadata#leads/$deletedEntity",
        "id": "0d1156d2-1598-e711-80e8-00155db64062",
        "reason": "deleted",
    }
    value = json.dumps([deleted])
    delta = f'"@odata.deltaLink":"{BASE}leads?$deltatoken=2"'
    body = "{" + (f'{delta},"value":{value}' if delta_first else f'"value":{value},{delta}') + "}"
    responses.get(BASE + "leads", body=body, content_type="application/json")
    changes = client().read_changes("leads", ["fullname"])
    assert changes.deleted_ids == ["0d1156d2-1598-e711-80e8-00155db64062"]
    assert changes.delta_link == BASE + "leads?$deltatoken=2"


@responses.activate
def test_pages_of_a_full_read_and_resuming_from_a_committed_next_link():
    page1 = {"value": [{"leadid": "1"}], "@odata.nextLink": BASE + "leads?$skiptoken=p2"}
    page2 = {"value": [{"leadid": "2"}], "@odata.nextLink": BASE + "leads?$skiptoken=p3"}
    page3 = {"value": [{"leadid": "3"}], "@odata.deltaLink": BASE + "leads?$deltatoken=99"}
    responses.get(BASE + "leads", json=page1, match=[matchers.query_param_matcher({"$select": "fullname"})])
    responses.get(BASE + "leads", json=page2, match=[matchers.query_param_matcher({"$skiptoken": "p2"})])
    responses.get(BASE + "leads", json=page3, match=[matchers.query_param_matcher({"$skiptoken": "p3"})])
    pages = list(client().iter_change_pages("leads", ["fullname"], page_size=1))
    assert [p.next_link for p in pages] == [BASE + "leads?$skiptoken=p2", BASE + "leads?$skiptoken=p3", None]
    assert [p.delta_link for p in pages] == [None, None, BASE + "leads?$deltatoken=99"]
    prefers = {c.request.headers["Prefer"] for c in responses.calls}
    assert prefers == {"odata.track-changes,odata.maxpagesize=1"}

    # A crash after committing page 2: resume from its next_link, read only page 3.
    responses.calls.reset()
    resumed = list(
        client().iter_change_pages("leads", ["fullname"], resume_link=pages[1].next_link, page_size=1)
    )
    assert [r["leadid"] for p in resumed for r in p.records] == ["3"]
    assert len(responses.calls) == 1


LOOKUP_PREFER = (
    "odata.track-changes,odata.maxpagesize=1,"
    'odata.include-annotations="Microsoft.Dynamics.CRM.lookuplogicalname"'
)


@responses.activate
def test_annotations_go_out_on_every_page_of_a_full_read_a_resume_and_a_delta_replay():
    annotations = ["Microsoft.Dynamics.CRM.lookuplogicalname"]
    page1 = {"value": [{"salesorderid": "1"}], "@odata.nextLink": BASE + "salesorders?$skiptoken=p2"}
    page2 = {
        "value": [
            {
                "_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname": "account",
                "_customerid_value": "a",
                "salesorderid": "2",
            }
        ],
        "@odata.deltaLink": BASE + "salesorders?$deltatoken=7",
    }
    responses.get(
        BASE + "salesorders",
        json=page1,
        match=[matchers.query_param_matcher({"$select": "_customerid_value"})],
    )
    responses.get(
        BASE + "salesorders", json=page2, match=[matchers.query_param_matcher({"$skiptoken": "p2"})]
    )
    responses.get(
        BASE + "salesorders",
        json={"value": [], "@odata.deltaLink": BASE + "salesorders?$deltatoken=8"},
        match=[matchers.query_param_matcher({"$deltatoken": "7"})],
    )
    dv = client()
    pages = list(
        dv.iter_change_pages("salesorders", ["_customerid_value"], page_size=1, annotations=annotations)
    )
    assert pages[1].records[0]["_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "account"
    list(
        dv.iter_change_pages(
            "salesorders",
            ["_customerid_value"],
            resume_link=pages[0].next_link,
            page_size=1,
            annotations=annotations,
        )
    )
    list(
        dv.iter_change_pages(
            "salesorders",
            ["_customerid_value"],
            delta_link=pages[1].delta_link,
            page_size=1,
            annotations=annotations,
        )
    )
    assert [c.request.headers["Prefer"] for c in responses.calls] == [LOOKUP_PREFER] * 4
    assert responses.calls[3].request.url == BASE + "salesorders?$deltatoken=7"


@responses.activate
def test_read_changes_passes_annotations_on_every_page():
    link = BASE + "salesorders?$deltatoken=7"
    responses.get(
        BASE + "salesorders",
        json={"value": [], "@odata.deltaLink": BASE + "salesorders?$deltatoken=8"},
        match=[matchers.query_param_matcher({"$deltatoken": "7"})],
    )
    changes = client().read_changes(
        "salesorders", ["_customerid_value"], link, annotations=["Microsoft.Dynamics.CRM.lookuplogicalname"]
    )
    assert changes.delta_link == BASE + "salesorders?$deltatoken=8"
    assert responses.calls[0].request.headers["Prefer"] == (
        "odata.track-changes,odata.maxpagesize=5000,"
        'odata.include-annotations="Microsoft.Dynamics.CRM.lookuplogicalname"'
    )


@responses.activate
def test_empty_delta_returns_no_changes_and_a_new_link():
    responses.get(BASE + "leads", json={"value": [], "@odata.deltaLink": BASE + "leads?$deltatoken=5"})
    changes = client().read_changes("leads", ["fullname"], delta_link=BASE + "leads?$deltatoken=4")
    assert (changes.records, changes.deleted_ids, changes.delta_link) == (
        [],
        [],
        BASE + "leads?$deltatoken=5",
    )


@responses.activate
def test_expired_token_raises_its_own_error():
    entry = ERRORS["change_token_expired"]
    responses.get(BASE + "leads", status=entry["status"], json=entry["body"])
    with pytest.raises(ChangeTokenExpiredError, match="full sync") as info:
        client().read_changes(
            "leads", ["fullname"], delta_link=BASE + "leads?$deltatoken=918815%2108%2f01%2f2017"
        )
    assert info.value.code == "0x80044352"
    assert "918815" not in str(info.value)  # the token is data, redacted from the message


@responses.activate
def test_table_without_change_tracking_raises_its_own_error():
    entry = ERRORS["change_tracking_disabled"]
    responses.get(BASE + "leads", status=entry["status"], json=entry["body"])
    with pytest.raises(ChangeTrackingDisabledError, match="modifiedon"):
        list(client().iter_change_pages("leads", ["fullname"]))


@responses.activate
def test_last_page_without_delta_link_is_a_protocol_error():
    responses.get(BASE + "leads", json={"value": [{"leadid": "1"}]})
    with pytest.raises(ProtocolError, match="deltaLink"):
        client().read_changes("leads", ["fullname"])


@responses.activate
def test_deleted_entry_without_id_is_a_protocol_error():
    body = {
        "value": [{"@odata.context": f"{BASE}$metadata#leads/$deletedEntity", "reason": "deleted"}],
        "@odata.deltaLink": BASE + "leads?$deltatoken=2",
    }
    responses.get(BASE + "leads", json=body)
    with pytest.raises(ProtocolError, match="id"):
        client().read_changes("leads", ["fullname"])


@responses.activate
def test_an_odata_401_removed_entry_gives_the_id_from_its_link():
    gone = "2e451703-c686-e711-80e5-00155db19e6d"
    body = {
        "value": [{"@removed": {"reason": "deleted"}, "@id": f"{BASE}leads({gone})"}, {"leadid": "x"}],
        "@odata.deltaLink": BASE + "leads?$deltatoken=3",
    }
    responses.get(BASE + "leads", json=body)
    changes = client().read_changes("leads", ["fullname"])
    assert changes.deleted_ids == [gone]
    assert changes.records == [{"leadid": "x"}]
