"""OData query text: the one literal-quoting function and query-string encoding.

No code in dvsync splices a value into ``$filter`` with an f-string: values go through
:func:`quote_literal` (or the small helpers built on it), and the whole query string through
:func:`encode_query`, which percent-encodes every value exactly once. The rules come from
Microsoft's filter-rows.md (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/filter-rows):
strings are single-quoted with ``'`` doubled; GUIDs, numbers, booleans and ``null`` are bare;
date-times are ISO 8601 in UTC (``2024-01-01T00:00:00Z``); special characters are URL-encoded.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import numbers
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import quote

__all__ = [
    "build_query",
    "condition",
    "encode_query",
    "in_values",
    "quote_literal",
    "validate_name",
]

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*$")
_OPERATORS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})


def quote_literal(value: object) -> str:
    """Return ``value`` as an OData literal for ``$filter``.

    Args:
        value: ``str`` (quoted, ``'`` doubled), ``uuid.UUID`` (bare GUID), ``bool``, an integer,
            a finite float or ``Decimal``, ``None`` (``null``), a timezone-aware ``datetime``
            (converted to UTC) or a ``date``.

    Returns:
        The literal text, not yet URL-encoded (:func:`encode_query` does that once).

    Raises:
        ValueError: a naive datetime, NaN or infinity; the message says what to pass instead.
        TypeError: a type with no OData literal form.

    Examples:
        >>> quote_literal("O'Bryan")
        "'O''Bryan'"
        >>> quote_literal(uuid.UUID("70bf4d48-34cb-ed11-b596-0022481d68cd"))
        '70bf4d48-34cb-ed11-b596-0022481d68cd'
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} has no time zone; Dataverse compares in UTC, so pass "
                "an aware datetime (e.g. datetime.now(timezone.utc) or ts.replace(tzinfo=timezone.utc))"
            )
        utc = value.astimezone(dt.UTC)
        text = utc.strftime("%Y-%m-%dT%H:%M:%S")
        if utc.microsecond:
            text += f".{utc.microsecond:06d}".rstrip("0")
        return text + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a number Dataverse can compare; filter on null instead")
        return format(value, "f")
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(
                f"{number} is not a number Dataverse can compare; use None (null) for a missing value"
            )
        return repr(number)
    raise TypeError(
        f"no OData literal for {type(value).__name__}; pass str, uuid.UUID, int, float, Decimal, bool, "
        "None, an aware datetime or a date"
    )


def validate_name(name: str, what: str = "column") -> str:
    """Return ``name`` if it is a plain OData identifier (or a ``nav/column`` path); raise otherwise.

    Raises:
        ValueError: the name contains anything but letters, digits, ``_`` and ``/`` separators.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{what} name {name!r} is not a valid Dataverse logical name (letters, digits, _)")
    return name


def condition(column: str, operator: str, value: object) -> str:
    """Return one ``$filter`` comparison, e.g. ``condition("emailaddress1", "eq", "a@b.com")``.

    Raises:
        ValueError: an unknown operator or column name, or a value :func:`quote_literal` refuses.
    """
    if operator not in _OPERATORS:
        raise ValueError(f"unknown operator {operator!r}; use one of {', '.join(sorted(_OPERATORS))}")
    return f"{validate_name(column)} {operator} {quote_literal(value)}"


def in_values(column: str, values: Iterable[object]) -> str:
    """Return ``Microsoft.Dynamics.CRM.In(PropertyName='col',PropertyValues=[...])``.

    Dataverse's query functions take the values as a JSON array of double-quoted strings
    (filter-rows.md), so this builds that array rather than OData literals.
    """
    import json

    items = []
    for value in values:
        if isinstance(value, dt.datetime | dt.date | uuid.UUID | bool) or value is None:
            literal = quote_literal(value)
            items.append(json.dumps(literal.strip("'")))
        else:
            items.append(json.dumps(str(value)))
    if not items:
        raise ValueError(f"In() on {column!r} needs at least one value")
    return (
        f"Microsoft.Dynamics.CRM.In(PropertyName={quote_literal(validate_name(column))},"
        f"PropertyValues=[{','.join(items)}])"
    )


def build_query(
    *,
    select: Sequence[str] | None = None,
    filter: str | None = None,
    orderby: str | Sequence[str] | None = None,
    top: int | None = None,
    expand: str | None = None,
    count: bool = False,
) -> dict[str, str]:
    """Return the query options as a dict for :func:`encode_query`.

    Args:
        select: column logical names; validated so a typo fails here, not as a 400.
        filter: a ``$filter`` expression built with :func:`condition` / :func:`quote_literal`.
        orderby: ``"createdon desc"`` or a list of such terms.
        top: row limit (ignored by Dataverse when ``odata.maxpagesize`` is sent; do not combine).
        expand: an ``$expand`` expression.
        count: add ``$count=true``.
    """
    params: dict[str, str] = {}
    if select:
        if isinstance(select, str):
            raise TypeError("select must be a list of column names, not one string")
        params["$select"] = ",".join(validate_name(c) for c in select)
    if filter:
        params["$filter"] = filter
    if orderby:
        terms = [orderby] if isinstance(orderby, str) else list(orderby)
        for term in terms:
            parts = term.split()
            if not parts or len(parts) > 2 or (len(parts) == 2 and parts[1] not in ("asc", "desc")):
                raise ValueError(f"orderby term {term!r} must be '<column>' or '<column> asc|desc'")
            validate_name(parts[0])
        params["$orderby"] = ",".join(terms)
    if top is not None:
        if int(top) < 1:
            raise ValueError("top must be a positive integer")
        params["$top"] = str(int(top))
    if expand:
        params["$expand"] = expand
    if count:
        params["$count"] = "true"
    return params


def encode_query(params: Mapping[str, str]) -> str:
    """Encode query options once: names keep ``$`` and ``@``; every value character outside
    the unreserved set is percent-encoded (so ``'``, ``&``, ``+``, ``#``, ``%`` in data are safe).
    """
    return "&".join(f"{quote(str(k), safe='$@')}={quote(str(v), safe='')}" for k, v in params.items())
