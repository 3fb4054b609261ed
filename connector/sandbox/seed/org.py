"""The people behind the records: users, teams with members, a queue, and who owns each lead and activity.

Lead routing and speed-to-lead need an org where leads have owners: a sales team to route to, a
default owner that holds new leads until someone takes them, and activities done by people (or by
an automation) so that "the first outgoing activity by a person" means something. This module adds
to the generated tables (after :func:`connector.sandbox.seed.generator.generate` built them):

- ``systemuser``: the sandbox's own user (``USER_ID``, the one ``WhoAmI`` returns), ten sales reps,
  one disabled former rep, and "Marketing Automation", an application user (Access Mode
  Non-interactive, with an application id) that sends automated e-mails.
- ``team``: Enterprise Sales, Inside Sales, Partner Sales (owner teams with members; the disabled
  rep is still a member of Inside Sales, as happens in real orgs) and **Lead Intake**, the default
  owner of new leads, whose queue is **Inbound Leads**.
- ``teammembership`` and ``queue``.
- owners: every open lead is held by Lead Intake with probability :data:`UNASSIGNED_SHARE`, else
  by an active rep; closed leads by any rep. An activity is owned by the lead's rep; on a lead
  Lead Intake holds, calls and meetings are made by a random rep who did not take the lead, and
  e-mails are sent by Marketing Automation. A share :data:`AUTOMATED_EMAIL_SHARE` of the other
  outgoing e-mails are automated too (nurture mail), so they must not count as a response.

Ground truth (never served): ``lead_owners`` (each lead's owner and whether a person holds it) and
``lead_response`` (per lead: ``createdon``, ``first_response_on`` and ``first_response_by``, the
first completed outgoing e-mail or phone call, or completed appointment, owned by an interactive
user, at or after the lead's creation; the activity's time is the one the shipped mappings read:
``actualend`` for e-mails and calls, ``scheduledstart`` for appointments). Tests turn these into
business minutes with the calendar they configure.
"""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd

from connector.sandbox.schema import BUSINESS_UNIT_ID, USER_ID
from connector.sandbox.seed.common import stream

__all__ = [
    "AUTOMATED_EMAIL_SHARE",
    "AUTOMATION_USER_ID",
    "INTAKE_QUEUE_ID",
    "INTAKE_TEAM_ID",
    "ORG_TABLES",
    "TEAMS",
    "UNASSIGNED_SHARE",
    "add_organisation",
    "team_id",
    "user_id",
]

_NS = uuid.UUID("0b7a2f4e-9c1d-4f3a-8e6b-2d5c7a9e1f30")
UNASSIGNED_SHARE = 0.4
"""Open leads still held by the default owner (Lead Intake): the ones routing has to assign."""
AUTOMATED_EMAIL_SHARE = 0.2
"""Outgoing e-mails on a rep's lead that an automation sent (not a response by a person)."""

# (first name, last name, teams); the last rep is disabled but still a team member.
_REPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Amelia", "Hart", ("Enterprise Sales",)),
    ("Bruno", "Castillo", ("Enterprise Sales",)),
    ("Chiara", "Bianchi", ("Enterprise Sales",)),
    ("Daniel", "Okafor", ("Enterprise Sales", "Partner Sales")),
    ("Elif", "Yilmaz", ("Inside Sales",)),
    ("Felix", "Wagner", ("Inside Sales",)),
    ("Grace", "Nakamura", ("Inside Sales",)),
    ("Hugo", "Lefebvre", ("Inside Sales",)),
    ("Ines", "Duarte", ("Partner Sales",)),
    ("Jonas", "Berg", ("Partner Sales",)),
)
_FORMER = ("Karl", "Former", ("Inside Sales",))
TEAMS = ("Enterprise Sales", "Inside Sales", "Partner Sales", "Lead Intake")
ORG_TABLES = ("systemuser", "team", "teammembership", "queue")


def user_id(first: str, last: str) -> str:
    """The fixed id of a seeded user (deterministic, so tests and docs can name them)."""
    return str(uuid.uuid5(_NS, f"systemuser:{first} {last}"))


def team_id(name: str) -> str:
    """The fixed id of a seeded team."""
    return str(uuid.uuid5(_NS, f"team:{name}"))


