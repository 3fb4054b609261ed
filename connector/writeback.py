"""Write-back: plan → batches → results, for updates of existing records.

``update_many`` (exposed as :meth:`connector.client.DataverseClient.update_many`) turns
``(record_id, {column: value})`` pairs into ``$batch`` requests of ``PATCH <set>(<id>)`` with
``If-Match: *`` (a PATCH without it is an upsert and would *create* a missing record —
update-delete-entities-using-web-api.md), sends them with ``Prefer: odata.continue-on-error`` so
one bad record does not stop the rest, and returns one :class:`UpdateResult` per input, in input
order. A batch that fails as a whole (after the retry policy gave up) marks each of its records
failed; it never raises and loses the other batches' results.

Exactly once, under any fault: an update may carry the record's etag as read when the change was
planned (``(id, values, etag)``); its PATCH then has ``If-Match: <etag>``, so the server applies it
only to the version it was planned against and a replay of an applied batch is a no-op answered
412. Only a batch whose every part carries an etag is replayed by the HTTP layer after a lost
answer (a truncated or dropped response). Whenever the outcome of a part is unknown (the answer
was lost for good) or 412, the records are read back (:mod:`connector.readback`): a record that
holds the sent values is *applied* (nothing is sent again); one still at the planned version was
not, and is sent again with the same precondition; one that changed since planning is sent
again with its new etag only when the written columns still hold what the plan expected
(``(id, values, etag, expected)``: someone edited other columns), otherwise it fails as a
conflict and the next run re-plans it. Without an etag (``If-Match: *``) the batch is not
replayed blindly either: its records are read back and only the unapplied ones are resent.
So no update reaches the server twice, and every result says what the server holds.

Columns that yield: an update may name columns (``(id, values, etag, expected, yielding)``) that
give way to a concurrent change instead of failing the record. When the record changed since
planning and such a column no longer holds what the plan expected (a salesperson took the lead
the run meant to assign), that column is dropped, the rest of the record is sent under the new
etag, and the result lists the column in ``skipped``: written around, never overwritten.

Parallelism: the first batch goes alone; its response carries ``x-ms-dop-hint`` (the degree of
parallelism Dataverse suggests). The remaining batches run on a thread pool of
``min(hint, max_workers, 52)`` threads. A 429 on any thread closes the client's shared
:class:`~connector.http.ThrottleGate`, so every thread waits out ``Retry-After`` together.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from connector.batch import MAX_BATCH_REQUESTS, BatchRequest, BatchResponsePart, decode_batch, encode_batch
from connector.errors import AuthError, DataverseError
from connector.http import MAX_DOP, HttpClient, error_from_batch_part, error_from_response
from connector.readback import Current, read_back, same_column, same_values

__all__ = [
    "DEFAULT_WORKERS_WITHOUT_HINT",
    "UpdateResult",
    "encode_value",
    "plan_batches",
    "results_from_parts",
    "update_many",
    "worker_count",
]

MAX_SEND_ROUNDS = 3
"""Sends of one record at most (the first, then after a read-back showed it was not applied)."""

DEFAULT_WORKERS_WITHOUT_HINT = 4
"""Threads used when Dataverse sent no ``x-ms-dop-hint`` (it normally does); modest on purpose."""

# Whole-batch statuses whose body we read ourselves: Dataverse answers 400 with a multipart body
# when it stops at the first failed part. 401 and 429 stay with the HTTP layer (refresh, wait).
_BATCH_ERROR_STATUSES = tuple(code for code in range(400, 429) if code != 401)

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True, slots=True)
class UpdateResult:
    """The outcome of one update.

    Attributes:
        id: the record id given.
        ok: True when Dataverse applied the update.
        status: the HTTP status of the record's own response (None when no response arrived).
        error_code: Dataverse's error code (``0x80040217``), when there was one.
        message: what went wrong, for the report; None on success.
        confirmed: the answer was lost or 412, and a read-back showed the server holds the values.
        skipped: yielding columns left as Dynamics holds them because someone changed them since
            the update was planned (``ok`` then says the rest of the record was applied).
    """

    id: str
    ok: bool
    status: int | None
    error_code: str | None
    message: str | None
    confirmed: bool = False
    skipped: tuple[str, ...] = ()


def encode_value(value: Any) -> Any:
    """Return ``value`` in the JSON form Dataverse expects for a column.

    Aware datetimes become ISO 8601 UTC strings, dates ``YYYY-MM-DD``, Decimals numbers, numpy
    scalars their Python value; ``None`` clears the column.

    Raises:
        ValueError: NaN or infinity (JSON cannot carry them; pass None to clear), a naive datetime.
        TypeError: a value with no JSON form.
    """
    if value is None or isinstance(value, bool | str | int):
        return value
    if type(value).__name__ in ("NaTType", "NAType"):  # pandas' missing markers, without importing pandas
        raise ValueError("a missing value (NaT/NA) cannot be written; pass None to clear the column")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} cannot be written; pass None to clear the column")
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()}: give it a time zone (UTC) before writing")
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} cannot be written; pass None to clear the column")
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    item = getattr(value, "item", None)  # numpy / pandas scalars
    if callable(item):
        return encode_value(item())
    raise TypeError(f"cannot write a {type(value).__name__} to Dataverse")


def plan_batches(count: int, batch_size: int) -> list[range]:
    """Split ``count`` inputs into consecutive index ranges of at most ``batch_size``.

    Raises:
        ValueError: batch_size outside 1..1000.
    """
    if not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH_REQUESTS:
        raise ValueError(f"batch_size must be from 1 to {MAX_BATCH_REQUESTS}, got {batch_size!r}")
    return [range(start, min(start + batch_size, count)) for start in range(0, count, batch_size)]


def worker_count(dop_hint: int | None, max_workers: int | None, batches: int) -> int:
    """Threads for the remaining batches: the server's hint, within the caller's cap and 52."""
    wanted = dop_hint if dop_hint else DEFAULT_WORKERS_WITHOUT_HINT
    cap = MAX_DOP if max_workers is None else max(1, min(max_workers, MAX_DOP))
    return max(1, min(wanted, cap, batches))


def _failed(record_id: str, error: DataverseError | AuthError, status: int | None = None) -> UpdateResult:
    if isinstance(error, AuthError):
        return UpdateResult(record_id, False, 401, error.code, str(error))
    message = error.message + (f" Hint: {error.hint}" if error.hint else "")
    return UpdateResult(
        record_id, False, error.status if error.status is not None else status, error.code, message
    )


def results_from_parts(
    ids: Sequence[str],
    parts: Sequence[BatchResponsePart],
    *,
    entity_set: str,
    base_url: str,
) -> list[UpdateResult]:
    """Map a batch's inner responses to one result per record, by order.

    With ``odata.continue-on-error`` Dataverse answers every part. If fewer parts arrive (a server
    that stopped at the first error), the unanswered records are reported as failed, not dropped.
    """
    results: list[UpdateResult] = []
    for index, record_id in enumerate(ids):
        if index >= len(parts):
            results.append(
                UpdateResult(
                    record_id,
                    False,
                    None,
                    None,
                    "Dataverse sent no response for this update (the batch stopped early); retry next run",
                )
            )
            continue
        part = parts[index]
        if part.ok:
            results.append(UpdateResult(record_id, True, part.status, None, None))
            continue
        error = error_from_batch_part(part, method="PATCH", url=f"{base_url}{entity_set}({record_id})")
        results.append(_failed(record_id, error, part.status))
    return results


@dataclass(slots=True)
class _Pending:
    """One record's update on its way: what to send, under which precondition, what was expected."""

    position: int
    id: str
    body: dict[str, Any]
    etag: str | None
    expected: Mapping[str, Any] | None
    yielding: frozenset[str] = frozenset()
    skipped: tuple[str, ...] = ()

    def again(
        self, etag: str | None, body: dict[str, Any] | None = None, skipped: Sequence[str] = ()
    ) -> _Pending:
        """The same update (or ``body``), to send again under ``etag``, with more skipped columns."""
        return _Pending(
            self.position,
            self.id,
            self.body if body is None else body,
            etag,
            self.expected,
            self.yielding,
            (*self.skipped, *skipped),
        )


