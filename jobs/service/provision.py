"""``dvsync provision``: create the output columns that do not exist yet, then publish.

Each enabled result in ``mappings/outputs.toml`` becomes a custom column on its table, with the
configured publisher prefix, the display name and description from the file, in the unmanaged
solution ``writeback.solution``. Columns that exist are left alone (a column of the same name
with an incompatible type is an error, never altered). Tables that received a column are
published with one ``PublishXml``. Running it again changes nothing.

Resumable: Dataverse does not say which columns are unpublished, so before creating a column
provision notes it in ``provision-unpublished.json`` beside the mirror, and clears the note once
its table is published. A provision that stopped in between (a failure, a kill) leaves the note:
the next ``provision`` publishes those tables even when it creates nothing, and ``dvsync check``
lists the columns as unpublished until then.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from connector.metadata import ColumnSpec
from core.errors import ConfigError
from core.private import private_dir, private_file
from jobs.service.mapping import OUTPUT_TYPES, MappingErrors, MappingSet, OutputColumn
from jobs.service.mapping.catalogue import OUTPUT_CHOICES

__all__ = [
    "ProvisionAction",
    "ProvisionReport",
    "column_spec",
    "missing_solution",
    "provision",
    "read_unpublished",
    "unpublished_path",
]

UNPUBLISHED_FILE = "provision-unpublished.json"


def unpublished_path(mirror_path: str | Path) -> Path:
    """Where provision notes the columns it created and has not published yet (beside the mirror)."""
    return Path(mirror_path).parent / UNPUBLISHED_FILE


def read_unpublished(path: str | Path | None) -> dict[str, list[str]]:
    """Table -> columns created by a provision that has not published them yet."""
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return {"?": [f"{path} is unreadable; run `dvsync provision` to publish and rewrite it"]}
    return {str(t): [str(c) for c in cols] for t, cols in data.items()} if isinstance(data, dict) else {}


def _write_unpublished(path: Path | None, pending: dict[str, list[str]]) -> None:
    if path is None:
        return
    if not pending:
        path.unlink(missing_ok=True)
        return
    private_dir(path.parent)
    tmp = path.with_name(path.name + ".tmp")
    private_file(tmp)
    tmp.write_text(json.dumps(pending, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


log = logging.getLogger(__name__)

_KINDS = {
    "integer": "Integer",
    "decimal": "Decimal",
    "string": "String",
    "memo": "Memo",
    "boolean": "Boolean",
    "datetime": "DateTime",
    "date": "DateTime",
    "choice": "Picklist",
}


class _Client(Protocol):
    def get_table(self, logical_name: str) -> Any: ...

    def create_column(self, table_logical_name: str, spec: ColumnSpec, *, solution: str) -> bool: ...

    def publish(self, table_logical_names: Sequence[str]) -> None: ...


@dataclass
class ProvisionAction:
    """What provisioning did (or would do) for one output column.

    Attributes:
        table: the Dataverse table.
        result: the result written to the column.
        column: the column's logical name.
        schema_name: its schema name.
        kind: the Dataverse column type.
        display_name: its label.
        status: ``created``, ``would create`` (dry run) or ``exists``.
    """

    table: str
    result: str
    column: str
    schema_name: str
    kind: str
    display_name: str
    status: str


@dataclass
class ProvisionReport:
    """The outcome of ``dvsync provision``."""

    dry_run: bool
    solution: str | None
    actions: list[ProvisionAction] = field(default_factory=list)
    published: list[str] = field(default_factory=list)
    unpublished: dict[str, list[str]] = field(default_factory=dict)
    stopped: bool = False
    """A stop signal ended it between two columns (those created were published)."""

    @property
    def created(self) -> list[ProvisionAction]:
        """The columns created (or that would be, in a dry run)."""
        return [a for a in self.actions if a.status != "exists"]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form (``dvsync provision --json``)."""
        return {
            "dry_run": self.dry_run,
            "solution": self.solution,
            "actions": [vars(a) for a in self.actions],
            "published": self.published,
            "unpublished": self.unpublished,
            "created": len(self.created),
            "stopped": self.stopped,
        }


