"""Sync speed: the mapped tables pulled from a sandbox into the mirror, first in full, then by delta.

Prints, for the chosen size (medium by default):
- the first sync: wall time, records, records per second, pages (requests) and records per page
  per table (target: 5,000 records per request);
- a second sync after 1% of the leads and orders changed: wall time and records read per table
  (only the changes travel);
- a third sync with nothing changed;
- the time to read the largest mirrored tables back into DataFrames.

Run: ``.venv/bin/python bench/bench_sync.py [--size small|medium|large] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connector.client import DataverseClient
from connector.sandbox import Limits, Sandbox, SandboxConfig
from jobs.service.mapping import load_mappings
from jobs.service.mirror import Mirror
from jobs.service.sync import SyncResult, sync_tables

MAPPINGS = Path(__file__).resolve().parents[1] / "mappings"


def show(title: str, result: SyncResult, seconds: float) -> None:
    total = sum(t.read for t in result.tables)
    pages = sum(t.pages for t in result.tables)
    rate = total / seconds if seconds else 0.0
    print(f"{title}: {seconds:.1f} s, {total:,} records, {rate:,.0f} records/s, {pages} pages")
    for t in result.tables:
        per_page = t.read / t.pages if t.pages else 0
        print(
            f"  {t.table:<12} {t.mode:<6} read {t.read:>8,}  upserted {t.upserted:>8,}"
            f"  deleted {t.deleted:>5,}"
            f"  pages {t.pages:>4}  {per_page:>7,.0f}/page  {t.duration_s:>6.2f} s"
        )


def touch_one_percent(sb: Sandbox, entity_set: str, key: str, column: str, seed: int) -> int:
    """PATCH 1% of a table's records (a changed column) over plain HTTP; return how many."""
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {sb.token}", "Accept": "application/json"})
    ids: list[str] = []
    url = f"{sb.api_url}{entity_set}?$select={key}"
    while url:
        page = session.get(url, headers={"Prefer": "odata.maxpagesize=5000"}, timeout=60).json()
        ids.extend(r[key] for r in page["value"])
        url = page.get("@odata.nextLink")
    chosen = random.Random(seed).sample(ids, max(1, len(ids) // 100))
    for n, record_id in enumerate(chosen):
        response = session.patch(
            f"{sb.api_url}{entity_set}({record_id})",
            json={column: f"bench change {n}"},
            headers={"If-Match": "*", "Content-Type": "application/json"},
            timeout=60,
        )
        response.raise_for_status()
    return len(chosen)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=("small", "medium", "large"), default="medium")
    parser.add_argument("--keep", type=Path, help="reuse or keep the sandbox data here")
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="dvsync-bench-sync-"))
    started = time.perf_counter()
    # The 1% changes are sent one PATCH at a time by this script; keep service protection out of
    # the way so the figures measure the sync.
    config = SandboxConfig(limits=Limits(enabled=False))
    with Sandbox(base / "sandbox", size=args.size, seed=0, token="bench", config=config) as sb:
        print(f"sandbox ({args.size}) ready in {time.perf_counter() - started:.1f} s at {sb.url}")
        mappings = load_mappings(MAPPINGS, prefix="dvs")
        mirror_path = base / "mirror.sqlite"
        mirror_path.unlink(missing_ok=True)
        with Mirror(mirror_path) as mirror, DataverseClient(sb.url, lambda: sb.token) as client:
            t0 = time.perf_counter()
            first = sync_tables(client, mirror, mappings)
            show("first sync (full)", first, time.perf_counter() - t0)

            changed = touch_one_percent(sb, "leads", "leadid", "jobtitle", 1)
            changed += touch_one_percent(sb, "salesorders", "salesorderid", "description", 2)
            print(f"changed {changed:,} records (1% of leads and orders)")
            t0 = time.perf_counter()
            second = sync_tables(client, mirror, mappings)
            show("second sync (delta)", second, time.perf_counter() - t0)

            t0 = time.perf_counter()
            third = sync_tables(client, mirror, mappings)
            show("third sync (nothing changed)", third, time.perf_counter() - t0)

            for name in ("salesorder", "lead", "email"):
                t0 = time.perf_counter()
                frame = mirror.read_frame(name)
                print(
                    f"read_frame({name!r}): {len(frame):,} rows x {frame.shape[1]} columns in "
                    f"{time.perf_counter() - t0:.2f} s"
                )


if __name__ == "__main__":
    main()
