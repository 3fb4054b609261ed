"""The sandbox's read side over real HTTP: service documents, auth, queries, annotations, paging.

Assertions follow Microsoft's documented shapes (../shared/dataverse-webapi.md §1-§3).
"""

from __future__ import annotations

import json
import re
import uuid
from urllib.parse import quote

import pytest
import requests
from conftest import dataverse_session

JSON = "application/json; odata.metadata=minimal"
COUNT_ANNOTATIONS = (
    "Microsoft.Dynamics.CRM.totalrecordcount,Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"
)


def _all(session: requests.Session, url: str, page_size: int = 5000, **headers: str) -> list[dict]:
    prefer = f"odata.maxpagesize={page_size}"
    records, seen = [], set()
    while url:
        assert url not in seen
        seen.add(url)
        r = session.get(url, headers={"Prefer": prefer, **headers})
        assert r.status_code == 200, r.text
        body = r.json()
        records.extend(body["value"])
        url = body.get("@odata.nextLink")
    return records


def test_service_document_whoami_and_metadata(sandbox, sandbox_session):
    r = sandbox_session.get(sandbox.api_url)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == JSON
    assert r.headers["OData-Version"] == "4.0"
    assert r.headers["REQ_ID"]
    assert r.headers["x-ms-dop-hint"] == "4"
    assert int(r.headers["x-ms-ratelimit-burst-remaining-xrm-requests"]) < 6000
    body = r.json()
    assert body["@odata.context"] == f"{sandbox.api_url}$metadata"
    names = {e["name"] for e in body["value"]}
    assert {"leads", "accounts", "contacts", "salesorders", "salesorderdetails", "opportunities"} <= names
    assert {"kind": "EntitySet", "name": "leads", "url": "leads"} in body["value"]

    who = sandbox_session.get(sandbox.api_url + "WhoAmI").json()
    assert who["@odata.context"].endswith("$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse")
    assert {"BusinessUnitId", "UserId", "OrganizationId"} <= who.keys()
    assert sandbox_session.get(sandbox.api_url + "WhoAmI()").json()["UserId"] == who["UserId"]
    # WhoAmI is a function: POST is "No HTTP resource" (§2.5).
    assert sandbox_session.post(sandbox.api_url + "WhoAmI", json={}).status_code == 404

    csdl = sandbox_session.get(sandbox.api_url + "$metadata")
    assert csdl.status_code == 200 and csdl.headers["Content-Type"].startswith("application/xml")
    assert '<Schema Namespace="Microsoft.Dynamics.CRM" Alias="mscrm"' in csdl.text
    assert '<EntityType Name="lead" BaseType="mscrm.crmbaseentity">' in csdl.text
    assert '<Property Name="_parentaccountid_value" Type="Edm.Guid"/>' in csdl.text
    assert '<NavigationProperty Name="customerid_account" Type="mscrm.account"/>' in csdl.text


def test_requests_without_the_token_get_a_dataverse_shaped_401(sandbox):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {sandbox.token}"}):
        r = requests.get(sandbox.api_url + "leads", headers=headers, timeout=10)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "0x80044302"
        assert sandbox.token not in r.text
        assert r.headers["WWW-Authenticate"].startswith("Bearer authorization_uri=")


def test_unknown_entity_set_and_property_errors(sandbox, sandbox_session):
    r = sandbox_session.get(sandbox.api_url + "Leads")  # names are case-sensitive (§3.9)
    assert r.status_code == 404
    assert r.json() == {
        "error": {"code": "0x8006088a", "message": "Resource not found for the segment 'Leads'."}
    }
    r = sandbox_session.get(sandbox.api_url + "leads?$select=Fullname")
    assert r.status_code == 400
    assert r.json()["error"] == {
        "code": "0x0",
        "message": "Could not find a property named 'Fullname' on type 'Microsoft.Dynamics.CRM.lead'.",
    }


@pytest.mark.parametrize("option", ["$skip=10", "$search=contoso", "$format=json"])
def test_skip_search_and_format_are_rejected(sandbox, sandbox_session, option):
    r = sandbox_session.get(sandbox.api_url + f"leads?{option}")
    assert r.status_code == 400
    assert "not supported" in r.json()["error"]["message"]


