"""Table and column definitions: read them, and create the custom columns dvsync writes to.

Reads follow query-metadata-web-api.md: ``EntityDefinitions(LogicalName='lead')`` for the table,
``.../Attributes`` for the columns, and type casts (``/Microsoft.Dynamics.CRM.StringAttributeMetadata``,
``PicklistAttributeMetadata?$expand=OptionSet``) for lengths and choice options. Every metadata read
sends ``Consistency: Strong``: the metadata cache can lag up to 30 s, and a column created a moment
ago would otherwise look missing (web-api-metadata-operations-sample.md).

Creation follows create-update-column-definitions-using-web-api.md: ``POST
EntityDefinitions(LogicalName='<table>')/Attributes`` with the ``*AttributeMetadata`` body shapes
of that page, ``MSCRM.SolutionUniqueName`` naming the unmanaged solution, then ``PublishXml``.
Creating is idempotent: an existing column of the same type is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from xml.sax.saxutils import escape

from connector.errors import ProtocolError, RetriableError
from connector.http import HttpClient, decode_json
from connector.query import quote_literal
from core.errors import ConfigError

__all__ = [
    "COLUMN_KINDS",
    "ColumnDefinition",
    "ColumnKind",
    "ColumnSpec",
    "TableDefinition",
    "WhoAmI",
    "column_body",
    "create_column",
    "ensure_columns",
    "get_table",
    "publish",
    "whoami",
]

ColumnKind = Literal["Integer", "Decimal", "Money", "String", "Memo", "DateTime", "Picklist", "Boolean"]
COLUMN_KINDS: tuple[str, ...] = (
    "Integer",
    "Decimal",
    "Money",
    "String",
    "Memo",
    "DateTime",
    "Picklist",
    "Boolean",
)

_STRONG = {"Consistency": "Strong"}
_LOGICAL = re.compile(r"^[a-z_][a-z0-9_]*$")
_SCHEMA = re.compile(r"^[A-Za-z][A-Za-z0-9]*_[A-Za-z0-9_]+$")
_LANGUAGE = 1033
# Casts whose extra properties we read; each is one request (Dataverse cannot cast to a base enum type).
_OPTION_CASTS = (
    "PicklistAttributeMetadata",
    "StateAttributeMetadata",
    "StatusAttributeMetadata",
)
_TABLE_SELECT = "LogicalName,EntitySetName,PrimaryIdAttribute,PrimaryNameAttribute,ChangeTrackingEnabled"
_COLUMN_SELECT = (
    "LogicalName,SchemaName,AttributeType,AttributeTypeName,IsCustomAttribute,RequiredLevel,"
    "IsValidODataAttribute,AttributeOf"
)
_LENGTH_CASTS = ("StringAttributeMetadata", "MemoAttributeMetadata")


@dataclass(frozen=True)
class WhoAmI:
    """The caller's identity in the environment (WhoAmI function)."""

    user_id: str
    business_unit_id: str
    organization_id: str


@dataclass(frozen=True)
class ColumnDefinition:
    """One column of a table.

    Attributes:
        logical_name: e.g. ``emailaddress1``.
        attribute_type: AttributeTypeCode, e.g. ``String``, ``Picklist``, ``Lookup``.
        max_length: for String and Memo columns.
        options: choice value → label (Picklist, State and Status columns), else None. Multi-select
            choices are not read: none of the mirrored standard tables has one.
        schema_name: e.g. ``EMailAddress1``.
        attribute_type_name: e.g. ``StringType``, ``MultiSelectPicklistType``.
        is_custom: a custom column.
        required_level: ``None``, ``SystemRequired``, ``ApplicationRequired`` or ``Recommended``.
        is_valid_odata: ``IsValidODataAttribute``, whether the column is a Web API property that a
            query may ``$select`` (False for the EntityName companion of a polymorphic lookup,
            such as ``customeridtype``); None when the metadata did not say.
        attribute_of: ``AttributeOf``, the column this one belongs to (``customerid`` for
            ``customeridtype``), else None.
    """

    logical_name: str
    attribute_type: str
    max_length: int | None = None
    options: dict[int, str] | None = None
    schema_name: str | None = None
    attribute_type_name: str | None = None
    is_custom: bool = False
    required_level: str | None = None
    is_valid_odata: bool | None = None
    attribute_of: str | None = None


