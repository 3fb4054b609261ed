"""Run the analytics jobs on mirror DataFrames and name their results as ``outputs.toml`` does.

Each job takes canonical frames (read from the mirror by the pipeline) and returns a
:class:`JobOutcome`: per target table (``lead``, ``account``, ``contact``) a frame indexed by record
id with one column per result name (``score``, ``rfm_segment``, ``clv_predicted``...), plus a
status and a sentence for the report. A job that cannot produce a result (a model that did not
converge, too little history) leaves that result out, so nothing is written for it, and says why.

No HTTP and no mirror here: the pipeline does the reading, planning and writing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from connector.errors import ConfigError, JobError
from jobs import scoring
from jobs.clustering import cluster
from jobs.clv import TIME_UNITS, unit_words
from jobs.customer_value import CustomerValueResult, compute_customer_value
from jobs.customer_value_config import load_customer_value_config
from jobs.duplicates import find_duplicates
from jobs.duplicates_config import load_duplicate_config

__all__ = [
    "JOB_ORDER",
    "MODEL_MAX_AGE",
    "JobOutcome",
    "customer_value_jobs",
    "duplicate_groups",
    "run_duplicates",
    "run_scoring",
]

log = logging.getLogger(__name__)

JOB_ORDER = ("scoring", "duplicates", "rfm", "clv")

MODEL_MAX_AGE = timedelta(days=7)
"""An active lead model older than this is retrained (and promoted only if as good, see
``promote_if_better``); a weekly retrain follows new outcomes without retraining every run."""


@dataclass
class JobOutcome:
    """What one job produced.

    Attributes:
        job: ``scoring``, ``duplicates``, ``rfm`` or ``clv``.
        status: ``ok``, ``partial`` (some results left out, see ``message``), ``skipped`` (no data)
            or ``failed``.
        message: what happened, in one or two sentences.
        results: per target table, results indexed by record id (one column per result name).
        details: figures for the report (engine, groups, segments...).
    """

    job: str
    status: str = "ok"
    message: str = ""
    results: dict[str, pd.DataFrame] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable summary (no per-record values)."""
        return {
            "status": self.status,
            "message": self.message,
            "records": {t: len(f) for t, f in self.results.items()},
            **self.details,
        }


# ------------------------------------------------------------------------------------ scoring


def _model_age(directory: Path, now: datetime) -> timedelta | None:
    version = scoring.active_version(directory)
    if version is None:
        return None
    try:
        meta = json.loads((directory / f"lead-model-{version}.json").read_text(encoding="utf-8"))
        saved = pd.Timestamp(meta["saved_at"])
    except (OSError, ValueError, KeyError):
        return None
    return pd.Timestamp(now) - saved


def _lead_model(
    leads: pd.DataFrame, activities: pd.DataFrame | None, model_dir: Path, now: datetime
) -> tuple[scoring.LeadModel | None, str]:
    """The model to score with (trained when missing or stale), or None and why the rules score."""
    choice = scoring.choose_engine(leads)
    if choice.engine != "model":
        return None, choice.reason
    age = _model_age(model_dir, now)
    if age is None or age > MODEL_MAX_AGE:
        try:
            model, _report = scoring.train_model(
                leads, time_column="created_on", activities=activities, now=now
            )
            promotion = scoring.promote_if_better(model, model_dir, now=now)
            log.info("lead model: %s", getattr(promotion, "reason", promotion))
        except (JobError, ConfigError, ValueError) as exc:
            return None, f"the model could not be trained ({exc}); the rules score"
    try:
        model = scoring.load_model(model_dir)
    except (JobError, OSError) as exc:
        return None, f"the saved model cannot be used ({exc}); the rules score"
    return model, f"{choice.reason} (model {model.version})"


