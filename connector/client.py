"""``DataverseClient``: the public face of the connector.

One object per environment. It owns an :class:`~connector.http.HttpClient` (session, token,
retries, typed errors) and delegates each concern to its module: reading and paging
(:mod:`connector.paging`), change tracking (:mod:`connector.changes`), write-back
(:mod:`connector.writeback`) and metadata (:mod:`connector.metadata`).

Example:
    >>> client = DataverseClient("https://contoso.crm.dynamics.com", lambda: token)
    >>> for lead in client.iter_records("leads", ["fullname", "emailaddress1"]):
    ...     print(lead["leadid"], lead["emailaddress1"])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

from connector import changes as _changes
from connector import merge as _merge
from connector import metadata as _metadata
from connector import queues as _queues
from connector import records as _records
from connector import writeback as _writeback
from connector.changes import ChangePage, Changes
from connector.http import DEFAULT_TIMEOUT, HttpClient, RetryPolicy, ThrottleState, sanitize_url
from connector.merge import MergeOutcome
from connector.metadata import ColumnSpec, TableDefinition, WhoAmI
from connector.paging import FORMATTED_VALUES, iter_pages, prefer_header
from connector.query import build_query, validate_name
from connector.queues import QueueItem, QueueRequest, QueueResult
from connector.settings import is_loopback_host
from connector.writeback import UpdateResult
from core.errors import ConfigError

if TYPE_CHECKING:
    from connector.settings import ConnectionSettings

__all__ = ["DataverseClient"]


class DataverseClient:
    """A Dataverse Web API client for one environment.

    Args:
        environment_url: ``https://<org>.crm.dynamics.com`` (or the sandbox's ``.url``).
        token_provider: any callable returning a bearer token; if it has ``force_refresh()``, a 401
            triggers it once.
        session: a ``requests.Session`` to use (default: :func:`connector.http.create_session`).
        retry: the retry policy (default :class:`~connector.http.RetryPolicy`).
        api_version: Web API version.
        verify: TLS verification: True, False, or a CA bundle path.
        timeout: (connect, read) seconds applied to every request.
        max_parallel: default cap on write-back threads (``writeback.max_parallel``).
    """

    def __init__(
        self,
        environment_url: str,
        token_provider: Callable[[], str],
        *,
        session: requests.Session | None = None,
        retry: RetryPolicy | None = None,
        api_version: str = "v9.2",
        verify: bool | str = True,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        max_parallel: int | None = None,
    ) -> None:
        if not isinstance(environment_url, str) or not environment_url.startswith(("https://", "http://")):
            raise ValueError(f"environment_url must be an http(s) URL, got {environment_url!r}")
        if environment_url.startswith("http://") and not is_loopback_host(
            urlsplit(environment_url).hostname or ""
        ):
            # The same rule as dataverse.url in settings: the bearer token must not cross a network in clear.
            raise ConfigError(
                f"{sanitize_url(environment_url)} uses plain http, "
                "which would send the bearer token unencrypted",
                key="dataverse.url",
                hint="use https://; plain http is allowed only for a loopback host (the sandbox)",
            )
        if not callable(token_provider):
            raise TypeError("token_provider must be a callable returning a bearer token")
        self.http = HttpClient(
            environment_url,
            token_provider,
            session=session,
            retry=retry,
            api_version=api_version,
            timeout=timeout,
            verify=verify,
        )
        self.max_parallel = max_parallel

    @classmethod
    def from_settings(
        cls,
        settings: ConnectionSettings,
        *,
        retry: RetryPolicy | None = None,
        max_parallel: int | None = None,
    ) -> DataverseClient:
        """Build a client from the ``[dataverse]``, ``[auth]`` and ``[http]`` settings.

        Uses ``dataverse.url``, ``api_version``, ``timeout_connect``, ``timeout_read`` and
        ``ca_bundle``; ``http.retry_budget_seconds`` and ``http.max_attempts``; and the token
        provider ``connector.auth`` builds from ``auth``. ``max_parallel`` caps write-back threads.
        """
        from connector.auth import token_provider_from_settings

        dataverse = settings.dataverse
        if not dataverse.url:
            raise ConfigError(
                "no Dataverse environment URL is configured",
                key="dataverse.url",
                hint="set dataverse.url in config.toml or DVSYNC__DATAVERSE__URL, e.g. https://contoso.crm.dynamics.com",
            )
        if retry is None:
            retry = RetryPolicy(
                budget_seconds=float(settings.http.retry_budget_seconds),
                max_attempts=int(settings.http.max_attempts),
            )
        ca_bundle = dataverse.ca_bundle
        return cls(
            str(dataverse.url),
            token_provider_from_settings(settings),
            retry=retry,
            api_version=dataverse.api_version,
            verify=str(ca_bundle) if ca_bundle else True,
            timeout=(float(dataverse.timeout_connect), float(dataverse.timeout_read)),
            max_parallel=max_parallel,
        )

    def __repr__(self) -> str:
        return f"DataverseClient({self.http.environment_url!r})"

    def close(self) -> None:
        """Close the HTTP session's connections."""
        self.http.session.close()

    def __enter__(self) -> DataverseClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        """The API base, ``<environment>/api/data/v9.2/``."""
        return self.http.base_url

    @property
    def throttle_state(self) -> ThrottleState:
        """Last ``x-ms-dop-hint`` and ``x-ms-ratelimit-*`` values, and the 429 count."""
        return self.http.throttle

    # -- reading ------------------------------------------------------------------------------

    def iter_records(
        self,
        entity_set: str,
        select: Sequence[str],
        filter: str | None = None,
        orderby: str | Sequence[str] | None = None,
        page_size: int = 5000,
        formatted_values: bool = False,
        annotations: Sequence[str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield the records of a query, page by page, never the whole table at once.

        Args:
            entity_set: e.g. ``leads``.
            select: columns to read (the primary key always comes too).
            filter: a ``$filter`` built with :mod:`connector.query` (never an f-string).
            orderby: ``"createdon asc"`` or a list of such terms.
            page_size: ``Prefer: odata.maxpagesize`` (1..5000), sent on every page.
            formatted_values: also ask for ``<column>@OData.Community.Display.V1.FormattedValue``
                labels (choices, lookups' names, currency text).
            annotations: further instance annotations for ``odata.include-annotations``, e.g.
                ``Microsoft.Dynamics.CRM.lookuplogicalname`` (the table a ``_x_value`` points at);
                sent on every page.

        Raises:
            DataverseError: a typed error (bad column, throttled past the retry budget, ...).
            ProtocolError: a repeated nextLink or a body that is not Dataverse JSON.
            ValueError: a page size outside 1..5000 or a malformed annotation name.
        """
        validate_name(entity_set, "entity set")
        wanted = [*([FORMATTED_VALUES] if formatted_values else []), *(annotations or ())]
        prefer = prefer_header(page_size, annotations=wanted or None)
        params = build_query(select=select, filter=filter, orderby=orderby)
        for page in iter_pages(self.http, entity_set, params=params, prefer=prefer):
            yield from page["value"]

    def iter_change_pages(
        self,
        entity_set: str,
        select: Sequence[str],
        *,
        delta_link: str | None = None,
        resume_link: str | None = None,
        page_size: int = 5000,
        annotations: Sequence[str] | None = None,
    ) -> Iterator[ChangePage]:
        """Yield change-tracking pages; the last carries ``delta_link``.

        Without links this is a full read with ``Prefer: odata.track-changes``. A caller that
        committed a page together with its ``next_link`` can resume with ``resume_link=next_link``.
        ``annotations`` (e.g. ``Microsoft.Dynamics.CRM.lookuplogicalname``) go into the same
        ``Prefer`` header on every page, delta replays and resumed reads included.

        Raises:
            ChangeTokenExpiredError: 0x80044352, the delta link expired; re-read without it.
            ChangeTrackingDisabledError: 0x80072491, the table does not track changes.
        """
        validate_name(entity_set, "entity set")
        return _changes.iter_change_pages(
            self.http,
            entity_set,
            select,
            delta_link=delta_link,
            resume_link=resume_link,
            page_size=page_size,
            annotations=annotations,
        )

    def read_changes(
        self,
        entity_set: str,
        select: Sequence[str],
        delta_link: str | None = None,
        *,
        annotations: Sequence[str] | None = None,
    ) -> Changes:
        """Read all changes since ``delta_link`` (the whole table when None).

        ``annotations`` are asked for on every page, as in :meth:`iter_change_pages`.

        Returns:
            ``Changes(records, deleted_ids, delta_link)``.

        Raises:
            ChangeTokenExpiredError: 0x80044352, the delta link expired; re-read without it.
            ChangeTrackingDisabledError: 0x80072491, the table does not track changes.
        """
        validate_name(entity_set, "entity set")
        return _changes.read_changes(self.http, entity_set, select, delta_link, annotations=annotations)

    # -- writing ------------------------------------------------------------------------------

    def update_many(
        self,
        entity_set: str,
        updates: Iterable[tuple[Any, ...]],
        batch_size: int = 1000,
        max_workers: int | None = None,
    ) -> list[UpdateResult]:
        """Update existing records via ``$batch``; one result per input, in input order.

        Each update is a ``PATCH`` with ``If-Match`` (the etag given with it, else ``*``: it never
        creates a record); a lost answer is settled by reading the records back, never by a blind
        replay (:mod:`connector.writeback`), so no update is applied twice. Sent with
        ``Prefer: odata.continue-on-error``; batches run in parallel sized by ``x-ms-dop-hint``
        within ``max_workers`` (default: the client's ``max_parallel``; never above 52).

        Args:
            entity_set: e.g. ``leads``.
            updates: ``(record_id, {column: value}[, etag[, {column: expected value}]])``; the
                id is a GUID string (or ``uuid.UUID``).
            batch_size: requests per batch, 1..1000.
            max_workers: thread cap.

        Returns:
            ``UpdateResult(id, ok, status, error_code, message)`` per input.
        """
        validate_name(entity_set, "entity set")
        return _writeback.update_many(
            self.http,
            entity_set,
            updates,
            batch_size=batch_size,
            max_workers=max_workers if max_workers is not None else self.max_parallel,
        )

    # -- queues -------------------------------------------------------------------------------

    def add_to_queues(self, items: Sequence[QueueRequest], *, batch_size: int = 1000) -> list[QueueResult]:
        """Put records in queues with ``AddToQueue`` (``$batch``); one result per item, in order.

        The records are not changed (their owner stays); a lost answer is settled by reading the
        queue items back, never by a blind replay (:mod:`connector.queues`).
        """
        return _queues.add_to_queues(self.http, items, batch_size=batch_size)

    def queue_items(
        self, *, object_ids: Sequence[str] | None = None, object_type_code: int | None = None
    ) -> list[QueueItem]:
        """The active queue items of these records and/or of one table (``object_type_code`` 4: leads)."""
        return list(_queues.queue_items(self.http, object_ids=object_ids, object_type_code=object_type_code))

    def remove_from_queue(self, queue_item_id: str) -> None:
        """Take a record out of its queue (``RemoveFromQueue`` on the queue item)."""
        _queues.remove_from_queue(self.http, queue_item_id)

    # -- metadata -----------------------------------------------------------------------------

    def merge_group(
        self,
        table: str,
        master_id: str,
        subordinates: Sequence[tuple[str, dict[str, Any] | None]],
        *,
        parenting_checks: bool = False,
    ) -> MergeOutcome:
        """Merge duplicates into their master with ``Merge``, all or none (:mod:`connector.merge`)."""
        return _merge.merge_group(
            self.http, table, f"{table}id", master_id, subordinates, parenting_checks=parenting_checks
        )

    def whoami(self) -> WhoAmI:
        """Return the caller's user, business unit and organization ids (the connectivity check)."""
        return _metadata.whoami(self.http)

    def find_solution(self, unique_name: str) -> Any:
        """The solution with this unique name and its publisher's prefix, or None."""
        from connector.solutions import find_solution

        return find_solution(self.http, unique_name)

    def held_privileges(self, user_id: str, names: Iterable[str]) -> dict[str, str]:
        """Which of ``names`` the user holds, with the depth (:mod:`connector.privileges`)."""
        from connector.privileges import held_privileges

        return held_privileges(self.http, user_id, names)

    def get_table(self, logical_name: str) -> TableDefinition:
        """Read a table's definition and columns with ``Consistency: Strong``.

        Raises:
            RecordNotFoundError: no table has this logical name (HTTP 404).
        """
        return _metadata.get_table(self.http, logical_name)

    def metadata_changes(self, tables: Iterable[str], stamp: str | None = None) -> Any:
        """Which of ``tables`` changed definition since ``stamp``, and the new stamp
        (:mod:`connector.metadata_changes`, ``RetrieveMetadataChanges``)."""
        from connector.metadata_changes import metadata_changes

        return metadata_changes(self.http, tables, stamp)

    def create_column(self, table_logical_name: str, spec: ColumnSpec, *, solution: str) -> bool:
        """Create a custom column in ``solution`` unless it exists; True when created.

        Raises:
            ConfigError: an invalid spec, or the column exists with another type.
        """
        return _metadata.create_column(self.http, table_logical_name, spec, solution=solution)

    def ensure_columns(
        self, table_logical_name: str, specs: Iterable[ColumnSpec], *, solution: str
    ) -> list[str]:
        """Create the missing columns and publish the table if any was created; return the created names."""
        return _metadata.ensure_columns(self.http, table_logical_name, specs, solution=solution)

    def publish(self, table_logical_names: Iterable[str]) -> None:
        """Publish the tables' customizations (``PublishXml``)."""
        _metadata.publish(self.http, table_logical_names)

    # -- single records (views, charts, forms, messages) --------------------------------------

    def get_record(
        self, entity_set: str, record_id: str, select: Sequence[str] | None = None
    ) -> dict[str, Any] | None:
        """One record's ``select`` columns (every column when None), or None when it does not exist."""
        return _records.get_record(self.http, entity_set, record_id, select)

    def create_record(
        self,
        entity_set: str,
        primary_id: str,
        record_id: str,
        body: Mapping[str, Any],
        *,
        solution: str | None = None,
    ) -> bool:
        """Create a record with the given id (into ``solution``); False when it already exists."""
        return _records.create_record(self.http, entity_set, primary_id, record_id, body, solution=solution)

    def update_record(self, entity_set: str, record_id: str, body: Mapping[str, Any]) -> None:
        """Update an existing record (``If-Match: *``)."""
        _records.update_record(self.http, entity_set, record_id, body)

    def call_action(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Call an unbound action (``POST <name>``) and return its answer."""
        return _records.call_action(self.http, name, body)

    def run_saved_query(self, entity_set: str, query_id: str, *, top: int = 10) -> list[dict[str, Any]]:
        """The first ``top`` records of a system view, with formatted values (``?savedQuery=``)."""
        return _records.run_saved_query(self.http, entity_set, query_id, top=top)
