"""Queues over real HTTP against the sandbox: AddToQueue (bound to the queue), the queue items it
creates or moves, the errors for ids that do not exist, RemoveFromQueue, and a lost answer settled
by reading the queue items back."""

from __future__ import annotations

import requests
from conftest import dataverse_session
from pipeline_support import sandbox_client
from requests.adapters import HTTPAdapter

from connector import QueueRequest
from connector.sandbox.seed.org import INTAKE_QUEUE_ID, team_id

MISSING = "00000000-0000-0000-0000-0000000000aa"


class LosesAnswer(HTTPAdapter):
    """Drops the connection of the first AddToQueue ``$batch`` after the server ran it."""

    def __init__(self) -> None:
        super().__init__()
        self.lost = 0

    def send(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.lost == 0 and request.url.endswith("$batch") and b"AddToQueue" in (request.body or b""):
            self.lost += 1
            super().send(request, *args, **kwargs)
            raise requests.ConnectionError("connection reset by peer (simulated)")
        return super().send(request, *args, **kwargs)


def _leads(sandbox, n: int) -> list[tuple[str, str]]:
    with dataverse_session(sandbox) as s:
        rows = s.get(f"{sandbox.api_url}leads?$select=leadid,_ownerid_value&$top={n}", timeout=30).json()
    return [(r["leadid"], r["_ownerid_value"]) for r in rows["value"]]


def _second_queue(sandbox) -> str:
    with dataverse_session(sandbox) as s:
        response = s.post(
            f"{sandbox.api_url}queues",
            json={"name": "Enterprise Leads", "ownerid@odata.bind": f"/teams({team_id('Enterprise Sales')})"},
            headers={"Prefer": "return=representation"},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()["queueid"]


def test_add_to_queue_creates_moves_and_removes_queue_items_and_leaves_the_owner(sandbox):
    (a, owner_a), (b, _), (c, _) = _leads(sandbox, 3)
    other = _second_queue(sandbox)
    with sandbox_client(sandbox) as client:
        first = client.add_to_queues(
            [QueueRequest("lead", a, INTAKE_QUEUE_ID), QueueRequest("lead", b, INTAKE_QUEUE_ID)]
        )
        assert [r.ok for r in first] == [True, True] and first[0].queue_item_id != first[1].queue_item_id
        # Already in that queue: the same item is answered, no second one is created.
        [again] = client.add_to_queues([QueueRequest("lead", a, INTAKE_QUEUE_ID)])
        assert again.ok and again.queue_item_id == first[0].queue_item_id
        # With SourceQueue, the item moves (same queue item, new queue).
        [moved] = client.add_to_queues([QueueRequest("lead", b, other, source_queue_id=INTAKE_QUEUE_ID)])
        assert moved.queue_item_id == first[1].queue_item_id
        items = {(q.object_id, q.queue_id): q for q in client.queue_items(object_ids=[a, b, c])}
        assert set(items) == {(a, INTAKE_QUEUE_ID), (b, other)}
        assert (
            items[(a, INTAKE_QUEUE_ID)].object_table == "lead"
            and items[(a, INTAKE_QUEUE_ID)].worker_id is None
        )
        # Ids that do not exist fail per record, as Dataverse words it; the others go through.
        results = client.add_to_queues(
            [
                QueueRequest("lead", c, MISSING),
                QueueRequest("lead", MISSING, INTAKE_QUEUE_ID),
                QueueRequest("lead", c, INTAKE_QUEUE_ID, source_queue_id=MISSING),
                QueueRequest("account", MISSING, INTAKE_QUEUE_ID),
                QueueRequest("lead", c, other),
            ]
        )
        assert [r.ok for r in results] == [False, False, False, False, True]
        assert results[0].status == 404 and f"queue With Id = {MISSING} Does Not Exist" in results[0].message
        assert results[1].status == 404 and f"lead With Id = {MISSING} Does Not Exist" in results[1].message
        assert results[2].status == 404 and results[3].status == 400
        assert "not enabled for queues" in results[3].message
        client.remove_from_queue(first[0].queue_item_id)
        assert {q.object_id for q in client.queue_items(object_type_code=4)} == {b, c}
    assert _leads(sandbox, 1)[0] == (a, owner_a)  # the lead's owner did not change


def test_a_lost_add_to_queue_answer_is_read_back_not_replayed(sandbox):
    (a, _), (b, _) = _leads(sandbox, 2)
    adapter = LosesAnswer()
    with sandbox_client(sandbox, adapter) as client:
        results = client.add_to_queues(
            [QueueRequest("lead", a, INTAKE_QUEUE_ID), QueueRequest("lead", b, INTAKE_QUEUE_ID)]
        )
        items = client.queue_items(object_ids=[a, b])
    assert adapter.lost == 1
    assert all(r.ok and r.confirmed for r in results)
    assert sorted(q.object_id for q in items) == sorted([a, b])  # one item each, not two
