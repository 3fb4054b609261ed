"""Which duplicates get merged: policy, people's decisions, remembered "not a duplicate", the cap.

Pure functions over DataFrames; the service (``jobs.service.merge``) reads the mirror, calls these
and sends the merges.

Frames used here:

- ``pairs``: ``id_left``, ``id_right``, ``score`` (``find_duplicates`` output);
- ``found``: index = record id, ``duplicate_group``, ``duplicate_score``, ``suggested_master``
  (``jobs.service.compute.duplicate_groups`` output);
- ``memory``: ``id_a``, ``id_b``, ``decision`` (``not_duplicate`` or ``keep_both``): pairs a person
  ruled on, kept by dvsync across runs and model retrains;
- ``state``: index = record id, ``fingerprint``, ``changed_on``: the group each record was last seen
  in and when that group last changed (see :func:`refresh_state`).

A decision is made on a record in Dynamics ("Duplicate decision" column) against the suggested
master Dynamics shows. It is carried out only while it still means what the person saw: the record
is still grouped with that master and its group (members, master and their compared fields) has
not changed since the decision (the group's ``changed_on`` is not after the record's own
``modified_on``, which setting the decision updated). Otherwise it is *stale* and re-queued.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from jobs.leads.duplicates.merge_config import MergeConfig
from jobs.leads.duplicates.normalize import normalize_email, normalize_phone, normalize_text

__all__ = [
    "DECISIONS",
    "STATUS_LABELS",
    "apply_cap",
    "drop_pairs",
    "duplicate_status",
    "evaluate_decisions",
    "group_fingerprints",
    "merge_candidates",
    "refresh_state",
]

DECISIONS = ("merge", "not_duplicate", "keep_both")
CANDIDATE_COLUMNS = ["group", "master_id", "subordinate_id", "reason", "score"]
DECISION_COLUMNS = ["record_id", "decision", "master_id", "action", "why"]


def _key(a: pd.Series, b: pd.Series) -> pd.Series:
    """An order-free key for a pair of ids."""
    a, b = a.astype(str).str.lower(), b.astype(str).str.lower()
    return a.where(a < b, b) + "|" + b.where(a < b, a)


def drop_pairs(
    pairs: pd.DataFrame, memory: pd.DataFrame | None, decision: str = "not_duplicate"
) -> pd.DataFrame:
    """Remove the pairs a person marked ``decision`` (default "not a duplicate") from ``pairs``."""
    if memory is None or memory.empty or pairs.empty:
        return pairs
    ruled = memory[memory["decision"] == decision]
    blocked = set(_key(ruled["id_a"], ruled["id_b"]))
    keep = ~_key(pairs["id_left"], pairs["id_right"]).isin(blocked)
    return pairs[keep.to_numpy()].reset_index(drop=True)


def group_fingerprints(
    found: pd.DataFrame, records: pd.DataFrame, id_column: str, fields: Sequence[str]
) -> pd.Series:
    """A fingerprint per grouped record of its group: members, master and their compared fields."""
    if found.empty:
        return pd.Series(dtype=object)
    values = records.assign(_id=records[id_column].astype(str).str.lower()).set_index("_id")
    values = values[values.index.isin(found.index)]  # only grouped records need a fingerprint
    present = [f for f in fields if f in values.columns]
    text = values[present].astype("string").fillna("").agg("\x1f".join, axis=1) if present else None
    groups = found.groupby("duplicate_group")
    out: dict[str, str] = {}
    for _, members in groups:
        ids = sorted(members.index.astype(str))
        master = str(members["suggested_master"].iloc[0])
        body = "\x1e".join(f"{i}={text.get(i, '') if text is not None else ''}" for i in ids)
        digest = hashlib.sha1(f"{master}\x1d{body}".encode()).hexdigest()
        for i in ids:
            out[i] = digest
    return pd.Series(out, dtype=object)


def refresh_state(
    previous: pd.DataFrame, fingerprints: pd.Series, found: pd.DataFrame, modified_on: pd.Series
) -> pd.DataFrame:
    """Update when each record's group last changed.

    A record whose group fingerprint is unchanged keeps its ``changed_on``; a new or changed group
    gets the latest ``modified_on`` of its members (Dataverse's own clock, so it compares with the
    ``modified_on`` of a decision). Records in no group are dropped.
    """
    if fingerprints.empty:
        return pd.DataFrame({"fingerprint": [], "changed_on": []}, index=pd.Index([], dtype=object))
    modified = pd.to_datetime(modified_on, utc=True, errors="coerce")
    modified.index = modified.index.astype(str).str.lower()
    group_of = found["duplicate_group"].reindex(fingerprints.index)
    latest = modified.reindex(fingerprints.index).groupby(group_of).max()
    new_changed = group_of.map(latest)
    old = previous.reindex(fingerprints.index) if not previous.empty else None
    same = (
        old["fingerprint"].eq(fingerprints).fillna(False).to_numpy()
        if old is not None
        else np.zeros(len(fingerprints), bool)
    )
    changed = pd.to_datetime(new_changed, utc=True)
    if old is not None:
        kept = pd.to_datetime(old["changed_on"], utc=True, errors="coerce")
        changed = changed.where(~same, kept)
    return pd.DataFrame({"fingerprint": fingerprints, "changed_on": changed}, index=fingerprints.index)


def evaluate_decisions(
    decisions: pd.DataFrame,
    found: pd.DataFrame,
    state: pd.DataFrame,
    memory: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Decide what to do with each decision read from Dynamics.

    Args:
        decisions: ``record_id``, ``decision`` (one of :data:`DECISIONS`), ``held_master`` (the
            suggested master Dynamics shows on the record) and ``modified_on`` (the record's).
        found: this run's groups.
        state: :func:`refresh_state` output.
        memory: the pairs already ruled on (so a decision already carried out is ``done``).

    Returns:
        ``record_id``, ``decision``, ``master_id``, ``action`` (``merge``, ``not_duplicate``,
        ``keep_both``, ``stale`` or ``done``) and ``why``.
    """
    rows: list[dict] = []
    remembered = set()
    if memory is not None and not memory.empty:
        remembered = set(_key(memory["id_a"], memory["id_b"]) + "|" + memory["decision"])
    for item in decisions.itertuples(index=False):
        record = str(item.record_id).lower()
        held = str(item.held_master).lower() if isinstance(item.held_master, str) and item.held_master else ""
        row = {"record_id": record, "decision": item.decision, "master_id": held}
        key = "|".join(sorted((record, held))) + f"|{item.decision}"
        if item.decision != "merge" and held and key in remembered:
            rows.append({**row, "action": "done", "why": "already recorded"})
            continue
        if not held:
            rows.append({**row, "action": "stale", "why": "no suggested master was shown on the record"})
            continue
        if record not in found.index:
            rows.append({**row, "action": "stale", "why": "the record is no longer in a duplicate group"})
            continue
        current = str(found.at[record, "suggested_master"]).lower()
        if current != held:
            rows.append(
                {**row, "action": "stale", "why": f"the suggested master changed from {held} to {current}"}
            )
            continue
        changed = state["changed_on"].get(record) if not state.empty else None
        decided = pd.to_datetime(item.modified_on, utc=True, errors="coerce")
        if changed is None or pd.isna(changed) or pd.isna(decided) or changed > decided:
            rows.append({**row, "action": "stale", "why": "the group changed after the decision was made"})
            continue
        rows.append({**row, "action": item.decision, "why": "decided in Dynamics"})
    return pd.DataFrame(rows, columns=DECISION_COLUMNS)


