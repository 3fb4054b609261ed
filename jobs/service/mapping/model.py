"""The parsed mapping files: field and table mappings, output columns, and the problems found."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ConfigError
from core.tomlfile import TomlFile, closest
from jobs.service.mapping.catalogue import DEFAULT_MAX_LENGTH, ENTITY_IDS, MIRROR_DTYPE, PRODUCES


class MappingErrors(ConfigError):
    """Several configuration problems, reported together so the user fixes them in one pass.

    Attributes:
        problems: each problem as its own ConfigError (file, line, key, hint).
    """

    def __init__(self, problems: Sequence[ConfigError]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        head = "1 problem" if count == 1 else f"{count} problems"
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{head} in the configuration:\n{lines}")

    def _render(self) -> str:
        return self.message


class Problems:
    """Collects configuration problems so that all of them are reported at once."""

    def __init__(self) -> None:
        self.items: list[ConfigError] = []

    def add(self, problem: ConfigError) -> None:
        """Record one problem (a MappingErrors is flattened into its parts)."""
        if isinstance(problem, MappingErrors):
            self.items.extend(problem.problems)
        else:
            self.items.append(problem)

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_if_any(self) -> None:
        """Raise a MappingErrors holding every problem recorded, if there is one."""
        if self.items:
            raise MappingErrors(self.items)


@dataclass(frozen=True)
class FieldMapping:
    """One canonical field and how it is read from the org.

    Attributes:
        name: the canonical field name (``email``).
        type: one of FIELD_TYPES.
        column: the org column's logical name; a lookup by its name (``parentcustomerid``).
        values: option value (or ``true``/``false``) to label, when the file gives one.
        targets: for lookups, the tables the value may point at; others are read as empty.
        type_column: a column of the org's naming the table a polymorphic lookup points at (a
            custom text column; the standard EntityName companions are not Web API properties,
            and ``dvsync check`` refuses them). The annotation wins when both are present.
        value: the value of a ``constant`` field.
    """

    name: str
    type: str
    column: str | None = None
    values: dict[Any, str] | None = None
    targets: tuple[str, ...] = ()
    type_column: str | None = None
    value: Any = None

    @property
    def produces(self) -> str:
        """The kind of value this field holds once read: text, number, datetime, bool or id."""
        if self.type in ("boolean", "integer") and self.values:
            return "text"
        return PRODUCES[self.type]

    @property
    def dtype(self) -> str:
        """The mirror's storage type: text, float, datetime or bool."""
        if self.type == "integer" and not self.values:
            return "int"  # a count stays an integer in the DataFrame (nullable Int64)
        return MIRROR_DTYPE[self.produces]

    @property
    def select(self) -> list[str]:
        """The Web API property names this field needs in ``$select``."""
        if self.type == "constant" or self.column is None:
            return []
        names = [f"_{self.column}_value" if self.type in ("lookup", "lookup_type") else self.column]
        if self.type_column:
            names.append(self.type_column)
        return names

    @property
    def needs_lookup_table(self) -> bool:
        """Whether reading this field needs the table each lookup value points at."""
        return self.type == "lookup_type" or (self.type == "lookup" and bool(self.targets))


@dataclass(frozen=True)
class TableMapping:
    """One source table's mapping file, validated.

    Attributes:
        name: the mirror table's name, the file's stem (``lead``, ``salesorder``, ``email``).
        table: the Dataverse table's logical name.
        entity: the canonical entity (lead, account, contact, order, activity).
        fields: canonical name to field mapping, in file order.
        enabled: False leaves the table out of sync.
        entity_set: the Web API entity set, when the file overrides what the metadata says.
        doc: the parsed file, for errors that point at a line.
    """

    name: str
    table: str
    entity: str
    fields: dict[str, FieldMapping]
    enabled: bool = True
    entity_set: str | None = None
    doc: TomlFile | None = field(default=None, repr=False, compare=False)

    @property
    def id_column(self) -> str:
        """The canonical name of the primary key (``lead_id``)."""
        return ENTITY_IDS[self.entity]

    def error(self, key: str | tuple, message: str, hint: str | None = None) -> ConfigError:
        """Build a ConfigError pointing at ``key`` in this mapping's file."""
        if self.doc is not None:
            return self.doc.error(key, message, hint)
        return ConfigError(message, key=key if isinstance(key, str) else ".".join(map(str, key)), hint=hint)


