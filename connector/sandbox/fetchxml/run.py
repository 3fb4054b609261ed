"""Run a parsed FetchXML query against the store and shape the Web API answer (reference §3.8).

Records come back in the Web API's shape (``@odata.etag``, lookups as ``_x_value``, annotations
when ``Prefer`` asks for them) with null columns omitted, as FetchXML results are. Link-entity
columns are named ``<alias>.<column>``. Paging follows FetchXML's rules: ``count`` rows per page
(at most 5,000), ``page`` alone pages by position, ``paging-cookie`` pages by the last row's sort
key and id (the cookie carries them, like Dataverse's). The next page's cookie is served as
``@Microsoft.Dynamics.CRM.fetchxmlpagingcookie`` (double URL-encoded inside a ``<cookie>``
element) with ``@Microsoft.Dynamics.CRM.morerecords``, only when asked for, and neither is present
on the last page. Aggregates (count, countcolumn, sum, avg, min, max, ``groupby``) are limited to
50,000 source rows, as in Dataverse.
"""

from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET
from datetime import datetime
from html import escape
from urllib.parse import quote

from connector.sandbox.conditions import compile_condition
from connector.sandbox.faults import ApiError, bad_request
from connector.sandbox.fetchxml.parse import Condition, FetchQuery, Filter, column_of
from connector.sandbox.paging import keyset_after
from connector.sandbox.protocol import COUNT_EXCEEDED, TOTAL_COUNT, AnnotationFilter
from connector.sandbox.query import COUNT_CAP, RecordWriter
from connector.sandbox.schema import Table

__all__ = ["MORE_RECORDS", "PAGING_COOKIE", "run_fetch"]

PAGING_COOKIE = "Microsoft.Dynamics.CRM.fetchxmlpagingcookie"
MORE_RECORDS = "Microsoft.Dynamics.CRM.morerecords"
MAX_PAGE = 5000
SIMPLE_PAGING_LIMIT = 50_000  # §3.8: paging without a cookie works up to 50,000 records
AGGREGATE_LIMIT = 50_000
_MAIN = "t0"


def run_fetch(
    conn: sqlite3.Connection,
    tables: dict[str, Table],
    query: FetchQuery,
    annotations: AnnotationFilter,
    now: datetime,
) -> dict:
    """Execute ``query``; return the body's annotations and ``value`` (without ``@odata.context``)."""
    where, params = _where(query, now)
    if query.aggregate:
        return {"value": _aggregate(conn, query, where, params)}
    joins = _joins(query, now)
    table = query.table
    order = [(f'"{_MAIN}"."{o.column.logical_name}"', o.descending) for o in query.orders if o.column]
    order.append((f'"{_MAIN}"."{table.primary_id}"', False))
    size = query.top if query.top is not None else (query.count or MAX_PAGE)
    conditions, cond_params = ([where], list(params)) if where else ([], [])
    offset = 0
    if query.paging_cookie:
        last = _read_cookie(query.paging_cookie, query, order)
        after, after_params = keyset_after(order, last)
        conditions.append(after)
        cond_params.extend(after_params)
    elif query.top is None:
        offset = (query.page - 1) * size
        if offset + size > SIMPLE_PAGING_LIMIT:
            raise bad_request(
                f"Paging without a paging cookie is limited to {SIMPLE_PAGING_LIMIT:,} records; "
                "send the paging-cookie returned with the previous page."
            )
    keys = ", ".join(col for col, _ in order)
    sql = f'SELECT {keys} FROM "{table.logical_name}" AS "{_MAIN}" {joins.sql}'
    if conditions:
        sql += " WHERE " + " AND ".join(f"({c})" for c in conditions)
    sql += " ORDER BY " + ", ".join(f"{col} {'DESC' if desc else 'ASC'}" for col, desc in order)
    sql += f" LIMIT {size + 1} OFFSET {offset}"
    rows = conn.execute(sql, [*joins.params, *cond_params]).fetchall()
    more = len(rows) > size and query.top is None
    rows = rows[:size]
    ids = [row[-1] for row in rows]
    records = _records(conn, tables, query, annotations, ids)
    _attach_links(conn, query, joins.sql, joins.params, ids, records)
    body: dict[str, object] = {}
    if query.total_count and annotations.wants(TOTAL_COUNT):
        count_sql = f'SELECT COUNT(*) FROM (SELECT 1 FROM "{table.logical_name}" AS "{_MAIN}" {joins.sql}'
        count_sql += f" WHERE {where}" if where else ""
        total = conn.execute(count_sql + f" LIMIT {COUNT_CAP + 1})", [*joins.params, *params]).fetchone()[0]
        body[f"@{TOTAL_COUNT}"] = min(total, COUNT_CAP)
        if annotations.wants(COUNT_EXCEEDED):
            body[f"@{COUNT_EXCEEDED}"] = total > COUNT_CAP
    if more and annotations.wants(PAGING_COOKIE):
        body[f"@{PAGING_COOKIE}"] = _cookie(query, order, rows[-1])
    if more and annotations.wants(MORE_RECORDS):
        body[f"@{MORE_RECORDS}"] = True
    body["value"] = records
    return body


