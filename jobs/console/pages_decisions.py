"""Duplicate decisions from the console: the buttons on a group, their confirmation, and the POST.

A decision is the same one a Dynamics user makes in the "Duplicate decision" column: it is
recorded in the mirror's merge memory by :func:`jobs.service.merge_decide.decide` (source
``console:<user>``) and carried out by the next merge run, like any other. The confirmation page
shows what will happen; for a merge, both records side by side and the fields that change on the
master, computed by the merge run's own preview (:mod:`jobs.service.merge_preview`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import ConfigError
from jobs.console import data_duplicates
from jobs.console.actions import ActionRunner
from jobs.console.context import ConsoleContext
from jobs.console.html import card, esc, form_button, link, table
from jobs.console.view import View
from jobs.service.merge_decide import DECISION_LABELS, decide, merge_confirmation
from jobs.service.merge_preview import child_counts
from jobs.service.mirror import Mirror

__all__ = ["DECIDE_ACTION", "confirm_decision", "decision_cells", "post_decision"]

DECIDE_ACTION = "/actions/duplicate-decision"


def _confirm_href(table_name: str, code: str, record_id: str, decision: str) -> str:
    return link(
        f"/duplicates/{table_name}/{code}/decide",
        DECISION_LABELS[decision],
        record=record_id,
        decision=decision,
    ).replace("<a ", f'<a class="button{" secondary" if decision != "merge" else ""}" ', 1)


def decision_cells(data: dict[str, Any]) -> list[str]:
    """The grid's "decision" row: per record its recorded decision and the three actions."""
    cells = ['<div class="field">decision</div>']
    for record in data["records"]:
        if record["master"]:
            cells.append('<div class="muted">suggested master: survives a merge</div>')
            continue
        decided = record["decision"]
        status = (
            f'<span class="badge">{esc(decided["label"])}</span> '
            f'<span class="muted">{esc(decided["source"])}, {esc(decided["decided_at"])}: '
            f"{esc(decided['pending'])}</span><br>"
            if decided
            else ""
        )
        buttons = " ".join(
            _confirm_href(data["table"], data["group"], record["id"], d)
            for d in DECISION_LABELS
            if not decided or decided["decision"] != d or decided["other"] != data["suggested_master"]
            # (the decision already recorded on this record, against this master, has no button)
        )
        cells.append(f'<div class="decide">{status}<span class="choices">{buttons}</span></div>')
    return cells


def _records(ctx: ConsoleContext, table_name: str) -> Any:
    return ctx.cached(
        f"dup-records:{table_name}", lambda: ctx.mirror.read_frame(table_name, include_system=True)
    )


