"""Mirrored tables and their sync state: layouts, upserts, reads under canonical names, freshness."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from core.errors import ConfigError
from jobs.service.mirror.convert import from_sql, parse_utc, to_sql
from jobs.service.mirror.schema import DTYPES, IDENTIFIER, SQL_TYPES, MirrorError
from jobs.service.mirror.state import bump_version


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


class RecordStore:
    """The mirrored tables and each table's sync state; a part of :class:`jobs.service.mirror.Mirror`."""

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
            if not IDENTIFIER.match(column) or column.startswith("_"):
                raise ConfigError(f"`{column}` cannot be a mirror column name", hint="use lower_snake_case")
            if dtype not in DTYPES:
                raise ValueError(f"unknown storage type {dtype!r} for {column}")
        wanted = layout.data_columns()
        table = self.data_table(layout.name)
        with self.transaction() as db:
            existing = self.layouts().get(layout.name)
            now = self.now()
            if existing is None:
                cols = ", ".join(f'"{c}" {SQL_TYPES[t]}' for c, t in wanted.items())
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
                        db.execute(f'ALTER TABLE "{table}" ADD COLUMN "{column}" {SQL_TYPES[dtype]}')
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
        values = [to_sql(frame[c], columns[c]) for c in present]
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
            bump_version(db, name, values[present.index(layout.id_column)])
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
        values = [to_sql(frame[c], layout.columns[c]) for c in columns]
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
            deleted = db.total_changes - before
            if deleted:
                bump_version(db, name, (k for (k,) in keys))
            return deleted

    def delete_older_generations(self, name: str, generation: int) -> int:
        """Delete the rows a full read of ``generation`` did not see; returns how many."""
        id_column = self.layout(name).id_column
        with self.transaction() as db:
            gone = db.execute(
                f'SELECT "{id_column}" FROM "{self.data_table(name)}" WHERE _sync_gen < ?', (generation,)
            ).fetchall()
            cursor = db.execute(f'DELETE FROM "{self.data_table(name)}" WHERE _sync_gen < ?', (generation,))
            if cursor.rowcount:
                bump_version(db, name, (r[0] for r in gone))
            return cursor.rowcount

    def ids(self, name: str) -> set[str]:
        """Every id in a mirrored table."""
        layout = self.layout(name)
        rows = self._query(f'SELECT "{layout.id_column}" AS id FROM "{self.data_table(name)}"')
        return {r["id"] for r in rows}

    def etags(self, name: str) -> dict[str, str]:
        """Record id (lower case) -> the etag the sync read, for a write's ``If-Match``; records
        without one are left out. Two columns as stored: no frame and no date parsing (reading
        them through :meth:`read_frame` cost 0.3 s per 50,000 records)."""
        layout = self.layout(name)
        rows = self._query(f'SELECT "{layout.id_column}" AS id, _etag FROM "{self.data_table(name)}"')
        return {str(r["id"]).lower(): r["_etag"] for r in rows if isinstance(r["_etag"], str) and r["_etag"]}

    def count(self, name: str) -> int:
        """How many rows a mirrored table holds."""
        self.layout(name)
        return int(self._query(f'SELECT count(*) AS n FROM "{self.data_table(name)}"')[0]["n"])

    def read_frame(
        self,
        name: str,
        columns: Sequence[str] | None = None,
        *,
        include_system: bool = False,
        ids: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Read a mirrored table into a DataFrame with its types restored.

        Text is ``object`` (None when missing), whole numbers nullable ``Int64``, numbers
        ``float64``, flags nullable ``boolean``, date-times ``datetime64[us, UTC]`` (microseconds
        hold Dataverse's whole range, 0001-01-01..9999-12-31). The id column comes first; rows
        are ordered by id so that results do not depend on insertion order.

        Args:
            name: the mirror table (``lead``).
            columns: the canonical columns to read (the id is always included); default all.
            include_system: add ``_modifiedon`` (UTC) and ``_etag``.
            ids: only these records (as stored); default all.
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
        select = f'SELECT {quoted} FROM "{self.data_table(name)}"'
        with self._lock:
            if ids is None:
                rows = self._db.execute(f'{select} ORDER BY "{layout.id_column}"').fetchall()
            else:
                keys = sorted(set(ids))
                rows = []
                for start in range(0, len(keys), 500):  # within SQLite's bound-parameter limit
                    chunk = keys[start : start + 500]
                    where = f' WHERE "{layout.id_column}" IN ({", ".join("?" * len(chunk))})'
                    rows += self._db.execute(f"{select}{where}", chunk).fetchall()
                rows.sort(key=lambda row: row[0])  # by id, as a full read
        data = list(zip(*rows, strict=True)) if rows else [() for _ in wanted]
        return pd.DataFrame({c: from_sql(list(v), types[c]) for c, v in zip(wanted, data, strict=True)})

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
                    "last_success": parse_utc(state.last_success),
                    "last_full_sync": parse_utc(state.last_full_sync),
                    "unfinished": state.phase is not None,
                    "last_error": state.last_error,
                }
            )
        return pd.DataFrame.from_records(
            records,
            columns=["table", "rows", "mode", "last_success", "last_full_sync", "unfinished", "last_error"],
        )
