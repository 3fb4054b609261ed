"""``dvsync demo``: start the sandbox, provision, run the pipeline twice, show what was written."""

from __future__ import annotations

import argparse
import logging

from jobs.cli.common import print_json
from jobs.cli.walkthrough import run_demo
from jobs.service.settings import Settings

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``dvsync demo`` options."""
    parser.add_argument("--json", action="store_true", help="print the demo's report as one JSON object")
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help="where the sandbox, config and mirror go, kept afterwards "
        "(default: a temporary folder, removed at the end)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print where it is")
    parser.add_argument("--size", default="small", choices=["small", "medium", "large"], help="sandbox size")
    parser.add_argument("--seed", type=int, default=0, help="sandbox seed (default 0)")
    parser.add_argument(
        "--no-console",
        action="store_true",
        help="end after the runs instead of serving the admin console until Ctrl-C (implied by --json)",
    )


def _serve_console(settings: Settings) -> None:
    """Serve the console over the demo's mirror (and its sandbox) until Ctrl-C or SIGTERM."""
    from jobs.cli.console import announce
    from jobs.cli.run import stop_on_signals
    from jobs.console.app import start_console

    with stop_on_signals() as stop:
        # Any free port: a second demo, or a console already on 8766, must not stop this one.
        console = start_console(settings, port=0, stop=stop)
        try:
            print("\nSee it in the browser:", flush=True)
            announce(console)
            print("Serving until Ctrl-C (`dvsync demo --no-console` ends here instead).", flush=True)
            while not stop.wait(1.0):
                pass
        finally:
            console.stop()


def run(args: argparse.Namespace) -> int:
    """Run the demo; 0 when both runs succeeded and the second wrote nothing."""
    if not getattr(args, "verbose", False):
        # The demo narrates itself; per-step logs would drown it (``-v`` brings them back).
        logging.getLogger().setLevel(logging.WARNING)
    serve = None if args.no_console or args.json else _serve_console
    report = run_demo(
        data_dir=args.data_dir, size=args.size, seed=args.seed, quiet=args.json, keep=args.keep, then=serve
    )
    if args.json:
        print_json(report)
    second = report["second"]
    written = sum(t["written"] for t in second["tables"].values())
    return 0 if report["first"]["ok"] and second["ok"] and written == 0 else 1
