"""Column definitions written through the Web API: create a column (§7.3); updates and deletes are refused.

``POST EntityDefinitions(LogicalName='x')/Attributes`` with a §7.3 body adds a real SQLite column
(``ALTER TABLE``), so it is immediately queryable, filterable and writable, and survives a restart.
Updating (``PUT .../Attributes(id)``) and deleting a column change a table's shape under existing
records; the sandbox answers them with Dataverse's "not supported" error instead of pretending.
"""

from __future__ import annotations

import re

from connector.sandbox.config import SandboxConfig
from connector.sandbox.faults import ApiError, bad_request, not_implemented
from connector.sandbox.protocol import Request, Response
from connector.sandbox.schema import METADATA_TYPES, Column, Table
from connector.sandbox.storage import Store

__all__ = ["create_attribute", "label_text"]

_NS = "Microsoft.Dynamics.CRM."
_NS = "Microsoft.Dynamics.CRM."
_CREATABLE = {
    "String": "StringType",
    "Memo": "MemoType",
    "Integer": "IntegerType",
    "Decimal": "DecimalType",
    "Double": "DoubleType",
    "Money": "MoneyType",
    "DateTime": "DateTimeType",
    "Picklist": "PicklistType",
    "Boolean": "BooleanType",
}


def label_text(value: object) -> str:
    if isinstance(value, dict):
        labels = value.get("LocalizedLabels") or []
        if labels and isinstance(labels[0], dict):
            return str(labels[0].get("Label") or "")
        user = value.get("UserLocalizedLabel")
        if isinstance(user, dict):
            return str(user.get("Label") or "")
    return ""


def create_attribute(store: Store, config: SandboxConfig, req: Request, table: Table) -> Response:
    """``POST EntityDefinitions(LogicalName='x')/Attributes`` with a §7.3 body: add a real column."""
    body = req.json()
    if not isinstance(body, dict):
        raise bad_request("The body must be an AttributeMetadata JSON object (see §7.3 of the reference).")
    kind = body.get("AttributeType")
    odata_type = str(body.get("@odata.type", "")).lstrip("#")
    if kind is None and odata_type.startswith(_NS):
        kind = next((k for k, v in METADATA_TYPES.items() if _NS + v == odata_type), None)
    if odata_type in (f"{_NS}FileAttributeMetadata", f"{_NS}ImageAttributeMetadata") or kind in (
        "File",
        "Image",
    ):
        raise not_implemented("File and Image columns (and their chunked upload)")
    if kind not in _CREATABLE:
        raise bad_request(
            f"The sandbox creates columns of type {', '.join(_CREATABLE)}; AttributeType '{kind}' "
            "is not one of them."
        )
    expected_type = _NS + METADATA_TYPES[kind]
    if odata_type and odata_type != expected_type:
        raise bad_request(
            f"@odata.type '{odata_type}' does not match AttributeType '{kind}' (expected {expected_type})."
        )
    schema_name = body.get("SchemaName")
    if not isinstance(schema_name, str) or not re.fullmatch(
        r"[A-Za-z][A-Za-z0-9]*_[A-Za-z0-9_]+", schema_name
    ):
        raise bad_request(
            f"SchemaName '{schema_name}' is not valid: it must be the publisher's customization prefix, an "
            "underscore and letters or digits, for example 'new_LeadScore'.",
            code="0x80040203",
        )
    prefix = schema_name.split("_", 1)[0].lower()
    if prefix not in config.publisher_prefixes:
        allowed = ", ".join(f"'{p}_'" for p in sorted(config.publisher_prefixes))
        raise bad_request(
            f"The schema name '{schema_name}' does not start with a publisher's customization prefix; "
            f"this environment's publishers use {allowed}.",
            code="0x80040203",
        )
    logical = schema_name.lower()
    if logical in table.column_map():
        raise ApiError(
            400,
            "0x80040237",
            f"An attribute with the name '{logical}' already exists on entity '{table.logical_name}'.",
        )
    column = _column_from_body(config, table, kind, logical, schema_name, body)
    solution = req.headers.get("MSCRM.SolutionUniqueName")
    with store.transaction() as conn:
        store.add_column(conn, column, solution)
    definition = f"EntityDefinitions(LogicalName='{table.logical_name}')"
    url = f"{req.service_root}{definition}/Attributes({column.metadata_id})"
    return Response(204, [("OData-Version", "4.0"), ("OData-EntityId", url)])


