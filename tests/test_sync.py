"""Sync into the mirror with a fake org at the client contract: full, delta, deletions, expired
token, tracking off, mapping changes, and resume after a crash between pages."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from fake_dataverse import FakeDataverse, SimulatedCrash, column, lead_org

from jobs.service.mapping import load_mappings
from jobs.service.mirror import Mirror
from jobs.service.sync import sync_tables

LEAD_TOML = """\
table = "lead"
entity = "lead"

[fields]
first_name = "firstname"
email = "emailaddress1"
source = { column = "leadsourcecode", type = "choice" }
status = { column = "statecode", type = "choice", values = { 0 = "open", 1 = "qualified" } }
employees = { column = "numberofemployees", type = "integer" }
created_on = { column = "createdon", type = "datetime" }
"""


@pytest.fixture
def mappings(tmp_path: Path):
    directory = tmp_path / "mappings"
    directory.mkdir()
    (directory / "lead.toml").write_text(LEAD_TOML, encoding="utf-8")
    return load_mappings(directory)


@pytest.fixture
def mirror(tmp_path: Path):
    with Mirror(tmp_path / "mirror.sqlite") as m:
        yield m


def seed(org: FakeDataverse, n: int) -> list[str]:
    return [
        org.upsert("leads", firstname=f"Lead {i}", emailaddress1=f"l{i}@x.com", leadsourcecode=8, statecode=0)
        for i in range(n)
    ]


def emails(mirror: Mirror) -> dict[str, str]:
    frame = mirror.read_frame("lead")
    return dict(zip(frame["lead_id"], frame["email"], strict=True))


def expected(org: FakeDataverse) -> dict[str, str]:
    return {rid: row["emailaddress1"] for rid, row in org.tables["leads"].rows.items()}


def test_first_sync_reads_everything_then_delta_applies_creates_updates_deletes(mirror, mappings):
    org = lead_org()
    ids = seed(org, 7)
    result = sync_tables(org, mirror, mappings, page_size=3)
    (report,) = result.tables
    assert (report.mode, report.read, report.upserted, report.deleted, report.pages) == ("full", 7, 7, 0, 3)
    assert report.reason == "first sync"
    frame = mirror.read_frame("lead")
    assert set(frame["source"]) == {"Web"} and set(frame["status"]) == {"open"}
    assert org.calls[-1][0] == "full"

    org.upsert("leads", ids[0], emailaddress1="changed@x.com", statecode=1)
    new = org.upsert("leads", firstname="New", emailaddress1="new@x.com", statecode=0)
    org.delete("leads", ids[1])
    org.delete("leads", ids[2])
    before = org.served_records
    (report,) = sync_tables(org, mirror, mappings, page_size=3).tables
    assert (report.mode, report.read, report.upserted, report.deleted) == ("delta", 2, 2, 2)
    assert org.served_records - before == 2  # only the changes travelled
    assert emails(mirror) == expected(org)
    assert mirror.read_frame("lead").set_index("lead_id").loc[ids[0], "status"] == "qualified"
    assert new in emails(mirror)

    (report,) = sync_tables(org, mirror, mappings).tables
    assert (report.read, report.upserted, report.deleted, report.pages) == (0, 0, 0, 1)
    run = mirror.runs().iloc[0]
    assert run["outcome"] == "ok" and run["kind"] == "sync"


def test_an_expired_delta_token_triggers_a_full_reread_that_drops_vanished_rows(mirror, mappings):
    org = lead_org()
    ids = seed(org, 5)
    sync_tables(org, mirror, mappings)
    org.delete("leads", ids[3])
    org.tables["leads"].tombstones.clear()  # the tombstone aged out with the token
    org.upsert("leads", ids[0], emailaddress1="late@x.com")
    org.expired_before = org.version + 1
    (report,) = sync_tables(org, mirror, mappings).tables
    assert report.mode == "full" and report.reason == "the delta token expired"
    assert report.deleted == 1 and report.read == 4
    assert emails(mirror) == expected(org)
    state = mirror.sync_state("lead")
    assert state.last_full_sync and state.delta_link and state.phase is None


def test_full_flag_rereads_and_removes_rows_deleted_meanwhile(mirror, mappings):
    org = lead_org()
    ids = seed(org, 4)
    sync_tables(org, mirror, mappings)
    org.delete("leads", ids[0])
    org.tables["leads"].tombstones.clear()
    (report,) = sync_tables(org, mirror, mappings, full=True).tables
    assert (report.mode, report.reason, report.deleted) == ("full", "--full", 1)
    assert emails(mirror) == expected(org)


@pytest.mark.parametrize("crash_after", [1, 2])
def test_a_crash_between_pages_resumes_from_the_next_link_without_rereading(mirror, mappings, crash_after):
    org = lead_org()
    seed(org, 10)
    org.crash_after_pages = crash_after
    with pytest.raises(SimulatedCrash):
        sync_tables(org, mirror, mappings, page_size=3)
    committed = mirror.count("lead")
    assert committed == 3 * crash_after
    state = mirror.sync_state("lead")
    assert state.phase == "full" and state.next_link.startswith("fake://leads?since=-1")
    assert mirror.runs().iloc[0]["outcome"] == "failed"

    served = org.served_records
    (report,) = sync_tables(org, mirror, mappings, page_size=3).tables
    assert report.resumed and org.calls[-1] == ("resume", state.next_link)
    assert org.served_records - served == 10 - committed  # nothing committed travels twice
    assert emails(mirror) == expected(org)
    assert mirror.sync_state("lead").delta_link


def test_a_crash_during_a_delta_loses_no_change(mirror, mappings):
    org = lead_org()
    ids = seed(org, 6)
    sync_tables(org, mirror, mappings, page_size=2)
    for rid in ids[:4]:
        org.upsert("leads", rid, emailaddress1=f"{rid}@new.com")
    org.delete("leads", ids[5])
    org.crash_after_pages = 1
    with pytest.raises(SimulatedCrash):
        sync_tables(org, mirror, mappings, page_size=2)
    assert mirror.sync_state("lead").phase == "delta"
    org.upsert("leads", ids[4], emailaddress1="during-the-outage@x.com")  # a change while down
    sync_tables(org, mirror, mappings, page_size=2)
    sync_tables(org, mirror, mappings, page_size=2)
    assert emails(mirror) == expected(org)


def test_a_refused_resume_link_replays_the_delta_instead(mirror, mappings):
    org = lead_org()
    ids = seed(org, 6)
    sync_tables(org, mirror, mappings, page_size=2)
    for rid in ids:
        org.upsert("leads", rid, emailaddress1=f"{rid}@v2.com")
    org.crash_after_pages = 1
    with pytest.raises(SimulatedCrash):
        sync_tables(org, mirror, mappings, page_size=2)
    org.refuse_resume = True
    (report,) = sync_tables(org, mirror, mappings, page_size=2).tables
    assert report.mode == "delta" and not report.resumed
    assert emails(mirror) == expected(org)


def test_a_failure_inside_a_page_rolls_the_page_back(mirror, mappings, monkeypatch):
    org = lead_org()
    seed(org, 5)
    original = mirror.delete

    def broken(name, ids):
        if mirror.count(name) > 2:
            raise OSError("disk full")
        return original(name, ids)

    monkeypatch.setattr(mirror, "delete", broken)
    with pytest.raises(OSError):
        sync_tables(org, mirror, mappings, page_size=2)
    assert mirror.count("lead") == 2  # the first page; the second was rolled back with its state
    assert mirror.sync_state("lead").next_link.startswith("fake://leads?since=-1")
    monkeypatch.setattr(mirror, "delete", original)
    sync_tables(org, mirror, mappings, page_size=2)
    assert emails(mirror) == expected(org)


def test_without_change_tracking_a_modifiedon_window_is_used(mirror, mappings):
    org = lead_org(change_tracking=False)
    ids = seed(org, 5)
    (report,) = sync_tables(org, mirror, mappings, page_size=2).tables
    assert (report.mode, report.read, report.pages) == ("window-full", 5, 3)
    assert org.calls[0] == ("records", None)
    watermark = mirror.sync_state("lead").watermark
    assert watermark.startswith("2026-01-05T09:00:05")

    org.upsert("leads", ids[2], emailaddress1="moved@x.com")
    org.delete("leads", ids[4])
    (report,) = sync_tables(org, mirror, mappings, page_size=2).tables
    assert report.mode == "window"
    # Inclusive start with a 5-minute overlap: every lead changed within 5 minutes is read again,
    # de-duplicated by id, and the id scan finds the deletion.
    assert org.calls[-2] == ("records", "modifiedon ge 2026-01-05T08:55:05Z")
    assert report.deleted == 1 and report.upserted == report.read == 4
    assert emails(mirror) == expected(org)


def test_tracking_turned_off_falls_back_to_a_window(mirror, mappings):
    org = lead_org()
    seed(org, 3)
    sync_tables(org, mirror, mappings)
    # The metadata still says on, but the table answers 0x80072491 (e.g. turned off a moment ago).
    org.tables["leads"].definition = org.tables["leads"].definition
    real = org.iter_change_pages

    def disabled(*args, **kwargs):
        org.set_change_tracking("leads", False)
        try:
            return real(*args, **kwargs)
        finally:
            org.set_change_tracking("leads", True)

    org.iter_change_pages = disabled
    org.upsert("leads", emailaddress1="extra@x.com")
    (report,) = sync_tables(org, mirror, mappings).tables
    assert report.mode == "window-full" and report.reason == "change tracking is off"
    assert emails(mirror) == expected(org)
    assert mirror.sync_state("lead").mode == "window"
    # Still refused next time: the window goes on incrementally, not in full again.
    org.upsert("leads", emailaddress1="later@x.com")
    (report,) = sync_tables(org, mirror, mappings).tables
    assert report.mode == "window" and report.reason is None
    assert emails(mirror) == expected(org)


def test_a_crash_in_a_window_read_resumes_from_the_watermark(mirror, mappings):
    org = lead_org(change_tracking=False)
    seed(org, 7)
    org.crash_after_pages = 1
    with pytest.raises(SimulatedCrash):
        sync_tables(org, mirror, mappings, page_size=3)
    state = mirror.sync_state("lead")
    assert state.phase == "full" and mirror.count("lead") == 3
    (report,) = sync_tables(org, mirror, mappings, page_size=3).tables
    assert report.resumed and report.mode == "window-full"
    assert org.calls[-1][1].startswith("modifiedon ge ")
    assert emails(mirror) == expected(org)


def test_a_mapping_change_rereads_the_table(tmp_path, mirror, mappings):
    org = lead_org()
    seed(org, 3)
    sync_tables(org, mirror, mappings)
    directory = tmp_path / "mappings"
    (directory / "lead.toml").write_text(LEAD_TOML + 'last_name = "lastname"\n', encoding="utf-8")
    org.tables["leads"].definition.attributes["lastname"]  # the column exists in the org
    (report,) = sync_tables(org, mirror, load_mappings(directory)).tables
    assert (report.mode, report.reason, report.read) == ("full", "the mapping changed", 3)
    assert "last_name" in mirror.read_frame("lead").columns


def test_one_failing_table_does_not_stop_the_others(tmp_path, mirror):
    directory = tmp_path / "m2"
    directory.mkdir()
    (directory / "lead.toml").write_text(LEAD_TOML, encoding="utf-8")
    (directory / "account.toml").write_text(
        'table = "account"\nentity = "account"\n[fields]\nname = "name"\n', encoding="utf-8"
    )
    org = lead_org()
    seed(org, 2)
    result = sync_tables(org, mirror, load_mappings(directory))
    by = {t.table: t for t in result.tables}
    assert "account" in by["account"].error and by["lead"].ok and by["lead"].read == 2
    assert not result.ok and mirror.runs().iloc[0]["outcome"] == "failed"
    summary = result.as_dict()
    assert summary["tables"]["lead"]["read"] == 2 and summary["ok"] is False


def test_a_failure_mid_table_keeps_the_committed_counts_and_an_outage_skips_the_rest(tmp_path, mirror):
    from connector.errors import TransportError

    directory = tmp_path / "m4"
    directory.mkdir()
    (directory / "lead.toml").write_text(LEAD_TOML, encoding="utf-8")
    (directory / "zcontact.toml").write_text(
        'table = "contact"\nentity = "contact"\n[fields]\nemail = "emailaddress1"\n', encoding="utf-8"
    )
    org = lead_org()
    org.add_table("contact", "contacts", "contactid", [column("emailaddress1", "String")])
    seed(org, 5)
    real = org.iter_change_pages

    def dropping(*args, **kwargs):
        pages = real(*args, **kwargs)
        yield next(pages)
        raise TransportError("connection reset by peer (after 6 attempts over 300 s)")

    org.iter_change_pages = dropping
    result = sync_tables(org, mirror, load_mappings(directory), page_size=2)
    lead, contact = result.tables
    assert (lead.read, lead.pages, lead.mode) == (2, 1, "full") and "connection reset" in lead.error
    assert contact.error.startswith("not attempted: Dataverse did not answer while syncing lead")
    assert mirror.count("lead") == 2 and not result.ok


def test_existing_output_columns_are_mirrored_for_the_plan(tmp_path, mirror):
    directory = tmp_path / "m3"
    directory.mkdir()
    (directory / "lead.toml").write_text(LEAD_TOML, encoding="utf-8")
    (directory / "outputs.toml").write_text(
        '[lead.score]\ncolumn = "LeadScore"\ntype = "integer"\ndisplay_name = "Lead Score"\n'
        'description = "0-100"\n'
        '[lead.grade]\ncolumn = "LeadGrade"\ntype = "string"\ndisplay_name = "Grade"\ndescription = "A-D"\n',
        encoding="utf-8",
    )
    mappings = load_mappings(directory, prefix="dvs")
    org = lead_org()
    from connector.metadata import ColumnSpec

    org.create_column("lead", ColumnSpec("dvs_LeadScore", "Integer", "Lead Score"), solution="s")
    rid = org.upsert("leads", emailaddress1="a@x.com", dvs_leadscore=42)
    sync_tables(org, mirror, mappings)
    frame = mirror.read_frame("lead").set_index("lead_id")
    assert frame.loc[rid, "out_score"] == 42
    assert "out_grade" not in frame  # not provisioned yet: not selected, no 400


def test_progress_reports_each_committed_page_and_the_end(mirror, mappings):
    org = lead_org()
    seed(org, 5)
    calls = []
    sync_tables(org, mirror, mappings, page_size=2, progress=lambda t, **kw: calls.append((t, kw)))
    assert calls == [
        ("lead", {"read": 2, "pages": 1, "done": False}),
        ("lead", {"read": 4, "pages": 2, "done": False}),
        ("lead", {"read": 5, "pages": 3, "done": False}),
        ("lead", {"read": 5, "pages": 3, "done": True}),
    ]
    from jobs.cli.sync import _with_progress

    result = _with_progress(org, mirror, mappings, {"tables": None, "full": True, "page_size": 2})
    assert result.ok and result.tables[0].read == 5


# ------------------------------------------------------------------------------------------------
# Over real HTTP against the sandbox (tests/conftest.py): the client, the server and the mirror.

ORDER_TOML = """\
table = "salesorder"
entity = "order"

