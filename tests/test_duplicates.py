import json

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError
from jobs.errors import ConvergenceError, JobError
from jobs.leads.duplicates.blocking import parse_pass
from jobs.leads.duplicates.comparisons import KINDS, compare_codes, compare_values, derive
from jobs.leads.duplicates.detect import FieldSpec, find_duplicates, link_records
from jobs.leads.duplicates.linkage_model import fit_em, term_frequency_weights

# ---------------------------------------------------------------- comparison kinds


@pytest.mark.parametrize(
    ("kind", "a", "b", "level"),
    [
        ("name", "smith", "smith", "exact"),
        ("name", "robert", "bob", "high"),  # nickname
        ("name", "catherine", "katherine", "high"),  # Jaro-Winkler 0.93
        ("name", "j", "john", "medium"),  # an initial
        ("name", "smith", "jones", "low"),
        ("company", "acme widgets", "acme widgets", "exact"),
        ("company", "acme widgets", "acme widgts", "high"),
        ("company", "acme", "acme widgets", "high"),  # every word of one is in the other
        ("company", "globex", "initech", "low"),
        ("text", "springfield", "springfeld", "high"),
        ("text", "springfield", "springvale", "low"),
        ("address", "12 baker st", "12 baker st", "exact"),
        ("address", "12 baker st flat 3", "flat 3 12 baker st", "high"),  # word order
        ("address", "12 baker st", "40 elm rd", "low"),
        ("email", "ann@x.com", "ann@x.com", "exact"),
        ("email", "ann.lee@x.com", "ann.lea@x.com", "high"),  # a typo
        ("email", "annlee@x.com", "annlee@y.org", "medium"),  # same mailbox name elsewhere
        ("email", "ann@x.com", "bob@y.org", "low"),
        ("email", "ann.lee@gmail.com", "ann.lee@gmial.com", "high"),  # a typo in the domain
        ("email", "liam.debruin@acme.nl", "dirk.debruin@acme.nl", "low"),  # colleagues, one domain
        ("phone", "+442079460018", "+442079460018", "exact"),
        ("phone", "+442079460018", "+12079460018", "high"),  # same last 8 digits
        ("phone", "+442079460018", "+442079460081", "medium"),  # two digits swapped
        ("phone", "+442079460018", "+15551234567", "low"),
        ("postcode", "SW1A1AA", "SW1A1AA", "exact"),
        ("postcode", "SW1A1AA", "SW1A1AB", "high"),
        ("postcode", "4011", "4022", "medium"),
        ("postcode", "4011", "7788", "low"),
        ("date", "19800102", "19800102", "exact"),
        ("date", "19800102", "19800201", "high"),  # day and month swapped
        ("date", "19800102", "19800112", "high"),  # one digit
        ("date", "19800102", "19800128", "medium"),  # same month
        ("date", "19800102", "19951230", "low"),
        ("number", "42", "42", "exact"),
        ("number", "42", "47", "high"),  # one digit
        ("number", "1000", "1095", "medium"),  # within 10%
        ("number", "1000", "4321", "low"),
        ("exact", "nsw", "nsw", "exact"),
        ("exact", "nsw", "vic", "low"),
    ],
)
def test_each_kind_puts_a_pair_in_the_expected_level(kind, a, b, level):
    from jobs.leads.duplicates.comparisons import KINDS

    similarity, levels = compare_values(kind, [a], [b])
    assert KINDS[kind].levels[levels[0]] == level
    assert 0.0 <= similarity[0] <= 1.0


# ---------------------------------------------------------------- find_duplicates

PEOPLE = pd.DataFrame(
    {
        "lead_id": ["a1", "a2", "b1", "b2", "c1", "d1"],
        "first_name": ["Robert", "Bob", "Smith", "John", "Anna", "Zoë"],
        "last_name": ["Müller", "Muller", "John", "Smith", "Lee", "Quinn"],
        "email": ["r.muller+web@x.com", "R.Muller@X.com", "js@y.org", "js@y.org", "anna@z.net", None],
        "phone": ["020 7946 0018", "+44 20 7946 0018", None, "", "0161 496 0000", "0161 496 0999"],
    }
)
FIELDS = {"first_name": "name", "last_name": "name", "email": "email", "phone": "phone"}