def confirm_decision(view: View, table_name: str, code: str) -> tuple[str, dict[str, Any] | None]:
    """What deciding ``?decision=`` on ``?record=`` of the group will do, and the button that records it."""
    group = data_duplicates.duplicate_group(view.ctx, table_name, code)
    if group is None:
        return "", None
    record_id, decision = view.query.get("record", "").lower(), view.query.get("decision", "")
    record, master_id = _check(group, record_id, decision)
    master = next(r for r in group["records"] if r["master"])
    others = [r for r in group["records"] if r["id"].lower() != record_id]
    data: dict[str, Any] = {
        "table": table_name,
        "group": code,
        "record": record,
        "master": master,
        "decision": decision,
        "label": DECISION_LABELS[decision],
    }
    if decision == "merge":
        path = Path(view.ctx.settings.mappings.dir) / "duplicates.toml"
        counts = view.ctx.cached(
            f"dup-children:{table_name}", lambda: child_counts(view.ctx.mirror, table_name)
        )
        data["merge"] = merge_confirmation(
            view.ctx.mirror,
            view.ctx.mappings,
            path,
            table_name,
            _records(view.ctx, table_name),
            group=code,
            record_id=record_id,
            master_id=master_id,
            score=record["score"],
            counts=counts,
        )
        what = (
            f"{esc(record['label'])} ({esc(record_id)}) will be merged into the suggested master "
            f"{esc(master['label'])} ({esc(master_id)}) by the next merge run (the merge job, or "
            "<code>dvsync merge --no-dry-run</code>), through Dataverse's Merge message: the record is "
            "deactivated and marked merged, its child records move to the master, and the master takes "
            "the values marked below. A merge cannot be undone in Dynamics. If the group changes before "
            "that run (another master suggested), the approval is dropped and you decide again."
        )
        rows = data["merge"]["fields"]
        detail = card(
            "Both records side by side, and the master after the merge",
            table(
                [{**r, "changes": "changes" if r["changes"] else ""} for r in rows],
                ["field", "subordinate", "master", "after", "changes"],
                headers={
                    "subordinate": "merged away",
                    "master": "master (survives)",
                    "after": "master after the merge",
                    "changes": "changed",
                },
                classes={"changes": "warn"},
            ),
            wide=True,
            note=f"Child records that move to the master: {data['merge']['children_moving']}.",
        )
    else:
        ruled = ", ".join(f"{r['label']} ({r['id']})" for r in others)
        what = (
            f"{esc(record['label'])} ({esc(record_id)}) is recorded as "
            + (
                "not a duplicate of "
                if decision == "not_duplicate"
                else "to be kept apart from (never merged with) "
            )
            + f"{esc(ruled)}. "
            + (
                "The next duplicates run takes it out of this group, and these pairs are never suggested "
                "again, also after the model retrains."
                if decision == "not_duplicate"
                else "It stays in the group in Dynamics, and no merge run merges these pairs."
            )
            + " Nothing is written to Dynamics now."
        )
        detail = ""
    button = form_button(
        DECIDE_ACTION,
        f"Record: {DECISION_LABELS[decision]}",
        view.csrf,
        fields={
            "table": table_name,
            "group": code,
            "record": record_id,
            "decision": decision,
            "confirm": "yes",
        },
        css="danger" if decision == "merge" else "",
    )
    body = (
        f'<div class="notice">{what}</div>'
        + f'<div class="actions">{button} {link(f"/duplicates/{table_name}/{code}", "cancel")}</div>'
        + detail
    )
    api = f"/api/duplicates/{table_name}/{code}/decide?record={record_id}&decision={decision}"
    return view.render(f"{DECISION_LABELS[decision]}?", body, api), data


def _check(group: dict[str, Any], record_id: str, decision: str) -> tuple[dict[str, Any], str]:
    """The decided record of the group and its master; a clear error for anything else."""
    if decision not in DECISION_LABELS:
        raise ConfigError(f"unknown decision {decision!r}", hint=f"use one of {', '.join(DECISION_LABELS)}")
    record = next((r for r in group["records"] if r["id"].lower() == record_id), None)
    if record is None:
        raise ConfigError(
            f"{group['table']} {record_id or '(none)'} is not in duplicate group {group['group']}",
            hint="open the group again: a run may have regrouped its records",
        )
    if record["master"]:
        raise ConfigError(
            "the suggested master is the record that survives; decide on the other records",
        )
    return record, str(group["suggested_master"])


def post_decision(ctx: ConsoleContext, actions: ActionRunner, form: dict[str, str], user: str) -> str:
    """Record the confirmed decision of ``form``; returns where to go next (the group page).

    The group, its members and its master are read from the mirror again, never taken from the form.

    Raises:
        ConfigError: an unknown table, group, record or decision, or no confirmation.
    """
    table_name, code = form.get("table", ""), form.get("group", "")
    if table_name not in data_duplicates.DUPLICATE_TABLES:
        raise ConfigError(f"unknown table {table_name!r}", hint="lead, contact or account")
    if form.get("confirm") != "yes":
        raise ConfigError("confirm first: the confirmation page shows what the decision will do")
    group = data_duplicates.duplicate_group(ctx, table_name, code)
    if group is None:
        raise ConfigError(f"no duplicate group {code!r} in {table_name}", hint="open the group again")
    record_id, decision = form.get("record", "").lower(), form.get("decision", "")
    _, master_id = _check(group, record_id, decision)
    members = [r["id"] for r in group["records"]]
    # Its own connection: the shared one serves the pages and must not wait for a write lock.
    with Mirror(ctx.settings.mirror.path) as mirror:
        pairs = decide(mirror, table_name, record_id, master_id, members, decision, source=f"console:{user}")
    actions.record(
        "duplicate-decision",
        user=user,
        state="recorded",
        target=f"{table_name} {record_id}: {DECISION_LABELS[decision]} ({master_id})",
        table=table_name,
        group=code,
        record=record_id,
        master=master_id,
        decision=decision,
        pairs=len(pairs),
    )
    return f"/duplicates/{table_name}/{code}?decided={record_id}"
