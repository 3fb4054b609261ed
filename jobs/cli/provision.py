"""``dvsync provision``: create missing output columns, views, charts (and form sections), then publish."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jobs.cli.common import add_common_options, console, print_json, render_table, settings_from_args
from jobs.service.connect import connect
from jobs.service.mapping import load_mappings
from jobs.service.provision import ProvisionReport, missing_solution, provision, unpublished_path
from jobs.service.stopping import stop_on_signals
from jobs.service.views import CustomizationReport, load_views, provision_customizations

__all__ = ["add_arguments", "run"]

VIEWS_FILE = "views.toml"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``dvsync provision`` options."""
    add_common_options(parser, json_help="print what was done as one JSON object")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="show what would be created or changed (with the XML diff); change nothing",
    )
    forms = parser.add_mutually_exclusive_group()
    forms.add_argument("--forms", action="store_true", help="also add the dvsync section to the main forms")
    forms.add_argument(
        "--remove-forms", action="store_true", help="remove the dvsync section from the main forms"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace views, charts and form sections that were changed in Dynamics",
    )


def run(args: argparse.Namespace) -> int:
    """Provision columns, views, charts (and form sections) and print what was (or would be) done."""
    settings = settings_from_args(args)
    mappings = load_mappings(settings.mappings.dir, prefix=settings.writeback.publisher_prefix)
    views_path = Path(settings.mappings.dir) / VIEWS_FILE
    views = load_views(views_path, mappings) if views_path.exists() else None
    with connect(settings) as client, stop_on_signals() as stop:
        report = provision(
            client,
            mappings,
            solution=settings.writeback.solution,
            dry_run=args.dry_run,
            state=unpublished_path(settings.mirror.path),
            stop=stop,
        )
        customizations = None
        if views is not None and not report.stopped:
            customizations = provision_customizations(
                client,
                views,
                solution=settings.writeback.solution,
                dry_run=args.dry_run,
                force=args.force,
                forms=args.forms,
                remove_forms=args.remove_forms,
            )
    if args.json:
        print_json(
            {**report.as_dict(), "customizations": customizations.as_dict() if customizations else None}
        )
    else:
        _render(report)
        if not report.stopped:
            _render_customizations(customizations, views_path)
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
    if report.dry_run and report.unpublished:
        out.print(f"Unpublished (created earlier) and would be published: {', '.join(report.unpublished)}.")
    elif created:
        out.print(
            f"Created {created} column(s) in solution {report.solution}; "
            f"published {', '.join(report.published)}."
        )
    elif report.published:
        out.print(f"Published {', '.join(report.published)}: an earlier provision had created columns there.")
    else:
        out.print("Nothing to do: every output column exists.")


def _render_customizations(report: CustomizationReport | None, path: Path) -> None:
    out = console()
    if report is None:
        out.print(
            f"No views, charts or form sections: {path} does not exist (dvsync init writes the default one)."
        )
        return
    rows = [{"kind": a.kind, "table": a.table, "name": a.name, "status": a.status} for a in report.actions]
    if rows:
        render_table("Views, charts and forms", rows, list(rows[0]), out)
    for action in report.actions:
        if action.detail and (action.status == "kept" or report.dry_run):
            out.print(f"\n[bold]{action.kind} {action.table} / {action.name}[/bold]: {action.status}")
            out.print(action.detail, markup=False, highlight=False)
    if report.kept:
        out.print(
            f"{len(report.kept)} item(s) were changed in Dynamics and kept as they are; "
            "`dvsync provision --force` replaces them with views.toml's version."
        )
    if report.published:
        out.print(f"Published {', '.join(report.published)}.")
