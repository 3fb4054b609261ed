"""Customer analytics, pure DataFrame functions: RFM segments and customer lifetime value.

Modules: ``orders`` (which orders count, returns and zero amounts, per-day purchases), ``rfm``
(recency, frequency, monetary scores and named segments), ``clv`` and ``clv_models`` (historical
value; BG/NBD and Gamma-Gamma fits and predictions), ``value`` (the whole job for accounts and
contacts) and ``config`` (``mappings/customer_value.toml``).
"""

from jobs.customers.clv import (
    Horizon,
    fit_bgnbd,
    fit_gamma_gamma,
    flag_customers,
    historical_value,
    predict,
    summarize,
)
from jobs.customers.config import CustomerValueConfig, load_customer_value_config
from jobs.customers.orders import OrderRules, prepare_orders
from jobs.customers.rfm import load_segments, score_rfm
from jobs.customers.value import CustomerValueResult, compute_customer_value

__all__ = [
    "CustomerValueConfig",
    "CustomerValueResult",
    "Horizon",
    "OrderRules",
    "compute_customer_value",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "flag_customers",
    "historical_value",
    "load_customer_value_config",
    "load_segments",
    "predict",
    "prepare_orders",
    "score_rfm",
    "summarize",
]
