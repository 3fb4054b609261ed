"""Service document, ``$metadata`` CSDL, ``WhoAmI``, ``EntityDefinitions`` and column creation.

Follows ``../shared/dataverse-webapi.md`` §1.1 (service document, CSDL), §2.5 (WhoAmI), §7.1-7.3
(EntityDefinitions, Attributes with casts, ``POST .../Attributes``) and §7.6 (PublishXml,
PublishAllXml). Created columns become real SQLite columns (``ALTER TABLE``), so they are
immediately queryable, filterable and writable, and they survive a restart.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from odata_query import ast
from odata_query.exceptions import ODataException
from odata_query.grammar import ODataLexer, ODataParser

from connector.sandbox.faults import ApiError, bad_request
from connector.sandbox.filters import format_datetime
from connector.sandbox.protocol import Request, Response, json_response, split_top_level
from connector.sandbox.schema import (
    BUSINESS_UNIT_ID,
    EDM_TYPES,
    METADATA_TYPES,
    ORGANIZATION_ID,
    USER_ID,
    Column,
    Table,
)

if TYPE_CHECKING:
    from connector.sandbox.service import Service

__all__ = ["csdl", "entity_definitions", "publish", "service_document", "whoami"]

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


def service_document(service: Service, req: Request) -> Response:
    """``GET /api/data/v9.2/``: the entity sets served (§1.1)."""
    if req.method != "GET":
        raise ApiError(405, "0x0", "The service document only answers GET.")
    sets = [
        {"name": t.entity_set, "kind": "EntitySet", "url": t.entity_set}
        for t in service.store.tables.values()
    ]
    sets.append({"name": "EntityDefinitions", "kind": "EntitySet", "url": "EntityDefinitions"})
    return json_response(200, {"@odata.context": f"{req.service_root}$metadata", "value": sets})


def whoami(service: Service, req: Request) -> Response:
    """``GET WhoAmI``: the sandbox's one user, business unit and organisation (§2.5)."""
    return json_response(
        200,
        {
            "@odata.context": f"{req.service_root}$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse",
            "BusinessUnitId": BUSINESS_UNIT_ID,
            "UserId": USER_ID,
            "OrganizationId": ORGANIZATION_ID,
        },
    )


def csdl(service: Service, req: Request) -> Response:
    """``GET $metadata``: CSDL XML for the served tables, created columns included (§7.1)."""
    if req.method != "GET":
        raise ApiError(405, "0x0", "$metadata only answers GET.")
    annotations = dict(parse_qsl(req.query)).get("annotations") == "true"
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">',
        "<edmx:DataServices>",
        '<Schema Namespace="Microsoft.Dynamics.CRM" Alias="mscrm" xmlns="http://docs.oasis-open.org/odata/ns/edm">',
        '<EntityType Name="crmbaseentity" Abstract="true"/>',
    ]
    tables = list(service.store.tables.values())
    for table in tables:
        parts.append(f'<EntityType Name="{table.logical_name}" BaseType="mscrm.crmbaseentity">')
        parts.append(f'<Key><PropertyRef Name="{table.primary_id}"/></Key>')
        for column in table.columns:
            if column.internal:
                continue  # an EntityName companion is an attribute, not a property of the entity type
            edm = EDM_TYPES.get(column.attribute_type, "Edm.String")
            attrs = f'Name="{column.wire_name}" Type="{edm}"'
            if edm == "Edm.String":
                attrs += ' Unicode="false"'
            if annotations and (not column.create and not column.update):
                parts.append(
                    f'<Property {attrs}><Annotation Term="Org.OData.Core.V1.Computed" '
                    'Bool="true"/></Property>'
                )
            else:
                parts.append(f"<Property {attrs}/>")
        for column in table.columns:
            for nav, target in column.navigation_properties().items():
                parts.append(f'<NavigationProperty Name="{nav}" Type="mscrm.{target}"/>')
        parts.append("</EntityType>")
    parts.append('<EntityContainer Name="System">')
    for table in tables:
        tracked = table.logical_name not in service.config.change_tracking_disabled
        if annotations and tracked:
            parts.append(
                f'<EntitySet Name="{table.entity_set}" '
                f'EntityType="Microsoft.Dynamics.CRM.{table.logical_name}">'
                '<Annotation Term="Org.OData.Capabilities.V1.ChangeTracking"><Record>'
                '<PropertyValue Property="Supported" Bool="true"/></Record></Annotation></EntitySet>'
            )
        else:
            parts.append(
                f'<EntitySet Name="{table.entity_set}" '
                f'EntityType="Microsoft.Dynamics.CRM.{table.logical_name}"/>'
            )
    parts.append('<FunctionImport Name="WhoAmI" Function="Microsoft.Dynamics.CRM.WhoAmI"/>')
    parts.append("</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>")
    return Response(
        200, [("Content-Type", "application/xml"), ("OData-Version", "4.0")], "".join(parts).encode()
    )


