"""Dataverse's whole date range (0001-01-01..9999-12-31) is synced, stored and read as "no date"
by the analytics when it is a sentinel, over real HTTP against the sandbox."""

from __future__ import annotations

import pandas as pd
from conftest import dataverse_session
from pipeline_support import (  # noqa: F401 - fixtures
    patch,
    provisioned_template,
    psandbox,
    settings_for,
    write_config,
)

from jobs.moments import without_sentinels
from jobs.service.connect import connect
from jobs.service.mapping import load_mappings
from jobs.service.mirror import Mirror
from jobs.service.pipeline import run_pipeline


def _first_id(sandbox, entity_set: str, key: str) -> str:
    with dataverse_session(sandbox) as s:
        page = s.get(f"{sandbox.api_url}{entity_set}?$select={key}&$top=1", timeout=30).json()
    return page["value"][0][key]


def test_a_year_9999_email_and_a_year_1_order_are_synced_stored_and_ignored_as_dates(psandbox, tmp_path):  # noqa: F811
    email = _first_id(psandbox, "emails", "activityid")
    order = _first_id(psandbox, "salesorders", "salesorderid")
    patch(psandbox, "emails", email, {"actualend": "9999-12-31T00:00:00Z"})
    patch(psandbox, "salesorders", order, {"datefulfilled": "0001-01-01T00:00:00Z"})

    tables = ["salesorder", "account", "contact", "email"]
    settings = settings_for(write_config(tmp_path / "run", psandbox, tables=tables), psandbox)
    mappings = load_mappings(settings.mappings.dir, prefix="dvs")
    with connect(settings) as client, Mirror(settings.mirror.path) as mirror:
        result = run_pipeline(client, mirror, mappings, settings, jobs=["rfm"])
        assert result.ok, result.error
        assert all(t.ok for t in result.sync.tables)
        # Stored as Dynamics holds them, not lost and not shifted.
        emails = mirror.read_frame("email").set_index("activity_id")
        assert emails.loc[email.lower(), "occurred_on"] == pd.Timestamp("9999-12-31", tz="UTC")
        orders = mirror.read_frame("salesorder").set_index("order_id")
        assert orders.loc[order.lower(), "order_date"].year == 1
        # RFM ran on the other orders and says it read one date as "no date".
        (rfm,) = result.jobs
        assert rfm.status in ("ok", "partial") and rfm.results["account"].shape[0] > 100
        assert rfm.details["dates_ignored"] >= 1


def test_sentinel_dates_become_missing_and_are_counted():
    frame = pd.DataFrame(
        {
            "when": pd.to_datetime(
                ["9999-12-31T00:00:00Z", "0001-01-01T00:00:00Z", "2024-05-01T00:00:00Z", None], utc=True
            ),
            "n": [1, 2, 3, 4],
        }
    )
    cleared, count = without_sentinels(frame)
    assert count == 2
    assert cleared["when"].isna().tolist() == [True, True, False, True]
    assert str(cleared["when"].dtype) == "datetime64[ns, UTC]"
    assert cleared["n"].tolist() == [1, 2, 3, 4]
