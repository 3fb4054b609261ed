"""Dormant leads: open leads with a good fit that went quiet, flagged "re-engage" with the reason.

A lead is dormant when its fit points (the fit rules of ``mappings/scoring.toml``) reach
``[dormant] min_fit`` and its last completed activity, in either direction, is at least
``[dormant] days`` old; a lead that never had one counts from its creation. Days are calendar
days in UTC (the run's date minus the date of the last activity), as "No activity for N days" reads
to a salesperson: every run of one day gives the same flags and reasons. The flag is False (not
missing) for every other open lead, so it clears by itself when activity resumes and a marketing
list or view filtering on "Re-engage = Yes" drops the lead.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from jobs.leads.engagement.config import DormantSettings
from jobs.leads.engagement.response import lower_text

__all__ = ["dormant_leads", "last_activity"]

_KIND_WORDS = {"email": "e-mail", "phonecall": "phone call", "appointment": "meeting"}


def last_activity(activities: pd.DataFrame | None) -> pd.DataFrame:
    """Each lead's last completed activity: index = lead id (lower case); ``at`` and ``kind``."""
    if activities is None or activities.empty:
        return pd.DataFrame({"at": pd.Series(dtype="datetime64[ns, UTC]"), "kind": pd.Series(dtype=object)})
    status = lower_text(activities["status"]) if "status" in activities else None
    done = activities if status is None else activities[status.eq("completed").to_numpy()]
    frame = (
        pd.DataFrame(
            {
                "lead_id": lower_text(done["lead_id"]),
                "at": pd.to_datetime(done["occurred_on"], utc=True, errors="coerce"),
                "kind": lower_text(done["activity_type"]),
            }
        )
        .dropna(subset=["lead_id", "at"])
        .reset_index(drop=True)
    )  # unique labels for idxmax
    latest = frame.groupby("lead_id", sort=False)["at"].idxmax()
    return frame.loc[latest.to_numpy()].set_index("lead_id")[["at", "kind"]]


def dormant_leads(
    leads: pd.DataFrame,
    fit: pd.DataFrame,
    activities: pd.DataFrame | None,
    settings: DormantSettings,
    *,
    now: datetime,
) -> pd.DataFrame:
    """Flag the open leads to re-engage and say why.

    Args:
        leads: the open leads: ``lead_id`` and ``created_on``.
        fit: index = lead id; ``fit_points`` and ``fit_factors`` (the fit sentences, strongest
            first, e.g. "Source = Partner: +15").
        activities: canonical activities, or None.
        settings: ``[dormant]``.
        now: the moment of the run.

    Returns:
        Index = lead id (lower case); ``reengage`` (bool), ``reengage_reason`` (text, missing when
        not flagged) and ``quiet_days`` (UTC calendar days from the date of the last activity or
        creation to the date of ``now``).
    """
    ids = leads["lead_id"].astype(str).str.lower()
    created = pd.to_datetime(leads["created_on"], utc=True, errors="coerce").set_axis(ids)
    last = last_activity(activities).reindex(ids)
    since = last["at"].where(last["at"].notna(), created)
    stamp = pd.Timestamp(now)
    stamp = stamp.tz_convert("UTC") if stamp.tzinfo else stamp.tz_localize("UTC")
    quiet = (stamp.normalize() - since.dt.tz_convert("UTC").dt.normalize()).dt.days.astype("Int64")
    fit_points = pd.to_numeric(fit["fit_points"].reindex(ids), errors="coerce").fillna(0.0)
    flagged = (quiet >= settings.days).fillna(False).to_numpy() & (fit_points >= settings.min_fit).to_numpy()
    had = last["at"].notna().to_numpy()
    when = since.dt.strftime("%Y-%m-%d").fillna("an unknown date")
    kind = last["kind"].map(_KIND_WORDS).fillna("activity")
    head = np.where(
        had,
        "No activity for " + quiet.astype(str) + " days (last: " + kind + " on " + when + ")",
        "No activity since it was created " + quiet.astype(str) + " days ago (" + when + ")",
    )
    factors = fit["fit_factors"].reindex(ids) if "fit_factors" in fit else pd.Series(None, index=ids)
    shown = [
        "; ".join(list(f)[: settings.factors])
        if isinstance(f, list | tuple) and len(f) and settings.factors
        else ""
        for f in factors
    ]
    fit_words = [
        f"; fit {points:g} points" + (f": {text}" if text else "")
        for points, text in zip(fit_points, shown, strict=True)
    ]
    reason = pd.Series(head, index=ids).astype(object) + pd.Series(fit_words, index=ids)
    return pd.DataFrame(
        {
            "reengage": flagged,
            "reengage_reason": np.where(flagged, reason.to_numpy(dtype=object), None),
            "quiet_days": quiet.to_numpy(),
        },
        index=pd.Index(ids.to_numpy(), name="lead_id"),
    )
