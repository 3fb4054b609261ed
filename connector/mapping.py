"""Mapping files: which org columns feed dvsync's canonical fields, and where results are written.

A consultant edits one TOML file per source table (``mappings/lead.toml``, ``account.toml``,
``contact.toml``, ``salesorder.toml``, ``email.toml``, ...) and one ``outputs.toml``. This module
reads them through :mod:`connector.tomlfile`, validates them without talking to Dataverse (every
problem at once, each naming file, line and key), decides the ``$select`` of each table, and turns
the JSON records Dataverse returns into DataFrames with canonical column names and types:

- choice / state / status values become labels (the file's ``values`` map, else the org's labels);
- date-times become UTC; money and decimals become floats; booleans become bools (or labels);
- lookups are read from ``_<name>_value`` as lower-case GUID strings; the table a polymorphic
  lookup points at comes from the ``Microsoft.Dynamics.CRM.lookuplogicalname`` annotation, which
  the reader asks for (:attr:`TableReader.annotations`) whenever a field needs it. That is how
  Microsoft documents it: the EntityName companion columns (``customeridtype``) are "set
  implicitly" and are not properties the Web API lets a query ``$select``.

Validation against the org's real metadata (does the column exist, is its type compatible) is
:func:`validate_against_org`; ``dvsync check`` calls it. Nothing here does HTTP.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from connector.errors import ConfigError
from connector.tomlfile import TomlFile, closest, load_toml

__all__ = [
    "CANONICAL_FIELDS",
    "ENTITY_IDS",
    "FIELD_TYPES",
    "JOB_REQUIREMENTS",
    "LOOKUP_LOGICAL_NAME",
    "OUTPUT_RESULTS",
    "OUTPUT_TYPES",
    "FieldMapping",
    "MappingErrors",
    "MappingSet",
    "OutputColumn",
    "Problems",
    "TableMapping",
    "TableReader",
    "collect_mappings",
    "load_mappings",
    "load_outputs",
    "load_table_mapping",
    "option_labels",
    "validate_against_org",
    "validate_for_jobs",
]

log = logging.getLogger(__name__)

# The canonical entities and their fields (COMMON.md), each with the kind of value the jobs expect:
# "text", "number", "datetime" or "id" (a GUID string). The id of each entity is implicit: it is the
# table's primary key and is always read.
CANONICAL_FIELDS: dict[str, dict[str, str]] = {
    "lead": {
        "lead_id": "id",
        "first_name": "text",
        "last_name": "text",
        "company": "text",
        "job_title": "text",
        "email": "text",
        "phone": "text",
        "mobile_phone": "text",
        "website": "text",
        "street": "text",
        "city": "text",
        "postcode": "text",
        "country": "text",
        "source": "text",
        "industry": "text",
        "employees": "number",
        "revenue": "number",
        "budget": "number",
        "purchase_timeframe": "text",
        "rating": "text",
        "status": "text",
        "status_reason": "text",
        "created_on": "datetime",
        "modified_on": "datetime",
    },
    "account": {
        "account_id": "id",
        "name": "text",
        "email": "text",
        "phone": "text",
        "website": "text",
        "street": "text",
        "city": "text",
        "postcode": "text",
        "country": "text",
        "industry": "text",
        "employees": "number",
        "revenue": "number",
        "created_on": "datetime",
        "modified_on": "datetime",
    },
    "contact": {
        "contact_id": "id",
        "first_name": "text",
        "last_name": "text",
        "email": "text",
        "phone": "text",
        "mobile_phone": "text",
        "job_title": "text",
        "account_id": "id",
        "street": "text",
        "city": "text",
        "postcode": "text",
        "country": "text",
        "created_on": "datetime",
        "modified_on": "datetime",
    },
    "order": {
        "order_id": "id",
        "customer_id": "id",
        "customer_type": "text",
        "order_date": "datetime",
        "amount": "number",
        "status": "text",
        "created_on": "datetime",
        "modified_on": "datetime",
    },
    "activity": {
        "activity_id": "id",
        "activity_type": "text",
        "lead_id": "id",
        "occurred_on": "datetime",
        "direction": "text",
        "status": "text",
    },
}
ENTITY_IDS: dict[str, str] = {entity: f"{entity}_id" for entity in CANONICAL_FIELDS}

# Which canonical fields each job cannot run without (its defaults; the jobs take column names as
# configuration, so a consultant who renames a field there must map it here).
JOB_REQUIREMENTS: dict[str, dict[str, tuple[str, ...]]] = {
    # Scoring's rules name their own columns and are checked by the scoring job against the mapping.
    "scoring": {"lead": ("status", "created_on")},
    "duplicates": {
        "lead": ("first_name", "last_name", "company", "email", "phone"),
        "contact": ("first_name", "last_name", "email"),
        "account": ("name",),
    },
    "rfm": {"order": ("customer_id", "order_date", "amount", "status")},
    "clv": {"order": ("customer_id", "customer_type", "order_date", "amount", "status")},
}

# How a mapped value is read, and which Dataverse AttributeTypes each way can read.
FIELD_TYPES: dict[str, frozenset[str]] = {
    "string": frozenset({"String", "Memo", "Uniqueidentifier", "EntityName"}),
    "integer": frozenset({"Integer", "BigInt"}),
    "float": frozenset({"Decimal", "Double", "Money", "Integer", "BigInt"}),
    "money": frozenset({"Money", "Decimal", "Double"}),
    "datetime": frozenset({"DateTime"}),
    "boolean": frozenset({"Boolean"}),
    "choice": frozenset({"Picklist", "State", "Status"}),
    "multichoice": frozenset({"Virtual", "MultiSelectPicklist"}),
    "lookup": frozenset({"Lookup", "Customer", "Owner", "Uniqueidentifier"}),
    "lookup_type": frozenset({"Lookup", "Customer", "Owner"}),
    "constant": frozenset(),
}
# What each mapping type produces, to check it against what the canonical field expects.
_PRODUCES: dict[str, str] = {
    "string": "text",
    "integer": "number",
    "float": "number",
    "money": "number",
    "datetime": "datetime",
    "boolean": "bool",
    "choice": "text",
    "multichoice": "text",
    "lookup": "id",
    "lookup_type": "text",
    "constant": "text",
}
# The mirror's storage type for each produced kind ("bool" with a values map produces text).
_DTYPE = {"text": "text", "id": "text", "number": "float", "datetime": "datetime", "bool": "bool"}

# Well-known object type codes, for companion columns that hold a number rather than a name
# (reference §7.1: account 1, contact 2, opportunity 3, lead 4, salesorder 1088).
_OBJECT_TYPE_CODES = {1: "account", 2: "contact", 3: "opportunity", 4: "lead", 1088: "salesorder"}
LOOKUP_LOGICAL_NAME = "Microsoft.Dynamics.CRM.lookuplogicalname"
_LOOKUP_ANNOTATION = f"@{LOOKUP_LOGICAL_NAME}"

_TABLE_KEYS = ("table", "entity", "entity_set", "enabled", "fields")
_FIELD_KEYS = ("column", "type", "values", "targets", "type_column", "value", "description")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_LOGICAL = re.compile(r"^[a-z_][a-z0-9_]*$")


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
        return _PRODUCES[self.type]

    @property
    def dtype(self) -> str:
        """The mirror's storage type: text, float, datetime or bool."""
        if self.type == "integer" and not self.values:
            return "int"  # a count stays an integer in the DataFrame (nullable Int64)
        return _DTYPE[self.produces]

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
}
# The results the jobs produce, per target table, with the output type each one needs.
OUTPUT_RESULTS: dict[str, dict[str, frozenset[str]]] = {
    "lead": {
        "score": frozenset({"integer", "decimal"}),
        "grade": frozenset({"string"}),
        "factors": frozenset({"memo", "string"}),
        "trend": frozenset({"string"}),
        "sales_ready": frozenset({"boolean"}),
        "duplicate_group": frozenset({"string"}),
        "duplicate_score": frozenset({"integer", "decimal"}),
        "suggested_master": frozenset({"string"}),
        "existing_contact": frozenset({"string", "memo"}),
        "existing_contact_id": frozenset({"string"}),
        "existing_contact_score": frozenset({"integer", "decimal"}),
        "existing_account": frozenset({"string", "memo"}),
        "existing_account_id": frozenset({"string"}),
        "existing_account_score": frozenset({"integer", "decimal"}),
        "scored_on": frozenset({"datetime", "date"}),
    },
}
_CUSTOMER_RESULTS: dict[str, frozenset[str]] = {
    "duplicate_group": frozenset({"string"}),
    "duplicate_score": frozenset({"integer", "decimal"}),
    "suggested_master": frozenset({"string"}),
    "rfm_recency": frozenset({"integer"}),
    "rfm_frequency": frozenset({"integer"}),
    "rfm_monetary": frozenset({"integer"}),
    "rfm_cell": frozenset({"string"}),
    "rfm_segment": frozenset({"string"}),
    "clv_historical": frozenset({"decimal"}),
    "clv_predicted": frozenset({"decimal"}),
    "p_alive": frozenset({"decimal"}),
    "churn_risk": frozenset({"boolean", "string"}),
    "high_value": frozenset({"boolean"}),
    "value_reason": frozenset({"memo", "string"}),
    "scored_on": frozenset({"datetime", "date"}),
}
OUTPUT_RESULTS["account"] = dict(_CUSTOMER_RESULTS)
OUTPUT_RESULTS["contact"] = dict(_CUSTOMER_RESULTS)

