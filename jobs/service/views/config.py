"""``mappings/views.toml``: the views, charts and form sections dvsync provisions in Dynamics.

Every problem is reported at once, each at its file line with the fix; names are checked against
the mapping files here and against the org's real columns by :func:`validate_views_against_org`.
A column in a view, chart or form section is either a dvsync result written on that table
(``score``, ``rfm_segment``; resolved through ``outputs.toml``) or a real column's logical name
(``fullname``, ``leadsourcecode``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.tomlfile import TomlFile, closest, load_toml
from jobs.service.mapping import MappingErrors, MappingSet

__all__ = [
    "CHART_TYPES",
    "OPERATORS",
    "TABLES",
    "ChartSpec",
    "Condition",
    "FormSectionSpec",
    "ViewSpec",
    "ViewsConfig",
    "load_views",
    "validate_views_against_org",
]

# The tables dvsync writes results to, with the object type code a view's layout names.
TABLES: dict[str, int] = {"account": 1, "contact": 2, "lead": 4}
# FetchXML condition operators a consultant may use, and whether each takes a value.
OPERATORS: dict[str, bool] = {
    "eq": True,
    "ne": True,
    "gt": True,
    "ge": True,
    "lt": True,
    "le": True,
    "like": True,
    "null": False,
    "not-null": False,
}
CHART_TYPES: dict[str, str] = {"column": "Column", "bar": "Bar", "pie": "Pie", "line": "Line"}
AGGREGATES = ("count", "sum", "avg", "min", "max")
_VIEW_KEYS = ("table", "name", "description", "columns", "filter", "any", "order", "enabled")
_CHART_KEYS = ("table", "name", "description", "type", "category", "series", "measures", "filter", "enabled")
_FORM_KEYS = ("label", "columns", "enabled")


@dataclass(frozen=True)
class Condition:
    """One FetchXML condition: a column (resolved to its logical name), an operator, a value."""

    column: str
    operator: str
    value: str | None = None


@dataclass(frozen=True)
class ViewSpec:
    """A system view: its columns in order, its filter and its sort, on one table."""

    key: str
    table: str
    name: str
    description: str
    columns: tuple[str, ...]
    labels: tuple[str, ...]
    filter: tuple[Condition, ...] = ()
    any: tuple[Condition, ...] = ()
    order: tuple[tuple[str, bool], ...] = ()


@dataclass(frozen=True)
class ChartSpec:
    """A system chart: one category (and optionally a series) and aggregated measures."""

    key: str
    table: str
    name: str
    description: str
    type: str
    category: str
    series: str | None
    measures: tuple[tuple[str, str], ...]  # (aggregate, column)
    filter: tuple[Condition, ...] = ()


@dataclass(frozen=True)
class FormSectionSpec:
    """The dvsync section added to a table's main form: a label and the columns it shows."""

    table: str
    label: str
    columns: tuple[str, ...]
    labels: tuple[str, ...]


@dataclass(frozen=True)
class ViewsConfig:
    """Everything views.toml asks for, with column names resolved to logical names."""

    language: int
    views: tuple[ViewSpec, ...] = ()
    charts: tuple[ChartSpec, ...] = ()
    forms: tuple[FormSectionSpec, ...] = ()
    # (table, logical name) -> where it was written, to point check's org problems at a line.
    references: Mapping[tuple[str, str], tuple[Path, int | None, str]] = field(default_factory=dict)


