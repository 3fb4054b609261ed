"""The connector's exceptions: what went wrong talking to Dataverse, grouped by what the caller should do.

::

    DvsyncError                      core.errors: base of everything dvsync raises on purpose
    ├── AuthError                    fix the app registration, secret, certificate or tenant
    ├── DataverseError               the Web API answered (or failed to answer) a request
    │   ├── RetriableError           try again later; the retry policy already did, up to its budget
    │   │   ├── ThrottledError       429 service-protection limit, carries retry_after
    │   │   ├── ServiceUnavailableError  502 / 503 / 504
    │   │   └── TransportError       connection refused or reset, read timeout, dropped body
    │   ├── FatalApiError            the request itself is wrong or not allowed; retrying won't help
    │   │   ├── EndpointError        the URL cannot work: connection refused, unknown host, https to a
    │   │   │                        plain-http server, untrusted certificate (exit code 2)
    │   │   ├── ProtocolError        a body that is not the JSON Dataverse sends (proxy HTML page,
    │   │   │                        truncated or empty body)
    │   │   ├── ChangeTokenExpiredError     0x80044352: re-read the table in full
    │   │   ├── ChangeTrackingDisabledError 0x80072491: fall back to a modifiedon window
    │   │   ├── PermissionDeniedError       403: give the application user a security role
    │   │   └── InvalidRequestError         400-class: bad query, unknown column, bad payload
    │   └── RecordError              one record failed; skip it, report it, retry next run
    │       ├── RecordNotFoundError  404 / 0x80040217
    │       ├── PreconditionFailedError  412 (stale etag, If-None-Match on an existing record)
    │       ├── DuplicateRecordError     0x80040333 / 0x80040237 / 0x80060892
    │       └── RecordValidationError    0x80044331 (value too long), 0x80040265 (plug-in said no)

Every message is written for the person who has to act on it: what was wrong and how to fix it.
Nothing here ever formats a token, secret or Authorization header into its text; URLs are
sanitised by the caller (see ``connector.http``) before they reach an exception.
"""

from __future__ import annotations

from core.errors import DvsyncError

__all__ = [
    "AuthError",
    "ChangeTokenExpiredError",
    "ChangeTrackingDisabledError",
    "DataverseError",
    "DuplicateRecordError",
    "EndpointError",
    "FatalApiError",
    "InvalidRequestError",
    "PermissionDeniedError",
    "PreconditionFailedError",
    "ProtocolError",
    "RecordError",
    "RecordNotFoundError",
    "RecordValidationError",
    "RetriableError",
    "ServiceUnavailableError",
    "ThrottledError",
    "TransportError",
]


class AuthError(DvsyncError):
    """Getting a token failed, or Dataverse refused it; carries the code and a hint for common causes.

    Attributes:
        code: the AADSTS code from Entra, or Dataverse's error code for a refused token.
        status: the HTTP status when Dataverse refused the token (401), else None.
        correlation_id: Entra's correlation id, or Dataverse's request id.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        description: str | None = None,
        hint: str | None = None,
        correlation_id: str | None = None,
        status: int | None = None,
    ) -> None:
        self.message = message
        self.code = code
        self.description = description
        self.hint = hint
        self.correlation_id = correlation_id
        self.status = status
        parts = [message]
        if code:
            parts.append(f"[{code}]")
        if hint:
            parts.append(f"Hint: {hint}")
        super().__init__(" ".join(parts))


class DataverseError(DvsyncError):
    """The Web API answered with an error, or failed to answer.

    Attributes:
        status: the HTTP status, or None when no response arrived.
        code: the Dataverse error code (``0x80040217``), when the body had one.
        request_id: the ``REQ_ID`` / ``x-ms-service-request-id`` header, for Microsoft support.
        method: the HTTP method.
        url: the request URL with its query string values redacted.
        hint: what to do about it, when there is something specific to say.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        method: str | None = None,
        url: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.method = method
        self.url = url
        self.hint = hint
        super().__init__(self._render())

    def _render(self) -> str:
        head = " ".join(str(p) for p in (self.status, self.code) if p)
        text = f"{head}: {self.message}" if head else self.message
        if self.method and self.url:
            text = f"{text} ({self.method} {self.url})"
        if self.request_id:
            text = f"{text} [request id {self.request_id}]"
        if self.hint:
            text = f"{text} Hint: {self.hint}"
        return text


class RetriableError(DataverseError):
    """A transient failure: the same request may succeed later."""


class ThrottledError(RetriableError):
    """A 429 service-protection answer; ``retry_after`` is in seconds, when the server said."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: object) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)  # type: ignore[arg-type]


class ServiceUnavailableError(RetriableError):
    """502, 503 or 504 from Dataverse or a gateway in front of it."""


class TransportError(RetriableError):
    """No usable response: connection refused or reset, timeout, truncated body."""


class FatalApiError(DataverseError):
    """The request is wrong or not allowed; retrying it unchanged will fail again."""


class EndpointError(FatalApiError):
    """The environment URL cannot be reached as configured; never retried, it will not get better.

    Connection refused, a host name that does not resolve, an https URL served by a plain-http
    server, a certificate the client does not trust. Shown as one line under the setting to fix
    (``key``: ``dataverse.url``, or ``dataverse.ca_bundle`` for trust), with exit code 2 like
    every configuration error.
    """

    exit_code = 2

    def __init__(self, message: str, *, key: str = "dataverse.url", **kwargs: object) -> None:
        self.key = key
        super().__init__(message, **kwargs)  # type: ignore[arg-type]

    def _render(self) -> str:
        text = f"[{self.key}]: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


class ProtocolError(FatalApiError):
    """The body is not what Dataverse sends: an HTML error page, non-JSON, truncated or empty."""


class ChangeTokenExpiredError(FatalApiError):
    """0x80044352: the delta token is older than the org's change-tracking retention."""


class ChangeTrackingDisabledError(FatalApiError):
    """0x80072491: change tracking is off for this table."""


class PermissionDeniedError(FatalApiError):
    """403: the application user lacks a privilege; the message names the one Dataverse reported."""


class InvalidRequestError(FatalApiError):
    """400-class: the query, URL or payload is wrong (unknown column, bad `$filter`, undeclared property)."""


class RecordError(DataverseError):
    """One record could not be written; the others are unaffected."""


class RecordNotFoundError(RecordError):
    """404 / 0x80040217: the record does not exist (deleted since it was read)."""


class PreconditionFailedError(RecordError):
    """412: the record changed since its etag was read, or already exists."""


class DuplicateRecordError(RecordError):
    """0x80040333 / 0x80040237 / 0x80060892: duplicate detection or a unique key refused the record."""


class RecordValidationError(RecordError):
    """0x80044331 / 0x80040265: a value broke a column rule, or a plug-in rejected the record."""