_OUTPUT_KEYS = (
    "column",
    "schema_name",
    "type",
    "display_name",
    "description",
    "max_length",
    "precision",
    "min",
    "max",
    "scale",
    "enabled",
)
_DEFAULT_MAX_LENGTH = {"string": 100, "memo": 2000}
_SCHEMA_SUFFIX = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_PREFIX = re.compile(r"^[a-z][a-z0-9]{1,7}$")


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
        }[self.type]

    def to_wire(self, values: pd.Series, *, scaled: bool = False) -> list[Any]:
        """Convert result values into the JSON values a PATCH sends, None for a missing value.

        Numbers are scaled, rounded to the column's precision and clipped to its range; text is cut
        to the column's length (ending in an ellipsis, so a reader sees it was cut); date-times are
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
            finite = np.isfinite(numbers.to_numpy())
            if self.type == "integer":
                return [int(v) if ok else None for v, ok in zip(numbers.to_numpy(), finite, strict=True)]
            return [float(v) if ok else None for v, ok in zip(numbers.to_numpy(), finite, strict=True)]
        if self.type in ("string", "memo"):
            limit = self.max_length or _DEFAULT_MAX_LENGTH[self.type]
            text = values.astype("string")
            long = text.str.len() > limit
            text = text.where(~long.fillna(False), text.str.slice(0, limit - 1) + "…")
            return [None if pd.isna(v) else str(v) for v in text]
        if self.type == "boolean":
            return [None if pd.isna(v) else bool(v) for v in values]
        stamps = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
        pattern = "%Y-%m-%d" if self.type == "date" else "%Y-%m-%dT%H:%M:%SZ"
        text = stamps.dt.strftime(pattern) if isinstance(stamps, pd.Series) else stamps.strftime(pattern)
        return [None if pd.isna(v) else str(v) for v in text]


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


# --------------------------------------------------------------------------------------------
# Loading and static validation


def _hint_for(name: str, candidates: Iterable[str]) -> str | None:
    guess = closest(name, candidates)
    return f"did you mean `{guess[0]}`?" if guess else None


def _check_keys(
    doc: TomlFile, where: tuple, data: Mapping, allowed: Sequence[str], problems: Problems
) -> None:
    for key in data:
        if key not in allowed:
            hint = _hint_for(str(key), allowed) or f"allowed keys: {', '.join(allowed)}"
            problems.add(doc.error((*where, key), f"unknown key `{key}`", hint))


def load_table_mapping(path: str | Path) -> TableMapping:
    """Read and validate one source-table mapping file.

    Raises:
        MappingErrors: listing every problem in the file, each with its line and key.
        ConfigError: when the file cannot be read or is not valid TOML.
    """
    doc = load_toml(path)
    problems = Problems()
    mapping = _parse_table(doc, problems)
    problems.raise_if_any()
    assert mapping is not None
    return mapping


def _parse_table(doc: TomlFile, problems: Problems) -> TableMapping | None:
    data = doc.data
    _check_keys(doc, (), data, _TABLE_KEYS, problems)
    table = data.get("table")
    if not isinstance(table, str) or not _LOGICAL.match(table):
        problems.add(
            doc.error(
                "table",
                "`table` must be the Dataverse table's logical name in lower case",
                'e.g. table = "lead"',
            )
        )
        table = None
    entity = data.get("entity")
    if entity is None:
        problems.add(
            doc.error("entity", "`entity` is missing", f"add entity = one of: {', '.join(CANONICAL_FIELDS)}")
        )
    elif entity not in CANONICAL_FIELDS:
        hint = _hint_for(str(entity), CANONICAL_FIELDS) or f"one of: {', '.join(CANONICAL_FIELDS)}"
        problems.add(doc.error("entity", f"unknown entity `{entity}`", hint))
        entity = None
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        problems.add(doc.error("enabled", "`enabled` must be true or false"))
    entity_set = data.get("entity_set")
    if entity_set is not None and (not isinstance(entity_set, str) or not entity_set):
        problems.add(
            doc.error("entity_set", "`entity_set` must be the Web API entity set name, e.g. `leads`")
        )
    raw_fields = data.get("fields")
    fields: dict[str, FieldMapping] = {}
    if not isinstance(raw_fields, dict) or not raw_fields:
        problems.add(
            doc.error(
                "fields", "the file maps no fields", "add a [fields] table: canonical = { column, type }"
            )
        )
    else:
        for name, spec in raw_fields.items():
            parsed = _parse_field(doc, entity, str(name), spec, problems)
            if parsed is not None:
                fields[parsed.name] = parsed
    if table is None or entity is None:
        return None
    # Fields with problems are left out (and reported); the rest can still be checked against the org.
    return TableMapping(
        name=doc.path.stem,
        table=table,
        entity=entity,
        fields=fields,
        enabled=bool(enabled),
        entity_set=entity_set,
        doc=doc,
    )


def _parse_field(
    doc: TomlFile, entity: str | None, name: str, spec: Any, problems: Problems
) -> FieldMapping | None:
    key = ("fields", name)
    count = len(problems.items)
    if isinstance(spec, str):
        spec = {"column": spec, "type": "string"}
    if not isinstance(spec, dict):
        problems.add(
            doc.error(key, "a field must be a column name or a table", '{ column = "...", type = "..." }')
        )
        return None
    _check_keys(doc, key, spec, _FIELD_KEYS, problems)
    known = CANONICAL_FIELDS.get(entity or "", {})
    if not _NAME.match(name):
        problems.add(doc.error(key, f"`{name}` is not a valid field name", "use lower_snake_case"))
    elif entity and name == ENTITY_IDS[entity]:
        problems.add(
            doc.error(key, f"`{name}` is the table's primary key and is always read", "remove this field")
        )
    elif known and name not in known:
        # A custom field is welcome, but one a letter or two away from a standard field that the
        # file does not map is almost certainly a typo that would leave the job without its input.
        guess = [
            c for c in closest(name, known, n=1) if difflib.SequenceMatcher(None, name, c).ratio() >= 0.8
        ]
        if guess and guess[0] not in (doc.data.get("fields") or {}):
            problems.add(
                doc.error(
                    key,
                    f"`{name}` is not a canonical {entity} field",
                    f"did you mean `{guess[0]}`? A custom field needs a name unlike the standard ones",
                )
            )
    kind = spec.get("type", "string")
    if kind not in FIELD_TYPES:
        hint = _hint_for(str(kind), FIELD_TYPES) or f"one of: {', '.join(FIELD_TYPES)}"
        problems.add(doc.error((*key, "type"), f"unknown type `{kind}`", hint))
        return None
    column = spec.get("column")
    if kind == "constant":
        if "value" not in spec:
            problems.add(doc.error(key, "a constant field needs `value`", 'e.g. value = "email"'))
        if column is not None:
            problems.add(doc.error((*key, "column"), "a constant field reads no column", "remove `column`"))
    elif not isinstance(column, str) or not column:
        problems.add(doc.error(key, "the field names no `column`", 'add column = "<logical name>"'))
    elif not _LOGICAL.match(column):
        hint = "logical names are lower case" if _LOGICAL.match(column.lower()) else None
        problems.add(doc.error((*key, "column"), f"`{column}` is not a column logical name", hint))
    elif kind in ("lookup", "lookup_type") and column.startswith("_") and column.endswith("_value"):
        column = column[1:-6]  # accept the Web API property name, keep the logical name
    values = _parse_values(doc, key, kind, spec.get("values"), problems)
    targets = spec.get("targets", [])
    if not isinstance(targets, list) or not all(isinstance(t, str) and _LOGICAL.match(t) for t in targets):
        problems.add(doc.error((*key, "targets"), "`targets` must be a list of table logical names"))
        targets = []
    elif targets and kind != "lookup":
        problems.add(doc.error((*key, "targets"), '`targets` applies only to type = "lookup"'))
    type_column = spec.get("type_column")
    if type_column is not None:
        if not isinstance(type_column, str) or not _LOGICAL.match(type_column):
            problems.add(doc.error((*key, "type_column"), "`type_column` must be a column logical name"))
        elif kind not in ("lookup", "lookup_type"):
            problems.add(doc.error((*key, "type_column"), "`type_column` applies only to lookups"))
    if len(problems.items) > count:
        return None
    mapping = FieldMapping(
        name=name,
        type=kind,
        column=column if kind != "constant" else None,
        values=values,
        targets=tuple(targets),
        type_column=type_column,
        value=spec.get("value"),
    )
    expected = known.get(name)
    if expected and not _kind_fits(expected, mapping.produces):
        problems.add(
            doc.error(
                (*key, "type"),
                f"type `{kind}` gives {mapping.produces} values but `{name}` must hold {expected}",
                _type_hint(expected),
            )
        )
        return None
    return mapping


def _kind_fits(expected: str, produced: str) -> bool:
    return expected == produced or (expected == "text" and produced == "id")


def _type_hint(expected: str) -> str:
    return {
        "text": 'use type = "string" or "choice"',
        "number": 'use type = "integer", "float" or "money"',
        "datetime": 'use type = "datetime"',
        "id": 'use type = "lookup"',
    }[expected]


def _parse_values(
    doc: TomlFile, key: tuple, kind: str, raw: Any, problems: Problems
) -> dict[Any, str] | None:
    if raw is None:
        return None
    where = (*key, "values")
    if kind not in ("choice", "multichoice", "boolean", "integer"):
        problems.add(doc.error(where, f"`values` does not apply to type `{kind}`", "remove `values`"))
        return None
    if not isinstance(raw, dict) or not raw:
        problems.add(
            doc.error(where, "`values` must map option values to labels", '{ 1 = "Hot", 2 = "Warm" }')
        )
        return None
    parsed: dict[Any, str] = {}
    for option, label in raw.items():
        if not isinstance(label, str) or not label:
            problems.add(doc.error((*where, option), "a label must be a non-empty string"))
            continue
        if kind == "boolean":
            if option not in ("true", "false"):
                problems.add(doc.error((*where, option), f"`{option}` is not true or false"))
                continue
            parsed[option == "true"] = label
        else:
            try:
                parsed[int(option)] = label
            except ValueError:
                problems.add(
                    doc.error(
                        (*where, option), f"`{option}` is not an option value", "option values are integers"
                    )
                )
    return parsed


def load_outputs(path: str | Path, prefix: str, *, tables: Iterable[str] | None = None) -> list[OutputColumn]:
    """Read and validate ``outputs.toml``: every result's target column, with the publisher prefix.

    Args:
        path: the outputs file.
        prefix: the publisher's customization prefix (``new``); column names become ``<prefix>_<column>``.
        tables: the mirror tables that exist; an output on another table is an error.

    Raises:
        MappingErrors: listing every problem in the file.
    """
    doc = load_toml(path)
    problems = Problems()
    outputs = _parse_outputs(doc, prefix, set(tables) if tables is not None else None, problems)
    problems.raise_if_any()
    return outputs


def _parse_outputs(
    doc: TomlFile, prefix: str, tables: set[str] | None, problems: Problems
) -> list[OutputColumn]:
    if not _PREFIX.match(prefix or ""):
        problems.add(
            ConfigError(
                f"`{prefix}` is not a publisher prefix",
                key="writeback.publisher_prefix",
                hint="2 to 8 lower-case letters or digits, starting with a letter (e.g. `new`, `dvs`)",
            )
        )
        prefix = "new"
    outputs: list[OutputColumn] = []
    seen: dict[tuple[str, str], tuple] = {}
    for table, results in doc.data.items():
        if table not in OUTPUT_RESULTS:
            hint = _hint_for(table, OUTPUT_RESULTS) or f"results are written to {', '.join(OUTPUT_RESULTS)}"
            problems.add(doc.error((table,), f"dvsync writes no results to `{table}`", hint))
            continue
        if tables is not None and table not in tables:
            problems.add(
                doc.error(
                    (table,),
                    f"no mapping file for `{table}`",
                    f"add mappings/{table}.toml or remove this table",
                )
            )
            continue
        if not isinstance(results, dict):
            problems.add(doc.error((table,), f"`{table}` must be a table of results"))
            continue
        for result, spec in results.items():
            column = _parse_output(doc, prefix, table, result, spec, problems)
            if column is None:
                continue
            earlier = seen.get((table, column.logical_name))
            if earlier:
                problems.add(
                    doc.error(
                        (table, result, "column"),
                        f"column `{column.logical_name}` is also the target of `{'.'.join(earlier)}`",
                        "give each result its own column",
                    )
                )
                continue
            seen[(table, column.logical_name)] = (table, result)
            outputs.append(column)
    return outputs


def _parse_output(
    doc: TomlFile, prefix: str, table: str, result: str, spec: Any, problems: Problems
) -> OutputColumn | None:
    key = (table, result)
    count = len(problems.items)
    known = OUTPUT_RESULTS[table]
    if result not in known:
        hint = _hint_for(result, known) or f"results on {table}: {', '.join(known)}"
        problems.add(doc.error(key, f"no result `{result}` on {table}", hint))
        return None
    if not isinstance(spec, dict):
        problems.add(doc.error(key, "an output must be a table with column, type, display_name, description"))
        return None
    _check_keys(doc, key, spec, _OUTPUT_KEYS, problems)
    kind = spec.get("type")
    if kind not in OUTPUT_TYPES:
        hint = _hint_for(str(kind), OUTPUT_TYPES) or f"one of: {', '.join(OUTPUT_TYPES)}"
        problems.add(doc.error((*key, "type"), f"unknown output type `{kind}`", hint))
    elif kind not in known[result]:
        problems.add(
            doc.error(
                (*key, "type"),
                f"`{result}` cannot be written as {kind}",
                f"use type = {' or '.join(repr(k) for k in sorted(known[result]))}",
            )
        )
    schema_name = spec.get("schema_name")
    column = spec.get("column")
    if schema_name is not None:
        if (
            not isinstance(schema_name, str)
            or "_" not in schema_name
            or not _SCHEMA_SUFFIX.match(schema_name)
        ):
            problems.add(
                doc.error(
                    (*key, "schema_name"), "`schema_name` must be a full schema name like `cr4a1_Score`"
                )
            )
    elif not isinstance(column, str) or not _SCHEMA_SUFFIX.match(column):
        problems.add(
            doc.error(
                (*key, "column"),
                "`column` must be letters, digits and underscores, starting with a letter",
                'e.g. column = "LeadScore" (written as <prefix>_LeadScore)',
            )
        )
    for text_key in ("display_name", "description"):
        text = spec.get(text_key)
        if not isinstance(text, str) or not text.strip():
            problems.add(
                doc.error((*key, text_key), f"`{text_key}` is required: the text a salesperson reads")
            )
    numbers: dict[str, float | None] = {}
    for number_key in ("max_length", "precision", "min", "max", "scale"):
        value = spec.get(number_key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            problems.add(doc.error((*key, number_key), f"`{number_key}` must be a number"))
            value = None
        numbers[number_key] = value
    enabled = spec.get("enabled", True)
    if not isinstance(enabled, bool):
        problems.add(doc.error((*key, "enabled"), "`enabled` must be true or false"))
    max_length = numbers["max_length"]
    if max_length is not None and not (1 <= max_length <= (1_048_576 if kind == "memo" else 4000)):
        problems.add(doc.error((*key, "max_length"), f"max_length {max_length} is out of range for {kind}"))
    precision = numbers["precision"]
    if precision is not None and not (0 <= precision <= 10):
        problems.add(doc.error((*key, "precision"), "precision must be between 0 and 10"))
    if numbers["min"] is not None and numbers["max"] is not None and numbers["min"] > numbers["max"]:
        problems.add(doc.error((*key, "min"), "`min` is greater than `max`"))
    if len(problems.items) > count:
        return None
    return OutputColumn(
        table=table,
        result=result,
        schema_name=schema_name or f"{prefix}_{column}",
        type=kind,
        display_name=spec["display_name"].strip(),
        description=spec["description"].strip(),
        max_length=int(max_length) if max_length is not None else _DEFAULT_MAX_LENGTH.get(kind),
        precision=int(precision) if precision is not None else (2 if kind == "decimal" else None),
        min_value=numbers["min"],
        max_value=numbers["max"],
        scale=float(numbers["scale"]) if numbers["scale"] is not None else 1.0,
        enabled=bool(enabled),
    )


def load_mappings(directory: str | Path, *, prefix: str = "new") -> MappingSet:
    """Read and validate every mapping file in a directory: ``*.toml`` tables and ``outputs.toml``.

    Files that configure jobs rather than tables (``scoring.toml``, ``duplicates.toml``,
    ``rfm_segments.toml``) are left to their jobs; a table file is one with a ``table`` key.

    Args:
        directory: the mappings directory (settings ``mappings.dir``).
        prefix: the publisher prefix for output column names (settings ``writeback.publisher_prefix``).

    Raises:
        MappingErrors: every problem in every file, each naming its file, line and key.
    """
    mappings, problems = collect_mappings(directory, prefix=prefix)
    if problems:
        raise MappingErrors(problems)
    return mappings


def collect_mappings(directory: str | Path, *, prefix: str = "new") -> tuple[MappingSet, list[ConfigError]]:
    """Like :func:`load_mappings`, but return what is valid together with every problem found.

    ``dvsync check`` uses it to go on validating the good parts against the org, so that one run
    reports everything there is to fix.

    Raises:
        ConfigError: the directory does not exist.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigError(
            f"mappings directory `{directory}` does not exist",
            key="mappings.dir",
            hint="point mappings.dir at the folder holding lead.toml, account.toml, ... and outputs.toml",
        )
    problems = Problems()
    tables: dict[str, TableMapping] = {}
    sources: dict[str, TableMapping] = {}
    table_files: set[str] = set()
    outputs_path = directory / "outputs.toml"
    for path in sorted(directory.glob("*.toml")):
        if path == outputs_path:
            continue
        try:
            doc = load_toml(path)
        except ConfigError as exc:
            problems.add(exc)
            continue
        if "table" not in doc.data and "fields" not in doc.data:
            continue  # a job's configuration file
        table_files.add(path.stem)
        mapping = _parse_table(doc, problems)
        if mapping is None:
            continue
        other = sources.get(mapping.table)
        if other is not None:
            problems.add(
                doc.error(
                    "table",
                    f"table `{mapping.table}` is already mapped by {other.name}.toml",
                    "map each table once (disable one with enabled = false)",
                )
            )
            continue
        sources[mapping.table] = mapping
        tables[mapping.name] = mapping
    outputs: list[OutputColumn] = []
    outputs_doc = None
    if outputs_path.exists():
        try:
            outputs_doc = load_toml(outputs_path)
            outputs = _parse_outputs(outputs_doc, prefix, table_files, problems)
        except ConfigError as exc:
            problems.add(exc)
    for column in outputs:
        mapping = tables.get(column.table)
        if mapping is not None and column.enabled and mapping.entity != column.table:
            problems.add(
                outputs_doc.error(  # type: ignore[union-attr]
                    (column.table, column.result),
                    f"`{column.table}` maps entity `{mapping.entity}`, not {column.table}",
                )
            )
    mappings = MappingSet(directory=directory, tables=tables, outputs=outputs, outputs_doc=outputs_doc)
    return mappings, problems.items


