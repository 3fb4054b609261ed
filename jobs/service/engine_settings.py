"""``[engine]``: where the analytics jobs run (docs/scale.md).

```toml
[engine]
kind = "spark"                 # "pandas" (default, in this process) or "spark"

[engine.spark]
master = "local[4]"            # or spark://host:7077, yarn, k8s://...; empty: the active session
source = "mirror"              # "mirror" (exported to Parquet) or "lake" (Synapse/Fabric Link folder)
lake_path = "/data/dataverse"  # the export folder, for source = "lake"
duplicates_on_spark_from = 50000  # smaller tables are deduplicated on the driver (same pairs)

[engine.spark.conf]            # any Spark setting
"spark.sql.shuffle.partitions" = "64"
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from connector.settings import SettingsSection, invalid_setting

__all__ = ["EngineSettings", "SparkSettings"]


class SparkSettings(SettingsSection):
    """How the Spark engine starts and what it reads."""

    master: str | None = Field(
        default=None, description="Spark master URL (local[4], spark://..., yarn); empty: the active session."
    )
    source: Literal["mirror", "lake"] = Field(
        default="mirror", description="Read the mirror (exported to Parquet) or a lake export folder."
    )
    lake_path: Path | None = Field(
        default=None, description="Synapse Link / Fabric Link export folder (Delta, or CSV with model.json)."
    )
    conf: dict[str, str] = Field(default_factory=dict, description="Extra Spark settings, key = value.")
    duplicates_on_spark_from: int = Field(
        default=50_000,
        ge=0,
        description=(
            "Tables with at least this many records are deduplicated on the executors; smaller ones "
            "on the driver with the pandas code (the same pairs; Spark's per-stage overhead would cost "
            "more than the work). 0: always on the executors."
        ),
    )

    @field_validator("conf", mode="before")
    @classmethod
    def _conf(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _lake(self) -> SparkSettings:
        if self.source == "lake" and self.lake_path is None:
            raise invalid_setting(
                'source = "lake" needs lake_path', "set [engine.spark] lake_path to the export folder"
            )
        return self


class EngineSettings(SettingsSection):
    """Which engine runs the jobs."""

    kind: Literal["pandas", "spark"] = Field(
        default="pandas", description="pandas (in this process) or spark (a Spark session)."
    )
    spark: SparkSettings = Field(default_factory=SparkSettings)

    @field_validator("kind", mode="before")
    @classmethod
    def _kind(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value
