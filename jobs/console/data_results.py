"""The data behind the Leads and Customers pages (also served as JSON under ``/api/``).

Scores, grades, segments and values are read from the mirror's ``out_`` columns: what Dynamics
holds, i.e. what salespeople see on their forms. The grade mix over time comes from the results
the service keeps per run (the last ten runs), the model's validation report from the active lead
model's JSON beside the mirror.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from jobs.console.context import ConsoleContext
from jobs.console.data_runs import plain

__all__ = ["customers", "leads", "read_columns"]

GRADES = ("A", "B", "C", "D")
TOP = 25


def read_columns(ctx: ConsoleContext, table: str, columns: Sequence[str]) -> pd.DataFrame:
    """The mirror table's id and those of ``columns`` it has (empty when the table is not mirrored)."""
    layouts = ctx.mirror.layouts()
    if table not in layouts:
        return pd.DataFrame()
    present = [c for c in columns if c in layouts[table].columns]
    frame = ctx.mirror.read_frame(table, present)
    return frame.rename(columns={layouts[table].id_column: "id"})


def _records(frame: pd.DataFrame, columns: Sequence[str]) -> list[dict[str, Any]]:
    shown = [c for c in columns if c in frame.columns]
    return [{c: plain(v) for c, v in row.items()} for row in frame[shown].to_dict(orient="records")]


# ------------------------------------------------------------------------------------ leads


def leads(ctx: ConsoleContext) -> dict[str, Any]:
    """Score distribution, grade mix per run, the model's report, top open leads, leads already customers."""
    frame = read_columns(
        ctx,
        "lead",
        [
            "first_name",
            "last_name",
            "company",
            "email",
            "source",
            "status",
            "out_score",
            "out_grade",
            "out_factors",
            "out_trend",
            "out_sales_ready",
            "out_existing_contact",
            "out_existing_contact_score",
            "out_existing_account",
            "out_existing_account_score",
        ],
    )
    if frame.empty:
        return {"leads": 0, "open": 0, "scores": [], "grades": {}, "grade_history": [], "model": _model(ctx)}
    status = (
        frame["status"].astype("string").str.lower()
        if "status" in frame
        else pd.Series("open", index=frame.index)
    )
    open_leads = frame[status.eq("open").fillna(False).to_numpy()].copy()
    open_leads["name"] = (
        open_leads.get("first_name", pd.Series("", index=open_leads.index)).fillna("").astype(str)
        + " "
        + open_leads.get("last_name", pd.Series("", index=open_leads.index)).fillna("").astype(str)
    ).str.strip()
    scored = open_leads.dropna(subset=["out_score"]) if "out_score" in open_leads else open_leads.iloc[0:0]
    scores = [int(s) for s in scored.get("out_score", pd.Series(dtype=float))]
    grades = (
        scored["out_grade"].value_counts().reindex(list(GRADES), fill_value=0)
        if "out_grade" in scored
        else None
    )
    top = (
        scored.sort_values(["out_score", "id"], ascending=[False, True]).head(TOP) if len(scored) else scored
    )
    existing = _already_customers(open_leads)
    return {
        "leads": len(frame),
        "open": len(open_leads),
        "scored": len(scored),
        "sales_ready": int(scored["out_sales_ready"].fillna(False).astype(bool).sum())
        if "out_sales_ready" in scored
        else 0,
        "scores": scores,
        "grades": {str(k): int(v) for k, v in grades.items()} if grades is not None else {},
        "grade_history": _grade_history(ctx),
        "model": _model(ctx),
        "top_leads": _records(
            top,
            ["id", "name", "company", "source", "out_score", "out_grade", "out_trend", "out_factors"],
        ),
        "already_customers": existing,
    }


def _already_customers(open_leads: pd.DataFrame) -> dict[str, Any]:
    contact = open_leads["out_existing_contact"].notna() if "out_existing_contact" in open_leads else None
    account = open_leads["out_existing_account"].notna() if "out_existing_account" in open_leads else None
    if contact is None and account is None:
        return {"contact": 0, "account": 0, "examples": []}
    either = (contact if contact is not None else False) | (account if account is not None else False)
    rows = open_leads[either]
    return {
        "contact": int(contact.sum()) if contact is not None else 0,
        "account": int(account.sum()) if account is not None else 0,
        "examples": _records(
            rows.head(TOP),
            [
                "id",
                "name",
                "company",
                "email",
                "out_existing_contact",
                "out_existing_contact_score",
                "out_existing_account",
                "out_existing_account_score",
            ],
        ),
    }


