"""Speed-to-lead: business minutes from a lead's creation to the first response by a person.

A response is the first *completed, outgoing* activity regarding the lead: an e-mail sent, a call
made, or a meeting held (appointments have no direction; a held meeting is a response). Only
activities owned by a person count when the activities carry their owner: an application user's
automatic acknowledgement is not someone answering. Activities before the lead existed are ignored.

Minutes are counted in business hours (:class:`~jobs.leads.engagement.config.BusinessCalendar`):
``B(t)`` is the working minutes from a fixed origin to ``t`` in local wall-clock time (whole working
days before ``t``'s date times the day's length, plus the part of ``t``'s own day inside the hours),
and a lead's response time is ``floor(B(response) - B(created))``. Whole minutes, rounded down, so
"answered within 5 minutes" means what a salesperson reads.

The SLA flag is True when the response came within ``sla_minutes``, False when it came later or
when no response came and the target has already passed, and missing while the clock still runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import numpy as np
import pandas as pd

from jobs.leads.engagement.config import BusinessCalendar, ResponseSettings

__all__ = ["business_minutes", "first_responses", "lower_text", "response_horizon", "response_summary"]

_ORIGIN = np.datetime64("1970-01-01", "D")


def _business_clock(stamps: pd.Series, calendar: BusinessCalendar) -> np.ndarray:
    """Working minutes from the origin to each instant (NaN where the instant is missing)."""
    utc = pd.to_datetime(stamps, utc=True, errors="coerce")
    local = utc.dt.tz_convert(calendar.time_zone).dt.tz_localize(None)
    missing = local.isna().to_numpy()
    filled = local.fillna(pd.Timestamp("1970-01-01"))
    days = filled.dt.floor("D").to_numpy().astype("datetime64[D]")
    minute = ((filled - filled.dt.floor("D")).dt.total_seconds() / 60.0).to_numpy()
    holidays = np.array(calendar.holidays, dtype="datetime64[D]")
    whole_days = np.busday_count(_ORIGIN, days, weekmask=calendar.weekmask, holidays=holidays)
    working = np.is_busday(days, weekmask=calendar.weekmask, holidays=holidays)
    today = np.clip(minute - calendar.opens, 0.0, float(calendar.minutes_per_day))
    clock = whole_days * float(calendar.minutes_per_day) + np.where(working, today, 0.0)
    return np.where(missing, np.nan, clock)


def business_minutes(start: pd.Series, end: pd.Series, calendar: BusinessCalendar) -> pd.Series:
    """Whole business minutes from each ``start`` to its ``end`` (missing when either is missing).

    Args:
        start, end: aligned instants (aware or UTC-naive).
        calendar: the working days, hours, holidays and time zone.

    Returns:
        A nullable integer Series on ``start``'s index; 0 when ``end`` is not after ``start``.
    """
    delta = _business_clock(end.reset_index(drop=True), calendar) - _business_clock(
        start.reset_index(drop=True), calendar
    )
    # A tiny epsilon so 299.99999 from float arithmetic on whole seconds is not floored to 299.
    whole = np.floor(np.maximum(delta, 0.0) + 1e-9)
    return pd.Series(pd.array(np.where(np.isnan(whole), None, whole), dtype="Int64"), index=start.index)


def lower_text(values: pd.Series) -> pd.Series:
    """Values as stripped lower-case text (None where missing), converting each distinct value once.

    Activity tables repeat a few labels and ids many times; lower-casing the distinct values and
    spreading them by code is several times faster than a string operation per row.
    """
    codes, uniques = pd.factorize(values)
    low = np.array([str(u).strip().lower() for u in np.asarray(uniques, dtype=object)] + [None], dtype=object)
    return pd.Series(low[np.where(codes >= 0, codes, len(uniques))], index=values.index, dtype=object)


def utc_ns(values: pd.Series) -> np.ndarray:
    """Instants as naive UTC ``datetime64[ns]`` (NaT where missing), for fast comparisons."""
    stamps = pd.to_datetime(values, utc=True, errors="coerce")
    return stamps.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")


def _responses(activities: pd.DataFrame, persons: Iterable[str] | None) -> pd.DataFrame:
    acts = activities
    kind = lower_text(acts["activity_type"])
    status = lower_text(acts["status"]) if "status" in acts else pd.Series("completed", index=acts.index)
    outgoing = kind.eq("appointment")
    if "direction" in acts:
        outgoing |= lower_text(acts["direction"]).eq("outgoing")
    counts = outgoing & status.eq("completed")
    if persons is not None and "owner_id" in acts:
        people = {str(p).lower() for p in persons}
        counts &= lower_text(acts["owner_id"]).isin(people)
    picked = acts[counts.to_numpy()]
    return (
        pd.DataFrame(
            {
                "lead_id": lower_text(picked["lead_id"]),
                "at": pd.to_datetime(picked["occurred_on"], utc=True, errors="coerce"),
                "by": lower_text(picked["owner_id"]) if "owner_id" in picked else None,
            }
        )
        .dropna(subset=["lead_id", "at"])
        .reset_index(drop=True)
    )  # unique labels for idxmin


def first_responses(
    leads: pd.DataFrame,
    activities: pd.DataFrame | None,
    settings: ResponseSettings,
    *,
    now: datetime,
    persons: Iterable[str] | None = None,
) -> pd.DataFrame:
    """Each lead's first response by a person, in business minutes, and whether it met the target.

    Args:
        leads: ``lead_id`` and ``created_on`` (all leads; the caller writes the open ones back).
        activities: canonical activities (``lead_id``, ``activity_type``, ``occurred_on``,
            ``direction``, ``status``, optionally ``owner_id``), or None when none are mapped.
        settings: the calendar, target and report window.
        now: the moment of the run (a lead with no response is overdue once the target passed).
        persons: ids of the users who are people (interactive users); None counts every owner.

    Returns:
        Index = lead id (lower case); ``first_response_on`` (UTC), ``first_response_by`` (owner id
        or missing), ``first_response_minutes`` (nullable integer), ``waiting_minutes`` (business
        minutes since creation for a lead nobody answered yet), ``response_sla_met`` (nullable bool).
    """
    ids = leads["lead_id"].astype(str).str.lower()
    created = pd.to_datetime(leads["created_on"], utc=True, errors="coerce").set_axis(ids)
    if activities is None or activities.empty:
        picked = pd.DataFrame(
            {
                "lead_id": pd.Series(dtype="string"),
                "at": pd.Series(dtype="datetime64[ns, UTC]"),
                "by": pd.Series(dtype="string"),
            }
        )
    else:
        picked = _responses(activities, persons)
    picked = picked[picked["lead_id"].isin(ids).to_numpy()]
    born = utc_ns(created.reindex(picked["lead_id"].to_numpy()))
    picked = picked[utc_ns(picked["at"]) >= born]
    # The earliest per lead (ties: the first listed); idxmin keeps this linear, no sort by id.
    earliest = picked.groupby("lead_id", sort=False)["at"].idxmin()
    first = picked.loc[earliest.to_numpy()].set_index("lead_id")
    at = first["at"].reindex(ids)
    by = first["by"].reindex(ids)
    minutes = business_minutes(created, at, settings.calendar)
    stamp = pd.Series(
        pd.Timestamp(now).tz_convert("UTC") if pd.Timestamp(now).tzinfo else pd.Timestamp(now, tz="UTC"),
        index=ids,
    )
    waiting = business_minutes(created, stamp, settings.calendar).where(at.isna())
    met = pd.Series(pd.NA, index=ids, dtype="boolean")
    met[minutes.notna().to_numpy()] = (minutes[minutes.notna()] <= settings.sla_minutes).to_numpy()
    overdue = (waiting > settings.sla_minutes).fillna(False).to_numpy()
    met[overdue] = False
    return pd.DataFrame(
        {
            "first_response_on": at.array,
            "first_response_by": by.astype("string").to_numpy(),
            "first_response_minutes": minutes.to_numpy(),
            "waiting_minutes": waiting.to_numpy(),
            "response_sla_met": met.to_numpy(),
        },
        index=pd.Index(ids.to_numpy(), name="lead_id"),
    )


def response_horizon(
    responses: pd.DataFrame, settings: ResponseSettings, *, now: datetime, until: datetime
) -> pd.Timestamp:
    """The first moment a lead still waiting for its first response could pass its target, or ``until``.

    Until then every SLA flag :func:`first_responses` gave at ``now`` stays as it is while no
    activity or lead changes: a missing flag turns False only when the waiting time passes the
    target, and nothing else moves with the clock.

    Why it is safe: with ``w`` the longest wait among the leads still waiting and ``r = sla - w``,
    the flag turns False when ``floor(D(t) + eps) > sla``, i.e. ``D(t) >= sla + 1 - eps``, with
    ``D(t) = B(t) - B(created)`` and ``eps`` the epsilon of :func:`business_minutes`. At ``now``,
    ``w = floor(D(now) + eps)``, so ``D(now) < w + 1 - eps``, and the flag can turn only once
    ``B(t) - B(now) > r`` (less the float rounding of ``B``, about 1e-9 minute). The horizon is the
    first instant the business clock has run ``r`` minutes since ``now``, walking the calendar's
    days and hours in its own wall-clock time (so nights, weekends, holidays and daylight-saving
    jumps count as they do in ``B``), less one second for the rounding: before it ``B`` has run at
    most ``r - 1/60`` minutes (or exactly ``r = 0`` on a stretch where it stands still). When the
    clocks go back before ``until``, ``B`` may run backwards and the horizon is ``now``.

    Args:
        responses: :func:`first_responses` output computed at ``now``.
        settings: the target and the calendar the waits were counted in.
        now: the moment ``responses`` were computed at.
        until: the latest horizon the caller needs (e.g. the end of the day).
    """
    stamp = _utc(now)
    cap = _utc(until)
    zone = settings.calendar.time_zone
    overdue_or_waiting = responses["waiting_minutes"].notna().to_numpy().any()
    if overdue_or_waiting and cap.tz_convert(zone).utcoffset() < stamp.tz_convert(zone).utcoffset():
        # The clocks go back before ``until``: local time repeats an hour, the business minutes
        # counted in it run backwards, and an overdue flag may even turn missing again.
        return stamp
    waiting = responses["waiting_minutes"][
        responses["response_sla_met"].isna().to_numpy() & responses["waiting_minutes"].notna().to_numpy()
    ]
    if waiting.empty:
        return cap
    slack = max(int(settings.sla_minutes) - int(waiting.max()), 0)
    deadline = _after_business_minutes(stamp, slack, settings.calendar, cap)
    return cap if deadline >= cap else deadline - pd.Timedelta(seconds=1)


def _after_business_minutes(
    start: pd.Timestamp, minutes: int, calendar: BusinessCalendar, cap: pd.Timestamp
) -> pd.Timestamp:
    """The first instant (UTC) at which ``minutes`` business minutes have run since ``start``, or
    ``cap`` when that is later. A local time the clocks skip (spring forward) is taken as the
    instant before the jump, a repeated one (fall back) as its first occurrence: both are early."""
    zone = calendar.time_zone
    local = start.tz_convert(zone).tz_localize(None)
    day = local.normalize()
    minute = (local - day).total_seconds() / 60.0
    holidays = np.array(calendar.holidays, dtype="datetime64[D]")
    left = float(minutes)
    while True:
        if np.is_busday(np.datetime64(day.date(), "D"), weekmask=calendar.weekmask, holidays=holidays):
            begin = max(float(calendar.opens), minute)
            available = max(float(calendar.closes) - begin, 0.0)
            if left <= available:
                target = day + pd.Timedelta(minutes=begin + left)
                moment = target.tz_localize(zone, ambiguous=True, nonexistent="shift_backward")
                return min(moment.tz_convert("UTC"), cap)
            left -= available
        day, minute = day + pd.Timedelta(days=1), 0.0
        if day.tz_localize(zone, ambiguous=True, nonexistent="shift_backward").tz_convert("UTC") >= cap:
            return cap


def _utc(moment: datetime) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    return stamp.tz_convert("UTC") if stamp.tzinfo else stamp.tz_localize("UTC")


def _figures(group: pd.DataFrame) -> dict[str, object]:
    answered = group["first_response_minutes"].dropna().astype(float)
    return {
        "leads": len(group),
        "answered": len(answered),
        "median_minutes": float(answered.median()) if len(answered) else None,
        "p90_minutes": round(float(answered.quantile(0.9, interpolation="linear")), 1)
        if len(answered)
        else None,
        "breaches": int(group["response_sla_met"].eq(False).fillna(False).sum()),
        "within_sla": int(group["response_sla_met"].eq(True).fillna(False).sum()),
    }


def response_summary(
    responses: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    since: datetime | None = None,
    created: pd.Series | None = None,
) -> dict[str, object]:
    """Median, 90th percentile and breaches of response time, overall and per owner, team and source.

    Args:
        responses: :func:`first_responses` output.
        labels: index = lead id; ``owner``, ``team`` and ``source`` to group by (names; missing
            values are grouped as "(none)").
        since: only leads created at or after this moment (with ``created``).
        created: each lead's creation time, index = lead id.

    Returns:
        ``overall`` and ``by_owner`` / ``by_team`` / ``by_source`` (name -> figures): ``leads``,
        ``answered``, ``median_minutes``, ``p90_minutes`` (linear interpolation, over the answered
        leads), ``breaches`` (target missed, answered late or not at all) and ``within_sla``.
    """
    frame = responses.join(labels, how="left")
    if since is not None and created is not None:
        when = pd.to_datetime(created, utc=True).reindex(frame.index)
        frame = frame[(when >= pd.Timestamp(since)).fillna(False).to_numpy()]
    out: dict[str, object] = {"overall": _figures(frame)}
    for name in ("owner", "team", "source"):
        if name not in frame:
            continue
        keys = frame[name].astype("string").fillna("(none)")
        out[f"by_{name}"] = {str(k): _figures(g) for k, g in frame.groupby(keys, sort=True)}
    return out
