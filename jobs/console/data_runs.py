"""The data behind the Overview and Runs pages (also served as JSON under ``/api/``).

Everything is read from the mirror through its public methods and the service's own report
functions (:func:`jobs.service.status.collect_status`, :func:`preview_rollback`), so the console
shows exactly what ``dvsync status`` and ``dvsync rollback`` would.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import pandas as pd

from jobs.console.actions import read_action_log
from jobs.console.context import ConsoleContext
from jobs.service.mirror.schema import PLAN_ROW_COLUMNS
from jobs.service.mirror.summaries import (
    PlanFilter,
    audit_counts,
    audit_problems,
    plan_choices,
    plan_page,
    plan_rows,
)
from jobs.service.pipeline import OPEN_STATUSES, RunLock, lock_path_for
from jobs.service.plan import PLAN_COLUMNS
from jobs.service.rollback_preview import preview_rollback
from jobs.service.status import collect_status

__all__ = [
    "PLAN_PAGE_SIZE",
    "overview",
    "plan_csv",
    "plan_items",
    "rollback_preview",
    "run_detail",
    "run_preview",
    "runs_list",
    "written_count",
]

PLAN_PAGE_SIZE = 200
"""Plan rows shown per page; the CSV download always has all of them."""


def plain(value: Any) -> Any:
    """A JSON-friendly scalar (numpy numbers, NaN and timestamps made plain)."""
    if value is None:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def overview(ctx: ConsoleContext) -> dict[str, Any]:
    """Last runs, next runs, freshness per table, what needs attention, throttling."""
    status = collect_status(
        ctx.mirror, ctx.settings.schedule, lock=RunLock(lock_path_for(ctx.settings.mirror.path)), limit=15
    )
    attention: list[dict[str, Any]] = []
    for run in status["runs"][:15]:
        if run["outcome"] in ("failed", "interrupted"):
            attention.append(
                {
                    "what": f"run {run['run_id']} {run['outcome']}",
                    "detail": run["error"],
                    "run_id": run["run_id"],
                }
            )
    for table in status["tables"]:
        if table["last_error"]:
            attention.append(
                {"what": f"table {table['table']}: last sync failed", "detail": table["last_error"]}
            )
        elif table["unfinished"]:
            attention.append(
                {"what": f"table {table['table']}: a read is unfinished", "detail": "resumes next run"}
            )
    failed_writes = ctx.mirror.plan(status="failed")
    if len(failed_writes):
        attention.append(
            {
                "what": f"{len(failed_writes)} value(s) could not be written",
                "detail": "retried next run; see the runs' errors",
            }
        )
    latest = ctx.mirror.runs(1, kind="run")
    if len(latest):
        stats = latest.iloc[0]["stats"] or {}
        missing = stats.get("not_provisioned") or []
        if missing:
            attention.append(
                {
                    "what": f"{len(missing)} output column(s) do not exist in Dynamics",
                    "detail": "run `dvsync provision`: " + ", ".join(missing[:5]),
                }
            )
    throttling = [
        {k: r[k] for k in ("run_id", "read", "written", "retries", "throttled")}
        for r in reversed(status["runs"])
        if r["kind"] in ("run", "sync", "rollback")
    ]
    return {
        **status,
        "attention": attention,
        "throttling": throttling,
        "open_writes": status["pending_writes"],
        "actions": read_action_log(ctx.state_dir, limit=10),
    }


def runs_list(ctx: ConsoleContext, *, limit: int = 100) -> dict[str, Any]:
    """Run history, newest first."""
    status = collect_status(ctx.mirror, ctx.settings.schedule, limit=limit)
    return {"runs": status["runs"], "next_runs": status["next_runs"]}


def run_detail(ctx: ConsoleContext, run_id: int) -> dict[str, Any]:
    """One run: per-table counts, the plan's size, the errors with record and reason.

    Raises:
        MirrorError: no such run.
    """
    run = ctx.mirror.run(run_id)
    stats = run.get("stats") or {}
    tables = [{k: plain(v) for k, v in dict(row).items() if k != "run_id"} for row in run["tables"]]
    errors: list[dict[str, Any]] = []
    for failure in stats.get("failures") or []:
        errors.append(
            {
                "table": failure.get("table"),
                "record_id": failure.get("record_id"),
                "column": ", ".join(failure.get("columns") or []) or failure.get("column"),
                "reason": failure.get("message"),
            }
        )
    seen = {(e["table"], e["record_id"]) for e in errors}
    for row in audit_problems(ctx.mirror, run_id):
        if (row["table_name"], row["record_id"]) in seen and row["outcome"] == "failed":
            continue  # already listed with the message of the write that failed
        errors.append(
            {
                "table": row["table_name"],
                "record_id": row["record_id"],
                "column": row["column_name"],
                "reason": f"{row['outcome']}: {row['error']}" if row["error"] else row["outcome"],
            }
        )
    outcomes = audit_counts(ctx.mirror, run_id)
    if run.get("dry_run"):
        plan_count = len(_csv_plan(ctx, run_id, run))
    else:
        plan_count = plan_page(ctx.mirror, run_id, PlanFilter(), offset=0, limit=0)[1]
    return {
        "run_id": run_id,
        "kind": run["kind"],
        "trigger": stats.get("trigger"),
        "jobs": run.get("jobs") or [],
        "dry_run": bool(run.get("dry_run")),
        "started_at": run.get("started_at"),
        "finished_at": run.get("finished_at"),
        "outcome": run.get("outcome"),
        "error": run.get("error"),
        "duration_s": stats.get("duration_s"),
        "tables": tables,
        "job_reports": stats.get("jobs") or {},
        "http": {k: v for k, v in (stats.get("http") or {}).items() if k != "paths"},
        "audit": dict(outcomes),
        "planned": plan_count,
        "plan_source": "csv" if run.get("dry_run") else "mirror",
        "rolled_back_run": stats.get("rolled_back_run"),
        "errors": errors,
        "can_roll_back": bool(outcomes.get("written") or outcomes.get("restored")),
    }


def _csv_plan(ctx: ConsoleContext, run_id: int, run: dict[str, Any] | None = None) -> pd.DataFrame:
    """A dry run's plan, read from the CSV it wrote (cached until the next run)."""
    run = run or ctx.mirror.run(run_id)

    def build() -> pd.DataFrame:
        path = (run.get("stats") or {}).get("plan_csv")
        if path and Path(path).is_file():
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
            frame.insert(0, "run_id", str(run_id))
            frame["status"] = "planned (dry run)"
            return frame
        return pd.DataFrame(columns=["run_id", *PLAN_COLUMNS, "status"])

    return ctx.cached(f"plan:{run_id}", build)


