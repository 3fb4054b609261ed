"""The ``sdkmessage`` and ``sdkmessagefilter`` tables: which messages the sandbox serves, for which table.

Clients read them before using a message: ``dataverse-api`` asks
``sdkmessagefilters?$select=sdkmessagefilterid&$expand=sdkmessageid($select=name)&$filter=
(sdkmessageid/name eq 'CreateMultiple' or ...) and primaryobjecttypecode eq 'lead'`` to decide
whether to send CreateMultiple/UpdateMultiple. The rows list exactly the messages this sandbox
implements (a message it does not serve has no row, so a client does not try it). Both tables are
system tables: readable like any other, never written through the Web API.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from connector.sandbox.schema import Column, Table

__all__ = ["BOUND_MESSAGES", "SYSTEM_TABLES", "UNBOUND_MESSAGES", "system_rows"]

# Messages served for every business table, and those served without a table.
BOUND_MESSAGES = (
    "Create",
    "Retrieve",
    "RetrieveMultiple",
    "Update",
    "Upsert",
    "Delete",
    "CreateMultiple",
    "UpdateMultiple",
    "UpsertMultiple",
)
UNBOUND_MESSAGES = (
    "WhoAmI",
    "BulkDelete",
    "RetrieveMetadataChanges",
    "RetrieveAvailableLanguages",
    "PublishXml",
    "PublishAllXml",
    "AddSolutionComponent",
    "Merge",
    "RetrieveDuplicates",
)
_NS = uuid.UUID("3c7f0d52-8f7e-4b0e-9d55-1f6b2a9c4e01")


def _audit() -> list[Column]:
    return [
        Column("createdon", "DateTime", create=False, update=False),
        Column("modifiedon", "DateTime", create=False, update=False),
        Column("versionnumber", "BigInt", create=False, update=False),
    ]


def _bound(table: str, columns: list[Column]) -> tuple[Column, ...]:
    return tuple(
        replace(
            c,
            entity=table,
            schema_name=c.logical_name,
            display_name=c.logical_name,
            create=False,
            update=False,
        )
        for c in columns
    )


SDK_MESSAGE = Table(
    "sdkmessage",
    "sdkmessages",
    "sdkmessageid",
    "name",
    4606,
    _bound(
        "sdkmessage",
        [
            Column("sdkmessageid", "Uniqueidentifier"),
            Column("name", "String", max_length=256),
            Column("categoryname", "String", max_length=25),
            Column("isprivate", "Boolean", options={1: "Yes", 0: "No"}),
            Column("isactive", "Boolean", options={1: "Yes", 0: "No"}),
            *_audit(),
        ],
    ),
    "Sdk Message",
    "Sdk Messages",
    writable=False,
)
SDK_MESSAGE_FILTER = Table(
    "sdkmessagefilter",
    "sdkmessagefilters",
    "sdkmessagefilterid",
    "",  # Microsoft's reference lists no primary name for this table
    4607,
    _bound(
        "sdkmessagefilter",
        [
            Column("sdkmessagefilterid", "Uniqueidentifier"),
            Column("sdkmessageid", "Lookup", targets=("sdkmessage",)),
            Column("primaryobjecttypecode", "EntityName"),
            Column("secondaryobjecttypecode", "EntityName"),
            Column("iscustomprocessingstepallowed", "Boolean", options={1: "Yes", 0: "No"}),
            Column("isvisible", "Boolean", options={1: "Yes", 0: "No"}),
            Column("availability", "Integer", min_value=0, max_value=2),
            *_audit(),
        ],
    ),
    "Sdk Message Filter",
    "Sdk Message Filters",
    writable=False,
)
SYSTEM_TABLES = (SDK_MESSAGE, SDK_MESSAGE_FILTER)


def _message_id(name: str) -> str:
    return str(uuid.uuid5(_NS, f"sdkmessage:{name}"))


def system_rows(business_tables: list[str], created_on: str) -> dict[str, list[dict[str, object]]]:
    """The rows of both tables: one message per name, one filter per (bound message, table)."""
    messages = [
        {
            "sdkmessageid": _message_id(name),
            "name": name,
            "categoryname": "" if name in UNBOUND_MESSAGES else "Entity",
            "isprivate": 0,
            "isactive": 1,
        }
        for name in (*BOUND_MESSAGES, *UNBOUND_MESSAGES)
    ]
    filters = [
        {
            "sdkmessagefilterid": str(uuid.uuid5(_NS, f"sdkmessagefilter:{name}:{table}")),
            "sdkmessageid": _message_id(name),
            "primaryobjecttypecode": table,
            "secondaryobjecttypecode": "none",
            "iscustomprocessingstepallowed": 1,
            "isvisible": 1,
            "availability": 0,
        }
        for name in BOUND_MESSAGES
        for table in business_tables
    ]
    for row in (*messages, *filters):
        row["createdon"] = row["modifiedon"] = created_on
    return {"sdkmessage": messages, "sdkmessagefilter": filters}
