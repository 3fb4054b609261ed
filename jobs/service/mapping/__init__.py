"""Mapping files: which org columns feed dvsync's canonical fields, and where results are written.

A consultant edits one TOML file per source table (``mappings/lead.toml``, ``account.toml``,
``contact.toml``, ``salesorder.toml``, ``email.toml``, ...) and one ``outputs.toml``. This module
reads them through :mod:`core.tomlfile`, validates them without talking to Dataverse (every
problem at once, each naming file, line and key), decides the ``$select`` of each table, and turns
the JSON records Dataverse returns into DataFrames with canonical column names and types:

- choice / state / status values become labels (the file's ``values`` map, else the org's labels);
- date-times become UTC; money and decimals become floats; booleans become bools (or labels);
- lookups are read from ``_<name>_value`` as lower-case GUID strings; the table a polymorphic
  lookup points at comes from the ``Microsoft.Dynamics.CRM.lookuplogicalname`` annotation, which
  the reader asks for (:attr:`TableReader.annotations`) whenever a field needs it. That is how
  Microsoft documents it: the EntityName companion columns (``customeridtype``) are "set
  implicitly" and are not properties the Web API lets a query ``$select``.

Validation against the org's real metadata (does the column exist, is its type compatible) is
:func:`validate_against_org`; ``dvsync check`` calls it. Nothing here does HTTP.
"""

from jobs.service.mapping.catalogue import (
    CANONICAL_FIELDS,
    ENTITY_IDS,
    FIELD_TYPES,
    JOB_REQUIREMENTS,
    LOOKUP_LOGICAL_NAME,
    OUTPUT_RESULTS,
)
from jobs.service.mapping.load import (
    collect_mappings,
    load_mappings,
    load_outputs,
    load_table_mapping,
    validate_for_jobs,
)
from jobs.service.mapping.model import (
    OUTPUT_TYPES,
    FieldMapping,
    MappingErrors,
    MappingSet,
    OutputColumn,
    Problems,
    TableMapping,
)
from jobs.service.mapping.org import option_labels, validate_against_org
from jobs.service.mapping.reader import TableReader

__all__ = [
    "CANONICAL_FIELDS",
    "ENTITY_IDS",
    "FIELD_TYPES",
    "JOB_REQUIREMENTS",
    "LOOKUP_LOGICAL_NAME",
    "OUTPUT_RESULTS",
    "OUTPUT_TYPES",
    "FieldMapping",
    "MappingErrors",
    "MappingSet",
    "OutputColumn",
    "Problems",
    "TableMapping",
    "TableReader",
    "collect_mappings",
    "load_mappings",
    "load_outputs",
    "load_table_mapping",
    "option_labels",
    "validate_against_org",
    "validate_for_jobs",
]
