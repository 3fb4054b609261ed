"""Validating the mappings against the org's real metadata: columns exist, types fit, labels are real."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from core.errors import ConfigError
from core.tomlfile import closest
from jobs.service.mapping.catalogue import FIELD_TYPES
from jobs.service.mapping.model import OUTPUT_TYPES, FieldMapping, OutputColumn, TableMapping

log = logging.getLogger(__name__)


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
        options = getattr(definition, "options", None)
        unknown = (
            [v for v, _ in output.options if options and v not in options] if output.type == "choice" else []
        )
        if unknown:
            problems.append(
                ConfigError(
                    f"choice column `{output.logical_name}` on {mapping.table} has no option "
                    + ", ".join(str(v) for v in unknown),
                    key=f"{output.table}.{output.result}.options",
                    hint="use the column's option values: "
                    + ", ".join(f"{k} = {v!r}" for k, v in sorted(options.items())),
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
