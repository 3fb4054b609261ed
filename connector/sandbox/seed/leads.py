"""Leads for the seed data: who they are, where they came from, and whether they qualified.

Qualification follows a documented logistic model (``QUALIFICATION``): the log-odds of a closed lead
being qualified are a sum of effects of its source, its contact's seniority, company size, industry,
country, budget, purchase timeframe, a personal (gmail-style) email address, and its engagement (the
completed activities regarding it: inbound emails, calls, a held meeting), plus an unobserved
interest term that keeps the signal realistic rather than perfect. A model trained on the closed
leads can therefore learn real signal (AUC around 0.8) and a rule set can be tuned against it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from connector.sandbox.seed.common import SECONDS_PER_DAY, format_phones, guids, phone_parts, pick
from connector.sandbox.seed.crm import business_emails, job_titles, people, personal_emails
from connector.sandbox.seed.duplicates import vary_people
from connector.sandbox.seed.vocab import LEAD_TOPICS

LEAD_SOURCE_WEIGHTS = {
    8: 0.30,
    1: 0.12,
    7: 0.10,
    6: 0.07,
    4: 0.08,
    2: 0.05,
    3: 0.07,
    9: 0.06,
    5: 0.04,
    10: 0.11,
}

# The generating model of qualification. Log-odds = intercept + the effects below; a missing value
# (no budget status, no employee count, ...) contributes 0. See docs/sandbox-data.md.
QUALIFICATION: dict = {
    "intercept": -2.3,
    "leadsourcecode": {1: -0.6, 2: 0.9, 3: 0.7, 4: 0.5, 5: -0.2, 6: 0.2, 7: 0.3, 8: 0.0, 9: 0.5, 10: -0.3},
    "seniority": {
        "c_level": 0.6,
        "vp": 0.5,
        "director": 0.4,
        "manager": 0.1,
        "individual": 0.0,
        "student": -1.5,
    },
    "log_employees_per_unit": 0.15,  # per unit of ln(numberofemployees / 80)
    "log_employees_center": 80,
    "industrycode": {
        6: 0.4,
        7: 0.35,
        16: 0.35,
        12: 0.3,
        1: 0.2,
        31: 0.2,
        33: -0.3,
        13: -0.5,
        14: -0.5,
        27: -0.4,
    },
    "address1_country": {"United States": 0.1, "Germany": 0.15, "United Kingdom": 0.05, "Spain": -0.2},
    "budgetstatus": {0: -0.8, 1: 0.0, 2: 0.6, 3: 1.1},
    "purchasetimeframe": {0: 0.9, 1: 0.6, 2: 0.2, 3: 0.0, 4: -0.5},
    "personal_email": -0.9,
    "log1p_inbound_emails": 1.0,  # completed incoming emails regarding the lead
    "log1p_completed_phonecalls": 0.6,  # completed calls, either direction
    "completed_appointment": 1.5,  # at least one completed appointment
    "interest_sd": 0.6,  # weight of the unobserved interest (the same latent that drives engagement)
    "noise_sd": 0.4,  # independent unobserved noise
}


def leads(
    rng: np.random.Generator,
    n: int,
    accts: pd.DataFrame,
    firms: pd.DataFrame,
    now_s: int,
    entity_offset: int,
) -> pd.DataFrame:
    """Build ``n`` lead rows: people at existing accounts, at new companies, or on their own.

    A fifth of business leads work at an existing account (so leads can be linked to accounts),
    the rest at new companies, several of them at the same company (colleagues look alike).
    """
    at_account = rng.random(n) < 0.2
    # New companies: a few get many leads, most get one (colleagues at the same firm).
    firm_weights = rng.pareto(1.5, len(firms)) + 1
    firm_row = rng.choice(len(firms), size=n, p=firm_weights / firm_weights.sum())
    acct_row = rng.integers(0, len(accts), n)
    company = firms.iloc[firm_row].reset_index(drop=True)
    acct = accts.iloc[acct_row].reset_index(drop=True)

    def firm_or_account(firm_col: str, acct_col: str) -> np.ndarray:
        return np.where(at_account, acct[acct_col].to_numpy(), company[firm_col].to_numpy())

    country = firm_or_account("country", "address1_country")
    names = people(rng, country)
    titles, bands = job_titles(rng, n)
    source = rng.choice(list(LEAD_SOURCE_WEIGHTS), size=n, p=list(LEAD_SOURCE_WEIGHTS.values()))
    # Students and web/advert leads use personal mailboxes more often.
    p_personal = 0.12 + 0.35 * (bands == "student") + 0.1 * np.isin(source, [1, 8])
    personal = rng.random(n) < p_personal
    domain = pd.Series(firm_or_account("domain", "_domain"))
    email = np.where(
        personal,
        personal_emails(rng, names["firstname"], names["lastname"], country),
        business_emails(rng, names["firstname"], names["lastname"], domain),
    )
    email = np.where(rng.random(n) < 0.03, None, email)  # some web forms did not ask
    city_index = firm_or_account("city_index", "_city_index")
    direct = phone_parts(rng, city_index)
    switchboard = rng.random(n) < 0.25
    tel = direct.copy()
    for col, firm_col, acct_col in (
        ("cc", "tel_cc", "_tel_cc"),
        ("area", "tel_area", "_tel_area"),
        ("sub", "tel_sub", "_tel_sub"),
    ):
        tel.loc[switchboard, col] = firm_or_account(firm_col, acct_col)[switchboard]
    style = pick(rng, ["international", "national"], n, [0.5, 0.5])
    has_phone = rng.random(n) < 0.85
    mobile = phone_parts(rng, city_index, mobile=True)
    employees = firm_or_account("numberofemployees", "numberofemployees").astype(float)
    employees[rng.random(n) < 0.3] = np.nan
    revenue = firm_or_account("revenue", "revenue").astype(float)
    revenue[rng.random(n) < 0.45] = np.nan
    industry = firm_or_account("industrycode", "industrycode").astype(float)
    industry[rng.random(n) < 0.15] = np.nan
    budget_status = rng.choice([0, 1, 2, 3], size=n, p=[0.3, 0.3, 0.25, 0.15]).astype(float)
    budget_status[rng.random(n) < 0.35] = np.nan
    timeframe = rng.choice([0, 1, 2, 3, 4], size=n, p=[0.08, 0.17, 0.2, 0.25, 0.3]).astype(float)
    timeframe[rng.random(n) < 0.2] = np.nan
    size_hint = np.nan_to_num(employees, nan=80.0)
    budget = np.round(np.exp(rng.normal(np.log(8_000), 0.8, n)) * (size_hint / 80.0) ** 0.3, -2)
    budget = np.where(budget_status >= 1, budget, np.nan)
    # Two years of leads, more of them recently (the business grows).
    age_days = np.where(rng.random(n) < 0.5, rng.uniform(0, 730, n), 730 * (1 - np.sqrt(rng.random(n))))
    created = now_s - age_days * SECONDS_PER_DAY - rng.uniform(0, SECONDS_PER_DAY, n)
    created = np.minimum(created, now_s - 600)
    company_name = firm_or_account("name", "name")
    company_name = np.where(personal & (rng.random(n) < 0.3), None, company_name)
    out = pd.DataFrame(
        {
            "leadid": guids(rng, n),
            "subject": pick(rng, LEAD_TOPICS, n),
            "firstname": names["firstname"].to_numpy(),
            "lastname": names["lastname"].to_numpy(),
            "companyname": company_name,
            "jobtitle": np.where(rng.random(n) < 0.9, titles, None),
            "emailaddress1": email,
            "telephone1": np.where(has_phone, format_phones(tel, style), None),
            "mobilephone": np.where(rng.random(n) < 0.35, format_phones(mobile, style), None),
            "websiteurl": np.where(
                ~personal & (rng.random(n) < 0.5), "https://www." + domain.to_numpy(), None
            ),
            "address1_line1": np.where(
                rng.random(n) < 0.6, firm_or_account("street", "address1_line1"), None
            ),
            "address1_city": firm_or_account("city", "address1_city"),
            "address1_stateorprovince": firm_or_account("state", "address1_stateorprovince"),
            "address1_postalcode": np.where(
                rng.random(n) < 0.7, firm_or_account("postcode", "address1_postalcode"), None
            ),
            "address1_country": country,
            "leadsourcecode": source,
            "industrycode": pd.array(industry, dtype="Int64"),
            "numberofemployees": pd.array(employees, dtype="Int64"),
            "revenue": revenue,
            "budgetamount": budget,
            "budgetstatus": pd.array(budget_status, dtype="Int64"),
            "purchasetimeframe": pd.array(timeframe, dtype="Int64"),
            "preferredcontactmethodcode": rng.choice([1, 2, 3], size=n, p=[0.5, 0.35, 0.15]),
            "parentaccountid": np.where(
                at_account & (rng.random(n) < 0.5), acct["accountid"].to_numpy(), None
            ),
            "_created_s": created,
            "_entity": entity_offset + np.arange(n),
            "_seniority": bands,
            "_personal": personal,
            "_account_row": np.where(at_account, acct_row, -1),
            "_base": firm_or_account("base", "_base"),
            "_suffix": firm_or_account("suffix", "_suffix"),
            "_city_index": city_index,
            "_phone_style": style,
            "_tel_cc": tel["cc"].to_numpy(),
            "_tel_area": tel["area"].to_numpy(),
            "_tel_sub": tel["sub"].to_numpy(),
            "_tel_country": direct["country"].to_numpy(),
        }
    )
    return out


def leads_from_contacts(
    rng: np.random.Generator,
    n: int,
    conts: pd.DataFrame,
    accts: pd.DataFrame,
    firms: pd.DataFrame,
    now_s: int,
) -> pd.DataFrame:
    """Leads that are existing contacts coming back (a trade-show scan, a web form, a referral).

    The lead gets its own source, budget and timeframe, but the person is the contact: same names,
    email, phone and company (the account's name), half of them entered with one to three of the
    documented variations (``duplicates.PERSON_VARIATIONS``), listed in ``_variations``.
    """
    base = leads(rng, n, accts, firms, now_s, entity_offset=0)
    business = np.flatnonzero(conts["_account_row"].to_numpy() >= 0)
    chosen = conts.iloc[rng.choice(business, size=min(n, len(business)), replace=False)].reset_index(
        drop=True
    )
    base = base.iloc[: len(chosen)].copy()
    acct = accts.iloc[chosen["_account_row"].to_numpy()].reset_index(drop=True)
    copy_cols = [
        "firstname",
        "lastname",
        "emailaddress1",
        "telephone1",
        "mobilephone",
        "address1_line1",
        "address1_city",
        "address1_stateorprovince",
        "address1_postalcode",
        "address1_country",
        "_entity",
        "_account_row",
        "_city_index",
        "_phone_style",
        "_tel_cc",
        "_tel_area",
        "_tel_sub",
        "_tel_country",
    ]
    for col in copy_cols:
        base[col] = chosen[col].to_numpy()
    # Most give the job title the contact has; the others give a new one (and its seniority).
    same_title = rng.random(len(base)) < 0.7
    base["jobtitle"] = np.where(same_title, chosen["jobtitle"].to_numpy(), base["jobtitle"])
    base["_seniority"] = np.where(same_title, chosen["_seniority"].to_numpy(), base["_seniority"])
    base["companyname"] = acct["name"].to_numpy()
    base["_base"] = acct["_base"].to_numpy()
    base["_suffix"] = acct["_suffix"].to_numpy()
    base["_personal"] = False
    base["parentaccountid"] = None
    base["_created_s"] = np.maximum(base["_created_s"].to_numpy(), chosen["_created_s"].to_numpy() + 3600)
    base["_created_s"] = np.minimum(base["_created_s"], now_s - 600)
    varied = rng.random(len(base)) < 0.5
    base["_variations"] = ""
    if varied.any():
        rows, variations = vary_people(rng, base[varied].reset_index(drop=True), "lead")
        rows["_variations"] = variations.to_numpy()
        for col in (
            "firstname",
            "lastname",
            "emailaddress1",
            "telephone1",
            "_phone_style",
            "companyname",
            "jobtitle",
            "_variations",
        ):
            base.loc[varied, col] = rows[col].to_numpy()
    return base.reset_index(drop=True)


def close_times(rng: np.random.Generator, created_s: np.ndarray, now_s: int) -> np.ndarray:
    """When each lead gets qualified or disqualified (NaN: still open at ``now``).

    Reps close a lead after an exponential delay (mean 40 days); one lead in ten is never worked and
    stays open. So recent leads are mostly open and old ones mostly closed, with a stale tail.
    """
    delay = rng.exponential(40.0, len(created_s)) * SECONDS_PER_DAY + 3600
    closes = created_s + delay
    closes[(rng.random(len(created_s)) < 0.1) | (closes >= now_s)] = np.nan
    return closes


def qualification_logit(
    leads_df: pd.DataFrame, engagement: pd.DataFrame, interest: np.ndarray, noise: np.ndarray
) -> np.ndarray:
    """The generating log-odds of qualification for each lead (``QUALIFICATION`` applied)."""
    q = QUALIFICATION

    def effect(column: str, table: dict, values=None) -> np.ndarray:
        series = leads_df[column] if values is None else values
        return pd.Series(series).map(table).astype(float).fillna(0.0).to_numpy()

    employees = leads_df["numberofemployees"].astype(float).to_numpy()
    size = np.nan_to_num(np.log(employees / q["log_employees_center"]) * q["log_employees_per_unit"])
    logit = (
        q["intercept"]
        + effect("leadsourcecode", q["leadsourcecode"])
        + effect("_seniority", q["seniority"])
        + size
        + effect("industrycode", q["industrycode"], leads_df["industrycode"].astype(float))
        + effect("address1_country", q["address1_country"])
        + effect("budgetstatus", q["budgetstatus"], leads_df["budgetstatus"].astype(float))
        + effect("purchasetimeframe", q["purchasetimeframe"], leads_df["purchasetimeframe"].astype(float))
        + q["personal_email"] * leads_df["_personal"].to_numpy(dtype=float)
        + q["log1p_inbound_emails"] * np.log1p(engagement["inbound_emails"].to_numpy())
        + q["log1p_completed_phonecalls"] * np.log1p(engagement["completed_phonecalls"].to_numpy())
        + q["completed_appointment"] * (engagement["completed_appointments"].to_numpy() > 0)
        + q["interest_sd"] * interest
        + q["noise_sd"] * noise
    )
    return logit


def decide_status(
    rng: np.random.Generator,
    leads_df: pd.DataFrame,
    engagement: pd.DataFrame,
    interest: np.ndarray,
    closes: np.ndarray,
    now_s: int,
) -> pd.DataFrame:
    """Set statecode/statuscode, rating, createdon/modifiedon from the qualification model.

    Returns the leads with the Dataverse state columns and a private ``_qualification_p``.
    """
    n = len(leads_df)
    logit = qualification_logit(leads_df, engagement, interest, rng.standard_normal(n))
    prob = 1.0 / (1.0 + np.exp(-logit))
    qualified = rng.random(n) < prob
    closed = ~np.isnan(closes)
    touched = engagement["completed_total"].to_numpy() > 0
    replied = (engagement["inbound_emails"].to_numpy() + engagement["completed_phonecalls"].to_numpy()) > 0
    lost_reason = rng.choice([4, 6, 7], size=n, p=[0.5, 0.38, 0.12])
    cannot_contact = ~replied & (rng.random(n) < 0.7)
    state = np.where(closed, np.where(qualified, 1, 2), 0)
    status = np.select(
        [state == 1, (state == 2) & cannot_contact, state == 2, touched],
        [3, 5, lost_reason, 2],
        1,
    )
    # The rep's rating: what they can see (fit and responsiveness), blurred.
    seen = logit + rng.normal(0, 1.0, n)
    rating = np.select([seen > np.quantile(seen, 0.75), seen > np.quantile(seen, 0.35)], [1, 2], 3)
    out = leads_df.copy()
    out["leadqualitycode"] = pd.array(np.where(rng.random(n) < 0.8, rating, np.nan), dtype="Int64")
    out["statecode"] = state
    out["statuscode"] = status
    last_touch = engagement["last_activity_s"].to_numpy()
    modified = np.where(
        closed, closes, np.fmax(out["_created_s"].to_numpy(), np.nan_to_num(last_touch, nan=0.0))
    )
    out["_close_s"] = closes
    out["_modified_s"] = np.minimum(modified, now_s)
    out["_qualification_p"] = prob
    return out
