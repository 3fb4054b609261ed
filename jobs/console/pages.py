"""The pages: each function takes the request's :class:`View` and returns (HTML, the page's data).

The data is what ``/api/<page>`` serves; the HTML is built from the same dict, so the page and its
JSON never disagree. Overview, Runs, confirmations, Configuration and sign-in live here; Leads,
Duplicates and Customers in :mod:`jobs.console.pages_results`.
"""

from __future__ import annotations

from typing import Any

from jobs.console import charts, data_duplicates, data_results, data_runs
from jobs.console.context import ConsoleContext
from jobs.console.data_config import CheckRunner
from jobs.console.data_config import configuration as config_data
from jobs.console.html import card, esc, figure, form_button, link, table
from jobs.console.pages_results import customers, duplicate_group, duplicates, leads
from jobs.console.view import View
from jobs.service.mirror.summaries import PlanFilter

__all__ = [
    "View",
    "action_log",
    "configuration",
    "confirm_rollback",
    "confirm_run",
    "customers",
    "duplicate_group",
    "duplicates",
    "leads",
    "login_page",
    "message_page",
    "overview",
    "plan_csv",
    "run_detail",
    "run_plan",
    "runs",
    "warm",
]


def _run_link(run_id: Any) -> str:
    return link(f"/runs/{int(run_id)}", f"#{int(run_id)}")


def _runs_table(rows: list[dict[str, Any]]) -> str:
    shown = [
        {
            **r,
            "run": _run_link(r["run_id"]),
            "what": f"{r['kind']}{' (dry run)' if r.get('dry_run') else ''}",
            "jobs": ", ".join(r.get("jobs") or []),
        }
        for r in rows
    ]
    return table(
        shown,
        [
            "run",
            "what",
            "jobs",
            "trigger",
            "started_at",
            "outcome",
            "read",
            "written",
            "failed",
            "throttled",
            "error",
        ],
        raw=["run"],
        headers={"started_at": "started"},
        empty="No runs yet: start one with the buttons above or `dvsync run`.",
    )


def action_log(view: View) -> list[dict[str, Any]]:
    """The console's own audit: who started what from here."""
    from jobs.console.actions import read_action_log

    return read_action_log(view.ctx.state_dir, limit=50)


def _actions_table(rows: list[dict[str, Any]]) -> str:
    shown = [{**r, "run": _run_link(r["run_id"]) if r.get("run_id") else ""} for r in rows]
    return table(
        shown,
        ["at", "user", "action", "target_run", "state", "run", "finished_at", "error"],
        raw=["run"],
        classes={"state": "outcome"},
        empty="Nothing started from the console yet.",
    )


def _buttons(view: View) -> str:
    return (
        '<div class="actions">'
        + form_button("/actions/dry-run", "Dry run now", view.csrf, css="secondary")
        + link("/runs/confirm", "Run now…").replace("<a ", '<a class="button" ', 1)
        + "</div>"
    )


PREVIEW_WAIT = 0.7
"""Seconds the rollback confirmation waits for its comparison before answering "reload shortly"."""


def warm(ctx: ConsoleContext) -> None:
    """Compute the slow pages' data for the mirror as it is now, so the next view is instant.

    The console calls this in the background whenever a run starts or ends: the leads, customers
    and duplicates pages, the newest runs' details and the rollback preview of the newest run that
    wrote. The keys are the ones the pages use.
    """
    ctx.cached("leads", lambda: data_results.leads(ctx))
    ctx.cached("customers", lambda: data_results.customers(ctx))
    for table_name in data_duplicates.DUPLICATE_TABLES:
        key = f"duplicates:{table_name}:1"
        ctx.cached(key, lambda t=table_name: data_duplicates.duplicates(ctx, t, page=1))
    latest = ctx.mirror.runs(3)
    for run_id in latest["run_id"].tolist():
        ctx.cached(f"run:{run_id}", lambda r=int(run_id): data_runs.run_detail(ctx, r))
    wrote = latest[(latest["kind"] == "run") & ~latest["dry_run"] & (latest["written"] > 0)]
    if len(wrote):
        run_id = int(wrote["run_id"].iloc[0])
        ctx.cached(f"rollback:{run_id}", lambda: data_runs.rollback_preview(ctx, run_id))


