"""What the jobs read and write: the canonical fields per entity, each job's required fields, the
Dataverse column types each way of reading accepts, and the results each target table receives.
"""

from __future__ import annotations

import re

# The canonical entities and their fields (COMMON.md), each with the kind of value the jobs expect:
# "text", "number", "datetime" or "id" (a GUID string). The id of each entity is implicit: it is the
# table's primary key and is always read.
CANONICAL_FIELDS: dict[str, dict[str, str]] = {
    "lead": {
        "lead_id": "id",
        "first_name": "text",
        "last_name": "text",
        "company": "text",
        "job_title": "text",
        "email": "text",
        "phone": "text",
        "mobile_phone": "text",
        "website": "text",
        "street": "text",
        "city": "text",
        "postcode": "text",
        "country": "text",
        "source": "text",
        "industry": "text",
        "employees": "number",
        "revenue": "number",
        "budget": "number",
        "purchase_timeframe": "text",
        "rating": "text",
        "status": "text",
        "status_reason": "text",
        "created_on": "datetime",
        "modified_on": "datetime",
    },
    "account": {
        "account_id": "id",
        "name": "text",
        "email": "text",
        "phone": "text",
        "website": "text",
        "street": "text",
        "city": "text",
        "postcode": "text",
        "country": "text",
        "industry": "text",
        "employees": "number",
        "revenue": "number",
        "created_on": "datetime",
        "modified_on": "datetime",
    },
    "contact": {
        "contact_id": "id",
        "first_name": "text",
        "last_name": "text",
        "email": "text",
        "phone": "text",
        "mobile_phone": "text",
        "job_title": "text",
        "account_id": "id",
        "street": "text",
        "city": "text",
        "postcode": "text",
        "country": "text",
        "created_on": "datetime",
        "modified_on": "datetime",
    },
    "order": {
        "order_id": "id",
        "customer_id": "id",
        "customer_type": "text",
        "order_date": "datetime",
        "amount": "number",
        "status": "text",
        "created_on": "datetime",
        "modified_on": "datetime",
    },
    "activity": {
        "activity_id": "id",
        "activity_type": "text",
        "lead_id": "id",
        "occurred_on": "datetime",
        "direction": "text",
        "status": "text",
    },
}
ENTITY_IDS: dict[str, str] = {entity: f"{entity}_id" for entity in CANONICAL_FIELDS}

# Which canonical fields each job cannot run without (its defaults; the jobs take column names as
# configuration, so a consultant who renames a field there must map it here).
JOB_REQUIREMENTS: dict[str, dict[str, tuple[str, ...]]] = {
    # Scoring's rules name their own columns and are checked by the scoring job against the mapping.
    "scoring": {"lead": ("status", "created_on")},
    "duplicates": {
        "lead": ("first_name", "last_name", "company", "email", "phone"),
        "contact": ("first_name", "last_name", "email"),
        "account": ("name",),
    },
    "rfm": {"order": ("customer_id", "order_date", "amount", "status")},
    "clv": {"order": ("customer_id", "customer_type", "order_date", "amount", "status")},
}

# How a mapped value is read, and which Dataverse AttributeTypes each way can read.
FIELD_TYPES: dict[str, frozenset[str]] = {
    "string": frozenset({"String", "Memo", "Uniqueidentifier", "EntityName"}),
    "integer": frozenset({"Integer", "BigInt"}),
    "float": frozenset({"Decimal", "Double", "Money", "Integer", "BigInt"}),
    "money": frozenset({"Money", "Decimal", "Double"}),
    "datetime": frozenset({"DateTime"}),
    "boolean": frozenset({"Boolean"}),
    "choice": frozenset({"Picklist", "State", "Status"}),
    "multichoice": frozenset({"Virtual", "MultiSelectPicklist"}),
    "lookup": frozenset({"Lookup", "Customer", "Owner", "Uniqueidentifier"}),
    "lookup_type": frozenset({"Lookup", "Customer", "Owner"}),
    "constant": frozenset(),
}
# What each mapping type produces, to check it against what the canonical field expects.
PRODUCES: dict[str, str] = {
    "string": "text",
    "integer": "number",
    "float": "number",
    "money": "number",
    "datetime": "datetime",
    "boolean": "bool",
    "choice": "text",
    "multichoice": "text",
    "lookup": "id",
    "lookup_type": "text",
    "constant": "text",
}
# The mirror's storage type for each produced kind ("bool" with a values map produces text).
MIRROR_DTYPE = {"text": "text", "id": "text", "number": "float", "datetime": "datetime", "bool": "bool"}