def test_select_returns_key_etag_and_lookups_as_value_properties(sandbox, sandbox_session):
    r = sandbox_session.get(sandbox.api_url + "salesorders?$select=name,totalamount,_customerid_value&$top=3")
    body = r.json()
    assert (
        body["@odata.context"]
        == f"{sandbox.api_url}$metadata#salesorders(name,totalamount,_customerid_value)"
    )
    assert len(body["value"]) == 3
    first = body["value"][0]
    assert next(iter(first)) == "@odata.etag" and re.fullmatch(r'W/"\d+"', first["@odata.etag"])
    assert list(first)[-1] == "salesorderid"
    # Selecting money brings the currency lookup along (§3.2).
    assert set(first) == {
        "@odata.etag",
        "name",
        "totalamount",
        "_customerid_value",
        "_transactioncurrencyid_value",
        "salesorderid",
    }
    assert "@odata.nextLink" not in body


def test_single_record_by_key_with_etag_and_conditional_get(sandbox, sandbox_session):
    lead = sandbox_session.get(sandbox.api_url + "leads?$select=lastname&$top=1").json()["value"][0]
    url = f"{sandbox.api_url}leads({lead['leadid']})?$select=lastname,emailaddress1"
    r = sandbox_session.get(url)
    assert r.status_code == 200
    assert r.json()["@odata.context"] == f"{sandbox.api_url}$metadata#leads(lastname,emailaddress1)/$entity"
    assert r.headers["ETag"] == lead["@odata.etag"]
    assert sandbox_session.get(url, headers={"If-None-Match": r.headers["ETag"]}).status_code == 304
    missing = sandbox_session.get(f"{sandbox.api_url}leads({uuid.uuid4()})")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "0x80040217"
    prop = sandbox_session.get(f"{sandbox.api_url}leads({lead['leadid']})/lastname").json()
    assert prop["value"] == lead["lastname"]


def _filter(session, sb, entity_set, text, select):
    url = f"{sb.api_url}{entity_set}?$select={select}&$filter={quote(text)}"
    r = session.get(url, headers={"Prefer": "odata.maxpagesize=5000"})
    assert r.status_code == 200, r.text
    return r.json()["value"]


def test_filter_operators_and_case_insensitive_string_functions(sandbox, sandbox_session):
    leads = _all(
        sandbox_session, sandbox.api_url + "leads?$select=lastname,companyname,statecode,numberofemployees"
    )
    some = next(r for r in leads if r["companyname"] and len(r["companyname"]) > 4)
    word = some["companyname"][1:4]
    got = _filter(sandbox_session, sandbox, "leads", f"contains(companyname,'{word.upper()}')", "companyname")
    expected = {r["leadid"] for r in leads if r["companyname"] and word.lower() in r["companyname"].lower()}
    assert {r["leadid"] for r in got} == expected
    starts = _filter(
        sandbox_session,
        sandbox,
        "leads",
        f"startswith(lastname,'{some['lastname'][:2].lower()}')",
        "lastname",
    )
    assert {r["leadid"] for r in starts} == {
        r["leadid"]
        for r in leads
        if r["lastname"] and r["lastname"].lower().startswith(some["lastname"][:2].lower())
    }
    combined = _filter(
        sandbox_session,
        sandbox,
        "leads",
        "(statecode eq 1 or statecode eq 2) and numberofemployees ge 100 and not (numberofemployees gt 1000)",
        "statecode",
    )
    assert {r["leadid"] for r in combined} == {
        r["leadid"]
        for r in leads
        if r["statecode"] in (1, 2)
        and r["numberofemployees"] is not None
        and 100 <= r["numberofemployees"] <= 1000
    }
    nulls = _filter(sandbox_session, sandbox, "leads", "numberofemployees eq null", "numberofemployees")
    assert {r["leadid"] for r in nulls} == {r["leadid"] for r in leads if r["numberofemployees"] is None}