# ------------------------------------------------------------------------------------ overview


def overview(view: View) -> tuple[str, dict[str, Any]]:
    """Last runs, next runs, freshness, attention, throttling, recent console actions."""
    data = data_runs.overview(view.ctx)
    running = data.get("running")
    notice = (
        f'<div class="notice">A run is going on right now (pid {esc(running.get("pid"))}).</div>'
        if running
        else ""
    )
    last = data["runs"][0] if data["runs"] else None
    figures = '<div class="cards">' + figure(
        "Last run",
        f"#{last['run_id']} {last['outcome']}" if last else "none",
        last["started_at"] if last else None,
    )
    figures += figure("Next run", data["next_runs"][0]["at"] if data["next_runs"] else "not scheduled")
    figures += figure("Values waiting to be written", data["open_writes"])
    figures += figure("Needs attention", len(data["attention"])) + "</div>"
    fresh = [
        {**t, "age": f"{t['age_minutes']} min" if t["age_minutes"] is not None else None}
        for t in data["tables"]
    ]
    throttle = data["throttling"][-20:]
    body = (
        notice
        + _buttons(view)
        + figures
        + '<div class="cards">'
        + card("Last runs", _runs_table(data["runs"][:10]), wide=True)
        + card(
            "Needs attention",
            table(data["attention"], ["what", "detail"], empty="Nothing: every run and table is fine."),
        )
        + card(
            "Next scheduled runs",
            table(data["next_runs"], ["set", "at", "cron", "jobs"], empty="No schedule."),
        )
        + card(
            "Mirror freshness",
            table(
                fresh,
                ["table", "rows", "mode", "last_success", "age", "last_error"],
                empty="Nothing mirrored yet.",
            ),
            wide=True,
        )
        + card(
            "Records read and values written per run",
            charts.stacked_bars(
                [f"#{t['run_id']}" for t in throttle],
                {"read": [t["read"] for t in throttle], "written": [t["written"] for t in throttle]},
                label="Records read and values written per run",
                colors=[charts.PALETTE[0], charts.PALETTE[1]],
            )
            if throttle
            else '<p class="muted">No runs yet.</p>',
        )
        + card(
            "Throttling seen (HTTP 429) and retries per run",
            charts.stacked_bars(
                [f"#{t['run_id']}" for t in throttle],
                {
                    "throttled (429)": [t["throttled"] for t in throttle],
                    "other retries": [max(t["retries"] - t["throttled"], 0) for t in throttle],
                },
                label="429 responses and retries per run",
                colors=[charts.PALETTE[3], charts.PALETTE[2]],
            )
            if throttle
            else '<p class="muted">No runs yet.</p>',
        )
        + card("Started from this console", _actions_table(data["actions"]))
        + "</div>"
    )
    return view.render("Overview", body, "/api/overview"), data


# ------------------------------------------------------------------------------------ runs


def runs(view: View) -> tuple[str, dict[str, Any]]:
    """Run history and what the console started."""
    data = data_runs.runs_list(view.ctx)
    actions = action_log(view)
    data = {**data, "actions": actions}
    notice = ""
    started = view.query.get("started")
    if started:
        mine = next((a for a in actions if a.get("id") == started), None)
        if mine:
            state = mine.get("state")
            notice = (
                f'<div class="notice good">{esc(mine["action"])} started by {esc(mine["user"])}; '
                f"state: {esc(state)}{' (reload to follow it)' if state == 'started' else ''}"
                f"{' - run ' + _run_link(mine['run_id']) if mine.get('run_id') else ''}</div>"
            )
    body = (
        notice
        + _buttons(view)
        + '<div class="cards">'
        + card("Started from this console", _actions_table(actions[:10]), wide=True)
        + card("Run history", _runs_table(data["runs"]), wide=True)
        + "</div>"
    )
    return view.render("Runs", body, "/api/runs"), data


