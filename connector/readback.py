"""Reading records back after a write whose answer was lost, to learn what the server applied.

A ``$batch`` whose response was cut off or never arrived may have been applied in full, in part
or not at all. Sending it again blindly would apply it twice (each time firing plug-ins and
flows), so :mod:`connector.writeback` asks instead: one ``$batch`` of ``GET <set>(<id>)?$select=``
parts (GETs are safe to retry) returns each record's current ``@odata.etag`` and the columns the
write set, and :func:`same_value` compares them with what was sent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from connector.batch import MAX_BATCH_REQUESTS, BatchRequest, decode_batch, encode_batch
from connector.http import HttpClient, error_from_response

__all__ = ["Current", "read_back", "same_value", "same_values"]


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


def same_values(sent: Mapping[str, Any], held: Mapping[str, Any] | None) -> bool:
    """Whether every column of ``sent`` holds the sent value in ``held``."""
    return held is not None and all(same_value(v, held.get(k)) for k, v in sent.items())


def read_back(http: HttpClient, entity_set: str, records: Mapping[str, Sequence[str]]) -> dict[str, Current]:
    """Read the current etag and the given columns of each record, in ``$batch`` GETs.

    Args:
        http: the client.
        entity_set: e.g. ``leads``.
        records: record id -> the columns to read.

    Returns:
        record id -> :class:`Current` (``values`` None when the record no longer exists).

    Raises:
        DataverseError: the read itself failed after the retry policy (the caller keeps the
            records in doubt; they are settled by the next run's sync).
    """
    ids = list(records)
    found: dict[str, Current] = {}
    for start in range(0, len(ids), MAX_BATCH_REQUESTS):
        chunk = ids[start : start + MAX_BATCH_REQUESTS]
        requests_ = [
            BatchRequest("GET", f"{entity_set}({record_id})?$select={','.join(records[record_id])}")
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
                found[record_id] = Current(etag, {c: record.get(c) for c in records[record_id]})
    return found
