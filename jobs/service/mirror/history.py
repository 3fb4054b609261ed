"""What the service did: runs, per-table counts, job results, the write-back plan and the audit."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd

from jobs.service.mirror.convert import guess_dtype, plain_value, to_sql
from jobs.service.mirror.database import no_other_holder, pid_alive
from jobs.service.mirror.schema import PLAN_ROW_COLUMNS, MirrorError


def _same(new: Any, old: Any) -> Any:
    """Elementwise: True where two arrays of stored values are equal (None equals None only)."""
    new_missing = pd.isna(new)
    old_missing = pd.isna(old)
    equal = np.asarray(np.asarray(new, dtype=object) == np.asarray(old, dtype=object), dtype=bool)
    return (new_missing & old_missing) | (~new_missing & ~old_missing & equal)


def _unique_ids(ids: np.ndarray, named: str) -> pd.Index:
    """``ids`` as an index of plain objects; ``named`` says whose ids they are in the error.

    Raises:
        MirrorError: a record is named twice.
    """
    index = pd.Index(ids, dtype=object)
    if not index.is_unique:
        twice = index[index.duplicated()][0]
        raise MirrorError(f"{named} name record {twice} twice; a result is one value per record")
    return index


def _match(ids: np.ndarray, kept: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """``kept`` as plain objects, and the position in it of each of ``ids`` (-1: not kept).

    Matched on plain objects by hash: ``isin`` on pyarrow strings loops over the values in Python.

    Raises:
        MirrorError: ``kept`` names a record twice.
    """
    kept_ids = kept.to_numpy(dtype=object)
    return kept_ids, _unique_ids(kept_ids, "the earlier results").get_indexer(ids)


class RunHistory:
    """Runs, results, plan and audit; a part of :class:`jobs.service.mirror.Mirror`."""

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
        """Record the end of a run: ``ok``, ``failed`` or ``interrupted``, with its stats (merged
        over what :meth:`annotate_run` recorded)."""
        if stats is not None:
            row = self._query("SELECT stats FROM runs WHERE run_id = ?", (run_id,))
            earlier = json.loads(row[0]["stats"]) if row and row[0]["stats"] else {}
            stats = {**earlier, **stats}
        with self.transaction() as db:
            db.execute(
                "UPDATE runs SET finished_at = ?, outcome = ?, stats = coalesce(?, stats), error = ?"
                " WHERE run_id = ?",
                (
                    self.now(),
                    outcome,
                    json.dumps(stats, default=str) if stats is not None else None,
                    error,
                    run_id,
                ),
            )

    def annotate_run(self, run_id: int, **facts: Any) -> None:
        """Merge ``facts`` into a run's stats now (e.g. what a rollback undoes, known from its start,
        so that a rollback killed before it finished can still be found and resumed)."""
        with self.transaction() as db:
            row = db.execute("SELECT stats FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            stats = json.loads(row[0]) if row and row[0] else {}
            stats.update(facts)
            db.execute("UPDATE runs SET stats = ? WHERE run_id = ?", (json.dumps(stats, default=str), run_id))

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
        """Mark as ``interrupted`` the runs still ``running`` that no process runs any more.

        Call it before starting a run. A live run holds the run lock (``<mirror>.lock``) from
        start to end, and the OS releases it when the process dies: so when no other process
        holds it, every ``running`` run was abandoned, whichever host or pod it ran on (a new
        Kubernetes pod has a new hostname and often the same pid 1). Only when another process
        holds the lock, or the mirror has no file, do pids on this host decide.
        """
        alive = alive or pid_alive
        host = socket.gethostname()
        rows = self._query("SELECT run_id, pid, host FROM runs WHERE outcome = 'running'")
        if self.path is not None and no_other_holder(self.path.with_name(self.path.name + ".lock")):
            dead = [r["run_id"] for r in rows]
        else:
            dead = [
                r["run_id"] for r in rows if r["host"] == host and not (r["pid"] and alive(int(r["pid"])))
            ]
        for run_id in dead:
            self.finish_run(run_id, "interrupted", error="the process ended before the run finished")
        return dead

    # ---------------------------------------------------------------- results

    def save_results(
        self,
        run_id: int,
        table: str,
        results: pd.DataFrame,
        *,
        id_column: str | None = None,
        previous: pd.DataFrame | None = None,
        partial: bool = False,
    ) -> int:
        """Keep job results: the last value per record and result, rewritten only where it changed.

        Each result column of ``results`` covers every record the job computed it for, so a record
        that has a kept value of that result but is no longer in ``results`` loses it (a lead that
        was closed keeps no score). Returns how many values were written or removed.

        Args:
            run_id: the run that computed them (kept beside each value that changed).
            table: the mirror table the records belong to (``lead``, ``account``).
            results: the results; the record id is ``id_column`` or else the index.
            id_column: the column holding the record id.
            previous: the same job's results as saved by the run before, when the caller has them
                at hand (the pipeline keeps them in the job's state): compared in memory instead of
                reading the kept values back.
            partial: ``results`` hold only some of the records (the Spark engine sends back the
                changed ones): the kept values of the others stay.

        Raises:
            MirrorError: ``results`` or ``previous`` name a record twice (ids compared in lower case).
        """
        frame = results.set_index(id_column) if id_column else results
        # Plain str ids: iterating a pyarrow-backed index costs ~1 us a value, and only the
        # changed values are turned into rows below (a 1%-changed run keeps ~99% as they are).
        ids = frame.index.astype(str).str.lower().to_numpy(dtype=object)
        _unique_ids(ids, f"the {table} results")
        matched_previous = None
        if previous is not None:
            previous = previous.set_axis(previous.index.astype(str).str.lower())
            matched_previous = _match(ids, previous.index)  # the same records for every result
        now = self.now()
        upserts: list[tuple] = []
        removals: list[tuple] = []
        for result in frame.columns:
            name = str(result)
            new = to_sql(frame[result], guess_dtype(frame[result]))
            if previous is not None and matched_previous is not None and result in previous.columns:
                column = previous[result]
                old, (kept_ids, at) = to_sql(column, guess_dtype(column)), matched_previous
            else:
                kept = self._kept(table, name)
                old, (kept_ids, at) = kept.to_numpy(dtype=object), _match(ids, kept.index)
            # A value is unchanged when the record had one and it is the same (a kept None
            # equals a new None; a record with no kept value at all gets its value written).
            had = at >= 0
            unchanged = np.zeros(len(ids), dtype=bool)
            unchanged[had] = _same(new[had], old[at[had]])
            changed = ~unchanged
            upserts.extend(
                zip(
                    repeat(table),
                    repeat(name),
                    ids[changed].tolist(),
                    new[changed].tolist(),
                    repeat(run_id),
                    repeat(now),
                )
            )
            if not partial:
                gone = np.ones(len(kept_ids), dtype=bool)
                gone[at[had]] = False
                removals.extend((table, name, rid) for rid in kept_ids[gone].tolist())
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO result_values (table_name, result, record_id, value, run_id, computed_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (table_name, result, record_id) DO UPDATE SET"
                " value = excluded.value, run_id = excluded.run_id, computed_at = excluded.computed_at",
                upserts,
            )
            db.executemany(
                "DELETE FROM result_values WHERE table_name = ? AND result = ? AND record_id = ?", removals
            )
        return len(upserts) + len(removals)

    def _kept(self, table: str, result: str) -> pd.Series:
        rows = self._query(
            "SELECT record_id, value FROM result_values WHERE table_name = ? AND result = ?", (table, result)
        )
        return pd.Series(
            [r["value"] for r in rows], index=pd.Index([r["record_id"] for r in rows]), dtype=object
        )

    def results(self, table: str, *, run_id: int | None = None) -> pd.DataFrame:
        """Results of one table, one row per record (index ``record_id``), one column per result.

        Without ``run_id``: the last value of each result per record. With ``run_id``: only the
        values that run computed anew (the ones that changed; every value on a first run).
        """
        bound = " AND run_id = ?" if run_id is not None else ""
        params: tuple = (table, run_id) if run_id is not None else (table,)
        rows = self._query(
            f"SELECT record_id, result, value FROM result_values WHERE table_name = ?{bound}", params
        )
        if not rows:
            return pd.DataFrame(index=pd.Index([], name="record_id"))
        long = pd.DataFrame.from_records(rows)
        wide = long.pivot(index="record_id", columns="result", values="value")
        wide.columns.name = None
        return wide.sort_index()

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
                [plain_value(v) for v in result],
                [plain_value(v) for v in old],
                [plain_value(v) for v in plan["new_value"]],
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
        return pd.DataFrame.from_records(rows, columns=PLAN_ROW_COLUMNS)

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
            return [plain_value(v) for v in frame[name]] if name in frame else [None] * len(frame)

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
