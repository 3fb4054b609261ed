"""Parse a FetchXML document into a checked :class:`FetchQuery` (reference §3.8).

The text is parsed with the standard library's XML parser, after refusing a DTD: FetchXML never
has one, and refusing it closes the entity-expansion attacks that ``xml.etree`` would otherwise
allow (so defusedxml is not needed). Every element and attribute is checked against what the
sandbox implements: ``fetch`` (``top``, ``count``, ``page``, ``paging-cookie``, ``aggregate``,
``returntotalrecordcount``, ``no-lock``, ``mapping``, ``version``, ``output-format``), ``entity``,
``attribute`` (``name``, ``alias``, ``aggregate``, ``groupby``, ``distinct``), ``all-attributes``,
``filter`` (``type`` and/or, nested), ``condition`` (``attribute``, ``operator``, ``value``,
``entityname``, ``<value>`` children), ``order`` (``attribute``/``alias``, ``descending``) and
``link-entity`` along a lookup (``name``, ``from``, ``to``, ``alias``, ``link-type`` inner/outer).
Anything else is a 501 naming it; a name the table does not have is a 400.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from connector.sandbox.faults import bad_request, not_implemented
from connector.sandbox.schema import Column, Table

__all__ = ["Condition", "FetchAttribute", "FetchQuery", "Filter", "Link", "Order", "parse_fetchxml"]

_AGGREGATES = frozenset({"count", "countcolumn", "sum", "avg", "min", "max"})


@dataclass
class FetchAttribute:
    """One ``<attribute>``: a column, or an aggregate or group-by column with its alias."""

    column: Column
    alias: str | None = None
    aggregate: str | None = None
    groupby: bool = False
    distinct: bool = False


@dataclass
class Condition:
    """One ``<condition>``; ``alias`` names the link-entity it applies to (``entityname``)."""

    column: Column
    operator: str
    values: list[str]
    alias: str | None = None


@dataclass
class Filter:
    """A ``<filter>``: conditions and nested filters joined by ``and`` or ``or``."""

    kind: str = "and"
    items: list[Condition | Filter] = field(default_factory=list)


@dataclass
class Order:
    """One ``<order>`` by a column of the main entity or by an aggregate alias."""

    column: Column | None
    alias: str | None
    descending: bool


@dataclass
class Link:
    """A ``<link-entity>`` along a lookup of the main entity (many-to-one)."""

    table: Table
    lookup: Column
    alias: str
    outer: bool
    attributes: list[Column] = field(default_factory=list)
    filter: Filter | None = None


@dataclass
class FetchQuery:
    """A checked FetchXML query."""

    table: Table
    attributes: list[FetchAttribute] | None  # None: all attributes
    filter: Filter | None
    orders: list[Order]
    links: list[Link]
    top: int | None = None
    count: int | None = None
    page: int = 1
    paging_cookie: str | None = None
    aggregate: bool = False
    total_count: bool = False


_FETCH_ATTRS = frozenset(
    {"top", "count", "page", "paging-cookie", "aggregate", "returntotalrecordcount", "no-lock", "mapping",
     "version", "output-format", "distinct"}
)  # fmt: skip


def parse_fetchxml(text: str, table: Table, tables: dict[str, Table]) -> FetchQuery:
    """Parse FetchXML sent to ``GET <entity set>?fetchXml=...`` for ``table``.

    Raises:
        ApiError: 400 for malformed XML, a different entity or unknown names; 501 for FetchXML
            features the sandbox does not implement.
    """
    if "<!DOCTYPE" in text.upper() or "<!ENTITY" in text.upper():
        raise bad_request("The fetchXml parameter must not contain a DTD.")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise bad_request(f"The fetchXml parameter is not well-formed XML: {exc}.") from exc
    if root.tag != "fetch":
        raise bad_request(f"The FetchXML root element must be <fetch>, not <{root.tag}>.")
    _known(root, _FETCH_ATTRS)
    if root.get("distinct", "false") == "true":
        raise not_implemented('FetchXML distinct="true"')
    entities = list(root)
    if len(entities) != 1 or entities[0].tag != "entity":
        raise bad_request("A FetchXML query has exactly one <entity> element.")
    entity = entities[0]
    _known(entity, {"name"})
    if entity.get("name") != table.logical_name:
        raise bad_request(
            f"The entity name '{entity.get('name')}' in the FetchXML does not match the entity set "
            f"'{table.entity_set}' of the request."
        )
    query = FetchQuery(table, [], None, [], [])
    query.aggregate = root.get("aggregate", "false") == "true"
    query.total_count = root.get("returntotalrecordcount", "false") == "true"
    query.top = _number(root, "top", 1, 5000)
    query.count = _number(root, "count", 1, 5000)
    query.page = _number(root, "page", 1, None) or 1
    query.paging_cookie = root.get("paging-cookie")
    if query.top is not None and (query.count is not None or root.get("page") is not None):
        raise bad_request("The top attribute can't be specified with paging attributes page and count.")
    # Link-entities first: a condition may name one (entityname) before it appears in the document.
    aliases: dict[str, Table] = {}
    for n, child in enumerate((c for c in entity if c.tag == "link-entity"), start=1):
        link = _link(child, table, tables, n)
        if link.alias in aliases:
            raise bad_request(f"The alias '{link.alias}' is used twice in the FetchXML.")
        aliases[link.alias] = link.table
        query.links.append(link)
    for child in entity:
        if child.tag == "link-entity":
            continue
        if child.tag == "attribute":
            if query.attributes is not None:
                query.attributes.append(_attribute(child, table, query.aggregate))
        elif child.tag == "all-attributes":
            _known(child, set())
            query.attributes = None
        elif child.tag == "filter":
            if query.filter is not None:
                query.filter = Filter("and", [query.filter, _filter(child, table, aliases)])
            else:
                query.filter = _filter(child, table, aliases)
        elif child.tag == "order":
            query.orders.append(_order(child, table))
        else:
            raise not_implemented(f"The FetchXML element <{child.tag}>")
    if query.aggregate:
        _check_aggregate(query)
    elif any(a.aggregate or a.groupby for a in query.attributes or []):
        raise bad_request('An aggregate or groupby attribute needs aggregate="true" on <fetch>.')
    return query


def _known(element: ET.Element, allowed: set[str] | frozenset[str]) -> None:
    for name in element.attrib:
        if name not in allowed:
            raise not_implemented(f"The FetchXML attribute '{name}' on <{element.tag}>")


def _number(element: ET.Element, name: str, low: int, high: int | None) -> int | None:
    text = element.get(name)
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError as exc:
        raise bad_request(f'The FetchXML attribute {name}="{text}" is not a whole number.') from exc
    if value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise bad_request(f"The FetchXML attribute {name} must be {bound}, not {value}.")
    return value


def column_of(table: Table, name: str | None) -> Column:
    """The column named by a FetchXML ``attribute``, else Dataverse's 400 for an unknown attribute."""
    column = table.column_map().get(name or "")
    if column is None or column.internal:
        raise bad_request(
            f"'{table.logical_name}' entity doesn't contain attribute with Name = '{name}' "
            "and NameMapping = 'Logical'.",
            code="0x80041103",
        )
    return column


