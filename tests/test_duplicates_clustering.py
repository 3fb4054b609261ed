import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError
from jobs.leads.duplicates.clustering import CLUSTER_COLUMNS, cluster


def pairs(*edges):
    return pd.DataFrame(edges, columns=["id_left", "id_right", "score"])


def groups_of(frame):
    return sorted(sorted(g) for g in frame.groupby("cluster_id")["record_id"].agg(list))


def test_pairs_and_triangles_become_groups():
    result = cluster(pairs(("a", "b", 0.99), ("x", "y", 0.98), ("y", "z", 0.97), ("x", "z", 0.96)))
    assert list(result.columns) == CLUSTER_COLUMNS
    assert groups_of(result) == [["a", "b"], ["x", "y", "z"]]
    triangle = result[result["record_id"] == "x"].iloc[0]
    assert triangle["cluster_size"] == 3
    assert triangle["cohesion"] == pytest.approx((0.98 + 0.97 + 0.96) / 3)
    assert triangle["cluster_id"] == 0  # largest group first


def test_a_long_chain_of_weak_links_is_split():
    # a-b-c-d-e-f: each record only like its neighbour; together they are not one entity.
    chain = pairs(("a", "b", 0.9), ("b", "c", 0.6), ("c", "d", 0.95), ("d", "e", 0.55), ("e", "f", 0.9))
    result = cluster(chain)
    # cohesion of the whole chain: 3.9 / 15 = 0.26; the weakest links (0.55, then 0.6) are cut.
    assert groups_of(result) == [["a", "b"], ["c", "d"], ["e", "f"]]


def test_a_weak_bridge_between_two_strong_groups_is_cut():
    strong = [("a", "b", 0.99), ("b", "c", 0.99), ("a", "c", 0.99), ("x", "y", 0.99)]
    strong += [("y", "z", 0.99), ("x", "z", 0.99)]
    result = cluster(pairs(*strong, ("c", "x", 0.51)))
    assert groups_of(result) == [["a", "b", "c"], ["x", "y", "z"]]
    assert (result["cohesion"] > 0.98).all()


def test_min_cohesion_zero_keeps_connected_components():
    chain = pairs(("a", "b", 0.9), ("b", "c", 0.6), ("c", "d", 0.95))
    assert groups_of(cluster(chain, min_cohesion=0.0)) == [["a", "b", "c", "d"]]


def test_threshold_drops_weak_pairs_first():
    result = cluster(pairs(("a", "b", 0.9), ("c", "d", 0.4)), threshold=0.5)
    assert groups_of(result) == [["a", "b"]]


def test_master_is_the_most_complete_record_by_default_order():
    records = pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "email": ["a@x.com", None, "c@x.com"],
            "phone": [None, None, "123"],
            "modified_on": ["2024-01-01", "2025-06-01", "2023-01-01"],
        }
    )
    result = cluster(
        pairs(("a", "b", 0.9), ("b", "c", 0.9), ("a", "c", 0.9)), records=records, id_column="id"
    )
    assert set(result["master_id"]) == {"c"}
    assert result.set_index("record_id")["is_master"].to_dict() == {"a": False, "b": False, "c": True}


def test_master_preferences_are_configurable():
    records = pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "order_count": [0, 3, 0],
            "email": ["a@x.com", None, "c@x.com"],
            "created_on": pd.to_datetime(["2020-01-01", "2022-01-01", "2019-01-01"]),
            "modified_on": pd.to_datetime(["2024-01-01", "2025-06-01", "2023-01-01"]),
        }
    )
    edges = pairs(("a", "b", 0.9), ("b", "c", 0.9), ("a", "c", 0.9))
    by_orders = cluster(edges, records=records, id_column="id", master_by=["order_count", "completeness"])
    assert set(by_orders["master_id"]) == {"b"}
    most_recent = cluster(edges, records=records, id_column="id", master_by=["modified_on"])
    assert set(most_recent["master_id"]) == {"b"}
    oldest = cluster(edges, records=records, id_column="id", master_by=["-created_on"])
    assert set(oldest["master_id"]) == {"c"}


def test_ties_go_to_the_smallest_id():
    result = cluster(pairs(("b", "a", 0.9)))
    assert set(result["master_id"]) == {"a"}


def test_no_pairs_gives_an_empty_frame():
    assert list(cluster(pairs()).columns) == CLUSTER_COLUMNS
    assert cluster(pairs()).empty


def test_bad_master_preference_names_the_column():
    records = pd.DataFrame({"id": ["a", "b"], "modified_on": ["2024-01-01", "2024-02-01"]})
    with pytest.raises(ConfigError, match=r"'modifed_on' is neither.*did you mean 'modified_on'"):
        cluster(pairs(("a", "b", 0.9)), records=records, id_column="id", master_by=["modifed_on"])


def test_pairs_without_the_expected_columns_are_refused():
    with pytest.raises(ConfigError, match="pairs lack column"):
        cluster(pd.DataFrame({"a": [1]}))


def test_a_set_of_identical_records_of_any_size_is_one_group():
    # 300 identical leads: blocking pairs each only with its 49 neighbours in the sorted block, so
    # as plain records they look like a loose chain (cohesion 0.32) and used to be split to nothing.
    ids = [f"r{i:03d}" for i in range(300)]
    window = [(ids[i], ids[j], 1.0) for i in range(300) for j in range(i + 1, min(i + 50, 300))]
    result = cluster(pairs(*window, ("r000", "other", 0.7)))
    assert groups_of(result) == [sorted([*ids, "other"])]
    assert result["cluster_size"].iloc[0] == 301


def test_certain_sets_joined_by_a_weak_link_stay_apart():
    left = [(f"a{i}", f"a{j}", 1.0) for i in range(5) for j in range(i + 1, 5)]
    right = [(f"b{i}", f"b{j}", 1.0) for i in range(5) for j in range(i + 1, 5)]
    tail = [("b0", "c", 0.55), ("c", "d", 0.55), ("d", "e", 0.55)]
    result = cluster(pairs(*left, *right, ("a0", "b0", 0.6), *tail))
    assert groups_of(result) == [[f"a{i}" for i in range(5)], [f"b{i}" for i in range(5)]]


def test_groups_order_alike_whatever_the_id_storage():
    """Groups of equal size are ordered by their smallest id: pyarrow-backed and Python ids agree
    (non-ASCII ids included, which pyarrow compares as UTF-8 bytes)."""
    rng = np.random.default_rng(5)
    names = [f"{p}{i:03d}" for i, p in enumerate(rng.choice(["a", "B", "é", "z", "Ω"], 120))]
    left = rng.choice(names, 90)
    right = rng.choice(names, 90)
    scores = rng.uniform(0.8, 1.0, 90)
    frames = [
        cluster(
            pd.DataFrame(
                {
                    "id_left": pd.Series(left, dtype=dtype),
                    "id_right": pd.Series(right, dtype=dtype),
                    "score": scores,
                }
            )
        )
        for dtype in (object, "str")
    ]
    assert len(frames[0]) > 10
    pd.testing.assert_frame_equal(
        frames[0].astype({"record_id": object, "master_id": object}),
        frames[1].astype({"record_id": object, "master_id": object}),
    )