[fields]
customer_id = { column = "customerid", type = "lookup" }
customer_type = { column = "customerid", type = "lookup_type" }
amount = { column = "totalamount", type = "money" }
"""
LOOKUP_NAME = "Microsoft.Dynamics.CRM.lookuplogicalname"


def order_org(change_tracking: bool = True) -> FakeDataverse:
    org = FakeDataverse()
    columns = [
        column("salesorderid", "Uniqueidentifier"),
        column("customerid", "Customer"),
        # Listed by the metadata, but no Web API property: selecting it is a 400.
        replace(column("customeridtype", "EntityName"), is_valid_odata=False, attribute_of="customerid"),
        column("totalamount", "Money"),
        column("modifiedon", "DateTime"),
    ]
    org.add_table("salesorder", "salesorders", "salesorderid", columns, change_tracking=change_tracking)
    return org


def add_order(
    org: FakeDataverse, kind: str, customer: str, amount: float, record_id: str | None = None
) -> str:
    values = {"_customerid_value": customer, f"_customerid_value@{LOOKUP_NAME}": kind, "totalamount": amount}
    return org.upsert("salesorders", record_id, **values)


def order_types(mirror: Mirror) -> dict[str, tuple[str, str]]:
    frame = mirror.read_frame("salesorder")
    return {r.order_id: (r.customer_id, r.customer_type) for r in frame.itertuples()}


@pytest.mark.parametrize("change_tracking", [True, False])
def test_order_customer_type_comes_from_the_annotation_on_every_kind_of_read(
    tmp_path, mirror, change_tracking
):
    directory = tmp_path / "orders"
    directory.mkdir()
    (directory / "salesorder.toml").write_text(ORDER_TOML, encoding="utf-8")
    mappings = load_mappings(directory)
    org = order_org(change_tracking)
    first = [add_order(org, "account", "A-1", 10.0), add_order(org, "contact", "C-1", 20.0)]
    first.append(add_order(org, "account", "A-2", 5.0))
    org.crash_after_pages = 1
    with pytest.raises(SimulatedCrash):
        sync_tables(org, mirror, mappings, page_size=2)
    sync_tables(org, mirror, mappings, page_size=2)  # resumes from the committed page
    assert order_types(mirror) == {
        first[0]: ("a-1", "account"),
        first[1]: ("c-1", "contact"),
        first[2]: ("a-2", "account"),
    }
    org.tick(600)
    add_order(org, "contact", "C-2", 1.0, record_id=first[0])  # the customer changes table
    (report,) = sync_tables(org, mirror, mappings, page_size=2).tables
    assert report.mode == ("delta" if change_tracking else "window")
    assert order_types(mirror)[first[0]] == ("c-2", "contact")
    # Every read (full, resumed, delta or window) asked for the annotation; none selected the companion.
    reads = [
        annotations for entity_set, annotations in org.annotation_requests if entity_set == "salesorders"
    ]
    assert len(reads) >= 3
    assert all(LOOKUP_NAME in annotations for annotations in reads[:3])
    if change_tracking:
        assert all(annotations == (LOOKUP_NAME,) for annotations in reads)


SHIPPED_MAPPINGS = Path(__file__).resolve().parent.parent / "mappings"


class Clock:
    """A settable clock for the sandbox (change-token ages)."""

    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def _client(sb):
    from connector.client import DataverseClient

    return DataverseClient(sb.url, lambda: sb.token)


def _shipped():
    return load_mappings(SHIPPED_MAPPINGS, prefix="dvs")


def _lead_ids(session, sb, n):
    response = session.get(f"{sb.api_url}leads", params={"$select": "leadid", "$top": str(n)})
    response.raise_for_status()
    return [r["leadid"] for r in response.json()["value"]]


def test_sandbox_full_then_delta_with_creates_updates_and_deletes(sandbox, mirror):
    from conftest import dataverse_session

    mappings = _shipped()
    with _client(sandbox) as client:
        first = sync_tables(client, mirror, mappings, tables=["lead", "salesorder"]).tables
        counts = {t.table: (t.mode, t.read, t.upserted) for t in first}
        assert counts["lead"][0] == "full" and counts["lead"][1] == counts["lead"][2] == mirror.count("lead")
        assert counts["salesorder"][1] == mirror.count("salesorder") > 1000
        orders = mirror.read_frame("salesorder")
        assert set(orders["customer_type"].dropna()) == {"account", "contact"}
        assert {"fulfilled", "cancelled"} <= set(orders["status"])
        assert str(orders["order_date"].dtype) == "datetime64[us, UTC]" and orders["amount"].dtype == float

        with dataverse_session(sandbox) as session:
            changed, gone = _lead_ids(session, sandbox, 2)
            patch = session.patch(
                f"{sandbox.api_url}leads({changed})",
                json={"emailaddress1": "now.changed@example.com"},
                headers={"If-Match": "*", "Content-Type": "application/json"},
            )
            assert patch.status_code == 204
            assert session.delete(f"{sandbox.api_url}leads({gone})").status_code == 204
            created = session.post(
                f"{sandbox.api_url}leads",
                json={"lastname": "Newman", "subject": "New lead", "emailaddress1": "new@example.com"},
                headers={"Content-Type": "application/json"},
            )
            assert created.status_code == 204
        before = mirror.count("lead")
        (report,) = sync_tables(client, mirror, mappings, tables=["lead"]).tables
    assert (report.mode, report.read, report.upserted, report.deleted) == ("delta", 2, 2, 1)
    leads = mirror.read_frame("lead").set_index("lead_id")
    assert leads.loc[changed, "email"] == "now.changed@example.com"
    assert gone not in leads.index and "new@example.com" in set(leads["email"])
    assert mirror.count("lead") == before


def test_sandbox_order_customer_type_arrives_as_account_or_contact(sandbox, mirror):
    from conftest import dataverse_session

    mappings = _shipped()
    with dataverse_session(sandbox) as session:

        def ids(entity_set: str, key: str) -> set[str]:
            url, found = f"{sandbox.api_url}{entity_set}?$select={key}", set()
            while url:
                body = session.get(url).json()
                found |= {r[key] for r in body["value"]}
                url = body.get("@odata.nextLink")
            return found

        accounts, contacts = ids("accounts", "accountid"), ids("contacts", "contactid")
        with _client(sandbox) as client:
            sync_tables(client, mirror, mappings, tables=["salesorder", "contact"])
            orders = mirror.read_frame("salesorder")
            assert orders["customer_type"].notna().all()
            by_type = orders.groupby("customer_type")["customer_id"].apply(set)
            assert set(by_type.index) == {"account", "contact"}
            assert by_type["account"] <= accounts and by_type["contact"] <= contacts
            people = mirror.read_frame("contact")
            assert people["account_id"].notna().any() and set(people["account_id"].dropna()) <= accounts

            # A delta replay carries the annotation too: the changed order keeps its customer type.
            row = orders[orders["customer_type"] == "contact"].iloc[0]
            patch = session.patch(
                f"{sandbox.api_url}salesorders({row['order_id']})",
                json={"name": "Renamed order"},
                headers={"If-Match": "*", "Content-Type": "application/json"},
            )
            assert patch.status_code == 204
            (report,) = sync_tables(client, mirror, mappings, tables=["salesorder"]).tables
    assert report.mode == "delta" and report.read == 1
    again = mirror.read_frame("salesorder").set_index("order_id")
    assert again.loc[row["order_id"], "customer_type"] == "contact"
    assert again.loc[row["order_id"], "customer_id"] == row["customer_id"]


def test_sandbox_expired_token_rereads_in_full(sandbox_factory, mirror):
    from datetime import timedelta

    from conftest import SEED_NOW

    from connector.sandbox import SandboxConfig

    clock = Clock(SEED_NOW)
    sb = sandbox_factory(config=SandboxConfig(clock=clock, change_token_retention=timedelta(days=7)))
    mappings = _shipped()
    with _client(sb) as client:
        sync_tables(client, mirror, mappings, tables=["account"])
        clock.now = SEED_NOW + timedelta(days=8)
        (report,) = sync_tables(client, mirror, mappings, tables=["account"]).tables
    assert report.mode == "full" and report.reason == "the delta token expired"
    assert report.read == mirror.count("account") and report.deleted == 0


def test_sandbox_table_without_change_tracking_uses_a_window(sandbox_factory, mirror):
    from conftest import dataverse_session

    from connector.sandbox import SandboxConfig

    sb = sandbox_factory(config=SandboxConfig(change_tracking_disabled=frozenset({"account"})))
    mappings = _shipped()
    with _client(sb) as client:
        (first,) = sync_tables(client, mirror, mappings, tables=["account"], page_size=400).tables
        assert first.mode == "window-full" and first.read == mirror.count("account") and first.pages >= 3
        with dataverse_session(sb) as session:
            ids = [
                r["accountid"]
                for r in session.get(
                    f"{sb.api_url}accounts", params={"$select": "accountid", "$top": "2"}
                ).json()["value"]
            ]
            session.patch(
                f"{sb.api_url}accounts({ids[0]})",
                json={"name": "Renamed Ltd"},
                headers={"If-Match": "*", "Content-Type": "application/json"},
            ).raise_for_status()
            session.delete(f"{sb.api_url}accounts({ids[1]})").raise_for_status()
        (second,) = sync_tables(client, mirror, mappings, tables=["account"], page_size=400).tables
    assert second.mode == "window" and second.deleted == 1
    assert 1 <= second.read < first.read  # only the recent window travelled
    accounts = mirror.read_frame("account").set_index("account_id")
    assert accounts.loc[ids[0], "name"] == "Renamed Ltd" and ids[1] not in accounts.index


def test_sandbox_crash_between_pages_resumes_without_rereading(sandbox, mirror):
    mappings = _shipped()
    with _client(sandbox) as client:

        class Dying:
            """The real client, dying after three pages of the first read."""

            pages = 0

            def __getattr__(self, name):
                return getattr(client, name)

            def iter_change_pages(self, *args, **kwargs):
                for page in client.iter_change_pages(*args, **kwargs):
                    if Dying.pages == 3:
                        raise SimulatedCrash("killed")
                    Dying.pages += 1
                    yield page

        with pytest.raises(SimulatedCrash):
            sync_tables(Dying(), mirror, mappings, tables=["lead"], page_size=500)
        committed = mirror.count("lead")
        assert committed == 1500 and mirror.sync_state("lead").next_link
        (report,) = sync_tables(client, mirror, mappings, tables=["lead"], page_size=500).tables
    assert report.resumed and report.mode == "full"
    assert committed + report.read == mirror.count("lead")  # no record read twice
    assert mirror.sync_state("lead").delta_link and mirror.sync_state("lead").phase is None


def test_sandbox_sync_command_json(sandbox, tmp_path, capsys, monkeypatch):
    import json

    from jobs.cli.main import main

    config = tmp_path / "config.toml"
    config.write_text(
        f'[dataverse]\nurl = "{sandbox.url}"\n[auth]\nmode = "token"\n'
        f'[mirror]\npath = "{tmp_path / "m.sqlite"}"\n'
        f'[mappings]\ndir = "{SHIPPED_MAPPINGS}"\n[writeback]\npublisher_prefix = "dvs"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("DVSYNC__AUTH__TOKEN", sandbox.token)
    assert main(["sync", "--config", str(config), "--table", "contact", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    contact = data["tables"]["contact"]
    assert data["ok"] and contact["mode"] == "full" and contact["read"] == contact["upserted"] > 0
    assert {"read", "upserted", "deleted", "pages", "mode", "duration_s"} <= set(contact)
    assert main(["sync", "--config", str(config), "--table", "contact"]) == 0
    out = capsys.readouterr().out
    assert "contact" in out and "delta" in out


def test_sandbox_sync_command_exit_codes(sandbox, tmp_path, capsys, monkeypatch):
    import shutil

    from jobs.cli.main import main

    mappings = tmp_path / "mappings"
    shutil.copytree(SHIPPED_MAPPINGS, mappings)
    lead = mappings / "lead.toml"
    lead.write_text(lead.read_text().replace('"emailaddress1"', '"emailadress1"'), encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[dataverse]\nurl = "{sandbox.url}"\n[auth]\nmode = "token"\n'
        f'[mirror]\npath = "{tmp_path / "m.sqlite"}"\n[mappings]\ndir = "{mappings}"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("DVSYNC__AUTH__TOKEN", sandbox.token)
    # A column the org does not have is a configuration error like any other: exit 2, one message
    # naming the file, line and the closest real column.
    assert main(["sync", "--config", str(config), "--table", "lead", "--table", "account"]) == 2
    err = capsys.readouterr().err
    assert "lead.toml:" in err and "did you mean `emailaddress1`?" in err and "Traceback" not in err
    # A mapping file that is wrong on its own is a configuration error: exit 2, nothing synced.
    lead.write_text(lead.read_text().replace('entity = "lead"', 'entity = "leed"'), encoding="utf-8")
    assert main(["sync", "--config", str(config)]) == 2
    assert "did you mean `lead`" in capsys.readouterr().err
