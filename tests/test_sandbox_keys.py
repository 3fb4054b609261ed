"""Alternate keys (reference §5.3): created through metadata, then used to address records.

Shapes from Microsoft's SDK (``POST EntityDefinitions(LogicalName='lead')/Keys`` with SchemaName and
KeyAttributes; UpsertMultiple targets with ``@odata.id``) and from the Web API documentation
(``PATCH leads(emailaddress1='a@b.c')``).
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

KEYS = "EntityDefinitions(LogicalName='{table}')/Keys"


def create_key(session, sandbox, table: str, schema: str, attributes: list[str]):
    body = {
        "SchemaName": schema,
        "KeyAttributes": attributes,
        "DisplayName": {"LocalizedLabels": [{"Label": "Key", "LanguageCode": 1033}]},
    }
    return session.post(
        sandbox.api_url + KEYS.format(table=table), json=body, headers={"MSCRM.SolutionUniqueName": "tests"}
    )


@pytest.fixture
def keyed(sandbox_session, sandbox):
    """A sandbox whose contacts have an alternate key on emailaddress2, a column no seeded record fills."""
    session = sandbox_session
    assert (
        session.get(sandbox.api_url + "contacts/$count?$filter=emailaddress2 ne null").content.decode(
            "utf-8-sig"
        )
        == "0"
    )
    response = create_key(session, sandbox, "contact", "new_contact_email2_key", ["emailaddress2"])
    assert response.status_code == 204, response.text
    return session


def _new_contact(session, sandbox, email: str, lastname: str = "Keyed") -> str:
    response = session.post(sandbox.api_url + "contacts", json={"lastname": lastname, "emailaddress2": email})
    assert response.status_code == 204, response.text
    return response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")


def test_addressing_by_a_key_that_is_not_defined_is_400(sandbox_session, sandbox):
    response = sandbox_session.get(sandbox.api_url + "leads(emailaddress1='a@b.c')")
    assert response.status_code == 400
    assert "not a key defined on entity 'lead'" in response.json()["error"]["message"]


def test_creating_a_key_answers_its_location(sandbox_session, sandbox):
    response = create_key(sandbox_session, sandbox, "contact", "new_contact_email2_key", ["emailaddress2"])
    assert response.status_code == 204
    location = response.headers["OData-EntityId"]
    assert "/EntityDefinitions(" in location and "/Keys(" in location
    keys = sandbox_session.get(sandbox.api_url + KEYS.format(table="contact")).json()["value"]
    assert [(k["SchemaName"], k["KeyAttributes"], k["EntityKeyIndexStatus"]) for k in keys] == [
        ("new_contact_email2_key", ["emailaddress2"], "Active")
    ]
    assert location.endswith(f"/Keys({keys[0]['MetadataId']})")


def test_a_key_over_duplicated_values_fails_to_build(sandbox_session, sandbox):
    # Seeded leads share company names (colleagues), so a key on companyname cannot be unique.
    assert (
        create_key(sandbox_session, sandbox, "lead", "new_lead_company_key", ["companyname"]).status_code
        == 204
    )
    (key,) = sandbox_session.get(sandbox.api_url + KEYS.format(table="lead")).json()["value"]
    assert key["EntityKeyIndexStatus"] == "Failed"
    response = sandbox_session.get(sandbox.api_url + "leads(companyname='x')")
    assert response.status_code == 400 and "Failed" in response.json()["error"]["message"]


def test_key_on_an_unknown_column_is_404(sandbox_session, sandbox):
    response = create_key(sandbox_session, sandbox, "contact", "new_bad_key", ["nosuchcolumn"])
    assert response.status_code == 404 and response.json()["error"]["code"] == "0x80040217"


def test_key_without_publisher_prefix_is_400(sandbox_session, sandbox):
    response = create_key(sandbox_session, sandbox, "contact", "contactemailkey", ["emailaddress2"])
    assert response.status_code == 400 and response.json()["error"]["code"] == "0x80040203"


def test_get_by_alternate_key(keyed, sandbox):
    record_id = _new_contact(keyed, sandbox, "o'brien@example.com")
    response = keyed.get(
        sandbox.api_url + "contacts(emailaddress2='" + quote("o''brien@example.com") + "')?$select=lastname"
    )
    assert response.status_code == 200, response.text
    assert response.json()["contactid"] == record_id


def test_get_by_alternate_key_that_matches_nothing_is_404(keyed, sandbox):
    response = keyed.get(sandbox.api_url + "contacts(emailaddress2='nobody@example.com')")
    assert response.status_code == 404
    assert response.json()["error"] == {
        "code": "0x80060891",
        "message": "A record with the specified key values does not exist in contact entity",
    }


def test_patch_by_alternate_key_updates_the_record(keyed, sandbox):
    record_id = _new_contact(keyed, sandbox, "update@example.com")
    response = keyed.patch(
        sandbox.api_url + "contacts(emailaddress2='update@example.com')", json={"jobtitle": "CFO"}
    )
    assert response.status_code == 204
    assert response.headers["OData-EntityId"].endswith(f"contacts({record_id})")
    assert keyed.get(sandbox.api_url + f"contacts({record_id})?$select=jobtitle").json()["jobtitle"] == "CFO"


def test_upsert_by_alternate_key_creates_with_the_key_value(keyed, sandbox):
    response = keyed.patch(
        sandbox.api_url + "contacts(emailaddress2='new@example.com')",
        json={"lastname": "Upserted"},
        headers={"Prefer": "return=representation"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["emailaddress2"] == "new@example.com"
    count = keyed.get(sandbox.api_url + "contacts/$count?$filter=emailaddress2 eq 'new@example.com'")
    assert count.content.decode("utf-8-sig") == "1"


def test_patch_by_key_with_if_match_on_a_missing_record_is_404(keyed, sandbox):
    response = keyed.patch(
        sandbox.api_url + "contacts(emailaddress2='missing@example.com')",
        json={"lastname": "X"},
        headers={"If-Match": "*"},
    )
    assert response.status_code == 404 and response.json()["error"]["code"] == "0x80060891"


def test_duplicate_key_value_on_create_is_refused(keyed, sandbox):
    _new_contact(keyed, sandbox, "twice@example.com")
    response = keyed.post(
        sandbox.api_url + "contacts", json={"lastname": "Again", "emailaddress2": "TWICE@example.com"}
    )
    assert response.status_code == 412
    error = response.json()["error"]
    assert error["code"] == "0x80060892"
    assert error["message"].startswith("Entity Key new_contact_email2_key violated.")


def test_duplicate_key_value_on_update_is_refused(keyed, sandbox):
    _new_contact(keyed, sandbox, "first@example.com")
    second = _new_contact(keyed, sandbox, "second@example.com")
    response = keyed.patch(
        sandbox.api_url + f"contacts({second})",
        json={"emailaddress2": "first@example.com"},
        headers={"If-Match": "*"},
    )
    assert response.status_code == 412 and response.json()["error"]["code"] == "0x80060892"


def test_upsert_multiple_with_odata_id_by_alternate_key(keyed, sandbox):
    existing = _new_contact(keyed, sandbox, "existing@example.com")
    targets = [
        {
            "@odata.type": "Microsoft.Dynamics.CRM.contact",
            "@odata.id": "contacts(emailaddress2='existing@example.com')",
            "jobtitle": "CEO",
        },
        {
            "@odata.type": "Microsoft.Dynamics.CRM.contact",
            "@odata.id": "contacts(emailaddress2='fresh@example.com')",
            "lastname": "Fresh",
        },
    ]
    response = keyed.post(
        sandbox.api_url + "contacts/Microsoft.Dynamics.CRM.UpsertMultiple", json={"Targets": targets}
    )
    assert response.status_code == 200, response.text
    ids = response.json()["Ids"]
    assert ids[0] == existing
    fresh = keyed.get(sandbox.api_url + f"contacts({ids[1]})?$select=lastname,emailaddress2").json()
    assert (fresh["lastname"], fresh["emailaddress2"]) == ("Fresh", "fresh@example.com")
    assert keyed.get(sandbox.api_url + f"contacts({existing})?$select=jobtitle").json()["jobtitle"] == "CEO"


def test_deleting_a_key_stops_key_addressing(keyed, sandbox):
    _new_contact(keyed, sandbox, "gone@example.com")
    (key,) = keyed.get(sandbox.api_url + KEYS.format(table="contact")).json()["value"]
    assert (
        keyed.delete(sandbox.api_url + KEYS.format(table="contact") + f"({key['MetadataId']})").status_code
        == 204
    )
    assert keyed.get(sandbox.api_url + "contacts(emailaddress2='gone@example.com')").status_code == 400
    # Without the key, the same value may be written twice again.
    assert (
        keyed.post(
            sandbox.api_url + "contacts", json={"lastname": "B", "emailaddress2": "gone@example.com"}
        ).status_code
        == 204
    )


def test_keys_survive_a_restart(keyed, sandbox, sandbox_factory):
    record_id = _new_contact(keyed, sandbox, "restart@example.com")
    sandbox.stop()
    from connector.sandbox import Sandbox

    again = Sandbox(sandbox.data_dir, token=sandbox.token)
    again.start()
    try:
        response = keyed.get(
            again.api_url + "contacts(emailaddress2='restart@example.com')?$select=contactid"
        )
        assert response.status_code == 200 and response.json()["contactid"] == record_id
    finally:
        again.stop()