def validate_for_jobs(mappings: MappingSet, jobs: Iterable[str]) -> list[ConfigError]:
    """Return a problem for each canonical field an enabled job needs that no enabled table maps.

    Args:
        mappings: the validated mapping set.
        jobs: the enabled job names (settings ``jobs.enabled``); unknown names are reported too.
    """
    problems: list[ConfigError] = []
    for job in jobs:
        needs = JOB_REQUIREMENTS.get(job)
        if needs is None:
            hint = _hint_for(job, JOB_REQUIREMENTS) or f"jobs: {', '.join(JOB_REQUIREMENTS)}"
            problems.append(ConfigError(f"unknown job `{job}`", key="jobs.enabled", hint=hint))
            continue
        for entity, fields in needs.items():
            tables = mappings.by_entity(entity)
            if not tables:
                problems.append(
                    ConfigError(
                        f'job `{job}` needs {entity} records but no enabled mapping has entity = "{entity}"',
                        file=mappings.directory,
                        hint=f"add a mapping file for the {entity} table",
                    )
                )
                continue
            for table in tables:
                missing = [f for f in fields if f not in table.fields]
                if missing:
                    problems.append(
                        table.error(
                            "fields",
                            f"job `{job}` needs {', '.join(f'`{m}`' for m in missing)}, not mapped here",
                            "map them under [fields], or disable the job in jobs.enabled",
                        )
                    )
    return problems


