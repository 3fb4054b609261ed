"""What dvsync remembers about merges, in the mirror: decisions, group state, and the merge audit.

Three tables, created on first use (``CREATE TABLE IF NOT EXISTS``: additive, so an older mirror
simply gains them and the schema migrations other features append stay untouched):

=====================  ========================================================================
``merge_memory``       pairs a person ruled on: ``not_duplicate`` (never suggested again, also
                       after the model retrains), ``keep_both`` (never merged) or ``merge``
                       (approved, e.g. from the console; carried out by the next merge run).
``merge_state``        per grouped record: the fingerprint of its group and when it last changed
                       (see ``jobs.leads.duplicates.merge_policy.refresh_state``).
``merge_audit``        every merge dvsync attempted: run, group, master, duplicate, why, score,
                       the before-images of both records, the UpdateContent sent, the outcome.
=====================  ========================================================================

:func:`record_decision` is the one entry point for recording a person's decision outside
Dynamics (the admin console calls it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from core.errors import ConfigError
from jobs.service.mirror import Mirror

__all__ = [
    "DECISIONS",
    "audit",
    "finish_audit",
    "load_state",
    "memory",
    "merged_ids",
    "record_decision",
    "save_state",
    "start_audit",
]

DECISIONS = ("merge", "not_duplicate", "keep_both")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS merge_memory (
    table_name TEXT NOT NULL,
    id_a TEXT NOT NULL,
    id_b TEXT NOT NULL,
    decision TEXT NOT NULL,
    source TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    PRIMARY KEY (table_name, id_a, id_b)
);
CREATE TABLE IF NOT EXISTS merge_state (
    table_name TEXT NOT NULL,
    record_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    changed_on TEXT,
    PRIMARY KEY (table_name, record_id)
);
CREATE TABLE IF NOT EXISTS merge_audit (
    audit_id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id INTEGER,
    table_name TEXT NOT NULL,
    group_code TEXT,
    master_id TEXT NOT NULL,
    subordinate_id TEXT NOT NULL,
    reason TEXT,
    score REAL,
    before_master TEXT,
    before_subordinate TEXT,
    update_content TEXT,
    outcome TEXT NOT NULL,
    error TEXT,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS merge_audit_sub ON merge_audit (table_name, subordinate_id);
"""


def _ensure(mirror: Mirror) -> None:
    with mirror.transaction() as db:
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                db.execute(statement)


