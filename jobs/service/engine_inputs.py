"""The Spark engine's inputs: the mirror exported to Parquet, or a Dataverse lake export.

- **Mirror**: each mirrored table (and the ``activity`` / ``order`` entities, their tables
  combined as :meth:`Mirror.read_entity` combines them) is written to
  ``<mirror dir>/parquet/<name>/part-0.parquet`` with the mirror's canonical columns and types,
  replacing the previous export, and read back by Spark.
- **Lake**: an Azure Synapse Link / Microsoft Fabric Link folder, one folder per Dataverse table
  (by logical name): a Delta table (``<table>/_delta_log``; read with Spark's Delta reader when the
  platform has it, else from the log's live files) or CSV partitions described by ``model.json``
  (CDM). Rows flagged ``IsDelete`` are left out. Each partition's raw rows become canonical
  columns with the same :class:`~jobs.service.mapping.reader.TableReader` conversion the sync
  uses (choice labels, lookups, UTC date-times), so a lake-fed run sees what a mirror-fed run sees.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from core.errors import ConfigError
from jobs.engines.frames import SparkTable, spark_type
from jobs.service.mapping.catalogue import LOOKUP_ANNOTATION
from jobs.service.mapping.reader import TableReader
from jobs.service.mirror import Mirror

__all__ = ["ENTITIES", "TARGET_TABLES", "lake_tables", "mirror_tables", "read_lake_table"]

TARGET_TABLES = ("lead", "contact", "account")
ENTITIES = ("activity", "order")


# ------------------------------------------------------------------------------------ mirror


def _write_parquet(frame: pd.DataFrame, directory: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    # Microsecond timestamps: every Spark version reads them (nanoseconds it may refuse).
    pq.write_table(
        table, directory / "part-0.parquet", coerce_timestamps="us", allow_truncated_timestamps=True
    )


def mirror_tables(mirror: Mirror, spark: Any, export_dir: Path) -> dict[str, SparkTable]:
    """Export the mirror's target tables and entities to Parquet and open them on Spark."""
    layouts = mirror.layouts()
    out: dict[str, SparkTable] = {}
    for name in TARGET_TABLES:
        if name not in layouts:
            continue
        layout = layouts[name]
        frame = mirror.read_frame(name)
        out[name] = _open(frame, dict(layout.columns), layout.id_column, export_dir / name, spark)
    for entity in ENTITIES:
        names = [n for n, layout in layouts.items() if layout.entity == entity]
        if not names:
            continue
        frame = mirror.read_entity(entity)
        dtypes: dict[str, str] = {}
        for n in names:
            dtypes.update(dict(layouts[n].columns))
        out[entity] = _open(frame, dtypes, layouts[names[0]].id_column, export_dir / entity, spark)
    return out


def _open(
    frame: pd.DataFrame, dtypes: dict[str, str], id_column: str, directory: Path, spark: Any
) -> SparkTable:
    typed = frame.copy()
    for column in typed.columns:
        if dtypes.get(column, "text") == "text":
            typed[column] = typed[column].astype("string")  # all-missing object columns need a type
    _write_parquet(typed, directory)
    return SparkTable(spark.read.parquet(str(directory)), dtypes, id_column)


# ------------------------------------------------------------------------------------ lake


def _model_json(root: Path) -> dict[str, Any] | None:
    path = root / "model.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"{path} is not a readable model.json ({exc})", hint="re-export the folder"
        ) from None


_CDM_TYPES = {
    "int64": "bigint",
    "int32": "int",
    "decimal": "double",
    "double": "double",
    "boolean": "boolean",
    "datetime": "string",
    "datetimeoffset": "string",
    "guid": "string",
    "string": "string",
}


def read_lake_table(root: Path, logical_name: str, spark: Any) -> Any | None:
    """The raw rows of one Dataverse table from a lake export folder, or None when it has none.

    Raises:
        ConfigError: a table folder that is neither Delta nor described in ``model.json``.
    """
    folder = root / logical_name
    if (folder / "_delta_log").is_dir():
        frame = _read_delta(folder, spark)
    else:
        model = _model_json(root)
        entity = next(
            (e for e in (model or {}).get("entities", []) if str(e.get("name", "")).lower() == logical_name),
            None,
        )
        if entity is None:
            return None
        schema = ", ".join(
            f"`{a['name']}` {_CDM_TYPES.get(str(a.get('dataType', 'string')).lower(), 'string')}"
            for a in entity.get("attributes", [])
        )
        files = [_local_partition(root, logical_name, p) for p in entity.get("partitions", [])]
        files = [str(f) for f in files if f.exists()]
        if not files:
            return spark.createDataFrame([], schema)
        # Synapse Link's CSV: no header, RFC 4180 quoting, values may span lines.
        frame = spark.read.csv(files, schema=schema, header=False, multiLine=True, escape='"')
    if "IsDelete" in frame.columns:
        from pyspark.sql import functions as F

        frame = frame.where(
            F.col("IsDelete").isNull() | (F.lower(F.col("IsDelete").cast("string")) != "true")
        )
    return frame