def _attribute(element: ET.Element, table: Table, aggregate: bool) -> FetchAttribute:
    _known(element, {"name", "alias", "aggregate", "groupby", "distinct", "dategrouping"})
    if element.get("dategrouping"):
        raise not_implemented("FetchXML dategrouping")
    column = column_of(table, element.get("name"))
    kind = element.get("aggregate")
    if kind is not None and kind not in _AGGREGATES:
        raise bad_request(
            f"'{kind}' is not a FetchXML aggregate; use one of {', '.join(sorted(_AGGREGATES))}."
        )
    return FetchAttribute(
        column,
        element.get("alias"),
        kind,
        element.get("groupby", "false") == "true",
        element.get("distinct", "false") == "true",
    )


def _filter(element: ET.Element, table: Table, aliases: dict[str, Table]) -> Filter:
    _known(element, {"type"})
    kind = element.get("type", "and")
    if kind not in ("and", "or"):
        raise bad_request(f"The filter type must be 'and' or 'or', not '{kind}'.")
    out = Filter(kind)
    for child in element:
        if child.tag == "condition":
            out.items.append(_condition(child, table, aliases))
        elif child.tag == "filter":
            out.items.append(_filter(child, table, aliases))
        else:
            raise not_implemented(f"The FetchXML element <{child.tag}> inside <filter>")
    return out


