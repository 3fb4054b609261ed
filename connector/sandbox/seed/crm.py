"""Companies and people for the seed data: accounts, their contacts, and the people behind leads.

Builds the identity and firmographic columns (names, emails, phones, addresses, industry, size,
revenue). Engagement, lead status and orders are added by the sibling modules. Every frame keeps a
few private columns (names starting with ``_``) that the duplicate planter and the ground truth need:
``_entity`` identifies the real-world company or person a record describes, ``_tel_*`` the parts of
the main phone number so that it can be rewritten in another format. ``seed.generate`` drops them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from connector.sandbox.seed.common import (
    CITY_TABLE,
    SECONDS_PER_DAY,
    format_phones,
    guids,
    phone_parts,
    pick,
    pick_by_group,
    places,
    slug,
)
from connector.sandbox.seed.vocab import (
    COMPANY_ADJECTIVES,
    COMPANY_NOUNS,
    COMPANY_SECTORS,
    COMPANY_SUFFIXES,
    COUNTRIES,
    FIRST_NAMES,
    JOB_TITLES,
    LAST_NAMES,
    NAME_LOCALE,
    PERSONAL_EMAIL_DOMAINS,
    SENIORITY_WEIGHTS,
)

INDUSTRY_WEIGHTS = {  # industrycode -> share of companies (B2B-heavy, long tail)
    6: 0.12, 7: 0.10, 16: 0.09, 12: 0.08, 30: 0.06, 33: 0.06, 20: 0.05, 1: 0.05, 10: 0.04, 21: 0.04,
    3: 0.03, 9: 0.03, 17: 0.03, 8: 0.03, 31: 0.03, 19: 0.02, 22: 0.02, 15: 0.02, 2: 0.02, 11: 0.02,
    24: 0.01, 18: 0.01, 4: 0.01, 5: 0.01, 13: 0.01, 14: 0.005, 23: 0.005, 25: 0.005, 26: 0.005,
    27: 0.005, 28: 0.005, 29: 0.005, 32: 0.005,
}  # fmt: skip
INDUSTRY_CODES = np.array(list(INDUSTRY_WEIGHTS))
INDUSTRY_P = np.array(list(INDUSTRY_WEIGHTS.values())) / sum(INDUSTRY_WEIGHTS.values())

_SURNAMES_FOR_COMPANIES = LAST_NAMES["en"][:80] + LAST_NAMES["de"][:40]


def _company_bases(rng: np.random.Generator, n: int) -> np.ndarray:
    """Draw ``n`` distinct company base names ("Blue Harbor Logistics", "Smith & Weber Group")."""
    adj, noun, sector = (
        np.array(x, dtype=object) for x in (COMPANY_ADJECTIVES, COMPANY_NOUNS, COMPANY_SECTORS)
    )
    sur = np.array(_SURNAMES_FOR_COMPANIES, dtype=object)
    # Pattern name -> (share, size of its name space).
    spaces = {
        "adj_noun": (0.15, len(adj) * len(noun)),
        "adj_noun_sector": (0.45, len(adj) * len(noun) * len(sector)),  # spaced or fused words
        "sur_noun": (0.12, len(sur) * len(noun)),
        "sur_sur": (0.08, len(sur) * len(sur)),
        "sur_sur_sector": (0.20, len(sur) * len(sur) * len(sector)),
    }
    wanted = {k: min(round(share * n), size) for k, (share, size) in spaces.items()}
    wanted["sur_sur_sector"] = n - sum(v for k, v in wanted.items() if k != "sur_sur_sector")
    parts = []
    for key, count in wanted.items():
        idx = rng.choice(spaces[key][1], size=count, replace=False)
        if key == "adj_noun":
            a, b = np.divmod(idx, len(noun))
            parts.append(adj[a] + " " + noun[b])
        elif key == "adj_noun_sector":
            ab, c = np.divmod(idx, len(sector))
            a, b = np.divmod(ab, len(noun))
            fused = rng.random(count) < 0.3
            joiner = np.where(fused, "", " ").astype(object)
            second = np.where(fused, pd.Series(noun[b]).str.lower().to_numpy(dtype=object), noun[b])
            parts.append(adj[a] + joiner + second + " " + sector[c])
        elif key == "sur_noun":
            a, b = np.divmod(idx, len(noun))
            parts.append(sur[a] + " " + noun[b])
        elif key == "sur_sur":
            a, b = np.divmod(idx, len(sur))
            parts.append(sur[a] + " & " + sur[b])
        else:
            ab, c = np.divmod(idx, len(sector))
            a, b = np.divmod(ab, len(sur))
            parts.append(sur[a] + " & " + sur[b] + " " + sector[c])
    bases = np.concatenate(parts)
    return bases[rng.permutation(n)]


def _size_and_revenue(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Employees (log-normal, 1..200,000) and revenue (employees x revenue per head, whole thousands)."""
    employees = np.clip(np.exp(rng.normal(np.log(80), 1.7, n)), 1, 200_000).round().astype(np.int64)
    per_head = np.exp(rng.normal(np.log(160_000), 0.5, n))
    revenue = np.round(employees * per_head / 1000.0) * 1000.0
    return employees, revenue


