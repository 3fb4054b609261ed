"""Canonical tables as Spark DataFrames, and back to the pandas types the jobs expect.

A :class:`SparkTable` is a Spark DataFrame with canonical column names (as the mirror and the
mappings name them) and the mirror's storage type of each column (``text``, ``int``, ``float``,
``bool``, ``datetime``). Inside a Pandas UDF, :func:`restore` gives a batch back the exact pandas
types :meth:`Mirror.read_frame` returns (Spark hands timestamps over as naive UTC, whole numbers
that may be missing as floats), so the pandas job code sees the same values on both engines.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = ["SparkTable", "restore", "spark_type"]


@dataclass(frozen=True)
class SparkTable:
    """One canonical table on Spark.

    Attributes:
        frame: the Spark DataFrame.
        dtypes: canonical column -> mirror storage type.
        id_column: the record id column (``lead_id``), lower-case GUID text.
    """

    frame: Any
    dtypes: Mapping[str, str] = field(default_factory=dict)
    id_column: str = ""

    def has(self, column: str) -> bool:
        """Whether the table has ``column``."""
        return column in self.frame.columns


def spark_type(dtype: str) -> str:
    """The Spark SQL type of a mirror storage type (for UDF output schemas)."""
    return {"int": "bigint", "float": "double", "bool": "boolean", "datetime": "timestamp"}.get(
        dtype, "string"
    )


def restore(batch: pd.DataFrame, dtypes: Mapping[str, str]) -> pd.DataFrame:
    """Give a Pandas-UDF batch the pandas types of :meth:`Mirror.read_frame`."""
    out = batch.copy()
    for column in out.columns:
        dtype = dtypes.get(column)
        values = out[column]
        if dtype == "datetime":
            stamps = pd.to_datetime(values, utc=True)
            out[column] = stamps.dt.as_unit("ns")
        elif dtype == "int":
            out[column] = pd.to_numeric(values).astype("Int64")
        elif dtype == "float":
            out[column] = pd.to_numeric(values).astype(float)
        elif dtype == "bool":
            out[column] = values.astype("boolean")
        elif dtype == "text":
            out[column] = values.astype(object).where(values.notna(), None)
    return out
