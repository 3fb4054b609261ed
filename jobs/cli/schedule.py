"""``dvsync schedule``: run the pipeline on the configured cron schedules, in the foreground."""

from __future__ import annotations

import argparse
import logging
import threading

from jobs.cli.common import add_common_options, settings_from_args
from jobs.service.connect import connect
from jobs.service.mapping import load_mappings
from jobs.service.mirror import Mirror
from jobs.service.pipeline import RunLock, lock_path_for, run_pipeline
from jobs.service.schedule import Scheduler, next_runs
from jobs.service.stopping import stop_on_signals

__all__ = ["add_arguments", "run"]

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``dvsync schedule`` options."""
    add_common_options(parser, json_help="(logs only; see logging.json for JSON-lines logs)")
    parser.add_argument(
        "--dry-run",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="every scheduled run only plans: the default unless [writeback] dry_run = false; "
        "--no-dry-run makes the runs write back",
    )
    parser.add_argument(
        "--console", action="store_true", help="also serve the admin console ([console] host and port)"
    )


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT; 0 after a clean stop."""
    settings = settings_from_args(args)
    mappings = load_mappings(settings.mappings.dir, prefix=settings.writeback.publisher_prefix)
    lock = RunLock(lock_path_for(settings.mirror.path))
    from datetime import UTC, datetime

    dry_run = settings.writeback.dry_run if args.dry_run is None else args.dry_run
    if dry_run:
        log.warning(
            "dry-run mode: scheduled runs plan and write nothing to Dynamics "
            "(set [writeback] dry_run = false, or pass --no-dry-run, to write back)"
        )
    else:
        log.info("write mode: scheduled runs write changed values back to Dynamics")
    for due in next_runs(settings.schedule, datetime.now(UTC)):
        log.info(
            "schedule %s (%s): next at %s, jobs %s", due.name, due.cron, due.at.isoformat(), list(due.jobs)
        )
    with (
        Mirror(settings.mirror.path) as mirror,
        connect(settings) as client,
        stop_on_signals() as stop,
    ):
        console = None
        if getattr(args, "console", False):
            from jobs.cli.console import announce
            from jobs.console.app import start_console

            console = start_console(settings, mappings=mappings, stop=stop)
            announce(console)

        def one_run(jobs: list[str], trigger: str, stop_event: threading.Event) -> None:
            while not lock.acquire():
                log.info("another run holds the lock (pid %s); waiting", lock.holder())
                if stop_event.wait(5.0):
                    return
            try:
                result = run_pipeline(
                    client,
                    mirror,
                    mappings,
                    settings,
                    jobs=jobs,
                    trigger=trigger,
                    stop=stop_event,
                    dry_run=dry_run,
                )
                mode = "dry run" if result.dry_run else "write mode"
                log.info("run %d (%s, %s): %s", result.run_id, trigger, mode, result.outcome)
            finally:
                lock.release()

        try:
            Scheduler(settings.schedule, one_run, stop=stop).loop()
        finally:
            if console is not None:
                console.stop()
    return 0