def _number(body: dict, key: str, default: float | None) -> float | None:
    value = body.get(key, default)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise bad_request(f"{key} must be a number.")
    return value


def _column_from_body(
    config: SandboxConfig, table: Table, kind: str, logical: str, schema: str, body: dict
) -> Column:
    required = body.get("RequiredLevel", {})
    level = required.get("Value", "None") if isinstance(required, dict) else "None"
    if level not in ("None", "Recommended", "ApplicationRequired", "SystemRequired"):
        raise bad_request(f"RequiredLevel '{level}' is not one of None, Recommended, ApplicationRequired.")
    common = {
        "entity": table.logical_name,
        "is_custom": True,
        "schema_name": schema,
        "display_name": label_text(body.get("DisplayName")) or schema,
        "description": label_text(body.get("Description")),
        "required_level": level,
    }
    if kind in ("String", "Memo"):
        length = body.get("MaxLength", 100 if kind == "String" else 2000)
        limit = 4000 if kind == "String" else 1048576
        if not isinstance(length, int) or isinstance(length, bool) or not 1 <= length <= limit:
            raise bad_request(f"MaxLength must be a whole number from 1 to {limit} for a {kind} column.")
        fmt = body.get("FormatName", {}).get("Value") if isinstance(body.get("FormatName"), dict) else None
        return Column(logical, kind, max_length=length, format_name=fmt, **common)
    if kind == "Integer":
        return Column(
            logical,
            kind,
            min_value=_number(body, "MinValue", -2147483648),
            max_value=_number(body, "MaxValue", 2147483647),
            **common,
        )
    if kind in ("Decimal", "Double", "Money"):
        precision = body.get("Precision", 2)
        if not isinstance(precision, int) or not 0 <= precision <= 10:
            raise bad_request("Precision must be a whole number from 0 to 10.")
        lo, hi = (
            (-100000000000.0, 100000000000.0) if kind != "Money" else (-922337203685477.0, 922337203685477.0)
        )
        return Column(
            logical,
            kind,
            min_value=_number(body, "MinValue", lo),
            max_value=_number(body, "MaxValue", hi),
            precision=precision,
            **common,
        )
    if kind == "DateTime":
        fmt = body.get("Format", "DateAndTime")
        if fmt not in ("DateOnly", "DateAndTime"):
            raise bad_request("Format must be DateOnly or DateAndTime for a DateTime column.")
        return Column(logical, kind, date_format=fmt, **common)
    if kind == "Boolean":
        option_set = body.get("OptionSet") or {}
        true_label = label_text((option_set.get("TrueOption") or {}).get("Label")) or "Yes"
        false_label = label_text((option_set.get("FalseOption") or {}).get("Label")) or "No"
        return Column(logical, kind, options={1: true_label, 0: false_label}, **common)
    # Picklist
    option_set = body.get("OptionSet")
    if (
        not isinstance(option_set, dict)
        or not isinstance(option_set.get("Options"), list)
        or not option_set["Options"]
    ):
        raise bad_request("A Picklist column needs OptionSet.Options with at least one option.")
    options: dict[int, str] = {}
    next_value = config.option_value_prefix * 10000
    for item in option_set["Options"]:
        if not isinstance(item, dict):
            raise bad_request("Each option must be an object with Value and Label.")
        value = item.get("Value")
        if value is None:
            while next_value in options:
                next_value += 1
            value = next_value  # §7.3: "Value": null lets the system assign it
        if not isinstance(value, int) or isinstance(value, bool):
            raise bad_request(f"Option value {value!r} must be a whole number.")
        if value in options:
            raise bad_request(f"Option value {value} appears twice in the OptionSet.")
        options[value] = label_text(item.get("Label")) or str(value)
    return Column(logical, kind, options=options, **common)
