"""Normalise CRM values before they are compared: text, names, emails, phones, companies, dates.

Every function takes a pandas Series and returns a Series of the same index holding normalised
strings (``object`` dtype) with missing values as ``None``: blank strings, whitespace-only strings
and values that normalise to nothing are missing, so "" never agrees with "". The input is never
modified; normalised values are only used for comparison, so nothing is lost.

The work is done once per distinct value (``pd.factorize``) with vectorised ``.str`` operations,
so a column of 100,000 values with many repeats costs little. Phone numbers are the exception:
``phonenumbers`` parses one number at a time, which is done once per distinct number.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import phonenumbers

from core.errors import ConfigError
from jobs.leads.duplicates.nicknames import NICKNAMES

__all__ = [
    "canonical_given_name",
    "check_region",
    "normalize_address",
    "normalize_company",
    "normalize_date",
    "normalize_email",
    "normalize_name",
    "normalize_number",
    "normalize_phone",
    "normalize_postcode",
    "normalize_text",
    "soundex",
]

# Combining marks left by NFKD decomposition (accents, cedillas, umlaut dots...).
_COMBINING = r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]"
# Latin letters that NFKD does not decompose into a base letter plus a mark.
_FOLD = str.maketrans(
    {"ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "ı": "i", "ħ": "h"}
)
# Apostrophes join (O'Brien -> obrien); every other non-word character separates words.
_APOSTROPHES = r"['’`´]"
_NON_WORD = r"[^\w]+|_"

_NAME_AFFIXES = (
    r"^(?:(?:mr|mrs|ms|miss|mx|dr|prof|sir|dame|herr|frau|mme|mlle|m)\s+)+"
    r"|(?:\s+(?:jr|sr|junior|senior|ii|iii|iv|phd|md|esq))+$"
)

# Legal-form suffixes stripped from company names, after punctuation became spaces ("S.A." ->
# "s a"). Repeated suffixes go too ("Acme Holdings Ltd" keeps "holdings": it is not a legal form).
_COMPANY_SUFFIXES = (
    "inc", "incorporated", "corp", "corporation", "co", "company", "ltd", "limited", "llc", "l l c",
    "llp", "lp", "plc", "pty", "pte", "gmbh", "g m b h", "mbh", "ag", "kg", "kgaa", "ug", "ev", "se",
    "sa", "s a", "sas", "s a s", "sarl", "s a r l", "sl", "s l", "srl", "s r l", "spa", "s p a",
    "bv", "b v", "nv", "n v", "oy", "oyj", "ab", "as", "a s", "asa", "aps", "kk", "sro", "s r o",
    "zoo", "sp z o o", "kft", "doo", "d o o", "ltda", "sa de cv", "cv", "pvt", "private",
)  # fmt: skip
_COMPANY_SUFFIX_RE = (
    r"(?:\s+(?:and|"
    + "|".join(sorted((re.escape(s) for s in _COMPANY_SUFFIXES), key=len, reverse=True))
    + r"))+$"
)

# Address words written several ways; the short form is what comparison sees.
_ADDRESS_WORDS = {
    "street": "st", "str": "st", "strasse": "str", "road": "rd", "avenue": "ave", "av": "ave",
    "boulevard": "blvd", "drive": "dr", "lane": "ln", "place": "pl", "court": "ct", "crescent": "cres",
    "circuit": "cct", "square": "sq", "terrace": "tce", "highway": "hwy", "parkway": "pkwy",
    "apartment": "apt", "suite": "ste", "floor": "fl", "north": "n", "south": "s", "east": "e",
    "west": "w", "mount": "mt", "saint": "st", "close": "cl", "way": "wy",
}  # fmt: skip
_ADDRESS_WORD_RE = re.compile(r"\b(" + "|".join(map(re.escape, _ADDRESS_WORDS)) + r")\b")

# Gmail ignores dots in the local part and treats googlemail.com as gmail.com.
_DOTLESS_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def _per_unique(series: pd.Series, transform: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """Apply ``transform`` to the distinct non-missing values of ``series`` and map back."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    if len(uniques) == 0:
        return pd.Series([None] * len(series), index=series.index, dtype=object)
    done = transform(pd.Series(uniques, dtype=object).astype(str))
    keep = (done.str.len() > 0).fillna(False).to_numpy(dtype=bool)
    done = np.array(done.to_numpy(dtype=object), dtype=object, copy=True)
    done[~keep] = None
    out = np.where(codes >= 0, done[np.maximum(codes, 0)], None)
    return pd.Series(out, index=series.index, dtype=object)