@dataclass(frozen=True)
class TableDefinition:
    """A table's definition and its columns (by logical name)."""

    logical_name: str
    entity_set_name: str
    primary_id_attribute: str
    primary_name_attribute: str | None
    change_tracking_enabled: bool
    attributes: dict[str, ColumnDefinition] = field(default_factory=dict)


@dataclass(frozen=True)
class ColumnSpec:
    """A custom column to create.

    Attributes:
        schema_name: with the publisher prefix, e.g. ``new_LeadScore``; the logical name is its
            lower case.
        kind: Integer, Decimal, Money, String, Memo, DateTime, Picklist or Boolean.
        display_name: label shown in the apps.
        description: label description.
        max_length: String (default 100, max 4000) and Memo (default 2000, max 1,048,576).
        precision: Decimal (default 2, 0..10) and Money (default: the currency's precision).
        min_value: Integer/Decimal/Money lower bound (defaults: the type's range).
        max_value: upper bound.
        options: Picklist options as ``(value, label)``; ``None`` values let Dataverse assign.
        date_only: DateTime: ``DateOnly`` format instead of ``DateAndTime``.
        true_label: Boolean label for true.
        false_label: Boolean label for false.
        required_level: ``None`` (default), ``Recommended`` or ``ApplicationRequired``.
    """

    schema_name: str
    kind: ColumnKind
    display_name: str
    description: str = ""
    max_length: int | None = None
    precision: int | None = None
    min_value: float | None = None
    max_value: float | None = None
    options: Sequence[tuple[int | None, str]] = ()
    date_only: bool = False
    true_label: str = "Yes"
    false_label: str = "No"
    required_level: str = "None"

    @property
    def logical_name(self) -> str:
        """The column's logical name (the schema name in lower case)."""
        return self.schema_name.lower()


# --------------------------------------------------------------------------- reading


def _table_path(logical_name: str) -> str:
    if not isinstance(logical_name, str) or not _LOGICAL.match(logical_name):
        raise ValueError(f"{logical_name!r} is not a table logical name (lower case, e.g. 'lead')")
    return f"EntityDefinitions(LogicalName={quote_literal(logical_name)})"