def test_finds_duplicates_with_scores_and_evidence():
    pairs = find_duplicates(PEOPLE, id_column="lead_id", fields=FIELDS, phone_region="GB")
    assert list(pairs.columns) == ["id_left", "id_right", "score", "evidence"]
    found = {frozenset(p) for p in zip(pairs["id_left"], pairs["id_right"], strict=True)}
    assert found == {frozenset({"a1", "a2"}), frozenset({"b1", "b2"})}
    assert pairs["score"].between(0.5, 1.0).all()
    assert pairs["score"].is_monotonic_decreasing
    evidence = pairs.set_index("id_left").loc["a1", "evidence"]
    # plus-addressing and case removed, E.164 phones equal, nickname recognised, accent folded
    assert evidence["email"]["level"] == "exact"
    assert evidence["phone"]["level"] == "exact"
    assert evidence["first_name"]["level"] == "high"
    assert evidence["last_name"]["level"] == "exact"
    assert evidence["email"]["agreed"] is True
    assert evidence["first_name"]["agreed"] is True  # "high" agrees too
    assert evidence["email"]["weight"] > 0
    assert all(
        isinstance(e["similarity"], float) and e["similarity"] == round(e["similarity"], 3)
        for e in evidence.values()
    )
    json.dumps(pairs["evidence"].tolist())  # plain values, ready to write back


def test_swapped_first_and_last_names_are_detected_and_explained():
    pairs = find_duplicates(PEOPLE, id_column="lead_id", fields=FIELDS, phone_region="GB")
    evidence = pairs.set_index("id_left").loc["b1", "evidence"]
    assert evidence["first_name"] == {
        "level": "exact",
        "agreed": True,
        "similarity": 1.0,
        "weight": evidence["first_name"]["weight"],
        "swapped": True,
    }
    assert evidence["last_name"]["swapped"] is True
    assert evidence["phone"]["level"] == "missing"
    assert evidence["phone"]["agreed"] is None


def test_swap_detection_can_be_turned_off():
    result = find_duplicates(
        PEOPLE, id_column="lead_id", fields=FIELDS, phone_region="GB", swap_names=None, report=True
    )
    evidence = result.pairs.set_index("id_left")["evidence"].get("b1")
    assert evidence is None or "swapped" not in evidence["first_name"]


def test_report_has_the_blocking_figures_and_the_model():
    result = find_duplicates(PEOPLE, id_column="lead_id", fields=FIELDS, phone_region="GB", report=True)
    report = result.blocking
    assert report.records == 6
    assert report.total_pairs == 15
    assert report.candidate_pairs == len(result.candidates)
    assert report.reduction_ratio == pytest.approx(1 - report.candidate_pairs / 15)
    assert report.passes and all(p.name for p in report.passes)
    assert result.model.source == "default"  # six records: too few pairs for EM
    assert result.threshold == 0.5


def test_threshold_filters_pairs():
    strict = find_duplicates(
        PEOPLE, id_column="lead_id", fields=FIELDS, phone_region="GB", threshold=0.999999
    )
    loose = find_duplicates(PEOPLE, id_column="lead_id", fields=FIELDS, phone_region="GB", threshold=0.01)
    assert len(strict) < len(loose)
    assert (strict["score"] >= 0.999999).all()


def test_no_records_or_no_candidates_gives_an_empty_frame():
    empty = PEOPLE.iloc[:0]
    pairs = find_duplicates(empty, id_column="lead_id", fields=FIELDS)
    assert pairs.empty and list(pairs.columns) == ["id_left", "id_right", "score", "evidence"]
    lonely = find_duplicates(PEOPLE.iloc[[4, 5]], id_column="lead_id", fields=FIELDS)
    assert lonely.empty


def _population(seed: int = 1) -> pd.DataFrame:
    """300 people: a third named Smith, the rest with rare surnames; plus two planted duplicates."""
    rng = np.random.default_rng(seed)
    first = rng.choice(["Anna", "Ben", "Carl", "Dora", "Emil", "Fay", "Gus", "Hana", "Ivo", "Jill"], 300)
    last = np.where(np.arange(300) < 100, "Smith", [f"Rare{i:03d}x" for i in range(300)])
    cities = rng.choice(["Leeds", "York", "Bath", "Hull", "Ely"], 300)
    frame = pd.DataFrame({"id": range(300), "first_name": first, "last_name": last, "city": cities})
    planted = pd.DataFrame(
        {
            "id": [1000, 1001, 1002, 1003],
            "first_name": ["Olga", "Olga", "Olga", "Olga"],
            "last_name": ["Smith", "Smith", "Okonkwo", "Okonkwo"],
            "city": ["Leeds", "Leeds", "Leeds", "Leeds"],
        }
    )
    return pd.concat([frame, planted], ignore_index=True)


