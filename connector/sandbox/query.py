"""Reading records: query options, record serialisation with annotations, collection pages.

Follows ``../shared/dataverse-webapi.md`` §3: ``$select`` (primary key always returned; money
columns bring ``_transactioncurrencyid_value``), ``$filter`` (see :mod:`filters`), ``$orderby``,
``$top`` (ignored when ``odata.maxpagesize`` is sent), ``$count`` (capped at 5,000 with
``totalrecordcountlimitexceeded``), ``$skip``/``$search``/``$format`` refused, lookups served as
``_<name>_value``, ``@odata.etag`` as ``W/"<versionnumber>"``, annotations only when
``Prefer: odata.include-annotations`` matches them.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import parse_qsl, quote

from connector.sandbox.faults import ApiError, bad_request, unknown_property
from connector.sandbox.filters import CompiledFilter, compile_filter
from connector.sandbox.paging import decode_skiptoken, encode_skiptoken, keyset_after
from connector.sandbox.protocol import (
    COUNT_EXCEEDED,
    FORMATTED,
    LOOKUP_NAME,
    NAV_PROPERTY,
    TOTAL_COUNT,
    AnnotationFilter,
    split_top_level,
)
from connector.sandbox.schema import UNSERVED_NAMES, Column, Table

__all__ = ["COUNT_CAP", "QueryOptions", "RecordWriter", "parse_options", "read_page"]

COUNT_CAP = 5000
_SUPPORTED = {"$select", "$filter", "$orderby", "$top", "$count", "$skiptoken", "$deltatoken", "$expand"}
_UNSUPPORTED = {"$skip", "$search", "$format", "$apply", "$compute", "$levels", "$index", "$schemaversion"}


@dataclass
class QueryOptions:
    """The parsed query options of one request."""

    select: list[Column] | None
    filter_text: str | None
    filter: CompiledFilter | None
    orderby: list[tuple[Column, bool]]
    top: int | None
    count: bool
    skiptoken: str | None
    deltatoken: str | None
    raw_pairs: list[tuple[str, str]]
    expand: list[Expansion] = field(default_factory=list)


@dataclass
class Expansion:
    """One single-valued ``$expand``: a lookup's navigation property and the related columns."""

    nav: str
    column: Column
    target: Table
    select: list[Column] | None


def _parse_expand(text: str, table: Table, tables: dict[str, Table]) -> list[Expansion]:
    """Parse ``nav($select=a,b),nav2`` for many-to-one lookups (§3.5)."""
    navs: dict[str, tuple[Column, str]] = {}
    for column in table.columns:
        for nav, target in column.navigation_properties().items():
            navs[nav] = (column, target)
    out: list[Expansion] = []
    items = [part for part in split_top_level(text) if part]
    if len(items) > 15:
        raise bad_request("The query has more than 15 $expand options; Dataverse allows at most 15.")
    for item in items:
        m = re.fullmatch(r"(\w+)(?:\((.*)\))?", item, re.DOTALL)
        if not m:
            raise bad_request(f"Syntax error in $expand '{text}'.")
        nav, inner = m.group(1), m.group(2)
        if nav not in navs:
            raise bad_request(
                f"Could not find a property named '{nav}' on type "
                f"'Microsoft.Dynamics.CRM.{table.logical_name}'. "
                "The sandbox expands single-valued lookups (for example parentaccountid or "
                "customerid_account)."
            )
        column, target_name = navs[nav]
        target = tables.get(target_name)
        if target is None:
            raise bad_request(
                f"The sandbox does not serve '{target_name}' records, so '{nav}' cannot be expanded."
            )
        select = None
        for option in (inner or "").split(";"):
            if not option.strip():
                continue
            key, _, value = option.partition("=")
            key = key.strip()
            if key != "$select":
                raise ApiError(
                    400,
                    "0x80060888",
                    "Only $select and $filter clause can be provided while doing $expand on many-to-one "
                    "relationship or nested one-to-many relationship."
                    if key in ("$top", "$orderby", "$expand", "$filter")
                    else f"The query option {key} is not allowed inside $expand.",
                )
            by_wire = {c.wire_name: c for c in target.columns if not c.internal}
            select = []
            for name in _split_list(value):
                if name not in by_wire:
                    raise unknown_property(name, target.logical_name)
                select.append(by_wire[name])
        out.append(Expansion(nav, column, target, select))
    return out


