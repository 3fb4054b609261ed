"""Output for people and machines: logging setup (text or JSON lines), rich progress, summary tables.

Logs go to stderr, reports to stdout. Whatever the format, a redacting filter removes bearer
tokens, secrets and passwords from every record before it is written.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from jobs.cli.common import console, render_table
from jobs.service.pipeline import PipelineResult

__all__ = [
    "JsonLineFormatter",
    "PipelineBar",
    "RedactingFilter",
    "progress_for",
    "render_run",
    "run_mode",
    "setup_logging",
]

# After "Bearer", anything token-like is hidden; a short all-lowercase word is prose ("the bearer
# token was refused") and stays, so error messages keep their meaning.
_SECRET = re.compile(
    r"(?i)(bearer\s+)(?!(?-i:[a-z]{1,15})\b)(?-i:[A-Za-z0-9._~+/=-]+)"
    r"|((?:client_secret|secret|password|passphrase|token|access_token)"
    r"[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,;]+"
)


def run_mode(result: PipelineResult) -> str:
    """Which mode a run was in, said in every report: a dry run plans, a write run writes."""
    if result.dry_run:
        return "dry run: planned only, nothing written to Dynamics (--no-dry-run writes)"
    return "write mode: changed values written to Dynamics"


def redact(text: str) -> str:
    """Replace bearer tokens and ``secret=...``-style values with ``***``."""
    return _SECRET.sub(lambda m: (m.group(1) or m.group(2)) + "***", text)


class RedactingFilter(logging.Filter):
    """Redacts secrets from the formatted message of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, and the exception type."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = record.exc_info[0].__name__
            entry["detail"] = redact(str(record.exc_info[1]))
        return json.dumps(entry, default=str)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the moment (it may be replaced, e.g. under test)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def setup_logging(level: str = "INFO", *, json_lines: bool = False, verbose: bool = False) -> None:
    """Configure the root logger once for the command (stderr; ``-v`` means DEBUG)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_dvsync", False):
            root.removeHandler(handler)
    handler = _StderrHandler()
    handler._dvsync = True  # type: ignore[attr-defined]
    handler.addFilter(RedactingFilter())
    if json_lines:
        handler.setFormatter(JsonLineFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    chosen = "DEBUG" if verbose else level
    root.setLevel(chosen)
    # Library chatter stays at WARNING unless -v asks for everything.
    for noisy in ("urllib3", "msal", "connector.sandbox"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)


class PipelineBar:
    """Rich progress for a run: records per table while syncing, records written per table."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, Any] = {}

    def sync(self, table: str, *, read: int, pages: int, done: bool) -> None:
        key = f"sync {table}"
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task(f"read  {table}", total=None)
        self.progress.update(self.tasks[key], completed=read)
        if done:
            self.progress.update(self.tasks[key], total=read or 1, completed=read or 1)

    def write(self, table: str, *, done: int, total: int) -> None:
        key = f"write {table}"
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task(f"write {table}", total=total)
        self.progress.update(self.tasks[key], completed=done, total=total)


@contextmanager
def progress_for(enabled: bool) -> Iterator[PipelineBar | None]:
    """A progress display on stderr when ``enabled`` and stderr is a terminal, else None."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<20}"),
        BarColumn(bar_width=None),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console(stderr=True),
        transient=True,
    )
    with progress:
        yield PipelineBar(progress)


def render_run(result: PipelineResult, out: Console | None = None) -> None:
    """Print a run's summary: a table per table, the jobs, failures and where a dry-run plan went."""
    out = out or console()
    rows = [
        {
            "table": name,
            "mode": t.get("mode") or "",
            "read": t["read"],
            "planned": t["planned"],
            "written": t["written"],
            "failed": t["failed"],
            "requests (r/w)": f"{t['read_requests']}/{t['write_requests']}",
        }
        for name, t in sorted(result.tables.items())
    ]
    title = f"Run {result.run_id}: {result.outcome}, {run_mode(result)}"
    if rows:
        render_table(title, rows, list(rows[0]), out)
    else:
        out.print(title, markup=False)
    # The name column fits the longest job name ("lead_handling"), so the statuses line up.
    width = max((len(job.job) for job in result.jobs), default=0)
    for job in result.jobs:
        style = {"ok": "green", "partial": "yellow", "skipped": "yellow", "failed": "red"}.get(job.status, "")
        out.print(f"{job.job:<{width}} {job.status:<8} {job.message}", style=style, markup=False)
    speed = next((j.details["speed_to_lead"] for j in result.jobs if "speed_to_lead" in j.details), None)
    if speed and speed.get("by_team"):
        rows = [{"team": name, **figures} for name, figures in speed["by_team"].items()]
        columns = ["team", "leads", "answered", "median_minutes", "p90_minutes", "breaches"]
        render_table(f"Speed to lead, business minutes (target {speed['sla_minutes']})", rows, columns, out)
    if result.confirmed:
        out.print(
            f"{result.confirmed} write(s) of an interrupted run were confirmed in Dynamics", markup=False
        )
    for failure in result.failures[:10]:
        out.print(
            f"not written: {failure['table']} {failure['record_id']}: {failure['message']}",
            style="red",
            markup=False,
        )
    if len(result.failures) > 10:
        out.print(f"... and {len(result.failures) - 10} more; they are retried next run", markup=False)
    for item in result.skipped[:10]:
        out.print(
            f"left alone: {item['table']} {item['record_id']}: {item['message']}",
            style="yellow",
            markup=False,
        )
    if len(result.skipped) > 10:
        out.print(f"... and {len(result.skipped) - 10} more left alone (see the audit)", markup=False)
    if result.not_provisioned:
        out.print(
            f"{len(result.not_provisioned)} output column(s) do not exist yet and were not written: "
            "run `dvsync provision`",
            style="yellow",
            markup=False,
        )
    if result.plan_csv:
        out.print(f"plan: {len(result.plan)} value(s) written to {result.plan_csv}", markup=False)
    http = result.http
    out.print(
        f"{http.get('requests', 0)} HTTP requests, {http.get('retries', 0)} retried, "
        f"{http.get('throttled', 0)} throttled (429); {result.duration_s:.1f} s",
        markup=False,
    )
    if result.error:
        out.print(result.error, style="red" if result.outcome != "ok" else "", markup=False)