def _filter_frame(frame: pd.DataFrame, where: PlanFilter) -> pd.DataFrame:
    if where.table:
        frame = frame[frame["table_name"] == where.table]
    if where.column:
        frame = frame[frame["column_name"] == where.column]
    if where.status:
        frame = frame[frame["status"] == where.status]
    if where.record:
        frame = frame[frame["record_id"].astype(str).str.contains(where.record.strip().lower(), regex=False)]
    return frame


def plan_items(ctx: ConsoleContext, run_id: int, where: PlanFilter, *, page: int = 1) -> dict[str, Any]:
    """One page of a run's plan (old → new values), filtered: from SQL, or a dry run's CSV."""
    run = ctx.mirror.run(run_id)
    if run.get("dry_run"):
        full = _csv_plan(ctx, run_id, run)
        frame = _filter_frame(full, where)
        matching, total = len(frame), len(full)
        choices = ctx.cached(
            f"plan-choices:{run_id}",
            lambda: {
                "table": sorted(full["table_name"].dropna().unique().tolist()),
                "column": sorted(full["column_name"].dropna().unique().tolist()),
                "status": sorted(full["status"].dropna().unique().tolist()),
            },
        )
    else:
        _, total = plan_page(ctx.mirror, run_id, PlanFilter(), offset=0, limit=0)
        _, matching = plan_page(ctx.mirror, run_id, where, offset=0, limit=0)
        choices = ctx.cached(f"plan-choices:{run_id}", lambda: plan_choices(ctx.mirror, run_id))
    pages = max(1, math.ceil(matching / PLAN_PAGE_SIZE))
    page = min(max(page, 1), pages)
    offset = (page - 1) * PLAN_PAGE_SIZE
    if run.get("dry_run"):
        rows = frame.iloc[offset : offset + PLAN_PAGE_SIZE].to_dict(orient="records")
    else:
        rows, _ = plan_page(ctx.mirror, run_id, where, offset=offset, limit=PLAN_PAGE_SIZE)
    columns = [
        "table_name",
        "record_id",
        "column_name",
        "result",
        "old_value",
        "new_value",
        "status",
        "error",
    ]
    return {
        "run_id": run_id,
        "dry_run": bool(run.get("dry_run")),
        "total": total,
        "matching": matching,
        "page": page,
        "pages": pages,
        "filters": {
            "table": where.table,
            "column": where.column,
            "record": where.record,
            "status": where.status,
        },
        "choices": choices,
        "items": [{c: plain(row.get(c)) for c in columns if c in row} for row in rows],
    }


