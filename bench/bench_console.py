"""Benchmark the admin console's pages over a demo mirror and print the time each page takes.

The mirror comes from ``dvsync demo`` (two runs of every job against the sandbox); by default a
medium one is made in a temp directory first, or pass ``--data-dir`` of an existing demo
(``dvsync demo --size medium --data-dir DIR --no-console``). Reading pages needs only the mirror.

For each page it prints: the first view right after the console starts (the background warm-up
computes the slow pages at the same moment, so this is the worst case an admin meets) and, once
the warm-up has finished, the median of five views (what every view costs until the next run). Target
(issue 15): every page under a second on the medium mirror.

Run: ``.venv/bin/python bench/bench_console.py [--data-dir DIR] [--size medium]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jobs.cli.walkthrough import run_demo
from jobs.console.app import start_console
from jobs.service.mirror import Mirror
from jobs.service.settings_load import load_settings

PAGES = [
    "/",
    "/runs",
    "/runs/{run}",
    "/runs/{run}/plan",
    "/runs/{run}/rollback",
    "/runs/confirm",
    "/leads",
    "/duplicates",
    "/duplicates?table=account",
    "/customers",
    "/config",
    "/api/leads",
    "/api/customers",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="a dvsync demo directory (made when missing)")
    parser.add_argument("--size", default="medium", choices=["small", "medium", "large"])
    args = parser.parse_args()
    directory = args.data_dir or Path(tempfile.mkdtemp(prefix="dvsync-bench-console-"))
    if not (directory / "mirror.sqlite").exists():
        print(f"making a {args.size} demo mirror in {directory} ...", flush=True)
        started = time.perf_counter()
        run_demo(data_dir=directory, size=args.size, quiet=True, progress=False)
        print(f"  done in {time.perf_counter() - started:.0f} s")
    settings = load_settings(directory / "config.toml", env={"DVSYNC__AUTH__TOKEN": "unused-for-reading"})
    with Mirror(settings.mirror.path) as mirror:
        runs = mirror.runs(20, kind="run")
        wrote = runs[~runs["dry_run"] & (runs["written"] > 0)]
        run_id = int(wrote["run_id"].iloc[0] if len(wrote) else runs["run_id"].iloc[0])
        sizes = {t: mirror.count(t) for t in ("lead", "contact", "account", "salesorder")}
        planned = len(mirror.plan(run_id))
    print(f"mirror: {sizes}; run #{run_id} planned {planned:,} values")
    console = start_console(settings, port=0, run_check=False)
    try:
        session = requests.Session()
        session.post(console.url + "/login", data={"token": console.token}, headers={"Origin": console.url})
        paths = [template.format(run=run_id) for template in PAGES]
        first = {}
        for path in paths:  # right after start: the warm-up computes the slow pages beside them
            started = time.perf_counter()
            session.get(console.url + path).raise_for_status()
            first[path] = time.perf_counter() - started
        started = time.perf_counter()
        while "counts" not in session.get(f"{console.url}/api/runs/{run_id}/rollback").json():
            time.sleep(0.5)  # the rollback comparison is the warm-up's last and longest step
        print(f"warm-up finished {time.perf_counter() - started:.0f} s after the first views")
        print(f"{'page':34s} {'first view':>11s} {'warm (median of 5)':>19s} {'size':>9s}")
        worst = 0.0
        for path in paths:
            times = []
            for _ in range(5):
                started = time.perf_counter()
                response = session.get(console.url + path)
                times.append(time.perf_counter() - started)
                response.raise_for_status()
            then = statistics.median(times)
            worst = max(worst, then)
            print(
                f"{path:34s} {first[path] * 1000:9.0f} ms {then * 1000:17.0f} ms {len(response.content):9,d}"
            )
        print(f"slowest page once warm: {worst * 1000:.0f} ms (target < 1000 ms)")
    finally:
        console.stop()


if __name__ == "__main__":
    main()
