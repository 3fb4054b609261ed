"""Load and validate ``mappings/customer_value.toml``: the options of the RFM and CLV jobs.

Every problem is a ``ConfigError`` naming file:line [key] and how to fix it. The file itself
documents each key; the defaults here are the same as in the shipped file, so a key left out of
the file behaves as documented there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.tomlfile import TomlFile, closest, load_toml
from jobs.customers.clv import TIME_UNITS, TimeUnitError, discount_rate_per_unit, parse_duration
from jobs.customers.orders import (
    ORDER_STATUSES,
    RETURNS_CHOICES,
    ZERO_AMOUNT_CHOICES,
    OrderRules,
    order_rule_problems,
)
from jobs.customers.rfm import SegmentMap, load_segments

__all__ = [
    "ClvOptions",
    "CustomerValueConfig",
    "FlagOptions",
    "HistoricalOptions",
    "RfmOptions",
    "load_customer_value_config",
]


@dataclass(frozen=True)
class RfmOptions:
    """``[rfm]``: scores per measure and the segment map (already loaded and validated)."""

    bins: int
    segments: SegmentMap


@dataclass(frozen=True)
class ClvOptions:
    """``[clv]``: the predictive model's unit, horizon (in that unit), discounting and margin."""

    time_unit: str = "W"
    horizon: float = 365.2425 / 7  # "12M" in weeks
    annual_discount_rate: float = 0.0
    margin: float = 1.0

    @property
    def discount_rate(self) -> float:
        """The annual rate converted to a rate per ``time_unit``, as ``predict`` expects."""
        return discount_rate_per_unit(self.annual_discount_rate, self.time_unit)


@dataclass(frozen=True)
class HistoricalOptions:
    """``[historical]``: the lifespan of the simple formula ("auto" or a length in time units)."""

    lifespan: float | str = "auto"


@dataclass(frozen=True)
class FlagOptions:
    """``[flags]``: the high-value rule and the churn-risk threshold."""

    high_value: str = "top_percent"
    top_percent: float = 20.0
    pareto_share: float = 0.8
    churn_below: float = 0.3


@dataclass(frozen=True)
class CustomerValueConfig:
    """Everything the customer-value jobs need from ``customer_value.toml``."""

    orders: OrderRules
    rfm: RfmOptions
    clv: ClvOptions = field(default_factory=ClvOptions)
    historical: HistoricalOptions = field(default_factory=HistoricalOptions)
    flags: FlagOptions = field(default_factory=FlagOptions)
    source: str = "<built>"


_SECTIONS: dict[str, tuple[str, ...]] = {
    "orders": ("statuses", "zero_amount", "returns", "customer_col", "date_col", "amount_col", "status_col"),
    "rfm": ("bins", "segments"),
    "clv": ("time_unit", "horizon", "annual_discount_rate", "margin"),
    "historical": ("lifespan",),
    "flags": ("high_value", "top_percent", "pareto_share", "churn_below"),
}


def load_customer_value_config(path: str | Path) -> CustomerValueConfig:
    """Read ``customer_value.toml`` and the segment file it names (relative to it).

    Raises:
        ConfigError: naming file:line [key] for any unknown key, wrong type or value out of range.
    """
    doc = load_toml(path)
    _check_keys(doc)
    data = doc.data
    orders = _orders(doc, data.get("orders", {}))
    rfm = data.get("rfm", {})
    bins = _number(doc, "rfm.bins", rfm.get("bins", 5), low=2, high=9, integer=True)
    seg_path = _text(doc, "rfm.segments", rfm.get("segments", "rfm_segments.toml"))
    segments = load_segments(Path(doc.path).parent / seg_path)
    if segments.bins != bins:
        raise doc.error(
            "rfm.bins",
            f"bins = {bins} but {seg_path} is written for bins = {segments.bins}",
            "make them equal: the segment file must cover every cell of the scores you compute",
        )
    clv = data.get("clv", {})
    unit = _text(doc, "clv.time_unit", clv.get("time_unit", "W"))
    if unit not in TIME_UNITS:
        raise doc.error("clv.time_unit", f"time_unit must be one of {list(TIME_UNITS)}, not {unit!r}")
    horizon = _duration(doc, "clv.horizon", clv.get("horizon", "12M"), unit)
    clv_options = ClvOptions(
        time_unit=unit,
        horizon=horizon,
        annual_discount_rate=_number(
            doc, "clv.annual_discount_rate", clv.get("annual_discount_rate", 0.0), low=0, high=1
        ),
        margin=_number(doc, "clv.margin", clv.get("margin", 1.0), low=0, high=1, low_open=True),
    )
    lifespan: float | str = data.get("historical", {}).get("lifespan", "auto")
    if lifespan != "auto":
        lifespan = _duration(doc, "historical.lifespan", lifespan, unit)
    flags = data.get("flags", {})
    rule = _text(doc, "flags.high_value", flags.get("high_value", "top_percent"))
    if rule not in ("top_percent", "pareto"):
        raise doc.error("flags.high_value", f'high_value must be "top_percent" or "pareto", not {rule!r}')
    flag_options = FlagOptions(
        high_value=rule,
        top_percent=_number(
            doc, "flags.top_percent", flags.get("top_percent", 20.0), low=0, high=100, low_open=True
        ),
        pareto_share=_number(
            doc, "flags.pareto_share", flags.get("pareto_share", 0.8), low=0, high=1, low_open=True
        ),
        churn_below=_number(doc, "flags.churn_below", flags.get("churn_below", 0.3), low=0, high=1),
    )
    return CustomerValueConfig(
        orders=orders,
        rfm=RfmOptions(bins=int(bins), segments=segments),
        clv=clv_options,
        historical=HistoricalOptions(lifespan=lifespan),
        flags=flag_options,
        source=str(doc.path),
    )


