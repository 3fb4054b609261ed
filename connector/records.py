"""Single records by id: read one, create one (optionally into a solution), update one, call an action.

The bulk paths are :mod:`connector.paging` (reads) and :mod:`connector.writeback` (``$batch``
updates); these are for the few records a customization or a message touches, such as system
views, charts and forms. A create always carries its primary key, chosen by the caller, so that a
create whose answer was lost can be sent again safely: Dataverse refuses the second one as a
duplicate key (0x80040237), and :func:`create_record` then reports the record as already there.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from connector.errors import DuplicateRecordError, PreconditionFailedError
from connector.http import HttpClient, decode_json
from connector.query import build_query, validate_name

__all__ = ["call_action", "create_record", "get_record", "run_saved_query", "update_record"]


def _record_path(entity_set: str, record_id: str) -> str:
    validate_name(entity_set, "entity set")
    return f"{entity_set}({uuid.UUID(str(record_id))})"


def get_record(
    http: HttpClient, entity_set: str, record_id: str, select: Sequence[str] | None = None
) -> dict[str, Any] | None:
    """Return one record's ``select`` columns (every column when None), or None when it does not exist."""
    params = build_query(select=select) if select else None
    response = http.request("GET", _record_path(entity_set, record_id), params=params, ok_statuses=(404,))
    if response.status_code == 404:
        return None
    return {k: v for k, v in decode_json(response).items() if not k.startswith("@odata.context")}


def create_record(
    http: HttpClient,
    entity_set: str,
    primary_id: str,
    record_id: str,
    body: Mapping[str, Any],
    *,
    solution: str | None = None,
) -> bool:
    """Create a record with the given id; return False when a record with that id already exists.

    Args:
        http: the client.
        entity_set: e.g. ``savedqueries``.
        primary_id: the table's primary key column (``savedqueryid``).
        record_id: the id to give the record (a deterministic one makes a resend harmless).
        body: the other columns.
        solution: an unmanaged solution to add the record to (``MSCRM.SolutionUniqueName``), for
            solution-aware records such as views and charts.

    Raises:
        DataverseError: the create was refused for another reason.
    """
    validate_name(entity_set, "entity set")
    headers = {"MSCRM.SolutionUniqueName": solution} if solution else {}
    try:
        http.request(
            "POST",
            entity_set,
            json_body={**body, primary_id: str(uuid.UUID(str(record_id)))},
            headers=headers,
            idempotent=True,  # the id is in the body: a resend is refused as a duplicate, never doubled
        )
    except (DuplicateRecordError, PreconditionFailedError):
        return False
    return True


def update_record(http: HttpClient, entity_set: str, record_id: str, body: Mapping[str, Any]) -> None:
    """Update an existing record (``If-Match: *``: never creates one by accident)."""
    http.request(
        "PATCH", _record_path(entity_set, record_id), json_body=dict(body), headers={"If-Match": "*"}
    )


def call_action(http: HttpClient, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Call an unbound action (``POST <name>``) and return its JSON answer ({} for 204)."""
    validate_name(name, "action")
    response = http.request("POST", name, json_body=dict(body))
    if response.status_code == 204 or not response.content:
        return {}
    return decode_json(response, method="POST")


def run_saved_query(
    http: HttpClient, entity_set: str, query_id: str, *, top: int, formatted_values: bool = True
) -> list[dict[str, Any]]:
    """The first ``top`` records a system view returns (``GET <set>?savedQuery=<id>``), in its order.

    Records come as a FetchXML query returns them: columns that are null are absent (Microsoft
    Learn, "Retrieve and execute predefined queries"). With ``formatted_values``, choices, lookups
    and numbers also carry their ``@OData.Community.Display.V1.FormattedValue`` labels.
    """
    validate_name(entity_set, "entity set")
    prefer = [f"odata.maxpagesize={int(top)}"]
    if formatted_values:
        prefer.append('odata.include-annotations="OData.Community.Display.V1.FormattedValue"')
    response = http.request(
        "GET",
        entity_set,
        params={"savedQuery": str(uuid.UUID(str(query_id)))},
        headers={"Prefer": ",".join(prefer)},
    )
    return list(decode_json(response).get("value", []))[: int(top)]
