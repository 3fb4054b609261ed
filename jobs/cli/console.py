"""``dvsync console [--host 127.0.0.1] [--port 8766]``: serve the admin console until Ctrl-C/SIGTERM."""

from __future__ import annotations

import argparse
import sys

from jobs.cli.common import settings_from_args
from jobs.cli.run import stop_on_signals
from jobs.console.app import RunningConsole, start_console

__all__ = ["add_arguments", "announce", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``dvsync console`` options."""
    parser.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        metavar="PATH",
        help="config.toml to use (default: $DVSYNC_CONFIG, else ./config.toml when present)",
    )
    parser.add_argument("--host", help="address to listen on (default: console.host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port (default: console.port, 8766; 0 picks a free one)")


def announce(console: RunningConsole, out=None) -> None:
    """Print where the console is and, for token sign-in, the one-time admin token."""
    out = out or sys.stdout
    print(f"Console: {console.url}", file=out)
    if console.token:
        print(f"Admin token (sign in with it; valid until this process stops): {console.token}", file=out)
    out.flush()


def run(args: argparse.Namespace) -> int:
    """Serve until a signal; 0 after a clean stop."""
    settings = settings_from_args(args)
    with stop_on_signals() as stop:
        console = start_console(settings, host=args.host, port=args.port, stop=stop)
        try:
            announce(console)
            print("Serving until Ctrl-C.", flush=True)
            while not stop.wait(1.0):
                pass
        finally:
            console.stop()
    return 0