def test_rare_shared_surname_counts_more_than_a_common_one():
    people = _population()
    result = find_duplicates(
        people,
        id_column="id",
        fields={"first_name": "name", "last_name": "name", "city": "text"},
        threshold=0.001,
        report=True,
    )
    pairs = result.pairs.set_index(["id_left", "id_right"])
    common = pairs.loc[(1000, 1001)]
    rare = pairs.loc[(1002, 1003)]
    assert common["evidence"]["last_name"]["level"] == rare["evidence"]["last_name"]["level"] == "exact"
    assert rare["evidence"]["last_name"]["weight"] > common["evidence"]["last_name"]["weight"] + 3
    assert rare["score"] > common["score"]


def test_term_frequency_adjustment_can_be_switched_off():
    people = _population()
    fields = {"first_name": "name", "last_name": FieldSpec("name", tf_adjust=False), "city": "text"}
    pairs = find_duplicates(people, id_column="id", fields=fields, threshold=0.001).set_index(
        ["id_left", "id_right"]
    )
    common = pairs.loc[(1000, 1001), "evidence"]["last_name"]["weight"]
    rare = pairs.loc[(1002, 1003), "evidence"]["last_name"]["weight"]
    assert common == pytest.approx(rare)


def test_term_frequency_weights_by_hand():
    # Values: a a a a b c (codes 0,0,0,0,1,2): p = 4/6, 1/6, 1/6; Σp² = (16+1+1)/36 = 0.5
    codes = np.array([0, 0, 0, 0, 1, 2])
    weights = term_frequency_weights(np.array([0, 1]), codes)
    assert weights == pytest.approx([np.log2(0.5 / (4 / 6)), np.log2(0.5 / (1 / 6))])


# ---------------------------------------------------------------- EM


def test_em_recovers_known_mixture_parameters():
    rng = np.random.default_rng(7)
    n, prior = 20_000, 0.2
    m = [np.array([0.05, 0.05, 0.1, 0.8]), np.array([0.1, 0.1, 0.2, 0.6]), np.array([0.1, 0.9])]
    u = [np.array([0.8, 0.1, 0.06, 0.04]), np.array([0.7, 0.2, 0.05, 0.05]), np.array([0.6, 0.4])]
    is_match = rng.random(n) < prior
    levels = np.empty((n, 3), dtype=np.int8)
    for f in range(3):
        levels[:, f] = np.where(is_match, rng.choice(len(m[f]), n, p=m[f]), rng.choice(len(u[f]), n, p=u[f]))
    levels[rng.random(n) < 0.1, 1] = -1  # missing values carry no evidence
    start_u = [np.full(len(x), 1 / len(x)) for x in u]
    result = fit_em(levels, [4, 4, 2], u_start=start_u, prior_start=0.05)
    assert result.converged
    assert result.prior == pytest.approx(prior, abs=0.02)
    for f in range(3):
        assert result.m[f] == pytest.approx(m[f], abs=0.03)
        assert result.u[f] == pytest.approx(u[f], abs=0.03)


def test_em_refuses_data_without_a_matching_class():
    # Every pair disagrees on everything: there is no "match" class to find.
    levels = np.zeros((500, 2), dtype=np.int8)
    with pytest.raises(ConvergenceError, match="no group of pairs that agree"):
        fit_em(levels, [4, 4], u_start=[np.full(4, 0.25), np.full(4, 0.25)])


# ---------------------------------------------------------------- blocking


