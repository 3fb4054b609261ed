"""Reading the mapping files and validating them without Dataverse: every problem at once, at file:line."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.tomlfile import TomlFile, closest, load_toml
from jobs.service.mapping.catalogue import (
    CANONICAL_FIELDS,
    CANONICAL_NAME_PATTERN,
    DEFAULT_MAX_LENGTH,
    ENTITY_IDS,
    FIELD_KEYS,
    FIELD_TYPES,
    JOB_REQUIREMENTS,
    LOGICAL_NAME_PATTERN,
    OUTPUT_KEYS,
    OUTPUT_RESULTS,
    PREFIX_PATTERN,
    SCHEMA_SUFFIX_PATTERN,
    TABLE_KEYS,
)
from jobs.service.mapping.model import (
    OUTPUT_TYPES,
    FieldMapping,
    MappingErrors,
    MappingSet,
    OutputColumn,
    Problems,
    TableMapping,
)

log = logging.getLogger(__name__)


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
    _check_keys(doc, (), data, TABLE_KEYS, problems)
    table = data.get("table")
    if not isinstance(table, str) or not LOGICAL_NAME_PATTERN.match(table):
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
    _check_keys(doc, key, spec, FIELD_KEYS, problems)
    known = CANONICAL_FIELDS.get(entity or "", {})
    if not CANONICAL_NAME_PATTERN.match(name):
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
    elif not LOGICAL_NAME_PATTERN.match(column):
        hint = "logical names are lower case" if LOGICAL_NAME_PATTERN.match(column.lower()) else None
        problems.add(doc.error((*key, "column"), f"`{column}` is not a column logical name", hint))
    elif kind in ("lookup", "lookup_type") and column.startswith("_") and column.endswith("_value"):
        column = column[1:-6]  # accept the Web API property name, keep the logical name
    values = _parse_values(doc, key, kind, spec.get("values"), problems)
    targets = spec.get("targets", [])
    if not isinstance(targets, list) or not all(
        isinstance(t, str) and LOGICAL_NAME_PATTERN.match(t) for t in targets
    ):
        problems.add(doc.error((*key, "targets"), "`targets` must be a list of table logical names"))
        targets = []
    elif targets and kind != "lookup":
        problems.add(doc.error((*key, "targets"), '`targets` applies only to type = "lookup"'))
    type_column = spec.get("type_column")
    if type_column is not None:
        if not isinstance(type_column, str) or not LOGICAL_NAME_PATTERN.match(type_column):
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
    if not PREFIX_PATTERN.match(prefix or ""):
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
    _check_keys(doc, key, spec, OUTPUT_KEYS, problems)
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
            or not SCHEMA_SUFFIX_PATTERN.match(schema_name)
        ):
            problems.add(
                doc.error(
                    (*key, "schema_name"), "`schema_name` must be a full schema name like `cr4a1_Score`"
                )
            )
    elif not isinstance(column, str) or not SCHEMA_SUFFIX_PATTERN.match(column):
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
        max_length=int(max_length) if max_length is not None else DEFAULT_MAX_LENGTH.get(kind),
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
            # The file exists: outputs.toml naming its table is not a second problem.
            table_files.add(path.stem)
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
