"""Routes of ``EntityDefinitions`` and ``RelationshipDefinitions``: which metadata a path names, and how.

``EntityDefinitions`` (the collection, one table by ``LogicalName='x'`` or MetadataId) with
``$select``, ``$filter`` and ``$expand`` of ``Attributes``, ``Keys`` and the three relationship
collections; the same collections as path segments; ``Attributes`` casts; column creation; key
creation and deletion. Writes the sandbox does not implement (creating or updating a table,
updating or deleting a column, creating a relationship) are Dataverse's 501 NotImplemented.
"""

from __future__ import annotations

import re

from connector.sandbox.config import SandboxConfig
from connector.sandbox.faults import ApiError, bad_request, not_found_segment, not_implemented
from connector.sandbox.metadata import keys as key_routes
from connector.sandbox.metadata.attributes import attribute_list, attribute_type, nested_attribute_query
from connector.sandbox.metadata.columns import create_attribute
from connector.sandbox.metadata.entities import ENTITY, MANY_TO_MANY, ONE_TO_MANY, entity_json, relationships
from connector.sandbox.metadata.options import (
    MetadataQuery,
    MetadataType,
    parse_metadata_query,
    parse_nested_query,
)
from connector.sandbox.protocol import Request, Response, json_response
from connector.sandbox.schema import METADATA_TYPES, Column, Table
from connector.sandbox.storage import Store

__all__ = ["entity_definitions", "relationship_definitions"]

_NS = "Microsoft.Dynamics.CRM."
_CAST = re.compile(r"^Microsoft\.Dynamics\.CRM\.(\w+AttributeMetadata)$")
_RELATIONSHIP_SETS = ("ManyToOneRelationships", "OneToManyRelationships", "ManyToManyRelationships")


def entity_definitions(store: Store, config: SandboxConfig, req: Request, path: str) -> Response:
    """Serve a request under ``EntityDefinitions``."""
    m = re.fullmatch(r"EntityDefinitions(?:\(([^)]*)\))?(?:/(.*))?", path)
    if not m:
        raise not_found_segment(path)
    key, rest = m.group(1), m.group(2)
    root = req.service_root
    if key is None:
        if rest:
            raise not_found_segment(rest)
        if req.method == "POST":
            raise not_implemented("Creating a table (POST EntityDefinitions)")
        if req.method != "GET":
            raise ApiError(405, "0x0", f"The HTTP method '{req.method}' is not allowed on EntityDefinitions.")
        query = parse_metadata_query(req.query, ENTITY)
        value = []
        for table in store.tables.values():
            data = entity_json(config, table)
            if query.matches(data):
                value.append(_expand_entity(store, table, query.project(data), query))
        context = f"{root}$metadata#EntityDefinitions{query.context_select()}"
        return json_response(200, {"@odata.context": context, "value": value})
    table = _table_by_key(store, key)
    if rest is None:
        if req.method in ("PUT", "PATCH"):
            raise not_implemented("Updating a table definition")
        if req.method == "DELETE":
            raise not_implemented("Deleting a table")
        if req.method != "GET":
            raise ApiError(
                405, "0x0", f"The HTTP method '{req.method}' is not allowed on a table definition."
            )
        query = parse_metadata_query(req.query, ENTITY)
        data = _expand_entity(store, table, query.project(entity_json(config, table)), query)
        context = f"{root}$metadata#EntityDefinitions{query.context_select()}/$entity"
        return json_response(200, {"@odata.context": context, **data})
    segment, _, tail = rest.partition("/")
    nav = re.fullmatch(r"(\w+)(?:\(([^)]*)\))?", segment)
    if nav is None:
        raise not_found_segment(segment)
    name, ident = nav.group(1), nav.group(2)
    if name == "Attributes":
        return _attributes(store, config, req, table, ident, tail)
    if tail:
        raise not_found_segment(tail)
    if name == "Keys":
        return _keys(store, config, req, table, ident)
    if name in _RELATIONSHIP_SETS:
        if req.method != "GET":
            raise not_implemented(f"Writing {name}")
        kind = MANY_TO_MANY if name == "ManyToManyRelationships" else ONE_TO_MANY
        query = parse_metadata_query(req.query, kind)
        items = _relationships_of(store, table, name, query)
        context = f"{root}$metadata#EntityDefinitions('{table.logical_name}')/{name}"
        return _one_or_many(items, ident, context, f"relationship '{ident}'")
    raise not_found_segment(name)


def relationship_definitions(store: Store, req: Request, path: str) -> Response:
    """``GET RelationshipDefinitions[(<id>)]``: every relationship, with ``$select`` and ``$filter``."""
    m = re.fullmatch(r"RelationshipDefinitions(?:\(([^)]*)\))?", path)
    if not m:
        raise not_found_segment(path)
    if req.method == "POST":
        raise not_implemented("Creating a relationship (POST RelationshipDefinitions)")
    if req.method != "GET":
        raise not_implemented(f"{req.method} on RelationshipDefinitions")
    # The collection is polymorphic; every relationship the sandbox has is one-to-many.
    query = parse_metadata_query(req.query, ONE_TO_MANY)
    items = [query.project(r) for r in relationships(store.tables) if query.matches(r)]
    return _one_or_many(
        items, m.group(1), f"{req.service_root}$metadata#RelationshipDefinitions", "relationship"
    )


