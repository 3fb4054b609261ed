"""``dvsync merge [--table T] [--dry-run | --no-dry-run] [--csv PATH] [--json]``: merge duplicates.

A dry run unless ``--no-dry-run``: merges cannot be undone in Dynamics, so the default shows each
merge (both records, the master's changes, the child records that move) and writes them to a CSV.
"""

from __future__ import annotations

import argparse

from jobs.cli.common import add_common_options, console, print_json, render_table, settings_from_args
from jobs.service.connect import connect
from jobs.service.mapping import load_mappings
from jobs.service.merge import MERGE_TABLES, MergeReport, run_merges
from jobs.service.mirror import Mirror
from jobs.service.pipeline import RunLock, lock_path_for
from jobs.service.sync import sync_tables

__all__ = ["add_arguments", "run"]

_SOURCES = ("order", "activity")  # tables whose rows move with a merge (shown in the preview)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``dvsync merge`` options."""
    add_common_options(parser, json_help="print the merges (planned or made) as JSON")
    parser.add_argument("--table", choices=MERGE_TABLES, action="append", help="only this table (repeatable)")
    parser.add_argument(
        "--dry-run",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="show the merges and write them to a CSV, changing nothing (the default); "
        "--no-dry-run merges in Dynamics",
    )
    parser.add_argument("--csv", metavar="PATH", help="where the merges are written as CSV")
    parser.add_argument(
        "--no-sync", action="store_true", help="use the mirror as it is, without syncing first"
    )


def run(args: argparse.Namespace) -> int:
    """Sync the duplicate tables, then merge (or preview); 0 unless a group failed."""
    settings = settings_from_args(args)
    mappings = load_mappings(settings.mappings.dir, prefix=settings.writeback.publisher_prefix)
    dry = bool(args.dry_run)
    with (
        RunLock(lock_path_for(settings.mirror.path)),
        Mirror(settings.mirror.path) as mirror,
        connect(settings) as client,
    ):
        run_id = mirror.start_run("merge", jobs=["merge"], dry_run=dry)
        try:
            if not args.no_sync:
                wanted = [*(args.table or MERGE_TABLES), *_SOURCES]
                names = [t.name for t in mappings.enabled_tables() if t.name in wanted or t.entity in wanted]
                sync_tables(
                    client, mirror, mappings, tables=names, page_size=settings.sync.page_size, run_id=run_id
                )
            report = run_merges(
                client,
                mirror,
                mappings,
                settings,
                tables=args.table,
                dry_run=dry,
                run_id=run_id,
                csv_path=args.csv,
            )
        except BaseException as exc:
            mirror.finish_run(run_id, "failed", stats={}, error=str(exc) or type(exc).__name__)
            raise
        mirror.finish_run(run_id, "ok" if report.ok else "failed", stats=report.as_dict())
    if args.json:
        print_json(report.as_dict())
    else:
        _render(report)
    return 0 if report.ok else 1


def _render(report: MergeReport) -> None:
    out = console()
    for table in report.tables:
        if table.note:
            out.print(f"{table.table}: {table.note}")
            continue
        if len(table.preview):
            fields = [c.split(".", 1)[1] for c in table.preview.columns if c.startswith("master.")]
            rows = []
            for item in table.preview.to_dict("records"):
                side = "; ".join(
                    f"{f}: {item[f'master.{f}'] or '—'} | {item[f'subordinate.{f}'] or '—'}"
                    for f in fields
                    if item.get(f"master.{f}") or item.get(f"subordinate.{f}")
                )
                rows.append({**item, "master | duplicate": side})
            title = f"{table.table}: {'merges planned (dry run)' if report.dry_run else 'merges'}"
            render_table(
                title,
                rows,
                ["group", "master_id", "subordinate_id", "reason", "score", "master | duplicate",
                 "master_changes", "children_moving"],
                out,
            )  # fmt: skip
        else:
            out.print(f"{table.table}: nothing to merge")
        stale = (
            table.decisions[table.decisions["action"] == "stale"] if len(table.decisions) else table.decisions
        )
        if len(stale):
            out.print(f"{table.table}: {len(stale)} decision(s) re-queued (the group changed since):")
            for item in stale.itertuples(index=False):
                out.print(f"  {item.record_id}: {item.why}")
        for why, count in table.held_back.groupby("why").size().items() if len(table.held_back) else ():
            out.print(f"{table.table}: {count} merge(s) held back: {why}")
        for group in table.groups:
            if group["outcome"] in ("failed", "unknown", "skipped"):
                out.print(f"{table.table} {group['group']}: {group['outcome']}: {group['error']}")
        if not report.dry_run:
            out.print(f"{table.table}: {table.count('merged')} record(s) merged into their masters")
    if report.csv_path:
        out.print(f"CSV: {report.csv_path}")
    if report.dry_run:
        out.print("Dry run: nothing was changed in Dynamics. Run `dvsync merge --no-dry-run` to merge.")
