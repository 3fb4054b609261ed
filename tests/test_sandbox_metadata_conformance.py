"""Metadata in the shapes public clients read it: Airbyte's discover, Microsoft's SDK, dataverse-api.

Raw HTTP, one test per behaviour: the ``EntityDefinitions`` collection with ``$expand=Attributes``,
the table properties real tables have (selectable and filterable), relationships derived from the
lookups, ``RetrieveMetadataChanges`` with version stamps and ``RetrieveAvailableLanguages``.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from connector.sandbox.catalog import TABLES

SERVED = {t.logical_name for t in TABLES} | {"sdkmessage", "sdkmessagefilter"}


def test_collection_expands_attributes_as_airbyte_discover_asks(sandbox_session, sandbox):
    # source-microsoft-dataverse's discover request, verbatim.
    path = (
        "EntityDefinitions?$select=LogicalName,PrimaryIdAttribute,CanChangeTrackingBeEnabled,"
        "ChangeTrackingEnabled,Attributes&$expand=Attributes($select=LogicalName,AttributeType)"
    )
    body = sandbox_session.get(sandbox.api_url + path).json()
    tables = {e["LogicalName"]: e for e in body["value"]}
    assert set(tables) == SERVED
    lead = tables["lead"]
    assert lead["PrimaryIdAttribute"] == "leadid"
    assert lead["CanChangeTrackingBeEnabled"]["Value"] is True and lead["ChangeTrackingEnabled"] is True
    attributes = {a["LogicalName"]: a for a in lead["Attributes"]}
    assert attributes["emailaddress1"]["AttributeType"] == "String"
    assert attributes["parentaccountid"]["AttributeType"] == "Lookup"
    assert set(attributes["statecode"]) == {"@odata.type", "MetadataId", "LogicalName", "AttributeType"}


def test_collection_expand_applies_the_nested_filter_per_table(sandbox_session, sandbox):
    path = (
        "EntityDefinitions?$select=LogicalName&$filter=LogicalName eq 'account'"
        "&$expand=Attributes($select=LogicalName;$filter=AttributeType eq "
        "Microsoft.Dynamics.CRM.AttributeTypeCode'Picklist')"
    )
    value = sandbox_session.get(sandbox.api_url + path).json()["value"]
    assert [e["LogicalName"] for e in value] == ["account"]
    names = {a["LogicalName"] for a in value[0]["Attributes"]}
    assert "industrycode" in names and "name" not in names


def test_is_private_filter_finds_the_tables_as_the_sdk_lists_them(sandbox_session, sandbox):
    # PowerPlatform-Dataverse-Client's tables.list(): $filter=IsPrivate eq false.
    value = sandbox_session.get(sandbox.api_url + "EntityDefinitions?$filter=IsPrivate eq false").json()[
        "value"
    ]
    assert {e["LogicalName"] for e in value} == SERVED
    assert (
        sandbox_session.get(sandbox.api_url + "EntityDefinitions?$filter=IsPrivate eq true").json()["value"]
        == []
    )


def test_table_properties_real_tables_have_are_selectable(sandbox_session, sandbox):
    path = (
        "EntityDefinitions(LogicalName='account')?$select=IsPrivate,HasActivities,HasNotes,"
        "PrimaryImageAttribute,TableType,IsIntersect"
    )
    body = sandbox_session.get(sandbox.api_url + path).json()
    assert body["IsPrivate"] is False and body["IsIntersect"] is False
    assert body["HasActivities"] is True and body["HasNotes"] is True
    assert body["PrimaryImageAttribute"] == "entityimage" and body["TableType"] == "Standard"
    assert "LogicalName" not in body and "MetadataId" in body


def test_has_activities_filter_tells_activities_from_their_parents(sandbox_session, sandbox):
    value = sandbox_session.get(
        sandbox.api_url + "EntityDefinitions?$select=LogicalName&$filter=HasActivities eq false"
    ).json()["value"]
    assert {e["LogicalName"] for e in value} == {
        "email",
        "phonecall",
        "appointment",
        "salesorderdetail",
        "savedquery",
        "savedqueryvisualization",
        "systemform",
        "sdkmessage",
        "sdkmessagefilter",
        # Users, teams and queues own and work records; activities are not regarding them.
        "systemuser",
        "team",
        "teammembership",
        "queue",
        "queueitem",
    }


def test_ordering_comparison_on_object_type_code(sandbox_session, sandbox):
    value = sandbox_session.get(
        sandbox.api_url + "EntityDefinitions?$select=LogicalName,ObjectTypeCode&$filter=ObjectTypeCode le 3"
    ).json()["value"]
    assert {e["LogicalName"] for e in value} == {"account", "contact", "opportunity"}


def test_many_to_one_relationships_come_from_the_lookups(sandbox_session, sandbox):
    path = (
        "EntityDefinitions(LogicalName='contact')/ManyToOneRelationships"
        "?$select=ReferencedEntity,ReferencingAttribute,ReferencingEntityNavigationPropertyName"
    )
    value = sandbox_session.get(sandbox.api_url + path).json()["value"]
    pairs = {(r["ReferencedEntity"], r["ReferencingAttribute"]) for r in value}
    assert ("account", "parentcustomerid") in pairs and ("contact", "parentcustomerid") in pairs
    assert ("systemuser", "ownerid") in pairs
    navs = {
        r["ReferencingEntityNavigationPropertyName"]
        for r in value
        if r["ReferencingAttribute"] == "parentcustomerid"
    }
    assert navs == {"parentcustomerid_account", "parentcustomerid_contact"}


def test_one_to_many_relationships_are_the_other_side(sandbox_session, sandbox):
    path = (
        "EntityDefinitions(LogicalName='account')/OneToManyRelationships?$filter=ReferencingEntity eq 'lead'"
    )
    value = sandbox_session.get(sandbox.api_url + path).json()["value"]
    assert {r["ReferencingAttribute"] for r in value} == {"parentaccountid", "customerid", "accountid"}
    assert all(r["ReferencedEntity"] == "account" and r["ReferencedAttribute"] == "accountid" for r in value)


def test_many_to_many_relationships_are_an_empty_collection(sandbox_session, sandbox):
    body = sandbox_session.get(
        sandbox.api_url + "EntityDefinitions(LogicalName='lead')/ManyToManyRelationships"
    ).json()
    assert body["value"] == []


def test_relationships_can_be_expanded_on_the_table(sandbox_session, sandbox):
    path = (
        "EntityDefinitions(LogicalName='opportunity')?$select=LogicalName"
        "&$expand=ManyToOneRelationships($select=SchemaName)"
    )
    body = sandbox_session.get(sandbox.api_url + path).json()
    assert "account_opportunity_parentaccountid" in {r["SchemaName"] for r in body["ManyToOneRelationships"]}


def test_relationship_definitions_filter_by_schema_name(sandbox_session, sandbox):
    # The SDK finds a relationship by SchemaName.
    path = "RelationshipDefinitions?$filter=SchemaName eq 'account_lead_parentaccountid'"
    value = sandbox_session.get(sandbox.api_url + path).json()["value"]
    assert len(value) == 1 and value[0]["ReferencingEntity"] == "lead"
    one = sandbox_session.get(sandbox.api_url + f"RelationshipDefinitions({value[0]['MetadataId']})").json()
    assert one["SchemaName"] == "account_lead_parentaccountid"


def test_available_languages(sandbox_session, sandbox):
    body = sandbox_session.get(sandbox.api_url + "RetrieveAvailableLanguages()").json()
    assert body["LocaleIds"] == [1033]
    assert body["@odata.context"].endswith("#Microsoft.Dynamics.CRM.RetrieveAvailableLanguagesResponse")


def _metadata_changes(session, sandbox, query: dict, stamp: str | None = None):
    call = "RetrieveMetadataChanges(Query=@q" + (",ClientVersionStamp=@s)" if stamp else ")")
    url = sandbox.api_url + call + "?@q=" + quote(json.dumps(query), safe="")
    if stamp:
        url += "&@s=" + quote(f"'{stamp}'", safe="")
    return session.get(url)


_LEAD_QUERY = {
    "Criteria": {
        "FilterOperator": "And",
        "Conditions": [
            {
                "PropertyName": "LogicalName",
                "ConditionOperator": "In",
                "Value": {"Type": "System.String[]", "Value": ["lead", "account"]},
            }
        ],
    },
    "Properties": {"AllProperties": False, "PropertyNames": ["LogicalName", "EntitySetName", "Attributes"]},
    "AttributeQuery": {
        "Properties": {"AllProperties": False, "PropertyNames": ["LogicalName", "AttributeType"]},
        "Criteria": {
            "Conditions": [
                {"PropertyName": "LogicalName", "ConditionOperator": "Equals", "Value": {"Value": "name"}}
            ]
        },
    },
}


def test_retrieve_metadata_changes_returns_the_matching_tables_and_a_stamp(sandbox_session, sandbox):
    body = _metadata_changes(sandbox_session, sandbox, _LEAD_QUERY).json()
    tables = {e["LogicalName"]: e for e in body["EntityMetadata"]}
    assert set(tables) == {"lead", "account"}
    assert set(tables["lead"]) == {"MetadataId", "LogicalName", "EntitySetName", "Attributes"}
    assert [a["LogicalName"] for a in tables["account"]["Attributes"]] == ["name"]
    assert tables["lead"]["Attributes"] == []
    assert "!" in body["ServerVersionStamp"]


def test_retrieve_metadata_changes_with_a_stamp_returns_only_what_changed(sandbox_session, sandbox):
    stamp = _metadata_changes(sandbox_session, sandbox, _LEAD_QUERY).json()["ServerVersionStamp"]
    unchanged = _metadata_changes(sandbox_session, sandbox, _LEAD_QUERY, stamp).json()
    assert unchanged["EntityMetadata"] == [] and unchanged["ServerVersionStamp"] == stamp
    created = sandbox_session.post(
        sandbox.api_url + "EntityDefinitions(LogicalName='lead')/Attributes",
        json={
            "@odata.type": "Microsoft.Dynamics.CRM.StringAttributeMetadata",
            "AttributeType": "String",
            "SchemaName": "new_Region",
            "MaxLength": 50,
        },
    )
    assert created.status_code == 204, created.text
    changed = _metadata_changes(sandbox_session, sandbox, _LEAD_QUERY, stamp).json()
    assert [e["LogicalName"] for e in changed["EntityMetadata"]] == ["lead"]
    assert changed["ServerVersionStamp"] != stamp


def test_retrieve_metadata_changes_refuses_a_stamp_it_did_not_issue(sandbox_session, sandbox):
    response = _metadata_changes(sandbox_session, sandbox, _LEAD_QUERY, "999999!01/01/2026 00:00:00")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "0x80044352"


def test_retrieve_metadata_changes_unknown_property_is_400(sandbox_session, sandbox):
    query = {"Properties": {"AllProperties": False, "PropertyNames": ["LogicalNameX"]}}
    response = _metadata_changes(sandbox_session, sandbox, query)
    assert response.status_code == 400 and "LogicalNameX" in response.json()["error"]["message"]


def test_sdk_message_filters_answer_dataverse_api_s_capability_query(sandbox_session, sandbox):
    # dataverse-api 1.4's Entity.update_schema("messages"), verbatim.
    params = {
        "$select": "sdkmessagefilterid",
        "$expand": "sdkmessageid($select=name)",
        "$filter": "(sdkmessageid/name eq 'CreateMultiple' or sdkmessageid/name eq 'UpdateMultiple') "
        "and primaryobjecttypecode eq 'lead'",
    }
    response = sandbox_session.get(sandbox.api_url + "sdkmessagefilters", params=params)
    assert response.status_code == 200, response.text
    assert sorted(row["sdkmessageid"]["name"] for row in response.json()["value"]) == [
        "CreateMultiple",
        "UpdateMultiple",
    ]


def test_sdk_message_filters_list_only_messages_the_sandbox_serves(sandbox_session, sandbox):
    params = {"$filter": "sdkmessageid/name eq 'Merge'", "$select": "sdkmessagefilterid"}
    assert sandbox_session.get(sandbox.api_url + "sdkmessagefilters", params=params).json()["value"] == []


def test_sdk_messages_are_read_only(sandbox_session, sandbox):
    response = sandbox_session.post(sandbox.api_url + "sdkmessages", json={"name": "Mine"})
    assert response.status_code == 400
    assert (
        response.json()["error"]["message"]
        == "The 'Create' method does not support entities of type 'sdkmessage'."
    )


def test_team_memberships_are_read_and_never_written(sandbox_session, sandbox):
    # Membership changes through teammembership_association; the intersect table only answers reads.
    response = sandbox_session.post(sandbox.api_url + "teammemberships", json={})
    assert response.status_code == 400
    assert (
        response.json()["error"]["message"]
        == "The 'Create' method does not support entities of type 'teammembership'."
    )
    params = {"$expand": "sdkmessageid($select=name)", "$filter": "primaryobjecttypecode eq 'teammembership'"}
    value = sandbox_session.get(sandbox.api_url + "sdkmessagefilters", params=params).json()["value"]
    assert sorted(row["sdkmessageid"]["name"] for row in value) == ["Retrieve", "RetrieveMultiple"]


def test_navigation_path_filter_on_a_lookup(sandbox_session, sandbox):
    account = sandbox_session.get(
        sandbox.api_url + "accounts?$select=name&$filter=_primarycontactid_value ne null&$top=1"
    ).json()["value"][0]
    by_path = sandbox_session.get(
        sandbox.api_url + "contacts?$select=contactid",
        params={
            "$filter": f"parentcustomerid_account/name eq '{account['name'].replace(chr(39), chr(39) * 2)}'"
        },
    ).json()["value"]
    by_id = sandbox_session.get(
        sandbox.api_url + "contacts?$select=contactid",
        params={"$filter": f"_parentcustomerid_value eq {account['accountid']}"},
    ).json()["value"]
    assert {c["contactid"] for c in by_path} >= {c["contactid"] for c in by_id} and by_id


def test_navigation_path_to_an_unknown_property_is_400(sandbox_session, sandbox):
    response = sandbox_session.get(
        sandbox.api_url + "leads", params={"$filter": "parentaccountid/nosuch eq 'x'"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "Could not find a property named 'nosuch' on type 'Microsoft.Dynamics.CRM.account'."
    )
