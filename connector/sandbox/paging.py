"""Opaque ``$skiptoken`` cookies and keyset predicates, so pages stay stable while records change.

A page ends at a row; the next page starts strictly after that row's sort key and primary id. A
record inserted or deleted between two page requests therefore never makes a surviving record
appear twice or vanish (unlike offset paging). The token looks like Dataverse's paging cookie
(``<cookie pagenumber="2" pagingcookie="..." istracking="False" />``, §3.6) and carries the keyset
state base64-encoded inside; clients must treat it as opaque.
"""

from __future__ import annotations

import base64
import json
import re
from html import escape, unescape

from connector.sandbox.faults import bad_request

__all__ = ["decode_skiptoken", "encode_skiptoken", "keyset_after"]

_COOKIE = re.compile(r'<cookie pagenumber="(\d+)" pagingcookie="([^"]*)" istracking="(True|False)" />')


def encode_skiptoken(state: dict, page: int, tracking: bool = False) -> str:
    """Return the (not yet URL-encoded) skiptoken for the page after the one just served."""
    raw = base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode().rstrip("=")
    return f'<cookie pagenumber="{page}" pagingcookie="{escape(raw)}" istracking="{tracking}" />'


def decode_skiptoken(token: str) -> tuple[dict, int]:
    """Read a skiptoken written by :func:`encode_skiptoken`.

    Raises:
        ApiError: 400 when the token was not issued by this server or was altered.
    """
    m = _COOKIE.fullmatch(token.strip())
    if not m:
        raise bad_request("The $skiptoken is not valid. Follow @odata.nextLink exactly as returned.")
    raw = unescape(m.group(2))
    try:
        state = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request("The $skiptoken is not valid. Follow @odata.nextLink exactly as returned.") from exc
    if not isinstance(state, dict):
        raise bad_request("The $skiptoken is not valid. Follow @odata.nextLink exactly as returned.")
    return state, int(m.group(1))


def keyset_after(order: list[tuple[str, bool]], last: list) -> tuple[str, list]:
    """Return a SQL condition selecting rows strictly after ``last`` in ``order``.

    Args:
        order: (quoted column expression, descending) pairs; the last one must be unique (the id).
        last: the values of those columns in the last row served.

    SQLite sorts NULL before every value ascending and after every value descending; the
    condition follows that, so NULL sort keys page correctly.
    """
    if len(order) != len(last):
        raise bad_request(
            "The $skiptoken does not match this query's $orderby. Follow @odata.nextLink as returned."
        )
    disjuncts: list[str] = []
    params: list = []
    for i, (col, desc) in enumerate(order):
        parts: list[str] = []
        local: list = []
        for j in range(i):
            prev_col, _ = order[j]
            if last[j] is None:
                parts.append(f"{prev_col} IS NULL")
            else:
                parts.append(f"{prev_col} = ?")
                local.append(last[j])
        value = last[i]
        if value is None:
            if desc:
                continue  # nothing sorts after NULL descending
            parts.append(f"{col} IS NOT NULL")
        elif desc:
            parts.append(f"({col} < ? OR {col} IS NULL)")
            local.append(value)
        else:
            parts.append(f"{col} > ?")
            local.append(value)
        disjuncts.append("(" + " AND ".join(parts) + ")")
        params.extend(local)
    if not disjuncts:
        return "0", []
    # Params were appended in disjunct order, matching the placeholders left to right.
    return "(" + " OR ".join(disjuncts) + ")", params
