"""Where the analytics jobs run: the embedded pandas engine (default) or Apache Spark.

The pandas engine is today's compute path (:mod:`jobs.service.compute` on mirror DataFrames in
this process). The Spark engine (:mod:`jobs.engines.spark`) runs the same jobs with the same
configuration files on a Spark cluster (or ``local[N]``) and gives the same results; only the
values that differ from what Dynamics holds come back to the driver, where the usual planner and
write-back take over. See docs/scale.md for when to switch.

This package imports nothing from pyspark at import time, and the pandas path never does: pyspark
is the optional extra ``dvsync[spark]``.
"""

from __future__ import annotations

ENGINE_KINDS: tuple[str, ...] = ("pandas", "spark")
"""The engines ``[engine] kind`` and ``dvsync run --engine`` accept."""

__all__ = ["ENGINE_KINDS"]
