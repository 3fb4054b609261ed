"""Service-protection limits: per-user sliding windows on requests, execution time and concurrency.

Dataverse evaluates three limits per user over a 300-second sliding window and answers 429 Too Many
Requests with ``Retry-After`` (seconds) and one of three codes (``../shared/dataverse-webapi.md``
§6.1). Messages are Microsoft's, verbatim, including the two spaces before "milliseconds". The
numbers default to Microsoft's and can be turned down so a test reaches them in a few requests.

A ``$batch`` counts as one request toward the request-count limit; its execution time counts in full
(the inner requests run inside it).
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass, field

from connector.sandbox.config import Limits
from connector.sandbox.faults import ApiError

__all__ = ["RateLimiter"]


@dataclass
class _UserWindow:
    starts: deque = field(default_factory=deque)  # request start times
    durations: deque = field(default_factory=deque)  # (end time, milliseconds)
    in_flight: int = 0


class RateLimiter:
    """Admit or refuse requests per user (the bearer token identifies the user).

    Args:
        limits: the three limits and the window.
        monotonic: a seconds clock (injectable so tests move time without sleeping).
    """

    def __init__(self, limits: Limits, monotonic):
        self.limits = limits
        self.monotonic = monotonic
        self._users: dict[str, _UserWindow] = {}
        self._lock = threading.Lock()

    def _prune(self, window: _UserWindow, now: float) -> None:
        horizon = now - self.limits.window_seconds
        while window.starts and window.starts[0] <= horizon:
            window.starts.popleft()
        while window.durations and window.durations[0][0] <= horizon:
            window.durations.popleft()

    def admit(self, user: str) -> float:
        """Admit one request for ``user`` and return its start time.

        Raises:
            ApiError: 429 with ``Retry-After`` when a limit is exceeded.
        """
        now = self.monotonic()
        limits = self.limits
        if not limits.enabled:
            return now
        with self._lock:
            window = self._users.setdefault(user, _UserWindow())
            self._prune(window, now)
            if window.in_flight >= limits.concurrent:
                raise _throttled(
                    "0x80072326",
                    f"Number of concurrent requests exceeded the limit of {limits.concurrent}.",
                    1,
                )
            if len(window.starts) >= limits.requests:
                wait = window.starts[0] + limits.window_seconds - now
                raise _throttled(
                    "0x80072322",
                    f"Number of requests exceeded the limit of {limits.requests} over time window of "
                    f"{int(limits.window_seconds)} seconds.",
                    wait,
                )
            used = sum(ms for _, ms in window.durations)
            if used >= limits.execution_ms:
                wait = window.durations[0][0] + limits.window_seconds - now
                raise _throttled(
                    "0x80072321",
                    "Combined execution time of incoming requests exceeded limit of "
                    f"{limits.execution_ms:,}  "
                    f"milliseconds over time window of {int(limits.window_seconds)} seconds. "
                    "Decrease number of "
                    "concurrent requests or reduce the duration of requests and try again later.",
                    wait,
                )
            window.starts.append(now)
            window.in_flight += 1
        return now

    def release(self, user: str, started: float) -> None:
        """Record that an admitted request finished."""
        if not self.limits.enabled:
            return
        now = self.monotonic()
        with self._lock:
            window = self._users.setdefault(user, _UserWindow())
            window.in_flight = max(0, window.in_flight - 1)
            window.durations.append((now, (now - started) * 1000.0))

    def remaining(self, user: str) -> tuple[int, float]:
        """Return (requests left, execution milliseconds left) in the current window, for headers."""
        now = self.monotonic()
        with self._lock:
            window = self._users.setdefault(user, _UserWindow())
            self._prune(window, now)
            used = sum(ms for _, ms in window.durations)
            return max(0, self.limits.requests - len(window.starts)), max(
                0.0, self.limits.execution_ms - used
            )


def _throttled(code: str, message: str, wait: float) -> ApiError:
    return ApiError(429, code, message, {"Retry-After": str(max(1, math.ceil(wait)))})