class _Reader:
    """Resolves names against the mapping files and collects problems with their lines."""

    def __init__(self, doc: TomlFile, mappings: MappingSet) -> None:
        self.doc = doc
        self.mappings = mappings
        self.problems: list[ConfigError] = []
        self.references: dict[tuple[str, str], tuple[Path, int | None, str]] = {}

    def error(self, key: tuple[Any, ...], message: str, hint: str | None = None) -> None:
        self.problems.append(self.doc.error(key, message, hint))

    def keys(self, entry: Mapping[str, Any], allowed: tuple[str, ...], key: tuple[Any, ...]) -> None:
        for name in entry:
            if name not in allowed:
                near = closest(name, allowed)
                self.error(
                    (*key, name), f"unknown key `{name}`", f"did you mean `{near[0]}`?" if near else None
                )

    def text(
        self, entry: Mapping[str, Any], name: str, key: tuple[Any, ...], default: str | None = None
    ) -> str:
        value = entry.get(name, default)
        if not isinstance(value, str) or not value.strip():
            self.error((*key, name), f"`{name}` must be a non-empty text", f'e.g. {name} = "..."')
            return ""
        return value.strip()

    def table(self, entry: Mapping[str, Any], key: tuple[Any, ...]) -> str | None:
        table = entry.get("table")
        if table not in TABLES:
            near = closest(str(table), TABLES)
            self.error(
                (*key, "table"),
                f"`table` must be one of {', '.join(sorted(TABLES))}, not {table!r}",
                f"did you mean `{near[0]}`?"
                if near
                else "views, charts and forms go on the tables dvsync writes",
            )
            return None
        return str(table)

    def column(self, table: str, name: object, key: tuple[Any, ...]) -> tuple[str, str] | None:
        """(logical name, label) for a result name or a real column name."""
        if not isinstance(name, str) or not name.strip():
            self.error(key, "a column must be a result name or a column's logical name, as text")
            return None
        name = name.strip()
        outputs = {o.result: o for o in self.mappings.outputs_for(table)}
        if name in outputs:
            output = outputs[name]
            if not output.enabled:
                self.error(
                    key,
                    f"`{name}` is not written to {table} (enabled = false in outputs.toml)",
                    f"enable [{table}.{name}] in outputs.toml, or drop it here",
                )
                return None
            # A result's column is checked (and created) with the other outputs, not here.
            return output.logical_name, output.display_name
        if not (name.islower() and name.replace("_", "").isalnum()):
            self.error(key, f"`{name}` is neither a dvsync result on {table} nor a column logical name")
            return None
        line = self.doc.line_of(key)
        self.references.setdefault((table, name), (self.doc.path, line, ".".join(map(str, key))))
        return name, name

    def conditions(self, table: str, entries: object, key: tuple[Any, ...]) -> tuple[Condition, ...]:
        if entries is None:
            return ()
        if not isinstance(entries, list):
            self.error(key, "must be a list of { column = ..., operator = ..., value = ... }")
            return ()
        found = []
        for index, item in enumerate(entries):
            at = (*key, index)
            if not isinstance(item, dict):
                self.error(at, "each condition is { column = ..., operator = ..., value = ... }")
                continue
            self.keys(item, ("column", "operator", "value"), at)
            resolved = self.column(table, item.get("column"), (*at, "column"))
            operator = item.get("operator", "eq")
            if operator not in OPERATORS:
                near = closest(str(operator), OPERATORS)
                self.error(
                    (*at, "operator"),
                    f"unknown operator {operator!r}",
                    f"did you mean `{near[0]}`?" if near else f"use one of {', '.join(OPERATORS)}",
                )
                continue
            value = item.get("value")
            if OPERATORS[operator] and value is None:
                self.error(at, f"operator `{operator}` needs a value")
                continue
            if not OPERATORS[operator] and value is not None:
                self.error((*at, "value"), f"operator `{operator}` takes no value")
                continue
            if isinstance(value, bool):
                value = int(value)
            if resolved:
                found.append(Condition(resolved[0], operator, None if value is None else str(value)))
        return tuple(found)


def load_views(path: str | Path, mappings: MappingSet) -> ViewsConfig:
    """Read and validate ``views.toml`` against the mapping files (outputs resolved to columns).

    Raises:
        ConfigError: a syntax error in the file.
        MappingErrors: every other problem at once, each at its line with the fix.
    """
    doc = load_toml(path)
    reader = _Reader(doc, mappings)
    data = doc.data
    reader.keys(data, ("language", "views", "charts", "forms"), ())
    language = data.get("language", 1033)
    if not isinstance(language, int) or isinstance(language, bool) or not 1000 <= language <= 99999:
        reader.error(("language",), f"`language` must be a language code such as 1033, not {language!r}")
        language = 1033
    views = tuple(v for v in _views(reader, data.get("views", {})) if v)
    charts = tuple(c for c in _charts(reader, data.get("charts", {})) if c)
    forms = tuple(f for f in _forms(reader, data.get("forms", {})) if f)
    names = [(v.table, v.name) for v in views]
    for duplicate in {n for n in names if names.count(n) > 1}:
        reader.error(
            ("views",), f"two views on {duplicate[0]} are named {duplicate[1]!r}", "names must differ"
        )
    if reader.problems:
        raise MappingErrors(reader.problems)
    return ViewsConfig(language, views, charts, forms, dict(reader.references))


def _section(reader: _Reader, section: object, name: str) -> dict[str, Any]:
    if not isinstance(section, dict):
        reader.error((name,), f"[{name}] must hold tables such as [{name}.<key>]")
        return {}
    return {k: v for k, v in section.items() if _entry_ok(reader, name, k, v)}


def _entry_ok(reader: _Reader, section: str, key: str, entry: object) -> bool:
    if not isinstance(entry, dict):
        reader.error((section, key), f"[{section}.{key}] must be a table of keys")
        return False
    return entry.get("enabled", True) is not False


def _views(reader: _Reader, section: object) -> list[ViewSpec | None]:
    found: list[ViewSpec | None] = []
    for key, entry in _section(reader, section, "views").items():
        at = ("views", key)
        reader.keys(entry, _VIEW_KEYS, at)
        table = reader.table(entry, at)
        name = reader.text(entry, "name", at)
        if table is None:
            found.append(None)
            continue
        columns = entry.get("columns")
        if not isinstance(columns, list) or not columns:
            reader.error(
                (*at, "columns"), "a view needs a list of columns", 'e.g. columns = ["fullname", "score"]'
            )
            found.append(None)
            continue
        resolved = [reader.column(table, c, (*at, "columns", i)) for i, c in enumerate(columns)]
        order = []
        for index, item in enumerate(entry.get("order", []) or []):
            item_at = (*at, "order", index)
            if not isinstance(item, dict) or "column" not in item:
                reader.error(item_at, "each order item is { column = ..., descending = true|false }")
                continue
            reader.keys(item, ("column", "descending"), item_at)
            column = reader.column(table, item["column"], (*item_at, "column"))
            if column:
                order.append((column[0], bool(item.get("descending", False))))
        if not all(resolved):
            found.append(None)
            continue
        found.append(
            ViewSpec(
                key=key,
                table=table,
                name=name,
                description=str(entry.get("description", "")).strip(),
                columns=tuple(c[0] for c in resolved if c),
                labels=tuple(c[1] for c in resolved if c),
                filter=reader.conditions(table, entry.get("filter"), (*at, "filter")),
                any=reader.conditions(table, entry.get("any"), (*at, "any")),
                order=tuple(order),
            )
        )
    return found


