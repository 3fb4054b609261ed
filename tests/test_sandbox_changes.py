"""Change tracking over real HTTP: delta links, deleted entities, paging, expiry, tracking off (§4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from conftest import dataverse_session

from connector.sandbox import SandboxConfig

TRACK = {"Prefer": "odata.track-changes,odata.maxpagesize=500"}


def _read(session, url, headers=TRACK):
    """Follow nextLinks; return (records, deleted ids, deltaLink, pages)."""
    records, deleted, pages = [], [], 0
    while True:
        r = session.get(url, headers=headers)
        assert r.status_code == 200, r.text
        assert "odata.track-changes" in r.headers["Preference-Applied"]
        body = r.json()
        pages += 1
        for item in body["value"]:
            if item.get("reason") == "deleted":
                assert item["@odata.context"].endswith("$metadata#accounts/$deletedEntity")
                deleted.append(item["id"])
            else:
                records.append(item)
        if "@odata.nextLink" in body:
            assert "@odata.deltaLink" not in body
            url = body["@odata.nextLink"]
            continue
        return records, deleted, body["@odata.deltaLink"], pages


def test_initial_read_then_delta_with_updates_creates_and_deletions(sandbox, sandbox_session):
    start = sandbox.api_url + "accounts?$select=name,revenue"
    records, deleted, delta, pages = _read(sandbox_session, start)
    assert pages > 1 and not deleted
    assert len(records) == len({r["accountid"] for r in records})
    token = parse_qs(urlsplit(delta).query)["$deltatoken"][0]
    assert "!" in token and delta.startswith(start + "&$deltatoken=")

    a, b, c = records[0]["accountid"], records[1]["accountid"], records[2]["accountid"]
    s = sandbox_session
    s.patch(f"{sandbox.api_url}accounts({a})", json={"name": "first"}, headers={"If-Match": "*"})
    s.patch(f"{sandbox.api_url}accounts({a})", json={"name": "second"}, headers={"If-Match": "*"})
    s.delete(f"{sandbox.api_url}accounts({b})")
    new_url = s.post(sandbox.api_url + "accounts", json={"name": "brand new"}).headers["OData-EntityId"]
    new_id = new_url.rsplit("(", 1)[1].rstrip(")")
    # Created and deleted inside the window: reported as deleted only.
    temp = s.post(sandbox.api_url + "accounts", json={"name": "temp"}).headers["OData-EntityId"]
    s.delete(temp)

    r = s.get(delta, headers=TRACK)
    body = r.json()
    assert body["@odata.context"] == f"{sandbox.api_url}$metadata#accounts(name,revenue)/$delta"
    changed = [v for v in body["value"] if "reason" not in v]
    gone = [v["id"] for v in body["value"] if v.get("reason") == "deleted"]
    # Latest state once, new and updated first, deletions after (§4).
    assert [v["accountid"] for v in changed] == [a, new_id]
    assert changed[0]["name"] == "second"
    assert set(gone) == {b, temp.rsplit("(", 1)[1].rstrip(")")}
    assert body["value"].index(changed[-1]) < len(changed)
    assert c not in {v["accountid"] for v in changed}

    count_url = delta.replace("accounts?$select=name,revenue&", "accounts/$count?")
    assert s.get(count_url).content == "\ufeff4".encode()  # a, the new one, b and temp

    # Nothing new: empty value, a fresh delta link.
    again = s.get(body["@odata.deltaLink"], headers=TRACK).json()
    assert again["value"] == [] and again["@odata.deltaLink"]


def test_delta_pages_and_changes_during_the_initial_read_are_not_lost(sandbox, sandbox_session):
    s = sandbox_session
    first = s.get(sandbox.api_url + "contacts?$select=lastname", headers=TRACK).json()
    served = [v["contactid"] for v in first["value"]]
    # Written while the initial read is still paging: must come in the next delta.
    late = s.post(sandbox.api_url + "contacts", json={"lastname": "Late"}).headers["OData-EntityId"]
    s.patch(f"{sandbox.api_url}contacts({served[0]})", json={"lastname": "Edited"}, headers={"If-Match": "*"})
    url = first["@odata.nextLink"]
    records, _, delta, _ = _read(s, url)
    initial_ids = served + [r["contactid"] for r in records]
    assert len(initial_ids) == len(set(initial_ids))
    changes, _, _, _ = _read(s, delta)
    ids = {r["contactid"] for r in changes}
    assert late.rsplit("(", 1)[1].rstrip(")") in ids and served[0] in ids

    # Many changes page within the delta.
    for record_id in initial_ids[:1200]:
        s.patch(
            f"{sandbox.api_url}contacts({record_id})", json={"jobtitle": "Bulk"}, headers={"If-Match": "*"}
        )
    bulk, _, _, pages = _read(s, delta)
    assert pages >= 3
    assert len(bulk) == len({r["contactid"] for r in bulk}) >= 1200


def test_tracking_refuses_filter_orderby_and_top(sandbox, sandbox_session):
    for option in ("$filter=statecode eq 0", "$orderby=name", "$top=5"):
        r = sandbox_session.get(f"{sandbox.api_url}accounts?$select=name&{option}", headers=TRACK)
        assert r.status_code == 400
        name = option.split("=")[0]
        assert (
            r.json()["error"]["message"]
            == f'The "{name}" query parameter isn\'t supported when Change Tracking is enabled.'
        )


def test_expired_token_and_tracking_off(sandbox_factory):
    clock = [datetime(2026, 6, 1, tzinfo=UTC)]
    config = SandboxConfig(
        clock=lambda: clock[0],
        change_token_retention=timedelta(days=7),
        change_tracking_disabled=frozenset({"lead"}),
    )
    sb = sandbox_factory(config=config)
    s = dataverse_session(sb)
    off = s.get(sb.api_url + "leads?$select=lastname", headers=TRACK)
    assert off.status_code == 400
    assert off.json()["error"] == {
        "code": "0x80072491",
        "message": "Entity lead isn't enabled for change tracking.",
    }
    definition = s.get(
        sb.api_url + "EntityDefinitions(LogicalName='lead')?$select=ChangeTrackingEnabled"
    ).json()
    assert definition["ChangeTrackingEnabled"] is False

    _, _, delta, _ = _read(s, sb.api_url + "accounts?$select=name")
    clock[0] += timedelta(days=6)
    assert s.get(delta, headers=TRACK).status_code == 200
    clock[0] += timedelta(days=2)
    expired = s.get(delta, headers=TRACK)
    assert expired.status_code == 400
    assert expired.json()["error"] == {
        "code": "0x80044352",
        "message": "Version stamp associated with the client has expired. Please perform a full sync.",
    }


def test_a_version_in_flight_is_never_covered_by_a_delta_token(sandbox, sandbox_session):
    # A delta link issued while another transaction holds an uncommitted version must stay below it,
    # otherwise that transaction's change would be skipped by the next delta.
    store = sandbox.store
    before = store.committed_version
    with store.transaction():
        in_flight = store.next_version()
        body = sandbox_session.get(sandbox.api_url + "appointments?$select=subject", headers=TRACK).json()
        while "@odata.nextLink" in body:
            body = sandbox_session.get(body["@odata.nextLink"], headers=TRACK).json()
        token = body["@odata.deltaLink"].rsplit("$deltatoken=", 1)[1]
        assert int(token.split("%21")[0]) == before < in_flight
    assert store.committed_version == in_flight


def test_tombstones_older_than_the_retention_are_dropped_on_restart(sandbox_factory):
    from connector.sandbox import Sandbox

    clock = [datetime(2026, 6, 1, tzinfo=UTC)]
    config = SandboxConfig(clock=lambda: clock[0], change_token_retention=timedelta(days=7))
    sb = sandbox_factory(config=config)
    s = dataverse_session(sb)
    url = s.post(sb.api_url + "accounts", json={"name": "short-lived"}).headers["OData-EntityId"]
    assert s.delete(url).status_code == 204
    sb.stop()

    def tombstones(box: Sandbox) -> int:
        return box.store.conn().execute("SELECT COUNT(*) FROM _dv_tombstones").fetchone()[0]

    with Sandbox(sb.data_dir, token=sb.token, config=config) as again:
        assert tombstones(again) == 1
    clock[0] += timedelta(days=8)
    with Sandbox(sb.data_dir, token=sb.token, config=config) as later:
        assert tombstones(later) == 0


def test_delta_pages_carry_the_lookuplogicalname_annotation_when_asked(sandbox, sandbox_session):
    headers = {
        "Prefer": "odata.track-changes,odata.maxpagesize=500,"
        'odata.include-annotations="Microsoft.Dynamics.CRM.lookuplogicalname"'
    }
    start = sandbox.api_url + "salesorders?$select=name,_customerid_value"
    records, _, delta, pages = _read(sandbox_session, start, headers)
    assert pages > 1
    assert {r["_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] for r in records} == {
        "account",
        "contact",
    }
    by_kind = {r["_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"]: r for r in records}
    for record in by_kind.values():
        r = sandbox_session.patch(
            f"{sandbox.api_url}salesorders({record['salesorderid']})",
            json={"name": "renamed"},
            headers={"If-Match": "*"},
        )
        assert r.status_code == 204, r.text
    changed, _, _, _ = _read(sandbox_session, delta, headers)
    types = {
        r["salesorderid"]: r["_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] for r in changed
    }
    assert types == {r["salesorderid"]: kind for kind, r in by_kind.items()}
