"""A seed means the same data everywhere: the small seed's digest is pinned.

The generator draws everything from numpy Generators and builds columns with explicit dtypes, so
the data must not depend on the installed pandas or numpy (pandas 2 once wrote a missing value as
the text "None" where pandas 3 kept it missing: thousands of values differed per 100,000 leads).
The digest below was computed under pandas 3.1 / numpy 2.4 when the seed gained the org's users,
teams and queues (issue 18); the digest before that change was the same under pandas 2.3 / numpy 2.3
and pandas 2.2 / numpy 1.26. If you change the generator on purpose, print the new digest with
``python -c "from tests.test_sandbox_seed_digest import digest; print(digest())"`` and update it.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime

import pandas as pd

from connector.sandbox.seed import generate

SMALL_SEED_DIGEST = "e77c0f4888d11d6a94a61066b746225452423a2a101317039d710e75a6468b5a"


def _canonical(value: object) -> str:
    if value is None or value is pd.NA or value is pd.NaT:
        return "\u2205"
    if isinstance(value, float):
        # Six significant digits: the last bit of exp/log may differ between CPUs' math libraries.
        return "\u2205" if math.isnan(value) else f"{value:.6g}"
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return _canonical(value.item())  # type: ignore[union-attr]
    return repr(value)


def digest(seed: int = 1, now: datetime = datetime(2026, 3, 1, tzinfo=UTC)) -> str:
    """A digest of every value of every table and ground truth of the small seed."""
    data = generate("small", seed, now=now)
    hasher = hashlib.sha256()
    frames = {
        **{f"table:{k}": v for k, v in data.tables.items()},
        **{f"truth:{k}": v for k, v in data.ground_truth.items()},
    }
    for name in sorted(frames):
        frame = frames[name]
        hasher.update(f"{name}:{len(frame)}\n".encode())
        for column in sorted(frame.columns):
            hasher.update(f"{column}\n".encode())
            hasher.update("\x1f".join(_canonical(v) for v in frame[column].tolist()).encode())
    return hasher.hexdigest()


def test_the_small_seed_is_the_same_data_under_every_supported_pandas_and_numpy():
    assert digest() == SMALL_SEED_DIGEST
