"""Incremental duplicate detection equals a full recompute, and blocking stays linear.

The leads come from the sandbox's small seed (planted duplicates, colleagues sharing a company's
phone and address). Each change set is random: edited names, emails and phones, deleted records
and new copies of existing ones. After each, the incremental run (with the cache of the run
before) must give exactly the candidates, pairs and scores of a run without a cache given the same
model, while comparing only the pairs that involve a changed record.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from connector.sandbox.seed import generate
from jobs.leads.duplicates.blocking import candidate_pairs, default_passes, refinement_keys
from jobs.leads.duplicates.config import load_duplicate_config
from jobs.leads.duplicates.detect import find_duplicates, link_records
from jobs.leads.duplicates.incremental import MatchCache, NormalisedValues
from jobs.service.mapping import load_table_mapping

MAPPINGS = Path(__file__).resolve().parents[1] / "mappings"


def canonical(data, table: str) -> pd.DataFrame:
    mapping = load_table_mapping(MAPPINGS / f"{table}.toml")
    raw = data.tables[table]
    frame = pd.DataFrame({f"{table}_id": raw[f"{table}id"]})
    for name, field in mapping.fields.items():
        if field.type in ("string", "datetime") and field.column in raw.columns:
            frame[name] = raw[field.column]
    return frame


@pytest.fixture(scope="module")
def data():
    return generate("small", seed=3, scale=0.5)


def change(frame: pd.DataFrame, id_column: str, rng: np.random.Generator, share: float) -> pd.DataFrame:
    """Edit, delete and copy a random ``share`` of the records, as users would."""
    out = frame.copy()
    n = len(out)
    picked = rng.choice(n, size=max(3, int(n * share)), replace=False)
    edit, gone, copy = np.array_split(picked, 3)
    for position in edit:
        column = rng.choice(["last_name", "email", "phone", "city", "first_name"])
        if column not in out.columns:
            continue
        value = out.iat[position, out.columns.get_loc(column)]
        if isinstance(value, str) and len(value) > 2:
            out.iat[position, out.columns.get_loc(column)] = value[:-1] + "x"
        else:
            out.iat[position, out.columns.get_loc(column)] = "changed"
    copies = out.iloc[copy].copy()
    copies[id_column] = [f"00000000-0000-4000-8000-{rng.integers(1 << 40):012x}" for _ in range(len(copies))]
    out = out.drop(out.index[gone])
    return pd.concat([out, copies], ignore_index=True)


def same_result(incremental, full) -> None:
    key = ["id_left", "id_right"]
    a = incremental.candidates.sort_values(key, ignore_index=True)
    b = full.candidates.sort_values(key, ignore_index=True)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(
        incremental.pairs[["id_left", "id_right", "score"]], full.pairs[["id_left", "id_right", "score"]]
    )
    assert list(incremental.pairs["evidence"]) == list(full.pairs["evidence"])


@pytest.mark.parametrize("draw", [1, 2])
def test_incremental_deduplication_equals_a_full_recompute_with_the_same_model(data, draw):
    config = load_duplicate_config(MAPPINGS / "duplicates.toml", "lead")
    leads = canonical(data, "lead")
    cache, normalised = MatchCache(), NormalisedValues()
    first = find_duplicates(leads, **config.find_kwargs(), report=True, cache=cache, normalised=normalised)
    assert cache.compared == first.blocking.candidate_pairs  # nothing to reuse the first time
    rng = np.random.default_rng(draw)
    current = leads
    for _ in range(3):
        current = change(current, "lead_id", rng, share=0.02)
        model = cache.model
        incremental = find_duplicates(
            current, **config.find_kwargs(), report=True, cache=cache, normalised=normalised
        )
        assert incremental.model is model  # 2% changed: no drift, the model is kept
        full = find_duplicates(current, **config.find_kwargs(), report=True, model=model)
        same_result(incremental, full)
        # Work in proportion: only pairs touching a changed record were compared again.
        assert 0 < cache.compared < 0.25 * incremental.blocking.candidate_pairs


def test_incremental_linking_equals_a_full_recompute(data):
    config = load_duplicate_config(MAPPINGS / "duplicates.toml", "lead")
    leads = canonical(data, "lead")
    contacts = canonical(data, "contact")
    kwargs = config.link_kwargs("contact")
    cache, normalised = MatchCache(), NormalisedValues()
    link_records(leads, contacts, **kwargs, report=True, cache=cache, normalised=normalised)
    before = normalised.normalised
    changed = change(leads, "lead_id", np.random.default_rng(7), share=0.02)
    incremental = link_records(changed, contacts, **kwargs, report=True, cache=cache, normalised=normalised)
    full = link_records(changed, contacts, **kwargs, report=True, model=cache.model)
    same_result(incremental, full)
    # Only the values the edits introduced were normalised again.
    assert normalised.normalised - before < 0.05 * before


def test_a_drifted_table_refits_the_model(data):
    config = load_duplicate_config(MAPPINGS / "duplicates.toml", "lead")
    leads = canonical(data, "lead")
    cache = MatchCache()
    find_duplicates(leads, **config.find_kwargs(), cache=cache)
    model = cache.model
    half = leads.sample(frac=0.5, random_state=1)
    find_duplicates(half, **config.find_kwargs(), cache=cache)
    assert cache.model is not model and cache.model_fitted


def test_oversized_swap_blocks_are_split_by_location_so_pairs_per_record_stay_flat():
    rng = np.random.default_rng(0)
    fields = {"first_name": "name", "last_name": "name", "city": "text", "email": "email"}
    passes = default_passes(fields, swap_names=("first_name", "last_name"))
    per_record = []
    for n in (2_000, 8_000):
        # Everybody is called John Smith or Smith John, in 40 cities: one giant swap block.
        swapped = rng.random(n) < 0.5
        prepared = {
            "first_name": pd.Series(np.where(swapped, "smith", "john"), dtype=object),
            "last_name": pd.Series(np.where(swapped, "john", "smith"), dtype=object),
            "city": pd.Series([f"city{i}" for i in rng.integers(0, 40 * n // 2_000, n)], dtype=object),
            "email": pd.Series([None] * n, dtype=object),
        }
        order = np.arange(n)
        only_swap = [p for p in passes if not p.optional and p.columns == {"first_name", "last_name"}]
        first, second, _ = candidate_pairs(
            prepared, only_swap, order=order, max_block_size=50, refinements=refinement_keys(fields)
        )
        assert (prepared["city"].to_numpy()[first] == prepared["city"].to_numpy()[second]).all()
        # Swapped pairs in one city are found whatever the order of the names.
        assert (prepared["first_name"].to_numpy()[first] != prepared["first_name"].to_numpy()[second]).any()
        per_record.append(len(first) / n)
    assert per_record[1] <= per_record[0] * 1.1
