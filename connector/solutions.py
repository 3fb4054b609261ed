"""Look up a solution and its publisher, so ``dvsync check`` can say whether provisioning can work.

``dvsync provision`` creates its columns in ``writeback.solution``; the solution must exist, be
unmanaged, and its publisher's customization prefix is the prefix the column names carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connector.query import quote_literal

__all__ = ["SolutionInfo", "find_solution"]


@dataclass(frozen=True)
class SolutionInfo:
    """A solution as ``check`` needs it: unique name, managed or not, its publisher's prefix."""

    unique_name: str
    is_managed: bool
    publisher_prefix: str | None


def find_solution(http: Any, unique_name: str) -> SolutionInfo | None:
    """Return the solution named ``unique_name`` (its unique name, not its display name), or None."""
    payload = http.get_json(
        "solutions",
        params={
            "$select": "uniquename,ismanaged",
            "$filter": f"uniquename eq {quote_literal(unique_name)}",
            "$expand": "publisherid($select=customizationprefix)",
        },
    )
    rows = payload.get("value") or []
    if not rows:
        return None
    row = rows[0]
    publisher = row.get("publisherid") or {}
    return SolutionInfo(
        unique_name=str(row.get("uniquename") or unique_name),
        is_managed=bool(row.get("ismanaged")),
        publisher_prefix=publisher.get("customizationprefix"),
    )