def run_scoring(
    leads: pd.DataFrame,
    activities: pd.DataFrame | None,
    *,
    rules_path: Path,
    model_dir: Path,
    now: datetime,
    held_scores: pd.Series | None = None,
    held_trends: pd.Series | None = None,
) -> JobOutcome:
    """Score the open leads (model when the history allows it, else the rules).

    The trend is the direction of the last move of at least ``TREND_STEADY_BAND`` points against
    the score Dynamics holds: a smaller move keeps the trend shown (so an unchanged lead is never
    rewritten), a lead never scored before is "Not enough info".

    Args:
        leads: canonical leads (all of them: the closed ones train the model).
        activities: canonical activities, or None when none are mapped.
        rules_path: ``scoring.toml``.
        model_dir: where lead models are kept.
        now: the scoring moment.
        held_scores: the score Dynamics holds per lead id (the mirror's ``out_score``).
        held_trends: the trend Dynamics holds per lead id (``out_trend``).
    """
    outcome = JobOutcome("scoring")
    if leads.empty:
        outcome.status, outcome.message = "skipped", "no leads in the mirror"
        return outcome
    rules = scoring.load_rules(rules_path, columns=leads.columns)
    model, reason = _lead_model(leads, activities, model_dir, now)
    open_leads = leads[leads["status"].astype("string").str.lower().eq("open").fillna(False)]
    if open_leads.empty:
        outcome.status, outcome.message = "skipped", "no open leads to score"
        return outcome
    scored = scoring.score(open_leads, rules=rules, as_of=now, model=model, activities=activities)
    ids = scored.index.astype(str).str.lower()
    scored = scored.set_axis(ids)
    held = (held_scores if held_scores is not None else pd.Series(dtype=float)).copy()
    held.index = held.index.astype(str).str.lower()
    held = pd.to_numeric(held.reindex(ids), errors="coerce")
    shown = (held_trends if held_trends is not None else pd.Series(dtype=object)).copy()
    shown.index = shown.index.astype(str).str.lower()
    shown = shown.reindex(ids)
    moved = scoring.trend(scored["score"], held)
    steady_kept = moved.eq("Steady") & shown.notna()
    trend = moved.where(~steady_kept, shown)
    results = pd.DataFrame(
        {
            "score": scored["score"].astype(int),
            "grade": scored["grade"].astype(object),
            "factors": ["\n".join(f) for f in scored["factors"]],
            "trend": trend.astype(object),
            "sales_ready": scored["sales_ready"].astype(bool),
        },
        index=ids,
    )
    outcome.results["lead"] = results
    outcome.message = f"{len(results)} open leads scored; {reason}"
    outcome.details = {
        "engine": "model" if model is not None else "rules",
        "scored": len(results),
        "sales_ready": int(results["sales_ready"].sum()),
    }
    return outcome


# ------------------------------------------------------------------------------------ duplicates


def duplicate_groups(
    pairs: pd.DataFrame, groups: pd.DataFrame, held_masters: pd.Series | None = None
) -> pd.DataFrame:
    """Turn clustered pairs into the duplicate results of each grouped record.

    The suggested master is sticky: when the master Dynamics already shows for a group's members
    is still in the group, it stays, so a salesperson's suggestion does not flip between runs
    because a record was edited (our own write-back changes ``modified_on`` too).

    Args:
        pairs: ``id_left``, ``id_right``, ``score`` (``find_duplicates`` output).
        groups: ``cluster`` output (``record_id``, ``cluster_id``, ``master_id``...).
        held_masters: the master Dynamics holds per record id (the mirror's
            ``out_suggested_master``), or None.

    Returns:
        Index = record id; ``duplicate_group`` (``DUP-`` and the first 8 characters of the group's
        smallest id, so the code stays the same between runs while the group does),
        ``duplicate_score`` (the record's best match within its group, 0..1) and
        ``suggested_master``.
    """
    if groups.empty:
        return pd.DataFrame(
            {"duplicate_group": [], "duplicate_score": [], "suggested_master": []},
            index=pd.Index([], dtype=object),
        )
    members = groups.assign(record_id=groups["record_id"].astype(str).str.lower())
    smallest = members.groupby("cluster_id")["record_id"].transform("min")
    members["code"] = "DUP-" + smallest.str.replace("-", "", regex=False).str[:8].str.upper()
    if held_masters is not None and not held_masters.empty:
        held = held_masters.dropna().astype(str).str.lower()
        held.index = held.index.astype(str).str.lower()
        claims = members[["cluster_id"]].assign(held=members["record_id"].map(held)).dropna()
        valid = claims.merge(
            members[["cluster_id", "record_id"]],
            left_on=["cluster_id", "held"],
            right_on=["cluster_id", "record_id"],
        )
        if not valid.empty:
            sticky = valid.groupby("cluster_id")["held"].agg(lambda s: s.value_counts().index[0])
            members["master_id"] = members["cluster_id"].map(sticky).fillna(members["master_id"])
    cluster_of = members.set_index("record_id")["cluster_id"]
    left = pairs["id_left"].astype(str).str.lower()
    right = pairs["id_right"].astype(str).str.lower()
    same = left.map(cluster_of).eq(right.map(cluster_of)) & left.map(cluster_of).notna()
    both = pd.concat(
        [
            pd.DataFrame({"record_id": left[same], "score": pairs["score"][same]}),
            pd.DataFrame({"record_id": right[same], "score": pairs["score"][same]}),
        ]
    )
    best = both.groupby("record_id")["score"].max()
    frame = members.set_index("record_id")
    return pd.DataFrame(
        {
            "duplicate_group": frame["code"].astype(object),
            "duplicate_score": best.reindex(frame.index).astype(float),
            "suggested_master": frame["master_id"].astype(str).str.lower().astype(object),
        },
        index=frame.index,
    )


