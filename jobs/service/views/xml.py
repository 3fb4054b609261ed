"""The XML Dynamics keeps views, charts and forms in, built from :mod:`.config` specs.

Pure functions: a view's FetchXML and layout XML, a chart's data and presentation descriptions,
a form section and its insertion into (or removal from) a form's XML that leaves everything else
on the form as it was. :func:`fingerprint` hashes XML after canonicalisation, so that the same
content written with other whitespace or attribute order is recognised as unchanged.
"""

from __future__ import annotations

import hashlib
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping

from jobs.service.views.config import CHART_TYPES, TABLES, ChartSpec, Condition, FormSectionSpec, ViewSpec

__all__ = [
    "SECTION_NAME",
    "add_form_section",
    "chart_xml",
    "fingerprint",
    "form_section",
    "remove_form_section",
    "view_xml",
]

SECTION_NAME = "dvsync_results"
_NAMESPACE = uuid.UUID("d5b7b1e2-3c1f-4f7e-9a53-6f2d0c1b9e10")
# Form control class ids by Dataverse attribute type (the form XML schema's well-known ids).
_CONTROL_CLASS = {
    "String": "{4273EDBD-AC1D-40d3-9FB2-095C621B552D}",
    "Memo": "{E0DECE4B-6FC8-4a8f-A065-082708572369}",
    "Integer": "{C6D124CA-7EDA-4a60-AEA9-7FB8D318B68F}",
    "Decimal": "{C3EFE0C3-0EC6-42be-8349-CBD9079DFD8E}",
    "Double": "{0D2C745A-E5A8-4c8f-BA63-C6D3BB604660}",
    "Money": "{533B9E00-756B-4312-95A0-DC888637AC78}",
    "Boolean": "{67FAC785-CD58-4f9f-ABB3-4B7DDC6ED5ED}",
    "DateTime": "{5B773807-9FB2-42db-97C3-7A91EFF8ADFF}",
    "Picklist": "{3EF39988-22BB-4f0b-BBBE-64B5A3748AEE}",
    "Lookup": "{270BD3DB-D9AF-4782-9025-509E298DEC0A}",
}
_WIDTHS = {"Memo": 300, "String": 150, "Lookup": 150}


def _condition(parent: ET.Element, condition: Condition) -> None:
    element = ET.SubElement(parent, "condition", attribute=condition.column, operator=condition.operator)
    if condition.value is not None:
        element.set("value", condition.value)


def _fetch(
    table: str, primary_id: str, attributes: list[str], conditions: tuple[Condition, ...]
) -> ET.Element:
    fetch = ET.Element("fetch", version="1.0", mapping="logical", distinct="false")
    entity = ET.SubElement(fetch, "entity", name=table)
    for name in dict.fromkeys([*attributes, primary_id]):
        ET.SubElement(entity, "attribute", name=name)
    if conditions:
        group = ET.SubElement(entity, "filter", type="and")
        for condition in conditions:
            _condition(group, condition)
    return fetch


def view_xml(view: ViewSpec, primary_id: str, primary_name: str, types: Mapping[str, str]) -> tuple[str, str]:
    """The view's FetchXML and layout XML.

    Args:
        view: the view.
        primary_id: the table's primary key (every view returns it; the grid's row id).
        primary_name: the table's primary name column (what a click on a row opens).
        types: column logical name -> Dataverse attribute type, for column widths.
    """
    fetch = _fetch(view.table, primary_id, list(view.columns), view.filter)
    entity = fetch.find("entity")
    assert entity is not None
    if view.any:
        group = entity.find("filter")
        if group is None:
            group = ET.SubElement(entity, "filter", type="and")
        either = ET.SubElement(group, "filter", type="or")
        for condition in view.any:
            _condition(either, condition)
    for column, descending in view.order:
        # Orders go after the filter, where Advanced Find writes them.
        ET.SubElement(entity, "order", attribute=column, descending="true" if descending else "false")
    grid = ET.Element(
        "grid",
        name="resultset",
        object=str(TABLES[view.table]),
        jump=primary_name,
        select="1",
        icon="1",
        preview="1",
    )
    row = ET.SubElement(grid, "row", name="result", id=primary_id)
    for column in view.columns:
        ET.SubElement(row, "cell", name=column, width=str(_WIDTHS.get(types.get(column, ""), 100)))
    return ET.tostring(fetch, encoding="unicode"), ET.tostring(grid, encoding="unicode")


