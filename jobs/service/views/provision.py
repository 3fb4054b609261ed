"""Provision what sales see: system views, system charts and form sections, kept and never clobbered.

Each view and chart gets an id derived from its key in ``views.toml``, so a second run finds what
the first created (and a solution moved to another environment keeps the ids). Its description
carries the fingerprint of the XML dvsync last wrote: when Dynamics holds other XML than that, a
consultant changed the view in Dynamics, and the change is reported and kept unless ``force``.
A form section's id is derived from its content in the same spirit. Everything created goes into
the configured solution; changed tables are published once at the end.
"""

from __future__ import annotations

import difflib
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.errors import ConfigError
from jobs.service.views.config import ChartSpec, FormSectionSpec, ViewsConfig, ViewSpec
from jobs.service.views.xml import (
    add_form_section,
    chart_xml,
    find_section,
    fingerprint,
    form_section,
    remove_form_section,
    section_is_ours_unchanged,
    view_xml,
)

__all__ = ["CustomizationAction", "CustomizationReport", "provision_customizations", "record_id_for"]

_NAMESPACE = uuid.UUID("0b8e5c53-94a4-4d8c-9f0f-3c4a1f2e7d61")
_MARKER = re.compile(r"\(dvsync fingerprint ([0-9a-f]{16})\)")
_FORM_COMPONENT = 60
_WOULD = {
    "created": "would create",
    "added": "would add",
    "updated": "would update",
    "replaced": "would replace",
    "removed": "would remove",
}


class _Client(Protocol):
    def get_table(self, logical_name: str) -> Any: ...

    def get_record(self, entity_set: str, record_id: str, select: Sequence[str]) -> dict[str, Any] | None: ...

    def create_record(
        self,
        entity_set: str,
        primary_id: str,
        record_id: str,
        body: Mapping[str, Any],
        *,
        solution: str | None,
    ) -> bool: ...

    def update_record(self, entity_set: str, record_id: str, body: Mapping[str, Any]) -> None: ...

    def iter_records(
        self, entity_set: str, select: Sequence[str], filter: str | None = None
    ) -> Iterator[dict]: ...

    def call_action(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]: ...

    def publish(self, table_logical_names: Sequence[str]) -> None: ...


@dataclass
class CustomizationAction:
    """What provisioning did (or would do) to one view, chart or form.

    Attributes:
        kind: ``view``, ``chart`` or ``form``.
        table: the table it belongs to.
        name: its name.
        status: ``created``, ``updated``, ``unchanged``, ``kept`` (changed in Dynamics, not
            overwritten), ``replaced`` (changed in Dynamics, overwritten with ``--force``),
            ``removed``, ``absent`` (nothing to remove), or ``would ...`` in a dry run.
        detail: why, and for changes the exact difference (a unified diff of the XML).
    """

    kind: str
    table: str
    name: str
    status: str
    detail: str = ""


