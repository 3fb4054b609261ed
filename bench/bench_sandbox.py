"""Sandbox speed: seeding, paged reads over loopback, and $batch updates.

Prints:
- seconds to seed each size (generate the data, then load it into SQLite), small and medium by
  default, large with ``--large``;
- records per second reading the whole medium ``leads`` table in 5,000-record pages over loopback
  (target: the table in under 20 s);
- ``$batch`` updates per second for 100,000 PATCH updates in batches of 1,000 (target: under 60 s).

Run: ``.venv/bin/python bench/bench_sandbox.py [--large] [--updates N] [--keep DIR]``.
The HTTP client here is hand-written on purpose (requests + a multipart body), independent of the
connector, so it measures the server.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connector.sandbox import Limits, Sandbox, SandboxConfig
from connector.sandbox import seed as seed_module
from connector.sandbox.storage import Store

TOKEN = "bench-token"


def seed_size(size: str, directory: Path) -> tuple[float, float, dict[str, int]]:
    """Return (generate seconds, load seconds, rows per table) for one size."""
    started = time.perf_counter()
    data = seed_module.generate(size, 0)
    generated = time.perf_counter()
    store = Store(directory, SandboxConfig().clock)
    store.create(data.tables, {"size": size, "seed": "0"})
    seed_module.write_ground_truth(data, directory / "ground_truth")
    store.close()
    loaded = time.perf_counter()
    return generated - started, loaded - generated, {k: len(v) for k, v in data.tables.items()}


def read_all(session: requests.Session, url: str) -> tuple[int, float, int]:
    """Read every page; return (records, seconds, pages)."""
    started = time.perf_counter()
    count = pages = 0
    while url:
        r = session.get(url, headers={"Prefer": "odata.maxpagesize=5000"})
        r.raise_for_status()
        body = r.json()
        count += len(body["value"])
        pages += 1
        url = body.get("@odata.nextLink")
    return count, time.perf_counter() - started, pages


def batch_body(entity_set: str, updates: list[tuple[str, dict]]) -> tuple[str, bytes]:
    """A multipart/mixed $batch body of PATCH requests with If-Match: * (§5.7)."""
    boundary = f"batch_{uuid.uuid4()}"
    parts = []
    for record_id, values in updates:
        parts.append(
            f"--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
            f"PATCH {entity_set}({record_id}) HTTP/1.1\r\nContent-Type: "
            "application/json\r\nIf-Match: *\r\n\r\n"
            f"{json.dumps(values)}\r\n"
        )
    return boundary, ("".join(parts) + f"--{boundary}--\r\n").encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", action="store_true", help="also seed the large size (minutes)")
    parser.add_argument("--updates", type=int, default=100_000, help="updates to send through $batch")
    parser.add_argument("--keep", help="keep the data directories under this path")
    args = parser.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="dvsync-bench-"))
    sizes = ["small", "medium"] + (["large"] if args.large else [])
    for size in sizes:
        target = root / size
        if (target / "sandbox.sqlite").exists():
            print(f"seed {size:<6}: reusing {target}")
            continue
        gen, load, rows = seed_size(size, target)
        total = sum(rows.values())
        print(
            f"seed {size:<6}: {gen + load:6.1f} s  (generate {gen:.1f} s, load {load:.1f} s; {total:,} rows: "
            + ", ".join(f"{k} {v:,}" for k, v in rows.items())
            + ")"
        )

    config = SandboxConfig(limits=Limits(enabled=False))
    with Sandbox(root / "medium", token=TOKEN, config=config) as sb, requests.Session() as session:
        session.headers.update({"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"})
        count, seconds, pages = read_all(session, sb.api_url + "leads")
        print(
            f"read medium leads (all columns): {count:,} records in {seconds:.1f} s over {pages} pages "
            f"= {count / seconds:,.0f} records/s (target: under 20 s)"
        )
        select = (
            "leads?$select=firstname,lastname,emailaddress1,companyname,leadsourcecode,statecode,createdon"
        )
        count, seconds, pages = read_all(session, sb.api_url + select)
        print(
            f"read medium leads ($select 7 columns): {count:,} records in {seconds:.1f} s = "
            f"{count / seconds:,.0f} records/s"
        )

        ids: list[str] = []
        url = sb.api_url + "leads?$select=leadid"
        while url and len(ids) < args.updates:
            body = session.get(url, headers={"Prefer": "odata.maxpagesize=5000"}).json()
            ids.extend(v["leadid"] for v in body["value"])
            url = body.get("@odata.nextLink")
        ids = (ids * (args.updates // len(ids) + 1))[: args.updates]
        started = time.perf_counter()
        failed = 0
        for start in range(0, len(ids), 1000):
            chunk = [
                (i, {"description": f"scored {start + n}", "leadqualitycode": 1 + (start + n) % 3})
                for n, i in enumerate(ids[start : start + 1000])
            ]
            boundary, body = batch_body("leads", chunk)
            r = session.post(
                sb.api_url + "$batch",
                data=body,
                headers={
                    "Content-Type": f"multipart/mixed;boundary={boundary}",
                    "Prefer": "odata.continue-on-error",
                },
            )
            r.raise_for_status()
            failed += r.content.count(b"HTTP/1.1 4")
        seconds = time.perf_counter() - started
        print(
            f"$batch updates: {len(ids):,} PATCHes in {seconds:.1f} s = {len(ids) / seconds:,.0f} updates/s "
            f"({failed} failed; target: 100,000 under 60 s)"
        )
    if not args.keep:
        print(f"(data in {root}; delete it when done)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
