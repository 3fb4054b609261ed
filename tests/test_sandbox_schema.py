"""The served tables agree with Microsoft's reference and with the seed generator's labels."""

from __future__ import annotations

from connector.sandbox import seed
from connector.sandbox.catalog import TABLES, table_by_entity_set, table_by_name


def test_seed_choice_labels_are_the_labels_the_server_formats():
    # FormattedValue annotations come from the schema; the seed documents its values with
    # OPTION_LABELS. They must say the same thing, or a mapping would see two names for one value.
    for table, columns in seed.OPTION_LABELS.items():
        served = table_by_name(table).column_map()
        for column, labels in columns.items():
            assert {v: served[column].options.get(v) for v in labels} == labels, f"{table}.{column}"
    for table, states in seed.STATUS_STATE.items():
        assert table_by_name(table).column_map()["statuscode"].option_states == states, table


def test_reference_facts_of_section_8():
    lead = table_by_name("lead")
    assert (lead.entity_set, lead.primary_id, lead.primary_name, lead.object_type_code) == (
        "leads",
        "leadid",
        "fullname",
        4,
    )
    columns = lead.column_map()
    assert columns["lastname"].max_length == 50 and columns["subject"].max_length == 300
    assert columns["leadsourcecode"].options[8] == "Web"
    assert columns["statecode"].default_status == {0: 1, 1: 3, 2: 4}
    assert not columns["fullname"].create and not columns["statecode"].create
    assert columns["customerid"].navigation_properties() == {
        "customerid_account": "account",
        "customerid_contact": "contact",
    }
    order = table_by_entity_set("salesorders")
    assert order is not None and order.column_map()["statuscode"].option_states[100001] == 3
    assert order.column_map()["totalamount"].create is False
    email = table_by_name("email").column_map()["regardingobjectid"]
    assert "regardingobjectid_lead_email" in email.navigation_properties()
    assert table_by_entity_set("Leads") is None  # entity set names are case-sensitive
    assert len({t.entity_set for t in TABLES}) == len(TABLES)


def test_every_seeded_column_is_served(sandbox, sandbox_session):
    # Seeding refuses unknown columns, so a served table lists every column the generator fills.
    data = seed.generate("small", 0, scale=0.02)
    for name, frame in data.tables.items():
        served = {c.logical_name for c in table_by_name(name).columns}
        assert set(frame.columns) <= served, name


def test_seeding_refuses_unknown_columns_and_bad_values(tmp_path):
    import pandas as pd
    import pytest

    from connector.sandbox import SandboxConfig
    from connector.sandbox.storage import SeedError, Store

    def create(frames: dict) -> None:
        Store(tmp_path / "db", SandboxConfig().clock).create(frames, {})

    lead = {"leadid": ["7d3e1c1e-1111-4a4a-9b9b-000000000001"], "lastname": ["Ng"]}
    with pytest.raises(SeedError, match=r"lead.*emailaddress9"):
        create({"lead": pd.DataFrame({**lead, "emailaddress9": ["x@y.z"]})})
    with pytest.raises(SeedError, match=r"lead\.createdon"):
        create({"lead": pd.DataFrame({**lead, "createdon": ["not a date"]})})
    with pytest.raises(SeedError, match="tables the sandbox does not serve: task"):
        create({"task": pd.DataFrame({"activityid": ["x"]})})
    assert not (tmp_path / "db" / "sandbox.sqlite").exists()  # nothing half-seeded is left behind
    create({"lead": pd.DataFrame(lead)})
    row = Store(tmp_path / "db", SandboxConfig().clock)
    row.open()
    assert row.conn().execute("SELECT fullname, statecode, statuscode FROM lead").fetchone() == ("Ng", 0, 1)
    row.close()
