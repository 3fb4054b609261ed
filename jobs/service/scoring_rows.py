"""Which open leads the scoring job must score again: the ones whose inputs changed.

A lead's score depends on its own row, its activities, the rules file, the model and the scoring
moment (the end of the UTC day), and on no other lead. So when the rules, the model and the day
are those of the last run (the *basis*), a lead whose row and activities hash as they did keeps
its last results, and only the others are scored: a run after 1% of the leads changed scores 1%
of them, with results equal to scoring all (tests/test_scoring_incremental.py checks that on
random change sets).

The digests leave out dvsync's own ``out_`` columns and ``modified_on`` (our write-back changes
both; scoring an open lead reads neither, see :data:`IGNORED_COLUMNS`).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ConfigError
from core.version import __version__
from jobs.leads import scoring
from jobs.leads.scoring.common import ACTIVITY_TYPES

__all__ = [
    "IGNORED_COLUMNS",
    "activities_for",
    "basis",
    "changed_leads",
    "hash_rows",
    "input_columns",
    "is_input_column",
    "lead_digests",
    "score_open_leads",
    "scored_results",
]

log = logging.getLogger(__name__)

IGNORED_COLUMNS = frozenset({"modified_on"})
"""Columns no job's reuse depends on: a record's last-modified moment changes with every edit (our
own write-back's too), and no job reads it for the records it computes (scoring's training reads
it for closed leads, but a model is fixed by its version)."""


def is_input_column(column: str) -> bool:
    """Whether a job's reuse depends on ``column``: not dvsync's own ``out_`` results (our
    write-back changes them) and not one of :data:`IGNORED_COLUMNS`."""
    return not column.startswith("out_") and column not in IGNORED_COLUMNS


def input_columns(frame: pd.DataFrame) -> list[str]:
    """The columns of ``frame`` a job's reuse depends on (:func:`is_input_column`), sorted."""
    return sorted(c for c in frame.columns if is_input_column(c))


