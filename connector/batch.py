"""``$batch`` multipart/mixed encoding and decoding, as pure functions.

The format follows execute-batch-operations-using-web-api.md
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/execute-batch-operations-using-web-api):

- ``POST [Organization URI]/api/data/v9.2/$batch`` with ``Content-Type: multipart/mixed;boundary=batch_<id>``;
- every part starts with ``--batch_<id>``, then ``Content-Type: application/http`` and
  ``Content-Transfer-Encoding:binary``, a blank line, and a raw HTTP request
  (``PATCH <absolute URL> HTTP/1.1``, headers, blank line, JSON body);
- a change set is a part of type ``multipart/mixed;boundary=changeset_<id>`` whose own parts carry a
  ``Content-ID``; it runs as one transaction and may not contain a GET;
- lines end in CRLF; the batch ends with ``--batch_<id>--``; at most 1,000 requests per batch;
- the response (200 for the whole batch) is ``multipart/mixed; boundary=batchresponse_<guid>``,
  change-set results nested in ``changesetresponse_<guid>`` parts, each inner response a raw
  ``HTTP/1.1 <code> <reason>`` block with headers (``REQ_ID``, ``OData-EntityId``) and a JSON body.

Nothing here does I/O; :mod:`connector.writeback` sends what these functions build.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connector.errors import ProtocolError

__all__ = [
    "MAX_BATCH_REQUESTS",
    "BatchRequest",
    "BatchResponsePart",
    "ChangeSet",
    "count_requests",
    "decode_batch",
    "encode_batch",
]

MAX_BATCH_REQUESTS = 1000
"""Dataverse's limit: "Batch requests can contain up to 1000 individual requests"."""

CRLF = "\r\n"


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """One request inside a batch.

    Attributes:
        method: GET, POST, PATCH, PUT or DELETE.
        url: path relative to the API base (``leads(<id>)``), ``$<n>`` Content-ID reference, or absolute.
        headers: headers of the inner request (``If-Match``, ``Prefer``...).
        body: a JSON-serialisable object, pre-encoded JSON text, or None.
        content_id: the part's ``Content-ID`` (change sets; later parts refer to it as ``$<id>``).
    """

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    content_id: str | None = None


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """Requests that succeed or fail together (one transaction). GET is not allowed inside."""

    requests: Sequence[BatchRequest]


@dataclass(slots=True)
class BatchResponsePart:
    """One inner response of a batch.

    Attributes:
        status: the inner HTTP status.
        reason: the reason phrase (``No Content``).
        headers: inner response headers (names as sent; use :meth:`header` to look up).
        body: the raw inner body.
        content_id: the part's ``Content-ID`` (change-set parts).
        changeset: True when the part came from a change set response.
    """

    status: int
    reason: str
    headers: dict[str, str]
    body: bytes
    content_id: str | None = None
    changeset: bool = False

    @property
    def ok(self) -> bool:
        """True for a 2xx inner status."""
        return 200 <= self.status < 300

    def header(self, name: str) -> str | None:
        """Return a header value, matching the name case-insensitively."""
        lower = name.lower()
        for key, value in self.headers.items():
            if key.lower() == lower:
                return value
        return None

    def json(self) -> Any:
        """Decode the JSON body (None for an empty body).

        Raises:
            ProtocolError: the body is not JSON.
        """
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            raise ProtocolError(
                f"a $batch part with status {self.status} has a body that is not JSON", status=self.status
            ) from None


def count_requests(items: Sequence[BatchRequest | ChangeSet]) -> int:
    """Count the individual requests in a batch (each change-set member counts)."""
    return sum(len(item.requests) if isinstance(item, ChangeSet) else 1 for item in items)


