"""Lead stages: cold / warm / hot from engagement, and Lead / MQL / SQL from fit, engagement and score.

Thresholds are ``[stage]`` of ``mappings/scoring.toml`` (:class:`StageSettings`), applied to the
points the scoring rules give (:func:`jobs.leads.scoring.score_with_rules` reports them split into
``fit_points``, the fit rules, and ``engagement_points``, the activity and engagement rules with
their decay), so a consultant tunes stages in the same units as the score:

- temperature: Hot when ``engagement_points >= hot_engagement``, Warm when ``>= warm_engagement``,
  else Cold;
- lifecycle: SQL when ``score >= sql_score`` (default the sales-ready threshold); else MQL when the
  lead is Warm or Hot and ``fit_points >= mql_fit`` (marketing qualified: the right profile, and
  engaged); else Lead.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from jobs.leads.engagement.config import StageSettings

__all__ = ["LIFECYCLE_STAGES", "TEMPERATURES", "lead_stages"]

TEMPERATURES = ("Cold", "Warm", "Hot")
LIFECYCLE_STAGES = ("Lead", "MQL", "SQL")


def lead_stages(points: pd.DataFrame, settings: StageSettings, *, sales_ready: int) -> pd.DataFrame:
    """Each lead's temperature and lifecycle stage.

    Args:
        points: index = lead id; ``fit_points``, ``engagement_points`` and ``score``.
        settings: the thresholds.
        sales_ready: the scoring file's sales-ready score, used when ``sql_score`` is not set.

    Returns:
        Index as ``points``; ``temperature`` (Cold/Warm/Hot) and ``lifecycle_stage`` (Lead/MQL/SQL).
    """
    engagement = points["engagement_points"].astype(float).to_numpy()
    fit = points["fit_points"].astype(float).to_numpy()
    score = points["score"].astype(float).to_numpy()
    hot = engagement >= settings.hot_engagement
    warm = engagement >= settings.warm_engagement
    temperature = np.where(hot, "Hot", np.where(warm, "Warm", "Cold"))
    sql = score >= (settings.sql_score if settings.sql_score is not None else sales_ready)
    mql = warm & (fit >= settings.mql_fit)
    stage = np.where(sql, "SQL", np.where(mql, "MQL", "Lead"))
    return pd.DataFrame(
        {"temperature": temperature.astype(object), "lifecycle_stage": stage.astype(object)},
        index=points.index,
    )
