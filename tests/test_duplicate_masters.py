"""The sticky master of a duplicate group: the master most members hold, ties to the first named."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jobs.service.compute import _most_held, duplicate_groups


@pytest.mark.parametrize("dtype", [object, "str"])
def test_most_held_equals_the_per_group_value_counts_it_replaces(dtype):
    rng = np.random.default_rng(13)
    for _ in range(20):
        size = int(rng.integers(1, 60))
        valid = pd.DataFrame(
            {
                "cluster_id": rng.integers(0, 8, size),
                # few distinct masters per group: counts tie often
                "held": pd.Series([f"m{v}" for v in rng.integers(0, 4, size)], dtype=dtype),
            }
        )
        expected = valid.groupby("cluster_id")["held"].agg(lambda s: s.value_counts().index[0])
        got = _most_held(valid).sort_index()
        assert got.to_dict() == expected.to_dict()


def test_a_held_master_still_in_its_group_stays():
    groups = pd.DataFrame(
        {"record_id": ["a", "b", "c"], "cluster_id": [1, 1, 1], "master_id": ["a", "a", "a"]}
    )
    pairs = pd.DataFrame({"id_left": ["a", "a"], "id_right": ["b", "c"], "score": [0.9, 0.8]})
    held = pd.Series(["c", "c", "b"], index=["A", "B", "C"])
    found = duplicate_groups(pairs, groups, held)
    assert set(found["suggested_master"]) == {"c"}
    # A held master that left the group is not kept: the clustering's master stands.
    gone = duplicate_groups(pairs, groups, pd.Series(["z", "z", "z"], index=["a", "b", "c"]))
    assert set(gone["suggested_master"]) == {"a"}