def _inner_request(request: BatchRequest, base_url: str, lines: list[str]) -> None:
    method = request.method.upper()
    if request.url.startswith(("https://", "http://", "$")):
        url = request.url
    else:
        url = base_url + request.url.lstrip("/")
    lines.append(f"{method} {url} HTTP/1.1")
    body = request.body
    has_content_type = False
    for name, value in request.headers.items():
        if "\r" in name or "\n" in name or "\r" in value or "\n" in value:
            raise ValueError(f"header {name!r} of a batch request contains a line break")
        has_content_type = has_content_type or name.lower() == "content-type"
        lines.append(f"{name}: {value}")
    if body is None:
        lines.append("")
        lines.append("")
        return
    text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False, allow_nan=False)
    if not has_content_type:
        lines.append("Content-Type: application/json;type=entry")
    lines.append("")
    lines.append(text)


def encode_batch(
    items: Sequence[BatchRequest | ChangeSet],
    *,
    base_url: str,
    boundary: str | None = None,
) -> tuple[str, bytes]:
    """Encode requests and change sets as a ``$batch`` body.

    Args:
        items: requests and change sets, in the order Dataverse should run them.
        base_url: the API base (``https://org.crm.dynamics.com/api/data/v9.2/``); inner URLs are
            made absolute with it, as in Microsoft's examples.
        boundary: the batch boundary (``batch_<uuid4>`` when None).

    Returns:
        (Content-Type header value, body bytes).

    Raises:
        ValueError: no requests, more than 1,000, a GET inside a change set, or an empty change set.
    """
    total = count_requests(items)
    if total == 0:
        raise ValueError("a $batch needs at least one request")
    if total > MAX_BATCH_REQUESTS:
        raise ValueError(
            f"a $batch may hold at most {MAX_BATCH_REQUESTS} requests, got {total}; split it into several"
        )
    if not base_url.endswith("/"):
        base_url += "/"
    batch = boundary or f"batch_{uuid.uuid4()}"
    lines: list[str] = []
    for item in items:
        lines.append(f"--{batch}")
        if isinstance(item, ChangeSet):
            if not item.requests:
                raise ValueError("a change set needs at least one request")
            changeset = f"changeset_{uuid.uuid4()}"
            lines.append(f"Content-Type: multipart/mixed;boundary={changeset}")
            lines.append("")
            for number, request in enumerate(item.requests, start=1):
                if request.method.upper() == "GET":
                    raise ValueError("GET is not allowed inside a change set; put it outside")
                lines.append(f"--{changeset}")
                lines.append("Content-Type: application/http")
                lines.append("Content-Transfer-Encoding:binary")
                lines.append(f"Content-ID: {request.content_id or number}")
                lines.append("")
                _inner_request(request, base_url, lines)
            lines.append(f"--{changeset}--")
            lines.append("")
        else:
            lines.append("Content-Type: application/http")
            lines.append("Content-Transfer-Encoding:binary")
            lines.append("")
            _inner_request(item, base_url, lines)
    lines.append(f"--{batch}--")
    lines.append("")
    return f"multipart/mixed;boundary={batch}", CRLF.join(lines).encode("utf-8")


# --------------------------------------------------------------------------- decoding


def boundary_of(content_type: str) -> str:
    """Return the ``boundary`` parameter of a multipart Content-Type (quotes removed).

    Raises:
        ProtocolError: not multipart, or no boundary.
    """
    media, _, params = content_type.partition(";")
    if not media.strip().lower().startswith("multipart/"):
        raise ProtocolError(f"a $batch response must be multipart/mixed, got {media.strip() or 'nothing'!r}")
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "boundary":
            value = value.strip().strip('"')
            if value:
                return value
    raise ProtocolError("the $batch response's Content-Type has no boundary")


def _split_head(block: bytes) -> tuple[bytes, bytes]:
    """Split a block into (header lines, rest) at the first blank line (CRLF or bare LF)."""
    crlf = block.find(b"\r\n\r\n")
    lf = block.find(b"\n\n")
    if crlf != -1 and (lf == -1 or crlf <= lf):
        return block[:crlf], block[crlf + 4 :]
    if lf != -1:
        return block[:lf], block[lf + 2 :]
    return block, b""


