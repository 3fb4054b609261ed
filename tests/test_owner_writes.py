"""Owner writes over real HTTP against the sandbox: a lost answer settled by reading the owner back,
and a lead taken by a person between the sync and the write left with that person."""

from __future__ import annotations

import pytest
import requests
from conftest import dataverse_session
from requests.adapters import HTTPAdapter

from connector import DataverseClient, RetryPolicy
from connector.sandbox.seed.org import team_id, user_id

OWNER = "ownerid@odata.bind"


class LosesAnswer(HTTPAdapter):
    """Drops the connection of the first PATCH ``$batch``: after the server applied it, or before."""

    def __init__(self, applied: bool) -> None:
        super().__init__()
        self.applied = applied
        self.lost = 0

    def send(self, request, *args, **kwargs):  # type: ignore[no-untyped-def]
        body = request.body or b""
        if self.lost == 0 and request.url.endswith("$batch") and b"PATCH " in body:
            self.lost += 1
            if self.applied:
                super().send(request, *args, **kwargs)
            raise requests.ConnectionError("connection reset by peer (simulated)")
        return super().send(request, *args, **kwargs)


def _client(sandbox, adapter: HTTPAdapter | None = None) -> DataverseClient:
    session = requests.Session()
    if adapter is not None:
        session.mount("http://", adapter)
    retry = RetryPolicy(sleep=lambda seconds: None, random=lambda: 0.5)
    return DataverseClient(sandbox.url, lambda: sandbox.token, session=session, retry=retry)


def _lead(sandbox, owner: str) -> tuple[str, str]:
    """An open lead held by ``owner`` (a team id): (id, etag)."""
    with dataverse_session(sandbox) as s:
        url = (
            f"{sandbox.api_url}leads?$select=leadid,_ownerid_value&$top=1"
            f"&$filter=statecode eq 0 and _ownerid_value eq {owner}"
        )
        row = s.get(url, timeout=30).json()["value"][0]
    return row["leadid"], row["@odata.etag"]


def _owner(sandbox, lead: str) -> str:
    with dataverse_session(sandbox) as s:
        return s.get(f"{sandbox.api_url}leads({lead})?$select=_ownerid_value", timeout=30).json()[
            "_ownerid_value"
        ]


@pytest.mark.parametrize("applied", [True, False])
@pytest.mark.parametrize("with_etag", [True, False])
def test_a_lost_owner_write_is_settled_by_reading_the_owner_back(sandbox, applied, with_etag):
    intake = team_id("Lead Intake")
    lead, etag = _lead(sandbox, intake)
    target = user_id("Amelia", "Hart")
    adapter = LosesAnswer(applied)
    with _client(sandbox, adapter) as client:
        update = (
            lead,
            {OWNER: f"/systemusers({target})"},
            *((etag, {OWNER: f"/teams({intake})"}) if with_etag else ()),
        )
        [result] = client.update_many("leads", [update])
    assert adapter.lost == 1
    assert result.ok, result.message
    # Applied: the read-back finds the new owner and does not send it again. Not applied: sent once more.
    assert result.confirmed is applied
    assert _owner(sandbox, lead) == target
