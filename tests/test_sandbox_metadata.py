"""EntityDefinitions, attribute casts, column creation and publishing over real HTTP (§7)."""

from __future__ import annotations

import re

import pytest
from conftest import dataverse_session

from connector.sandbox import Sandbox

STRONG = {"Consistency": "Strong"}


def _label(text: str) -> dict:
    return {
        "@odata.type": "Microsoft.Dynamics.CRM.Label",
        "LocalizedLabels": [
            {"@odata.type": "Microsoft.Dynamics.CRM.LocalizedLabel", "Label": text, "LanguageCode": 1033}
        ],
    }


def _column_body(kind: str, schema_name: str, **extra) -> dict:
    return {
        "@odata.type": f"Microsoft.Dynamics.CRM.{kind}AttributeMetadata",
        "AttributeType": kind,
        "AttributeTypeName": {"Value": f"{kind}Type"},
        "SchemaName": schema_name,
        "DisplayName": _label(schema_name.split("_", 1)[-1]),
        "Description": _label("created by a test"),
        "RequiredLevel": {
            "Value": "None",
            "CanBeChanged": True,
            "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings",
        },
        **extra,
    }


def test_entity_definition_with_select_and_expanded_attributes(sandbox, sandbox_session):
    url = (
        sandbox.api_url
        + "EntityDefinitions(LogicalName='lead')?$select=LogicalName,EntitySetName,PrimaryIdAttribute,"
        "PrimaryNameAttribute,ObjectTypeCode,ChangeTrackingEnabled"
    )
    r = sandbox_session.get(url, headers=STRONG)
    assert r.status_code == 200
    body = r.json()
    assert body["@odata.context"].endswith(
        "$metadata#EntityDefinitions(LogicalName,EntitySetName,PrimaryIdAttribute,PrimaryNameAttribute,"
        "ObjectTypeCode,ChangeTrackingEnabled)/$entity"
    )
    assert {
        k: body[k]
        for k in (
            "LogicalName",
            "EntitySetName",
            "PrimaryIdAttribute",
            "PrimaryNameAttribute",
            "ObjectTypeCode",
        )
    } == {
        "LogicalName": "lead",
        "EntitySetName": "leads",
        "PrimaryIdAttribute": "leadid",
        "PrimaryNameAttribute": "fullname",
        "ObjectTypeCode": 4,
    }
    assert body["ChangeTrackingEnabled"] is True
    assert "MetadataId" in body and "DisplayName" not in body
    expanded = sandbox_session.get(
        sandbox.api_url
        + "EntityDefinitions(LogicalName='account')?$select=LogicalName"
        + "&$expand=Attributes($select=LogicalName,AttributeType)"
    ).json()
    types = {a["LogicalName"]: a["AttributeType"] for a in expanded["Attributes"]}
    assert types["name"] == "String" and types["revenue"] == "Money" and types["primarycontactid"] == "Lookup"
    missing = sandbox_session.get(sandbox.api_url + "EntityDefinitions(LogicalName='nosuchtable')")
    assert missing.status_code == 404


def test_attributes_listing_filter_and_casts(sandbox, sandbox_session):
    base = sandbox.api_url + "EntityDefinitions(LogicalName='lead')/Attributes"
    listing = sandbox_session.get(base + "?$select=LogicalName,AttributeType,MaxLength").json()["value"]
    lastname = next(a for a in listing if a["LogicalName"] == "lastname")
    assert lastname["@odata.type"] == "#Microsoft.Dynamics.CRM.StringAttributeMetadata"
    assert lastname["MaxLength"] == 50
    picklists = sandbox_session.get(
        base
        + "?$select=LogicalName&$filter=AttributeType eq Microsoft.Dynamics.CRM.AttributeTypeCode'Picklist'"
    ).json()["value"]
    assert "leadsourcecode" in {a["LogicalName"] for a in picklists}
    assert all(a["@odata.type"].endswith("PicklistAttributeMetadata") for a in picklists)
    cast = sandbox_session.get(
        base + "/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$select=LogicalName&$expand=OptionSet"
    ).json()
    assert cast["@odata.context"].endswith("/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata")
    source = next(a for a in cast["value"] if a["LogicalName"] == "leadsourcecode")
    options = {o["Value"]: o["Label"]["UserLocalizedLabel"]["Label"] for o in source["OptionSet"]["Options"]}
    assert options[8] == "Web" and options[7] == "Trade Show"
    one = sandbox_session.get(
        base + "(LogicalName='statuscode')/Microsoft.Dynamics.CRM.StatusAttributeMetadata?$expand=OptionSet"
    ).json()
    states = {o["Value"]: o["State"] for o in one["OptionSet"]["Options"]}
    assert states[3] == 1 and states[4] == 2
    money = sandbox_session.get(
        sandbox.api_url
        + "EntityDefinitions(LogicalName='account')/Attributes"
        + "/Microsoft.Dynamics.CRM.MoneyAttributeMetadata?$select=LogicalName,Precision"
    ).json()["value"]
    assert {a["LogicalName"] for a in money} >= {"revenue", "creditlimit"} and all(
        a["Precision"] == 2 for a in money
    )


