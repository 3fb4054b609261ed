"""The mirror's SQLite connection: opening, migrating, transactions and the run lock."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

from core.errors import ConfigError
from core.private import private_dir, private_file
from jobs.service.mirror.convert import utc_text
from jobs.service.mirror.schema import MIGRATIONS, SCHEMA_VERSION, Clock, MirrorError


class MirrorDatabase:
    """The mirror database. Open it with ``Mirror(path)`` (or as a context manager) and close it.

    One connection, shared by the threads of one process under a lock; separate processes
    coordinate through SQLite's own locking (WAL mode, a busy timeout).

    Args:
        path: the SQLite file; its directory is created. ``":memory:"`` for a throwaway mirror.
        clock: returns the current aware datetime (injectable for tests).
    """

    def __init__(self, path: str | Path, *, clock: Clock | None = None) -> None:
        self.path = Path(path) if str(path) != ":memory:" else None
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()
        self._depth = 0
        if self.path is not None:
            try:
                private_dir(self.path.parent)
                private_file(self.path)  # before SQLite opens it: its -wal/-shm copy this mode
            except OSError as exc:
                raise ConfigError(
                    f"cannot create the mirror's directory {self.path.parent}: {exc.strerror}",
                    key="mirror.path",
                    hint="set mirror.path to a writable location",
                ) from None
        try:
            self._db = sqlite3.connect(
                str(self.path) if self.path else ":memory:",
                isolation_level=None,
                check_same_thread=False,
                timeout=30.0,
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA busy_timeout=30000")
        except sqlite3.DatabaseError as exc:
            raise MirrorError(
                f"cannot open the mirror {self.path}: {exc}. Point mirror.path at another file; the "
                "mirrored tables can be rebuilt with `dvsync sync --full`, but the run history and "
                "write-back audit in this file cannot"
            ) from None
        self.migrate()

    # ---------------------------------------------------------------- lifecycle and transactions

    def close(self) -> None:
        """Close the database (idempotent)."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None  # type: ignore[assignment]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def exclusive(self, what: str = "run") -> Iterator[None]:
        """Hold the mirror's process lock for the block: one sync or pipeline run at a time.

        The lock is an OS file lock on ``<mirror>.lock`` (released by the OS if the process dies,
        so a crash never leaves it stuck); the file names the holder's pid for the message.

        Raises:
            MirrorError: another process holds it.
        """
        if self.path is None:
            yield
            return
        lock_path = self.path.with_name(self.path.name + ".lock")
        private_file(lock_path)
        handle = open(lock_path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the block
        try:
            try:
                _lock_file(handle)
            except OSError:
                handle.seek(0)
                pid = handle.read().strip()
                holder = f"pid {pid}" if pid.isdigit() else "another process"
                raise MirrorError(
                    f"the mirror {self.path} is busy: another dvsync {what} or run holds it ({holder}); "
                    "wait for it to finish, or stop it first"
                ) from None
            # Just the pid, as jobs.service.pipeline.RunLock writes it: both lock the same file.
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            note_lock(lock_path, held=True)
            try:
                yield
            finally:
                note_lock(lock_path, held=False)
                handle.seek(0)
                handle.truncate()
                handle.flush()
                _unlock_file(handle)
        finally:
            handle.close()

    def now(self) -> str:
        """The current time as the mirror stores it."""
        return utc_text(self._clock())  # type: ignore[return-value]

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one transaction (nested blocks join the outer one); roll back on error."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._db
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
            finally:
                self._depth = 0

    def recover_after_stop(self) -> None:
        """Roll back a transaction a stop signal left open between ``BEGIN`` and its ``try``.

        A signal handler may raise (``jobs.service.stopping.StopNow``) at any bytecode of an
        abortable step, so the next write must not find a half-begun transaction.
        """
        with self._lock:
            if self._db is not None and self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._depth = 0

    def _query(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            cursor = self._db.execute(sql, params)
            names = [d[0] for d in cursor.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]  # type: ignore[misc]

    @property
    def schema_version(self) -> int:
        """The schema version of the open file (``PRAGMA user_version``)."""
        with self._lock:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self, target: int | None = None) -> int:
        """Bring the schema up to ``target`` (default: the newest), one transaction per step.

        Raises:
            MirrorError: the file was written by a newer dvsync.
        """
        target = SCHEMA_VERSION if target is None else target
        current = self.schema_version
        if current > SCHEMA_VERSION:
            raise MirrorError(
                f"the mirror {self.path} has schema version {current}, newer than this dvsync "
                f"understands ({SCHEMA_VERSION}); upgrade dvsync, or point mirror.path at a new file"
            )
        for version, _, step in MIGRATIONS:
            if current < version <= target:
                with self.transaction() as db:
                    step(db)
                    db.execute(f"PRAGMA user_version = {int(version)}")
                current = version
        return current


def _lock_file(handle: Any) -> None:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def _unlock_file(handle: Any) -> None:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


_HELD_LOCKS: set[str] = set()
"""Lock files this process holds (the run lock and the mirror's exclusive lock are one file)."""
_HELD_GUARD = threading.Lock()


def note_lock(path: str | Path, *, held: bool) -> None:
    """Record that this process took (``held``) or released the lock file ``path``."""
    key = str(Path(path).resolve())
    with _HELD_GUARD:
        (_HELD_LOCKS.add if held else _HELD_LOCKS.discard)(key)


def no_other_holder(path: str | Path) -> bool:
    """True when no *other* process holds the lock file: this one does, or nobody does.

    A run in progress holds ``<mirror>.lock`` for its whole length, and the OS drops the lock
    when its process dies, wherever that process ran. So with no other holder, no run recorded
    as ``running`` is alive: it was killed (on this host, or in a pod that is gone).
    """
    key = str(Path(path).resolve())
    with _HELD_GUARD:
        if key in _HELD_LOCKS:
            return True
    if not Path(path).exists():
        return True
    try:
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError:
        return False
    try:
        try:
            _lock_file(handle)
        except OSError:
            return False
        _unlock_file(handle)
        return True
    finally:
        handle.close()


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
