"""The ``Merge`` action and the ``RetrieveDuplicates`` function, as Microsoft documents them.

Sources: merge-entity-using-web-api.md (Merge is an unbound action with ``Target``, ``Subordinate``,
``UpdateContent`` and ``PerformParentingChecks``; each entity parameter carries ``@odata.type``;
204 No Content on success; only account, contact, lead and incident can be merged; the caller needs
privileges on both records) and run-duplicate-detection.md (``RetrieveDuplicates(BusinessEntity=@p1,
MatchingEntityName=@p2,PagingInfo=@p3)``). See ``../shared/dataverse-webapi.md`` §9.

What a merge does here, in one transaction (so inside a ``$batch`` change set several merges
succeed or fail together):

1. ``UpdateContent`` is written to the target through the same validation as a PATCH.
2. Every lookup in every table that points at the subordinate is re-parented to the target
   (contacts and orders of an account, activities regarding a lead, opportunities, the primary
   contact of accounts...), each re-parented row getting a new version so change tracking reports it.
3. The subordinate is deactivated with the state Dataverse gives a merged record of its table
   (account and contact: Inactive/Inactive, statecode 1 and statuscode 2; lead: Disqualified/Canceled,
   statecode 2 and statuscode 7 [INFERRED from the lead status model; Microsoft does not document
   it]) and marked ``merged = true`` with ``masterid`` = the target.

Errors (all [INFERRED] codes unless noted; the messages say what was wrong):

- a table that cannot be merged: 400 ``0x80040315`` NotSupported (the documented code's message);
- Target and Subordinate of different tables, a record merged into itself, an inactive target, an
  already merged subordinate, parents that differ with ``PerformParentingChecks``: 400 ``0x80040203``
  (InvalidArgument);
- a missing record: 404 ``0x80040217`` ObjectDoesNotExist (documented);
- missing privileges (``SandboxConfig.denied_privileges``): 403 ``0x80040220`` "Principal user is
  missing <privilege> privilege" (the SDK's documented message).

``SandboxConfig.failing_merges`` holds subordinate ids whose merge fails like a plug-in that throws
(400 ``0x80040265``, the documented plug-in code), for tests that break a batch of merges half-way.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Protocol
from urllib.parse import parse_qsl

from connector.sandbox.config import SandboxConfig
from connector.sandbox.faults import ApiError, bad_request, not_found_record
from connector.sandbox.filters import format_datetime
from connector.sandbox.protocol import AnnotationFilter, Request, Response, json_response
from connector.sandbox.query import RecordWriter
from connector.sandbox.schema import USER_ID, Table
from connector.sandbox.storage import Store
from connector.sandbox.writes import apply_upsert, current_row, parse_guid


class Service(Protocol):
    """What these messages need of :class:`connector.sandbox.service.Service` (named, not imported,
    so that the service can dispatch to this module without an import cycle)."""

    store: Store
    config: SandboxConfig

    def now(self) -> datetime: ...


__all__ = ["MERGEABLE", "MERGED_STATE", "merge", "retrieve_duplicates"]

MERGEABLE = ("account", "contact", "lead", "incident")
"""The tables Microsoft lists as mergeable (incident is not served by the sandbox)."""

MERGED_STATE: dict[str, tuple[int, int]] = {"account": (1, 2), "contact": (1, 2), "lead": (2, 7)}
"""(statecode, statuscode) a merged subordinate is left in, per table."""

# The lookup on each table whose value must match with PerformParentingChecks.
_PARENT_COLUMNS: dict[str, tuple[str, ...]] = {
    "account": ("parentaccountid",),
    "contact": ("parentcustomerid",),
    "lead": ("parentaccountid", "parentcontactid"),
}
# Lookups that record history rather than a parent; a merge never rewrites them.
_NOT_REPARENTED = frozenset({"masterid", "createdby", "modifiedby", "ownerid", "owningbusinessunit"})
_PRIVILEGE_NAMES = {"account": "Account", "contact": "Contact", "lead": "Lead"}


def _invalid(message: str) -> ApiError:
    return ApiError(400, "0x80040203", message)


def _reference(body: dict, name: str, tables: dict[str, Table]) -> tuple[Table, str | None, dict]:
    """Read one entity parameter: its table (from ``@odata.type``), its id and its other values."""
    value = body.get(name)
    if not isinstance(value, dict):
        raise bad_request(
            f"The Merge parameter '{name}' must be an entity object with '@odata.type', e.g. "
            '{"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": "<id>"}.'
        )
    kind = str(value.get("@odata.type") or "").lstrip("#")
    if not kind:
        # Documented: the parameter types are not explicit, so @odata.type is required.
        raise bad_request(
            f"The Merge parameter '{name}' needs an '@odata.type' annotation such as "
            "'Microsoft.Dynamics.CRM.account'."
        )
    logical = kind.rsplit(".", 1)[-1]
    table = tables.get(logical)
    if table is None:
        raise bad_request(f"The type '{kind}' of the Merge parameter '{name}' is not an entity type.")
    raw_id = value.get(table.primary_id)
    record_id = parse_guid(str(raw_id)) if raw_id is not None else None
    if raw_id is not None and record_id is None:
        raise bad_request(f"The {table.primary_id} '{raw_id}' of the Merge parameter '{name}' is not a GUID.")
    return table, record_id, value


def _check_privileges(service: Service, table: Table) -> None:
    denied = service.config.denied_privileges
    for verb in ("Write", "AppendTo"):
        privilege = f"prv{verb}{_PRIVILEGE_NAMES.get(table.logical_name, table.logical_name)}"
        if privilege in denied:
            raise ApiError(
                403,
                "0x80040220",
                f"Principal user (Id={USER_ID}, type=8) is missing {privilege} privilege on "
                f"OTC={table.object_type_code} for entity '{table.logical_name}'.",
            )


def merge(service: Service, req: Request) -> Response:
    """``POST Merge``: merge the subordinate into the target (see the module docstring)."""
    if req.method != "POST":
        raise ApiError(405, "0x0", "Merge is an action: use POST.")
    body = req.json()
    if not isinstance(body, dict):
        raise bad_request(
            "The Merge body must be a JSON object with Target, Subordinate and PerformParentingChecks."
        )
    for name in ("Target", "Subordinate", "PerformParentingChecks"):
        if name not in body:
            raise bad_request(f"The Merge parameter '{name}' is required.")
    checks = body["PerformParentingChecks"]
    if not isinstance(checks, bool):
        raise bad_request("The Merge parameter 'PerformParentingChecks' must be true or false.")
    tables = service.store.tables
    target_table, target_id, _ = _reference(body, "Target", tables)
    sub_table, sub_id, _ = _reference(body, "Subordinate", tables)
    if target_table.logical_name != sub_table.logical_name:
        raise _invalid(
            f"The Target ({target_table.logical_name}) and the Subordinate ({sub_table.logical_name}) "
            "of a merge must be records of the same table."
        )
    table = target_table
    if table.logical_name not in MERGED_STATE:
        raise ApiError(
            400,
            "0x80040315",
            f"This action is not supported. Records of {table.logical_name} cannot be merged; "
            "Merge accepts account, contact, lead and incident.",
        )
    if target_id is None or sub_id is None:
        raise bad_request(f"Both Target and Subordinate need their {table.primary_id}.")
    if target_id == sub_id:
        raise _invalid(f"The {table.logical_name} {target_id} cannot be merged into itself.")
    update = body.get("UpdateContent")
    values: dict = {}
    if update is not None:
        update_table, _, update_values = _reference(body, "UpdateContent", tables)
        if update_table.logical_name != table.logical_name:
            raise _invalid(
                f"UpdateContent is a {update_table.logical_name} but the merged records are "
                f"{table.logical_name} records."
            )
        values = {k: v for k, v in update_values.items() if k != table.primary_id}
    _check_privileges(service, table)
    if sub_id in service.config.failing_merges:
        raise ApiError(
            400,
            "0x80040265",
            f"A plug-in registered on Merge refused to merge {table.logical_name} {sub_id}.",
        )
    now = service.now()
    with service.store.transaction() as conn:
        target = current_row(conn, table, target_id)
        if target is None:
            raise not_found_record(table.logical_name, target_id)
        subordinate = current_row(conn, table, sub_id)
        if subordinate is None:
            raise not_found_record(table.logical_name, sub_id)
        if int(target.get("statecode") or 0) != 0:
            raise _invalid(
                f"The target {table.logical_name} {target_id} is inactive; "
                "only an active record can be a merge target."
            )
        if subordinate.get("merged"):
            raise _invalid(
                f"The {table.logical_name} {sub_id} was already merged into {subordinate.get('masterid')}."
            )
        if checks:
            for column in _PARENT_COLUMNS.get(table.logical_name, ()):
                if (target.get(column) or None) != (subordinate.get(column) or None):
                    raise _invalid(
                        f"The parent ({column}) of the subordinate differs from the target's; merge "
                        "without PerformParentingChecks or give both records the same parent."
                    )
        if values:
            apply_upsert(service.store, conn, table, target_id, values, if_match="*", now=now)
        _reparent(service, conn, table, sub_id, target_id, now)
        state, status = MERGED_STATE[table.logical_name]
        conn.execute(
            f'UPDATE "{table.logical_name}" SET statecode = ?, statuscode = ?, merged = 1, masterid = ?, '
            f'modifiedon = ?, modifiedby = ?, versionnumber = ? WHERE "{table.primary_id}" = ?',
            (state, status, target_id, format_datetime(now), USER_ID, service.store.next_version(), sub_id),
        )
    return Response(204, [("OData-Version", "4.0")])


def _reparent(
    service: Service, conn: sqlite3.Connection, merged: Table, old: str, new: str, now: datetime
) -> None:
    """Point every lookup that names ``old`` (a ``merged`` record) at ``new``."""
    stamp = format_datetime(now)
    for table in service.store.tables.values():
        for column in table.columns:
            if not column.is_lookup or merged.logical_name not in column.targets:
                continue
            if column.logical_name in _NOT_REPARENTED:
                continue
            where = f'"{column.logical_name}" = ?'
            params: list = [old]
            kind = column.type_column
            if kind and kind in table.column_map():
                where += f' AND "{kind}" = ?'
                params.append(merged.logical_name)
            ids = [
                row[0]
                for row in conn.execute(
                    f'SELECT "{table.primary_id}" FROM "{table.logical_name}" WHERE {where}', params
                )
            ]
            for child_id in ids:
                if table.logical_name == merged.logical_name and child_id == old:
                    continue
                conn.execute(
                    f'UPDATE "{table.logical_name}" SET "{column.logical_name}" = ?, modifiedon = ?, '
                    f'versionnumber = ? WHERE "{table.primary_id}" = ?',
                    (new, stamp, service.store.next_version(), child_id),
                )


# --------------------------------------------------------------------------- RetrieveDuplicates


def _alias(value: str, aliases: dict[str, str]) -> str:
    value = value.strip()
    return aliases.get(value, value) if value.startswith("@") else value


def _json_literal(text: str, name: str) -> object:
    # The documented example writes the objects with single quotes: {'@odata.type':'...'}.
    try:
        return json.loads(text)
    except ValueError:
        try:
            return json.loads(text.replace("'", '"'))
        except ValueError:
            raise bad_request(
                f"The RetrieveDuplicates parameter {name} is not a JSON object: {text}"
            ) from None


def retrieve_duplicates(service: Service, req: Request, path: str) -> Response:
    """``GET RetrieveDuplicates(BusinessEntity=@p1,MatchingEntityName=@p2,PagingInfo=@p3)``.

    Answers from ``SandboxConfig.duplicate_rules`` (table → columns that must all be equal; blank
    values never match; only active records, as Dataverse's default rules exclude inactive ones).
    A table without a rule gets ``NoPublishedDuplicateDetectionRules`` (``0x80048436``, §9.1).
    """
    if req.method != "GET":
        raise ApiError(405, "0x0", "RetrieveDuplicates is a function: use GET.")
    inside = path[len("RetrieveDuplicates") :].strip()
    if not (inside.startswith("(") and inside.endswith(")")):
        raise bad_request(
            "Call RetrieveDuplicates(BusinessEntity=@p1,MatchingEntityName=@p2,PagingInfo=@p3)."
        )
    aliases = dict(parse_qsl(req.query, keep_blank_values=True))
    params: dict[str, str] = {}
    for part in _split_params(inside[1:-1]):
        name, _, value = part.partition("=")
        params[name.strip()] = _alias(value, aliases)
    for name in ("BusinessEntity", "MatchingEntityName", "PagingInfo"):
        if name not in params:
            raise bad_request(f"The RetrieveDuplicates parameter '{name}' is required.")
    entity = _json_literal(params["BusinessEntity"], "BusinessEntity")
    paging = _json_literal(params["PagingInfo"], "PagingInfo")
    if not isinstance(entity, dict) or not isinstance(paging, dict):
        raise bad_request("BusinessEntity and PagingInfo must be JSON objects.")
    matching = params["MatchingEntityName"].strip().strip("'")
    table = service.store.tables.get(matching)
    if table is None:
        raise bad_request(f"'{matching}' is not a table.")
    rule = service.config.duplicate_rules.get(matching)
    if not rule:
        raise ApiError(
            400,
            "0x80048436",
            f"No published duplicate detection rules were found for {matching}. Publish a rule for "
            "this table, or ask for another table.",
        )
    try:
        page, count = int(paging.get("PageNumber", 1)), int(paging.get("Count", 50))
    except (TypeError, ValueError):
        raise bad_request("PagingInfo needs whole numbers PageNumber and Count.") from None
    if page < 1 or not 1 <= count <= 5000:
        raise bad_request("PagingInfo.PageNumber must be 1 or more and Count between 1 and 5000.")
    values = [entity.get(column) for column in rule]
    writer = RecordWriter(service.store.tables, table, None, AnnotationFilter(None))
    rows: list = []
    if all(v not in (None, "") for v in values):
        own = parse_guid(str(entity.get(table.primary_id) or "")) or ""
        conditions = " AND ".join(f'"{column}" = ?' for column in rule)
        active = ' AND "statecode" = 0' if "statecode" in table.column_map() else ""
        conn = service.store.conn()
        rows = conn.execute(
            f'SELECT {writer.select_sql()} FROM "{table.logical_name}" WHERE {conditions}{active} '
            f'AND "{table.primary_id}" <> ? ORDER BY "{table.primary_id}" LIMIT ? OFFSET ?',
            [*values, own, count, (page - 1) * count],
        ).fetchall()
        records = writer.records(conn, rows)
    else:
        records = []
    context = f"{req.service_root}$metadata#{table.entity_set}"
    return json_response(200, {"@odata.context": context, "value": records})


def _split_params(text: str) -> list[str]:
    """Split ``a=@p1,b='x,y'`` on the top-level commas (quotes and braces may hold commas)."""
    parts, depth, quote, start = [], 0, False, 0
    for i, ch in enumerate(text):
        if ch == "'":
            quote = not quote
        elif not quote and ch in "{[":
            depth += 1
        elif not quote and ch in "}]":
            depth -= 1
        elif not quote and depth == 0 and ch == ",":
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p for p in parts if p.strip()]
