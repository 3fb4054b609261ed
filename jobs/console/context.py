"""What every page reads from: the settings, the mappings, one shared read connection to the mirror,
and a cache of page data that lasts until the mirror records another run.

The mirror is opened once per console (its connection is shared by the request threads under the
mirror's own lock, WAL lets it read while a run writes from another connection). Page data is
cached per page and invalidated when the ``runs`` table changes (a new run, a finished one), so a
page over a medium mirror is computed once per run, not once per click.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobs.service.mapping import MappingSet
from jobs.service.mirror import Mirror
from jobs.service.settings import Settings

__all__ = ["ConsoleContext"]


@dataclass
class ConsoleContext:
    """The console's state shared by request threads.

    Attributes:
        settings: the effective settings.
        mappings: the validated mapping set.
        mirror: the shared read connection.
        started_at: when the console started (ISO), shown on the Overview.
    """

    settings: Settings
    mappings: MappingSet
    mirror: Mirror
    started_at: str = ""
    _cache: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _version: Any = None
    _building: dict[str, threading.Lock] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        """The directory beside the mirror (models, plans, the console's action log)."""
        path = self.mirror.path
        return path.parent if path is not None else Path(".dvsync")

    def version(self) -> tuple[Any, ...]:
        """Changes whenever a run starts or finishes (the cache key)."""
        latest = self.mirror.runs(5)
        return tuple(zip(latest["run_id"].tolist(), latest["outcome"].tolist(), strict=True))

    def cached(self, key: str, build: Callable[[], Any]) -> Any:
        """``build()`` once per mirror version (per ``key``); a new version drops every entry."""
        version = self.version()
        with self._lock:
            if self._version != version:
                self._cache.clear()
                self._version = version
            hit = self._cache.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        # One build per key at a time: a page opened while the warmer builds it waits for that build.
        with building:
            with self._lock:
                hit = self._cache.get(key)
            if hit is not None and hit[0] == version:
                return hit[1]
            value = build()
            with self._lock:
                if self._version == version:
                    self._cache[key] = (version, value)
        return value

    def within(self, key: str, build: Callable[[], Any], seconds: float) -> Any | None:
        """``cached(key, build)`` if it is ready within ``seconds``, else None (it goes on building in
        the background, so a reload a little later finds it)."""
        version = self.version()
        with self._lock:
            hit = self._cache.get(key)
            building = self._building.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        if building is not None and building.locked():
            return None  # being built (by the warmer): answer now rather than queue behind it
        box: list[Any] = []
        worker = threading.Thread(target=lambda: box.append(self.cached(key, build)), daemon=True)
        worker.start()
        worker.join(seconds)
        return box[0] if box else None
