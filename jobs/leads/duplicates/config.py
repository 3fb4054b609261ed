"""Read duplicate-detection settings per table from ``mappings/duplicates.toml``, validated at load time.

Every mistake a consultant can make in the file becomes a ``ConfigError`` naming the file, the line
and the key, with a "did you mean" hint where one helps: an unknown field kind, a column the table
does not have, a threshold outside 0..1, a bad blocking key, an unknown phone region, an unknown
setting name. The file itself documents every key in its comments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import phonenumbers

from core.tomlfile import TomlFile, closest, load_toml
from jobs.leads.duplicates.blocking import DEFAULT_MAX_BLOCK_SIZE, parse_pass
from jobs.leads.duplicates.clustering import DEFAULT_MIN_COHESION
from jobs.leads.duplicates.comparisons import KINDS
from jobs.leads.duplicates.detect import FieldSpec

__all__ = ["CANONICAL_COLUMNS", "DuplicateConfig", "LinkConfig", "load_duplicate_config"]

CANONICAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "lead": (
        "lead_id", "first_name", "last_name", "company", "job_title", "email", "phone", "mobile_phone",
        "website", "street", "city", "postcode", "country", "source", "industry", "employees", "revenue",
        "budget", "purchase_timeframe", "rating", "status", "status_reason", "created_on", "modified_on",
    ),
    "account": (
        "account_id", "name", "email", "phone", "website", "street", "city", "postcode", "country",
        "industry", "employees", "revenue", "created_on", "modified_on",
    ),
    "contact": (
        "contact_id", "first_name", "last_name", "email", "phone", "mobile_phone", "job_title",
        "account_id", "street", "city", "postcode", "country", "created_on", "modified_on",
    ),
}  # fmt: skip
"""The canonical columns of each table (COMMON contract); a field must be one of them unless the
caller passes its own column list."""

_TABLE_KEYS = (
    "id_column", "fields", "threshold", "phone_region", "max_block_size", "swap_names", "blocking",
    "cluster", "link", "merge",
)  # fmt: skip
_CLUSTER_KEYS = ("min_cohesion", "master")
_LINK_KEYS = ("fields", "columns", "threshold")
_FIELD_KEYS = ("kind", "tf_adjust")


@dataclass(frozen=True)
class LinkConfig:
    """Matching this table's records against another table's.

    Attributes:
        table: the other table (``contact``, ``account``).
        right_id: its id column.
        fields: this table's columns compared, with their kinds.
        right_columns: this table's column -> the other table's column, where the names differ.
        threshold: the score threshold; None lets the model choose.
    """

    table: str
    right_id: str
    fields: dict[str, FieldSpec]
    right_columns: dict[str, str]
    threshold: float | None


@dataclass(frozen=True)
class DuplicateConfig:
    """Duplicate-detection settings of one table (see ``mappings/duplicates.toml``)."""

    table: str
    id_column: str
    fields: dict[str, FieldSpec]
    threshold: float | None = None
    phone_region: str = "US"
    max_block_size: int = DEFAULT_MAX_BLOCK_SIZE
    swap_names: tuple[str, str] | Literal["auto"] | None = "auto"
    blocking: list[list[str]] | None = None
    min_cohesion: float = DEFAULT_MIN_COHESION
    master_by: tuple[str, ...] = ("completeness", "modified_on")
    links: dict[str, LinkConfig] = field(default_factory=dict)

    def find_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`jobs.leads.duplicates.detect.find_duplicates`."""
        return {
            "id_column": self.id_column,
            "fields": self.fields,
            "blocking": self.blocking,
            "threshold": self.threshold,
            "swap_names": self.swap_names,
            "phone_region": self.phone_region,
            "max_block_size": self.max_block_size,
        }

    def link_kwargs(self, table: str) -> dict[str, Any]:
        """Keyword arguments for :func:`jobs.leads.duplicates.detect.link_records` against ``table``."""
        link = self.links[table]
        names = [c for c, s in link.fields.items() if s.kind == "name"]
        swap: tuple[str, str] | Literal["auto"] | None = "auto"
        if isinstance(self.swap_names, tuple):
            swap = self.swap_names if all(c in link.fields for c in self.swap_names) else None
        elif self.swap_names is None or len(names) != 2:
            swap = None
        return {
            "left_id": self.id_column,
            "right_id": link.right_id,
            "fields": link.fields,
            "right_columns": link.right_columns,
            "threshold": link.threshold,
            "swap_names": swap,
            "phone_region": self.phone_region,
            "max_block_size": self.max_block_size,
        }

    def cluster_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :func:`.clustering.cluster` (add ``records=`` yourself)."""
        return {"min_cohesion": self.min_cohesion, "master_by": self.master_by, "id_column": self.id_column}


def _unknown_keys(doc: TomlFile, section: Mapping[str, Any], allowed: Iterable[str], prefix: str) -> None:
    allowed = list(allowed)
    for key in section:
        if key not in allowed:
            near = closest(key, allowed)
            raise doc.error(
                f"{prefix}.{key}",
                f"unknown setting {key!r}",
                f"did you mean {near[0]!r}?" if near else f"settings here: {', '.join(allowed)}",
            )


def _threshold(doc: TomlFile, value: Any, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < float(value) < 1.0:
        raise doc.error(
            key,
            f"threshold must be a probability strictly between 0 and 1, got {value!r}",
            "e.g. 0.5 (more likely a match than not) or 0.9 (stricter); delete the line for the default",
        )
    return float(value)


def _column(doc: TomlFile, name: str, columns: Iterable[str], key: str, table: str) -> None:
    columns = list(columns)
    if name not in columns:
        near = closest(name, columns)
        raise doc.error(
            key,
            f"{table} has no column {name!r}",
            f"did you mean {near[0]!r}?" if near else f"columns: {', '.join(columns)}",
        )


def _fields(doc: TomlFile, raw: Any, columns: Iterable[str], prefix: str, table: str) -> dict[str, FieldSpec]:
    if not isinstance(raw, dict) or not raw:
        raise doc.error(prefix, 'needs at least one field: column = "kind"', f"kinds: {', '.join(KINDS)}")
    specs: dict[str, FieldSpec] = {}
    for column, value in raw.items():
        key = f"{prefix}.{column}"
        _column(doc, column, columns, key, table)
        tf_adjust = None
        if isinstance(value, dict):
            _unknown_keys(doc, value, _FIELD_KEYS, key)
            kind = value.get("kind")
            tf_adjust = value.get("tf_adjust")
            if tf_adjust is not None and not isinstance(tf_adjust, bool):
                raise doc.error(f"{key}.tf_adjust", "tf_adjust must be true or false")
        else:
            kind = value
        if not isinstance(kind, str) or kind not in KINDS:
            near = closest(str(kind), KINDS)
            raise doc.error(
                key,
                f"unknown comparison kind {kind!r}",
                (f"did you mean {near[0]!r}? " if near else "") + f"kinds: {', '.join(KINDS)}",
            )
        specs[column] = FieldSpec(kind, tf_adjust)
    return specs


def _links(
    doc: TomlFile,
    raw: Any,
    table: str,
    specs: Mapping[str, FieldSpec],
    column_sets: Mapping[str, Iterable[str]],
) -> dict[str, LinkConfig]:
    links: dict[str, LinkConfig] = {}
    if not isinstance(raw, dict):
        raise doc.error(f"{table}.link", "must be a table of [link.<table>] sections")
    for other, section in raw.items():
        prefix = f"{table}.link.{other}"
        if other not in column_sets:
            near = closest(other, column_sets)
            raise doc.error(
                prefix, f"unknown table {other!r}", f"did you mean {near[0]!r}?" if near else None
            )
        if not isinstance(section, dict):
            raise doc.error(prefix, "must be a table with fields = [...] and optional columns = {...}")
        _unknown_keys(doc, section, _LINK_KEYS, prefix)
        names = section.get("fields")
        if not isinstance(names, list) or not names:
            raise doc.error(f"{prefix}.fields", "needs a list of compared columns of this table")
        fields: dict[str, FieldSpec] = {}
        for name in names:
            if name not in specs:
                near = closest(str(name), specs)
                raise doc.error(
                    f"{prefix}.fields",
                    f"{name!r} is not one of {table}'s compared fields",
                    f"did you mean {near[0]!r}?" if near else f"add it to [{table}.fields] first",
                )
            fields[name] = specs[name]
        mapping = section.get("columns", {})
        if not isinstance(mapping, dict):
            raise doc.error(f"{prefix}.columns", 'must be a table: this_column = "other_column"')
        for left, right in mapping.items():
            if left not in fields:
                raise doc.error(f"{prefix}.columns.{left}", f"{left!r} is not in this link's fields")
            _column(doc, str(right), column_sets[other], f"{prefix}.columns.{left}", other)
        for name in fields:
            if name not in mapping:
                _column(doc, name, column_sets[other], f"{prefix}.fields", other)
        links[other] = LinkConfig(
            other,
            f"{other}_id",
            fields,
            {str(k): str(v) for k, v in mapping.items()},
            _threshold(doc, section.get("threshold"), f"{prefix}.threshold"),
        )
    return links


def load_duplicate_config(
    path: str | Path,
    table: str,
    *,
    columns: Mapping[str, Iterable[str]] | None = None,
) -> DuplicateConfig:
    """Load and validate the duplicate-detection settings of ``table`` from a TOML file.

    Args:
        path: the file, usually ``mappings/duplicates.toml``.
        table: the section to read (``lead``, ``contact``, ``account``).
        columns: table -> its columns, to validate column names against; defaults to
            :data:`CANONICAL_COLUMNS`.

    Raises:
        ConfigError: the file is missing or invalid; the message names file:line [key] and the fix.
    """
    doc = load_toml(path)
    column_sets = {k: tuple(v) for k, v in (columns or CANONICAL_COLUMNS).items()}
    section = doc.data.get(table)
    if not isinstance(section, dict):
        near = closest(table, doc.data)
        raise doc.error(
            table,
            f"no [{table}] section",
            f"did you mean [{near[0]}]?" if near else f"sections here: {', '.join(doc.data) or 'none'}",
        )
    if table not in column_sets:
        raise doc.error(table, f"unknown table {table!r}", f"tables: {', '.join(column_sets)}")
    _unknown_keys(doc, section, _TABLE_KEYS, table)
    table_columns = column_sets[table]

    id_column = section.get("id_column", f"{table}_id")
    _column(doc, str(id_column), table_columns, f"{table}.id_column", table)
    specs = _fields(doc, section.get("fields"), table_columns, f"{table}.fields", table)

    region = str(section.get("phone_region", "US")).upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        near = closest(region, phonenumbers.SUPPORTED_REGIONS)
        raise doc.error(
            f"{table}.phone_region",
            f"unknown phone region {section.get('phone_region')!r}",
            f"did you mean {near[0]!r}? " if near else "use a two-letter ISO country code such as GB or US",
        )

    block_size = section.get("max_block_size", DEFAULT_MAX_BLOCK_SIZE)
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 2:
        raise doc.error(
            f"{table}.max_block_size", f"must be a whole number of at least 2, got {block_size!r}"
        )

    swap: tuple[str, str] | Literal["auto"] | None = "auto"
    if "swap_names" in section:
        raw_swap = section["swap_names"]
        names = [c for c, s in specs.items() if s.kind == "name"]
        if raw_swap is False:
            swap = None
        elif isinstance(raw_swap, list) and len(raw_swap) == 2 and all(c in names for c in raw_swap):
            swap = (raw_swap[0], raw_swap[1])
        else:
            raise doc.error(
                f"{table}.swap_names",
                f"must be two compared fields of kind 'name', or false; got {raw_swap!r}",
                f"name fields here: {names}",
            )

    blocking = None
    if "blocking" in section:
        raw_blocking = section["blocking"]
        if not isinstance(raw_blocking, dict) or set(raw_blocking) != {"passes"}:
            raise doc.error(f"{table}.blocking", "must hold exactly one key: passes = [[...], ...]")
        passes = raw_blocking["passes"]
        if not isinstance(passes, list) or not passes:
            raise doc.error(f"{table}.blocking.passes", "must be a non-empty list of passes")
        blocking = []
        for index, spec in enumerate(passes):
            spec_list = [spec] if isinstance(spec, str) else spec
            try:
                parse_pass(spec_list, list(specs))
            except (ValueError, TypeError) as exc:
                raise doc.error(f"{table}.blocking.passes", f"pass {index + 1}: {exc}") from None
            blocking.append(list(spec_list))

    cluster_section = section.get("cluster", {})
    if not isinstance(cluster_section, dict):
        raise doc.error(f"{table}.cluster", "must be a table with min_cohesion and master")
    _unknown_keys(doc, cluster_section, _CLUSTER_KEYS, f"{table}.cluster")
    cohesion = cluster_section.get("min_cohesion", DEFAULT_MIN_COHESION)
    if isinstance(cohesion, bool) or not isinstance(cohesion, int | float) or not 0 <= cohesion <= 1:
        raise doc.error(f"{table}.cluster.min_cohesion", f"must be between 0 and 1, got {cohesion!r}")
    master = cluster_section.get("master", ["completeness", "modified_on"])
    if not isinstance(master, list) or not all(isinstance(m, str) for m in master):
        raise doc.error(f"{table}.cluster.master", "must be a list of column names or 'completeness'")

    return DuplicateConfig(
        table=table,
        id_column=str(id_column),
        fields=specs,
        threshold=_threshold(doc, section.get("threshold"), f"{table}.threshold"),
        phone_region=region,
        max_block_size=int(block_size),
        swap_names=swap,
        blocking=blocking,
        min_cohesion=float(cohesion),
        master_by=tuple(master),
        links=_links(doc, section.get("link", {}), table, specs, column_sets),
    )
