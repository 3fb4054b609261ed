"""Read a provisioned view as a salesperson sees it: the view's own columns, labels and order."""

from __future__ import annotations

from typing import Any, Protocol

from jobs.service.views.config import ViewSpec
from jobs.service.views.provision import record_id_for

__all__ = ["read_view"]

_FORMATTED = "@OData.Community.Display.V1.FormattedValue"


class _Client(Protocol):
    def get_table(self, logical_name: str) -> Any: ...

    def run_saved_query(self, entity_set: str, query_id: str, *, top: int = 10) -> list[dict[str, Any]]: ...


def read_view(client: _Client, view: ViewSpec, *, top: int = 5) -> list[dict[str, str]]:
    """The first ``top`` rows of a provisioned view, column label -> the text Dynamics shows.

    Runs the saved view in Dynamics (not a query of dvsync's own), so what it returns is what the
    view returns to sales: its filter, its order, its columns.
    """
    table = client.get_table(view.table)
    records = client.run_saved_query(
        table.entity_set_name, record_id_for("view", view.table, view.key), top=top
    )
    rows = []
    for record in records:
        row = {}
        for column, label in zip(view.columns, view.labels, strict=True):
            wire = f"_{column}_value" if f"_{column}_value" in record else column
            value = record.get(f"{wire}{_FORMATTED}", record.get(wire))
            row[label] = "" if value is None else str(value)
        rows.append(row)
    return rows
