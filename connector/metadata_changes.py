"""``RetrieveMetadataChanges``: which table definitions changed since a version stamp.

Microsoft's way to cache metadata (metadata-query-web-api / "Retrieve metadata changes"): call
``RetrieveMetadataChanges(Query=@q,ClientVersionStamp=@s)`` with an ``EntityQueryExpression`` and
the ``ServerVersionStamp`` of an earlier answer; only the tables whose definition changed since
come back, with a new stamp. Without a stamp every matching table comes back. A stamp the server
no longer honours is error ``0x80044352`` (ExpiredVersionStamp): the client must reload all.

Only ``LogicalName`` is asked for: the caller reads a changed table's full definition the usual
way (:func:`connector.metadata.get_table`), so one small request validates every cached table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from connector.errors import DataverseError, ProtocolError
from connector.http import HttpClient

__all__ = ["EXPIRED_STAMP", "MetadataChanges", "metadata_changes"]

EXPIRED_STAMP = "0x80044352"
"""The error code of a version stamp the server no longer honours (reload everything)."""


@dataclass(frozen=True)
class MetadataChanges:
    """The answer: ``changed`` tables (logical names; every asked table when ``expired``), the new
    ``stamp`` to keep, and whether the old stamp had ``expired``."""

    changed: frozenset[str]
    stamp: str
    expired: bool = False


def _query(tables: Iterable[str]) -> str:
    names = sorted({t.lower() for t in tables})
    return json.dumps(
        {
            "Criteria": {
                "FilterOperator": "And",
                "Conditions": [
                    {
                        "PropertyName": "LogicalName",
                        "ConditionOperator": "In",
                        "Value": {"Type": "System.String[]", "Value": names},
                    }
                ],
            },
            "Properties": {"AllProperties": False, "PropertyNames": ["LogicalName"]},
        },
        separators=(",", ":"),
    )


def metadata_changes(http: HttpClient, tables: Iterable[str], stamp: str | None = None) -> MetadataChanges:
    """The tables among ``tables`` whose definition changed since ``stamp`` (all of them without one).

    Raises:
        DataverseError: the call failed for another reason than an expired stamp.
        ProtocolError: the answer has no ``ServerVersionStamp``.
    """
    asked = frozenset(t.lower() for t in tables)
    params = {"@q": _query(asked)}
    call = "RetrieveMetadataChanges(Query=@q)"
    if stamp is not None:
        call = "RetrieveMetadataChanges(Query=@q,ClientVersionStamp=@s)"
        params["@s"] = "'" + stamp.replace("'", "''") + "'"
    try:
        data = http.get_json(call, params=params)
    except DataverseError as exc:
        if stamp is not None and (exc.code or "").lower() == EXPIRED_STAMP:
            fresh = metadata_changes(http, asked)
            return MetadataChanges(asked, fresh.stamp, expired=True)
        raise
    new_stamp = data.get("ServerVersionStamp")
    if not isinstance(new_stamp, str) or not new_stamp:
        raise ProtocolError("the RetrieveMetadataChanges answer has no ServerVersionStamp")
    changed = frozenset(
        str(item.get("LogicalName")).lower()
        for item in data.get("EntityMetadata") or []
        if isinstance(item, dict) and item.get("LogicalName")
    )
    return MetadataChanges(changed & asked, new_stamp)
