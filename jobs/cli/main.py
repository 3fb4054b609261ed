"""The ``dvsync`` command: parses arguments, loads settings, calls library code, renders results.

No business logic lives here. Each command lives in a module that exposes
``add_arguments(parser)`` and ``run(args) -> int``; this file only lists them. An expected error
(any ``DvsyncError``) is printed as one message without a traceback, with its exit code
(0 ok, 1 run failed, 2 configuration error).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from core.errors import DvsyncError
from core.version import __version__

# (command, module, one-line help). Modules are imported only when their command runs.
COMMANDS: list[tuple[str, str, str]] = [
    ("init", "jobs.cli.init", "write a working folder: config.toml, mappings/, .gitignore"),
    ("sandbox", "connector.sandbox.cli", "run the local Dataverse-compatible sandbox server"),
    ("check", "jobs.cli.check", "validate config and mappings against the org's metadata"),
    ("provision", "jobs.cli.provision", "create the missing output columns, then publish"),
    ("sync", "jobs.cli.sync", "pull the mapped tables into the local mirror"),
    ("run", "jobs.cli.run", "sync, compute the jobs, plan the writes (--no-dry-run: write them back)"),
    ("rollback", "jobs.cli.rollback", "restore the values a run overwrote"),
    ("merge", "jobs.cli.merge", "merge approved duplicates in Dynamics (a dry run unless --no-dry-run)"),
    ("schedule", "jobs.cli.schedule", "run on the configured cron schedules, in the foreground"),
    ("status", "jobs.cli.status", "last runs, next scheduled runs, mirror freshness"),
    ("console", "jobs.cli.console", "serve the admin console (web pages over the mirror) until Ctrl-C"),
    ("demo", "jobs.cli.demo", "start the sandbox, provision, run twice and show the results"),
]


def _build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dvsync",
        description="Sync Dynamics 365 / Dataverse to a local mirror, score and dedupe, write results back.",
    )
    parser.add_argument("--version", action="version", version=f"dvsync {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs")
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="config.toml to use (default: $DVSYNC_CONFIG, else ./config.toml when present)",
    )
    parser.add_argument(
        "--json",
        dest="global_json",
        action="store_true",
        help="machine-readable output (same as after COMMAND)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    chosen = _command_name(argv)
    for name, module_name, help_text in COMMANDS:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        # Global options work after the command too; SUPPRESS keeps an earlier value (`-v run`).
        sub.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logs")
        if name == chosen:
            module = importlib.import_module(module_name)
            module.add_arguments(sub)
            sub.set_defaults(handler=module.run)
    return parser


def _command_name(argv: Sequence[str]) -> str | None:
    """The command word: the first argument that is not an option or the global --config's value."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--config":
            skip = True
            continue
        if not arg.startswith("-"):
            return arg
    return None


def _setup_logging(args: argparse.Namespace) -> None:
    """Logging from ``[logging]`` (JSON lines when ``logging.json``); ``-v`` forces debug."""
    from jobs.cli.render import setup_logging

    level, json_lines = "INFO", False
    try:
        from jobs.service.settings_load import load_settings

        settings = load_settings(getattr(args, "config", None))
        level, json_lines = settings.logging.level, settings.logging.json
    except DvsyncError:
        pass  # the command itself reports a bad configuration, with its exit code
    setup_logging(level, json_lines=json_lines, verbose=args.verbose)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the dvsync command line and return its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _build_parser(argv)
    args = parser.parse_args(argv)
    if args.global_json:
        if not hasattr(args, "json"):
            parser.error(f"`dvsync {args.command}` has no --json output")
        args.json = True
    _setup_logging(args)
    os.umask(0o077)  # what dvsync writes holds personal data: 0600 files, 0700 folders (core.private)
    try:
        return int(args.handler(args) or 0)
    except DvsyncError as exc:
        from jobs.cli.render import redact

        print(f"dvsync: error: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("dvsync: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `dvsync status --json | head`: the reader left; say nothing more on a closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