def _split_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _substitute_aliases(text: str, aliases: dict[str, str]) -> str:
    """Replace ``@p1`` parameter aliases outside string literals (§3.1)."""
    if not aliases:
        return text
    out, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "'":
            j = i + 1
            while j < n and not (text[j] == "'" and (j + 1 >= n or text[j + 1] != "'")):
                j += 2 if text[j] == "'" else 1
            out.append(text[i : j + 1])
            i = j + 1
            continue
        m = re.match(r"@(\w+)", text[i:]) if ch == "@" else None
        if m and m.group(0) in aliases:
            out.append(aliases[m.group(0)])
            i += m.end()
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def parse_options(
    query: str, table: Table, now: datetime, tables: dict[str, Table] | None = None
) -> QueryOptions:
    """Parse and validate a query string against a table.

    Raises:
        ApiError: 400 for unsupported options, unknown columns or a bad filter.
    """
    pairs = parse_qsl(query, keep_blank_values=True)
    options: dict[str, str] = {}
    aliases: dict[str, str] = {}
    for name, value in pairs:
        if name.startswith("@"):
            aliases[name] = value
            continue
        if name in _UNSUPPORTED or not name.startswith("$"):
            # A custom parameter the sandbox does not implement is refused, never ignored: ignoring
            # it would answer as if the client's request (fetchXml on a record, sql, ...) were honoured.
            raise bad_request(f"The query parameter {name} is not supported")
        if name.startswith("$") and name not in _SUPPORTED:
            lowered = name.lower()
            if lowered in _SUPPORTED or lowered in _UNSUPPORTED:
                # Query option names are case-sensitive in Dataverse (§1.1).
                raise bad_request(
                    f"The query parameter {name} is not supported. Query option names are case-sensitive."
                )
            raise bad_request(f"The query parameter {name} is not supported")
        if name in options:
            raise bad_request(
                f"Query option '{name}' was specified more than once, but it must be specified at most once."
            )
        options[name] = value
    # Internal attributes (a polymorphic lookup's EntityName companion) are no properties of the
    # entity type: naming them anywhere in the query is Dataverse's "Could not find a property".
    columns = {name: c for name, c in table.column_map().items() if not c.internal}
    by_wire = {c.wire_name: c for c in columns.values()}

    select = None
    if "$select" in options:
        select = []
        for name in _split_list(options["$select"]):
            column = by_wire.get(name)
            if column is None:
                raise unknown_property(name, table.logical_name)
            if column not in select:
                select.append(column)
    compiled = None
    filter_text = options.get("$filter")
    if filter_text is not None:
        compiled = compile_filter(
            _substitute_aliases(filter_text, aliases), table.logical_name, columns, now, tables
        )
    orderby: list[tuple[Column, bool]] = []
    for part in _split_list(options.get("$orderby", "")):
        bits = part.split()
        if len(bits) > 2 or (len(bits) == 2 and bits[1] not in ("asc", "desc")):
            raise bad_request(
                f"Syntax error in $orderby '{options['$orderby']}': expected '<property> [asc|desc]'."
            )
        column = by_wire.get(bits[0])
        if column is None:
            raise unknown_property(bits[0], table.logical_name)
        orderby.append((column, len(bits) == 2 and bits[1] == "desc"))
    top = None
    if "$top" in options:
        try:
            top = int(options["$top"])
        except ValueError as exc:
            raise bad_request(f"Invalid value '{options['$top']}' for $top query option found.") from exc
        if top < 0:
            raise bad_request(f"Invalid value '{options['$top']}' for $top query option found.")
    count_text = options.get("$count", "false")
    if count_text not in ("true", "false"):
        raise bad_request(f"'{count_text}' is not a valid count option.")
    expand = _parse_expand(options["$expand"], table, tables or {}) if "$expand" in options else []
    return QueryOptions(
        expand=expand,
        select=select,
        filter_text=filter_text,
        filter=compiled,
        orderby=orderby,
        top=top,
        count=count_text == "true",
        skiptoken=options.get("$skiptoken"),
        deltatoken=options.get("$deltatoken"),
        raw_pairs=pairs,
    )


