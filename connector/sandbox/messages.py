"""Unbound functions and actions: WhoAmI, RetrieveAvailableLanguages, RetrieveMetadataChanges, BulkDelete.

Functions are called with ``GET Name(Param=@p1,...)?@p1=<JSON>`` (or ``Name()`` without
parameters), actions with ``POST Name`` and a JSON body. ``BulkDelete`` is asynchronous in
Dataverse: it answers a ``JobId`` and deletes later; the sandbox deletes at once, inside one
transaction (each deletion recorded for change tracking), so the records are gone when the answer
arrives. A recurring job (a non-empty ``RecurrencePattern``) is a 501. Messages that other issues
implement (``Merge``, ``QualifyLead``, ``RetrieveDuplicates``) are added here beside these.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import datetime
from urllib.parse import parse_qsl

from connector.sandbox.conditions import QUERY_EXPRESSION_OPERATORS, compile_condition
from connector.sandbox.config import SandboxConfig
from connector.sandbox.customizations import add_component_from_action
from connector.sandbox.faults import ApiError, bad_request, not_implemented
from connector.sandbox.metadata import publish, retrieve_metadata_changes
from connector.sandbox.protocol import Request, Response, json_response, split_top_level
from connector.sandbox.schema import BUSINESS_UNIT_ID, ORGANIZATION_ID, USER_ID, Table
from connector.sandbox.storage import Store
from connector.sandbox.writes import apply_delete

__all__ = ["MESSAGES", "NOT_IMPLEMENTED", "serve_message"]

_NS = "Microsoft.Dynamics.CRM."
_CALL = re.compile(r"^(?P<name>[A-Za-z]\w*)(?:\((?P<args>.*)\))?$", re.DOTALL)


def serve_message(store: Store, config: SandboxConfig, req: Request, path: str) -> Response | None:
    """Serve ``path`` if it names one of :data:`MESSAGES`; None when it names none."""
    m = _CALL.match(path)
    if m and m.group("name") in NOT_IMPLEMENTED:
        raise not_implemented(f"The {m.group('name')} message")
    if not m or m.group("name") not in MESSAGES:
        return None
    name = m.group("name")
    method, handler = MESSAGES[name]
    if req.method != method:
        if method == "GET":
            # A function called with POST does not resolve, as in Dataverse (§2.5 shows it for WhoAmI).
            raise ApiError(
                404,
                "",
                f"No HTTP resource was found that matches the request URI '{req.service_root}{name}'.",
            )
        raise ApiError(405, "0x0", f"{name} is an action: use POST.")
    if method == "POST" and m.group("args") is not None:
        raise bad_request(f"{name} is an action: send its parameters in the JSON body, not in the URL.")
    args = _function_args(m.group("args") or "", req.query) if method == "GET" else {}
    return handler(store, config, req, args)


def _function_args(text: str, query: str) -> dict[str, object]:
    """``Query=@p1,ClientVersionStamp=@p2`` with ``?@p1=...`` → name → decoded JSON value."""
    aliases = {k: v for k, v in parse_qsl(query, keep_blank_values=True) if k.startswith("@")}
    out: dict[str, object] = {}
    for part in split_top_level(text) if text.strip() else []:
        name, sep, raw = part.partition("=")
        if not sep or not name.strip():
            raise bad_request(f"Function parameters are written Name=value, not '{part}'.")
        raw = raw.strip()
        if raw.startswith("@"):
            if raw not in aliases:
                raise bad_request(f"The parameter alias {raw} is not given in the query string.")
            raw = aliases[raw]
        out[name.strip()] = _json_value(raw)
    return out


def _json_value(raw: str) -> object:
    if raw.startswith("'") and raw.endswith("'") and len(raw) >= 2:
        return raw[1:-1].replace("''", "'")
    if raw == "null":
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise bad_request(f"The parameter value {raw[:80]} is not a JSON value or a quoted string.") from exc


def _only(name: str, args: dict[str, object], allowed: set[str]) -> None:
    for key in args:
        if key not in allowed:
            raise bad_request(f"The function {name} has no parameter named '{key}'.")


def _whoami(store: Store, config: SandboxConfig, req: Request, args: dict[str, object]) -> Response:
    """``GET WhoAmI``: the sandbox's one user, business unit and organisation (§2.5)."""
    _only("WhoAmI", args, set())
    return json_response(
        200,
        {
            "@odata.context": f"{req.service_root}$metadata#{_NS}WhoAmIResponse",
            "BusinessUnitId": BUSINESS_UNIT_ID,
            "UserId": USER_ID,
            "OrganizationId": ORGANIZATION_ID,
        },
    )


def _languages(store: Store, config: SandboxConfig, req: Request, args: dict[str, object]) -> Response:
    """``GET RetrieveAvailableLanguages``: the sandbox is provisioned in English (1033) only."""
    _only("RetrieveAvailableLanguages", args, set())
    context = f"{req.service_root}$metadata#{_NS}RetrieveAvailableLanguagesResponse"
    return json_response(200, {"@odata.context": context, "LocaleIds": [1033]})


def _metadata_changes(store: Store, config: SandboxConfig, req: Request, args: dict[str, object]) -> Response:
    _only(
        "RetrieveMetadataChanges",
        args,
        {"Query", "ClientVersionStamp", "DeletedMetadataFilters", "AppModuleId"},
    )
    if args.get("AppModuleId") is not None:
        raise not_implemented("RetrieveMetadataChanges with AppModuleId")
    body = retrieve_metadata_changes(
        store, config, req.service_root, args.get("Query"), args.get("ClientVersionStamp")
    )
    return json_response(200, body)


