"""Create, update, upsert and delete: body validation and the row changes they make.

Follows ``../shared/dataverse-webapi.md`` §5 and the checklist in §11.2: unknown properties and
wrong types are 400s with Dataverse's messages; lookups are written only through
``<navigation>@odata.bind`` (polymorphic customer lookups only through the typed
``customerid_account``/``customerid_contact``, the plain name gives ``0x80048d19``); columns
Dataverse computes or manages are refused (``fullname``, ``totalamount``, ``statecode`` on create,
...), except the audit columns (``createdon``, ``modifiedon``, ``versionnumber``, ...) which the
service silently ignores as Dataverse does; every write gets a new ``versionnumber`` (the etag)
and ``modifiedon``.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from datetime import datetime
from urllib.parse import unquote, urlsplit

from connector.sandbox.customizations import CUSTOMIZATION_TABLES, check_customization
from connector.sandbox.dates import format_datetime, parse_datetime_literal
from connector.sandbox.faults import ApiError, bad_request, not_found_record
from connector.sandbox.keys import key_conflict
from connector.sandbox.schema import BUSINESS_UNIT_ID, CURRENCY_ID, PRICE_LEVEL_ID, USER_ID, Column, Table
from connector.sandbox.storage import Store

__all__ = ["apply_delete", "apply_upsert", "parse_guid", "parse_record_ref"]

# Audit columns Dataverse fills itself; values sent for them are ignored rather than refused.
_SILENTLY_IGNORED = {
    "createdon",
    "modifiedon",
    "versionnumber",
    "createdby",
    "modifiedby",
    "owningbusinessunit",
    "exchangerate",
    "owneridtype",
}
# Entity sets of lookup targets the sandbox does not serve (ids are accepted as given).
_UNSERVED_SETS = {
    "systemuser": "systemusers",
    "team": "teams",
    "transactioncurrency": "transactioncurrencies",
    "pricelevel": "pricelevels",
    "product": "products",
    "uom": "uoms",
    "campaign": "campaigns",
    "quote": "quotes",
    "businessunit": "businessunits",
}
_GUID = re.compile(r"\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?")
_REF = re.compile(r"(?:.*/)?([A-Za-z_][\w]*)\(([^)]*)\)$")


def parse_guid(text: str) -> str | None:
    """Return the lower-case GUID in ``text`` (braces allowed), or None."""
    m = _GUID.fullmatch(text.strip())
    return m.group(1).lower() if m else None


def parse_record_ref(value: str, content_ids: dict[str, str] | None) -> tuple[str, str]:
    """Read ``/accounts(<id>)``, ``accounts(<id>)``, a full URL or a ``$<n>`` reference.

    Returns:
        (entity set, id).
    """
    text = value.strip()
    if text.startswith("$"):
        if not content_ids or text[1:] not in content_ids:
            raise bad_request(f"Content-ID Reference: '{text}' does not exist in the batch context.")
        text = content_ids[text[1:]]
    if "://" in text:
        text = urlsplit(text).path
    m = _REF.match(unquote(text))
    guid = parse_guid(m.group(2)) if m else None
    if not m or guid is None:
        raise bad_request(f"The @odata.bind value '{value}' is not a record URL such as '/accounts(<id>)'.")
    return m.group(1), guid


def _payload_error(entity_set: str, name: str) -> ApiError:
    # Dataverse's answer to a plain polymorphic lookup name or an unknown navigation property (§5.1).
    return ApiError(
        400,
        "0x80048d19",
        f"Error identified in Payload provided by the user for Entity :'{entity_set}', For more "
        "information on "
        "this error please follow this help link https://go.microsoft.com/fwlink/?linkid=2195293  ---->  "
        "InnerException : Microsoft.OData.ODataException: An undeclared property "
        f"'{name}' which only has property annotations in the payload but no property value was found in the "
        "payload. In OData, only declared navigation properties and declared named streams can be "
        "represented "
        "as properties without values.",
    )


def _invalid_property(name: str, entity: str) -> ApiError:
    return bad_request(
        "An error occurred while validating input parameters: Microsoft.Crm.CrmException: Invalid property "
        f"'{name}' was found in entity 'Microsoft.Dynamics.CRM.{entity}'. ---> "
        "Microsoft.OData.ODataException: "
        "Does not support untyped value in non-open type."
    )


def _type_error(value: object, edm: str) -> ApiError:
    return bad_request(f"Cannot convert the literal '{value}' to the expected type '{edm}'.")


def _validation(message: str) -> ApiError:
    return ApiError(400, "0x80044331", f"A validation error occurred. {message}")


def convert_value(column: Column, value: object, entity: str) -> object:
    """Check a JSON value against a column and return the value to store.

    Raises:
        ApiError: 400 for a wrong type, a too-long string, an out-of-range number or unknown choice.
    """
    if value is None:
        return None
    t = column.attribute_type
    name = column.logical_name
    if t in ("String", "Memo", "EntityName"):
        if not isinstance(value, str):
            raise _type_error(value, "Edm.String")
        if column.max_length is not None and len(value) > column.max_length:
            raise _validation(
                f"The length of the '{name}' attribute of the '{entity}' entity exceeded the maximum allowed "
                f"length of '{column.max_length}'."
            )
        return value
    if t == "Boolean":
        if not isinstance(value, bool):
            raise _type_error(value, "Edm.Boolean")
        return int(value)
    if t in ("Integer", "BigInt", "Picklist", "State", "Status"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error(value, "Edm.Int64" if t == "BigInt" else "Edm.Int32")
        if t in ("Picklist", "State", "Status") and value not in column.options:
            raise _validation(
                f"The value {value} of '{name}' on record of type '{entity}' is outside the valid range."
            )
        _check_range(column, value, entity)
        return value
    if t in ("Decimal", "Double", "Money"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _type_error(value, "Edm.Double" if t == "Double" else "Edm.Decimal")
        _check_range(column, value, entity)
        return float(value)
    if t == "DateTime":
        if not isinstance(value, str):
            raise _type_error(value, "Edm.DateTimeOffset")
        try:
            return parse_datetime_literal(value, column.date_format == "DateOnly")
        except ValueError as exc:
            raise _type_error(
                value, "Edm.Date" if column.date_format == "DateOnly" else "Edm.DateTimeOffset"
            ) from exc
    if t == "Uniqueidentifier":
        guid = parse_guid(value) if isinstance(value, str) else None
        if guid is None:
            raise _type_error(value, "Edm.Guid")
        return guid
    raise _invalid_property(name, entity)


def _check_range(column: Column, value: float, entity: str) -> None:
    lo, hi = column.min_value, column.max_value
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise _validation(
            f"The value {value} of '{column.logical_name}' on record of type '{entity}' is outside "
            "the valid range. "
            f"Accepted Values: {lo:g} to {hi:g}."
        )


def _bind_lookups(table: Table) -> dict[str, tuple[Column, str]]:
    """Navigation property name → (lookup column, target table) for ``@odata.bind``."""
    out: dict[str, tuple[Column, str]] = {}
    for column in table.columns:
        for nav, target in column.navigation_properties().items():
            out[nav] = (column, target)
    return out


def prepare_values(
    store: Store,
    conn: sqlite3.Connection,
    table: Table,
    body: object,
    creating: bool,
    content_ids: dict[str, str] | None,
) -> dict[str, object]:
    """Validate a create/update body and return column → value to store.

    Raises:
        ApiError: for any property Dataverse would refuse.
    """
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object with the record's columns.")
    columns = table.column_map()
    binds = _bind_lookups(table)
    values: dict[str, object] = {}
    for key, value in body.items():
        if key.endswith("@odata.bind"):
            nav = key[: -len("@odata.bind")]
            if nav not in binds:
                raise _payload_error(table.entity_set, nav)
            column, target = binds[nav]
            if not (column.create if creating else column.update):
                raise bad_request(
                    f"The lookup '{column.logical_name}' of {table.logical_name} cannot be set on "
                    f"{'create' if creating else 'update'}."
                )
            if value is None:
                if column.required_level == "SystemRequired":
                    raise ApiError(
                        400,
                        "0x80040200",
                        f"The '{column.logical_name}' lookup of {table.logical_name} is required "
                        "and cannot be null.",
                    )
                values[column.logical_name] = None
                if column.type_column and column.type_column in columns:
                    values[column.type_column] = None
                continue
            if not isinstance(value, str):
                raise bad_request(f"The value of '{key}' must be a record URL such as '/accounts(<id>)'.")
            entity_set, ref_id = parse_record_ref(value, content_ids)
            target_table = store.tables.get(target)
            expected_set = (
                target_table.entity_set if target_table else _UNSERVED_SETS.get(target, target + "s")
            )
            if entity_set != expected_set:
                raise bad_request(
                    f"The navigation property '{nav}' binds to '{expected_set}', not to '{entity_set}'."
                )
            if target_table is not None:
                found = conn.execute(
                    f'SELECT 1 FROM "{target_table.logical_name}" WHERE "{target_table.primary_id}" = ?',
                    (ref_id,),
                ).fetchone()
                if found is None:
                    raise not_found_record(target, ref_id)
            values[column.logical_name] = ref_id
            if column.type_column and column.type_column in columns:
                values[column.type_column] = target
            continue
        if key.startswith("@") or "@" in key:
            continue  # instance annotations such as @odata.type carry no data
        column = columns.get(key)
        if column is None or column.is_lookup or column.internal:
            raise _invalid_property(key, table.logical_name)
        if key in _SILENTLY_IGNORED:
            continue
        if key == table.primary_id:
            if creating:
                values[key] = convert_value(column, value, table.logical_name)
            continue
        allowed = column.create if creating else column.update
        if not allowed:
            raise bad_request(
                f"The column '{key}' of {table.logical_name} is read-only on "
                f"{'create' if creating else 'update'}: Dataverse sets it itself."
                + (
                    " Change the state with a PATCH of statecode and statuscode after creating."
                    if key == "statecode"
                    else ""
                )
            )
        if value is None and (
            column.required_level == "SystemRequired" or key in ("statecode", "statuscode")
        ):
            raise ApiError(
                400,
                "0x80040200",
                f"The '{key}' attribute of {table.logical_name} is required and cannot be null.",
            )
        values[key] = convert_value(column, value, table.logical_name)
    return values


def _resolve_state(
    table: Table, values: dict[str, object], current: dict[str, object] | None, record_id: str
) -> None:
    """Fill in or check statecode/statuscode together (§5.2 state change)."""
    columns = table.column_map()
    if "statecode" not in columns or "statuscode" not in columns:
        return
    state_col, status_col = columns["statecode"], columns["statuscode"]
    state = values.get("statecode")
    status = values.get("statuscode")
    if state is None and status is None:
        if current is None:
            values["statecode"] = 0
            values["statuscode"] = state_col.default_status.get(0)
        return
    if state is not None and status is None:
        values["statuscode"] = state_col.default_status.get(int(state))  # type: ignore[arg-type]
        return
    if state is None:
        implied = status_col.option_states.get(int(status))  # type: ignore[arg-type]
        if current is None and implied != 0:
            raise bad_request(
                f"{status} is not a valid status code for a new {table.logical_name}: new records start in "
                f"state 0 ({state_col.options.get(0)}).",
                code="0x8004431a",
            )
        values["statecode"] = implied
        return
    if status_col.option_states.get(int(status)) != int(state):  # type: ignore[arg-type]
        raise bad_request(
            f"{status} is not a valid status code for state code {table.logical_name}State."
            f"{state_col.options.get(int(state), state)} on {table.logical_name} with Id {record_id}.",  # type: ignore[arg-type]
            code="0x8004431a",
        )


def _derived(table: Table, values: dict[str, object], current: dict[str, object] | None) -> None:
    """Columns Dataverse computes from others: fullname, the order's customer copies, line amounts."""
    columns = table.column_map()
    merged = {**(current or {}), **values}
    if "fullname" in columns and ({"firstname", "lastname"} & values.keys() or current is None):
        values["fullname"] = (
            " ".join(p for p in (merged.get("firstname"), merged.get("lastname")) if p) or None
        )
    if table.logical_name == "salesorder" and "customerid" in values:
        kind = merged.get("customeridtype")
        values["accountid"] = values["customerid"] if kind == "account" else None
        values["contactid"] = values["customerid"] if kind == "contact" else None
    if (
        table.logical_name == "salesorderdetail"
        and {"priceperunit", "quantity", "manualdiscountamount", "tax"} & values.keys()
    ):
        price = float(merged.get("priceperunit") or 0)
        qty = float(merged.get("quantity") or 0)
        base = price * qty
        values["baseamount"] = base
        values["extendedamount"] = (
            base - float(merged.get("manualdiscountamount") or 0) + float(merged.get("tax") or 0)
        )
    if "regardingobjectid" in values and values["regardingobjectid"] is None:
        values["regardingobjecttypecode"] = None


