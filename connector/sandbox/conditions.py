"""Conditions of FetchXML and QueryExpression: one operator vocabulary compiled to SQL.

FetchXML's ``<condition attribute=".." operator=".." value=".."/>`` (reference §3.8) and the
``ConditionExpression`` of a ``QueryExpression`` (the ``QuerySet`` of ``BulkDelete``) name the same
operators, the first in kebab case (``begins-with``), the second in Pascal case (``BeginsWith``).
Both come here: the values arrive as text (FetchXML) or JSON (QueryExpression), are converted to
the column's stored form, and become a WHERE fragment. An operator the sandbox does not implement
is a 501 naming it, never a condition silently dropped.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from connector.sandbox.dates import (
    PERIOD_FUNCTIONS,
    format_datetime,
    parse_datetime_literal,
    relative_window,
    shift,
)
from connector.sandbox.faults import bad_request, not_implemented
from connector.sandbox.schema import BUSINESS_UNIT_ID, USER_ID, Column

__all__ = ["QUERY_EXPRESSION_OPERATORS", "compile_condition"]

_NO_VALUE = frozenset(
    {
        "null",
        "not-null",
        "eq-userid",
        "ne-userid",
        "eq-businessid",
        "ne-businessid",
        "today",
        "yesterday",
        "tomorrow",
    }
)
_ONE_VALUE = frozenset(
    {
        "eq", "ne", "neq", "gt", "ge", "lt", "le", "like", "not-like", "begins-with", "not-begin-with",
        "ends-with", "not-end-with", "on", "on-or-before", "on-or-after", "last-x-days", "next-x-days",
        "last-x-hours", "next-x-hours", "olderthan-x-days",
    }
)  # fmt: skip
_MANY_VALUES = frozenset({"in", "not-in", "between", "not-between"})
_COMPARE = {"eq": "=", "ne": "<>", "neq": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}

# QueryExpression's ConditionOperator names → FetchXML's.
QUERY_EXPRESSION_OPERATORS = {
    "Equal": "eq", "NotEqual": "ne", "GreaterThan": "gt", "GreaterEqual": "ge", "LessThan": "lt",
    "LessEqual": "le", "Like": "like", "NotLike": "not-like", "BeginsWith": "begins-with",
    "DoesNotBeginWith": "not-begin-with", "EndsWith": "ends-with", "DoesNotEndWith": "not-end-with",
    "In": "in", "NotIn": "not-in", "Between": "between", "NotBetween": "not-between", "Null": "null",
    "NotNull": "not-null", "On": "on", "OnOrBefore": "on-or-before", "OnOrAfter": "on-or-after",
    "Today": "today", "Yesterday": "yesterday", "Tomorrow": "tomorrow", "LastXDays": "last-x-days",
    "NextXDays": "next-x-days", "LastXHours": "last-x-hours", "NextXHours": "next-x-hours",
    "OlderThanXDays": "olderthan-x-days", "EqualUserId": "eq-userid", "NotEqualUserId": "ne-userid",
    "EqualBusinessId": "eq-businessid", "NotEqualBusinessId": "ne-businessid",
}  # fmt: skip

_GUID = re.compile(r"^\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?$")


def compile_condition(
    ref: str, column: Column, entity: str, operator: str, values: list[object], now: datetime
) -> tuple[str, list]:
    """Compile one condition to a SQL fragment and its parameters.

    Args:
        ref: the SQL expression of the column (``"t0"."statecode"``).
        column: the column compared.
        entity: the table's logical name (for messages).
        operator: the FetchXML operator name.
        values: the condition's values, as text or JSON scalars.
        now: the server's UTC now, for relative date operators.

    Raises:
        ApiError: 400 for a wrong number or form of values, 501 for an operator not implemented.
    """
    if operator not in _NO_VALUE | _ONE_VALUE | _MANY_VALUES:
        raise not_implemented(f"The condition operator '{operator}'")
    if operator in _NO_VALUE and values:
        raise bad_request(f"The condition operator '{operator}' takes no value.")
    if operator in _ONE_VALUE and len(values) != 1:
        raise bad_request(
            f"The condition operator '{operator}' on '{column.logical_name}' needs exactly one value."
        )
    if operator in ("between", "not-between") and len(values) != 2:
        raise bad_request(f"The condition operator '{operator}' needs exactly two values.")
    if operator in ("in", "not-in") and not values:
        raise bad_request(f"The condition operator '{operator}' needs at least one value.")
    if operator == "null":
        return f"{ref} IS NULL", []
    if operator == "not-null":
        return f"{ref} IS NOT NULL", []
    if operator in ("eq-userid", "ne-userid", "eq-businessid", "ne-businessid"):
        ident = USER_ID if "userid" in operator else BUSINESS_UNIT_ID
        return (f"{ref} = ?" if operator.startswith("eq") else f"{ref} <> ?"), [ident]
    if operator in _COMPARE:
        return f"{ref} {_COMPARE[operator]} ?", [_value(column, entity, values[0])]
    if operator in ("like", "not-like", "begins-with", "not-begin-with", "ends-with", "not-end-with"):
        if column.attribute_type not in ("String", "Memo"):
            raise bad_request(
                f"The operator '{operator}' applies to text columns, not '{column.logical_name}'."
            )
        text = str(values[0])
        pattern = text
        if operator in ("begins-with", "not-begin-with"):
            pattern = f"{text}%"
        elif operator in ("ends-with", "not-end-with"):
            pattern = f"%{text}"
        negate = operator.startswith("not")
        return (f"{ref} NOT LIKE ?" if negate else f"{ref} LIKE ?"), [pattern]
    if operator in ("in", "not-in"):
        marks = ",".join("?" * len(values))
        sql = f"{ref} IN ({marks})" if operator == "in" else f"{ref} NOT IN ({marks})"
        return sql, [_value(column, entity, v) for v in values]
    if operator in ("between", "not-between"):
        low, high = (_value(column, entity, v) for v in values)
        return (f"{ref} BETWEEN ? AND ?" if operator == "between" else f"{ref} NOT BETWEEN ? AND ?"), [
            low,
            high,
        ]
    return _date_condition(ref, column, operator, values, now)


def _date_condition(
    ref: str, column: Column, operator: str, values: list[object], now: datetime
) -> tuple[str, list]:
    """Relative and calendar date operators, with the same windows as the ``$filter`` functions."""
    if column.attribute_type != "DateTime":
        raise bad_request(f"The operator '{operator}' applies to date columns, not '{column.logical_name}'.")
    if operator in ("today", "yesterday", "tomorrow"):
        return _window(ref, column, *PERIOD_FUNCTIONS[operator.capitalize()](now))
    if operator in ("on", "on-or-before", "on-or-after"):
        start = datetime.fromisoformat(_date(column, values[0]) + "T00:00:00+00:00")
        if operator == "on":
            return _window(ref, column, start, start + timedelta(days=1))
        if operator == "on-or-before":
            return f"{ref} < ?", [_stored(column, start + timedelta(days=1))]
        return f"{ref} >= ?", [_stored(column, start)]
    try:
        x = int(str(values[0]))
    except ValueError as exc:
        raise bad_request(f"The operator '{operator}' needs a whole number, not '{values[0]}'.") from exc
    if operator == "olderthan-x-days":
        return f"{ref} < ?", [_stored(column, shift(now, "Days", -x))]
    direction = "Last" if operator.startswith("last") else "Next"
    unit = "Days" if operator.endswith("days") else "Hours"
    start, end = relative_window(now, direction, unit, x)
    # relative_window's end is inclusive (the last second of the window); _window's is exclusive.
    return _window(ref, column, start, end + timedelta(seconds=1))


def _window(ref: str, column: Column, start: datetime, end: datetime) -> tuple[str, list]:
    return f"({ref} >= ? AND {ref} < ?)", [_stored(column, start), _stored(column, end)]


def _stored(column: Column, moment: datetime) -> str:
    text = format_datetime(moment)
    return text[:10] if column.date_format == "DateOnly" else text


def _date(column: Column, value: object) -> str:
    try:
        return parse_datetime_literal(str(value), True)
    except ValueError as exc:
        raise bad_request(f"'{value}' is not a valid date for '{column.logical_name}'.") from exc


def _value(column: Column, entity: str, value: object) -> object:
    """Convert a condition value (text or JSON scalar) to the column's stored form."""
    t = column.attribute_type
    text = str(value).strip() if not isinstance(value, bool) else ("1" if value else "0")
    try:
        if t in ("Integer", "BigInt", "Picklist", "State", "Status"):
            return int(text)
        if t == "Boolean":
            if text.lower() in ("1", "true"):
                return 1
            if text.lower() in ("0", "false"):
                return 0
            raise ValueError(text)
        if t in ("Decimal", "Double", "Money"):
            return float(text)
        if t == "DateTime":
            return parse_datetime_literal(text, column.date_format == "DateOnly")
    except ValueError as exc:
        raise bad_request(
            f"The value '{value}' is not valid for attribute '{column.logical_name}' of entity '{entity}'."
        ) from exc
    if column.is_lookup or t == "Uniqueidentifier":
        m = _GUID.match(text)
        if not m:
            raise bad_request(f"The value '{value}' of '{column.logical_name}' is not a GUID.")
        return m.group(1).lower()
    return text
