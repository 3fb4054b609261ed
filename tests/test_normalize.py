import pandas as pd
import pytest

from core.errors import ConfigError
from jobs.leads.duplicates.normalize import (
    canonical_given_name,
    normalize_address,
    normalize_company,
    normalize_date,
    normalize_email,
    normalize_name,
    normalize_number,
    normalize_phone,
    normalize_postcode,
    normalize_text,
    soundex,
)


def values(function, items, *args):
    return function(pd.Series(items, dtype=object), *args).tolist()


def test_text_folds_accents_case_whitespace_and_punctuation():
    out = values(normalize_text, ["  Zoë  Ångström-Smith ", "O'Brien", "ØSTER Łódź", "Straße", "ÉCOLE"])
    assert out == ["zoe angstrom smith", "obrien", "oster lodz", "strasse", "ecole"]


def test_text_blank_and_missing_values_become_none():
    out = values(normalize_text, ["", "   ", None, float("nan"), "---", "a"])
    assert out == [None, None, None, None, None, "a"]


def test_text_keeps_other_scripts_instead_of_dropping_them():
    assert values(normalize_text, ["Иванов", "東京"]) == ["иванов", "東京"]


def test_text_keeps_the_index():
    series = pd.Series(["A", "b"], index=[10, 20])
    assert list(normalize_text(series).index) == [10, 20]


def test_name_drops_titles_and_generational_suffixes():
    assert values(normalize_name, ["Dr. José García Jr.", "Mrs  Anne-Marie O'Neil", "Prof Ian Bell III"]) == [
        "jose garcia",
        "anne marie oneil",
        "ian bell",
    ]


def test_nicknames_map_to_formal_names_and_others_are_kept():
    names = normalize_name(pd.Series(["Bob", "Liz", "Bill", "Peggy", "Xavier", None]))
    assert canonical_given_name(names).tolist() == [
        "robert",
        "elizabeth",
        "william",
        "margaret",
        "xavier",
        None,
    ]


def test_email_plus_addressing_case_and_gmail_dots():
    out = values(
        normalize_email,
        [
            "John.Smith+crm@GoogleMail.com",
            " Anna.Lee+news@Example.COM ",
            "mailto:BOB@x.org",
            "not-an-email",
            "",
        ],
    )
    assert out == ["johnsmith@gmail.com", "anna.lee@example.com", "bob@x.org", "not-an-email", None]


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("020 7946 0018", "GB", "+442079460018"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("+1 415-555-2671", "GB", "+14155552671"),
        ("030 1234567", "DE", "+49301234567"),
        ("0049 30 1234567", "GB", "+49301234567"),
        ("01 23 45 67 89", "FR", "+33123456789"),
        ("(02) 9876 5432", "AU", "+61298765432"),
    ],
)
def test_phone_to_e164_in_several_countries(raw, region, e164):
    assert values(normalize_phone, [raw], region) == [e164]


def test_phone_junk_keeps_digits_or_becomes_missing():
    assert values(normalize_phone, ["12", "n/a", None], "GB") == [None, None, None]


def test_phone_unknown_region_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown phone region 'XX'"):
        normalize_phone(pd.Series(["123"]), "XX")


def test_company_suffixes_the_and_ampersand():
    out = values(
        normalize_company,
        [
            "The Acme Widgets, Inc.",
            "Müller & Söhne GmbH",
            "Globex Ltd.",
            "Initech LLC",
            "Umbrella S.A.",
            "Vandelay Industries Co., Ltd",
            "Stark Holdings plc",
            "Ltd",
        ],
    )
    assert out == [
        "acme widgets",
        "muller and sohne",
        "globex",
        "initech",
        "umbrella",
        "vandelay industries",
        "stark holdings",
        "ltd",
    ]


def test_address_common_words_have_one_spelling():
    assert values(normalize_address, ["12 Baker Street", "12 baker st.", "5 Mount Road North"]) == [
        "12 baker st",
        "12 baker st",
        "5 mt rd n",
    ]


def test_postcode_case_spaces_and_float_artifacts():
    assert values(normalize_postcode, ["sw1a 1aa", 4011.0, " 90210-1234 "]) == [
        "SW1A1AA",
        "4011",
        "902101234",
    ]


def test_dates_from_strings_numbers_and_datetimes():
    assert values(normalize_date, ["19081209", "2021-03-04", 19870412.0, "junk", None]) == [
        "19081209",
        "20210304",
        "19870412",
        None,
        None,
    ]
    stamps = pd.Series(pd.to_datetime(["2021-03-04 10:00", None]))
    assert normalize_date(stamps).tolist() == ["20210304", None]


def test_numbers_are_canonical():
    assert values(normalize_number, ["0042", "1,200.50", 6.0, "12a", ""]) == [
        "42",
        "1200.5",
        "6",
        "12a",
        None,
    ]


def test_soundex_follows_the_census_rules():
    codes = values(soundex, ["robert", "rupert", "ashcraft", "tymczak", "pfister", "lee", None, "123"])
    assert codes == ["R163", "R163", "A261", "T522", "P236", "L000", None, None]