def test_a_lookups_entityname_companion_is_listed_but_not_a_web_api_property(sandbox, sandbox_session):
    url = sandbox.api_url + "EntityDefinitions(LogicalName='salesorder')/Attributes"
    query = "?$select=LogicalName,AttributeType,IsValidForRead,IsValidODataAttribute,AttributeOf"
    listing = {a["LogicalName"]: a for a in sandbox_session.get(url + query).json()["value"]}
    companion = listing["customeridtype"]
    assert companion["AttributeType"] == "EntityName" and companion["IsValidForRead"] is True
    # IsValidODataAttribute: whether the attribute is a property available in the Web API.
    assert companion["IsValidODataAttribute"] is False and companion["AttributeOf"] == "customerid"
    assert listing["customerid"]["IsValidODataAttribute"] is True
    assert listing["customerid"]["AttributeType"] == "Customer"


@pytest.mark.parametrize(
    ("kind", "extra", "value", "filter_text"),
    [
        ("Integer", {"MinValue": 0, "MaxValue": 100, "Format": "None"}, 42, "eq 42"),
        ("Decimal", {"MinValue": 0.0, "MaxValue": 100.0, "Precision": 1}, 12.5, "gt 12"),
        ("Money", {"PrecisionSource": 2}, 1999.99, "ge 1999.99"),
        ("String", {"MaxLength": 20, "FormatName": {"Value": "Text"}}, "Grade A", "eq 'grade a'"),
        ("Memo", {"MaxLength": 500, "Format": "TextArea"}, "long text", "eq 'long text'"),
        ("DateTime", {"Format": "DateOnly"}, "2026-05-01", "eq 2026-05-01"),
        (
            "Boolean",
            {
                "DefaultValue": False,
                "OptionSet": {
                    "TrueOption": {"Value": 1, "Label": _label("Yes")},
                    "FalseOption": {"Value": 0, "Label": _label("No")},
                    "OptionSetType": "Boolean",
                },
            },
            True,
            "eq true",
        ),
        (
            "Picklist",
            {
                "OptionSet": {
                    "Options": [
                        {"Value": 100000000, "Label": _label("Alpha")},
                        {"Value": None, "Label": _label("Bravo")},
                    ],
                    "IsGlobal": False,
                    "OptionSetType": "Picklist",
                }
            },
            100000000,
            "eq 100000000",
        ),
    ],
)
def test_created_columns_are_real_queryable_and_writable(
    sandbox, sandbox_session, kind, extra, value, filter_text
):
    schema = f"new_Test{kind}"
    r = sandbox_session.post(
        sandbox.api_url + "EntityDefinitions(LogicalName='lead')/Attributes",
        json=_column_body(kind, schema, **extra),
        headers={"MSCRM.SolutionUniqueName": "dvsync"},
    )
    assert r.status_code == 204, r.text
    assert re.fullmatch(
        re.escape(sandbox.api_url) + r"EntityDefinitions\(LogicalName='lead'\)/Attributes\([0-9a-f-]{36}\)",
        r.headers["OData-EntityId"],
    )
    logical = schema.lower()
    definition = sandbox_session.get(
        sandbox.api_url + f"EntityDefinitions(LogicalName='lead')/Attributes(LogicalName='{logical}')",
        headers=STRONG,
    ).json()
    assert definition["AttributeType"] == kind and definition["IsCustomAttribute"] is True
    assert definition["SchemaName"] == schema
    lead = sandbox_session.get(sandbox.api_url + "leads?$select=lastname&$top=1").json()["value"][0]
    url = f"{sandbox.api_url}leads({lead['leadid']})"
    assert sandbox_session.patch(url, json={logical: value}, headers={"If-Match": "*"}).status_code == 204
    assert sandbox_session.get(f"{url}?$select={logical}").json()[logical] == value
    found = sandbox_session.get(
        sandbox.api_url + f"leads?$select={logical}&$filter={logical} {filter_text}"
    ).json()["value"]
    assert [f["leadid"] for f in found] == [lead["leadid"]]
    assert f'<Property Name="{logical}"' in sandbox_session.get(sandbox.api_url + "$metadata").text
    if kind == "Picklist":
        options = sandbox_session.get(
            sandbox.api_url
            + f"EntityDefinitions(LogicalName='lead')/Attributes(LogicalName='{logical}')"
            + "/Microsoft.Dynamics.CRM.PicklistAttributeMetadata?$expand=OptionSet"
        ).json()["OptionSet"]["Options"]
        assert [o["Value"] for o in options] == [100000000, 100000001]  # null Value: assigned by the system