def test_explicit_blocking_with_a_capped_block_is_reported():
    frame = pd.DataFrame(
        {
            "id": range(30),
            "last_name": ["Smith"] * 30,
            "first_name": [f"N{i}" for i in range(30)],
        }
    )
    result = find_duplicates(
        frame,
        id_column="id",
        fields={"first_name": "name", "last_name": "name"},
        blocking=[["last_name"]],
        max_block_size=5,
        report=True,
    )
    (only,) = result.blocking.passes
    assert only.name == "last_name"
    assert only.largest_block == 30
    assert only.capped_blocks == 1
    # A window of 5 over 30 sorted records keeps 4*30 - 10 = 110 of the 435 pairs.
    assert only.pairs == 110
    assert only.pairs_skipped == 435 - 110
    assert result.blocking.candidate_pairs == 110


def test_blocking_keys_are_validated():
    with pytest.raises(ValueError, match="did you mean 'last_name'"):
        parse_pass(["lastname:soundex"], ["first_name", "last_name"])
    with pytest.raises(ValueError, match="unknown blocking transform 'metaphone'"):
        parse_pass(["last_name:metaphone"], ["first_name", "last_name"])
    with pytest.raises(ConfigError, match=r"\[blocking.passes\[0\]\]"):
        find_duplicates(PEOPLE, id_column="lead_id", fields=FIELDS, blocking=[["emial"]])


# ---------------------------------------------------------------- link_records

CONTACTS = pd.DataFrame(
    {
        "contact_id": ["c1", "c2", "c3"],
        "first_name": ["Robert", "Anna", "Carl"],
        "last_name": ["Muller", "Lee", "Berg"],
        "email": ["r.muller@x.com", "anna.lee@z.net", "carl@berg.se"],
        "phone": ["+44 20 7946 0018", None, "+46 8 123 456 78"],
    }
)


def test_link_new_leads_to_existing_contacts():
    leads = PEOPLE[PEOPLE["lead_id"].isin(["a1", "d1"])]
    pairs = link_records(
        leads,
        CONTACTS,
        left_id="lead_id",
        right_id="contact_id",
        fields=FIELDS,
        phone_region="GB",
    )
    assert list(zip(pairs["id_left"], pairs["id_right"], strict=True)) == [("a1", "c1")]
    assert pairs.loc[0, "evidence"]["email"]["level"] == "exact"


def test_link_with_differently_named_columns():
    accounts = pd.DataFrame({"account_id": ["x", "y"], "name": ["Globex Corporation", "Initech"]})
    leads = pd.DataFrame({"lead_id": ["l1", "l2"], "company": ["GLOBEX Corp.", "Umbrella"]})
    pairs = link_records(
        leads,
        accounts,
        left_id="lead_id",
        right_id="account_id",
        fields={"company": "company"},
        right_columns={"company": "name"},
    )
    assert list(zip(pairs["id_left"], pairs["id_right"], strict=True)) == [("l1", "x")]


def test_link_reports_a_missing_right_column():
    with pytest.raises(ConfigError, match="column 'phone' is not in the right records"):
        link_records(
            PEOPLE,
            CONTACTS.drop(columns=["phone"]),
            left_id="lead_id",
            right_id="contact_id",
            fields=FIELDS,
        )


def test_a_fitted_model_can_be_reused():
    people = _population()
    fields = {"first_name": "name", "last_name": "name", "city": "text"}
    fitted = find_duplicates(people, id_column="id", fields=fields, report=True).model
    again = find_duplicates(people.iloc[:50], id_column="id", fields=fields, model=fitted, report=True)
    assert again.model.source == "given"
    assert again.model.fields == fitted.fields
    with pytest.raises(ConfigError, match="fitted on fields"):
        find_duplicates(people, id_column="id", fields={"first_name": "name"}, model=fitted)


# ---------------------------------------------------------------- bad input


def test_unknown_kind_has_a_did_you_mean_hint():
    with pytest.raises(ConfigError, match=r"\[fields.email\].*unknown comparison kind 'emial'.*'email'"):
        find_duplicates(PEOPLE, id_column="lead_id", fields={"email": "emial"})


def test_unknown_column_has_a_did_you_mean_hint():
    with pytest.raises(ConfigError, match=r"column 'emails' is not in the records.*did you mean 'email'"):
        find_duplicates(PEOPLE, id_column="lead_id", fields={"emails": "email"})
    with pytest.raises(ConfigError, match=r"id column 'leadid'.*did you mean 'lead_id'"):
        find_duplicates(PEOPLE, id_column="leadid", fields=FIELDS)


