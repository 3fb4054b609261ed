"""Realistic, deterministic seed data for the sandbox, with the ground truth to grade jobs against.

``generate(size, seed, now=...)`` returns :class:`SeedData`: Dataverse tables as DataFrames (columns by
attribute logical name; choice columns as option values; money as floats with two decimals; times as
UTC timestamps; DateOnly columns as UTC midnight), the ground truth that is never served (planted
duplicates, leads that are existing contacts, each customer's latent purchase parameters), and the
generating parameters. The same ``size``, ``seed``, ``scale`` and ``now`` always give the same data.

What is planted and why is described in ``docs/sandbox-data.md``. The pieces live beside this module:
``crm`` (companies and people), ``leads`` (leads and their qualification model), ``activities``
(engagement), ``duplicates`` (duplicates and look-alikes), ``orders`` (BG/NBD orders, lines,
opportunities), ``org`` (users, teams, the queue and who owns each lead and activity), ``labels``
(choice labels), ``vocab`` and ``common`` (vocabularies, helpers).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from connector.sandbox.schema import CURRENCY_ID, PRICE_LEVEL_ID
from connector.sandbox.seed import activities as seed_activities
from connector.sandbox.seed import leads as seed_leads
from connector.sandbox.seed import orders as seed_orders
from connector.sandbox.seed import org as seed_org
from connector.sandbox.seed.common import SECONDS_PER_DAY, epoch_seconds, stream, to_timestamps
from connector.sandbox.seed.crm import accounts, companies, contacts
from connector.sandbox.seed.duplicates import (
    ACCOUNT_VARIATIONS,
    PERSON_VARIATIONS,
    distinct_people,
    namesakes,
    plant,
    vary_accounts,
    vary_people,
)
from connector.sandbox.seed.vocab import JOB_TITLES
from core.errors import ConfigError

__all__ = [
    "SIZES",
    "TABLES",
    "SeedData",
    "generate",
    "write_ground_truth",
]

TABLES = (
    "lead",
    "account",
    "contact",
    "salesorder",
    "salesorderdetail",
    "opportunity",
    "email",
    "phonecall",
    "appointment",
)

# Target record counts per size (duplicates included). Order lines, opportunities and activities
# follow from these.
SIZES: dict[str, dict[str, int]] = {
    "small": {"lead": 5_000, "account": 1_000, "contact": 2_000, "salesorder": 15_000},
    "medium": {"lead": 50_000, "account": 10_000, "contact": 20_000, "salesorder": 150_000},
    "large": {"lead": 500_000, "account": 100_000, "contact": 200_000, "salesorder": 1_500_000},
}
DUPLICATE_RATES = {"lead": 0.04, "contact": 0.03, "account": 0.03}  # duplicates per original record
LEADS_FROM_CONTACTS_SHARE = 0.03  # share of leads that are existing contacts
NAMESAKE_SHARE = 0.01  # share of leads/contacts renamed after an unrelated record (look-alikes)
EXTRA_OPPORTUNITIES_PER_ACCOUNT = 0.25  # opportunities raised on customer accounts without a lead


@dataclass
class SeedData:
    """Generated tables, their ground truth and the parameters that produced them.

    Attributes:
        tables: Dataverse logical name -> DataFrame with attribute logical names as columns.
        ground_truth: ``duplicates`` (``table``, ``record_id``, ``cluster_id``, ``is_original``,
            ``variations``), ``lead_contact_matches`` (``leadid``, ``contactid``, ``variations``) and
            ``customers`` (each customer's latent BG/NBD and Gamma-Gamma parameters and outcome) and
            ``leads`` (each lead's generating qualification probability and latent interest).
        parameters: JSON-serialisable generating parameters (see ``docs/sandbox-data.md``).
    """

    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    ground_truth: dict[str, pd.DataFrame] = field(default_factory=dict)
    parameters: dict = field(default_factory=dict)


def _resolve_now(now: datetime | None) -> datetime:
    if now is None:
        today = datetime.now(UTC)
        return datetime(today.year, today.month, today.day, tzinfo=UTC)
    if now.tzinfo is None:
        return now.replace(tzinfo=UTC)
    return now.astimezone(UTC)


def _counts(size: str, seed: int, scale: float) -> dict[str, int]:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"Sandbox seed must be a whole number >= 0, got {seed!r}.")
    if size not in SIZES:
        raise ConfigError(f"Unknown sandbox size {size!r}. Use one of: {', '.join(SIZES)}.")
    if not (isinstance(scale, int | float) and 0 < scale <= 10):
        raise ConfigError(f"Sandbox seed scale must be a number in (0, 10], got {scale!r}.")
    return {table: max(round(count * scale), 20) for table, count in SIZES[size].items()}


def generate(
    size: str = "small", seed: int = 0, *, now: datetime | None = None, scale: float = 1.0
) -> SeedData:
    """Generate the sandbox's tables, ground truth and parameters.

    Args:
        size: ``small`` (5,000 leads, 1,000 accounts, 2,000 contacts, 15,000 orders), ``medium`` (x10)
            or ``large`` (x100).
        seed: the random seed; the same seed (and ``now`` and ``scale``) gives identical frames.
        now: the instant the data is "as of" (timestamps all fall before it, except upcoming
            activities and estimated close dates). Defaults to today's UTC midnight.
        scale: multiplies every target count (tests use 0.2 for a fast small set).

    Returns:
        The generated :class:`SeedData`.

    Raises:
        ConfigError: an unknown size, a negative or non-integer seed, or a scale outside (0, 10].
    """
    now_dt = _resolve_now(now)
    now_s = epoch_seconds(now_dt)
    counts = _counts(size, seed, scale)

    people = _people(seed, counts, now_s)
    acc, con, ld_all = people["account"], people["contact"], people["lead"]
    ld_all, interest, activity = _engagement(seed, ld_all, now_s)
    # The one currency and price list the server serves (reference §8.7), so lookups resolve.
    currency_id, pricelevel_id = CURRENCY_ID, PRICE_LEVEL_ID
    truth_customers, salesorder, detail, k = _orders(
        seed, acc, con, counts, now_s, currency_id, pricelevel_id
    )
    opportunity = _opportunities(seed, ld_all, acc, now_s, currency_id)
    from_lead = opportunity["originatingleadid"].notna()
    qualifying = pd.Series(
        opportunity.loc[from_lead, "opportunityid"].to_numpy(),
        index=opportunity.loc[from_lead, "originatingleadid"].to_numpy(),
    )
    ld_all["qualifyingopportunityid"] = ld_all["leadid"].map(qualifying).astype(object)
    ld_all["qualifyingopportunityid"] = ld_all["qualifyingopportunityid"].where(
        ld_all["qualifyingopportunityid"].notna(), None
    )
    acc_all, con_all, n_con = people["account_all"], people["contact_all"], len(con)

    ground_truth = {
        "duplicates": _duplicate_truth(
            {"account": (acc_all, "accountid"), "contact": (con_all, "contactid"), "lead": (ld_all, "leadid")}
        ),
        "lead_contact_matches": _lead_contact_truth(ld_all, con_all, n_con),
        "customers": truth_customers,
        "leads": pd.DataFrame(
            {
                "leadid": ld_all["leadid"].to_numpy(),
                "qualification_probability": ld_all["_qualification_p"].to_numpy(),
                "interest": interest,
            }
        ),
    }
    tables = {
        "lead": _finish_lead(ld_all, now_s, currency_id),
        "account": _finish_account(stream(seed, "finish-accounts"), acc_all, con, now_s, currency_id),
        "contact": _finish_contact(stream(seed, "finish-contacts"), con_all, now_s),
        "salesorder": salesorder,
        "salesorderdetail": detail,
        "opportunity": opportunity,
        **activity,
    }
    seed_org.add_organisation(seed, tables, ground_truth, pd.Timestamp(now_dt))
    parameters = _parameters(
        size,
        seed,
        scale,
        now_dt,
        counts,
        tables,
        ground_truth,
        currency_id,
        pricelevel_id,
        people["namesakes"],
        k,
    )
    return SeedData(tables=tables, ground_truth=ground_truth, parameters=parameters)


def _people(seed: int, counts: dict[str, int], now_s: int) -> dict:
    """Accounts, contacts and leads with their duplicates, look-alikes and returning contacts.

    Returns ``account``/``contact`` (originals, which own orders and opportunities),
    ``account_all``/``contact_all``/``lead`` (duplicates included) and the ``namesakes`` count.
    """
    n_acc = round(counts["account"] / (1 + DUPLICATE_RATES["account"]))
    n_con = round(counts["contact"] / (1 + DUPLICATE_RATES["contact"]))
    n_lead_all = round(counts["lead"] / (1 + DUPLICATE_RATES["lead"]))
    n_from_contacts = round(LEADS_FROM_CONTACTS_SHARE * n_lead_all)
    n_lead = n_lead_all - n_from_contacts
    n_firms = max(round(0.6 * n_lead), 1)

    firms = companies(stream(seed, "companies"), n_acc + n_firms)
    acc = accounts(stream(seed, "accounts"), firms.iloc[:n_acc].reset_index(drop=True), now_s)
    lead_firms = firms.iloc[n_acc:].reset_index(drop=True)
    con = contacts(stream(seed, "contacts"), acc, n_con, now_s, entity_offset=0)
    con, contact_namesakes = namesakes(stream(seed, "contact-namesakes"), con, NAMESAKE_SHARE)
    ld = seed_leads.leads(stream(seed, "leads"), n_lead, acc, lead_firms, now_s, entity_offset=n_con)
    # Rename look-alikes before the returning contacts join, so those keep the contact's name.
    ld, lead_namesakes = namesakes(stream(seed, "lead-namesakes"), ld, NAMESAKE_SHARE)
    con, ld = distinct_people(stream(seed, "distinct-people"), con, ld)
    ld["_variations"] = ""
    returning = seed_leads.leads_from_contacts(
        stream(seed, "leads-from-contacts"), n_from_contacts, con, acc, lead_firms, now_s
    )
    ld = pd.concat([ld, returning], ignore_index=True)
    # How each lead differs from the contact it is (kept through duplication, see _lead_contact_truth).
    ld["_match_variations"] = ld["_variations"]
    ld["_variations"] = ""

    dup_rng = stream(seed, "duplicates")
    acc_dups = plant(dup_rng, acc, DUPLICATE_RATES["account"], "accountid", vary_accounts, now_s)
    acc_dups["accountnumber"] = None  # typed in again by hand: the account number is not re-used
    con_dups = plant(
        dup_rng,
        con,
        DUPLICATE_RATES["contact"],
        "contactid",
        lambda r, rows: vary_people(r, rows, "contact"),
        now_s,
    )
    lead_dups = plant(
        dup_rng, ld, DUPLICATE_RATES["lead"], "leadid", lambda r, rows: vary_people(r, rows, "lead"), now_s
    )
    ld_all = _with_duplicates(ld, lead_dups)
    # A duplicate lead is its own record with its own history: a fresh source half the time.
    fresh = ld_all["_original_id"].notna().to_numpy() & (dup_rng.random(len(ld_all)) < 0.5)
    ld_all.loc[fresh, "leadsourcecode"] = dup_rng.choice(
        list(seed_leads.LEAD_SOURCE_WEIGHTS),
        size=int(fresh.sum()),
        p=list(seed_leads.LEAD_SOURCE_WEIGHTS.values()),
    )
    return {
        "account": acc,
        "contact": con,
        "account_all": _with_duplicates(acc, acc_dups),
        "contact_all": _with_duplicates(con, con_dups),
        "lead": ld_all,
        "namesakes": contact_namesakes + lead_namesakes,
    }


def _engagement(seed: int, ld_all: pd.DataFrame, now_s: int) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """Activities on every lead, then each lead's status (which depends on them)."""
    eng_rng = stream(seed, "engagement")
    created = ld_all["_created_s"].to_numpy()
    closes = seed_leads.close_times(eng_rng, created, now_s)
    window_end = np.where(np.isnan(closes), now_s, closes)
    interest, engagement, acts = seed_activities.simulate(
        eng_rng, created, window_end, now_s, np.isnan(closes)
    )
    ld_all = seed_leads.decide_status(
        stream(seed, "qualification"), ld_all, engagement, interest, closes, now_s
    )
    activity = seed_activities.activity_tables(stream(seed, "activities"), acts, ld_all, now_s)
    return ld_all, interest, activity


def _orders(
    seed: int,
    acc: pd.DataFrame,
    con: pd.DataFrame,
    counts: dict[str, int],
    now_s: int,
    currency_id: str,
    pricelevel_id: str,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, int]:
    """BG/NBD customers and their orders: (customer truth, salesorder, lines, number of customers)."""
    ord_rng = stream(seed, "orders")
    pool = _customer_pool(ord_rng, acc, con)
    noise_total = sum(seed_orders.NOISE_RATES.values())
    target = counts["salesorder"] / (1 + noise_total)
    candidates = seed_orders.customer_births(ord_rng, pool, now_s)
    truth_all, purchases_all = seed_orders.simulate_purchases(ord_rng, candidates)
    truth_customers, purchases, k = seed_orders.take_customers(truth_all, purchases_all, round(target))
    customers = candidates.iloc[:k].reset_index(drop=True)
    noise = seed_orders.noise_orders(ord_rng, customers, purchases, now_s)
    salesorder, detail = seed_orders.order_tables(
        ord_rng, customers, purchases, noise, now_s, currency_id, pricelevel_id
    )
    return truth_customers, salesorder, detail, k


def _opportunities(
    seed: int, ld_all: pd.DataFrame, acc: pd.DataFrame, now_s: int, currency_id: str
) -> pd.DataFrame:
    """Opportunities of qualified leads at accounts, and some raised directly on buying accounts."""
    opp_rng = stream(seed, "opportunities")
    qualified_at_account = ld_all[(ld_all["statecode"] == 1) & (ld_all["_account_row"] >= 0)]
    buying = np.flatnonzero(acc["customertypecode"].to_numpy() != 8)
    extra = opp_rng.choice(buying, size=round(EXTRA_OPPORTUNITIES_PER_ACCOUNT * len(buying)), replace=False)
    return seed_orders.opportunities(opp_rng, qualified_at_account, acc, extra, now_s, currency_id)


def _with_duplicates(originals: pd.DataFrame, dups: pd.DataFrame) -> pd.DataFrame:
    """Originals then their duplicates, with ``_variations``/``_original_id`` on every row."""
    originals = originals.copy()
    originals["_variations"] = ""
    originals["_original_id"] = None
    return pd.concat([originals, dups[originals.columns]], ignore_index=True)


def _customer_pool(rng: np.random.Generator, acc: pd.DataFrame, con: pd.DataFrame) -> pd.DataFrame:
    """Who may buy, in the order customers are taken: buying accounts, individuals, then employees."""
    buying = acc[acc["customertypecode"] != 8]
    individual = con[con["parentcustomerid"].isna()]
    employed = con[con["parentcustomerid"].notna()]
    parts = [
        pd.DataFrame(
            {
                "customerid": frame[idcol].to_numpy(),
                "customeridtype": kind,
                "created_s": frame["_created_s"].to_numpy(),
            }
        ).iloc[rng.permutation(len(frame))]
        for frame, idcol, kind in (
            (buying, "accountid", "account"),
            (individual, "contactid", "contact"),
            (employed, "contactid", "contact"),
        )
    ]
    return pd.concat(parts, ignore_index=True)


def _duplicate_truth(tables: dict[str, tuple[pd.DataFrame, str]]) -> pd.DataFrame:
    parts = []
    next_cluster = 0
    for table, (frame, idcol) in tables.items():
        size = frame.groupby("_entity")["_entity"].transform("size")
        members = frame[size.to_numpy() >= 2]
        codes, _ = pd.factorize(members["_entity"], sort=True)
        parts.append(
            pd.DataFrame(
                {
                    "table": table,
                    "record_id": members[idcol].to_numpy(),
                    "cluster_id": codes + next_cluster,
                    "is_original": members["_original_id"].isna().to_numpy(),
                    "variations": members["_variations"].to_numpy(),
                }
            )
        )
        next_cluster += int(codes.max()) + 1 if len(codes) else 0
    out = pd.concat(parts, ignore_index=True)
    return out.sort_values(["cluster_id", "is_original"], ascending=[True, False], kind="stable").reset_index(
        drop=True
    )


def _lead_contact_truth(ld_all: pd.DataFrame, con_all: pd.DataFrame, n_contacts: int) -> pd.DataFrame:
    """Every (lead, contact) pair describing the same person, duplicates of either included.

    ``variations`` lists how the lead was entered differently from the contact: the variations of
    the returning lead, then (for a duplicate of it) the duplicate's own.
    """
    leads = ld_all[ld_all["_entity"] < n_contacts]
    variations = (leads["_match_variations"] + ";" + leads["_variations"]).str.strip(";")
    leads = pd.DataFrame({"leadid": leads["leadid"], "_entity": leads["_entity"], "variations": variations})
    joined = leads.merge(con_all[["contactid", "_entity"]], on="_entity", how="inner")
    return joined[["leadid", "contactid", "variations"]].reset_index(drop=True)


def _fullname(frame: pd.DataFrame) -> np.ndarray:
    full = (frame["firstname"].fillna("") + " " + frame["lastname"].fillna("")).str.strip()
    return full.where(full != "", None).to_numpy(dtype=object)


def _public(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop the private ``_`` columns; text and lookup columns are objects with None for missing.

    Not ``astype(str)``: pandas 2 turns a missing value into the text "None" there and pandas 3
    keeps it missing, so one seed gave two data sets (and "None" looked like a shared company).
    """
    out = frame[[c for c in frame.columns if not c.startswith("_")]].reset_index(drop=True)
    for column in out.columns[[dtype in ("object", "str", "string") for dtype in out.dtypes.astype(str)]]:
        values = out[column].astype(object)
        out[column] = values.where(values.notna(), None)
    return out


def _finish_lead(ld: pd.DataFrame, now_s: int, currency_id: str) -> pd.DataFrame:
    out = ld.copy()
    out.insert(out.columns.get_loc("firstname"), "fullname", _fullname(out))
    out["transactioncurrencyid"] = currency_id
    out["createdon"] = to_timestamps(out["_created_s"].to_numpy())
    out["modifiedon"] = to_timestamps(np.maximum(out["_modified_s"].to_numpy(), out["_created_s"].to_numpy()))
    return _public(out.sort_values("_created_s", kind="stable"))


def _finish_account(
    rng: np.random.Generator, acc_all: pd.DataFrame, con: pd.DataFrame, now_s: int, currency_id: str
) -> pd.DataFrame:
    out = acc_all.copy()
    # The primary contact: the first contact entered at the account.
    firsts = (
        con[con["_account_row"] >= 0].sort_values("_created_s", kind="stable").drop_duplicates("_account_row")
    )
    primary = pd.Series(firsts["contactid"].to_numpy(), index=firsts["_account_row"].to_numpy())
    row = pd.Series(np.arange(len(out)))
    is_original = out["_original_id"].isna().to_numpy()
    out["primarycontactid"] = np.where(is_original, row.map(primary).to_numpy(dtype=object), None)
    out["primarycontactid"] = out["primarycontactid"].where(out["primarycontactid"].notna(), None)
    inactive = rng.random(len(out)) < 0.03
    out["statecode"] = np.where(inactive, 1, 0)
    out["statuscode"] = np.where(inactive, 2, 1)
    out["transactioncurrencyid"] = currency_id
    return _stamp(rng, out, now_s)


def _finish_contact(rng: np.random.Generator, con_all: pd.DataFrame, now_s: int) -> pd.DataFrame:
    out = con_all.copy()
    out.insert(out.columns.get_loc("firstname"), "fullname", _fullname(out))
    inactive = rng.random(len(out)) < 0.03
    out["statecode"] = np.where(inactive, 1, 0)
    out["statuscode"] = np.where(inactive, 2, 1)
    return _stamp(rng, out, now_s)


def _stamp(rng: np.random.Generator, out: pd.DataFrame, now_s: int) -> pd.DataFrame:
    created = out["_created_s"].to_numpy()
    modified = np.minimum(created + rng.exponential(120, len(out)) * SECONDS_PER_DAY, now_s)
    out["createdon"] = to_timestamps(created)
    out["modifiedon"] = to_timestamps(np.maximum(modified, created))
    return _public(out.sort_values("_created_s", kind="stable"))


def _jsonable(value):
    """Plain Python values (numpy scalars and int keys made JSON-friendly)."""
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _parameters(
    size: str,
    seed: int,
    scale: float,
    now_dt: datetime,
    targets: dict[str, int],
    tables: dict[str, pd.DataFrame],
    truth: dict[str, pd.DataFrame],
    currency_id: str,
    pricelevel_id: str,
    namesake_count: int,
    customer_count: int,
) -> dict:
    dup = truth["duplicates"]
    params = {
        "seed": seed,
        "size": size,
        "scale": scale,
        "now": now_dt.isoformat().replace("+00:00", "Z"),
        "targets": targets,
        "counts": {name: len(frame) for name, frame in tables.items()},
        "time_unit": "week",
        "bgnbd": dict(seed_orders.BGNBD),
        "gamma_gamma": dict(seed_orders.GAMMA_GAMMA),
        "process_orders": {
            "table": "salesorder",
            "statecode": [3, 4],
            "totalamount": "> 0",
            "date_column": "createdon",
            "description": "The BG/NBD purchases are exactly the salesorders with statecode 3 or 4 and a "
            "positive "
            "totalamount; each customer's first such order is its birth.",
        },
        "order_noise_rates": dict(seed_orders.NOISE_RATES),
        "customers": customer_count,
        "currency": {
            "transactioncurrencyid": currency_id,
            "isocurrencycode": "USD",
            "currencyname": "US Dollar",
            "currencysymbol": "$",
        },
        "pricelevel": {"pricelevelid": pricelevel_id, "name": "Default Price List"},
        "lead_qualification": seed_leads.QUALIFICATION,
        "lead_sources": seed_leads.LEAD_SOURCE_WEIGHTS,
        "job_title_seniority": JOB_TITLES,
        "activities": {
            "kinds": {
                k: {"table": t, "outgoing": o, "base": b, "interest_loading": w}
                for k, (t, o, b, w) in seed_activities.ACTIVITY_KINDS.items()
            },
            "decay_days": seed_activities.DECAY_DAYS,
            "cancelled_share": seed_activities.CANCELLED_SHARE,
            "scheduled_share_of_open_leads": seed_activities.SCHEDULED_SHARE,
        },
        "duplicates": {
            "rates": DUPLICATE_RATES,
            "person_variations": list(PERSON_VARIATIONS),
            "account_variations": list(ACCOUNT_VARIATIONS),
            "records_in_clusters": dup.groupby("table").size().to_dict(),
            "clusters": dup.groupby("table")["cluster_id"].nunique().to_dict(),
            "leads_from_contacts": len(truth["lead_contact_matches"]["leadid"].unique()),
            "namesakes": namesake_count,
        },
    }
    return _jsonable(params)


def write_ground_truth(seed_data: SeedData, directory: str | Path) -> Path:
    """Write each ground-truth frame as ``<name>.csv`` and the parameters as ``parameters.json``.

    Args:
        seed_data: what :func:`generate` returned.
        directory: where to write; created if missing.

    Returns:
        The directory written to.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in seed_data.ground_truth.items():
        frame.to_csv(out / f"{name}.csv", index=False, date_format="%Y-%m-%dT%H:%M:%SZ")
    (out / "parameters.json").write_text(
        json.dumps(seed_data.parameters, indent=2, ensure_ascii=False) + "\n"
    )
    return out
