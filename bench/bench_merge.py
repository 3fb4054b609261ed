"""Benchmark: merge quality on the sandbox's seeded data, against its ground truth.

For each size (small and medium by default) it seeds a sandbox, syncs leads, contacts, accounts,
orders and activities into a mirror, and plans the merges ``dvsync merge`` would make with the
default merge band and ``auto_merge = true`` (no cap). It prints, per table:

- precision: the share of planned merges that join two records of the same true cluster (the
  issue's bar is 1.0: a merge cannot be undone);
- recall: the share of the records that should be merged away (cluster size - 1 per true cluster)
  that are;
- the time to plan.

    .venv/bin/python bench/bench_merge.py [--sizes small,medium] [--seed 0] [--execute]

``--execute`` also sends the merges of the small seed to the sandbox and checks what Dataverse
ended with (every planned duplicate merged into its master).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from connector.sandbox import Limits, Sandbox, SandboxConfig  # noqa: E402
from jobs.service import merge_store  # noqa: E402
from jobs.service.connect import connect  # noqa: E402
from jobs.service.mapping import load_mappings  # noqa: E402
from jobs.service.merge import run_merges  # noqa: E402
from jobs.service.mirror import Mirror  # noqa: E402
from jobs.service.settings_load import load_settings  # noqa: E402
from jobs.service.sync import sync_tables  # noqa: E402

TABLES = ["lead", "contact", "account", "salesorder", "email", "phonecall", "appointment"]


def _config(work: Path, sandbox: Sandbox) -> Path:
    maps = work / "mappings"
    shutil.copytree(ROOT / "mappings", maps)
    text = (maps / "duplicates.toml").read_text(encoding="utf-8")
    for table in ("lead", "contact", "account"):
        text += f"\n[{table}.merge]\nauto_merge = true\nmax_per_run = 1000000\n"
    (maps / "duplicates.toml").write_text(text, encoding="utf-8")
    config = work / "config.toml"
    config.write_text(
        "\n".join(
            [
                "[dataverse]",
                f'url = "{sandbox.url}"',
                "[auth]",
                'mode = "token"',
                "[mirror]",
                f'path = "{(work / "mirror.sqlite").as_posix()}"',
                "[mappings]",
                f'dir = "{maps.as_posix()}"',
                "[writeback]",
                'solution = "dvsync"',
                'publisher_prefix = "dvs"',
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    return config


def _grade(preview: pd.DataFrame, truth: pd.DataFrame, table: str) -> dict[str, float]:
    cluster = dict(zip(truth["record_id"].str.lower(), truth["cluster_id"], strict=True))
    rows = truth[truth["table"] == table]
    should = len(rows) - rows["cluster_id"].nunique()
    if preview.empty:
        return {"merges": 0, "correct": 0, "precision": 1.0, "recall": 0.0, "should": should}
    correct = sum(
        cluster.get(m) is not None and cluster.get(m) == cluster.get(s)
        for m, s in zip(preview["master_id"], preview["subordinate_id"], strict=True)
    )
    return {
        "merges": len(preview),
        "correct": int(correct),
        "precision": correct / len(preview),
        "recall": correct / should if should else 1.0,
        "should": should,
    }


def bench(size: str, seed: int, execute: bool) -> None:
    with tempfile.TemporaryDirectory(prefix=f"bench-merge-{size}-") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        config = SandboxConfig(limits=Limits(enabled=False))
        sandbox = Sandbox(work / "sandbox", size=size, seed=seed, config=config).start()
        try:
            seeded = time.perf_counter() - started
            settings = load_settings(_config(work, sandbox), env={"DVSYNC__AUTH__TOKEN": sandbox.token})
            mappings = load_mappings(settings.mappings.dir, prefix="dvs")
            truth = pd.read_csv(sandbox.ground_truth_dir / "duplicates.csv")
            with connect(settings) as client, Mirror(settings.mirror.path) as mirror:
                t0 = time.perf_counter()
                sync_tables(client, mirror, mappings, tables=TABLES)
                synced = time.perf_counter() - t0
                t0 = time.perf_counter()
                report = run_merges(client, mirror, mappings, settings, dry_run=True)
                planned = time.perf_counter() - t0
                print(
                    f"{size} (seed {seed}): seeded in {seeded:.1f} s, synced in {synced:.1f} s, "
                    f"planned in {planned:.1f} s"
                )
                for result in report.tables:
                    grade = _grade(result.preview, truth, result.table)
                    print(
                        f"  {result.table:8s} merges {grade['merges']:5d}  correct {grade['correct']:5d}  "
                        f"precision {grade['precision']:.3f}  recall {grade['recall']:.3f} "
                        f"(of {grade['should']} true duplicates); held back {len(result.held_back)} "
                        "(closed lead masters)"
                    )
                if execute:
                    t0 = time.perf_counter()
                    done = run_merges(client, mirror, mappings, settings, dry_run=False)
                    cluster = dict(zip(truth["record_id"].str.lower(), truth["cluster_id"], strict=True))
                    audit = merge_store.audit(mirror)
                    made = audit[audit["outcome"] == "merged"]
                    wrong = sum(
                        cluster.get(m) != cluster.get(s)
                        for m, s in zip(made["master_id"], made["subordinate_id"], strict=True)
                    )
                    print(
                        "  executed: precision of the merges Dataverse holds "
                        f"{1 - wrong / max(len(made), 1):.3f}"
                    )
                    merged = sum(t.count("merged") for t in done.tables)
                    failed = sum(t.count("failed") + t.count("unknown") for t in done.tables)
                    print(f"  executed: {merged} merged, {failed} failed in {time.perf_counter() - t0:.1f} s")
        finally:
            sandbox.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="small,medium")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--execute", action="store_true", help="also merge the small seed and check")
    args = parser.parse_args()
    for size in args.sizes.split(","):
        bench(size.strip(), args.seed, args.execute and size.strip() == "small")


if __name__ == "__main__":
    main()
