"""HTTP to the Dataverse Web API: one session factory, one retry policy, one response → error function.

Everything that talks to Dataverse goes through :class:`HttpClient`. It sets the base URL
(``<environment>/api/data/v9.2/``), the OData headers, the User-Agent and a (connect, read) timeout
on every request; it adds the bearer token; it retries what is safe to retry; and it turns every
unusable answer into a typed error of :mod:`connector.errors`.

Retry policy (declared once, in :func:`HttpClient._retrying`, with tenacity):

- **429** (service protection): wait at least ``Retry-After`` (seconds or an HTTP-date), exponential
  backoff when the header is missing. A 429 also closes a shared :class:`ThrottleGate`, so every
  thread using this client waits, as Microsoft asks ("reduce concurrency" after a 429,
  https://learn.microsoft.com/power-apps/developer/data-platform/api-limits).
- **502 / 503 / 504**, connection errors and read timeouts: capped exponential backoff with jitter.
- A **total time budget** and a maximum number of failed attempts (429s do not count: under
  sustained throttling the budget, not the count, decides); when either runs out the last typed
  error is raised, saying how many attempts were made.
- **401**: the token provider's ``force_refresh()`` is called once and the request resent once.

What may be retried after a transport failure: a request that provably never reached the server
(the connection could not be opened) is always safe to resend. After that point only *idempotent*
requests are resent: GET, PUT, DELETE, and a PATCH with ``If-Match`` (it sets absolute values on an
existing record, so applying it twice leaves the same state). A POST is not idempotent in general
(a create would run twice), so the caller has to say so: the write-back's ``$batch`` POST carries
only ``PATCH`` parts with ``If-Match: *`` and is sent with ``idempotent=True``. 502/503/504 follow
the same rule, because a gateway may answer 502/504 after Dataverse already ran the request; a 429
is always retried, because a throttled request was refused before it ran.

Kept as one module on purpose: the session factory, the retry policy and the response-to-error
function are the single path every request takes, and each needs the others' details.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import requests
import tenacity
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

from connector.batch import BatchResponsePart
from connector.errors import (
    AuthError,
    ChangeTokenExpiredError,
    ChangeTrackingDisabledError,
    DataverseError,
    DuplicateRecordError,
    EndpointError,
    FatalApiError,
    InvalidRequestError,
    PermissionDeniedError,
    PreconditionFailedError,
    ProtocolError,
    RecordNotFoundError,
    RecordValidationError,
    RetriableError,
    ServiceUnavailableError,
    ThrottledError,
    TransportError,
)
from connector.query import encode_query
from core.version import __version__

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_DOP",
    "HttpClient",
    "RetryPolicy",
    "ThrottleGate",
    "ThrottleState",
    "TokenProvider",
    "create_session",
    "decode_json",
    "error_from_batch_part",
    "error_from_parts",
    "error_from_response",
    "odata_headers",
    "parse_retry_after",
    "sanitize_url",
    "user_agent",
]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT: tuple[float, float] = (10.0, 120.0)
"""(connect, read) seconds. Dataverse can take tens of seconds on a 5,000-row page or a $batch."""

MAX_DOP = 52
"""Microsoft's documented concurrent-request limit per user (api-limits: "52 or higher")."""

# Dataverse error codes (hex, as they appear in error.code), from the error-code list
# (includes/data-service-error-codes.md) and api-limits.md. Compared lower-case.
CODE_NOT_FOUND = "0x80040217"
CODE_ALT_KEY_NOT_FOUND = "0x80060891"
CODE_CONCURRENCY = "0x80060882"
CODE_CHANGE_TOKEN_EXPIRED = "0x80044352"
CODE_CHANGE_TRACKING_DISABLED = "0x80072491"
CODE_THROTTLE_REQUESTS = "0x80072322"
CODE_THROTTLE_TIME = "0x80072321"
CODE_THROTTLE_CONCURRENCY = "0x80072326"
CODE_THROTTLE_DSS = "0x80072327"
CODE_SQL_BUSY = "0x8004a001"
CODE_PAYLOAD = "0x80048d19"
CODE_SEGMENT_NOT_FOUND = "0x8006088a"
CODE_DUPLICATES_FOUND = "0x80040333"
CODE_DUPLICATE_RECORD = "0x80040237"
CODE_DUPLICATE_KEY = "0x80060892"
CODE_VALIDATION = "0x80044331"
CODE_PLUGIN = "0x80040265"
CODE_TOKEN_EXPIRED = "0x8005f101"
CODE_NOT_AUTHENTICATED = "0x80044302"

