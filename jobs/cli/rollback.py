"""``dvsync rollback RUN_ID [--force]``: restore the values a run overwrote."""

from __future__ import annotations

import argparse

from jobs.cli.common import add_common_options, console, print_json, render_table, settings_from_args
from jobs.service.connect import connect
from jobs.service.mapping import load_mappings
from jobs.service.mirror import Mirror
from jobs.service.pipeline import RunLock, lock_path_for
from jobs.service.rollback import rollback

__all__ = ["add_arguments", "run"]

SHOWN = 20
"""Refusals and failures printed; the rest are counted (and the refusals are all in a CSV)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``dvsync rollback`` options."""
    add_common_options(parser, json_help="print what was restored and refused as JSON")
    parser.add_argument("run_id", type=int, metavar="RUN_ID", help="the run to undo (see `dvsync status`)")
    parser.add_argument(
        "--force", action="store_true", help="also restore values that were changed in Dynamics since the run"
    )


def run(args: argparse.Namespace) -> int:
    """Roll back; 0 when everything was restored, 1 when values were refused or failed."""
    settings = settings_from_args(args)
    mappings = load_mappings(settings.mappings.dir, prefix=settings.writeback.publisher_prefix)
    with (
        RunLock(lock_path_for(settings.mirror.path)),
        Mirror(settings.mirror.path) as mirror,
        connect(settings) as client,
    ):
        result = rollback(client, mirror, mappings, settings, args.run_id, force=args.force)
    if args.json:
        print_json(result.as_dict())
        return 0 if result.ok else 1
    out = console()
    out.print(
        f"Rollback of run {result.of_run} (recorded as run {result.run_id}): {result.restored} restored, "
        f"{result.refused} refused, {result.failed} failed",
        markup=False,
    )
    if result.already or result.confirmed:
        out.print(
            f"{result.already} value(s) an earlier rollback of run {result.of_run} restored were left "
            f"alone; {result.confirmed} found restored by an interrupted one",
            markup=False,
        )
    if result.refusals:
        rows = result.refusals[:SHOWN]
        render_table(
            "Refused: changed in Dynamics or rewritten by a later run since (--force restores anyway)",
            rows,
            list(rows[0]),
            out,
        )
        more = len(result.refusals) - len(rows)
        out.print(
            (f"... and {more} more; " if more else "") + f"every refusal is listed in {result.refusals_csv}",
            markup=False,
        )
    for failure in result.failures[:SHOWN]:
        out.print(
            f"failed: {failure['table']} {failure['record_id']} {failure['column']}: {failure['message']}",
            style="red",
            markup=False,
        )
    if len(result.failures) > SHOWN:
        out.print(f"... and {len(result.failures) - SHOWN} more failed; run the rollback again to retry")
    return 0 if result.ok else 1
