"""Benchmark ``dvsync run`` against the sandbox: a full first run, then a run after 1% of records change.

A second run reads back the first run's own writes (change tracking reports every changed record,
whoever changed it); a third run with nothing changed must cost one delta request per table and a
small fraction of the first run (issue 13: at most 1/20); then 1% of the records are changed and
the next run must cost at most 1/6 of the first; a last run reads back that run's writes.
Failed writes are printed with Dataverse's message.

For each run it prints the wall time and, per table, the records read and the read requests
(records per request), the records written and the ``$batch`` requests (records per request), and
the HTTP totals. A third run with nothing changed checks that no write request is sent.

Targets (issue 6): reads at 5,000 records per request, writes of up to 1,000 per ``$batch``, no
write requests on an unchanged run, and the medium first run in under 10 minutes on 2 cores.

The sandbox is seeded once into a template under the temp directory (reused by later runs of the
bench) and copied, so every bench run starts from the same pristine data.

``--profile N`` profiles the changed run (``--profile-run unchanged``: the unchanged run) and prints
its N most expensive functions (cumulative).

Run: ``.venv/bin/python bench/bench_pipeline.py [--size medium] [--change 0.01] [--jobs ...] [--profile 30]``
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import pstats
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connector.client import DataverseClient
from connector.sandbox import Limits, Sandbox, SandboxConfig
from jobs.cli.walkthrough import demo_settings
from jobs.service.connect import connect
from jobs.service.mapping import load_mappings
from jobs.service.mirror import Mirror
from jobs.service.pipeline import PipelineResult, run_pipeline
from jobs.service.provision import provision

TOKEN = "bench-token-not-a-secret"
# Source columns a person might edit: changing them makes the record come back in the delta.
EDITS = {
    "lead": ("leads", "jobtitle", "Head of Procurement"),
    "account": ("accounts", "telephone1", "+1 202 555 0100"),
    "contact": ("contacts", "jobtitle", "Buyer"),
    "salesorder": ("salesorders", "description", "amended"),
}


def _sandbox_digest() -> str:
    """A digest of the sandbox's code: a template seeded by other code (fewer tables, other data)
    is not reused."""
    root = Path(__file__).resolve().parents[1] / "connector" / "sandbox"
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def template(size: str, seed: int) -> Path:
    """A seeded (not yet provisioned) sandbox data dir, created once per sandbox code version."""
    directory = Path(tempfile.gettempdir()) / f"dvsync-bench-{size}-{seed}-{_sandbox_digest()}"
    if not (directory / "sandbox.sqlite").exists():
        started = time.perf_counter()
        sandbox = Sandbox(directory, size=size, seed=seed, token=TOKEN)
        sandbox.prepare()
        sandbox.store.close()
        print(f"seeded the {size} sandbox in {time.perf_counter() - started:.0f} s", flush=True)
    return directory


def report(label: str, result: PipelineResult, wall: float) -> dict:
    print(f"\n== {label}: {result.outcome} in {wall:.1f} s (run {result.run_id})")
    print(
        f"{'table':<12} {'mode':<7} {'read':>8} {'req':>5} {'rec/req':>8}"
        f" {'written':>8} {'$batch':>6} {'rec/req':>8}"
    )
    rows = {}
    for name, t in sorted(result.tables.items()):
        read_rate = t["read"] / t["read_requests"] if t["read_requests"] else 0.0
        write_rate = t["written"] / t["write_requests"] if t["write_requests"] else 0.0
        print(
            f"{name:<12} {t['mode'] or '':<7} {t['read']:>8} {t['read_requests']:>5} {read_rate:>8.0f}"
            f" {t['written']:>8} {t['write_requests']:>6} {write_rate:>8.0f}"
        )
        rows[name] = {**t, "read_per_request": round(read_rate), "written_per_request": round(write_rate)}
    http = result.http
    print(f"HTTP: {http['requests']} requests ({http['retries']} retried, {http['throttled']} throttled)")
    print("  by path: " + ", ".join(f"{k}={v}" for k, v in http["by_path"].items()))
    for job in result.jobs:
        took = f" [{job.details['seconds']:.1f} s]" if "seconds" in job.details else ""
        print(f"  {job.job}: {job.status}{took}: {job.message}")
    if result.failures:
        messages: dict[str, int] = {}
        for failure in result.failures:
            key = f"{failure['table']}: {failure['message']}"
            messages[key] = messages.get(key, 0) + 1
        for message, count in sorted(messages.items(), key=lambda kv: -kv[1])[:5]:
            print(f"  FAILED x{count}: {message}")
        print(f"  first failed record: {result.failures[0]}")
    return {"wall_s": round(wall, 1), "outcome": result.outcome, "tables": rows, "http": http}


def change_records(client: DataverseClient, mirror: Mirror, share: float, seed: int) -> dict[str, int]:
    """Edit ``share`` of the records of each table, as users would, straight through the Web API."""
    rng = np.random.default_rng(seed)
    changed = {}
    for table, (entity_set, column, value) in EDITS.items():
        ids = sorted(mirror.ids(table))
        picked = rng.choice(len(ids), size=max(1, int(len(ids) * share)), replace=False)
        updates = [(ids[i], {column: value}) for i in picked]
        results = client.update_many(entity_set, updates)
        changed[table] = sum(r.ok for r in results)
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="medium", choices=["small", "medium", "large"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--change", type=float, default=0.01, help="share of records changed before run 2")
    parser.add_argument("--jobs", default="scoring,duplicates,rfm,clv")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    parser.add_argument("--profile", type=int, default=0, help="profile a run: print N functions")
    parser.add_argument(
        "--profile-run",
        default="changed",
        choices=["unchanged", "changed"],
        help="which run --profile profiles (default: the changed run)",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="dvsync-bench-pipeline-"))
    try:
        shutil.copy2(template(args.size, args.seed) / "sandbox.sqlite", work / "sandbox.sqlite")
        # Microsoft's service-protection limits stay on: the bench must live within them.
        sandbox = Sandbox(work, token=TOKEN, config=SandboxConfig(limits=Limits())).start()
        try:
            settings = demo_settings(work, sandbox.url, TOKEN)
            mappings = load_mappings(settings.mappings.dir, prefix="dvs")
            jobs = args.jobs.split(",")
            figures = {}
            run_starts: list[float] = []
            with connect(settings) as client, Mirror(settings.mirror.path) as mirror:
                provision(client, mappings, solution="dvsync")
                # The second run reads back the first run's own writes (they changed the records, and
                # change tracking reports them); the 1% figure is measured after that has settled.
                labels = (
                    "first run (full)",
                    "second run (own writes come back)",
                    "unchanged",
                    f"after {args.change:.0%} changed",
                    "after the changed run (its writes come back)",
                )
                for label in labels:
                    if label == labels[3]:
                        print(f"\nchanged: {change_records(client, mirror, args.change, args.seed)}")
                    run_starts.append(time.time())
                    profiled = labels[2] if args.profile_run == "unchanged" else labels[3]
                    profiler = cProfile.Profile() if args.profile and label == profiled else None
                    started = time.perf_counter()
                    if profiler is not None:
                        profiler.enable()
                    result = run_pipeline(client, mirror, mappings, settings, jobs=jobs)
                    wall = time.perf_counter() - started
                    if profiler is not None:
                        profiler.disable()
                    figures[label] = report(label, result, wall)
                    if profiler is not None:
                        pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.profile)
            days = {datetime.fromtimestamp(t, UTC).date() for t in run_starts}
            if len(days) > 1:
                print(
                    "\nWARNING: the UTC day changed during the bench: scoring and customer value are"
                    " recomputed on a new day (their results move with it), so these runs are not"
                    " comparable; run the bench again"
                )
            unchanged = figures["unchanged"]
            first = figures["first run (full)"]["wall_s"]
            changed = figures[f"after {args.change:.0%} changed"]
            tables = len(unchanged["tables"])
            print(
                "\nunchanged run write requests:",
                sum(v for k, v in unchanged["http"]["by_path"].items() if k.startswith("$batch")),
            )
            print(
                f"unchanged run: {unchanged['wall_s']:.1f} s = 1/{first / max(unchanged['wall_s'], 0.1):.0f}"
                f" of the first run (target <= 1/20), {unchanged['http']['requests']} requests for"
                f" {tables} tables (target <= {tables}), outcome {unchanged['outcome']}"
            )
            print(
                f"{args.change:.0%}-changed run: {changed['wall_s']:.1f} s = 1/"
                f"{first / max(changed['wall_s'], 0.1):.1f} of the first run (target <= 1/6),"
                f" outcome {changed['outcome']}"
            )
            if args.json:
                print(json.dumps(figures, indent=2, default=str))
        finally:
            sandbox.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
