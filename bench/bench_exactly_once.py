"""Benchmark write-back under faults: the same run clean and with 429/503/dropped/truncated answers.

Both runs start from the same provisioned sandbox copy and run the chosen jobs. For each it prints
the wall time, the HTTP requests, retried answers and 429s, the values dvsync audited as written,
and the updates the *server* applied (the sandbox's update log), so a replayed batch would show as
more server updates than audited writes. Waits (Retry-After, backoff) are skipped: the figure is
the extra requests and work the faults cost, not the sleeping.

Targets (issue 17): server updates equal audited writes and equal the clean run's, record for
record; final values equal.

Run: ``.venv/bin/python bench/bench_exactly_once.py [--size small] [--fault 0.03] [--jobs rfm]``
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connector.http import RetryPolicy
from connector.sandbox import FaultConfig, Sandbox, SandboxConfig
from connector.sandbox.update_log import update_counts
from jobs.cli.walkthrough import demo_settings
from jobs.service.connect import connect
from jobs.service.mapping import load_mappings
from jobs.service.mirror import Mirror
from jobs.service.pipeline import run_pipeline
from jobs.service.provision import provision

TOKEN = "bench-token-not-a-secret"


def provisioned(size: str, seed: int) -> Path:
    """A seeded, provisioned sandbox data dir, made once under the temp directory."""
    directory = Path(tempfile.gettempdir()) / f"dvsync-bench-eo-{size}-{seed}"
    if not (directory / "sandbox.sqlite").exists():
        sandbox = Sandbox(directory, size=size, seed=seed, token=TOKEN).start()
        try:
            settings = demo_settings(directory, sandbox.url, TOKEN)
            with connect(settings) as client:
                provision(client, load_mappings(settings.mappings.dir, prefix="dvs"), solution="dvsync")
        finally:
            sandbox.stop()
        (directory / "mirror.sqlite").unlink(missing_ok=True)
    return directory


def one(template: Path, work: Path, faults: FaultConfig, jobs: list[str]) -> dict:
    data = work / "sandbox"
    data.mkdir(parents=True)
    shutil.copy2(template / "sandbox.sqlite", data / "sandbox.sqlite")
    sandbox = Sandbox(data, token=TOKEN, config=SandboxConfig(faults=faults)).start()
    try:
        settings = demo_settings(work, sandbox.url, TOKEN)
        mappings = load_mappings(settings.mappings.dir, prefix="dvs")
        retry = RetryPolicy(sleep=lambda seconds: None)
        started = time.perf_counter()
        runs = []
        with connect(settings, retry=retry) as client, Mirror(settings.mirror.path) as mirror:
            for _ in range(3):
                result = run_pipeline(client, mirror, mappings, settings, jobs=jobs)
                runs.append(result)
                if result.ok:
                    break
            audit = mirror.audit()
        wall = time.perf_counter() - started
    finally:
        sandbox.stop()
    written = audit[audit["outcome"] == "written"].drop_duplicates(["table_name", "record_id"])
    updates = update_counts(data)
    return {
        "wall_s": round(wall, 1),
        "runs": len(runs),
        "requests": sum(r.http["requests"] for r in runs),
        "retried": sum(r.http["retries"] for r in runs),
        "throttled": sum(r.http["throttled"] for r in runs),
        "records_written": len(written),
        "server_updates": sum(updates.values()),
        "updates": updates,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fault", type=float, default=0.03, help="share of each of the four fault kinds")
    parser.add_argument("--jobs", default="rfm")
    args = parser.parse_args()
    jobs = [j.strip() for j in args.jobs.split(",") if j.strip()]
    template = provisioned(args.size, args.seed)
    share = args.fault
    with tempfile.TemporaryDirectory() as tmp:
        clean = one(template, Path(tmp) / "clean", FaultConfig(), jobs)
        faulty = one(
            template,
            Path(tmp) / "faulty",
            FaultConfig(throttle=share, unavailable=share, drop=share, truncate=share, seed=args.seed + 1),
            jobs,
        )
    for label, figures in (("clean", clean), (f"faults {4 * share:.0%}", faulty)):
        shown = {k: v for k, v in figures.items() if k != "updates"}
        print(f"{label:>12}: " + ", ".join(f"{k} {v}" for k, v in shown.items()))
    same = clean["updates"] == faulty["updates"]
    print(f"server updates per record equal to the clean run's: {same}")
    matches = faulty["server_updates"] == faulty["records_written"]
    print(f"server updates equal audited records written: {matches}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
