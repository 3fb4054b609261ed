"""The customization tables the sandbox serves: system views, system charts and forms.

``savedquery`` (system views: FetchXML + layout XML), ``savedqueryvisualization`` (system charts:
data description + presentation description) and ``systemform`` (forms: form XML), with the
columns their Microsoft table references list that a client provisioning views, charts and form
sections reads or writes. They are organization-owned (no ``ownerid``). Validation of their XML on
write and ``GET <set>?savedQuery=<id>`` live in :mod:`connector.sandbox.customizations`.
"""

from __future__ import annotations

from connector.sandbox.schema import Column

__all__ = ["CUSTOMIZATION_COLUMNS", "QUERY_TYPES"]

# Dataverse stores these XML documents in Memo columns of up to 1,073,741,823 characters.
_XML_LENGTH = 1_073_741_823
QUERY_TYPES = {
    0: "Main Application View",
    1: "Advanced Search",
    2: "Sub-Grid",
    4: "Quick Find Search",
    64: "Lookup View",
}
_FORM_TYPES = {
    2: "Main",
    5: "Mobile",
    6: "Quick View Form",
    7: "Quick Create",
    11: "Main - Interactive experience",
}


def _audit() -> list[Column]:
    return [
        Column("createdon", "DateTime", create=False, update=False),
        Column("modifiedon", "DateTime", create=False, update=False),
        Column("createdby", "Lookup", targets=("systemuser",), create=False, update=False),
        Column("modifiedby", "Lookup", targets=("systemuser",), create=False, update=False),
        Column("versionnumber", "BigInt", create=False, update=False),
        Column("iscustomizable", "Boolean", options={1: "True", 0: "False"}),
        Column("ismanaged", "Boolean", options={1: "Managed", 0: "Unmanaged"}, create=False, update=False),
        Column("introducedversion", "String", max_length=48),
    ]


def _savedquery() -> list[Column]:
    return [
        Column("savedqueryid", "Uniqueidentifier", update=False),
        Column("name", "String", max_length=200, required_level="SystemRequired"),
        Column("description", "Memo", max_length=100000),
        Column("returnedtypecode", "EntityName", required_level="SystemRequired", update=False),
        Column("querytype", "Integer", min_value=0, max_value=1_000_000, required_level="SystemRequired"),
        Column("fetchxml", "Memo", max_length=_XML_LENGTH),
        Column("layoutxml", "Memo", max_length=_XML_LENGTH),
        Column("isdefault", "Boolean", options={1: "Yes", 0: "No"}),
        Column("iscustom", "Boolean", options={1: "Yes", 0: "No"}, create=False, update=False),
        Column("isquickfindquery", "Boolean", options={1: "Yes", 0: "No"}),
        Column("statecode", "State", options={0: "Active", 1: "Inactive"}, default_status={0: 1, 1: 2}),
        Column("statuscode", "Status", options={1: "Active", 2: "Inactive"}, option_states={1: 0, 2: 1}),
        *_audit(),
    ]


def _savedqueryvisualization() -> list[Column]:
    return [
        Column("savedqueryvisualizationid", "Uniqueidentifier", update=False),
        Column("name", "String", max_length=200, required_level="SystemRequired"),
        Column("description", "Memo", max_length=100000),
        Column("primaryentitytypecode", "EntityName", required_level="SystemRequired", update=False),
        Column("datadescription", "Memo", max_length=_XML_LENGTH, required_level="SystemRequired"),
        Column("presentationdescription", "Memo", max_length=_XML_LENGTH),
        Column("isdefault", "Boolean", options={1: "Yes", 0: "No"}),
        Column("charttype", "Picklist", options={0: "ASP.NET Charts", 1: "D3"}),
        *_audit(),
    ]


def _systemform() -> list[Column]:
    return [
        Column("formid", "Uniqueidentifier", update=False),
        Column("name", "String", max_length=100, required_level="SystemRequired"),
        Column("description", "Memo", max_length=100000),
        Column("objecttypecode", "EntityName", required_level="SystemRequired", update=False),
        Column("type", "Picklist", options=_FORM_TYPES, required_level="SystemRequired"),
        Column("formxml", "Memo", max_length=_XML_LENGTH, required_level="SystemRequired"),
        Column("isdefault", "Boolean", options={1: "Yes", 0: "No"}),
        Column("formactivationstate", "Picklist", options={0: "Inactive", 1: "Active"}),
        *_audit(),
    ]


# (logical name, entity set, primary id, primary name, object type code, columns, display, plural)
CUSTOMIZATION_COLUMNS: tuple[tuple[str, str, str, str, int, list[Column], str, str], ...] = (
    ("savedquery", "savedqueries", "savedqueryid", "name", 1039, _savedquery(), "View", "Views"),
    (
        "savedqueryvisualization",
        "savedqueryvisualizations",
        "savedqueryvisualizationid",
        "name",
        1111,
        _savedqueryvisualization(),
        "System Chart",
        "System Charts",
    ),
    ("systemform", "systemforms", "formid", "name", 1030, _systemform(), "System Form", "System Forms"),
)
