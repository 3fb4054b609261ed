"""``dvsync sandbox``: run the local Dataverse-compatible server in the foreground."""

from __future__ import annotations

import argparse
import signal
import threading
from datetime import timedelta
from pathlib import Path

from connector.sandbox.config import Limits, SandboxConfig
from connector.sandbox.faults import FaultConfig
from core.errors import ConfigError

__all__ = ["add_arguments", "run"]


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number between 0 and 1") from exc
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``dvsync sandbox`` options."""
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: loopback only)"
    )
    parser.add_argument(
        "--port", type=int, default=8765, help="port to listen on (default 8765; 0 = any free port)"
    )
    parser.add_argument(
        "--data",
        default=None,
        help="data directory; seeded when new, reused otherwise, locked while served "
        "(default: $XDG_STATE_HOME/dvsync/sandbox, i.e. ~/.local/state/dvsync/sandbox)",
    )
    parser.add_argument(
        "--size", choices=("small", "medium", "large"), default="small", help="seed size for a new data dir"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed of the generated data and of injected faults"
    )
    parser.add_argument(
        "--token", help="bearer token to accept (default: a new random one, printed at start)"
    )
    parser.add_argument(
        "--tls", action="store_true", help="serve https with a generated self-signed certificate"
    )
    group = parser.add_argument_group("service protection and change tracking")
    group.add_argument(
        "--limit-requests", type=int, default=6000, help="requests per user per window (default 6000)"
    )
    group.add_argument(
        "--limit-execution-ms",
        type=int,
        default=1_200_000,
        help="execution ms per window (default 1,200,000)",
    )
    group.add_argument(
        "--limit-concurrent", type=int, default=52, help="concurrent requests per user (default 52)"
    )
    group.add_argument(
        "--limit-window", type=float, default=300.0, help="sliding window in seconds (default 300)"
    )
    group.add_argument("--no-limits", action="store_true", help="turn service-protection limits off")
    group.add_argument("--dop-hint", type=int, default=4, help="x-ms-dop-hint sent to clients (default 4)")
    group.add_argument(
        "--tracking-off", default="", help="comma list of tables with change tracking off (e.g. lead,account)"
    )
    group.add_argument(
        "--token-retention-days", type=float, default=7.0, help="delta token lifetime in days (default 7)"
    )
    lake = parser.add_argument_group("lake export (docs/scale.md)")
    lake.add_argument(
        "--export-lake", metavar="DIR", help="write the data as a Synapse/Fabric Link export and exit"
    )
    lake.add_argument(
        "--lake-format", choices=("delta", "csv"), default="delta", help="Delta tables or CSV + model.json"
    )
    faults = parser.add_argument_group("fault injection (shares between 0 and 1, deterministic for --seed)")
    faults.add_argument("--fault-429", type=_share, default=0.0, help="share of requests answered 429")
    faults.add_argument("--fault-503", type=_share, default=0.0, help="share of requests answered 503")
    faults.add_argument(
        "--fault-drop", type=_share, default=0.0, help="share of connections dropped without answer"
    )
    faults.add_argument(
        "--fault-slow", type=_share, default=0.0, help="share of responses delayed by --slow-seconds"
    )
    faults.add_argument(
        "--fault-truncate", type=_share, default=0.0, help="share of responses with a cut-off body"
    )
    faults.add_argument(
        "--slow-seconds", type=float, default=2.0, help="delay of a slow response (default 2)"
    )
    faults.add_argument(
        "--retry-after", type=int, default=1, help="Retry-After seconds of an injected 429 (default 1)"
    )


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    """Build a :class:`SandboxConfig` from parsed options."""
    from connector.sandbox.catalog import TABLES

    tracking_off = frozenset(t.strip() for t in args.tracking_off.split(",") if t.strip())
    unknown = tracking_off - {t.logical_name for t in TABLES}
    if unknown:
        raise ConfigError(
            f"--tracking-off names unknown tables: {', '.join(sorted(unknown))}",
            hint="use logical names: " + ", ".join(t.logical_name for t in TABLES),
        )
    try:
        faults = FaultConfig(
            throttle=args.fault_429,
            unavailable=args.fault_503,
            drop=args.fault_drop,
            slow=args.fault_slow,
            truncate=args.fault_truncate,
            slow_seconds=args.slow_seconds,
            retry_after=args.retry_after,
            seed=args.seed,
        )
    except ValueError as exc:
        raise ConfigError(str(exc), hint="lower the --fault-* shares so they add up to at most 1") from exc
    return SandboxConfig(
        limits=Limits(
            requests=args.limit_requests,
            execution_ms=args.limit_execution_ms,
            concurrent=args.limit_concurrent,
            window_seconds=args.limit_window,
            enabled=not args.no_limits,
        ),
        faults=faults,
        change_tracking_disabled=tracking_off,
        change_token_retention=timedelta(days=args.token_retention_days),
        dop_hint=args.dop_hint,
    )


def run(args: argparse.Namespace) -> int:
    """Run the sandbox until Ctrl-C or SIGTERM; return the exit code."""
    from connector.sandbox.datalock import default_data_dir
    from connector.sandbox.server import Sandbox

    config = config_from_args(args)
    data_dir = Path(args.data).expanduser() if args.data else default_data_dir()
    sandbox = Sandbox(
        data_dir,
        size=args.size,
        seed=args.seed,
        token=args.token,
        host=args.host,
        port=args.port,
        tls=args.tls,
        config=config,
    )
    if not (data_dir / "sandbox.sqlite").exists():
        print(f"Seeding a new {args.size} sandbox in {data_dir} (seed {args.seed})...", flush=True)
    else:
        print(
            f"Reusing the sandbox data in {data_dir} (--size and --seed apply to new data dirs only).",
            flush=True,
        )
    if args.export_lake:
        from connector.sandbox.lake_export import export_lake

        sandbox.start()  # seeds a new data dir
        sandbox.stop()
        folder = export_lake(data_dir, args.export_lake, layout=args.lake_format)
        print(f"lake export ({args.lake_format}) written to {folder.resolve()}")
        return 0
    stop = threading.Event()

    def _stop(signum: int, frame: object) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, _stop)
    sandbox.start()
    try:
        print(f"dvsync sandbox serving {sandbox.api_url}", flush=True)
        print(f"  environment URL: {sandbox.url}")
        print(f"  bearer token:    {sandbox.token}")
        print(f"  data:            {sandbox.data_dir.resolve()}")
        print(f"  ground truth:    {sandbox.ground_truth_dir.resolve()}")
        if sandbox.ca_bundle is not None:
            print(f"  TLS certificate: {sandbox.ca_bundle.resolve()}  (use it as the CA bundle)")
        if args.host not in ("127.0.0.1", "::1", "localhost"):
            print(f"  warning: bound to {args.host}, reachable from other machines")
        print("Press Ctrl-C to stop.", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    finally:
        sandbox.stop()
        signal.signal(signal.SIGTERM, previous)
    print("sandbox stopped.")
    return 0
