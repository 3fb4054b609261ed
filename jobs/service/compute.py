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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ConfigError
from jobs.errors import JobError
from jobs.leads import scoring
from jobs.leads.duplicates.clustering import cluster
from jobs.leads.duplicates.config import DuplicateConfig, load_duplicate_config
from jobs.leads.duplicates.detect import find_duplicates, link_records
from jobs.leads.duplicates.incremental import cache_options, cache_report
from jobs.leads.duplicates.merge_config import load_merge_config
from jobs.leads.duplicates.merge_policy import drop_pairs, duplicate_status
from jobs.service import scoring_rows

__all__ = [
    "JOB_ORDER",
    "MODEL_MAX_AGE",
    "MODEL_TRAINING",
    "JobOutcome",
    "duplicate_groups",
    "existing_records",
    "run_duplicates",
    "run_scoring",
    "score_trend",
    "scoring_moment",
]

log = logging.getLogger(__name__)

FindPairs = Callable[[str, pd.DataFrame, dict[str, Any]], pd.DataFrame]
"""Another finder of a table's duplicate pairs: (table, records, find_duplicates' options) -> pairs."""

JOB_ORDER = ("scoring", "duplicates", "rfm", "clv")

EXISTING_TABLES = ("contact", "account")
"""The tables a lead is checked against, in this order (``[lead.link.<table>]`` in duplicates.toml)."""
EVIDENCE_EXAMPLES = 5
"""Matches per table whose evidence is kept in the job's details (all of them go to the debug log)."""

MODEL_MAX_AGE = timedelta(days=7)
# How the pipeline trains the lead model: validated on the newest 20% of closed leads by creation.
MODEL_TRAINING: dict[str, Any] = {"time_column": "created_on"}
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
    leads: pd.DataFrame,
    activities: pd.DataFrame | None,
    model_dir: Path,
    now: datetime,
    train: Callable[[], tuple[scoring.LeadModel, dict[str, Any]]] | None = None,
) -> tuple[scoring.LeadModel | None, str]:
    """The model to score with (trained when missing or stale), or None and why the rules score.

    ``train`` replaces the training on ``leads`` and ``activities`` (the Spark engine builds the
    features on its executors and fits with :func:`train_on_features` and :data:`MODEL_TRAINING`).
    """
    choice = scoring.choose_engine(leads)
    if choice.engine != "model":
        return None, choice.reason
    age = _model_age(model_dir, now)
    if age is None or age > MODEL_MAX_AGE:
        try:
            if train is None:
                model, _report = scoring.train_model(leads, activities=activities, now=now, **MODEL_TRAINING)
            else:
                model, _report = train()
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
    caches: dict[str, Any] | None = None,
    kept: pd.DataFrame | None = None,
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
        caches: the job's caches from the last run (updated in place), or None: with ``kept``
            (the last results), only the open leads whose inputs changed are scored when the
            rules, the model and the day are the same (:mod:`jobs.service.scoring_rows`).
        kept: the last run's results (index lead id), for ``caches``.
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
    results, changed = scoring_rows.score_open_leads(
        leads,
        open_leads,
        activities,
        rules,
        model,
        as_of=scoring_moment(now),
        rules_path=rules_path,
        caches=caches,
        kept=kept,
    )
    results["trend"] = score_trend(results["score"], held_scores, held_trends)
    outcome.results["lead"] = results
    outcome.message = f"{len(results)} open leads scored; {reason}"
    outcome.details = {
        "engine": "model" if model is not None else "rules",
        "scored": len(results),
        # Leads scored this run (the others kept their results: their inputs did not change).
        "rescored": len(results) if changed is None else changed,
        "sales_ready": int(results["sales_ready"].sum()),
        # The grade mix of this run, for the console's history (the mirror keeps only the last
        # value per lead, not a copy per run).
        "grades": {str(g): int(n) for g, n in results["grade"].value_counts().sort_index().items()},
    }
    return outcome


def scoring_moment(now: datetime) -> pd.Timestamp:
    """The moment scores describe: the end of ``now``'s UTC day (on every engine).

    Every run of one day then gives the same score for the same lead, so a run that changed
    nothing can reuse them (and the activities of the day all count).
    """
    return pd.Timestamp(now).tz_convert("UTC").normalize() + pd.Timedelta(days=1)


