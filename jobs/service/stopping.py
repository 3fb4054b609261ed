"""Stopping on SIGINT or SIGTERM: one Ctrl-C ends any phase within about a second, safely.

A :class:`StopRequest` is a ``threading.Event`` that also remembers which signal set it. Long
steps check it at their safe points (after a committed sync page, after a recorded write chunk,
between created columns). Where nothing is being committed (a page being fetched, the analytics,
the plan being diffed) waiting for the next check could take many seconds, so those steps run
inside :meth:`StopRequest.abortable`: a signal there raises :class:`StopNow` at once. Everything
committed before stays; the next run resumes exactly as after a kill (see ``pipeline``).

``StopNow`` derives from ``BaseException`` on purpose: a stop must not be caught and recorded as
a table's or a job's failure by an ``except DvsyncError`` or ``except Exception`` on its way up.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["StopNow", "StopRequest", "stop_on_signals"]

_NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


class StopNow(BaseException):
    """Raised by the signal handler inside an abortable step; nothing half-done is committed."""


class StopRequest(threading.Event):
    """A stop was asked for: by which signal, and whether the current step may be abandoned now."""

    def __init__(self) -> None:
        super().__init__()
        self.signum: int | None = None
        self._abortable = 0
        self._owner = threading.main_thread()

    def request(self, signum: int | None = None) -> None:
        """Ask the run to stop (the first signal's number is kept)."""
        if self.signum is None:
            self.signum = signum
        self.set()

    @property
    def signal_name(self) -> str:
        """``SIGINT``, ``SIGTERM``, or ``a stop request`` when set without a signal."""
        return _NAMES.get(self.signum, "a stop request") if self.signum else "a stop request"

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as shells report it: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum if self.signum else 1

    @property
    def in_abortable_step(self) -> bool:
        return self._abortable > 0

    @contextmanager
    def abortable(self) -> Iterator[None]:
        """Run a step that commits nothing: a stop (already asked, or arriving) ends it at once."""
        if self.is_set():
            raise StopNow
        self._abortable += 1
        try:
            yield
        finally:
            self._abortable -= 1


@contextmanager
def stop_on_signals(stop: StopRequest | None = None) -> Iterator[StopRequest]:
    """Install SIGINT/SIGTERM handlers for the block; they set (and maybe raise) ``stop``.

    The first signal asks for a stop; inside an abortable step it raises :class:`StopNow` in the
    main thread at once. A second Ctrl-C raises ``KeyboardInterrupt`` wherever the run is (the
    next run settles anything left in doubt, as after a kill).
    """
    stop = stop or StopRequest()
    previous = {}

    def handler(signum: int, frame: object) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.request(signum)
        if stop.in_abortable_step:
            raise StopNow

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