def test_column_creation_errors(sandbox, sandbox_session):
    url = sandbox.api_url + "EntityDefinitions(LogicalName='lead')/Attributes"
    no_prefix = sandbox_session.post(url, json=_column_body("Integer", "LeadScore"))
    assert no_prefix.status_code == 400 and "prefix" in no_prefix.json()["error"]["message"]
    wrong_prefix = sandbox_session.post(url, json=_column_body("Integer", "zzz_LeadScore"))
    assert wrong_prefix.status_code == 400 and "'new_'" in wrong_prefix.json()["error"]["message"]
    assert sandbox_session.post(url, json=_column_body("Integer", "new_LeadScore")).status_code == 204
    duplicate = sandbox_session.post(url, json=_column_body("Integer", "new_LeadScore"))
    assert duplicate.status_code == 400 and "already exists" in duplicate.json()["error"]["message"]
    lookup = sandbox_session.post(url, json=_column_body("Lookup", "new_Ref"))
    assert lookup.status_code == 400
    too_long = sandbox_session.post(url, json=_column_body("String", "new_Big", MaxLength=5000))
    assert too_long.status_code == 400 and "MaxLength" in too_long.json()["error"]["message"]


def test_created_columns_survive_a_restart_and_publish(sandbox_factory):
    sb = sandbox_factory()
    s = dataverse_session(sb)
    body = _column_body("Decimal", "new_Clv", Precision=2, MinValue=0.0, MaxValue=1000000.0)
    assert (
        s.post(sb.api_url + "EntityDefinitions(LogicalName='contact')/Attributes", json=body).status_code
        == 204
    )
    publish = s.post(
        sb.api_url + "PublishXml",
        json={
            "ParameterXml": "<importexportxml><entities><entity>contact</entity></entities></importexportxml>"
        },
    )
    assert publish.status_code == 204
    assert s.post(sb.api_url + "PublishAllXml", json={}).status_code == 204
    contact = s.get(sb.api_url + "contacts?$select=lastname&$top=1").json()["value"][0]
    s.patch(
        f"{sb.api_url}contacts({contact['contactid']})", json={"new_clv": 321.5}, headers={"If-Match": "*"}
    )
    sb.stop()
    with Sandbox(sb.data_dir, token=sb.token) as again, dataverse_session(again) as s2:
        value = s2.get(f"{again.api_url}contacts({contact['contactid']})?$select=new_clv").json()["new_clv"]
        assert value == 321.5
        unknown = "<entity>nope</entity>"
        bad = s2.post(
            again.api_url + "PublishXml",
            json={"ParameterXml": f"<importexportxml><entities>{unknown}</entities></importexportxml>"},
        )
        assert bad.status_code == 404
