"""The SQLite mirror: mirrored tables under canonical column names, and the service's own state.

One file (settings ``mirror.path``, default ``.dvsync/mirror.sqlite``) holds:

====================  ==========================================================================
``t_<name>``          one per mapping file (``t_lead``, ``t_salesorder``, ``t_email``): the id
                      column (``lead_id``), every mapped field by canonical name, ``out_<result>``
                      columns holding what Dynamics has in each output column, and the system
                      columns ``_modifiedon``, ``_etag``, ``_sync_gen``, ``_synced_at``.
``mirror_tables``     registry of those tables: entity, source table, id column, column types (so
                      :meth:`Mirror.read_frame` restores types without the mapping files).
``sync_state``        per table: mode (delta / window), phase of an unfinished read, delta link,
                      next link for resume, modifiedon watermark, generation, last full sync,
                      last success, last error, mapping fingerprint.
``runs``              one row per run (sync, pipeline, rollback...): start, end, outcome, stats.
``run_tables``        per run and table: read, upserted, deleted, pages, written, failed, ...
``results``           job results per run, table, record and result name (history, for trends).
``writeback_plan``    per run: the values to write (old and new) and each item's status.
``audit``             every write attempted: run, table, record, column, old, new, outcome, error.
====================  ==========================================================================

The schema version is ``PRAGMA user_version``; :data:`MIGRATIONS` is append-only and runs in order
inside one transaction each, so an older file is brought up to date when opened and a newer one
is refused. The database runs in WAL mode (readers never block the writer); the sync commits each
page together with its state in one :meth:`Mirror.transaction`.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from connector.errors import ConfigError, DvsyncError

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SYSTEM_COLUMNS",
    "Mirror",
    "MirrorError",
    "SyncState",
    "TableLayout",
    "utc_text",
]

Clock = Callable[[], datetime]

SYSTEM_COLUMNS = ("_modifiedon", "_etag", "_sync_gen", "_synced_at")
_DTYPES = ("text", "int", "float", "bool", "datetime")
_SQL_TYPES = {"text": "TEXT", "int": "INTEGER", "float": "REAL", "bool": "INTEGER", "datetime": "TEXT"}
_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")


class MirrorError(DvsyncError):
    """The mirror file cannot be used (newer schema, corrupt, locked); the message says what to do."""


def _script(db: sqlite3.Connection, sql: str) -> None:
    # executescript() would COMMIT the migration's transaction first; run the statements one by one.
    for statement in sql.split(";"):
        if statement.strip():
            db.execute(statement)


def _v1(db: sqlite3.Connection) -> None:
    _script(
        db,
        """
        CREATE TABLE mirror_tables (
            name TEXT PRIMARY KEY,
            entity TEXT NOT NULL,
            source_table TEXT NOT NULL,
            id_column TEXT NOT NULL,
            columns TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE sync_state (
            table_name TEXT PRIMARY KEY,
            mode TEXT,
            phase TEXT,
            delta_link TEXT,
            next_link TEXT,
            watermark TEXT,
            generation INTEGER NOT NULL DEFAULT 0,
            fingerprint TEXT,
            last_full_sync TEXT,
            last_success TEXT,
            last_error TEXT,
            updated_at TEXT
        );
        CREATE TABLE runs (
            run_id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            outcome TEXT NOT NULL DEFAULT 'running',
            jobs TEXT,
            dry_run INTEGER NOT NULL DEFAULT 0,
            stats TEXT,
            error TEXT,
            pid INTEGER,
            host TEXT
        );
        CREATE INDEX runs_started ON runs (started_at);
        CREATE TABLE run_tables (
            run_id INTEGER NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
            table_name TEXT NOT NULL,
            mode TEXT,
            read INTEGER NOT NULL DEFAULT 0,
            upserted INTEGER NOT NULL DEFAULT 0,
            deleted INTEGER NOT NULL DEFAULT 0,
            pages INTEGER NOT NULL DEFAULT 0,
            written INTEGER NOT NULL DEFAULT 0,
            failed INTEGER NOT NULL DEFAULT 0,
            retries INTEGER NOT NULL DEFAULT 0,
            throttled INTEGER NOT NULL DEFAULT 0,
            duration_s REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (run_id, table_name)
        );
        """,
    )


def _v2(db: sqlite3.Connection) -> None:
    # The write-back side: results of the jobs, the plan derived from them, and the audit trail.
    _script(
        db,
        """
        CREATE TABLE results (
            run_id INTEGER NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
            table_name TEXT NOT NULL,
            record_id TEXT NOT NULL,
            result TEXT NOT NULL,
            value,
            computed_at TEXT NOT NULL,
            PRIMARY KEY (run_id, table_name, result, record_id)
        );
        CREATE INDEX results_latest ON results (table_name, result, record_id, run_id);
        CREATE TABLE writeback_plan (
            run_id INTEGER NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
            table_name TEXT NOT NULL,
            record_id TEXT NOT NULL,
            column_name TEXT NOT NULL,
            result TEXT,
            old_value,
            new_value,
            status TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (run_id, table_name, record_id, column_name)
        );
        CREATE INDEX writeback_plan_status ON writeback_plan (status, table_name);
        CREATE TABLE audit (
            audit_id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id INTEGER NOT NULL,
            table_name TEXT NOT NULL,
            record_id TEXT NOT NULL,
            column_name TEXT NOT NULL,
            old_value,
            new_value,
            outcome TEXT NOT NULL,
            error TEXT,
            at TEXT NOT NULL
        );
        CREATE INDEX audit_run ON audit (run_id, table_name, record_id);
        CREATE INDEX audit_record ON audit (table_name, record_id, column_name);
        """,
    )


# Append-only: (version, what it does, how). Never edit a released step; add the next one.
MIGRATIONS: tuple[tuple[int, str, Callable[[sqlite3.Connection], None]], ...] = (
    (1, "mirror registry, sync state, runs", _v1),
    (2, "job results, write-back plan, audit", _v2),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def utc_text(moment: datetime | pd.Timestamp | None) -> str | None:
    """Format an aware moment as the mirror stores it: ISO 8601 UTC with microseconds and ``Z``."""
    if moment is None or pd.isna(moment):
        return None
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone; the mirror stores UTC")
    return stamp.tz_convert(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_utc(text: str | None) -> datetime | None:
    return None if text is None else pd.Timestamp(text).to_pydatetime()


@dataclass(frozen=True)
class TableLayout:
    """What a mirrored table holds.

    Attributes:
        name: the mirror table's name (the mapping file's stem).
        entity: the canonical entity of its rows.
        source_table: the Dataverse table's logical name.
        id_column: the canonical id column (primary key).
        columns: every column after the id, canonical name → storage type
            (text, int, float, bool, datetime); the id may be included (as text).
    """

    name: str
    entity: str
    source_table: str
    id_column: str
    columns: Mapping[str, str]

    def data_columns(self) -> dict[str, str]:
        """The columns other than the id, in order."""
        return {c: t for c, t in self.columns.items() if c != self.id_column}


@dataclass
class SyncState:
    """The incremental state of one mirrored table; saved in the same transaction as its data.

    Attributes:
        table_name: the mirror table.
        mode: ``delta`` (change tracking) or ``window`` (modifiedon window); None before the first sync.
        phase: ``full`` or ``delta`` while a read is unfinished (resume from ``next_link``), else None.
        delta_link: the link of the next incremental read (change tracking).
        next_link: the next page of an unfinished read; the pages before it are committed.
        watermark: window mode: the latest ``modifiedon`` committed.
        generation: incremented by each full read; rows not seen by a full read are removed at its end.
        fingerprint: digest of the mapping that filled the table; a new one forces a full re-read.
        last_full_sync: when the last full read finished.
        last_success: when the last sync of this table finished.
        last_error: the last failure's message, cleared by a success.
    """

    table_name: str
    mode: str | None = None
    phase: str | None = None
    delta_link: str | None = None
    next_link: str | None = None
    watermark: str | None = None
    generation: int = 0
    fingerprint: str | None = None
    last_full_sync: str | None = None
    last_success: str | None = None
    last_error: str | None = None


class Mirror:
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
                self.path.parent.mkdir(parents=True, exist_ok=True)
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

    def __enter__(self) -> Mirror:
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
            # Just the pid, as jobs.pipeline.RunLock writes it: both lock the same file.
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            try:
                yield
            finally:
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

    # ---------------------------------------------------------------- mirrored tables

    @staticmethod
    def data_table(name: str) -> str:
        """The SQLite table that holds a mirrored table's rows (``t_lead``)."""
        return f"t_{name}"

    def layouts(self) -> dict[str, TableLayout]:
        """Every mirrored table's layout, by name."""
        return {
            row["name"]: TableLayout(
                name=row["name"],
                entity=row["entity"],
                source_table=row["source_table"],
                id_column=row["id_column"],
                columns=json.loads(row["columns"]),
            )
            for row in self._query("SELECT * FROM mirror_tables ORDER BY name")
        }

    def layout(self, name: str) -> TableLayout:
        """One mirrored table's layout.

        Raises:
            MirrorError: the table was never synced.
        """
        layout = self.layouts().get(name)
        if layout is None:
            raise MirrorError(
                f"table `{name}` is not in the mirror yet; run `dvsync sync --table {name}` first"
            )
        return layout

    def ensure_table(self, layout: TableLayout) -> bool:
        """Create a mirrored table, or bring an existing one to ``layout``; True when it changed.

        Columns the layout adds are added; columns it drops are dropped; a changed type is recorded
        (SQLite stores any type in any column; the caller re-reads the table in full).
        """
        for column, dtype in layout.columns.items():
            if not _IDENT.match(column) or column.startswith("_"):
                raise ConfigError(f"`{column}` cannot be a mirror column name", hint="use lower_snake_case")
            if dtype not in _DTYPES:
                raise ValueError(f"unknown storage type {dtype!r} for {column}")
        wanted = layout.data_columns()
        table = self.data_table(layout.name)
        with self.transaction() as db:
            existing = self.layouts().get(layout.name)
            now = self.now()
            if existing is None:
                cols = ", ".join(f'"{c}" {_SQL_TYPES[t]}' for c, t in wanted.items())
                db.execute(
                    f'CREATE TABLE "{table}" ("{layout.id_column}" TEXT PRIMARY KEY'
                    f"{', ' + cols if cols else ''}, _modifiedon TEXT, _etag TEXT,"
                    " _sync_gen INTEGER NOT NULL DEFAULT 0, _synced_at TEXT)"
                )
                db.execute(f'CREATE INDEX "{table}_gen" ON "{table}" (_sync_gen)')
                changed = True
            else:
                if existing.id_column != layout.id_column:
                    raise MirrorError(
                        f"mirror table `{layout.name}` is keyed by {existing.id_column}, "
                        f"not {layout.id_column}; rename the mapping file to mirror it afresh"
                    )
                have = existing.data_columns()
                for column, dtype in wanted.items():
                    if column not in have:
                        db.execute(f'ALTER TABLE "{table}" ADD COLUMN "{column}" {_SQL_TYPES[dtype]}')
                for column in have:
                    if column not in wanted:
                        db.execute(f'ALTER TABLE "{table}" DROP COLUMN "{column}"')
                changed = have != wanted or existing.entity != layout.entity
            db.execute(
                "INSERT INTO mirror_tables"
                " (name, entity, source_table, id_column, columns, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET entity = excluded.entity,"
                " source_table = excluded.source_table, columns = excluded.columns,"
                " updated_at = excluded.updated_at",
                (
                    layout.name,
                    layout.entity,
                    layout.source_table,
                    layout.id_column,
                    json.dumps({layout.id_column: "text", **wanted}),
                    now,
                    now,
                ),
            )
        return changed

    def upsert(self, name: str, frame: pd.DataFrame, *, generation: int | None = None) -> int:
        """Insert or replace rows (by id) from a DataFrame with the layout's columns; returns the count.

        System columns ``_modifiedon`` and ``_etag`` are taken from the frame when present; rows
        are stamped with ``generation`` (the table's current one when None) and the sync time.
        Rows repeating an id keep the last.
        """
        layout = self.layout(name)
        if frame.empty:
            return 0
        if layout.id_column not in frame.columns:
            raise ValueError(f"the frame has no id column {layout.id_column}")
        frame = frame.drop_duplicates(subset=[layout.id_column], keep="last")
        if frame[layout.id_column].isna().any():
            raise ValueError(f"rows without {layout.id_column} cannot be mirrored")
        if generation is None:
            generation = self.sync_state(name).generation
        columns = {**layout.columns, "_modifiedon": "datetime", "_etag": "text"}
        present = [c for c in columns if c in frame.columns]
        values = [_to_sql(frame[c], columns[c]) for c in present]
        count = len(frame)
        values.append(np.full(count, generation, dtype=object))
        values.append(np.full(count, self.now(), dtype=object))
        names = [*present, "_sync_gen", "_synced_at"]
        quoted = ", ".join(f'"{c}"' for c in names)
        updates = ", ".join(f'"{c}" = excluded."{c}"' for c in names if c != layout.id_column)
        sql = (
            f'INSERT INTO "{self.data_table(name)}" ({quoted}) VALUES ({", ".join("?" * len(names))})'
            f' ON CONFLICT ("{layout.id_column}") DO UPDATE SET {updates}'
        )
        rows = list(zip(*values, strict=True))
        with self.transaction() as db:
            db.executemany(sql, rows)
        return count

    def set_values(self, name: str, frame: pd.DataFrame) -> int:
        """Update some columns of existing rows (by id), e.g. ``out_*`` after a successful write-back.

        Rows that are not in the mirror are not created, and the sync bookkeeping (generation,
        etag, modifiedon) is left alone; returns how many rows were updated.
        """
        layout = self.layout(name)
        columns = [c for c in frame.columns if c != layout.id_column]
        unknown = [c for c in columns if c not in layout.columns]
        if unknown:
            raise MirrorError(f"mirror table `{name}` has no column {', '.join(unknown)}")
        if frame.empty or not columns:
            return 0
        values = [_to_sql(frame[c], layout.columns[c]) for c in columns]
        ids = [str(i).lower() for i in frame[layout.id_column]]
        sets = ", ".join(f'"{c}" = ?' for c in columns)
        sql = f'UPDATE "{self.data_table(name)}" SET {sets} WHERE "{layout.id_column}" = ?'
        with self.transaction() as db:
            before = db.total_changes
            db.executemany(sql, [(*row, rid) for *row, rid in zip(*values, ids, strict=True)])
            return db.total_changes - before

    def delete(self, name: str, ids: Iterable[str]) -> int:
        """Delete rows by id; returns how many existed."""
        layout = self.layout(name)
        keys = [(str(i).lower(),) for i in ids]
        if not keys:
            return 0
        with self.transaction() as db:
            before = db.total_changes
            db.executemany(f'DELETE FROM "{self.data_table(name)}" WHERE "{layout.id_column}" = ?', keys)
            return db.total_changes - before

    def delete_older_generations(self, name: str, generation: int) -> int:
        """Delete the rows a full read of ``generation`` did not see; returns how many."""
        with self.transaction() as db:
            cursor = db.execute(f'DELETE FROM "{self.data_table(name)}" WHERE _sync_gen < ?', (generation,))
            return cursor.rowcount

    def ids(self, name: str) -> set[str]:
        """Every id in a mirrored table."""
        layout = self.layout(name)
        rows = self._query(f'SELECT "{layout.id_column}" AS id FROM "{self.data_table(name)}"')
        return {r["id"] for r in rows}

    def count(self, name: str) -> int:
        """How many rows a mirrored table holds."""
        self.layout(name)
        return int(self._query(f'SELECT count(*) AS n FROM "{self.data_table(name)}"')[0]["n"])

    def read_frame(
        self, name: str, columns: Sequence[str] | None = None, *, include_system: bool = False
    ) -> pd.DataFrame:
        """Read a mirrored table into a DataFrame with its types restored.

        Text is ``object`` (None when missing), whole numbers nullable ``Int64``, numbers
        ``float64``, flags nullable ``boolean``, date-times ``datetime64[ns, UTC]``. The id column
        comes first; rows are ordered by id so that results do not depend on insertion order.

        Args:
            name: the mirror table (``lead``).
            columns: the canonical columns to read (the id is always included); default all.
            include_system: add ``_modifiedon`` (UTC) and ``_etag``.
        """
        layout = self.layout(name)
        types = dict(layout.columns)
        wanted = (
            list(types)
            if columns is None
            else [layout.id_column, *[c for c in columns if c != layout.id_column]]
        )
        unknown = [c for c in wanted if c not in types]
        if unknown:
            raise MirrorError(
                f"mirror table `{name}` has no column {', '.join(unknown)}; "
                f"it has {', '.join(types)} (map the field in mappings/{name}.toml and sync again)"
            )
        if include_system:
            wanted += ["_modifiedon", "_etag"]
            types.update({"_modifiedon": "datetime", "_etag": "text"})
        quoted = ", ".join(f'"{c}"' for c in wanted)
        with self._lock:
            cursor = self._db.execute(
                f'SELECT {quoted} FROM "{self.data_table(name)}" ORDER BY "{layout.id_column}"'
            )
            rows = cursor.fetchall()
        data = list(zip(*rows, strict=True)) if rows else [() for _ in wanted]
        return pd.DataFrame({c: _from_sql(list(v), types[c]) for c, v in zip(wanted, data, strict=True)})

    def read_entity(self, entity: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Read every mirrored table of a canonical entity (``activity``: email, phonecall...) as one frame.

        Columns a table lacks are missing values in its rows; types are restored as in :meth:`read_frame`.
        """
        names = [n for n, layout in self.layouts().items() if layout.entity == entity]
        if not names:
            raise MirrorError(f"no mirrored table holds {entity} records; map one and run `dvsync sync`")
        frames = []
        for name in names:
            layout = self.layout(name)
            have = [c for c in (columns or layout.columns) if c in layout.columns]
            frames.append(self.read_frame(name, have))
        combined = pd.concat(frames, ignore_index=True, sort=False)
        if columns is not None:
            for column in columns:
                if column not in combined:
                    combined[column] = None
        return combined

    # ---------------------------------------------------------------- sync state

    def sync_state(self, name: str) -> SyncState:
        """The sync state of a table (a fresh one when it was never synced)."""
        rows = self._query("SELECT * FROM sync_state WHERE table_name = ?", (name,))
        if not rows:
            return SyncState(table_name=name)
        row = rows[0]
        return SyncState(**{f.name: row[f.name] for f in fields(SyncState)})

    def save_sync_state(self, state: SyncState) -> None:
        """Store a table's sync state (call inside the page's transaction)."""
        names = [f.name for f in fields(SyncState)]
        values = [getattr(state, n) for n in names]
        with self.transaction() as db:
            db.execute(
                f"INSERT INTO sync_state ({', '.join(names)}, updated_at)"
                f" VALUES ({', '.join('?' * len(names))}, ?)"
                f" ON CONFLICT (table_name) DO UPDATE SET "
                + ", ".join(f"{n} = excluded.{n}" for n in names[1:])
                + ", updated_at = excluded.updated_at",
                (*values, self.now()),
            )

    def freshness(self) -> pd.DataFrame:
        """Per mirrored table: rows, mode, last success, last full sync, last error."""
        records = []
        for name in self.layouts():
            state = self.sync_state(name)
            records.append(
                {
                    "table": name,
                    "rows": self.count(name),
                    "mode": state.mode,
                    "last_success": _parse_utc(state.last_success),
                    "last_full_sync": _parse_utc(state.last_full_sync),
                    "unfinished": state.phase is not None,
                    "last_error": state.last_error,
                }
            )
        return pd.DataFrame.from_records(
            records,
            columns=["table", "rows", "mode", "last_success", "last_full_sync", "unfinished", "last_error"],
        )

    # ---------------------------------------------------------------- runs

    def start_run(self, kind: str, *, jobs: Sequence[str] | None = None, dry_run: bool = False) -> int:
        """Record the start of a run; returns its id."""
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO runs (kind, started_at, jobs, dry_run, pid, host) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    kind,
                    self.now(),
                    json.dumps(list(jobs)) if jobs else None,
                    int(dry_run),
                    os.getpid(),
                    socket.gethostname(),
                ),
            )
            return int(cursor.lastrowid)  # type: ignore[arg-type]

    def finish_run(
        self, run_id: int, outcome: str, *, stats: Mapping[str, Any] | None = None, error: str | None = None
    ) -> None:
        """Record the end of a run: ``ok``, ``failed`` or ``interrupted``, with its stats."""
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET finished_at = ?, outcome = ?, stats = ?, error = ? WHERE run_id = ?",
                (
                    self.now(),
                    outcome,
                    json.dumps(stats, default=str) if stats is not None else None,
                    error,
                    run_id,
                ),
            )

    def record_run_table(self, run_id: int, table: str, **counts: Any) -> None:
        """Add to a run's per-table counters (read, upserted, deleted, pages, written, failed,
        retries, throttled, duration_s) and set its ``mode``; repeated calls accumulate."""
        allowed = {
            "read",
            "upserted",
            "deleted",
            "pages",
            "written",
            "failed",
            "retries",
            "throttled",
            "duration_s",
        }
        unknown = set(counts) - allowed - {"mode"}
        if unknown:
            raise ValueError(f"unknown run counters: {sorted(unknown)}")
        numbers = {k: v for k, v in counts.items() if k in allowed}
        with self.transaction() as db:
            db.execute(
                "INSERT INTO run_tables (run_id, table_name) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (run_id, table),
            )
            if numbers:
                db.execute(
                    "UPDATE run_tables SET "
                    + ", ".join(f"{k} = {k} + ?" for k in numbers)
                    + " WHERE run_id = ? AND table_name = ?",
                    (*numbers.values(), run_id, table),
                )
            if "mode" in counts:
                db.execute(
                    "UPDATE run_tables SET mode = ? WHERE run_id = ? AND table_name = ?",
                    (counts["mode"], run_id, table),
                )

    def runs(self, limit: int = 20, *, kind: str | None = None) -> pd.DataFrame:
        """The latest runs, newest first, with their per-table totals summed."""
        where = "WHERE r.kind = ?" if kind else ""
        params: tuple = (kind, limit) if kind else (limit,)
        rows = self._query(
            "SELECT r.run_id, r.kind, r.started_at, r.finished_at, r.outcome, r.jobs, r.dry_run, r.error,"
            " r.stats, coalesce(sum(t.read), 0) AS read, coalesce(sum(t.upserted), 0) AS upserted,"
            " coalesce(sum(t.deleted), 0) AS deleted, coalesce(sum(t.written), 0) AS written,"
            " coalesce(sum(t.failed), 0) AS failed, coalesce(sum(t.retries), 0) AS retries,"
            " coalesce(sum(t.throttled), 0) AS throttled"
            f" FROM runs r LEFT JOIN run_tables t ON t.run_id = r.run_id {where}"
            " GROUP BY r.run_id ORDER BY r.run_id DESC LIMIT ?",
            params,
        )
        frame = pd.DataFrame.from_records(
            rows,
            columns=[
                "run_id",
                "kind",
                "started_at",
                "finished_at",
                "outcome",
                "jobs",
                "dry_run",
                "error",
                "stats",
                "read",
                "upserted",
                "deleted",
                "written",
                "failed",
                "retries",
                "throttled",
            ],
        )
        for column in ("started_at", "finished_at"):
            frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601").dt.as_unit("ns")
        frame["stats"] = frame["stats"].map(lambda s: json.loads(s) if isinstance(s, str) and s else None)
        frame["jobs"] = frame["jobs"].map(lambda s: json.loads(s) if isinstance(s, str) and s else None)
        frame["dry_run"] = frame["dry_run"].astype(bool)
        return frame

    def run(self, run_id: int) -> dict[str, Any]:
        """One run with its per-table rows (``tables``).

        Raises:
            MirrorError: no such run.
        """
        rows = self._query("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        if not rows:
            raise MirrorError(f"no run {run_id} in the mirror; `dvsync status` lists the runs")
        run = dict(rows[0])
        run["stats"] = json.loads(run["stats"]) if run["stats"] else None
        run["jobs"] = json.loads(run["jobs"]) if run["jobs"] else None
        run["tables"] = self._query(
            "SELECT * FROM run_tables WHERE run_id = ? ORDER BY table_name", (run_id,)
        )
        return run

    def mark_abandoned_runs(self, *, alive: Callable[[int], bool] | None = None) -> list[int]:
        """Mark as ``interrupted`` the runs still ``running`` whose process on this host is gone."""
        alive = alive or _pid_alive
        host = socket.gethostname()
        rows = self._query("SELECT run_id, pid, host FROM runs WHERE outcome = 'running'")
        dead = [r["run_id"] for r in rows if r["host"] == host and not (r["pid"] and alive(int(r["pid"])))]
        for run_id in dead:
            self.finish_run(run_id, "interrupted", error="the process ended before the run finished")
        return dead

    # ---------------------------------------------------------------- results

    def save_results(
        self, run_id: int, table: str, results: pd.DataFrame, *, id_column: str | None = None
    ) -> int:
        """Store job results: one row per record, one column per result name; returns values stored.

        Args:
            run_id: the run that computed them.
            table: the mirror table the records belong to (``lead``, ``account``).
            results: the results; the record id is ``id_column`` or else the index.
            id_column: the column holding the record id.
        """
        frame = results.set_index(id_column) if id_column else results
        now = self.now()
        rows: list[tuple] = []
        for result in frame.columns:
            values = _to_sql(frame[result], _guess_dtype(frame[result]))
            ids = frame.index.astype(str).str.lower()
            rows.extend(
                (run_id, table, rid, str(result), value, now) for rid, value in zip(ids, values, strict=True)
            )
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO results (run_id, table_name, record_id, result, value, computed_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    def results(
        self, table: str, *, run_id: int | None = None, before_run: int | None = None
    ) -> pd.DataFrame:
        """Results of one table, one row per record (index ``record_id``), one column per result.

        With ``run_id``: that run's results. Otherwise the latest value of each result per record,
        from runs before ``before_run`` when given (the "previous" values, for trends).
        """
        if run_id is not None:
            rows = self._query(
                "SELECT record_id, result, value FROM results WHERE table_name = ? AND run_id = ?",
                (table, run_id),
            )
        else:
            bound = "AND run_id < ?" if before_run is not None else ""
            params: tuple = (table, before_run) if before_run is not None else (table,)
            rows = self._query(
                "SELECT r.record_id, r.result, r.value FROM results r JOIN ("
                " SELECT table_name, result, record_id, max(run_id) AS run_id FROM results"
                f" WHERE table_name = ? {bound} GROUP BY table_name, result, record_id) latest"
                " USING (table_name, result, record_id, run_id)",
                params,
            )
        if not rows:
            return pd.DataFrame(index=pd.Index([], name="record_id"))
        long = pd.DataFrame.from_records(rows)
        wide = long.pivot(index="record_id", columns="result", values="value")
        wide.columns.name = None
        return wide.sort_index()

    def prune_results(self, keep_runs: int = 30) -> int:
        """Delete the results of all but the newest ``keep_runs`` runs; returns the rows deleted."""
        with self.transaction() as db:
            cursor = db.execute(
                "DELETE FROM results WHERE run_id NOT IN ("
                " SELECT DISTINCT run_id FROM results ORDER BY run_id DESC LIMIT ?)",
                (keep_runs,),
            )
            return cursor.rowcount

    # ---------------------------------------------------------------- write-back plan

    def save_plan(self, run_id: int, plan: pd.DataFrame) -> int:
        """Store a write-back plan for a run; returns the items stored.

        ``plan`` columns: ``table_name``, ``record_id``, ``column_name`` (the Dataverse logical
        name), ``new_value``, and optionally ``result`` and ``old_value``. Items start ``pending``.
        """
        required = {"table_name", "record_id", "column_name", "new_value"}
        missing = required - set(plan.columns)
        if missing:
            raise ValueError(f"the plan lacks columns {sorted(missing)}")
        now = self.now()
        result = plan["result"] if "result" in plan else pd.Series([None] * len(plan), index=plan.index)
        old = plan["old_value"] if "old_value" in plan else pd.Series([None] * len(plan), index=plan.index)
        rows = list(
            zip(
                [run_id] * len(plan),
                plan["table_name"].astype(str),
                plan["record_id"].astype(str).str.lower(),
                plan["column_name"].astype(str),
                [_plain(v) for v in result],
                [_plain(v) for v in old],
                [_plain(v) for v in plan["new_value"]],
                [now] * len(plan),
                strict=True,
            )
        )
        with self.transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO writeback_plan (run_id, table_name, record_id, column_name, result,"
                " old_value, new_value, status, attempts, error, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, NULL, ?)",
                rows,
            )
        return len(rows)

    def plan(
        self,
        run_id: int | None = None,
        *,
        status: str | Sequence[str] | None = None,
        table: str | None = None,
    ) -> pd.DataFrame:
        """Plan items (all runs when ``run_id`` is None), filtered by status and table."""
        clauses, params = [], []
        if run_id is not None:
            clauses.append("run_id = ?")
            params.append(run_id)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            clauses.append(f"status IN ({', '.join('?' * len(statuses))})")
            params.extend(statuses)
        if table is not None:
            clauses.append("table_name = ?")
            params.append(table)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._query(
            f"SELECT * FROM writeback_plan {where} ORDER BY run_id, table_name, record_id, column_name",
            params,
        )
        return pd.DataFrame.from_records(
            rows,
            columns=[
                "run_id",
                "table_name",
                "record_id",
                "column_name",
                "result",
                "old_value",
                "new_value",
                "status",
                "attempts",
                "error",
                "updated_at",
            ],
        )

    def mark_plan(
        self,
        run_id: int,
        table: str,
        items: Iterable[tuple[str, str]],
        status: str,
        *,
        error: str | None = None,
    ) -> int:
        """Set the status (``written``, ``failed``, ``skipped``, ``pending``) of plan items.

        Args:
            items: ``(record_id, column_name)`` pairs.
        """
        now = self.now()
        keys = [(status, error, now, run_id, table, str(r).lower(), c) for r, c in items]
        with self.transaction() as db:
            before = db.total_changes
            db.executemany(
                "UPDATE writeback_plan SET status = ?, error = ?, updated_at = ?, attempts = attempts + 1"
                " WHERE run_id = ? AND table_name = ? AND record_id = ? AND column_name = ?",
                keys,
            )
            return db.total_changes - before

    # ---------------------------------------------------------------- audit

    def record_audit(
        self, run_id: int, table: str, entries: pd.DataFrame | Iterable[Mapping[str, Any]]
    ) -> int:
        """Append audit entries: ``record_id``, ``column_name``, ``old_value``, ``new_value``,
        ``outcome`` (``written``, ``failed``, ``restored``, ``refused``...), ``error``."""
        frame = pd.DataFrame(entries) if not isinstance(entries, pd.DataFrame) else entries
        if frame.empty:
            return 0
        now = self.now()

        def col(name: str) -> list[Any]:
            return [_plain(v) for v in frame[name]] if name in frame else [None] * len(frame)

        rows = list(
            zip(
                [run_id] * len(frame),
                [table] * len(frame),
                [str(r).lower() for r in frame["record_id"]],
                frame["column_name"].astype(str),
                col("old_value"),
                col("new_value"),
                frame["outcome"].astype(str),
                col("error"),
                [now] * len(frame),
                strict=True,
            )
        )
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO audit (run_id, table_name, record_id, column_name, old_value, new_value,"
                " outcome, error, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    def audit(
        self, run_id: int | None = None, *, table: str | None = None, record_id: str | None = None
    ) -> pd.DataFrame:
        """Audit entries, oldest first, filtered by run, table and record."""
        clauses, params = [], []
        for name, value in (("run_id", run_id), ("table_name", table), ("record_id", record_id)):
            if value is not None:
                clauses.append(f"{name} = ?")
                params.append(str(value).lower() if name == "record_id" else value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._query(f"SELECT * FROM audit {where} ORDER BY audit_id", params)
        frame = pd.DataFrame.from_records(
            rows,
            columns=[
                "audit_id",
                "run_id",
                "table_name",
                "record_id",
                "column_name",
                "old_value",
                "new_value",
                "outcome",
                "error",
                "at",
            ],
        )
        frame["at"] = pd.to_datetime(frame["at"], utc=True, format="ISO8601").dt.as_unit("ns")
        return frame


# ------------------------------------------------------------------------------- conversions


def _plain(value: Any) -> Any:
    """A value SQLite can store: None for missing, Python scalars, ISO text for moments."""
    if value is None:
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return utc_text(value) if getattr(value, "tzinfo", None) else pd.Timestamp(value).isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, bool):
        return int(value)
    return value


def _guess_dtype(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    if pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_float_dtype(series):
        return "float"
    return "text"


def _to_sql(series: pd.Series, dtype: str) -> np.ndarray:
    """Vectorised conversion of one column into values for sqlite3 (None for missing)."""
    if dtype == "datetime":
        stamps = pd.to_datetime(series, utc=True, format="ISO8601")
        text = stamps.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return text.astype(object).where(stamps.notna(), None).to_numpy(dtype=object)
    if dtype == "bool":
        flags = series.astype("boolean")
        return flags.astype("Int64").astype(object).where(flags.notna(), None).to_numpy(dtype=object)
    if dtype == "int":
        numbers = pd.to_numeric(series).astype("Int64")
        return numbers.astype(object).where(numbers.notna(), None).to_numpy(dtype=object)
    if dtype == "float":
        numbers = pd.to_numeric(series).astype(float)
        finite = np.isfinite(numbers.to_numpy())
        return numbers.astype(object).where(finite, None).to_numpy(dtype=object)
    if isinstance(series.dtype, pd.StringDtype):  # only str and missing: no per-value conversion
        text = series.astype(object)
        return text.where(series.notna(), None).to_numpy(dtype=object)
    return np.array([_plain(v) for v in series], dtype=object)


def _from_sql(values: list[Any], dtype: str) -> pd.Series:
    if dtype == "datetime":
        stamps = pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601")
        return stamps.dt.as_unit("ns")
    if dtype == "bool":
        return pd.Series(values, dtype="Int64").astype("boolean")
    if dtype == "int":
        return pd.Series(values, dtype="Int64")
    if dtype == "float":
        return pd.Series(values, dtype=object).astype(float)
    return pd.Series(values, dtype=object)


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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
