"""The duplicates job's results are reused only when Dynamics holds the masters they suggest."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from jobs.service.compute import JobOutcome
from jobs.service.incremental import masters_held

MIRROR = SimpleNamespace(layouts=lambda: {"lead": SimpleNamespace(id_column="lead_id")})


def _outcome() -> JobOutcome:
    results = pd.DataFrame(
        {"duplicate_group": ["DUP-A", "DUP-A", None], "suggested_master": ["a", "a", None]},
        index=pd.Index(["a", "b", "c"]),
    )
    return JobOutcome("duplicates", results={"lead": results})


def _leads(held: list[object]) -> dict[str, pd.DataFrame]:
    return {"lead": pd.DataFrame({"lead_id": ["A", "B", "C"], "out_suggested_master": held})}


def test_masters_held_only_when_every_grouped_record_shows_its_master() -> None:
    assert masters_held(MIRROR, _outcome(), _leads(["A", "a", None]))  # case does not matter
    assert masters_held(MIRROR, _outcome(), _leads(["a", "a", "b"]))  # an ungrouped record's claim is moot
    assert not masters_held(MIRROR, _outcome(), _leads(["a", "b", None]))  # a person chose another master
    assert not masters_held(MIRROR, _outcome(), _leads(["a", None, None]))  # not written yet
    # No suggested-master column mirrored: the job read no held master, nothing to follow.
    assert masters_held(MIRROR, _outcome(), {"lead": pd.DataFrame({"lead_id": ["A", "B", "C"]})})