AUTOMATION_USER_ID = user_id("Marketing", "Automation")
INTAKE_TEAM_ID = team_id("Lead Intake")
INTAKE_QUEUE_ID = str(uuid.uuid5(_NS, "queue:Inbound Leads"))


def _users(now: pd.Timestamp) -> pd.DataFrame:
    rows = [
        {
            "systemuserid": USER_ID,
            "firstname": "Sandbox",
            "lastname": "User",
            "accessmode": 0,
            "isdisabled": 0,
        }
    ]
    for first, last, _ in (*_REPS, _FORMER):
        rows.append(
            {
                "systemuserid": user_id(first, last),
                "firstname": first,
                "lastname": last,
                "accessmode": 0,
                "isdisabled": int(last == "Former"),
            }
        )
    rows.append(
        {
            "systemuserid": AUTOMATION_USER_ID,
            "firstname": "Marketing",
            "lastname": "Automation",
            "accessmode": 4,
            "isdisabled": 0,
            "applicationid": str(uuid.uuid5(_NS, "application:marketing")),
        }
    )
    frame = pd.DataFrame(rows)
    frame["fullname"] = frame["firstname"] + " " + frame["lastname"]
    frame["internalemailaddress"] = (
        frame["firstname"].str.lower() + "." + frame["lastname"].str.lower() + "@sandbox.example"
    )
    frame["domainname"] = frame["internalemailaddress"]
    frame["businessunitid"] = BUSINESS_UNIT_ID
    frame["createdon"] = now - pd.Timedelta(days=800)
    return frame


