"""``dvsync run [--jobs scoring,duplicates,rfm,clv] [--no-dry-run] [--json]``: one pipeline run.

It plans and writes nothing unless told to write: ``--no-dry-run``, or ``[writeback] dry_run = false``.
"""

from __future__ import annotations

import argparse
import sys

from jobs.cli.common import add_common_options, print_json, settings_from_args
from jobs.cli.render import progress_for, render_run
from jobs.service.connect import connect
from jobs.service.mapping import load_mappings
from jobs.service.mirror import Mirror
from jobs.service.pipeline import RunLock, lock_path_for, run_pipeline
from jobs.service.stopping import stop_on_signals

__all__ = ["add_arguments", "run", "stop_on_signals"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``dvsync run`` options."""
    add_common_options(parser, json_help="print the run's report (per table read, written, failed) as JSON")
    parser.add_argument(
        "--jobs",
        metavar="LIST",
        help="comma-separated jobs to run: scoring,duplicates,rfm,clv (default: jobs.enabled)",
    )
    parser.add_argument(
        "--dry-run",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="plan the writes into a CSV, changing nothing in Dynamics: the default unless "
        "[writeback] dry_run = false; --no-dry-run writes back",
    )
    parser.add_argument("--plan-csv", metavar="PATH", help="where a dry run writes its plan")
    parser.add_argument("--full", action="store_true", help="re-read every table in full first")
    parser.add_argument(
        "--refresh-metadata",
        action="store_true",
        help="read the table definitions and the org's users and teams from Dataverse, not the mirror's copy",
    )
    parser.add_argument(
        "--engine",
        choices=("pandas", "spark"),
        help="where the jobs run (default: [engine] kind; docs/scale.md)",
    )


def run(args: argparse.Namespace) -> int:
    """Run once; 0 when everything went through, 1 when a table, a job or a write failed.

    Stopped by a signal: 130 (SIGINT) or 143 (SIGTERM), after recording what was done.
    """
    settings = settings_from_args(args)
    if getattr(args, "engine", None):
        settings.engine.kind = args.engine
    mappings = load_mappings(settings.mappings.dir, prefix=settings.writeback.publisher_prefix)
    jobs = [j for j in args.jobs.split(",")] if args.jobs else None
    with (
        RunLock(lock_path_for(settings.mirror.path)),
        Mirror(settings.mirror.path) as mirror,
        connect(settings) as client,
        stop_on_signals() as stop,
        progress_for(not args.json) as bar,
    ):
        result = run_pipeline(
            client,
            mirror,
            mappings,
            settings,
            jobs=jobs,
            dry_run=args.dry_run,
            plan_csv=args.plan_csv,
            full=args.full,
            refresh_metadata=args.refresh_metadata,
            progress=bar,
            stop=stop,
        )
    if args.json:
        print_json(result.as_dict())
    else:
        render_run(result)
    if result.outcome == "interrupted" and stop.is_set():
        print(f"dvsync: {result.error}", file=sys.stderr)
        return stop.exit_code
    return 0 if result.ok else 1
