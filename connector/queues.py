"""Queues: put records in a queue (``AddToQueue``), take them out (``RemoveFromQueue``), and read
which records sit in which queue (``queueitems``).

``AddToQueue`` is bound to the destination queue: ``POST queues(<id>)/Microsoft.Dynamics.CRM.AddToQueue``
with ``{"Target": {"@odata.type": "Microsoft.Dynamics.CRM.lead", "leadid": "<id>"}}`` and, to move
the record out of a queue it is in, ``"SourceQueue": {"@odata.type": "Microsoft.Dynamics.CRM.queue",
"queueid": "<id>"}``. It answers ``AddToQueueResponse`` ``{"QueueItemId": ...}``, the queue item in
the destination queue. The record itself is not changed: its owner stays; the queue item has its
own "worked by" (``workerid``), set when a person picks it. ``RemoveFromQueue`` (bound to the queue
item) is, in Microsoft's words, equivalent to deleting the queue item.

:func:`add_to_queues` sends many in ``$batch`` requests with ``odata.continue-on-error``. An action
is not replayed blindly: when a batch's answer is lost, the targets' queue items are read back and
only the targets not found in their destination queue are sent again (once).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from connector.batch import MAX_BATCH_REQUESTS, BatchRequest, decode_batch, encode_batch
from connector.errors import AuthError, DataverseError
from connector.http import HttpClient, error_from_batch_part, error_from_response
from connector.paging import LOOKUP_LOGICAL_NAME, iter_pages, prefer_header
from connector.query import build_query, condition, in_values

__all__ = ["QueueItem", "QueueRequest", "QueueResult", "add_to_queues", "queue_items", "remove_from_queue"]

_NS = "Microsoft.Dynamics.CRM."
_CHUNK_IDS = 100  # targets per read-back query: keeps the In(...) filter well inside a URL


@dataclass(frozen=True, slots=True)
class QueueItem:
    """An active queue item: a record in a queue.

    Attributes:
        id: the queue item's id.
        queue_id: the queue it is in.
        object_id: the record (a lead, an activity...).
        object_table: the record's table (``lead``), when Dynamics said.
        worker_id: the user working on it (picked it), or None.
    """

    id: str
    queue_id: str
    object_id: str
    object_table: str | None
    worker_id: str | None


@dataclass(frozen=True, slots=True)
class QueueRequest:
    """Put ``target_id`` of ``target_table`` in ``queue_id`` (moving it from ``source_queue_id``)."""

    target_table: str
    target_id: str
    queue_id: str
    source_queue_id: str | None = None


@dataclass(frozen=True, slots=True)
class QueueResult:
    """The outcome of one :class:`QueueRequest`.

    Attributes:
        id: the target record id.
        ok: the record is in the queue.
        status: the inner HTTP status (None when no answer arrived).
        error_code: Dataverse's error code, when there was one.
        message: what went wrong; None on success.
        queue_item_id: the queue item in the destination queue.
        confirmed: the answer was lost and a read-back found the record in the queue.
    """

    id: str
    ok: bool
    status: int | None
    error_code: str | None
    message: str | None
    queue_item_id: str | None = None
    confirmed: bool = False


def _lower(value: object) -> str | None:
    return str(value).lower() if value else None


def queue_items(
    http: HttpClient, *, object_ids: Sequence[str] | None = None, object_type_code: int | None = None
) -> Iterator[QueueItem]:
    """The active queue items, of the given records and/or of one table (``object_type_code``, 4 = lead).

    Raises:
        DataverseError: the read failed (e.g. no read privilege on queue items).
    """
    base = [condition("statecode", "eq", 0)]
    if object_type_code is not None:
        base.append(condition("objecttypecode", "eq", object_type_code))
    chunks: list[list[str]] = (
        [list(object_ids[i : i + _CHUNK_IDS]) for i in range(0, len(object_ids), _CHUNK_IDS)]
        if object_ids is not None
        else [[]]
    )
    for chunk in chunks:
        if object_ids is not None and not chunk:
            continue
        where = [*base, in_values("_objectid_value", chunk)] if chunk else base
        params = build_query(
            select=["queueitemid", "_queueid_value", "_objectid_value", "_workerid_value"],
            filter=" and ".join(where),
        )
        prefer = prefer_header(5000, annotations=[LOOKUP_LOGICAL_NAME])
        for page in iter_pages(http, "queueitems", params=params, prefer=prefer):
            for row in page["value"]:
                yield QueueItem(
                    id=str(row["queueitemid"]).lower(),
                    queue_id=_lower(row.get("_queueid_value")) or "",
                    object_id=_lower(row.get("_objectid_value")) or "",
                    object_table=row.get(f"_objectid_value@{LOOKUP_LOGICAL_NAME}"),
                    worker_id=_lower(row.get("_workerid_value")),
                )


def remove_from_queue(http: HttpClient, queue_item_id: str) -> None:
    """Take a record out of its queue: ``RemoveFromQueue`` on the queue item.

    Raises:
        DataverseError: e.g. 404 when the queue item no longer exists.
    """
    http.request("POST", f"queueitems({queue_item_id})/{_NS}RemoveFromQueue", json_body={})


def _request(item: QueueRequest) -> BatchRequest:
    body: dict[str, object] = {
        "Target": {"@odata.type": f"{_NS}{item.target_table}", f"{item.target_table}id": item.target_id}
    }
    if item.source_queue_id:
        body["SourceQueue"] = {"@odata.type": f"{_NS}queue", "queueid": item.source_queue_id}
    return BatchRequest(
        "POST",
        f"queues({item.queue_id})/{_NS}AddToQueue",
        headers={"Content-Type": "application/json"},
        body=body,
    )


def _send(http: HttpClient, items: Sequence[QueueRequest]) -> list[QueueResult] | DataverseError | AuthError:
    try:
        content_type, body = encode_batch([_request(i) for i in items], base_url=http.base_url)
        response = http.request(
            "POST",
            "$batch",
            data=body,
            headers={"Content-Type": content_type, "Prefer": "odata.continue-on-error"},
            idempotent=False,  # an action: a lost answer is read back, never replayed
            ok_statuses=tuple(c for c in range(400, 429) if c != 401),
        )
        answer_type = response.headers.get("Content-Type", "")
        if not response.ok and not answer_type.lower().startswith("multipart/"):
            raise error_from_response(response, method="POST")
        parts = decode_batch(answer_type, response.content)
    except (DataverseError, AuthError) as exc:
        return exc
    results = []
    for index, item in enumerate(items):
        if index >= len(parts):
            results.append(QueueResult(item.target_id, False, None, None, "no answer for this record"))
            continue
        part = parts[index]
        if part.ok:
            answer = part.json() or {}
            results.append(
                QueueResult(item.target_id, True, part.status, None, None, _lower(answer.get("QueueItemId")))
            )
            continue
        error = error_from_batch_part(
            part, method="POST", url=f"{http.base_url}queues({item.queue_id})/{_NS}AddToQueue"
        )
        message = error.message + (f" Hint: {error.hint}" if error.hint else "")
        results.append(QueueResult(item.target_id, False, part.status, error.code, message))
    return results


def add_to_queues(
    http: HttpClient, items: Sequence[QueueRequest], *, batch_size: int = MAX_BATCH_REQUESTS
) -> list[QueueResult]:
    """Put each target in its queue; one result per item, in order. Never raises for one record.

    Raises:
        ValueError: batch_size outside 1..1000.
    """
    if not 1 <= batch_size <= MAX_BATCH_REQUESTS:
        raise ValueError(f"batch_size must be from 1 to {MAX_BATCH_REQUESTS}, got {batch_size!r}")
    out: list[QueueResult] = []
    for start in range(0, len(items), batch_size):
        out.extend(_run_chunk(http, items[start : start + batch_size]))
    return out


def _failed(items: Sequence[QueueRequest], error: DataverseError | AuthError) -> list[QueueResult]:
    status = 401 if isinstance(error, AuthError) else error.status
    return [QueueResult(i.target_id, False, status, error.code, str(error)) for i in items]


def _run_chunk(http: HttpClient, chunk: Sequence[QueueRequest]) -> list[QueueResult]:
    answer = _send(http, chunk)
    if isinstance(answer, list):
        return answer
    lost = not isinstance(answer, AuthError) and (answer.status is None or answer.status >= 500)
    failed = _failed(chunk, answer)
    if not lost:
        return failed
    # The batch may have been applied in full, in part or not at all: ask before sending again.
    try:
        found = {
            (q.object_id, q.queue_id): q.id
            for q in queue_items(http, object_ids=[i.target_id for i in chunk])
        }
    except (DataverseError, AuthError):
        return failed  # stays in doubt: the next run's read of the queue items settles it
    results: list[QueueResult | None] = []
    again: list[QueueRequest] = []
    for item in chunk:
        item_id = found.get((item.target_id.lower(), item.queue_id.lower()))
        if item_id is not None:
            results.append(QueueResult(item.target_id, True, 200, None, None, item_id, confirmed=True))
        else:
            results.append(None)
            again.append(item)
    second = _send(http, again) if again else []
    if not isinstance(second, list):
        second = _failed(again, second)
    resent = iter(second)
    return [r if r is not None else next(resent) for r in results]
