"""Views, charts and forms as Dataverse keeps them: their XML checked on write, views run by id.

- A system view (``savedquery``) is refused when its FetchXML does not parse or names what the
  table does not have, when its FetchXML's entity is not its ``returnedtypecode``, or when its
  layout XML shows a cell the FetchXML does not return: Dataverse refuses such a view rather than
  showing an empty column.
- A system chart (``savedqueryvisualization``) needs a data description whose fetch is an
  aggregate query over its ``primaryentitytypecode`` and whose category and measures name that
  fetch's aliases.
- A form (``systemform``) needs form XML whose every control bound to data
  (``datafieldname``) names a column of its table.
- ``GET <entity set>?savedQuery=<id>`` runs the view's FetchXML ("Retrieve and execute predefined
  queries" on Microsoft Learn), answering as a ``fetchXml`` query does.
- Every org has main forms for its tables; :func:`default_forms` gives lead, account and contact
  one, so that adding a section to a form can be tried and tested.
"""

from __future__ import annotations

import sqlite3
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping

import pandas as pd

from connector.sandbox.faults import ApiError, bad_request, not_found_record, not_implemented
from connector.sandbox.fetchxml import FetchQuery, parse_fetchxml
from connector.sandbox.schema import Table

__all__ = [
    "COMPONENT_TYPES",
    "CUSTOMIZATION_TABLES",
    "add_component_from_action",
    "add_solution_component",
    "check_customization",
    "default_forms",
    "saved_query_fetchxml",
    "solution_components",
]

CUSTOMIZATION_TABLES = frozenset({"savedquery", "savedqueryvisualization", "systemform"})
# Solution component types (the solutioncomponent table's componenttype choice).
COMPONENT_TYPES = {"systemform": 60, "savedquery": 26, "savedqueryvisualization": 59}
_COMPONENT_TABLES = {code: name for name, code in COMPONENT_TYPES.items()}
_PRIMARY_IDS = {
    "systemform": "formid",
    "savedquery": "savedqueryid",
    "savedqueryvisualization": "savedqueryvisualizationid",
}
_INVALID = "0x80040203"  # InvalidArgument: what Dataverse answers for a customization it cannot use
_FORM_NAMESPACE = uuid.UUID("6f9619ff-8b86-d011-b42d-00c04fc964ff")


def check_customization(tables: Mapping[str, Table], table: Table, record: Mapping[str, object]) -> None:
    """Refuse a view, chart or form whose XML Dataverse would refuse (call before it is stored).

    Args:
        tables: the tables the sandbox serves (custom columns included).
        table: the customization table written to.
        record: the record as it will be stored (current values overlaid with the write).

    Raises:
        ApiError: 400 naming what is wrong.
    """
    if table.logical_name == "savedquery":
        _check_view(tables, record)
    elif table.logical_name == "savedqueryvisualization":
        _check_chart(tables, record)
    elif table.logical_name == "systemform":
        _check_form(tables, record)


def saved_query_fetchxml(conn: sqlite3.Connection, table: Table, query_id: str) -> str:
    """The FetchXML of system view ``query_id``, which must return records of ``table``.

    Raises:
        ApiError: 404 when there is no such view, 400 when it is a view of another table.
    """
    try:
        key = str(uuid.UUID(query_id.strip("{}")))
    except ValueError:
        raise bad_request(
            f"Guid should contain 32 digits with 4 dashes (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx): {query_id}"
        ) from None
    row = conn.execute(
        'SELECT returnedtypecode, fetchxml, statecode FROM "savedquery" WHERE savedqueryid = ?', (key,)
    ).fetchone()
    if row is None:
        raise not_found_record("savedquery", key)
    returned, fetchxml, state = row
    if returned != table.logical_name:
        raise bad_request(
            f"The saved query {key} returns {returned} records, not {table.logical_name}: "
            f"call it on the {returned} entity set."
        )
    if state not in (None, 0):
        raise ApiError(400, _INVALID, f"The saved query {key} is inactive.")
    if not fetchxml:
        raise ApiError(400, _INVALID, f"The saved query {key} has no fetchxml.")
    return str(fetchxml)


def _table_named(tables: Mapping[str, Table], value: object, what: str) -> Table:
    name = str(value or "")
    if name not in tables:
        raise ApiError(400, _INVALID, f"{what} '{name}' is not a table of this organization.")
    return tables[name]


