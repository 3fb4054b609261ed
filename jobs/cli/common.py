"""Helpers shared by the command modules: common options, settings, JSON and rich output.

Kept here so each ``jobs/cli_<command>.py`` stays a thin layer: parse, load, call, render.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from jobs.service.settings import Settings
from jobs.service.settings_load import load_settings

__all__ = ["add_common_options", "console", "print_json", "render_table", "settings_from_args"]


def add_common_options(parser: argparse.ArgumentParser, *, json_help: str = "print one JSON object") -> None:
    """Add ``--config`` and ``--json`` (``--config`` does not override a global one given earlier)."""
    parser.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        metavar="PATH",
        help="config.toml to use (default: $DVSYNC_CONFIG, else ./config.toml when present)",
    )
    parser.add_argument("--json", action="store_true", help=json_help)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Load the settings named by ``--config`` (or found the usual way)."""
    return load_settings(getattr(args, "config", None))


# Width for output that goes to a pipe, a file or a log collector: rich would assume 80 columns
# and truncate every table cell ("202…"), which is what an admin reads in a journal or a CI log.
PIPED_WIDTH = 160


def console(*, stderr: bool = False, quiet: bool = False) -> Console:
    """A rich console; plain text and wide tables when the stream is not a terminal.

    ``COLUMNS`` in the environment still wins, as rich documents.
    """
    stream = sys.stderr if stderr else sys.stdout
    piped = not (hasattr(stream, "isatty") and stream.isatty())
    width = PIPED_WIDTH if piped and "COLUMNS" not in os.environ else None
    return Console(stderr=stderr, highlight=False, soft_wrap=True, quiet=quiet, width=width)


def json_safe(value: Any) -> Any:
    """``value`` with NaN, infinities and pandas' missing markers as None: valid JSON for any parser.

    Python's ``json`` writes ``NaN``, which ``jq``, JavaScript and most parsers reject.
    """
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [json_safe(v) for v in value]
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item) and not isinstance(value, str | bytes):
        with contextlib.suppress(TypeError, ValueError):
            value = item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if type(value).__name__ in ("NaTType", "NAType"):
        return None
    return value


def print_json(data: Any) -> None:
    """Print one JSON object on stdout (dates and paths as strings; NaN as null)."""
    json.dump(json_safe(data), sys.stdout, indent=2, default=str, sort_keys=False, allow_nan=False)
    sys.stdout.write("\n")


def render_table(title: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str], out: Console) -> None:
    """Print rows as a rich table with the given columns (numbers right-aligned)."""
    table = Table(title=title, title_justify="left")
    for column in columns:
        numeric = bool(rows) and all(isinstance(r.get(column), int | float) for r in rows)
        table.add_column(column, justify="right" if numeric else "left")
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    out.print(table)