OUTPUT_TYPES: dict[str, frozenset[str]] = {
    # output type -> the AttributeTypes an existing column may have and still take the value
    "integer": frozenset({"Integer", "BigInt"}),
    "decimal": frozenset({"Decimal", "Double", "Money"}),
    "string": frozenset({"String", "Memo"}),
    "memo": frozenset({"Memo", "String"}),
    "boolean": frozenset({"Boolean"}),
    "datetime": frozenset({"DateTime"}),
    "date": frozenset({"DateTime"}),
    "choice": frozenset({"Picklist"}),
}


@dataclass(frozen=True)
class OutputColumn:
    """Where one result is written: a column on lead, contact or account.

    Attributes:
        table: the target mapping's name (``lead``, ``contact``, ``account``).
        result: the result's name (``score``, ``rfm_segment``).
        schema_name: the column's SchemaName, publisher prefix included (``new_LeadScore``).
        type: one of OUTPUT_TYPES.
        display_name: the label a salesperson sees on the form.
        description: the column's tooltip: what the value means and where it comes from.
        max_length: for string and memo columns.
        precision: decimal places, for decimal columns.
        min_value: the smallest value the column accepts (numbers).
        max_value: the largest value the column accepts (numbers).
        scale: the result is multiplied by this before it is written (0..1 as a percentage: 100).
        enabled: False means the result is computed but never written.
        options: for choice columns, the (value, label) pairs; a result is written as the value
            of its label.
    """

    table: str
    result: str
    schema_name: str
    type: str
    display_name: str
    description: str
    max_length: int | None = None
    precision: int | None = None
    min_value: float | None = None
    max_value: float | None = None
    scale: float = 1.0
    enabled: bool = True
    options: tuple[tuple[int, str], ...] = ()

    @property
    def logical_name(self) -> str:
        """The column's logical name: its schema name in lower case."""
        return self.schema_name.lower()

    @property
    def mirror_column(self) -> str:
        """The mirror column that holds what Dynamics currently has in this column."""
        return f"out_{self.result}"

    @property
    def dtype(self) -> str:
        """The mirror's storage type for this column's value."""
        return {
            "integer": "int",
            "decimal": "float",
            "string": "text",
            "memo": "text",
            "boolean": "bool",
            "datetime": "datetime",
            "date": "datetime",
            "choice": "int",
        }[self.type]

    def to_wire(self, values: pd.Series, *, scaled: bool = False) -> list[Any]:
        """Convert result values into the JSON values a PATCH sends, None for a missing value.

        Numbers are scaled, rounded to the column's precision and clipped to its range; text loses
        control and bidi-override characters (:data:`UNSAFE_TEXT`) and is cut to the column's
        length (ending in an ellipsis, so a reader sees it was cut); date-times are
        sent as UTC ISO 8601 and dates as ``YYYY-MM-DD``.

        Args:
            values: the results (or, with ``scaled=True``, values already in the column's units,
                such as the mirror's ``out_<result>`` column: the same conversion then gives the
                form to compare a planned value with, so that an unchanged value is not rewritten).
            scaled: skip the multiplication by ``scale``.
        """
        if self.type in ("integer", "decimal"):
            factor = 1.0 if scaled else self.scale
            numbers = pd.to_numeric(values, errors="coerce").astype(float) * factor
            if self.min_value is not None or self.max_value is not None:
                numbers = numbers.clip(lower=self.min_value, upper=self.max_value)
            digits = 0 if self.type == "integer" else (2 if self.precision is None else self.precision)
            numbers = numbers.round(digits)
            array = numbers.to_numpy()
            finite = np.isfinite(array)
            # Vectorised into Python ints / floats (an object array's tolist() keeps them as such).
            kept = np.where(finite, array, 0).astype(np.int64 if self.type == "integer" else float)
            out = kept.astype(object)
            out[~finite] = None
            return out.tolist()
        if self.type in ("string", "memo"):
            limit = self.max_length or DEFAULT_MAX_LENGTH[self.type]
            # Python strings, not pyarrow's: UNSAFE_TEXT matches lone surrogates, which a pyarrow
            # regex (UTF-8 only) cannot even be given, and pyarrow is installed with the Spark extra.
            text = values.astype(pd.StringDtype("python")).str.replace(UNSAFE_TEXT, "", regex=True)
            long = text.str.len() > limit
            text = text.where(~long.fillna(False), text.str.slice(0, limit - 1) + "…")
            return text.to_numpy(dtype=object, na_value=None).tolist()
        if self.type == "boolean":
            return [None if pd.isna(v) else bool(v) for v in values]
        if self.type == "choice":
            if self.options:  # options from outputs.toml: the job's labels become their values
                return self._choice_values(values)
            # dvsync's own choices (OUTPUT_CHOICES): the org assigned the values, already numbers.
            numbers = pd.to_numeric(values, errors="coerce")
            return [None if pd.isna(v) else int(v) for v in numbers]
        stamps = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
        pattern = "%Y-%m-%d" if self.type == "date" else "%Y-%m-%dT%H:%M:%SZ"
        text = stamps.dt.strftime(pattern) if isinstance(stamps, pd.Series) else stamps.strftime(pattern)
        return [None if pd.isna(v) else str(v) for v in text]

    def _choice_values(self, values: pd.Series) -> list[Any]:
        """Labels (any case) or option values to option values; anything else is a bug upstream."""
        by_label = {label.casefold(): value for value, label in self.options}
        known = {value for value, _ in self.options}
        out: list[Any] = []
        for v in values:
            if v is None or (not isinstance(v, str) and pd.isna(v)):
                out.append(None)
            elif isinstance(v, str) and v.casefold() in by_label:
                out.append(by_label[v.casefold()])
            elif not isinstance(v, str) and int(v) in known:
                out.append(int(v))
            else:
                raise ValueError(f"{v!r} is not an option of {self.schema_name} ({', '.join(by_label)})")
        return out