_THROTTLE_HINTS = {
    CODE_THROTTLE_REQUESTS: "more than 6,000 requests in 5 minutes for this user; use $batch or fewer calls",
    CODE_THROTTLE_TIME: "the combined execution time limit (20 minutes per 5 minutes) was reached; "
    "lower writeback.max_parallel",
    CODE_THROTTLE_CONCURRENCY: "too many concurrent requests; lower writeback.max_parallel",
    CODE_THROTTLE_DSS: "too many concurrent requests; lower writeback.max_parallel",
}
# Not "refused twice": a plain callable without force_refresh() gets no second attempt.
_APP_USER_HINT = (
    "check that the app registration is an application user in this Dataverse environment with a "
    "security role, that the token's audience is the environment URL, and, with auth.mode = token, "
    "that the static token has not expired"
)


class TokenProvider(Protocol):
    """A callable returning a bearer token; ``force_refresh()`` is optional (see connector.auth)."""

    def __call__(self) -> str: ...


def user_agent() -> str:
    """Return the User-Agent dvsync sends, ``dvsync/<version>``."""
    return f"dvsync/{__version__}"


def odata_headers() -> dict[str, str]:
    """Return the headers every Dataverse request carries (compose-http-requests-handle-errors.md)."""
    return {
        "Accept": "application/json",
        "OData-MaxVersion": "4.0",
        "OData-Version": "4.0",
        "User-Agent": user_agent(),
    }


def create_session(*, verify: bool | str = True, pool_size: int = MAX_DOP) -> requests.Session:
    """Create the one kind of session dvsync uses for Dataverse.

    Args:
        verify: True, False, or the path of a CA bundle (the sandbox's ``--tls`` certificate).
        pool_size: connections kept per host; sized for the write-back's thread pool.

    Returns:
        A session with the OData headers and the User-Agent set. The base URL and the timeout are
        applied per request by :class:`HttpClient`, which every caller uses.
    """
    session = requests.Session()
    session.headers.update(odata_headers())
    session.verify = verify
    # Retries are ours (tenacity, with Retry-After and a budget); urllib3's own are switched off.
    adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


# --------------------------------------------------------------------------- throttle state


@dataclass
class ThrottleState:
    """What Dataverse last said about load, from response headers (api-limits.md).

    Attributes:
        dop_hint: ``x-ms-dop-hint``, the degree of parallelism the server suggests.
        burst_remaining: ``x-ms-ratelimit-burst-remaining-xrm-requests``: requests left in the window.
        time_remaining: ``x-ms-ratelimit-time-remaining-xrm-requests``: execution time left.
        retry_after: seconds from the last 429's ``Retry-After``, if any.
        throttled_count: how many 429s this client has received.
    """

    dop_hint: int | None = None
    burst_remaining: int | None = None
    time_remaining: float | None = None
    retry_after: float | None = None
    throttled_count: int = 0

    def update(self, headers: Mapping[str, str]) -> None:
        """Record the load headers of one response (absent headers keep their last value)."""
        dop = _int_header(headers.get("x-ms-dop-hint"))
        if dop is not None and dop > 0:
            self.dop_hint = dop
        burst = _int_header(headers.get("x-ms-ratelimit-burst-remaining-xrm-requests"))
        if burst is not None:
            self.burst_remaining = burst
        remaining = _float_header(headers.get("x-ms-ratelimit-time-remaining-xrm-requests"))
        if remaining is not None:
            self.time_remaining = remaining


def _int_header(value: str | None) -> int | None:
    try:
        return int(value.strip()) if value is not None else None
    except ValueError:
        return None


def _float_header(value: str | None) -> float | None:
    try:
        return float(value.replace(",", "").strip()) if value is not None else None
    except ValueError:
        return None


