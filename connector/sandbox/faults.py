"""Dataverse-shaped errors and the deterministic fault injector.

Every error the sandbox answers is ``{"error": {"code": "0x...", "message": "..."}}`` with the
status, code and message Dataverse documents (``../shared/dataverse-webapi.md`` §1.3, §6.3).
:class:`ApiError` carries them from wherever a request fails to the HTTP layer.

:class:`FaultInjector` decides, per request and deterministically for a seed, whether to answer
with an injected 429 or 503, drop the connection, respond slowly, or truncate the body, so that a
client's retry policy can be tested over real HTTP and the same seed reproduces the same run.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

__all__ = [
    "ApiError",
    "FaultConfig",
    "FaultInjector",
    "bad_request",
    "not_found_record",
    "not_found_segment",
    "not_implemented",
    "unknown_property",
]


class ApiError(Exception):
    """A request failed the way Dataverse fails it: an HTTP status, a hex code and a message.

    Args:
        status: HTTP status code.
        code: Dataverse's error code (``0x80040217``), or ``0x0`` for OData-layer errors.
        message: the error message, worded as Dataverse words it where documented.
        headers: extra response headers (``Retry-After`` on 429).
    """

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict:
        """Return the JSON error body."""
        return {"error": {"code": self.code, "message": self.message}}


def bad_request(message: str, code: str = "0x0") -> ApiError:
    """Return a 400 with the given message (OData-layer errors use code ``0x0``, §3.9)."""
    return ApiError(400, code, message)


def unknown_property(name: str, entity: str) -> ApiError:
    """Return Dataverse's 400 for a property that does not exist on the entity type (§3.9)."""
    return bad_request(f"Could not find a property named '{name}' on type 'Microsoft.Dynamics.CRM.{entity}'.")


def not_implemented(what: str) -> ApiError:
    """Return Dataverse's 501 NotImplemented (``0x80040219``, §6.3) naming what the sandbox does not do.

    Every such gap is listed under "Known differences" in ``docs/sandbox.md``.
    """
    return ApiError(501, "0x80040219", f"{what} is not implemented by the sandbox (see docs/sandbox.md).")


def not_found_segment(segment: str) -> ApiError:
    """Return the 404 for a path segment the service does not have (§3.9)."""
    return ApiError(404, "0x8006088a", f"Resource not found for the segment '{segment}'.")


def not_found_record(entity: str, record_id: str) -> ApiError:
    """Return Dataverse's 404 ``ObjectDoesNotExist`` for a missing record (§5.2, §11.3 item 2)."""
    return ApiError(404, "0x80040217", f"{entity} With Id = {record_id} Does Not Exist")


@dataclass(frozen=True)
class FaultConfig:
    """Shares (0..1) of requests that get each injected fault; all zero means no faults.

    Attributes:
        throttle: answer 429 with ``Retry-After`` and the request-count code (0x80072322).
        unavailable: answer 503 Service Unavailable.
        drop: close the connection without answering.
        slow: wait ``slow_seconds`` (through the injectable sleep) before answering.
        truncate: send a body cut short of its ``Content-Length``.
        slow_seconds: how long a slow response waits.
        retry_after: the ``Retry-After`` seconds of an injected 429.
        seed: the random seed; the same seed gives the same sequence of faults.
    """

    throttle: float = 0.0
    unavailable: float = 0.0
    drop: float = 0.0
    slow: float = 0.0
    truncate: float = 0.0
    slow_seconds: float = 2.0
    retry_after: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("throttle", "unavailable", "drop", "slow", "truncate"):
            share = getattr(self, name)
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"fault share {name}={share} must be between 0 and 1")
        total = self.throttle + self.unavailable + self.drop + self.truncate
        if total > 1.0:
            raise ValueError(
                f"fault shares throttle+unavailable+drop+truncate add up to {total}, more than 1"
            )

    @property
    def active(self) -> bool:
        """Whether any fault can be injected."""
        return any((self.throttle, self.unavailable, self.drop, self.slow, self.truncate))


@dataclass(frozen=True)
class Fault:
    """What to do to one request: at most one of the answer-replacing faults, plus maybe a delay."""

    kind: str | None  # "throttle", "unavailable", "drop", "truncate" or None
    delay: float


class FaultInjector:
    """Draw faults for successive requests from a seeded generator (thread-safe, deterministic order)."""

    def __init__(self, config: FaultConfig):
        self.config = config
        self._random = random.Random(config.seed)
        self._lock = threading.Lock()

    def next(self) -> Fault:
        """Return the fault for the next request, in arrival order."""
        c = self.config
        if not c.active:
            return Fault(None, 0.0)
        with self._lock:
            draw = self._random.random()
            slow_draw = self._random.random()
        kind = None
        edge = 0.0
        for name in ("throttle", "unavailable", "drop", "truncate"):
            edge += getattr(c, name)
            if draw < edge:
                kind = name
                break
        return Fault(kind, c.slow_seconds if slow_draw < c.slow else 0.0)