UNSAFE_TEXT = "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
"""Removed from text before it is written: control characters (NUL, escape; tab and line breaks
stay), the bidi embeddings, overrides and isolates that make text display in another order than
it reads ("Trojan Source"), and lone surrogates, which are not valid UTF-8. Names and notes copied
from the data into a factor text or a duplicate's label must not carry them into Dynamics."""


@dataclass(frozen=True)
class MappingSet:
    """Every mapping file of a directory, validated.

    Attributes:
        directory: where the files were read from.
        tables: mirror table name to its mapping, in file-name order.
        outputs: every output column declared in ``outputs.toml`` (disabled ones included).
        outputs_doc: the parsed ``outputs.toml``, for errors that point at a line.
    """

    directory: Path
    tables: dict[str, TableMapping]
    outputs: list[OutputColumn]
    outputs_doc: TomlFile | None = field(default=None, repr=False, compare=False)

    def enabled_tables(self, only: Iterable[str] | None = None) -> list[TableMapping]:
        """The tables to sync: the enabled ones, or those named in ``only`` (names or logical names)."""
        if not only:
            return [t for t in self.tables.values() if t.enabled]
        chosen = []
        for wanted in only:
            match = self.tables.get(wanted) or next(
                (t for t in self.tables.values() if t.table == wanted), None
            )
            if match is None:
                names = sorted(self.tables)
                guess = closest(wanted, names)
                hint = f"did you mean `{guess[0]}`?" if guess else f"mapped tables: {', '.join(names)}"
                raise ConfigError(f"no mapping for table `{wanted}` in {self.directory}", hint=hint)
            chosen.append(match)
        return chosen

    def by_entity(self, entity: str) -> list[TableMapping]:
        """The enabled tables that hold rows of a canonical entity (several for ``activity``)."""
        return [t for t in self.tables.values() if t.entity == entity and t.enabled]

    def outputs_for(self, table: str, *, enabled_only: bool = True) -> list[OutputColumn]:
        """The output columns written to one mirror table."""
        return [o for o in self.outputs if o.table == table and (o.enabled or not enabled_only)]
