"""Reading records back after a write whose answer was lost, to learn what the server applied.

A ``$batch`` whose response was cut off or never arrived may have been applied in full, in part
or not at all. Sending it again blindly would apply it twice (each time firing plug-ins and
flows), so :mod:`connector.writeback` asks instead: one ``$batch`` of ``GET <set>(<id>)?$select=``
parts (GETs are safe to retry) returns each record's current ``@odata.etag`` and the columns the
write set, and :func:`same_values` compares them with what was sent.

A lookup written through its navigation property (``ownerid@odata.bind: "/teams(<id>)"``) cannot be
read under that name: ``$select=ownerid@odata.bind`` is refused. It is read back as the lookup's
value column (``_ownerid_value``, a GUID) and compared by id with the bind path's GUID. That holds
for lookups whose navigation property is the column's name (``ownerid``, custom lookups written by
their schema name); a polymorphic customer lookup (``parentcustomerid_account``) is not one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connector.batch import MAX_BATCH_REQUESTS, BatchRequest, decode_batch, encode_batch
from connector.http import HttpClient, error_from_response

__all__ = ["Current", "bind_id", "read_back", "read_column", "same_column", "same_value", "same_values"]

_BIND = "@odata.bind"
_BIND_PATH = re.compile(r"^/?[A-Za-z_]\w*\(([0-9a-fA-F-]{36})\)$")


@dataclass(frozen=True, slots=True)
class Current:
    """A record as the server holds it now: its etag and the asked-for columns (None: it is gone)."""

    etag: str | None
    values: dict[str, Any] | None


def _moment(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def same_value(sent: Any, held: Any) -> bool:
    """Whether the value a PATCH sent (JSON form) is what the server holds (JSON as read)."""
    if sent is None or held is None:
        return sent is None and held is None
    if isinstance(sent, bool) or isinstance(held, bool):
        return sent is held or (isinstance(sent, bool) and isinstance(held, bool) and sent == held)
    if isinstance(sent, int | float) and isinstance(held, int | float):
        return math.isclose(float(sent), float(held), rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(sent, str) and isinstance(held, str):
        if sent == held:
            return True
        left, right = _moment(sent), _moment(held)
        return left is not None and right is not None and left == right
    return bool(sent == held)


def read_column(column: str) -> str:
    """The column to ``$select`` to learn what a written column holds.

    ``ownerid@odata.bind`` -> ``_ownerid_value`` (the lookup's GUID); any other column as is.
    """
    if column.endswith(_BIND):
        return f"_{column[: -len(_BIND)].lower()}_value"
    return column


def bind_id(value: Any) -> str | None:
    """The lower-case GUID of a bind path (``/teams(<id>)``), or None when it is none."""
    match = _BIND_PATH.match(value.strip()) if isinstance(value, str) else None
    return match.group(1).lower() if match else None


def same_column(column: str, sent: Any, held: Any) -> bool:
    """Whether ``column`` holds ``sent``; a bind column compares the bind path's id with the GUID held."""
    if column.endswith(_BIND):
        if sent is None or held is None:
            return sent is None and held is None
        wanted = bind_id(sent)
        return wanted is not None and isinstance(held, str) and wanted == held.strip().lower()
    return same_value(sent, held)


def same_values(sent: Mapping[str, Any], held: Mapping[str, Any] | None) -> bool:
    """Whether every column of ``sent`` holds the sent value in ``held`` (as :func:`read_back` gives it)."""
    return held is not None and all(same_column(k, v, held.get(k)) for k, v in sent.items())


def read_back(http: HttpClient, entity_set: str, records: Mapping[str, Sequence[str]]) -> dict[str, Current]:
    """Read the current etag and the given columns of each record, in ``$batch`` GETs.

    Args:
        http: the client.
        entity_set: e.g. ``leads``.
        records: record id -> the columns to read, named as written (``ownerid@odata.bind`` is read
            as ``_ownerid_value``, see :func:`read_column`).

    Returns:
        record id -> :class:`Current` (``values`` None when the record no longer exists), values
        keyed by the names given (a bind column holds the lookup's GUID, or None).

    Raises:
        DataverseError: the read itself failed after the retry policy (the caller keeps the
            records in doubt; they are settled by the next run's sync).
    """
    ids = list(records)
    found: dict[str, Current] = {}
    for start in range(0, len(ids), MAX_BATCH_REQUESTS):
        chunk = ids[start : start + MAX_BATCH_REQUESTS]
        requests_ = [
            BatchRequest(
                "GET",
                f"{entity_set}({record_id})?$select="
                + ",".join(dict.fromkeys(read_column(c) for c in records[record_id])),
            )
            for record_id in chunk
        ]
        content_type, body = encode_batch(requests_, base_url=http.base_url)
        response = http.request(
            "POST",
            "$batch",
            data=body,
            headers={"Content-Type": content_type, "Prefer": "odata.continue-on-error"},
            idempotent=True,  # only GETs inside: sending them again changes nothing
        )
        answer_type = response.headers.get("Content-Type", "")
        if not answer_type.lower().startswith("multipart/"):
            raise error_from_response(response, method="POST")
        parts = decode_batch(answer_type, response.content)
        for record_id, part in zip(chunk, parts, strict=False):
            if part.status == 404:
                found[record_id] = Current(None, None)
            elif part.ok:
                record = part.json() or {}
                etag = record.get("@odata.etag") or part.header("ETag")
                found[record_id] = Current(etag, {c: record.get(read_column(c)) for c in records[record_id]})
    return found
