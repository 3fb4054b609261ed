"""``$batch``: multipart/mixed requests with change sets, served in one transaction.

Follows ``../shared/dataverse-webapi.md`` §5.7. The whole batch runs inside one SQLite transaction
(so 1,000 updates cost one commit, not 1,000); each change set, and each request outside a change
set, runs in its own savepoint, so a failed change set rolls back completely and a failed single
request leaves nothing behind. Without ``Prefer: odata.continue-on-error`` the batch stops at the
first failure, as Dataverse does. ``Content-ID`` values of a change set's requests can be used as
``$<n>`` in later URLs and ``@odata.bind`` values of the same change set.

This parser and writer are the server's own, independent of the connector's client code.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from connector.sandbox.faults import ApiError, bad_request
from connector.sandbox.protocol import API_PREFIX, Headers, Request, Response, error_response, parse_prefer
from connector.sandbox.storage import Store

# Serves one inner request exactly as if it had come alone (the service's ``handle``); passed in
# rather than imported, so this module does not depend on the service that depends on it.
Serve = Callable[[Request], Response]

__all__ = ["MAX_REQUESTS", "handle_batch", "parse_multipart"]

MAX_REQUESTS = 1000
CRLF = b"\r\n"


@dataclass
class Part:
    """One part of a multipart body: its headers and raw body."""

    headers: Headers
    body: bytes


@dataclass
class InnerRequest:
    """An HTTP request carried in an ``application/http`` part."""

    method: str
    target: str
    headers: Headers
    body: bytes
    content_id: str | None = None


@dataclass
class ChangeSet:
    """A change set: requests that succeed or fail together."""

    requests: list[InnerRequest] = field(default_factory=list)


def _boundary(content_type: str | None) -> str:
    m = re.search(r'boundary=(?:"([^"]+)"|([^;\s]+))', content_type or "", re.IGNORECASE)
    if not m or not (content_type or "").lower().startswith("multipart/mixed"):
        raise bad_request(
            "A $batch request needs Content-Type: multipart/mixed;boundary=batch_<id> (JSON batches are not "
            "supported by Dataverse, which implements OData 4.0)."
        )
    return m.group(1) or m.group(2)


def _split_headers(blob: bytes) -> tuple[Headers, bytes]:
    """Split ``headers CRLF CRLF body`` (LF-only line endings tolerated)."""
    normalised = blob
    for sep in (b"\r\n\r\n", b"\n\n"):
        idx = normalised.find(sep)
        if idx >= 0:
            head, body = normalised[:idx], normalised[idx + len(sep) :]
            break
    else:
        head, body = normalised, b""
    headers = Headers()
    for line in re.split(rb"\r?\n", head):
        if not line.strip():
            continue
        name, sep, value = line.decode("utf-8", "replace").partition(":")
        if not sep:
            raise bad_request(f"Malformed header line in $batch part: '{line.decode('utf-8', 'replace')}'.")
        headers[name.strip()] = value.strip()
    return headers, body


def parse_multipart(body: bytes, boundary: str) -> list[Part]:
    """Split a multipart/mixed body into parts.

    Raises:
        ApiError: 400 when the boundary never appears or the closing delimiter is missing.
    """
    delimiter = b"--" + boundary.encode()
    chunks = re.split(rb"(?:\r?\n)?" + re.escape(delimiter), body)
    if len(chunks) < 2:
        raise bad_request(f"The $batch body does not contain the boundary '{boundary}'.")
    parts: list[Part] = []
    closed = False
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            closed = True
            break
        chunk = chunk[2:] if chunk.startswith(CRLF) else chunk.lstrip(b"\n")
        headers, part_body = _split_headers(chunk)
        parts.append(Part(headers, part_body))
    if not closed:
        raise bad_request(f"The $batch body is not terminated by '--{boundary}--'.")
    return parts


def _inner_request(part: Part) -> InnerRequest:
    ctype = (part.headers.get("Content-Type") or "").lower()
    if not ctype.startswith("application/http"):
        raise bad_request(f"A $batch part must have Content-Type application/http, not '{ctype}'.")
    text = part.body
    line_end = re.search(rb"\r?\n", text)
    request_line = (text[: line_end.start()] if line_end else text).decode("utf-8", "replace").strip()
    rest = text[line_end.end() :] if line_end else b""
    # Lenient about unencoded spaces in the URL, as Microsoft's own examples are (§5.7).
    m = re.fullmatch(r"([A-Z]+)\s*(.+?)(?:\s+HTTP/1\.[01])?", request_line)
    if not m:
        raise bad_request(f"Malformed request line in $batch part: '{request_line}'.")
    headers, body = _split_headers(rest)
    return InnerRequest(m.group(1), m.group(2), headers, body.rstrip(b"\r\n"), part.headers.get("Content-ID"))


def _parse(req: Request) -> list[InnerRequest | ChangeSet]:
    boundary = _boundary(req.headers.get("Content-Type"))
    items: list[InnerRequest | ChangeSet] = []
    for part in parse_multipart(req.body, boundary):
        ctype = part.headers.get("Content-Type") or ""
        if ctype.lower().startswith("multipart/mixed"):
            changeset = ChangeSet()
            for inner in parse_multipart(part.body, _boundary(ctype)):
                request = _inner_request(inner)
                if request.method == "GET":
                    raise bad_request("GET requests are not allowed inside a change set.")
                changeset.requests.append(request)
            items.append(changeset)
        else:
            items.append(_inner_request(part))
    return items


def _to_request(outer: Request, inner: InnerRequest, content_ids: dict[str, str] | None) -> Request:
    target = inner.target
    if target.startswith("$"):
        path, _, query = target.partition("?")
        return Request(
            inner.method, path, query, inner.headers, inner.body, outer.base_url, content_ids, True
        )
    if "://" in target:
        split = urlsplit(target)
        path, query = split.path, split.query
    else:
        path, _, query = target.partition("?")
    if path.startswith(API_PREFIX):
        path = path[len(API_PREFIX) :]
    elif path.startswith("/api/data/"):
        path = path.split("/", 4)[-1]
    else:
        path = path.lstrip("/")
    return Request(
        inner.method, unquote(path), query, inner.headers, inner.body, outer.base_url, content_ids, True
    )


def _emit(status: int, response: Response, content_id: str | None) -> bytes:
    reason = _REASONS.get(status, "")
    lines = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        lines.append(f"Content-ID: {content_id}")
    lines.append("")
    lines.append(f"HTTP/1.1 {status} {reason}")
    for name, value in response.headers:
        lines.append(f"{name}: {value}")
    head = "\r\n".join(lines).encode() + b"\r\n\r\n"
    return head + response.body


def handle_batch(req: Request, store: Store, serve: Serve) -> Response:
    """Execute a ``$batch`` request and return the multipart/mixed response."""
    items = _parse(req)
    total = sum(len(i.requests) if isinstance(i, ChangeSet) else 1 for i in items)
    for item in items:
        if isinstance(item, ChangeSet) and len(item.requests) > MAX_REQUESTS:
            raise bad_request(
                f"The current change set contains too many operations. A maximum number of '{MAX_REQUESTS}' "
                "operations are allowed in a change set."
            )
    if total > MAX_REQUESTS:
        raise bad_request(
            "The current batch message contains too many parts. Only batch messages with a "
            "maximum number of "
            f"'{MAX_REQUESTS}' query operations, including changeset operations, are allowed."
        )
    continue_on_error = "odata.continue-on-error" in parse_prefer(req.headers)
    batch_boundary = f"batchresponse_{uuid.uuid4()}"
    out: list[bytes] = []
    with store.transaction():
        for item in items:
            if isinstance(item, ChangeSet):
                failed = _run_changeset(store, serve, req, item, out, batch_boundary)
            else:
                response = _run_single(store, serve, req, item)
                out.append(_emit(response.status, response, item.content_id))
                failed = response.status >= 400
            if failed and not continue_on_error:
                break
    delimiter = f"--{batch_boundary}\r\n".encode()
    body = b"".join(delimiter + chunk + b"\r\n" for chunk in out) + f"--{batch_boundary}--\r\n".encode()
    headers = [("Content-Type", f"multipart/mixed; boundary={batch_boundary}"), ("OData-Version", "4.0")]
    if continue_on_error:
        headers.append(("Preference-Applied", "odata.continue-on-error"))
    return Response(200, headers, body)


def _run_single(store: Store, serve: Serve, outer: Request, inner: InnerRequest) -> Response:
    try:
        with store.transaction():
            response = serve(_to_request(outer, inner, None))
            if response.status >= 400:
                raise _Rollback(response)
    except _Rollback as rollback:
        return rollback.response
    except ApiError as exc:
        return error_response(exc)
    return response


class _Rollback(Exception):
    def __init__(self, response: Response):
        super().__init__(response.status)
        self.response = response


def _run_changeset(
    store: Store, serve: Serve, outer: Request, changeset: ChangeSet, out: list[bytes], batch_boundary: str
) -> bool:
    """Run a change set atomically; return True when it failed (and was rolled back)."""
    content_ids: dict[str, str] = {}
    results: list[tuple[Response, str | None]] = []
    try:
        with store.transaction():
            for inner in changeset.requests:
                response = serve(_to_request(outer, inner, content_ids))
                if response.status >= 400:
                    raise _Rollback(response)
                if inner.content_id is not None:
                    entity = response.header("OData-EntityId") or response.header("Location")
                    if entity:
                        content_ids[inner.content_id] = entity
                results.append((response, inner.content_id))
    except _Rollback as rollback:
        # The whole change set is undone; its answer is the one error (§5.7).
        out.append(_emit(rollback.response.status, rollback.response, None))
        return True
    cs_boundary = f"changesetresponse_{uuid.uuid4()}"
    inner_body = b""
    for response, content_id in results:
        inner_body += f"--{cs_boundary}\r\n".encode() + _emit(response.status, response, content_id) + b"\r\n"
    inner_body += f"--{cs_boundary}--".encode()
    out.append(f"Content-Type: multipart/mixed; boundary={cs_boundary}\r\n\r\n".encode() + inner_body)
    return False


_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    304: "Not Modified",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    412: "Precondition Failed",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}