def run_detail(view: View, run_id: int) -> tuple[str, dict[str, Any]]:
    """One run: counts per table, jobs, errors, links to its plan and to roll it back."""
    data = view.ctx.cached(f"run:{run_id}", lambda: data_runs.run_detail(view.ctx, run_id))
    head = table(
        [data],
        ["kind", "trigger", "jobs", "dry_run", "started_at", "finished_at", "duration_s", "outcome", "error"],
        classes={"outcome": "outcome"},
    )
    tables = table(
        data["tables"],
        [
            "table_name",
            "mode",
            "read",
            "upserted",
            "deleted",
            "written",
            "failed",
            "retries",
            "throttled",
            "duration_s",
        ],
        headers={"table_name": "table"},
        empty="No table was read or written.",
    )
    jobs = [
        {"job": name, "status": j.get("status"), "message": j.get("message"), "records": j.get("records")}
        for name, j in data["job_reports"].items()
    ]
    actions = []
    if data["planned"]:
        actions.append(link(f"/runs/{run_id}/plan", f"Plan: {data['planned']:,} value(s) old → new"))
        actions.append(link(f"/runs/{run_id}/plan.csv", "Download the plan as CSV"))
    if data["can_roll_back"]:
        actions.append(
            link(f"/runs/{run_id}/rollback", "Roll back this run…").replace(
                "<a ", '<a class="button danger" ', 1
            )
        )
    body = (
        '<div class="actions">'
        + " ".join(actions)
        + "</div>"
        + '<div class="cards">'
        + card("Run", head, wide=True)
        + card("Per table", tables, wide=True)
        + card("Jobs", table(jobs, ["job", "status", "message", "records"], empty="No jobs in this run."))
        + card("Writes audited", table([data["audit"]], list(data["audit"]), empty="Nothing was written."))
        + card(
            f"Errors ({len(data['errors'])})",
            table(data["errors"][:500], ["table", "record_id", "column", "reason"], empty="No errors."),
            wide=True,
        )
        + "</div>"
    )
    return view.render(f"Run #{run_id}", body, f"/api/runs/{run_id}"), data


def _filters(view: View) -> dict[str, str | None]:
    return {k: (view.query.get(k) or None) for k in ("table", "column", "record", "status")}


def run_plan(view: View, run_id: int) -> tuple[str, dict[str, Any]]:
    """A run's plan, filterable and paged, with a CSV link for the same filter."""
    filters = _filters(view)
    page_no = int(view.query.get("page", "1")) if view.query.get("page", "1").isdigit() else 1
    data = data_runs.plan_items(view.ctx, run_id, PlanFilter(**filters), page=page_no)

    def select(name: str) -> str:
        options = ['<option value="">any</option>'] + [
            f'<option value="{esc(v)}"{" selected" if filters[name] == v else ""}>{esc(v)}</option>'
            for v in data["choices"][name]
        ]
        return f'<label>{name}<select name="{name}">{"".join(options)}</select></label>'

    form = (
        f'<form class="filters" method="get" action="/runs/{run_id}/plan">'
        + select("table")
        + select("column")
        + select("status")
        + f'<label>record id contains<input name="record" value="{esc(filters["record"] or "")}"></label>'
        + '<button type="submit">Filter</button></form>'
    )
    query = {k: v for k, v in filters.items() if v}
    nav = []
    if data["page"] > 1:
        nav.append(link(f"/runs/{run_id}/plan", "← previous", **query, page=data["page"] - 1))
    if data["page"] < data["pages"]:
        nav.append(link(f"/runs/{run_id}/plan", "next →", **query, page=data["page"] + 1))
    body = (
        form
        + f"<p>{data['matching']:,} of {data['total']:,} value(s) · page {data['page']} of {data['pages']} · "
        + link(f"/runs/{run_id}/plan.csv", "download these as CSV", **query)
        + " · "
        + link(f"/runs/{run_id}", f"back to run #{run_id}")
        + "</p>"
        + card(
            "Old → new",
            table(
                data["items"],
                ["table_name", "record_id", "column_name", "old_value", "new_value", "status", "error"],
                headers={
                    "table_name": "table",
                    "column_name": "column",
                    "old_value": "old",
                    "new_value": "new",
                },
                classes={"old_value": "pre", "new_value": "pre"},
                empty="No planned value matches.",
            ),
            wide=True,
        )
        + "<p>"
        + " ".join(nav)
        + "</p>"
    )
    return view.render(f"Plan of run #{run_id}", body, f"/api/runs/{run_id}/plan"), data