@dataclass
class CustomizationReport:
    """The outcome for views, charts and forms."""

    dry_run: bool
    actions: list[CustomizationAction] = field(default_factory=list)
    published: list[str] = field(default_factory=list)

    @property
    def kept(self) -> list[CustomizationAction]:
        """Items changed in Dynamics that were left as they are (re-run with ``--force``)."""
        return [a for a in self.actions if a.status == "kept"]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable form."""
        return {
            "dry_run": self.dry_run,
            "actions": [vars(a) for a in self.actions],
            "published": self.published,
        }


def record_id_for(kind: str, table: str, key: str) -> str:
    """The id dvsync gives the view or chart ``key`` of ``table``: the same in every run and org."""
    return str(uuid.uuid5(_NAMESPACE, f"{kind}:{table}:{key}"))


def _diff(before: str, after: str, label: str) -> str:
    def pretty(text: str) -> list[str]:
        element = ET.fromstring(text)
        ET.indent(element)
        return ET.tostring(element, encoding="unicode").splitlines()

    lines = difflib.unified_diff(
        pretty(before), pretty(after), f"{label} in Dynamics", f"{label} from dvsync", lineterm=""
    )
    return "\n".join(lines)


def _description(text: str, key: str, fp: str) -> str:
    note = (
        f"Managed by dvsync from mappings/views.toml [{key}] (dvsync fingerprint {fp}). "
        "Change it there; an edit made here is kept and reported."
    )
    return f"{text}\n\n{note}" if text else note


class _Provisioner:
    def __init__(
        self, client: _Client, config: ViewsConfig, solution: str | None, dry_run: bool, force: bool
    ):
        self.client = client
        self.config = config
        self.solution = solution
        self.dry_run = dry_run
        self.force = force
        self.report = CustomizationReport(dry_run=dry_run)
        self.changed: list[str] = []
        self._tables: dict[str, Any] = {}

    def table(self, name: str) -> Any:
        if name not in self._tables:
            self._tables[name] = self.client.get_table(name)
        return self._tables[name]

    def types(self, name: str) -> dict[str, str]:
        return {n: c.attribute_type for n, c in self.table(name).attributes.items()}

    def act(self, kind: str, table: str, name: str, status: str, detail: str = "") -> None:
        self.report.actions.append(CustomizationAction(kind, table, name, status, detail))
        if status in _WOULD and table not in self.changed:
            self.changed.append(table)

    def record(
        self,
        kind: str,
        spec: ViewSpec | ChartSpec,
        entity_set: str,
        primary_id: str,
        documents: dict[str, str],
        body: dict[str, Any],
    ) -> None:
        """Create, update, keep or leave one view or chart by comparing fingerprints."""
        record_id = record_id_for(kind, spec.table, spec.key)
        wanted = fingerprint(*documents.values())
        section = "views" if kind == "view" else "charts"
        description = _description(spec.description, f"{section}.{spec.key}", wanted)
        full = {"name": spec.name, "description": description, **documents}
        current = self.client.get_record(entity_set, record_id, ["name", "description", *documents])
        if current is None:
            if not self.dry_run:
                self._need_solution(kind, spec.name)
                self.client.create_record(
                    entity_set, primary_id, record_id, {**full, **body}, solution=self.solution
                )
            self.act(kind, spec.table, spec.name, _WOULD["created"] if self.dry_run else "created")
            return
        present = fingerprint(*(current.get(name) or "<empty/>" for name in documents))
        marker = _MARKER.search(current.get("description") or "")
        written = marker.group(1) if marker else None
        if (
            present == wanted
            and current.get("name") == spec.name
            and current.get("description") == description
        ):
            self.act(kind, spec.table, spec.name, "unchanged")
            return
        diff = "\n".join(
            _diff(current.get(name) or "<empty/>", text, name) for name, text in documents.items()
        )
        if written is not None and present != written and not self.force:
            self.act(
                kind,
                spec.table,
                spec.name,
                "kept",
                "changed in Dynamics since dvsync wrote it; run provision --force to replace it with "
                f"views.toml's version:\n{diff}",
            )
            return
        status = "replaced" if written is not None and present != written else "updated"
        if not self.dry_run:
            self.client.update_record(entity_set, record_id, full)
        self.act(kind, spec.table, spec.name, _WOULD[status] if self.dry_run else status, diff)

    def _need_solution(self, what: str, name: str) -> None:
        if not self.solution:
            raise ConfigError(
                f"the {what} {name!r} needs creating but no solution is configured",
                key="writeback.solution",
                hint="set writeback.solution to the unique name of an unmanaged solution "
                "(docs/setup-real-org.md says how to create one)",
            )

    def view(self, view: ViewSpec) -> None:
        table = self.table(view.table)
        fetch, layout = view_xml(
            view, table.primary_id_attribute, table.primary_name_attribute or "", self.types(view.table)
        )
        body = {"returnedtypecode": view.table, "querytype": 0, "isdefault": False}
        self.record(
            "view", view, "savedqueries", "savedqueryid", {"fetchxml": fetch, "layoutxml": layout}, body
        )

    def chart(self, chart: ChartSpec) -> None:
        data, presentation = chart_xml(chart, self.table(chart.table).primary_id_attribute)
        body = {"primaryentitytypecode": chart.table, "isdefault": False}
        documents = {"datadescription": data, "presentationdescription": presentation}
        self.record("chart", chart, "savedqueryvisualizations", "savedqueryvisualizationid", documents, body)

    def main_forms(self, table: str) -> list[dict[str, Any]]:
        query = f"objecttypecode eq '{table}' and type eq 2"  # table is one of views.config.TABLES
        return list(self.client.iter_records("systemforms", ["formid", "name", "formxml"], filter=query))

    def form(self, spec: FormSectionSpec, remove: bool) -> None:
        section = form_section(spec, self.types(spec.table), self.config.language)
        forms = self.main_forms(spec.table)
        if not forms:
            self.act("form", spec.table, "(main form)", "absent", f"{spec.table} has no main form to change")
        for form in forms:
            name, current = str(form.get("name")), str(form.get("formxml") or "")
            found = find_section(ET.fromstring(current)) if current else None
            if remove:
                changed = remove_form_section(current) if current else None
                if changed is None:
                    self.act("form", spec.table, name, "absent", "no dvsync section on this form")
                    continue
                self._write_form(form, spec.table, name, current, changed, "removed")
                continue
            if found is not None and fingerprint(ET.tostring(found[1], encoding="unicode")) == fingerprint(
                ET.tostring(section, encoding="unicode")
            ):
                self.act("form", spec.table, name, "unchanged")
                continue
            changed = add_form_section(current, section)
            if found is not None and not section_is_ours_unchanged(found[1]) and not self.force:
                self.act(
                    "form",
                    spec.table,
                    name,
                    "kept",
                    "the dvsync section was changed in Dynamics; "
                    "run provision --forms --force to replace it:\n" + _diff(current, changed, "formxml"),
                )
                continue
            status = "updated" if found is not None else "added"
            if found is not None and not section_is_ours_unchanged(found[1]):
                status = "replaced"
            self._write_form(form, spec.table, name, current, changed, status)

    def _write_form(
        self, form: dict[str, Any], table: str, name: str, before: str, after: str, status: str
    ) -> None:
        diff = _diff(before, after, "formxml")
        if self.dry_run:
            self.act("form", table, name, _WOULD[status], diff)
            return
        self.client.update_record("systemforms", str(form["formid"]), {"formxml": after})
        if self.solution:
            self.client.call_action(
                "AddSolutionComponent",
                {
                    "ComponentId": str(form["formid"]),
                    "ComponentType": _FORM_COMPONENT,
                    "SolutionUniqueName": self.solution,
                    "AddRequiredComponents": False,
                    "DoNotIncludeSubcomponents": True,
                },
            )
        self.act("form", table, name, status, diff)


def provision_customizations(
    client: _Client,
    config: ViewsConfig,
    *,
    solution: str | None,
    dry_run: bool = False,
    force: bool = False,
    forms: bool = False,
    remove_forms: bool = False,
) -> CustomizationReport:
    """Create or update the views and charts of ``views.toml`` (and form sections when asked), then publish.

    Args:
        client: a DataverseClient.
        config: the loaded views.toml.
        solution: the unmanaged solution that receives new views and charts and changed forms.
        dry_run: report what would change, with the exact XML difference; change nothing.
        force: overwrite views, charts and sections changed in Dynamics since dvsync wrote them.
        forms: add (or update) the dvsync section on each table's main forms.
        remove_forms: remove the dvsync section from those forms instead.

    Raises:
        ConfigError: something needs creating and no solution is configured.
    """
    work = _Provisioner(client, config, solution, dry_run, force)
    for view in config.views:
        work.view(view)
    for chart in config.charts:
        work.chart(chart)
    if forms or remove_forms:
        for section in config.forms:
            work.form(section, remove=remove_forms)
    if work.changed and not dry_run:
        client.publish(work.changed)
        work.report.published = list(work.changed)
    return work.report
