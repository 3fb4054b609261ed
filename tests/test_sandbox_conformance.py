"""Conformance: the sandbox never answers a request it does not understand as if it did.

Raw HTTP, one test per behaviour: a query option, ``$expand``, property, path or FetchXML feature
the sandbox does not implement is a Dataverse-shaped error (400 "Could not find a property named
..." for names, 400 for unsupported options, 404 for unknown segments, 501 ``0x80040219`` for
features the sandbox does not implement), never a 200 with the wrong data.
"""

from __future__ import annotations

from urllib.parse import quote

import requests


def _error(response: requests.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) >= {"code", "message"}
    return body["error"]


# --- record queries -------------------------------------------------------------------------------


def test_an_unknown_custom_query_parameter_is_refused(api):
    session, url = api
    error = _error(session.get(url + "leads?foo=1&$top=1"), 400)
    assert error["message"] == "The query parameter foo is not supported"


def test_sql_parameter_never_returns_the_whole_table(api):
    session, url = api
    response = session.get(url + "leads?sql=" + quote("SELECT TOP 5 fullname FROM lead", safe=""))
    assert response.status_code == 200
    assert len(response.json()["value"]) == 5


def test_sql_outside_the_subset_is_not_implemented(api):
    session, url = api
    response = session.get(
        url + "leads?sql=" + quote("SELECT fullname FROM lead UNION SELECT name FROM account")
    )
    error = _error(response, 501)
    assert error["code"] == "0x80040219" and "UNION" in error["message"]


def test_saved_query_of_a_missing_view_is_not_found_and_user_query_is_not_implemented(api):
    session, url = api
    error = _error(session.get(url + "leads?savedQuery=00000000-0000-0000-0000-000000000001"), 404)
    assert error["code"] == "0x80040217" and "savedquery" in error["message"]
    error = _error(session.get(url + "leads?userQuery=00000000-0000-0000-0000-000000000001"), 501)
    assert "userQuery" in error["message"]


def test_fetchxml_on_a_single_record_is_refused(api):
    session, url = api
    first = session.get(url + "leads?$select=leadid&$top=1").json()["value"][0]["leadid"]
    error = _error(session.get(url + f"leads({first})?fetchXml=%3Cfetch%2F%3E"), 400)
    assert "fetchXml" in error["message"]


def test_apply_is_refused(api):
    session, url = api
    error = _error(session.get(url + "leads?$apply=groupby((statecode))"), 400)
    assert "$apply" in error["message"]


def test_a_collection_valued_expand_is_an_unknown_property(api):
    session, url = api
    error = _error(session.get(url + "accounts?$expand=contact_customer_accounts($select=fullname)"), 400)
    assert error["message"].startswith("Could not find a property named 'contact_customer_accounts'")


def test_an_unknown_segment_after_a_collection_is_404(api):
    session, url = api
    error = _error(session.get(url + "leads/nothing"), 404)
    assert error == {"code": "0x8006088a", "message": "Resource not found for the segment 'nothing'."}


def test_an_unknown_function_is_404(api):
    session, url = api
    error = _error(session.get(url + "RetrieveEverything()"), 404)
    assert error["code"] == "0x8006088a"


# --- metadata -------------------------------------------------------------------------------------


def test_unknown_table_property_in_select_is_400(api):
    session, url = api
    error = _error(session.get(url + "EntityDefinitions?$select=LogicalName,IsNotAThing"), 400)
    assert error["message"] == (
        "Could not find a property named 'IsNotAThing' on type 'Microsoft.Dynamics.CRM.EntityMetadata'."
    )


def test_unknown_table_property_in_filter_is_400_not_an_empty_list(api):
    session, url = api
    error = _error(session.get(url + "EntityDefinitions?$select=LogicalName&$filter=IsPrivat eq false"), 400)
    assert "IsPrivat" in error["message"]


def test_unknown_attribute_property_inside_expand_is_400(api):
    session, url = api
    response = session.get(
        url + "EntityDefinitions?$select=LogicalName&$expand=Attributes($select=LogicalNam)"
    )
    error = _error(response, 400)
    assert error["message"] == (
        "Could not find a property named 'LogicalNam' on type 'Microsoft.Dynamics.CRM.AttributeMetadata'."
    )


def test_unknown_navigation_in_expand_on_table_metadata_is_400(api):
    session, url = api
    error = _error(session.get(url + "EntityDefinitions(LogicalName='lead')?$expand=Views"), 400)
    assert "'Views'" in error["message"]


def test_top_on_entity_definitions_is_refused(api):
    session, url = api
    error = _error(session.get(url + "EntityDefinitions?$select=LogicalName&$top=1"), 400)
    assert "$top" in error["message"]


def test_a_label_property_cannot_be_filtered(api):
    session, url = api
    error = _error(session.get(url + "EntityDefinitions?$filter=DisplayName eq 'Lead'"), 400)
    assert "Label" in error["message"]


def test_functions_in_a_metadata_filter_are_refused(api):
    session, url = api
    error = _error(session.get(url + "EntityDefinitions?$filter=contains(LogicalName,'lead')"), 400)
    assert "contains" in error["message"]