class _Joins:
    def __init__(self) -> None:
        self.sql = ""
        self.params: list = []


def _joins(query: FetchQuery, now: datetime) -> _Joins:
    """LEFT/INNER JOINs along the lookups; an outer link's own filter goes into its ON clause."""
    out = _Joins()
    for link in query.links:
        on = f'"{link.alias}"."{link.table.primary_id}" = "{_MAIN}"."{link.lookup.logical_name}"'
        type_column = link.lookup.type_column
        if type_column and type_column in query.table.column_map():
            on += f' AND "{_MAIN}"."{type_column}" = ?'
            out.params.append(link.table.logical_name)
        if link.filter is not None:
            fragment, fparams = _compile(link.filter, link.alias, now)
            if fragment:
                on += f" AND ({fragment})"
                out.params.extend(fparams)
        kind = "LEFT JOIN" if link.outer else "JOIN"
        out.sql += f' {kind} "{link.table.logical_name}" AS "{link.alias}" ON {on}'
    return out


def _where(query: FetchQuery, now: datetime) -> tuple[str, list]:
    if query.filter is None:
        return "", []
    return _compile(query.filter, _MAIN, now)


def _compile(node: Filter, alias: str, now: datetime) -> tuple[str, list]:
    parts: list[str] = []
    params: list = []
    for item in node.items:
        if isinstance(item, Filter):
            fragment, fparams = _compile(item, alias, now)
        else:
            fragment, fparams = _condition(item, alias, now)
        if fragment:
            parts.append(f"({fragment})")
            params.extend(fparams)
    joiner = " AND " if node.kind == "and" else " OR "
    return joiner.join(parts), params


def _condition(item: Condition, alias: str, now: datetime) -> tuple[str, list]:
    owner = item.alias or alias
    ref = f'"{owner}"."{item.column.logical_name}"'
    return compile_condition(ref, item.column, item.column.entity, item.operator, item.values, now)


def _records(
    conn: sqlite3.Connection,
    tables: dict[str, Table],
    query: FetchQuery,
    annotations: AnnotationFilter,
    ids: list[str],
) -> list[dict]:
    table = query.table
    select = None if query.attributes is None else [a.column for a in query.attributes]
    writer = RecordWriter(tables, table, select, annotations)
    found: dict[str, dict] = {}
    for start in range(0, len(ids), 900):
        chunk = ids[start : start + 900]
        sql = (
            f'SELECT {writer.select_sql()} FROM "{table.logical_name}" '
            f'WHERE "{table.primary_id}" IN ({",".join("?" * len(chunk))})'
        )
        for record in writer.records(conn, conn.execute(sql, chunk).fetchall()):
            found[str(record[table.primary_id])] = _without_nulls(record)
    return [found[i] for i in ids if i in found]


def _without_nulls(record: dict) -> dict:
    """FetchXML results leave out null columns (and so their annotations)."""
    nulls = {k for k, v in record.items() if v is None}
    return {k: v for k, v in record.items() if k not in nulls and k.split("@", 1)[0] not in nulls}


def _attach_links(
    conn: sqlite3.Connection,
    query: FetchQuery,
    joins: str,
    join_params: list,
    ids: list[str],
    records: list[dict],
) -> None:
    wanted = [(link, column) for link in query.links for column in link.attributes]
    if not wanted or not ids:
        return
    table = query.table
    cols = ", ".join(f'"{link.alias}"."{column.logical_name}"' for link, column in wanted)
    by_id: dict[str, tuple] = {}
    for start in range(0, len(ids), 900):
        chunk = ids[start : start + 900]
        sql = (
            f'SELECT "{_MAIN}"."{table.primary_id}", {cols} FROM "{table.logical_name}" AS "{_MAIN}" {joins} '
            f'WHERE "{_MAIN}"."{table.primary_id}" IN ({",".join("?" * len(chunk))})'
        )
        for row in conn.execute(sql, [*join_params, *chunk]):
            by_id[row[0]] = row[1:]
    for record in records:
        row = by_id.get(str(record[table.primary_id]))
        if row is None:
            continue
        for (link, column), value in zip(wanted, row, strict=True):
            if value is not None:
                if column.attribute_type == "Boolean":
                    value = bool(value)
                record[f"{link.alias}.{column.logical_name}"] = value


