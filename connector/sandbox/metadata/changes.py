"""``RetrieveMetadataChanges``: table metadata chosen by an ``EntityQueryExpression``, with version stamps.

The function takes ``Query`` (an ``EntityQueryExpression``: ``Criteria`` of metadata conditions,
``Properties`` to return, optional ``AttributeQuery``) and ``ClientVersionStamp``. Without a stamp
it returns every matching table; with the ``ServerVersionStamp`` of an earlier answer it returns
only the tables whose definition changed since (a created column or key), so a client can cache
metadata. A stamp the server did not issue is ``0x80044352`` ExpiredVersionStamp, the answer
Dataverse gives when a client must reload everything. Deletions of metadata are not reported: the
sandbox deletes only alternate keys, and a table whose key was deleted is returned as changed.
"""

from __future__ import annotations

import re

from connector.sandbox.config import SandboxConfig
from connector.sandbox.faults import ApiError, bad_request
from connector.sandbox.metadata.attributes import attribute_json
from connector.sandbox.metadata.entities import ENTITY, entity_json
from connector.sandbox.metadata.options import NS, MetadataType
from connector.sandbox.storage import Store

__all__ = ["retrieve_metadata_changes"]

_STAMP = re.compile(r"^(\d+)!\d{2}/\d{2}/\d{4} \d{2}:\d{2}:\d{2}$")
_OPERATORS = frozenset({"Equals", "NotEquals", "In", "NotIn", "GreaterThan", "LessThan"})


def retrieve_metadata_changes(
    store: Store, config: SandboxConfig, service_root: str, query: object, stamp: object
) -> dict:
    """Answer ``RetrieveMetadataChanges(Query=..., ClientVersionStamp=...)``."""
    if query is None:
        query = {}
    if not isinstance(query, dict):
        raise bad_request("Query must be an EntityQueryExpression object.")
    since = 0
    if stamp is not None:
        m = _STAMP.match(str(stamp))
        if not m:
            raise ApiError(
                400,
                "0x80044352",
                "Version stamp associated with the client has expired. Please perform a full sync.",
            )
        since = int(m.group(1))
    changed, latest = store.metadata_changes(since)
    if since > latest:
        raise ApiError(
            400,
            "0x80044352",
            "Version stamp associated with the client has expired. Please perform a full sync.",
        )
    criteria = _criteria(query.get("Criteria"), ENTITY)
    properties = _properties(query.get("Properties"), ENTITY)
    attribute_query = query.get("AttributeQuery")
    attribute_criteria = attribute_properties = None
    if attribute_query is not None:
        if not isinstance(attribute_query, dict):
            raise bad_request("AttributeQuery must be an AttributeQueryExpression object.")
        attribute_criteria = _criteria(attribute_query.get("Criteria"), None)
        attribute_properties = _properties(attribute_query.get("Properties"), None)
    if query.get("RelationshipQuery") is not None or query.get("KeyQuery") is not None:
        raise ApiError(
            501, "0x80040219", "RelationshipQuery and KeyQuery are not implemented by the sandbox."
        )
    out = []
    for table in store.tables.values():
        if stamp is not None and table.logical_name not in changed:
            continue
        data = entity_json(config, table)
        if not _matches(criteria, data):
            continue
        item = {k: v for k, v in data.items() if properties is None or k in properties or k == "MetadataId"}
        if properties is None or "Attributes" in properties:
            attributes = []
            for column in table.columns:
                attr = attribute_json(table, column)
                if attribute_criteria is not None and not _matches(attribute_criteria, attr):
                    continue
                keep = attribute_properties
                attributes.append(
                    {
                        k: v
                        for k, v in attr.items()
                        if keep is None or k in keep or k in ("MetadataId", "@odata.type")
                    }
                )
            item["Attributes"] = attributes
        out.append(item)
    moment = config.clock().strftime("%m/%d/%Y %H:%M:%S")
    return {
        "@odata.context": f"{service_root}$metadata#{NS}RetrieveMetadataChangesResponse",
        "EntityMetadata": out,
        "ServerVersionStamp": f"{latest}!{moment}",
        "DeletedMetadata": None,
    }


def _properties(value: object, kind: MetadataType | None) -> set[str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_request("Properties must be a MetadataPropertiesExpression object.")
    if value.get("AllProperties") is True:
        return None
    names = value.get("PropertyNames") or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise bad_request("PropertyNames must be a list of property names.")
    if kind is not None:
        for name in names:
            if name not in kind.properties and name not in kind.navigations:
                raise kind.unknown(name)
    return set(names)


def _criteria(value: object, kind: MetadataType | None) -> tuple[str, list[tuple[str, str, object]]] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_request("Criteria must be a MetadataFilterExpression object.")
    if value.get("Filters"):
        raise ApiError(501, "0x80040219", "Nested metadata Filters are not implemented by the sandbox.")
    operator = value.get("FilterOperator", "And")
    if operator not in ("And", "Or"):
        raise bad_request(f"FilterOperator must be And or Or, not '{operator}'.")
    conditions = []
    for condition in value.get("Conditions") or []:
        if not isinstance(condition, dict):
            raise bad_request("Each condition must be a MetadataConditionExpression object.")
        name = condition.get("PropertyName")
        op = condition.get("ConditionOperator")
        if op not in _OPERATORS:
            raise bad_request(
                f"ConditionOperator must be one of {', '.join(sorted(_OPERATORS))}, not '{op}'."
            )
        if kind is not None and name not in kind.properties:
            raise kind.unknown(str(name))
        raw = condition.get("Value")
        conditions.append(
            (str(name), op, raw.get("Value") if isinstance(raw, dict) and "Value" in raw else raw)
        )
    return operator, conditions


def _matches(criteria: tuple[str, list[tuple[str, str, object]]] | None, obj: dict) -> bool:
    if criteria is None:
        return True
    operator, conditions = criteria
    results = [_test(obj.get(name), op, value) for name, op, value in conditions]
    if not results:
        return True
    return all(results) if operator == "And" else any(results)


def _test(actual: object, op: str, expected: object) -> bool:
    if isinstance(actual, dict) and "Value" in actual:
        actual = actual["Value"]  # a managed property compares by its value
    if op in ("In", "NotIn"):
        values = expected if isinstance(expected, list) else [expected]
        hit = any(_equal(actual, v) for v in values)
        return hit if op == "In" else not hit
    if op == "Equals":
        return _equal(actual, expected)
    if op == "NotEquals":
        return not _equal(actual, expected)
    try:
        return actual > expected if op == "GreaterThan" else actual < expected  # type: ignore[operator]
    except TypeError:
        return False


def _equal(actual: object, expected: object) -> bool:
    if isinstance(actual, str) and isinstance(expected, str):
        return actual.lower() == expected.lower()
    return actual == expected
