"""``dvsync check``: the choice labels the scoring rules and job files compare against must exist.

A rule ``value = "Webb"`` on a choice column passes every type check and then never fires: the
label a lead can carry is either the mapping's ``values`` entry for an option or, for options the
map leaves out, the org's own label. This module collects those labels per canonical field from
the org's metadata and reports every label a rule names that no option has, with the closest one
as "did you mean".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from core.errors import ConfigError
from core.tomlfile import closest
from jobs.service.mapping import MappingSet, TableMapping, option_labels

__all__ = ["check_labels", "field_labels"]

# Comparisons of a scoring rule that name labels (text compares case-insensitively).
_LABEL_OPS = frozenset({"equals", "not_equals", "in", "not_in"})


def field_labels(mapping: TableMapping, definition: Any) -> dict[str, list[str]]:
    """Per choice field of ``mapping``: every label a record can carry, as the sync stores it."""
    attributes: Mapping[str, Any] = getattr(definition, "attributes", {}) or {}
    labels: dict[str, list[str]] = {}
    for name, fm in mapping.fields.items():
        if fm.type not in ("choice", "multichoice") or not fm.column:
            continue
        column = attributes.get(fm.column)
        if column is None:
            continue  # reported as a missing column already
        org = option_labels(column)
        mapped = dict(fm.values or {})
        if not org and not mapped:
            continue  # the org lists no options: nothing to compare against
        known = {option: mapped.get(option, label) for option, label in org.items()}
        known.update(mapped)
        labels[name] = sorted({str(v) for v in known.values()})
    return labels


def _unknown(given: Iterable[Any], labels: Sequence[str]) -> Iterable[tuple[int, str, str | None]]:
    lowered = {label.lower() for label in labels}
    for position, value in enumerate(given):
        if isinstance(value, str) and value.lower() not in lowered:
            guess = closest(value, labels)
            yield position, value, guess[0] if guess else None


def _problem(
    make: Any,
    key: tuple[str | int, ...],
    value: str,
    field_name: str,
    column: str,
    guess: str | None,
    labels: Sequence[str],
) -> ConfigError:
    hint = f"did you mean `{guess}`?" if guess else "labels: " + ", ".join(labels[:12])
    message = f"`{value}` is not a label of `{field_name}` ({column}); it would never match"
    return make(key, message, hint)


def check_labels(
    mappings: MappingSet, definitions: Mapping[str, Any], jobs: Sequence[str]
) -> list[ConfigError]:
    """Every label a ``scoring.toml`` rule compares a choice field with that no option carries.

    (``customer_value.toml``'s order statuses are canonical labels, checked when it loads; the
    order mapping's ``values`` produce them and are checked against the org's options.)

    Args:
        mappings: the mapping set.
        definitions: mapping name -> the org's table definition (tables that were found).
        jobs: the enabled jobs.

    Returns:
        One problem per unknown label, at its file, line and key. Files that do not load are
        skipped: their own problem is reported already.
    """
    problems: list[ConfigError] = []
    labels = {
        mapping.entity: (mapping, field_labels(mapping, definitions[mapping.name]))
        for mapping in mappings.tables.values()
        if mapping.enabled and mapping.name in definitions
    }
    if "scoring" in jobs and "lead" in labels:
        problems.extend(_scoring_labels(mappings, *labels["lead"]))
    return problems


def _scoring_labels(
    mappings: MappingSet, lead: TableMapping, labels: Mapping[str, list[str]]
) -> list[ConfigError]:
    from jobs.leads.scoring.rules import FitRule, load_rules

    try:
        rules = load_rules(mappings.directory / "scoring.toml")
    except ConfigError:
        return []
    problems = []
    for rule in rules.rules:
        if not isinstance(rule, FitRule) or rule.op not in _LABEL_OPS or rule.column not in labels:
            continue
        known = labels[rule.column]
        column = lead.fields[rule.column].column or rule.column
        if rule.op in ("equals", "not_equals"):
            for _, value, guess in _unknown([rule.value], known):
                key = ("rule", rule.index, "value")
                problems.append(_problem(rules.error, key, value, rule.column, column, guess, known))
        else:
            for position, value, guess in _unknown(rule.values, known):
                key = ("rule", rule.index, "values", position)
                problems.append(_problem(rules.error, key, value, rule.column, column, guess, known))
    return problems
