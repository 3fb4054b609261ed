"""Table definitions kept in the mirror, so that a run does not re-read Dataverse's metadata.

Reading one table's definition costs seven requests (the table, its columns, and one per typed
cast for lengths and choice options). A run reads each mapped table's definition before its sync
and before its write-back, so an unchanged run spent most of its requests on metadata that had
not changed. :class:`CachedMetadataClient` wraps the client for one run and answers
``get_table`` from the mirror's ``metadata_cache`` when the kept definition

* is younger than :data:`METADATA_MAX_AGE` (a definition changes when an admin adds a column or a
  choice option, rarely and never mid-run: an hour bounds how long a new choice label can go
  unseen), or is older but ``RetrieveMetadataChanges`` says it has not changed since the version
  stamp kept with it (one request checks every expired table; only the changed ones are read
  again, and the others are kept for another hour), and
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

from connector.errors import DataverseError

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
        self._validated: dict[str, bool] = {}
        self._read_stamp: str | None = None
        self.read_from_dataverse: list[str] = []
        self.stamp_checks = 0
        if refresh:
            mirror.clear_metadata_cache()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_table(self, logical_name: str) -> Any:
        """The table's definition: this run's copy, the mirror's when fresh or unchanged since its
        version stamp, else Dataverse's."""
        if logical_name in self._run:
            return self._run[logical_name]
        definition = self._kept(logical_name)
        if definition is None:
            stamp = self._stamp_before_reads()  # before the read: a change made during it shows next time
            definition = self._client.get_table(logical_name)
            self._mirror.cache_definition(logical_name, definition, stamp=stamp)
            self.read_from_dataverse.append(logical_name)
        self._run[logical_name] = definition
        return definition

    def _stamp_before_reads(self) -> str | None:
        """A version stamp taken before this run's first definition read (None: the client cannot)."""
        if self._read_stamp is None and hasattr(self._client, "metadata_changes"):
            try:
                stamp = self._client.metadata_changes(sorted(self._needed) or ["lead"]).stamp
                self._read_stamp = stamp if isinstance(stamp, str) else ""
            except DataverseError as exc:
                if exc.status is None:
                    raise  # nothing answered (refused, timed out): the read would fail the same way
                log.info("no metadata version stamp (%s); kept definitions expire by age only", exc)
                self._read_stamp = ""
        return self._read_stamp or None

    def _unchanged_since_stamp(self, logical_name: str) -> bool:
        """True when ``RetrieveMetadataChanges`` says the expired kept definition still holds.

        The first expired table of a run asks about every mapped table kept with the same stamp
        in one request; the unchanged ones are kept with the new stamp for another ``max_age``.
        """
        if logical_name not in self._validated:
            cached = self._mirror.cached_definition(logical_name)
            stamp = cached[1] if cached is not None else None
            if not stamp or not hasattr(self._client, "metadata_changes"):
                return False
            names = {logical_name} | {
                t
                for t in self._needed
                if (c := self._mirror.cached_definition(t)) is not None and c[1] == stamp
            }
            try:
                answer = self._client.metadata_changes(sorted(names), stamp)
            except DataverseError as exc:
                if exc.status is None:
                    raise  # nothing answered: reading the definitions would fail the same way
                log.info("metadata version check failed (%s); reading the definitions again", exc)
                self._validated.update(dict.fromkeys(names, False))
                return False
            self.stamp_checks += 1
            self._read_stamp = self._read_stamp or answer.stamp  # taken before any read that follows
            for name in names:
                unchanged = not answer.expired and name not in answer.changed
                self._validated[name] = unchanged
                kept = self._mirror.cached_definition(name)
                if unchanged and kept is not None:
                    self._mirror.cache_definition(name, kept[0], stamp=answer.stamp)
            log.info(
                "metadata: %d kept definition(s) checked by version stamp, %s changed",
                len(names),
                "all" if answer.expired else len(answer.changed & names),
            )
        return self._validated[logical_name]

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
        age = pd.Timestamp(self._clock()) - pd.Timestamp(fetched_at)
        if age < timedelta(0) or (age > self._max_age and not self._unchanged_since_stamp(logical_name)):
            return None
        return definition