# --------------------------------------------------------------------------------------------
# Validation against the org's metadata


def option_labels(column: Any) -> dict[int, str]:
    """The option value → label map of a choice column definition (empty when it has none).

    Accepts the shapes a ColumnDefinition's ``options`` may take: a mapping, or a sequence of
    ``(value, label)`` pairs or of objects with ``value`` and ``label``.
    """
    options = getattr(column, "options", None)
    if not options:
        return {}
    if isinstance(options, Mapping):
        return {int(k): str(v) for k, v in options.items()}
    labels: dict[int, str] = {}
    for option in options:
        if isinstance(option, tuple | list):
            labels[int(option[0])] = str(option[1])
        elif isinstance(option, Mapping):
            labels[int(option["value"])] = str(option["label"])
        else:
            labels[int(option.value)] = str(option.label)
    return labels


def _attribute_type(column: Any) -> str:
    return str(getattr(column, "attribute_type", "") or "")


def validate_against_org(
    mapping: TableMapping,
    table_definition: Any,
    outputs: Sequence[OutputColumn] = (),
    *,
    check_values: bool = True,
) -> tuple[list[ConfigError], list[OutputColumn]]:
    """Check one table's mapping and outputs against the org's definition of that table.

    Args:
        mapping: the table's mapping.
        table_definition: the org's TableDefinition (``attributes`` keyed by logical name).
        outputs: the enabled output columns on this table.
        check_values: also report ``values`` entries naming options the column does not have.

    Returns:
        The problems found (each naming file, line, key and the closest real column), and the
        output columns that do not exist yet (``dvsync provision`` creates them).
    """
    attributes: Mapping[str, Any] = getattr(table_definition, "attributes", {}) or {}
    problems: list[ConfigError] = []
    for name, fm in mapping.fields.items():
        columns = [fm.column] if fm.column else []
        if fm.type_column:
            columns.append(fm.type_column)
        for index, column in enumerate(columns):
            key = ("fields", name, "type_column" if index else "column")
            definition = attributes.get(column)
            if definition is None:
                guess = closest(column, attributes)
                hint = f"did you mean `{guess[0]}`?" if guess else None
                problems.append(mapping.error(key, f"no column `{column}` on {mapping.table}", hint))
                continue
            actual = _attribute_type(definition)
            allowed = FIELD_TYPES["lookup_type"] if index else FIELD_TYPES[fm.type]
            if _not_a_property(column, definition, attributes):
                problems.append(_not_a_property_problem(mapping, name, fm, column, index, attributes))
            elif actual and actual not in allowed:
                problems.append(
                    mapping.error(
                        ("fields", name, "type"),
                        f"`{column}` on {mapping.table} is {actual}; type `{fm.type}` cannot read it",
                        _suggest_type(actual),
                    )
                )
            elif check_values and fm.type in ("choice", "multichoice") and fm.values and not index:
                labels = option_labels(definition)
                unknown = sorted(set(fm.values) - set(labels)) if labels else []
                if unknown:
                    problems.append(
                        mapping.error(
                            ("fields", name, "values"),
                            f"`{column}` has no option {', '.join(map(str, unknown))}",
                            "options: " + ", ".join(f"{k} {v}" for k, v in sorted(labels.items())),
                        )
                    )
    missing: list[OutputColumn] = []
    for output in outputs:
        definition = attributes.get(output.logical_name)
        if definition is None:
            missing.append(output)
            continue
        actual = _attribute_type(definition)
        if actual and actual not in OUTPUT_TYPES[output.type]:
            problems.append(
                ConfigError(
                    f"column `{output.logical_name}` on {mapping.table} exists as {actual}, "
                    f"but `{output.result}` is written as {output.type}",
                    file=None,
                    key=f"{output.table}.{output.result}",
                    hint="point the result at another column, or change its type to match",
                )
            )
            continue
        length = getattr(definition, "max_length", None)
        if output.type in ("string", "memo") and length and output.max_length and length < output.max_length:
            problems.append(
                ConfigError(
                    f"column `{output.logical_name}` on {mapping.table} holds {length} characters, "
                    f"but `{output.result}` is written with up to {output.max_length}",
                    key=f"{output.table}.{output.result}.max_length",
                    hint=f"set max_length = {length}, or widen the column in Dynamics",
                )
            )
    return problems, missing