def plan_csv(ctx: ConsoleContext, run_id: int, where: PlanFilter) -> str:
    """The (filtered) plan as CSV text, every row."""
    run = ctx.mirror.run(run_id)
    out = io.StringIO()
    if run.get("dry_run"):
        _filter_frame(_csv_plan(ctx, run_id, run), where).to_csv(out, index=False)
        return out.getvalue()
    writer = csv.DictWriter(out, fieldnames=PLAN_ROW_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for rows in plan_rows(ctx.mirror, run_id, where):
        writer.writerows(rows)
    return out.getvalue()


def written_count(ctx: ConsoleContext, run_id: int) -> int:
    """How many values a run wrote (or restored), from the audit."""
    counts = audit_counts(ctx.mirror, run_id)
    return int(counts.get("written", 0) + counts.get("restored", 0))


def rollback_preview(ctx: ConsoleContext, run_id: int) -> dict[str, Any]:
    """What ``dvsync rollback RUN_ID`` would restore and refuse, per the mirror now."""
    preview = preview_rollback(ctx.mirror, ctx.mappings, run_id)
    for key in ("restore", "refuse"):
        preview[key] = [{k: plain(v) for k, v in row.items()} for row in preview[key]]
    return preview


def run_preview(ctx: ConsoleContext) -> dict[str, Any]:
    """What "run now" would write: the latest dry run's plan (if any) and the writes still open."""
    dry = None
    for row in ctx.mirror.runs(50, kind="run").itertuples():
        if row.dry_run and row.outcome in ("ok", "failed"):
            dry = int(row.run_id)
            break
    summary: list[dict[str, Any]] = []
    age = None
    if dry is not None:
        frame = _csv_plan(ctx, dry)
        if len(frame):
            counts = frame.groupby(["table_name", "column_name"]).size().reset_index(name="values")
            summary = [
                {"table": r.table_name, "column": r.column_name, "values": int(r.values)}
                for r in counts.itertuples()
            ]
        run = ctx.mirror.run(dry)
        age = run.get("finished_at")
    open_items = ctx.mirror.plan(status=list(OPEN_STATUSES))
    return {
        "jobs": list(ctx.settings.jobs.enabled),
        "latest_dry_run": dry,
        "latest_dry_run_finished_at": age,
        "planned_by_column": summary,
        "planned_values": sum(s["values"] for s in summary),
        "open_writes": len(open_items),
    }