def score_trend(scores: pd.Series, held_scores: pd.Series | None, held_trends: pd.Series | None) -> pd.Series:
    """The trend of each score (index: lower-case lead id) against what Dynamics holds.

    The direction of a move of at least ``TREND_STEADY_BAND`` points; a smaller move keeps the
    trend shown (so an unchanged lead is never rewritten); a lead never scored is "Not enough info".
    """
    ids = scores.index
    held = (held_scores if held_scores is not None else pd.Series(dtype=float)).copy()
    held.index = held.index.astype(str).str.lower()
    held = pd.to_numeric(held.reindex(ids), errors="coerce")
    shown = (held_trends if held_trends is not None else pd.Series(dtype=object)).copy()
    shown.index = shown.index.astype(str).str.lower()
    shown = shown.reindex(ids)
    moved = scoring.trend(scores, held)
    steady_kept = moved.eq("Steady") & shown.notna()
    return moved.where(~steady_kept, shown).astype(object)


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
            sticky = _most_held(valid)
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


def _most_held(valid: pd.DataFrame) -> pd.Series:
    """Per ``cluster_id``, the ``held`` master most members name; a tie goes to the one named
    first (as ``value_counts`` orders them), so the choice is the same on every run. One grouped
    count instead of a Python call per group (2,335 groups took 0.7 s)."""
    named = valid[["cluster_id", "held"]].assign(order=np.arange(len(valid)))
    counts = (
        named.groupby(["cluster_id", "held"], sort=False, observed=True)["order"]
        .agg(["size", "min"])
        .reset_index()
        .sort_values(["cluster_id", "size", "min"], ascending=[True, False, True], kind="stable")
    )
    return counts.drop_duplicates("cluster_id").set_index("cluster_id")["held"]


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    """A column as stripped text ("" when missing or absent), for building labels."""
    if column not in frame.columns:
        return pd.Series("", index=frame.index, dtype=object)
    return frame[column].astype("string").fillna("").str.strip().astype(object)


def _labels(table: str, records: pd.DataFrame) -> pd.Series:
    """What a salesperson reads for a matched record: "Jane Doe <jane@x.com>", "Contoso Ltd, London".

    A part that is empty is left out with its punctuation; a record with no name, email or city at
    all is shown by its id, so a match is never an empty-looking value.
    """
    if table == "contact":
        name = (_text(records, "first_name") + " " + _text(records, "last_name")).str.strip()
        email = _text(records, "email")
        label = (name + np.where(email.ne(""), " <" + email + ">", "")).str.strip()
    else:
        name, city = _text(records, "name"), _text(records, "city")
        label = name + np.where(name.ne("") & city.ne(""), ", ", "") + city
    ids = records.index.to_series(index=records.index).astype(str)
    return label.where(label.ne(""), ids).astype(object)


def _why(evidence: Mapping[str, Mapping[str, Any]]) -> str:
    """One match's evidence in a line: the fields that agreed, strongest first, with their weight."""
    agreed = sorted(
        ((c, e) for c, e in evidence.items() if e.get("agreed")), key=lambda ce: -float(ce[1]["weight"])
    )
    return ", ".join(f"{c} {e['level']} ({float(e['weight']):+.1f})" for c, e in agreed) or "no field agreed"


