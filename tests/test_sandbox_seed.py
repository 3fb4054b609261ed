"""The sandbox seed data: shapes, integrity, planted duplicates, qualification signal, BG/NBD orders."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import phonenumbers
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_predict

from connector.sandbox.seed import (
    OPTION_LABELS,
    SIZES,
    STATUS_STATE,
    TABLES,
    generate,
    write_ground_truth,
)
from connector.sandbox.seed.common import fold_ascii
from connector.sandbox.seed.orders import expected_repeat_purchases
from connector.sandbox.seed.vocab import COUNTRIES, NICKNAMES, PERSONAL_EMAIL_DOMAINS, SUFFIX_VARIANTS
from core.errors import ConfigError

NOW = datetime(2026, 3, 1, tzinfo=UTC)
PERSONAL = {domain for domains in PERSONAL_EMAIL_DOMAINS.values() for domain in domains}
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ID_COLUMN = {
    "lead": "leadid",
    "account": "accountid",
    "contact": "contactid",
    "salesorder": "salesorderid",
    "salesorderdetail": "salesorderdetailid",
    "opportunity": "opportunityid",
    "email": "activityid",
    "phonecall": "activityid",
    "appointment": "activityid",
}
REGION = {
    "United States": "US",
    "United Kingdom": "GB",
    "Germany": "DE",
    "France": "FR",
    "Netherlands": "NL",
    "Australia": "AU",
    "Canada": "CA",
    "Spain": "ES",
    "Ireland": "IE",
}


@pytest.fixture(scope="module")
def small():
    return generate("small", 7, now=NOW)


@pytest.fixture(scope="module")
def tiny_pair():
    return generate("small", 3, now=NOW, scale=0.2), generate("small", 3, now=NOW, scale=0.2)


def test_same_seed_gives_identical_data_and_another_seed_does_not(tiny_pair):
    first, second = tiny_pair
    for name in TABLES:
        pd.testing.assert_frame_equal(first.tables[name], second.tables[name])
    for name in first.ground_truth:
        pd.testing.assert_frame_equal(first.ground_truth[name], second.ground_truth[name])
    assert first.parameters == second.parameters
    other = generate("small", 4, now=NOW, scale=0.2)
    assert not set(other.tables["lead"]["leadid"]) & set(first.tables["lead"]["leadid"])
    assert not first.tables["lead"]["lastname"].equals(other.tables["lead"]["lastname"])


def test_sizes_match_the_targets(small):
    for table, target in SIZES["small"].items():
        assert abs(len(small.tables[table]) - target) <= 0.02 * target, table
    assert small.parameters["counts"] == {name: len(frame) for name, frame in small.tables.items()}
    lines_per_order = len(small.tables["salesorderdetail"]) / len(small.tables["salesorder"])
    assert 1.5 < lines_per_order < 3.5
    activities = sum(len(small.tables[t]) for t in ("email", "phonecall", "appointment"))
    assert 1.5 < activities / len(small.tables["lead"]) < 6


def test_every_table_has_guid_keys_and_utc_audit_times(small):
    for table in TABLES:
        frame = small.tables[table]
        ids = frame[ID_COLUMN[table]]
        assert ids.is_unique, table
        assert ids.str.match(GUID).all(), table
        assert str(frame["createdon"].dt.tz) == "UTC", table
        assert frame["createdon"].notna().all(), table
        assert (frame["createdon"] <= pd.Timestamp(NOW)).all(), table
        assert (frame["modifiedon"] >= frame["createdon"]).all(), table
        assert (frame["modifiedon"] <= pd.Timestamp(NOW)).all(), table


def test_leads_span_two_years_with_the_documented_columns(small):
    leads = small.tables["lead"]
    for column in (
        "leadid",
        "fullname",
        "firstname",
        "lastname",
        "companyname",
        "jobtitle",
        "emailaddress1",
        "telephone1",
        "address1_city",
        "address1_postalcode",
        "address1_country",
        "leadsourcecode",
        "industrycode",
        "numberofemployees",
        "revenue",
        "budgetamount",
        "budgetstatus",
        "purchasetimeframe",
        "leadqualitycode",
        "statecode",
        "statuscode",
        "createdon",
        "modifiedon",
    ):
        assert column in leads.columns, column
    age = (pd.Timestamp(NOW) - leads["createdon"]).dt.days
    assert age.max() <= 731 and age.max() > 650
    assert leads["leadsourcecode"].nunique() == 10
    assert leads["address1_country"].nunique() == len(COUNTRIES)
    assert (leads["fullname"] == leads["firstname"] + " " + leads["lastname"]).mean() > 0.99
    # Recent leads are mostly open, old ones mostly closed.
    assert (leads.loc[age < 20, "statecode"] == 0).mean() > 0.6
    assert (leads.loc[age > 365, "statecode"] == 0).mean() < 0.2
    money = leads["revenue"].dropna()
    assert np.allclose(money, money.round(2))


def test_choice_values_have_labels_and_state_status_pairs_are_valid(small):
    for table, columns in OPTION_LABELS.items():
        frame = small.tables[table]
        for column, labels in columns.items():
            values = frame[column].dropna().astype(int)
            assert set(values) <= set(labels), (table, column, set(values) - set(labels))
        pairs = frame[["statecode", "statuscode"]].astype(int)
        expected_state = pairs["statuscode"].map(STATUS_STATE[table])
        assert (expected_state == pairs["statecode"]).all(), table


def test_lookups_point_at_records_of_the_right_table(small):
    t = small.tables
    ids = {
        name: set(t[name][ID_COLUMN[name]])
        for name in ("lead", "account", "contact", "salesorder", "opportunity")
    }
    contacts = t["contact"]
    parented = contacts["parentcustomerid"].notna()
    assert parented.mean() > 0.5
    assert set(contacts.loc[parented, "parentcustomeridtype"]) == {"account"}
    assert set(contacts.loc[parented, "parentcustomerid"]) <= ids["account"]
    assert contacts.loc[~parented, "parentcustomeridtype"].isna().all()
    orders = t["salesorder"]
    assert set(orders["customeridtype"]) == {"account", "contact"}
    for kind in ("account", "contact"):
        assert set(orders.loc[orders["customeridtype"] == kind, "customerid"]) <= ids[kind]
    assert set(t["salesorderdetail"]["salesorderid"]) <= ids["salesorder"]
    opp = t["opportunity"]
    assert set(opp["customerid"]) <= ids["account"] and set(opp["parentaccountid"]) <= ids["account"]
    assert set(opp["originatingleadid"].dropna()) <= ids["lead"]
    leads = t["lead"]
    assert set(leads["parentaccountid"].dropna()) <= ids["account"]
    assert set(leads["qualifyingopportunityid"].dropna()) <= ids["opportunity"]
    assert (leads.loc[leads["qualifyingopportunityid"].notna(), "statecode"] == 1).all()
    for table in ("email", "phonecall", "appointment"):
        assert set(t[table]["regardingobjectid"]) <= ids["lead"]
        assert set(t[table]["regardingobjecttypecode"]) == {"lead"}
    accounts = t["account"].set_index("accountid")
    primary = accounts["primarycontactid"].dropna()
    parent_of = contacts.set_index("contactid")["parentcustomerid"]
    assert (parent_of.loc[primary.to_numpy()].to_numpy() == primary.index.to_numpy()).all()
    currency = small.parameters["currency"]["transactioncurrencyid"]
    assert set(orders["transactioncurrencyid"]) == {currency}
    assert set(orders["pricelevelid"]) == {small.parameters["pricelevel"]["pricelevelid"]}


def test_phone_numbers_are_valid_for_their_country_and_postcodes_look_local(small):
    rows = pd.concat([small.tables["contact"], small.tables["lead"]])[
        ["telephone1", "mobilephone", "address1_country"]
    ]
    rows = rows.dropna(subset=["telephone1"]).sample(1500, random_state=0)
    valid = [
        phonenumbers.is_valid_number(phonenumbers.parse(number, REGION[country]))
        for number, country in zip(rows["telephone1"], rows["address1_country"], strict=True)
    ]
    assert np.mean(valid) > 0.97
    styles = rows["telephone1"].str.startswith("+").mean()
    assert 0.3 < styles < 0.9  # both international and national formats occur
    accounts = small.tables["account"]
    patterns = {
        "United States": r"^\d{5}$",
        "Germany": r"^\d{5}$",
        "Netherlands": r"^\d{4} [A-Z]{2}$",
        "United Kingdom": r"^[A-Z]{1,2}\d[A-Z\d]? \d[A-Z]{2}$",
        "Canada": r"^[A-Z]\d[A-Z] \d[A-Z]\d$",
    }
    for country, pattern in patterns.items():
        codes = accounts.loc[accounts["address1_country"] == country, "address1_postalcode"].dropna()
        assert len(codes) and codes.str.match(pattern).mean() > 0.95, country


def test_business_and_personal_emails_and_company_suffixes(small):
    leads = small.tables["lead"]
    domains = leads["emailaddress1"].dropna().str.split("@").str[1].str.lower()
    personal = {d for ds in PERSONAL_EMAIL_DOMAINS.values() for d in ds}
    share = domains.isin(personal).mean()
    assert 0.08 < share < 0.4
    names = small.tables["account"]["name"]
    for suffix in ("Inc", "Ltd", "LLC", "GmbH", "SA", "S.A.R.L", "BV", "Pty Ltd"):
        assert names.str.endswith(" " + suffix).any(), suffix


def _duplicates_with_originals(seed_data, table):
    truth = seed_data.ground_truth["duplicates"]
    truth = truth[truth["table"] == table]
    frame = seed_data.tables[table].set_index(ID_COLUMN[table])
    originals = truth[truth["is_original"]].set_index("cluster_id")["record_id"]
    dups = truth[~truth["is_original"]].copy()
    dups["original_id"] = dups["cluster_id"].map(originals)
    dup_rows = frame.loc[dups["record_id"]].reset_index()
    orig_rows = frame.loc[dups["original_id"]].reset_index()
    return dups.reset_index(drop=True), dup_rows, orig_rows


def test_duplicate_ground_truth_is_consistent(small):
    truth = small.ground_truth["duplicates"]
    assert list(truth.columns[:3]) == ["table", "record_id", "cluster_id"]
    for table in ("lead", "contact", "account"):
        part = truth[truth["table"] == table]
        assert set(part["record_id"]) <= set(small.tables[table][ID_COLUMN[table]])
        sizes = part.groupby("cluster_id").size()
        assert (sizes >= 2).all()
        assert (part.groupby("cluster_id")["is_original"].sum() == 1).all()
        share = (len(part) - part["cluster_id"].nunique()) / len(small.tables[table])
        assert 0.015 < share < 0.06, table  # a realistic few per cent
    assert truth.groupby("cluster_id")["table"].nunique().max() == 1


def _norm(values: pd.Series) -> pd.Series:
    return fold_ascii(values.fillna("")).str.lower()


def test_planted_person_duplicates_differ_in_the_documented_ways(small):
    checked = set()
    for table in ("lead", "contact"):
        dups, dup, orig = _duplicates_with_originals(small, table)
        assert (dups["variations"] != "").all()
        for i, variations in enumerate(dups["variations"]):
            d, o = dup.iloc[i], orig.iloc[i]
            for kind in variations.split(";"):
                checked.add(kind)
                if kind in ("typo_firstname", "typo_lastname"):
                    col = kind.split("_")[1]
                    assert d[col] != o[col] and d[col][0] == o[col][0] and abs(len(d[col]) - len(o[col])) <= 1
                elif kind == "case":
                    assert d["firstname"] != o["firstname"] or d["lastname"] != o["lastname"]
                    assert d["lastname"].lower() == o["lastname"].lower()
                elif kind == "accents":
                    assert (d["firstname"], d["lastname"]) != (o["firstname"], o["lastname"])
                    assert _norm(pd.Series([d["lastname"]]))[0] == _norm(pd.Series([o["lastname"]]))[0]
                elif kind == "nickname":
                    pair = {d["firstname"], o["firstname"]}
                    assert any(
                        formal in pair and pair - {formal} <= set(nicks)
                        for formal, nicks in NICKNAMES.items()
                    )
                elif kind == "swap_names":
                    assert (d["firstname"], d["lastname"]) == (o["lastname"], o["firstname"])
                elif kind == "email_plus":
                    local, domain = d["emailaddress1"].split("@")
                    assert local.split("+")[0] + "@" + domain == o["emailaddress1"]
                elif kind == "email_case":
                    assert d["emailaddress1"] != o["emailaddress1"]
                    assert d["emailaddress1"].lower() == o["emailaddress1"].lower()
                elif kind.startswith("missing_"):
                    col = {
                        "email": "emailaddress1",
                        "phone": "telephone1",
                        "company": "companyname",
                        "jobtitle": "jobtitle",
                    }[kind.removeprefix("missing_")]
                    assert pd.isna(d[col]) and pd.notna(o[col])
                elif kind == "phone_format":
                    assert d["telephone1"] != o["telephone1"]
                    region = REGION[o["address1_country"]]
                    assert phonenumbers.parse(d["telephone1"], region) == phonenumbers.parse(
                        o["telephone1"], region
                    )
                elif kind == "email_other":
                    assert d["emailaddress1"].lower() != o["emailaddress1"].lower()
                    assert d["emailaddress1"].split("@")[1] in PERSONAL
                elif kind == "phone_other":
                    region = REGION[o["address1_country"]]
                    assert phonenumbers.parse(d["telephone1"], region) != phonenumbers.parse(
                        o["telephone1"], region
                    )
                elif kind == "company_suffix":
                    assert d["companyname"] != o["companyname"]
                    assert o["companyname"].startswith(d["companyname"].split(" ")[0])
    assert {"nickname", "swap_names", "phone_format", "typo_lastname", "accents", "email_plus"} <= checked


def test_planted_account_duplicates_differ_in_the_documented_ways(small):
    dups, dup, orig = _duplicates_with_originals(small, "account")
    seen = set()
    for i, variations in enumerate(dups["variations"]):
        d, o = dup.iloc[i], orig.iloc[i]
        for kind in variations.split(";"):
            seen.add(kind)
            if kind == "name_suffix":
                suffix = next(
                    s for s in sorted(SUFFIX_VARIANTS, key=len, reverse=True) if o["name"].endswith(" " + s)
                )
                base = o["name"][: -len(suffix) - 1]
                assert d["name"] != o["name"] and d["name"].startswith(base)
            elif kind == "name_case":
                assert d["name"] != o["name"] and d["name"].lower() == o["name"].lower()
            elif kind == "name_and":
                assert d["name"] == o["name"].replace(" & ", " and ")
            elif kind == "name_the":
                assert d["name"] == "The " + o["name"]
            elif kind == "phone_format":
                region = REGION[o["address1_country"]]
                assert d["telephone1"] != o["telephone1"]
                assert phonenumbers.parse(d["telephone1"], region) == phonenumbers.parse(
                    o["telephone1"], region
                )
            elif kind == "missing_website":
                assert pd.isna(d["websiteurl"]) and pd.notna(o["websiteurl"])
    assert "name_suffix" in seen


def test_look_alike_non_duplicates_exist(small):
    leads = small.tables["lead"]
    truth = small.ground_truth["duplicates"]
    cluster = truth.set_index("record_id")["cluster_id"]
    key = _norm(leads["firstname"]) + " " + _norm(leads["lastname"])
    entity = leads["leadid"].map(cluster).astype(object).fillna(leads["leadid"].astype(object))
    same_name = pd.DataFrame({"key": key, "entity": entity}).groupby("key")["entity"].nunique()
    assert (same_name >= 2).sum() > 20  # different people who share a name
    colleagues = leads.dropna(subset=["companyname"]).groupby("companyname")["leadid"].size()
    assert (colleagues >= 3).sum() > 20  # several people at one company
    surnames = leads["lastname"].value_counts()
    assert surnames.iloc[0] > 30  # a common surname is common


def test_leads_matching_contacts_are_the_same_people(small):
    matches = small.ground_truth["lead_contact_matches"]
    leads = small.tables["lead"].set_index("leadid")
    contacts = small.tables["contact"].set_index("contactid")
    assert 0.015 * len(leads) < matches["leadid"].nunique() < 0.06 * len(leads)
    assert set(matches["leadid"]) <= set(leads.index) and set(matches["contactid"]) <= set(contacts.index)
    plain = matches[matches["variations"] == ""]
    assert len(plain) > 20
    lead_rows, contact_rows = leads.loc[plain["leadid"]], contacts.loc[plain["contactid"]]
    same_name = (_norm(lead_rows["lastname"]).to_numpy() == _norm(contact_rows["lastname"]).to_numpy()).mean()
    assert same_name > 0.9  # the rest are contacts' own planted duplicates with a varied name
    # A duplicate of a returning lead is the contact too; so is a lead matching a duplicated contact.
    truth = small.ground_truth["duplicates"]
    cluster_of = truth.set_index("record_id")["cluster_id"]
    matched_clusters = set(cluster_of.reindex(matches["leadid"]).dropna())
    lead_truth = truth[(truth["table"] == "lead") & truth["cluster_id"].isin(matched_clusters)]
    assert len(lead_truth) > 0 and set(lead_truth["record_id"]) <= set(matches["leadid"])
    contact_clusters = set(cluster_of.reindex(matches["contactid"]).dropna())
    contact_truth = truth[(truth["table"] == "contact") & truth["cluster_id"].isin(contact_clusters)]
    assert set(contact_truth["record_id"]) <= set(matches["contactid"])


def test_closed_leads_carry_real_but_noisy_signal(small):
    t = small.tables
    leads = t["lead"]
    closed = leads[leads["statecode"] > 0].reset_index(drop=True)
    y = (closed["statecode"] == 1).to_numpy()
    assert 0.15 < y.mean() < 0.5
    completed = pd.concat(
        [
            t[name][t[name]["statecode"] == 1].assign(kind=name)
            for name in ("email", "phonecall", "appointment")
        ]
    )
    counts = completed.groupby(["regardingobjectid", "kind"]).size().unstack(fill_value=0)
    counts = counts.reindex(closed["leadid"]).fillna(0).to_numpy()
    categorical = closed[
        [
            "leadsourcecode",
            "industrycode",
            "budgetstatus",
            "purchasetimeframe",
            "address1_country",
            "jobtitle",
        ]
    ].astype(str)
    features = pd.get_dummies(categorical).astype(float)
    features["log_employees"] = np.log1p(closed["numberofemployees"].astype(float)).fillna(0)
    domains = closed["emailaddress1"].fillna("@").str.split("@").str[1]
    features["personal"] = domains.isin({d for ds in PERSONAL_EMAIL_DOMAINS.values() for d in ds}).astype(
        float
    )
    for i in range(counts.shape[1]):
        features[f"activity_{i}"] = np.log1p(counts[:, i])
    scores = cross_val_predict(
        LogisticRegression(max_iter=3000, C=0.5), features, y, cv=5, method="predict_proba"
    )[:, 1]
    auc = roc_auc_score(y, scores)
    assert 0.72 < auc < 0.95
    # Directions a rule set can be tuned on: referrals beat adverts, meetings beat silence.
    by_source = closed.groupby("leadsourcecode")["statecode"].apply(lambda s: (s == 1).mean())
    assert by_source[2] > by_source[1] + 0.1
    met = completed[completed["kind"] == "appointment"]["regardingobjectid"]
    assert y[closed["leadid"].isin(met).to_numpy()].mean() > y.mean() + 0.15
    # The generating probabilities are in the ground truth and agree with the outcomes.
    truth = small.ground_truth["leads"].set_index("leadid").loc[closed["leadid"]]
    p = truth["qualification_probability"].to_numpy()
    assert abs(p.mean() - y.mean()) < 0.03
    assert auc - 0.02 < roc_auc_score(y, p) < 0.97  # no model can beat the truth (beyond sampling luck)


def test_activities_are_shaped_like_dataverse_activities(small):
    t = small.tables
    now = pd.Timestamp(NOW)
    for table in ("email", "phonecall", "appointment"):
        frame = t[table]
        assert set(frame["activitytypecode"]) == {table}
        done = frame["statecode"] == 1
        assert (frame.loc[done, "actualend"] <= now).all() and frame.loc[~done, "actualend"].isna().all()
        assert (frame.loc[frame["scheduledend"] > now, "statecode"].isin([0, 3])).all()
        assert set(frame["statecode"]) >= {1, 2}
        if table != "appointment":
            assert frame["directioncode"].dtype == bool
            assert 0.1 < (~frame["directioncode"]).mean() < 0.6
    leads = t["lead"].set_index("leadid")
    last = (
        pd.concat(
            [
                t[n].loc[t[n]["statecode"] == 1, ["regardingobjectid", "actualend"]]
                for n in ("email", "phonecall")
            ]
        )
        .groupby("regardingobjectid")["actualend"]
        .max()
    )
    # Work on a closed lead stops when it closes (modifiedon).
    closed = leads.loc[last.index]
    closed = closed[closed["statecode"] > 0]
    assert (last.loc[closed.index] <= closed["modifiedon"]).all()


def test_orders_follow_bgnbd_and_the_ground_truth_matches_them(small):
    orders = small.tables["salesorder"]
    params = small.parameters
    rule = params["process_orders"]
    process = orders[orders["statecode"].isin(rule["statecode"]) & (orders["totalamount"] > 0)]
    truth = small.ground_truth["customers"].set_index("customerid")
    per_customer = process.groupby("customerid").size()
    assert set(per_customer.index) == set(truth.index)
    assert (per_customer.loc[truth.index] - 1 == truth["x"]).all()
    first = process.groupby("customerid")["createdon"].min()
    assert (abs(first.loc[truth.index] - truth["birth"]) < pd.Timedelta(seconds=1)).all()
    g = params["bgnbd"]
    T = truth["T_weeks"].to_numpy()
    # P(no repeat purchase in T) = (alpha / (alpha + T))^r under BG/NBD.
    expected_one_time = np.mean((g["alpha"] / (g["alpha"] + T)) ** g["r"])
    assert abs((truth["x"] == 0).mean() - expected_one_time) < 0.04
    expected_repeats = expected_repeat_purchases(T, g["r"], g["alpha"], g["a"], g["b"]).mean()
    assert abs(truth["x"].mean() / expected_repeats - 1) < 0.2
    # Spend per order: mean p * v / (q - 1) under Gamma-Gamma.
    gg = params["gamma_gamma"]
    assert abs(process["totalamount"].mean() / (gg["p"] * gg["v"] / (gg["q"] - 1)) - 1) < 0.15
    # Customers were born over several years; same-day repeat purchases are rare.
    assert truth["T_weeks"].max() > 150
    days = process.assign(day=process["createdon"].dt.floor("D")).groupby(["customerid", "day"]).size()
    assert (days > 1).sum() / len(process) < 0.03


def test_orders_include_cancelled_open_zero_and_returns(small):
    orders = small.tables["salesorder"]
    assert (orders["statecode"] == 2).mean() > 0.02
    assert set(orders["statecode"]) == {0, 1, 2, 3, 4}
    zero = orders[orders["totalamount"] == 0]
    assert len(zero) > 50 and zero["statecode"].isin([3, 4]).all()
    returns = orders[orders["totalamount"] < 0]
    assert len(returns) > 100 and returns["name"].str.startswith("Return of ORD-").all()
    by_number = orders.set_index("ordernumber")
    returned = by_number.loc[returns["name"].str.removeprefix("Return of ")]
    assert (returned["customerid"].to_numpy() == returns["customerid"].to_numpy()).all()
    assert (-returns["totalamount"].to_numpy() <= returned["totalamount"].to_numpy() + 1e-9).all()
    assert (returned["createdon"].to_numpy() < returns["createdon"].to_numpy()).all()
    recent = pd.Timestamp(NOW) - orders["createdon"] < pd.Timedelta(days=31)
    assert orders.loc[orders["statecode"].isin([0, 1]), "createdon"].index.isin(orders[recent].index).all()
    fulfilled = orders[orders["statecode"].isin([3, 4])]
    assert (
        fulfilled["datefulfilled"].notna().all() and (fulfilled["datefulfilled"] <= pd.Timestamp(NOW)).all()
    )
    assert orders["ordernumber"].is_unique


def test_order_lines_sum_exactly_to_order_totals(small):
    orders = small.tables["salesorder"].set_index("salesorderid")
    lines = small.tables["salesorderdetail"]
    cents = (lines["extendedamount"] * 100).round().astype(np.int64)
    totals = cents.groupby(lines["salesorderid"]).sum()
    assert set(totals.index) == set(orders.index)
    assert (totals == (orders.loc[totals.index, "totalamount"] * 100).round().astype(np.int64)).all()
    recomputed = (lines["priceperunit"] * lines["quantity"] - lines["manualdiscountamount"]).round(2)
    assert np.allclose(recomputed, lines["extendedamount"])
    assert (lines["manualdiscountamount"] >= 0).all()


def test_parameters_are_json_and_ground_truth_round_trips(small, tmp_path):
    params = json.loads(json.dumps(small.parameters))
    assert params["seed"] == 7 and params["now"] == "2026-03-01T00:00:00Z" and params["time_unit"] == "week"
    assert set(params["bgnbd"]) == {"r", "alpha", "a", "b"} and set(params["gamma_gamma"]) == {"p", "q", "v"}
    assert "intercept" in params["lead_qualification"]
    out = write_ground_truth(small, tmp_path / "truth")
    assert json.loads((out / "parameters.json").read_text()) == params
    dups = pd.read_csv(out / "duplicates.csv", keep_default_na=False)
    assert len(dups) == len(small.ground_truth["duplicates"])
    assert set(dups["record_id"]) == set(small.ground_truth["duplicates"]["record_id"])
    assert (out / "lead_contact_matches.csv").exists() and (out / "customers.csv").exists()


def test_bad_size_or_scale_is_a_clear_configuration_error():
    with pytest.raises(ConfigError, match="Unknown sandbox size 'huge'"):
        generate("huge")
    with pytest.raises(ConfigError, match="scale"):
        generate("small", scale=0)
    with pytest.raises(ConfigError, match="seed must be a whole number"):
        generate("small", seed=-1)


def test_now_defaults_to_today_and_naive_now_is_utc():
    data = generate("small", 1, now=datetime(2025, 6, 1), scale=0.05)
    assert data.parameters["now"] == "2025-06-01T00:00:00Z"
    assert data.tables["lead"]["createdon"].max() <= pd.Timestamp("2025-06-01", tz="UTC")
    today = generate("small", 1, scale=0.05).parameters["now"]
    assert today.endswith("T00:00:00Z")
    assert abs(pd.Timestamp(today) - pd.Timestamp.now(tz="UTC")) < pd.Timedelta(days=1, minutes=1)