def run_duplicates(frames: Mapping[str, pd.DataFrame], *, config_path: Path) -> JobOutcome:
    """Find duplicate groups in each table of ``frames`` that ``duplicates.toml`` configures.

    Every record of a scanned table gets a result: its group, or empty values when it is in none
    (so a group that dissolved is cleared in Dynamics).
    """
    outcome = JobOutcome("duplicates")
    notes: list[str] = []
    counts: dict[str, int] = {}
    for table, records in frames.items():
        if records.empty:
            continue
        try:
            config = load_duplicate_config(config_path, table)
        except ConfigError as exc:
            if f"[{table}]" in str(exc) or "no section" in str(exc).lower():
                continue
            raise
        held = None
        if "out_suggested_master" in records.columns:
            held = records.set_index(config.id_column)["out_suggested_master"]
        # Our own output columns must not count towards a record's completeness.
        records = records.drop(columns=[c for c in records.columns if c.startswith("out_")])
        try:
            pairs = find_duplicates(records, **config.find_kwargs())
            groups = cluster(pairs, records=records, **config.cluster_kwargs())
        except JobError as exc:
            outcome.status = "partial"
            notes.append(f"{table}: nothing written ({exc})")
            continue
        found = duplicate_groups(pairs, groups, held)
        ids = records[config.id_column].astype(str).str.lower()
        outcome.results[table] = found.reindex(pd.Index(ids, name=None))
        counts[table] = int(groups["cluster_id"].nunique()) if not groups.empty else 0
        notes.append(f"{table}: {counts[table]} groups, {len(found)} records")
    outcome.details = {"groups": counts}
    outcome.message = "; ".join(notes) or "no table to scan"
    if not outcome.results and outcome.status == "ok":
        outcome.status = "skipped"
    return outcome


# ------------------------------------------------------------------------------------ customer value


def _value_reason(result: CustomerValueResult, as_of: pd.Timestamp) -> pd.Series:
    """One line per customer: orders, days since the last one, and (when predicted) P(alive)."""
    hist = result.historical
    days = (as_of.normalize() - pd.to_datetime(hist["last_purchase"], utc=True).dt.normalize()).dt.days
    orders = hist["purchases"].astype(int).astype(str)
    noun = np.where(hist["purchases"].to_numpy() == 1, " order", " orders")
    text = orders + noun + ", the last " + days.astype(int).astype(str) + " days ago"
    if result.predicted is not None:
        alive = (result.predicted["p_alive"].reindex(hist.index) * 100).round().astype("Int64")
        text = text + ": " + alive.astype(str) + "% likely still active"
    return text.astype(object)


