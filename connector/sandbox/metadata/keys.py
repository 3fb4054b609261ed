"""``EntityDefinitions(...)/Keys``: alternate key metadata, created, listed and deleted (§5.3).

``POST .../Keys`` with ``{"SchemaName": ..., "KeyAttributes": [...], "DisplayName": ...}`` answers
204 with ``OData-EntityId: .../EntityDefinitions(<id>)/Keys(<keyid>)``, as Microsoft's SDK expects.
Key columns must be String, Integer, Decimal, DateTime, Lookup or Picklist columns (the types
Dataverse allows in a key); at most 16 columns; a SchemaName carries the publisher prefix.
"""

from __future__ import annotations

import re

from connector.sandbox.config import SandboxConfig
from connector.sandbox.faults import ApiError, bad_request
from connector.sandbox.keys import AlternateKey
from connector.sandbox.metadata.columns import label_text
from connector.sandbox.metadata.options import MetadataQuery, MetadataType, label
from connector.sandbox.protocol import Request, Response
from connector.sandbox.schema import Table
from connector.sandbox.storage import Store

__all__ = ["KEY", "context", "create_key", "delete_key", "find_key", "key_json", "list_keys"]

# "Valid attribute types for alternate keys": Decimal, Whole Number, Single line of text, DateTime,
# Lookup, Choice (Microsoft Learn, "Define alternate keys to reference rows").
_KEY_TYPES = frozenset(
    {"String", "Integer", "Decimal", "DateTime", "Lookup", "Customer", "Owner", "Picklist"}
)


def key_json(key: AlternateKey) -> dict:
    """The EntityKeyMetadata of one key."""
    return {
        "MetadataId": key.metadata_id,
        "HasChanged": None,
        "LogicalName": key.logical_name,
        "SchemaName": key.schema_name,
        "EntityLogicalName": key.entity,
        "KeyAttributes": list(key.attributes),
        "DisplayName": label(key.display_name),
        "EntityKeyIndexStatus": key.status,
        "AsyncJob": None,
        "IsManaged": False,
        "IsCustomizable": {
            "Value": True,
            "CanBeChanged": True,
            "ManagedPropertyLogicalName": "iscustomizable",
        },
        "IsExportKey": False,
        "IsSecondaryKey": False,
        "IsSynchronous": False,
        "IntroducedVersion": "1.0",
    }


KEY = MetadataType(
    "EntityKeyMetadata",
    frozenset(key_json(AlternateKey("lead", "x_key", ("x",)))),
    labels=frozenset({"DisplayName"}),
)


def list_keys(store: Store, table: Table, query: MetadataQuery) -> list[dict]:
    """The table's keys that pass the query, projected."""
    return [
        query.project(data) for data in map(key_json, store.keys(table.logical_name)) if query.matches(data)
    ]


def find_key(store: Store, table: Table, ident: str) -> AlternateKey:
    """A key by MetadataId or ``LogicalName='x'``, else Dataverse's 404."""
    m = re.fullmatch(r"LogicalName='([^']*)'", ident)
    for key in store.keys(table.logical_name):
        if (m and key.logical_name == m.group(1).lower()) or (
            not m and key.metadata_id == ident.strip().lower()
        ):
            return key
    raise ApiError(404, "0x80040217", f"Could not find key '{ident}' on entity '{table.logical_name}'.")


def create_key(store: Store, config: SandboxConfig, req: Request, table: Table) -> Response:
    """``POST EntityDefinitions(...)/Keys``: define a key and build its index."""
    body = req.json()
    if not isinstance(body, dict):
        raise bad_request("The body must be an EntityKeyMetadata JSON object.")
    schema = body.get("SchemaName")
    if not isinstance(schema, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*_\w+", schema):
        raise bad_request(
            f"SchemaName '{schema}' is not valid: it must start with the publisher's customization prefix "
            "and an underscore, for example 'new_lead_emailaddress1_key'.",
            code="0x80040203",
        )
    if schema.split("_", 1)[0].lower() not in config.publisher_prefixes:
        allowed = ", ".join(f"'{p}_'" for p in sorted(config.publisher_prefixes))
        raise bad_request(
            f"The schema name '{schema}' does not start with a publisher's customization prefix; "
            f"this environment's publishers use {allowed}.",
            code="0x80040203",
        )
    attributes = body.get("KeyAttributes")
    if not isinstance(attributes, list) or not attributes or not all(isinstance(a, str) for a in attributes):
        raise bad_request("KeyAttributes must list the logical names of the key's columns.")
    if len(attributes) > 16 or len(set(attributes)) != len(attributes):
        raise bad_request("KeyAttributes must name at most 16 different columns.")
    columns = table.column_map()
    for name in attributes:
        column = columns.get(name)
        if column is None or column.internal:
            raise ApiError(
                404, "0x80040217", f"Could not find attribute '{name}' on entity '{table.logical_name}'."
            )
        if column.attribute_type not in _KEY_TYPES:
            raise bad_request(
                f"The attribute '{name}' is of type {column.attribute_type}, which cannot be part of an "
                f"alternate key (allowed: {', '.join(sorted(_KEY_TYPES))})."
            )
    existing = store.keys(table.logical_name)
    if any(k.logical_name == schema.lower() for k in existing):
        raise ApiError(
            400, "0x80040237", f"A key with the name '{schema}' already exists on '{table.logical_name}'."
        )
    if any(set(k.attributes) == set(attributes) for k in existing):
        raise bad_request(
            f"A key on the columns {', '.join(attributes)} already exists on '{table.logical_name}'."
        )
    key = AlternateKey(table.logical_name, schema, tuple(attributes), label_text(body.get("DisplayName")))
    with store.transaction() as conn:
        key = store.add_key(conn, key, req.headers.get("MSCRM.SolutionUniqueName"))
    url = f"{req.service_root}EntityDefinitions({table.metadata_id})/Keys({key.metadata_id})"
    return Response(204, [("OData-Version", "4.0"), ("OData-EntityId", url)])


def delete_key(store: Store, table: Table, ident: str) -> Response:
    """``DELETE EntityDefinitions(...)/Keys(<id>)``."""
    key = find_key(store, table, ident)
    with store.transaction() as conn:
        store.remove_key(conn, key)
    return Response(204, [("OData-Version", "4.0")])


def context(root: str, table: Table) -> str:
    """The ``@odata.context`` of a table's key collection."""
    return f"{root}$metadata#EntityDefinitions('{table.logical_name}')/Keys"