def publish(service: Service, req: Request, action: str) -> Response:
    """``POST PublishXml`` / ``PublishAllXml`` (§7.6): recorded; columns are usable before publishing."""
    if req.method != "POST":
        raise ApiError(405, "0x0", f"{action} is an action: use POST.")
    parameter_xml = None
    if action == "PublishXml":
        body = req.json()
        if not isinstance(body, dict) or not isinstance(body.get("ParameterXml"), str):
            raise bad_request(
                'PublishXml needs a body like {"ParameterXml": "<importexportxml>...</importexportxml>"}.'
            )
        parameter_xml = body["ParameterXml"]
        if not parameter_xml.strip().startswith("<importexportxml"):
            raise bad_request("ParameterXml must be an <importexportxml> document.")
        for name in re.findall(r"<entity>\s*([^<\s]+)\s*</entity>", parameter_xml):
            if name not in service.store.tables:
                raise ApiError(
                    404,
                    "0x80040217",
                    f"The entity with a name = '{name}' was not found in the MetadataCache.",
                )
    with service.store.transaction() as conn:
        conn.execute("INSERT INTO _dv_publish VALUES (?, ?)", (format_datetime(service.now()), parameter_xml))
    return Response(204, [("OData-Version", "4.0")])


# --- EntityDefinitions ----------------------------------------------------------------------------


def _label(text: str, metadata_id: str | None = None) -> dict:
    localized = {
        "Label": text,
        "LanguageCode": 1033,
        "IsManaged": True,
        "MetadataId": metadata_id,
        "HasChanged": None,
    }
    return {"LocalizedLabels": [localized] if text else [], "UserLocalizedLabel": localized if text else None}


# Standard tables' schema names (the logical name with Microsoft's capitalisation).
_SCHEMA_NAMES = {
    "account": "Account",
    "contact": "Contact",
    "opportunity": "Opportunity",
    "lead": "Lead",
    "salesorder": "SalesOrder",
    "salesorderdetail": "SalesOrderDetail",
    "email": "Email",
    "phonecall": "PhoneCall",
    "appointment": "Appointment",
}


def _entity_json(service: Service, table: Table) -> dict:
    return {
        "MetadataId": table.metadata_id,
        "LogicalName": table.logical_name,
        "SchemaName": _SCHEMA_NAMES.get(table.logical_name, table.logical_name),
        "EntitySetName": table.entity_set,
        "LogicalCollectionName": table.entity_set,
        "CollectionSchemaName": _SCHEMA_NAMES.get(table.logical_name, table.logical_name) + "s"
        if table.logical_name != "opportunity"
        else "Opportunities",
        "PrimaryIdAttribute": table.primary_id,
        "PrimaryNameAttribute": table.primary_name,
        "ObjectTypeCode": table.object_type_code,
        "ChangeTrackingEnabled": table.logical_name not in service.config.change_tracking_disabled,
        "IsOptimisticConcurrencyEnabled": True,
        "IsDuplicateDetectionEnabled": {
            "Value": table.logical_name in ("lead", "account", "contact"),
            "CanBeChanged": True,
        },
        "OwnershipType": "UserOwned",
        "IsCustomEntity": False,
        "IsActivity": table.is_activity,
        "IsValidForAdvancedFind": True,
        "CanCreateAttributes": {"Value": True, "CanBeChanged": False},
        "DisplayName": _label(table.display_name),
        "DisplayCollectionName": _label(table.display_collection_name),
        "Description": _label(""),
    }


