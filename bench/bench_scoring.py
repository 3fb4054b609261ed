"""Lead-scoring benchmark: train on 50,000 closed leads, score 100,000, rules-score 100,000.

Run: ``.venv/bin/python bench/bench_scoring.py [--train 50000] [--score 100000]``.
Prints wall times, the model's validation AUC and peak memory. Target (issue 5): scoring 100,000
leads with the model in under 5 s on a 2-core machine.

The leads are simulated with canonical columns and activities (three a lead on average), with a
known relation between attributes, engagement and qualification, so the model has something real
to learn and the timings include factor sentences for every lead.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from jobs.leads.scoring import load_rules, score_leads, score_with_rules, train_model

NOW = pd.Timestamp("2026-11-01T00:00:00Z")
SOURCES = [
    "Web",
    "Employee Referral",
    "External Referral",
    "Partner",
    "Advertisement",
    "Trade Show",
    "Seminar",
]
INDUSTRIES = ["Consulting", "Financial", "Accounting", "Wholesale", "Insurance", "Legal Services", None]
TITLES = [
    "Sales Director",
    "Head of Procurement",
    "IT Manager",
    "CEO",
    "Analyst",
    "Intern",
    "Purchasing Assistant",
    "VP Operations",
    "Office Manager",
    "Engineer",
]
TIMEFRAMES = ["Immediate", "This Quarter", "Next Quarter", "This Year", "Unknown", None]


def simulate(n: int, *, seed: int, closed: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (leads, activities) with canonical columns."""
    rng = np.random.default_rng(seed)
    source = rng.choice(SOURCES, n, p=[0.35, 0.08, 0.07, 0.1, 0.25, 0.1, 0.05])
    title = rng.choice(TITLES, n)
    timeframe = rng.choice(np.array(TIMEFRAMES, dtype=object), n)
    personal = rng.random(n) < 0.3
    employees = np.round(rng.lognormal(4, 1.6, n))
    engaged = rng.poisson(3, n)
    logit = (
        -1.0
        + 1.5 * np.isin(source, ["Employee Referral", "External Referral"])
        + 1.0 * (source == "Partner")
        - 0.8 * (source == "Advertisement")
        + 0.8 * np.isin(title, ["Sales Director", "CEO", "VP Operations", "Head of Procurement"])
        - 1.0 * (title == "Intern")
        + 0.7 * np.isin(timeframe, ["Immediate", "This Quarter"])
        - 0.7 * personal
        + 0.25 * (engaged - 3)
    )
    qualified = rng.random(n) < 1 / (1 + np.exp(-logit))
    created = NOW - pd.to_timedelta(rng.uniform(1, 720, n), unit="D")
    modified = created + pd.to_timedelta(rng.uniform(1, 30, n), unit="D")
    ids = np.char.add("L", np.arange(n).astype(str))
    leads = pd.DataFrame(
        {
            "lead_id": ids,
            "source": source,
            "industry": rng.choice(np.array(INDUSTRIES, dtype=object), n),
            "job_title": title,
            "employees": employees,
            "revenue": np.round(employees * rng.uniform(50_000, 200_000, n)),
            "budget": np.where(rng.random(n) < 0.5, np.round(rng.uniform(1_000, 200_000, n)), np.nan),
            "purchase_timeframe": timeframe,
            "rating": rng.choice(["Hot", "Warm", "Cold"], n),
            "country": rng.choice(["United States", "United Kingdom", "Germany", "France", "India"], n),
            # Unique addresses, as in a real org: the worst case for per-distinct-value evaluation.
            "email": np.char.add(
                np.char.add("person", np.arange(n).astype(str)),
                np.where(
                    personal,
                    rng.choice(["@gmail.com", "@outlook.com", "@yahoo.fr"], n),
                    np.char.add("@company", rng.integers(0, 20_000, n).astype(str)) + ".com",
                ),
            ),
            "phone": np.where(rng.random(n) < 0.8, "+1 555 0100", None),
            "status": np.where(qualified, "qualified", "disqualified") if closed else "open",
            "created_on": created,
            "modified_on": modified,
        }
    )
    rows = np.repeat(np.arange(n), engaged)
    end = pd.DatetimeIndex(modified if closed else np.full(n, NOW))[rows]
    activities = pd.DataFrame(
        {
            "lead_id": ids[rows],
            "activity_type": rng.choice(["email", "phonecall", "appointment"], len(rows), p=[0.6, 0.3, 0.1]),
            "direction": rng.choice(["incoming", "outgoing"], len(rows)),
            "occurred_on": end - pd.to_timedelta(rng.uniform(0, 60, len(rows)), unit="D"),
            "status": "completed",
        }
    )
    return leads, activities


def timed(label: str, func):
    start = time.perf_counter()
    result = func()
    print(f"{label:<52} {time.perf_counter() - start:7.2f} s")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=50_000, help="closed leads to train on")
    parser.add_argument("--score", type=int, default=100_000, help="open leads to score")
    args = parser.parse_args()

    closed, closed_acts = simulate(args.train, seed=1, closed=True)
    open_leads, open_acts = simulate(args.score, seed=2, closed=False)
    print(
        f"{args.train:,} closed leads ({len(closed_acts):,} activities), {args.score:,} open leads "
        f"({len(open_acts):,} activities)"
    )

    model, report = timed(
        f"train model on {args.train:,} closed leads (incl. validation)",
        lambda: train_model(
            closed, label="status", features=None, time_column="created_on", activities=closed_acts
        ),
    )
    print(
        f"  validation: {report['validation']['method']}; AUC {report['auc']:.3f} "
        f"(verdict {report['verdict']}), F1 {report['f1']:.3f}, Brier {report['brier']:.3f}"
    )
    scored = timed(
        f"score {args.score:,} leads with the model (with factors)",
        lambda: score_leads(model, open_leads, activities=open_acts, as_of=NOW),
    )
    rules = load_rules(Path(__file__).resolve().parents[1] / "mappings" / "scoring.toml")
    by_rules = timed(
        f"score {args.score:,} leads with the rules (with activities)",
        lambda: score_with_rules(open_leads, rules, as_of=NOW, activities=open_acts),
    )
    print(f"  model grades: {scored['grade'].value_counts().sort_index().to_dict()}")
    print(f"  rules grades: {by_rules['grade'].value_counts().sort_index().to_dict()}")
    print(f"  example: {scored['positive_factors'].iloc[0][:2]}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS) {peak_mb:,.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
