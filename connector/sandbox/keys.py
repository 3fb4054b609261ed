"""Alternate keys: their definitions, addressing records by them, and the uniqueness they promise.

Follows ``../shared/dataverse-webapi.md`` §5.3. "By default, there are no alternate keys configured
for entities": a key is created through ``POST EntityDefinitions(...)/Keys`` and then records can
be addressed as ``leads(emailaddress1='a@b.c')`` (string values single-quoted with ``''`` for a
quote; lookups as ``_x_value=<guid>``). Dataverse builds the key's index asynchronously and marks it
``Failed`` when existing records already share a value; the sandbox builds it at once, with the
same outcome, and refuses to address records by a key that is not ``Active``. A write that would
give two records the same key values is ``0x80060892`` DuplicateRecordEntityKey.
"""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from dataclasses import dataclass
from urllib.parse import unquote

from connector.sandbox.faults import ApiError, bad_request, unknown_property
from connector.sandbox.schema import Column, Table

__all__ = ["AlternateKey", "find_by_key", "key_conflict", "parse_key_segment", "resolve_key"]

_NS = uuid.UUID("5a1b9e44-0c7e-4f33-a1d2-8e0f3c2b7d61")


@dataclass(frozen=True)
class AlternateKey:
    """One alternate key of a table.

    Attributes:
        entity: the table's logical name.
        schema_name: the key's SchemaName (``new_lead_emailaddress1_key``).
        attributes: the key columns' logical names, in key order.
        display_name: the key's label text.
        status: ``EntityKeyIndexStatus``: ``Active`` or ``Failed`` (values were not unique).
    """

    entity: str
    schema_name: str
    attributes: tuple[str, ...]
    display_name: str = ""
    status: str = "Active"

    @property
    def logical_name(self) -> str:
        """The key's LogicalName: its SchemaName in lower case."""
        return self.schema_name.lower()

    @property
    def metadata_id(self) -> str:
        """A stable MetadataId for the key."""
        return str(uuid.uuid5(_NS, f"{self.entity}:{self.logical_name}"))

    @property
    def index_name(self) -> str:
        """The SQLite unique index that enforces the key."""
        return f"_dvkey_{self.entity}_{self.logical_name}"

    def to_json(self) -> str:
        """Serialise for ``_dv_keys``."""
        return json.dumps(
            {"schema": self.schema_name, "attributes": list(self.attributes), "display": self.display_name}
        )

    @classmethod
    def from_row(cls, entity: str, definition: str, status: str) -> AlternateKey:
        """Rebuild a key from its ``_dv_keys`` row."""
        data = json.loads(definition)
        return cls(entity, data["schema"], tuple(data["attributes"]), data.get("display", ""), status)


_PAIR = re.compile(r"\s*([A-Za-z_]\w*)\s*=\s*('(?:[^']|'')*'|[^,']+)\s*(?:,|$)")


def parse_key_segment(text: str) -> dict[str, object] | None:
    """Parse ``a='x',b=2`` into name → value; None when the text is not name=value pairs.

    String values lose their quotes (``''`` becomes ``'``); unquoted values stay text and are
    converted against the column's type by :func:`resolve_key`.
    """
    text = unquote(text)
    out: dict[str, object] = {}
    pos = 0
    while pos < len(text):
        m = _PAIR.match(text, pos)
        if not m or m.end() == pos:
            return None
        name, raw = m.group(1), m.group(2).strip()
        if name in out:
            raise bad_request(f"The key property '{name}' appears twice in the key segment.")
        out[name] = raw[1:-1].replace("''", "'") if raw.startswith("'") else _Unquoted(raw)
        pos = m.end()
    return out or None


class _Unquoted(str):
    """A key value written without quotes (a number, a GUID or a boolean)."""


def resolve_key(
    table: Table, keys: list[AlternateKey], pairs: dict[str, object]
) -> tuple[AlternateKey, dict]:
    """Match key-segment pairs to one of the table's active keys and convert the values.

    Returns:
        (the key, column logical name → stored value).

    Raises:
        ApiError: 400 when no key of the table has exactly these columns, or it is not active.
    """
    by_wire = {c.wire_name: c for c in table.columns if not c.internal}
    columns: dict[str, Column] = {}
    for name in pairs:
        column = by_wire.get(name)
        if column is None:
            raise unknown_property(name, table.logical_name)
        columns[name] = column
    wanted = {c.logical_name for c in columns.values()}
    key = next((k for k in keys if set(k.attributes) == wanted), None)
    if key is None:
        defined = "; ".join(f"{k.schema_name} ({', '.join(k.attributes)})" for k in keys) or "none"
        raise bad_request(
            f"The key attributes ({', '.join(sorted(wanted))}) are not a key defined on entity "
            f"'{table.logical_name}'. Keys defined: {defined}."
        )
    if key.status != "Active":
        raise bad_request(
            f"The entity key {key.schema_name} on '{table.logical_name}' is {key.status}: "
            "its index could not "
            "be built because existing records share key values."
        )
    values = {columns[name].logical_name: _convert(columns[name], value) for name, value in pairs.items()}
    return key, values


def _convert(column: Column, value: object) -> object:
    t = column.attribute_type
    if isinstance(value, _Unquoted):
        text = str(value)
        if t in ("Integer", "BigInt", "Picklist", "State", "Status"):
            try:
                return int(text)
            except ValueError as exc:
                raise bad_request(
                    f"'{text}' is not a valid value for key column '{column.logical_name}'."
                ) from exc
        if t in ("Decimal", "Double", "Money"):
            try:
                return float(text)
            except ValueError as exc:
                raise bad_request(
                    f"'{text}' is not a valid value for key column '{column.logical_name}'."
                ) from exc
        if t == "Boolean" and text in ("true", "false"):
            return int(text == "true")
        if column.is_lookup or t == "Uniqueidentifier":
            return text.lower()
        raise bad_request(f"The value of key column '{column.logical_name}' must be a quoted string.")
    if t not in ("String", "Memo", "EntityName"):
        raise bad_request(f"The value of key column '{column.logical_name}' must not be quoted.")
    return value


def find_by_key(conn: sqlite3.Connection, table: Table, values: dict[str, object]) -> str | None:
    """The id of the record with these key values, or None."""
    where = " AND ".join(f'"{name}" = ?' for name in values)
    row = conn.execute(
        f'SELECT "{table.primary_id}" FROM "{table.logical_name}" WHERE {where} LIMIT 1',
        list(values.values()),
    ).fetchone()
    return row[0] if row else None


def key_conflict(
    conn: sqlite3.Connection, table: Table, keys: list[AlternateKey], record_id: str, values: dict
) -> None:
    """Refuse a write that gives ``record_id`` the key values another record already has.

    Records with a null in a key column are not constrained (as in SQL Server's filtered index).

    Raises:
        ApiError: 412 ``0x80060892`` DuplicateRecordEntityKey.
    """
    for key in keys:
        if key.status != "Active":
            continue
        key_values = {name: values.get(name) for name in key.attributes}
        if any(v is None or v == "" for v in key_values.values()):
            continue
        other = find_by_key(conn, table, key_values)
        if other is not None and other != record_id:
            raise ApiError(
                412,
                "0x80060892",
                f"Entity Key {key.schema_name} violated. A record with the same value for "
                f"{', '.join(key.attributes)} already exists. A duplicate record cannot be created. "
                "Select one or more unique values and try again.",
            )
