"""Lead scoring: the public API (rules, model, persistence, engine choice and trend).

Two engines score leads 0..100 with an A–D grade and the factors behind each score:

- **Rules** (:func:`score_with_rules`, configured in ``mappings/scoring.toml``): points for fit and
  engagement, decaying with age. Always available.
- **Model** (:func:`train_model` / :func:`score_leads`): a logistic regression trained on the
  org's own qualified and disqualified leads; it needs at least 40 of each, as Dynamics 365's
  predictive lead scoring does.

:func:`choose_engine` says which one should score; :func:`score` runs it (and, when the model
scores, adds the rules' score beside it so both stay visible). :func:`trend` compares with the
previous run. The package (``jobs.leads.scoring``) is the public API: import from there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from jobs.leads.scoring.model import MIN_PER_CLASS, LeadModel, count_outcomes, score_leads
from jobs.leads.scoring.rules import ScoringRules, score_with_rules

__all__ = ["TREND_CODES", "TREND_STEADY_BAND", "EngineChoice", "choose_engine", "score", "trend"]

# A score must move by at least this many points (on the 0..100 scale) between runs to count as
# Improving or Declining; smaller moves are Steady. 5 points keeps day-to-day decay of a single
# e-mail's points from flipping the trend while a new meeting or a grade change still shows.
TREND_STEADY_BAND = 5
# Dynamics' msdyn_scoretrend choice values, for writing the trend back as a choice column.
TREND_CODES = {"Improving": 0, "Steady": 1, "Declining": 2, "Not enough info": 3}


@dataclass(frozen=True)
class EngineChoice:
    """Which engine should score, and why."""

    engine: str  # "model" or "rules"
    qualified: int
    disqualified: int
    reason: str


def choose_engine(
    leads: pd.DataFrame, *, label: str = "status", min_per_class: int = MIN_PER_CLASS
) -> EngineChoice:
    """Decide between the model and the rules from the org's closed-lead history.

    The model is chosen when there are at least ``min_per_class`` (40) qualified and as many
    disqualified leads, the same minimum Dynamics 365's predictive lead scoring applies; otherwise
    the rules score. The pipeline then trains (or loads the active model) only when this says
    ``"model"``.

    Raises:
        ConfigError: ``label`` is not a column of ``leads``.
    """
    qualified, disqualified = count_outcomes(leads, label)
    if qualified >= min_per_class and disqualified >= min_per_class:
        reason = f"{qualified} qualified and {disqualified} disqualified leads: enough history for the model"
        return EngineChoice("model", qualified, disqualified, reason)
    reason = (
        f"{qualified} qualified and {disqualified} disqualified leads; the model needs {min_per_class} of "
        "each, so the rules score"
    )
    return EngineChoice("rules", qualified, disqualified, reason)


def score(
    leads: pd.DataFrame,
    *,
    rules: ScoringRules,
    as_of: datetime | str | pd.Timestamp,
    model: LeadModel | None = None,
    activities: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Score leads with the model when one is given, else with the rules.

    Args:
        leads: the leads to score (usually the open ones).
        rules: the rules from ``mappings/scoring.toml``.
        as_of: the scoring moment (activity ages and engagement windows end here).
        model: the active model (from :func:`load_model`), or None while the rules score.
        activities: canonical activities, when mapped.

    Returns:
        The chosen engine's frame (see :func:`score_with_rules` / :func:`score_leads`) plus
        ``engine`` ("rules" / "model", with the model version when saved). With a model, the
        rules' ``rules_score`` and ``rules_grade`` are added so the rules remain visible, and the
        model's scores are graded with the rules file's ``[grades]`` and ``sales_ready``.
    """
    rule_result = score_with_rules(leads, rules, as_of=as_of, activities=activities)
    if model is None:
        return rule_result.assign(engine="rules")
    # The grade bands and the sales-ready threshold are the org's choice, so the model's scores
    # are graded by the same [grades] and [score] sales_ready as the rules'.
    result = score_leads(
        model, leads, activities=activities, as_of=as_of, grades=rules.grades, sales_ready=rules.sales_ready
    )
    result["rules_score"] = rule_result["score"]
    result["rules_grade"] = rule_result["grade"]
    result["engine"] = f"model {model.version}" if model.version else "model"
    return result


def trend(
    current_scores: pd.Series, previous_scores: pd.Series | None, *, steady_band: float = TREND_STEADY_BAND
) -> pd.Series:
    """Compare each lead's score with the previous run's.

    ``current - previous >= steady_band`` is Improving, ``<= -steady_band`` is Declining, anything
    in between is Steady; a lead without a previous (or current) score is "Not enough info".

    Args:
        current_scores: this run's scores, indexed by lead id.
        previous_scores: the previous run's scores, indexed by lead id (None on the first run).
        steady_band: the smallest move, in score points, that counts as a change.

    Returns:
        A string series indexed like ``current_scores`` (see :data:`TREND_CODES`).
    """
    current = pd.to_numeric(current_scores, errors="coerce").astype(float)
    if previous_scores is None:
        previous = pd.Series(np.nan, index=current.index)
    else:
        previous = pd.to_numeric(previous_scores, errors="coerce").astype(float).reindex(current.index)
    delta = (current - previous).to_numpy()
    labels = np.select(
        [np.isnan(delta), delta >= steady_band, delta <= -steady_band],
        ["Not enough info", "Improving", "Declining"],
        default="Steady",
    )
    return pd.Series(labels, index=current.index, name="trend", dtype=object)
