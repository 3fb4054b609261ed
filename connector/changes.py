"""Change tracking: full read with ``Prefer: odata.track-changes``, then delta links.

From use-change-tracking-synchronize-data-external-systems.md
(https://learn.microsoft.com/power-apps/developer/data-platform/use-change-tracking-synchronize-data-external-systems):

- the first request (no link) reads the whole table with ``Prefer: odata.track-changes``; it pages
  like any query, and the last page carries ``@odata.deltaLink``;
- replaying the delta link returns created and updated rows as ordinary rows, and deleted rows as
  ``{"@odata.context": "<svc>/$metadata#<set>/$deletedEntity", "id": "<guid>", "reason": "deleted"}``;
- an expired token fails with ``0x80044352`` (re-read in full) and a table without change tracking
  with ``0x80072491`` (use a ``modifiedon`` window). Both are typed errors from ``connector.http``.

The delta link may come before or after ``value`` in the JSON (the doc shows it first); parsing
the whole object makes key order irrelevant.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from connector.errors import ProtocolError
from connector.http import HttpClient, sanitize_url
from connector.paging import iter_pages, prefer_header
from connector.query import build_query

__all__ = ["ChangePage", "Changes", "iter_change_pages", "read_changes", "split_deleted"]


@dataclass
class ChangePage:
    """One page of a change-tracking read.

    Attributes:
        records: new or changed records, as Dataverse sent them.
        deleted_ids: ids of records deleted since the last delta link (``$deletedEntity`` entries).
        next_link: the link to the next page; commit this page, store it, and resume from it.
        delta_link: set on the last page only: the link for the next incremental read.
    """

    records: list[dict[str, Any]]
    deleted_ids: list[str]
    next_link: str | None
    delta_link: str | None


@dataclass
class Changes:
    """Everything a change-tracking read returned, all pages together."""

    records: list[dict[str, Any]] = field(default_factory=list)
    deleted_ids: list[str] = field(default_factory=list)
    delta_link: str | None = None


_ID_IN_LINK = re.compile(r"\(([0-9a-fA-F-]{36})\)$")


def _is_deleted_entry(item: dict[str, Any]) -> bool:
    context = item.get("@odata.context")
    if isinstance(context, str) and context.endswith("$deletedEntity"):
        return True
    # OData 4.01 JSON writes a deleted entity as {"@removed": {...}, "@id": "leads(<guid>)"}; Dataverse
    # sends the 4.0 form above, but a gateway speaking 4.01 may rewrite it.
    return "@removed" in item


def _deleted_id(item: dict[str, Any]) -> str | None:
    record_id = item.get("id")
    if isinstance(record_id, str) and record_id:
        return record_id
    link = item.get("@id")
    match = _ID_IN_LINK.search(link) if isinstance(link, str) else None
    return match.group(1) if match else None


def split_deleted(values: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Split a delta page's ``value`` into (new-or-changed records, deleted ids).

    Raises:
        ProtocolError: a ``$deletedEntity`` entry without an ``id``.
    """
    records: list[dict[str, Any]] = []
    deleted: list[str] = []
    for item in values:
        if _is_deleted_entry(item):
            record_id = _deleted_id(item)
            if record_id is None:
                raise ProtocolError(
                    "a $deletedEntity entry has no 'id'; cannot tell which record was deleted"
                )
            # Both "deleted" and "changed" (no longer a member of the set) mean: drop it from the mirror.
            deleted.append(record_id)
        else:
            records.append(item)
    return records, deleted


def iter_change_pages(
    http: HttpClient,
    entity_set: str,
    select: Sequence[str],
    *,
    delta_link: str | None = None,
    resume_link: str | None = None,
    page_size: int = 5000,
    annotations: Sequence[str] | None = None,
) -> Iterator[ChangePage]:
    """Yield the pages of a change-tracking read, one at a time.

    Args:
        http: the client.
        entity_set: e.g. ``leads``.
        select: the columns to read (the primary key comes anyway).
        delta_link: the link stored after the last read; None for a first, full read.
        resume_link: a ``next_link`` from a page already committed; continue from there.
        page_size: ``odata.maxpagesize``.
        annotations: instance annotations for ``odata.include-annotations`` (e.g.
            ``Microsoft.Dynamics.CRM.lookuplogicalname``), asked for on every page, delta replays
            and resumed reads included: a link does not carry the preference, the header does.

    Raises:
        ChangeTokenExpiredError: the delta link is too old; call again without it.
        ChangeTrackingDisabledError: the table has change tracking off.
        ProtocolError: the last page carried no ``@odata.deltaLink``.
    """
    prefer = prefer_header(page_size, annotations=annotations, track_changes=True)
    if resume_link:
        path, params = resume_link, None
    elif delta_link:
        path, params = delta_link, None
    else:
        path, params = entity_set, build_query(select=select)
    for page in iter_pages(http, path, params=params, prefer=prefer):
        records, deleted = split_deleted(page["value"])
        next_link = page.get("@odata.nextLink")
        new_delta = page.get("@odata.deltaLink")
        if next_link is None and not new_delta:
            raise ProtocolError(
                "the last page of a change-tracking read carried no @odata.deltaLink",
                method="GET",
                url=sanitize_url(http.url(path)),
                hint="the server did not apply odata.track-changes; is change tracking enabled for "
                f"{entity_set}?",
            )
        yield ChangePage(records, deleted, next_link, new_delta if next_link is None else None)


def read_changes(
    http: HttpClient,
    entity_set: str,
    select: Sequence[str],
    delta_link: str | None = None,
    *,
    page_size: int = 5000,
    annotations: Sequence[str] | None = None,
) -> Changes:
    """Read all changes since ``delta_link`` (or the whole table when None) into one object.

    ``annotations`` are asked for on every page, as in :func:`iter_change_pages`.

    Raises:
        ChangeTokenExpiredError: the delta link is too old; call again without it.
        ChangeTrackingDisabledError: the table has change tracking off.
    """
    changes = Changes()
    pages = iter_change_pages(
        http, entity_set, select, delta_link=delta_link, page_size=page_size, annotations=annotations
    )
    for page in pages:
        changes.records.extend(page.records)
        changes.deleted_ids.extend(page.deleted_ids)
        if page.delta_link:
            changes.delta_link = page.delta_link
    return changes