def _local_partition(root: Path, logical_name: str, partition: Mapping[str, Any]) -> Path:
    """A partition's file in this copy of the folder (model.json holds the storage account's URL)."""
    location = str(partition.get("location", ""))
    name = location.rstrip("/").rsplit("/", 1)[-1] or f"{partition.get('name', '')}.csv"
    return root / logical_name / name


def _read_delta(folder: Path, spark: Any) -> Any:
    """A Delta table: Spark's Delta reader when present, else the live files of its log."""
    try:
        return spark.read.format("delta").load(str(folder))
    except Exception:  # the Delta data source is not installed here (no delta-spark jars)
        pass
    live: dict[str, bool] = {}
    for entry in sorted((folder / "_delta_log").glob("*.json")):
        for line in entry.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            action = json.loads(line)
            if "add" in action:
                live[action["add"]["path"]] = True
            elif "remove" in action:
                live.pop(action["remove"]["path"], None)
    if (folder / "_delta_log" / "_last_checkpoint").exists():
        raise ConfigError(
            f"{folder} is a Delta table with checkpoints, which this reader does not follow",
            hint="run on a Spark with Delta Lake (Databricks, Fabric, Synapse, or delta-spark)",
        )
    return spark.read.parquet(*[str(folder / p) for p in live])


def _web_api_records(batch: pd.DataFrame, reader: TableReader) -> list[dict[str, Any]]:
    """Raw lake rows as Web API records: a lookup ``x`` is ``_x_value``, its table an annotation."""
    renamed: dict[str, str] = {}
    for fm in reader.mapping.fields.values():
        if fm.type in ("lookup", "lookup_type") and fm.column in batch.columns:
            renamed[fm.column] = f"_{fm.column}_value"
            kind = f"{fm.column}_entitytype"
            if kind in batch.columns:
                renamed[kind] = f"_{fm.column}_value{LOOKUP_ANNOTATION}"
    frame = batch.rename(columns=renamed)
    frame = frame.astype(object).where(frame.notna(), None)
    return frame.to_dict("records")


def _canonical(frame: Any, reader: TableReader) -> SparkTable:
    """Convert a lake table's raw rows to canonical columns on the executors."""
    dtypes = dict(reader.columns)
    schema = ", ".join(f"`{c}` {spark_type(t)}" for c, t in dtypes.items())

    def convert(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            if batch.empty:
                continue
            out = reader.frame(_web_api_records(batch, reader))[list(dtypes)]
            for column, dtype in dtypes.items():
                if dtype == "datetime":
                    out[column] = out[column].dt.tz_convert("UTC").dt.tz_localize(None)
                elif dtype == "text":
                    out[column] = out[column].astype(object).where(out[column].notna(), None)
            yield out

    return SparkTable(frame.mapInPandas(convert, schema), dtypes, reader.mapping.id_column)


def lake_tables(root: Path, readers: Mapping[str, TableReader], spark: Any) -> dict[str, SparkTable]:
    """Open the mapped tables of a lake export folder as canonical tables (entities combined).

    Args:
        root: the export folder.
        readers: per mirror table, its mapping bound to the org (choice labels, outputs).
        spark: the session.

    Raises:
        ConfigError: the folder does not exist or holds none of the mapped tables.
    """
    if not root.is_dir():
        raise ConfigError(f"the lake export folder {root} does not exist", key="engine.spark.lake_path")
    out: dict[str, SparkTable] = {}
    by_entity: dict[str, list[SparkTable]] = {}
    for name, reader in readers.items():
        raw = read_lake_table(root, reader.mapping.table, spark)
        if raw is None:
            continue
        table = _canonical(raw, reader)
        if name in TARGET_TABLES:
            out[name] = table
        if reader.mapping.entity in ENTITIES:
            by_entity.setdefault(reader.mapping.entity, []).append(table)
    if not out and not by_entity:
        raise ConfigError(
            f"the lake export folder {root} holds none of the mapped tables "
            f"({', '.join(sorted(r.mapping.table for r in readers.values()))})",
            key="engine.spark.lake_path",
            hint="point lake_path at the folder with one folder per table (and model.json for CSV)",
        )
    for entity, parts in by_entity.items():
        combined = parts[0].frame
        dtypes = dict(parts[0].dtypes)
        for part in parts[1:]:
            combined = combined.unionByName(part.frame, allowMissingColumns=True)
            dtypes.update(part.dtypes)
        out[entity] = SparkTable(combined, dtypes, parts[0].id_column)
    return out
