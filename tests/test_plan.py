"""The write-back plan: only values that differ from Dynamics, in the column's wire form."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from jobs.service.mapping import OutputColumn
from jobs.service.plan import add_companions, carry_forward, differs, plan_table


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


SCORE = output("score", "integer", min_value=0, max_value=100)
SHARE = output("duplicate_score", "decimal", scale=100, precision=0)
GRADE = output("grade", "string", max_length=5)
READY = output("sales_ready", "boolean")
STAMP = output("scored_on", "datetime")
OUTPUTS = [SCORE, SHARE, GRADE, READY, STAMP]


def current(**columns) -> pd.DataFrame:
    frame = pd.DataFrame(columns, index=pd.Index(["A", "B", "C"], name="lead_id"))
    return frame


def test_only_differing_values_are_planned_with_old_and_new_in_wire_form():
    results = pd.DataFrame(
        {"score": [80, 55, 101], "grade": ["A", "B", "Excellent"], "sales_ready": [True, False, True]},
        index=["A", "B", "C"],
    )
    held = current(
        out_score=pd.array([80, 54, None], dtype="Int64"),
        out_grade=["A", "B", None],
        out_sales_ready=pd.array([True, True, None], dtype="boolean"),
    )
    plan = plan_table("lead", results, held, [SCORE, GRADE, READY])
    rows = set(zip(plan["record_id"], plan["column_name"], plan["old_value"], plan["new_value"], strict=True))
    assert rows == {
        ("b", "dvs_score", 54, 55),
        ("c", "dvs_score", None, 100),  # clipped to the column's range
        ("b", "dvs_salesready", True, False),
        ("c", "dvs_salesready", None, True),
        ("c", "dvs_grade", None, "Exce…"),  # cut to the column's length
    }


def test_a_value_that_rounds_to_what_dynamics_holds_is_not_rewritten():
    results = pd.DataFrame({"duplicate_score": [0.9149, 0.5, None]}, index=["A", "B", "C"])
    held = current(out_duplicate_score=[91.0, 49.0, None])  # what the column holds: scaled, 0 decimals
    plan = plan_table("lead", results, held, [SHARE])
    assert list(zip(plan["record_id"], plan["new_value"], strict=True)) == [("b", 50.0)]


def test_records_deleted_since_and_results_not_computed_are_left_out():
    results = pd.DataFrame({"score": [10, 20]}, index=["A", "GONE"])
    held = current(out_score=pd.array([None, None, None], dtype="Int64"), out_grade=[None, None, None])
    plan = plan_table("lead", results, held, [SCORE, GRADE])
    assert list(plan["record_id"]) == ["a"] and list(plan["column_name"]) == ["dvs_score"]


def test_an_output_that_was_never_provisioned_is_not_planned():
    results = pd.DataFrame({"score": [10, 20, 30]}, index=["A", "B", "C"])
    assert plan_table("lead", results, current(out_grade=["x", "y", "z"]), [SCORE]).empty


def test_scored_on_is_written_only_beside_another_change():
    results = pd.DataFrame({"score": [80, 55, 10]}, index=["A", "B", "C"])
    held = current(out_score=pd.array([80, 54, 10], dtype="Int64"), out_scored_on=[None] * 3)
    stamp = datetime(2026, 6, 1, 12, 30, tzinfo=UTC)
    plan = add_companions(plan_table("lead", results, held, OUTPUTS), {"lead": held}, OUTPUTS, stamp)
    assert list(zip(plan["record_id"], plan["column_name"], plan["new_value"], strict=True)) == [
        ("b", "dvs_score", 55),
        ("b", "dvs_scoredon", "2026-06-01T12:30:00Z"),
    ]


def test_earlier_unwritten_items_are_retired_by_a_run_that_computed_them_and_never_written():
    earlier = pd.DataFrame(
        {
            "run_id": [1, 1, 1, 2],
            "table_name": ["lead"] * 4,
            "record_id": ["a", "b", "c", "b"],
            "column_name": ["dvs_score", "dvs_score", "dvs_score", "dvs_grade"],
            "result": ["score", "score", "score", "grade"],
            "new_value": [70, 60, 40, "B"],
            "status": ["failed", "sending", "pending", "failed"],
        }
    )
    # This run computed scores (not grades): every earlier score item is retired, whatever this
    # run plans for its record; the grade item waits for a run that computes grades.
    retired = carry_forward(earlier, {("lead", "score")})
    assert sorted(retired["record_id"]) == ["a", "b", "c"]
    assert set(retired["result"]) == {"score"}
    assert carry_forward(earlier, set()).empty


def test_differs_treats_missing_values_as_equal_only_to_each_other():
    assert list(differs([None, 1, None, 2.0, True], [None, None, 1, 2, 1])) == [
        False,
        True,
        True,
        False,
        False,
    ]


def test_a_cleared_text_value_beside_new_text_is_planned_as_none_not_nan():
    # pandas 3 reads an array of text and None as its str dtype, whose missing value is NaN; a
    # NaN cannot be sent, and the medium sandbox's 1%-changed run had 19 writes refused for it.
    results = pd.DataFrame({"grade": [None, "B", "C"]}, index=["A", "B", "C"])
    held = current(out_grade=["A", "A", "A"])
    plan = plan_table("lead", results, held, [GRADE])
    assert list(plan["new_value"]) == [None, "B", "C"]
    stamped = add_companions(plan, {"lead": held.assign(out_scored_on=None)}, [STAMP], datetime.now(UTC))
    assert [v for v in stamped["new_value"] if not (isinstance(v, str) and v.endswith("Z"))] == [
        None,
        "B",
        "C",
    ]