def _option(value: int, label: str, extra: dict | None = None) -> dict:
    return {
        "Value": value,
        "Label": _label(label),
        "Description": _label(""),
        "Color": None,
        "IsManaged": True,
        "MetadataId": None,
        "HasChanged": None,
        **(extra or {}),
    }


def _option_set(column: Column) -> dict | None:
    t = column.attribute_type
    base = {
        "MetadataId": column.metadata_id,
        "Name": f"{column.entity}_{column.logical_name}",
        "IsGlobal": False,
        "IsCustomOptionSet": column.is_custom,
        "DisplayName": _label(column.display_name),
        "Description": _label(""),
    }
    if t == "Boolean":
        return {
            **base,
            "OptionSetType": "Boolean",
            "TrueOption": _option(1, column.options.get(1, "Yes")),
            "FalseOption": _option(0, column.options.get(0, "No")),
        }
    if t == "State":
        options = [
            _option(v, label, {"DefaultStatus": column.default_status.get(v)})
            for v, label in column.options.items()
        ]
        return {**base, "OptionSetType": "State", "Options": options}
    if t == "Status":
        options = [
            _option(v, label, {"State": column.option_states.get(v)}) for v, label in column.options.items()
        ]
        return {**base, "OptionSetType": "Status", "Options": options}
    if t == "Picklist":
        return {
            **base,
            "OptionSetType": "Picklist",
            "Options": [_option(v, lb) for v, lb in column.options.items()],
        }
    return None


def _attribute_json(table: Table, column: Column) -> dict:
    t = column.attribute_type
    type_name = "UniqueidentifierType" if t == "Uniqueidentifier" else f"{t}Type"
    out: dict[str, object] = {
        "@odata.type": f"#{_NS}{METADATA_TYPES.get(t, 'AttributeMetadata')}",
        "MetadataId": column.metadata_id,
        "LogicalName": column.logical_name,
        "SchemaName": column.schema_name,
        "EntityLogicalName": table.logical_name,
        "AttributeType": t,
        "AttributeTypeName": {"Value": type_name},
        "IsCustomAttribute": column.is_custom,
        "IsPrimaryId": column.logical_name == table.primary_id,
        "IsPrimaryName": column.logical_name == table.primary_name,
        "IsValidForCreate": column.create,
        "IsValidForUpdate": column.update,
        "IsValidForRead": True,
        # IsValidODataAttribute: "whether the attribute represents a property that is available in
        # the Web API" (AttributeMetadata docs). An EntityName companion is not; AttributeOf names
        # the lookup whose lookuplogicalname annotation carries the same information.
        "IsValidODataAttribute": not column.internal,
        "AttributeOf": _companion_of(table, column),
        "RequiredLevel": {
            "Value": column.required_level,
            "CanBeChanged": not column.required_level.startswith("System"),
            "ManagedPropertyLogicalName": "canmodifyrequirementlevelsettings",
        },
        "DisplayName": _label(column.display_name),
        "Description": _label(column.description),
    }
    if t in ("String", "Memo"):
        out["MaxLength"] = column.max_length
        out["FormatName"] = {"Value": column.format_name or ("TextArea" if t == "Memo" else "Text")}
        out["Format"] = "TextArea" if t == "Memo" else (column.format_name or "Text")
    if t in ("Integer", "BigInt", "Decimal", "Double", "Money"):
        out["MinValue"] = column.min_value
        out["MaxValue"] = column.max_value
    if t in ("Decimal", "Double", "Money"):
        out["Precision"] = column.precision
    if t == "Money":
        out["PrecisionSource"] = 2
    if t == "Integer":
        out["Format"] = "None"
    if t == "DateTime":
        out["Format"] = column.date_format
        out["DateTimeBehavior"] = {"Value": "DateOnly" if column.date_format == "DateOnly" else "UserLocal"}
    if column.is_lookup:
        out["Targets"] = list(column.targets)
    if t == "Boolean":
        out["DefaultValue"] = False
    return out