def _lookup_of(companion: str, attributes: Mapping[str, Any]) -> str | None:
    """The lookup an EntityName companion belongs to (customeridtype -> customerid, ...), if any."""
    lookups = {"Lookup", "Customer", "Owner"}
    owner = getattr(attributes.get(companion), "attribute_of", None)
    candidates = [owner] if owner else []
    if companion.endswith("typecode"):
        candidates.append(companion[: -len("typecode")] + "id")  # regardingobjecttypecode
    if companion.endswith("type"):
        candidates.append(companion[: -len("type")])  # customeridtype, owneridtype
    return next((c for c in candidates if _attribute_type(attributes.get(c)) in lookups), None)


def _not_a_property(column: str, definition: Any, attributes: Mapping[str, Any]) -> bool:
    """Whether the Web API refuses ``$select`` of this column.

    The metadata's ``IsValidODataAttribute`` decides when it is known. Otherwise an EntityName
    column that belongs to a lookup (``customeridtype``, ``regardingobjecttypecode``) is taken to
    be the lookup's implicit type companion, which the Web API does not expose (reference §8.5).
    """
    valid = getattr(definition, "is_valid_odata", None)
    if valid is not None:
        return not valid
    return _attribute_type(definition) == "EntityName" and _lookup_of(column, attributes) is not None


