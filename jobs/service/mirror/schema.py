"""The mirror's schema: its system columns, its storage types and the append-only migrations."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from datetime import datetime

from core.errors import DvsyncError

Clock = Callable[[], datetime]

# The writeback_plan table's columns, in the order plans are read and exported.
PLAN_ROW_COLUMNS = [
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
]
SYSTEM_COLUMNS = ("_modifiedon", "_etag", "_sync_gen", "_synced_at")
DTYPES = ("text", "int", "float", "bool", "datetime")
SQL_TYPES = {"text": "TEXT", "int": "INTEGER", "float": "REAL", "bool": "INTEGER", "datetime": "TEXT"}
IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")


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


def _v3(db: sqlite3.Connection) -> None:
    # Incremental runs: the results keep one row per record and result (the last value computed,
    # rewritten only where it changed) instead of a copy per run; the jobs' state (input
    # fingerprint, last results, caches) and the table definitions are kept between runs, and each
    # mirrored table counts its changes so a job can tell that its inputs did not move.
    _script(
        db,
        """
        CREATE TABLE result_values (
            table_name TEXT NOT NULL,
            result TEXT NOT NULL,
            record_id TEXT NOT NULL,
            value,
            run_id INTEGER NOT NULL,
            computed_at TEXT NOT NULL,
            PRIMARY KEY (table_name, result, record_id)
        ) WITHOUT ROWID;
        INSERT INTO result_values (table_name, result, record_id, value, run_id, computed_at)
            SELECT r.table_name, r.result, r.record_id, r.value, r.run_id, r.computed_at FROM results r
            JOIN (SELECT table_name, result, record_id, max(run_id) AS run_id FROM results
                  GROUP BY table_name, result, record_id) latest
            USING (table_name, result, record_id, run_id);
        DROP TABLE results;
        CREATE INDEX result_values_run ON result_values (run_id, table_name);
        CREATE TABLE job_state (
            job TEXT PRIMARY KEY,
            fingerprint TEXT NOT NULL,
            run_id INTEGER,
            saved_at TEXT NOT NULL,
            payload BLOB NOT NULL
        );
        CREATE TABLE table_versions (
            name TEXT PRIMARY KEY,
            version INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE metadata_cache (
            table_name TEXT PRIMARY KEY,
            definition BLOB NOT NULL,
            stamp TEXT,
            fetched_at TEXT NOT NULL
        );
        """,
    )


def _v4(db: sqlite3.Connection) -> None:
    # Per record, the table version of the sync commit that last changed (or deleted) it: a job
    # checks only the records changed since the version it last computed at (see row_digests).
    _script(
        db,
        """
        CREATE TABLE row_changes (
            table_name TEXT NOT NULL,
            record_id TEXT NOT NULL,
            version INTEGER NOT NULL,
            PRIMARY KEY (table_name, record_id)
        ) WITHOUT ROWID;
        CREATE INDEX row_changes_version ON row_changes (table_name, version);
        """,
    )


# Append-only: (version, what it does, how). Never edit a released step; add the next one.
MIGRATIONS: tuple[tuple[int, str, Callable[[sqlite3.Connection], None]], ...] = (
    (1, "mirror registry, sync state, runs", _v1),
    (2, "job results, write-back plan, audit", _v2),
    (3, "last results per record, job state, table versions, metadata cache", _v3),
    (4, "the table version that last changed each mirrored record", _v4),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]