def test_an_unknown_metadata_segment_is_404(api):
    session, url = api
    error = _error(session.get(url + "EntityDefinitions(LogicalName='lead')/Views"), 404)
    assert error["message"] == "Resource not found for the segment 'Views'."


def test_unknown_attribute_property_on_a_cast_is_400(api):
    session, url = api
    path = "EntityDefinitions(LogicalName='lead')/Attributes/Microsoft.Dynamics.CRM.StringAttributeMetadata"
    error = _error(session.get(url + path + "?$select=LogicalName,Precision"), 400)
    assert "StringAttributeMetadata" in error["message"]


# --- FetchXML ------------------------------------------------------------------------------------


def _fetch(session: requests.Session, url: str, entity_set: str, xml: str) -> requests.Response:
    return session.get(url + f"{entity_set}?fetchXml=" + quote(xml, safe=""))


def test_fetchxml_with_an_unknown_attribute_is_400(api):
    session, url = api
    xml = '<fetch><entity name="lead"><attribute name="nosuchcolumn"/></entity></fetch>'
    error = _error(_fetch(session, url, "leads", xml), 400)
    assert "'lead' entity doesn't contain attribute with Name = 'nosuchcolumn'" in error["message"]


def test_fetchxml_for_another_entity_than_the_set_is_400(api):
    session, url = api
    error = _error(_fetch(session, url, "leads", '<fetch><entity name="account"/></fetch>'), 400)
    assert "does not match the entity set" in error["message"]


def test_fetchxml_unknown_element_is_not_implemented(api):
    session, url = api
    xml = '<fetch><entity name="lead"><attribute name="fullname"/><sparkle/></entity></fetch>'
    error = _error(_fetch(session, url, "leads", xml), 501)
    assert error["code"] == "0x80040219" and "<sparkle>" in error["message"]


def test_fetchxml_unknown_operator_is_not_implemented(api):
    session, url = api
    xml = (
        '<fetch><entity name="lead"><filter><condition attribute="createdon" operator="this-fiscal-year"/>'
        "</filter></entity></fetch>"
    )
    error = _error(_fetch(session, url, "leads", xml), 501)
    assert "this-fiscal-year" in error["message"]


def test_fetchxml_malformed_xml_is_400(api):
    session, url = api
    error = _error(_fetch(session, url, "leads", '<fetch><entity name="lead">'), 400)
    assert "well-formed" in error["message"]


def test_fetchxml_with_a_dtd_is_refused(api):
    session, url = api
    xml = '<!DOCTYPE fetch [<!ENTITY x "y">]><fetch><entity name="lead"/></fetch>'
    error = _error(_fetch(session, url, "leads", xml), 400)
    assert "DTD" in error["message"]


def test_fetchxml_cannot_be_combined_with_odata_options(api):
    session, url = api
    response = session.get(url + "leads?$top=1&fetchXml=" + quote('<fetch><entity name="lead"/></fetch>'))
    error = _error(response, 400)
    assert "cannot be combined with fetchXml" in error["message"]


# --- metadata writes the sandbox does not implement ----------------------------------------------


def test_creating_a_table_is_not_implemented(api):
    session, url = api
    error = _error(session.post(url + "EntityDefinitions", json={"SchemaName": "new_Thing"}), 501)
    assert error["code"] == "0x80040219"


def test_updating_a_column_definition_is_not_implemented(api):
    session, url = api
    path = "EntityDefinitions(LogicalName='lead')/Attributes(LogicalName='subject')"
    error = _error(session.put(url + path, json={"MaxLength": 500}), 501)
    assert "Updating a column definition" in error["message"]


def test_deleting_a_column_is_not_implemented(api):
    session, url = api
    error = _error(
        session.delete(url + "EntityDefinitions(LogicalName='lead')/Attributes(LogicalName='subject')"), 501
    )
    assert "Deleting a column" in error["message"]


def test_creating_a_relationship_is_not_implemented(api):
    session, url = api
    error = _error(session.post(url + "RelationshipDefinitions", json={"SchemaName": "new_x"}), 501)
    assert error["code"] == "0x80040219"


def test_creating_a_file_column_is_not_implemented(api):
    session, url = api
    body = {"@odata.type": "Microsoft.Dynamics.CRM.FileAttributeMetadata", "SchemaName": "new_Contract"}
    error = _error(session.post(url + "EntityDefinitions(LogicalName='lead')/Attributes", json=body), 501)
    assert "File and Image columns" in error["message"]


def test_chunked_file_upload_is_an_unknown_segment(api):
    session, url = api
    first = session.get(url + "leads?$select=leadid&$top=1").json()["value"][0]["leadid"]
    error = _error(session.patch(url + f"leads({first})/new_contract", data=b"x"), 404)
    assert error["code"] == "0x8006088a"


def test_create_entities_message_is_not_implemented(api):
    session, url = api
    error = _error(session.post(url + "CreateEntities", json={"Entities": []}), 501)
    assert error["message"].startswith("The CreateEntities message is not implemented")
