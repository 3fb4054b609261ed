"""Read the merge band of one table, ``[<table>.merge]`` in ``mappings/duplicates.toml``.

The review band is the table's ``threshold`` (pairs above it are shown as possible duplicates for a
person to decide); the merge band starts at ``merge_threshold``. A pair in the merge band is merged
without a person only when ``auto_merge = true`` and it meets the extra conditions. Every mistake is
a ``ConfigError`` naming the file, the line and the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.tomlfile import TomlFile, closest, load_toml

__all__ = ["FIELD_RULES", "MergeConfig", "load_merge_config"]

FIELD_RULES = ("master_unless_empty", "master", "newest", "longest")
"""How a field's surviving value is chosen (see :func:`.survivorship.update_content`)."""

_MERGE_KEYS = (
    "auto_merge", "merge_threshold", "require_same", "max_per_run", "parenting_checks", "fields",
)  # fmt: skip

DEFAULT_MERGE_THRESHOLD = 0.99
"""High on purpose: a merge cannot be undone, so only near-certain pairs qualify by default."""
DEFAULT_MAX_PER_RUN = 10
"""A bad model or a bad mapping must not merge thousands of records in one night."""


@dataclass(frozen=True)
class MergeConfig:
    """The merge settings of one table.

    Attributes:
        table: ``lead``, ``contact`` or ``account``.
        auto_merge: merge pairs of the merge band without a person's decision (default off).
        merge_threshold: the match probability a pair needs to be merged by policy.
        require_same: the pair must also have the same value in at least one of these fields
            (normalised: e-mails by case and plus-addressing, phones as E.164); empty: no condition.
        max_per_run: most records merged away per run in this table (decided and policy merges
            together); groups are never split to fit the cap, they wait for the next run.
        parenting_checks: ``PerformParentingChecks`` of the Merge message.
        fields: per field, how the surviving value is chosen (one of :data:`FIELD_RULES`); fields
            not listed keep the master's value unless it is empty.
    """

    table: str
    auto_merge: bool = False
    merge_threshold: float = DEFAULT_MERGE_THRESHOLD
    require_same: tuple[str, ...] = ("email", "phone")
    max_per_run: int = DEFAULT_MAX_PER_RUN
    parenting_checks: bool = False
    fields: dict[str, str] = field(default_factory=dict)


def _error(doc: TomlFile, key: str, message: str, hint: str | None = None) -> Exception:
    return doc.error(key, message, hint)


def load_merge_config(path: str | Path, table: str, columns: tuple[str, ...] | None = None) -> MergeConfig:
    """Read ``[<table>.merge]`` (all defaults when the section is absent).

    Args:
        path: ``mappings/duplicates.toml``.
        table: the table section.
        columns: the table's compared fields, to check ``require_same`` and ``fields`` against.

    Raises:
        ConfigError: an unknown key, a value of the wrong type or out of range, an unknown field or rule.
    """
    doc = load_toml(path)
    section: Any = doc.data.get(table, {}).get("merge", {}) if isinstance(doc.data.get(table), dict) else {}
    prefix = f"{table}.merge"
    if not isinstance(section, dict):
        raise _error(doc, prefix, "must be a table of merge settings")
    for key in section:
        if key not in _MERGE_KEYS:
            guess = closest(key, _MERGE_KEYS)
            raise _error(
                doc,
                f"{prefix}.{key}",
                f"unknown setting `{key}`",
                f"did you mean `{guess[0]}`?" if guess else f"settings: {', '.join(_MERGE_KEYS)}",
            )
    auto = section.get("auto_merge", False)
    if not isinstance(auto, bool):
        raise _error(doc, f"{prefix}.auto_merge", "must be true or false")
    threshold = section.get("merge_threshold", DEFAULT_MERGE_THRESHOLD)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold <= 1:
        raise _error(doc, f"{prefix}.merge_threshold", f"must be a probability in (0, 1], got {threshold!r}")
    checks = section.get("parenting_checks", False)
    if not isinstance(checks, bool):
        raise _error(doc, f"{prefix}.parenting_checks", "must be true or false")
    cap = section.get("max_per_run", DEFAULT_MAX_PER_RUN)
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
        raise _error(doc, f"{prefix}.max_per_run", f"must be a whole number, 0 or more, got {cap!r}")
    default_same = tuple(c for c in ("email", "phone") if columns is None or c in columns)
    same = section.get("require_same", list(default_same))
    if not isinstance(same, list) or not all(isinstance(s, str) for s in same):
        raise _error(doc, f"{prefix}.require_same", 'must be a list of field names, e.g. ["email", "phone"]')
    rules = section.get("fields", {})
    if not isinstance(rules, dict):
        raise _error(doc, f"{prefix}.fields", 'must be a table of field = "rule"')
    for name in [*same, *rules]:
        if columns is not None and name not in columns:
            guess = closest(name, columns)
            key = f"{prefix}.require_same" if name in same else f"{prefix}.fields.{name}"
            raise _error(
                doc,
                key,
                f"`{name}` is not a compared field of {table}",
                f"did you mean `{guess[0]}`?" if guess else f"fields: {', '.join(columns)}",
            )
    for name, rule in rules.items():
        if rule not in FIELD_RULES:
            raise _error(
                doc, f"{prefix}.fields.{name}", f"unknown rule `{rule}`", f"rules: {', '.join(FIELD_RULES)}"
            )
    return MergeConfig(
        table=table,
        auto_merge=auto,
        merge_threshold=float(threshold),
        require_same=tuple(same),
        max_per_run=int(cap),
        parenting_checks=checks,
        fields=dict(rules),
    )