def _parse_headers(head: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw in head.split(b"\n"):
        line = raw.rstrip(b"\r")
        if not line:
            continue
        name, sep, value = line.partition(b":")
        if not sep:
            raise ProtocolError(f"a $batch part has a malformed header line {line[:80]!r}")
        headers[name.strip().decode("latin-1")] = value.strip().decode("utf-8", "replace")
    return headers


def _get(headers: Mapping[str, str], name: str) -> str | None:
    lower = name.lower()
    for key, value in headers.items():
        if key.lower() == lower:
            return value
    return None


def _iter_parts(body: bytes, boundary: str) -> Iterator[bytes]:
    """Yield each part between ``--boundary`` delimiters (RFC 2046; CRLF before a delimiter belongs to it)."""
    delimiter = b"--" + boundary.encode("latin-1")
    start = body.find(delimiter)
    if start == -1:
        raise ProtocolError("the $batch response body does not contain its boundary; it may be truncated")
    position = start + len(delimiter)
    while True:
        if body.startswith(b"--", position):
            return  # close delimiter
        line_end = body.find(b"\n", position)
        if line_end == -1:
            raise ProtocolError("the $batch response ends inside a delimiter line; it was truncated")
        content_start = line_end + 1
        next_delimiter = body.find(b"\n" + delimiter, content_start - 1)
        if next_delimiter == -1:
            raise ProtocolError(
                "the $batch response has no closing boundary; it was truncated in transit",
            )
        end = next_delimiter
        if end > content_start and body[end - 1 : end] == b"\r":
            end -= 1
        yield body[content_start:end]
        position = next_delimiter + 1 + len(delimiter)


def _parse_http_part(
    part: bytes, *, content_id: str | None, changeset: bool, into: list[BatchResponsePart]
) -> None:
    head, rest = _split_head(part)
    headers = _parse_headers(head)
    content_type = _get(headers, "Content-Type") or ""
    if content_type.lower().startswith("multipart/"):
        inner_boundary = boundary_of(content_type)
        for inner in _iter_parts(rest, inner_boundary):
            inner_head, _ = _split_head(inner)
            inner_headers = _parse_headers(inner_head)
            _parse_http_part(inner, content_id=_get(inner_headers, "Content-ID"), changeset=True, into=into)
        return
    # application/http: the rest is a raw response: status line, headers, blank line, body.
    status_line_end = rest.find(b"\n")
    status_line = (rest if status_line_end == -1 else rest[:status_line_end]).rstrip(b"\r")
    pieces = status_line.split(b" ", 2)
    if len(pieces) < 2 or not pieces[0].startswith(b"HTTP/") or not pieces[1].isdigit():
        raise ProtocolError(f"a $batch part does not start with an HTTP status line: {status_line[:80]!r}")
    response_head, response_body = _split_head(rest[status_line_end + 1 :] if status_line_end != -1 else b"")
    into.append(
        BatchResponsePart(
            status=int(pieces[1]),
            reason=pieces[2].decode("latin-1") if len(pieces) > 2 else "",
            headers=_parse_headers(response_head),
            body=response_body,
            content_id=content_id,
            changeset=changeset,
        )
    )


def decode_batch(content_type: str, body: bytes) -> list[BatchResponsePart]:
    """Decode a ``$batch`` response into its inner responses, in order, change sets flattened.

    Args:
        content_type: the response's Content-Type (carries the ``batchresponse_`` boundary).
        body: the raw response body.

    Returns:
        One part per inner response. A change set that failed as a whole comes back as one error
        part (Dataverse rolls the set back and answers once), which the caller maps to all its
        requests.

    Raises:
        ProtocolError: not multipart, no boundary, truncated, or a part without a status line.
    """
    boundary = boundary_of(content_type)
    parts: list[BatchResponsePart] = []
    for part in _iter_parts(body, boundary):
        _parse_http_part(part, content_id=None, changeset=False, into=parts)
    return parts
