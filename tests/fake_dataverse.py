"""An in-memory stand-in for ``DataverseClient`` at its contract boundary (COMMON.md), for unit tests.

It implements ``get_table``, ``iter_change_pages``, ``iter_records``, ``whoami``, ``create_column``
and ``publish`` with the connector's own result types, and keeps a change log (versions and
tombstones) so that delta links, expired tokens, tables without change tracking and interrupted
reads behave as Dataverse documents them. It is not an HTTP mock of our client: integration tests
against the sandbox cover the wire.

Lookup annotations: a row may hold ``_x_value@Microsoft.Dynamics.CRM.lookuplogicalname`` (the table
the lookup points at); it is served only for a selected ``_x_value`` and only when the read asked
for that annotation (or ``*``), as Dataverse does. Selecting a column whose definition says
``is_valid_odata=False`` (an EntityName companion such as ``customeridtype``) is Dataverse's 400
"Could not find a property".
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.changes import ChangePage
from connector.errors import ChangeTokenExpiredError, ChangeTrackingDisabledError, FatalApiError
from connector.metadata import ColumnDefinition, ColumnSpec, TableDefinition, WhoAmI

LOOKUP_NAME = "Microsoft.Dynamics.CRM.lookuplogicalname"


class SimulatedCrash(Exception):
    """Raised by the fake in place of the next page: the process 'dies' between two pages."""


@dataclass
class FakeTable:
    definition: TableDefinition
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    tombstones: list[tuple[int, str]] = field(default_factory=list)


def column(name: str, kind: str, *, options: dict[int, str] | None = None, max_length: int | None = None):
    return ColumnDefinition(logical_name=name, attribute_type=kind, options=options, max_length=max_length)


LEAD_COLUMNS = [
    column("leadid", "Uniqueidentifier"),
    column("firstname", "String", max_length=50),
    column("lastname", "String", max_length=50),
    column("emailaddress1", "String", max_length=100),
    column("leadsourcecode", "Picklist", options={1: "Advertisement", 8: "Web", 10: "Other"}),
    column("statecode", "State", options={0: "Open", 1: "Qualified", 2: "Disqualified"}),
    column("numberofemployees", "Integer"),
    column("revenue", "Money"),
    column("createdon", "DateTime"),
    column("modifiedon", "DateTime"),
    column("parentaccountid", "Lookup"),
    column("donotemail", "Boolean"),
]


class FakeDataverse:
    """The fake org. ``clock`` drives ``modifiedon``; every write bumps a global version."""

    def __init__(self, *, now: datetime | None = None) -> None:
        self.tables: dict[str, FakeTable] = {}
        self.version = 0
        self.now = now or datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
        self.expired_before = 0  # delta tokens older than this version are expired
        self.crash_after_pages: int | None = None
        self.calls: list[tuple[str, str | None]] = []
        self.served_records = 0
        self.published: list[list[str]] = []
        self.created: list[tuple[str, ColumnSpec, str]] = []
        self.refuse_resume = False
        self.annotation_requests: list[tuple[str, tuple[str, ...]]] = []

    # ---------------------------------------------------------------- setup helpers

    def add_table(
        self,
        logical_name: str,
        entity_set: str,
        primary_id: str,
        columns: Sequence[ColumnDefinition],
        *,
        change_tracking: bool = True,
    ) -> None:
        definition = TableDefinition(
            logical_name=logical_name,
            entity_set_name=entity_set,
            primary_id_attribute=primary_id,
            primary_name_attribute=None,
            change_tracking_enabled=change_tracking,
            attributes={c.logical_name: c for c in columns},
        )
        self.tables[entity_set] = FakeTable(definition)

    def set_change_tracking(self, entity_set: str, enabled: bool) -> None:
        table = self.tables[entity_set]
        table.definition = replace(table.definition, change_tracking_enabled=enabled)

    def tick(self, seconds: float = 1) -> None:
        self.now += timedelta(seconds=seconds)

    def upsert(self, entity_set: str, record_id: str | None = None, **values: Any) -> str:
        table = self.tables[entity_set]
        record_id = (record_id or str(uuid.uuid4())).lower()
        self.version += 1
        self.tick()
        row = table.rows.get(record_id, {table.definition.primary_id_attribute: record_id})
        row.update(values)
        row["modifiedon"] = self.now.strftime("%Y-%m-%dT%H:%M:%SZ")
        row.setdefault("createdon", row["modifiedon"])
        row["@odata.etag"] = f'W/"{self.version}"'
        table.rows[record_id] = row
        table.versions[record_id] = self.version
        return record_id

    def delete(self, entity_set: str, record_id: str) -> None:
        table = self.tables[entity_set]
        self.version += 1
        del table.rows[record_id]
        del table.versions[record_id]
        table.tombstones.append((self.version, record_id))

    # ---------------------------------------------------------------- the client contract

    def whoami(self) -> WhoAmI:
        return WhoAmI(str(uuid.UUID(int=1)), str(uuid.UUID(int=2)), str(uuid.UUID(int=3)))

    def get_table(self, logical_name: str) -> TableDefinition:
        for table in self.tables.values():
            if table.definition.logical_name == logical_name:
                return table.definition
        raise FatalApiError(
            f"Could not find an entity with name {logical_name!r}", status=404, code="0x80060888"
        )

    def create_column(self, table_logical_name: str, spec: ColumnSpec, *, solution: str) -> bool:
        table = next(t for t in self.tables.values() if t.definition.logical_name == table_logical_name)
        if spec.logical_name in table.definition.attributes:
            return False
        self.created.append((table_logical_name, spec, solution))
        attributes = dict(table.definition.attributes)
        attributes[spec.logical_name] = ColumnDefinition(
            logical_name=spec.logical_name,
            attribute_type=spec.kind,
            max_length=spec.max_length,
            schema_name=spec.schema_name,
            is_custom=True,
        )
        table.definition = replace(table.definition, attributes=attributes)
        return True

    def publish(self, table_logical_names: Sequence[str]) -> None:
        self.published.append(list(table_logical_names))

    def _check_select(self, table: FakeTable, select: Sequence[str]) -> None:
        pk = table.definition.primary_id_attribute
        for name in select:
            if (name.startswith("_") and name.endswith("_value")) or name == pk:
                continue
            definition = table.definition.attributes.get(name)
            if definition is None or definition.is_valid_odata is False:
                raise FatalApiError(
                    f"Could not find a property named '{name}' on type "
                    f"'Microsoft.Dynamics.CRM.{table.definition.logical_name}'.",
                    status=400,
                    code="0x0",
                )

    def _project(
        self,
        table: FakeTable,
        row: dict[str, Any],
        select: Sequence[str],
        annotations: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        pk = table.definition.primary_id_attribute
        lookup_names = bool({LOOKUP_NAME, "*"} & set(annotations or ()))
        out = {"@odata.etag": row["@odata.etag"]}
        for name in select:
            if name.startswith("_") and name.endswith("_value"):
                annotated = f"{name}@{LOOKUP_NAME}"
                if lookup_names and row.get(name) is not None and annotated in row:
                    out[annotated] = row[annotated]
            out[name] = row.get(name)
        out[pk] = row[pk]
        return out

    def _maybe_crash(self) -> None:
        if self.crash_after_pages is not None:
            if self.crash_after_pages <= 0:
                self.crash_after_pages = None
                raise SimulatedCrash("the process died between two pages")
            self.crash_after_pages -= 1

    def iter_change_pages(
        self,
        entity_set: str,
        select: Sequence[str],
        *,
        delta_link: str | None = None,
        resume_link: str | None = None,
        page_size: int = 5000,
        annotations: Sequence[str] | None = None,
    ) -> Iterator[ChangePage]:
        table = self.tables[entity_set]
        self._check_select(table, select)
        self.annotation_requests.append((entity_set, tuple(annotations or ())))
        if not table.definition.change_tracking_enabled:
            raise ChangeTrackingDisabledError(
                f"Entity {table.definition.logical_name} isn't enabled for change tracking.",
                code="0x80072491",
            )
        link = resume_link or delta_link
        self.calls.append(("resume" if resume_link else "delta" if delta_link else "full", link))
        if link:
            match = re.fullmatch(r"fake://(\w+)\?since=(-?\d+)&asof=(\d+)&after=(-?\d+)", link)
            assert match, link
            since, asof, after = int(match[2]), int(match[3]), int(match[4])
            if resume_link and self.refuse_resume:
                raise FatalApiError("The paging cookie is no longer valid", status=400, code="0x80040203")
            if not resume_link:  # a delta link: everything changed since its version, up to now
                asof, after = self.version, since
        else:
            since, asof, after = -1, self.version, -1
        if since >= 0 and since < self.expired_before:
            raise ChangeTokenExpiredError(
                "Version stamp associated with the client has expired. Please perform a full sync.",
                status=400,
                code="0x80044352",
            )
        return self._pages(table, entity_set, select, since, asof, after, page_size, annotations)

    def _pages(
        self, table, entity_set, select, since, asof, after, page_size, annotations=None
    ) -> Iterator[ChangePage]:
        # A read covers the versions in (since, asof], ordered by version (as RetrieveEntityChanges
        # documents), paged by keyset: a record changed during the read moves past `asof` and
        # arrives with the next delta instead, so pages stay stable and nothing is skipped.
        while True:
            self._maybe_crash()
            entries = [(v, "row", rid) for rid, v in table.versions.items() if after < v <= asof]
            if since >= 0:
                entries += [
                    (v, "deleted", rid)
                    for v, rid in table.tombstones
                    if after < v <= asof and rid not in table.rows
                ]
            entries.sort()
            chunk = entries[:page_size]
            records = [
                self._project(table, table.rows[i], select, annotations)
                for _, kind, i in chunk
                if kind == "row"
            ]
            self.served_records += len(records)
            gone = [i for _, kind, i in chunk if kind == "deleted"]
            more = len(entries) > page_size
            after = chunk[-1][0] if chunk else after
            next_link = f"fake://{entity_set}?since={since}&asof={asof}&after={after}" if more else None
            delta = None if more else f"fake://{entity_set}?since={asof}&asof=0&after=0"
            yield ChangePage(records, gone, next_link, delta)
            if not more:
                return

    def iter_records(
        self,
        entity_set: str,
        select: Sequence[str],
        filter: str | None = None,
        orderby: Any = None,
        page_size: int = 5000,
        formatted_values: bool = False,
        annotations: Sequence[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        table = self.tables[entity_set]
        self._check_select(table, select)
        self.annotation_requests.append((entity_set, tuple(annotations or ())))
        self.calls.append(("records", filter))
        rows = list(table.rows.values())
        if filter:
            match = re.fullmatch(r"modifiedon ge (\S+)", filter)
            assert match, filter
            start = datetime.fromisoformat(match[1].replace("Z", "+00:00"))
            rows = [
                r for r in rows if datetime.fromisoformat(r["modifiedon"].replace("Z", "+00:00")) >= start
            ]
        if orderby:
            pk = table.definition.primary_id_attribute
            rows.sort(key=lambda r: (r["modifiedon"], r[pk]))
        for index, row in zip(itertools.count(), rows, strict=False):
            if index % page_size == 0:
                self._maybe_crash()
            self.served_records += 1
            yield self._project(table, row, select, annotations)


def lead_org(change_tracking: bool = True) -> FakeDataverse:
    org = FakeDataverse()
    org.add_table("lead", "leads", "leadid", LEAD_COLUMNS, change_tracking=change_tracking)
    return org