def _text(values: pd.Series) -> pd.Series:
    text = values.str.normalize("NFKD").str.replace(_COMBINING, "", regex=True).str.casefold()
    text = text.str.translate(_FOLD).str.normalize("NFKC")
    text = text.str.replace(_APOSTROPHES, "", regex=True).str.replace(_NON_WORD, " ", regex=True)
    return text.str.strip().str.replace(r"\s+", " ", regex=True)


def normalize_text(series: pd.Series) -> pd.Series:
    """Fold case, accents and other Unicode variants; punctuation and runs of spaces become one space.

    "  Zoë  Ångström-Smith " -> "zoe angstrom smith"; "O'Brien" -> "obrien"; "" -> None.
    Letters of other scripts are kept (only their combining marks go), so nothing is dropped.
    """
    return _per_unique(series, _text)


def normalize_name(series: pd.Series) -> pd.Series:
    """Normalise a person's name: :func:`normalize_text` minus titles and generational suffixes.

    "Dr. José García Jr." -> "jose garcia".
    """
    return _per_unique(series, lambda v: _text(v).str.replace(_NAME_AFFIXES, "", regex=True).str.strip())


def canonical_given_name(normalised: pd.Series) -> pd.Series:
    """Map normalised given names to a formal form ("bob" -> "robert"); others are unchanged."""
    values = np.array(normalised.to_numpy(dtype=object), dtype=object, copy=True)
    mapped = normalised.map(NICKNAMES, na_action="ignore").notna().to_numpy()
    values[mapped] = [NICKNAMES[v] for v in values[mapped]]
    values[pd.isna(values)] = None
    return pd.Series(values, index=normalised.index, dtype=object)


def normalize_company(series: pd.Series) -> pd.Series:
    """Normalise a company name: text folding, "&" as "and", no leading "the", no legal-form suffix.

    "The Acme Widgets, Inc." -> "acme widgets"; "Müller & Söhne GmbH" -> "muller and sohne".
    A name that is only a suffix ("Ltd") is kept as it is rather than becoming missing.
    """

    def transform(values: pd.Series) -> pd.Series:
        text = _text(values.str.replace("&", " and ", regex=False))
        stripped = text.str.replace(r"^the\s+", "", regex=True).str.replace(
            _COMPANY_SUFFIX_RE, "", regex=True
        )
        return stripped.where(stripped.str.len() > 0, text)

    return _per_unique(series, transform)


def normalize_address(series: pd.Series) -> pd.Series:
    """Normalise a street address: text folding and one spelling for common words ("Street" -> "st")."""

    def transform(values: pd.Series) -> pd.Series:
        return _text(values).str.replace(_ADDRESS_WORD_RE, lambda m: _ADDRESS_WORDS[m.group(1)], regex=True)

    return _per_unique(series, transform)


def normalize_email(series: pd.Series) -> pd.Series:
    """Normalise email addresses: trim, lower-case, drop ``mailto:`` and the ``+tag`` of plus-addressing.

    For gmail.com and googlemail.com the dots of the local part are dropped too, as Gmail ignores
    them. "John.Smith+crm@GoogleMail.com" -> "johnsmith@gmail.com". A value without exactly one "@"
    is kept lower-cased, so two identical malformed values still agree.
    """

    def transform(values: pd.Series) -> pd.Series:
        text = values.str.strip().str.lower().str.replace(r"^mailto:", "", regex=True)
        text = text.str.replace(r"\s+", "", regex=True)
        parts = text.str.extract(r"^([^@]+)@([^@]+)$")
        local = parts[0].str.replace(r"\+.*$", "", regex=True)
        domain = parts[1].str.rstrip(".").replace("googlemail.com", "gmail.com")
        dotless = domain.isin(_DOTLESS_DOMAINS)
        local = local.where(~dotless, local.str.replace(".", "", regex=False))
        email = local + "@" + domain
        valid = parts[0].notna() & (local.str.len() > 0)
        return email.where(valid, text)

    return _per_unique(series, transform)


def check_region(region: str) -> str:
    """Return ``region`` upper-cased if ``phonenumbers`` knows it, else raise ConfigError."""
    code = str(region).upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(
            f"unknown phone region {region!r}",
            hint="use a two-letter ISO 3166 country code such as GB, US, DE or AU",
        )
    return code


