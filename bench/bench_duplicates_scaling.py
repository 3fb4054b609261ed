"""Benchmark: how duplicate detection grows from 100,000 to 1,000,000 leads, against splink 4 (DuckDB).

For each size it generates synthetic leads with planted duplicates (``bench_duplicates.generate``:
realistic name frequencies, typos, nicknames, swapped names, reformatted phones and emails), then
runs, each in a fresh child process so that the peak memory is that run's alone:

* ours: ``find_duplicates`` with the shipped ``mappings/duplicates.toml`` lead settings;
* splink 4 with DuckDB, a standard model on the same fields and the same blocking fields (email,
  phone, the two names, last name with postcode, company with city), u by random sampling, m by EM
  on two blocking rules, pairs at match probability 0.5.

It prints per size: wall time, CPU time, peak memory (max RSS of the child), candidate pairs per
record (ours), precision, recall and F1 on the planted pairs; then the time exponent of each tool
(the slope of log time against log size, least squares) and the ratio splink / ours at each size.
Targets (issue 13): our exponent <= 1.1; at 1M faster than splink with less peak memory; F1 >= 0.995.

splink is optional (``bench/requirements.txt``, installed by ``make bench``, never by ``make test``):
without it the bench prints our figures alone. A peer run that takes longer than ``--peer-timeout``
seconds (30 minutes) or fails (out of memory) is stopped and reported, and the others still print.
The machine is shared: CPU time is printed beside wall time, and the ratios are measured in the same
run.

    .venv/bin/python bench/bench_duplicates_scaling.py [--sizes 100000,300000,1000000] [--no-splink]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

FIELDS = ["first_name", "last_name", "company", "email", "phone", "street", "city", "postcode"]


def _grade(pairs: pd.DataFrame, entity: pd.Series, ids: pd.Series) -> dict[str, float]:
    """Precision, recall and F1 of found pairs against the planted duplicates."""
    by_id = dict(zip(ids, entity, strict=True))
    same = np.array(
        [by_id[a] == by_id[b] for a, b in zip(pairs["id_left"], pairs["id_right"], strict=True)], dtype=bool
    )
    sizes = entity.value_counts()
    planted = int((sizes * (sizes - 1) // 2).sum())
    precision = float(same.mean()) if len(same) else 0.0
    recall = float(same.sum()) / planted if planted else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"pairs": len(pairs), "precision": precision, "recall": recall, "f1": f1}


def _ours(leads: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, float]]:
    from jobs.leads.duplicates.config import load_duplicate_config
    from jobs.leads.duplicates.detect import find_duplicates

    config = load_duplicate_config(ROOT / "mappings" / "duplicates.toml", "lead")
    fields = {c: s for c, s in config.fields.items() if c in leads.columns}
    result = find_duplicates(leads, report=True, **{**config.find_kwargs(), "fields": fields})
    records = max(len(leads), 1)
    extra = {
        "candidates_per_record": result.blocking.candidate_pairs / records,
        # Per pass: pairs per record it produced (or would have, when skipped as too coarse).
        "passes": {p.name: [p.pairs / records, p.skipped] for p in result.blocking.passes},
    }
    return result.pairs[["id_left", "id_right"]], extra


def _splink(leads: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, float]]:
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    frame = leads[["lead_id", *FIELDS]].copy()
    for column in FIELDS:  # the same light cleaning our normalisation starts with: case and spaces
        frame[column] = frame[column].astype("string").str.strip().str.lower()
    blocking = [
        block_on("email"),
        block_on("phone"),
        block_on("first_name", "last_name"),
        block_on("last_name", "postcode"),
        block_on("company", "city"),
    ]
    settings = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="lead_id",
        comparisons=[
            cl.NameComparison("first_name"),
            cl.NameComparison("last_name"),
            cl.JaroWinklerAtThresholds("company", [0.9, 0.8]),
            cl.EmailComparison("email"),
            cl.ExactMatch("phone"),
            cl.JaroWinklerAtThresholds("street", [0.9, 0.8]),
            cl.ExactMatch("city"),
            cl.LevenshteinAtThresholds("postcode", [1, 2]),
        ],
        blocking_rules_to_generate_predictions=blocking,
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )
    # No basic logging: it would print splink's training chatter, one line per EM iteration.
    linker = Linker(frame, settings, db_api=DuckDBAPI(), set_up_basic_logging=False)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("email"), block_on("phone")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6, seed=1)
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("first_name", "last_name"))
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("email"))
    predictions = linker.inference.predict(threshold_match_probability=0.5).as_pandas_dataframe()
    pairs = predictions.rename(columns={"lead_id_l": "id_left", "lead_id_r": "id_right"})
    return pairs[["id_left", "id_right"]], {}


def _child(tool: str, data: Path, out: Path) -> None:
    """Run one tool on the pickled leads and write its figures as JSON (in a child process)."""
    leads = pd.read_pickle(data)
    entity = leads.pop("_entity")
    cpu, wall = time.process_time(), time.perf_counter()
    pairs, extra = (_ours if tool == "ours" else _splink)(leads)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    figures = {
        "tool": tool,
        "records": len(leads),
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **_grade(pairs, entity, leads["lead_id"]),
        **extra,
    }
    out.write_text(json.dumps(figures), encoding="utf-8")


def _exponent(sizes: list[int], times: list[float]) -> float:
    """Least-squares slope of log time on log size."""
    if len(sizes) < 2:
        return float("nan")
    x, y = np.log(np.array(sizes, dtype=float)), np.log(np.array(times, dtype=float))
    return float(np.polyfit(x, y, 1)[0])


def _print_passes(rows: list[dict]) -> None:
    """Candidate pairs per record of each blocking pass at each size: flat when blocking scales."""
    if not rows:
        return
    names = list(rows[0]["passes"])
    print(
        "\ncandidate pairs per record, per blocking pass (ours; in brackets: skipped as too coarse,"
        " would give)"
    )
    print(f"  {'pass':<42}" + "".join(f"{r['records']:>14,}" for r in rows))
    for name in names:
        cells = []
        for row in rows:
            per, skipped = row["passes"].get(name, [float("nan"), False])
            cells.append((f"({per:.3f})" if skipped else f"{per:.3f}").rjust(14))
        print(f"  {name:<42}" + "".join(cells))
    print(f"  {'union (compared)':<42}" + "".join(f"{r['candidates_per_record']:>14.3f}" for r in rows))


def _run_child(tool: str, data: Path, out: Path, timeout: float | None) -> str | None:
    """Run one tool in a child process; None when it finished, else what stopped it."""
    started = time.perf_counter()
    command = [sys.executable, __file__, "--_child", tool, str(data), str(out)]
    try:
        done = subprocess.run(command, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return f"did not finish within {timeout:.0f} s (stopped)"
    if done.returncode != 0:
        how = (
            f"killed by signal {-done.returncode}" if done.returncode < 0 else f"exit code {done.returncode}"
        )
        return f"failed after {time.perf_counter() - started:.0f} s wall ({how}; -9 is usually out of memory)"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-splink", action="store_true", help="measure ours only")
    parser.add_argument(
        "--peer-timeout",
        type=float,
        default=1800.0,
        help="seconds a peer may take per size before it is stopped",
    )
    parser.add_argument("--_child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child:
        _child(args._child[0], Path(args._child[1]), Path(args._child[2]))
        return 0
    tools = ["ours"]
    if not args.no_splink:
        try:
            import splink  # noqa: F401

            tools.append("splink")
        except ImportError:
            print("splink is not installed (pip install -r bench/requirements.txt): ours only")
    from bench_duplicates import synthetic_leads

    sizes = [int(s) for s in args.sizes.split(",")]
    results: dict[str, list[dict]] = {t: [] for t in tools}
    with tempfile.TemporaryDirectory() as folder:
        for size in sizes:
            started = time.perf_counter()
            leads, entity = synthetic_leads(size, args.seed)
            data = Path(folder) / f"leads-{size}.pkl"
            leads.assign(_entity=entity.to_numpy()).to_pickle(data)
            del leads, entity
            print(f"\n{size} synthetic leads generated in {time.perf_counter() - started:.0f} s", flush=True)
            for tool in tools:
                out = Path(folder) / f"{tool}-{size}.json"
                failure = _run_child(tool, data, out, None if tool == "ours" else args.peer_timeout)
                if failure:
                    # A peer that runs out of time or memory must not lose the figures measured so far.
                    print(f"  {tool:<7} {failure}", flush=True)
                    continue
                figures = json.loads(out.read_text(encoding="utf-8"))
                results[tool].append(figures)
                per = figures.get("candidates_per_record")
                print(
                    f"  {tool:<7} {figures['wall_s']:7.1f} s wall {figures['cpu_s']:7.1f} s CPU"
                    f"  peak {figures['peak_mib']:7.0f} MiB  precision {figures['precision']:.4f}"
                    f"  recall {figures['recall']:.4f}  F1 {figures['f1']:.4f}"
                    + (f"  candidates/record {per:.2f}" if per is not None else ""),
                    flush=True,
                )
    _print_passes(results["ours"])
    print("\nsummary")
    for tool in tools:
        rows = results[tool]
        if len(rows) < 2:
            continue
        exponent = _exponent([r["records"] for r in rows], [r["wall_s"] for r in rows])
        cpu_exponent = _exponent([r["records"] for r in rows], [r["cpu_s"] for r in rows])
        print(
            f"  {tool}: time exponent {exponent:.2f} (wall), {cpu_exponent:.2f} (CPU); target for ours <= 1.1"
        )
    if "splink" in results:
        by_size = {r["records"]: r for r in results["splink"]}
        for ours in results["ours"]:
            theirs = by_size.get(ours["records"])
            if theirs is None:
                print(f"  {ours['records']:>9} leads: splink did not finish (see above)")
                continue
            wall = theirs["wall_s"] / ours["wall_s"]
            cpu = theirs["cpu_s"] / max(ours["cpu_s"], 1e-9)
            memory = ours["peak_mib"] / theirs["peak_mib"]
            print(
                f"  {ours['records']:>9} leads: splink/ours time {wall:.2f}x wall, {cpu:.2f}x CPU;"
                f" peak memory ours/splink {memory:.2f}; F1 ours {ours['f1']:.4f} splink {theirs['f1']:.4f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
