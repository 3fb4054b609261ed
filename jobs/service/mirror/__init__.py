"""The SQLite mirror: mirrored tables under canonical column names, and the service's own state.

One file (settings ``mirror.path``, default ``.dvsync/mirror.sqlite``) holds:

====================  ==========================================================================
``t_<name>``          one per mapping file (``t_lead``, ``t_salesorder``, ``t_email``): the id
                      column (``lead_id``), every mapped field by canonical name, ``out_<result>``
                      columns holding what Dynamics has in each output column, and the system
                      columns ``_modifiedon``, ``_etag``, ``_sync_gen``, ``_synced_at``.
``mirror_tables``     registry of those tables: entity, source table, id column, column types (so
                      :meth:`Mirror.read_frame` restores types without the mapping files).
``sync_state``        per table: mode (delta / window), phase of an unfinished read, delta link,
                      next link for resume, modifiedon watermark, generation, last full sync,
                      last success, last error, mapping fingerprint.
``runs``              one row per run (sync, pipeline, rollback...): start, end, outcome, stats.
``run_tables``        per run and table: read, upserted, deleted, pages, written, failed, ...
``result_values``     the last value of each job result per table, record and result name, and
                      the run that computed it (rewritten only where a value changed).
``job_state``         per job: the fingerprint of its inputs and its last results and caches.
``table_versions``    per mirrored table: a counter raised by every sync commit that changed rows.
``metadata_cache``    the Dataverse table definitions, with the stamp they were read at.
``writeback_plan``    per run: the values to write (old and new) and each item's status.
``audit``             every write attempted: run, table, record, column, old, new, outcome, error.
====================  ==========================================================================

The schema version is ``PRAGMA user_version``; :data:`MIGRATIONS` is append-only and runs in order
inside one transaction each, so an older file is brought up to date when opened and a newer one
is refused. The database runs in WAL mode (readers never block the writer); the sync commits each
page together with its state in one :meth:`Mirror.transaction`.
"""

from jobs.service.mirror.convert import utc_text
from jobs.service.mirror.database import MirrorDatabase
from jobs.service.mirror.history import RunHistory
from jobs.service.mirror.records import RecordStore, SyncState, TableLayout
from jobs.service.mirror.schema import MIGRATIONS, SCHEMA_VERSION, SYSTEM_COLUMNS, MirrorError
from jobs.service.mirror.state import JobStateStore, unpack_part

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SYSTEM_COLUMNS",
    "Mirror",
    "MirrorError",
    "SyncState",
    "TableLayout",
    "unpack_part",
    "utc_text",
]


class Mirror(RecordStore, RunHistory, JobStateStore, MirrorDatabase):
    """The mirror database. Open it with ``Mirror(path)`` (or as a context manager) and close it.

    One connection, shared by the threads of one process under a lock; separate processes
    coordinate through SQLite's own locking (WAL mode, a busy timeout). Its parts, by concern:
    :class:`MirrorDatabase` (connection, migrations, transactions, run lock), :class:`RecordStore`
    (mirrored tables and sync state), :class:`RunHistory` (runs, results, plan, audit) and
    :class:`JobStateStore` (what the next run reuses: table versions, job state, metadata).

    Args:
        path: the SQLite file; its directory is created. ``":memory:"`` for a throwaway mirror.
        clock: returns the current aware datetime (injectable for tests).
    """
