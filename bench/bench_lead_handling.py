"""Lead-handling benchmark: speed-to-lead, routing, stages and dormant flags on simulated leads.

Run: ``.venv/bin/python bench/bench_lead_handling.py [--leads 100000]``.
Prints wall times per step for ``--leads`` leads with five activities each on average (a third of
the leads open and unassigned), so an admin can see the lead-handling step is a small part of a run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.tomlfile import parse_toml
from jobs.leads.engagement import (
    DormantSettings,
    ResolvedRule,
    StageSettings,
    dormant_leads,
    first_responses,
    lead_stages,
    parse_routing,
    response_summary,
    route_leads,
)

NOW = pd.Timestamp("2026-11-02T12:00:00Z")
RULES = """
[unassigned]
team = "Intake"
[[rule]]
when = { sales_ready = true, employees = { min = 200 } }
assign = "round_robin"
team = "Enterprise"
[[rule]]
when = { source = "Partner" }
assign = "fewest_open"
team = "Partners"
[[rule]]
when = { sales_ready = true }
assign = "round_robin"
team = "Inside"
[response]
time_zone = "Europe/London"
hours = ["09:00", "17:30"]
holidays = [2026-12-25]
"""


def simulate(n: int, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    ids = np.array([f"{i:08x}-0000-4000-8000-000000000000" for i in range(n)], dtype=object)
    created = NOW - pd.to_timedelta(rng.uniform(0, 365, n), unit="D")
    open_lead = rng.random(n) < 0.5
    leads = pd.DataFrame(
        {
            "lead_id": ids,
            "created_on": created,
            "status": np.where(open_lead, "open", "qualified"),
            "owner_id": np.where(open_lead & (rng.random(n) < 0.66), "intake", "rep"),
            "owner_type": np.where(open_lead, "team", "systemuser"),
            "source": rng.choice(["Web", "Partner", "Seminar"], n),
            "employees": rng.integers(1, 5000, n),
            "sales_ready": rng.random(n) < 0.3,
        }
    )
    k = n * 5
    lead = rng.integers(0, n, k)
    acts = pd.DataFrame(
        {
            "lead_id": ids[lead],
            "activity_type": rng.choice(["email", "phonecall", "appointment"], k),
            "occurred_on": created[lead] + pd.to_timedelta(rng.exponential(5, k), unit="D"),
            "direction": rng.choice(["outgoing", "incoming"], k),
            "status": rng.choice(["completed", "canceled"], k, p=[0.95, 0.05]),
            "owner_id": rng.choice(["rep", "bot"], k, p=[0.8, 0.2]),
        }
    )
    return leads, acts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--leads", type=int, default=100_000)
    args = parser.parse_args()
    leads, acts = simulate(args.leads, np.random.default_rng(0))
    config = parse_routing(parse_toml(RULES, "routing.toml"))
    members = tuple(f"user-{i}" for i in range(8))
    rules = [ResolvedRule(r, "systemuser", members, cursor_key=str(r.index)) for r in config.rules]
    print(f"{len(leads):,} leads, {len(acts):,} activities")

    start = time.perf_counter()
    responses = first_responses(leads, acts, config.response, now=NOW, persons={"rep"})
    labels = pd.DataFrame(
        {"owner": leads["owner_id"].to_numpy(), "source": leads["source"].to_numpy()}, index=responses.index
    )
    summary = response_summary(responses, labels)
    median = summary["overall"]["median_minutes"]
    print(f"speed-to-lead + summary: {time.perf_counter() - start:6.2f} s  (median {median} min)")

    start = time.perf_counter()
    assigned, _ = route_leads(leads, rules, unassigned=("team", "intake"), config=config)
    print(
        f"routing:                 {time.perf_counter() - start:6.2f} s  ({len(assigned):,} leads assigned)"
    )

    open_leads = leads[leads["status"] == "open"]
    rng = np.random.default_rng(1)
    points = pd.DataFrame(
        {
            "fit_points": rng.normal(20, 10, len(open_leads)),
            "engagement_points": rng.exponential(6, len(open_leads)),
            "score": rng.integers(0, 100, len(open_leads)),
            "fit_factors": [["Source = Partner: +15"]] * len(open_leads),
        },
        index=open_leads["lead_id"].str.lower(),
    )
    start = time.perf_counter()
    lead_stages(points, StageSettings(), sales_ready=70)
    flagged = dormant_leads(open_leads, points, acts, DormantSettings(), now=NOW)
    flagged_count = int(flagged["reengage"].sum())
    print(f"stages + dormant:        {time.perf_counter() - start:6.2f} s  ({flagged_count:,} to re-engage)")


if __name__ == "__main__":
    main()
