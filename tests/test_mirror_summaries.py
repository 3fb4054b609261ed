"""Paged, filtered and counted reads of a run's plan and audit (what the console's run pages use)."""

from __future__ import annotations

import pandas as pd

from jobs.service.mirror import Mirror
from jobs.service.mirror.summaries import (
    PlanFilter,
    audit_counts,
    audit_problems,
    plan_choices,
    plan_page,
    plan_rows,
)


def _mirror_with_a_run() -> tuple[Mirror, int]:
    mirror = Mirror(":memory:")
    run_id = mirror.start_run("run", jobs=["scoring"])
    plan = pd.DataFrame(
        {
            "table_name": ["lead"] * 5 + ["account"] * 3,
            "record_id": [f"ID-{i:02d}" for i in range(8)],
            "column_name": ["dvs_leadscore", "dvs_leadgrade"] * 2 + ["dvs_leadscore"] + ["dvs_segment"] * 3,
            "new_value": list(range(8)),
            "old_value": [None] * 8,
        }
    )
    mirror.save_plan(run_id, plan)
    mirror.mark_plan(run_id, "account", [("id-05", "dvs_segment")], "failed", error="412")
    other = mirror.start_run("run")
    mirror.save_plan(other, plan.head(2))
    mirror.record_audit(
        run_id,
        "lead",
        [
            {"record_id": "ID-00", "column_name": "dvs_leadscore", "new_value": 0, "outcome": "written"},
            {
                "record_id": "ID-01",
                "column_name": "dvs_leadgrade",
                "new_value": 1,
                "outcome": "failed",
                "error": "x",
            },
        ],
    )
    return mirror, run_id


def test_plan_pages_filter_and_count_within_one_run():
    mirror, run_id = _mirror_with_a_run()
    rows, total = plan_page(mirror, run_id, PlanFilter(), offset=0, limit=3)
    assert total == 8 and len(rows) == 3 and {r["run_id"] for r in rows} == {run_id}
    rows, total = plan_page(
        mirror, run_id, PlanFilter(table="lead", column="dvs_leadscore"), offset=0, limit=50
    )
    assert total == 3 and [r["record_id"] for r in rows] == ["id-00", "id-02", "id-04"]
    # Plan order is table, record, column: the accounts first; the record filter ignores case.
    matching, _ = plan_page(mirror, run_id, PlanFilter(record="D-0"), offset=6, limit=50)
    assert [r["record_id"] for r in matching] == ["id-03", "id-04"]
    only, _ = plan_page(mirror, run_id, PlanFilter(record="-07"), offset=0, limit=9)
    assert [r["record_id"] for r in only] == ["id-07"]
    assert plan_page(mirror, run_id, PlanFilter(status="failed"), offset=0, limit=5)[1] == 1
    assert sum(len(chunk) for chunk in plan_rows(mirror, run_id, PlanFilter(), chunk=3)) == 8
    assert plan_choices(mirror, run_id) == {
        "table": ["account", "lead"],
        "column": ["dvs_leadgrade", "dvs_leadscore", "dvs_segment"],
        "status": ["failed", "pending"],
    }


def test_audit_is_counted_per_outcome_and_problems_listed():
    mirror, run_id = _mirror_with_a_run()
    assert dict(audit_counts(mirror, run_id)) == {"written": 1, "failed": 1}
    (problem,) = audit_problems(mirror, run_id)
    assert problem["record_id"] == "id-01" and problem["outcome"] == "failed" and problem["error"] == "x"
