"""The organisation tables the sandbox serves: users, teams, team memberships, queues and queue items.

``systemuser``, ``team``, ``teammembership`` (the intersect table of the
``teammembership_association`` relationship, read-only ids) and ``queue``, with the columns lead
routing reads: who is a person (Access Mode, disabled or not), which team a user is in, and the
queue behind a default owner. Lead ``ownerid`` binds to ``/systemusers(<id>)`` or ``/teams(<id>)``.
``queueitem`` rows are what ``AddToQueue`` creates (:mod:`connector.sandbox.messages_queue`): a
record in a queue, with who works on it (``workerid``, set when a person picks the item; the
record's owner does not change). ``DELETE`` and ``RemoveFromQueue`` remove one.
The seed fills them (:mod:`connector.sandbox.seed.org`); :mod:`catalog` lists them with the other
standard tables.
"""

from __future__ import annotations

from connector.sandbox.schema import Column

__all__ = ["ORG_COLUMNS", "QUEUE_ENABLED", "READ_ONLY"]


# Membership changes through the teammembership_association relationship, never by writing the
# intersect table: Dataverse answers a Create on it "The 'Create' method does not support entities
# of type 'teammembership'.", as the sandbox does for every table it marks read-only.
READ_ONLY = frozenset({"teammembership"})

QUEUE_ENABLED = ("lead", "email", "phonecall", "appointment")
"""The sandbox's tables that may be added to a queue (Lead and the activities are, in Dataverse)."""


def _s(name: str, length: int, **kw) -> Column:
    return Column(name, "String", max_length=length, **kw)


def _pick(name: str, options: dict[int, str]) -> Column:
    return Column(name, "Picklist", options=options)


def _audit() -> list[Column]:
    """Audit and version columns of the organisation tables (no owner: users and teams own records)."""
    return [
        Column("createdon", "DateTime", date_format="DateAndTime", create=False, update=False),
        Column("modifiedon", "DateTime", date_format="DateAndTime", create=False, update=False),
        Column("versionnumber", "BigInt", create=False, update=False),
        Column("businessunitid", "Lookup", targets=("businessunit",)),
    ]


def _systemuser() -> list[Column]:
    return [
        Column("systemuserid", "Uniqueidentifier", update=False),
        _s("fullname", 200, create=False, update=False),
        _s("firstname", 64),
        _s("lastname", 64, required_level="SystemRequired"),
        _s("internalemailaddress", 100, format_name="Email"),
        _s("domainname", 1024),
        Column("isdisabled", "Boolean", options={1: "Disabled", 0: "Enabled"}, create=False, update=False),
        # Access Mode: 4 Non-interactive is how application (integration) users are created.
        _pick(
            "accessmode",
            {
                0: "Read-Write",
                1: "Administrative",
                2: "Read",
                3: "Support User",
                4: "Non-interactive",
                5: "Delegated Admin",
            },
        ),
        Column("applicationid", "Uniqueidentifier"),
        *_audit(),
    ]


def _team() -> list[Column]:
    return [
        Column("teamid", "Uniqueidentifier", update=False),
        _s("name", 160, required_level="SystemRequired"),
        _pick("teamtype", {0: "Owner", 1: "Access", 2: "Security Group", 3: "Office Group"}),
        Column("queueid", "Lookup", targets=("queue",)),
        Column("administratorid", "Lookup", targets=("systemuser",)),
        *_audit(),
    ]


def _teammembership() -> list[Column]:
    # The intersect table of the teammembership_association relationship: read-only ids.
    return [
        Column("teammembershipid", "Uniqueidentifier", create=False, update=False),
        Column("systemuserid", "Uniqueidentifier", create=False, update=False),
        Column("teamid", "Uniqueidentifier", create=False, update=False),
        Column("versionnumber", "BigInt", create=False, update=False),
    ]


def _queue() -> list[Column]:
    # A queue is user-owned: its owner is the team or user that works it.
    return [
        Column("queueid", "Uniqueidentifier", update=False),
        _s("name", 400, required_level="SystemRequired"),
        _s("emailaddress", 100, format_name="Email"),
        _pick("queueviewtype", {0: "Public", 1: "Private"}),
        Column("createdon", "DateTime", date_format="DateAndTime", create=False, update=False),
        Column("modifiedon", "DateTime", date_format="DateAndTime", create=False, update=False),
        Column("createdby", "Lookup", targets=("systemuser",), create=False, update=False),
        Column("modifiedby", "Lookup", targets=("systemuser",), create=False, update=False),
        Column("ownerid", "Owner", targets=("systemuser", "team"), required_level="SystemRequired"),
        Column("owneridtype", "EntityName", create=False, update=False, internal=True),
        Column("owningbusinessunit", "Lookup", targets=("businessunit",), create=False, update=False),
        Column("versionnumber", "BigInt", create=False, update=False),
    ]


def _queueitem() -> list[Column]:
    # Created by AddToQueue (the object and its queue); a person "works on" it through workerid.
    return [
        Column("queueitemid", "Uniqueidentifier", update=False),
        _s("title", 300, update=False),
        Column("queueid", "Lookup", targets=("queue",), required_level="SystemRequired"),
        Column("objectid", "Lookup", targets=QUEUE_ENABLED, update=False),
        Column("objectidtypecode", "EntityName", create=False, update=False, internal=True),
        _pick("objecttypecode", {4: "Lead", 4202: "Email", 4210: "Phone Call", 4201: "Appointment"}),
        Column("workerid", "Lookup", targets=("systemuser",)),
        Column("workeridmodifiedon", "DateTime", date_format="DateAndTime", create=False, update=False),
        Column("enteredon", "DateTime", date_format="DateAndTime", create=False, update=False),
        Column(
            "statecode",
            "State",
            options={0: "Active", 1: "Inactive"},
            default_status={0: 1, 1: 2},
            create=False,
            required_level="SystemRequired",
        ),
        Column("statuscode", "Status", options={1: "Active", 2: "Inactive"}, option_states={1: 0, 2: 1}),
        Column("createdon", "DateTime", date_format="DateAndTime", create=False, update=False),
        Column("modifiedon", "DateTime", date_format="DateAndTime", create=False, update=False),
        Column("createdby", "Lookup", targets=("systemuser",), create=False, update=False),
        Column("modifiedby", "Lookup", targets=("systemuser",), create=False, update=False),
        Column("versionnumber", "BigInt", create=False, update=False),
    ]


# (logical name, entity set, primary id, primary name, object type code, columns, display, plural)
ORG_COLUMNS: tuple[tuple[str, str, str, str, int, list[Column], str, str], ...] = (
    ("systemuser", "systemusers", "systemuserid", "fullname", 8, _systemuser(), "User", "Users"),
    ("team", "teams", "teamid", "name", 9, _team(), "Team", "Teams"),
    (
        "teammembership",
        "teammemberships",
        "teammembershipid",
        "teammembershipid",
        23,
        _teammembership(),
        "Team Membership",
        "Team Memberships",
    ),
    ("queue", "queues", "queueid", "name", 2020, _queue(), "Queue", "Queues"),
    ("queueitem", "queueitems", "queueitemid", "title", 2029, _queueitem(), "Queue Item", "Queue Items"),
)
