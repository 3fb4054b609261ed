"""Dataverse's ``Merge`` action: one group of duplicates merged into its master, all or nothing.

The request shape is merge-entity-using-web-api.md
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/merge-entity-using-web-api)::

    POST [Organization URI]/api/data/v9.2/Merge
    {"Target": {"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": "<master>"},
     "Subordinate": {"@odata.type": "Microsoft.Dynamics.CRM.account", "accountid": "<duplicate>"},
     "UpdateContent": {"@odata.type": "Microsoft.Dynamics.CRM.account", "accountnumber": "1234"},
     "PerformParentingChecks": false}

(the organisation service's ``MergeRequest`` names the subordinate ``SubordinateId``; the Web API
action takes the entity object ``Subordinate``). Success is ``204 No Content``.

A group with several duplicates needs one Merge per duplicate. They are sent as one ``$batch``
change set, which Dataverse runs as one transaction: either every duplicate of the group is merged
or none is (execute-batch-operations-using-web-api.md, "change sets"). A merge cannot be undone, so
the batch is never resent after the request may have reached the server: when the answer is lost
(a dropped connection, a timeout) the outcome is reported as *unknown* and the caller checks the
records (:func:`merged_into`) before deciding anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connector.batch import BatchRequest, ChangeSet, decode_batch, encode_batch
from connector.errors import AuthError, DataverseError, RetriableError
from connector.http import HttpClient, error_from_batch_part, error_from_response
from connector.writeback import encode_value

__all__ = ["MERGEABLE_TABLES", "MergeOutcome", "merge_body", "merge_group", "merged_into"]

MERGEABLE_TABLES = ("account", "contact", "lead")
"""Tables dvsync merges (Dataverse also merges incident, which dvsync does not mirror)."""

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_BATCH_ERROR_STATUSES = tuple(code for code in range(400, 429) if code != 401)


@dataclass(frozen=True)
class MergeOutcome:
    """What happened to one group.

    Attributes:
        status: ``merged`` (every duplicate merged), ``failed`` (Dataverse refused; nothing of the
            group was applied) or ``unknown`` (the answer was lost; check the records).
        http_status: the status of the failing part or request, when there was one.
        code: Dataverse's error code (``0x80040203``...).
        message: what went wrong, for the report.
    """

    status: str
    http_status: int | None = None
    code: str | None = None
    message: str | None = None


def _entity(table: str, primary_id: str, record_id: str) -> dict[str, Any]:
    return {"@odata.type": f"Microsoft.Dynamics.CRM.{table}", primary_id: record_id}


def merge_body(
    table: str,
    primary_id: str,
    master_id: str,
    subordinate_id: str,
    update_content: Mapping[str, Any] | None,
    *,
    parenting_checks: bool,
) -> dict[str, Any]:
    """Build the body of one ``Merge`` request (every entity parameter carries ``@odata.type``)."""
    for name, value in (("master", master_id), ("subordinate", subordinate_id)):
        if not _GUID.match(str(value).lower()):
            raise ValueError(f"the {name} id {value!r} is not a GUID")
    update = {"@odata.type": f"Microsoft.Dynamics.CRM.{table}"}
    update.update({str(k): encode_value(v) for k, v in (update_content or {}).items()})
    return {
        "Target": _entity(table, primary_id, master_id.lower()),
        "Subordinate": _entity(table, primary_id, subordinate_id.lower()),
        "UpdateContent": update,
        "PerformParentingChecks": bool(parenting_checks),
    }


def merge_group(
    http: HttpClient,
    table: str,
    primary_id: str,
    master_id: str,
    subordinates: Sequence[tuple[str, Mapping[str, Any] | None]],
    *,
    parenting_checks: bool = False,
) -> MergeOutcome:
    """Merge every subordinate into the master in one change set (all or nothing).

    Args:
        http: the client.
        table: ``account``, ``contact`` or ``lead``.
        primary_id: the table's primary key (``accountid``).
        master_id: the record that survives.
        subordinates: ``(subordinate id, UpdateContent values)`` in the order to merge them.
        parenting_checks: ``PerformParentingChecks``.

    Raises:
        ValueError: a table Dataverse cannot merge, no subordinates, or an id that is not a GUID.
    """
    if table not in MERGEABLE_TABLES:
        raise ValueError(f"{table} records cannot be merged; Merge accepts {', '.join(MERGEABLE_TABLES)}")
    if not subordinates:
        raise ValueError("a merge group needs at least one subordinate")
    requests = [
        BatchRequest(
            "POST",
            "Merge",
            headers={"Content-Type": "application/json"},
            body=merge_body(table, primary_id, master_id, sub_id, update, parenting_checks=parenting_checks),
            content_id=str(number),
        )
        for number, (sub_id, update) in enumerate(subordinates, start=1)
    ]
    content_type, body = encode_batch([ChangeSet(requests)], base_url=http.base_url)
    try:
        # Not idempotent: retried only when the request cannot have reached the server.
        response = http.request(
            "POST",
            "$batch",
            data=body,
            headers={"Content-Type": content_type},
            idempotent=False,
            ok_statuses=_BATCH_ERROR_STATUSES,
        )
    except RetriableError as exc:
        return MergeOutcome("unknown", exc.status, exc.code, f"no answer from Dataverse: {exc.message}")
    except (DataverseError, AuthError) as exc:
        status = getattr(exc, "status", None)
        return MergeOutcome("failed", status, getattr(exc, "code", None), str(exc))
    answer_type = response.headers.get("Content-Type", "")
    if not answer_type.lower().startswith("multipart/"):
        error = error_from_response(response, method="POST")
        return MergeOutcome("failed", error.status, error.code, error.message)
    parts = decode_batch(answer_type, response.content)
    failed = [part for part in parts if not part.ok]
    if failed:
        part = failed[0]
        error = error_from_batch_part(part, method="POST", url=http.base_url + "Merge")
        return MergeOutcome(
            "failed", part.status, getattr(error, "code", None), getattr(error, "message", str(error))
        )
    if len(parts) < len(requests):
        return MergeOutcome("unknown", None, None, "Dataverse answered fewer merges than were sent")
    return MergeOutcome("merged", 204)


def merged_into(record: Mapping[str, Any] | None) -> str | None:
    """The master a record was merged into (``_masterid_value`` when ``merged``), else None."""
    if not record or not record.get("merged"):
        return None
    master = record.get("_masterid_value")
    return str(master).lower() if master else None
