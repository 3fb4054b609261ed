"""Orders, order lines and opportunities for the seed data.

Repeat purchasing follows BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy
way"). Time is in weeks. Each customer is born (first purchase) at some point in the last years;
while alive, repeat purchases arrive as a Poisson process with rate ``lambda ~ Gamma(r, rate=alpha)``;
after each *repeat* purchase the customer drops out for good with probability ``p ~ Beta(a, b)``.

Spend per order follows the Gamma-Gamma model (Fader, Hardie & Lee 2005, "RFM and CLV"; Colombo &
Jiang 1999): per customer ``nu ~ Gamma(q, rate=v)``, each order's value ``z ~ Gamma(p, rate=nu)``,
so the mean order value is ``p * v / (q - 1)``.

The orders of that process are exactly the salesorders with ``statecode`` 3 (Fulfilled) or 4
(Invoiced) and a positive ``totalamount``. Everything else is deliberate noise a CLV job has to
filter out: cancelled orders (statecode 2), open and submitted orders (statecode 0/1, recent), $0
orders (fulfilled, total 0) and returns (negative total, named "Return of ORD-...").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import hyp2f1

from connector.sandbox.seed.common import (
    SECONDS_PER_DAY,
    SECONDS_PER_WEEK,
    business_time,
    guids,
    pick,
    to_dates,
    to_timestamps,
)
from connector.sandbox.seed.vocab import PRODUCTS

# CDNOW-like shape (Fader, Hardie & Lee 2005 fit r=0.24, alpha=4.41, a=0.79, b=2.43), with a higher
# purchase rate as befits business customers over several years.
BGNBD = {"r": 0.75, "alpha": 4.0, "a": 0.8, "b": 2.5}
# CDNOW's Gamma-Gamma fit is p=6.25, q=3.74, v=15.44 (dollars); v scaled to B2B order values.
GAMMA_GAMMA = {"p": 6.0, "q": 4.0, "v": 1200.0}
# Noise orders, relative to the number of process orders.
NOISE_RATES = {"cancelled": 0.04, "zero": 0.015, "return": 0.02, "open": 0.01}
BIRTH_DELAY_DAYS = 30.0  # mean delay from a customer record's creation to its first order


def expected_repeat_purchases(t: np.ndarray, r: float, alpha: float, a: float, b: float) -> np.ndarray:
    """E[X(t)]: expected repeat purchases in ``(0, t]`` under BG/NBD (Fader et al. 2005, eq. 9)."""
    t = np.asarray(t, dtype=float)
    ratio = alpha / (alpha + t)
    return (a + b - 1) / (a - 1) * (1 - ratio**r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))


def customer_births(rng: np.random.Generator, pool: pd.DataFrame, now_s: int) -> pd.DataFrame:
    """Give each candidate customer a birth (first purchase) shortly after its record was created.

    Returns the pool with ``birth_s`` and ``T`` (weeks of observation from birth to ``now``).
    """
    birth = pool["created_s"].to_numpy() + rng.exponential(BIRTH_DELAY_DAYS, len(pool)) * SECONDS_PER_DAY
    birth = business_time(rng, np.minimum(birth, now_s - rng.uniform(1, 60, len(pool)) * SECONDS_PER_DAY))
    out = pool.copy()
    out["birth_s"] = birth
    out["T"] = (now_s - birth) / SECONDS_PER_WEEK
    return out.reset_index(drop=True)


def take_customers(
    truth: pd.DataFrame, purchases: pd.DataFrame, target_process_orders: int
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Keep the first customers of the pool until their process orders reach the target.

    The pool's order is random and fixed before any purchase is drawn, so keeping a prefix selects
    customers independently of their behaviour (only the last one is chosen by the stopping rule);
    it makes the order count exact instead of varying with a few very heavy buyers.

    Returns:
        ``(truth, purchases, k)`` restricted to the first ``k`` customers.
    """
    per_customer = truth["x"].to_numpy() + 1
    k = int(min(np.searchsorted(np.cumsum(per_customer), target_process_orders) + 1, len(truth)))
    kept = purchases[purchases["customer_row"].to_numpy() < k].reset_index(drop=True)
    return truth.iloc[:k].reset_index(drop=True), kept, k


