"""Leads that already exist as contacts or accounts: the linking step of the duplicates job."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from jobs.leads.duplicates.config import load_duplicate_config
from jobs.service.compute import existing_records, run_duplicates

SHIPPED = Path(__file__).resolve().parents[1] / "mappings" / "duplicates.toml"

JANE = "0000000a-0000-0000-0000-000000000001"
NOBODY = "0000000a-0000-0000-0000-000000000002"
BUYER = "0000000a-0000-0000-0000-000000000003"
CLOSED = "0000000a-0000-0000-0000-000000000004"
JANE_CONTACT = "0000000C-0000-0000-0000-000000000001"  # upper case: ids are compared lower case
CONTOSO = "000000ac-0000-0000-0000-000000000001"


def lead(lead_id, first, last, company, email, phone, street, city, postcode, status="open"):
    return {
        "lead_id": lead_id,
        "first_name": first,
        "last_name": last,
        "company": company,
        "email": email,
        "phone": phone,
        "mobile_phone": None,
        "street": street,
        "city": city,
        "postcode": postcode,
        "status": status,
    }


@pytest.fixture
def leads() -> pd.DataFrame:
    return pd.DataFrame(
        [
            # Jane typed her first name short and her email in capitals: still contact Jane Doe.
            lead(JANE, "Jane", "Doe", "Fabrikam", "JANE@x.com", "+1 206 555 0101", "1 Main St", "Seattle",
                 "98101"),
            lead(NOBODY, "Quentin", "Zylberstein", "Nowhere Widgets", "qz@nowhere.example", "+1 907 555 0199",
                 "77 Ice Rd", "Nome", "99762"),
            # A buyer at Contoso: not a known person, but a known company (name, switchboard, address).
            lead(BUYER, "Priya", "Raman", "Contoso Limited", "priya.raman@contoso.example",
                 "+44 20 7946 0000", "10 High Street", "London", "EC1A 1BB"),
        ]
    )  # fmt: skip


@pytest.fixture
def contacts() -> pd.DataFrame:
    rows = [
        (JANE_CONTACT, "Jane", "Doe", "jane@x.com", "+1 206 555 0101", "1 Main Street", "Seattle", "98101"),
        ("0000000c-0000-0000-0000-000000000002", "John", "Smith", "john@y.com", "+1 312 555 0102",
         "5 Lake Ave", "Chicago", "60601"),
        ("0000000c-0000-0000-0000-000000000003", "Maria", "Garcia", "maria@z.com", "+1 305 555 0103",
         "9 Ocean Dr", "Miami", "33139"),
        ("0000000c-0000-0000-0000-000000000004", "Wei", "Chen", "wei@w.com", "+1 415 555 0104",
         "2 Market St", "San Francisco", "94105"),
        ("0000000c-0000-0000-0000-000000000005", "Jane", "Dow", "jdow@other.com", "+1 617 555 0105",
         "8 Elm St", "Boston", "02108"),
    ]  # fmt: skip
    columns = ["contact_id", "first_name", "last_name", "email", "phone", "street", "city", "postcode"]
    return pd.DataFrame(rows, columns=columns).assign(mobile_phone=None)


@pytest.fixture
def accounts() -> pd.DataFrame:
    rows = [
        (CONTOSO, "Contoso Ltd", "+44 20 7946 0000", "10 High St", "London", "EC1A 1BB"),
        ("000000ac-0000-0000-0000-000000000002", "Northwind Traders", "+1 206 555 0900", "400 Pine St",
         "Seattle", "98101"),
        ("000000ac-0000-0000-0000-000000000003", "Adventure Works", "+1 512 555 0300", "3 Congress Ave",
         "Austin", "78701"),
        ("000000ac-0000-0000-0000-000000000004", "Tailspin Toys", "+1 303 555 0400", "12 Larimer St",
         "Denver", "80202"),
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["account_id", "name", "phone", "street", "city", "postcode"])
    return frame.assign(email=None, website=None)


@pytest.fixture
def config():
    return load_duplicate_config(SHIPPED, "lead")


def test_each_lead_gets_the_contact_and_account_it_already_is(leads, contacts, accounts, config):
    results, details = existing_records(leads, {"contact": contacts, "account": accounts}, config)
    assert list(results.index) == [JANE, NOBODY, BUYER]
    jane, nobody, buyer = (results.loc[i] for i in (JANE, NOBODY, BUYER))

    assert jane["existing_contact"] == "Jane Doe <jane@x.com>"
    assert jane["existing_contact_id"] == JANE_CONTACT.lower()
    assert 0.5 <= jane["existing_contact_score"] <= 1
    assert pd.isna(jane["existing_account"])  # Fabrikam is no account of ours

    assert buyer["existing_account"] == "Contoso Ltd, London"
    assert buyer["existing_account_id"] == CONTOSO
    assert 0.5 <= buyer["existing_account_score"] <= 1
    assert pd.isna(buyer["existing_contact"])  # a new person at a known company

    assert nobody.isna().all()  # no match: empty values, which clear an earlier one

    # The evidence is in the details, not in the columns.
    example = details["contact"]["examples"][0]
    assert example["lead_id"] == JANE and example["contact_id"] == JANE_CONTACT.lower()
    assert "email exact" in example["evidence"]
    assert details["contact"]["linked"] == 1 and details["contact"]["checked"] == 3
    assert details["account"]["linked"] == 1 and details["account"]["threshold"] == 0.5


def test_the_best_match_wins_and_the_threshold_is_respected(leads, contacts, accounts, tmp_path):
    # Jane Doe's twin record at another address: two candidate contacts, the closer one is kept.
    twin = contacts.iloc[[0]].assign(
        contact_id="0000000c-0000-0000-0000-000000000099", email=None, phone=None, street="3 Side St"
    )
    config = load_duplicate_config(SHIPPED, "lead")
    results, _ = existing_records(leads, {"contact": pd.concat([contacts, twin])}, config)
    assert results.loc[JANE, "existing_contact_id"] == JANE_CONTACT.lower()
    assert "existing_account" not in results  # accounts not given: not checked, nothing planned

    strict = tmp_path / "duplicates.toml"
    text = SHIPPED.read_text(encoding="utf-8").replace(
        'columns = { company = "name" }', 'columns = { company = "name" }\nthreshold = 0.999999999'
    )
    strict.write_text(text, encoding="utf-8")
    loose, _ = existing_records(leads, {"account": accounts}, config)
    tight, details = existing_records(leads, {"account": accounts}, load_duplicate_config(strict, "lead"))
    assert details["account"]["threshold"] == 0.999999999
    # Contoso scores just under that: the match is dropped, not shown with a low score.
    assert loose.loc[BUYER, "existing_account_id"] == CONTOSO
    assert loose.loc[BUYER, "existing_account_score"] < 0.999999999
    assert tight["existing_account_id"].isna().all() and tight["existing_account_score"].isna().all()


def test_the_job_clears_closed_leads_and_logs_the_evidence(leads, contacts, accounts, caplog):
    closed = leads.iloc[[0]].assign(lead_id=CLOSED, status="qualified", out_existing_contact="Jane Doe")
    when = pd.Timestamp("2026-01-05", tz="UTC")  # the shipped master preference needs modified_on
    frames = {
        "lead": pd.concat([leads, closed], ignore_index=True).assign(modified_on=when),
        "contact": contacts.assign(out_duplicate_group=None, modified_on=when),
        "account": accounts.assign(modified_on=when),
    }
    with caplog.at_level(logging.DEBUG, logger="jobs.service.compute"):
        outcome = run_duplicates(frames, config_path=SHIPPED)
    assert outcome.status == "ok", outcome.message
    results = outcome.results["lead"]
    assert {"duplicate_group", "existing_contact_id", "existing_account_score"} <= set(results.columns)
    assert results.loc[JANE, "existing_contact_id"] == JANE_CONTACT.lower()
    # The qualified copy of Jane is not checked: its earlier match is cleared.
    assert results.loc[CLOSED, ["existing_contact", "existing_contact_id"]].isna().all()
    assert "1 are existing contacts" in outcome.message and "of 3 open leads" in outcome.message
    assert outcome.details["existing"]["contact"]["linked"] == 1
    assert any(JANE in r.getMessage() and "email exact" in r.getMessage() for r in caplog.records)


def test_without_link_sections_no_existing_results(leads, contacts, tmp_path):
    text = SHIPPED.read_text(encoding="utf-8")
    start, end = text.index("\n[lead.link.contact]"), text.index("\n[contact]\n")
    plain = tmp_path / "duplicates.toml"
    plain.write_text(text[:start] + text[end:], encoding="utf-8")
    outcome = run_duplicates({"lead": leads, "contact": contacts}, config_path=plain)
    assert not any(c.startswith("existing_") for c in outcome.results["lead"].columns)
    assert "existing" not in outcome.details