def _same_any(
    records: pd.DataFrame, left: pd.Series, right: pd.Series, fields: Iterable[str], region: str
) -> np.ndarray:
    """Whether each pair has an equal, non-empty normalised value in at least one of ``fields``."""
    result = np.zeros(len(left), bool)
    fields = [f for f in fields if f in records.columns]
    if not fields:
        return np.ones(len(left), bool)
    records = records[records.index.isin(set(left) | set(right))]  # normalise only the pairs' records
    for name in fields:
        column = records[name]
        if "mail" in name:
            normal = normalize_email(column)
        elif "phone" in name:
            normal = normalize_phone(column, region)
        else:
            normal = normalize_text(column)
        a = left.map(normal).astype("string")
        b = right.map(normal).astype("string")
        result |= (a.eq(b) & a.str.len().gt(0)).fillna(False).to_numpy()
    return result


def merge_candidates(
    found: pd.DataFrame,
    pairs: pd.DataFrame,
    records: pd.DataFrame,
    config: MergeConfig,
    *,
    id_column: str,
    decided: pd.DataFrame | None = None,
    memory: pd.DataFrame | None = None,
    phone_region: str = "US",
    excluded: Iterable[str] = (),
) -> pd.DataFrame:
    """The merges this run may make: decided ones, and policy ones when ``auto_merge`` is on.

    A policy merge needs a direct pair between the duplicate and its group's master scoring at least
    ``merge_threshold`` and, when ``require_same`` names fields, the same value in one of them.
    A decision "merge" on a duplicate merges it into its master; on the master itself, it merges
    every other member of the group. Pairs ruled "keep both" or "not a duplicate" never merge.

    Returns:
        ``group``, ``master_id``, ``subordinate_id``, ``reason`` (``decision`` / ``policy``), ``score``.
    """
    if found.empty:
        return pd.DataFrame(columns=CANDIDATE_COLUMNS)
    excluded = {str(x).lower() for x in excluded}
    members = found.assign(record_id=found.index.astype(str).str.lower())
    members["master_id"] = members["suggested_master"].astype(str).str.lower()
    members = members[members["record_id"] != members["master_id"]]
    members = members[~members["record_id"].isin(excluded) & ~members["master_id"].isin(excluded)]
    score_of: dict[str, float] = {}
    if not pairs.empty:
        keys = _key(pairs["id_left"], pairs["id_right"])
        score_of = dict(zip(keys, pairs["score"].astype(float), strict=True))
    pair_keys = _key(members["record_id"], members["master_id"])
    members["score"] = pair_keys.map(score_of).astype(float)
    ruled: set[str] = set()
    if memory is not None and not memory.empty:
        ruled = set(_key(memory["id_a"], memory["id_b"]))
    members = members[~pair_keys.isin(ruled).to_numpy()]
    pair_keys = _key(members["record_id"], members["master_id"])
    reason = pd.Series(None, index=members.index, dtype=object)
    if decided is not None and not decided.empty:
        approve = decided[decided["action"] == "merge"]
        direct = set(approve["record_id"])
        whole = set(approve.loc[approve["record_id"] == approve["master_id"], "record_id"])
        by_decision = members["record_id"].isin(direct) | members["master_id"].isin(whole)
        reason = reason.where(~by_decision, "decision")
    if config.auto_merge:
        indexed = records.assign(_id=records[id_column].astype(str).str.lower()).set_index("_id")
        same = _same_any(
            indexed, members["record_id"], members["master_id"], config.require_same, phone_region
        )
        policy = members["score"].ge(config.merge_threshold).fillna(False).to_numpy() & same
        reason = reason.where(reason.notna() | ~policy, "policy")
    chosen = members[reason.notna().to_numpy()]
    return pd.DataFrame(
        {
            "group": chosen["duplicate_group"].astype(object),
            "master_id": chosen["master_id"],
            "subordinate_id": chosen["record_id"],
            "reason": reason[reason.notna()].astype(object),
            "score": chosen["score"],
        }
    ).reset_index(drop=True)[CANDIDATE_COLUMNS]


