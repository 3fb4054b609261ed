"""What a table and a column are to the sandbox, and the fixed identities of its one organisation.

The standard tables themselves are defined in :mod:`catalog`. Each :class:`Column` knows what the
Web API needs to serve, validate and describe it: the attribute type, lengths and ranges, choice
labels, lookup targets and navigation-property names, and whether it may be written on create or
update (§11.2: read-only columns are refused on write).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

__all__ = [
    "BUSINESS_UNIT_ID",
    "CURRENCY_ID",
    "EDM_TYPES",
    "METADATA_TYPES",
    "ORGANIZATION_ID",
    "PRICE_LEVEL_ID",
    "UNSERVED_NAMES",
    "USER_ID",
    "Column",
    "Table",
]

# Fixed identities of the sandbox's one organisation, user, currency and price list (§8.7 says an
# emulator should seed one currency and one price list). Deterministic so tests can assert them.
_NS = uuid.UUID("6f1c2b7e-3d4a-4e8f-9a0b-5c6d7e8f9a0b")
ORGANIZATION_ID = str(uuid.uuid5(_NS, "organization"))
BUSINESS_UNIT_ID = str(uuid.uuid5(_NS, "businessunit"))
USER_ID = str(uuid.uuid5(_NS, "systemuser"))
CURRENCY_ID = str(uuid.uuid5(_NS, "transactioncurrency:USD"))
PRICE_LEVEL_ID = str(uuid.uuid5(_NS, "pricelevel:default"))

# Names shown as the FormattedValue of lookups to tables the sandbox does not serve: the
# environment has one business unit, one currency and one price list (§8.7). Users and teams are
# served tables (catalog), so their names come from their rows.
UNSERVED_NAMES: dict[str, str] = {
    "businessunit": "sandbox",
    "transactioncurrency": "US Dollar",
    "pricelevel": "Default Price List",
}

LOOKUP_TYPES = frozenset({"Lookup", "Customer", "Owner"})
TEXT_TYPES = frozenset({"String", "Memo", "EntityName"})
INT_TYPES = frozenset({"Integer", "BigInt", "Picklist", "State", "Status", "Boolean"})
FLOAT_TYPES = frozenset({"Decimal", "Double", "Money"})

# The Web API metadata type name of each attribute type (used in EntityDefinitions and casts).
METADATA_TYPES: dict[str, str] = {
    "Uniqueidentifier": "UniqueIdentifierAttributeMetadata",
    "String": "StringAttributeMetadata",
    "Memo": "MemoAttributeMetadata",
    "Integer": "IntegerAttributeMetadata",
    "BigInt": "BigIntAttributeMetadata",
    "Decimal": "DecimalAttributeMetadata",
    "Double": "DoubleAttributeMetadata",
    "Money": "MoneyAttributeMetadata",
    "DateTime": "DateTimeAttributeMetadata",
    "Boolean": "BooleanAttributeMetadata",
    "Picklist": "PicklistAttributeMetadata",
    "State": "StateAttributeMetadata",
    "Status": "StatusAttributeMetadata",
    "Lookup": "LookupAttributeMetadata",
    "Customer": "LookupAttributeMetadata",
    "Owner": "LookupAttributeMetadata",
    "EntityName": "EntityNameAttributeMetadata",
}

# CSDL (Edm) type of each attribute type, as $metadata declares it.
EDM_TYPES: dict[str, str] = {
    "Uniqueidentifier": "Edm.Guid",
    "String": "Edm.String",
    "Memo": "Edm.String",
    "EntityName": "Edm.String",
    "Integer": "Edm.Int32",
    "BigInt": "Edm.Int64",
    "Picklist": "Edm.Int32",
    "State": "Edm.Int32",
    "Status": "Edm.Int32",
    "Boolean": "Edm.Boolean",
    "Decimal": "Edm.Decimal",
    "Double": "Edm.Double",
    "Money": "Edm.Decimal",
    "DateTime": "Edm.DateTimeOffset",
    "Lookup": "Edm.Guid",
    "Customer": "Edm.Guid",
    "Owner": "Edm.Guid",
}


@dataclass(frozen=True)
class Column:
    """One column (attribute) of a table, as the Web API exposes it.

    Attributes:
        logical_name: the attribute's logical name; lookups are served as ``_<name>_value``.
        attribute_type: Dataverse's ``AttributeType`` (String, Memo, Integer, Money, Lookup, ...).
        max_length: for String/Memo, the longest accepted value.
        min_value, max_value: accepted range for numbers.
        precision: decimal places (Decimal, Money, Double).
        options: value → label for Picklist/State/Status; for Boolean {1: true label, 0: false}.
        option_states: for Status, value → the statecode it belongs to.
        default_status: for State, statecode → its default statuscode.
        targets: tables a lookup may point at.
        entity: logical name of the table the column belongs to (set by :class:`Table`).
        date_format: ``DateAndTime`` or ``DateOnly`` for DateTime columns.
        create, update: whether the column may be written on create / update.
        required_level: ``None``, ``SystemRequired``, ``ApplicationRequired`` or ``Recommended``.
        format_name: String format (Text, Email, Phone, Url).
        is_custom: created through the metadata API.
        display_name, description: labels for EntityDefinitions.
        schema_name: the SchemaName (custom columns keep their casing, e.g. ``new_LeadScore``).
        internal: an attribute the Web API's entity type does not expose as a property: the
            EntityName companion of a polymorphic lookup (``customeridtype``), "set implicitly"
            (§8.5). It is stored and listed in EntityDefinitions, but ``$select``, ``$filter``,
            ``$orderby``, writes and ``$metadata`` do not know it; clients read the lookup's
            ``Microsoft.Dynamics.CRM.lookuplogicalname`` annotation instead (§3.3).
    """

    logical_name: str
    attribute_type: str
    max_length: int | None = None
    min_value: float | None = None
    max_value: float | None = None
    precision: int | None = None
    options: dict[int, str] = field(default_factory=dict)
    option_states: dict[int, int] = field(default_factory=dict)
    default_status: dict[int, int] = field(default_factory=dict)
    targets: tuple[str, ...] = ()
    entity: str = ""
    date_format: str = "DateAndTime"
    create: bool = True
    update: bool = True
    required_level: str = "None"
    format_name: str | None = None
    is_custom: bool = False
    display_name: str = ""
    description: str = ""
    schema_name: str = ""
    solution: str | None = None
    internal: bool = False

    @property
    def is_lookup(self) -> bool:
        """Whether the column is a lookup (served as ``_<name>_value``)."""
        return self.attribute_type in LOOKUP_TYPES

    @property
    def wire_name(self) -> str:
        """The property name in JSON and in ``$select``/``$filter``."""
        return f"_{self.logical_name}_value" if self.is_lookup else self.logical_name

    @property
    def type_column(self) -> str | None:
        """The companion column holding the target table of a polymorphic lookup."""
        if self.attribute_type in ("Customer", "Owner"):
            return f"{self.logical_name}type"
        if self.logical_name == "regardingobjectid":
            return "regardingobjecttypecode"
        if self.logical_name == "objectid" and self.entity == "queueitem":
            return "objectidtypecode"
        return None

    @property
    def metadata_id(self) -> str:
        """A stable MetadataId for the column."""
        return str(uuid.uuid5(_NS, f"attribute:{self.entity}.{self.logical_name}"))

    def navigation_properties(self) -> dict[str, str]:
        """Return navigation property name → target table for writing this lookup with ``@odata.bind``.

        Polymorphic customer lookups only accept the typed names (``customerid_account``); the
        plain name is refused with ``0x80048d19`` as Dataverse does (§5.1).
        """
        if not self.is_lookup:
            return {}
        if self.attribute_type == "Customer":
            return {f"{self.logical_name}_{t}": t for t in self.targets}
        if self.logical_name == "regardingobjectid":
            return {f"regardingobjectid_{t}_{self.entity}": t for t in self.targets}
        if self.type_column == "objectidtypecode":  # a queue item's object: objectid_lead, ...
            return {f"objectid_{t}": t for t in self.targets}
        if self.attribute_type == "Owner":
            return {"ownerid": "systemuser"}
        return {self.logical_name: self.targets[0]}

    @property
    def sql_type(self) -> str:
        """SQLite declaration: strings compare case-insensitively, as Dataverse's do (§3.4)."""
        if self.attribute_type in TEXT_TYPES:
            return "TEXT COLLATE NOCASE"
        if self.attribute_type in INT_TYPES:
            return "INTEGER"
        if self.attribute_type in FLOAT_TYPES:
            return "REAL"
        return "TEXT"


@dataclass(frozen=True)
class Table:
    """One table (entity) the sandbox serves."""

    logical_name: str
    entity_set: str
    primary_id: str
    primary_name: str
    object_type_code: int
    columns: tuple[Column, ...]
    display_name: str
    display_collection_name: str
    is_activity: bool = False
    writable: bool = True  # False for system tables (sdkmessage, ...) that the Web API only reads

    def column_map(self) -> dict[str, Column]:
        """Return logical name → column."""
        return {c.logical_name: c for c in self.columns}

    @property
    def metadata_id(self) -> str:
        """A stable MetadataId for the table."""
        return str(uuid.uuid5(_NS, f"entity:{self.logical_name}"))
