"""``dvsync init [DIR]``: write a working folder (config.toml, mappings/, .gitignore)."""

from __future__ import annotations

import argparse

from jobs.cli.common import console, print_json
from jobs.service.workdir import init_workdir

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``dvsync init`` options."""
    parser.add_argument("directory", nargs="?", default=".", help="the folder to set up (default: here)")
    parser.add_argument("--force", action="store_true", help="overwrite config.toml and mapping files")
    parser.add_argument("--json", action="store_true", help="print what was written as one JSON object")


def run(args: argparse.Namespace) -> int:
    """Write the folder and say what to do next."""
    report = init_workdir(args.directory, force=args.force)
    if args.json:
        print_json(report.as_dict())
        return 0
    out = console()
    out.print(f"Wrote {len(report.written)} file(s) into {report.directory}:", markup=False)
    for line in (
        "  config.toml   every key commented, with its default and where to find its value",
        "  mappings/     which of your org's columns feed dvsync, and where results go",
        "  .gitignore    keeps the mirror, plans and secrets out of version control",
    ):
        out.print(line, markup=False)
    out.print(
        "Next: set [dataverse] url and [auth] in config.toml (docs/setup-real-org.md), then\n"
        "  dvsync check && dvsync provision && dvsync run      # plans only; --no-dry-run writes",
        markup=False,
    )
    return 0
