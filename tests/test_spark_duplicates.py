"""Duplicate detection on Spark (local[2]) finds the pandas engine's pairs, scores and model.

The seed tables run with the shipped mappings/duplicates.toml; a synthetic table exercises the
block cap and sub-blocking (a switchboard phone shared by 300 records), a tiny one the default
model (too few pairs for EM). Records are given to pandas in id order, as the Spark engine does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_duplicates_sandbox import canonical

from connector.sandbox.seed import generate
from jobs.engines import spark_duplicates
from jobs.engines.frames import SparkTable
from jobs.engines.spark_duplicates import find_duplicates_spark
from jobs.errors import JobError
from jobs.leads.duplicates import blocking
from jobs.leads.duplicates.config import load_duplicate_config
from jobs.leads.duplicates.detect import find_duplicates
from jobs.leads.duplicates.linkage_model import comparison_patterns, fit_em

MAPPINGS = Path(__file__).resolve().parents[1] / "mappings"
# One worker runs every Spark test under xdist, so one JVM is started, not two.
pytestmark = pytest.mark.xdist_group("spark")


def _on_spark(spark, records: pd.DataFrame, id_column: str) -> SparkTable:
    frame = spark.createDataFrame(records.astype(object).where(records.notna(), None))
    return SparkTable(frame, dict.fromkeys(records.columns, "text"), id_column)


def _same(spark, records: pd.DataFrame, id_column: str, **options):
    records = records.sort_values(id_column, ignore_index=True)
    want = find_duplicates(records, id_column=id_column, report=True, **options)
    got = find_duplicates_spark(_on_spark(spark, records, id_column), id_column=id_column, **options)
    assert got.blocking == want.blocking
    assert got.model == want.model
    assert got.pairs[["id_left", "id_right"]].equals(want.pairs[["id_left", "id_right"]])
    np.testing.assert_allclose(got.pairs["score"], want.pairs["score"], rtol=0, atol=1e-6)
    assert got.pairs["evidence"].tolist() == want.pairs["evidence"].tolist()
    return want


def _flat(result) -> list[object]:
    """Every number of an EM result, for an exact comparison."""
    arrays = [*result.m, *result.u, *[a for cls in result.alternatives for a in cls]]
    return [np.concatenate(arrays).tolist(), result.prior, result.iterations, result.alternative_shares]


def test_pattern_counts_fit_the_same_model_as_the_pairs():
    rng = np.random.default_rng(3)
    match = rng.random(5000) < 0.05
    levels = np.where(match[:, None], 3, rng.integers(-1, 3, size=(5000, 4))).astype(np.int8)
    levels[rng.random(levels.shape) < 0.1] = -1
    n_levels = [4, 4, 4, 4]
    roles = ["name", "name", "personal", "shared"]
    patterns, counts = comparison_patterns(levels)
    assert len(patterns) < len(levels) / 10 and counts.sum() == len(levels)
    # Patterns in any order, split into several rows: the same counts, the same fit to the bit.
    order = rng.permutation(len(patterns))
    split = np.concatenate([patterns[order], patterns[:3]])
    weights = np.concatenate([counts[order], np.zeros(3)])
    got = fit_em(split, n_levels, counts=weights, roles=roles)
    want = fit_em(levels, n_levels, roles=roles)
    assert _flat(got) == _flat(want) and len(want.alternative_classes) == 1
    with pytest.raises(ValueError, match="one non-negative number per row"):
        comparison_patterns(levels, np.ones(3))


def test_spark_finds_the_pandas_pairs_on_the_seed(spark):
    seed = generate("small", seed=0)
    for table in ("lead", "contact", "account"):
        config = load_duplicate_config(MAPPINGS / "duplicates.toml", table)
        options = config.find_kwargs()
        want = _same(spark, canonical(seed, table), options.pop("id_column"), **options)
        assert len(want.pairs) > 20, table


@pytest.mark.parametrize("reference", [None, 100], ids=["at-its-size", "beyond-the-reference"])
def test_capped_and_sub_blocked_blocks_pair_as_pandas(spark, monkeypatch, reference):
    # 300 colleagues share the switchboard: the always-run phone pass is over its pair budget, so
    # its block is split by city, postcode, company and names, and what stays large is capped.
    # With the reference size lowered below the table, the passes are bounded as a million-record
    # table's are (smaller sub-blocks, then a narrower window), on both engines.
    if reference is not None:
        for module in (blocking, spark_duplicates):
            monkeypatch.setattr(module, "COARSE_REFERENCE_RECORDS", reference)
            monkeypatch.setattr(module, "MIN_PAIR_BUDGET", 100)
    rng = np.random.default_rng(5)
    n = 300
    first = rng.choice(["ann", "bob", "carl", "dora", "eve", "fred"], n)
    last = rng.choice(["smith", "jones", "brown", "okafor"], n)
    first[:80], last[:80] = "ann", "smith"  # 80 Ann Smiths in one city: still over the cap
    records = pd.DataFrame(
        {
            "id": [f"r{i:04d}" for i in range(n)],
            "first_name": first,
            "last_name": last,
            "email": [f"{a}.{b}{i % 40}@acme.com" for i, (a, b) in enumerate(zip(first, last, strict=True))],
            "phone": "+1 212 555 0100",
            "city": [*["Springfield"] * 80, *rng.choice(["Springfield", "Shelbyville", None], n - 80)],
        }
    )
    fields = {"first_name": "name", "last_name": "name", "email": "email", "phone": "phone", "city": "text"}
    want = _same(spark, records, "id", fields=fields)
    assert want.blocking.capped_blocks > 0 and len(want.pairs) > 0
    phone = next(p for p in want.blocking.passes if p.name == "phone")
    assert phone.largest_block < n  # sub-blocked
    if reference is not None:  # the bounds did bite: fewer pairs than the same passes unbounded
        monkeypatch.setattr(blocking, "COARSE_REFERENCE_RECORDS", 100_000)
        unbounded = find_duplicates(records, id_column="id", report=True, fields=fields)

        def kept(result):
            return sum(p.pairs for p in result.blocking.passes if not p.skipped)

        assert kept(want) < kept(unbounded)


def test_a_tiny_table_uses_the_default_model_as_pandas(spark):
    records = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d", "e"],
            "name": ["Ann Lee", "Ann  Lee", "Bob Hope", "Carl Marx", "Ann Leigh"],
            "email": ["ann@x.com", "ann@x.com", "bob@y.com", None, "ann.leigh@z.com"],
        }
    )
    want = _same(spark, records, "id", fields={"name": "name", "email": "email"})
    assert want.model.source == "default"
    records.loc[1, "id"] = "a"
    with pytest.raises(JobError, match="occur more than once"):
        find_duplicates_spark(_on_spark(spark, records, "id"), fields={"name": "name", "email": "email"})


def test_the_engine_groups_the_same_with_pairs_from_the_executors(spark):
    from jobs.engines.spark import SparkEngine
    from jobs.service.mapping import load_mappings

    accounts = canonical(generate("small", seed=0), "account").sort_values("account_id", ignore_index=True)
    outputs = {"account": load_mappings(MAPPINGS, prefix="dvs").outputs_for("account")}
    held = {o.mirror_column: None for o in outputs["account"]}  # nothing written yet
    table = _on_spark(spark, accounts.assign(**held), "account_id")
    left_out = accounts["account_id"].iloc[0]

    def prepare(frames):  # as the service leaves merged records out
        kept = frames["account"][frames["account"]["account_id"] != left_out]
        return {**frames, "account": kept.reset_index(drop=True)}, {}

    def run(on_spark_from: int):
        engine = SparkEngine(duplicates_on_spark_from=on_spark_from)
        outcome = engine.run(
            {"account": table},
            ["duplicates"],
            directory=MAPPINGS,
            model_dir=Path("unused"),
            now=None,
            outputs=outputs,
            prepare_duplicates=prepare,
        )[0]
        assert outcome.status == "ok", outcome.message
        return outcome

    driver, executors = run(10**9), run(0)
    assert (driver.details.pop("engine"), executors.details.pop("engine")) == ("driver", "spark")
    assert executors.details == driver.details and executors.message == driver.message
    got, want = executors.results["account"], driver.results["account"]
    assert len(want) > 20 and left_out not in want.index
    pd.testing.assert_frame_equal(got.sort_index(), want.sort_index())
