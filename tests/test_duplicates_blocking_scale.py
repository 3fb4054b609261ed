"""Blocking scales linearly: no pass's candidate pairs per record grow with the table.

The reference size (100,000 records in production) is lowered so small tables show what a million
leads do: keys of fixed cardinality (50 postcodes, 30 surnames) make blocks that grow with the
table; every pass must still give about as many pairs per record as at the reference size, the
same passes must run at every size, and planted duplicates must stay among the candidates.
"""

import numpy as np
import pandas as pd
import pytest

from jobs.leads.duplicates import blocking
from jobs.leads.duplicates.blocking import candidate_pairs, default_passes, refinement_keys

FIELDS = {
    "first_name": "name",
    "last_name": "name",
    "email": "email",
    "street": "address",
    "postcode": "postcode",
}
REFERENCE = 2_000
FIRST = [
    "anna",
    "bruno",
    "carla",
    "dmitri",
    "elena",
    "felix",
    "greta",
    "hugo",
    "irene",
    "jonas",
    "karin",
    "leon",
    "marta",
    "nikolai",
    "olga",
]
LAST = [
    "smith",
    "jones",
    "brown",
    "khan",
    "meyer",
    "rossi",
    "garcia",
    "novak",
    "weber",
    "dubois",
    "silva",
    "kowalski",
    "ito",
]
LAST += [
    "larsen",
    "moreau",
    "schmidt",
    "fischer",
    "bauer",
    "wagner",
    "becker",
    "hoffman",
    "richter",
    "klein",
    "wolf",
]


def leads(n: int, rng: np.random.Generator) -> tuple[dict[str, pd.Series], np.ndarray]:
    """``n`` records, a tenth of them copies of another with a new email and a first-name typo."""
    people = n - n // 10
    first = rng.choice(FIRST, people).astype(object)
    last = rng.choice(LAST, people).astype(object)
    postcode = rng.choice([f"{10000 + i}" for i in range(50)], people).astype(object)
    street = np.array(
        [
            f"{a} {b} st"
            for a, b in zip(rng.integers(1, 400, people), rng.choice(["oak", "elm"], people), strict=True)
        ],
        dtype=object,
    )
    email = np.array([f"p{i}@example.com" for i in range(people)], dtype=object)
    copy_of = rng.choice(people, n - people, replace=False)
    typo = np.array([name[:-1] + "x" for name in first[copy_of]], dtype=object)
    frame = pd.DataFrame(
        {
            "first_name": np.concatenate([first, typo]),
            "last_name": np.concatenate([last, last[copy_of]]),
            "email": np.concatenate([email, [f"copy{i}@example.org" for i in range(n - people)]]),
            "street": np.concatenate([street, street[copy_of]]),
            "postcode": np.concatenate([postcode, postcode[copy_of]]),
        }
    )
    prepared = {c: frame[c].astype(object) for c in FIELDS}
    planted = np.stack([copy_of, np.arange(people, n)], axis=1)
    return prepared, planted


@pytest.mark.parametrize("seed", [0])
def test_pairs_per_record_of_every_pass_stay_flat_beyond_the_reference_size(monkeypatch, seed):
    monkeypatch.setattr(blocking, "COARSE_REFERENCE_RECORDS", REFERENCE)
    passes = default_passes(FIELDS, swap_names=("first_name", "last_name"))
    rng = np.random.default_rng(seed)
    per_pass: dict[int, dict[str, float]] = {}
    ran: dict[int, set[str]] = {}
    for n in (REFERENCE, 4 * REFERENCE, 16 * REFERENCE):
        prepared, planted = leads(n, rng)
        signature = prepared["first_name"] + "\x1f" + prepared["last_name"] + "\x1f" + prepared["postcode"]
        order = pd.factorize(signature, sort=True)[0].astype(np.int64)
        first, second, report = candidate_pairs(
            prepared, passes, order=order, refinements=refinement_keys(FIELDS)
        )
        per_pass[n] = {p.name: p.pairs / n for p in report.passes if not p.skipped}
        ran[n] = set(per_pass[n])
        found = set(zip(first.tolist(), second.tolist(), strict=True))
        kept = np.mean([(min(a, b), max(a, b)) in found for a, b in planted])
        assert kept >= 0.95, f"{n} records: only {kept:.3f} of planted duplicates are candidates"
    assert ran[REFERENCE] == ran[16 * REFERENCE], "the same passes run at every size"
    assert "last_name:soundex & postcode" in ran[REFERENCE]  # a key of fixed cardinality, kept
    for name, at_reference in per_pass[REFERENCE].items():
        largest = per_pass[16 * REFERENCE][name]
        # Uncapped, the postcode passes' blocks (and pairs per record) grow 16-fold.
        assert largest <= max(at_reference, blocking.MIN_PASS_PAIRS_PER_RECORD) * 1.25, (
            f"{name}: {at_reference:.3f} pairs per record at {REFERENCE}, {largest:.3f} at {16 * REFERENCE}"
        )