@pytest.mark.parametrize("threshold", [0, 1, 1.5, -0.2])
def test_threshold_must_be_a_probability(threshold):
    with pytest.raises(ConfigError, match="threshold"):
        find_duplicates(PEOPLE, id_column="lead_id", fields=FIELDS, threshold=threshold)


def test_repeated_or_missing_ids_are_refused():
    repeated = PEOPLE.assign(lead_id=["a", "a", "b", "c", "d", "e"])
    with pytest.raises(JobError, match="1 ids in the records occur more than once \\(first: 'a'\\)"):
        find_duplicates(repeated, id_column="lead_id", fields=FIELDS)
    missing = PEOPLE.assign(lead_id=["a", None, "b", "c", "d", "e"])
    with pytest.raises(JobError, match="1 records in the records have no id"):
        find_duplicates(missing, id_column="lead_id", fields=FIELDS)


def test_swap_names_must_name_two_name_fields():
    with pytest.raises(ConfigError, match="swap_names must be two compared columns of kind 'name'"):
        find_duplicates(PEOPLE, id_column="lead_id", fields=FIELDS, swap_names=("first_name", "email"))


# ---------------------------------------------------------------- look-alike classes


def test_starting_classes_follow_their_names():
    from jobs.leads.duplicates.linkage_model import starting_classes

    # fields: first name, last name (name), email (personal), company, phone (shared); 4 levels each
    patterns = np.array(
        [
            [3, 3, 3, 3, 3],  # everything agrees: match
            [0, 0, 0, 3, 3],  # company and phone agree, the person does not: colleagues
            [3, 3, 0, 0, 0],  # same name, nothing else: namesakes
            [0, 0, 0, 0, 0],  # nothing: unrelated
            [3, 2, -1, 3, -1],  # missing values do not count against a match
        ]
    )
    names, assignment = starting_classes(patterns, [4] * 5, ["name", "name", "personal", "shared", "shared"])
    assert names == ["match", "unrelated", "same group", "same name"]
    assert [names[i] for i in assignment.argmax(axis=1)] == [
        "match",
        "same group",
        "same name",
        "unrelated",
        "match",
    ]


def _company_staff(seed: int = 3) -> tuple[pd.DataFrame, set[frozenset]]:
    """40 companies of 6 colleagues sharing name, switchboard, street and postcode; 15 re-entered."""
    rng = np.random.default_rng(seed)
    firsts = np.array(
        ["Anna", "Ben", "Cara", "Dev", "Eli", "Finn", "Gita", "Hugo", "Iris", "Jon", "Kai", "Lena"]
    )
    syllables = ["ka", "lo", "mi", "ren", "dar", "vin", "sel", "tor", "ba", "qui", "nor", "fel", "gu"]
    lasts = np.array(["".join(rng.choice(syllables, 3)).title() + "s" for _ in range(400)])
    rows = []
    for company in range(40):
        phone = f"+44 20 7946 {company:04d}"
        for person in range(6):
            first, last = rng.choice(firsts), lasts[company * 6 + person]
            rows.append(
                {
                    "id": f"p{company:02d}{person}",
                    "first_name": first,
                    "last_name": last,
                    "email": f"{first}.{last}@company{company}.com".lower(),
                    "company": f"Company {company} Ltd",
                    "phone": phone,
                    "street": f"{company + 1} High Street",
                    "postcode": f"AB{company:02d} 1CD",
                }
            )
    people = pd.DataFrame(rows)
    copies = people.sample(15, random_state=seed).copy()
    truth = {frozenset({i, f"{i}-dup"}) for i in copies["id"]}
    copies["id"] = copies["id"] + "-dup"
    copies["last_name"] = copies["last_name"].str[:-1]  # a typo
    copies["company"] = copies["company"].str.replace(" Ltd", "", regex=False)
    copies.loc[copies.index[::2], "email"] = None
    return pd.concat([people, copies], ignore_index=True), truth