def _cookie(query: FetchQuery, order: list[tuple[str, bool]], last_row: tuple) -> str:
    """The next page's cookie: Dataverse's shape, with the last row's sort values and id."""
    names = [o.column.logical_name for o in query.orders if o.column] + [query.table.primary_id]
    inner = f'<cookie page="{query.page}">'
    for name, value in zip(names, last_row, strict=True):
        inner += f"<{name}" + (f' last="{escape(str(value))}"' if value is not None else "") + " />"
    inner += "</cookie>"
    encoded = quote(quote(inner, safe=""), safe="")
    return f'<cookie pagenumber="{query.page + 1}" pagingcookie="{encoded}" istracking="False" />'


def _read_cookie(text: str, query: FetchQuery, order: list[tuple[str, bool]]) -> list:
    """The last row's sort values from a paging cookie this query's previous page returned."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise bad_request(
            "The paging-cookie is not well-formed: send the cookie from the previous page."
        ) from exc
    names = [o.column.logical_name for o in query.orders if o.column] + [query.table.primary_id]
    children = list(root)
    if root.tag != "cookie" or [c.tag for c in children] != names:
        raise bad_request(
            "The paging-cookie does not match this query's order: send the previous page's cookie."
        )
    values = []
    for child in children:
        value = child.get("last")
        column = column_of(query.table, child.tag)
        if value is not None and column.attribute_type in (
            "Integer",
            "BigInt",
            "Picklist",
            "State",
            "Status",
            "Boolean",
        ):
            value = int(value)  # type: ignore[assignment]
        elif value is not None and column.attribute_type in ("Decimal", "Double", "Money"):
            value = float(value)  # type: ignore[assignment]
        values.append(value)
    return values


def _aggregate(conn: sqlite3.Connection, query: FetchQuery, where: str, params: list) -> list[dict]:
    table = query.table
    source = f'FROM "{table.logical_name}" AS "{_MAIN}"' + (f" WHERE {where}" if where else "")
    matched = conn.execute(f"SELECT COUNT(*) FROM (SELECT 1 {source} LIMIT {AGGREGATE_LIMIT + 1})", params)
    if matched.fetchone()[0] > AGGREGATE_LIMIT:
        raise ApiError(
            400, "0x8004E023", "AggregateQueryRecordLimit exceeded. Cannot perform this operation."
        )
    select, groups = [], []
    attributes = query.attributes or []
    for attribute in attributes:
        ref = f'"{_MAIN}"."{attribute.column.logical_name}"'
        if attribute.groupby:
            select.append(ref)
            groups.append(ref)
        elif attribute.aggregate == "count":
            select.append("COUNT(*)")
        elif attribute.aggregate == "countcolumn":
            select.append(f"COUNT(DISTINCT {ref})" if attribute.distinct else f"COUNT({ref})")
        else:
            if attribute.column.attribute_type not in ("Integer", "BigInt", "Decimal", "Double", "Money"):
                raise bad_request(
                    f"The aggregate '{attribute.aggregate}' needs a number column, "
                    f"not '{attribute.column.logical_name}'."
                )
            select.append(f"{attribute.aggregate.upper()}({ref})")  # type: ignore[union-attr]
    sql = f"SELECT {', '.join(select)} {source}"
    if groups:
        sql += " GROUP BY " + ", ".join(groups)
    by_alias = {a.alias: i + 1 for i, a in enumerate(attributes)}
    if query.orders:
        sql += " ORDER BY " + ", ".join(
            f"{by_alias[o.alias]} {'DESC' if o.descending else 'ASC'}" for o in query.orders
        )
    out = []
    for row in conn.execute(sql, params):
        record = {}
        for attribute, value in zip(attributes, row, strict=True):
            if value is None:
                continue
            if attribute.column.attribute_type == "Boolean" and attribute.groupby:
                value = bool(value)
            record[str(attribute.alias)] = value
        out.append(record)
    return out