def _prepare(
    chunk: Sequence[tuple[Any, ...]],
) -> tuple[list[_Pending], list[UpdateResult | None]]:
    """Validate and encode the updates of one batch; records with bad input fail here."""
    pending: list[_Pending] = []
    early: list[UpdateResult | None] = [None] * len(chunk)
    for position, item in enumerate(chunk):
        given_id, values = item[0], item[1]
        etag = item[2] if len(item) > 2 else None
        expected = item[3] if len(item) > 3 else None
        yielding = frozenset(str(c) for c in item[4]) if len(item) > 4 and item[4] else frozenset()
        # A uuid.UUID is a GUID too; the result reports its string form, as Dataverse writes it.
        record_id = str(given_id) if isinstance(given_id, uuid.UUID) else given_id
        if not isinstance(record_id, str) or not _GUID.match(record_id):
            early[position] = UpdateResult(
                str(record_id), False, None, None, f"record id {record_id!r} is not a GUID; nothing was sent"
            )
            continue
        if not isinstance(values, Mapping) or not values:
            early[position] = UpdateResult(
                record_id, False, None, None, "no column values to write; nothing was sent"
            )
            continue
        try:
            body = {str(column): encode_value(value) for column, value in values.items()}
            expected_body = (
                {str(c): encode_value(v) for c, v in expected.items()} if expected is not None else None
            )
        except (TypeError, ValueError) as exc:
            early[position] = UpdateResult(record_id, False, None, None, f"not sent: {exc}")
            continue
        tag = str(etag) if etag is not None and str(etag).strip() and str(etag) != "<NA>" else None
        pending.append(_Pending(position, record_id, body, tag, expected_body, yielding))
    return pending, early