# Well-known object type codes, for companion columns that hold a number rather than a name
# (reference §7.1: account 1, contact 2, opportunity 3, lead 4, salesorder 1088).
OBJECT_TYPE_CODES = {1: "account", 2: "contact", 3: "opportunity", 4: "lead", 1088: "salesorder"}
LOOKUP_LOGICAL_NAME = "Microsoft.Dynamics.CRM.lookuplogicalname"
LOOKUP_ANNOTATION = f"@{LOOKUP_LOGICAL_NAME}"

TABLE_KEYS = ("table", "entity", "entity_set", "enabled", "fields")
FIELD_KEYS = ("column", "type", "values", "targets", "type_column", "value", "description")
CANONICAL_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
LOGICAL_NAME_PATTERN = re.compile(r"^[a-z_][a-z0-9_]*$")


# The results the jobs produce, per target table, with the output type each one needs.
OUTPUT_RESULTS: dict[str, dict[str, frozenset[str]]] = {
    "lead": {
        "score": frozenset({"integer", "decimal"}),
        "grade": frozenset({"string"}),
        "factors": frozenset({"memo", "string"}),
        "trend": frozenset({"string"}),
        "sales_ready": frozenset({"boolean"}),
        "duplicate_group": frozenset({"string"}),
        "duplicate_score": frozenset({"integer", "decimal"}),
        "suggested_master": frozenset({"string"}),
        "duplicate_status": frozenset({"string"}),
        "existing_contact": frozenset({"string", "memo"}),
        "existing_contact_id": frozenset({"string"}),
        "existing_contact_score": frozenset({"integer", "decimal"}),
        "existing_account": frozenset({"string", "memo"}),
        "existing_account_id": frozenset({"string"}),
        "existing_account_score": frozenset({"integer", "decimal"}),
        "scored_on": frozenset({"datetime", "date"}),
        "duplicate_decision": frozenset({"choice"}),
    },
}
_CUSTOMER_RESULTS: dict[str, frozenset[str]] = {
    "duplicate_group": frozenset({"string"}),
    "duplicate_score": frozenset({"integer", "decimal"}),
    "suggested_master": frozenset({"string"}),
    "duplicate_status": frozenset({"string"}),
    "rfm_recency": frozenset({"integer"}),
    "rfm_frequency": frozenset({"integer"}),
    "rfm_monetary": frozenset({"integer"}),
    "rfm_cell": frozenset({"string"}),
    "rfm_segment": frozenset({"string"}),
    "clv_historical": frozenset({"decimal"}),
    "clv_predicted": frozenset({"decimal"}),
    "p_alive": frozenset({"decimal"}),
    "churn_risk": frozenset({"boolean", "string"}),
    "high_value": frozenset({"boolean"}),
    "value_reason": frozenset({"memo", "string"}),
    "scored_on": frozenset({"datetime", "date"}),
    "duplicate_decision": frozenset({"choice"}),
}
# Choice outputs: their options, in order (Dataverse assigns the values with the publisher's
# option value prefix; dvsync reads a chosen option back by its label).
OUTPUT_CHOICES: dict[str, tuple[str, ...]] = {
    # A person's verdict on a record's suggested duplicate group; read by `dvsync merge`.
    "duplicate_decision": ("Merge into suggested master", "Not a duplicate", "Keep both"),
}
OUTPUT_RESULTS["account"] = dict(_CUSTOMER_RESULTS)
OUTPUT_RESULTS["contact"] = dict(_CUSTOMER_RESULTS)

OUTPUT_KEYS = (
    "column",
    "schema_name",
    "type",
    "display_name",
    "description",
    "max_length",
    "precision",
    "min",
    "max",
    "scale",
    "enabled",
)
DEFAULT_MAX_LENGTH = {"string": 100, "memo": 2000}
SCHEMA_SUFFIX_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
PREFIX_PATTERN = re.compile(r"^[a-z][a-z0-9]{1,7}$")