def _label(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    user = value.get("UserLocalizedLabel")
    if isinstance(user, dict) and user.get("Label"):
        return str(user["Label"])
    for localized in value.get("LocalizedLabels") or []:
        if localized.get("Label"):
            return str(localized["Label"])
    return None


def _options(option_set: Any) -> dict[int, str]:
    options: dict[int, str] = {}
    if not isinstance(option_set, dict):
        return options
    for option in option_set.get("Options") or []:
        if isinstance(option, dict) and option.get("Value") is not None:
            options[int(option["Value"])] = _label(option.get("Label")) or str(option["Value"])
    for key in ("TrueOption", "FalseOption"):
        option = option_set.get(key)
        if isinstance(option, dict) and option.get("Value") is not None:
            options[int(option["Value"])] = _label(option.get("Label")) or str(option["Value"])
    return options


def get_table(http: HttpClient, logical_name: str) -> TableDefinition:
    """Read a table's definition and its columns, bypassing the metadata cache.

    Raises:
        RecordNotFoundError: no table has this logical name (HTTP 404, ``0x80040217``; the
            message names it).
        DataverseError: any other failed call.
    """
    path = _table_path(logical_name)
    entity = http.get_json(
        path,
        params={"$select": _TABLE_SELECT},
        headers=_STRONG,
    )
    for key in ("EntitySetName", "PrimaryIdAttribute"):
        if not entity.get(key):
            raise ProtocolError(f"the definition of table {logical_name!r} has no {key}")
    listing = http.get_json(
        f"{path}/Attributes",
        params={"$select": _COLUMN_SELECT},
        headers=_STRONG,
    )
    lengths: dict[str, int] = {}
    for cast in _LENGTH_CASTS:
        data = http.get_json(
            f"{path}/Attributes/Microsoft.Dynamics.CRM.{cast}",
            params={"$select": "LogicalName,MaxLength"},
            headers=_STRONG,
        )
        for item in data.get("value", []):
            if item.get("MaxLength") is not None:
                lengths[item["LogicalName"]] = int(item["MaxLength"])
    options: dict[str, dict[int, str]] = {}
    for cast in _OPTION_CASTS:
        data = http.get_json(
            f"{path}/Attributes/Microsoft.Dynamics.CRM.{cast}",
            params={"$select": "LogicalName", "$expand": "OptionSet"},
            headers=_STRONG,
        )
        for item in data.get("value", []):
            options[item["LogicalName"]] = _options(item.get("OptionSet"))
    attributes: dict[str, ColumnDefinition] = {}
    for item in listing.get("value", []):
        name = item.get("LogicalName")
        if not name:
            continue
        type_name = item.get("AttributeTypeName")
        required = item.get("RequiredLevel")
        valid = item.get("IsValidODataAttribute")
        attributes[name] = ColumnDefinition(
            logical_name=name,
            attribute_type=str(item.get("AttributeType") or ""),
            max_length=lengths.get(name),
            options=options.get(name),
            schema_name=item.get("SchemaName"),
            attribute_type_name=type_name.get("Value") if isinstance(type_name, dict) else type_name,
            is_custom=bool(item.get("IsCustomAttribute")),
            required_level=required.get("Value") if isinstance(required, dict) else required,
            is_valid_odata=valid if isinstance(valid, bool) else None,
            attribute_of=item.get("AttributeOf") or None,
        )
    return TableDefinition(
        logical_name=str(entity.get("LogicalName") or logical_name),
        entity_set_name=str(entity["EntitySetName"]),
        primary_id_attribute=str(entity["PrimaryIdAttribute"]),
        primary_name_attribute=entity.get("PrimaryNameAttribute"),
        change_tracking_enabled=bool(entity.get("ChangeTrackingEnabled")),
        attributes=attributes,
    )


def whoami(http: HttpClient) -> WhoAmI:
    """Call WhoAmI: the connectivity and identity check.

    Raises:
        ProtocolError: the answer lacks one of the three ids.
    """
    data = http.get_json("WhoAmI")
    try:
        return WhoAmI(str(data["UserId"]), str(data["BusinessUnitId"]), str(data["OrganizationId"]))
    except KeyError as missing:
        raise ProtocolError(
            f"the WhoAmI answer has no {missing.args[0]}", method="GET", url=http.url("WhoAmI")
        ) from None


# --------------------------------------------------------------------------- creating


def _label_body(text: str) -> dict[str, Any]:
    localized = {
        "@odata.type": "Microsoft.Dynamics.CRM.LocalizedLabel",
        "Label": text,
        "LanguageCode": _LANGUAGE,
    }
    return {"@odata.type": "Microsoft.Dynamics.CRM.Label", "LocalizedLabels": [localized]}


def _validate(spec: ColumnSpec) -> None:
    def bad(message: str, key: str = "schema_name") -> ConfigError:
        return ConfigError(message, key=f"column {spec.schema_name!r}.{key}")

    if not isinstance(spec.schema_name, str) or not _SCHEMA.match(spec.schema_name):
        raise bad(
            "a custom column's schema name must start with the publisher prefix and an underscore, "
            "e.g. 'new_LeadScore'"
        )
    if spec.kind not in COLUMN_KINDS:
        raise bad(f"unknown column kind {spec.kind!r}; use one of {', '.join(COLUMN_KINDS)}", "kind")
    if not spec.display_name:
        raise bad("a column needs a display name", "display_name")
    if spec.kind == "String" and spec.max_length is not None and not 1 <= spec.max_length <= 4000:
        raise bad("String max_length must be from 1 to 4000", "max_length")
    if spec.kind == "Memo" and spec.max_length is not None and not 1 <= spec.max_length <= 1_048_576:
        raise bad("Memo max_length must be from 1 to 1048576", "max_length")
    if spec.kind == "Decimal" and spec.precision is not None and not 0 <= spec.precision <= 10:
        raise bad("Decimal precision must be from 0 to 10", "precision")
    if spec.kind == "Money" and spec.precision is not None and not 0 <= spec.precision <= 4:
        raise bad("Money precision must be from 0 to 4", "precision")
    if spec.kind == "Picklist" and not spec.options:
        raise bad("a Picklist column needs at least one option", "options")
    if spec.required_level not in ("None", "Recommended", "ApplicationRequired"):
        raise bad("required_level must be None, Recommended or ApplicationRequired", "required_level")


def column_body(spec: ColumnSpec) -> dict[str, Any]:
    """Build the ``POST .../Attributes`` body for a column, in the shape Microsoft documents.

    Raises:
        ConfigError: an invalid spec (prefix missing, lengths out of range, Picklist without options).
    """
    _validate(spec)
    kind = spec.kind
    body: dict[str, Any] = {
        "@odata.type": f"Microsoft.Dynamics.CRM.{kind}AttributeMetadata",
        "AttributeType": kind,
        "AttributeTypeName": {"Value": f"{kind}Type"},
        "SchemaName": spec.schema_name,
        "DisplayName": _label_body(spec.display_name),
        "Description": _label_body(spec.description or spec.display_name),
        "RequiredLevel": {
            "Value": spec.required_level,
            "CanBeChanged": True,
            "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings",
        },
    }
    if kind == "String":
        body["FormatName"] = {"Value": "Text"}
        body["MaxLength"] = spec.max_length or 100
    elif kind == "Memo":
        body.update({"Format": "TextArea", "ImeMode": "Disabled", "MaxLength": spec.max_length or 2000})
        body["IsLocalizable"] = False
    elif kind == "Integer":
        body.update(
            {
                "Format": "None",
                "MinValue": int(spec.min_value) if spec.min_value is not None else -2147483648,
                "MaxValue": int(spec.max_value) if spec.max_value is not None else 2147483647,
                "SourceTypeMask": 0,
            }
        )
    elif kind == "Decimal":
        body.update(
            {
                "Precision": 2 if spec.precision is None else spec.precision,
                "MinValue": spec.min_value if spec.min_value is not None else -100000000000.0,
                "MaxValue": spec.max_value if spec.max_value is not None else 100000000000.0,
            }
        )
    elif kind == "Money":
        if spec.precision is None:
            body["PrecisionSource"] = 2  # the currency's precision, as in Microsoft's example
        else:
            body.update({"PrecisionSource": 0, "Precision": spec.precision})
        body["MinValue"] = spec.min_value if spec.min_value is not None else -922337203685477.0
        body["MaxValue"] = spec.max_value if spec.max_value is not None else 922337203685477.0
    elif kind == "DateTime":
        body["Format"] = "DateOnly" if spec.date_only else "DateAndTime"
        body["DateTimeBehavior"] = {"Value": "DateOnly" if spec.date_only else "UserLocal"}
    elif kind == "Boolean":
        body["DefaultValue"] = False
        body["OptionSet"] = {
            "@odata.type": "Microsoft.Dynamics.CRM.BooleanOptionSetMetadata",
            "TrueOption": {"Value": 1, "Label": _label_body(spec.true_label)},
            "FalseOption": {"Value": 0, "Label": _label_body(spec.false_label)},
            "OptionSetType": "Boolean",
        }
    elif kind == "Picklist":
        body["SourceTypeMask"] = 0
        body["OptionSet"] = {
            "@odata.type": "Microsoft.Dynamics.CRM.OptionSetMetadata",
            "Options": [{"Value": value, "Label": _label_body(label)} for value, label in spec.options],
            "IsGlobal": False,
            "OptionSetType": "Picklist",
        }
    return body


CREATE_ATTEMPTS = 6
"""Creates of one column at most, when each failed in a way that left it unknown whether it ran."""


def _existing_column(http: HttpClient, table: str, logical_name: str) -> dict[str, Any] | None:
    path = f"{_table_path(table)}/Attributes(LogicalName={quote_literal(logical_name)})"
    response = http.request(
        "GET",
        path,
        params={"$select": "LogicalName,AttributeType"},
        headers=_STRONG,
        ok_statuses=(404,),
    )
    if response.status_code == 404:
        return None
    return decode_json(response)


def create_column(http: HttpClient, table_logical_name: str, spec: ColumnSpec, *, solution: str) -> bool:
    """Create a custom column unless it exists; return True when it was created.

    Args:
        http: the client.
        table_logical_name: e.g. ``lead``.
        spec: the column.
        solution: unique name of the unmanaged solution that receives it (``MSCRM.SolutionUniqueName``).

    Raises:
        ConfigError: an invalid spec, or a column of that name exists with another type.
        DataverseError: the create failed.
    """
    body = column_body(spec)
    if not solution or not isinstance(solution, str):
        raise ConfigError("a solution unique name is needed to create columns", key="writeback.solution")
    existing = _existing_column(http, table_logical_name, spec.logical_name)
    if existing is not None:
        found = existing.get("AttributeType")
        if found and found != spec.kind:
            raise ConfigError(
                f"column {table_logical_name}.{spec.logical_name} exists as {found}, not {spec.kind}",
                key=f"column {spec.schema_name!r}.kind",
                hint="pick another schema name, or change the kind to match the existing column",
            )
        return False
    # A create is not idempotent, so the HTTP layer does not resend it once it may have reached the
    # server (a 503 from a gateway, a dropped connection). Here it is safe to: after such a failure
    # the column is looked up, and it is created again only when the lost attempt did not create it.
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        try:
            http.request(
                "POST",
                f"{_table_path(table_logical_name)}/Attributes",
                json_body=body,
                headers={"MSCRM.SolutionUniqueName": solution},
            )
            return True
        except RetriableError:
            if _existing_column(http, table_logical_name, spec.logical_name) is not None:
                return True  # the answer was lost, the column was made
            if attempt == CREATE_ATTEMPTS:
                raise
            http.retry.sleep(http.retry.backoff(attempt))
    return True  # not reached: the last attempt returns or raises


def ensure_columns(
    http: HttpClient, table_logical_name: str, specs: Iterable[ColumnSpec], *, solution: str
) -> list[str]:
    """Create the missing columns of ``specs`` and publish the table if any was created.

    Returns:
        Logical names of the columns created (empty on a second call: nothing changes).
    """
    created = [
        spec.logical_name
        for spec in specs
        if create_column(http, table_logical_name, spec, solution=solution)
    ]
    if created:
        publish(http, [table_logical_name])
    return created


def publish(http: HttpClient, table_logical_names: Iterable[str]) -> None:
    """Publish customizations of the given tables with ``PublishXml`` (not the slow PublishAllXml)."""
    names = list(table_logical_names)
    for name in names:
        _table_path(name)  # validates the logical name
    if not names:
        return
    entities = "".join(f"<entity>{escape(name)}</entity>" for name in names)
    http.request(
        "POST",
        "PublishXml",
        json_body={"ParameterXml": f"<importexportxml><entities>{entities}</entities></importexportxml>"},
        idempotent=True,  # publishing twice publishes the same customizations; safe to resend
    )
