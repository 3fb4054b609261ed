"""OData literal quoting and query-string encoding."""

from __future__ import annotations

import datetime as dt
import decimal
import math
import uuid
from urllib.parse import parse_qs

import pytest

from connector.query import build_query, condition, encode_query, in_values, quote_literal


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("O'Bryan", "'O''Bryan'"),
        ("", "''"),
        ("it''s", "'it''''s'"),
        (uuid.UUID("70bf4d48-34cb-ed11-b596-0022481d68cd"), "70bf4d48-34cb-ed11-b596-0022481d68cd"),
        (True, "true"),
        (False, "false"),
        (None, "null"),
        (42, "42"),
        (-7, "-7"),
        (2.5, "2.5"),
        (decimal.Decimal("20000.0000"), "20000.0000"),
        (dt.datetime(2024, 1, 1, tzinfo=dt.UTC), "2024-01-01T00:00:00Z"),
        (dt.datetime(2024, 1, 1, 2, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))), "2024-01-01T00:30:00Z"),
        (dt.datetime(2024, 1, 1, 0, 0, 0, 250000, tzinfo=dt.UTC), "2024-01-01T00:00:00.25Z"),
        (dt.date(2023, 4, 7), "2023-04-07"),
    ],
)
def test_literals(value, literal):
    assert quote_literal(value) == literal


def test_a_guid_looking_string_stays_a_quoted_string():
    # Only uuid.UUID is a bare GUID: a text column holding a GUID-like value must stay quoted.
    assert quote_literal("70bf4d48-34cb-ed11-b596-0022481d68cd") == "'70bf4d48-34cb-ed11-b596-0022481d68cd'"


def test_naive_datetime_is_refused_with_a_fix():
    with pytest.raises(ValueError, match="time zone"):
        quote_literal(dt.datetime(2024, 1, 1))


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, decimal.Decimal("NaN")])
def test_nan_and_infinity_are_refused(value):
    with pytest.raises(ValueError, match=r"null|None"):
        quote_literal(value)


def test_unknown_types_are_refused():
    with pytest.raises(TypeError, match="no OData literal"):
        quote_literal(object())


def test_condition_quotes_the_value_and_validates_the_column():
    assert condition("lastname", "eq", "O'Bryan") == "lastname eq 'O''Bryan'"
    assert condition("_ownerid_value", "eq", uuid.UUID(int=1)) == (
        "_ownerid_value eq 00000000-0000-0000-0000-000000000001"
    )
    with pytest.raises(ValueError, match="logical name"):
        condition("lastname eq 'x' or 1", "eq", 1)
    with pytest.raises(ValueError, match="operator"):
        condition("lastname", "like", "x")


def test_in_values_builds_the_json_array_form():
    assert in_values("lastname", ["Smith", "O'Brian"]) == (
        'Microsoft.Dynamics.CRM.In(PropertyName=\'lastname\',PropertyValues=["Smith","O\'Brian"])'
    )


def test_special_characters_in_values_are_encoded_once_and_decode_back():
    odd = "Tom & Jerry + Co, #1 50% /x?y=z;@$"
    filter_text = condition("companyname", "eq", odd)
    query = encode_query(build_query(select=["companyname"], filter=filter_text))
    assert "&" not in query.replace("&$filter", "")  # the only & separates options
    assert "+" not in query and "#" not in query and " " not in query
    decoded = parse_qs(query)
    assert decoded["$filter"] == [filter_text]
    assert decoded["$select"] == ["companyname"]


def test_build_query_validates_names_and_orderby():
    assert build_query(select=["a", "b"], orderby=["createdon desc", "name"]) == {
        "$select": "a,b",
        "$orderby": "createdon desc,name",
    }
    with pytest.raises(TypeError):
        build_query(select="fullname")
    with pytest.raises(ValueError):
        build_query(orderby="createdon sideways")
    with pytest.raises(ValueError):
        build_query(select=["full name"])
