"""Paging: Prefer on every page, nextLinks followed verbatim, loops refused, one page at a time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import responses
from responses import matchers

from connector import DataverseClient, ProtocolError, RetryPolicy

ORG = "https://contoso.crm.dynamics.com"
BASE = f"{ORG}/api/data/v9.2/"
DATA = Path(__file__).parent / "data" / "dataverse"


def fixture(name: str) -> dict:
    text = (DATA / name).read_text().replace("[Organization URI]", ORG).replace("[Organization Uri]", ORG)
    return json.loads(text)


def client() -> DataverseClient:
    return DataverseClient(ORG, lambda: "token", retry=RetryPolicy(sleep=lambda s: None))


def last_page() -> dict:
    return {
        "@odata.context": f"{ORG}/api/data/v9.2/$metadata#contacts(fullname)",
        "value": [
            {
                "@odata.etag": 'W/"72201546"',
                "fullname": "Nancy Anderson (sample)",
                "contactid": "d5026a4d-d01c-ed11-b83e-000d3a572421",
            }
        ],
    }


@responses.activate
def test_follows_the_documented_nextlink_verbatim_with_the_same_prefer():
    first = fixture("page_contacts_1.json")
    next_link = first["@odata.nextLink"]
    responses.get(BASE + "contacts", json=first, match=[matchers.query_string_matcher("$select=fullname")])
    responses.get(
        next_link, json=last_page(), match=[matchers.query_string_matcher(next_link.split("?", 1)[1])]
    )
    names = [c["fullname"] for c in client().iter_records("contacts", ["fullname"], page_size=2)]
    assert names == ["Yvonne McKay (sample)", "Susanna Stubberod (sample)", "Nancy Anderson (sample)"]
    assert len(responses.calls) == 2
    # The nextLink went out byte for byte (no re-encoding of its $skiptoken cookie).
    assert responses.calls[1].request.url == next_link
    assert [c.request.headers["Prefer"] for c in responses.calls] == ["odata.maxpagesize=2"] * 2


@responses.activate
def test_formatted_values_ask_for_the_annotation_on_every_page():
    page = fixture("accounts_formatted_values.json")
    page["@odata.nextLink"] = BASE + "accounts?$skiptoken=2"
    responses.get(
        BASE + "accounts", json=page, match=[matchers.query_param_matcher({"$select": "name,revenue"})]
    )
    responses.get(
        BASE + "accounts", json={"value": []}, match=[matchers.query_param_matcher({"$skiptoken": "2"})]
    )
    records = list(client().iter_records("accounts", ["name", "revenue"], formatted_values=True))
    assert records[0]["revenue@OData.Community.Display.V1.FormattedValue"] == "$20,000.00"
    expected = 'odata.maxpagesize=5000,odata.include-annotations="OData.Community.Display.V1.FormattedValue"'
    assert [c.request.headers["Prefer"] for c in responses.calls] == [expected, expected]


@responses.activate
def test_lookup_annotations_are_asked_for_on_every_page_and_combine_with_formatted_values():
    # The documented shape (reference §3.3): the annotation precedes the _x_value it describes.
    page = {
        "value": [
            {
                "_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname": "contact",
                "_customerid_value": "70bf4d48-34cb-ed11-b596-0022481d68cd",
                "salesorderid": "78914942-34cb-ed11-b596-0022481d68cd",
            }
        ],
        "@odata.nextLink": BASE + "salesorders?$skiptoken=2",
    }
    responses.get(
        BASE + "salesorders",
        json=page,
        match=[matchers.query_param_matcher({"$select": "_customerid_value"})],
    )
    responses.get(
        BASE + "salesorders", json={"value": []}, match=[matchers.query_param_matcher({"$skiptoken": "2"})]
    )
    records = list(
        client().iter_records(
            "salesorders",
            ["_customerid_value"],
            formatted_values=True,
            annotations=[
                "Microsoft.Dynamics.CRM.lookuplogicalname",
                "OData.Community.Display.V1.FormattedValue",
            ],
        )
    )
    assert records[0]["_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "contact"
    expected = (
        'odata.maxpagesize=5000,odata.include-annotations="OData.Community.Display.V1.FormattedValue,'
        'Microsoft.Dynamics.CRM.lookuplogicalname"'
    )
    assert [c.request.headers["Prefer"] for c in responses.calls] == [expected, expected]


@pytest.mark.parametrize("bad", ['lookuplogicalname"', "a,b", "", "Microsoft..CRM"])
def test_a_malformed_annotation_name_is_refused_before_any_request(bad):
    with pytest.raises(ValueError, match="not an annotation name"):
        next(client().iter_records("salesorders", ["name"], annotations=[bad]))


@responses.activate
def test_filter_and_orderby_are_encoded_into_the_first_request_only():
    responses.get(BASE + "leads", json={"value": [], "@odata.nextLink": BASE + "leads?$skiptoken=x"})
    responses.get(BASE + "leads", json={"value": []})
    list(
        client().iter_records(
            "leads", ["fullname"], filter="lastname eq 'O''Bryan'", orderby="createdon desc", page_size=10
        )
    )
    first, second = (c.request.url for c in responses.calls)
    assert "$filter=lastname%20eq%20%27O%27%27Bryan%27" in first
    assert "$orderby=createdon%20desc" in first
    assert second == BASE + "leads?$skiptoken=x"


@responses.activate
def test_a_repeated_nextlink_is_refused():
    loop = BASE + "leads?$skiptoken=same"
    responses.get(BASE + "leads", json={"value": [{"leadid": "1"}], "@odata.nextLink": loop})
    responses.get(loop, json={"value": [{"leadid": "2"}], "@odata.nextLink": loop})
    seen = []
    with pytest.raises(ProtocolError, match="already followed"):
        for record in client().iter_records("leads", ["fullname"]):
            seen.append(record["leadid"])
    assert seen == ["1"]  # the looping page's records are not yielded twice


@responses.activate
def test_a_loop_over_two_links_is_refused():
    a, b = BASE + "leads?$skiptoken=a", BASE + "leads?$skiptoken=b"
    responses.get(
        BASE + "leads",
        json={"value": [], "@odata.nextLink": a},
        match=[matchers.query_param_matcher({"$select": "fullname"})],
    )
    responses.get(
        BASE + "leads",
        json={"value": [], "@odata.nextLink": b},
        match=[matchers.query_param_matcher({"$skiptoken": "a"})],
    )
    responses.get(
        BASE + "leads",
        json={"value": [], "@odata.nextLink": a},
        match=[matchers.query_param_matcher({"$skiptoken": "b"})],
    )
    with pytest.raises(ProtocolError, match="already followed"):
        list(client().iter_records("leads", ["fullname"]))


@responses.activate
def test_a_page_without_value_is_a_protocol_error():
    responses.get(BASE + "leads", json={"@odata.context": "x"})
    with pytest.raises(ProtocolError, match="'value'"):
        list(client().iter_records("leads", ["fullname"]))


@responses.activate
def test_pages_are_fetched_lazily_one_at_a_time():
    responses.get(
        BASE + "leads",
        json={"value": [{"n": 1}, {"n": 2}], "@odata.nextLink": BASE + "leads?$skiptoken=2"},
        match=[matchers.query_param_matcher({"$select": "fullname"})],
    )
    responses.get(
        BASE + "leads", json={"value": [{"n": 3}]}, match=[matchers.query_param_matcher({"$skiptoken": "2"})]
    )
    records = client().iter_records("leads", ["fullname"])
    assert len(responses.calls) == 0
    assert next(records)["n"] == 1
    assert next(records)["n"] == 2
    assert len(responses.calls) == 1  # page 2 is requested only when page 1 is used up
    assert next(records)["n"] == 3
    assert len(responses.calls) == 2


@pytest.mark.parametrize("size", [0, 5001, -1])
def test_page_size_is_validated(size):
    with pytest.raises(ValueError, match="page_size"):
        list(client().iter_records("leads", ["fullname"], page_size=size))


def test_entity_set_names_are_validated():
    with pytest.raises(ValueError, match="entity set"):
        list(client().iter_records("leads?$top=1", ["fullname"]))