def current_row(conn: sqlite3.Connection, table: Table, record_id: str) -> dict[str, object] | None:
    """Return the stored row as column → value, or None."""
    cur = conn.execute(f'SELECT * FROM "{table.logical_name}" WHERE "{table.primary_id}" = ?', (record_id,))
    row = cur.fetchone()
    if row is None:
        return None
    return {d[0]: v for d, v in zip(cur.description, row, strict=True)}


def check_etag(
    if_match: str | None, if_none_match: str | None, current: dict | None, table: Table, record_id: str
) -> None:
    """Apply ``If-Match``/``If-None-Match`` to a write (§5.4).

    Raises:
        ApiError: 404 ``0x80040217`` (If-Match on a missing record), 412 ``0x80060882`` (stale etag),
            412 ``0x80040237`` (If-None-Match: * on an existing record).
    """
    if if_match is not None:
        if current is None:
            raise not_found_record(table.logical_name, record_id)
        tags = [t.strip() for t in if_match.split(",")]
        if (
            "*" not in tags
            and f'W/"{current["versionnumber"]}"' not in tags
            and f'"{current["versionnumber"]}"' not in tags
        ):
            raise ApiError(
                412,
                "0x80060882",
                "The version of the existing record doesn't match the RowVersion property provided.",
            )
    if if_none_match is not None and if_none_match.strip() == "*" and current is not None:
        raise ApiError(412, "0x80040237", "A record with matching key values already exists.")