def column_spec(output: OutputColumn) -> ColumnSpec:
    """The column to create for an output: type, labels, length, precision and range."""
    numeric = output.type in ("integer", "decimal")
    return ColumnSpec(
        schema_name=output.schema_name,
        kind=_KINDS[output.type],  # type: ignore[arg-type]
        display_name=output.display_name,
        description=output.description,
        max_length=output.max_length if output.type in ("string", "memo") else None,
        precision=output.precision if output.type == "decimal" else None,
        min_value=output.min_value if numeric else None,
        max_value=output.max_value if numeric else None,
        date_only=output.type == "date",
        # Dataverse gives the values (publisher prefix); dvsync reads the options back by label.
        options=tuple((None, label) for label in OUTPUT_CHOICES.get(output.result, ())),
    )


def provision(
    client: _Client,
    mappings: MappingSet,
    *,
    solution: str | None,
    dry_run: bool = False,
    state: str | Path | None = None,
    stop: threading.Event | None = None,
) -> ProvisionReport:
    """Create the missing output columns of every enabled mapped table, then publish.

    Args:
        client: a DataverseClient.
        mappings: the validated mapping set (outputs with the publisher prefix applied).
        solution: the unmanaged solution that receives the columns (``writeback.solution``).
        dry_run: report what would be created, change nothing.
        state: the note of created, unpublished columns (:func:`unpublished_path`); None keeps none.
        stop: when set (SIGINT/SIGTERM), no further column is created; those created so far are
            published, so the next ``provision`` finds them complete and creates the rest.

    Raises:
        ConfigError: no solution configured while columns are missing (not in a dry run).
        MappingErrors: existing columns whose type cannot hold their result (nothing is created).
    """
    report = ProvisionReport(dry_run=dry_run, solution=solution)
    plan: list[tuple[str, OutputColumn]] = []
    problems: list[ConfigError] = []
    for mapping in mappings.tables.values():
        outputs = mappings.outputs_for(mapping.name)
        if not outputs or not mapping.enabled:
            continue
        attributes = client.get_table(mapping.table).attributes
        for output in outputs:
            existing = attributes.get(output.logical_name)
            if existing is None:
                plan.append((mapping.table, output))
                continue
            if existing.attribute_type not in OUTPUT_TYPES[output.type]:
                where = (output.table, output.result)
                message = (
                    f"column `{output.logical_name}` on {mapping.table} exists as {existing.attribute_type}; "
                    f"`{output.result}` needs {output.type}"
                )
                hint = "point the result at another column (column = ...) or change its type"
                doc = mappings.outputs_doc
                problems.append(doc.error(where, message, hint) if doc else ConfigError(message, hint=hint))
                continue
            report.actions.append(_action(mapping.table, output, "exists"))
    if problems:
        raise MappingErrors(problems)
    if plan and not dry_run and not solution:
        raise missing_solution(len(plan))
    note = Path(state) if state is not None else None
    pending = read_unpublished(note)
    pending.pop("?", None)
    report.unpublished = {t: list(c) for t, c in pending.items()}
    if dry_run:
        report.actions.extend(_action(table, output, "would create") for table, output in plan)
        return report
    for table, output in plan:
        if stop is not None and stop.is_set():
            report.stopped = True
            break
        # Noted before the create: a provision killed right after it still publishes it next time.
        columns = pending.setdefault(table, [])
        if output.logical_name not in columns:
            columns.append(output.logical_name)
            _write_unpublished(note, pending)
        created = client.create_column(table, column_spec(output), solution=solution)  # type: ignore[arg-type]
        log.info("%s column %s on %s", "created" if created else "found", output.logical_name, table)
        report.actions.append(_action(table, output, "created" if created else "exists"))
    if pending:
        tables = sorted(pending)
        client.publish(tables)
        report.published = tables
        _write_unpublished(note, {})
    report.unpublished = {}
    return report


def missing_solution(count: int) -> ConfigError:
    """The error for columns to create without ``writeback.solution``.

    dvsync never creates columns outside a named unmanaged solution (not in the default solution,
    where they could not be moved to another environment or removed cleanly); the solution and
    its publisher must exist first (docs/setup-real-org.md).
    """
    return ConfigError(
        f"{count} output column(s) need creating but no solution is configured",
        key="writeback.solution",
        hint="create an unmanaged solution whose publisher's prefix is writeback.publisher_prefix "
        "(docs/setup-real-org.md), then set writeback.solution to its unique name",
    )


def _action(table: str, output: OutputColumn, status: str) -> ProvisionAction:
    return ProvisionAction(
        table=table,
        result=output.result,
        column=output.logical_name,
        schema_name=output.schema_name,
        kind=_KINDS[output.type],
        display_name=output.display_name,
        status=status,
    )
