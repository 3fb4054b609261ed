"""``GET <entity set>?sql=SELECT ...``: the read-only SQL subset Microsoft's Python SDK sends, as FetchXML.

Dataverse answers a single ``SELECT`` over the Web API; the SDK (``client.query.sql``) checks the
text before sending it (no writes, subqueries, CTEs, UNION, HAVING or ``SELECT *``). The sandbox
reads that subset and turns it into the same checked :class:`FetchQuery` a FetchXML document
becomes, so both run on one engine:

``SELECT [TOP n] <columns | COUNT(*) | COUNT/SUM/AVG/MIN/MAX(col) [AS alias]> FROM <table> [alias]
[INNER|LEFT [OUTER] JOIN <table> <alias> ON <a>.<lookup> = <b>.<primary key>] [WHERE <conditions>]
[GROUP BY <columns>] [ORDER BY <column|alias> [ASC|DESC], ...]`` with ``= <> != < <= > >=``,
``[NOT] LIKE``, ``[NOT] IN (...)``, ``IS [NOT] NULL``, ``[NOT] BETWEEN``, ``AND``, ``OR`` and
parentheses. Anything else is a 501 naming it; an unknown table or column is the FetchXML 400.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from connector.sandbox.faults import bad_request, not_implemented
from connector.sandbox.fetchxml.parse import (
    Condition,
    FetchAttribute,
    FetchQuery,
    Filter,
    Link,
    Order,
    column_of,
)
from connector.sandbox.schema import Column, Table

__all__ = ["parse_sql"]

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+(?:\.\d+)?)|(?P<op><>|!=|<=|>=|[=<>(),.*])"
    r"|(?P<word>[A-Za-z_][\w]*)|(?P<bad>\S))"
)
_KEYWORDS = frozenset(
    {"select", "top", "from", "where", "and", "or", "not", "like", "in", "is", "null", "between", "order",
     "by", "asc", "desc", "group", "as", "join", "inner", "left", "outer", "on", "distinct"}
)  # fmt: skip
_REFUSED = frozenset(
    {
        "insert",
        "update",
        "delete",
        "union",
        "having",
        "with",
        "exists",
        "case",
        "offset",
        "right",
        "full",
        "cross",
    }
)
_AGGREGATES = {"count": "count", "sum": "sum", "avg": "avg", "min": "min", "max": "max"}
_COMPARE = {"=": "eq", "<>": "ne", "!=": "ne", "<": "lt", "<=": "le", ">": "gt", ">=": "ge"}


@dataclass
class _Tok:
    kind: str
    text: str

    @property
    def word(self) -> str:
        return self.text.lower() if self.kind == "word" else ""


def _tokens(sql: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(sql):
        m = _TOKEN.match(sql, pos)
        if not m or m.end() == pos:
            break
        pos = m.end()
        kind = m.lastgroup or "bad"
        if kind == "bad":
            raise bad_request(f"Syntax error in sql near '{m.group(kind)}'.")
        out.append(_Tok(kind, m.group(kind)))
        if kind == "word" and out[-1].word in _REFUSED:
            raise not_implemented(f"SQL {out[-1].text.upper()}")
    return out


class _Parser:
    def __init__(self, sql: str, table: Table, tables: dict[str, Table]):
        self.toks = _tokens(sql)
        self.i = 0
        self.table = table
        self.tables = tables
        self.aliases: dict[str, Table] = {}
        self.links: dict[str, Link] = {}

    # --- token helpers ---
    def peek(self, offset: int = 0) -> _Tok | None:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise bad_request("The sql statement ends too early.")
        self.i += 1
        return tok

    def accept(self, *words: str) -> bool:
        tok = self.peek()
        if tok is not None and (tok.word in words or (tok.kind == "op" and tok.text in words)):
            self.i += 1
            return True
        return False

    def expect(self, word: str) -> None:
        if not self.accept(word):
            tok = self.peek()
            raise bad_request(
                f"Syntax error in sql: expected {word.upper()}, found '{tok.text if tok else 'end'}'."
            )

    def name(self) -> str:
        tok = self.take()
        if tok.kind != "word" or tok.word in _KEYWORDS:
            raise bad_request(f"Syntax error in sql: expected a name, found '{tok.text}'.")
        return tok.text.lower()

    # --- grammar ---
    def parse(self) -> FetchQuery:
        self.expect("select")
        if self.accept("distinct"):
            raise not_implemented("SQL SELECT DISTINCT")
        top = None
        if self.accept("top"):
            tok = self.take()
            if tok.kind != "number" or not tok.text.isdigit():
                raise bad_request("TOP takes a whole number.")
            top = int(tok.text)
        items = self.select_list()
        self.expect("from")
        self.from_clause()
        query = FetchQuery(self.table, [], None, [], list(self.links.values()), top=top)
        if self.accept("where"):
            query.filter = self.or_expr()
        groups: list[tuple[str | None, str]] = []
        if self.accept("group"):
            self.expect("by")
            groups.append(self.column_ref())
            while self.accept(","):
                groups.append(self.column_ref())
        if self.accept("order"):
            self.expect("by")
            query.orders.append(self.order_item())
            while self.accept(","):
                query.orders.append(self.order_item())
        if self.peek() is not None:
            raise bad_request(f"Syntax error in sql near '{self.peek().text}'.")  # type: ignore[union-attr]
        self.attributes(query, items, groups)
        return query

    def select_list(self) -> list[tuple[str | None, str | None, str, str | None]]:
        """(aggregate, owner alias, column or '*', alias) per selected item."""
        items = [self.select_item()]
        while self.accept(","):
            items.append(self.select_item())
        return items

    def select_item(self) -> tuple[str | None, str | None, str, str | None]:
        tok = self.peek()
        if tok is not None and tok.text == "*":
            raise bad_request("SELECT * is not supported; name the columns.")
        aggregate = None
        if (
            tok is not None
            and tok.word in _AGGREGATES
            and (nxt := self.peek(1)) is not None
            and nxt.text == "("
        ):
            self.i += 2
            aggregate = _AGGREGATES[tok.word]
            if self.accept("*"):
                owner, column = None, "*"
                if aggregate != "count":
                    raise bad_request(f"{tok.text.upper()}(*) is not valid; name a column.")
            else:
                if self.accept("distinct"):
                    raise not_implemented("SQL COUNT(DISTINCT ...)")
                owner, column = self.column_ref()
                if aggregate == "count":
                    aggregate = "countcolumn"
            self.expect(")")
        else:
            owner, column = self.column_ref()
        alias = None
        if self.accept("as"):
            alias = self.name()
        return aggregate, owner, column, alias

    def column_ref(self) -> tuple[str | None, str]:
        first = self.name()
        if self.accept("."):
            return first, self.name()
        return None, first

    def from_clause(self) -> None:
        name = self.name()
        if name != self.table.logical_name:
            raise bad_request(
                f"The table '{name}' in the sql does not match the entity set "
                f"'{self.table.entity_set}' of the request."
            )
        self.aliases[name] = self.table
        tok = self.peek()
        if tok is not None and tok.kind == "word" and tok.word not in _KEYWORDS:
            self.aliases[self.name()] = self.table
        while True:
            outer = False
            if self.accept("left"):
                outer = True
                self.accept("outer")
                self.expect("join")
            elif self.accept("inner"):
                self.expect("join")
            elif not self.accept("join"):
                return
            self.join(outer)

    def join(self, outer: bool) -> None:
        name = self.name()
        target = self.tables.get(name)
        if target is None:
            raise bad_request(f"The table '{name}' of a JOIN is not served by the sandbox.")
        alias = name
        if self.peek() is not None and self.peek().word not in _KEYWORDS:  # type: ignore[union-attr]
            alias = self.name()
        self.expect("on")
        left, right = self.column_ref(), self.column_ref_after("=")
        # ON main.lookup = joined.primary key, in either order.
        if left[0] == alias:
            left, right = right, left
        if (
            right[0] != alias
            or right[1] != target.primary_id
            or self.aliases.get(left[0] or "") is not self.table
        ):
            raise not_implemented(
                "A JOIN other than along a lookup of the queried table "
                "(ON <table>.<lookup> = <joined>.<primary key>)"
            )
        lookup = column_of(self.table, left[1])
        if not lookup.is_lookup or name not in lookup.targets:
            raise not_implemented(f"A JOIN on '{left[1]}', which is not a lookup to '{name}'")
        self.links[alias] = Link(target, lookup, alias, outer)

    def column_ref_after(self, op: str) -> tuple[str | None, str]:
        self.expect(op)
        return self.column_ref()

    def or_expr(self) -> Filter:
        parts = [self.and_expr()]
        while self.accept("or"):
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else Filter("or", list(parts))

    def and_expr(self) -> Filter:
        parts: list[Condition | Filter] = [self.primary()]
        while self.accept("and"):
            parts.append(self.primary())
        if len(parts) == 1 and isinstance(parts[0], Filter):
            return parts[0]
        return Filter("and", parts)

    def primary(self) -> Condition | Filter:
        if self.accept("("):
            inner = self.or_expr()
            self.expect(")")
            return inner
        if self.accept("not"):
            raise not_implemented("SQL NOT before a condition (use <>, NOT LIKE, NOT IN or IS NOT NULL)")
        owner, name = self.column_ref()
        column = self.resolve(owner, name)
        alias = owner if owner in self.links else None
        if self.accept("is"):
            negate = self.accept("not")
            self.expect("null")
            return Condition(column, "not-null" if negate else "null", [], alias)
        negate = self.accept("not")
        if self.accept("like"):
            return Condition(column, "not-like" if negate else "like", [self.literal()], alias)
        if self.accept("in"):
            self.expect("(")
            values = [self.literal()]
            while self.accept(","):
                values.append(self.literal())
            self.expect(")")
            return Condition(column, "not-in" if negate else "in", values, alias)
        if self.accept("between"):
            low = self.literal()
            self.expect("and")
            return Condition(column, "not-between" if negate else "between", [low, self.literal()], alias)
        if negate:
            raise bad_request("Syntax error in sql: NOT must be followed by LIKE, IN or BETWEEN here.")
        tok = self.take()
        if tok.kind != "op" or tok.text not in _COMPARE:
            raise bad_request(f"Syntax error in sql: expected a comparison, found '{tok.text}'.")
        return Condition(column, _COMPARE[tok.text], [self.literal()], alias)

    def literal(self) -> str:
        tok = self.take()
        if tok.kind == "string":
            return tok.text[1:-1].replace("''", "'")
        if tok.kind == "number":
            return tok.text
        if tok.word in ("true", "false"):
            return tok.word
        raise bad_request(f"Syntax error in sql: expected a literal, found '{tok.text}'.")

    def resolve(self, owner: str | None, name: str) -> Column:
        if owner is None or self.aliases.get(owner) is self.table:
            return column_of(self.table, name)
        if owner in self.links:
            return column_of(self.links[owner].table, name)
        raise bad_request(f"'{owner}' is not a table or alias of the sql statement.")

    def order_item(self) -> Order:
        owner, name = self.column_ref()
        descending = self.accept("desc")
        if not descending:
            self.accept("asc")
        if owner is not None and owner in self.links:
            raise not_implemented("ORDER BY a column of a joined table")
        if owner is None and name not in self.table.column_map():
            return Order(None, name, descending)  # an aggregate's alias, checked once the query is read
        return Order(self.resolve(owner, name), None, descending)

    def attributes(
        self, query: FetchQuery, items: list[tuple[str | None, str | None, str, str | None]], groups: list
    ) -> None:
        query.aggregate = bool(groups) or any(agg for agg, *_ in items)
        for aggregate, owner, name, alias in items:
            if owner is not None and owner in self.links:
                if query.aggregate:
                    raise not_implemented("A joined table's column in an aggregate sql query")
                self.links[owner].attributes.append(self.resolve(owner, name))
                continue
            column = (
                self.table.column_map()[self.table.primary_id] if name == "*" else self.resolve(owner, name)
            )
            grouped = any(g[1] == name for g in groups)
            if query.aggregate and not aggregate and not grouped:
                raise bad_request(f"'{name}' must be in GROUP BY or inside an aggregate function.")
            if not query.aggregate:
                query.attributes.append(FetchAttribute(column, alias))  # type: ignore[union-attr]
                continue
            # FetchXML needs an alias on every aggregate column; SQL's default is the column name.
            default = name if grouped else f"{aggregate}_{'all' if name == '*' else name}"
            query.attributes.append(FetchAttribute(column, alias or default, aggregate, grouped))  # type: ignore[union-attr]
        if query.aggregate:
            aliases = {a.alias for a in query.attributes or []}
            for order in query.orders:
                if order.column is not None:
                    match = next(
                        (a.alias for a in query.attributes or [] if a.groupby and a.column is order.column),
                        None,
                    )
                    order.alias, order.column = match, None
                if order.alias not in aliases:
                    raise bad_request(
                        "An aggregate sql query orders by a grouped column or an aggregate's alias."
                    )
        else:
            for order in query.orders:
                if order.column is None:
                    raise bad_request(f"'{order.alias}' is not a column of '{self.table.logical_name}'.")


def parse_sql(sql: str, table: Table, tables: dict[str, Table]) -> FetchQuery:
    """Read the SDK's SQL subset for ``table`` into a :class:`FetchQuery`.

    Raises:
        ApiError: 400 for a syntax error or unknown name, 501 for SQL outside the subset.
    """
    if not sql.strip():
        raise bad_request("The sql query parameter is empty.")
    return _Parser(sql.strip().rstrip(";"), table, tables).parse()