def customer_value_jobs(
    orders: pd.DataFrame, jobs: set[str], *, config_path: Path, as_of: datetime
) -> list[JobOutcome]:
    """Run RFM and/or CLV on the canonical orders and split the results by customer table.

    The customer's table comes from the orders' ``customer_type`` (``account`` / ``contact``).
    When the predictive models cannot be fitted (too little history, no convergence), the CLV
    job still writes the historical value and leaves the predicted fields out, saying why.
    """
    wanted = [j for j in ("rfm", "clv") if j in jobs]
    outcomes = {j: JobOutcome(j) for j in wanted}
    if orders.empty:
        for outcome in outcomes.values():
            outcome.status, outcome.message = "skipped", "no orders in the mirror"
        return list(outcomes.values())
    config = load_customer_value_config(config_path)
    day = pd.Timestamp(as_of).tz_convert("UTC").normalize()
    result = compute_customer_value(orders, config, as_of=day)
    kinds = (
        orders[["customer_id", "customer_type"]]
        .dropna()
        .assign(customer_id=lambda f: f["customer_id"].astype(str).str.lower())
        .drop_duplicates("customer_id")
        .set_index("customer_id")["customer_type"]
        .astype(str)
        .str.lower()
    )

    def split(frame: pd.DataFrame, outcome: JobOutcome) -> None:
        frame = frame.set_axis(frame.index.astype(str).str.lower())
        of = kinds.reindex(frame.index)
        for table in ("account", "contact"):
            part = frame[of.eq(table).fillna(False).to_numpy()]
            if not part.empty:
                outcome.results[table] = part

    if "rfm" in outcomes:
        rfm = result.rfm
        frame = pd.DataFrame(
            {
                "rfm_recency": rfm["r_score"].astype(int),
                "rfm_frequency": rfm["f_score"].astype(int),
                "rfm_monetary": rfm["m_score"].astype(int),
                "rfm_cell": rfm["rfm_cell"].astype(str).astype(object),
                "rfm_segment": rfm["segment"].astype(object),
            },
            index=rfm.index,
        )
        split(frame, outcomes["rfm"])
        segments = rfm["segment"].value_counts()
        outcomes["rfm"].details = {
            "customers": len(rfm),
            "segments": {str(k): int(v) for k, v in segments.items()},
        }
        outcomes["rfm"].message = f"{len(rfm)} customers in {len(segments)} segments"
    if "clv" in outcomes:
        outcome = outcomes["clv"]
        hist = result.historical
        frame = pd.DataFrame({"clv_historical": hist["historical_clv"].astype(float)}, index=hist.index)
        frame["value_reason"] = _value_reason(result, day)
        if result.predicted is not None:
            predicted = result.predicted.reindex(hist.index)
            frame["clv_predicted"] = predicted["clv"].astype(float)
            frame["p_alive"] = predicted["p_alive"].astype(float)
            frame["churn_risk"] = predicted["churn_risk"].astype("boolean")
            frame["high_value"] = predicted["high_value"].astype("boolean")
            over = _horizon_words(
                result.predicted.attrs.get("horizon"), result.predicted.attrs.get("time_unit")
            )
            outcome.message = f"{len(hist)} customers valued; spend predicted{over}"
            outcome.details = {
                "customers": len(hist),
                "high_value": int(predicted["high_value"].fillna(False).sum()),
                "churn_risk": int(predicted["churn_risk"].fillna(False).sum()),
            }
        else:
            outcome.status = "partial"
            outcome.message = (
                f"historical value only for {len(hist)} customers; predicted value, still-active %, "
                f"churn risk and high value not written: {result.predictive_problem}"
            )
            outcome.details = {"customers": len(hist), "predictive_problem": result.predictive_problem}
        split(frame, outcome)
    return list(outcomes.values())


def _horizon_words(horizon: float | None, time_unit: str | None) -> str:
    """' over the next 52.18 weeks (12 months)': the model's unit, and months for the reader."""
    if not horizon or time_unit not in TIME_UNITS:
        return ""
    months = float(horizon) * TIME_UNITS[time_unit] / TIME_UNITS["M"]
    in_unit = unit_words(round(float(horizon), 2), time_unit)
    in_months = "" if time_unit == "M" else f" ({months:.3g} months)"
    return f" over the next {in_unit}{in_months}"
