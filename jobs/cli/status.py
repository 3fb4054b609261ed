"""``dvsync status [--json]``: last runs, next scheduled runs, mirror freshness."""

from __future__ import annotations

import argparse

from jobs.cli.common import add_common_options, console, print_json, render_table, settings_from_args
from jobs.service.mirror import Mirror
from jobs.service.pipeline import RunLock, lock_path_for
from jobs.service.status import collect_status, status_without_mirror

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``dvsync status`` options."""
    add_common_options(parser, json_help="print the status as one JSON object")
    parser.add_argument(
        "--runs", type=int, default=10, metavar="N", help="how many runs to list (default 10)"
    )


def run(args: argparse.Namespace) -> int:
    """Print the status; 0, or 1 when the last run failed."""
    settings = settings_from_args(args)
    if not settings.mirror.path.exists():
        # A read-only command: opening the mirror would create it (and its folder) as a side effect.
        report = status_without_mirror(settings.schedule)
        if args.json:
            print_json({**report, "mirror": None})
        else:
            out = console()
            out.print(
                f"no mirror yet at {settings.mirror.path}: `dvsync run` (or `dvsync sync`) creates it",
                markup=False,
            )
            if report["next_runs"]:
                render_table("Next scheduled runs", report["next_runs"], ["set", "at", "cron", "jobs"], out)
        return 0
    with Mirror(settings.mirror.path) as mirror:
        report = collect_status(
            mirror, settings.schedule, lock=RunLock(lock_path_for(settings.mirror.path)), limit=args.runs
        )
    if args.json:
        print_json(report)
    else:
        out = console()
        if report["running"]:
            out.print(f"a run is in progress (pid {report['running']['pid']})", markup=False)
        columns = [
            "run_id",
            "kind",
            "trigger",
            "mode",
            "started_at",
            "finished_at",
            "outcome",
            "read",
            "written",
            "failed",
            "retries",
            "throttled",
        ]
        if report["runs"]:
            render_table("Last runs", report["runs"], columns, out)
        else:
            out.print("no runs yet: start one with `dvsync run`", markup=False)
        for row in report["runs"][:3]:
            if row["error"]:
                out.print(f"run {row['run_id']}: {row['error']}", markup=False)
        if report["next_runs"]:
            render_table("Next scheduled runs", report["next_runs"], ["set", "at", "cron", "jobs"], out)
        if report["tables"]:
            render_table(
                "Mirror freshness",
                report["tables"],
                ["table", "rows", "mode", "last_success", "age_minutes", "last_error"],
                out,
            )
        out.print(f"{report['pending_writes']} value(s) waiting to be written", markup=False)
    last = report["runs"][0]["outcome"] if report["runs"] else "ok"
    return 1 if last == "failed" else 0
