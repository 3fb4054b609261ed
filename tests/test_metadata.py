"""Metadata: table and column definitions, column creation bodies, idempotent create + publish, WhoAmI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import responses
from responses import matchers

from connector import ColumnSpec, DataverseClient, ProtocolError, RecordNotFoundError, RetryPolicy
from connector.metadata import column_body
from core.errors import ConfigError

ORG = "https://contoso.crm.dynamics.com"
BASE = f"{ORG}/api/data/v9.2/"
LEAD = BASE + "EntityDefinitions(LogicalName='lead')"
DATA = Path(__file__).parent / "data" / "dataverse"


def fixture(name: str) -> dict:
    return json.loads((DATA / name).read_text().replace("[Organization URI]", ORG))


def client() -> DataverseClient:
    return DataverseClient(ORG, lambda: "token", retry=RetryPolicy(sleep=lambda s: None))


def empty() -> dict:
    return {"value": []}


@responses.activate
def test_get_table_reads_definition_columns_lengths_and_options_with_strong_consistency():
    strong = [matchers.header_matcher({"Consistency": "Strong"})]
    responses.get(LEAD, json=fixture("entity_definition_lead.json"), match=strong)
    responses.get(LEAD + "/Attributes", json=fixture("attributes_lead.json"), match=strong)
    cast = LEAD + "/Attributes/Microsoft.Dynamics.CRM."
    responses.get(cast + "StringAttributeMetadata", json=fixture("string_lengths_lead.json"), match=strong)
    responses.get(cast + "MemoAttributeMetadata", json=fixture("memo_lengths_lead.json"), match=strong)
    responses.get(cast + "PicklistAttributeMetadata", json=fixture("picklist_lead.json"), match=strong)
    responses.get(cast + "StateAttributeMetadata", json=fixture("state_lead.json"), match=strong)
    responses.get(cast + "StatusAttributeMetadata", json=empty(), match=strong)

    table = client().get_table("lead")

    assert (table.logical_name, table.entity_set_name, table.primary_id_attribute) == (
        "lead",
        "leads",
        "leadid",
    )
    assert table.primary_name_attribute == "fullname"
    assert table.change_tracking_enabled is True
    email = table.attributes["emailaddress1"]
    assert (email.attribute_type, email.max_length, email.schema_name) == ("String", 100, "EMailAddress1")
    assert table.attributes["description"].max_length == 2000
    assert table.attributes["leadsourcecode"].options == {1: "Advertisement", 8: "Web"}
    assert table.attributes["statecode"].options == {0: "Open", 1: "Qualified", 2: "Disqualified"}
    assert table.attributes["new_leadscore"].is_custom is True
    assert table.attributes["leadid"].required_level == "SystemRequired"
    picklist_call = next(c for c in responses.calls if "PicklistAttributeMetadata" in c.request.url)
    assert "$expand=OptionSet" in picklist_call.request.url


def test_table_names_are_validated_before_any_request():
    with pytest.raises(ValueError, match="logical name"):
        client().get_table("lead') or (1")


@responses.activate
def test_an_unknown_table_is_a_404_error_that_names_it():
    # What the docstring promises, and what `dvsync check` relies on (status 404).
    body = {"error": {"code": "0x80040217", "message": "Could not find entity with name or id 'leadx'."}}
    responses.get(BASE + "EntityDefinitions(LogicalName='leadx')", json=body, status=404)
    with pytest.raises(RecordNotFoundError, match="leadx") as info:
        client().get_table("leadx")
    assert info.value.status == 404 and info.value.code == "0x80040217"


@responses.activate
def test_whoami():
    responses.get(BASE + "WhoAmI", json=fixture("whoami.json"))
    me = client().whoami()
    assert me.user_id == "b08dc3c5-e471-ec11-8941-000d3a9b6d8a"
    assert me.business_unit_id == "6f202e6c-e471-ec11-8941-000d3a9b6d8a"
    assert me.organization_id == "883278f5-07af-45eb-a0bc-3fea67caa544"


@responses.activate
def test_whoami_without_ids_is_a_protocol_error():
    responses.get(BASE + "WhoAmI", json={"UserId": "x"})
    with pytest.raises(ProtocolError, match="BusinessUnitId"):
        client().whoami()


def test_string_column_body_has_the_documented_shape():
    body = column_body(
        ColumnSpec("new_BankName", "String", "Bank Name", "Type the name of the bank", max_length=100)
    )
    assert body == {
        "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
        "AttributeType": "String",
        "AttributeTypeName": {"Value": "StringType"},
        "SchemaName": "new_BankName",
        "DisplayName": {
            "@odata.type": "Microsoft.Dynamics.CRM.Label",
            "LocalizedLabels": [
                {
                    "@odata.type": "Microsoft.Dynamics.CRM.LocalizedLabel",
                    "Label": "Bank Name",
                    "LanguageCode": 1033,
                }
            ],
        },
        "Description": {
            "@odata.type": "Microsoft.Dynamics.CRM.Label",
            "LocalizedLabels": [
                {
                    "@odata.type": "Microsoft.Dynamics.CRM.LocalizedLabel",
                    "Label": "Type the name of the bank",
                    "LanguageCode": 1033,
                }
            ],
        },
        "RequiredLevel": {
            "Value": "None",
            "CanBeChanged": True,
            "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings",
        },
        "FormatName": {"Value": "Text"},
        "MaxLength": 100,
    }


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            ColumnSpec("new_Score", "Integer", "Score", min_value=0, max_value=100),
            {"MinValue": 0, "MaxValue": 100, "Format": "None"},
        ),
        (ColumnSpec("new_Prob", "Decimal", "Probability", precision=4), {"Precision": 4}),
        (ColumnSpec("new_Clv", "Money", "CLV"), {"PrecisionSource": 2}),
        (ColumnSpec("new_Clv", "Money", "CLV", precision=2), {"PrecisionSource": 0, "Precision": 2}),
        (ColumnSpec("new_Notes", "Memo", "Notes"), {"Format": "TextArea", "MaxLength": 2000}),
        (ColumnSpec("new_ScoredOn", "DateTime", "Scored on", date_only=True), {"Format": "DateOnly"}),
        (ColumnSpec("new_ScoredAt", "DateTime", "Scored at"), {"Format": "DateAndTime"}),
    ],
)
def test_column_bodies_per_kind(spec, expected):
    body = column_body(spec)
    assert body["@odata.type"] == f"Microsoft.Dynamics.CRM.{spec.kind}AttributeMetadata"
    assert body["AttributeType"] == spec.kind
    assert body["AttributeTypeName"] == {"Value": f"{spec.kind}Type"}
    for key, value in expected.items():
        assert body[key] == value


def test_picklist_and_boolean_bodies_carry_their_option_sets():
    picklist = column_body(
        ColumnSpec("new_Grade", "Picklist", "Grade", options=[(100000000, "A"), (None, "B")])
    )
    options = picklist["OptionSet"]["Options"]
    assert picklist["OptionSet"]["OptionSetType"] == "Picklist" and picklist["OptionSet"]["IsGlobal"] is False
    assert [o["Value"] for o in options] == [100000000, None]
    assert options[0]["Label"]["LocalizedLabels"][0]["Label"] == "A"
    boolean = column_body(
        ColumnSpec("new_IsDup", "Boolean", "Is duplicate", true_label="Duplicate", false_label="Unique")
    )
    assert boolean["OptionSet"]["TrueOption"]["Value"] == 1
    assert boolean["OptionSet"]["FalseOption"]["Label"]["LocalizedLabels"][0]["Label"] == "Unique"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (ColumnSpec("LeadScore", "Integer", "Score"), "publisher prefix"),
        (ColumnSpec("new_Grade", "Picklist", "Grade"), "at least one option"),
        (ColumnSpec("new_Text", "String", "Text", max_length=5000), "4000"),
        (ColumnSpec("new_X", "Float", "X"), "unknown column kind"),  # type: ignore[arg-type]
    ],
)
def test_invalid_specs_are_config_errors(spec, message):
    with pytest.raises(ConfigError, match=message):
        column_body(spec)


SPECS = [
    ColumnSpec("new_LeadScore", "Integer", "Lead score", min_value=0, max_value=100),
    ColumnSpec("new_LeadGrade", "String", "Lead grade", max_length=1),
]


def attribute_url(name: str) -> str:
    return f"{LEAD}/Attributes(LogicalName='{name}')"


@responses.activate
def test_ensure_columns_creates_missing_ones_in_the_solution_and_publishes_once():
    responses.get(
        attribute_url("new_leadscore"), json={"LogicalName": "new_leadscore", "AttributeType": "Integer"}
    )
    responses.get(
        attribute_url("new_leadgrade"),
        status=404,
        json={"error": {"code": "0x80040217", "message": "not found"}},
    )
    responses.post(
        LEAD + "/Attributes",
        status=204,
        headers={"OData-EntityId": LEAD + "/Attributes(f01bef16-287c-e511-80d2-00155d2a68d2)"},
    )
    responses.post(BASE + "PublishXml", status=204)

    created = client().ensure_columns("lead", SPECS, solution="dvsync")

    assert created == ["new_leadgrade"]
    posts = [c for c in responses.calls if c.request.method == "POST"]
    create, publish = posts
    assert create.request.headers["MSCRM.SolutionUniqueName"] == "dvsync"
    assert json.loads(create.request.body)["SchemaName"] == "new_LeadGrade"
    assert json.loads(publish.request.body) == {
        "ParameterXml": "<importexportxml><entities><entity>lead</entity></entities></importexportxml>"
    }
    existence_checks = [c for c in responses.calls if c.request.method == "GET"]
    assert all(c.request.headers["Consistency"] == "Strong" for c in existence_checks)


@responses.activate
def test_ensure_columns_again_changes_nothing():
    responses.get(
        attribute_url("new_leadscore"), json={"LogicalName": "new_leadscore", "AttributeType": "Integer"}
    )
    responses.get(
        attribute_url("new_leadgrade"), json={"LogicalName": "new_leadgrade", "AttributeType": "String"}
    )
    assert client().ensure_columns("lead", SPECS, solution="dvsync") == []
    assert all(c.request.method == "GET" for c in responses.calls)


@responses.activate
def test_existing_column_of_another_type_is_a_config_error():
    responses.get(
        attribute_url("new_leadscore"), json={"LogicalName": "new_leadscore", "AttributeType": "String"}
    )
    with pytest.raises(ConfigError, match="exists as String, not Integer"):
        client().create_column("lead", SPECS[0], solution="dvsync")


def test_a_solution_is_required():
    with pytest.raises(ConfigError, match="solution"):
        client().create_column("lead", SPECS[0], solution="")
