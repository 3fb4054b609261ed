"""What the service keeps between runs so that a run costs what changed.

* ``table_versions``: a counter per mirrored table, raised by every sync commit that upserts or
  deletes rows (not by the write-back's ``out_`` updates, which only record what Dynamics now
  holds of our own results). Equal versions mean equal inputs, without reading the table.
* ``row_changes``: per mirrored record, the table version whose commit last upserted or deleted
  it, so a job asks which records changed since the version it computed at.
* ``job_state``: per job, the fingerprint of its inputs and a payload (its last
  results, and caches such as the duplicate job's compared pairs), so an unchanged job is reused
  and a changed one redoes only what changed. A dict payload is packed key by key, and a
  reader unpacks only the keys it asks for: reusing the duplicates job needs its 9 MB outcome,
  not the 32 MB of compared pairs it would need only to recompute.
* ``metadata_cache``: the table definitions read from Dataverse, with the version stamp they were
  read at, so a run does not re-read seven metadata documents per table.

Payloads are pickled by this process into its own mirror file and read back only from there; a
payload that cannot be read (written by another version of pandas, say) is dropped and the job
recomputes, so the cache can never make a run fail.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
import sqlite3
import zlib
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)

PAYLOAD_FORMAT = 2
"""Raised when the payload layout changes: older payloads are ignored (the jobs recompute)."""

STATE_COMPRESSION = 0
"""zlib level of the parts of job state payloads: 0 stores them (still zlib-framed, so parts written
at any level unpack alike). Every changed run rewrites the state of each job it computed; on the medium
sandbox that is ~75 MB, which level 1 compressed to ~29 MB in 1.0-1.6 s (2 cores), while SQLite
writes the 75 MB in ~0.12 s: the bytes saved cost far more time than they save (the mirror is
~600 MB), and reading the state back is faster too (0.2 s against 0.45 s)."""


def _pack(value: Any, level: int = 1) -> bytes:
    return zlib.compress(pickle.dumps(value, protocol=5), level)


def _unpack(blob: bytes) -> Any:
    return pickle.loads(zlib.decompress(blob))


def unpack_part(blob: bytes) -> Any:
    """One part of :meth:`JobStateStore.job_state_packed` as it was saved."""
    return _unpack(blob)


def bump_version(db: sqlite3.Connection, name: str, ids: Iterable[str] = ()) -> None:
    """Raise a table's version inside the caller's transaction (its rows just changed), and
    stamp the changed (upserted or deleted) record ``ids`` with the new version."""
    try:
        db.execute(
            "INSERT INTO table_versions (name, version) VALUES (?, 1)"
            " ON CONFLICT (name) DO UPDATE SET version = version + 1",
            (name,),
        )
    except sqlite3.OperationalError as exc:
        # A file older than schema 3 written to before it is migrated (the migration tests do);
        # it has no versions to keep, and its first run after the migration recomputes anyway.
        if "table_versions" not in str(exc):
            raise
        return
    version = db.execute("SELECT version FROM table_versions WHERE name = ?", (name,)).fetchone()[0]
    try:
        db.executemany(
            "INSERT INTO row_changes (table_name, record_id, version) VALUES (?, ?, ?)"
            " ON CONFLICT (table_name, record_id) DO UPDATE SET version = excluded.version",
            ((name, str(i), version) for i in ids),
        )
    except sqlite3.OperationalError as exc:
        # A schema-3 file (before its migration): no per-record changes; jobs re-check in full.
        if "row_changes" not in str(exc):
            raise


class JobStateStore:
    """Table versions, job state and the metadata cache; a part of :class:`jobs.service.mirror.Mirror`."""

    # ---------------------------------------------------------------- table versions

    def table_versions(self, names: Iterable[str] | None = None) -> dict[str, int]:
        """The change counter of each (or each named) mirrored table; 0 for a table never written."""
        rows = {r["name"]: int(r["version"]) for r in self._query("SELECT name, version FROM table_versions")}
        if names is None:
            return rows
        return {n: rows.get(n, 0) for n in names}

    def changed_since(self, name: str, version: int) -> list[str]:
        """The ids of ``name``'s records upserted or deleted by sync commits after ``version``."""
        rows = self._query(
            "SELECT record_id FROM row_changes WHERE table_name = ? AND version > ?", (name, version)
        )
        return [r["record_id"] for r in rows]

    # ---------------------------------------------------------------- job state

    def _stored_state(self, job: str) -> tuple[str, int | None, dict[str, Any]] | None:
        """``(fingerprint, run_id, stored)``: the row kept for ``job`` with its payload's frame
        unpickled (``whole`` or ``parts``, still packed); None when none is kept or it is of
        another format."""
        rows = self._query("SELECT fingerprint, run_id, payload FROM job_state WHERE job = ?", (job,))
        if not rows:
            return None
        try:
            stored = pickle.loads(rows[0]["payload"])
            if not isinstance(stored, dict) or stored.get("format") != PAYLOAD_FORMAT:
                raise ValueError("an older payload format")
        except Exception as exc:
            log.info("job %s: the saved state cannot be used (%s); it is recomputed", job, exc)
            return None
        return str(rows[0]["fingerprint"]), rows[0]["run_id"], stored

    def job_state(self, job: str) -> tuple[str, int | None, Any] | None:
        """``(fingerprint, run_id, payload)`` saved for ``job``, or None (never saved, or unreadable)."""
        state = self._stored_state(job)
        if state is None:
            return None
        fingerprint, run_id, stored = state
        try:
            if "whole" in stored:
                payload = _unpack(stored["whole"])
            else:
                payload = {k: _unpack(v) for k, v in stored["parts"].items()}
        except Exception as exc:
            log.info("job %s: the saved state cannot be used (%s); it is recomputed", job, exc)
            return None
        return fingerprint, run_id, payload

    def job_state_packed(self, job: str) -> tuple[str, int | None, dict[str, bytes]] | None:
        """``(fingerprint, run_id, parts)`` of a dict payload kept for ``job``, each part still packed
        (unpack one with :func:`unpack_part`); None when none is kept, it cannot be read, or the
        payload was not a dict.

        One read of the row serves every part a run later needs: reading the row again per part
        cost the medium sandbox's changed run half a second (the state is ~75 MB).
        """
        state = self._stored_state(job)
        if state is None or "parts" not in state[2]:
            return None
        fingerprint, run_id, stored = state
        return fingerprint, run_id, dict(stored["parts"])

    def job_state_digest(self, job: str) -> str | None:
        """A digest of the payload kept for ``job`` (None: none kept), without unpickling it: it
        changes whenever the payload is saved again with other contents."""
        rows = self._query("SELECT payload FROM job_state WHERE job = ?", (job,))
        return hashlib.sha256(rows[0]["payload"]).hexdigest() if rows else None

    def save_job_state(self, job: str, fingerprint: str, run_id: int | None, payload: Any) -> int:
        """Keep ``payload`` for ``job`` under ``fingerprint``; returns the bytes stored.

        A dict payload is packed key by key (see :meth:`job_state_packed`).
        """
        if isinstance(payload, dict):
            stored: dict[str, Any] = {
                "parts": {str(k): _pack(v, STATE_COMPRESSION) for k, v in payload.items()}
            }
        else:
            stored = {"whole": _pack(payload, STATE_COMPRESSION)}
        blob = pickle.dumps({"format": PAYLOAD_FORMAT, **stored}, protocol=5)
        with self.transaction() as db:
            db.execute(
                "INSERT INTO job_state (job, fingerprint, run_id, saved_at, payload) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (job) DO UPDATE SET fingerprint = excluded.fingerprint,"
                " run_id = excluded.run_id, saved_at = excluded.saved_at, payload = excluded.payload",
                (job, fingerprint, run_id, self.now(), blob),
            )
        return len(blob)

    def clear_job_state(self, job: str | None = None) -> int:
        """Forget the saved state of one job (or of all): the next run recomputes it in full."""
        with self.transaction() as db:
            if job is None:
                return db.execute("DELETE FROM job_state").rowcount
            return db.execute("DELETE FROM job_state WHERE job = ?", (job,)).rowcount

    # ---------------------------------------------------------------- metadata cache

    def cached_definition(self, table: str) -> tuple[Any, str | None, str] | None:
        """``(definition, stamp, fetched_at)`` cached for a Dataverse table, or None."""
        rows = self._query(
            "SELECT definition, stamp, fetched_at FROM metadata_cache WHERE table_name = ?", (table,)
        )
        if not rows:
            return None
        try:
            definition = _unpack(rows[0]["definition"])
        except Exception as exc:
            log.info("metadata cache of %s cannot be used (%s); it is read again", table, exc)
            return None
        return definition, rows[0]["stamp"], str(rows[0]["fetched_at"])

    def cache_definition(self, table: str, definition: Any, stamp: str | None) -> None:
        """Keep a table definition read from Dataverse, with the version stamp it was read at."""
        blob = _pack(definition)
        with self.transaction() as db:
            db.execute(
                "INSERT INTO metadata_cache (table_name, definition, stamp, fetched_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (table_name) DO UPDATE SET definition = excluded.definition,"
                " stamp = excluded.stamp, fetched_at = excluded.fetched_at",
                (table, blob, stamp, self.now()),
            )

    def clear_metadata_cache(self, tables: Iterable[str] | None = None) -> int:
        """Forget cached definitions (all, or of the named tables): they are read again when needed."""
        with self.transaction() as db:
            if tables is None:
                return db.execute("DELETE FROM metadata_cache").rowcount
            return sum(
                db.execute("DELETE FROM metadata_cache WHERE table_name = ?", (t,)).rowcount for t in tables
            )
