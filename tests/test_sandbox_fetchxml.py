"""FetchXML over the Web API (reference §3.8) in the shapes Microsoft's SDK and FetchXML users send.

Each answer is checked against the same question asked through OData (``$filter``/``$count``), a
separate code path, so a FetchXML bug cannot agree with itself.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

import pytest

PAGING = {
    "Prefer": 'odata.include-annotations="Microsoft.Dynamics.CRM.fetchxmlpagingcookie,'
    'Microsoft.Dynamics.CRM.morerecords"'
}


def fetch(api, entity_set: str, xml: str, headers: dict | None = None) -> dict:
    session, url = api
    response = session.get(url + f"{entity_set}?fetchXml=" + quote(xml, safe=""), headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def odata_count(api, entity_set: str, where: str) -> int:
    session, url = api
    response = session.get(url + f"{entity_set}/$count?$filter=" + quote(where, safe=""))
    return int(response.content.decode("utf-8-sig"))


def test_top_and_attributes_limit_rows_and_columns(api):
    xml = (
        '<fetch top="2"><entity name="lead"><attribute name="fullname"/><attribute name="statecode"/>'
        "</entity></fetch>"
    )
    value = fetch(api, "leads", xml)["value"]
    assert len(value) == 2
    for record in value:
        assert set(record) <= {"@odata.etag", "fullname", "statecode", "leadid"}
        assert "leadid" in record and "@odata.etag" in record


def test_null_columns_are_left_out(api):
    xml = (
        '<fetch top="50"><entity name="lead"><attribute name="middlename"/>'
        '<filter><condition attribute="middlename" operator="null"/></filter></entity></fetch>'
    )
    value = fetch(api, "leads", xml)["value"]
    assert value and all("middlename" not in r for r in value)


def test_condition_eq_matches_the_odata_filter(api):
    xml = (
        '<fetch><entity name="lead"><attribute name="leadid"/>'
        '<filter><condition attribute="statecode" operator="eq" value="1"/></filter></entity></fetch>'
    )
    assert len(fetch(api, "leads", xml)["value"]) == odata_count(api, "leads", "statecode eq 1")


def test_nested_and_or_filters(api):
    xml = (
        '<fetch><entity name="lead"><attribute name="leadid"/><filter type="and">'
        '<condition attribute="statecode" operator="eq" value="0"/>'
        '<filter type="or"><condition attribute="leadsourcecode" operator="eq" value="8"/>'
        '<condition attribute="leadsourcecode" operator="eq" value="2"/></filter>'
        "</filter></entity></fetch>"
    )
    expected = odata_count(api, "leads", "statecode eq 0 and (leadsourcecode eq 8 or leadsourcecode eq 2)")
    assert len(fetch(api, "leads", xml)["value"]) == expected > 0


def test_in_and_not_null_operators(api):
    xml = (
        '<fetch><entity name="lead"><attribute name="leadid"/><filter>'
        '<condition attribute="industrycode" operator="in"><value>1</value><value>7</value></condition>'
        '<condition attribute="emailaddress1" operator="not-null"/>'
        "</filter></entity></fetch>"
    )
    expected = odata_count(api, "leads", "(industrycode eq 1 or industrycode eq 7) and emailaddress1 ne null")
    assert len(fetch(api, "leads", xml)["value"]) == expected > 0


def test_like_and_begins_with(api):
    xml = (
        '<fetch><entity name="account"><attribute name="name"/><filter type="or">'
        '<condition attribute="name" operator="begins-with" value="A"/>'
        '<condition attribute="name" operator="like" value="%Group%"/>'
        "</filter></entity></fetch>"
    )
    expected = odata_count(api, "accounts", "startswith(name,'A') or contains(name,'Group')")
    assert len(fetch(api, "accounts", xml)["value"]) == expected > 0


def test_date_condition_on_or_after(api):
    xml = (
        '<fetch><entity name="lead"><attribute name="createdon"/><filter>'
        '<condition attribute="createdon" operator="on-or-after" value="2026-01-01"/>'
        "</filter></entity></fetch>"
    )
    value = fetch(api, "leads", xml)["value"]
    assert len(value) == odata_count(api, "leads", "createdon ge 2026-01-01T00:00:00Z") > 0
    assert all(r["createdon"] >= "2026-01-01" for r in value)


def test_order_descending(api):
    xml = (
        '<fetch top="20"><entity name="account"><attribute name="revenue"/>'
        '<filter><condition attribute="revenue" operator="not-null"/></filter>'
        '<order attribute="revenue" descending="true"/></entity></fetch>'
    )
    revenues = [r["revenue"] for r in fetch(api, "accounts", xml)["value"]]
    assert revenues == sorted(revenues, reverse=True) and len(revenues) == 20


def test_all_attributes_returns_every_non_null_column(api):
    xml = '<fetch top="1"><entity name="account"><all-attributes/></entity></fetch>'
    record = fetch(api, "accounts", xml)["value"][0]
    assert {"name", "accountid", "createdon", "_ownerid_value"} <= set(record)


def test_count_and_page_without_a_cookie(api):
    base = (
        '<fetch count="7" page="{page}"><entity name="lead"><attribute name="leadid"/>'
        '<order attribute="leadid"/></entity></fetch>'
    )
    first = [r["leadid"] for r in fetch(api, "leads", base.format(page=1))["value"]]
    second = [r["leadid"] for r in fetch(api, "leads", base.format(page=2))["value"]]
    together = [
        r["leadid"]
        for r in fetch(api, "leads", base.replace('count="7"', 'count="14"').format(page=1))["value"]
    ]
    assert first + second == together and len(set(together)) == 14


def test_paging_cookie_walks_every_record_once(api):
    where = "statecode eq 2"
    total = odata_count(api, "leads", where)
    xml = (
        '<fetch count="{count}" page="{page}"{cookie}><entity name="lead"><attribute name="fullname"/>'
        '<order attribute="fullname"/><filter><condition attribute="statecode" operator="eq" value="2"/>'
        "</filter></entity></fetch>"
    )
    seen: list[str] = []
    page, cookie = 1, ""
    for _ in range(100):
        body = fetch(api, "leads", xml.format(count=250, page=page, cookie=cookie), PAGING)
        seen += [r["leadid"] for r in body["value"]]
        if not body.get("@Microsoft.Dynamics.CRM.morerecords"):
            assert "@Microsoft.Dynamics.CRM.fetchxmlpagingcookie" not in body
            break
        # §3.8: take pagingcookie, URL-decode it twice, XML-encode it into paging-cookie.
        outer = body["@Microsoft.Dynamics.CRM.fetchxmlpagingcookie"]
        inner = unquote(unquote(outer.split('pagingcookie="', 1)[1].split('"', 1)[0]))
        page += 1
        cookie = (
            ' paging-cookie="' + inner.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;") + '"'
        )
    assert len(seen) == len(set(seen)) == total > 250


def test_paging_annotations_only_when_asked(api):
    xml = '<fetch count="5"><entity name="lead"><attribute name="leadid"/></entity></fetch>'
    body = fetch(api, "leads", xml)
    assert len(body["value"]) == 5
    assert "@Microsoft.Dynamics.CRM.morerecords" not in body
    assert fetch(api, "leads", xml, PAGING)["@Microsoft.Dynamics.CRM.morerecords"] is True


def test_link_entity_along_a_lookup(api):
    xml = (
        '<fetch top="25"><entity name="contact"><attribute name="fullname"/>'
        '<attribute name="parentcustomerid"/>'
        '<link-entity name="account" from="accountid" to="parentcustomerid" alias="acct" link-type="inner">'
        '<attribute name="name"/></link-entity></entity></fetch>'
    )
    value = fetch(api, "contacts", xml)["value"]
    assert len(value) == 25
    session, url = api
    for record in value[:5]:
        account = session.get(url + f"accounts({record['_parentcustomerid_value']})?$select=name").json()
        assert record["acct.name"] == account["name"]


def test_link_entity_filter_restricts_the_main_rows(api):
    xml = (
        '<fetch><entity name="contact"><attribute name="contactid"/>'
        '<link-entity name="account" from="accountid" to="parentcustomerid" alias="a">'
        '<filter><condition attribute="industrycode" operator="eq" value="7"/></filter></link-entity>'
        "</entity></fetch>"
    )
    value = fetch(api, "contacts", xml)["value"]
    session, url = api
    consulting = session.get(url + "accounts?$select=accountid&$filter=industrycode eq 7").json()["value"]
    ids = {a["accountid"] for a in consulting}
    expected = session.get(
        url + "contacts?$select=_parentcustomerid_value&$filter=_parentcustomerid_value ne null"
    ).json()["value"]
    assert len(value) == sum(1 for c in expected if c["_parentcustomerid_value"] in ids) > 0


def test_condition_on_a_link_entity_by_entityname(api):
    xml = (
        '<fetch><entity name="contact"><attribute name="contactid"/>'
        '<link-entity name="account" from="accountid" to="parentcustomerid" alias="a" link-type="outer"/>'
        '<filter><condition entityname="a" attribute="industrycode" operator="eq" value="7"/></filter>'
        "</entity></fetch>"
    )
    inner = (
        '<fetch><entity name="contact"><attribute name="contactid"/>'
        '<link-entity name="account" from="accountid" to="parentcustomerid" alias="a">'
        '<filter><condition attribute="industrycode" operator="eq" value="7"/></filter></link-entity>'
        "</entity></fetch>"
    )
    assert len(fetch(api, "contacts", xml)["value"]) == len(fetch(api, "contacts", inner)["value"]) > 0


def test_aggregate_count_with_groupby(api):
    xml = (
        '<fetch aggregate="true"><entity name="lead">'
        '<attribute name="leadid" alias="n" aggregate="count"/>'
        '<attribute name="statecode" alias="state" groupby="true"/>'
        '<order alias="state"/></entity></fetch>'
    )
    rows = fetch(api, "leads", xml)["value"]
    assert [r["state"] for r in rows] == [0, 1, 2]
    for row in rows:
        assert row["n"] == odata_count(api, "leads", f"statecode eq {row['state']}")


def test_aggregate_sum_avg_min_max(api):
    xml = (
        '<fetch aggregate="true"><entity name="account">'
        '<attribute name="revenue" alias="total" aggregate="sum"/>'
        '<attribute name="revenue" alias="mean" aggregate="avg"/>'
        '<attribute name="revenue" alias="low" aggregate="min"/>'
        '<attribute name="revenue" alias="high" aggregate="max"/>'
        '<attribute name="revenue" alias="n" aggregate="countcolumn"/>'
        "</entity></fetch>"
    )
    (row,) = fetch(api, "accounts", xml)["value"]
    session, url = api
    revenues = [
        a["revenue"]
        for a in session.get(url + "accounts?$select=revenue&$filter=revenue ne null").json()["value"]
    ]
    assert row["n"] == len(revenues)
    assert row["total"] == pytest.approx(sum(revenues))
    assert row["mean"] == pytest.approx(sum(revenues) / len(revenues))
    assert (row["low"], row["high"]) == (min(revenues), max(revenues))


def test_aggregate_attribute_without_alias_is_400(api):
    session, url = api
    xml = (
        '<fetch aggregate="true"><entity name="lead"><attribute name="leadid" aggregate="count"/>'
        "</entity></fetch>"
    )
    response = session.get(url + "leads?fetchXml=" + quote(xml, safe=""))
    assert response.status_code == 400 and "alias" in response.json()["error"]["message"]


def test_top_with_paging_is_400(api):
    session, url = api
    xml = '<fetch top="5" count="5"><entity name="lead"/></fetch>'
    response = session.get(url + "leads?fetchXml=" + quote(xml, safe=""))
    assert response.status_code == 400


def test_total_record_count(api):
    xml = (
        '<fetch count="3" returntotalrecordcount="true"><entity name="lead"><attribute name="leadid"/>'
        '<filter><condition attribute="statecode" operator="eq" value="1"/></filter></entity></fetch>'
    )
    body = fetch(api, "leads", xml, {"Prefer": 'odata.include-annotations="*"'})
    assert body["@Microsoft.Dynamics.CRM.totalrecordcount"] == odata_count(api, "leads", "statecode eq 1")
    assert len(body["value"]) == 3