def hash_rows(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """One 64-bit hash per row of ``columns``, in their own dtypes (as objects, a date column
    hashes ten times slower): callers keep the dtypes in their digest, so another dtype only
    recomputes."""
    return pd.util.hash_pandas_object(frame[columns], index=False, categorize=False).to_numpy(np.uint64)


def _row_hashes(frame: pd.DataFrame) -> np.ndarray:
    columns = input_columns(frame)
    if not columns or frame.empty:
        return np.zeros(len(frame), dtype=np.uint64)
    # :func:`basis` covers the dtypes, so another dtype rescores all.
    return hash_rows(frame, columns)


def lead_digests(leads: pd.DataFrame, activities: pd.DataFrame | None) -> pd.DataFrame:
    """Per lead (index: lower-case id): ``row`` (its values) and ``acts`` (its activities' values).

    ``acts`` adds the activity rows' hashes (wrapping), so it moves when an activity of the lead is
    added, edited, deleted or moved to another lead, whatever the order the mirror returns them in.
    """
    ids = leads["lead_id"].astype(str).str.lower().to_numpy()
    frame = pd.DataFrame(
        {"row": _row_hashes(leads), "acts": np.zeros(len(leads), dtype=np.uint64)}, index=ids
    )
    frame = frame[~frame.index.duplicated()]
    if activities is not None and not activities.empty and "lead_id" in activities:
        owners = activities["lead_id"].astype("string").str.lower()
        known = owners.notna().to_numpy()
        hashes = _row_hashes(activities)[known]
        codes, uniques = pd.factorize(owners[known].to_numpy())
        sums = np.zeros(len(uniques), dtype=np.uint64)
        np.add.at(sums, codes, hashes)
        per_lead = pd.Series(sums, index=pd.Index(uniques, dtype=object))
        frame["acts"] = per_lead.reindex(frame.index).fillna(0).to_numpy(np.uint64)
    return frame


def basis(
    rules_path: Path, model: Any, as_of: pd.Timestamp, leads: pd.DataFrame, activities: pd.DataFrame | None
) -> str:
    """What every lead's score depends on besides its own inputs (see the module docstring)."""
    digest = hashlib.sha256(__version__.encode())
    try:
        digest.update(Path(rules_path).read_bytes())
    except OSError:
        digest.update(b"no rules file")
    digest.update(repr(getattr(model, "version", None) if model is not None else "rules").encode())
    digest.update(pd.Timestamp(as_of).isoformat().encode())
    for frame in (leads, activities if activities is not None else pd.DataFrame()):
        digest.update(repr(sorted((str(c), str(t)) for c, t in frame.dtypes.items())).encode())
    return digest.hexdigest()


def changed_leads(
    caches: dict[str, Any], key: str, digests: pd.DataFrame, kept: pd.DataFrame | None
) -> pd.Index | None:
    """The leads of ``digests`` to score again, or None to score them all.

    All: no caches, another basis (rules, model, day or columns), or no kept results. Otherwise the
    leads whose digests differ from the cached ones, or that have no kept result.
    """
    before = caches.get("digests")
    if caches.get("basis") != key or not isinstance(before, pd.DataFrame) or kept is None or kept.empty:
        return None
    position = before.index.get_indexer(digests.index)
    found = position >= 0
    same = np.zeros(len(digests), dtype=bool)
    # Compared as uint64: a reindex through float (for the missing leads) would lose bits.
    same[found] = np.logical_and.reduce(
        [
            before[c].to_numpy(np.uint64)[position[found]] == digests[c].to_numpy(np.uint64)[found]
            for c in ("row", "acts")
        ]
    )
    same &= digests.index.isin(kept.index)
    return digests.index[~same]


def scored_results(
    leads: pd.DataFrame,
    rules: scoring.ScoringRules,
    as_of: pd.Timestamp,
    model: scoring.LeadModel | None,
    activities: pd.DataFrame | None,
) -> pd.DataFrame:
    """The scoring results of ``leads`` (index lower-case lead id; the trend is left empty)."""
    columns = ["score", "grade", "factors", "trend", "sales_ready"]
    if leads.empty:
        empty = pd.Index([], dtype=object, name="lead_id")  # named as a scored frame's index is
        return pd.DataFrame(columns=columns, index=empty).astype({"score": int})
    scored = scoring.score(leads, rules=rules, as_of=as_of, model=model, activities=activities)
    ids = scored.index.astype(str).str.lower()
    scored = scored.set_axis(ids)
    return pd.DataFrame(
        {
            "score": scored["score"].astype(int),
            "grade": scored["grade"].astype(object),
            "factors": ["\n".join(f) for f in scored["factors"]],
            "trend": pd.Series(None, index=ids, dtype=object),
            "sales_ready": scored["sales_ready"].astype(bool),
        },
        index=ids,
    )


def activities_for(activities: pd.DataFrame | None, leads: pd.DataFrame) -> pd.DataFrame | None:
    """The activities scoring ``leads`` can read: their own (a lead's score reads its own activities
    only; the rules and the model match them by ``lead_id`` exactly), and every activity whose type
    is missing or unknown, so that the frame fails validation exactly when all of them would.

    Scoring 1% of the open leads with all 166,000 activities of the medium sandbox cost 0.8 s,
    most of it normalising the activities of leads that were not scored.
    """
    if activities is None or activities.empty or not {"lead_id", "activity_type"} <= set(activities.columns):
        return activities  # nothing to cut, or a frame validation rejects as it is
    own = activities["lead_id"].isin(leads["lead_id"].to_numpy())
    kinds = activities["activity_type"].astype("string").str.strip().str.lower()
    invalid = ~kinds.isin(ACTIVITY_TYPES).fillna(False).astype(bool)
    return activities[(own | invalid).to_numpy()]


def score_open_leads(
    leads: pd.DataFrame,
    open_leads: pd.DataFrame,
    activities: pd.DataFrame | None,
    rules: scoring.ScoringRules,
    model: scoring.LeadModel | None,
    *,
    as_of: pd.Timestamp,
    rules_path: Path,
    caches: dict[str, Any] | None,
    kept: pd.DataFrame | None,
) -> tuple[pd.DataFrame, int | None]:
    """The results of every open lead, scoring only the changed ones when the basis allows it.

    Returns ``(results, rescored)``: ``rescored`` is how many leads were scored, None when all.
    ``caches`` (updated in place) get this run's basis and digests.
    """
    changed: pd.Index | None = None
    if caches is not None:
        digests = lead_digests(open_leads, activities)
        key = basis(rules_path, model, as_of, leads, activities)
        changed = changed_leads(caches, key, digests, kept)
        caches.clear()
        caches.update({"basis": key, "digests": digests})
    if changed is not None and kept is not None:
        open_ids = open_leads["lead_id"].astype(str).str.lower()
        rescored = open_leads[open_ids.isin(changed).to_numpy()]
        try:
            fresh = scored_results(rescored, rules, as_of, model, activities_for(activities, rescored))
        except ConfigError as exc:  # a check only the whole column passes: score them all
            log.info("scoring the changed leads alone failed (%s); scoring every open lead", exc)
        else:
            unchanged = open_ids[~open_ids.isin(changed)].to_numpy()
            held = kept.reindex(columns=fresh.columns).loc[unchanged]
            results = pd.concat([held, fresh]) if len(fresh) else held
            return results.reindex(open_ids.to_numpy()), len(changed)
    return scored_results(open_leads, rules, as_of, model, activities), None
