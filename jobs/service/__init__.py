"""The service: one run against Dataverse, end to end, and everything around it.

``settings`` (+ ``settings_sources``, ``settings_load``) and ``mapping/`` read the configuration;
``connect`` opens the client; ``mirror/`` is the local SQLite state; ``sync`` pulls tables;
``compute`` runs the analytics; ``plan`` diffs results against Dynamics; ``pipeline`` is one run
(sync → compute → plan → write back → record); ``rollback`` undoes one; ``merge`` (+ ``merge_store``)
merges duplicates in Dynamics; ``schedule`` and ``status`` run on cron and report; ``check`` (+
``labels``, ``privileges``) and ``provision`` validate and prepare an org; ``views`` provisions
what sales see; ``stopping`` turns SIGINT/SIGTERM into a stop at the next safe point; ``workdir``
writes the folder ``dvsync init`` sets up. Modules are
imported by name; nothing is re-exported, to keep ``dvsync --help`` from loading pandas.
"""

__all__ = [
    "check",
    "compute",
    "connect",
    "inputs",
    "labels",
    "mapping",
    "merge",
    "merge_store",
    "mirror",
    "pipeline",
    "plan",
    "privileges",
    "provision",
    "rollback",
    "schedule",
    "settings",
    "settings_load",
    "status",
    "stopping",
    "sync",
    "views",
    "workdir",
]
