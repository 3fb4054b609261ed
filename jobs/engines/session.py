"""Starting (or joining) the Spark session the Spark engine runs on.

pyspark is imported here, lazily, so that the pandas engine never needs it. On a cluster
(spark-submit, Databricks, Fabric, Synapse) a session already exists and is reused: the master
and settings given to dvsync then only fill what the platform did not set.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from typing import Any

from jobs.errors import JobError

__all__ = ["DEFAULT_CONF", "SparkUnavailableError", "spark_session"]

DEFAULT_CONF: dict[str, str] = {
    # Results are compared with the pandas engine's, which works in UTC.
    "spark.sql.session.timeZone": "UTC",
    # Pandas UDFs and toPandas through Arrow: columnar, no per-row Python objects.
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.execution.arrow.maxRecordsPerBatch": "50000",
}
"""Settings dvsync needs for equal results; a user's ``[engine.spark.conf]`` may add to them."""


class SparkUnavailableError(JobError):
    """pyspark or Java is missing, or the session could not start."""


def spark_session(master: str | None = None, conf: Mapping[str, str] | None = None) -> Any:
    """Return the active Spark session, or start one on ``master`` with ``conf``.

    Raises:
        SparkUnavailableError: pyspark is not installed, Java is missing, or Spark failed to start.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise SparkUnavailableError(
            "the Spark engine needs pyspark: `pip install 'dvsync[spark]'` (and Java 17 or later), "
            'or set [engine] kind = "pandas"'
        ) from None
    active = SparkSession.getActiveSession()
    if active is not None:
        for key, value in DEFAULT_CONF.items():
            active.conf.set(key, value)
        return active
    if shutil.which("java") is None:
        raise SparkUnavailableError(
            "the Spark engine needs Java 17 or later on PATH (Debian/Ubuntu: "
            "`apt-get install default-jre-headless`), or a cluster to submit to (docs/scale.md)"
        )
    # Python workers must be this interpreter (the one with dvsync, pandas and pyarrow), not
    # whatever `python3` is first on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("dvsync")
    if master:
        builder = builder.master(master)
    for key, value in {**DEFAULT_CONF, **dict(conf or {})}.items():
        builder = builder.config(key, str(value))
    try:
        return builder.getOrCreate()
    except Exception as exc:  # py4j and JVM start-up failures have no common base class
        raise SparkUnavailableError(
            f"Spark did not start on {master or 'the default master'}: {exc}"
        ) from exc