class _Refused:
    """Remembers a refused token, so later batches fail at once instead of each asking Entra again."""

    def __init__(self) -> None:
        self.error: AuthError | None = None


def _send(
    http: HttpClient, entity_set: str, pending: Sequence[_Pending], refused: _Refused
) -> list[UpdateResult] | DataverseError | AuthError:
    """Send one ``$batch``; per record results, or the error that left every outcome unknown."""
    requests_ = [
        BatchRequest(
            "PATCH",
            f"{entity_set}({p.id})",
            headers={"Content-Type": "application/json", "If-Match": p.etag or "*"},
            body=p.body,
        )
        for p in pending
    ]
    try:
        if refused.error is not None:
            raise refused.error
        content_type, body = encode_batch(requests_, base_url=http.base_url)
        response = http.request(
            "POST",
            "$batch",
            data=body,
            headers={"Content-Type": content_type, "Prefer": "odata.continue-on-error"},
            # A replay is a no-op only when every part carries a precondition on the version.
            idempotent=all(p.etag for p in pending),
            ok_statuses=_BATCH_ERROR_STATUSES,
        )
        answer_type = response.headers.get("Content-Type", "")
        if not response.ok and not answer_type.lower().startswith("multipart/"):
            raise error_from_response(response, method="POST")
        # A 4xx batch with a multipart body is Dataverse stopping at the first failure
        # (continue-on-error not applied): its parts still say which records failed.
        parts = decode_batch(answer_type, response.content)
    except (DataverseError, AuthError) as exc:
        if isinstance(exc, AuthError):
            refused.error = exc
        return exc
    return results_from_parts([p.id for p in pending], parts, entity_set=entity_set, base_url=http.base_url)


def _answer_lost(error: DataverseError | AuthError) -> bool:
    """Whether the batch may have reached the server although no usable answer came back."""
    if isinstance(error, AuthError):
        return False
    # No status: a transport failure or an unreadable body; 5xx: a gateway may answer after the
    # server ran the batch. A 4xx/429 answer means the batch was refused as a whole.
    return error.status is None or error.status >= 500