def _select(obj: dict, select: list[str] | None, always: tuple[str, ...] = ("MetadataId",)) -> dict:
    if select is None:
        return obj
    keep = {k: v for k, v in obj.items() if k in select or k in always or k == "@odata.type"}
    return keep


def _python_filter(text: str) -> object:
    """Parse a metadata ``$filter`` (eq/ne/and/or/not on scalar or ``X/Value`` properties)."""
    text = re.sub(r"Microsoft\.Dynamics\.CRM\.\w+'([^']*)'", r"'\1'", text)  # enum literals → strings
    try:
        return ODataParser().parse(ODataLexer().tokenize(text))
    except ODataException as exc:
        raise bad_request(f"Syntax error in $filter '{text}': {exc}") from exc


def _evaluate(node: object, obj: dict) -> bool:
    if isinstance(node, ast.BoolOp):
        left, right = _evaluate(node.left, obj), _evaluate(node.right, obj)
        return (left and right) if isinstance(node.op, ast.And) else (left or right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return not _evaluate(node.operand, obj)
    if isinstance(node, ast.Compare) and isinstance(node.comparator, ast.Eq | ast.NotEq):
        value = _property(node.left, obj)
        literal = node.right.py_val if isinstance(node.right, ast._Literal) else None
        equal = str(value).lower() == str(literal).lower() if isinstance(value, str) else value == literal
        return equal if isinstance(node.comparator, ast.Eq) else not equal
    raise bad_request("Metadata $filter supports eq, ne, and, or and not on properties.")


def _property(node: object, obj: dict) -> object:
    if isinstance(node, ast.Identifier):
        return obj.get(node.name)
    if isinstance(node, ast.Attribute):
        owner = _property(node.owner, obj)
        return owner.get(node.attr) if isinstance(owner, dict) else None
    raise bad_request("Metadata $filter compares a property with a literal.")


def _parse_expand(text: str | None) -> dict[str, dict[str, str]]:
    """``Attributes($select=a,b;$filter=...),OptionSet`` → name → nested options."""
    out: dict[str, dict[str, str]] = {}
    if not text:
        return out
    for item in split_top_level(text):
        m = re.fullmatch(r"(\w+)(?:\((.*)\))?", item)
        if not m:
            raise bad_request(f"Syntax error in $expand '{text}'.")
        nested: dict[str, str] = {}
        for part in (m.group(2) or "").split(";"):
            if "=" in part:
                key, value = part.split("=", 1)
                nested[key.strip()] = value
        out[m.group(1)] = nested
    return out


def _companion_of(table: Table, column: Column) -> str | None:
    """The lookup an internal EntityName companion column belongs to, else None."""
    if not column.internal:
        return None
    owner = next((c for c in table.columns if c.is_lookup and c.type_column == column.logical_name), None)
    return owner.logical_name if owner else None


def _attribute_list(table: Table, cast: str | None, options: dict[str, str]) -> list[dict]:
    items = []
    select = [s.strip() for s in options["$select"].split(",")] if "$select" in options else None
    expand = _parse_expand(options.get("$expand"))
    tree = _python_filter(options["$filter"]) if "$filter" in options else None
    for column in table.columns:
        data = _attribute_json(table, column)
        if cast and data["@odata.type"] != f"#{_NS}{cast}":
            continue
        if tree is not None and not _evaluate(tree, data):
            continue
        for name in ("OptionSet", "GlobalOptionSet"):
            if name in expand:
                option_set = _option_set(column) if name == "OptionSet" else None
                data[name] = option_set
        picked = _select(data, select, ("MetadataId", *[k for k in expand]))
        items.append(picked)
    return items


_CAST = re.compile(r"^Microsoft\.Dynamics\.CRM\.(\w+AttributeMetadata)$")


def entity_definitions(service: Service, req: Request, path: str) -> Response:
    """Serve ``EntityDefinitions`` reads and ``POST .../Attributes`` (column creation)."""
    m = re.fullmatch(r"EntityDefinitions(?:\(([^)]*)\))?(?:/(.*))?", path)
    if not m:
        raise ApiError(404, "0x8006088a", f"Resource not found for the segment '{path}'.")
    key, rest = m.group(1), m.group(2)
    options = dict(parse_qsl(req.query, keep_blank_values=True))
    root = req.service_root
    if key is None:
        if rest:
            raise ApiError(404, "0x8006088a", f"Resource not found for the segment '{rest}'.")
        if req.method != "GET":
            raise ApiError(
                501, "0x80040219", "The sandbox does not create tables; it serves the standard ones."
            )
        select = [s.strip() for s in options["$select"].split(",")] if "$select" in options else None
        tree = _python_filter(options["$filter"]) if "$filter" in options else None
        value = []
        for table in service.store.tables.values():
            data = _entity_json(service, table)
            if tree is not None and not _evaluate(tree, data):
                continue
            value.append(_select(data, select))
        context = f"{root}$metadata#EntityDefinitions" + (f"({','.join(select)})" if select else "")
        return json_response(200, {"@odata.context": context, "value": value})
    table = _table_by_key(service, key)
    if rest is None:
        if req.method != "GET":
            raise ApiError(501, "0x80040219", "The sandbox does not update table definitions.")
        select = [s.strip() for s in options["$select"].split(",")] if "$select" in options else None
        data = _select(_entity_json(service, table), select)
        expand = _parse_expand(options.get("$expand"))
        for name, nested in expand.items():
            if name != "Attributes":
                raise bad_request(f"The sandbox expands only Attributes on EntityDefinitions, not '{name}'.")
            data["Attributes"] = _attribute_list(table, None, nested)
        context = (
            f"{root}$metadata#EntityDefinitions" + (f"({','.join(select)})" if select else "") + "/$entity"
        )
        return json_response(200, {"@odata.context": context, **data})
    am = re.fullmatch(r"Attributes(?:\(([^)]*)\))?(?:/(.*))?", rest)
    if not am:
        raise ApiError(404, "0x8006088a", f"Resource not found for the segment '{rest}'.")
    attr_key, cast_text = am.group(1), am.group(2)
    cast = None
    if cast_text:
        cm = _CAST.fullmatch(cast_text)
        if not cm or cm.group(1) not in set(METADATA_TYPES.values()):
            raise bad_request(
                f"The type cast '{cast_text}' is not an attribute metadata type the sandbox knows."
            )
        cast = cm.group(1)
    if attr_key is None:
        if req.method == "POST" and cast is None:
            return _create_attribute(service, req, table)
        if req.method != "GET":
            raise ApiError(405, "0x0", f"The HTTP method '{req.method}' is not allowed on Attributes.")
        context = f"{root}$metadata#EntityDefinitions('{table.logical_name}')/Attributes" + (
            f"/{_NS}{cast}" if cast else ""
        )
        return json_response(200, {"@odata.context": context, "value": _attribute_list(table, cast, options)})
    column = _column_by_key(table, attr_key)
    if req.method != "GET":
        raise ApiError(501, "0x80040219", "The sandbox does not update or delete column definitions.")
    items = [a for a in _attribute_list(table, cast, options) if a["MetadataId"] == column.metadata_id]
    if not items:
        raise bad_request(f"The attribute '{column.logical_name}' is not of type {cast}.")
    context = (
        f"{root}$metadata#EntityDefinitions('{table.logical_name}')/Attributes"
        + (f"/{_NS}{cast}" if cast else "")
        + "/$entity"
    )
    return json_response(200, {"@odata.context": context, **items[0]})


def _table_by_key(service: Service, key: str) -> Table:
    m = re.fullmatch(r"LogicalName='([^']*)'", key)
    if m:
        table = service.store.tables.get(m.group(1))
        name = m.group(1)
    else:
        ident = key.strip().lower()
        table = next((t for t in service.store.tables.values() if t.metadata_id == ident), None)
        name = key
    if table is None:
        raise ApiError(404, "0x80040217", f"Could not find entity with name or id '{name}'.")
    return table


def _column_by_key(table: Table, key: str) -> Column:
    m = re.fullmatch(r"LogicalName='([^']*)'", key)
    for column in table.columns:
        if (m and column.logical_name == m.group(1)) or (not m and column.metadata_id == key.strip().lower()):
            return column
    raise ApiError(404, "0x80040217", f"Could not find attribute '{key}' on entity '{table.logical_name}'.")


def _label_text(value: object) -> str:
    if isinstance(value, dict):
        labels = value.get("LocalizedLabels") or []
        if labels and isinstance(labels[0], dict):
            return str(labels[0].get("Label") or "")
        user = value.get("UserLocalizedLabel")
        if isinstance(user, dict):
            return str(user.get("Label") or "")
    return ""


def _create_attribute(service: Service, req: Request, table: Table) -> Response:
    """``POST EntityDefinitions(LogicalName='x')/Attributes`` with a §7.3 body: add a real column."""
    body = req.json()
    if not isinstance(body, dict):
        raise bad_request("The body must be an AttributeMetadata JSON object (see §7.3 of the reference).")
    kind = body.get("AttributeType")
    odata_type = str(body.get("@odata.type", "")).lstrip("#")
    if kind is None and odata_type.startswith(_NS):
        kind = next((k for k, v in METADATA_TYPES.items() if _NS + v == odata_type), None)
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
    if prefix not in service.config.publisher_prefixes:
        allowed = ", ".join(f"'{p}_'" for p in sorted(service.config.publisher_prefixes))
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
    column = _column_from_body(service, table, kind, logical, schema_name, body)
    solution = req.headers.get("MSCRM.SolutionUniqueName")
    with service.store.transaction() as conn:
        service.store.add_column(conn, column, solution)
    definition = f"EntityDefinitions(LogicalName='{table.logical_name}')"
    url = f"{req.service_root}{definition}/Attributes({column.metadata_id})"
    return Response(204, [("OData-Version", "4.0"), ("OData-EntityId", url)])


def _number(body: dict, key: str, default: float | None) -> float | None:
    value = body.get(key, default)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise bad_request(f"{key} must be a number.")
    return value


def _column_from_body(
    service: Service, table: Table, kind: str, logical: str, schema: str, body: dict
) -> Column:
    required = body.get("RequiredLevel", {})
    level = required.get("Value", "None") if isinstance(required, dict) else "None"
    if level not in ("None", "Recommended", "ApplicationRequired", "SystemRequired"):
        raise bad_request(f"RequiredLevel '{level}' is not one of None, Recommended, ApplicationRequired.")
    common = {
        "entity": table.logical_name,
        "is_custom": True,
        "schema_name": schema,
        "display_name": _label_text(body.get("DisplayName")) or schema,
        "description": _label_text(body.get("Description")),
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
        true_label = _label_text((option_set.get("TrueOption") or {}).get("Label")) or "Yes"
        false_label = _label_text((option_set.get("FalseOption") or {}).get("Label")) or "No"
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
    next_value = service.config.option_value_prefix * 10000
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
        options[value] = _label_text(item.get("Label")) or str(value)
    return Column(logical, kind, options=options, **common)