def strip_query(query: str, *names: str) -> str:
    """Return the raw query string without the given options, keeping the client's encoding."""
    kept = []
    for part in query.split("&") if query else []:
        key = part.split("=", 1)[0]
        if key.replace("%24", "$") in names:
            continue
        kept.append(part)
    return "&".join(kept)


def link(service_root: str, entity_set: str, query: str, name: str, token: str) -> str:
    """Build a next/delta link: the original query plus one token option."""
    base = f"{service_root}{entity_set}?"
    if query:
        base += query + "&"
    return base + f"{name}=" + quote(token, safe="")


# --- serialisation ------------------------------------------------------------------------------


def _format_value(column: Column, value: object) -> str | None:
    t = column.attribute_type
    if t in ("Picklist", "State", "Status", "Boolean"):
        return column.options.get(int(value), str(value))  # type: ignore[arg-type]
    if t == "Money":
        v = float(value)  # type: ignore[arg-type]
        return f"-${abs(v):,.2f}" if v < 0 else f"${v:,.2f}"
    if t in ("Decimal", "Double"):
        return f"{float(value):,.{column.precision if column.precision is not None else 2}f}"  # type: ignore[arg-type]
    if t == "Integer":
        return f"{int(value):,}"  # type: ignore[arg-type]
    if t == "DateTime":
        text = str(value)
        if column.date_format == "DateOnly" or len(text) == 10:
            d = datetime.fromisoformat(text[:10])
            return f"{d.month}/{d.day}/{d.year}"
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        hour = moment.hour % 12 or 12
        half = "AM" if moment.hour < 12 else "PM"
        return f"{moment.month}/{moment.day}/{moment.year} {hour}:{moment.minute:02d} {half}"
    return None