def _charts(reader: _Reader, section: object) -> list[ChartSpec | None]:
    found: list[ChartSpec | None] = []
    for key, entry in _section(reader, section, "charts").items():
        at = ("charts", key)
        reader.keys(entry, _CHART_KEYS, at)
        table = reader.table(entry, at)
        name = reader.text(entry, "name", at)
        kind = entry.get("type", "column")
        if kind not in CHART_TYPES:
            reader.error(
                (*at, "type"), f"unknown chart type {kind!r}", f"use one of {', '.join(CHART_TYPES)}"
            )
        if table is None:
            found.append(None)
            continue
        category = reader.column(table, entry.get("category"), (*at, "category"))
        series = entry.get("series")
        series_column = reader.column(table, series, (*at, "series")) if series is not None else None
        measures = []
        raw = entry.get("measures", [{"aggregate": "count"}])
        for index, item in enumerate(raw if isinstance(raw, list) else []):
            item_at = (*at, "measures", index)
            if not isinstance(item, dict):
                reader.error(item_at, "each measure is { aggregate = ..., column = ... }")
                continue
            reader.keys(item, ("aggregate", "column"), item_at)
            aggregate = item.get("aggregate", "count")
            if aggregate not in AGGREGATES:
                reader.error(
                    (*item_at, "aggregate"),
                    f"unknown aggregate {aggregate!r}",
                    f"use one of {', '.join(AGGREGATES)}",
                )
                continue
            if aggregate == "count" and "column" not in item:
                measures.append(("count", ""))
                continue
            column = reader.column(table, item.get("column"), (*item_at, "column"))
            if column:
                measures.append((aggregate, column[0]))
        if not isinstance(raw, list) or not measures:
            reader.error(
                (*at, "measures"),
                "a chart needs at least one measure",
                'e.g. measures = [{ aggregate = "count" }]',
            )
        if (
            category is None
            or not measures
            or kind not in CHART_TYPES
            or (series is not None and series_column is None)
        ):
            found.append(None)
            continue
        found.append(
            ChartSpec(
                key=key,
                table=table,
                name=name,
                description=str(entry.get("description", "")).strip(),
                type=kind,
                category=category[0],
                series=series_column[0] if series_column else None,
                measures=tuple(measures),
                filter=reader.conditions(table, entry.get("filter"), (*at, "filter")),
            )
        )
    return found


def _forms(reader: _Reader, section: object) -> list[FormSectionSpec | None]:
    found: list[FormSectionSpec | None] = []
    for table, entry in _section(reader, section, "forms").items():
        at = ("forms", table)
        reader.keys(entry, _FORM_KEYS, at)
        if table not in TABLES:
            reader.error(
                at, f"[forms.{table}]: forms can get a dvsync section on {', '.join(sorted(TABLES))}"
            )
            found.append(None)
            continue
        label = reader.text(entry, "label", at, default="dvsync")
        columns = entry.get("columns")
        if not isinstance(columns, list) or not columns:
            reader.error((*at, "columns"), "a form section needs a list of columns")
            found.append(None)
            continue
        resolved = [reader.column(table, c, (*at, "columns", i)) for i, c in enumerate(columns)]
        if not all(resolved):
            found.append(None)
            continue
        found.append(
            FormSectionSpec(
                table=table,
                label=label,
                columns=tuple(c[0] for c in resolved if c),
                labels=tuple(c[1] for c in resolved if c),
            )
        )
    return found


def validate_views_against_org(
    config: ViewsConfig, columns_of: Callable[[str], Mapping[str, Any]]
) -> list[ConfigError]:
    """Problems with columns that the org's tables do not have, each at its views.toml line.

    Args:
        config: the loaded views.
        columns_of: table logical name -> its columns (logical name -> definition), from metadata.
    """
    problems: list[ConfigError] = []
    known: dict[str, Mapping[str, Any]] = {}
    for (table, logical), (path, line, key) in config.references.items():
        if table not in known:
            known[table] = columns_of(table)
        if logical not in known[table]:
            near = closest(logical, known[table])
            problems.append(
                ConfigError(
                    f"{table} has no column `{logical}`",
                    file=path,
                    line=line,
                    key=key,
                    hint=f"did you mean `{near[0]}`?"
                    if near
                    else "run dvsync provision for dvsync's result columns",
                )
            )
    return problems
