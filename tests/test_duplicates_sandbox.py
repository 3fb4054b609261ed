"""Duplicate detection on the sandbox's seed data, graded against its planted ground truth.

The seed (connector/sandbox/seed/) plants duplicate leads, contacts and accounts (typos,
nicknames, swapped names, reformatted phones, company suffixes, missing values) and leads that are
existing contacts; colleagues at one company share its name, switchboard and address, which is the
hard part. The frames are mapped to canonical columns with the shipped mapping files and the job
runs with the shipped mappings/duplicates.toml, as the pipeline will.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from connector.sandbox.seed import generate
from jobs.leads.duplicates.clustering import cluster
from jobs.leads.duplicates.config import load_duplicate_config
from jobs.leads.duplicates.detect import find_duplicates, link_records
from jobs.service.mapping import load_table_mapping

MAPPINGS = Path(__file__).resolve().parents[1] / "mappings"

# Floors, below what the job measures (printed with -s), so a regression fails and noise does not.
# Some "false positives" are real: the seed sometimes creates the same person twice by chance
# (same name, company and email) without listing the pair in its ground truth.
MIN_PRECISION = 0.9
MIN_RECALL = 0.95


@pytest.fixture(scope="module")
def seed():
    return generate("small", seed=0)


def canonical(seed, table: str) -> pd.DataFrame:
    """The table with canonical column names, as the mirror would hand it to the job."""
    mapping = load_table_mapping(MAPPINGS / f"{table}.toml")
    raw = seed.tables[table]
    frame = pd.DataFrame({f"{table}_id": raw[f"{table}id"]})
    for name, field in mapping.fields.items():
        if field.type in ("string", "datetime") and field.column in raw.columns:
            frame[name] = raw[field.column]
    return frame


def grade(found: set[tuple[str, str]], truth: set[tuple[str, str]], label: str) -> tuple[float, float]:
    hits = len(found & truth)
    precision = hits / len(found) if found else 0.0
    recall = hits / len(truth)
    print(
        f"{label}: {len(found)} pairs found, {len(truth)} planted, "
        f"precision {precision:.3f}, recall {recall:.3f}"
    )
    return precision, recall


def planted_pairs(seed, table: str) -> set[tuple[str, str]]:
    truth = seed.ground_truth["duplicates"]
    truth = truth[truth["table"] == table]
    joined = truth.merge(truth, on="cluster_id")
    joined = joined[joined["record_id_x"] < joined["record_id_y"]]
    return set(zip(joined["record_id_x"], joined["record_id_y"], strict=True))


@pytest.mark.parametrize("table", ["lead", "contact", "account"])
def test_planted_duplicates_are_found(seed, table):
    records = canonical(seed, table)
    config = load_duplicate_config(MAPPINGS / "duplicates.toml", table)
    result = find_duplicates(records, report=True, **config.find_kwargs())
    found = {tuple(sorted(p)) for p in zip(result.pairs["id_left"], result.pairs["id_right"], strict=True)}
    precision, recall = grade(found, planted_pairs(seed, table), f"{table} duplicates")
    print(f"  {result.blocking.summary()}")
    assert precision >= MIN_PRECISION
    assert recall >= MIN_RECALL
    assert result.blocking.reduction_ratio > 0.99


def test_planted_duplicate_groups_are_recovered_with_a_master(seed):
    records = canonical(seed, "lead")
    config = load_duplicate_config(MAPPINGS / "duplicates.toml", "lead")
    pairs = find_duplicates(records, **config.find_kwargs())
    groups = cluster(pairs, records=records, **config.cluster_kwargs())
    truth = seed.ground_truth["duplicates"]
    truth = truth[truth["table"] == "lead"].set_index("record_id")["cluster_id"]
    grouped = groups.assign(planted=groups["record_id"].map(truth))
    # A group is pure when all its records belong to one planted cluster.
    pure = grouped.groupby("cluster_id")["planted"].agg(lambda c: c.notna().all() and c.nunique() == 1)
    print(f"lead groups: {len(pure)}, pure {pure.mean():.3f}")
    assert pure.mean() >= MIN_PRECISION
    masters = grouped[grouped["is_master"]]
    assert masters["cluster_id"].is_unique and len(masters) == len(pure)


def test_leads_are_linked_to_the_contacts_they_already_are(seed):
    leads, contacts = canonical(seed, "lead"), canonical(seed, "contact")
    config = load_duplicate_config(MAPPINGS / "duplicates.toml", "lead")
    pairs = link_records(leads, contacts, **config.link_kwargs("contact"))
    matches = seed.ground_truth["lead_contact_matches"]
    truth = set(zip(matches["leadid"], matches["contactid"], strict=True))
    found = set(zip(pairs["id_left"], pairs["id_right"], strict=True))
    precision, recall = grade(found, truth, "lead -> contact")
    assert precision >= MIN_PRECISION
    assert recall >= MIN_RECALL
    assert np.all(pairs["score"] >= 0.5)


def test_one_new_lead_is_matched_to_its_contact(seed):
    leads, contacts = canonical(seed, "lead"), canonical(seed, "contact")
    config = load_duplicate_config(MAPPINGS / "duplicates.toml", "lead")
    matches = seed.ground_truth["lead_contact_matches"].iloc[:5]
    for lead_id, contact_id in zip(matches["leadid"], matches["contactid"], strict=True):
        new_lead = leads[leads["lead_id"] == lead_id]
        result = link_records(new_lead, contacts, report=True, **config.link_kwargs("contact"))
        assert result.model.source == "em"  # learned from the contacts, not a default guess
        assert list(result.pairs["id_right"]) == [contact_id]


def test_leads_are_linked_to_their_company_account(seed):
    # Ground truth: the account a lead already points at (parentaccountid). Leads without one may
    # still match an account by company and address; those are the links the job is for, so only
    # recall is graded here.
    leads, accounts = canonical(seed, "lead"), canonical(seed, "account")
    config = load_duplicate_config(MAPPINGS / "duplicates.toml", "lead")
    pairs = link_records(leads, accounts, **config.link_kwargs("account"))
    raw = seed.tables["lead"]
    known = raw.dropna(subset=["parentaccountid"])
    truth = set(zip(known["leadid"], known["parentaccountid"], strict=True))
    found = set(zip(pairs["id_left"], pairs["id_right"], strict=True))
    _, recall = grade(found, truth, "lead -> account (known parent accounts)")
    assert recall >= MIN_RECALL