def test_filter_doubled_quotes_and_unterminated_literal(sandbox, sandbox_session):
    body = {"lastname": "O'Bryan", "subject": "quote test"}
    r = sandbox_session.post(sandbox.api_url + "leads", json=body)
    assert r.status_code == 204
    got = _filter(sandbox_session, sandbox, "leads", "lastname eq 'O''Bryan'", "lastname")
    assert [g["lastname"] for g in got] == ["O'Bryan"]
    bad = sandbox_session.get(sandbox.api_url + "leads?$filter=" + quote("lastname eq 'O'Bryan'"))
    assert bad.status_code == 400
    assert (
        bad.json()["error"]["message"]
        == "There is an unterminated literal at position 21 in 'lastname eq 'O'Bryan''."
    )


def test_dataverse_query_functions(sandbox, sandbox_session):
    leads = _all(sandbox_session, sandbox.api_url + "leads?$select=lastname,numberofemployees,createdon")
    between = _filter(
        sandbox_session,
        sandbox,
        "leads",
        'Microsoft.Dynamics.CRM.Between(PropertyName=\'numberofemployees\',PropertyValues=["5","200"])',
        "numberofemployees",
    )
    assert {r["leadid"] for r in between} == {
        r["leadid"]
        for r in leads
        if r["numberofemployees"] is not None and 5 <= r["numberofemployees"] <= 200
    }
    names = sorted({r["lastname"] for r in leads if r["lastname"]})[:3]
    values = json.dumps(names)
    inside = _filter(
        sandbox_session,
        sandbox,
        "leads",
        f"Microsoft.Dynamics.CRM.In(PropertyName='lastname',PropertyValues={values})",
        "lastname",
    )
    assert {r["lastname"] for r in inside} == set(names)
    outside = _filter(
        sandbox_session,
        sandbox,
        "leads",
        f"Microsoft.Dynamics.CRM.NotIn(PropertyName='lastname',PropertyValues={values})",
        "lastname",
    )
    assert not {r["lastname"] for r in outside} & set(names)
    day = sorted(r["createdon"] for r in leads)[len(leads) // 2][:10]
    on = _filter(
        sandbox_session,
        sandbox,
        "leads",
        f"Microsoft.Dynamics.CRM.On(PropertyName='createdon',PropertyValue='{day}')",
        "createdon",
    )
    assert on and all(r["createdon"].startswith(day) for r in on)
    assert len(on) == sum(r["createdon"].startswith(day) for r in leads)
    after = _filter(
        sandbox_session,
        sandbox,
        "leads",
        f"Microsoft.Dynamics.CRM.OnOrAfter(PropertyName='createdon',PropertyValue='{day}')",
        "createdon",
    )
    assert len(after) == sum(r["createdon"][:10] >= day for r in leads)
    before = _filter(
        sandbox_session,
        sandbox,
        "leads",
        f"Microsoft.Dynamics.CRM.OnOrBefore(PropertyName='createdon',PropertyValue='{day}')",
        "createdon",
    )
    assert len(before) == sum(r["createdon"][:10] <= day for r in leads)
    not_between = _filter(
        sandbox_session,
        sandbox,
        "leads",
        'Microsoft.Dynamics.CRM.NotBetween(PropertyName=\'numberofemployees\',PropertyValues=["5","200"])',
        "numberofemployees",
    )
    assert {r["leadid"] for r in not_between} == {
        r["leadid"]
        for r in leads
        if r["numberofemployees"] is not None and not 5 <= r["numberofemployees"] <= 200
    }
    unknown = sandbox_session.get(
        sandbox.api_url
        + "leads?$filter="
        + quote("Microsoft.Dynamics.CRM.InFiscalYear(PropertyName='createdon',PropertyValue=2025)")
    )
    assert unknown.status_code == 400 and "InFiscalYear" in unknown.json()["error"]["message"]


def test_date_functions_use_the_injected_clock(sandbox_factory):
    from datetime import UTC, datetime

    from connector.sandbox import SandboxConfig

    now = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)
    sb = sandbox_factory(config=SandboxConfig(clock=lambda: now))
    session = dataverse_session(sb)
    # A record written "now" is in Today and LastXDays(1), not in Yesterday.
    assert session.post(sb.api_url + "accounts", json={"name": "Clocked"}).status_code == 204

    def names(fn):
        text = quote(f"Microsoft.Dynamics.CRM.{fn} and name eq 'Clocked'")
        r = session.get(f"{sb.api_url}accounts?$select=name,createdon&$filter={text}")
        assert r.status_code == 200, r.text
        return [v["createdon"] for v in r.json()["value"]]

    assert names("Today(PropertyName='createdon')") == ["2026-06-10T12:00:00Z"]
    assert names("LastXDays(PropertyName='createdon',PropertyValue=1)") == ["2026-06-10T12:00:00Z"]
    assert names("Yesterday(PropertyName='createdon')") == []
    assert names("NextXDays(PropertyName='createdon',PropertyValue=3)") == ["2026-06-10T12:00:00Z"]
    assert names("OlderThanXDays(PropertyName='createdon',PropertyValue=1)") == []


