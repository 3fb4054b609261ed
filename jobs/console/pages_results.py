"""The Leads, Duplicates and Customers pages (HTML plus the data served under ``/api/``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from jobs.console import charts, data_duplicates, data_results
from jobs.console.html import card, esc, figure, link, table
from jobs.console.view import View

__all__ = ["customers", "duplicate_group", "duplicates", "leads"]


TOP_SHOWN = 10
"""Leads listed per table on the page (the JSON has the top 25 with every factor)."""


def _first_lines(text: Any, count: int) -> str | None:
    return "\n".join(text.splitlines()[:count]) if isinstance(text, str) else None


def _money(value: float) -> str:
    return f"{value:,.0f}"


# ------------------------------------------------------------------------------------ leads


def _model_card(model: dict[str, Any] | None) -> str:
    if model is None:
        return card(
            "Lead model",
            "<p>The rules in mappings/scoring.toml score: the org has fewer than 40 qualified and 40 "
            "disqualified leads to learn from.</p>",
            wide=True,
        )
    if "error" in model:
        return card("Lead model", f'<p class="failed">{esc(model["error"])}</p>', wide=True)
    cm = model.get("confusion_matrix") or {}
    matrix = charts.heatmap(
        ["qualified", "disqualified"],
        ["predicted qualified", "predicted not"],
        [[cm.get("tp", 0), cm.get("fn", 0)], [cm.get("fp", 0), cm.get("tn", 0)]],
        label="Confusion matrix at the F1-optimal threshold",
        row_title="actual",
        column_title=f"at threshold {model.get('threshold')}",
        cell=110,
    )
    roc = [(p["fpr"], p["tpr"]) for p in model.get("roc") or []]
    calibration = [(p["predicted"], p["observed"]) for p in model.get("calibration") or []]
    roc_html = (
        charts.lines(
            {"ROC": roc},
            label=f"ROC curve, AUC {model.get('auc')}",
            x_label="false positive rate",
            y_label="true positive rate",
        )
        if roc
        else '<p class="muted">This model was trained before ROC points were kept; '
        "the next retrain adds them.</p>"
    )
    validation = model.get("validation") or {}
    figures = (
        '<div class="cards">'
        + figure("AUC", model.get("auc"), model.get("verdict"))
        + figure("Precision / recall", f"{model.get('precision')} / {model.get('recall')}")
        + figure("Brier score", model.get("brier"), "0.25 is a coin toss")
        + figure(
            "Closed leads learnt from", (model.get("n_qualified") or 0) + (model.get("n_disqualified") or 0)
        )
        + "</div>"
    )
    body = (
        f"<p><strong>{esc(model.get('verdict'))}</strong>: {esc(model.get('verdict_text'))}</p>"
        + f'<p class="muted">Model {esc(model.get("version"))}, trained {esc(model.get("trained_at"))}; '
        + f"{esc(validation.get('method'))}.</p>"
        + figures
        + '<div class="cards">'
        + card("ROC curve", roc_html)
        + card(
            "Calibration (predicted vs observed qualification rate)",
            charts.lines(
                {"calibration": calibration},
                label="Calibration curve",
                x_label="predicted probability",
                y_label="observed rate",
            ),
        )
        + card("Confusion matrix", matrix)
        + "</div>"
    )
    return card("Lead model validation report", body, wide=True)


def leads(view: View) -> tuple[str, dict[str, Any]]:
    """Score distribution, grade mix over time, the model report, top leads, leads already customers."""
    data = view.ctx.cached("leads", lambda: data_results.leads(view.ctx))
    history = data["grade_history"]
    grade_chart = (
        charts.stacked_bars(
            [f"#{h['run_id']}" for h in history],
            {g: [h[g] for h in history] for g in data_results.GRADES},
            label="Grades of the open leads per run",
        )
        if history
        else '<p class="muted">No run has scored leads yet.</p>'
    )
    top = [
        {**r, "lead": r.get("name") or r["id"], "factors": _first_lines(r.get("out_factors"), 3)}
        for r in data.get("top_leads", [])[:TOP_SHOWN]
    ]
    existing = data.get("already_customers", {"contact": 0, "account": 0, "examples": []})
    examples = [
        {
            **r,
            "lead": r.get("name") or r["id"],
            "already contact": r.get("out_existing_contact"),
            "contact match": r.get("out_existing_contact_score"),
            "already account": r.get("out_existing_account"),
            "account match": r.get("out_existing_account_score"),
        }
        for r in existing["examples"][:TOP_SHOWN]
    ]
    body = (
        '<div class="cards">'
        + figure("Open leads", data["open"], f"{data['leads']:,} leads in all")
        + figure("Scored", data.get("scored", 0))
        + figure("Sales ready", data.get("sales_ready", 0))
        + figure(
            "Already customers",
            existing["contact"] + existing["account"],
            f"{existing['contact']} contacts, {existing['account']} accounts",
        )
        + '</div><div class="cards">'
        + card(
            "Score distribution (open leads)",
            charts.histogram(data["scores"], bins=list(range(0, 101, 10)), label="Open leads per score band"),
        )
        + card(
            "Grade mix now",
            charts.bars(list(data["grades"]), list(data["grades"].values()), label="Open leads per grade")
            if data["grades"]
            else '<p class="muted">No grades yet.</p>',
        )
        + card("Grade mix over time (per scoring run)", grade_chart)
        + "</div>"
        + _model_card(data["model"])
        + '<div class="cards">'
        + card(
            "Top open leads and why",
            table(
                top,
                ["lead", "company", "source", "out_score", "out_grade", "out_trend", "factors"],
                headers={"out_score": "score", "out_grade": "grade", "out_trend": "trend"},
                classes={"factors": "pre"},
                empty="No scored open leads.",
            ),
            wide=True,
        )
        + card(
            "Open leads that already are customers",
            table(
                examples,
                [
                    "lead",
                    "company",
                    "email",
                    "already contact",
                    "contact match",
                    "already account",
                    "account match",
                ],
                empty="None found.",
            ),
            wide=True,
        )
        + "</div>"
    )
    return view.render("Leads", body, "/api/leads"), data


# ------------------------------------------------------------------------------------ duplicates


def duplicates(view: View) -> tuple[str, dict[str, Any]]:
    """Groups per table (tabs), largest score first."""
    chosen = view.query.get("table", "lead")
    if chosen not in data_duplicates.DUPLICATE_TABLES:
        chosen = "lead"
    page_text = view.query.get("page", "1")
    page_no = int(page_text) if page_text.isdigit() else 1
    data = view.ctx.cached(
        f"duplicates:{chosen}:{page_no}", lambda: data_duplicates.duplicates(view.ctx, chosen, page=page_no)
    )
    tabs = " · ".join(
        (
            f"<strong>{esc(t)} ({data['counts'][t]})</strong>"
            if t == chosen
            else link("/duplicates", f"{t} ({data['counts'][t]})", table=t)
        )
        for t in data_duplicates.DUPLICATE_TABLES
    )
    rows = [{**g, "open": link(f"/duplicates/{chosen}/{g['group']}", g["group"])} for g in data["groups"]]
    nav = []
    if data["page"] > 1:
        nav.append(link("/duplicates", "← previous", table=chosen, page=data["page"] - 1))
    if data["page"] < data["pages"]:
        nav.append(link("/duplicates", "next →", table=chosen, page=data["page"] + 1))
    sizes = data["sizes"]
    body = (
        f"<p>{tabs}</p>"
        + '<p class="muted">Approve merge / not a duplicate: these decisions arrive with the merge feature '
        '(a "Duplicate decision" column in Dynamics); until then, open a group to see its evidence and '
        "merge in Dynamics.</p>"
        + '<div class="cards">'
        + card(
            "Group sizes",
            charts.bars([str(k) for k in sizes], list(sizes.values()), label="Groups by number of records")
            if sizes
            else '<p class="muted">No groups.</p>',
        )
        + figure("Groups", data["groups_total"], f"in {chosen}")
        + card(
            f"Groups, strongest match first (page {data['page']} of {data['pages']})",
            table(
                rows,
                ["open", "records", "score", "suggested_master", "members"],
                raw=["open"],
                headers={"open": "group", "score": "match %"},
                empty="No duplicate groups in this table.",
            )
            + "<p>"
            + " ".join(nav)
            + "</p>",
            wide=True,
        )
        + "</div>"
    )
    return view.render("Duplicates", body, f"/api/duplicates?table={chosen}"), data


def duplicate_group(view: View, table_name: str, code: str) -> tuple[str, dict[str, Any] | None]:
    """One group: records side by side, evidence per field against the suggested master."""
    data = data_duplicates.duplicate_group(view.ctx, table_name, code)
    if data is None:
        return "", None
    records = data["records"]
    columns = len(records) + 1
    cells = ['<div class="field">field</div>']
    for r in records:
        cells.append(
            f'<div class="{"master" if r["master"] else ""}">{esc(r["label"])}<br>'
            f'<span class="muted">{esc(r["id"])}{" · suggested master" if r["master"] else ""}'
            f"{' · match ' + esc(r['score']) if r['score'] is not None else ''}</span></div>"
        )
    for f in data["fields"]:
        cells.append(
            f'<div class="field">{esc(f["field"])}<br><span class="muted">{esc(f["kind"])}</span></div>'
        )
        for value, evidence in zip(f["values"], f["evidence"], strict=True):
            level = evidence["level"]
            css = "agree" if level in ("exact", "high") else "differ" if level in ("low",) else ""
            note = "" if level == "master" else f' <span class="badge">{esc(level)}'
            if evidence["similarity"] is not None:
                note += f" {evidence['similarity']:.2f}"
            note += "</span>" if level != "master" else ""
            cells.append(f'<div class="{css}">{esc(value)}{note}</div>')
    grid = f'<div class="side side-{columns}">' + "".join(cells) + "</div>"
    body = (
        f"<p>{link('/duplicates', '← all groups', table=table_name)}</p>"
        + '<p class="muted">Each field of each record compared with the suggested master, with the '
        "comparison kinds of mappings/duplicates.toml: exact, high, medium, low (disagree) or missing.</p>"
        + (
            f'<p class="failed">No evidence: {esc(data["evidence_problem"])}</p>'
            if data["evidence_problem"]
            else ""
        )
        + card(f"{len(records)} {table_name} records", grid, wide=True)
        + '<p class="muted">Approve merge / not a duplicate: not available yet (they arrive with the merge '
        "feature as the Duplicate decision column).</p>"
    )
    return view.render(f"Duplicate group {code}", body, f"/api/duplicates/{table_name}/{code}"), data


# ------------------------------------------------------------------------------------ customers


def _clv_bins(values: list[float]) -> list[float]:
    if not values:
        return [0.0, 1.0]
    top = float(np.quantile(values, 0.98)) or max(values) or 1.0
    step = charts._nice_max(top / 10)
    edges = [step * i for i in range(11)]
    edges[-1] = max(edges[-1], max(values))
    return edges


def customers(view: View) -> tuple[str, dict[str, Any]]:
    """RFM heat maps, segments, CLV distribution, high value at risk, CLV by lead source and CLV:CAC."""
    data = view.ctx.cached("customers", lambda: data_results.customers(view.ctx))
    grid = data["grid"]
    heat = ""
    if grid:
        heat = card(
            "RFM grid: customers per cell (main segment named)",
            charts.heatmap(
                [f"R{r}" for r in grid["rows"]],
                [f"F{f}" for f in grid["columns"]],
                grid["count"],
                notes=grid["segment"],
                label="Customers by recency and frequency score",
                row_title="recency",
                column_title="frequency score",
                cell=90,
            ),
        ) + card(
            "RFM grid: historical value per cell",
            charts.heatmap(
                [f"R{r}" for r in grid["rows"]],
                [f"F{f}" for f in grid["columns"]],
                grid["value"],
                notes=grid["segment"],
                label="Historical value by recency and frequency score",
                row_title="recency",
                column_title="frequency score",
                cell=90,
            ),
        )
    segments = data["segments"]
    by_source = data["by_source"]
    costs_known = any(s.get("acquisition_cost") for s in by_source)
    cac_note = (
        ""
        if costs_known
        else "Set [console] acquisition_cost = {Web = 120.0, ...} in config.toml to see CLV:CAC per source."
    )
    body = (
        '<div class="cards">'
        + figure("Customers with a segment", data["customers"])
        + figure("High value at risk", len(data["at_risk"]))
        + figure("Predicted value, all customers", _money(sum(data["clv"])) if data["clv"] else "–")
        + "</div>"
        + '<div class="cards">'
        + heat
        + card(
            "Segments: customers",
            charts.bars(
                [s["segment"] for s in segments],
                [s["customers"] for s in segments],
                label="Customers per segment",
                width=640,
            ),
            wide=True,
        )
        + card(
            "Segments: value",
            charts.stacked_bars(
                [s["segment"] for s in segments],
                {
                    "historical": [s["historical_value"] for s in segments],
                    "predicted": [s["predicted_value"] for s in segments],
                },
                label="Historical and predicted value per segment",
                width=640,
            )
            + table(segments, ["segment", "customers", "historical_value", "predicted_value"]),
            wide=True,
        )
        + card(
            "Predicted customer lifetime value",
            charts.histogram(
                data["clv"], bins=_clv_bins(data["clv"]), label="Customers per predicted value band"
            ),
        )
        + card(
            "CLV by lead source",
            charts.bars(
                [s["source"] for s in by_source],
                [s["mean_clv"] or 0 for s in by_source],
                label="Mean predicted value per lead source",
            )
            + table(
                by_source,
                ["source", "customers", "mean_clv", "total_clv", "acquisition_cost", "clv_to_cac"],
                headers={"clv_to_cac": "CLV:CAC"},
            ),
            note="A customer's source is that of the earliest lead dvsync matched to it. " + cac_note,
        )
        + card(
            "High-value customers at risk",
            table(
                data["at_risk"],
                [
                    "name",
                    "table",
                    "out_rfm_segment",
                    "out_clv_historical",
                    "out_clv_predicted",
                    "out_p_alive",
                ],
                headers={
                    "out_rfm_segment": "segment",
                    "out_clv_historical": "historical",
                    "out_clv_predicted": "predicted",
                    "out_p_alive": "P(alive) %",
                },
                empty="No high-value customer is at risk.",
            ),
            wide=True,
        )
        + "</div>"
    )
    return view.render("Customers", body, "/api/customers"), data