def _add_solution_component(
    store: Store, config: SandboxConfig, req: Request, args: dict[str, object]
) -> Response:
    with store.transaction() as conn:
        body = add_component_from_action(conn, req.json())
    context = f"{req.service_root}$metadata#Microsoft.Dynamics.CRM.AddSolutionComponentResponse"
    return json_response(200, {"@odata.context": context, **body})


def _publish(action: str) -> Callable[[Store, SandboxConfig, Request, dict[str, object]], Response]:
    def serve(store: Store, config: SandboxConfig, req: Request, args: dict[str, object]) -> Response:
        return publish(store, config, req, action)

    return serve


def _bulk_delete(store: Store, config: SandboxConfig, req: Request, args: dict[str, object]) -> Response:
    """``POST BulkDelete`` with ``QuerySet`` (QueryExpressions) and ``JobName``: delete what they match."""
    body = req.json()
    if not isinstance(body, dict):
        raise bad_request("BulkDelete needs a JSON object body with QuerySet and JobName.")
    for required in ("QuerySet", "JobName"):
        if required not in body:
            raise bad_request(f"BulkDelete needs the parameter {required}.")
    if body.get("RecurrencePattern"):
        raise not_implemented("A recurring BulkDelete job (RecurrencePattern)")
    query_set = body["QuerySet"]
    if not isinstance(query_set, list) or not query_set:
        raise bad_request("QuerySet must be a list of at least one QueryExpression.")
    now = config.clock()
    plans = [_plan(store, query, now) for query in query_set]
    with store.transaction() as conn:
        for table, where, params in plans:
            sql = f'SELECT "{table.primary_id}" FROM "{table.logical_name}"' + (
                f" WHERE {where}" if where else ""
            )
            for (record_id,) in conn.execute(sql, params).fetchall():
                apply_delete(store, conn, table, record_id, None, now)
    context = f"{req.service_root}$metadata#{_NS}BulkDeleteResponse"
    return json_response(200, {"@odata.context": context, "JobId": str(uuid.uuid4())})


def _plan(store: Store, query: object, now: datetime) -> tuple[Table, str, list]:
    if not isinstance(query, dict):
        raise bad_request("Each QuerySet item must be a QueryExpression object.")
    entity = query.get("EntityName")
    table = store.tables.get(str(entity))
    if table is None:
        raise ApiError(
            404, "0x80040217", f"The entity with a name = '{entity}' was not found in the MetadataCache."
        )
    if not table.writable:
        raise bad_request(
            f"The 'BulkDelete' message does not support entities of type '{table.logical_name}'."
        )
    if query.get("LinkEntities"):
        raise not_implemented("LinkEntities in a BulkDelete QueryExpression")
    criteria = query.get("Criteria")
    if criteria is None:
        return table, "", []
    where, params = _filter(table, criteria, now)
    return table, where, params


def _filter(table: Table, criteria: object, now: datetime) -> tuple[str, list]:
    if not isinstance(criteria, dict):
        raise bad_request("Criteria must be a FilterExpression object.")
    operator = criteria.get("FilterOperator", "And")
    if operator not in ("And", "Or"):
        raise bad_request(f"FilterOperator must be And or Or, not '{operator}'.")
    parts: list[str] = []
    params: list = []
    columns = table.column_map()
    for condition in criteria.get("Conditions") or []:
        if not isinstance(condition, dict):
            raise bad_request("Each condition must be a ConditionExpression object.")
        name = condition.get("AttributeName")
        column = columns.get(str(name))
        if column is None or column.internal:
            raise bad_request(
                f"'{table.logical_name}' entity doesn't contain attribute with Name = '{name}' and "
                "NameMapping = 'Logical'.",
                code="0x80041103",
            )
        op = QUERY_EXPRESSION_OPERATORS.get(str(condition.get("Operator")))
        if op is None:
            raise not_implemented(f"The condition operator '{condition.get('Operator')}'")
        values = [v.get("Value") if isinstance(v, dict) else v for v in condition.get("Values") or []]
        fragment, fparams = compile_condition(
            f'"{column.logical_name}"', column, table.logical_name, op, values, now
        )
        parts.append(f"({fragment})")
        params.extend(fparams)
    for nested in criteria.get("Filters") or []:
        fragment, fparams = _filter(table, nested, now)
        if fragment:
            parts.append(f"({fragment})")
            params.extend(fparams)
    return (" AND " if operator == "And" else " OR ").join(parts), params


_Handler = Callable[[Store, SandboxConfig, Request, dict[str, object]], Response]

# Message name → (HTTP method, handler). Functions answer GET, actions POST.
MESSAGES: dict[str, tuple[str, _Handler]] = {
    "WhoAmI": ("GET", _whoami),
    "RetrieveAvailableLanguages": ("GET", _languages),
    "RetrieveMetadataChanges": ("GET", _metadata_changes),
    "BulkDelete": ("POST", _bulk_delete),
    "PublishXml": ("POST", _publish("PublishXml")),
    "AddSolutionComponent": ("POST", _add_solution_component),
    "PublishAllXml": ("POST", _publish("PublishAllXml")),
}

# Dataverse messages that clients send and the sandbox knowingly does not implement (table creation,
# customer relationships, chunked file transfer): a 501 naming them rather than a 404 that reads
# like a typo. Listed under "Known differences" in docs/sandbox.md.
NOT_IMPLEMENTED = frozenset(
    {
        "CreateEntities",
        "CreateCustomerRelationships",
        "InitializeFileBlocksUpload",
        "UploadBlock",
        "CommitFileBlocksUpload",
        "InitializeFileBlocksDownload",
        "DownloadBlock",
    }
)
