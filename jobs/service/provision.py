"""``dvsync provision``: create the output columns that do not exist yet, then publish.

Each enabled result in ``mappings/outputs.toml`` becomes a custom column on its table, with the
configured publisher prefix, the display name and description from the file, in the unmanaged
solution ``writeback.solution``. Columns that exist are left alone (a column of the same name
with an incompatible type is an error, never altered). Tables that received a column are
published with one ``PublishXml``. Running it again changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from connector.metadata import ColumnSpec
from core.errors import ConfigError
from jobs.service.mapping import OUTPUT_TYPES, MappingErrors, MappingSet, OutputColumn

__all__ = ["ProvisionAction", "ProvisionReport", "column_spec", "provision"]

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
            "created": len(self.created),
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
        options=output.options,
    )


def provision(
    client: _Client,
    mappings: MappingSet,
    *,
    solution: str | None,
    dry_run: bool = False,
) -> ProvisionReport:
    """Create the missing output columns of every enabled mapped table, then publish.

    Args:
        client: a DataverseClient.
        mappings: the validated mapping set (outputs with the publisher prefix applied).
        solution: the unmanaged solution that receives the columns (``writeback.solution``).
        dry_run: report what would be created, change nothing.

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
        raise ConfigError(
            f"{len(plan)} output columns need creating but no solution is configured",
            key="writeback.solution",
            hint="set writeback.solution to the unique name of an unmanaged solution (its publisher's prefix "
            "must be writeback.publisher_prefix)",
        )
    created_tables: list[str] = []
    for table, output in plan:
        if dry_run:
            report.actions.append(_action(table, output, "would create"))
            continue
        created = client.create_column(table, column_spec(output), solution=solution)  # type: ignore[arg-type]
        report.actions.append(_action(table, output, "created" if created else "exists"))
        if created and table not in created_tables:
            created_tables.append(table)
    if created_tables:
        client.publish(created_tables)
        report.published = created_tables
    return report


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
