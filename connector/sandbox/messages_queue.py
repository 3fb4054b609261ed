"""Queue messages: ``AddToQueue`` (bound to the destination queue) and ``RemoveFromQueue`` (bound to
a queue item).

``POST queues(<id>)/Microsoft.Dynamics.CRM.AddToQueue`` with ``{"Target": {"@odata.type":
"Microsoft.Dynamics.CRM.lead", "leadid": "<id>"}}`` (and optionally ``SourceQueue``: ``{"@odata.type":
"Microsoft.Dynamics.CRM.queue", "queueid": "<id>"}``) puts the record in the queue and answers
``AddToQueueResponse`` ``{"QueueItemId": "<id>"}``: the queue item created in the destination queue.
The record itself is not changed (its owner stays; a queue item has its own "worked by").

- With ``SourceQueue`` and an active item of the record in it, that item is *moved*: the same queue
  item now points at the destination (Dataverse keeps the queue item when a record moves between
  queues).
- A record already active in the destination queue keeps its one item there: its id is answered
  and nothing is created, so sending the message twice leaves one item.
- Otherwise a new active queue item is created (a record may sit in more than one queue).
- A queue, source queue or target that does not exist is a 404 ``0x80040217`` naming it, as for
  any missing record; a target whose table is not enabled for queues is a 400.

``POST queueitems(<id>)/Microsoft.Dynamics.CRM.RemoveFromQueue`` removes the item (Microsoft:
"equivalent to deleting the queue item") and answers 204.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from connector.sandbox.dates import format_datetime
from connector.sandbox.faults import ApiError, bad_request, not_found_record, not_implemented
from connector.sandbox.org_tables import QUEUE_ENABLED
from connector.sandbox.protocol import Request, Response, json_response
from connector.sandbox.schema import Table
from connector.sandbox.storage import Store
from connector.sandbox.writes import apply_delete, apply_upsert, current_row, parse_guid


class Service(Protocol):
    """What these messages need of the service (not imported: the service imports this module)."""

    store: Store

    def now(self) -> datetime: ...


__all__ = ["serve_bound"]

_NS = "Microsoft.Dynamics.CRM."
_TYPE_CODES = {"lead": 4, "email": 4202, "phonecall": 4210, "appointment": 4201}


def serve_bound(service: Service, req: Request, table: Table, record_id: str, action: str) -> Response | None:
    """Serve a bound queue action; None when ``action`` is not one of them."""
    name = action.removeprefix(_NS)
    if (table.logical_name, name) not in (("queue", "AddToQueue"), ("queueitem", "RemoveFromQueue")):
        return None
    if req.method != "POST":
        raise ApiError(405, "0x0", f"{name} is an action: use POST.")
    if name == "AddToQueue":
        return _add_to_queue(service, req, table, record_id)
    items = service.store.tables["queueitem"]
    with service.store.transaction() as conn:
        apply_delete(service.store, conn, items, record_id, None, service.now())
    return Response(204, [("OData-Version", "4.0")])


def _reference(body: dict, parameter: str, allowed: tuple[str, ...], service: Service) -> tuple[Table, str]:
    """The table and id of an entity parameter (``{"@odata.type": ..., "<primary id>": ...}``)."""
    value = body.get(parameter)
    if not isinstance(value, dict):
        raise bad_request(
            f"AddToQueue needs {parameter} as an entity object, e.g. "
            '{"@odata.type": "Microsoft.Dynamics.CRM.lead", "leadid": "<id>"}.'
        )
    kind = str(value.get("@odata.type", "")).removeprefix("#").removeprefix(_NS)
    table = service.store.tables.get(kind)
    if table is None:
        raise bad_request(f"The {parameter} needs an @odata.type such as Microsoft.Dynamics.CRM.lead.")
    if kind not in allowed:
        raise bad_request(f"The entity '{kind}' cannot be added to a queue: it is not enabled for queues.")
    record_id = parse_guid(str(value.get(table.primary_id, "")))
    if record_id is None:
        raise bad_request(f"The {parameter} needs its {table.primary_id} (a GUID).")
    return table, record_id


def _add_to_queue(service: Service, req: Request, queues: Table, queue_id: str) -> Response:
    body = req.json()
    if not isinstance(body, dict):
        raise bad_request("AddToQueue needs a JSON object body with Target.")
    unknown = set(body) - {"Target", "SourceQueue", "QueueItemProperties"}
    if unknown:
        raise bad_request(f"AddToQueue has no parameter named '{sorted(unknown)[0]}'.")
    if body.get("QueueItemProperties"):
        raise not_implemented("AddToQueue with QueueItemProperties")
    target, target_id = _reference(body, "Target", QUEUE_ENABLED, service)
    source_id = None
    if body.get("SourceQueue") is not None:
        _, source_id = _reference(body, "SourceQueue", ("queue",), service)
    items = service.store.tables["queueitem"]
    now = service.now()
    with service.store.transaction() as conn:
        if current_row(conn, queues, queue_id) is None:
            raise not_found_record("queue", queue_id)
        if source_id is not None and current_row(conn, queues, source_id) is None:
            raise not_found_record("queue", source_id)
        record = current_row(conn, target, target_id)
        if record is None:
            raise not_found_record(target.logical_name, target_id)
        active = {
            str(q).lower(): str(i)
            for i, q in conn.execute(
                'SELECT "queueitemid", "queueid" FROM "queueitem" WHERE "objectid" = ? AND "statecode" = 0',
                (target_id,),
            ).fetchall()
        }
        if queue_id.lower() in active:
            item_id = active[queue_id.lower()]
        elif source_id is not None and source_id.lower() in active:
            item_id = active[source_id.lower()]
            apply_upsert(
                service.store,
                conn,
                items,
                item_id,
                {"queueid@odata.bind": f"/queues({queue_id})"},
                if_match="*",
                now=now,
            )
        else:
            item_id, _ = apply_upsert(
                service.store,
                conn,
                items,
                None,
                {
                    "queueid@odata.bind": f"/queues({queue_id})",
                    f"objectid_{target.logical_name}@odata.bind": f"/{target.entity_set}({target_id})",
                    "objecttypecode": _TYPE_CODES[target.logical_name],
                    "title": str(record.get(target.primary_name) or "")[:300] or None,
                },
                now=now,
            )
        if queue_id.lower() not in active:  # created or moved: it entered this queue now
            conn.execute(
                'UPDATE "queueitem" SET "enteredon" = ? WHERE "queueitemid" = ?',
                (format_datetime(now), item_id),
            )
    context = f"{req.service_root}$metadata#{_NS}AddToQueueResponse"
    return json_response(200, {"@odata.context": context, "QueueItemId": item_id})