def _teams(now: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    teams = pd.DataFrame(
        {
            "teamid": [team_id(t) for t in TEAMS],
            "name": list(TEAMS),
            "teamtype": 0,
            "queueid": [INTAKE_QUEUE_ID if t == "Lead Intake" else None for t in TEAMS],
            "administratorid": USER_ID,
            "businessunitid": BUSINESS_UNIT_ID,
            "createdon": now - pd.Timedelta(days=800),
        }
    )
    pairs = [(user_id(f, last), team_id(t)) for f, last, ts in (*_REPS, _FORMER) for t in ts]
    pairs.append((USER_ID, INTAKE_TEAM_ID))
    members = pd.DataFrame(
        {
            "teammembershipid": [str(uuid.uuid5(_NS, f"membership:{u}:{t}")) for u, t in pairs],
            "systemuserid": [u for u, _ in pairs],
            "teamid": [t for _, t in pairs],
        }
    )
    queue = pd.DataFrame(
        {
            "queueid": [INTAKE_QUEUE_ID],
            "name": ["Inbound Leads"],
            "emailaddress": ["leads@sandbox.example"],
            "queueviewtype": [0],
            "ownerid": [INTAKE_TEAM_ID],
            "owneridtype": ["team"],
            "createdon": [now - pd.Timedelta(days=800)],
        }
    )
    return teams, members, queue


def _owners(rng: np.random.Generator, leads: pd.DataFrame) -> pd.DataFrame:
    """Each lead's owner: Lead Intake for a share of the open ones, else a rep."""
    active = np.array([user_id(f, last) for f, last, _ in _REPS], dtype=object)
    everyone = np.append(active, user_id(_FORMER[0], _FORMER[1]))
    n = len(leads)
    open_lead = leads["statecode"].to_numpy() == 0
    unassigned = open_lead & (rng.random(n) < UNASSIGNED_SHARE)
    rep = np.where(
        open_lead, active[rng.integers(0, len(active), n)], everyone[rng.integers(0, len(everyone), n)]
    )
    return pd.DataFrame(
        {
            "leadid": leads["leadid"].astype(str).to_numpy(),
            "ownerid": np.where(unassigned, INTAKE_TEAM_ID, rep),
            "owneridtype": np.where(unassigned, "team", "systemuser"),
            "held_by_person": ~unassigned,
        }
    )


def _activity_owners(
    rng: np.random.Generator, frame: pd.DataFrame, table: str, owners: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """Who did each activity: the lead's rep, a rep who helped out, or the automation."""
    by_lead = owners.set_index("leadid")
    lead = frame["regardingobjectid"].astype(str)
    owner = lead.map(by_lead["ownerid"]).to_numpy(dtype=object)
    held = lead.map(by_lead["held_by_person"]).fillna(False).to_numpy(dtype=bool)
    active = np.array([user_id(f, last) for f, last, _ in _REPS], dtype=object)
    helper = active[rng.integers(0, len(active), len(frame))]
    outgoing = frame["directioncode"].fillna(False).to_numpy(dtype=bool) if "directioncode" in frame else None
    if table == "email":
        automated = outgoing & (~held | (rng.random(len(frame)) < AUTOMATED_EMAIL_SHARE))
        owner = np.where(automated, AUTOMATION_USER_ID, np.where(held, owner, helper))
    else:
        owner = np.where(held, owner, helper)
    return owner.astype(object), np.full(len(frame), "systemuser", dtype=object)


def _first_response(tables: dict[str, pd.DataFrame], leads: pd.DataFrame, persons: set[str]) -> pd.DataFrame:
    """The ground truth of speed-to-lead: each lead's first outgoing activity by a person."""
    parts = []
    for table, time_column in (
        ("email", "actualend"),
        ("phonecall", "actualend"),
        ("appointment", "scheduledstart"),
    ):
        frame = tables[table]
        done = frame["statecode"].to_numpy() == 1
        if table != "appointment":
            done &= frame["directioncode"].fillna(False).to_numpy(dtype=bool)
        done &= frame["ownerid"].isin(persons).to_numpy()
        parts.append(
            pd.DataFrame(
                {
                    "leadid": frame.loc[done, "regardingobjectid"].astype(str).to_numpy(),
                    "at": frame.loc[done, time_column].to_numpy(),
                    "by": frame.loc[done, "ownerid"].to_numpy(),
                }
            )
        )
    acts = pd.concat(parts, ignore_index=True)
    # A meeting that started before the lead was entered is not a response to it.
    created_at = pd.Series(leads["createdon"].to_numpy(), index=leads["leadid"].astype(str).to_numpy())
    acts = acts[acts["at"].to_numpy() >= created_at.reindex(acts["leadid"]).to_numpy()]
    acts = acts.sort_values(["leadid", "at", "by"], kind="stable")
    first = acts.drop_duplicates("leadid").set_index("leadid")
    ids = leads["leadid"].astype(str)
    return pd.DataFrame(
        {
            "leadid": ids.to_numpy(),
            "createdon": leads["createdon"].to_numpy(),
            "first_response_on": ids.map(first["at"]).to_numpy(),
            "first_response_by": ids.map(first["by"]).to_numpy(),
        }
    )


def add_organisation(
    seed: int, tables: dict[str, pd.DataFrame], ground_truth: dict[str, pd.DataFrame], now: pd.Timestamp
) -> None:
    """Add users, teams, memberships and the queue, set every lead's and activity's owner, in place.

    Args:
        seed: the generator's seed (this part draws from its own stream).
        tables: the generated tables; ``lead``, ``email``, ``phonecall`` and ``appointment`` get
            ``ownerid``/``owneridtype``, and the four org tables are added.
        ground_truth: gets ``lead_owners`` and ``lead_response``.
        now: the data's "as of" instant (the users' creation dates are before it).
    """
    rng = stream(seed, "organisation")
    now = pd.Timestamp(now)
    users = _users(now)
    teams, members, queue = _teams(now)
    leads = tables["lead"]
    owners = _owners(rng, leads)
    tables["lead"] = leads.assign(
        ownerid=owners["ownerid"].to_numpy(), owneridtype=owners["owneridtype"].to_numpy()
    )
    for table in ("email", "phonecall", "appointment"):
        frame = tables[table]
        owner, kind = _activity_owners(rng, frame, table, owners)
        tables[table] = frame.assign(ownerid=owner, owneridtype=kind)
    # A person is an interactive user (a disabled one too: they were a person when they worked).
    persons = set(users.loc[users["accessmode"] != 4, "systemuserid"])
    tables.update(systemuser=users, team=teams, teammembership=members, queue=queue)
    ground_truth["lead_owners"] = owners
    ground_truth["lead_response"] = _first_response(tables, tables["lead"], persons)
