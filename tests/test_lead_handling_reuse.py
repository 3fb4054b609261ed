"""Lead handling is reused while its inputs and the clock allow, and then equals a full recompute."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SEED_NOW
from pipeline_support import (  # noqa: F401 - fixtures
    patch,
    provisioned_template,
    psandbox,
    settings_for,
    write_config,
)

from jobs.cli.walkthrough import MAPPINGS_DIR
from jobs.service import lead_handling
from jobs.service.connect import connect
from jobs.service.mapping import load_mappings
from jobs.service.mirror import Mirror
from jobs.service.pipeline import run_pipeline

LEAD_TABLES = ["lead", "email", "phonecall", "appointment"]


@pytest.fixture
def setup(psandbox, tmp_path):  # noqa: F811 - the imported fixture
    config = write_config(tmp_path / "run", psandbox, tables=LEAD_TABLES)
    mappings_dir = tmp_path / "mappings"  # a private copy: the test edits scoring.toml
    shutil.copytree(MAPPINGS_DIR, mappings_dir)
    loaded = settings_for(config, psandbox)
    settings = loaded.model_copy(
        update={
            # Results kept in the mirror, nothing written: no write comes back to move the leads.
            "writeback": loaded.writeback.model_copy(update={"enabled": False}),
            "mappings": loaded.mappings.model_copy(update={"dir": str(mappings_dir)}),
        }
    )
    mappings = load_mappings(settings.mappings.dir, prefix="dvs")
    with connect(settings) as client, Mirror(settings.mirror.path) as mirror:
        yield settings, mappings, client, mirror


def _run(setup, at, settings=None):
    default, mappings, client, mirror = setup
    result = run_pipeline(client, mirror, mappings, settings or default, jobs=["scoring"], clock=lambda: at)
    assert result.ok, result.error
    return result, next(j for j in result.jobs if j.job == lead_handling.JOB)


def _fresh(setup, result, at) -> pd.DataFrame:
    """Lead handling computed in full at ``at`` from the mirror, with the run's scores."""
    settings, _, client, mirror = setup
    scoring = [j for j in result.jobs if j.job == "scoring"]
    return lead_handling.compute_for_run(client, mirror, settings, scoring, at).results["lead"]


def _horizon(outcome) -> pd.Timestamp:
    return pd.Timestamp(outcome.details["valid_until"])