class RecordWriter:
    """Turns SQLite rows of one table into Web API JSON records.

    Args:
        store_tables: logical name → table (for the names of looked-up records).
        table: the table being served.
        select: the selected columns, or None for all.
        annotations: what ``odata.include-annotations`` asked for.
    """

    def __init__(
        self,
        store_tables: dict[str, Table],
        table: Table,
        select: list[Column] | None,
        annotations: AnnotationFilter,
        expand: list[Expansion] | None = None,
    ):
        self.tables = store_tables
        self.table = table
        self.annotations = annotations
        columns = table.column_map()
        pk = columns[table.primary_id]
        chosen = (
            list(select)
            if select is not None
            else [c for c in table.columns if c is not pk and not c.internal]
        )
        chosen = [c for c in chosen if c.logical_name != table.primary_id]
        if any(c.attribute_type == "Money" for c in chosen) and "transactioncurrencyid" in columns:
            currency = columns["transactioncurrencyid"]
            if currency not in chosen:
                chosen.append(currency)
        self.output = [*chosen, pk]
        self.want_formatted = annotations.wants(FORMATTED)
        self.want_lookup_name = annotations.wants(LOOKUP_NAME)
        self.want_nav = annotations.wants(NAV_PROPERTY)
        # SQL columns: version, the output columns, then polymorphic type columns for annotations.
        sql_cols = ["versionnumber", *(c.logical_name for c in self.output)]
        self._type_index: dict[str, int] = {}
        for c in self.output:
            tc = c.type_column
            if c.is_lookup and tc and tc in columns:
                self._type_index[c.logical_name] = len(sql_cols)
                sql_cols.append(tc)
        # Expanded lookups need the lookup id (and its type) even when not selected.
        self.expand = list(expand or [])
        self._expand_index: dict[str, tuple[int, int | None]] = {}
        for exp in self.expand:
            key = exp.column.logical_name
            if key not in sql_cols:
                sql_cols.append(key)
            tc = exp.column.type_column
            if tc and tc in columns and tc not in sql_cols:
                sql_cols.append(tc)
            self._expand_index[exp.nav] = (
                sql_cols.index(key),
                sql_cols.index(tc) if tc in sql_cols else None,
            )
        self.sql_columns = sql_cols

    def select_sql(self) -> str:
        """The SELECT list for this writer's rows."""
        return ", ".join(f'"{c}"' for c in self.sql_columns)

    def context_suffix(self, select: list[Column] | None) -> str:
        """``(<cols>)`` for ``@odata.context`` when ``$select`` was given."""
        if select is None:
            return ""
        return "(" + ",".join(c.wire_name for c in select) + ")"

    def _target(self, column: Column, row: tuple) -> str:
        idx = self._type_index.get(column.logical_name)
        if idx is not None and row[idx]:
            return str(row[idx])
        return column.targets[0] if column.targets else ""

    def records(self, conn: sqlite3.Connection, rows: list[tuple]) -> list[dict]:
        """Serialise rows in Web API order: etag, annotated columns, primary key last."""
        names = self._lookup_names(conn, rows) if self.want_formatted else {}
        out = []
        lookups_polymorphic = {
            c.logical_name for c in self.output if c.attribute_type in ("Customer", "Owner")
        }
        for row in rows:
            rec: dict[str, object] = {"@odata.etag": f'W/"{row[0]}"'}
            for i, column in enumerate(self.output, start=1):
                value = row[i]
                wire = column.wire_name
                t = column.attribute_type
                if value is not None:
                    if t == "Boolean":
                        value = bool(value)
                    if self.want_formatted:
                        formatted = names.get(value) if column.is_lookup else _format_value(column, value)
                        if formatted is not None:
                            rec[f"{wire}@{FORMATTED}"] = formatted
                    if column.is_lookup:
                        if self.want_nav:
                            target = self._target(column, row)
                            if (
                                column.logical_name in lookups_polymorphic
                                and column.attribute_type == "Customer"
                            ):
                                nav = f"{column.logical_name}_{target}"
                            elif column.logical_name == "regardingobjectid":
                                nav = f"regardingobjectid_{target}_{self.table.logical_name}"
                            else:
                                nav = column.logical_name
                            rec[f"{wire}@{NAV_PROPERTY}"] = nav
                        if self.want_lookup_name:
                            rec[f"{wire}@{LOOKUP_NAME}"] = self._target(column, row)
                rec[wire] = value
            out.append(rec)
        for exp in self.expand:
            self._attach(conn, exp, rows, out)
        return out

    def _attach(self, conn: sqlite3.Connection, exp: Expansion, rows: list[tuple], out: list[dict]) -> None:
        """Add ``<nav>: {...}`` (or null) to each record, one query for the whole page."""
        id_index, type_index = self._expand_index[exp.nav]
        wanted = [
            row[id_index]
            if row[id_index] and (type_index is None or row[type_index] in (None, exp.target.logical_name))
            else None
            for row in rows
        ]
        ids = sorted({i for i in wanted if i})
        nested = RecordWriter(self.tables, exp.target, exp.select, AnnotationFilter(None))
        found: dict[str, dict] = {}
        pk = exp.target.primary_id
        for start in range(0, len(ids), 900):
            chunk = ids[start : start + 900]
            sql = (
                f'SELECT {nested.select_sql()} FROM "{exp.target.logical_name}" '
                f'WHERE "{pk}" IN ({",".join("?" * len(chunk))})'
            )
            for record in nested.records(conn, conn.execute(sql, chunk).fetchall()):
                record.pop("@odata.etag", None)
                found[str(record[pk])] = record
        for rec, record_id in zip(out, wanted, strict=True):
            rec[exp.nav] = found.get(record_id) if record_id else None

    def _lookup_names(self, conn: sqlite3.Connection, rows: list[tuple]) -> dict[str, str]:
        """Primary names of every record the page's lookups point at (one query per target table)."""
        wanted: dict[str, set[str]] = {}
        for i, column in enumerate(self.output, start=1):
            if not column.is_lookup:
                continue
            for row in rows:
                value = row[i]
                if value:
                    wanted.setdefault(self._target(column, row), set()).add(value)
        names: dict[str, str] = {}
        for target, ids in wanted.items():
            table = self.tables.get(target)
            if table is None:
                if target in UNSERVED_NAMES:
                    names.update(dict.fromkeys(ids, UNSERVED_NAMES[target]))
                continue
            id_list = list(ids)
            for start in range(0, len(id_list), 900):
                chunk = id_list[start : start + 900]
                marks = ",".join("?" * len(chunk))
                sql = (
                    f'SELECT "{table.primary_id}", "{table.primary_name}" FROM "{table.logical_name}" '
                    f'WHERE "{table.primary_id}" IN ({marks})'
                )
                for key, name in conn.execute(sql, chunk):
                    if name is not None:
                        names[key] = name
        return names


