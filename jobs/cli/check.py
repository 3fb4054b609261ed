"""``dvsync check``: validate config and mappings against the org; exit 2 when anything must be fixed."""

from __future__ import annotations

import argparse
from pathlib import Path

from core.errors import ConfigError, DvsyncError
from jobs.cli.common import add_common_options, console, print_json, render_table, settings_from_args
from jobs.service.check import CheckReport, check, problem_dict
from jobs.service.connect import connect
from jobs.service.mirror import Mirror, MirrorError

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``dvsync check`` options."""
    add_common_options(parser, json_help="print the report as one JSON object")
    parser.add_argument(
        "--offline", action="store_true", help="check the files only, without contacting Dataverse"
    )


def run(args: argparse.Namespace) -> int:
    """Run the checks and print every problem; 0 when all is well, 2 otherwise."""
    settings = settings_from_args(args)
    client = None
    setup_problem: ConfigError | None = None
    if not args.offline:
        try:
            client = connect(settings)
        except DvsyncError as exc:
            setup_problem = exc if isinstance(exc, ConfigError) else ConfigError(str(exc), key="auth")
    # The first call's failure (refused, unknown host, wrong scheme, no token) is the one problem
    # to report: every later check would only repeat it.
    report = check(settings, client)
    if setup_problem is not None:
        report.problems.insert(0, setup_problem)
    if client is not None:
        client.close()
        _forget_metadata(settings.mirror.path)
    if args.json:
        print_json(report.as_dict())
    else:
        _render(report)
    return 0 if report.ok else 2


def _forget_metadata(path: str | Path) -> None:
    """The check read every definition afresh: drop the mirror's copy so the next run does too."""
    if not Path(path).exists():
        return
    try:
        with Mirror(path) as mirror:
            mirror.clear_metadata_cache()
    except MirrorError as exc:
        console().print(f"[yellow]the mirror's metadata copy was not cleared: {exc}[/]")


def _render(report: CheckReport) -> None:
    out = console()
    if report.environment:
        who = f" as user {report.identity['user_id']}" if report.identity else ""
        out.print(f"Environment: {report.environment}{who}")
    if report.tables:
        rows = [
            {
                "table": t.name,
                "dataverse": t.table,
                "entity set": t.entity_set,
                "fields": t.fields,
                "change tracking": {True: "on", False: "off (modifiedon window)"}.get(t.change_tracking, "?"),
                "ok": "yes" if t.ok else "NO",
            }
            for t in report.tables
        ]
        render_table("Mapped tables", rows, list(rows[0]), out)
    if report.to_provision:
        rows = [
            {"table": o.table, "result": o.result, "column": o.logical_name, "type": o.type}
            for o in report.to_provision
        ]
        render_table("Output columns `dvsync provision` will create", rows, list(rows[0]), out)
    if report.problems:
        count = len(report.problems)
        out.print(f"[bold red]{count} problem{'s' if count != 1 else ''} to fix:[/]")
        for problem in report.problems:
            out.print(f"  - {problem_dict(problem)['text']}", markup=False)
    else:
        out.print("[bold green]All checks passed.[/]")