def _not_a_property_problem(
    mapping: TableMapping,
    name: str,
    fm: FieldMapping,
    column: str,
    as_type_column: bool,
    attributes: Mapping[str, Any],
) -> ConfigError:
    """Explain that a column cannot be read through the Web API, and give the form that works."""
    lookup = _lookup_of(column, attributes) or (fm.column if as_type_column else None)
    if _attribute_type(attributes.get(column)) != "EntityName" or lookup is None:
        return mapping.error(
            ("fields", name, "type_column" if as_type_column else "column"),
            f"`{column}` on {mapping.table} is not a Web API property (IsValidODataAttribute is false); "
            "a query selecting it fails",
            "remove it from the mapping",
        )
    message = (
        f"`{column}` on {mapping.table} is the EntityName companion of `{lookup}`: it is set implicitly "
        f"and the Web API does not expose it as a property, so a query selecting it fails with "
        f"\"Could not find a property named '{column}'\""
    )
    if as_type_column:
        hint = (
            "remove `type_column`: the table the lookup points at is read from its "
            "Microsoft.Dynamics.CRM.lookuplogicalname annotation"
        )
        return mapping.error(("fields", name, "type_column"), message, hint)
    hint = (
        f'map the lookup itself: {name} = {{ column = "{lookup}", type = "lookup_type" }}; the table '
        "is read from its Microsoft.Dynamics.CRM.lookuplogicalname annotation"
    )
    return mapping.error(("fields", name, "column"), message, hint)


def _suggest_type(attribute_type: str) -> str | None:
    fits = [kind for kind, types in FIELD_TYPES.items() if attribute_type in types]
    return f'use type = "{fits[0]}"' if fits else None


# --------------------------------------------------------------------------------------------
# Reading records


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

    def frame(self, records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
        """Convert Web API records into a DataFrame with canonical columns and system columns.

        The result has the id column, every mapped field, ``out_*`` columns for existing outputs,
        and ``_modifiedon`` (UTC) and ``_etag``.

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
        annotated = _column(raw, f"_{fm.column}_value{_LOOKUP_ANNOTATION}")
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
        return _OBJECT_TYPE_CODES.get(int(value), str(int(value)))
    text = str(value).strip()
    return _OBJECT_TYPE_CODES.get(int(text), text) if text.isdigit() else text.lower()


def _to_utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True, errors="raise", format="ISO8601").dt.as_unit("ns")


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
