"""The service document, the ``$metadata`` CSDL document and ``PublishXml``/``PublishAllXml``.

Follows ``../shared/dataverse-webapi.md`` §1.1 (service document, CSDL) and §7.6 (publishing).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from connector.sandbox.config import SandboxConfig
from connector.sandbox.dates import format_datetime
from connector.sandbox.faults import ApiError, bad_request
from connector.sandbox.protocol import Request, Response, json_response
from connector.sandbox.schema import EDM_TYPES
from connector.sandbox.storage import Store

__all__ = ["csdl", "publish", "service_document"]


def service_document(store: Store, config: SandboxConfig, req: Request) -> Response:
    """``GET /api/data/v9.2/``: the entity sets served (§1.1)."""
    if req.method != "GET":
        raise ApiError(405, "0x0", "The service document only answers GET.")
    sets = [{"name": t.entity_set, "kind": "EntitySet", "url": t.entity_set} for t in store.tables.values()]
    sets.append({"name": "EntityDefinitions", "kind": "EntitySet", "url": "EntityDefinitions"})
    return json_response(200, {"@odata.context": f"{req.service_root}$metadata", "value": sets})


def csdl(store: Store, config: SandboxConfig, req: Request) -> Response:
    """``GET $metadata``: CSDL XML for the served tables, created columns included (§7.1)."""
    if req.method != "GET":
        raise ApiError(405, "0x0", "$metadata only answers GET.")
    annotations = dict(parse_qsl(req.query)).get("annotations") == "true"
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">',
        "<edmx:DataServices>",
        '<Schema Namespace="Microsoft.Dynamics.CRM" Alias="mscrm" xmlns="http://docs.oasis-open.org/odata/ns/edm">',
        '<EntityType Name="crmbaseentity" Abstract="true"/>',
    ]
    tables = list(store.tables.values())
    for table in tables:
        parts.append(f'<EntityType Name="{table.logical_name}" BaseType="mscrm.crmbaseentity">')
        parts.append(f'<Key><PropertyRef Name="{table.primary_id}"/></Key>')
        for column in table.columns:
            if column.internal:
                continue  # an EntityName companion is an attribute, not a property of the entity type
            edm = EDM_TYPES.get(column.attribute_type, "Edm.String")
            attrs = f'Name="{column.wire_name}" Type="{edm}"'
            if edm == "Edm.String":
                attrs += ' Unicode="false"'
            if annotations and (not column.create and not column.update):
                parts.append(
                    f'<Property {attrs}><Annotation Term="Org.OData.Core.V1.Computed" '
                    'Bool="true"/></Property>'
                )
            else:
                parts.append(f"<Property {attrs}/>")
        for column in table.columns:
            for nav, target in column.navigation_properties().items():
                parts.append(f'<NavigationProperty Name="{nav}" Type="mscrm.{target}"/>')
        parts.append("</EntityType>")
    parts.append('<EntityContainer Name="System">')
    for table in tables:
        tracked = table.logical_name not in config.change_tracking_disabled
        if annotations and tracked:
            parts.append(
                f'<EntitySet Name="{table.entity_set}" '
                f'EntityType="Microsoft.Dynamics.CRM.{table.logical_name}">'
                '<Annotation Term="Org.OData.Capabilities.V1.ChangeTracking"><Record>'
                '<PropertyValue Property="Supported" Bool="true"/></Record></Annotation></EntitySet>'
            )
        else:
            parts.append(
                f'<EntitySet Name="{table.entity_set}" '
                f'EntityType="Microsoft.Dynamics.CRM.{table.logical_name}"/>'
            )
    parts.append('<FunctionImport Name="WhoAmI" Function="Microsoft.Dynamics.CRM.WhoAmI"/>')
    parts.append("</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>")
    return Response(
        200, [("Content-Type", "application/xml"), ("OData-Version", "4.0")], "".join(parts).encode()
    )


def publish(store: Store, config: SandboxConfig, req: Request, action: str) -> Response:
    """``POST PublishXml`` / ``PublishAllXml`` (§7.6): recorded; columns are usable before publishing."""
    if req.method != "POST":
        raise ApiError(405, "0x0", f"{action} is an action: use POST.")
    parameter_xml = None
    if action == "PublishXml":
        body = req.json()
        if not isinstance(body, dict) or not isinstance(body.get("ParameterXml"), str):
            raise bad_request(
                'PublishXml needs a body like {"ParameterXml": "<importexportxml>...</importexportxml>"}.'
            )
        parameter_xml = body["ParameterXml"]
        if not parameter_xml.strip().startswith("<importexportxml"):
            raise bad_request("ParameterXml must be an <importexportxml> document.")
        for name in re.findall(r"<entity>\s*([^<\s]+)\s*</entity>", parameter_xml):
            if name not in store.tables:
                raise ApiError(
                    404,
                    "0x80040217",
                    f"The entity with a name = '{name}' was not found in the MetadataCache.",
                )
    with store.transaction() as conn:
        conn.execute(
            "INSERT INTO _dv_publish VALUES (?, ?)", (format_datetime(config.clock()), parameter_xml)
        )
    return Response(204, [("OData-Version", "4.0")])