def apply_upsert(
    store: Store,
    conn: sqlite3.Connection,
    table: Table,
    record_id: str | None,
    body: object,
    *,
    if_match: str | None = None,
    if_none_match: str | None = None,
    content_ids: dict[str, str] | None = None,
    now: datetime,
    duplicate_rule: tuple[str, ...] = (),
) -> tuple[str, bool]:
    """Create or update one record (call inside a store transaction).

    Args:
        record_id: the id from the URL (PATCH), or None for POST (id from the body or new).
        duplicate_rule: columns that together identify a duplicate, when the client turned
            duplicate detection on (``MSCRM.SuppressDuplicateDetection: false``, §9.1).

    Returns:
        (record id, created).
    """
    if record_id is None:
        creating_values = prepare_values(store, conn, table, body, True, content_ids)
        if table.logical_name in CUSTOMIZATION_TABLES:
            check_customization(store.tables, table, creating_values)
        record_id = str(creating_values.get(table.primary_id) or uuid.uuid4())
        if current_row(conn, table, record_id) is not None:
            raise ApiError(412, "0x80040237", "A record with matching key values already exists.")
        _check_duplicates(conn, table, record_id, creating_values, duplicate_rule)
        key_conflict(conn, table, store.keys(table.logical_name), record_id, creating_values)
        _insert(store, conn, table, record_id, creating_values, now)
        return record_id, True
    current = current_row(conn, table, record_id)
    check_etag(if_match, if_none_match, current, table, record_id)
    if isinstance(body, dict) and table.primary_id in body:
        given = parse_guid(str(body[table.primary_id]))
        if given != record_id:
            raise bad_request(f"The {table.primary_id} in the body does not match the id in the URL.")
    values = prepare_values(store, conn, table, body, current is None, content_ids)
    if table.logical_name in CUSTOMIZATION_TABLES:
        check_customization(store.tables, table, {**(current or {}), **values})
    _check_duplicates(conn, table, record_id, {**(current or {}), **values}, duplicate_rule)
    key_conflict(conn, table, store.keys(table.logical_name), record_id, {**(current or {}), **values})
    if current is None:
        _insert(store, conn, table, record_id, values, now)
        return record_id, True
    values.pop(table.primary_id, None)
    _resolve_state(table, values, current, record_id)
    _derived(table, values, current)
    values["modifiedon"] = format_datetime(now)
    values["modifiedby"] = USER_ID
    values["versionnumber"] = store.next_version()
    assignments = ", ".join(f'"{k}" = ?' for k in values)
    conn.execute(
        f'UPDATE "{table.logical_name}" SET {assignments} WHERE "{table.primary_id}" = ?',
        [*values.values(), record_id],
    )
    return record_id, False


