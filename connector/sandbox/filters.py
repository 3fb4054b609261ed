"""``$filter`` text → a parameterised SQLite ``WHERE`` clause.

The OData expression itself is parsed by odata-query's lexer and parser (a maintained OData v4
grammar). Dataverse's own query functions, ``Microsoft.Dynamics.CRM.<Name>(PropertyName='x',
PropertyValue(s)=...)``, take a JSON array of double-quoted strings that the OData grammar cannot
read, so a small pre-pass lifts each call out of the text, replaces it with a placeholder
identifier, and compiles it here (``../shared/dataverse-webapi.md`` §3.4).

Semantics follow Dataverse: string comparison and ``contains``/``startswith``/``endswith`` are
case-insensitive (the text columns use ``COLLATE NOCASE``; SQLite's ``LIKE`` is case-insensitive),
``%`` and ``_`` inside those functions act as SQL wildcards, lookups are filtered as
``_<name>_value eq <guid>``, and the date functions are computed against the server's UTC "now".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from odata_query import ast
from odata_query.exceptions import ODataException
from odata_query.grammar import ODataLexer, ODataParser

from connector.sandbox.dates import (
    PERIOD_FUNCTIONS,
    format_datetime,
    parse_datetime_literal,
    relative_window,
    shift,
)
from connector.sandbox.faults import ApiError, bad_request, unknown_property
from connector.sandbox.schema import BUSINESS_UNIT_ID, EDM_TYPES, USER_ID, Column, Table

__all__ = ["CompiledFilter", "compile_filter"]

MAX_CONDITIONS = 500  # §3.4: TooManyConditionsInQuery beyond this
_FN_PREFIX = "Microsoft.Dynamics.CRM."
_PLACEHOLDER = "_dvfn"


@dataclass
class CompiledFilter:
    """A WHERE fragment (without the keyword) and its parameters."""

    sql: str
    params: list = field(default_factory=list)


@dataclass
class _FnCall:
    name: str
    args: dict[str, object]


# --- pre-pass: lift Microsoft.Dynamics.CRM.* calls out of the text ---------------------------------


def _lift_functions(text: str) -> tuple[str, list[_FnCall]]:
    out: list[str] = []
    calls: list[_FnCall] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "'":
            j = _literal_end(text, i, text)
            out.append(text[i : j + 1])
            i = j + 1
            continue
        if text.startswith(_FN_PREFIX, i):
            m = re.match(r"Microsoft\.Dynamics\.CRM\.(\w+)\s*\(", text[i:])
            if not m:
                raise bad_request(f"Syntax error at position {i} in '{text}'.")
            end, args = _read_call_args(text, i + m.end(), text)
            calls.append(_FnCall(m.group(1), args))
            out.append(f"{_PLACEHOLDER}{len(calls) - 1}")
            i = end
            continue
        out.append(ch)
        i += 1
    return "".join(out), calls


def _literal_end(text: str, start: int, whole: str) -> int:
    """Index of the quote that closes the literal opened at ``start`` (``''`` is an escaped quote)."""
    n = len(text)
    j = start + 1
    while j < n:
        if text[j] == "'":
            if j + 1 < n and text[j + 1] == "'":
                j += 2
                continue
            return j
        j += 1
    raise bad_request(f"There is an unterminated literal at position {n} in '{whole}'.")


def _read_call_args(text: str, start: int, whole: str) -> tuple[int, dict[str, object]]:
    """Read ``Name=value,...)`` from ``start``; return the index after ``)`` and the arguments."""
    args: dict[str, object] = {}
    i = start
    n = len(text)
    while True:
        while i < n and text[i] == " ":
            i += 1
        if i < n and text[i] == ")":
            return i + 1, args
        m = re.match(r"(\w+)\s*=\s*", text[i:])
        if not m:
            raise bad_request(f"Syntax error at position {i} in '{whole}'.")
        key = m.group(1)
        i += m.end()
        if i >= n:
            raise bad_request(f"Syntax error at position {i} in '{whole}'.")
        if text[i] == "'":
            j = _literal_end(text, i, whole)
            args[key] = text[i + 1 : j].replace("''", "'")
            i = j + 1
        elif text[i] == "[":
            j, depth, in_str = i, 0, False
            while j < n:
                c = text[j]
                if in_str:
                    if c == "\\":
                        j += 1
                    elif c == '"':
                        in_str = False
                elif c == '"':
                    in_str = True
                elif c == "[":
                    depth += 1
                elif c == "]":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            raw = text[i : j + 1]
            try:
                values = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise bad_request(
                    f"Invalid JSON. A comma character ',' was expected in scope 'Array'. {exc.msg} in {raw}"
                ) from exc
            if not isinstance(values, list):
                raise bad_request(f"Invalid JSON. Expected an array for {key} in '{whole}'.")
            args[key] = values
            i = j + 1
        else:
            m2 = re.match(r"[^,)\s]+", text[i:])
            if not m2:
                raise bad_request(f"Syntax error at position {i} in '{whole}'.")
            args[key] = _Bare(m2.group(0))
            i += m2.end()
        while i < n and text[i] == " ":
            i += 1
        if i < n and text[i] == ",":
            i += 1
            continue
        if i < n and text[i] == ")":
            return i + 1, args
        raise bad_request(f"Syntax error at position {i} in '{whole}'.")


@dataclass(frozen=True)
class _Bare:
    """An unquoted argument value (number, date, GUID)."""

    text: str


# --- compiler -----------------------------------------------------------------------------------


class _Compiler:
    def __init__(
        self,
        entity: str,
        columns: dict[str, Column],
        calls: list[_FnCall],
        now: datetime,
        tables: dict[str, Table],
    ):
        self.entity = entity
        self.tables = tables
        # Single-valued navigation properties (the lookups) → (lookup column, target table name).
        self.navs = {
            nav: (c, target) for c in columns.values() for nav, target in c.navigation_properties().items()
        }
        self.by_wire = {c.wire_name: c for c in columns.values()}
        self.by_logical = columns
        self.calls = calls
        self.now = now.astimezone(UTC)
        self.params: list = []
        self.conditions = 0

    # nodes
    def compile(self, node: ast._Node) -> str:
        if isinstance(node, ast.BoolOp):
            op = "AND" if isinstance(node.op, ast.And) else "OR"
            return f"({self.compile(node.left)} {op} {self.compile(node.right)})"
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return f"(NOT {self.compile(node.operand)})"
        if isinstance(node, ast.Compare):
            self._count()
            return self._compare(node)
        if isinstance(node, ast.Call):
            self._count()
            return self._call(node)
        if isinstance(node, ast.Identifier) and node.name.startswith(_PLACEHOLDER) and not node.namespace:
            self._count()
            return self._dataverse_function(self.calls[int(node.name[len(_PLACEHOLDER) :])])
        if isinstance(node, ast.Identifier):
            column = self._column(node)
            if column.attribute_type == "Boolean":
                self._count()
                return f'("{column.logical_name}" = 1)'
        raise bad_request(
            f"The $filter expression '{_describe(node)}' is not a condition Dataverse can evaluate."
        )

    def _count(self) -> None:
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise ApiError(400, "0x8004430C", "Number of conditions in query exceeded maximum limit.")

    def _column(self, node: ast._Node) -> Column:
        if isinstance(node, ast.Attribute):
            raise bad_request(
                f"The sandbox does not filter on navigation paths ('{_describe(node)}'); "
                "filter on the lookup's _<name>_value with the related record's id instead."
            )
        if not isinstance(node, ast.Identifier) or node.namespace:
            raise bad_request(f"Expected a property name in $filter, found '{_describe(node)}'.")
        column = self.by_wire.get(node.name)
        if column is None:
            raise unknown_property(node.name, self.entity)
        return column

    def _compare(self, node: ast.Compare) -> str:
        if isinstance(node.comparator, ast.In):
            raise bad_request(
                "The 'in' operator is OData 4.01; Dataverse implements OData 4.0. "
                "Use Microsoft.Dynamics.CRM.In(PropertyName='...',PropertyValues=[...])."
            )
        left, right, comparator = node.left, node.right, node.comparator
        if isinstance(left, ast._Literal) and not isinstance(right, ast._Literal):
            left, right = right, left
            comparator = _FLIP.get(type(comparator), type(comparator))()
        if isinstance(left, ast.Attribute):
            return self._navigation_compare(left, comparator, right)
        column = self._column(left)
        if not isinstance(right, ast._Literal) or isinstance(right, ast.List):
            raise bad_request(f"The sandbox compares a property with a literal; found '{_describe(right)}'.")
        op = _SQL_OPS[type(comparator)]
        name = f'"{column.logical_name}"'
        if isinstance(right, ast.Null):
            if op == "=":
                return f"({name} IS NULL)"
            if op == "<>":
                return f"({name} IS NOT NULL)"
            raise bad_request(f"null can only be compared with eq or ne, not with '{_describe(node)}'.")
        self.params.append(self._literal(column, right, comparator))
        return f"({name} {op} ?)"

    def _navigation_compare(self, path: ast.Attribute, comparator: object, right: object) -> str:
        """``nav/prop op literal`` on a single-valued navigation property (a lookup): the records whose
        lookup points at a related record matching the comparison."""
        owner = path.owner
        if not isinstance(owner, ast.Identifier) or owner.namespace or owner.name not in self.navs:
            raise bad_request(
                f"'{_describe(path)}' is not a path through a single-valued navigation property of "
                f"'Microsoft.Dynamics.CRM.{self.entity}'."
            )
        lookup, target_name = self.navs[owner.name]
        target = self.tables.get(target_name)
        if target is None:
            raise bad_request(
                f"The sandbox does not serve '{target_name}' records, "
                f"so '{_describe(path)}' cannot be filtered."
            )
        column = {c.wire_name: c for c in target.columns if not c.internal}.get(path.attr)
        if column is None:
            raise unknown_property(path.attr, target.logical_name)
        if not isinstance(right, ast._Literal) or isinstance(right, ast.List | ast.Null):
            raise bad_request(
                f"The sandbox compares a navigation path with a non-null literal; found '{_describe(right)}'."
            )
        self.params.append(self._literal(column, right, comparator))
        op = _SQL_OPS[type(comparator)]
        inner = (
            f'SELECT "{target.primary_id}" FROM "{target.logical_name}" WHERE "{column.logical_name}" {op} ?'
        )
        sql = f'("{lookup.logical_name}" IN ({inner})'
        type_column = lookup.type_column
        if type_column and type_column in self.by_logical:
            self.params.append(target.logical_name)
            sql += f' AND "{type_column}" = ?'
        return sql + ")"

    def _literal(self, column: Column, lit: ast._Literal, comparator: object = None) -> object:
        t = column.attribute_type
        edm = type(lit).__name__
        try:
            if t in ("String", "Memo", "EntityName"):
                if isinstance(lit, ast.String):
                    return lit.val
            elif t == "Boolean":
                if isinstance(lit, ast.Boolean):
                    return 1 if lit.py_val else 0
                if isinstance(lit, ast.Integer) and lit.py_val in (0, 1):
                    return lit.py_val
            elif t in ("Integer", "BigInt", "Picklist", "State", "Status"):
                if isinstance(lit, ast.Integer):
                    return lit.py_val
            elif t in ("Decimal", "Double", "Money"):
                if isinstance(lit, ast.Integer | ast.Float):
                    return float(lit.val)
            elif t == "DateTime":
                if isinstance(lit, ast.DateTime | ast.Date):
                    return parse_datetime_literal(lit.val, column.date_format == "DateOnly")
            elif t in ("Uniqueidentifier", "Lookup", "Customer", "Owner"):
                if isinstance(lit, ast.GUID):
                    return lit.val.lower()
                if isinstance(lit, ast.String) and _GUID.fullmatch(lit.val):
                    return lit.val.lower()
        except ValueError as exc:
            raise bad_request(
                f"The literal '{getattr(lit, 'val', lit)}' is not a valid {t} value: {exc}"
            ) from exc
        raise bad_request(
            f"A binary operator with incompatible types was detected. Found operand types "
            f"'{EDM_TYPES.get(t, 'Edm.String')}' and '{_EDM_LITERAL.get(edm, edm)}' for operator kind "
            f"'{_KIND.get(type(comparator), 'Equal')}'."
        )

    def _call(self, node: ast.Call) -> str:
        name = node.func.name.lower() if not node.func.namespace else node.func.full_name()
        if name not in ("contains", "startswith", "endswith"):
            raise bad_request(
                f"The function '{node.func.full_name()}' is not supported in $filter by Dataverse."
            )
        if len(node.args) != 2:
            raise bad_request(f"The function '{name}' takes a property and a string.")
        column = self._column(node.args[0])
        lit = node.args[1]
        if column.attribute_type not in ("String", "Memo", "EntityName") or not isinstance(lit, ast.String):
            raise bad_request(f"The function '{name}' needs a string property and a string literal.")
        # Dataverse passes the text to SQL LIKE, so %, _ and [] act as wildcards there too (§3.4).
        pattern = {"contains": f"%{lit.val}%", "startswith": f"{lit.val}%", "endswith": f"%{lit.val}"}[name]
        self.params.append(pattern)
        return f'("{column.logical_name}" LIKE ?)'

    # Microsoft.Dynamics.CRM.* functions
    def _dataverse_function(self, call: _FnCall) -> str:
        prop = call.args.get("PropertyName")
        if not isinstance(prop, str):
            raise bad_request(f"Microsoft.Dynamics.CRM.{call.name} needs PropertyName='<column>'.")
        column = self.by_wire.get(prop) or self.by_logical.get(prop)
        if column is None:
            raise unknown_property(prop, self.entity)
        name = call.name
        col = f'"{column.logical_name}"'
        handler = PERIOD_FUNCTIONS.get(name)
        if handler is not None:
            start, end = handler(self.now)
            return self._range(column, start, end)
        m = re.fullmatch(r"(Last|Next)X(Hours|Days|Weeks|Months|Years)", name)
        if m:
            x = self._int_value(call)
            start, end = relative_window(self.now, m.group(1), m.group(2), x)
            return self._range(column, start, end, inclusive_end=True)
        m = re.fullmatch(r"OlderThanX(Minutes|Hours|Days|Weeks|Months|Years)", name)
        if m:
            x = self._int_value(call)
            cutoff = shift(self.now, m.group(1), -x)
            self.params.append(self._date_param(column, cutoff))
            return f"({col} < ?)"
        if name in ("On", "OnOrAfter", "OnOrBefore"):
            day = self._date_value(call)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            end = start + timedelta(days=1)
            if name == "On":
                return self._range(column, start, end)
            if name == "OnOrAfter":
                self.params.append(self._date_param(column, start))
                return f"({col} >= ?)"
            self.params.append(self._date_param(column, end))
            return f"({col} < ?)"
        if name in ("Between", "NotBetween"):
            values = self._values(call, 2)
            low, high = (self._typed(column, v) for v in values)
            if column.attribute_type == "DateTime" and len(str(values[1])) == 10:
                # An end date without a time covers that whole day.
                high_day = date.fromisoformat(str(values[1])) + timedelta(days=1)
                high = self._date_param(
                    column, datetime(high_day.year, high_day.month, high_day.day, tzinfo=UTC)
                )
                cond_high = f"{col} < ?"
            else:
                cond_high = f"{col} <= ?"
            self.params.extend([low, high])
            inner = f"({col} >= ? AND {cond_high})"
            return inner if name == "Between" else f"({col} IS NOT NULL AND NOT {inner})"
        if name in ("In", "NotIn"):
            values = self._values(call, None)
            if not values:
                raise bad_request(
                    f"Microsoft.Dynamics.CRM.{name} needs at least one value in PropertyValues."
                )
            if len(json.dumps(values)) > 850 + 2:
                raise bad_request(f"The values of Microsoft.Dynamics.CRM.{name} may be up to 850 characters.")
            self.params.extend(self._typed(column, v) for v in values)
            marks = ",".join("?" * len(values))
            return f"({col} IN ({marks}))" if name == "In" else f"({col} NOT IN ({marks}))"
        if name in ("EqualUserId", "NotEqualUserId", "EqualBusinessId", "NotEqualBusinessId"):
            self.params.append(USER_ID if "User" in name else BUSINESS_UNIT_ID)
            return f"({col} = ?)" if name.startswith("Equal") else f"({col} IS NULL OR {col} <> ?)"
        if name in _KNOWN_UNSUPPORTED:
            raise bad_request(
                f"The sandbox does not implement Microsoft.Dynamics.CRM.{name} "
                "(fiscal periods, hierarchies, user teams and multi-select choices are outside its scope)."
            )
        raise bad_request(f"'Microsoft.Dynamics.CRM.{name}' is not a valid Dataverse query function.")

    def _range(self, column: Column, start: datetime, end: datetime, inclusive_end: bool = False) -> str:
        col = f'"{column.logical_name}"'
        self.params.extend([self._date_param(column, start), self._date_param(column, end)])
        return f"({col} >= ? AND {col} {'<=' if inclusive_end else '<'} ?)"

    def _date_param(self, column: Column, value: datetime) -> str:
        if column.attribute_type != "DateTime":
            raise bad_request(f"The column '{column.logical_name}' is not a date and time column.")
        if column.date_format == "DateOnly":
            return value.date().isoformat()
        return format_datetime(value)

    def _int_value(self, call: _FnCall) -> int:
        value = call.args.get("PropertyValue")
        text = value.text if isinstance(value, _Bare) else value
        try:
            return int(str(text))
        except (TypeError, ValueError) as exc:
            raise bad_request(
                f"Microsoft.Dynamics.CRM.{call.name} needs a whole-number PropertyValue."
            ) from exc

    def _date_value(self, call: _FnCall) -> date:
        value = call.args.get("PropertyValue")
        text = value.text if isinstance(value, _Bare) else value
        try:
            return date.fromisoformat(str(text)[:10])
        except (TypeError, ValueError) as exc:
            raise bad_request(
                f"Microsoft.Dynamics.CRM.{call.name} needs a date PropertyValue (YYYY-MM-DD)."
            ) from exc

    def _values(self, call: _FnCall, count: int | None) -> list:
        values = call.args.get("PropertyValues")
        if not isinstance(values, list):
            raise bad_request(f'Microsoft.Dynamics.CRM.{call.name} needs PropertyValues=["...","..."].')
        if count is not None and len(values) != count:
            raise bad_request(f"Microsoft.Dynamics.CRM.{call.name} needs exactly {count} PropertyValues.")
        return values

    def _typed(self, column: Column, value: object) -> object:
        t = column.attribute_type
        text = str(value)
        try:
            if t in ("Integer", "BigInt", "Picklist", "State", "Status"):
                return int(text)
            if t == "Boolean":
                return 1 if text.lower() in ("1", "true") else 0
            if t in ("Decimal", "Double", "Money"):
                return float(text)
            if t == "DateTime":
                return parse_datetime_literal(text, column.date_format == "DateOnly")
            if column.is_lookup or t == "Uniqueidentifier":
                return text.strip("{}").lower()
        except ValueError as exc:
            raise bad_request(
                f"The value '{text}' is not a valid {t} value for '{column.logical_name}'."
            ) from exc
        return text


_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_SQL_OPS = {ast.Eq: "=", ast.NotEq: "<>", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_FLIP = {ast.Lt: ast.Gt, ast.Gt: ast.Lt, ast.LtE: ast.GtE, ast.GtE: ast.LtE}
_KIND = {
    ast.Eq: "Equal",
    ast.NotEq: "NotEqual",
    ast.Lt: "LessThan",
    ast.LtE: "LessThanOrEqual",
    ast.Gt: "GreaterThan",
    ast.GtE: "GreaterThanOrEqual",
}
_EDM_LITERAL = {
    "String": "Edm.String",
    "Integer": "Edm.Int32",
    "Float": "Edm.Decimal",
    "Boolean": "Edm.Boolean",
    "GUID": "Edm.Guid",
    "DateTime": "Edm.DateTimeOffset",
    "Date": "Edm.Date",
}
_KNOWN_UNSUPPORTED = {
    "ContainValues",
    "DoesNotContainValues",
    "Above",
    "AboveOrEqual",
    "Under",
    "UnderOrEqual",
    "NotUnder",
    "EqualUserLanguage",
    "EqualUserTeams",
    "EqualUserOrUserTeams",
    "EqualUserOrUserHierarchy",
    "EqualUserOrUserHierarchyAndTeams",
    "InFiscalYear",
    "InFiscalPeriod",
    "InFiscalPeriodAndYear",
    "InOrBeforeFiscalPeriodAndYear",
    "InOrAfterFiscalPeriodAndYear",
    "ThisFiscalYear",
    "ThisFiscalPeriod",
    "LastFiscalYear",
    "LastFiscalPeriod",
    "NextFiscalYear",
    "NextFiscalPeriod",
    "LastXFiscalYears",
    "LastXFiscalPeriods",
    "NextXFiscalYears",
    "NextXFiscalPeriods",
}


def _describe(node: object) -> str:
    if isinstance(node, ast.Identifier):
        return node.full_name()
    if isinstance(node, ast.Attribute):
        return f"{_describe(node.owner)}/{node.attr}"
    if isinstance(node, ast._Literal):
        return str(getattr(node, "val", ""))
    return type(node).__name__


def compile_filter(
    text: str, entity: str, columns: dict[str, Column], now: datetime, tables: dict[str, Table] | None = None
) -> CompiledFilter:
    """Compile a ``$filter`` expression for one table into SQL.

    Args:
        text: the ``$filter`` value, URL-decoded.
        entity: the table's logical name (for error messages).
        columns: logical name → column of the table, custom columns included.
        now: the server's current UTC time, for the date functions.
        tables: logical name → served table, for navigation paths (``parentaccountid/name``).

    Returns:
        The WHERE fragment and its parameters.

    Raises:
        ApiError: 400 with Dataverse's code and message for a malformed or unsupported filter.
    """
    lifted, calls = _lift_functions(text)
    try:
        tree = ODataParser().parse(ODataLexer().tokenize(lifted))
    except ODataException as exc:
        raise bad_request(f"Syntax error in $filter '{text}': {exc}") from exc
    except ApiError:
        raise
    if tree is None:
        raise bad_request("The $filter query option is empty.")
    compiler = _Compiler(entity, columns, calls, now, tables or {})
    sql = compiler.compile(tree)
    return CompiledFilter(sql, compiler.params)