def _xml(text: object, what: str) -> ET.Element:
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, _INVALID, f"The {what} is empty.")
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise ApiError(400, _INVALID, f"The {what} is not well-formed XML: {exc}.") from None


def _returned_names(query: FetchQuery) -> set[str]:
    """What a fetch's records carry: its attributes (or all), and ``alias.column`` for its links."""
    if query.attributes is None:
        names = {c.logical_name for c in query.table.columns if not c.internal}
    else:
        names = {a.alias or a.column.logical_name for a in query.attributes}
    names.add(query.table.primary_id)
    for link in query.links:
        names.update(f"{link.alias}.{c.logical_name}" for c in link.attributes)
    return names


def _check_view(tables: Mapping[str, Table], record: Mapping[str, object]) -> None:
    table = _table_named(tables, record.get("returnedtypecode"), "The view's returnedtypecode")
    fetch = record.get("fetchxml")
    if fetch is None:
        return
    query = parse_fetchxml(str(fetch), table, dict(tables))
    root = _xml(fetch, "fetchxml")
    entity = root.find("entity")
    if entity is None or entity.get("name") != table.logical_name:
        raise ApiError(
            400,
            _INVALID,
            f"The view's fetchxml queries {entity.get('name') if entity is not None else 'nothing'}, "
            f"but its returnedtypecode is {table.logical_name}.",
        )
    layout = record.get("layoutxml")
    if layout is None:
        return
    grid = _xml(layout, "layoutxml")
    if grid.tag != "grid" or grid.find("row") is None:
        raise ApiError(400, _INVALID, "The layoutxml must be a <grid> with a <row> of <cell> elements.")
    returned = _returned_names(query)
    for cell in grid.iter("cell"):
        name = cell.get("name")
        if not name:
            raise ApiError(400, _INVALID, "A <cell> of the layoutxml has no name.")
        if name not in returned:
            raise ApiError(
                400,
                _INVALID,
                f"The layoutxml shows the column '{name}', which the view's fetchxml does not return; "
                f'add <attribute name="{name.split(".")[-1]}"/> to the fetchxml.',
            )


def _check_chart(tables: Mapping[str, Table], record: Mapping[str, object]) -> None:
    table = _table_named(tables, record.get("primaryentitytypecode"), "The chart's primaryentitytypecode")
    description = record.get("datadescription")
    if description is None:
        return
    root = _xml(description, "datadescription")
    fetch = root.find("fetchcollection/fetch")
    if root.tag != "datadefinition" or fetch is None:
        raise ApiError(
            400, _INVALID, "The datadescription must be a <datadefinition> with a <fetchcollection>."
        )
    query = parse_fetchxml(ET.tostring(fetch, encoding="unicode"), table, dict(tables))
    if not query.aggregate:
        raise ApiError(
            400, _INVALID, 'A chart\'s fetch must be an aggregate query (<fetch aggregate="true">).'
        )
    aliases = {a.alias for a in query.attributes or [] if a.alias}
    category = root.find("categorycollection/category")
    if category is None:
        raise ApiError(400, _INVALID, "The datadescription has no <category>.")
    used = [category.get("alias"), *(m.get("alias") for m in category.iter("measure"))]
    if len(used) < 2:
        raise ApiError(400, _INVALID, "The chart's category has no <measure>.")
    for alias in used:
        if alias not in aliases:
            raise ApiError(
                400,
                _INVALID,
                f"The datadescription uses the alias '{alias}', which its fetch does not define.",
            )


def _check_form(tables: Mapping[str, Table], record: Mapping[str, object]) -> None:
    table = _table_named(tables, record.get("objecttypecode"), "The form's objecttypecode")
    formxml = record.get("formxml")
    if formxml is None:
        return
    root = _xml(formxml, "formxml")
    if root.tag != "form":
        raise ApiError(400, _INVALID, "The formxml must have <form> as its root element.")
    columns = table.column_map()
    for control in root.iter("control"):
        field = control.get("datafieldname")
        if field and field not in columns:
            raise ApiError(
                400,
                _INVALID,
                f"The form has a control bound to '{field}', which is not a column of {table.logical_name}.",
            )


