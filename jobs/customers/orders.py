"""Which orders count as purchases, and how cancelled, $0 and returned orders are treated.

RFM (:mod:`.rfm`) and CLV (:mod:`.clv`) both start from ``prepare_orders`` so that a customer's
purchases are the same in both. The input is the canonical order frame (``order_id``,
``customer_id``, ``order_date``, ``amount``, ``status``); the output is one row per customer per
purchase day:

====================  =========================================================================
``customer_id``       the customer (account or contact id)
``order_date``        the purchase day (midnight, timezone-naive; aware timestamps are first
                      converted to UTC)
``amount``            the value bought that day, net of returns when ``returns = "net"``, >= 0
``orders``            how many orders made up that day
====================  =========================================================================

Rules (``OrderRules``; defaults in brackets, set in ``mappings/customer_value.toml``):

* **Status** [``fulfilled``, ``invoiced``]: only orders in these states are purchases. Cancelled
  orders never count. Active (draft) and submitted orders are not purchases yet.
* **Same day**: several orders of one customer on one day are one purchase, as in the BG/NBD and
  Gamma-Gamma papers (their value is summed).
* **$0 orders** [``exclude``]: a zero-value order (free sample, warranty replacement, placeholder)
  is not revenue. ``exclude`` drops it; ``count_as_activity`` keeps it as a purchase event (it
  counts for frequency and recency) while monetary values ignore it.
* **Returns** [``net``]: an order with a negative amount is a return, never a purchase event.
  ``net`` subtracts the customer's returns from the value of their purchases, spreading the
  returned value over those purchases in proportion to their value (floored at 0: a customer
  cannot be worth less than nothing), so RFM's monetary total and CLV's mean spend both see net
  revenue. ``exclude`` ignores returns.
* Rows without a customer, without a parseable date or without an amount cannot be placed; they
  are left out and counted in ``PreparedOrders.excluded`` (never silently).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from jobs.errors import JobError, JobInputError

__all__ = [
    "ORDER_STATUSES",
    "RETURNS_CHOICES",
    "ZERO_AMOUNT_CHOICES",
    "DayGroups",
    "OrderDataError",
    "OrderRules",
    "PreparedOrders",
    "group_days",
    "order_rule_problems",
    "prepare_orders",
    "to_days",
    "validate_purchases",
]

# The canonical order statuses (COMMON contract: mappings turn Dataverse state/status codes into these).
ORDER_STATUSES = ("active", "submitted", "cancelled", "fulfilled", "invoiced")


class OrderDataError(JobError):
    """The order frame cannot be used as given: a missing column, a wrong type, a bad value."""


@dataclass(frozen=True)
class OrderRules:
    """How orders become purchases; see the module docstring for what each choice means."""

    statuses: tuple[str, ...] = ("fulfilled", "invoiced")
    zero_amount: Literal["exclude", "count_as_activity"] = "exclude"
    returns: Literal["net", "exclude"] = "net"
    customer_col: str = "customer_id"
    date_col: str = "order_date"
    amount_col: str = "amount"
    # "" means the frame has no status column and every row is an order to count.
    status_col: str = "status"

    def __post_init__(self) -> None:
        problems = order_rule_problems(self.statuses, self.zero_amount, self.returns)
        if problems:
            raise JobInputError(problems[0][1])


ZERO_AMOUNT_CHOICES = ("exclude", "count_as_activity")
RETURNS_CHOICES = ("net", "exclude")


def order_rule_problems(statuses: Sequence[str], zero_amount: str, returns: str) -> list[tuple[str, str]]:
    """Check the order-rule choices; return ``(field, message)`` per problem, empty when all are valid.

    ``OrderRules`` raises the first; ``customer_value.toml``'s loader reports it at the file's line.
    """
    problems: list[tuple[str, str]] = []
    unknown = [s for s in statuses if s not in ORDER_STATUSES]
    if unknown:
        problems.append(("statuses", f"unknown order status(es) {unknown}; known: {list(ORDER_STATUSES)}"))
    if "cancelled" in statuses:
        problems.append(
            ("statuses", "cancelled orders are never purchases; remove 'cancelled' from statuses")
        )
    if not statuses:
        problems.append(("statuses", "statuses is empty: no order would count"))
    if zero_amount not in ZERO_AMOUNT_CHOICES:
        problems.append(
            ("zero_amount", f"zero_amount must be one of {list(ZERO_AMOUNT_CHOICES)}, not {zero_amount!r}")
        )
    if returns not in RETURNS_CHOICES:
        problems.append(("returns", f"returns must be one of {list(RETURNS_CHOICES)}, not {returns!r}"))
    return problems


@dataclass(frozen=True)
class PreparedOrders:
    """Purchases ready for RFM and CLV, and what was left out and why.

    Attributes:
        purchases: one row per customer per purchase day (see the module docstring).
        excluded: reason -> number of input rows left out for it.
        returns_netted: total value of the returns subtracted (0 with ``returns = "exclude"``).
    """

    purchases: pd.DataFrame
    excluded: dict[str, int] = field(default_factory=dict)
    returns_netted: float = 0.0

    def describe(self) -> str:
        """One line for logs: purchases kept and rows left out by reason."""
        kept = f"{len(self.purchases)} purchase days of {self.purchases.iloc[:, 0].nunique()} customers"
        if not self.excluded:
            return kept
        left = ", ".join(f"{n} {reason}" for reason, n in sorted(self.excluded.items()))
        return f"{kept}; left out: {left}"


def _require_columns(orders: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in orders.columns]
    if missing:
        raise OrderDataError(
            f"the {what} frame has no column(s) {missing}; it has {list(orders.columns)}. "
            "Pass the column names (customer_col=, date_col=, amount_col=) or fix the order mapping."
        )


def to_days(values: pd.Series, column: str) -> pd.Series:
    """Turn dates, timestamps or date strings into timezone-naive midnights (NaT where unparseable)."""
    if not pd.api.types.is_datetime64_any_dtype(values):
        values = pd.to_datetime(values, errors="coerce", utc=True, format="mixed")
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    return values.dt.normalize()


def prepare_orders(orders: pd.DataFrame, rules: OrderRules | None = None) -> PreparedOrders:
    """Apply the order rules and return one row per customer per purchase day.

    Args:
        orders: canonical order rows (one per sales order); extra columns are ignored.
        rules: the treatment options; ``OrderRules()`` (the documented defaults) when None.

    Returns:
        The purchases (customer column as a pandas Categorical of the customer ids, which keeps
        the later grouping fast; rows sorted by customer and day) and a count of rows left out
        per reason.

    Raises:
        OrderDataError: a required column is missing or amounts are not numbers.
    """
    rules = rules or OrderRules()
    cust, date, amount, status = rules.customer_col, rules.date_col, rules.amount_col, rules.status_col
    if status and status not in orders.columns:
        raise OrderDataError(
            f"the order frame has no status column {status!r}, so cancelled orders cannot be told "
            'apart; map the order status, or set status_col = "" in customer_value.toml if every '
            "row is a completed order"
        )
    _require_columns(orders, [cust, date, amount] + ([status] if status else []), "order")
    excluded: dict[str, int] = {}

    def drop(mask: np.ndarray, reason: str) -> None:
        count = int(np.count_nonzero(mask))
        if count:
            excluded[reason] = excluded.get(reason, 0) + count

    # Integer codes for customers and statuses: string work happens once per distinct value.
    codes, customers = pd.factorize(orders[cust], sort=True)
    customers = _plain_index(customers)
    days = to_days(orders[date], date).to_numpy()
    values = _numeric_amounts(orders[amount], amount)
    keep = np.ones(len(orders), dtype=bool)
    if status:
        status_codes, status_values = pd.factorize(orders[status], use_na_sentinel=True)
        labels = [str(v).strip().lower() for v in status_values]  # a handful of distinct labels
        for index, label in enumerate(labels):
            if label not in rules.statuses:
                drop(status_codes == index, f"status {label}")
        drop(status_codes == -1, "status (none)")
        counted = np.array([label in rules.statuses for label in labels] + [False])
        keep &= counted[status_codes]  # code -1 picks the trailing False
    for reason, mask in (
        ("without customer", codes == -1),
        ("without a valid date", np.isnat(days)),
        ("without amount", np.isnan(values)),
    ):
        drop(keep & mask, reason)
        keep &= ~mask

    is_return = keep & (values < 0)
    is_zero = keep & (values == 0)
    if rules.returns == "exclude":
        drop(is_return, "returns")
    purchase = keep & ~is_return
    if rules.zero_amount == "exclude":
        drop(is_zero, "$0 orders")
        purchase &= ~is_zero
    grouped = group_days(codes[purchase], days[purchase], values[purchase])
    day_values = grouped.amount
    returns_netted = 0.0
    if rules.returns == "net" and is_return.any():
        n = len(customers)
        returned = np.bincount(codes[is_return], weights=-values[is_return], minlength=n)
        gross = np.bincount(grouped.code, weights=day_values, minlength=n)
        # Keep the share of value not returned; a customer whose returns exceed purchases nets to 0.
        with np.errstate(divide="ignore", invalid="ignore"):
            kept_share = np.where(gross > 0, np.clip(1 - returned / gross, 0.0, 1.0), 1.0)
        netted = day_values * kept_share[grouped.code]
        returns_netted = float(np.sum(day_values - netted))
        day_values = netted
        # A return with no purchase of the same customer to net against cannot be placed.
        has_purchase = np.bincount(grouped.code, minlength=n) > 0
        drop(is_return & ~has_purchase[np.maximum(codes, 0)], "returns of customers without a purchase")
    purchases = pd.DataFrame(
        {
            cust: pd.Categorical.from_codes(grouped.code, categories=customers),
            date: grouped.day,
            amount: day_values,
            "orders": grouped.orders,
        }
    )
    return PreparedOrders(purchases=purchases, excluded=excluded, returns_netted=returns_netted)


@dataclass(frozen=True)
class DayGroups:
    """Purchases summed per customer per day, sorted by (customer code, day).

    Attributes:
        code: customer code per row (an index into the caller's customer labels).
        day: the day (datetime64[ns], midnight) per row.
        amount: the value bought that day.
        orders: how many input rows made up that day.
        first_of_customer: True on each customer's first (earliest) row.
    """

    code: np.ndarray
    day: np.ndarray
    amount: np.ndarray
    orders: np.ndarray
    first_of_customer: np.ndarray


def group_days(code: np.ndarray, day: np.ndarray, amount: np.ndarray) -> DayGroups:
    """Sum amounts per (customer code, day) with one sort, no per-group Python."""
    day_number = day.astype("datetime64[D]").astype(np.int64)
    if len(code):
        # One int64 key (customer, day) sorts 2-3x faster than a two-key lexsort; input that is
        # already sorted (prepare_orders output) is not sorted again.
        low = day_number.min()
        key = code.astype(np.int64) * (day_number.max() - low + 1) + (day_number - low)
        if not np.all(key[1:] >= key[:-1]):
            order = np.argsort(key, kind="stable")
            code, day_number, amount, key = code[order], day_number[order], amount[order], key[order]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    else:
        starts = np.zeros(0, dtype=np.int64)
    summed = np.add.reduceat(amount, starts) if len(starts) else np.zeros(0)
    counts = np.diff(np.r_[starts, len(code)])
    group_code = code[starts]
    first = np.r_[True, group_code[1:] != group_code[:-1]] if len(starts) else np.zeros(0, dtype=bool)
    return DayGroups(
        code=group_code,
        day=day_number[starts].astype("datetime64[D]").astype("datetime64[ns]"),
        amount=summed.astype(float),
        orders=counts.astype(np.int64),
        first_of_customer=first,
    )


def _numeric_amounts(values: pd.Series, column: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(values):
        raise OrderDataError(f"column {column!r} holds booleans, not amounts")
    converted = pd.to_numeric(values, errors="coerce")
    bad = converted.isna() & values.notna()
    if bad.any():
        examples = ", ".join(repr(v) for v in values[bad].head(3))
        raise OrderDataError(
            f"column {column!r} has {int(bad.sum())} value(s) that are not numbers (e.g. {examples}); "
            "map the order total to a numeric column"
        )
    result = converted.to_numpy(dtype=float)
    if np.isinf(result).any():
        raise OrderDataError(f"column {column!r} contains infinite amounts")
    return result


def validate_purchases(
    purchases: pd.DataFrame,
    *,
    customer_col: str,
    date_col: str,
    amount_col: str,
    what: str,
    until: pd.Timestamp | None = None,
) -> tuple[pd.Index, DayGroups]:
    """Check a purchase frame handed to RFM or CLV and sum it per customer per day.

    Args:
        until: leave out purchases after this day.

    Returns:
        The sorted customer ids, and the day groups whose ``code`` indexes into them. Customers
        whose purchases are all after ``until`` are still listed, with no day group.

    Raises:
        OrderDataError: missing columns, missing values, unparseable dates, negative amounts.
    """
    _require_columns(purchases, [customer_col, date_col, amount_col], what)
    codes, customers = pd.factorize(purchases[customer_col], sort=True)
    days = to_days(purchases[date_col], date_col).to_numpy()
    amounts = _numeric_amounts(purchases[amount_col], amount_col)
    problems = {
        f"no {customer_col}": codes == -1,
        f"a missing or unparseable {date_col}": np.isnat(days),
        f"no {amount_col}": np.isnan(amounts),
        f"a negative {amount_col} (a return)": amounts < 0,
    }
    for problem, mask in problems.items():
        if mask.any():
            raise OrderDataError(
                f"{int(mask.sum())} row(s) of the {what} frame have {problem}; run "
                "jobs.customers.orders.prepare_orders first, which filters statuses, nets or "
                "excludes returns and counts what it leaves out"
            )
    if until is not None:
        within = days <= until.to_datetime64()
        codes, days, amounts = codes[within], days[within], amounts[within]
    return _plain_index(customers), group_days(codes, days, amounts)


def _plain_index(uniques: object) -> pd.Index:
    """The customer ids as a plain Index (a Categorical column's categories become their values)."""
    if isinstance(getattr(uniques, "dtype", None), pd.CategoricalDtype):
        return pd.Index(np.asarray(uniques))
    return pd.Index(uniques)
