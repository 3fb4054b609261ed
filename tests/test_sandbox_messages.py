"""Service messages: ``BulkDelete`` as Microsoft's SDK sends it, and function/action calling rules."""

from __future__ import annotations


def _bulk_delete_body(entity: str, conditions: list[dict], recurrence: str = "") -> dict:
    # The body PowerPlatform-Dataverse-Client's delete of a list of ids sends.
    return {
        "JobName": f"Bulk delete {entity} records",
        "SendEmailNotification": False,
        "ToRecipients": [],
        "CCRecipients": [],
        "RecurrencePattern": recurrence,
        "StartDateTime": "2026-06-01T00:00:00Z",
        "QuerySet": [
            {
                "@odata.type": "Microsoft.Dynamics.CRM.QueryExpression",
                "EntityName": entity,
                "ColumnSet": {
                    "@odata.type": "Microsoft.Dynamics.CRM.ColumnSet",
                    "AllColumns": False,
                    "Columns": [],
                },
                "Criteria": {
                    "@odata.type": "Microsoft.Dynamics.CRM.FilterExpression",
                    "FilterOperator": "And",
                    "Conditions": conditions,
                },
            }
        ],
    }


def _ids(session, sandbox, n: int) -> list[str]:
    value = session.get(sandbox.api_url + f"leads?$select=leadid&$top={n}&$orderby=leadid").json()["value"]
    return [r["leadid"] for r in value]


def test_bulk_delete_removes_exactly_the_listed_ids(sandbox_session, sandbox):
    doomed = _ids(sandbox_session, sandbox, 3)
    survivor = _ids(sandbox_session, sandbox, 4)[-1]
    condition = {
        "@odata.type": "Microsoft.Dynamics.CRM.ConditionExpression",
        "AttributeName": "leadid",
        "Operator": "In",
        "Values": [{"Value": i, "Type": "System.Guid"} for i in doomed],
    }
    response = sandbox_session.post(
        sandbox.api_url + "BulkDelete", json=_bulk_delete_body("lead", [condition])
    )
    assert response.status_code == 200, response.text
    assert response.json()["JobId"]
    for record_id in doomed:
        assert sandbox_session.get(sandbox.api_url + f"leads({record_id})").status_code == 404
    assert sandbox_session.get(sandbox.api_url + f"leads({survivor})").status_code == 200


def test_bulk_delete_is_seen_by_change_tracking(sandbox_session, sandbox):
    first = sandbox_session.get(
        sandbox.api_url + "leads?$select=fullname",
        headers={"Prefer": "odata.track-changes,odata.maxpagesize=5000"},
    ).json()
    while "@odata.nextLink" in first:
        first = sandbox_session.get(
            first["@odata.nextLink"], headers={"Prefer": "odata.track-changes,odata.maxpagesize=5000"}
        ).json()
    (doomed,) = _ids(sandbox_session, sandbox, 1)
    condition = {
        "AttributeName": "leadid",
        "Operator": "Equal",
        "Values": [{"Value": doomed, "Type": "System.Guid"}],
    }
    assert (
        sandbox_session.post(
            sandbox.api_url + "BulkDelete", json=_bulk_delete_body("lead", [condition])
        ).status_code
        == 200
    )
    delta = sandbox_session.get(first["@odata.deltaLink"], headers={"Prefer": "odata.track-changes"}).json()
    assert {"id": doomed, "reason": "deleted"}.items() <= delta["value"][-1].items()


def test_bulk_delete_with_an_unknown_attribute_deletes_nothing(sandbox_session, sandbox):
    condition = {"AttributeName": "nosuchcolumn", "Operator": "Equal", "Values": [{"Value": "x"}]}
    response = sandbox_session.post(
        sandbox.api_url + "BulkDelete", json=_bulk_delete_body("lead", [condition])
    )
    assert response.status_code == 400
    assert "doesn't contain attribute with Name = 'nosuchcolumn'" in response.json()["error"]["message"]


def test_recurring_bulk_delete_is_not_implemented(sandbox_session, sandbox):
    condition = {"AttributeName": "statecode", "Operator": "Equal", "Values": [{"Value": 2}]}
    body = _bulk_delete_body("lead", [condition], recurrence="FREQ=DAILY;INTERVAL=1")
    response = sandbox_session.post(sandbox.api_url + "BulkDelete", json=body)
    assert response.status_code == 501 and response.json()["error"]["code"] == "0x80040219"
    count = sandbox_session.get(sandbox.api_url + "leads/$count?$filter=statecode eq 2").content.decode(
        "utf-8-sig"
    )
    assert int(count) > 0


def test_bulk_delete_with_get_is_405(sandbox_session, sandbox):
    assert sandbox_session.get(sandbox.api_url + "BulkDelete").status_code == 405


def test_a_function_called_with_post_is_404(sandbox_session, sandbox):
    assert sandbox_session.post(sandbox.api_url + "RetrieveAvailableLanguages", json={}).status_code == 404


def test_function_with_an_unknown_parameter_is_400(sandbox_session, sandbox):
    response = sandbox_session.get(sandbox.api_url + "RetrieveAvailableLanguages(Foo=1)")
    assert response.status_code == 400 and "Foo" in response.json()["error"]["message"]