def existing_records(
    leads: pd.DataFrame,
    existing: Mapping[str, pd.DataFrame],
    config: DuplicateConfig,
    caches: dict[str, Any] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Find, for each lead, the contact and the account it already is (the best match of each).

    Each table is linked once with the lead's ``[lead.link.<table>]`` settings: one model fitted on
    the leads and that table together, every lead scored by it, pairs under the link's threshold
    dropped. Of the pairs left, each lead keeps its highest-scoring match (ties: the smallest id).

    Args:
        leads: canonical leads to check (the pipeline passes the open ones), with ``config.id_column``.
        existing: ``contact`` / ``account`` -> their canonical records; a table that is missing,
            empty or has no link in ``config`` is not checked and gets no result columns.
        config: the lead's duplicate settings (``load_duplicate_config(path, "lead")``).
        caches: the duplicate job's caches (see :func:`run_duplicates`), or None.

    Returns:
        ``(results, details)``. ``results``: index = lead id (lower case), every lead of ``leads``;
        per checked table ``existing_<table>`` (the label: "Jane Doe <jane@x.com>" for a contact,
        "Contoso Ltd, London" for an account), ``existing_<table>_id`` (its id, lower case) and
        ``existing_<table>_score`` (match probability 0..1); all empty for a lead with no match.
        ``details``: per checked table ``linked`` (leads matched), ``checked``, ``threshold``,
        ``model`` (``em`` or ``default``) and ``examples`` (the first matches with their evidence).

    Raises:
        ConfigError: a linked field or column the records do not have.
        JobError: missing or repeated ids.
    """
    lead_ids = leads[config.id_column].astype(str).str.lower()
    results = pd.DataFrame(index=pd.Index(lead_ids.to_numpy(), dtype=object))
    details: dict[str, Any] = {}
    for table in EXISTING_TABLES:
        records = existing.get(table)
        if table not in config.links or records is None or records.empty or leads.empty:
            continue
        kwargs = config.link_kwargs(table)
        run = link_records(
            leads,
            records,
            report=True,
            **kwargs,
            **cache_options(caches, f"link:{table}", max_age=MODEL_MAX_AGE),
        )
        pairs = run.pairs.assign(
            id_left=run.pairs["id_left"].astype(str).str.lower(),
            id_right=run.pairs["id_right"].astype(str).str.lower(),
        )
        best = pairs.sort_values(
            ["id_left", "score", "id_right"], ascending=[True, False, True], kind="stable"
        ).drop_duplicates("id_left")
        best = best.set_index("id_left")
        others = records.set_axis(records[kwargs["right_id"]].astype(str).str.lower())
        labels = _labels(table, others)
        matched = best["id_right"].reindex(results.index)
        results[f"existing_{table}"] = matched.map(labels).astype(object)
        results[f"existing_{table}_id"] = matched.astype(object)
        results[f"existing_{table}_score"] = best["score"].reindex(results.index).astype(float)
        why = best["evidence"].map(_why)
        if log.isEnabledFor(logging.DEBUG):
            for lead_id, row in best.iterrows():
                log.debug(
                    "lead %s is %s %s (%.2f): %s", lead_id, table, row["id_right"], row["score"], why[lead_id]
                )
        details[table] = {
            "linked": len(best),
            "checked": len(results),
            "threshold": float(run.threshold),
            "model": run.model.source,
            "examples": [
                {
                    "lead_id": lead_id,
                    f"{table}_id": row["id_right"],
                    "label": labels.get(row["id_right"]),
                    "score": round(float(row["score"]), 3),
                    "evidence": why[lead_id],
                }
                for lead_id, row in best.sort_values("score", ascending=False)
                .head(EVIDENCE_EXAMPLES)
                .iterrows()
            ],
        }
    return results, details


def _open(leads: pd.DataFrame) -> pd.DataFrame:
    """The open leads (all of them when the status is not mapped: none can be ruled out)."""
    if "status" not in leads.columns:
        return leads
    return leads[leads["status"].astype("string").str.lower().eq("open").fillna(False).to_numpy()]


def _without_outputs(records: pd.DataFrame) -> pd.DataFrame:
    # Our own output columns must not count towards a record's completeness nor be compared.
    return records.drop(columns=[c for c in records.columns if c.startswith("out_")])


def run_duplicates(
    frames: Mapping[str, pd.DataFrame],
    *,
    config_path: Path,
    caches: dict[str, Any] | None = None,
    now: datetime | None = None,
    ruled: Mapping[str, pd.DataFrame] | None = None,
    find: FindPairs | None = None,
) -> JobOutcome:
    """Find duplicate groups in each table of ``frames`` that ``duplicates.toml`` configures, and
    the contact and account each open lead already is.

    Every record of a scanned table gets a result: its group, or empty values when it is in none
    (so a group that dissolved is cleared in Dynamics). Likewise every lead gets the existing
    contact / account results when ``[lead.link.contact]`` / ``[lead.link.account]`` are configured
    and that table has records: the best match of an open lead, empty for a lead with no match and
    for a lead that is no longer open (nobody works it; a qualified lead is a contact by design).
    ``ruled``: per table, the pairs a person marked "not a duplicate" (``merge_store.memory``);
    they are never grouped again, whatever the model scores them.

    ``caches`` (kept by the pipeline between runs, updated in place) holds what the last run
    normalised, compared and fitted, so that only pairs involving a changed record are compared
    again (see :mod:`jobs.leads.duplicates.incremental`); ``now`` dates the models fitted, which
    are refitted after :data:`MODEL_MAX_AGE` (or sooner when the data drifted).
    ``find(table, records, options)``: finds a table's pairs instead of
    :func:`find_duplicates` (``options``: its keyword arguments); the Spark engine's distributed
    detection, which gives the same pairs.
    """
    outcome = JobOutcome("duplicates")
    if caches is not None:
        caches["now"] = now
    notes: list[str] = []
    counts: dict[str, int] = {}
    lead_config: DuplicateConfig | None = None
    for table, records in frames.items():
        if records.empty:
            continue
        try:
            config = load_duplicate_config(config_path, table)
        except ConfigError as exc:
            if f"[{table}]" in str(exc) or "no section" in str(exc).lower():
                continue
            raise
        if table == "lead":
            lead_config = config
        held = None
        if "out_suggested_master" in records.columns:
            held = records.set_index(config.id_column)["out_suggested_master"]
        records = _without_outputs(records)
        try:
            options = {**config.find_kwargs(), **cache_options(caches, table, max_age=MODEL_MAX_AGE)}
            found_pairs = (
                find_duplicates(records, **options) if find is None else find(table, records, options)
            )
            pairs = drop_pairs(found_pairs, (ruled or {}).get(table))
            groups = cluster(pairs, records=records, **config.cluster_kwargs())
        except JobError as exc:
            outcome.status = "partial"
            notes.append(f"{table}: nothing written ({exc})")
            continue
        found = duplicate_groups(pairs, groups, held)
        # Review band (a person decides) or merge band (the merge policy will merge it).
        policy = load_merge_config(config_path, table, tuple(config.fields))
        found["duplicate_status"] = duplicate_status(
            found, pairs, records, policy, id_column=config.id_column, phone_region=config.phone_region
        )
        ids = records[config.id_column].astype(str).str.lower()
        outcome.results[table] = found.reindex(pd.Index(ids, name=None))
        counts[table] = int(groups["cluster_id"].nunique()) if not groups.empty else 0
        notes.append(f"{table}: {counts[table]} groups, {len(found)} records")
    outcome.details = {"groups": counts}
    if lead_config is not None and lead_config.links:
        _link_leads(outcome, frames, lead_config, notes, caches)
    if caches is not None:
        outcome.details["incremental"] = cache_report(caches, now)
    outcome.message = "; ".join(notes) or "no table to scan"
    if not outcome.results and outcome.status == "ok":
        outcome.status = "skipped"
    return outcome


def _link_leads(
    outcome: JobOutcome,
    frames: Mapping[str, pd.DataFrame],
    config: DuplicateConfig,
    notes: list[str],
    caches: dict[str, Any] | None = None,
) -> None:
    """Add the existing contact / account of each lead to ``outcome`` (see :func:`run_duplicates`)."""
    leads = _without_outputs(frames["lead"])
    existing = {
        t: _without_outputs(frames[t]) for t in EXISTING_TABLES if t in frames and not frames[t].empty
    }
    try:
        linked, details = existing_records(_open(leads), existing, config, caches)
    except JobError as exc:
        outcome.status = "partial"
        notes.append(f"existing contacts/accounts: nothing written ({exc})")
        return
    if linked.columns.empty:
        return
    ids = pd.Index(leads[config.id_column].astype(str).str.lower().to_numpy(), dtype=object)
    linked = linked.reindex(ids)  # leads no longer open: empty, so an earlier match is cleared
    current = outcome.results.get("lead")
    outcome.results["lead"] = linked if current is None else current.join(linked)
    outcome.details["existing"] = details
    checked = next(iter(details.values()))["checked"] if details else 0
    found = ", ".join(f"{d['linked']} are existing {t}s" for t, d in details.items())
    notes.append(f"of {checked} open leads, {found}")
