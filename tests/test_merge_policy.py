"""Merge policy, survivorship and the merge band's configuration, as pure functions."""

from __future__ import annotations

import pandas as pd
import pytest

from core.errors import ConfigError
from jobs.leads.duplicates.merge_config import load_merge_config
from jobs.leads.duplicates.merge_policy import (
    apply_cap,
    drop_pairs,
    duplicate_status,
    evaluate_decisions,
    group_fingerprints,
    merge_candidates,
    refresh_state,
)
from jobs.leads.duplicates.survivorship import survivorship_columns, update_content

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def _found(groups: dict[str, tuple[str, list[str]]]) -> pd.DataFrame:
    rows = [(m, code, master) for code, (master, members) in groups.items() for m in members]
    frame = pd.DataFrame(rows, columns=["id", "duplicate_group", "suggested_master"]).set_index("id")
    return frame.assign(duplicate_score=0.9)


RECORDS = pd.DataFrame(
    {
        "contact_id": ["a", "b", "c", "d", "e"],
        "email": ["x@y.com", "X@Y.com", "z@y.com", "q@y.com", None],
        "phone": [None, None, "+44 20 7946 0000", "+442079460000", None],
    }
)
PAIRS = pd.DataFrame(
    {"id_left": ["a", "c", "a"], "id_right": ["b", "d", "e"], "score": [0.995, 0.999, 0.999]}
)
FOUND = _found({"G1": ("a", ["a", "b", "e"]), "G2": ("c", ["c", "d"])})


def test_policy_needs_the_band_and_a_shared_value_and_is_off_by_default(tmp_path):
    path = tmp_path / "d.toml"
    path.write_text("[contact.merge]\nauto_merge = true\n")
    on = load_merge_config(path, "contact", ("email", "phone"))
    got = merge_candidates(FOUND, PAIRS, RECORDS, on, id_column="contact_id")
    # b shares a (case-folded) e-mail with a; d shares an E.164 phone with c; e shares nothing.
    assert sorted(zip(got["master_id"], got["subordinate_id"], strict=True)) == [("a", "b"), ("c", "d")]
    assert set(got["reason"]) == {"policy"}
    status = duplicate_status(FOUND, PAIRS, RECORDS, on, id_column="contact_id")
    assert status.to_dict() == {
        "a": "Suggested master",
        "b": "Will be merged",
        "e": "Possible duplicate",
        "c": "Suggested master",
        "d": "Will be merged",
    }
    path.write_text("[contact]\n")
    off = load_merge_config(path, "contact", ("email", "phone"))
    assert not off.auto_merge and merge_candidates(FOUND, PAIRS, RECORDS, off, id_column="contact_id").empty
    assert set(duplicate_status(FOUND, PAIRS, RECORDS, off, id_column="contact_id")) == {
        "Suggested master",
        "Possible duplicate",
    }


def test_decisions_merge_and_memory_blocks(tmp_path):
    path = tmp_path / "d.toml"
    path.write_text("[contact]\n")
    config = load_merge_config(path, "contact")
    decided = pd.DataFrame(
        {
            "record_id": ["e", "c"],
            "decision": ["merge"] * 2,
            "master_id": ["a", "c"],
            "action": ["merge"] * 2,
            "why": "",
        }
    )
    got = merge_candidates(FOUND, PAIRS, RECORDS, config, id_column="contact_id", decided=decided)
    # e merges into a; the decision on master c takes its whole group.
    assert sorted(zip(got["master_id"], got["subordinate_id"], strict=True)) == [("a", "e"), ("c", "d")]
    memory = pd.DataFrame({"id_a": ["a"], "id_b": ["e"], "decision": ["keep_both"]})
    kept = merge_candidates(
        FOUND, PAIRS, RECORDS, config, id_column="contact_id", decided=decided, memory=memory
    )
    assert list(kept["subordinate_id"]) == ["d"]
    assert len(drop_pairs(PAIRS, memory.assign(decision="not_duplicate"))) == 2


