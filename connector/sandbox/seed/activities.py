"""Activities regarding leads (email, phonecall, appointment): the engagement that scoring reads.

Each lead has a latent interest ``u ~ Normal(0, 1)``. For each kind of activity, the expected count
over the lead's working window is ``base * exp(k*u - k^2/2) * (1 - exp(-W/decay))`` where ``W`` is
the time from creation to closing (or to ``now`` for open leads): reps and prospects are busiest
right after a lead arrives, and activity fades with the lead's age. Inbound emails and meetings load
on interest far more than the emails and calls reps send to everyone, which is what makes them
predictive. The completed counts feed the qualification model in ``leads``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from connector.sandbox.seed.common import SECONDS_PER_DAY, business_time, guids, pick, to_timestamps
from connector.sandbox.seed.vocab import (
    APPOINTMENT_SUBJECTS,
    CALL_SUBJECTS,
    EMAIL_SUBJECTS_IN,
    EMAIL_SUBJECTS_OUT,
)

# kind -> (table, outgoing?, base count over a fully worked lead, loading on interest)
ACTIVITY_KINDS: dict[str, tuple[str, bool | None, float, float]] = {
    "email_out": ("email", True, 2.2, 0.3),
    "email_in": ("email", False, 0.9, 1.0),
    "call_out": ("phonecall", True, 1.2, 0.3),
    "call_in": ("phonecall", False, 0.25, 0.8),
    "appointment": ("appointment", None, 0.35, 1.2),
}
DECAY_DAYS = 21.0
CANCELLED_SHARE = {"email": 0.02, "phonecall": 0.05, "appointment": 0.08}
SCHEDULED_SHARE = 0.35  # open leads with one upcoming activity in the next two weeks

# statuscode for (table, statecode, outgoing): Dataverse's default status reasons.
_COMPLETED_STATUS = {("email", True): 3, ("email", False): 4, ("phonecall", True): 2, ("phonecall", False): 4}


def simulate(
    rng: np.random.Generator,
    created_s: np.ndarray,
    window_end_s: np.ndarray,
    now_s: int,
    open_lead: np.ndarray,
) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """Draw each lead's interest and its activities.

    Args:
        rng: the random stream.
        created_s: lead creation times (epoch seconds).
        window_end_s: when work on each lead stopped (its close time, or ``now``).
        now_s: the generation instant.
        open_lead: which leads are still open (they may have an upcoming activity).

    Returns:
        ``(interest, engagement, activities)``: the latent interest per lead; per-lead completed
        counts (``inbound_emails``, ``completed_phonecalls``, ``completed_appointments``,
        ``completed_total``, ``last_activity_s``); and one long frame of activities with
        ``lead_row``, ``kind``, ``table``, ``outgoing``, ``time_s``, ``statecode``, ``statuscode``.
    """
    n = len(created_s)
    interest = rng.standard_normal(n)
    window = np.maximum(window_end_s - created_s, 0.0) / SECONDS_PER_DAY
    reach = 1.0 - np.exp(-window / DECAY_DAYS)
    parts = []
    for kind, (table, outgoing, base, load) in ACTIVITY_KINDS.items():
        mean = base * np.exp(load * interest - load * load / 2.0) * reach
        count = rng.poisson(mean)
        rows = np.repeat(np.arange(n), count)
        # Inverse CDF of the exponential decay truncated to the window.
        u = rng.random(len(rows))
        offset = -DECAY_DAYS * np.log1p(-u * reach[rows]) * SECONDS_PER_DAY
        time_s = np.minimum(business_time(rng, created_s[rows] + offset), window_end_s[rows] - 60)
        time_s = np.maximum(time_s, created_s[rows] + 60)
        cancelled = rng.random(len(rows)) < CANCELLED_SHARE[table]
        parts.append(
            pd.DataFrame(
                {
                    "lead_row": rows,
                    "kind": kind,
                    "table": table,
                    "outgoing": outgoing,
                    "time_s": time_s,
                    "done": ~cancelled,
                }
            )
        )
    # Upcoming work on open leads: a draft email, a planned call or a booked meeting.
    upcoming = np.flatnonzero(open_lead & (rng.random(n) < SCHEDULED_SHARE))
    kinds = pick(rng, ["email_out", "call_out", "appointment"], len(upcoming), [0.3, 0.45, 0.25])
    parts.append(
        pd.DataFrame(
            {
                "lead_row": upcoming,
                "kind": kinds,
                "table": pd.Series(kinds).map({k: v[0] for k, v in ACTIVITY_KINDS.items()}).to_numpy(),
                "outgoing": pd.Series(kinds).map({k: v[1] for k, v in ACTIVITY_KINDS.items()}).to_numpy(),
                "time_s": business_time(rng, now_s + rng.uniform(1, 14, len(upcoming)) * SECONDS_PER_DAY),
                "done": False,
            }
        )
    )
    acts = pd.concat(parts, ignore_index=True)
    future = acts["time_s"].to_numpy() > now_s
    done = acts["done"].to_numpy() & ~future
    table = acts["table"].to_numpy()
    outgoing = acts["outgoing"].fillna(False).to_numpy(dtype=bool)  # appointments have no direction
    state = np.where(future, np.where(table == "appointment", 3, 0), np.where(done, 1, 2))
    completed_status = np.select(
        [
            (table == "email") & outgoing,
            table == "email",
            (table == "phonecall") & outgoing,
            table == "phonecall",
        ],
        [3, 4, 2, 4],
        3,
    )
    cancelled_status = np.select([table == "email", table == "phonecall"], [5, 3], 4)
    open_status = np.where(table == "appointment", 5, 1)  # appointment: Scheduled/Busy; others Draft/Open
    acts["statecode"] = state
    acts["statuscode"] = np.select(
        [state == 1, state == 2], [completed_status, cancelled_status], open_status
    )

    completed = acts[acts["statecode"] == 1]
    counts = completed.groupby(["lead_row", "kind"]).size().unstack(fill_value=0)
    counts = counts.reindex(index=np.arange(n), columns=list(ACTIVITY_KINDS), fill_value=0)
    engagement = pd.DataFrame(
        {
            "inbound_emails": counts["email_in"].to_numpy(),
            "completed_phonecalls": (counts["call_out"] + counts["call_in"]).to_numpy(),
            "completed_appointments": counts["appointment"].to_numpy(),
            "completed_total": counts.sum(axis=1).to_numpy(),
            "last_activity_s": completed.groupby("lead_row")["time_s"].max().reindex(np.arange(n)).to_numpy(),
        }
    )
    return interest, engagement, acts


def activity_tables(
    rng: np.random.Generator, acts: pd.DataFrame, leads_df: pd.DataFrame, now_s: int
) -> dict[str, pd.DataFrame]:
    """Turn the long activity frame into the ``email``, ``phonecall`` and ``appointment`` tables."""
    out: dict[str, pd.DataFrame] = {}
    lead_ids = leads_df["leadid"].to_numpy()
    phones = leads_df["telephone1"].to_numpy()
    for table in ("email", "phonecall", "appointment"):
        part = acts[acts["table"] == table].sort_values(["time_s", "lead_row"], kind="stable")
        n = len(part)
        time_s = part["time_s"].to_numpy()
        state = part["statecode"].to_numpy()
        outgoing = part["outgoing"].to_numpy(dtype=bool) if table != "appointment" else None
        completed = state == 1
        planned = state != 1  # open, scheduled or cancelled: the plan is what is known
        if table == "email":
            subject = np.where(outgoing, pick(rng, EMAIL_SUBJECTS_OUT, n), pick(rng, EMAIL_SUBJECTS_IN, n))
        elif table == "phonecall":
            subject = pick(rng, CALL_SUBJECTS, n)
        else:
            subject = pick(rng, APPOINTMENT_SUBJECTS, n)
        duration = np.where(table == "email", 0, rng.integers(5, 60 if table == "phonecall" else 90, n))
        start_s = time_s - duration * 60
        # Outgoing items are drafted a little before they happen; planned items were created days before.
        created_s = np.where(
            planned,
            np.minimum(time_s, now_s) - rng.uniform(0.5, 5, n) * SECONDS_PER_DAY,
            start_s - rng.uniform(0, 3600, n),
        )
        created_s = np.maximum(created_s, leads_df["_created_s"].to_numpy()[part["lead_row"].to_numpy()])
        created_s = np.minimum(created_s, now_s)
        modified_s = np.where(completed, np.minimum(time_s + 60, now_s), created_s)
        frame = pd.DataFrame(
            {
                "activityid": guids(rng, n),
                "activitytypecode": table,
                "subject": subject,
                "regardingobjectid": lead_ids[part["lead_row"].to_numpy()],
                "regardingobjecttypecode": "lead",
            }
        )
        if table != "appointment":
            frame["directioncode"] = outgoing
        if table == "phonecall":
            frame["phonenumber"] = phones[part["lead_row"].to_numpy()]
        if table == "appointment":
            frame["location"] = pick(rng, ["Microsoft Teams", "Customer site", "Our office", "Zoom"], n)
        frame["statecode"] = state
        frame["statuscode"] = part["statuscode"].to_numpy()
        frame["scheduledstart"] = to_timestamps(np.where(table == "email", np.nan, start_s))
        frame["scheduledend"] = to_timestamps(time_s)
        frame["actualstart"] = to_timestamps(np.where(completed, start_s, np.nan))
        frame["actualend"] = to_timestamps(np.where(completed, time_s, np.nan))
        if table != "email":
            frame["actualdurationminutes"] = pd.array(np.where(completed, duration, np.nan), dtype="Int64")
        frame["createdon"] = to_timestamps(created_s)
        frame["modifiedon"] = to_timestamps(np.maximum(modified_s, created_s))
        out[table] = frame.reset_index(drop=True)
    return out