def chart_xml(chart: ChartSpec, primary_id: str) -> tuple[str, str]:
    """The chart's data description (an aggregate fetch, its category and measures) and presentation."""
    definition = ET.Element("datadefinition")
    fetch = ET.SubElement(
        ET.SubElement(definition, "fetchcollection"), "fetch", mapping="logical", aggregate="true"
    )
    entity = ET.SubElement(fetch, "entity", name=chart.table)
    ET.SubElement(entity, "attribute", name=chart.category, groupby="true", alias="groupby_column")
    if chart.series:
        ET.SubElement(entity, "attribute", name=chart.series, groupby="true", alias="series_column")
    aliases = []
    for index, (aggregate, column) in enumerate(chart.measures):
        alias = f"aggregate_column{index or ''}"
        aliases.append(alias)
        ET.SubElement(entity, "attribute", name=column or primary_id, aggregate=aggregate, alias=alias)
    if chart.filter:
        group = ET.SubElement(entity, "filter", type="and")
        for condition in chart.filter:
            _condition(group, condition)
    category = ET.SubElement(
        ET.SubElement(definition, "categorycollection"), "category", alias="groupby_column"
    )
    measures = ET.SubElement(category, "measurecollection")
    for alias in aliases:
        ET.SubElement(measures, "measure", alias=alias)
    kind = CHART_TYPES[chart.type]
    if chart.series and kind in ("Column", "Bar"):
        kind = f"Stacked{kind}"
    presentation = ET.Element("Chart", Palette="None")
    series = ET.SubElement(presentation, "Series")
    for _ in aliases:
        ET.SubElement(series, "Series", ChartType=kind, IsValueShownAsLabel="True", Font="{0}, 9.5px")
    area = ET.SubElement(ET.SubElement(presentation, "ChartAreas"), "ChartArea", BorderColor="White")
    ET.SubElement(area, "AxisY", LabelAutoFitMinFontSize="8", TitleForeColor="59, 59, 59")
    ET.SubElement(area, "AxisX", LabelAutoFitMinFontSize="8", TitleForeColor="59, 59, 59")
    titles = ET.SubElement(presentation, "Titles")
    ET.SubElement(
        titles, "Title", Alignment="TopLeft", DockingOffset="-3", Font="14px", ForeColor="59, 59, 59"
    )
    return ET.tostring(definition, encoding="unicode"), ET.tostring(presentation, encoding="unicode")


def form_section(section: FormSectionSpec, types: Mapping[str, str], language: int) -> ET.Element:
    """The dvsync section: one row per column, read-only controls (dvsync writes these values)."""
    element = ET.Element("section", name=SECTION_NAME, showlabel="true", showbar="false", columns="1")
    labels = ET.SubElement(element, "labels")
    ET.SubElement(labels, "label", description=section.label, languagecode=str(language))
    rows = ET.SubElement(element, "rows")
    for column, label in zip(section.columns, section.labels, strict=True):
        cell_id = uuid.uuid5(_NAMESPACE, f"{section.table}:{column}")
        cell = ET.SubElement(ET.SubElement(rows, "row"), "cell", id=f"{{{cell_id}}}")
        cell_labels = ET.SubElement(cell, "labels")
        ET.SubElement(cell_labels, "label", description=label, languagecode=str(language))
        ET.SubElement(
            cell,
            "control",
            id=column,
            classid=_CONTROL_CLASS.get(types.get(column, ""), _CONTROL_CLASS["String"]),
            datafieldname=column,
            disabled="true",
        )
    # The section's id is derived from its content: a later edit in the form designer keeps the id
    # but changes the content, which is how provisioning tells a consultant's change from its own.
    element.set("id", f"{{{uuid.uuid5(_NAMESPACE, fingerprint(ET.tostring(element, encoding='unicode')))}}}")
    return element


def section_is_ours_unchanged(element: ET.Element) -> bool:
    """Whether a dvsync section still holds exactly what dvsync wrote (its id matches its content)."""
    copy = ET.fromstring(ET.tostring(element, encoding="unicode"))
    written_id = copy.attrib.pop("id", "")
    return written_id == f"{{{uuid.uuid5(_NAMESPACE, fingerprint(ET.tostring(copy, encoding='unicode')))}}}"


def find_section(form: ET.Element) -> tuple[ET.Element, ET.Element] | None:
    """(parent <sections>, the dvsync <section>) in a form, or None."""
    for sections in form.iter("sections"):
        for section in sections.findall("section"):
            if section.get("name") == SECTION_NAME:
                return sections, section
    return None


def add_form_section(formxml: str, section: ET.Element) -> str:
    """The form with the dvsync section put last in the first tab's first column (or replaced in place)."""
    form = ET.fromstring(formxml)
    found = find_section(form)
    if found is not None:
        parent, old = found
        parent[list(parent).index(old)] = section
        return ET.tostring(form, encoding="unicode")
    sections = form.find("tabs/tab/columns/column/sections")
    if sections is None:
        raise ValueError("the form has no tab with a column of sections to add the dvsync section to")
    sections.append(section)
    return ET.tostring(form, encoding="unicode")


def remove_form_section(formxml: str) -> str | None:
    """The form without the dvsync section, or None when it has none."""
    form = ET.fromstring(formxml)
    found = find_section(form)
    if found is None:
        return None
    parent, section = found
    parent.remove(section)
    return ET.tostring(form, encoding="unicode")


def _canonical(element: ET.Element) -> str:
    attributes = "".join(f' {k}="{v}"' for k, v in sorted(element.attrib.items()))
    children = "".join(_canonical(child) for child in element)
    text = (element.text or "").strip()
    return f"<{element.tag}{attributes}>{text}{children}</{element.tag}>"


def fingerprint(*documents: str) -> str:
    """A short hash of XML documents, insensitive to whitespace and attribute order."""
    digest = hashlib.sha256()
    for document in documents:
        digest.update(_canonical(ET.fromstring(document)).encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]