def test_reused_lead_handling_equals_a_full_recompute_until_its_horizon(setup, psandbox, monkeypatch):  # noqa: F811
    settings, _, _, mirror = setup
    rng = np.random.default_rng(13)
    # 00:05 UTC on Monday 1 June: the leads created over the weekend wait for a first response, with
    # no business minute counted yet (London opens at 08:00 UTC); their flags are still missing.
    t1 = SEED_NOW + timedelta(minutes=5)
    first, computed = _run(setup, t1)
    assert "reused_from_run" not in computed.details
    waiting = computed.results["lead"]["response_sla_met"].isna()
    assert waiting.any()
    horizon = _horizon(computed)
    # A weekend lead could pass its target an hour after London opens (08:00 UTC) at the latest.
    assert t1 < horizon <= SEED_NOW + timedelta(hours=9)

    def same_as_full(outcome, result, at):
        fresh = _fresh(setup, result, at)
        pd.testing.assert_frame_equal(outcome.results["lead"].sort_index(), fresh.sort_index())

    # (a) Before the horizon an unchanged run reuses, reads neither the leads nor the activities,
    # and its results are those of a full computation at that moment.
    reads: list[str] = []
    read_frame, read_entity = mirror.read_frame, mirror.read_entity
    monkeypatch.setattr(
        mirror, "read_frame", lambda n, *cols: reads.append("" if cols else n) or read_frame(n, *cols)
    )
    monkeypatch.setattr(mirror, "read_entity", lambda e: reads.append(e) or read_entity(e))
    at = t1 + (horizon - t1) * float(rng.uniform(0.1, 0.99))
    result, reused = _run(setup, at)
    assert reused.details["reused_from_run"] == first.run_id
    assert "lead" not in reads and "activity" not in reads
    monkeypatch.undo()
    same_as_full(reused, result, at)

    # (d) A change set of each kind recomputes; the next unchanged run before its horizon reuses.
    leads = sorted(mirror.ids("lead"))
    emails = mirror.read_frame("email")
    emails = emails[emails["lead_id"].notna()]
    scoring_toml = Path(settings.mappings.dir) / "scoring.toml"
    changes = {
        "lead": lambda: patch(
            psandbox, "leads", str(rng.choice(leads)), {"jobtitle": "Chief Executive Officer"}
        ),
        "activity": lambda: patch(
            psandbox,
            "emails",
            str(rng.choice(emails[mirror.layout("email").id_column].to_numpy())),
            {"actualend": (at - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ")},
        ),
        "scoring.toml": lambda: scoring_toml.write_text(
            scoring_toml.read_text().replace("hot_engagement = 15", "hot_engagement = 9")
        ),
    }
    for kind, change in changes.items():
        change()
        at = at + timedelta(minutes=float(rng.uniform(0.5, 2)))
        recomputed, again = _run(setup, at)
        assert "reused_from_run" not in again.details, kind
        same_as_full(again, recomputed, at)
        later = at + (_horizon(again) - at) * float(rng.uniform(0.1, 0.99))
        result, reused = _run(setup, later)
        assert reused.details["reused_from_run"] == recomputed.run_id, kind
        same_as_full(reused, result, later)
        at = later

    # (b) At 10:00 UTC the weekend leads have waited two business hours: the horizon has passed, the
    # step recomputes, and their flags turn False.
    ten = SEED_NOW + timedelta(hours=10)
    result, late = _run(setup, ten)
    assert "reused_from_run" not in late.details
    flags = late.results["lead"]["response_sla_met"].reindex(waiting[waiting].index)
    assert flags.eq(False).all()
    same_as_full(late, result, ten)
    # Nobody waits within the target any more: the results hold to the end of the day.
    assert _horizon(late) == SEED_NOW + timedelta(days=1)
    _, reused = _run(setup, SEED_NOW + timedelta(hours=20))
    assert reused.details["reused_from_run"] == result.run_id

    # (e) With routing enabled the step is never reused (assignments use the round-robin position
    # and the owners as they are now).
    routing = settings.model_copy(update={"routing": settings.routing.model_copy(update={"enabled": True})})
    for minutes in (1, 2):
        _, routed = _run(setup, SEED_NOW + timedelta(hours=20, minutes=minutes), routing)
        assert "reused_from_run" not in routed.details

    # (c) The next day recomputes (stages, dormancy and the report move by the day).
    result, computed = _run(setup, SEED_NOW + timedelta(days=1, minutes=1))
    _, tomorrow = _run(setup, SEED_NOW + timedelta(days=1, minutes=2))
    assert "reused_from_run" not in computed.details
    assert tomorrow.details["reused_from_run"] == result.run_id


def test_an_echo_of_leads_reuses_lead_handling_hashing_only_the_echoed_leads(setup, psandbox, monkeypatch):  # noqa: F811
    from collections import Counter

    from jobs.service import row_digests

    _, _, _, mirror = setup
    at = SEED_NOW + timedelta(hours=20)  # nobody waits within the target: results hold all day
    first, _ = _run(setup, at)
    titles = mirror.read_frame("lead", ["job_title"]).set_index("lead_id")["job_title"].dropna().iloc[:3]
    for lead_id, title in titles.items():  # an edit that changes no value: only modifiedon moves
        patch(psandbox, "leads", lead_id, {"jobtitle": title})
    hashed: Counter[str] = Counter()
    monkeypatch.setattr(row_digests, "on_hashed", lambda table, rows: hashed.update({table: rows}))
    result, echoed = _run(setup, at + timedelta(minutes=1))
    assert result.tables["lead"]["read"] >= 3
    assert echoed.details["reused_from_run"] == first.run_id
    # Scoring and lead handling each hashed the leads that came back, not the table.
    assert hashed["lead"] == 2 * result.tables["lead"]["read"] < mirror.count("lead")
    pd.testing.assert_frame_equal(
        echoed.results["lead"].sort_index(), _fresh(setup, result, at + timedelta(minutes=1)).sort_index()
    )
    # The echo was kept under the new counters: the next unchanged run reuses on the fingerprint.
    _, again = _run(setup, at + timedelta(minutes=2))
    assert again.details["reused_from_run"] == first.run_id

    # A real edit of a value lead handling reads recomputes it.
    lead_id = titles.index[0]
    patch(psandbox, "leads", lead_id, {"jobtitle": "Chief Revenue Officer"})
    _, edited = _run(setup, at + timedelta(minutes=3))
    assert "reused_from_run" not in edited.details