def _check_duplicates(
    conn: sqlite3.Connection, table: Table, record_id: str, values: dict, rule: tuple[str, ...]
) -> None:
    """Refuse a write that duplicates an active record on every rule column (§9.1).

    Blank values never match and inactive records are excluded, like Dataverse's default rules;
    text compares case-insensitively (the columns use NOCASE).
    """
    if not rule or any(values.get(column) in (None, "") for column in rule):
        return
    conditions = " AND ".join(f'"{column}" = ?' for column in rule)
    active = ' AND "statecode" = 0' if "statecode" in table.column_map() else ""
    found = conn.execute(
        f'SELECT 1 FROM "{table.logical_name}" WHERE {conditions}{active} AND "{table.primary_id}" '
        "<> ? LIMIT 1",
        [*(values[column] for column in rule), record_id],
    ).fetchone()
    if found is not None:
        raise ApiError(
            500,
            "0x80040333",
            "A record was not created or updated because a duplicate of the current record already exists.",
        )


def _insert(
    store: Store, conn: sqlite3.Connection, table: Table, record_id: str, values: dict, now: datetime
) -> None:
    columns = table.column_map()
    values = dict(values)
    values[table.primary_id] = record_id
    _resolve_state(table, values, None, record_id)
    stamp = format_datetime(now)
    defaults: dict[str, object] = {
        "createdon": stamp,
        "modifiedon": stamp,
        "createdby": USER_ID,
        "modifiedby": USER_ID,
        "owningbusinessunit": BUSINESS_UNIT_ID,
        "exchangerate": 1.0,
        "transactioncurrencyid": CURRENCY_ID,
    }
    for key, value in defaults.items():
        if key in columns and values.get(key) is None:
            values[key] = value
    if values.get("ownerid") is None:
        values["ownerid"] = USER_ID
        values["owneridtype"] = "systemuser"
    if table.logical_name == "salesorder":
        values.setdefault("pricelevelid", PRICE_LEVEL_ID)
        values["ordernumber"] = f"ORD-{store.current_version + 1:06d}-{record_id[:6].upper()}"
    if table.is_activity:
        values["activitytypecode"] = table.logical_name
    _derived(table, values, None)
    values["versionnumber"] = store.next_version()
    names = [k for k in values if k in columns]
    conn.execute(
        f'INSERT INTO "{table.logical_name}" ({", ".join(chr(34) + n + chr(34) for n in names)}) '
        f"VALUES ({', '.join('?' * len(names))})",
        [values[n] for n in names],
    )
    # A record re-created with the id of a deleted one is no longer deleted for change tracking.
    conn.execute("DELETE FROM _dv_tombstones WHERE entity = ? AND id = ?", (table.logical_name, record_id))


def apply_delete(
    store: Store, conn: sqlite3.Connection, table: Table, record_id: str, if_match: str | None, now: datetime
) -> None:
    """Delete one record and leave a tombstone for change tracking (call inside a transaction)."""
    current = current_row(conn, table, record_id)
    if current is None:
        raise not_found_record(table.logical_name, record_id)
    check_etag(if_match, None, current, table, record_id)
    conn.execute(f'DELETE FROM "{table.logical_name}" WHERE "{table.primary_id}" = ?', (record_id,))
    conn.execute(
        "INSERT INTO _dv_tombstones VALUES (?, ?, ?, ?)",
        (table.logical_name, record_id, store.next_version(), format_datetime(now)),
    )
