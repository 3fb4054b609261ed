"""What ``dvsync status`` reports: the last runs, the next scheduled ones, and how fresh the mirror is."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd

from jobs.service.mirror import Mirror
from jobs.service.pipeline import OPEN_STATUSES, RunLock
from jobs.service.schedule import next_runs
from jobs.service.settings import ScheduleSettings

__all__ = ["collect_status", "status_without_mirror"]


def _iso(value: Any) -> str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return pd.Timestamp(value).isoformat()


def collect_status(
    mirror: Mirror,
    schedule: ScheduleSettings,
    *,
    lock: RunLock | None = None,
    now: datetime | None = None,
    limit: int = 10,
) -> dict[str, Any]:
    """Gather the status report.

    Args:
        mirror: the open mirror.
        schedule: the ``[schedule]`` settings.
        lock: the run lock, to say whether a run is going on right now.
        now: the current aware time.
        limit: how many runs to list.

    Returns:
        ``runs`` (newest first: id, kind, trigger, start, end, outcome, read, written, failed,
        retries, throttled, error), ``next_runs`` (set, time, jobs), ``tables`` (rows, mode, last
        success, age in minutes, last error), ``pending_writes`` and ``running``.
    """
    now = now or datetime.now(UTC)
    running = None
    if lock is not None and not lock.acquire():
        running = {"pid": lock.holder()}
    elif lock is not None:
        try:
            # Nobody runs: a run still recorded as running was killed (maybe in another pod).
            mirror.mark_abandoned_runs()
        finally:
            lock.release()
    runs = mirror.runs(limit)
    listed = []
    for row in runs.itertuples():
        stats = row.stats or {}
        http = stats.get("http") or {}
        listed.append(
            {
                "run_id": int(row.run_id),
                "kind": row.kind,
                "trigger": stats.get("trigger"),
                "jobs": row.jobs or [],
                "dry_run": bool(row.dry_run),
                "mode": "dry-run" if row.dry_run else "write",
                "started_at": _iso(row.started_at),
                "finished_at": _iso(row.finished_at),
                "outcome": row.outcome,
                "read": int(row.read),
                "written": int(row.written),
                "failed": int(row.failed),
                "retries": int(http.get("retries", row.retries) or 0),
                "throttled": int(http.get("throttled", row.throttled) or 0),
                "error": row.error,
            }
        )
    tables = []
    for row in mirror.freshness().itertuples():
        success = row.last_success
        age = None if success is None or pd.isna(success) else round((now - success).total_seconds() / 60, 1)
        tables.append(
            {
                "table": row.table,
                "rows": int(row.rows),
                "mode": row.mode,
                "last_success": _iso(success),
                "age_minutes": age,
                "unfinished": bool(row.unfinished),
                "last_error": row.last_error,
            }
        )
    pending = mirror.plan(status=list(OPEN_STATUSES))
    return {
        "now": now.isoformat(),
        "running": running,
        "runs": listed,
        "next_runs": [
            {"set": r.name, "at": r.at.isoformat(), "jobs": list(r.jobs), "cron": r.cron}
            for r in next_runs(schedule, now)
        ],
        "tables": tables,
        "pending_writes": len(pending),
    }


def status_without_mirror(schedule: ScheduleSettings, *, now: datetime | None = None) -> dict[str, Any]:
    """The status before the first sync: no runs or tables, only the next scheduled runs."""
    now = now or datetime.now(UTC)
    return {
        "now": now.isoformat(),
        "running": None,
        "runs": [],
        "next_runs": [
            {"set": r.name, "at": r.at.isoformat(), "jobs": list(r.jobs), "cron": r.cron}
            for r in next_runs(schedule, now)
        ],
        "tables": [],
        "pending_writes": 0,
    }