class ThrottleGate:
    """A shared pause: after a 429, every thread waits until Retry-After has passed.

    Args:
        clock: monotonic clock in seconds (injectable for tests).
        sleep: sleep function (injectable for tests).
    """

    def __init__(self, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._open_at = 0.0

    def close_for(self, seconds: float) -> None:
        """Hold every caller of :meth:`wait` for ``seconds`` from now (extends, never shortens)."""
        with self._lock:
            self._open_at = max(self._open_at, self._clock() + max(0.0, seconds))

    def remaining(self) -> float:
        """Seconds until the gate opens (0 when open)."""
        with self._lock:
            return max(0.0, self._open_at - self._clock())

    def wait(self) -> float:
        """Sleep until the gate is open; return how long this call slept.

        One sleep, not a loop: if another thread extends the pause meanwhile, this request goes
        anyway and a second 429 simply closes the gate again (a loop could spin forever on a
        clock that a test does not advance).
        """
        pause = self.remaining()
        if pause > 0:
            self._sleep(pause)
            return pause
        return 0.0


# --------------------------------------------------------------------------- retry policy


@dataclass(frozen=True)
class RetryPolicy:
    """The retry settings; sleep, clock and randomness are injectable so tests never wait.

    Attributes:
        max_attempts: attempts per request, the first included, not counting 429s (bounded by the budget).
        budget_seconds: total time one request may spend including waits; past it, give up.
        backoff_initial: first backoff in seconds for 5xx and transport errors.
        backoff_max: cap of one backoff (also caps a 429 without Retry-After).
        max_retry_after: longest Retry-After honoured before giving up (a day-long wait is a failure).
        sleep: ``time.sleep`` or a fake.
        clock: ``time.monotonic`` or a fake.
        random: returns a float in [0, 1) for jitter.
    """

    max_attempts: int = 8
    budget_seconds: float = 300.0  # the same default as settings' http.retry_budget_seconds
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    max_retry_after: float = 300.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    random: Callable[[], float] = field(default=random.random, repr=False)

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff for the given 1-based attempt, capped at backoff_max."""
        ceiling = min(self.backoff_max, self.backoff_initial * (2 ** (attempt - 1)))
        # Half fixed, half random: never zero (a zero wait hammers a struggling server), still spread.
        return ceiling / 2 + self.random() * ceiling / 2


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Parse ``Retry-After`` as delta-seconds or an HTTP-date; return seconds (>= 0) or None.

    Args:
        value: the header value.
        now: current POSIX time, for HTTP-dates (defaults to ``time.time()``).
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


# --------------------------------------------------------------------------- errors

_QUOTED = re.compile(r"(?<!LogicalName=)(?<!Name=)'(?:[^']|'')*'")
"""Quoted key values in a path (alternate keys carry data); metadata names (LogicalName='lead') stay."""
_SAFE_QUERY_OPTIONS = {"$select", "$orderby", "$top", "$count", "$expand", "api-version"}


def sanitize_url(url: str) -> str:
    """Return the URL with data-bearing parts redacted, for messages and logs.

    Query option names are kept; values are kept only for options that name columns
    (``$select``, ``$orderby``, ...). ``$filter``, ``$skiptoken``, ``$deltatoken``, ``fetchXml``,
    parameter aliases and quoted key values in the path (``contacts(emailaddress1='...')``) can carry
    customer data and are replaced by ``…``. User info in the host is dropped.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc.rsplit("@", 1)[-1]
    path = _QUOTED.sub("'…'", parts.path)
    pairs = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in _SAFE_QUERY_OPTIONS and "'" not in value:
            pairs.append(f"{name}={value}")
        else:
            pairs.append(f"{name}=…")
    return urlunsplit((parts.scheme, netloc, path, "&".join(pairs), ""))


def _request_id(headers: Mapping[str, str]) -> str | None:
    for name in ("x-ms-service-request-id", "REQ_ID", "x-ms-request-id"):
        value = headers.get(name)
        if value:
            return value.split(",")[0].strip()
    return None


def _html_title(text: str) -> str | None:
    match = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
    return " ".join(match.group(1).split())[:120] if match else None


def _parse_error_body(body: bytes, content_type: str) -> tuple[str | None, str | None, str | None]:
    """Return (code, message, problem) from an error body; problem says why it is not Dataverse JSON."""
    if not body.strip():
        return None, None, "with an empty body"
    if "html" in content_type.lower() or body.lstrip()[:1] == b"<":
        text = body[:4096].decode("utf-8", "replace")
        title = _html_title(text)
        return (
            None,
            None,
            "with an HTML page"
            + (f" ({title!r})" if title else "")
            + (", probably from a proxy or gateway in front of Dataverse"),
        )
    try:
        data = json.loads(body)
    except ValueError:
        return None, None, "with a body that is not JSON (truncated or not from Dataverse)"
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None, None, "with JSON that has no 'error' object"
    code = error.get("code")
    message = error.get("message")
    inner = error.get("innererror")
    if not message and isinstance(inner, dict):
        message = inner.get("message")
    code_text = str(code).strip().lower() if code not in (None, "") else None
    return code_text, str(message) if message else None, None


def error_from_parts(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    method: str,
    url: str,
) -> DataverseError | AuthError:
    """Turn one HTTP answer into the right exception of :mod:`connector.errors`.

    Used for whole responses and for the parts of a ``$batch`` response alike.

    Args:
        status: HTTP status code.
        headers: response headers (case-insensitive mapping preferred).
        body: raw response body.
        method: the request method.
        url: the request URL (sanitised here; never pass headers or tokens).

    Returns:
        The exception to raise (not raised here).
    """
    safe_url = sanitize_url(url)
    content_type = headers.get("Content-Type", "") or ""
    code, message, problem = _parse_error_body(body, content_type)
    request_id = _request_id(headers)
    if message is None:
        message = f"HTTP {status} {problem or 'without an error message'}"
    kwargs: dict[str, Any] = {
        "status": status,
        "code": code,
        "request_id": request_id,
        "method": method,
        "url": safe_url,
    }

    if status == 401 or code in (CODE_TOKEN_EXPIRED, CODE_NOT_AUTHENTICATED):
        where = f"{method} {safe_url}" + (f" [request id {request_id}]" if request_id else "")
        return AuthError(
            f"Dataverse refused the bearer token (HTTP {status}) for {where}: {message}",
            code=code,
            hint=_APP_USER_HINT,
            correlation_id=request_id,
            status=status,
        )
    if status == 429 or code in _THROTTLE_HINTS:
        return ThrottledError(
            message,
            retry_after=parse_retry_after(headers.get("Retry-After")),
            hint=_THROTTLE_HINTS.get(code or "", "Dataverse service protection limit reached"),
            **kwargs,
        )
    if code == CODE_SQL_BUSY:
        return ServiceUnavailableError(message, **kwargs)
    if code == CODE_CHANGE_TOKEN_EXPIRED:
        return ChangeTokenExpiredError(
            message,
            hint="the delta link is older than the change-tracking retention; re-read in full",
            **kwargs,
        )
    if code == CODE_CHANGE_TRACKING_DISABLED:
        return ChangeTrackingDisabledError(
            message,
            hint="enable change tracking on the table (table properties → 'Track changes') "
            "or sync it by a modifiedon window",
            **kwargs,
        )
    if code in (CODE_NOT_FOUND, CODE_ALT_KEY_NOT_FOUND) or (
        status == 404 and not code and "does not exist" in message.lower()
    ):
        return RecordNotFoundError(message, **kwargs)
    if code in (CODE_DUPLICATES_FOUND, CODE_DUPLICATE_RECORD, CODE_DUPLICATE_KEY):
        return DuplicateRecordError(message, **kwargs)
    if code == CODE_CONCURRENCY or status == 412:
        return PreconditionFailedError(message, **kwargs)
    if code in (CODE_VALIDATION, CODE_PLUGIN):
        return RecordValidationError(message, **kwargs)
    if status in (502, 503, 504):
        return ServiceUnavailableError(message, **kwargs)
    if status == 403:
        return PermissionDeniedError(
            message, hint="give the application user a security role with this privilege", **kwargs
        )
    if code == CODE_PAYLOAD:
        return InvalidRequestError(
            message,
            hint="a property in the body is not declared on the table; polymorphic lookups need the "
            "typed navigation property (customerid_account@odata.bind)",
            **kwargs,
        )
    if code == CODE_SEGMENT_NOT_FOUND:
        return InvalidRequestError(
            message,
            hint="entity set names are case-sensitive plurals such as 'leads' (the table's EntitySetName)",
            **kwargs,
        )
    if "could not find a property named" in message.lower():
        return InvalidRequestError(
            message,
            hint="column names are case-sensitive logical names (lower case, e.g. 'emailaddress1')",
            **kwargs,
        )
    if 400 <= status < 500:
        return InvalidRequestError(message, **kwargs)
    if 300 <= status < 400:
        return FatalApiError(
            message,
            hint="Dataverse does not redirect API calls; a proxy or a wrong dataverse.url sent this redirect",
            **kwargs,
        )
    return FatalApiError(message, **kwargs)


def error_from_batch_part(part: BatchResponsePart, *, method: str, url: str) -> DataverseError | AuthError:
    """:func:`error_from_parts` for one failed inner response of a ``$batch``.

    Its headers are looked up case-insensitively, as HTTP wants: a part's ``REQ_ID`` or
    ``Retry-After`` reaches the error whatever case the server wrote it in.
    """
    return error_from_parts(part.status, CaseInsensitiveDict(part.headers), part.body, method=method, url=url)


def error_from_response(
    response: requests.Response, *, method: str | None = None
) -> DataverseError | AuthError:
    """Turn a ``requests`` response into the right exception (see :func:`error_from_parts`)."""
    return error_from_parts(
        response.status_code,
        response.headers,
        response.content,
        method=method or (response.request.method if response.request else "GET") or "GET",
        url=response.url or (response.request.url if response.request else "") or "",
    )


def decode_json(response: requests.Response, *, method: str = "GET") -> dict[str, Any]:
    """Decode a successful Dataverse JSON body, or raise ProtocolError saying what arrived instead.

    Raises:
        ProtocolError: an empty body, an HTML page, non-JSON or truncated JSON, or JSON that is not
            an object.
    """
    body = response.content
    context = {
        "status": response.status_code,
        "request_id": _request_id(response.headers),
        "method": method,
        "url": sanitize_url(response.url or ""),
    }
    if not body or not body.strip():
        raise ProtocolError(
            f"HTTP {response.status_code} with an empty body where Dataverse sends JSON",
            hint="a proxy or load balancer may be cutting responses; retry, or check the network path",
            **context,
        )
    content_type = response.headers.get("Content-Type", "")
    if "html" in content_type.lower() or body.lstrip()[:1] == b"<":
        title = _html_title(body[:4096].decode("utf-8", "replace"))
        raise ProtocolError(
            "an HTML page arrived instead of Dataverse JSON" + (f" ({title!r})" if title else ""),
            hint="a proxy, captive portal or sign-in page answered; check dataverse.url and the network path",
            **context,
        )
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise ProtocolError(
            f"the body is not valid JSON ({exc.msg} at byte {exc.pos} of {len(body)}); "
            "it was probably truncated in transit",
            **context,
        ) from None
    if not isinstance(data, dict):
        raise ProtocolError(f"expected a JSON object, got {type(data).__name__}", **context)
    return data


# --------------------------------------------------------------------------- the client


_IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


def _is_idempotent(method: str, headers: Mapping[str, str] | None, declared: bool | None) -> bool:
    if declared is not None:
        return declared
    if method in _IDEMPOTENT_METHODS:
        return True
    return method == "PATCH" and any(k.lower() == "if-match" for k in (headers or {}))


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the request cannot have reached the server (the connection was never opened)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.ReadTimeout):
        text = repr(exc.args[0]) if exc.args else ""
        return any(
            marker in text for marker in ("NewConnectionError", "NameResolutionError", "ConnectionRefused")
        )
    return False


