"""A person's duplicate decision made outside Dynamics (the admin console): what it will do, and recording it.

The decisions are the ones Dynamics users make in the "Duplicate decision" column, kept in the
mirror's ``merge_memory`` (:mod:`jobs.service.merge_store`), which no sync touches:

- ``merge``: approve merging the record into its group's suggested master. The next merge run
  (``dvsync merge --no-dry-run`` or the ``merge`` job) carries it out, if that master is still the
  suggested one (otherwise the approval is stale and dropped, as issue 12 rules).
- ``not_duplicate`` / ``keep_both``: the record is ruled against every other member of its group,
  exactly as :func:`jobs.service.merge._record_rulings` does for a decision read from Dynamics, so a
  third record cannot chain it back into the group. "Not a duplicate" pairs are never suggested
  again (the next duplicates run leaves them out, also after the model retrains); "keep both"
  pairs stay grouped but are never merged.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from core.errors import ConfigError
from jobs.leads.duplicates.config import load_duplicate_config
from jobs.leads.duplicates.merge_config import load_merge_config
from jobs.service import merge_store
from jobs.service.mapping import MappingSet
from jobs.service.merge_preview import merge_rows
from jobs.service.mirror import Mirror

__all__ = ["DECISION_LABELS", "decide", "merge_confirmation"]

DECISION_LABELS = {
    "merge": "Approve merge into the suggested master",
    "not_duplicate": "Not a duplicate",
    "keep_both": "Keep both",
}


def decide(
    mirror: Mirror,
    table: str,
    record_id: str,
    master_id: str,
    members: Sequence[str],
    decision: str,
    *,
    source: str,
) -> list[tuple[str, str]]:
    """Record ``decision`` on ``record_id`` of a group whose suggested master is ``master_id``.

    Args:
        mirror: the open mirror (a connection that may write).
        table: ``lead``, ``contact`` or ``account``.
        record_id: the subordinate record decided on.
        master_id: its group's suggested master.
        members: every record of the group (the master included).
        decision: ``merge``, ``not_duplicate`` or ``keep_both``.
        source: who decided, e.g. ``console:<user>``.

    Returns:
        The pairs recorded, (record, other).

    Raises:
        ConfigError: an unknown decision, the master itself, or a record not in the group.
    """
    record, master = str(record_id).lower(), str(master_id).lower()
    group = [str(m).lower() for m in members]
    if record not in group or master not in group:
        raise ConfigError(
            f"{table} {record_id} is not in this duplicate group (anymore)",
            hint="reload the group: a run may have regrouped the records",
        )
    if decision not in merge_store.DECISIONS:
        raise ConfigError(
            f"unknown duplicate decision `{decision}`", hint=f"use one of {', '.join(merge_store.DECISIONS)}"
        )
    if record == master:
        raise ConfigError(
            "the suggested master cannot be merged into itself", hint="decide on the other records"
        )
    others = [master] if decision == "merge" else [m for m in group if m != record]
    with mirror.transaction():  # all pairs or none
        for other in others:
            merge_store.record_decision(mirror, table, record, other, decision, source=source)
    return [(record, other) for other in others]


def merge_confirmation(
    mirror: Mirror,
    mappings: MappingSet,
    config_path: Path,
    table: str,
    records: pd.DataFrame,
    *,
    group: str,
    record_id: str,
    master_id: str,
    score: float | None = None,
    counts: list[tuple[str, pd.Series]] | None = None,
) -> dict[str, Any]:
    """What merging ``record_id`` into ``master_id`` would do, as the merge run's dry run shows it.

    Args:
        mirror: the open mirror.
        mappings: the mapping set (which fields UpdateContent may carry).
        config_path: ``mappings/duplicates.toml`` (compared fields, survivorship rules).
        table: ``lead``, ``contact`` or ``account``.
        records: the table's mirrored records with ``_modifiedon`` (``read_frame(include_system=True)``).
        group: the duplicate group code.
        record_id: the record that would be merged away.
        master_id: the record that survives.
        score: the pair's match score, shown beside it.
        counts: child-record counts (:func:`jobs.service.merge_preview.child_counts`), if known.

    Returns:
        ``fields`` (per compared field: ``master``, ``subordinate``, ``after``, ``changes``),
        ``master_changes`` (text), ``update_content`` and ``children_moving``.

    Raises:
        ConfigError: a mistake in ``duplicates.toml``.
    """
    config = load_duplicate_config(config_path, table)
    policy = load_merge_config(config_path, table, tuple(config.fields))
    id_column = config.id_column
    ids = records[id_column].astype(str).str.lower()
    pair = records[ids.isin({str(record_id).lower(), str(master_id).lower()}).to_numpy()].copy()
    pair[id_column] = pair[id_column].astype(str).str.lower()
    taken = pd.DataFrame(
        [
            {
                "group": group,
                "master_id": str(master_id).lower(),
                "subordinate_id": str(record_id).lower(),
                "reason": "decision",
                "score": score,
            }
        ]
    )
    fields = list(config.fields)
    row = merge_rows(
        mirror, mappings, table, pair, id_column, taken, policy.fields, fields, counts=counts
    ).iloc[0]
    changes: dict[str, Any] = row["_update_content"] or {}
    shown = []
    for name in fields:
        master_value, sub_value = row.get(f"master.{name}"), row.get(f"subordinate.{name}")
        shown.append(
            {
                "field": name,
                "master": _plain(master_value),
                "subordinate": _plain(sub_value),
                "after": _plain(changes[name]) if name in changes else _plain(master_value),
                "changes": name in changes,
            }
        )
    return {
        "fields": shown,
        "master_changes": row["master_changes"],
        "update_content": {k: _plain(v) for k, v in changes.items()},
        "children_moving": row["children_moving"] or "none",
        "rules": dict(policy.fields),
    }


def _plain(value: Any) -> Any:
    if value is None:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value.item() if hasattr(value, "item") else value