def _condition(element: ET.Element, table: Table, aliases: dict[str, Table]) -> Condition:
    _known(element, {"attribute", "operator", "value", "entityname"})
    operator = element.get("operator")
    if not operator:
        raise bad_request("A FetchXML <condition> needs an operator.")
    values = [element.get("value")] if element.get("value") is not None else []
    for child in element:
        if child.tag != "value":
            raise not_implemented(f"The FetchXML element <{child.tag}> inside <condition>")
        values.append(child.text or "")
    alias = element.get("entityname")
    owner = table
    if alias is not None:
        if alias not in aliases:
            raise bad_request(f"The entityname '{alias}' of a condition is not the alias of a link-entity.")
        owner = aliases[alias]
    column = column_of(owner, element.get("attribute"))
    return Condition(column, operator, [v for v in values if v is not None], alias)


def _order(element: ET.Element, table: Table) -> Order:
    _known(element, {"attribute", "alias", "descending"})
    descending = element.get("descending", "false") == "true"
    if element.get("alias") is not None:
        return Order(None, element.get("alias"), descending)
    return Order(column_of(table, element.get("attribute")), None, descending)


def _link(element: ET.Element, table: Table, tables: dict[str, Table], n: int) -> Link:
    _known(element, {"name", "from", "to", "alias", "link-type", "visible", "intersect"})
    name = element.get("name")
    target = tables.get(name or "")
    if target is None:
        raise bad_request(f"The entity '{name}' of a link-entity is not served by the sandbox.")
    link_type = element.get("link-type", "inner")
    if link_type not in ("inner", "outer"):
        raise not_implemented(f'FetchXML link-type="{link_type}"')
    lookup = column_of(table, element.get("to"))
    if element.get("from") != target.primary_id or not lookup.is_lookup or name not in lookup.targets:
        raise not_implemented(
            "A link-entity other than along a lookup (from the linked table's primary key to a lookup "
            f"of '{table.logical_name}' that targets it)"
        )
    link = Link(target, lookup, element.get("alias") or f"{name}{n}", link_type == "outer")
    for child in element:
        if child.tag == "attribute":
            _known(child, {"name"})
            link.attributes.append(column_of(target, child.get("name")))
        elif child.tag == "all-attributes":
            link.attributes = [c for c in target.columns if not c.internal]
        elif child.tag == "filter":
            link.filter = _filter(child, target, {})
        else:
            raise not_implemented(f"The FetchXML element <{child.tag}> inside <link-entity>")
    return link


def _check_aggregate(query: FetchQuery) -> None:
    if not query.attributes:
        raise bad_request("An aggregate FetchXML query lists its aggregate and groupby attributes.")
    if query.links:
        raise not_implemented("A link-entity in an aggregate FetchXML query")
    if query.paging_cookie is not None:
        raise bad_request("An aggregate FetchXML query cannot be paged with a paging cookie.")
    for attribute in query.attributes:
        if not attribute.alias:
            raise bad_request(f"The aggregate attribute '{attribute.column.logical_name}' needs an alias.")
        if not attribute.aggregate and not attribute.groupby:
            raise bad_request(
                f"In an aggregate query every attribute is an aggregate or a groupby; "
                f"'{attribute.column.logical_name}' is neither."
            )
    aliases = {a.alias for a in query.attributes}
    for order in query.orders:
        if order.alias is None or order.alias not in aliases:
            raise bad_request("An aggregate FetchXML query orders by the alias of one of its attributes.")
