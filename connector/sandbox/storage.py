"""The sandbox's state: one SQLite file, one table per entity with real columns.

Besides the entity tables it keeps:

- ``_dv_meta``: the global version counter (the source of every ``versionnumber`` and etag) and
  facts about the database (when it was seeded, with what size and seed);
- ``_dv_columns``: columns created through the metadata API (re-applied on start, and added to the
  entity table with ``ALTER TABLE`` when created);
- ``_dv_tombstones``: one row per deleted record with the version of its deletion, so change
  tracking can report ``$deletedEntity`` entries;
- ``_dv_publish``: a log of ``PublishXml``/``PublishAllXml`` calls;
- ``_dv_keys``: alternate keys created through the metadata API, with their index status;
- ``_dv_metadata_changes``: one row per metadata change (a created column or key), whose sequence
  number is the ``RetrieveMetadataChanges`` version stamp.

Writes are serialised by one lock (SQLite allows one writer at a time anyway) and run in explicit
transactions; nested ``transaction()`` calls become savepoints, which is how a ``$batch`` change set
is made atomic inside the batch's transaction. Reads use a per-thread connection in WAL mode, so
they never wait for a writer.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from connector.sandbox.catalog import TABLES
from connector.sandbox.dates import format_datetime
from connector.sandbox.keys import AlternateKey
from connector.sandbox.schema import BUSINESS_UNIT_ID, CURRENCY_ID, PRICE_LEVEL_ID, USER_ID, Column, Table
from connector.sandbox.sdkmessages import SYSTEM_TABLES, system_rows

__all__ = ["SeedError", "Store"]

DB_NAME = "sandbox.sqlite"


class SeedError(ValueError):
    """Seed frames do not fit the sandbox's tables (unknown table or column, bad value)."""


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Store:
    """SQLite-backed state of one sandbox data directory.

    Args:
        data_dir: the directory holding ``sandbox.sqlite``.
        clock: returns the current UTC time (injectable for tests).
    """

    def __init__(self, data_dir: Path, clock: Callable[[], datetime]):
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / DB_NAME
        self.clock = clock
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self._version = 0
        self._committed = 0
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self.tables: dict[str, Table] = {t.logical_name: t for t in (*TABLES, *SYSTEM_TABLES)}
        self._keys: dict[str, list[AlternateKey]] = {}

    # --- connections and transactions ---------------------------------------------------------

    def conn(self) -> sqlite3.Connection:
        """Return this thread's connection (created on first use)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            self._local.depth = 0
            with self._connections_lock:
                self._connections.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection this store opened, leaving the data in the one database file.

        The WAL is checkpointed first, so a stopped sandbox's folder can be copied or backed up as
        its ``sandbox.sqlite`` alone (a connection kept open elsewhere would otherwise leave recent
        writes, schema changes included, only in ``sandbox.sqlite-wal``).
        """
        with self._connections_lock:
            if self._connections:
                with contextlib.suppress(sqlite3.Error):
                    self._connections[0].execute("PRAGMA wal_checkpoint(TRUNCATE)")
            for conn in self._connections:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._connections.clear()
        self._local = threading.local()

    def release(self) -> None:
        """Close the calling thread's connection (a server thread calls this when its client leaves)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            return
        with self._connections_lock:
            if conn in self._connections:
                self._connections.remove(conn)
        with contextlib.suppress(sqlite3.Error):
            conn.close()
        self._local.conn = None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run a write transaction; nested calls on the same thread become savepoints.

        An exception inside rolls back exactly the innermost level and propagates.
        """
        conn = self.conn()
        depth = self._local.depth
        if depth == 0:
            self._write_lock.acquire()
            try:
                conn.execute("BEGIN IMMEDIATE")
            except BaseException:
                self._write_lock.release()
                raise
            self._local.depth = 1
            try:
                yield conn
                conn.execute("UPDATE _dv_meta SET value = ? WHERE key = 'version'", (str(self._version),))
                conn.execute("COMMIT")
                self._committed = self._version
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            finally:
                self._local.depth = 0
                self._write_lock.release()
        else:
            name = f"sp{depth}"
            conn.execute(f"SAVEPOINT {name}")
            self._local.depth = depth + 1
            try:
                yield conn
                conn.execute(f"RELEASE {name}")
            except BaseException:
                conn.execute(f"ROLLBACK TO {name}")
                conn.execute(f"RELEASE {name}")
                raise
            finally:
                self._local.depth = depth

    def next_version(self) -> int:
        """Return a new, strictly increasing version number (call inside a transaction)."""
        self._version += 1
        return self._version

    @property
    def current_version(self) -> int:
        """The latest version number handed out (possibly not yet committed)."""
        return self._version

    @property
    def committed_version(self) -> int:
        """The latest version whose transaction has committed.

        Change tracking bounds its reads by this, never by :attr:`current_version`: a version handed
        out to a transaction still in flight must not be covered by a delta token, or that change
        would be skipped by the next delta.
        """
        return self._committed

    # --- creation, seeding and opening --------------------------------------------------------

    def exists(self) -> bool:
        """Whether the data directory already holds a database."""
        return self.path.exists()

    def open(self, tombstone_retention: timedelta | None = None) -> None:
        """Open an existing database: load the version counter and the created columns.

        Args:
            tombstone_retention: drop tombstones older than this; no delta token that could still
                use them is valid any more (it would have expired), so they only cost space.
        """
        conn = self.conn()
        if tombstone_retention is not None:
            cutoff = format_datetime(self.clock() - tombstone_retention)
            conn.execute("DELETE FROM _dv_tombstones WHERE deleted_on < ?", (cutoff,))
        self._version = int(conn.execute("SELECT value FROM _dv_meta WHERE key = 'version'").fetchone()[0])
        self._committed = self._version
        with self.transaction() as tx:  # stores made before the system tables existed get them now
            self._version = self._install_system_tables(tx, self._version)
        for entity, definition in conn.execute("SELECT entity, definition FROM _dv_columns ORDER BY rowid"):
            self._register_column(entity, column_from_json(definition))
        # Added after the first release: data directories seeded before them get them on open.
        conn.execute(
            "CREATE TABLE IF NOT EXISTS _dv_keys (entity TEXT NOT NULL, logical_name TEXT NOT NULL, "
            "definition TEXT NOT NULL, status TEXT NOT NULL, solution TEXT, created_on TEXT NOT NULL, "
            "PRIMARY KEY (entity, logical_name))"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS _dv_metadata_changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
            "entity TEXT NOT NULL, changed_on TEXT NOT NULL)"
        )
        self._keys = {}
        for entity, definition, status in conn.execute(
            "SELECT entity, definition, status FROM _dv_keys ORDER BY rowid"
        ):
            self._keys.setdefault(entity, []).append(AlternateKey.from_row(entity, definition, status))

    def meta(self, key: str) -> str | None:
        """Return one fact recorded in ``_dv_meta``."""
        row = self.conn().execute("SELECT value FROM _dv_meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def create(self, frames: dict[str, pd.DataFrame], facts: dict[str, str]) -> None:
        """Create the database and load the seed frames (keyed by table logical name).

        Raises:
            SeedError: a frame names an unknown table or column.
        """
        self.data_dir.mkdir(parents=True, exist_ok=True)
        unknown = sorted(set(frames) - set(self.tables))
        if unknown:
            raise SeedError(f"seed data has tables the sandbox does not serve: {', '.join(unknown)}")
        tmp = self.path.with_suffix(".partial")
        tmp.unlink(missing_ok=True)
        # Build in a side file and rename, so an interrupted seed never leaves a half-seeded data dir.
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=OFF")
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("PRAGMA cache_size=-262144")  # 256 MB while loading
            conn.execute("BEGIN")
            conn.execute("CREATE TABLE _dv_meta (key TEXT PRIMARY KEY, value TEXT)")
            conn.execute(
                "CREATE TABLE _dv_columns (entity TEXT NOT NULL, logical_name TEXT NOT NULL, "
                "definition TEXT NOT NULL, solution TEXT, created_on TEXT NOT NULL, "
                "PRIMARY KEY (entity, logical_name))"
            )
            conn.execute(
                "CREATE TABLE _dv_tombstones (entity TEXT NOT NULL, id TEXT NOT NULL, "
                "versionnumber INTEGER NOT NULL, deleted_on TEXT NOT NULL)"
            )
            conn.execute("CREATE INDEX _dv_tombstones_v ON _dv_tombstones (entity, versionnumber)")
            conn.execute("CREATE TABLE _dv_publish (published_on TEXT NOT NULL, parameter_xml TEXT)")
            for table in self.tables.values():
                cols = ", ".join(
                    f"{_q(c.logical_name)} {c.sql_type}"
                    + (" PRIMARY KEY" if c.logical_name == table.primary_id else "")
                    for c in table.columns
                )
                conn.execute(f"CREATE TABLE {_q(table.logical_name)} ({cols})")
            version = 0
            now = self.clock()
            for name, frame in frames.items():
                table = self.tables[name]
                rows, version = _seed_rows(table, frame, version, now)
                names = [c.logical_name for c in table.columns]
                marks = ",".join("?" * len(names))
                conn.executemany(
                    f"INSERT INTO {_q(name)} ({','.join(_q(n) for n in names)}) VALUES ({marks})", rows
                )
            version = self._install_system_tables(conn, version)
            for table in self.tables.values():
                conn.execute(
                    f"CREATE INDEX IF NOT EXISTS {_q(table.logical_name + '_v')} ON {_q(table.logical_name)} "
                    "(versionnumber)"
                )
            facts = {**facts, "version": str(version), "created_on": format_datetime(now)}
            conn.executemany("INSERT INTO _dv_meta VALUES (?, ?)", list(facts.items()))
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            tmp.unlink(missing_ok=True)
            raise
        conn.close()
        tmp.replace(self.path)
        self.open()

    def _install_system_tables(self, conn: sqlite3.Connection, version: int) -> int:
        """Create the system tables if missing and fill them if empty; return the last version used."""
        existing = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        rows = system_rows([t.logical_name for t in TABLES], format_datetime(self.clock()))
        for table in SYSTEM_TABLES:
            name = table.logical_name
            if name not in existing:
                cols = ", ".join(
                    f"{_q(c.logical_name)} {c.sql_type}"
                    + (" PRIMARY KEY" if c.logical_name == table.primary_id else "")
                    for c in table.columns
                )
                conn.execute(f"CREATE TABLE {_q(name)} ({cols})")
                conn.execute(f"CREATE INDEX {_q(name + '_v')} ON {_q(name)} (versionnumber)")
            if conn.execute(f"SELECT 1 FROM {_q(name)} LIMIT 1").fetchone():
                continue
            for row in rows[name]:
                version += 1
                values = {**row, "versionnumber": version}
                marks = ",".join("?" * len(values))
                conn.execute(
                    f"INSERT INTO {_q(name)} ({','.join(_q(k) for k in values)}) VALUES ({marks})",
                    list(values.values()),
                )
        return version

    # --- schema changes -----------------------------------------------------------------------

    def add_column(self, conn: sqlite3.Connection, column: Column, solution: str | None) -> None:
        """Add a created column to its table (call inside a transaction)."""
        conn.execute(
            f"ALTER TABLE {_q(column.entity)} ADD COLUMN {_q(column.logical_name)} {column.sql_type}"
        )
        conn.execute(
            "INSERT INTO _dv_columns VALUES (?, ?, ?, ?, ?)",
            (
                column.entity,
                column.logical_name,
                column_to_json(column),
                solution,
                format_datetime(self.clock()),
            ),
        )
        self._register_column(column.entity, column)
        self.record_metadata_change(conn, column.entity)

    def keys(self, entity: str) -> list[AlternateKey]:
        """The alternate keys defined on a table, oldest first (kept in memory: every write checks them)."""
        return list(self._keys.get(entity, ()))

    def add_key(self, conn: sqlite3.Connection, key: AlternateKey, solution: str | None) -> AlternateKey:
        """Define an alternate key and build its unique index (call inside a transaction).

        Returns:
            the key with its index status: ``Failed`` when existing records share key values.
        """
        cols = ", ".join(_q(name) for name in key.attributes)
        filled = " AND ".join(f"{_q(name)} IS NOT NULL AND {_q(name)} <> ''" for name in key.attributes)
        clash = conn.execute(
            f"SELECT 1 FROM {_q(key.entity)} WHERE {filled} GROUP BY {cols} HAVING COUNT(*) > 1 LIMIT 1"
        ).fetchone()
        key = replace(key, status="Failed" if clash else "Active")
        if not clash:
            conn.execute(
                f"CREATE UNIQUE INDEX {_q(key.index_name)} ON {_q(key.entity)} ({cols}) WHERE {filled}"
            )
        conn.execute(
            "INSERT INTO _dv_keys VALUES (?, ?, ?, ?, ?, ?)",
            (
                key.entity,
                key.logical_name,
                key.to_json(),
                key.status,
                solution,
                format_datetime(self.clock()),
            ),
        )
        self.record_metadata_change(conn, key.entity)
        self._keys.setdefault(key.entity, []).append(key)
        return key

    def remove_key(self, conn: sqlite3.Connection, key: AlternateKey) -> None:
        """Delete an alternate key and its index (call inside a transaction)."""
        conn.execute(f"DROP INDEX IF EXISTS {_q(key.index_name)}")
        conn.execute(
            "DELETE FROM _dv_keys WHERE entity = ? AND logical_name = ?", (key.entity, key.logical_name)
        )
        self.record_metadata_change(conn, key.entity)
        self._keys[key.entity] = [k for k in self._keys.get(key.entity, []) if k != key]

    def record_metadata_change(self, conn: sqlite3.Connection, entity: str) -> None:
        """Log that a table's definition changed (for ``RetrieveMetadataChanges``)."""
        conn.execute(
            "INSERT INTO _dv_metadata_changes (entity, changed_on) VALUES (?, ?)",
            (entity, format_datetime(self.clock())),
        )

    def metadata_changes(self, since: int) -> tuple[set[str], int]:
        """Tables whose definition changed after sequence ``since``, and the latest sequence."""
        conn = self.conn()
        changed = {
            row[0] for row in conn.execute("SELECT entity FROM _dv_metadata_changes WHERE seq > ?", (since,))
        }
        latest = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM _dv_metadata_changes").fetchone()[0]
        return changed, int(latest)

    def _register_column(self, entity: str, column: Column) -> None:
        table = self.tables[entity]
        if column.logical_name in table.column_map():
            return
        self.tables[entity] = replace(table, columns=(*table.columns, column))

    def table_for_set(self, entity_set: str) -> Table | None:
        """Return the table served under an entity set name (case-sensitive)."""
        for table in self.tables.values():
            if table.entity_set == entity_set:
                return table
        return None


def column_to_json(column: Column) -> str:
    """Serialise a column definition for ``_dv_columns``."""
    data = asdict(column)
    for key in ("options", "option_states", "default_status"):
        data[key] = {str(k): v for k, v in data[key].items()}
    data["targets"] = list(column.targets)
    return json.dumps(data)


def column_from_json(text: str) -> Column:
    """Read a column definition written by :func:`column_to_json`."""
    data = json.loads(text)
    for key in ("options", "option_states", "default_status"):
        data[key] = {int(k): v for k, v in data[key].items()}
    data["targets"] = tuple(data["targets"])
    return Column(**data)


# --- seeding ------------------------------------------------------------------------------------


_CHUNK = 50_000


def _seed_rows(table: Table, frame: pd.DataFrame, version: int, now: datetime) -> tuple[Iterator[tuple], int]:
    """Turn one seed frame into INSERT rows in the table's column order, vectorised per column."""
    columns = table.column_map()
    unknown = [c for c in frame.columns if c not in columns]
    if unknown:
        raise SeedError(
            f"seed table {table.logical_name!r} has columns the sandbox does not define: {', '.join(unknown)}"
        )
    n = len(frame)
    df = frame.reset_index(drop=True).copy()
    pk = table.primary_id
    if pk not in df or df[pk].isna().any():
        raise SeedError(f"seed table {table.logical_name!r} needs a {pk} on every row")
    df[pk] = df[pk].astype(str).str.lower()
    if df[pk].duplicated().any():
        dup = df.loc[df[pk].duplicated(), pk].iloc[0]
        raise SeedError(f"seed table {table.logical_name!r} has duplicate {pk} {dup}")
    # Inserting in primary-key order appends to the B-tree instead of splitting pages at random
    # GUID positions: several times faster for the large seed.
    df = df.sort_values(pk, kind="stable").reset_index(drop=True)
    stamp = format_datetime(now)

    def fill(name: str, value: object) -> None:
        if name in columns:
            if name not in df:
                df[name] = value
            else:
                df[name] = df[name].where(df[name].notna(), value)

    fill("createdon", stamp)
    if "modifiedon" not in df and "createdon" in frame:
        df["modifiedon"] = df["createdon"]
    fill("modifiedon", stamp)
    fill("ownerid", USER_ID)
    fill("owneridtype", "systemuser")
    fill("createdby", USER_ID)
    fill("modifiedby", USER_ID)
    fill("owningbusinessunit", BUSINESS_UNIT_ID)
    fill("transactioncurrencyid", CURRENCY_ID)
    fill("exchangerate", 1.0)
    if table.logical_name == "salesorder":
        fill("pricelevelid", PRICE_LEVEL_ID)
        if "ordernumber" not in df:
            df["ordernumber"] = [f"ORD-{i + 1:06d}" for i in range(n)]
        if "customerid" in df and "customeridtype" in df:
            df["accountid"] = df["customerid"].where(df["customeridtype"] == "account")
            df["contactid"] = df["customerid"].where(df["customeridtype"] == "contact")
    if table.is_activity:
        df["activitytypecode"] = table.logical_name
    if "statecode" in columns:
        fill("statecode", 0)
        state = columns["statecode"]
        if "statuscode" not in df:
            df["statuscode"] = df["statecode"].map(state.default_status)
        else:
            df["statuscode"] = df["statuscode"].where(
                df["statuscode"].notna(), df["statecode"].map(state.default_status)
            )
    if "fullname" in columns and "fullname" not in frame:
        first = df["firstname"].fillna("") if "firstname" in df else pd.Series("", index=df.index)
        last = df["lastname"].fillna("") if "lastname" in df else pd.Series("", index=df.index)
        df["fullname"] = (first + " " + last).str.strip()
    df["versionnumber"] = np.arange(version + 1, version + n + 1)

    def rows() -> Iterator[tuple]:
        # Converted a chunk at a time, so a large seed never holds every row as Python objects.
        for start in range(0, n, _CHUNK):
            part = df.iloc[start : start + _CHUNK]
            size = len(part)
            values = [
                _to_sql(col, part[col.logical_name], table.logical_name)
                if col.logical_name in part
                else [None] * size
                for col in table.columns
            ]
            yield from zip(*values, strict=True)

    return rows(), version + n


def _to_sql(col: Column, series: pd.Series, entity: str) -> list:
    """Convert one seed column to SQLite values of the column's type (None for missing), vectorised."""
    t = col.attribute_type
    mask = series.notna().to_numpy()
    try:
        if t == "DateTime":
            values = pd.to_datetime(series, utc=True, errors="raise", format="mixed")
            seconds = values.dt.tz_convert(None).to_numpy().astype("datetime64[s]")
            if col.date_format == "DateOnly":
                text = np.datetime_as_string(seconds.astype("datetime64[D]"), unit="D")
            else:
                text = np.char.add(np.datetime_as_string(seconds, unit="s"), "Z")
            out = text.astype(object)
        elif t in ("Integer", "BigInt", "Picklist", "State", "Status", "Boolean"):
            out = series.where(series.notna(), 0).astype("int64").to_numpy().astype(object)
        elif t in ("Decimal", "Double", "Money"):
            out = series.where(series.notna(), 0).astype("float64").to_numpy().astype(object)
        elif col.is_lookup or t == "Uniqueidentifier":
            out = series.astype("string").str.lower().to_numpy(dtype=object, na_value=None)
        else:
            out = series.astype("string").to_numpy(dtype=object, na_value=None)
    except (ValueError, TypeError) as exc:
        raise SeedError(f"seed column {entity}.{col.logical_name} does not hold {t} values: {exc}") from exc
    out[~mask] = None
    return out.tolist()


def new_id() -> str:
    """Return a new record id (lower-case GUID, as Dataverse serves them)."""
    return str(uuid.uuid4())
