"""Skip planning a job's results when its inputs to the plan are exactly those of a plan that was empty.

:func:`jobs.service.plan.plan_table` is a pure function of the job's results, the mirror's
``out_`` values of those records and the table's output columns. On a run where nothing changed
the jobs' results are reused and Dynamics holds them already, so planning them again (converting
every value and every held value to its wire form) finds nothing to write, at about a second per
run on the medium sandbox.

So after planning, the digest of those inputs is kept (in the mirror's ``job_state``, as
:data:`STATE`) for every part whose plan came out empty; a later part with the same digest is
known to plan nothing and is not planned again. The digest is a SHA-256 of the *pickled* inputs:
pickle keeps every value's type and exact content (``3`` and ``3.0``, ``None`` and ``"None"``
differ), so equal digests mean equal inputs and the skipped plan is provably the empty one. Two
equal inputs may still pickle differently (an object shared instead of repeated): that only costs
a plan, never a wrong one. A part whose plan is not empty is always planned: the write-back must
see this run's values.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.version import __version__
from jobs.service.mapping import OutputColumn
from jobs.service.plan import plan_table

__all__ = ["STATE", "PlanMemo", "plan_digest"]

log = logging.getLogger(__name__)

STATE = "plan_memo"
"""The ``job_state`` row holding the digests of the inputs whose plan was empty."""

FORMAT = "1"
"""Part of every digest: raised when the digest's layout changes, so no earlier digest matches."""


@cache
def _source_digest() -> str:
    """The source of the planning and wire conversion: changed code never matches an old digest."""
    from jobs.service import plan
    from jobs.service.mapping import model

    digest = hashlib.sha256()
    for module in (plan, model):
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()


def plan_digest(
    table: str, results: pd.DataFrame, current: pd.DataFrame, outputs: Iterable[OutputColumn]
) -> str:
    """A digest of everything :func:`plan_table` reads for one table's results.

    Only the held values of the records in ``results`` and of the columns the outputs name
    matter; the rest of the mirror is left out so that a change elsewhere does not cost a plan.
    """
    outputs = sorted((o for o in outputs if o.table == table), key=lambda o: (o.result, o.schema_name))
    columns = sorted({o.mirror_column for o in outputs} & set(current.columns))
    # Ids as plain Python strings: a hash look-up, where pandas' Arrow strings test one by one.
    ids = pd.Index(np.asarray(results.index.astype(str).str.lower(), dtype=object), dtype=object)
    held_ids = np.asarray(current.index.astype(str).str.lower(), dtype=object)
    keep = pd.Index(held_ids, dtype=object).isin(ids)
    held = current.iloc[keep][columns].set_axis(held_ids[keep])
    digest = hashlib.sha256()
    # The code that converts values to their wire form is part of the input: another dvsync or
    # pandas version may convert differently, so its digests never match this one's.
    code = (FORMAT, _source_digest(), __version__, pd.__version__, np.__version__)
    for part in (code, table, repr(outputs), list(current.columns), results, held):
        digest.update(pickle.dumps(part, protocol=5))
    return digest.hexdigest()


class PlanMemo:
    """The digests of the last run's empty plans, and this run's, per ``(job, table)``.

    Args:
        mirror: the open mirror (its ``job_state`` keeps the digests).
        enabled: False (``dvsync run --full``): every part is planned; the digests are still kept.
    """

    def __init__(self, mirror: Any, *, enabled: bool = True) -> None:
        self.mirror = mirror
        state = mirror.job_state(STATE) if enabled else None
        payload = state[2] if state is not None else None
        self.kept: dict[str, str] = dict(payload) if isinstance(payload, dict) else {}
        self.empty: dict[str, str] = {}
        self.skipped = 0

    def plan(
        self,
        job: str,
        table: str,
        results: pd.DataFrame,
        current: pd.DataFrame,
        outputs: Iterable[OutputColumn],
    ) -> pd.DataFrame | None:
        """The plan of ``results`` (as :func:`plan_table`), or None when it is known to be empty."""
        outputs = list(outputs)
        key = f"{job}:{table}"
        digest = plan_digest(table, results, current, outputs)
        if self.kept.get(key) == digest:
            self.empty[key] = digest
            self.skipped += 1
            log.debug("plan: %s results of %s unchanged since an empty plan; not planned again", table, job)
            return None
        planned = plan_table(table, results, current, outputs)
        if planned.empty:
            self.empty[key] = digest
        return planned

    def save(self) -> None:
        """Keep this run's empty-plan digests (and only those: a part planned non-empty is dropped)."""
        if self.empty != self.kept:
            self.mirror.save_job_state(STATE, FORMAT, None, dict(self.empty))
