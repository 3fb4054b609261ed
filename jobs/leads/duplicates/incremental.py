"""What one duplicate-detection run keeps for the next, so that a run costs what changed.

* :class:`NormalisedValues`: every value normalised once (a phone parsed, a name folded), shared
  by the deduplication of a table and by every link that reads the same column, within a run and
  across runs. Normalisation is a function of the value alone, so a kept result is always right.
* :class:`MatchCache`: per table (or link), the comparison levels of the last run's candidate
  pairs, a digest of each record's compared values, and the fitted model. A run compares again
  only the pairs that involve a record whose compared values changed (or that are new); the
  levels of a pair depend on its two records' values alone, so the reused levels are exactly what
  comparing again would give. Blocking and term frequencies are recomputed over every record
  (they are cheap and depend on the whole table), and the model is reused until the caller drops
  it (the service refits weekly) or the data has drifted (:data:`DRIFT_SHARE`).

So a run with a cache gives the same pairs and scores as a run without one that is given the same
model (``model=``); ``tests/test_duplicates_incremental.py`` checks this on random change sets.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from jobs.leads.duplicates.comparisons import prepare
from jobs.leads.duplicates.linkage_model import LinkageModel

__all__ = ["DRIFT_SHARE", "MatchCache", "NormalisedValues", "cache_options", "cache_report", "record_digests"]

DRIFT_SHARE = 0.2
"""A cached model is refitted when more than this share of the records changed, appeared or went
since it was fitted: the data it learned from is no longer the data it scores."""


class NormalisedValues:
    """Normalised values by (kind, phone region) and raw value, filled as values are first seen."""

    def __init__(self) -> None:
        self._known: dict[tuple[str, str], dict[Hashable, object]] = {}
        self.normalised = 0
        """Distinct values normalised through this object (the rest were known)."""

    def prepare(self, series: pd.Series, kind: str, phone_region: str) -> pd.Series:
        """``comparisons.prepare(series, kind, phone_region)``, normalising only unseen values."""
        known = self._known.setdefault((kind, phone_region), {})
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        values = list(uniques)
        fresh = [v for v in values if v not in known]
        if fresh:
            done = prepare(pd.Series(fresh, dtype=series.dtype if len(fresh) else object), kind, phone_region)
            known.update(zip(fresh, done.tolist(), strict=True))
            self.normalised += len(fresh)
        mapped = np.array([known[v] for v in values] + [None], dtype=object)
        out = mapped[codes]  # code -1 (missing) picks the trailing None
        return pd.Series(out, index=series.index, dtype=object).where(pd.notna(out), None)


def record_digests(frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """A 64-bit digest per row of the compared columns: equal digests, equal values."""
    if not len(frame):
        return np.zeros(0, dtype=np.uint64)
    return pd.util.hash_pandas_object(frame[list(columns)].astype(object), index=False).to_numpy()


def signature(parts: Mapping[str, object]) -> str:
    """A digest of the settings that decide the levels (fields, kinds, swap, region, blocking)."""
    text = repr(sorted((k, repr(v)) for k, v in parts.items()))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class MatchCache:
    """The last run's compared pairs and model for one table or link (see the module docstring).

    Attributes:
        signature: the settings the levels were computed under; other settings start afresh.
        ids: record ids, aligned with ``digests``.
        digests: a digest of each record's compared values.
        first_ids, second_ids: each candidate pair's records.
        levels: each pair's comparison levels (pairs x fields, int8).
        swapped: each pair's swapped-names flag.
        sims: each pair's similarities (pairs x fields, float32), for the evidence.
        model: the model the scores came from (reused until dropped or drifted).
        model_records: records the model was fitted on.
        model_fitted: set by a run that fitted the model (the service stamps the date).
        compared: pairs compared by the last run (the others' levels were reused).
    """

    signature: str | None = None
    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    digests: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    first_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    second_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=object))
    levels: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int8))
    swapped: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    sims: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    model: LinkageModel | None = None
    model_records: int = 0
    model_fitted: bool = False
    compared: int = 0

    def unchanged(self, sig: str, ids: np.ndarray, digests: np.ndarray) -> np.ndarray:
        """Per record of ``ids``: True when the cache holds it with the same compared values."""
        if self.signature != sig or not len(self.ids):
            return np.zeros(len(ids), dtype=bool)
        where = pd.Index(self.ids).get_indexer(ids)
        same = np.zeros(len(ids), dtype=bool)
        found = where >= 0
        same[found] = self.digests[where[found]] == digests[found]
        return same

    def usable_model(self, sig: str, unchanged: np.ndarray) -> LinkageModel | None:
        """The cached model, unless the settings changed or the data drifted (:data:`DRIFT_SHARE`)."""
        if self.model is None or self.signature != sig or not self.model_records:
            return None
        moved = int((~unchanged).sum()) + max(self.model_records - int(unchanged.sum()), 0)
        if moved > DRIFT_SHARE * self.model_records:
            return None
        return self.model

    def levels_for(
        self,
        ids: np.ndarray,
        unchanged: np.ndarray,
        first: np.ndarray,
        second: np.ndarray,
        compare: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]],
        n_fields: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Levels, swap flags and similarities of the pairs ``(first, second)`` (positions into ``ids``).

        Pairs of two unchanged records that the cache holds are taken from it; ``compare`` is
        called (positions in, ``(levels, swapped, similarities)`` out) for all the others only.
        """
        n = len(ids)
        levels = np.empty((len(first), n_fields), dtype=np.int8)
        swapped = np.zeros(len(first), dtype=bool)
        sims = np.empty((len(first), n_fields), dtype=np.float32)
        found = np.zeros(len(first), dtype=bool)
        usable = self.levels.shape[1:] == (n_fields,) and self.sims.shape == self.levels.shape
        if len(self.first_ids) and usable and unchanged.any():
            index = pd.Index(ids)
            a, b = index.get_indexer(self.first_ids), index.get_indexer(self.second_ids)
            ok = (a >= 0) & (b >= 0)
            ok[ok] = unchanged[a[ok]] & unchanged[b[ok]]
            keys = np.minimum(a[ok], b[ok]).astype(np.int64) * n + np.maximum(a[ok], b[ok])
            order = np.argsort(keys, kind="stable")
            keys = keys[order]
            rows = np.flatnonzero(ok)[order]
            wanted = np.minimum(first, second).astype(np.int64) * n + np.maximum(first, second)
            spot = np.searchsorted(keys, wanted)
            spot[spot >= len(keys)] = 0
            found = (len(keys) > 0) & (keys[spot] == wanted) if len(keys) else found
            levels[found] = self.levels[rows[spot[found]]]
            swapped[found] = self.swapped[rows[spot[found]]]
            sims[found] = self.sims[rows[spot[found]]]
        todo = np.flatnonzero(~found)
        if len(todo):
            levels[todo], swapped[todo], sims[todo] = compare(first[todo], second[todo])
        self.compared = len(todo)
        return levels, swapped, sims

    def keep(
        self,
        sig: str,
        ids: np.ndarray,
        digests: np.ndarray,
        first: np.ndarray,
        second: np.ndarray,
        levels: np.ndarray,
        swapped: np.ndarray,
        sims: np.ndarray,
        model: LinkageModel,
        fitted: bool,
    ) -> None:
        """Keep this run's pairs, levels and model for the next run."""
        self.signature = sig
        self.ids = np.asarray(ids, dtype=object)
        self.digests = digests
        self.first_ids = self.ids[first]
        self.second_ids = self.ids[second]
        self.levels = levels
        self.swapped = swapped
        self.sims = sims
        if fitted or self.model is None:
            self.model = model
            self.model_records = len(ids)
        self.model_fitted = fitted


def cache_options(caches: dict[str, Any] | None, key: str, *, max_age: timedelta) -> dict[str, Any]:
    """The ``cache`` and ``normalised`` options of one table's or link's call (none without caches).

    ``caches`` is the duplicate job's dict kept between runs (``caches["now"]`` the run's moment);
    a model fitted more than ``max_age`` before it is dropped, to be refitted.
    """
    if caches is None:
        return {}
    normalised = caches.get("normalised")
    if not isinstance(normalised, NormalisedValues):
        normalised = caches["normalised"] = NormalisedValues()
    cache = caches.get(key)
    if not isinstance(cache, MatchCache):
        cache = caches[key] = MatchCache()
    fitted_on = caches.setdefault("fitted_on", {}).get(key)
    now = caches.get("now")
    if fitted_on is not None and now is not None and pd.Timestamp(now) - pd.Timestamp(fitted_on) > max_age:
        cache.model = None  # refit on the caller's schedule (the service: weekly)
    return {"cache": cache, "normalised": normalised}


def cache_report(caches: dict[str, Any], now: datetime | None) -> dict[str, Any]:
    """Stamp the models fitted this run and say how much was compared anew."""
    report: dict[str, Any] = {}
    for key, cache in caches.items():
        if not isinstance(cache, MatchCache):
            continue
        if cache.model_fitted and now is not None:
            caches["fitted_on"][key] = pd.Timestamp(now).isoformat()
        report[key] = {"compared": cache.compared, "pairs": len(cache.first_ids), "refit": cache.model_fitted}
    normalised = caches.get("normalised")
    if isinstance(normalised, NormalisedValues):
        report["values_normalised"] = normalised.normalised
        normalised.normalised = 0
    return report
