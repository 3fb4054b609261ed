"""Table definitions kept in the mirror, so that a run does not re-read Dataverse's metadata.

Reading one table's definition costs seven requests (the table, its columns, and one per typed
cast for lengths and choice options). A run reads each mapped table's definition before its sync
and before its write-back, so an unchanged run spent most of its requests on metadata that had
not changed. :class:`CachedMetadataClient` wraps the client for one run and answers
``get_table`` from the mirror's ``metadata_cache`` when the kept definition

* is younger than :data:`METADATA_MAX_AGE` (a definition changes when an admin adds a column or a
  choice option, rarely and never mid-run: an hour bounds how long a new choice label can go
  unseen), and
* has every column the mappings name for that table (inputs and enabled outputs): a column
  created since, by ``dvsync provision`` or an admin, is read at once instead of waiting an hour.

Anything else reads the definition from Dataverse and keeps it. ``dvsync run --refresh-metadata``
and ``dvsync check`` (which always reads afresh) drop the cache; so does a table whose sync failed,
in case a column it needs was deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

__all__ = ["METADATA_MAX_AGE", "CachedMetadataClient", "needed_columns"]

log = logging.getLogger(__name__)

METADATA_MAX_AGE = timedelta(hours=1)
"""How long a kept table definition is used before it is read again (see the module docstring)."""


def needed_columns(mappings: Any) -> dict[str, set[str]]:
    """Per Dataverse table (logical name): the columns the mappings read or write there."""
    needed: dict[str, set[str]] = {}
    for mapping in mappings.tables.values():
        columns = needed.setdefault(mapping.table, set())
        for field in mapping.fields.values():
            for column in (field.column, field.type_column):
                if isinstance(column, str) and column:
                    columns.add(column.lower())
        for output in mappings.outputs_for(mapping.name):
            if output.enabled:
                columns.add(output.logical_name.lower())
    return needed


class CachedMetadataClient:
    """A client whose ``get_table`` answers from the mirror's cache; everything else is the client's.

    Args:
        client: the DataverseClient.
        mirror: the open mirror (its ``metadata_cache`` table).
        needed: per table, the columns a kept definition must have to be used.
        refresh: read every definition afresh this run (``--refresh-metadata``).
        max_age: how long a kept definition is used.
        clock: the current aware time.
    """

    def __init__(
        self,
        client: Any,
        mirror: Any,
        *,
        needed: Mapping[str, Iterable[str]] | None = None,
        refresh: bool = False,
        max_age: timedelta = METADATA_MAX_AGE,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._client = client
        self._mirror = mirror
        self._needed = {t: {c.lower() for c in cols} for t, cols in (needed or {}).items()}
        self._max_age = max_age
        self._clock = clock or (lambda: datetime.now(UTC))
        self._run: dict[str, Any] = {}
        self.read_from_dataverse: list[str] = []
        if refresh:
            mirror.clear_metadata_cache()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_table(self, logical_name: str) -> Any:
        """The table's definition: this run's copy, the mirror's when fresh, else Dataverse's."""
        if logical_name in self._run:
            return self._run[logical_name]
        definition = self._kept(logical_name)
        if definition is None:
            definition = self._client.get_table(logical_name)
            self._mirror.cache_definition(logical_name, definition, stamp=None)
            self.read_from_dataverse.append(logical_name)
        self._run[logical_name] = definition
        return definition

    def forget(self, tables: Iterable[str]) -> None:
        """Drop the kept definitions of ``tables`` (their sync failed: read them afresh next time)."""
        names = list(tables)
        for name in names:
            self._run.pop(name, None)
        if names:
            self._mirror.clear_metadata_cache(names)

    def _kept(self, logical_name: str) -> Any:
        cached = self._mirror.cached_definition(logical_name)
        if cached is None:
            return None
        definition, _stamp, fetched_at = cached
        age = pd.Timestamp(self._clock()) - pd.Timestamp(fetched_at)
        if age > self._max_age or age < timedelta(0):
            return None
        attributes = getattr(definition, "attributes", None)
        if not isinstance(attributes, Mapping):
            return None
        missing = self._needed.get(logical_name, set()) - set(attributes)
        if missing:
            log.info(
                "%s: %d mapped column(s) not in the kept definition (%s); reading it again",
                logical_name,
                len(missing),
                ", ".join(sorted(missing)[:3]),
            )
            return None
        return definition
