"""``EntityMetadata`` of the served tables and the relationships their lookups make.

The properties are those a real table's definition carries (the §7.1 list and Microsoft's
EntityMetadata reference), with the values a standard Sales table has: ``IsPrivate`` false,
``TableType`` ``Standard``, notes and activities enabled on the tables that have them in
Dynamics 365 Sales. Relationships are derived from the lookups the sandbox models: each lookup is a
one-to-many relationship from the table it points at (``ManyToOneRelationships`` of the table that
holds it, ``OneToManyRelationships`` of the target). The sandbox models no many-to-many
relationship, so ``ManyToManyRelationships`` is an empty collection, which is what a table without
one answers.
"""

from __future__ import annotations

import uuid

from connector.sandbox.catalog import TABLES
from connector.sandbox.config import SandboxConfig
from connector.sandbox.metadata.options import NS, MetadataType, label
from connector.sandbox.schema import Column, Table

__all__ = [
    "ENTITY",
    "MANY_TO_MANY",
    "ONE_TO_MANY",
    "entity_json",
    "relationships",
    "schema_name",
]

# Standard tables' schema names (the logical name with Microsoft's capitalisation).
_SCHEMA_NAMES = {
    "account": "Account",
    "contact": "Contact",
    "opportunity": "Opportunity",
    "lead": "Lead",
    "salesorder": "SalesOrder",
    "salesorderdetail": "SalesOrderDetail",
    "email": "Email",
    "phonecall": "PhoneCall",
    "appointment": "Appointment",
}
# Tables with notes and activities in Dynamics 365 Sales (activities themselves have notes only).
_HAS_ACTIVITIES = frozenset({"account", "contact", "lead", "opportunity", "salesorder"})
_HAS_NOTES = frozenset(
    {"account", "contact", "lead", "opportunity", "salesorder", "email", "phonecall", "appointment"}
)
_IMAGES = {"account": "entityimage", "contact": "entityimage", "lead": "entityimage"}
_NS_UUID = uuid.UUID("0b7d3f0e-56a1-4c1d-9d4e-3f4f6c5a2b10")


def schema_name(table: Table) -> str:
    """The table's SchemaName (``SalesOrder``); created tables would keep their own."""
    return _SCHEMA_NAMES.get(table.logical_name, table.logical_name)


def _managed(value: bool, name: str) -> dict:
    return {"Value": value, "CanBeChanged": True, "ManagedPropertyLogicalName": name}


def entity_json(config: SandboxConfig, table: Table) -> dict:
    """The EntityMetadata of one table, without navigation properties."""
    name = table.logical_name
    schema = schema_name(table)
    tracked = name not in config.change_tracking_disabled
    return {
        "MetadataId": table.metadata_id,
        "HasChanged": None,
        "LogicalName": name,
        "SchemaName": schema,
        "EntitySetName": table.entity_set,
        "LogicalCollectionName": table.entity_set,
        "CollectionSchemaName": "Opportunities" if name == "opportunity" else schema + "s",
        "PrimaryIdAttribute": table.primary_id,
        "PrimaryNameAttribute": table.primary_name or None,
        "PrimaryImageAttribute": _IMAGES.get(name),
        "ObjectTypeCode": table.object_type_code,
        "TableType": "Standard",
        "OwnershipType": "UserOwned",
        "IsCustomEntity": False,
        "IsManaged": True,
        "IsPrivate": False,
        "IsIntersect": False,
        "IsLogicalEntity": False,
        "IsActivity": table.is_activity,
        "IsActivityParty": False,
        "IsChildEntity": False,
        "IsBPFEntity": False,
        "IsSolutionAware": False,
        "IsStateModelAware": True,
        "IsAIRelated": False,
        "IsOptimisticConcurrencyEnabled": True,
        "ChangeTrackingEnabled": tracked,
        "CanChangeTrackingBeEnabled": _managed(True, "canchangetrackingbeenabled"),
        "HasActivities": name in _HAS_ACTIVITIES,
        "HasNotes": name in _HAS_NOTES,
        "HasFeedback": False,
        "HasEmailAddresses": any(c.format_name == "Email" for c in table.columns),
        "IsAuditEnabled": _managed(True, "canmodifyauditsettings"),
        "IsDuplicateDetectionEnabled": _managed(
            name in ("lead", "account", "contact"), "canmodifyduplicatedetectionsettings"
        ),
        "IsValidForAdvancedFind": True,
        "IsValidForQueue": _managed(name in ("email", "phonecall", "appointment"), "canmodifyqueuesettings"),
        "IsConnectionsEnabled": _managed(True, "canmodifyconnectionsettings"),
        "IsMailMergeEnabled": _managed(not table.is_activity, "canmodifymailmergesettings"),
        "IsDocumentManagementEnabled": False,
        "IsEnabledForCharts": True,
        "IsEnabledForTrace": False,
        "IsImportable": True,
        "IsMappable": _managed(True, "canmodifymobilevisibility"),
        "IsRenameable": _managed(True, "isrenameable"),
        "IsCustomizable": _managed(table.writable, "iscustomizable"),
        "IsQuickCreateEnabled": not table.is_activity,
        "IsAvailableOffline": True,
        "IsReadingPaneEnabled": True,
        "IsBusinessProcessEnabled": name in ("lead", "opportunity"),
        "IsReadOnlyInMobileClient": _managed(False, "canmodifymobileclientreadonly"),
        "IsOfflineInMobileClient": _managed(False, "canmodifymobileclientoffline"),
        "AutoRouteToOwnerQueue": False,
        "ActivityTypeMask": 1 if table.is_activity else None,
        "IntroducedVersion": "5.0.0.0",
        "DataProviderId": None,
        "DataSourceId": None,
        "ExternalName": None,
        "ExternalCollectionName": None,
        "EntityColor": None,
        "EntityHelpUrl": None,
        "EntityHelpUrlEnabled": False,
        "ReportViewName": f"Filtered{schema}",
        "RecurrenceBaseEntityLogicalName": None,
        "SyncToExternalSearchIndex": True,
        "UsesBusinessDataLabelTable": False,
        "CanCreateAttributes": {**_managed(True, "cancreateattributes"), "CanBeChanged": False},
        "CanCreateForms": _managed(True, "cancreateforms"),
        "CanCreateViews": _managed(True, "cancreateviews"),
        "DisplayName": label(table.display_name),
        "DisplayCollectionName": label(table.display_collection_name),
        "Description": label(""),
    }  # fmt: skip


