"""A server-side log of every applied record update, for tests that must count what really changed.

Dataverse runs plug-ins and flows once per applied update, so a client that replays a write
("at least once") is visible there even when the final values are right. Tests therefore count
updates where they happen: an ``AFTER UPDATE`` trigger on every entity table appends
``(entity, id, version, columns)`` to ``_dv_updates`` whenever a row's ``versionnumber`` changes
(every update the API applies bumps it; a refused one, e.g. a 412, does not). Triggers see every
path that writes (single PATCH, ``$batch``, ``UpdateMultiple``, ``PUT`` of one property), so the
log does not depend on the request code it checks. Inserts and deletes are not logged.

The log is never served: read it with :func:`updates` / :func:`update_counts` from the data
directory (``Sandbox.data_dir``).
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

__all__ = ["LOG_TABLE", "install", "update_counts", "updates"]

LOG_TABLE = "_dv_updates"


def install(conn: sqlite3.Connection, tables: Mapping[str, str]) -> None:
    """Create the log table and one trigger per entity table (idempotent).

    Args:
        conn: a connection to the sandbox database.
        tables: entity logical name -> its primary key column.
    """
    conn.execute(
        f'CREATE TABLE IF NOT EXISTS "{LOG_TABLE}" '
        "(seq INTEGER PRIMARY KEY AUTOINCREMENT, entity TEXT NOT NULL, id TEXT NOT NULL, version INTEGER)"
    )
    for table, primary in tables.items():
        columns = {row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')}
        if "versionnumber" not in columns or primary not in columns:
            continue
        conn.execute(
            f'CREATE TRIGGER IF NOT EXISTS "_dv_updates_{table}" AFTER UPDATE ON "{table}" '
            "WHEN NEW.versionnumber IS NOT OLD.versionnumber BEGIN "
            f'INSERT INTO "{LOG_TABLE}" (entity, id, version) '
            f"VALUES ('{table}', NEW.\"{primary}\", NEW.versionnumber); END"
        )


def _rows(data_dir: str | Path, entity: str | None) -> list[tuple[str, str, int]]:
    path = Path(data_dir) / "sandbox.sqlite"
    with sqlite3.connect(path, timeout=30) as conn:
        sql = f'SELECT entity, id, version FROM "{LOG_TABLE}"'
        params: tuple[str, ...] = ()
        if entity is not None:
            sql += " WHERE entity = ?"
            params = (entity,)
        return [(str(e), str(i).lower(), int(v)) for e, i, v in conn.execute(sql + " ORDER BY seq", params)]


def updates(data_dir: str | Path, entity: str | None = None) -> list[tuple[str, str, int]]:
    """Every applied update so far, in order: ``(entity, record id, new versionnumber)``."""
    return _rows(data_dir, entity)


def update_counts(data_dir: str | Path, entity: str | None = None) -> Counter[str]:
    """Applied updates per record id (of one entity, or of all)."""
    return Counter(record for _, record, _ in _rows(data_dir, entity))