def plan_csv(view: View, run_id: int) -> tuple[str, str]:
    """The filtered plan as CSV and a file name."""
    return data_runs.plan_csv(view.ctx, run_id, PlanFilter(**_filters(view))), f"dvsync-run-{run_id}-plan.csv"


def confirm_rollback(view: View, run_id: int) -> tuple[str, dict[str, Any]]:
    """What rolling back would restore and refuse, and the button that does it.

    Comparing a big run's values with the mirror takes seconds (a medium first run wrote 290,000);
    the page answers at once with how many values the run wrote and asks for a reload while the
    comparison finishes in the background (the warmer usually did it right after the run).
    """
    data = view.ctx.within(
        f"rollback:{run_id}", lambda: data_runs.rollback_preview(view.ctx, run_id), PREVIEW_WAIT
    )
    if data is None:
        written = data_runs.written_count(view.ctx, run_id)
        data = {"run_id": run_id, "pending": True, "written": written}
        body = (
            f'<div class="notice">Run #{run_id} wrote {written:,} value(s). Comparing each with what '
            "Dynamics holds now (per the mirror) to show which would be restored and which refused; "
            f"reload this page in a few seconds. {link(f'/runs/{run_id}', 'cancel')}</div>"
        )
        return view.render(f"Roll back run #{run_id}?", body, f"/api/runs/{run_id}/rollback"), data
    counts = data["counts"]
    button = ""
    if counts["restore"] or counts["refuse"]:
        button = form_button(
            "/actions/rollback",
            f"Roll back run #{run_id}: restore {counts['restore']:,} value(s)",
            view.csrf,
            fields={"run_id": run_id, "confirm": "yes"},
            css="danger",
        )
        if counts["refuse"]:
            button += " " + form_button(
                "/actions/rollback",
                f"Restore all {counts['restore'] + counts['refuse']:,}, also values changed since (force)",
                view.csrf,
                fields={"run_id": run_id, "confirm": "yes", "force": "yes"},
                css="danger secondary",
            )
    notice = (
        '<div class="notice">The rollback syncs first and compares again: a value changed in Dynamics '
        "since then is refused unless you force it. It is recorded as a run of its own, audited value "
        "by value, and can itself be rolled back.</div>"
    )
    body = (
        notice
        + f'<div class="actions">{button or "<p>This run wrote nothing; there is nothing to roll back.</p>"} '
        + link(f"/runs/{run_id}", "cancel")
        + "</div>"
        + '<div class="cards">'
        + card(
            f"Will be restored ({counts['restore']:,})",
            table(
                data["restore"][:500], ["table", "record_id", "column", "now", "restore_to"], empty="None."
            ),
            wide=True,
            note="The first 500 are listed; the rollback restores every one."
            if counts["restore"] > 500
            else None,
        )
        + card(
            f"Will be refused ({counts['refuse']:,})",
            table(
                data["refuse"][:500],
                ["table", "record_id", "column", "now", "restore_to", "reason"],
                empty="None.",
            ),
            wide=True,
        )
        + "</div>"
    )
    return view.render(f"Roll back run #{run_id}?", body, f"/api/runs/{run_id}/rollback"), data