# --- pages --------------------------------------------------------------------------------------


@dataclass
class Page:
    """One page of a collection read."""

    records: list[dict]
    next_state: dict | None
    count: int | None = None


def count_rows(conn: sqlite3.Connection, table: Table, where: CompiledFilter | None) -> int:
    """Count matching rows, stopping just past the cap (the exact total beyond 5,000 is never needed)."""
    sql = f'SELECT COUNT(*) FROM (SELECT 1 FROM "{table.logical_name}"'
    params: list = []
    if where is not None:
        sql += f" WHERE {where.sql}"
        params = list(where.params)
    sql += f" LIMIT {COUNT_CAP + 1})"
    return int(conn.execute(sql, params).fetchone()[0])


def read_page(
    conn: sqlite3.Connection,
    table: Table,
    writer: RecordWriter,
    options: QueryOptions,
    page_size: int,
    state: dict | None,
    extra_where: tuple[str, list] | None = None,
) -> Page:
    """Read one keyset page.

    Args:
        conn: the connection to read with.
        table: the table.
        writer: serialiser for the selected columns.
        options: parsed query options ($filter and $orderby are applied).
        page_size: rows per page.
        state: the decoded skiptoken state (``{"k": [...last sort values...], "r": remaining}``).
        extra_where: an additional condition (change tracking's version bound).
    """
    order = [(f'"{c.logical_name}"', desc) for c, desc in options.orderby]
    order.append((f'"{table.primary_id}"', False))
    conditions: list[str] = []
    params: list = []
    if options.filter is not None:
        conditions.append(options.filter.sql)
        params.extend(options.filter.params)
    if extra_where is not None:
        conditions.append(extra_where[0])
        params.extend(extra_where[1])
    remaining = None
    if state is not None:
        cond, cond_params = keyset_after(order, list(state.get("k", [])))
        conditions.append(cond)
        params.extend(cond_params)
        remaining = state.get("r")
    elif options.top is not None:
        remaining = options.top
    limit = page_size if remaining is None else min(page_size, remaining)
    key_names = [c.logical_name for c, _ in options.orderby] + [table.primary_id]
    keys_sql = ", ".join(f'"{k}"' for k in key_names)
    sql = f'SELECT {writer.select_sql()}, {keys_sql} FROM "{table.logical_name}"'
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    sql += " ORDER BY " + ", ".join(f"{col} {'DESC' if desc else 'ASC'}" for col, desc in order)
    sql += f" LIMIT {limit + 1}"
    rows = conn.execute(sql, params).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    width = len(writer.sql_columns)
    next_state = None
    left = None if remaining is None else remaining - len(rows)
    if more and rows and (left is None or left > 0):
        next_state = {"k": list(rows[-1][width:])}
        if left is not None:
            next_state["r"] = left
    records = writer.records(conn, [r[:width] for r in rows])
    return Page(records, next_state)


def collection_payload(
    context: str,
    page: Page,
    next_link: str | None,
    count: int | None,
    annotations: AnnotationFilter,
    extra: dict | None = None,
) -> dict:
    """Assemble a collection body in Dataverse's key order (context, counts, value, nextLink)."""
    body: dict[str, object] = {"@odata.context": context}
    if count is not None:
        body["@odata.count"] = min(count, COUNT_CAP)
    if annotations.wants(TOTAL_COUNT):
        body[f"@{TOTAL_COUNT}"] = min(count, COUNT_CAP) if count is not None else -1
    if annotations.wants(COUNT_EXCEEDED):
        body[f"@{COUNT_EXCEEDED}"] = bool(count is not None and count > COUNT_CAP)
    if extra:
        body.update(extra)
    body["value"] = page.records
    if next_link:
        body["@odata.nextLink"] = next_link
    return body


def page_state(options: QueryOptions) -> tuple[dict | None, int]:
    """Decode the request's skiptoken, if any: (state, page number)."""
    if options.skiptoken is None:
        return None, 1
    return decode_skiptoken(options.skiptoken)


def next_token(state: dict, page: int, tracking: bool = False) -> str:
    """Encode the skiptoken for the following page."""
    return encode_skiptoken(state, page, tracking)
