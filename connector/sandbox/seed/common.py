"""Vectorised building blocks for the seed data: random streams, GUIDs, picks, places, phones, emails.

Every function takes a ``numpy.random.Generator`` and returns arrays or Series of the requested
length, so a table of a million rows is built by a handful of array operations, not a loop per row.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd

from connector.sandbox.seed.vocab import COUNTRIES, MOBILE_PLANS, NAME_LOCALE, STREET_NAMES, STREET_TYPES_EN

SECONDS_PER_DAY = 86_400
SECONDS_PER_WEEK = 7 * SECONDS_PER_DAY

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_DIGITS = np.frombuffer(b"0123456789", dtype=np.uint8)
# Postcode letters: GB and IE avoid C, I, K, M, O, V in inward codes; the same set reads well elsewhere.
_LETTERS = np.frombuffer(b"ABDEFGHJLNPQRSTUWXYZ", dtype=np.uint8)


def stream(seed: int, name: str) -> np.random.Generator:
    """Return an independent random stream for one part of the generator.

    Each part (leads, orders, ...) draws from its own stream keyed by name, so changing how one table
    is built never shifts the random numbers of another.
    """
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(name.encode())]))


def guids(rng: np.random.Generator, n: int) -> np.ndarray:
    """Return ``n`` random version-4 GUID strings (lower case, hyphenated), as an object array."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    nibbles = np.empty((n, 32), dtype=np.uint8)
    nibbles[:, 0::2] = raw >> 4
    nibbles[:, 1::2] = raw & 0x0F
    chars = np.full((n, 36), ord("-"), dtype=np.uint8)
    hexed = _HEX[nibbles]
    for start, stop, offset in ((0, 8, 0), (8, 12, 1), (12, 16, 2), (16, 20, 3), (20, 32, 4)):
        chars[:, start + offset : stop + offset] = hexed[:, start:stop]
    return chars.view("S36").ravel().astype("U36").astype(object)


def zipf_weights(k: int, exponent: float = 0.9) -> np.ndarray:
    """Return normalised Zipf-like weights for ``k`` items ranked from most to least common."""
    weights = 1.0 / np.arange(1, k + 1) ** exponent
    return weights / weights.sum()


def pick(
    rng: np.random.Generator, values: Sequence, n: int, p: Sequence[float] | np.ndarray | None = None
) -> np.ndarray:
    """Draw ``n`` items from ``values`` (with weights ``p``) as an object array."""
    arr = np.asarray(values, dtype=object)
    return arr[rng.choice(len(arr), size=n, p=p)]


def pick_by_group(
    rng: np.random.Generator, groups: np.ndarray, table: dict, exponent: float = 0.9
) -> np.ndarray:
    """For each row, draw an item from ``table[group]`` with Zipf weights; returns an object array."""
    out = np.empty(len(groups), dtype=object)
    for key, values in table.items():
        mask = groups == key
        if mask.any():
            out[mask] = pick(rng, values, int(mask.sum()), zipf_weights(len(values), exponent))
    return out


def fold_ascii(values: pd.Series) -> pd.Series:
    """Strip accents (Müller -> Muller) the way many CRM imports do."""
    return (
        values.str.normalize("NFKD").str.encode("ascii", errors="ignore").str.decode("ascii").astype(object)
    )


def slug(values: pd.Series) -> pd.Series:
    """Lower-case ASCII letters and digits only: the shape of a domain label or an email local part."""
    folded = values.str.replace("ß", "ss", regex=False).str.replace("&", "and", regex=False)
    return fold_ascii(folded).str.lower().str.replace(r"[^a-z0-9]", "", regex=True)


def has_accents(values: pd.Series) -> np.ndarray:
    """True where folding to ASCII changes the text."""
    return (fold_ascii(values.fillna("")) != values.fillna("")).to_numpy()


def random_pattern(rng: np.random.Generator, patterns: np.ndarray) -> np.ndarray:
    """Fill patterns where ``#`` is a random digit and ``@`` a random letter; other characters stay."""
    out = np.empty(len(patterns), dtype=object)
    for pattern in pd.unique(patterns):
        mask = patterns == pattern
        n = int(mask.sum())
        chars = np.tile(np.frombuffer(pattern.encode(), dtype=np.uint8), (n, 1))
        for pos, ch in enumerate(pattern):
            if ch == "#":
                chars[:, pos] = _DIGITS[rng.integers(0, 10, n)]
            elif ch == "@":
                chars[:, pos] = _LETTERS[rng.integers(0, len(_LETTERS), n)]
        out[mask] = chars.view(f"S{len(pattern)}").ravel().astype(str).astype(object)
    return out