def _one_or_many(items: list[dict], ident: str | None, context: str, what: str) -> Response:
    if ident is None:
        return json_response(200, {"@odata.context": context, "value": items})
    wanted = ident.strip().lower()
    m = re.fullmatch(r"SchemaName='([^']*)'", ident.strip())
    for item in items:
        if item.get("MetadataId") == wanted or (
            m and str(item.get("SchemaName", "")).lower() == m.group(1).lower()
        ):
            return json_response(200, {"@odata.context": f"{context}/$entity", **item})
    raise ApiError(404, "0x80040217", f"Could not find {what} '{ident}'.")


def _relationships_of(store: Store, table: Table, name: str, query: MetadataQuery) -> list[dict]:
    if name == "ManyToManyRelationships":
        return []  # the sandbox models no many-to-many relationship (see the module docstring)
    side = "ReferencingEntity" if name == "ManyToOneRelationships" else "ReferencedEntity"
    return [
        query.project(r)
        for r in relationships(store.tables)
        if r[side] == table.logical_name and query.matches(r)
    ]


_EXPANSIONS: dict[str, MetadataType] = {
    "Keys": key_routes.KEY,
    "ManyToOneRelationships": ONE_TO_MANY,
    "OneToManyRelationships": ONE_TO_MANY,
    "ManyToManyRelationships": MANY_TO_MANY,
}


def _expand_entity(store: Store, table: Table, data: dict, query: MetadataQuery) -> dict:
    """Add the expanded navigation properties of one table (after the projection)."""
    for name, nested in query.expand.items():
        if name == "Attributes":
            data[name] = attribute_list(table, None, nested_attribute_query(nested))
        elif name == "Keys":
            data[name] = key_routes.list_keys(store, table, parse_nested_query(nested, key_routes.KEY))
        else:
            data[name] = _relationships_of(store, table, name, parse_nested_query(nested, _EXPANSIONS[name]))
    return data


def _keys(store: Store, config: SandboxConfig, req: Request, table: Table, ident: str | None) -> Response:
    context = key_routes.context(req.service_root, table)
    if ident is None:
        if req.method == "POST":
            return key_routes.create_key(store, config, req, table)
        if req.method != "GET":
            raise ApiError(405, "0x0", f"The HTTP method '{req.method}' is not allowed on Keys.")
        query = parse_metadata_query(req.query, key_routes.KEY)
        return json_response(
            200, {"@odata.context": context, "value": key_routes.list_keys(store, table, query)}
        )
    if req.method == "DELETE":
        return key_routes.delete_key(store, table, ident)
    if req.method != "GET":
        raise not_implemented("Updating an alternate key")
    query = parse_metadata_query(req.query, key_routes.KEY)
    key = key_routes.find_key(store, table, ident)
    return json_response(
        200, {"@odata.context": f"{context}/$entity", **query.project(key_routes.key_json(key))}
    )


def _attributes(
    store: Store, config: SandboxConfig, req: Request, table: Table, attr_key: str | None, cast_text: str
) -> Response:
    root = req.service_root
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
            return create_attribute(store, config, req, table)
        if req.method != "GET":
            raise ApiError(405, "0x0", f"The HTTP method '{req.method}' is not allowed on Attributes.")
        query = parse_metadata_query(req.query, attribute_type(cast))
        context = f"{root}$metadata#EntityDefinitions('{table.logical_name}')/Attributes" + (
            f"/{_NS}{cast}" if cast else ""
        )
        return json_response(200, {"@odata.context": context, "value": attribute_list(table, cast, query)})
    column = _column_by_key(table, attr_key)
    if req.method in ("PUT", "PATCH"):
        raise not_implemented("Updating a column definition (PUT .../Attributes(<id>))")
    if req.method == "DELETE":
        raise not_implemented("Deleting a column")
    if req.method != "GET":
        raise ApiError(405, "0x0", f"The HTTP method '{req.method}' is not allowed on an attribute.")
    query = parse_metadata_query(req.query, attribute_type(cast))
    items = [
        a
        for a in attribute_list(table, cast, MetadataQuery(expand=query.expand))
        if a["MetadataId"] == column.metadata_id
    ]
    if not items:
        raise bad_request(f"The attribute '{column.logical_name}' is not of type {cast}.")
    context = (
        f"{root}$metadata#EntityDefinitions('{table.logical_name}')/Attributes"
        + (f"/{_NS}{cast}" if cast else "")
        + "/$entity"
    )
    return json_response(200, {"@odata.context": context, **query.project(items[0])})


def _table_by_key(store: Store, key: str) -> Table:
    m = re.fullmatch(r"LogicalName='([^']*)'", key)
    if m:
        table = store.tables.get(m.group(1))
        name = m.group(1)
    else:
        ident = key.strip().lower()
        table = next((t for t in store.tables.values() if t.metadata_id == ident), None)
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
