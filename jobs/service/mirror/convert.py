"""Values between pandas and SQLite: storage types, UTC text, and plain Python values for JSON."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd


def utc_text(moment: datetime | pd.Timestamp | None) -> str | None:
    """Format an aware moment as the mirror stores it: ISO 8601 UTC with microseconds and ``Z``."""
    if moment is None or pd.isna(moment):
        return None
    stamp = pd.Timestamp(moment)
    if stamp.tzinfo is None:
        raise ValueError(f"{moment!r} has no time zone; the mirror stores UTC")
    return stamp.tz_convert(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc(text: str | None) -> datetime | None:
    return None if text is None else pd.Timestamp(text).to_pydatetime()


def plain_value(value: Any) -> Any:
    """A value SQLite can store: None for missing, Python scalars, ISO text for moments."""
    if value is None:
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return utc_text(value) if getattr(value, "tzinfo", None) else pd.Timestamp(value).isoformat()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, bool):
        return int(value)
    return value


def guess_dtype(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    if pd.api.types.is_integer_dtype(series):
        return "int"
    if pd.api.types.is_float_dtype(series):
        return "float"
    return "text"


def to_sql(series: pd.Series, dtype: str) -> np.ndarray:
    """Vectorised conversion of one column into values for sqlite3 (None for missing)."""
    if dtype == "datetime":
        stamps = pd.to_datetime(series, utc=True, format="ISO8601")
        text = stamps.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return text.astype(object).where(stamps.notna(), None).to_numpy(dtype=object)
    if dtype == "bool":
        flags = series.astype("boolean")
        return flags.astype("Int64").astype(object).where(flags.notna(), None).to_numpy(dtype=object)
    if dtype == "int":
        numbers = pd.to_numeric(series).astype("Int64")
        return numbers.astype(object).where(numbers.notna(), None).to_numpy(dtype=object)
    if dtype == "float":
        numbers = pd.to_numeric(series).astype(float)
        finite = np.isfinite(numbers.to_numpy())
        return numbers.astype(object).where(finite, None).to_numpy(dtype=object)
    if isinstance(series.dtype, pd.StringDtype) or pd.api.types.infer_dtype(series, skipna=True) in (
        "string",
        "empty",
    ):  # only str and missing (inferred in C): no per-value conversion
        text = series.astype(object)
        return text.where(series.notna(), None).to_numpy(dtype=object)
    return np.array([plain_value(v) for v in series], dtype=object)


def from_sql(values: list[Any], dtype: str) -> pd.Series:
    if dtype == "datetime":
        stamps = pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601")
        # Microseconds keep Dataverse's whole range (0001-01-01..9999-12-31); nanoseconds end in 2262.
        return stamps.dt.as_unit("us")
    if dtype == "bool":
        return pd.Series(values, dtype="Int64").astype("boolean")
    if dtype == "int":
        return pd.Series(values, dtype="Int64")
    if dtype == "float":
        return pd.Series(values, dtype=object).astype(float)
    return pd.Series(values, dtype=object)