def _resolve(
    pending: _Pending, current: Current | None, failure: UpdateResult
) -> tuple[UpdateResult | None, _Pending | None]:
    """Decide, from a read-back, what happened to an update whose outcome is unknown or 412.

    Returns (final result, or None) and (the update to send again, or None).
    """
    if current is None:
        return failure, None  # could not be read back: stays in doubt, settled next run
    if current.values is None:
        return UpdateResult(
            pending.id, False, 404, "0x80040217", "the record no longer exists in Dynamics"
        ), None
    if same_values(pending.body, current.values):
        return UpdateResult(pending.id, True, 204, None, None, confirmed=True, skipped=pending.skipped), None
    if pending.etag is None or current.etag == pending.etag:
        # Not applied (the record is where it was): send again, never twice applied because the
        # precondition is the version read now.
        return None, pending.again(current.etag)
    if pending.expected is not None:
        held = current.values
        moved = [
            c
            for c, sent in pending.body.items()
            if not same_column(c, pending.expected.get(c), held.get(c))
            and not same_column(c, sent, held.get(c))
        ]
        if not moved:
            # Someone changed other columns since planning; ours still hold what the plan expected.
            return None, pending.again(current.etag)
        if set(moved) <= pending.yielding:
            # Someone changed a yielding column (took the lead): leave it, write the rest.
            rest = {c: v for c, v in pending.body.items() if c not in moved}
            if not rest or same_values(rest, held):
                return UpdateResult(
                    pending.id, True, 412, None, None, skipped=(*pending.skipped, *moved)
                ), None
            return None, pending.again(current.etag, rest, moved)
    return (
        UpdateResult(
            pending.id,
            False,
            412,
            "0x80060882",
            "changed in Dynamics since it was planned; not overwritten, re-planned next run",
        ),
        None,
    )


def _run_batch(
    http: HttpClient, entity_set: str, chunk: Sequence[tuple[Any, ...]], refused: _Refused
) -> list[UpdateResult]:
    pending, results = _prepare(chunk)
    for round_ in range(MAX_SEND_ROUNDS):
        if not pending:
            break
        answer = _send(http, entity_set, pending, refused)
        doubtful: list[tuple[_Pending, UpdateResult]] = []
        if isinstance(answer, list):
            for item, result in zip(pending, answer, strict=True):
                if result.status == 412 or (not result.ok and result.status is None):
                    doubtful.append((item, result))
                else:
                    # A resend without the columns that yielded still reports them.
                    results[item.position] = replace(result, skipped=item.skipped) if item.skipped else result
        else:
            failure = answer
            for item in pending:
                outcome = _failed(item.id, failure)
                if _answer_lost(failure):
                    doubtful.append((item, outcome))
                else:
                    results[item.position] = outcome
        pending = []
        if not doubtful:
            break
        try:
            found = read_back(http, entity_set, {item.id: list(item.body) for item, _ in doubtful})
        except (DataverseError, AuthError):
            found = {}
        for item, failure in doubtful:
            final, again = _resolve(item, found.get(item.id), failure)
            if final is not None:
                results[item.position] = final
            elif round_ + 1 < MAX_SEND_ROUNDS and again is not None:
                pending.append(again)
            else:
                results[item.position] = failure
    return [result for result in results if result is not None]


def update_many(
    http: HttpClient,
    entity_set: str,
    updates: Iterable[tuple[Any, ...]],
    *,
    batch_size: int = MAX_BATCH_REQUESTS,
    max_workers: int | None = None,
) -> list[UpdateResult]:
    """Update existing records in ``$batch`` requests; return one result per input, in input order.

    Args:
        http: the client.
        entity_set: e.g. ``leads``.
        updates: ``(record_id, {column: value})`` pairs, optionally followed by the record's etag
            as read when the change was planned and ``{column: value}`` the plan expected the
            columns to hold (see the module docstring); the id is a GUID string (or ``uuid.UUID``).
        batch_size: requests per ``$batch`` (1..1000).
        max_workers: most threads to use; None means up to the server's hint (never above 52).

    Returns:
        One :class:`UpdateResult` per input.

    Raises:
        ValueError: batch_size outside 1..1000.
    """
    items = list(updates)
    ranges = plan_batches(len(items), batch_size)
    if not ranges:
        return []
    results: list[list[UpdateResult]] = [[] for _ in ranges]
    refused = _Refused()
    # The first batch alone: its response tells us the server's suggested parallelism.
    results[0] = _run_batch(http, entity_set, items[ranges[0].start : ranges[0].stop], refused)
    rest = list(range(1, len(ranges)))
    if rest:
        workers = worker_count(http.throttle.dop_hint, max_workers, len(rest))
        if workers == 1:
            for index in rest:
                results[index] = _run_batch(
                    http, entity_set, items[ranges[index].start : ranges[index].stop], refused
                )
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dvsync-batch") as pool:
                futures = {
                    index: pool.submit(
                        _run_batch, http, entity_set, items[ranges[index].start : ranges[index].stop], refused
                    )
                    for index in rest
                }
                for index, future in futures.items():
                    results[index] = future.result()
    return [result for batch in results for result in batch]