def test_orderby_top_and_count(sandbox, sandbox_session):
    r = sandbox_session.get(
        sandbox.api_url + "accounts?$select=name,revenue&$orderby=revenue desc,name asc&$top=5&$count=true"
    )
    body = r.json()
    every = _all(sandbox_session, sandbox.api_url + "accounts?$select=revenue")
    assert body["@odata.count"] == len(every) < 5000
    revenues = [v["revenue"] for v in body["value"]]
    assert len(revenues) == 5 and revenues == sorted(revenues, reverse=True)
    big = sandbox_session.get(
        sandbox.api_url + "salesorderdetails?$select=quantity&$count=true&$top=1",
        headers={"Prefer": f'odata.include-annotations="{COUNT_ANNOTATIONS}"'},
    ).json()
    assert big["@odata.count"] == 5000  # capped (§3.7)
    assert big["@Microsoft.Dynamics.CRM.totalrecordcount"] == 5000
    assert big["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] is True
    raw = sandbox_session.get(sandbox.api_url + "salesorderdetails/$count")
    assert raw.headers["Content-Type"] == "text/plain" and raw.content == "\ufeff5000".encode()


def test_annotations_formatted_values_and_lookup_names(sandbox, sandbox_session):
    url = sandbox.api_url + "salesorders?$select=totalamount,statecode,_customerid_value,submitdate&$top=20"
    plain = sandbox_session.get(url)
    assert "Preference-Applied" not in plain.headers
    assert not any("@" in k for v in plain.json()["value"] for k in v if k != "@odata.etag")
    r = sandbox_session.get(url, headers={"Prefer": 'odata.include-annotations="*"'})
    assert r.headers["Preference-Applied"] == 'odata.include-annotations="*"'
    rows = r.json()["value"]
    order = next(v for v in rows if v["_customerid_value"])
    keys = list(order)
    # Annotations come before the property they describe (§3.3).
    assert keys.index("statecode@OData.Community.Display.V1.FormattedValue") < keys.index("statecode")
    assert order["_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] in ("account", "contact")
    kind = order["_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"]
    assert (
        order["_customerid_value@Microsoft.Dynamics.CRM.associatednavigationproperty"] == f"customerid_{kind}"
    )
    target_set = "accounts" if kind == "account" else "contacts"
    name_col = "name" if kind == "account" else "fullname"
    customer = sandbox_session.get(
        f"{sandbox.api_url}{target_set}({order['_customerid_value']})?$select={name_col}"
    ).json()
    assert order["_customerid_value@OData.Community.Display.V1.FormattedValue"] == customer[name_col]
    assert re.fullmatch(r"-?\$[\d,]+\.\d\d", order["totalamount@OData.Community.Display.V1.FormattedValue"])
    # Wildcard matching: only the FormattedValue family.
    only = sandbox_session.get(
        url, headers={"Prefer": 'odata.include-annotations="OData.Community.Display.V1.*"'}
    ).json()
    assert all(not k.endswith("lookuplogicalname") for v in only["value"] for k in v)
    assert any(k.endswith("FormattedValue") for v in only["value"] for k in v)


def test_paging_with_maxpagesize_and_opaque_skiptoken(sandbox, sandbox_session):
    url = sandbox.api_url + "contacts?$select=fullname"
    r = sandbox_session.get(url, headers={"Prefer": "odata.maxpagesize=2"})
    assert r.headers["Preference-Applied"] == "odata.maxpagesize=2"
    body = r.json()
    assert len(body["value"]) == 2
    assert list(body)[-1] == "@odata.nextLink"
    assert body["@odata.nextLink"].startswith(url + "&$skiptoken=%3Ccookie%20pagenumber%3D%222%22")
    records = _all(sandbox_session, url, page_size=700)
    ids = [r["contactid"] for r in records]
    assert len(ids) == len(set(ids)) == len(_all(sandbox_session, url))
    assert ids == sorted(ids)  # default order is the primary key
    # $top is ignored with odata.maxpagesize (§3.6).
    both = sandbox_session.get(url + "&$top=1", headers={"Prefer": "odata.maxpagesize=3"}).json()
    assert len(both["value"]) == 3 and "@odata.nextLink" in both
    # Page size is capped at 5,000.
    capped = sandbox_session.get(url, headers={"Prefer": "odata.maxpagesize=9000"})
    assert capped.headers["Preference-Applied"] == "odata.maxpagesize=5000"
    tampered = sandbox_session.get(url + "&$skiptoken=garbage")
    assert tampered.status_code == 400


def test_pages_stay_stable_while_records_change_underneath(sandbox, sandbox_session):
    url = sandbox.api_url + "accounts?$select=name,revenue&$orderby=revenue desc"
    before = _all(sandbox_session, url, page_size=5000)
    first = sandbox_session.get(url, headers={"Prefer": "odata.maxpagesize=100"}).json()
    seen = [r["accountid"] for r in first["value"]]
    # Between pages: delete records on both sides of the cursor and insert new ones.
    deleted_served = seen[10]
    deleted_ahead = before[300]["accountid"]
    for record_id in (deleted_served, deleted_ahead):
        assert sandbox_session.delete(f"{sandbox.api_url}accounts({record_id})").status_code == 204
    for i in range(5):
        assert (
            sandbox_session.post(
                sandbox.api_url + "accounts", json={"name": f"New {i}", "revenue": 10.0**9 * (i + 1)}
            ).status_code
            == 204
        )
    next_url = first["@odata.nextLink"]
    while next_url:
        page = sandbox_session.get(next_url, headers={"Prefer": "odata.maxpagesize=100"}).json()
        seen.extend(r["accountid"] for r in page["value"])
        next_url = page.get("@odata.nextLink")
    assert len(seen) == len(set(seen)), "no record served twice"
    survivors = {r["accountid"] for r in before} - {deleted_ahead, deleted_served}
    assert survivors <= set(seen) | {deleted_served}, "no surviving record skipped"
    assert deleted_ahead not in seen


def test_keyset_paging_matches_the_unpaged_order_with_null_sort_keys(sandbox, sandbox_session):
    for order in ("numberofemployees desc,lastname asc", "numberofemployees asc", "address1_city desc"):
        url = f"{sandbox.api_url}leads?$select=numberofemployees,lastname,address1_city&$orderby={order}"
        whole = [r["leadid"] for r in _all(sandbox_session, url, page_size=5000)]
        paged = [r["leadid"] for r in _all(sandbox_session, url, page_size=397)]
        assert paged == whole, order
        nulls = sandbox_session.get(
            url.split("&$orderby")[0] + "&$filter=numberofemployees eq null&$count=true"
        ).json()
        assert nulls["@odata.count"] > 0  # the ordering really crosses NULL keys


def test_expand_single_valued_lookups(sandbox, sandbox_session):
    url = (
        sandbox.api_url + "salesorders?$select=name,_customerid_value&$top=50"
        "&$expand=customerid_account($select=name),customerid_contact($select=fullname)"
    )
    rows = sandbox_session.get(url).json()["value"]
    kinds = set()
    for row in rows:
        account, contact = row["customerid_account"], row["customerid_contact"]
        assert (account is None) != (contact is None)  # exactly one side of the polymorphic lookup
        nested = account or contact
        key = "accountid" if account else "contactid"
        kinds.add(key)
        assert nested[key] == row["_customerid_value"]
        assert set(nested) == {key, "name" if account else "fullname"}
    assert kinds == {"accountid", "contactid"}
    one = rows[0]
    single = sandbox_session.get(
        f"{sandbox.api_url}salesorders({one['salesorderid']})?$select=name&$expand=customerid_account($select=name)"
    ).json()
    assert single["customerid_account"] == one["customerid_account"]
    bad = sandbox_session.get(sandbox.api_url + "contacts?$expand=parentcustomerid_account($top=1)")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "0x80060888"
    tracked = sandbox_session.get(
        sandbox.api_url + "salesorders?$select=name&$expand=customerid_account",
        headers={"Prefer": "odata.track-changes"},
    )
    assert tracked.status_code == 400


@pytest.mark.parametrize(
    ("entity_set", "table", "companion"),
    [
        ("salesorders", "salesorder", "customeridtype"),
        ("contacts", "contact", "parentcustomeridtype"),
        ("emails", "email", "regardingobjecttypecode"),
        ("leads", "lead", "owneridtype"),
    ],
)
def test_a_polymorphic_lookups_entityname_companion_is_no_web_api_property(
    sandbox, sandbox_session, entity_set, table, companion
):
    # The companion column is "set implicitly" (§8.5) and not a property of the entity type: a real
    # org answers $select of it with "Could not find a property". Its value comes as an annotation.
    missing = {
        "code": "0x0",
        "message": f"Could not find a property named '{companion}' on type 'Microsoft.Dynamics.CRM.{table}'.",
    }
    for query in (f"$select={companion}", f"$filter={companion} eq 'account'", f"$orderby={companion}"):
        r = sandbox_session.get(f"{sandbox.api_url}{entity_set}?{query}")
        assert r.status_code == 400, query
        assert r.json()["error"] == missing
    everything = sandbox_session.get(f"{sandbox.api_url}{entity_set}?$top=3").json()["value"]
    assert everything and all(companion not in record for record in everything)
    record_id = everything[0][f"{table}id" if table in ("salesorder", "contact", "lead") else "activityid"]
    r = sandbox_session.get(f"{sandbox.api_url}{entity_set}({record_id})/{companion}")
    assert r.status_code == 404
    csdl = sandbox_session.get(sandbox.api_url + "$metadata").text
    entity_type = csdl.split(f'<EntityType Name="{table}"', 1)[1].split("</EntityType>", 1)[0]
    assert f'Name="{companion}"' not in entity_type


def test_lookup_type_arrives_as_the_lookuplogicalname_annotation_alone(sandbox, sandbox_session):
    prefer = {
        "Prefer": 'odata.maxpagesize=500,odata.include-annotations="Microsoft.Dynamics.CRM.lookuplogicalname"'
    }
    orders = _all(sandbox_session, sandbox.api_url + "salesorders?$select=_customerid_value", 500, **prefer)
    kinds = {o.get("_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname") for o in orders}
    assert kinds == {"account", "contact"}
    # Only the annotation asked for: no FormattedValue, no navigation property.
    assert not any(k.endswith(("FormattedValue", "associatednavigationproperty")) for o in orders for k in o)
    accounts = {a["accountid"] for a in _all(sandbox_session, sandbox.api_url + "accounts?$select=name")}
    for order in orders:
        if order["_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "account":
            assert order["_customerid_value"] in accounts
    contacts = _all(
        sandbox_session, sandbox.api_url + "contacts?$select=_parentcustomerid_value", 500, **prefer
    )
    parented = [c for c in contacts if c["_parentcustomerid_value"]]
    assert parented
    assert {c["_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] for c in parented} == {
        "account"
    }


def test_the_type_companion_cannot_be_written(sandbox, sandbox_session):
    order = sandbox_session.get(sandbox.api_url + "salesorders?$select=name&$top=1").json()["value"][0]
    r = sandbox_session.patch(
        f"{sandbox.api_url}salesorders({order['salesorderid']})",
        json={"customeridtype": "contact"},
        headers={"If-Match": "*"},
    )
    assert r.status_code == 400
    assert "Invalid property 'customeridtype'" in r.json()["error"]["message"]