def _e164(value: str, region: str) -> str:
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is not None and phonenumbers.is_possible_number(number):
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    # Not a possible number for any region: keep its digits (at least 5) so equal junk still agrees.
    digits = re.sub(r"\D", "", value)
    return digits if len(digits) >= 5 else ""


def normalize_phone(series: pd.Series, default_region: str = "US") -> pd.Series:
    """Normalise phone numbers to E.164 ("+442079460000"), reading national numbers in ``default_region``.

    Numbers written with a country code ("+49 30 1234567", "0049 ...") keep their own country. A value
    that is not a possible number keeps its digits (at least five), otherwise it is missing.

    Raises:
        ConfigError: ``default_region`` is not a region ``phonenumbers`` knows.
    """
    region = check_region(default_region)

    def transform(values: pd.Series) -> pd.Series:
        return pd.Series([_e164(v, region) for v in values], index=values.index, dtype=object)

    return _per_unique(series, transform)


def normalize_postcode(series: pd.Series) -> pd.Series:
    """Normalise postcodes: upper-case ASCII letters and digits only ("sw1a 1aa" -> "SW1A1AA").

    Numeric postcodes read as floats by pandas ("4011.0") lose the ".0".
    """

    def transform(values: pd.Series) -> pd.Series:
        text = values.str.replace(r"\.0$", "", regex=True)
        return _text(text).str.upper().str.replace(r"[^0-9A-Z]", "", regex=True)

    return _per_unique(series, transform)


def normalize_date(series: pd.Series) -> pd.Series:
    """Normalise dates to "YYYYMMDD" strings.

    Datetime columns are formatted; strings of eight digits are kept as they are (a mistyped date
    such as "19871332" stays comparable digit by digit); other strings are parsed by pandas (ISO
    8601 first, day-first never assumed). Numbers such as 19870412.0 become "19870412".
    """
    if pd.api.types.is_datetime64_any_dtype(series):
        formatted = series.dt.strftime("%Y%m%d").to_numpy(dtype=object)
        formatted[series.isna().to_numpy()] = None
        return pd.Series(formatted, index=series.index, dtype=object)

    def transform(values: pd.Series) -> pd.Series:
        text = values.str.strip().str.replace(r"\.0$", "", regex=True)
        digits = text.str.fullmatch(r"\d{8}")
        parsed = pd.to_datetime(text.where(~digits), errors="coerce", format="mixed", utc=True)
        formatted = parsed.dt.strftime("%Y%m%d").astype(object)
        return text.where(digits, formatted).fillna("")

    return _per_unique(series, transform)


def normalize_number(series: pd.Series) -> pd.Series:
    """Normalise numbers to a canonical decimal string ("0042" -> "42", "1,200.50" -> "1200.5")."""

    def transform(values: pd.Series) -> pd.Series:
        numeric = pd.to_numeric(values.str.replace(r"[\s,]", "", regex=True), errors="coerce")
        text = numeric.map(lambda x: "" if pd.isna(x) else format(x, ".15g"))
        # Keep a non-numeric value ("12a") as folded text, so equal values still agree.
        return text.where(numeric.notna(), _text(values))

    return _per_unique(series, transform)


# Soundex digit for each letter; vowels, h, w, y are 0 (dropped), as in the US census rules.
_SOUNDEX = str.maketrans("abcdefghijklmnopqrstuvwxyz", "01230120022455012623010202")


def soundex(normalised: pd.Series) -> pd.Series:
    """Return the American Soundex code of normalised names ("robert" -> "R163"), None when missing.

    Only the first word counts and only ASCII letters are coded; a name without them is missing.
    """

    def transform(values: pd.Series) -> pd.Series:
        word = values.str.split(" ").str[0].str.replace(r"[^a-z]", "", regex=True)
        first = word.str[:1]
        # h and w after the first letter do not separate equal codes (Ashcraft -> A261); vowels do.
        coded = (first + word.str[1:].str.replace(r"[hw]", "", regex=True)).str.translate(_SOUNDEX)
        # Runs of one code count once, including a run that starts with the first letter (Pfister).
        tail = coded.str.replace(r"(\d)\1+", r"\1", regex=True).str[1:].str.replace("0", "", regex=False)
        code = first.str.upper() + tail.str.ljust(3, "0").str[:3]
        return code.where(word.str.len() > 0, "")

    return _per_unique(normalised, transform)