def confirm_run(view: View) -> tuple[str, dict[str, Any]]:
    """What "run now" would write, and the button that starts it."""
    data = data_runs.run_preview(view.ctx)
    dry = data["latest_dry_run"]
    if dry is None:
        what = (
            '<div class="notice">No dry run yet, so the values this run would write are not known. '
            "Start a dry run first to see them, or run now.</div>"
        )
    else:
        what = (
            f'<div class="notice">The latest dry run ({_run_link(dry)}, finished '
            f"{esc(data['latest_dry_run_finished_at'])}) "
            f"planned {data['planned_values']:,} value(s), listed below ("
            + link(f"/runs/{dry}/plan", "every value old → new")
            + "). The run syncs and recomputes first, so what it writes is that plan updated to "
            "what changed in Dynamics since.</div>"
        )
    body = (
        what
        + f"<p>Jobs: {esc(', '.join(data['jobs']) or 'none')}. Values left from earlier runs, retried: "
        + f"{data['open_writes']:,}.</p>"
        + '<div class="actions">'
        + form_button(
            "/actions/run",
            "Run now and write to Dynamics",
            view.csrf,
            fields={"confirm": "yes"},
            css="danger",
        )
        + form_button("/actions/dry-run", "Dry run first", view.csrf, css="secondary")
        + link("/runs", "cancel")
        + "</div>"
        + card(
            "Planned by the latest dry run",
            table(data["planned_by_column"], ["table", "column", "values"], empty="Nothing planned."),
            wide=True,
        )
    )
    return view.render("Run now?", body, "/api/runs/confirm"), data


# ------------------------------------------------------------------------------------ configuration


def configuration(view: View, checker: CheckRunner | None) -> tuple[str, dict[str, Any]]:
    """Effective settings (secrets masked), the last check, the schedule."""
    data = config_data(view.ctx, checker)
    check = data["check"]
    if check is None:
        check_html = '<p class="muted">The check is running; reload in a moment.</p>'
    else:
        verdict = (
            '<p class="ok">All checks passed.</p>'
            if check.get("ok")
            else '<p class="failed">Problems to fix:</p>'
        )
        check_html = (
            verdict
            + table(
                [{"problem": p.get("text")} for p in check.get("problems", [])],
                ["problem"],
                empty="No problems.",
            )
            + table(
                check.get("tables", []),
                ["name", "table", "entity_set", "fields", "change_tracking", "ok"],
                empty="No table checked.",
            )
            + f'<p class="muted">Columns still to provision: {len(check.get("to_provision", []))}; '
            f"checked {esc(data['checked_at'])}.</p>"
        )
    if checker is not None:
        check_html += form_button("/actions/check", "Check again", view.csrf, css="secondary")
    settings_rows = [
        {
            "setting": f"{section}.{key}",
            "value": value if not isinstance(value, dict | list) else _compact(value),
        }
        for section, values in data["settings"].items()
        if isinstance(values, dict)
        for key, value in values.items()
    ]
    body = (
        '<div class="cards">'
        + card("dvsync check", check_html, wide=True)
        + card(
            f"Schedule ({data['schedule']['timezone']})",
            table(data["schedule"]["sets"], ["set", "cron", "jobs", "next"], empty="No schedule sets."),
            wide=True,
        )
        + card("Effective settings (secrets masked)", table(settings_rows, ["setting", "value"]), wide=True)
        + "</div>"
    )
    return view.render("Configuration", body, "/api/config"), data


def _compact(value: Any) -> str:
    import json

    return json.dumps(value, default=str)[:400]


# ------------------------------------------------------------------------------------ sign-in and messages


def login_page(auth: str, *, error: str | None) -> str:
    """The sign-in page (no session yet, so no navigation)."""
    problem = f'<p class="failed">{esc(error)}</p>' if error else ""
    if auth == "entra":
        form = '<a class="button" href="/auth/start">Sign in with Microsoft</a>'
    else:
        form = (
            '<form method="post" action="/login"><label>Admin token (printed where the console was started)'
            '<input type="password" name="token" autocomplete="off" autofocus required></label>'
            '<button type="submit">Sign in</button></form>'
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in · dvsync</title>'
        '<link rel="stylesheet" href="/static/console.css"><link rel="icon" href="data:,"></head><body>'
        f'<div class="login"><h1>dvsync console</h1>{problem}{form}</div></body></html>'
    )


def message_page(title: str, message: str) -> str:
    """An error or notice on its own page."""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)} · dvsync</title>"
        '<link rel="stylesheet" href="/static/console.css"><link rel="icon" href="data:,"></head><body>'
        f'<div class="login"><h1>{esc(title)}</h1><p>{esc(message)}</p>'
        '<p><a href="/">Back to the console</a></p></div>'
        "</body></html>"
    )