_ENTITY_LABELS = frozenset({"DisplayName", "DisplayCollectionName", "Description"})
_ENTITY_NAVIGATIONS = frozenset(
    {"Attributes", "Keys", "ManyToOneRelationships", "OneToManyRelationships", "ManyToManyRelationships"}
)


ENTITY = MetadataType(
    "EntityMetadata",
    frozenset(entity_json(SandboxConfig(), TABLES[0])),  # the property names, from one table
    _ENTITY_NAVIGATIONS,
    _ENTITY_LABELS,
)

# --- relationships -------------------------------------------------------------------------------

_CASCADE = {
    "Assign": "NoCascade",
    "Delete": "RemoveLink",
    "Archive": "NoCascade",
    "Merge": "NoCascade",
    "Reparent": "NoCascade",
    "Share": "NoCascade",
    "Unshare": "NoCascade",
    "RollupView": "NoCascade",
}


def _one_to_many(table: Table, column: Column, target: str, nav: str, referenced_id: str) -> dict:
    schema = f"{target}_{table.logical_name}_{column.logical_name}"
    return {
        "@odata.type": f"#{NS}OneToManyRelationshipMetadata",
        "MetadataId": str(uuid.uuid5(_NS_UUID, schema)),
        "HasChanged": None,
        "SchemaName": schema,
        "RelationshipType": "OneToManyRelationship",
        "ReferencedEntity": target,
        "ReferencedAttribute": referenced_id,
        "ReferencingEntity": table.logical_name,
        "ReferencingAttribute": column.logical_name,
        "ReferencedEntityNavigationPropertyName": schema,
        "ReferencingEntityNavigationPropertyName": nav,
        "IsHierarchical": target == table.logical_name,
        "IsCustomRelationship": column.is_custom,
        "IsManaged": not column.is_custom,
        "IsValidForAdvancedFind": True,
        "SecurityTypes": "Append" if column.attribute_type != "Owner" else "None",
        "RelationshipBehavior": 0,
        "IntroducedVersion": "5.0.0.0",
        "CascadeConfiguration": dict(_CASCADE),
        "IsCustomizable": _managed(True, "iscustomizable"),
    }


_PRIMARY_IDS = {"systemuser": "systemuserid", "team": "teamid", "businessunit": "businessunitid"}


def relationships(tables: dict[str, Table]) -> list[dict]:
    """Every one-to-many relationship the lookups of the served tables make."""
    out = []
    for table in tables.values():
        for column in table.columns:
            if not column.is_lookup:
                continue
            for nav, target in _navigations(column).items():
                served = tables.get(target)
                referenced_id = served.primary_id if served else _PRIMARY_IDS.get(target, f"{target}id")
                out.append(_one_to_many(table, column, target, nav, referenced_id))
    return out


def _navigations(column: Column) -> dict[str, str]:
    """Navigation property → target, one per target (an owner points at users and teams)."""
    if column.attribute_type == "Owner":
        return {"owninguser": "systemuser", "owningteam": "team"}
    navs = column.navigation_properties()
    if navs:
        return navs
    return {column.logical_name: column.targets[0]} if column.targets else {}


_RELATIONSHIP_COMMON = (
    "@odata.type", "MetadataId", "HasChanged", "SchemaName", "RelationshipType", "IsCustomRelationship",
    "IsManaged", "IsValidForAdvancedFind", "SecurityTypes", "RelationshipBehavior", "IntroducedVersion",
    "IsCustomizable", "IsHierarchical",
)  # fmt: skip
ONE_TO_MANY = MetadataType(
    "OneToManyRelationshipMetadata",
    frozenset({
        *_RELATIONSHIP_COMMON, "ReferencedEntity", "ReferencedAttribute", "ReferencingEntity",
        "ReferencingAttribute", "ReferencedEntityNavigationPropertyName",
        "ReferencingEntityNavigationPropertyName", "CascadeConfiguration",
    }),
)  # fmt: skip
MANY_TO_MANY = MetadataType(
    "ManyToManyRelationshipMetadata",
    frozenset({
        *_RELATIONSHIP_COMMON, "Entity1LogicalName", "Entity2LogicalName", "IntersectEntityName",
        "Entity1IntersectAttribute", "Entity2IntersectAttribute", "Entity1NavigationPropertyName",
        "Entity2NavigationPropertyName",
    }),
)  # fmt: skip
