"""Print the seconds the sandbox seed generator takes per size (small and medium; large with --large).

Usage: ``.venv/bin/python bench/bench_seed.py [--large] [--seed N]``. Also prints the records
generated per table and the peak memory of the process, so a regression in either shows up.
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import UTC, datetime

from connector.sandbox.seed import generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--large", action="store_true", help="also generate the large size (about 5M records)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sizes = ["small", "medium"] + (["large"] if args.large else [])
    now = datetime(2026, 1, 1, tzinfo=UTC)
    for size in sizes:
        started = time.perf_counter()
        data = generate(size, args.seed, now=now)
        seconds = time.perf_counter() - started
        records = sum(len(frame) for frame in data.tables.values())
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        counts = ", ".join(f"{name} {len(frame):,}" for name, frame in data.tables.items())
        print(f"{size:<6} {seconds:7.1f} s  {records:>10,} records  peak RSS {peak_mb:,.0f} MB  ({counts})")
        del data


if __name__ == "__main__":
    main()
