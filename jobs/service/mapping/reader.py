"""Turning Dataverse's JSON records into DataFrames with canonical column names and types."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from jobs.service.mapping.catalogue import LOOKUP_ANNOTATION, LOOKUP_LOGICAL_NAME, OBJECT_TYPE_CODES
from jobs.service.mapping.model import FieldMapping, OutputColumn, TableMapping
from jobs.service.mapping.org import option_labels

log = logging.getLogger(__name__)

MAX_PROBLEMS = 100
"""Unreadable values described per table and sync in the report (each is logged)."""


@dataclass(frozen=True)
class TableReader:
    """A mapping bound to the org's table definition: the ``$select`` and the record conversion.

    Attributes:
        mapping: the table's mapping.
        entity_set: the Web API entity set to read.
        primary_id: the primary key column's logical name.
        labels: per choice field, option value → label (the file's map over the org's labels).
        outputs: output columns that exist in the org, read so the plan can compare with them.
        change_tracking: whether the org tracks changes on this table.
    """

    mapping: TableMapping
    entity_set: str
    primary_id: str
    labels: dict[str, dict[Any, str]] = field(default_factory=dict)
    outputs: tuple[OutputColumn, ...] = ()
    change_tracking: bool = True

    @classmethod
    def bind(
        cls, mapping: TableMapping, table_definition: Any, outputs: Sequence[OutputColumn] = ()
    ) -> TableReader:
        """Bind a mapping to the org's definition of its table (as ``get_table`` returns it)."""
        attributes: Mapping[str, Any] = getattr(table_definition, "attributes", {}) or {}
        labels: dict[str, dict[Any, str]] = {}
        for name, fm in mapping.fields.items():
            if fm.type in ("choice", "multichoice"):
                org = option_labels(attributes.get(fm.column)) if fm.column else {}
                labels[name] = {**org, **(fm.values or {})}
            elif fm.values:
                labels[name] = dict(fm.values)
        present = tuple(o for o in outputs if o.logical_name in attributes)
        return cls(
            mapping=mapping,
            entity_set=mapping.entity_set or table_definition.entity_set_name,
            primary_id=table_definition.primary_id_attribute,
            labels=labels,
            outputs=present,
            change_tracking=bool(getattr(table_definition, "change_tracking_enabled", True)),
        )

    @property
    def select(self) -> list[str]:
        """The ``$select``: the primary key, ``modifiedon``, every mapped column and existing outputs."""
        names = [self.primary_id, "modifiedon"]
        for fm in self.mapping.fields.values():
            names.extend(fm.select)
        names.extend(o.logical_name for o in self.outputs)
        return list(dict.fromkeys(names))

    @property
    def annotations(self) -> list[str]:
        """The instance annotations to ask for with ``Prefer: odata.include-annotations``.

        ``Microsoft.Dynamics.CRM.lookuplogicalname`` when a field needs the table a lookup points at
        (a ``lookup_type`` field, or a ``lookup`` with ``targets``); nothing otherwise, so a read
        without polymorphic fields stays as small as before.
        """
        if any(fm.needs_lookup_table for fm in self.mapping.fields.values()):
            return [LOOKUP_LOGICAL_NAME]
        return []

    @property
    def columns(self) -> dict[str, str]:
        """The mirror columns this reader fills (canonical name → storage type), id first."""
        columns = {self.mapping.id_column: "text"}
        columns.update({name: fm.dtype for name, fm in self.mapping.fields.items()})
        columns.update({o.mirror_column: o.dtype for o in self.outputs})
        return columns

    @property
    def fingerprint(self) -> str:
        """A digest of what is read and how: when it changes, the mirror table is re-read in full."""
        parts = {
            "entity_set": self.entity_set,
            "select": self.select,
            "annotations": self.annotations,
            "fields": {
                n: [f.type, f.column, sorted(map(str, f.targets)), f.type_column, str(f.value)]
                for n, f in self.mapping.fields.items()
            },
            "labels": {n: sorted((str(k), v) for k, v in m.items()) for n, m in self.labels.items()},
            "outputs": {o.mirror_column: [o.logical_name, o.type] for o in self.outputs},
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]

    def frame(self, records: Sequence[Mapping[str, Any]], problems: list[str] | None = None) -> pd.DataFrame:
        """Convert Web API records into a DataFrame with canonical columns and system columns.

        The result has the id column, every mapped field, ``out_*`` columns for existing outputs,
        and ``_modifiedon`` (UTC) and ``_etag``. Date-times keep Dataverse's whole range
        (0001-01-01 to 9999-12-31, microseconds); one that cannot be read at all is left empty and
        described in ``problems`` with its record id, so one bad value never blocks a table.

        Raises:
            ConfigError: a value the mapping's type cannot read (names the file, line and key).
        """
        raw = pd.DataFrame.from_records(list(records)) if records else pd.DataFrame()
        index = raw.index
        out = pd.DataFrame(index=index)
        out[self.mapping.id_column] = _column(raw, self.primary_id).astype("string").str.lower()
        for name, fm in self.mapping.fields.items():
            try:
                out[name] = self._convert(raw, name, fm)
                if fm.type == "datetime":
                    _report_unreadable(raw, out, name, fm, self.mapping.id_column, problems)
            except (ValueError, TypeError) as exc:
                raise self.mapping.error(
                    ("fields", name, "type"),
                    f"`{fm.column}` holds a value that type `{fm.type}` cannot read ({exc})",
                    "check the column's type in Dynamics and fix `type`",
                ) from None
        for output in self.outputs:
            out[output.mirror_column] = _convert_output(_column(raw, output.logical_name), output)
        out["_modifiedon"] = _to_utc(_column(raw, "modifiedon"))
        out["_etag"] = _column(raw, "@odata.etag").astype("string")
        return out

    def _convert(self, raw: pd.DataFrame, name: str, fm: FieldMapping) -> pd.Series:
        if fm.type == "constant":
            return pd.Series([fm.value] * len(raw), index=raw.index, dtype=object)
        source = f"_{fm.column}_value" if fm.type in ("lookup", "lookup_type") else str(fm.column)
        values = _column(raw, source)
        if fm.type == "string":
            return values.astype("string")
        if fm.type == "integer":
            numbers = pd.to_numeric(values, errors="raise")
            if fm.values:
                return _label(numbers, self.labels.get(name, {}))
            return numbers.astype("Int64")
        if fm.type in ("float", "money"):
            return pd.to_numeric(values, errors="raise").astype(float)
        if fm.type == "datetime":
            return _to_utc(values)
        if fm.type == "boolean":
            flags = values.map(_to_bool, na_action="ignore")
            if fm.values:
                return flags.map(fm.values, na_action="ignore").astype("string")
            return flags.astype("boolean")
        if fm.type == "choice":
            return _label(pd.to_numeric(values, errors="raise"), self.labels.get(name, {}))
        if fm.type == "multichoice":
            labels = self.labels.get(name, {})
            return values.map(
                lambda text: "; ".join(
                    labels.get(int(v), v.strip()) for v in str(text).split(",") if v.strip()
                ),
                na_action="ignore",
            ).astype("string")
        table_of = self._lookup_tables(raw, fm)
        if fm.type == "lookup_type":
            return table_of
        ids = values.astype("string").str.lower()
        if fm.targets:
            # Keep a reference only when it points at one of the targets; one whose table is unknown
            # (no annotation, no companion column) is kept, as the mapping cannot tell.
            ids = ids.where(table_of.isna() | table_of.isin(fm.targets))
        return ids

    def _lookup_tables(self, raw: pd.DataFrame, fm: FieldMapping) -> pd.Series:
        annotated = _column(raw, f"_{fm.column}_value{LOOKUP_ANNOTATION}")
        if fm.type_column:
            companion = _column(raw, fm.type_column).map(_table_name, na_action="ignore")
            annotated = annotated.where(annotated.notna(), companion)
        return annotated.astype("string")