def _grade_history(ctx: ConsoleContext) -> list[dict[str, Any]]:
    """Grade counts of each kept run that scored leads, oldest first.

    From each run's scoring report (``grades``): the mirror keeps the last value per lead, not a
    copy per run. A run that reused its scores reports the mix it reused.
    """
    history = []
    for row in ctx.mirror.runs(30, kind="run").itertuples():
        if row.dry_run or not row.jobs or "scoring" not in row.jobs:
            continue
        report = ((row.stats or {}).get("jobs") or {}).get("scoring") or {}
        counts = report.get("grades")
        if not isinstance(counts, dict) or not counts:
            continue
        history.append(
            {
                "run_id": int(row.run_id),
                "at": plain(row.started_at),
                **{g: int(counts.get(g, 0)) for g in GRADES},
            }
        )
    return list(reversed(history))


def _model(ctx: ConsoleContext) -> dict[str, Any] | None:
    """The active lead model's validation report, or None when the rules score."""
    directory = ctx.state_dir / "models" / "lead-scoring"
    pointer = directory / "active.json"
    if not pointer.is_file():
        return None
    try:
        version = json.loads(pointer.read_text(encoding="utf-8"))["version"]
        meta = json.loads((directory / f"lead-model-{version}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError) as exc:
        return {"error": f"the active model's files cannot be read ({exc}); the next run retrains"}
    report = meta.get("report") or {}
    return {"version": version, "saved_at": meta.get("saved_at"), **report}


# ------------------------------------------------------------------------------------ customers


VALUE_COLUMNS = [
    "out_rfm_recency",
    "out_rfm_frequency",
    "out_rfm_monetary",
    "out_rfm_segment",
    "out_clv_historical",
    "out_clv_predicted",
    "out_p_alive",
    "out_churn_risk",
    "out_high_value",
]


def _customer_frame(ctx: ConsoleContext) -> pd.DataFrame:
    parts = []
    for table, name_columns in (("account", ["name"]), ("contact", ["first_name", "last_name"])):
        frame = read_columns(ctx, table, [*name_columns, *VALUE_COLUMNS])
        if frame.empty or "out_rfm_segment" not in frame:
            continue
        if table == "contact":
            frame["name"] = (
                frame.get("first_name", "").fillna("").astype(str)
                + " "
                + frame.get("last_name", "").fillna("").astype(str)
            ).str.strip()
        frame["table"] = table
        parts.append(frame[["id", "table", "name", *[c for c in VALUE_COLUMNS if c in frame.columns]]])
    if not parts:
        return pd.DataFrame(columns=["id", "table", "name", *VALUE_COLUMNS])
    customers = pd.concat(parts, ignore_index=True)
    return customers.dropna(subset=["out_rfm_segment"])


def customers(ctx: ConsoleContext) -> dict[str, Any]:
    """RFM grid, segments, CLV distribution, high value at risk, CLV by lead source and CLV:CAC."""
    frame = _customer_frame(ctx)
    if frame.empty:
        return {"customers": 0, "grid": None, "segments": [], "clv": [], "at_risk": [], "by_source": []}
    for column in ("out_clv_historical", "out_clv_predicted", "out_p_alive"):
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return {
        "customers": len(frame),
        "grid": _grid(frame),
        "segments": _segments(frame),
        "clv": [round(float(v), 2) for v in frame["out_clv_predicted"].dropna()]
        if "out_clv_predicted" in frame
        else [],
        "at_risk": _at_risk(frame),
        "by_source": _by_source(ctx, frame),
    }


def _grid(frame: pd.DataFrame) -> dict[str, Any] | None:
    """Recency (rows, 5 = most recent) by frequency (columns): customers, value and main segment."""
    if not {"out_rfm_recency", "out_rfm_frequency"} <= set(frame.columns):
        return None
    scored = frame.dropna(subset=["out_rfm_recency", "out_rfm_frequency"])
    r = scored["out_rfm_recency"].astype(int)
    f = scored["out_rfm_frequency"].astype(int)
    rows, columns = [5, 4, 3, 2, 1], [1, 2, 3, 4, 5]
    count = np.zeros((5, 5), dtype=int)
    value = np.zeros((5, 5))
    segment = [["" for _ in columns] for _ in rows]
    historical = scored.get("out_clv_historical", pd.Series(0.0, index=scored.index)).fillna(0.0)
    for (ri, fi), members in scored.groupby([r, f]):
        i, j = rows.index(int(ri)), columns.index(int(fi))
        count[i, j] = len(members)
        value[i, j] = float(historical.loc[members.index].sum())
        segment[i][j] = str(members["out_rfm_segment"].mode().iloc[0])
    return {
        "rows": rows,
        "columns": columns,
        "count": count.tolist(),
        "value": np.round(value, 2).tolist(),
        "segment": segment,
    }


def _segments(frame: pd.DataFrame) -> list[dict[str, Any]]:
    grouped = frame.groupby("out_rfm_segment")
    out = []
    for name, members in grouped:
        out.append(
            {
                "segment": str(name),
                "customers": len(members),
                "historical_value": round(
                    float(members.get("out_clv_historical", pd.Series(dtype=float)).sum()), 2
                ),
                "predicted_value": round(
                    float(members.get("out_clv_predicted", pd.Series(dtype=float)).sum()), 2
                ),
            }
        )
    return sorted(out, key=lambda s: -s["customers"])


def _flag(series: pd.Series) -> pd.Series:
    return series.map(
        lambda v: v is not None and not (isinstance(v, float) and np.isnan(v)) and bool(v)
    ).astype(bool)


def _at_risk(frame: pd.DataFrame) -> list[dict[str, Any]]:
    if not {"out_high_value", "out_churn_risk"} <= set(frame.columns):
        return []
    risky = frame[_flag(frame["out_high_value"]) & _flag(frame["out_churn_risk"])]
    risky = risky.sort_values("out_clv_historical", ascending=False).head(TOP)
    return _records(
        risky,
        ["id", "table", "name", "out_rfm_segment", "out_clv_historical", "out_clv_predicted", "out_p_alive"],
    )


def _by_source(ctx: ConsoleContext, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """CLV per lead source: a customer's source is that of its earliest lead matched to it.

    dvsync links open leads to the contact or account they already are (the duplicates job); a
    customer with no such lead counts under "(no lead)". CLV:CAC divides the mean predicted value
    by the acquisition cost the consultant set for that source (``[console] acquisition_cost``).
    """
    leads = read_columns(
        ctx, "lead", ["source", "created_on", "out_existing_contact_id", "out_existing_account_id"]
    )
    sources: dict[str, str] = {}
    if not leads.empty and "source" in leads:
        if "created_on" in leads:
            leads = leads.sort_values("created_on")
        for column in ("out_existing_contact_id", "out_existing_account_id"):
            if column in leads:
                linked = leads.dropna(subset=[column])
                for customer, source in zip(
                    linked[column].astype(str).str.lower(), linked["source"], strict=True
                ):
                    sources.setdefault(customer, str(source) if source is not None else "(unknown)")
    ids = frame["id"].astype(str).str.lower()
    source = ids.map(sources).fillna("(no lead)")
    predicted = frame.get("out_clv_predicted", pd.Series(np.nan, index=frame.index))
    costs = ctx.settings.console.acquisition_cost
    out = []
    for name, members in predicted.groupby(source):
        mean = float(members.mean()) if members.notna().any() else None
        cost = costs.get(str(name))
        out.append(
            {
                "source": str(name),
                "customers": len(members),
                "mean_clv": round(mean, 2) if mean is not None else None,
                "total_clv": round(float(members.sum()), 2),
                "acquisition_cost": cost,
                "clv_to_cac": round(mean / cost, 2) if cost and mean is not None else None,
            }
        )
    return sorted(out, key=lambda s: (s["source"] == "(no lead)", -(s["mean_clv"] or 0)))