class HttpClient:
    """Send requests to one Dataverse environment with auth, timeouts, retries and typed errors.

    Args:
        environment_url: ``https://<org>.crm.dynamics.com`` (no API path).
        token_provider: callable returning a bearer token; ``force_refresh()`` used on a 401 if present.
        session: a session from :func:`create_session` (one is made when None).
        retry: the retry policy.
        api_version: Web API version, ``v9.2``.
        timeout: default (connect, read) timeout in seconds.
        verify: TLS verification or CA bundle path, when this client makes the session.
    """

    def __init__(
        self,
        environment_url: str,
        token_provider: Callable[[], str],
        *,
        session: requests.Session | None = None,
        retry: RetryPolicy | None = None,
        api_version: str = "v9.2",
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        verify: bool | str = True,
    ) -> None:
        self.environment_url = environment_url.rstrip("/")
        self.base_url = f"{self.environment_url}/api/data/{api_version}/"
        self._token_provider = token_provider
        self.session = session if session is not None else create_session(verify=verify)
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.throttle = ThrottleState()
        self.gate = ThrottleGate(self.retry.clock, self.retry.sleep)
        self._state_lock = threading.Lock()
        self._odata_headers = odata_headers()

    def __repr__(self) -> str:
        return f"HttpClient({self.base_url!r})"

    def url(self, path: str) -> str:
        """Return an absolute URL: absolute URLs (next/delta links) verbatim, paths under the base.

        Raises:
            ProtocolError: an absolute URL on another host; the bearer token only goes to this
                environment (``org.crm.dynamics.com`` or its ``org.api.crm.dynamics.com`` alias,
                which Dataverse uses in links).
        """
        if path.startswith(("https://", "http://")):
            if not self._same_environment(path):
                raise ProtocolError(
                    "refusing to follow a link to another host with this environment's token",
                    url=sanitize_url(path),
                    hint="a nextLink or deltaLink pointed away from dataverse.url; "
                    "check for a proxy rewriting links",
                )
            return path
        return self.base_url + path.lstrip("/")

    def _same_environment(self, link: str) -> bool:
        ours, theirs = urlsplit(self.environment_url), urlsplit(link)
        if ours.scheme != theirs.scheme:
            return False
        # An explicit default port (https://org.crm.dynamics.com:443) is the same origin as none.
        default = 443 if ours.scheme == "https" else 80
        if (ours.port or default) != (theirs.port or default):
            return False
        return _environment_host(ours.hostname) == _environment_host(theirs.hostname)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        data: bytes | None = None,
        idempotent: bool | None = None,
        ok_statuses: tuple[int, ...] = (),
    ) -> requests.Response:
        """Send one request under the retry policy and return the successful response.

        Args:
            method: HTTP method.
            path: path relative to the API base (``leads``), or an absolute next/delta link.
            params: query parameters; values are URL-encoded here (``$`` kept literal).
            headers: extra headers (Prefer, If-Match, Consistency, ...).
            json_body: a JSON-serialisable body.
            data: a raw body (``$batch``); give its Content-Type in ``headers``.
            idempotent: override the method-based rule for retrying after transport errors.
            ok_statuses: non-2xx statuses the caller handles itself (e.g. 404 on an existence check).

        Raises:
            DataverseError: the typed error for the final answer (retriable ones after the policy gave up).
            AuthError: a 401 that one token refresh did not cure.
        """
        method = method.upper()
        url = self.url(path)
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{encode_query(params)}"
        body = data
        send_headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body, ensure_ascii=False, allow_nan=False).encode("utf-8")
            send_headers.setdefault("Content-Type", "application/json; charset=utf-8")
        may_retry_unsent_only = not _is_idempotent(method, send_headers, idempotent)
        start = self.retry.clock()
        attempts = 0
        refreshed: list[bool] = [False]  # one token refresh per request, however many attempts

        def attempt() -> requests.Response:
            nonlocal attempts
            attempts += 1
            return self._send_with_auth(
                method, url, send_headers, body, ok_statuses, may_retry_unsent_only, refreshed
            )

        failures = 0  # attempts that failed other than by a 429

        def stop(state: tenacity.RetryCallState) -> bool:
            nonlocal failures
            elapsed = self.retry.clock() - start
            # A 429 is the server asking us to wait, not a failure: only the time budget bounds
            # those, so sustained throttling never exhausts an attempt count before the budget.
            if not isinstance(state.outcome.exception() if state.outcome else None, ThrottledError):
                failures += 1
            return (
                failures >= self.retry.max_attempts
                or elapsed + (state.upcoming_sleep or 0.0) > self.retry.budget_seconds
            )

        def wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, ThrottledError):
                if exc.retry_after is not None:
                    # Retry-After is a floor; the gate already holds the other threads that long.
                    return max(exc.retry_after, self.gate.remaining())
                return max(self.retry.backoff(state.attempt_number), self.gate.remaining())
            return self.retry.backoff(state.attempt_number)

        def retriable(exc: BaseException) -> bool:
            if isinstance(exc, _NotRetriable):
                return False
            if isinstance(exc, ThrottledError):
                return exc.retry_after is None or exc.retry_after <= self.retry.max_retry_after
            return isinstance(exc, RetriableError)

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.warning(
                "%s %s failed (%s); retry %d in %.1fs",
                method,
                sanitize_url(url),
                type(exc).__name__,
                state.attempt_number,
                state.upcoming_sleep,
            )

        retrying = tenacity.Retrying(
            stop=stop,
            wait=wait,
            retry=tenacity.retry_if_exception(retriable),
            sleep=self.retry.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _NotRetriable as wrapped:
            raise wrapped.error from None
        except RetriableError as exc:
            raise _gave_up(exc, attempts, self.retry.clock() - start) from None

    def get_json(
        self,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """GET a path or link and decode its JSON object body."""
        response = self.request("GET", path, params=params, headers=headers)
        return decode_json(response, method="GET")

    # -- one attempt ------------------------------------------------------------------------

    def _send_with_auth(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | None,
        ok_statuses: tuple[int, ...],
        unsent_only: bool,
        refreshed: list[bool],
    ) -> requests.Response:
        response = self._send(method, url, headers, body, unsent_only)
        if response.status_code == 401 and not refreshed[0]:
            refresh = getattr(self._token_provider, "force_refresh", None)
            if callable(refresh):
                refreshed[0] = True
                refresh()
                response = self._send(method, url, headers, body, unsent_only)
        # Not response.ok: that is true for 3xx, and Dataverse never redirects an API call.
        if 200 <= response.status_code < 300 or response.status_code in ok_statuses:
            return response
        error = error_from_response(response, method=method)
        if isinstance(error, ThrottledError):
            with self._state_lock:
                self.throttle.throttled_count += 1
                self.throttle.retry_after = error.retry_after
            pause = error.retry_after if error.retry_after is not None else self.retry.backoff(1)
            self.gate.close_for(min(pause, self.retry.max_retry_after))
        elif isinstance(error, ServiceUnavailableError) and unsent_only:
            # A gateway's 502/504 may come after Dataverse ran a non-idempotent request.
            raise _NotRetriable(error)
        raise error

    def _send(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, unsent_only: bool
    ) -> requests.Response:
        self.gate.wait()
        token = self._token_provider()
        # The OData headers go on every request too, so a caller's own session cannot drop them.
        all_headers = {**self._odata_headers, **headers, "Authorization": f"Bearer {token}"}
        try:
            prepared = self.session.prepare_request(
                requests.Request(method, url, headers=all_headers, data=body)
            )
            # Send links byte for byte: requests would re-quote %2f as %2F; Microsoft says not to
            # modify @odata.nextLink / deltaLink (page-results.md).
            prepared.url = url
            # verify is resolved per request: requests lets REQUESTS_CA_BUNDLE override a session-level
            # CA bundle (psf/requests#3829), which would silently ignore dataverse.ca_bundle.
            settings = self.session.merge_environment_settings(url, {}, False, self.session.verify, None)
            response = self.session.send(
                prepared,
                timeout=self.timeout,
                allow_redirects=False,
                verify=self.session.verify,
                proxies=settings.get("proxies"),
                cert=settings.get("cert"),
            )
            # Read the whole body here, so a connection dropped mid-body is a transport error too.
            _ = response.content
        except requests.RequestException as exc:
            endpoint = _endpoint_error(exc, url)
            if endpoint is not None:
                # Refused, unknown host, wrong scheme, untrusted certificate: waiting won't fix the
                # URL, so the admin hears about it now rather than after the retry budget.
                raise _NotRetriable(endpoint) from None
            error = TransportError(
                _describe_transport(exc), method=method, url=sanitize_url(url), status=None
            )
            if isinstance(exc, requests.exceptions.SSLError):
                # A certificate the client does not trust stays untrusted: retrying only delays the
                # message that says to set dataverse.ca_bundle.
                raise _NotRetriable(error) from None
            if unsent_only and not _never_sent(exc):
                raise _NotRetriable(error) from None
            raise error from None
        with self._state_lock:
            self.throttle.update(response.headers)
        return response


def _environment_host(host: str | None) -> str:
    """``org.api.crm.dynamics.com`` → ``org.crm.dynamics.com``: Dataverse's links use either name."""
    first, _, rest = (host or "").lower().partition(".")
    return f"{first}.{rest.removeprefix('api.')}" if rest.startswith("api.") else (host or "").lower()


class _NotRetriable(Exception):
    """Carries a retriable-looking error that must not be retried (non-idempotent request)."""

    def __init__(self, error: DataverseError) -> None:
        super().__init__(str(error))
        self.error = error


# What urllib3/OpenSSL say, as found in the exception's text (the cause is nested several levels).
_REFUSED = ("Connection refused", "[Errno 111]", "[WinError 10061]")
_NO_HOST = ("NameResolutionError", "Name or service not known", "nodename nor servname", "getaddrinfo failed")
_PLAIN_HTTP = ("WRONG_VERSION_NUMBER", "wrong version number", "record layer failure", "UNKNOWN_PROTOCOL")
_UNTRUSTED = ("CERTIFICATE_VERIFY_FAILED", "certificate verify failed")


def _endpoint_error(exc: requests.RequestException, url: str) -> EndpointError | None:
    """The configuration mistake behind a transport failure, or None for a passing fault."""
    text = repr(exc.args[0]) if exc.args else repr(exc)
    parts = urlsplit(url)
    host = parts.hostname or "?"
    where = f"{host}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    if isinstance(exc, requests.exceptions.SSLError):
        if any(marker in text for marker in _PLAIN_HTTP):
            return EndpointError(
                f"{where} answered the TLS handshake in plain http: the URL says https but the server "
                "does not speak it",
                hint="use http:// for a plain-http server (the sandbox without --tls), or the https port",
            )
        if any(marker in text for marker in _UNTRUSTED):
            return EndpointError(
                f"the certificate of {host} is not trusted",
                key="dataverse.ca_bundle",
                hint="set dataverse.ca_bundle to the CA file of the proxy or the sandbox's --tls certificate",
            )
        return None
    if isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.Timeout):
        if any(marker in text for marker in _NO_HOST):
            return EndpointError(
                f"the host name `{host}` does not resolve (DNS)",
                hint="check the environment URL's spelling (Power Platform admin center > Environments)",
            )
        if any(marker in text for marker in _REFUSED):
            return EndpointError(
                f"nothing accepts connections at {where} (connection refused)",
                hint="check the URL and port; for the sandbox, is `dvsync sandbox` running?",
            )
    return None


def _describe_transport(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.ConnectTimeout):
        return "connecting to Dataverse timed out"
    if isinstance(exc, requests.ReadTimeout):
        return "Dataverse did not answer within the read timeout (dataverse.timeout_read)"
    if isinstance(exc, requests.exceptions.SSLError):
        return "the TLS handshake failed; set dataverse.ca_bundle if a proxy or the sandbox uses its own CA"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError):
        return "the connection dropped while the response body was arriving"
    if isinstance(exc, requests.ConnectionError):
        return "could not connect to Dataverse, or the connection was reset"
    return f"the request failed before a response arrived ({type(exc).__name__})"


def _gave_up(exc: RetriableError, attempts: int, elapsed: float) -> RetriableError:
    """Return a copy of the last retriable error that says the policy gave up, and after what."""
    note = f"{exc.message} (gave up after {attempts} attempt{'s' if attempts != 1 else ''} in {elapsed:.1f}s)"
    kwargs: dict[str, Any] = {
        "status": exc.status,
        "code": exc.code,
        "request_id": exc.request_id,
        "method": exc.method,
        "url": exc.url,
        "hint": exc.hint,
    }
    if isinstance(exc, ThrottledError):
        return ThrottledError(note, retry_after=exc.retry_after, **kwargs)
    error = type(exc)(note, **kwargs)
    error.attempts = attempts  # type: ignore[attr-defined]
    return error
