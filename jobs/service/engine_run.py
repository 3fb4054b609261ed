"""Run the jobs on the configured non-pandas engine (``[engine] kind = "spark"``).

The pipeline calls :func:`compute_on_engine` instead of its pandas compute step; everything
before (sync, settle) and after (plan, write-back, audit) is the same code on both engines.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from core.errors import ConfigError
from jobs.engines.frames import SparkTable
from jobs.engines.session import SparkUnavailableError
from jobs.service.compute import JobOutcome
from jobs.service.engine_inputs import lake_tables, mirror_tables
from jobs.service.mapping import MappingSet
from jobs.service.mapping.reader import TableReader
from jobs.service.merge import merge_inputs
from jobs.service.mirror import Mirror
from jobs.service.settings import Settings

__all__ = ["compute_on_engine", "engine_tables"]

log = logging.getLogger(__name__)


def compute_on_engine(
    client: Any,
    mirror: Mirror,
    mappings: MappingSet,
    settings: Settings,
    chosen: Sequence[str],
    *,
    model_dir: Path,
    now: datetime,
) -> list[JobOutcome]:
    """Run ``chosen`` on the Spark engine; outcomes hold the changed records only.

    Raises:
        ConfigError: a bad ``[engine]`` setting, lake folder or job configuration file.
    """
    from jobs.engines.spark import SparkEngine

    spark_settings = settings.engine.spark
    try:
        engine = SparkEngine(
            spark_settings.master,
            spark_settings.conf,
            duplicates_on_spark_from=spark_settings.duplicates_on_spark_from,
        )
    except SparkUnavailableError as exc:
        log.error("%s", exc)
        return [JobOutcome(j, status="failed", message=str(exc)) for j in chosen]
    tables = engine_tables(client, mirror, mappings, settings, engine.spark)
    outputs = {t: mappings.outputs_for(t) for t in {o.table for o in mappings.outputs}}
    log.info("spark engine: %s, input %s", engine.spark.sparkContext.master, spark_settings.source)
    directory = Path(settings.mappings.dir)

    def prepare(frames: dict[str, pd.DataFrame]) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame]]:
        return merge_inputs(mirror, frames, directory / "duplicates.toml")

    return engine.run(
        tables,
        chosen,
        directory=directory,
        model_dir=model_dir,
        now=now,
        outputs=outputs,
        prepare_duplicates=prepare,
    )


def engine_tables(
    client: Any, mirror: Mirror, mappings: MappingSet, settings: Settings, spark: Any
) -> dict[str, SparkTable]:
    """The canonical tables the engine reads: the mirror's Parquet export or the lake export.

    Raises:
        ConfigError: a bad lake folder, or an in-memory mirror (it has no folder to export to).
    """
    spark_settings = settings.engine.spark
    if spark_settings.source == "lake":
        assert spark_settings.lake_path is not None  # checked by the settings
        readers = {}
        for name, mapping in mappings.tables.items():
            if mapping.enabled:
                readers[name] = TableReader.bind(
                    mapping, client.get_table(mapping.table), mappings.outputs_for(name)
                )
        return lake_tables(Path(spark_settings.lake_path), readers, spark)
    if mirror.path is None:
        raise ConfigError("the Spark engine reads the mirror from a file; an in-memory mirror has none")
    return mirror_tables(mirror, spark, mirror.path.parent / "parquet")