def _check_keys(doc: TomlFile) -> None:
    for section, value in doc.data.items():
        if section not in _SECTIONS:
            raise doc.error(section, f"unknown section [{section}]", _hint(section, _SECTIONS))
        if not isinstance(value, dict):
            raise doc.error(section, f"{section} must be a [{section}] table")
        for key in value:
            if key not in _SECTIONS[section]:
                raise doc.error(
                    (section, key), f"unknown key {key!r} in [{section}]", _hint(key, _SECTIONS[section])
                )


def _hint(name: str, candidates: Any) -> str | None:
    guesses = closest(name, candidates)
    return f"did you mean {guesses[0]!r}?" if guesses else None


def _orders(doc: TomlFile, section: dict[str, Any]) -> OrderRules:
    statuses = section.get("statuses", ["fulfilled", "invoiced"])
    if not isinstance(statuses, list) or not all(isinstance(s, str) for s in statuses):
        raise doc.error(
            "orders.statuses", 'statuses must be a non-empty list such as ["fulfilled", "invoiced"]'
        )
    values = {
        key: section.get(key, default) for key, default in (("zero_amount", "exclude"), ("returns", "net"))
    }
    problems = order_rule_problems(statuses, **values)
    if problems:
        key, message = problems[0]
        choices = {"statuses": ORDER_STATUSES, "zero_amount": ZERO_AMOUNT_CHOICES, "returns": RETURNS_CHOICES}
        typo = (
            next((s for s in statuses if s not in ORDER_STATUSES), None) if key == "statuses" else values[key]
        )
        raise doc.error(
            ("orders", key), message, _hint(str(typo), choices[key]) if typo is not None else None
        )
    columns = {
        key: _text(doc, f"orders.{key}", section.get(key, default), allow_empty=key == "status_col")
        for key, default in (
            ("customer_col", "customer_id"),
            ("date_col", "order_date"),
            ("amount_col", "amount"),
            ("status_col", "status"),
        )
    }
    return OrderRules(statuses=tuple(statuses), **values, **columns)  # type: ignore[arg-type]


def _text(doc: TomlFile, key: str, value: Any, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not value.strip() and not allow_empty):
        raise doc.error(key, f"{key.split('.')[-1]} must be text, not {value!r}")
    return value


def _number(
    doc: TomlFile,
    key: str,
    value: Any,
    *,
    low: float,
    high: float,
    integer: bool = False,
    low_open: bool = False,
) -> float:
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type or not math.isfinite(value):
        kind = "a whole number" if integer else "a number"
        raise doc.error(key, f"{key.split('.')[-1]} must be {kind}, not {value!r}")
    if value < low or value > high or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise doc.error(key, f"{key.split('.')[-1]} = {value!r} is outside {bracket}{low:g}, {high:g}]")
    return value


def _duration(doc: TomlFile, key: str, value: Any, unit: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise doc.error(
            key,
            f"{value!r} has no unit",
            f'write it with its unit, e.g. "{value}{unit}", so it cannot be misread',
        )
    try:
        return parse_duration(value, unit)
    except TimeUnitError as exc:
        raise doc.error(key, str(exc)) from None
