"""Write the sandbox's data as a Dataverse lake export, so lake-fed runs can be tested offline.

Two layouts, as Azure Synapse Link for Dataverse and Microsoft Fabric Link write them, one folder
per table named by its logical name:

- ``delta``: each table a Delta table (Parquet files and a ``_delta_log`` with one commit).
- ``csv``: headerless CSV partitions per table and a ``model.json`` (CDM) at the root that lists
  every table's attributes with their data types and its partitions.

Values are what Dataverse exports: choice columns as their option numbers, lookups as the GUID
under the column's logical name (``parentcontactid``), date-times as ISO 8601 UTC text, and every
row with ``IsDelete`` false. Custom columns (``dvs_leadscore`` after ``dvsync provision``) are
exported with the rest. The sandbox's SQLite file is read directly (no server needs to run).
"""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Literal

import pandas as pd

from connector.sandbox.catalog import TABLES
from connector.sandbox.schema import Column
from connector.sandbox.storage import column_from_json

__all__ = ["LAKE_FORMATS", "export_lake"]

LAKE_FORMATS = ("delta", "csv")

_CDM_TYPES = {
    "Integer": "int64",
    "BigInt": "int64",
    "Picklist": "int64",
    "State": "int64",
    "Status": "int64",
    "Boolean": "boolean",
    "Decimal": "decimal",
    "Double": "double",
    "Money": "decimal",
    "DateTime": "dateTime",
    "Uniqueidentifier": "guid",
    "Lookup": "guid",
    "Customer": "guid",
    "Owner": "guid",
}


def _companions(db: sqlite3.Connection, entity: str, columns: list[Column]) -> dict[str, str]:
    """Polymorphic lookup -> the stored column naming its target table (``customeridtype``)."""
    stored = {row[1] for row in db.execute(f'PRAGMA table_info("{entity}")')}
    return {c.logical_name: c.type_column for c in columns if c.type_column and c.type_column in stored}


def _columns(db: sqlite3.Connection, entity: str, base: tuple[Column, ...]) -> list[Column]:
    columns = list(base)
    known = {c.logical_name for c in columns}
    for (text,) in db.execute("SELECT definition FROM _dv_columns WHERE entity = ?", (entity,)):
        column = column_from_json(text)
        if column.logical_name not in known:
            columns.append(column)
    stored = {row[1] for row in db.execute(f'PRAGMA table_info("{entity}")')}
    return [c for c in columns if c.logical_name in stored and not c.internal]


def _typed(frame: pd.DataFrame, columns: list[Column], companions: dict[str, str]) -> pd.DataFrame:
    """The stored text/number values in the export's types (numbers stay numbers, flags booleans).

    A polymorphic lookup's table goes in ``<lookup>_entitytype``, as the lake export carries it.
    """
    out = pd.DataFrame(index=frame.index)
    for column in columns:
        values = frame[column.logical_name]
        kind = _CDM_TYPES.get(column.attribute_type, "string")
        if kind == "int64":
            out[column.logical_name] = pd.to_numeric(values).astype("Int64")
        elif kind == "boolean":
            out[column.logical_name] = pd.to_numeric(values).astype("Int64").astype("boolean")
        elif kind in ("decimal", "double"):
            out[column.logical_name] = pd.to_numeric(values).astype(float)
        else:
            out[column.logical_name] = values.astype("string")
    for lookup, companion in companions.items():
        out[f"{lookup}_entitytype"] = frame[companion].astype("string")
    out["IsDelete"] = pd.array([False] * len(out), dtype="boolean")
    return out


def _write_delta(frame: pd.DataFrame, columns: list[Column], folder: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    (folder / "_delta_log").mkdir(parents=True)
    name = f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, folder / name)
    fields = [
        {"name": f.name, "type": _delta_type(f.type), "nullable": True, "metadata": {}} for f in table.schema
    ]
    now = int(time.time() * 1000)
    actions = [
        {"protocol": {"minReaderVersion": 1, "minWriterVersion": 2}},
        {
            "metaData": {
                "id": str(uuid.uuid4()),
                "format": {"provider": "parquet", "options": {}},
                "schemaString": json.dumps({"type": "struct", "fields": fields}),
                "partitionColumns": [],
                "configuration": {},
                "createdTime": now,
            }
        },
        {
            "add": {
                "path": name,
                "partitionValues": {},
                "size": (folder / name).stat().st_size,
                "modificationTime": now,
                "dataChange": True,
            }
        },
    ]
    log = folder / "_delta_log" / f"{0:020d}.json"
    log.write_text("\n".join(json.dumps(a) for a in actions) + "\n", encoding="utf-8")
    del columns


def _delta_type(arrow_type: object) -> str:
    text = str(arrow_type)
    return {"int64": "long", "double": "double", "bool": "boolean"}.get(text, "string")


def _write_csv(frame: pd.DataFrame, folder: Path) -> Path:
    folder.mkdir(parents=True)
    path = folder / "1.csv"
    # Synapse Link's CSV: no header, quotes where needed, missing values empty, booleans True/False.
    frame.to_csv(path, header=False, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    return path


def export_lake(
    data_dir: str | Path, target: str | Path, *, layout: Literal["delta", "csv"] = "delta"
) -> Path:
    """Export every sandbox table to ``target`` as a lake export of the given layout.

    Args:
        data_dir: the sandbox's data directory (with ``sandbox.sqlite``).
        target: the export folder (replaced when it exists).
        layout: ``delta`` (Fabric Link / Synapse Link Delta) or ``csv`` (CSV with model.json).

    Returns:
        The export folder.

    Raises:
        ValueError: an unknown layout, or no sandbox data in ``data_dir``.
    """
    if layout not in LAKE_FORMATS:
        raise ValueError(f"unknown lake layout {layout!r}; use one of {', '.join(LAKE_FORMATS)}")
    database = Path(data_dir) / "sandbox.sqlite"
    if not database.exists():
        raise ValueError(
            f"{data_dir} holds no sandbox data (no sandbox.sqlite); start the sandbox once first"
        )
    root = Path(target)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    entities = []
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        for table in TABLES:
            columns = _columns(db, table.logical_name, table.columns)
            companions = _companions(db, table.logical_name, columns)
            selected = dict.fromkeys([*(c.logical_name for c in columns), *companions.values()])
            names = ", ".join(f'"{c}"' for c in selected)
            raw = pd.read_sql_query(f'SELECT {names} FROM "{table.logical_name}"', db)
            frame = _typed(raw, columns, companions)
            folder = root / table.logical_name
            if layout == "delta":
                _write_delta(frame, columns, folder)
                continue
            path = _write_csv(frame, folder)
            attributes = [
                {"name": c.logical_name, "dataType": _CDM_TYPES.get(c.attribute_type, "string")}
                for c in columns
            ]
            attributes += [{"name": f"{lookup}_entitytype", "dataType": "string"} for lookup in companions]
            attributes.append({"name": "IsDelete", "dataType": "boolean"})
            entities.append(
                {
                    "$type": "LocalEntity",
                    "name": table.logical_name,
                    "attributes": attributes,
                    "partitions": [{"name": path.stem, "location": f"{table.logical_name}/{path.name}"}],
                }
            )
    finally:
        db.close()
    if layout == "csv":
        model = {"name": "cdm", "version": "1.0", "entities": entities}
        (root / "model.json").write_text(json.dumps(model, indent=1), encoding="utf-8")
    return root