def _rows(mirror: Mirror, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
    _ensure(mirror)
    with mirror.transaction() as db:
        return db.execute(sql, tuple(params)).fetchall()


def _pair(a: str, b: str) -> tuple[str, str]:
    a, b = str(a).lower(), str(b).lower()
    return (a, b) if a < b else (b, a)


def record_decision(
    mirror: Mirror, table: str, record_id: str, other_id: str, decision: str, *, source: str = "console"
) -> None:
    """Remember a person's decision on the pair (record, other), replacing an earlier one.

    Args:
        mirror: the open mirror.
        table: ``lead``, ``contact`` or ``account``.
        record_id: one record of the pair.
        other_id: the other (usually its suggested master).
        decision: ``merge`` (approve merging record into other), ``not_duplicate`` or ``keep_both``.
        source: who decided (``dynamics`` when read from the Duplicate decision column).

    Raises:
        ConfigError: an unknown decision, or a record paired with itself.
    """
    if decision not in DECISIONS:
        raise ConfigError(
            f"unknown duplicate decision `{decision}`", hint=f"use one of {', '.join(DECISIONS)}"
        )
    if str(record_id).lower() == str(other_id).lower():
        raise ConfigError("a record cannot be a duplicate of itself", hint="name two different records")
    a, b = _pair(record_id, other_id)
    if decision == "merge":
        # Kept in order: the first id is merged into the second.
        a, b = str(record_id).lower(), str(other_id).lower()
    _ensure(mirror)
    with mirror.transaction() as db:
        db.execute(
            "DELETE FROM merge_memory WHERE table_name = ? "
            "AND ((id_a = ? AND id_b = ?) OR (id_a = ? AND id_b = ?))",
            (table, a, b, b, a),
        )
        db.execute(
            "INSERT INTO merge_memory VALUES (?, ?, ?, ?, ?, ?)",
            (table, a, b, decision, source, mirror.now()),
        )


def forget_approval(mirror: Mirror, table: str, record_id: str, master_id: str) -> None:
    """Drop an approved merge that no longer applies (it was carried out or went stale)."""
    _rows(
        mirror,
        "DELETE FROM merge_memory WHERE table_name = ? AND id_a = ? AND id_b = ? AND decision = 'merge'",
        (table, str(record_id).lower(), str(master_id).lower()),
    )


def memory(mirror: Mirror, table: str) -> pd.DataFrame:
    """The pairs ruled on for ``table``: ``id_a``, ``id_b``, ``decision``, ``source``."""
    rows = _rows(
        mirror, "SELECT id_a, id_b, decision, source FROM merge_memory WHERE table_name = ?", (table,)
    )
    return pd.DataFrame(rows, columns=["id_a", "id_b", "decision", "source"])


def merged_ids(mirror: Mirror, table: str) -> set[str]:
    """Records dvsync merged away (they are inactive in Dynamics and never grouped again)."""
    rows = _rows(
        mirror, "SELECT subordinate_id FROM merge_audit WHERE table_name = ? AND outcome = 'merged'", (table,)
    )
    return {r[0] for r in rows}


def load_state(mirror: Mirror, table: str) -> pd.DataFrame:
    """The last known group state per record: index = record id, ``fingerprint``, ``changed_on``."""
    rows = _rows(
        mirror, "SELECT record_id, fingerprint, changed_on FROM merge_state WHERE table_name = ?", (table,)
    )
    frame = pd.DataFrame(rows, columns=["record_id", "fingerprint", "changed_on"]).set_index("record_id")
    frame["changed_on"] = pd.to_datetime(frame["changed_on"], utc=True, errors="coerce")
    return frame


def save_state(mirror: Mirror, table: str, state: pd.DataFrame) -> None:
    """Replace the table's group state."""
    _ensure(mirror)
    stamps = pd.to_datetime(state["changed_on"], utc=True, errors="coerce")
    rows = [
        (table, str(i), str(fp), None if pd.isna(ts) else ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        for i, fp, ts in zip(state.index, state["fingerprint"], stamps, strict=True)
    ]
    with mirror.transaction() as db:
        db.execute("DELETE FROM merge_state WHERE table_name = ?", (table,))
        db.executemany("INSERT INTO merge_state VALUES (?, ?, ?, ?)", rows)


def start_audit(
    mirror: Mirror,
    run_id: int | None,
    table: str,
    group: str,
    master_id: str,
    items: Iterable[Mapping[str, Any]],
) -> list[int]:
    """Record the merges of one group as ``sending``, with both before-images, before anything is sent.

    Each item has ``subordinate_id``, ``reason``, ``score``, ``before_master``,
    ``before_subordinate`` and ``update_content``. Returns the audit ids.
    """
    _ensure(mirror)
    ids: list[int] = []
    with mirror.transaction() as db:
        for item in items:
            cursor = db.execute(
                "INSERT INTO merge_audit (run_id, table_name, group_code, master_id, subordinate_id, reason, "
                "score, before_master, before_subordinate, update_content, outcome, at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'sending', ?)",
                (
                    run_id,
                    table,
                    group,
                    master_id,
                    item["subordinate_id"],
                    item.get("reason"),
                    None if pd.isna(item.get("score")) else float(item["score"]),
                    json.dumps(item.get("before_master"), default=str),
                    json.dumps(item.get("before_subordinate"), default=str),
                    json.dumps(item.get("update_content") or {}, default=str),
                    mirror.now(),
                ),
            )
            ids.append(int(cursor.lastrowid or 0))
    return ids


def finish_audit(mirror: Mirror, audit_ids: Iterable[int], outcome: str, error: str | None = None) -> None:
    """Set the outcome (``merged``, ``failed``, ``unknown``) of audited merges."""
    with mirror.transaction() as db:
        db.executemany(
            "UPDATE merge_audit SET outcome = ?, error = ?, at = ? WHERE audit_id = ?",
            [(outcome, error, mirror.now(), i) for i in audit_ids],
        )


def audit(mirror: Mirror, *, run_id: int | None = None, table: str | None = None) -> pd.DataFrame:
    """The merge audit (newest first), optionally for one run or table; before-images as dicts."""
    sql = "SELECT * FROM merge_audit WHERE 1 = 1"
    params: list[Any] = []
    if run_id is not None:
        sql += " AND run_id = ?"
        params.append(run_id)
    if table is not None:
        sql += " AND table_name = ?"
        params.append(table)
    _ensure(mirror)
    with mirror.transaction() as db:
        cursor = db.execute(sql + " ORDER BY audit_id DESC", params)
        names = [d[0] for d in cursor.description]
        frame = pd.DataFrame(cursor.fetchall(), columns=names)
    for column in ("before_master", "before_subordinate", "update_content"):
        frame[column] = frame[column].map(lambda text: json.loads(text) if isinstance(text, str) else None)
    return frame