def random_digits(rng: np.random.Generator, n: int, length: int, first_digits: str) -> np.ndarray:
    """Return ``n`` digit strings of ``length`` whose first digit is drawn from ``first_digits``."""
    chars = _DIGITS[rng.integers(0, 10, size=(n, length))]
    firsts = np.frombuffer(first_digits.encode(), dtype=np.uint8)
    chars[:, 0] = firsts[rng.integers(0, len(firsts), n)]
    return chars.view(f"S{length}").ravel().astype(str).astype(object)


# --- Places ---------------------------------------------------------------------------------------

CITY_TABLE = pd.DataFrame(
    [
        {
            "country": country,
            "city": city[0],
            "state": city[1],
            "area": city[2],
            "sublen": city[3],
            "lead_digits": city[4],
            "postcodes": city[5],
            "country_weight": spec["weight"],
        }
        for country, spec in COUNTRIES.items()
        for city in spec["cities"]
    ]
)
# Within a country, the first cities are the bigger ones.
CITY_TABLE["weight"] = CITY_TABLE.groupby("country")["country_weight"].transform(
    lambda w: w.iloc[0] * zipf_weights(len(w), 0.7)
)
CITY_TABLE["weight"] /= CITY_TABLE["weight"].sum()


def places(rng: np.random.Generator, n: int, countries: np.ndarray | None = None) -> pd.DataFrame:
    """Draw ``n`` places: country, city, state, postcode, street line and the city index.

    Args:
        rng: the random stream.
        n: how many.
        countries: when given, keep each row's country and draw only the city within it.
    """
    if countries is None:
        idx = rng.choice(len(CITY_TABLE), size=n, p=CITY_TABLE["weight"].to_numpy())
    else:
        idx = np.empty(n, dtype=np.int64)
        for country, rows in CITY_TABLE.groupby("country"):
            mask = countries == country
            if mask.any():
                w = rows["weight"].to_numpy() / rows["weight"].sum()
                idx[mask] = rng.choice(rows.index.to_numpy(), size=int(mask.sum()), p=w)
    cities = CITY_TABLE.iloc[idx].reset_index(drop=True)
    patterns = np.empty(n, dtype=object)
    for i, specs in CITY_TABLE["postcodes"].items():
        mask = idx == i
        if mask.any():
            patterns[mask] = pick(rng, specs, int(mask.sum()))
    out = pd.DataFrame(
        {
            "country": cities["country"].to_numpy(dtype=object),
            "city": cities["city"].to_numpy(dtype=object),
            "state": cities["state"].replace("", None).to_numpy(dtype=object),
            "postcode": random_pattern(rng, patterns),
            "city_index": idx,
        }
    )
    out["street"] = streets(rng, out["country"].to_numpy())
    return out


def streets(rng: np.random.Generator, countries: np.ndarray) -> np.ndarray:
    """Street lines written the local way ("12 Oak Avenue", "Lindenstraße 4", "8 rue Pasteur")."""
    n = len(countries)
    locale = pd.Series(countries).map(NAME_LOCALE).to_numpy()
    number = pd.Series(rng.integers(1, 250, n)).astype(str)
    name = pd.Series(pick_by_group(rng, locale, STREET_NAMES, 0.5))
    kind = pd.Series(pick(rng, STREET_TYPES_EN, n))
    en = number + " " + name + " " + kind
    de = (
        name
        + pd.Series(pick(rng, ["straße", "weg", "allee", "platz"], n, [0.6, 0.2, 0.1, 0.1]))
        + " "
        + number
    )
    fr = number + pd.Series(pick(rng, [" rue ", " avenue ", " boulevard "], n, [0.7, 0.2, 0.1])) + name
    nl = (
        name
        + pd.Series(pick(rng, ["straat", "weg", "laan", "gracht"], n, [0.5, 0.2, 0.2, 0.1]))
        + " "
        + number
    )
    es = pd.Series(pick(rng, ["Calle ", "Avenida ", "Paseo "], n, [0.7, 0.2, 0.1])) + name + ", " + number
    out = np.select(
        [locale == "de", locale == "fr", locale == "nl", locale == "es"],
        [de.to_numpy(), fr.to_numpy(), nl.to_numpy(), es.to_numpy()],
        en.to_numpy(),
    )
    return out.astype(object)


# --- Phones ---------------------------------------------------------------------------------------

PHONE_STYLES = ("international", "national", "e164")


