"""Planning is skipped only for inputs provably equal to those of an earlier empty plan."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from jobs.service import plan_memo
from jobs.service.mapping import OutputColumn
from jobs.service.plan import plan_table
from jobs.service.plan_memo import PlanMemo, plan_digest


def output(result: str, type_: str, **extra) -> OutputColumn:
    return OutputColumn(
        table="lead",
        result=result,
        schema_name=f"dvs_{result.title().replace('_', '')}",
        type=type_,
        display_name=result,
        description=result,
        **extra,
    )


OUTPUTS = [output("score", "integer"), output("grade", "string", max_length=5)]
IDS = pd.Index(["a", "b", "c"], name="lead_id")


class _StateMirror:
    """The mirror's job_state, in memory."""

    def __init__(self) -> None:
        self.state: dict[str, tuple[str, Any]] = {}

    def job_state(self, job: str):
        kept = self.state.get(job)
        return (kept[0], None, kept[1]) if kept else None

    def save_job_state(self, job: str, fingerprint: str, run_id, payload) -> int:
        self.state[job] = (fingerprint, payload)
        return 0


@pytest.fixture
def counted(monkeypatch):
    calls: list[str] = []

    def counting(table, results, current, outputs):
        calls.append(table)
        return plan_table(table, results, current, outputs)

    monkeypatch.setattr(plan_memo, "plan_table", counting)
    return calls


def results(**changes) -> pd.DataFrame:
    return pd.DataFrame({"score": [80, 55, 10], "grade": ["A", "B", None], **changes}, index=IDS)


def held(**changes) -> pd.DataFrame:
    frame = pd.DataFrame({"out_score": [80.0, 55.0, 10.0], "out_grade": ["A", "B", None]}, index=IDS)
    return frame.assign(**changes)


def run(mirror, counted, res, cur, *, enabled=True):
    memo = PlanMemo(mirror, enabled=enabled)
    planned = memo.plan("scoring", "lead", res, cur, OUTPUTS)
    memo.save()
    return planned, memo


def test_an_empty_plan_is_not_planned_again_for_the_same_inputs(counted):
    mirror = _StateMirror()
    planned, _ = run(mirror, counted, results(), held())
    assert planned is not None and planned.empty and counted == ["lead"]
    again, memo = run(mirror, counted, results(), held())
    assert again is None and memo.skipped == 1 and counted == ["lead"]  # not planned
    # The digest stays kept while the inputs hold: a third run skips too.
    third, _ = run(mirror, counted, results(), held())
    assert third is None and counted == ["lead"]


@pytest.mark.parametrize(
    "res, cur",
    [
        (results(score=[80, 56, 10]), held()),  # a result moved
        (results(), held(out_score=[80.0, 55.0, 11.0])),  # Dynamics holds another value now
        (results(), held(out_grade=["A", "B", "C"])),  # someone filled a column we clear
    ],
)
def test_a_change_of_any_input_is_planned_and_written(counted, res, cur):
    mirror = _StateMirror()
    run(mirror, counted, results(), held())
    planned, memo = run(mirror, counted, res, cur)
    assert memo.skipped == 0 and len(counted) == 2
    assert planned is not None and not planned.empty
    pd.testing.assert_frame_equal(planned, plan_table("lead", res, cur, OUTPUTS))
    # A non-empty plan is never remembered: the next run with the same inputs plans again.
    planned, _ = run(mirror, counted, res, cur)
    assert planned is not None and not planned.empty and len(counted) == 3


def test_the_digest_tells_apart_values_that_print_alike():
    base = plan_digest("lead", results(), held(), OUTPUTS)
    assert plan_digest("lead", results(grade=["A", "B", "None"]), held(), OUTPUTS) != base
    assert plan_digest("lead", results(score=[80.0, 55.0, 10.0]), held(), OUTPUTS) != base
    assert plan_digest("lead", results(), held(), [OUTPUTS[0]]) != base  # another output set
    assert plan_digest("lead", results(), held().drop(columns="out_grade"), OUTPUTS) != base
    assert plan_digest("lead", results(), held(), OUTPUTS) == base


def test_a_full_run_plans_everything(counted):
    mirror = _StateMirror()
    run(mirror, counted, results(), held())
    planned, _ = run(mirror, counted, results(), held(), enabled=False)
    assert planned is not None and planned.empty and counted == ["lead", "lead"]
