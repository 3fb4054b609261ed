"""The page generator: follow ``@odata.nextLink`` with the same Prefer header on every page.

Microsoft's page-results.md
(https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/page-results):
send ``Prefer: odata.maxpagesize=N`` (at most 5,000), do not modify ``@odata.nextLink``, keep
sending the same preference on every page; the last page has no nextLink. This generator holds one
page at a time, and refuses a link it has already followed (a server or proxy loop would otherwise
make a sync run forever).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from connector.errors import ProtocolError
from connector.http import HttpClient, sanitize_url

__all__ = ["FORMATTED_VALUES", "LOOKUP_LOGICAL_NAME", "MAX_PAGE_SIZE", "iter_pages", "prefer_header"]

MAX_PAGE_SIZE = 5000
"""Dataverse refuses larger pages ("You can't request a page size larger than 5,000")."""

FORMATTED_VALUES = "OData.Community.Display.V1.FormattedValue"
LOOKUP_LOGICAL_NAME = "Microsoft.Dynamics.CRM.lookuplogicalname"
"""The table a ``_x_value`` points at: how Microsoft documents reading a polymorphic lookup's type."""

_ANNOTATION = re.compile(r"^(\*|[A-Za-z_]\w*(\.(\w+|\*))*)$")


def prefer_header(
    page_size: int,
    *,
    annotations: Sequence[str] | str | None = None,
    track_changes: bool = False,
) -> str:
    """Build the ``Prefer`` header value: preferences joined by commas in one header.

    Args:
        page_size: 1..5000.
        annotations: annotation names for ``odata.include-annotations`` (``"*"`` for all); a
            name given twice is sent once.
        track_changes: add ``odata.track-changes`` (first request of a change-tracking read).

    Raises:
        ValueError: a page size outside 1..5000, or an annotation name that is not a dotted name.
    """
    if not isinstance(page_size, int) or isinstance(page_size, bool) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be an integer from 1 to {MAX_PAGE_SIZE}, got {page_size!r}")
    parts = []
    if track_changes:
        parts.append("odata.track-changes")
    parts.append(f"odata.maxpagesize={page_size}")
    if annotations:
        listed = [annotations] if isinstance(annotations, str) else list(dict.fromkeys(annotations))
        for name in listed:
            # A quote or comma inside a name would break the header for every page.
            if not isinstance(name, str) or not _ANNOTATION.match(name):
                raise ValueError(f"not an annotation name: {name!r} (e.g. {FORMATTED_VALUES!r} or '*')")
        parts.append(f'odata.include-annotations="{",".join(listed)}"')
    return ",".join(parts)


def iter_pages(
    http: HttpClient,
    path: str,
    *,
    params: Mapping[str, str] | None = None,
    prefer: str,
    headers: Mapping[str, str] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield each page (the decoded JSON object) of a collection, following nextLinks verbatim.

    Args:
        http: the client.
        path: the first request's path (``leads``) or an absolute link to resume from.
        params: the first request's query options (nextLinks carry their own).
        prefer: the ``Prefer`` header sent on every page.
        headers: further headers sent on every page.

    Raises:
        ProtocolError: a page without a ``value`` array, or a nextLink already followed.
    """
    send_headers = {**(headers or {}), "Prefer": prefer}
    seen: set[str] = set()
    url: str | None = path
    first = True
    while url is not None:
        page = http.get_json(url, params=params if first else None, headers=send_headers)
        first = False
        if not isinstance(page.get("value"), list):
            raise ProtocolError(
                "a collection page arrived without a 'value' array",
                method="GET",
                url=sanitize_url(http.url(url)),
            )
        next_link = page.get("@odata.nextLink")
        if next_link is not None:
            if not isinstance(next_link, str) or not next_link:
                raise ProtocolError(
                    "@odata.nextLink is not a URL", method="GET", url=sanitize_url(http.url(url))
                )
            if next_link in seen or next_link == url:
                raise ProtocolError(
                    "the server returned an @odata.nextLink that was already followed; stopping to avoid "
                    "an endless loop",
                    method="GET",
                    url=sanitize_url(next_link),
                    hint="a proxy may be caching pages; check that requests reach Dataverse directly",
                )
            seen.add(next_link)
        yield page
        # Drop our reference before fetching the next page, so at most one page is alive here.
        del page
        url = next_link
