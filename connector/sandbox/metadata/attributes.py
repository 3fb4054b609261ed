"""``AttributeMetadata`` of the served columns: types, casts, option sets, the properties real columns have.

Follows ``../shared/dataverse-webapi.md`` §7.2: each attribute carries ``@odata.type`` (the derived
metadata type), ``AttributeType``/``AttributeTypeName``, validity flags, ``RequiredLevel``, labels
and its type's own properties; choice columns expand ``OptionSet``. A cast segment
(``Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata``) narrows the list to one type and
its properties.
"""

from __future__ import annotations

from connector.sandbox.metadata.options import NS, MetadataQuery, MetadataType, label, parse_nested_query
from connector.sandbox.schema import METADATA_TYPES, Column, Table

__all__ = ["attribute_json", "attribute_list", "attribute_type", "option_set"]


def _option(value: int, text: str, extra: dict | None = None) -> dict:
    return {
        "Value": value,
        "Label": label(text),
        "Description": label(""),
        "Color": None,
        "IsManaged": True,
        "MetadataId": None,
        "HasChanged": None,
        **(extra or {}),
    }


def option_set(column: Column) -> dict | None:
    t = column.attribute_type
    base = {
        "MetadataId": column.metadata_id,
        "Name": f"{column.entity}_{column.logical_name}",
        "IsGlobal": False,
        "IsCustomOptionSet": column.is_custom,
        "DisplayName": label(column.display_name),
        "Description": label(""),
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


def attribute_json(table: Table, column: Column) -> dict:
    t = column.attribute_type
    type_name = "UniqueidentifierType" if t == "Uniqueidentifier" else f"{t}Type"
    out: dict[str, object] = {
        "@odata.type": f"#{NS}{METADATA_TYPES.get(t, 'AttributeMetadata')}",
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
        "DisplayName": label(column.display_name),
        "Description": label(column.description),
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


def _companion_of(table: Table, column: Column) -> str | None:
    """The lookup an internal EntityName companion column belongs to, else None."""
    if not column.internal:
        return None
    owner = next((c for c in table.columns if c.is_lookup and c.type_column == column.logical_name), None)
    return owner.logical_name if owner else None


def attribute_type(cast: str | None) -> MetadataType:
    """The queryable shape of ``Attributes`` (all types) or of one cast (``PicklistAttributeMetadata``)."""
    return _CAST_TYPES[cast] if cast else _ALL_TYPES


def attribute_list(table: Table, cast: str | None, query: MetadataQuery) -> list[dict]:
    """The table's attributes (of one metadata type when cast) that pass the query, projected."""
    items = []
    for column in table.columns:
        data = attribute_json(table, column)
        if cast and data["@odata.type"] != f"#{NS}{cast}":
            continue
        if not query.matches(data):
            continue
        for name in query.expand:
            data[name] = option_set(column) if name == "OptionSet" else None
        items.append(query.project(data))
    return items


def nested_attribute_query(options: dict[str, str]) -> MetadataQuery:
    """Parse ``Attributes(...)``'s options inside ``$expand`` on EntityDefinitions."""
    return parse_nested_query(options, _ALL_TYPES)


_LABELS = frozenset({"DisplayName", "Description"})
_OPTION_NAVS = frozenset({"OptionSet", "GlobalOptionSet"})


def _shape(cast: str, properties: set[str]) -> MetadataType:
    has_options = cast in {METADATA_TYPES[t] for t in ("Picklist", "State", "Status", "Boolean")}
    return MetadataType(cast, frozenset(properties), _OPTION_NAVS if has_options else frozenset(), _LABELS)


def _types() -> tuple[MetadataType, dict[str, MetadataType]]:
    from connector.sandbox.catalog import TABLES

    by_cast: dict[str, set[str]] = {}
    for table in TABLES:
        for column in table.columns:
            data = attribute_json(table, column)
            by_cast.setdefault(str(data["@odata.type"]).removeprefix(f"#{NS}"), set()).update(data)
    for cast in set(METADATA_TYPES.values()) - set(by_cast):
        by_cast[cast] = set(attribute_json(TABLES[0], TABLES[0].columns[0]))
    everything = set().union(*by_cast.values())
    # An uncast list may expand OptionSet: non-choice columns answer null (§7.2 casts narrow it).
    every = MetadataType("AttributeMetadata", frozenset(everything), _OPTION_NAVS, _LABELS)
    return every, {cast: _shape(cast, props) for cast, props in by_cast.items()}


_ALL_TYPES, _CAST_TYPES = _types()
