"""``dvsync sync [--table T] [--full]``: pull the mapped tables into the mirror."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta

from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from jobs.cli.common import add_common_options, console, print_json, render_table, settings_from_args
from jobs.service.connect import connect
from jobs.service.mapping import load_mappings
from jobs.service.mirror import Mirror
from jobs.service.stopping import StopNow, stop_on_signals
from jobs.service.sync import SyncResult, describe, sync_tables

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``dvsync sync`` options."""
    add_common_options(parser, json_help="print the per-table report as one JSON object")
    parser.add_argument(
        "--table",
        action="append",
        metavar="T",
        help="sync only this table (mapping name or logical name); repeat for several",
    )
    parser.add_argument(
        "--full", action="store_true", help="re-read the tables in full instead of incrementally"
    )


def run(args: argparse.Namespace) -> int:
    """Sync and print a summary; 0 when every table synced, 1 when one failed."""
    settings = settings_from_args(args)
    mappings = load_mappings(settings.mappings.dir, prefix=settings.writeback.publisher_prefix)
    tables = args.table or settings.sync.tables or None
    show_progress = not args.json and sys.stderr.isatty()
    with (
        Mirror(settings.mirror.path) as mirror,
        mirror.exclusive("dvsync sync"),
        connect(settings) as client,
        stop_on_signals() as stop,
    ):
        mirror.mark_abandoned_runs()
        options = {
            "tables": tables,
            "full": args.full,
            "page_size": settings.sync.page_size,
            "window_overlap": timedelta(seconds=settings.sync.window_overlap_seconds),
        }
        try:
            # Every page commits with its sync state, so a signal may end the sync at once.
            with stop.abortable():
                if show_progress:
                    result = _with_progress(client, mirror, mappings, options)
                else:
                    result = sync_tables(client, mirror, mappings, **options)
        except StopNow:
            print(
                f"dvsync: sync stopped by {stop.signal_name}; the pages read so far are kept and "
                "the next sync resumes where this one stopped",
                file=sys.stderr,
            )
            return stop.exit_code
    if args.json:
        print_json(result.as_dict())
    else:
        _render(result)
    return 0 if result.ok else 1


def _with_progress(client, mirror, mappings, options) -> SyncResult:
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<12}"),
        BarColumn(bar_width=None),
        TextColumn("{task.fields[read]:>9,} records  {task.fields[pages]:>5} pages"),
        TimeElapsedColumn(),
        console=console(stderr=True),
        transient=True,
    )
    tasks: dict[str, int] = {}

    def update(table: str, *, read: int, pages: int, done: bool) -> None:
        if table not in tasks:
            tasks[table] = progress.add_task(table, total=None, read=0, pages=0)
        progress.update(tasks[table], read=read, pages=pages)
        if done:
            progress.update(tasks[table], total=1, completed=1)

    with progress:
        return sync_tables(client, mirror, mappings, progress=update, **options)


def _render(result: SyncResult) -> None:
    out = console()
    rows = describe(result)
    if rows:
        render_table(f"Sync (run {result.run_id})", rows, list(rows[0]), out)
    failed = [t for t in result.tables if not t.ok]
    for report in failed:
        out.print(f"{report.table}: {report.error}", style="red", markup=False)