STATUS_LABELS = {
    "master": "Suggested master",
    "review": "Possible duplicate",
    "merge": "Will be merged",
}
"""What the "Duplicate Status" column says: the master of a group; a record in the review band,
for a person to decide; a record the merge policy will merge on the next merge run."""


def duplicate_status(
    found: pd.DataFrame,
    pairs: pd.DataFrame,
    records: pd.DataFrame,
    config: MergeConfig,
    *,
    id_column: str,
    phone_region: str = "US",
    memory: pd.DataFrame | None = None,
) -> pd.Series:
    """The status of each grouped record (index as ``found``): see :data:`STATUS_LABELS`."""
    status = pd.Series(STATUS_LABELS["review"], index=found.index, dtype=object)
    if found.empty:
        return status
    masters = found.index.astype(str).str.lower() == found["suggested_master"].astype(str).str.lower()
    status[masters] = STATUS_LABELS["master"]
    if config.auto_merge:
        policy = merge_candidates(
            found, pairs, records, config, id_column=id_column, memory=memory, phone_region=phone_region
        )
        status[status.index.isin(set(policy["subordinate_id"]))] = STATUS_LABELS["merge"]
    return status


def apply_cap(candidates: pd.DataFrame, cap: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep whole groups, decided ones first then the surest, up to ``cap`` records merged away.

    Returns:
        (the merges to make now, the merges held back for a later run).
    """
    if candidates.empty:
        return candidates, candidates
    order = candidates.assign(
        _decided=candidates["reason"].eq("decision"),
        _best=candidates.groupby("group")["score"].transform("max").fillna(0.0),
    )
    sizes = order.groupby("group").size()
    rank = (
        order.groupby("group")[["_decided", "_best"]]
        .max()
        .sort_values(["_decided", "_best"], ascending=False, kind="stable")
    )
    taken: list[str] = []
    used = 0
    for group in rank.index:
        if used + int(sizes[group]) > cap:
            continue
        taken.append(group)
        used += int(sizes[group])
    now = candidates["group"].isin(taken)
    return candidates[now.to_numpy()].reset_index(drop=True), candidates[~now.to_numpy()].reset_index(
        drop=True
    )