def companies(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Draw ``n`` distinct companies with country, address, main phone, domain, industry and size."""
    where = places(rng, n)
    base = _company_bases(rng, n)
    suffix = pick_by_group(rng, where["country"].to_numpy(), COMPANY_SUFFIXES, 1.2)
    tld = where["country"].map({c: s["tld"] for c, s in COUNTRIES.items()})
    domain = slug(pd.Series(base)) + "." + tld
    employees, revenue = _size_and_revenue(rng, n)
    tel = phone_parts(rng, where["city_index"].to_numpy())
    style = pick(rng, ["international", "national"], n, [0.6, 0.4])
    out = pd.DataFrame(
        {
            "base": base,
            "suffix": suffix,
            "name": (pd.Series(base) + " " + pd.Series(suffix)).to_numpy(dtype=object),
            "domain": domain.to_numpy(dtype=object),
            "industrycode": rng.choice(INDUSTRY_CODES, size=n, p=INDUSTRY_P),
            "numberofemployees": employees,
            "revenue": revenue,
            "phone": format_phones(tel, style),
            "phone_style": style,
        }
    )
    out = pd.concat(
        [out, where.reset_index(drop=True), tel.add_prefix("tel_").drop(columns="tel_country")], axis=1
    )
    return out


def people(rng: np.random.Generator, countries: np.ndarray) -> pd.DataFrame:
    """Draw first and last names; mostly from the country's naming tradition, some from elsewhere."""
    n = len(countries)
    locale = pd.Series(countries).map(NAME_LOCALE).to_numpy(dtype=object)
    foreign = rng.random(n) < 0.12
    locale[foreign] = pick(rng, list(FIRST_NAMES), int(foreign.sum()))
    first = pick_by_group(rng, locale, FIRST_NAMES, 0.8)
    last = pick_by_group(rng, locale, LAST_NAMES, 0.9)
    return pd.DataFrame({"firstname": first, "lastname": last})


def job_titles(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw seniority bands and a job title within each band."""
    bands = pick(rng, list(SENIORITY_WEIGHTS), n, np.array(list(SENIORITY_WEIGHTS.values())))
    return pick_by_group(rng, bands, JOB_TITLES, 0.5), bands


def business_emails(
    rng: np.random.Generator, first: pd.Series, last: pd.Series, domain: pd.Series
) -> np.ndarray:
    """Company addresses in the usual house styles (first.last, flast, first, firstl, first_last)."""
    f, la = slug(first), slug(last)
    styles = pick(
        rng, ["dot", "initial", "first", "firstl", "underscore"], len(f), [0.55, 0.2, 0.1, 0.05, 0.1]
    )
    local = np.select(
        [styles == "dot", styles == "initial", styles == "first", styles == "firstl"],
        [(f + "." + la).to_numpy(), (f.str[0] + la).to_numpy(), f.to_numpy(), (f + la.str[0]).to_numpy()],
        (f + "_" + la).to_numpy(),
    )
    return (pd.Series(local) + "@" + domain.reset_index(drop=True)).to_numpy(dtype=object)


def personal_emails(
    rng: np.random.Generator, first: pd.Series, last: pd.Series, countries: np.ndarray
) -> np.ndarray:
    """Personal mailbox addresses (gmail.com, gmx.de, orange.fr, ...) with the odd birth year."""
    f, la = slug(first).reset_index(drop=True), slug(last).reset_index(drop=True)
    n = len(f)
    domain = pd.Series(pick_by_group(rng, countries, PERSONAL_EMAIL_DOMAINS, 1.0))
    year = pd.Series(rng.integers(60, 100, n)).astype(str)
    with_year = rng.random(n) < 0.35
    local = f + pd.Series(pick(rng, [".", "", "_"], n, [0.6, 0.3, 0.1])) + la
    local = local.where(~with_year, local + year)
    return (local + "@" + domain).to_numpy(dtype=object)


def accounts(rng: np.random.Generator, firms: pd.DataFrame, now_s: int, years: float = 5.0) -> pd.DataFrame:
    """Build account rows (Dataverse columns plus private ``_`` columns) from drawn companies."""
    n = len(firms)
    created = now_s - rng.uniform(30, years * 365, n) * SECONDS_PER_DAY
    email_kind = pick(rng, ["info", "sales", "contact", "hello", None], n, [0.45, 0.15, 0.15, 0.05, 0.2])
    email = pd.Series(email_kind, dtype=object) + "@" + firms["domain"]
    out = pd.DataFrame(
        {
            "accountid": guids(rng, n),
            "name": firms["name"].to_numpy(),
            "accountnumber": (pd.Series(rng.permutation(n) + 10_000).astype(str).radd("ACC-")).to_numpy(
                dtype=object
            ),
            "emailaddress1": email.where(email.notna(), None).to_numpy(dtype=object),
            "telephone1": firms["phone"].to_numpy(),
            "websiteurl": np.where(rng.random(n) < 0.9, ("https://www." + firms["domain"]).to_numpy(), None),
            "address1_line1": firms["street"].to_numpy(),
            "address1_city": firms["city"].to_numpy(),
            "address1_stateorprovince": firms["state"].to_numpy(),
            "address1_postalcode": firms["postcode"].to_numpy(),
            "address1_country": firms["country"].to_numpy(),
            "industrycode": firms["industrycode"].to_numpy(),
            "numberofemployees": firms["numberofemployees"].to_numpy(),
            "revenue": firms["revenue"].to_numpy(),
            "accountcategorycode": np.where(rng.random(n) < 0.25, 1, 2),
            "customertypecode": rng.choice([3, 5, 8, 9], size=n, p=[0.7, 0.08, 0.17, 0.05]),
            "statecode": 0,
            "statuscode": 1,
            "_created_s": created,
            "_entity": np.arange(n),
        }
    )
    for col in ("base", "suffix", "domain", "city_index", "phone_style", "tel_cc", "tel_area", "tel_sub"):
        out["_" + col] = firms[col].to_numpy()
    out["_tel_country"] = firms["country"].to_numpy()
    return out


def contacts(
    rng: np.random.Generator, accts: pd.DataFrame, n: int, now_s: int, entity_offset: int
) -> pd.DataFrame:
    """Build contact rows: most work at an account (``parentcustomerid``), some are individuals.

    Colleagues share their company's address and often its switchboard number, so that people at the
    same company look alike without being duplicates.
    """
    with_parent = rng.random(n) < 0.8
    # Bigger companies have more contacts; every account is equally likely to have at least one.
    weights = np.log1p(accts["numberofemployees"].to_numpy(dtype=float)) + 1.0
    parent = rng.choice(len(accts), size=n, p=weights / weights.sum())
    own_place = places(rng, n)
    country = np.where(
        with_parent, accts["address1_country"].to_numpy()[parent], own_place["country"].to_numpy()
    )
    names = people(rng, country)
    titles, bands = job_titles(rng, n)
    acct = accts.iloc[parent].reset_index(drop=True)
    city_index = np.where(with_parent, acct["_city_index"].to_numpy(), own_place["city_index"].to_numpy())
    direct = phone_parts(rng, city_index)
    switchboard = with_parent & (rng.random(n) < 0.35)
    style = pick(rng, ["international", "national"], n, [0.55, 0.45])
    tel = direct.copy()
    for col, src in (("cc", "_tel_cc"), ("area", "_tel_area"), ("sub", "_tel_sub")):
        tel.loc[switchboard, col] = acct.loc[switchboard, src].to_numpy()
    mobile = phone_parts(rng, city_index, mobile=True)
    mobile_style = pick(rng, ["international", "national"], n, [0.6, 0.4])
    email_business = business_emails(rng, names["firstname"], names["lastname"], acct["_domain"])
    email_personal = personal_emails(rng, names["firstname"], names["lastname"], country)
    created_floor = np.where(with_parent, acct["_created_s"].to_numpy(), now_s - 5 * 365 * SECONDS_PER_DAY)
    created = created_floor + rng.uniform(0, 1, n) * (now_s - SECONDS_PER_DAY - created_floor)
    created = np.minimum(created, created_floor + rng.exponential(200, n) * SECONDS_PER_DAY)

    def own_or_parent(own_col: str, acct_col: str) -> np.ndarray:
        return np.where(with_parent, acct[acct_col].to_numpy(), own_place[own_col].to_numpy())

    out = pd.DataFrame(
        {
            "contactid": guids(rng, n),
            "firstname": names["firstname"].to_numpy(),
            "lastname": names["lastname"].to_numpy(),
            "jobtitle": np.where(with_parent, titles, None),
            "emailaddress1": np.where(with_parent, email_business, email_personal),
            "telephone1": format_phones(tel, style),
            "mobilephone": np.where(rng.random(n) < 0.6, format_phones(mobile, mobile_style), None),
            "address1_line1": own_or_parent("street", "address1_line1"),
            "address1_city": own_or_parent("city", "address1_city"),
            "address1_stateorprovince": own_or_parent("state", "address1_stateorprovince"),
            "address1_postalcode": own_or_parent("postcode", "address1_postalcode"),
            "address1_country": country,
            "parentcustomerid": np.where(with_parent, acct["accountid"].to_numpy(), None),
            "parentcustomeridtype": np.where(with_parent, "account", None),
            "accountrolecode": np.where(
                with_parent,
                np.select([bands == "c_level", bands == "vp"], [1, 1], np.where(bands == "director", 3, 2)),
                None,
            ),
            "preferredcontactmethodcode": rng.choice([1, 2, 3], size=n, p=[0.6, 0.3, 0.1]),
            "statecode": 0,
            "statuscode": 1,
            "_created_s": created,
            "_entity": entity_offset + np.arange(n),
            "_seniority": bands,
            "_account_row": np.where(with_parent, parent, -1),
            "_company": np.where(with_parent, acct["name"].to_numpy(), None),
            "_city_index": city_index,
            "_phone_style": style,
            "_tel_cc": tel["cc"].to_numpy(),
            "_tel_area": tel["area"].to_numpy(),
            "_tel_sub": tel["sub"].to_numpy(),
            "_tel_country": CITY_TABLE["country"].to_numpy()[city_index],
        }
    )
    out["accountrolecode"] = out["accountrolecode"].astype("Int64")
    return out
