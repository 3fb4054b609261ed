"""The ``dvsync`` command: parses arguments, loads settings, calls library code, renders results.

No business logic lives here. Each command is a ``(register, run)`` pair; an expected error
(any ``DvsyncError``) is printed as one message without a traceback, with its exit code
(0 ok, 1 run failed, 2 configuration error).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from connector import __version__
from connector.errors import DvsyncError


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dvsync",
        description="Sync Dynamics 365 / Dataverse to a local mirror, score and dedupe, write results back.",
    )
    parser.add_argument("--version", action="version", version=f"dvsync {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    from connector.sandbox import cli as sandbox_cli

    sandbox = commands.add_parser("sandbox", help="run the local Dataverse-compatible sandbox server")
    sandbox_cli.add_arguments(sandbox)
    sandbox.set_defaults(handler=sandbox_cli.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the dvsync command line and return its exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except DvsyncError as exc:
        print(f"dvsync: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("dvsync: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
