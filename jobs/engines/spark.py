"""The Spark engine: the four jobs on Spark, and only changed values back to the driver.

:meth:`SparkEngine.run` takes the canonical tables as :class:`~jobs.engines.frames.SparkTable`
(from the mirror's Parquet export or a Synapse Link / Fabric Link folder, see
:mod:`jobs.service.engine_inputs`) and returns the same :class:`JobOutcome` list as the pandas
engine, with one difference: each outcome's results hold only the records whose written value
would change (compared on the executors, in the planner's wire form, with the value Dynamics
holds in the table's ``out_`` columns). The planner then plans exactly what it would have planned
from all results, and a run over ten million customers brings a few thousand rows to the driver.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from core.errors import ConfigError, DvsyncError
from jobs.engines import spark_scoring, spark_value
from jobs.engines.frames import SparkTable, restore
from jobs.engines.session import spark_session
from jobs.engines.spark_duplicates import find_duplicates_spark
from jobs.leads.duplicates.detect import find_duplicates
from jobs.service import compute
from jobs.service.compute import JobOutcome
from jobs.service.mapping import OutputColumn
from jobs.service.plan import COMPANION_RESULTS, differs

__all__ = ["SparkEngine", "changed_rows"]

# Prepares the duplicates job's records: (records, "not a duplicate" pairs per table).
PrepareDuplicates = Callable[
    [dict[str, pd.DataFrame]], tuple[dict[str, pd.DataFrame], Mapping[str, pd.DataFrame]]
]

log = logging.getLogger(__name__)


def changed_rows(results: pd.DataFrame, held: pd.DataFrame, outputs: Sequence[OutputColumn]) -> pd.Series:
    """True per result row whose written value differs from what Dynamics holds (planner rules).

    Args:
        results: index = record id, one column per result name.
        held: the same index, with the ``out_<result>`` columns Dynamics holds.
        outputs: the table's output columns; one without its ``out_`` column is never written.
    """
    changed = pd.Series(False, index=results.index)
    for output in outputs:
        if not output.enabled or output.result in COMPANION_RESULTS:
            continue
        if output.result not in results.columns or output.mirror_column not in held.columns:
            continue
        new = output.to_wire(results[output.result])
        old = output.to_wire(held[output.mirror_column], scaled=True)
        changed |= differs(new, old).to_numpy()
    return changed


def _failure(exc: Exception) -> str:
    """What to tell about a failed job: dvsync's own message, or the last line of Spark's."""
    if isinstance(exc, DvsyncError):
        return str(exc)
    log.debug("spark job failed", exc_info=exc)
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    # A Python error on an executor arrives as a worker traceback; its last line names the error.
    last = next(
        (line for line in reversed(lines) if "Error" in line or "Exception" in line),
        lines[-1] if lines else "",
    )
    return f"the Spark job failed: {last or type(exc).__name__} (run with --verbose for Spark's report)"


class SparkEngine:
    """Runs the jobs on a Spark session (``local[N]``, a cluster master, or the active session)."""

    kind = "spark"

    def __init__(
        self,
        master: str | None = None,
        conf: Mapping[str, str] | None = None,
        *,
        duplicates_on_spark_from: int = 50_000,
    ) -> None:
        self.spark = spark_session(master, conf)
        self.duplicates_on_spark_from = duplicates_on_spark_from

    def run(
        self,
        tables: Mapping[str, SparkTable],
        chosen: Sequence[str],
        *,
        directory: Path,
        model_dir: Path,
        now: datetime,
        outputs: Mapping[str, Sequence[OutputColumn]],
        prepare_duplicates: PrepareDuplicates | None = None,
    ) -> list[JobOutcome]:
        """Run ``chosen`` jobs; each outcome's results hold the changed records only.

        Args:
            tables: canonical tables by name: ``lead``, ``contact``, ``account``, ``activity``
                and ``order`` (entities), as far as they are mapped.
            chosen: the jobs, in the canonical order.
            directory: the mappings directory (scoring.toml, duplicates.toml, customer_value.toml).
            model_dir: where lead models are kept (shared with the pandas engine).
            now: the run's moment.
            outputs: per target table, its output columns (to compare with what Dynamics holds).
            prepare_duplicates: the service's preparation of the duplicates job's records (merged
                records left out, "not a duplicate" pairs returned), as the pandas engine applies it.
        """
        outcomes: list[JobOutcome] = []
        if "scoring" in chosen:
            outcomes.append(
                self._guard("scoring", lambda: self._scoring(tables, directory, model_dir, now, outputs))
            )
        if "duplicates" in chosen:
            outcomes.append(
                self._guard(
                    "duplicates", lambda: self._duplicates(tables, directory, outputs, prepare_duplicates)
                )
            )
        value_jobs = {j for j in ("rfm", "clv") if j in chosen}
        if value_jobs:
            try:
                outcomes.extend(self._value(tables, value_jobs, directory, now, outputs))
            except ConfigError:
                raise
            except Exception as exc:
                message = _failure(exc)
                outcomes.extend(JobOutcome(j, status="failed", message=message) for j in sorted(value_jobs))
        return outcomes

    @staticmethod
    def _guard(job: str, run: Any) -> JobOutcome:
        try:
            return run()
        except ConfigError:
            raise  # a configuration file to fix: the run stops, as on the pandas engine
        except Exception as exc:
            return JobOutcome(job, status="failed", message=_failure(exc))

    # ------------------------------------------------------------------ jobs

    def _scoring(
        self,
        tables: Mapping[str, SparkTable],
        directory: Path,
        model_dir: Path,
        now: datetime,
        outputs: Mapping[str, Sequence[OutputColumn]],
    ) -> JobOutcome:
        leads = tables.get("lead")
        if leads is None:
            return JobOutcome("scoring", status="skipped", message="no leads in the mirror")
        if "status" not in leads.frame.columns and not leads.frame.isEmpty():
            from jobs.errors import JobError

            raise JobError("the leads have no `status` field; map it in lead.toml (statecode)")
        outcome, results = spark_scoring.run_scoring(
            leads,
            tables.get("activity"),
            rules_path=directory / "scoring.toml",
            model_dir=model_dir,
            now=now,
            spark=self.spark,
        )
        if results is not None:
            outcome.results["lead"] = self._changed(results, leads, outputs.get("lead", ()))
        return outcome

    def _duplicates(
        self,
        tables: Mapping[str, SparkTable],
        directory: Path,
        outputs: Mapping[str, Sequence[OutputColumn]],
        prepare: PrepareDuplicates | None,
    ) -> JobOutcome:
        # Pairs are found on the executors (spark_duplicates: blocking as joins, comparisons in
        # mapInPandas, EM on pattern counts) for tables of duplicates_on_spark_from records or
        # more; grouping, the merge band and linking leads to contacts/accounts then run on the
        # driver with the pandas code, on the collected canonical records (docs/scale.md).
        frames, collected = {}, {}
        for name in ("lead", "contact", "account"):
            table = tables.get(name)
            if table is None:
                frames[name] = pd.DataFrame()
                continue
            records = restore(table.frame.toPandas(), table.dtypes)
            frames[name] = records.sort_values(table.id_column, kind="stable", ignore_index=True)
            collected[name] = len(records)
        ruled: Mapping[str, pd.DataFrame] | None = None
        if prepare is not None:
            frames, ruled = prepare(frames)
        distributed: list[str] = []

        def find(name: str, records: pd.DataFrame, options: dict[str, Any]) -> pd.DataFrame:
            table = tables[name]
            if len(records) < self.duplicates_on_spark_from:
                return find_duplicates(records, **options)
            frame = table.frame
            if len(records) != collected[name]:
                # The service left records out (merged ones): deduplicate exactly these.
                ids = self.spark.createDataFrame(records[[table.id_column]].astype(str))
                frame = frame.join(ids, on=table.id_column, how="left_semi")
            distributed.append(name)
            return find_duplicates_spark(SparkTable(frame, table.dtypes, table.id_column), **options).pairs

        outcome = compute.run_duplicates(
            frames, config_path=directory / "duplicates.toml", ruled=ruled, find=find
        )
        # Where the pairs were found: "spark" (some table on the executors) or "driver".
        outcome.details["engine"] = "spark" if distributed else "driver"
        if distributed:
            log.info("duplicate pairs found on the executors for %s", ", ".join(distributed))
        for name, result in list(outcome.results.items()):
            table = tables[name]
            held = frames[name].set_index(frames[name][table.id_column].astype(str).str.lower())
            held = held.reindex(result.index)
            outcome.results[name] = result[changed_rows(result, held, outputs.get(name, ())).to_numpy()]
        return outcome

    def _value(
        self,
        tables: Mapping[str, SparkTable],
        jobs: set[str],
        directory: Path,
        now: datetime,
        outputs: Mapping[str, Sequence[OutputColumn]],
    ) -> list[JobOutcome]:
        orders = tables.get("order")
        if orders is None:
            empty = self.spark.createDataFrame([], "customer_id string")
            orders = SparkTable(empty, {"customer_id": "text"}, "order_id")
        found = spark_value.customer_value_jobs(
            orders, jobs, config_path=directory / "customer_value.toml", as_of=now, spark=self.spark
        )
        by_job = {o.job: o for o in found.outcomes}
        for job, per_table in found.results.items():
            for name, frame in per_table.items():
                table = tables.get(name)
                if table is None:
                    continue
                changed = self._changed(frame, table, outputs.get(name, ()))
                if not changed.empty:
                    by_job[job].results[name] = changed
        return found.outcomes

    # ------------------------------------------------------------------ changed values only

    def _changed(self, results: Any, table: SparkTable, outputs: Sequence[OutputColumn]) -> pd.DataFrame:
        """Collect the result rows whose written value differs from the table's ``out_`` columns."""
        from pyspark.sql import functions as F

        result_columns = [c for c in results.columns if c != "_id"]
        held_columns = [o.mirror_column for o in outputs if o.mirror_column in table.frame.columns]
        held = table.frame.select(
            F.lower(F.col(table.id_column)).alias("_id"), *[F.col(c) for c in dict.fromkeys(held_columns)]
        )
        joined = results.withColumn("_id", F.lower("_id")).join(held, on="_id", how="left")
        held_types = {c: table.dtypes.get(c, "text") for c in held_columns}
        wanted = list(outputs)

        def keep(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
            for batch in batches:
                if batch.empty:
                    continue
                batch = batch.set_index("_id")
                mask = changed_rows(batch[result_columns], restore(batch[held_columns], held_types), wanted)
                yield batch.loc[mask.to_numpy(), result_columns].reset_index()

        schema = results.select("_id", *result_columns).schema
        collected = joined.mapInPandas(keep, schema).toPandas()
        frame = collected.set_index("_id")
        frame.index = pd.Index(frame.index.astype(str), dtype=object, name=None)
        return frame
