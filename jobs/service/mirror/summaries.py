"""Paged and counted reads of a run's plan and audit, answered by SQLite without loading them whole.

A first run on a medium org plans ~300,000 values; :meth:`RunHistory.plan` and
:meth:`RunHistory.audit` return them all as DataFrames, which is right for the pipeline and the
rollback but far too slow for a page that shows 200 of them. These functions count, filter and
page in SQL (the plan's primary key and ``audit_run`` index start with the run id).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jobs.service.mirror import Mirror

__all__ = [
    "PlanFilter",
    "audit_counts",
    "audit_problems",
    "plan_choices",
    "plan_page",
    "plan_rows",
]


@dataclass(frozen=True)
class PlanFilter:
    """Which plan items to show: exact table, column and status; part of the record id."""

    table: str | None = None
    column: str | None = None
    status: str | None = None
    record: str | None = None

    def where(self, run_id: int) -> tuple[str, list[Any]]:
        """The SQL condition and its parameters."""
        clauses, params = ["run_id = ?"], [run_id]
        for column, value in (
            ("table_name", self.table),
            ("column_name", self.column),
            ("status", self.status),
        ):
            if value:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.record:
            clauses.append("instr(record_id, ?) > 0")
            params.append(self.record.strip().lower())
        return " AND ".join(clauses), params


def plan_page(
    mirror: Mirror, run_id: int, where: PlanFilter, *, offset: int, limit: int
) -> tuple[list[dict], int]:
    """One page of a run's plan items matching ``where`` (in plan order) and how many match."""
    condition, params = where.where(run_id)
    total = mirror._query(f"SELECT count(*) AS n FROM writeback_plan WHERE {condition}", params)[0]["n"]
    rows = mirror._query(
        f"SELECT * FROM writeback_plan WHERE {condition} ORDER BY table_name, record_id, column_name"
        " LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return rows, int(total)


def plan_rows(mirror: Mirror, run_id: int, where: PlanFilter, *, chunk: int = 20_000) -> Iterator[list[dict]]:
    """Every matching plan item, in chunks (for a CSV download of any size)."""
    offset = 0
    while True:
        rows, _ = plan_page(mirror, run_id, where, offset=offset, limit=chunk)
        if not rows:
            return
        yield rows
        offset += len(rows)


def plan_choices(mirror: Mirror, run_id: int) -> dict[str, list[str]]:
    """The distinct tables, columns and statuses in a run's plan (for the filter lists)."""
    out: dict[str, list[str]] = {}
    for key, column in (("table", "table_name"), ("column", "column_name"), ("status", "status")):
        rows = mirror._query(
            f"SELECT DISTINCT {column} AS v FROM writeback_plan WHERE run_id = ? ORDER BY v", [run_id]
        )
        out[key] = [str(r["v"]) for r in rows if r["v"] is not None]
    return out


def audit_counts(mirror: Mirror, run_id: int) -> Mapping[str, int]:
    """Audit entries of a run per outcome (``written``, ``failed``, ``restored``, ``refused``...)."""
    rows = mirror._query(
        "SELECT outcome, count(*) AS n FROM audit WHERE run_id = ? GROUP BY outcome", [run_id]
    )
    return {str(r["outcome"]): int(r["n"]) for r in rows}


def audit_problems(mirror: Mirror, run_id: int, *, limit: int = 500) -> list[dict]:
    """A run's failed and refused audit entries, oldest first, at most ``limit``."""
    return mirror._query(
        "SELECT table_name, record_id, column_name, outcome, error FROM audit"
        " WHERE run_id = ? AND outcome IN ('failed', 'refused') ORDER BY audit_id LIMIT ?",
        [run_id, limit],
    )