def simulate_purchases(
    rng: np.random.Generator, customers: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw each customer's latent parameters and purchase times under BG/NBD and Gamma-Gamma.

    Returns:
        ``(truth, purchases)``: per customer ``lambda``, ``p``, ``nu``, ``x`` (repeat purchases),
        ``t_x`` (weeks from birth to the last purchase), ``alive`` (not dropped out by ``now``);
        and one row per purchase with ``customer_row``, ``time_s`` and ``amount_cents``.
    """
    n = len(customers)
    g = BGNBD
    lam = rng.gamma(g["r"], 1.0 / g["alpha"], n)
    p = rng.beta(g["a"], g["b"], n)
    T = customers["T"].to_numpy()
    arrivals = rng.poisson(lam * T)
    max_repeats = rng.geometric(p)  # drops out right after this many repeat purchases
    x = np.minimum(arrivals, max_repeats)
    # Given N arrivals in (0, T], their times are N sorted uniforms; keep the first x of them.
    rows = np.repeat(np.arange(n), arrivals)
    times = rng.random(len(rows)) * T[rows]
    order = np.lexsort((times, rows))
    rows, times = rows[order], times[order]
    rank = np.arange(len(rows)) - np.repeat(np.cumsum(arrivals) - arrivals, arrivals)
    keep = rank < x[rows]
    rows, times = rows[keep], times[keep]
    t_x = np.zeros(n)
    np.maximum.at(t_x, rows, times)

    gg = GAMMA_GAMMA
    nu = rng.gamma(gg["q"], 1.0 / gg["v"], n)
    all_rows = np.concatenate([np.arange(n), rows])
    all_weeks = np.concatenate([np.zeros(n), times])
    value = rng.gamma(gg["p"], 1.0 / nu[all_rows])
    cents = np.maximum(np.round(value * 100), 100).astype(np.int64)  # nobody orders for less than $1
    purchases = pd.DataFrame(
        {
            "customer_row": all_rows,
            "time_s": customers["birth_s"].to_numpy()[all_rows] + all_weeks * SECONDS_PER_WEEK,
            "amount_cents": cents,
            "kind": "process",
        }
    )
    truth = pd.DataFrame(
        {
            "customerid": customers["customerid"].to_numpy(),
            "customeridtype": customers["customeridtype"].to_numpy(),
            "birth": to_timestamps(customers["birth_s"].to_numpy()),
            "T_weeks": T,
            "lambda": lam,
            "p": p,
            "nu": nu,
            "x": x,
            "t_x_weeks": t_x,
            "alive": max_repeats > arrivals,
        }
    )
    return truth, purchases


def noise_orders(
    rng: np.random.Generator, customers: pd.DataFrame, purchases: pd.DataFrame, now_s: int
) -> pd.DataFrame:
    """Cancelled, open, $0 and returned orders around the process orders."""
    n_proc = len(purchases)
    n_cust = len(customers)
    birth = customers["birth_s"].to_numpy()
    parts = []
    for kind in ("cancelled", "zero", "open"):
        k = round(NOISE_RATES[kind] * n_proc)
        who = rng.integers(0, n_cust, k)
        if kind == "open":  # still being worked on: placed in the last month
            when = now_s - rng.uniform(0.1, 30, k) * SECONDS_PER_DAY
            when = np.maximum(when, birth[who] + 3600)
        else:
            when = birth[who] + rng.random(k) * (now_s - 3600 - birth[who])
        amount = np.zeros(k, dtype=np.int64) if kind == "zero" else pick_amounts(rng, purchases, k)
        parts.append(
            pd.DataFrame(
                {
                    "customer_row": who,
                    "time_s": business_time(rng, when),
                    "amount_cents": amount,
                    "kind": kind,
                }
            )
        )
    k = round(NOISE_RATES["return"] * n_proc)
    returned = rng.choice(n_proc, size=k, replace=False)
    orig = purchases.iloc[returned]
    when = np.minimum(orig["time_s"].to_numpy() + rng.uniform(3, 60, k) * SECONDS_PER_DAY, now_s - 600)
    share = np.where(rng.random(k) < 0.5, 1.0, rng.uniform(0.1, 0.9, k))
    amount = -np.maximum(np.round(orig["amount_cents"].to_numpy() * share), 1).astype(np.int64)
    parts.append(
        pd.DataFrame(
            {
                "customer_row": orig["customer_row"].to_numpy(),
                "time_s": when,
                "amount_cents": amount,
                "kind": "return",
                "return_of": returned,
            }
        )
    )
    return pd.concat(parts, ignore_index=True)


def pick_amounts(rng: np.random.Generator, purchases: pd.DataFrame, k: int) -> np.ndarray:
    """Order values like the real ones (resampled), for orders outside the process."""
    return purchases["amount_cents"].to_numpy()[rng.integers(0, len(purchases), k)]


def order_tables(
    rng: np.random.Generator,
    customers: pd.DataFrame,
    purchases: pd.DataFrame,
    noise: pd.DataFrame,
    now_s: int,
    currency_id: str,
    pricelevel_id: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Build the ``salesorder`` and ``salesorderdetail`` tables from purchases and noise orders."""
    orders = pd.concat([purchases.assign(return_of=-1), noise], ignore_index=True)
    orders["return_of"] = orders["return_of"].fillna(-1).astype(np.int64)
    n = len(orders)
    ids = guids(rng, n)
    # Order numbers follow entry order, as Dataverse's auto-numbering does.
    rank = np.empty(n, dtype=np.int64)
    rank[np.lexsort((np.arange(n), orders["time_s"].to_numpy()))] = np.arange(n)
    width = max(6, len(str(n)))
    number = pd.Series(rank + 1).astype(str).str.zfill(width).radd("ORD-").to_numpy(dtype=object)
    kind = orders["kind"].to_numpy()
    time_s = orders["time_s"].to_numpy()
    age_days = (now_s - time_s) / SECONDS_PER_DAY
    u = rng.random(n)
    invoiced = u < np.where(age_days > 30, 0.8, 0.3)
    partial = (~invoiced) & (rng.random(n) < 0.03)
    open_state = rng.choice([0, 0, 1], size=n)
    open_status = np.where(open_state == 1, 3, rng.choice([1, 2], size=n, p=[0.7, 0.3]))
    state = np.select(
        [kind == "process", kind == "cancelled", kind == "zero", kind == "return"],
        [np.where(invoiced, 4, 3), 2, 3, np.where(u < 0.7, 4, 3)],
        open_state,
    )
    status = np.select(
        [state == 4, state == 3, state == 2],
        [100003, np.where(partial & (kind == "process"), 100002, 100001), 4],
        open_status,
    )
    fulfilled_s = np.where(
        np.isin(state, [3, 4]), np.minimum(time_s + rng.uniform(1, 10, n) * SECONDS_PER_DAY, now_s), np.nan
    )
    submitted = state != 0
    modified_s = np.where(
        np.isin(state, [3, 4]),
        np.minimum(fulfilled_s + np.where(state == 4, rng.uniform(0, 20, n), 0) * SECONDS_PER_DAY, now_s),
        np.minimum(time_s + rng.uniform(0, 5, n) * SECONDS_PER_DAY, now_s),
    )
    names = np.where(
        kind == "return",
        "Return of " + number[np.maximum(orders["return_of"].to_numpy(), 0)],
        "Order " + number,
    )
    descriptions = np.select(
        [kind == "return", kind == "zero"],
        [
            "Customer return against " + number[np.maximum(orders["return_of"].to_numpy(), 0)],
            "No-charge replacement under warranty",
        ],
        None,
    )
    cust = customers.iloc[orders["customer_row"].to_numpy()]
    amount = orders["amount_cents"].to_numpy() / 100.0
    salesorder = pd.DataFrame(
        {
            "salesorderid": ids,
            "name": names,
            "ordernumber": number,
            "customerid": cust["customerid"].to_numpy(),
            "customeridtype": cust["customeridtype"].to_numpy(),
            "description": descriptions,
            "totalamount": amount,
            "totallineitemamount": amount,
            "discountamount": 0.0,
            "freightamount": 0.0,
            "totaltax": 0.0,
            "submitdate": to_dates(np.where(submitted, time_s, np.nan)),
            "datefulfilled": to_dates(fulfilled_s),
            "statecode": state,
            "statuscode": status,
            "paymenttermscode": pd.array(
                rng.choice([1, 2, 3, 4], size=n, p=[0.6, 0.1, 0.2, 0.1]), dtype="Int64"
            ),
            "transactioncurrencyid": currency_id,
            "pricelevelid": pricelevel_id,
            "createdon": to_timestamps(time_s),
            "modifiedon": to_timestamps(np.maximum(modified_s, time_s)),
        }
    )
    detail = order_lines(rng, salesorder, orders, currency_id)
    order_sort = np.lexsort((number, time_s))
    return salesorder.iloc[order_sort].reset_index(drop=True), detail


def order_lines(
    rng: np.random.Generator, salesorder: pd.DataFrame, orders: pd.DataFrame, currency_id: str
) -> pd.DataFrame:
    """Write-in order lines whose extended amounts sum exactly (to the cent) to each order's total."""
    kind = orders["kind"].to_numpy()
    total = orders["amount_cents"].to_numpy()
    n = len(total)
    lines = 1 + np.minimum(rng.poisson(1.2, n), 5)
    lines[kind == "zero"] = 1
    lines[kind == "return"] = np.minimum(lines[kind == "return"], 2)
    order_row = np.repeat(np.arange(n), lines)
    start = np.cumsum(lines) - lines
    line_no = np.arange(len(order_row)) - start[order_row]
    is_last = line_no == lines[order_row] - 1
    list_price = np.array([p for _, p in PRODUCTS])
    product = rng.choice(len(PRODUCTS), size=len(order_row), p=_product_weights())
    product[np.repeat(kind == "zero", lines)] = 12  # replacement part
    weight = rng.gamma(2.0, 1.0, len(order_row)) * np.sqrt(list_price[product])
    share = weight / np.bincount(order_row, weights=weight)[order_row]
    magnitude = np.abs(total)
    cents = np.floor(magnitude[order_row] * share).astype(np.int64)
    residual = magnitude - np.bincount(order_row, weights=cents, minlength=n).astype(np.int64)
    cents[is_last] += residual[order_row[is_last]]
    qty = np.clip(np.round(cents / (list_price[product] * 100)), 1, 1000).astype(np.int64)
    price = np.ceil(cents / qty).astype(np.int64)
    discount = price * qty - cents
    returning = np.repeat(kind == "return", lines)
    qty = np.where(returning, -1, qty)
    price = np.where(returning, cents, price)
    discount = np.where(returning, 0, discount)
    extended = np.where(returning, -cents, cents)
    created = pd.Series(salesorder["createdon"].array.take(order_row))
    modified = pd.Series(salesorder["modifiedon"].array.take(order_row))
    return pd.DataFrame(
        {
            "salesorderdetailid": guids(rng, len(order_row)),
            "salesorderid": salesorder["salesorderid"].to_numpy()[order_row],
            "lineitemnumber": line_no + 1,
            "productdescription": np.array([name for name, _ in PRODUCTS], dtype=object)[product],
            "isproductoverridden": True,
            "ispriceoverridden": True,
            "quantity": qty.astype(float),
            "priceperunit": price / 100.0,
            "baseamount": price * qty / 100.0,
            "manualdiscountamount": discount / 100.0,
            "tax": 0.0,
            "extendedamount": extended / 100.0,
            "transactioncurrencyid": currency_id,
            "createdon": created,
            "modifiedon": modified,
        }
    )


def _product_weights() -> np.ndarray:
    weights = np.array(
        [0.08, 0.07, 0.03, 0.12, 0.06, 0.05, 0.1, 0.07, 0.03, 0.08, 0.07, 0.08, 0.05, 0.06, 0.05]
    )
    return weights / weights.sum()


def opportunities(
    rng: np.random.Generator,
    qualified_leads: pd.DataFrame,
    accts: pd.DataFrame,
    extra_accounts: np.ndarray,
    now_s: int,
    currency_id: str,
) -> pd.DataFrame:
    """Opportunities from qualified leads at existing accounts, plus some raised directly on accounts.

    Args:
        rng: the random stream.
        qualified_leads: qualified leads whose company is an account (``_account_row`` >= 0).
        accts: the accounts.
        extra_accounts: account rows that get an opportunity without a lead.
        now_s: the generation instant.
        currency_id: the one currency's id.
    """
    from_lead = len(qualified_leads)
    acct_row = np.concatenate([qualified_leads["_account_row"].to_numpy(), extra_accounts])
    n = len(acct_row)
    created = np.concatenate(
        [
            qualified_leads["_close_s"].to_numpy(),
            accts["_created_s"].to_numpy()[extra_accounts]
            + rng.random(len(extra_accounts)) * (now_s - accts["_created_s"].to_numpy()[extra_accounts]),
        ]
    )
    created = np.minimum(created, now_s - 3600)
    age_days = (now_s - created) / SECONDS_PER_DAY
    closed = rng.random(n) < np.clip(age_days / 120.0, 0, 0.95)
    won = rng.random(n) < 0.4
    state = np.where(closed, np.where(won, 1, 2), 0)
    status = np.select(
        [state == 1, state == 2], [3, rng.choice([4, 5], size=n)], rng.choice([1, 2], size=n, p=[0.85, 0.15])
    )
    value = np.round(np.exp(rng.normal(np.log(15_000), 0.9, n)), -2)
    close_s = np.minimum(created + rng.exponential(60, n) * SECONDS_PER_DAY, now_s - 60)
    est_close = np.where(closed, close_s, now_s + rng.uniform(7, 180, n) * SECONDS_PER_DAY)
    acct = accts.iloc[acct_row]
    stage = np.where(state == 0, rng.choice([0, 1, 2, 3], size=n, p=[0.35, 0.3, 0.25, 0.1]), 3)
    return pd.DataFrame(
        {
            "opportunityid": guids(rng, n),
            "name": (acct["_base"] + " - " + pick(rng, [p for p, _ in PRODUCTS[:10]], n)).to_numpy(
                dtype=object
            ),
            "customerid": acct["accountid"].to_numpy(),
            "customeridtype": "account",
            "parentaccountid": acct["accountid"].to_numpy(),
            "originatingleadid": np.concatenate(
                [qualified_leads["leadid"].to_numpy(), np.full(n - from_lead, None)]
            ),
            "estimatedvalue": value,
            "estimatedclosedate": to_dates(est_close),
            "actualvalue": np.where(state == 1, np.round(value * rng.uniform(0.7, 1.1, n), 2), np.nan),
            "actualclosedate": to_dates(np.where(closed, close_s, np.nan)),
            "closeprobability": np.select([state == 1, state == 2], [100, 0], 10 + 25 * stage),
            "salesstage": stage,
            "statecode": state,
            "statuscode": status,
            "transactioncurrencyid": currency_id,
            "createdon": to_timestamps(created),
            "modifiedon": to_timestamps(np.where(closed, close_s, created)),
        }
    )
