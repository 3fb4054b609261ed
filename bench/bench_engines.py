"""Both engines on the same synthetic customers or leads: time, peak driver memory, scaling exponent.

Run: ``.venv/bin/python bench/bench_engines.py [--sizes 100000,1000000,5000000] [--master local[2]]
[--job value|duplicates]``.

``--job duplicates``: duplicate detection on N leads from the sandbox's seed generator (the
realistic ones of ``bench/bench_duplicates.py``, with colleagues sharing company, phone and
address), with the shipped ``mappings/duplicates.toml``: ``find_duplicates`` in this process, or
:func:`jobs.engines.spark_duplicates.find_duplicates_spark` from a Parquet file, where only the
pairs above the threshold reach the driver. The pairs found are printed, so both engines can be
seen to agree. The leads are generated once per size (in a child process), before any timed run.

For each size N (customers; about 3 orders each, with statuses, $0 orders and returns) it runs
RFM + CLV (order rules, quantile scores, BG/NBD + Gamma-Gamma fit and predictions, flags):

* ``pandas``: :func:`jobs.service.compute_value.customer_value_jobs` in this process;
* ``spark``: :func:`jobs.engines.spark_value.customer_value_jobs` on ``--master`` from a Parquet
  file, every result materialised (counted) but nothing collected.

It prints wall time, the peak resident memory of this Python driver (the JVM's heap is bounded by
``spark.driver.memory`` and reported separately by Spark, not here), and per engine the scaling
exponent ``log(t2 / t1) / log(N2 / N1)`` between consecutive sizes (1 = linear). Each engine and
size runs in a fresh process, so one run's memory does not count towards the next.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)


def _orders(n: int):
    from bench_customer_value import canonical_orders

    orders = canonical_orders(3 * n, n, seed=7)
    orders["customer_type"] = "account"
    orders["order_date"] = orders["order_date"].dt.tz_localize("UTC")
    return orders


def _leads(n: int, work: Path) -> Path:
    """N seed leads as Parquet (made once; the generator's memory is not the engines')."""
    path = work / f"leads-{n}.parquet"
    if not path.exists():
        from bench_duplicates import sandbox_leads

        leads, _ = sandbox_leads(n, 0)
        leads = leads.sort_values("lead_id", ignore_index=True)
        leads.to_parquet(path, coerce_timestamps="us", allow_truncated_timestamps=True)
    return path


def _duplicates(engine: str, n: int, master: str, work: Path) -> dict[str, float]:
    """Duplicate detection on one size, in this process; returns seconds, peak MiB and pairs."""
    from jobs.leads.duplicates.config import load_duplicate_config

    path = _leads(n, work)
    config = load_duplicate_config(ROOT / "mappings" / "duplicates.toml", "lead")
    if engine == "pandas":
        import pandas as pd

        from jobs.leads.duplicates.detect import find_duplicates

        leads = pd.read_parquet(path)
        fields = {c: s for c, s in config.fields.items() if c in leads.columns}
        start = time.perf_counter()
        pairs = find_duplicates(leads, **{**config.find_kwargs(), "fields": fields})
    else:
        from jobs.engines.frames import SparkTable
        from jobs.engines.session import spark_session
        from jobs.engines.spark_duplicates import find_duplicates_spark

        spark = spark_session(master, _SPARK_CONF)
        frame = spark.read.parquet(str(path))
        fields = {c: s for c, s in config.fields.items() if c in frame.columns}
        start = time.perf_counter()
        table = SparkTable(frame, dict.fromkeys(fields, "text"), "lead_id")
        pairs = find_duplicates_spark(table, **{**config.find_kwargs(), "fields": fields}).pairs
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mib": peak, "records": len(pairs)}


_SPARK_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.driver.memory": "6g",
}


def _one(engine: str, n: int, master: str, work: Path) -> dict[str, float]:
    """One engine on one size, in this process; returns seconds and peak MiB."""
    orders = _orders(n)
    config = ROOT / "mappings" / "customer_value.toml"
    start = time.perf_counter()
    if engine == "pandas":
        from jobs.service.compute_value import customer_value_jobs

        outcomes = customer_value_jobs(orders, {"rfm", "clv"}, config_path=config, as_of=AS_OF)
        records = sum(len(f) for o in outcomes for f in o.results.values())
    else:
        from jobs.engines.frames import SparkTable
        from jobs.engines.session import spark_session
        from jobs.engines.spark_value import customer_value_jobs as on_spark

        spark = spark_session(master, _SPARK_CONF)
        path = work / f"orders-{n}.parquet"
        orders.to_parquet(path, coerce_timestamps="us", allow_truncated_timestamps=True)
        del orders
        start = time.perf_counter()  # the export is the mirror's cost, not the engine's
        dtypes = {"customer_id": "text", "order_date": "datetime", "amount": "float", "status": "text"}
        table = SparkTable(spark.read.parquet(str(path)), {**dtypes, "customer_type": "text"}, "order_id")
        found = on_spark(table, {"rfm", "clv"}, config_path=config, as_of=AS_OF, spark=spark)
        records = sum(f.count() for per in found.results.values() for f in per.values())
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_mib": peak, "records": records}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="customers per run, comma-separated")
    parser.add_argument("--engines", default="pandas,spark")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--work", default="/tmp/dvsync-bench-engines")
    parser.add_argument(
        "--job", choices=["value", "duplicates"], default="value", help="RFM+CLV or duplicates"
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # engine:size, run in a child process
    parser.add_argument("--make-leads", type=int, help=argparse.SUPPRESS)  # child: write the leads
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.make_leads:
        _leads(args.make_leads, work)
        return 0
    if args.one:
        engine, size = args.one.split(":")
        run = _duplicates if args.job == "duplicates" else _one
        print(json.dumps(run(engine, int(size), args.master, work)))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    unit, found = ("leads", "pairs") if args.job == "duplicates" else ("customers", "results")
    if args.job == "duplicates":
        # In a child process: a child inherits its parent's peak memory, which must stay small.
        for n in sizes:
            subprocess.run(
                [sys.executable, __file__, "--make-leads", str(n), "--work", str(work)], check=True
            )
    print(f"{'engine':8} {unit:>10} {'seconds':>9} {'peak MiB':>9} {'exponent':>9} {found:>9}")
    for engine in args.engines.split(","):
        previous: tuple[int, float] | None = None
        for n in sizes:
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--one",
                    f"{engine}:{n}",
                    "--master",
                    args.master,
                    "--work",
                    str(work),
                    "--job",
                    args.job,
                ],
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                print(f"{engine:8} {n:>10,} failed: {done.stderr.strip().splitlines()[-1:]}")
                break
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            exponent = ""
            if previous is not None:
                exponent = f"{math.log(figures['seconds'] / previous[1]) / math.log(n / previous[0]):.2f}"
            print(
                f"{engine:8} {n:>10,} {figures['seconds']:>9.1f} {figures['peak_mib']:>9.0f} {exponent:>9} "
                f"{figures['records']:>9,}"
            )
            previous = (n, figures["seconds"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