def test_colleagues_sharing_company_phone_and_address_are_not_duplicates():
    people, truth = _company_staff()
    fields = {
        "first_name": "name",
        "last_name": "name",
        "email": "email",
        "company": "company",
        "phone": "phone",
        "street": "address",
        "postcode": "postcode",
    }
    result = find_duplicates(people, id_column="id", fields=fields, phone_region="GB", report=True)
    found = {frozenset(p) for p in zip(result.pairs["id_left"], result.pairs["id_right"], strict=True)}
    assert found == truth
    assert "same group" in result.model.alternative_classes
    colleagues = result.candidates[
        result.candidates["id_left"].str[:3] == result.candidates["id_right"].str[:3]
    ]
    assert len(colleagues) > 100  # blocking did pair colleagues; the model told them apart
    evidence = result.pairs["evidence"].iloc[0]
    assert evidence["first_name"]["weight"] > 0


def test_a_table_without_duplicates_gives_no_pairs_and_no_error():
    people, _ = _company_staff()
    clean = people[~people["id"].str.endswith("-dup")]
    fields = {"first_name": "name", "last_name": "name", "email": "email", "company": "company"}
    result = find_duplicates(clean, id_column="id", fields=fields, report=True)
    assert len(result.candidates) > 200  # enough pairs to fit: the model, not a default, says "none"
    assert result.pairs.empty
    assert result.model.prior < 1e-6


def test_a_derived_pass_too_coarse_for_the_data_is_skipped_and_reported():
    rng = np.random.default_rng(0)
    syllables = ["ka", "lo", "mi", "ren", "dar", "vin", "sel", "tor", "ba", "qui"]
    frame = pd.DataFrame(
        {
            "id": range(600),
            "last_name": ["".join(rng.choice(syllables, 3)) for _ in range(600)],
            "city": "Springfield",  # one city and two postcodes: city & postcode pairs half the table
            "postcode": rng.choice(["11111", "22222"], 600),
        }
    )
    result = find_duplicates(
        frame,
        id_column="id",
        fields={"last_name": "name", "city": "text", "postcode": "postcode"},
        report=True,
    )
    report = result.blocking
    assert report.skipped_passes == ("city:prefix4 & postcode",)
    skipped = next(p for p in report.passes if p.skipped)
    assert skipped.pairs > 10_000  # what it would have produced: over the budget
    assert report.candidate_pairs < 10_000
    assert "1 skipped as too coarse" in report.summary()


def test_link_report_counts_left_right_pairs_only():
    result = link_records(
        PEOPLE,
        CONTACTS,
        left_id="lead_id",
        right_id="contact_id",
        fields=FIELDS,
        phone_region="GB",
        report=True,
    )
    assert result.blocking.records == len(PEOPLE) + len(CONTACTS)
    assert result.blocking.total_pairs == len(PEOPLE) * len(CONTACTS)
    assert set(result.candidates["id_left"]) <= set(PEOPLE["lead_id"])
    assert set(result.candidates["id_right"]) <= set(CONTACTS["contact_id"])


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_chunk_compared_with_only_its_values_gets_the_same_levels(kind):
    # compare_codes passes a comparison only the values its pairs use (a chunk of a large table);
    # the similarities and levels must be those of the comparison given every value.
    samples = {
        "name": ["ann", "anne", "annie", "bob", "robert", "a", None, "jon", "john", "jo"],
        "email": ["ann@acme.com", "ann@acme.co", "anne@acme.com", "bob@x.org", "ann@y.org", "b@x.org"],
        "phone": ["+12125550100", "+12125550101", "+13125550100", "+442071234567", "+12125550100"],
        "date": ["20240102", "20240201", "20240103", "20230102", "20240102"],
        "number": ["10", "11", "10.5", "200", "abc", "0"],
    }
    base = samples.get(kind, ["acme corp", "acme corporation", "beta ltd", "acme", "springfield", "spring"])
    rng = np.random.default_rng(3)
    values = np.array(
        sorted({v for v in base if v is not None}) + [f"{kind}{i}" for i in range(200)], dtype=object
    )
    ia = rng.integers(0, 12, 40)
    ib = rng.integers(0, 12, 40)
    assert len(values) > 2 * len(ia)  # so compare_codes compacts
    want = KINDS[kind].compare(values, ia, ib)
    got = compare_codes(kind, values, ia, ib)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[0], want[0], rtol=0, atol=1e-12)
    # Features derived once for all the values (as the Comparator does for every chunk): the same.
    got = compare_codes(kind, values, ia, ib, derive(kind, values))
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_allclose(got[0], want[0], rtol=0, atol=1e-12)
