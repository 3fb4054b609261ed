"""Table metadata over the Web API: ``$metadata``, ``EntityDefinitions``, keys, relationships, changes.

Modules: :mod:`options` (metadata ``$select``/``$filter``/``$expand``), :mod:`entities` (table
and relationship metadata), :mod:`attributes` (column metadata), :mod:`columns` (column creation),
:mod:`keys` (alternate key metadata), :mod:`changes` (``RetrieveMetadataChanges``),
:mod:`documents` (service document, CSDL, publishing) and :mod:`routes` (which path is which).
"""

from connector.sandbox.metadata.changes import retrieve_metadata_changes
from connector.sandbox.metadata.documents import csdl, publish, service_document
from connector.sandbox.metadata.routes import entity_definitions, relationship_definitions

__all__ = [
    "csdl",
    "entity_definitions",
    "publish",
    "relationship_definitions",
    "retrieve_metadata_changes",
    "service_document",
]
