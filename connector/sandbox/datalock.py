"""One sandbox per data folder: an OS file lock held while a sandbox serves the folder.

Two servers on the same ``sandbox.sqlite`` would each keep their own change-tracking clock and
service-protection counters, and their writes would interleave. ``<data>/sandbox.lock`` is locked
with ``flock`` (``msvcrt`` on Windows) from start to stop; the OS releases it if the process dies,
so a crash never leaves the folder stuck. The file holds the holder's pid, for the message.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import IO

from core.errors import ConfigError

__all__ = ["DataLock", "default_data_dir"]


def default_data_dir() -> Path:
    """Where ``dvsync sandbox`` keeps its data without ``--data``: the user's state directory.

    ``$XDG_STATE_HOME/dvsync/sandbox``, else ``~/.local/state/dvsync/sandbox`` (on Windows
    ``%LOCALAPPDATA%\\dvsync\\sandbox``), never the working folder.
    """
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "dvsync" / "sandbox"
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base).expanduser() / "dvsync" / "sandbox"


class DataLock:
    """The lock on one sandbox data folder (acquire on start, release on stop)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / "sandbox.lock"
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        """Lock the folder, creating it if needed.

        Raises:
            ConfigError: another sandbox serves this folder (its pid is named).
        """
        if self._handle is not None:
            return
        if self.path.parent.exists() and not self.path.parent.is_dir():
            raise ConfigError(
                f"the sandbox data path {self.path.parent} is a file", hint="point --data at a directory"
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        except OSError as exc:
            raise ConfigError(
                f"cannot use the sandbox data folder {self.path.parent}: {exc.strerror or exc}",
                hint="choose a writable --data directory",
            ) from None
        try:
            _lock(handle)
        except OSError:
            handle.seek(0)
            pid = handle.read().strip()
            handle.close()
            holder = f"pid {pid}" if pid.isdigit() else "another process"
            raise ConfigError(
                f"the sandbox data folder {self.path.parent} is in use by another sandbox ({holder})",
                hint="stop that sandbox, or give this one its own folder with --data",
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        """Unlock (idempotent)."""
        if self._handle is None:
            return
        try:
            self._handle.seek(0)
            self._handle.truncate()
            _unlock(self._handle)
        finally:
            self._handle.close()
            self._handle = None


def _lock(handle: IO[str]) -> None:
    if sys.platform == "win32":
        import msvcrt

        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        return
    import fcntl

    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def _unlock(handle: IO[str]) -> None:
    if sys.platform == "win32":
        import msvcrt

        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