def test_stale_when_master_or_group_changed_after_the_decision():
    fp = group_fingerprints(FOUND, RECORDS, "contact_id", ["email", "phone"])
    modified = pd.Series([T0] * 5, index=list("abcde"))
    state = refresh_state(pd.DataFrame(), fp, FOUND, modified)
    later = T0 + pd.Timedelta(hours=1)
    decisions = pd.DataFrame(
        {
            "record_id": ["b", "e", "d"],
            "decision": ["merge", "merge", "not_duplicate"],
            "held_master": ["a", "c", "c"],
            "modified_on": [later, later, later],
        }
    )
    got = evaluate_decisions(decisions, FOUND, state).set_index("record_id")
    assert got.loc["b", "action"] == "merge" and got.loc["d", "action"] == "not_duplicate"
    assert got.loc["e", "action"] == "stale" and "master changed" in got.loc["e", "why"]
    # The master's e-mail is edited after the decisions: its group's fingerprint moves on.
    edited = RECORDS.assign(email=["new@y.com", *RECORDS["email"][1:]])
    moved = refresh_state(
        state,
        group_fingerprints(FOUND, edited, "contact_id", ["email"]),
        FOUND,
        modified.replace(T0, later + pd.Timedelta(1, "h")),
    )
    assert evaluate_decisions(decisions, FOUND, moved).set_index("record_id").loc["b", "action"] == "stale"
    same = refresh_state(state, fp, FOUND, modified + pd.Timedelta(days=1))  # only our own write-backs
    assert evaluate_decisions(decisions, FOUND, same).set_index("record_id").loc["b", "action"] == "merge"


def test_cap_takes_whole_groups_decided_first():
    candidates = pd.DataFrame(
        {
            "group": ["G1", "G1", "G2", "G3"],
            "master_id": ["a", "a", "c", "f"],
            "subordinate_id": ["b", "e", "d", "g"],
            "reason": ["policy", "policy", "decision", "policy"],
            "score": [0.999, 0.998, 0.5, 0.9995],
        }
    )
    now, later = apply_cap(candidates, 2)
    assert list(now["group"]) == ["G2", "G3"] and set(later["group"]) == {"G1"}


def test_survivorship_columns_and_update_content():
    orders = pd.DataFrame({"customer_id": ["A", "a", "b"]})
    records = pd.DataFrame({"contact_id": ["a", "b", "c"]})
    assert list(
        survivorship_columns("contact", records, id_column="contact_id", orders=orders)["order_count"]
    ) == [
        2,
        1,
        0,
    ]
    master = {"phone": None, "city": "Leeds", "street": "1 Hi St", "modified_on": T0}
    dupes = [
        {
            "phone": "+1 555",
            "city": "York",
            "street": "1 High Street",
            "modified_on": T0 + pd.Timedelta(1, "D"),
        },
        {"phone": "+1 666", "city": None, "street": None, "modified_on": T0 - pd.Timedelta(1, "D")},
    ]
    rules = {"city": "newest", "street": "longest"}
    assert update_content(master, dupes, ["phone", "city", "street"], rules) == {
        "phone": "+1 555",
        "city": "York",
        "street": "1 High Street",
    }
    assert update_content(master, dupes, ["city"], {"city": "master"}) == {}


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[lead.merge]\nauto_merj = true\n", "lead.merge.auto_merj"),
        ("[lead.merge]\nmerge_threshold = 1.5\n", "lead.merge.merge_threshold"),
        ('[lead.merge]\nrequire_same = ["emial"]\n', "lead.merge.require_same"),
        ('[lead.merge.fields]\nemail = "loudest"\n', "lead.merge.fields.email"),
        ("[lead.merge]\nmax_per_run = -1\n", "lead.merge.max_per_run"),
    ],
)
def test_merge_config_mistakes_name_the_line_and_key(tmp_path, text, key):
    path = tmp_path / "duplicates.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_merge_config(path, "lead", ("email", "phone"))
    assert caught.value.key == key and "duplicates.toml:" in str(caught.value)