def _column(raw: pd.DataFrame, name: str) -> pd.Series:
    if name in raw.columns:
        return raw[name].astype(object).where(raw[name].notna(), None)
    return pd.Series([None] * len(raw), index=raw.index, dtype=object)


def _label(numbers: pd.Series, labels: Mapping[Any, str]) -> pd.Series:
    codes = numbers.astype("Int64")
    named = codes.map(labels, na_action="ignore") if labels else pd.Series(pd.NA, index=codes.index)
    unknown = codes.notna() & named.isna()
    if unknown.any():
        # An option the file and the org's metadata do not name: keep its number rather than drop it.
        log.warning("option values without a label: %s", sorted(set(codes[unknown].astype(int))))
        named = named.where(~unknown, codes.astype("string"))
    return named.astype("string")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ValueError(f"{value!r} is not a boolean")


def _table_name(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return OBJECT_TYPE_CODES.get(int(value), str(int(value)))
    text = str(value).strip()
    return OBJECT_TYPE_CODES.get(int(text), text) if text.isdigit() else text.lower()


def _to_utc(values: pd.Series) -> pd.Series:
    # Microseconds, not pandas' default nanoseconds: those end at 2262-04-11, and Dataverse holds
    # dates up to 9999-12-31 (a common "no end" sentinel) and from 0001-01-01.
    return pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601").dt.as_unit("us")


def _report_unreadable(
    raw: pd.DataFrame,
    out: pd.DataFrame,
    name: str,
    fm: FieldMapping,
    id_column: str,
    problems: list[str] | None,
) -> None:
    """Describe each value that was sent but could not be read as a date-time (now left empty)."""
    sent = _column(raw, str(fm.column))
    lost = sent.notna() & out[name].isna()
    if not lost.any():
        return
    for record_id, value in zip(out.loc[lost, id_column], sent[lost], strict=True):
        message = f"record {record_id}: `{fm.column}` = {str(value)[:40]!r} is not a date-time; stored empty"
        log.warning("%s", message)
        if problems is not None and len(problems) < MAX_PROBLEMS:
            problems.append(message)
        elif problems is not None and len(problems) == MAX_PROBLEMS:
            problems.append("more values could not be read; the log lists every one")


def _convert_output(values: pd.Series, output: OutputColumn) -> pd.Series:
    if output.dtype == "int":
        return pd.to_numeric(values, errors="coerce").astype("Int64")
    if output.dtype == "float":
        return pd.to_numeric(values, errors="coerce").astype(float)
    if output.dtype == "bool":
        return values.map(_to_bool, na_action="ignore").astype("boolean")
    if output.dtype == "datetime":
        return pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    return values.astype("string")
