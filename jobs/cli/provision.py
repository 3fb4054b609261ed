"""``dvsync provision [--dry-run]``: create the missing output columns in the solution, then publish."""

from __future__ import annotations

import argparse
import sys

from jobs.cli.common import add_common_options, console, print_json, render_table, settings_from_args
from jobs.service.connect import connect
from jobs.service.mapping import load_mappings
from jobs.service.provision import ProvisionReport, missing_solution, provision
from jobs.service.stopping import stop_on_signals

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``dvsync provision`` options."""
    add_common_options(parser, json_help="print what was done as one JSON object")
    parser.add_argument("--dry-run", action="store_true", help="show what would be created; change nothing")


def run(args: argparse.Namespace) -> int:
    """Provision the output columns and print what was (or would be) done."""
    settings = settings_from_args(args)
    mappings = load_mappings(settings.mappings.dir, prefix=settings.writeback.publisher_prefix)
    with connect(settings) as client, stop_on_signals() as stop:
        report = provision(
            client, mappings, solution=settings.writeback.solution, dry_run=args.dry_run, stop=stop
        )
    if args.json:
        print_json(report.as_dict())
    else:
        _render(report)
    if report.dry_run and report.created and not report.solution:
        raise missing_solution(len(report.created))  # the preview is shown; the real run would stop here
    if report.stopped:
        print(
            f"dvsync: provision stopped by {stop.signal_name} after {len(report.created)} column(s); "
            "those are published, and `dvsync provision` creates the rest",
            file=sys.stderr,
        )
        return stop.exit_code
    return 0


def _render(report: ProvisionReport) -> None:
    out = console()
    rows = [
        {"table": a.table, "column": a.column, "type": a.kind, "label": a.display_name, "status": a.status}
        for a in report.actions
    ]
    if rows:
        render_table("Output columns", rows, list(rows[0]), out)
    created = len(report.created)
    if report.dry_run and report.solution:
        out.print(f"Dry run: {created} column(s) would be created in solution {report.solution}.")
    elif report.dry_run:
        out.print(f"Dry run: {created} column(s) would be created, but no solution is configured.")
    elif created:
        out.print(
            f"Created {created} column(s) in solution {report.solution}; "
            f"published {', '.join(report.published)}."
        )
    else:
        out.print("Nothing to do: every output column exists.")