def phone_parts(rng: np.random.Generator, city_index: np.ndarray, mobile: bool = False) -> pd.DataFrame:
    """Draw phone numbers as parts: country, country code, area code and subscriber digits."""
    n = len(city_index)
    cities = CITY_TABLE.iloc[city_index].reset_index(drop=True)
    area = cities["area"].to_numpy(dtype=object).copy()
    sub = np.empty(n, dtype=object)
    for (sublen, lead), rows in cities.groupby(["sublen", "lead_digits"]).groups.items():
        rows = np.asarray(rows)
        sub[rows] = random_digits(rng, len(rows), int(sublen), str(lead))
    if mobile:
        for country, plan in MOBILE_PLANS.items():
            mask = (cities["country"] == country).to_numpy()
            if plan is None or not mask.any():
                continue
            prefixes, length = plan
            area[mask] = pick(rng, prefixes, int(mask.sum()))
            sub[mask] = random_digits(rng, int(mask.sum()), length, "23456789")
    cc = cities["country"].map({c: s["cc"] for c, s in COUNTRIES.items()}).to_numpy(dtype=object)
    return pd.DataFrame(
        {"country": cities["country"].to_numpy(dtype=object), "cc": cc, "area": area, "sub": sub}
    )


def _group_subscriber(sub: pd.Series, sep: str = " ") -> pd.Series:
    """Split subscriber digits the usual way: 8 -> 4 4, 7 -> 3 4, 6 -> 3 3."""
    length = sub.str.len()
    four_four = sub.str[:4] + sep + sub.str[4:]
    three_rest = sub.str[:3] + sep + sub.str[3:]
    return pd.Series(np.where(length == 8, four_four, three_rest), index=sub.index)


def _format_group(country: str, style: str, cc: str, area: pd.Series, sub: pd.Series) -> pd.Series:
    """Format the numbers of one country in one style (see :func:`format_phones`)."""
    if style == "e164":
        return "+" + cc + area + sub
    trunk = COUNTRIES[country]["trunk"]
    if country in ("United States", "Canada"):
        local = sub.str[:3] + "-" + sub.str[3:]
        return "+1 " + area + "-" + local if style == "international" else "(" + area + ") " + local
    if country == "France":
        nsn = area + sub
        pairs = nsn.str[0] + " " + nsn.str[1:3] + " " + nsn.str[3:5] + " " + nsn.str[5:7] + " " + nsn.str[7:9]
        return "+33 " + pairs if style == "international" else "0" + pairs
    if country == "Spain":
        nsn = area + sub
        groups = nsn.str[:3] + " " + nsn.str[3:6] + " " + nsn.str[6:]
        return "+34 " + groups if style == "international" else groups
    # Germans write the subscriber number in one block; elsewhere it is grouped.
    local = sub if country == "Germany" else _group_subscriber(sub)
    if style == "international":
        return "+" + cc + " " + area + " " + local
    if country in ("Australia", "Ireland"):
        return "(" + trunk + area + ") " + local
    return trunk + area + " " + local


def format_phones(parts: pd.DataFrame, styles: np.ndarray) -> np.ndarray:
    """Write phone numbers in the given styles, the way people in each country write them.

    ``international`` is ``+44 20 7946 0958``, ``national`` is ``020 7946 0958`` (with the trunk
    prefix, or ``(212) 555-0147`` in North America), ``e164`` is ``+442079460958``.
    """
    out = np.empty(len(parts), dtype=object)
    country = parts["country"].to_numpy()
    styles = np.asarray(styles)
    for name, spec in COUNTRIES.items():
        in_country = country == name
        if not in_country.any():
            continue
        for style in PHONE_STYLES:
            rows = np.flatnonzero(in_country & (styles == style))
            if len(rows):
                area = parts["area"].iloc[rows].astype(object).reset_index(drop=True)
                sub = parts["sub"].iloc[rows].astype(object).reset_index(drop=True)
                out[rows] = _format_group(name, style, spec["cc"], area, sub).to_numpy(dtype=object)
    return out


# --- Time -----------------------------------------------------------------------------------------


def to_timestamps(seconds: np.ndarray) -> pd.Series:
    """Turn epoch seconds (float or int; NaN for missing) into a UTC datetime Series, whole seconds."""
    secs = pd.Series(seconds, dtype="float64").round()
    return pd.to_datetime(secs, unit="s", utc=True).astype("datetime64[ns, UTC]")


def to_dates(seconds: np.ndarray) -> pd.Series:
    """Turn epoch seconds into DateOnly values: UTC midnight of that day (NaT for missing)."""
    return to_timestamps(seconds).dt.floor("D")


def epoch_seconds(moment: datetime) -> int:
    """Seconds since the Unix epoch; a naive datetime is taken as UTC."""
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return int(stamp.timestamp())


def business_time(rng: np.random.Generator, seconds: np.ndarray) -> np.ndarray:
    """Move instants to the same day's working hours (08:00-18:00 UTC), when people use a CRM."""
    day = np.floor(seconds / SECONDS_PER_DAY) * SECONDS_PER_DAY
    return day + rng.uniform(8 * 3600, 18 * 3600, len(seconds))
