"""Lead routing to a queue: the plan items, the ``AddToQueue`` writes, and their rollback.

A rule with ``assign = "queue"`` puts matching unassigned open leads in a queue instead of giving
them an owner: the lead's ``ownerid`` does not change (a queue never owns a record); the queue's
people pick the lead from the queue (Dynamics then records who works on it, ``workerid``). The plan
item is ``column_name`` ``AddToQueue`` with ``new_value`` ``/queues(<id>)`` and ``old_value`` the
queue the lead is moved out of (the ``[unassigned]`` queue, sent as ``SourceQueue``), else empty,
so the dry-run CSV shows it and the audit keeps it like any write.

``dvsync rollback`` undoes one by taking the lead out of the queue again (``RemoveFromQueue`` on
its queue item), or moving it back to the queue it came from, unless it changed since: it is no
longer in that queue (moved or removed), or a person started working on it (picked it). Those are
refused and listed; ``--force`` undoes a picked one anyway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from connector import QueueRequest, QueueResult
from core.errors import DvsyncError
from jobs.service.routing import QUEUE_COLUMN, QUEUE_RESULT

__all__ = ["QueueUndo", "add_to_queues", "queue_plan", "split_queue_items", "undo_queue_items"]

_PLAN = ["table_name", "record_id", "column_name", "result", "old_value", "new_value"]


def _queue_path(queue_id: object) -> str | None:
    return f"/queues({str(queue_id).lower()})" if isinstance(queue_id, str) and queue_id else None


def _queue_id(path: object) -> str | None:
    text = str(path) if isinstance(path, str) else ""
    return text[len("/queues(") : -1].lower() if text.startswith("/queues(") and text.endswith(")") else None


def queue_plan(assignments: pd.DataFrame) -> pd.DataFrame:
    """Plan items for the assignments whose ``owner_type`` is ``queue``."""
    items = assignments[assignments["owner_type"] == "queue"] if len(assignments) else assignments
    if items.empty:
        return pd.DataFrame(columns=_PLAN)
    sources = items["source_queue_id"] if "source_queue_id" in items else pd.Series(None, index=items.index)
    frame = pd.DataFrame(
        {
            "table_name": "lead",
            "record_id": items.index.to_numpy(),
            "column_name": QUEUE_COLUMN,
            "result": QUEUE_RESULT,
        }
    )
    # As object columns: pandas would read text with None as its str dtype, None becoming NaN.
    frame["old_value"] = pd.Series([_queue_path(s) for s in sources], dtype=object)
    frame["new_value"] = pd.Series([_queue_path(q) for q in items["owner_id"]], dtype=object)
    return frame


def split_queue_items(plan: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(the plan without queue items, the queue items)``: the latter are not PATCHes."""
    if plan.empty or "column_name" not in plan:
        return plan, plan.iloc[0:0]
    queued = (plan["column_name"] == QUEUE_COLUMN).to_numpy()
    return plan[~queued], plan[queued]


def add_to_queues(client: Any, items: pd.DataFrame, *, batch_size: int) -> list[QueueResult]:
    """Send the plan's queue items (``AddToQueue``); one result per lead."""
    requests_ = [
        QueueRequest("lead", str(record_id), str(_queue_id(new)), _queue_id(old))
        for record_id, old, new in zip(
            items["record_id"], items["old_value"], items["new_value"], strict=True
        )
    ]
    return client.add_to_queues(requests_, batch_size=batch_size)


@dataclass
class QueueUndo:
    """What the rollback did with a run's queue items.

    Attributes:
        done: ``record_id``, ``column_name``, ``now``, ``restore``, ``outcome`` (``restored`` or
            ``failed``), ``error``.
        refused: ``record_id``, ``column_name``, ``old_value``, ``new_value``, ``now``, ``reason``.
        confirmed: already as before the run (an interrupted rollback undid them): ``record_id``,
            ``column_name``, ``new_value``, ``restore``.
    """

    done: pd.DataFrame
    refused: pd.DataFrame
    confirmed: pd.DataFrame


def undo_queue_items(client: Any, items: pd.DataFrame, *, force: bool) -> QueueUndo:
    """Take the leads a run queued out of the queue again (or back to the queue they came from).

    Args:
        client: a DataverseClient.
        items: the run's written audit entries of ``AddToQueue`` (``record_id``, ``old_value``,
            ``new_value``, ``column_name``).
        force: undo also where a person started working on the item since.

    Raises:
        DvsyncError: the queue items cannot be read (nothing is undone then).
    """
    leads = [str(r).lower() for r in items["record_id"]]
    try:
        held = client.queue_items(object_ids=leads)
    except DvsyncError as exc:
        raise DvsyncError(f"cannot read the leads' queue items to undo routing to queues: {exc}") from exc
    where: dict[str, dict[str, Any]] = {}
    for item in held:
        where.setdefault(item.object_id, {})[item.queue_id] = item
    done, refused, confirmed = [], [], []
    removals: list[tuple[dict[str, Any], str]] = []
    moves: list[tuple[dict[str, Any], QueueRequest]] = []
    for row in items.to_dict("records"):
        lead = str(row["record_id"]).lower()
        queue, source = _queue_id(row["new_value"]), _queue_id(row["old_value"])
        now = where.get(lead, {})
        current = ",".join(_queue_path(q) or "" for q in sorted(now)) or None
        entry = {**row, "record_id": lead, "now": current, "restore": row["old_value"]}
        if queue not in now:
            if (source in now) if source else True:
                confirmed.append(entry)  # already out of the queue (an interrupted rollback)
            else:
                refused.append(
                    {**entry, "reason": "the lead is no longer in that queue (moved or removed since)"}
                )
            continue
        item = now[queue]
        if item.worker_id and not force:
            refused.append({**entry, "reason": "a person is working on the queue item since (picked it)"})
            continue
        if source:
            moves.append((entry, QueueRequest("lead", lead, source, source_queue_id=queue)))
        else:
            removals.append((entry, item.id))
    for entry, queue_item in removals:
        try:
            client.remove_from_queue(queue_item)
            done.append({**entry, "outcome": "restored", "error": None})
        except DvsyncError as exc:
            done.append({**entry, "outcome": "failed", "error": str(exc)})
    if moves:
        results = client.add_to_queues([m for _, m in moves])
        for (entry, _), result in zip(moves, results, strict=True):
            done.append(
                {
                    **entry,
                    "outcome": "restored" if result.ok else "failed",
                    "error": None if result.ok else result.message,
                }
            )
    columns = ["record_id", "column_name", "old_value", "new_value", "now", "restore"]
    return QueueUndo(
        done=pd.DataFrame(done, columns=[*columns, "outcome", "error"]),
        refused=pd.DataFrame(refused, columns=[*columns, "reason"]),
        confirmed=pd.DataFrame(confirmed, columns=columns),
    )
