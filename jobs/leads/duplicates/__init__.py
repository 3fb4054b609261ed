"""Duplicate detection for leads, contacts and accounts, and links from leads to existing customers.

Modules, in the order a run uses them: ``normalize`` (+ ``nicknames``) prepares values,
``blocking`` proposes candidate pairs, ``comparisons`` grades each field, ``linkage_model``
(Fellegi-Sunter, fitted by EM) scores pairs, ``clustering`` groups them with a suggested master;
``detect`` runs that chain (:func:`find_duplicates`, :func:`link_records`) and ``config`` reads
``mappings/duplicates.toml``. ``merge_config`` (the merge band), ``merge_policy`` (decisions,
remembered rulings, the cap) and ``survivorship`` (who survives, which values) decide merges.
"""

from jobs.leads.duplicates.clustering import CLUSTER_COLUMNS, cluster
from jobs.leads.duplicates.config import DuplicateConfig, LinkConfig, load_duplicate_config
from jobs.leads.duplicates.detect import (
    DEFAULT_THRESHOLD,
    DuplicateResult,
    FieldSpec,
    MatchOptions,
    find_duplicates,
    link_records,
)

__all__ = [
    "CLUSTER_COLUMNS",
    "DEFAULT_THRESHOLD",
    "DuplicateConfig",
    "DuplicateResult",
    "FieldSpec",
    "LinkConfig",
    "MatchOptions",
    "cluster",
    "find_duplicates",
    "link_records",
    "load_duplicate_config",
]
