"""``GET <set>?sql=SELECT ...``: the SQL subset Microsoft's Python SDK sends (``client.query.sql``).

Each answer is checked against the same question asked through OData ``$filter``/``$count``.
"""

from __future__ import annotations

from urllib.parse import quote

import requests


def sql(api, entity_set: str, text: str) -> requests.Response:
    session, url = api
    return session.get(url + f"{entity_set}?sql=" + quote(text, safe=""))


def rows(api, entity_set: str, text: str) -> list[dict]:
    response = sql(api, entity_set, text)
    assert response.status_code == 200, response.text
    return response.json()["value"]


def odata_count(api, entity_set: str, where: str) -> int:
    session, url = api
    response = session.get(url + f"{entity_set}/$count?$filter=" + quote(where, safe=""))
    return int(response.content.decode("utf-8-sig"))


def test_top_and_columns(api):
    value = rows(api, "leads", "SELECT TOP 3 fullname, statecode FROM lead")
    assert len(value) == 3
    assert all(set(r) <= {"@odata.etag", "fullname", "statecode", "leadid"} for r in value)


def test_where_with_and_or_and_parentheses(api):
    value = rows(
        api,
        "leads",
        "SELECT leadid FROM lead WHERE statecode = 0 AND (leadsourcecode = 8 OR leadsourcecode = 2)",
    )
    assert len(value) == odata_count(
        api, "leads", "statecode eq 0 and (leadsourcecode eq 8 or leadsourcecode eq 2)"
    )


def test_like_in_and_null(api):
    value = rows(
        api,
        "accounts",
        "SELECT name FROM account WHERE name LIKE 'A%' AND industrycode IN (1, 7) AND revenue IS NOT NULL",
    )
    expected = "startswith(name,'A') and (industrycode eq 1 or industrycode eq 7) and revenue ne null"
    assert len(value) == odata_count(api, "accounts", expected)


def test_string_literal_with_a_quote(api):
    assert rows(api, "leads", "SELECT leadid FROM lead WHERE lastname = 'O''Neil-Nobody'") == []


def test_order_by_descending(api):
    value = rows(
        api, "accounts", "SELECT TOP 10 revenue FROM account WHERE revenue IS NOT NULL ORDER BY revenue DESC"
    )
    revenues = [r["revenue"] for r in value]
    assert revenues == sorted(revenues, reverse=True) and len(revenues) == 10


def test_count_group_by(api):
    value = rows(
        api, "leads", "SELECT statecode, COUNT(*) AS n FROM lead GROUP BY statecode ORDER BY statecode"
    )
    assert [r["statecode"] for r in value] == [0, 1, 2]
    assert all(r["n"] == odata_count(api, "leads", f"statecode eq {r['statecode']}") for r in value)


def test_join_along_a_lookup(api):
    value = rows(
        api,
        "contacts",
        "SELECT TOP 5 c.fullname, a.name FROM contact c JOIN account a ON c.parentcustomerid = a.accountid",
    )
    assert len(value) == 5 and all("a.name" in r for r in value)


def test_select_star_is_400(api):
    response = sql(api, "leads", "SELECT * FROM lead")
    assert response.status_code == 400 and "SELECT *" in response.json()["error"]["message"]


def test_unknown_column_is_400(api):
    response = sql(api, "leads", "SELECT nosuch FROM lead")
    assert response.status_code == 400 and "nosuch" in response.json()["error"]["message"]


def test_another_table_than_the_set_is_400(api):
    assert sql(api, "leads", "SELECT name FROM account").status_code == 400


def test_writes_are_not_implemented(api):
    response = sql(api, "leads", "UPDATE lead SET subject = 'x'")
    assert response.status_code == 501 and response.json()["error"]["code"] == "0x80040219"


def test_join_against_a_lookup_direction_is_not_implemented(api):
    response = sql(
        api, "accounts", "SELECT a.name FROM account a JOIN contact c ON c.parentcustomerid = a.accountid"
    )
    assert response.status_code == 501