def _form_xml(table: Table, fields: list[str]) -> str:
    """A main form like a new org's: one General tab, one section, the given fields."""
    rows = "".join(
        f'<row><cell id="{{{uuid.uuid5(_FORM_NAMESPACE, table.logical_name + f)}}}"><labels>'
        f'<label description="{f}" languagecode="1033"/></labels>'
        f'<control id="{f}" classid="{{4273EDBD-AC1D-40d3-9FB2-095C621B552D}}" datafieldname="{f}"/>'
        f"</cell></row>"
        for f in fields
    )
    tab_id = uuid.uuid5(_FORM_NAMESPACE, table.logical_name + ":tab")
    section_id = uuid.uuid5(_FORM_NAMESPACE, table.logical_name + ":section")
    return (
        f'<form><tabs><tab name="general" id="{{{tab_id}}}" expanded="true" showlabel="true">'
        '<labels><label description="General" languagecode="1033"/></labels><columns><column width="100%">'
        f'<sections><section name="general_section" id="{{{section_id}}}" showlabel="false" columns="1">'
        '<labels><label description="General" languagecode="1033"/></labels>'
        f"<rows>{rows}</rows></section></sections></column></columns></tab></tabs></form>"
    )


_FORM_FIELDS = {
    "lead": ["subject", "firstname", "lastname", "companyname", "emailaddress1", "telephone1"],
    "account": ["name", "telephone1", "emailaddress1", "address1_city"],
    "contact": ["firstname", "lastname", "emailaddress1", "telephone1", "parentcustomerid"],
}


def default_forms(tables: Mapping[str, Table]) -> dict[str, pd.DataFrame]:
    """Seed frames with the main form (type 2) of lead, account and contact."""
    rows = []
    for name, fields in _FORM_FIELDS.items():
        table = tables[name]
        known = [f for f in fields if f in table.column_map()]
        rows.append(
            {
                "formid": str(uuid.uuid5(_FORM_NAMESPACE, f"main:{name}")),
                "name": "Information",
                "objecttypecode": name,
                "type": 2,
                "formxml": _form_xml(table, known),
                "isdefault": True,
                "formactivationstate": 1,
                "iscustomizable": True,
                "ismanaged": False,
            }
        )
    return {"systemform": pd.DataFrame(rows)}


def _components_table(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _dv_solution_components (solution TEXT NOT NULL, "
        "componenttype INTEGER NOT NULL, objectid TEXT NOT NULL, "
        "PRIMARY KEY (solution, componenttype, objectid))"
    )


def add_solution_component(conn: sqlite3.Connection, solution: str, table: str, object_id: str) -> None:
    """Record that a view, chart or form belongs to ``solution`` (a create with
    ``MSCRM.SolutionUniqueName``, or ``AddSolutionComponent``)."""
    _components_table(conn)
    conn.execute(
        "INSERT OR IGNORE INTO _dv_solution_components VALUES (?, ?, ?)",
        (solution, COMPONENT_TYPES[table], object_id.lower()),
    )


def solution_components(conn: sqlite3.Connection, solution: str) -> dict[str, set[str]]:
    """The customization records in ``solution``, by table."""
    _components_table(conn)
    found: dict[str, set[str]] = {}
    for code, object_id in conn.execute(
        "SELECT componenttype, objectid FROM _dv_solution_components WHERE solution = ?", (solution,)
    ):
        found.setdefault(_COMPONENT_TABLES.get(code, str(code)), set()).add(object_id)
    return found


def add_component_from_action(conn: sqlite3.Connection, body: object) -> dict[str, object]:
    """The ``AddSolutionComponent`` action for forms, views and charts (other component types: 501).

    Raises:
        ApiError: a missing parameter, an unknown component type or a component that does not exist.
    """
    if not isinstance(body, dict):
        raise bad_request("AddSolutionComponent takes a JSON object.")
    for name in ("ComponentId", "ComponentType", "SolutionUniqueName"):
        if name not in body:
            raise bad_request(f"AddSolutionComponent needs the parameter {name}.")
    table = _COMPONENT_TABLES.get(body["ComponentType"]) if isinstance(body["ComponentType"], int) else None
    if table is None:
        raise not_implemented(f"AddSolutionComponent for component type {body['ComponentType']!r}")
    key = str(body["ComponentId"]).lower()
    pk = {
        "systemform": "formid",
        "savedquery": "savedqueryid",
        "savedqueryvisualization": "savedqueryvisualizationid",
    }
    if conn.execute(f'SELECT 1 FROM "{table}" WHERE {pk[table]} = ?', (key,)).fetchone() is None:
        raise not_found_record(table, key)
    add_solution_component(conn, str(body["SolutionUniqueName"]), table, key)
    return {"id": str(uuid.uuid5(_FORM_NAMESPACE, f"{body['SolutionUniqueName']}:{table}:{key}"))}
