"""The pipeline over real HTTP against the sandbox: writes what changed, then nothing; dry run; failures."""

from __future__ import annotations

import shutil
import threading

import pandas as pd
import pytest
from pipeline_support import (  # noqa: F401 - fixtures
    TOKEN,
    patch,
    provisioned_template,
    psandbox,
    read_columns,
    settings_for,
    write_config,
)

from connector.http import RetryPolicy
from connector.sandbox import Limits, Sandbox, SandboxConfig
from core.errors import ConfigError
from jobs.cli.walkthrough import MAPPINGS_DIR
from jobs.service.compute_value import customer_value_jobs
from jobs.service.connect import connect
from jobs.service.mapping import load_mappings
from jobs.service.mirror import Mirror
from jobs.service.pipeline import run_pipeline
from jobs.service.settings import ScheduleSettings
from jobs.service.status import collect_status

SEGMENT = "dvs_customersegment"
RFM = ["dvs_rfmrecency", "dvs_rfmfrequency", "dvs_rfmmonetary", SEGMENT]


@pytest.fixture
def sandbox(psandbox):  # noqa: F811 - the imported fixture
    return psandbox


@pytest.fixture
def setup(sandbox, tmp_path):
    config = write_config(tmp_path / "run", sandbox, batch_size=200)
    settings = settings_for(config, sandbox)
    mappings = load_mappings(settings.mappings.dir, prefix="dvs")
    with connect(settings) as client, Mirror(settings.mirror.path) as mirror:
        yield settings, mappings, client, mirror


def test_first_run_writes_the_results_and_a_second_run_writes_nothing(setup, sandbox):
    settings, mappings, client, mirror = setup
    first = run_pipeline(client, mirror, mappings, settings, jobs=["rfm"])
    assert first.ok, first.error
    accounts = read_columns(sandbox, "accounts", RFM)
    results = mirror.results("account", run_id=first.run_id)
    assert first.tables["account"]["written"] == len(results) > 100
    # What Dynamics holds is exactly what the job computed.
    for record_id, row in results.head(50).iterrows():
        held = accounts[record_id]
        assert held[SEGMENT] == row["rfm_segment"]
        assert held["dvs_rfmrecency"] == int(row["rfm_recency"])
    # Every write is audited with its old and new value.
    audit = mirror.audit(first.run_id, table="account")
    assert set(audit["outcome"]) == {"written"}
    assert audit["old_value"].isna().all()
    assert len(audit) == len(first.plan[first.plan["table_name"] == "account"])
    # Reads come 5,000 records to a request; writes up to batch_size per $batch.
    assert first.tables["salesorder"]["read_requests"] == -(-first.tables["salesorder"]["read"] // 5000)
    assert first.tables["account"]["write_requests"] == -(-first.tables["account"]["written"] // 200)

    second = run_pipeline(client, mirror, mappings, settings, jobs=["rfm"])
    assert second.ok
    assert len(second.plan) == 0
    assert all(t["written"] == 0 for t in second.tables.values())
    assert not any(path.startswith("$batch") for path in second.http["by_path"])

    # Someone overwrites one value in Dynamics: the next run restores that value and nothing else.
    record_id, row = next(iter(results.iterrows()))
    patch(sandbox, "accounts", record_id, {SEGMENT: "Someone typed this"})
    third = run_pipeline(client, mirror, mappings, settings, jobs=["rfm"])
    written = third.plan[third.plan["column_name"] != "dvs_scoredon"]
    assert list(zip(written["record_id"], written["column_name"], written["old_value"], strict=True)) == [
        (record_id, SEGMENT, "Someone typed this")
    ]
    assert read_columns(sandbox, "accounts", [SEGMENT])[record_id][SEGMENT] == row["rfm_segment"]


def test_dry_run_writes_the_plan_to_csv_and_changes_nothing(setup, sandbox, tmp_path):
    settings, mappings, client, mirror = setup
    csv = tmp_path / "plan.csv"
    result = run_pipeline(client, mirror, mappings, settings, jobs=["rfm"], dry_run=True, plan_csv=csv)
    assert result.ok and result.dry_run
    plan = pd.read_csv(csv)
    assert len(plan) == len(result.plan) > 100
    assert set(plan["column_name"]) >= set(RFM)
    assert all(v[SEGMENT] is None for v in read_columns(sandbox, "accounts", [SEGMENT]).values())
    assert mirror.audit().empty and mirror.plan().empty

    # writeback.enabled = false: computed and kept in the mirror, nothing planned to a file or sent.
    settings.writeback.enabled = False
    kept = run_pipeline(client, mirror, mappings, settings, jobs=["rfm"])
    assert kept.ok and kept.plan_csv is None
    assert len(mirror.results("account", run_id=kept.run_id)) > 100
    assert all(v[SEGMENT] is None for v in read_columns(sandbox, "accounts", [SEGMENT]).values())


def test_a_record_that_cannot_be_written_is_reported_and_retried_next_run(setup):
    settings, mappings, client, mirror = setup
    run_pipeline(client, mirror, mappings, settings, jobs=["rfm"])
    # A customer the mirror knows but Dynamics does not (deleted meanwhile): its PATCH gets a 404.
    ghost = "00000000-0000-0000-0000-00000000beef"
    mirror.upsert("account", pd.DataFrame({"account_id": [ghost], "name": ["Ghost Ltd"]}))
    orders = mirror.read_frame("salesorder").head(3).copy()
    orders["order_id"] = [f"00000000-0000-0000-0000-00000000000{i}" for i in range(3)]
    orders["customer_id"], orders["customer_type"] = ghost, "account"
    mirror.upsert("salesorder", orders)
    failed = run_pipeline(client, mirror, mappings, settings, jobs=["rfm"])
    assert failed.outcome == "failed" and "could not be written" in failed.error
    assert [f["record_id"] for f in failed.failures] == [ghost]
    assert failed.tables["account"]["failed"] == 1
    items = mirror.plan(failed.run_id, table="account")
    assert set(items.loc[items["record_id"] == ghost, "status"]) == {"failed"}
    # The next run tries again (and reports it again) instead of dropping it.
    retry = run_pipeline(client, mirror, mappings, settings, jobs=["rfm"])
    assert [f["record_id"] for f in retry.failures] == [ghost]
    assert set(mirror.plan(failed.run_id, table="account", status="superseded")["record_id"]) == {ghost}


def test_stop_request_ends_after_the_current_chunk_and_the_next_run_finishes(setup, sandbox):
    settings, mappings, client, mirror = setup
    stop = threading.Event()

    class StopAfterFirstChunk:
        def sync(self, table, *, read, pages, done):
            pass

        def write(self, table, *, done, total):
            stop.set()

    settings.writeback.max_parallel = 1
    stopped = run_pipeline(
        client, mirror, mappings, settings, jobs=["rfm"], stop=stop, progress=StopAfterFirstChunk()
    )
    assert stopped.outcome == "interrupted"
    assert sum(t["written"] for t in stopped.tables.values()) == 200
    assert mirror.run(stopped.run_id)["outcome"] == "interrupted"
    finished = run_pipeline(client, mirror, mappings, settings, jobs=["rfm"])
    assert finished.ok
    # The finished run reused the stopped run's results (nothing changed in between): every one of
    # them was written by one of the two runs.
    assert finished.jobs[0].details.get("reused_from_run") == stopped.run_id
    total = len(mirror.results("account")) + len(mirror.results("contact"))
    assert 200 + sum(t["written"] for t in finished.tables.values()) == total


def test_clv_without_enough_history_writes_no_prediction_and_says_why():
    orders = pd.DataFrame(
        {
            "order_id": ["o1", "o2"],
            "customer_id": ["a1", "c1"],
            "customer_type": ["account", "contact"],
            "order_date": pd.to_datetime(["2026-01-05", "2026-02-01"], utc=True),
            "amount": [100.0, 50.0],
            "status": ["fulfilled", "fulfilled"],
        }
    )
    (outcome,) = customer_value_jobs(
        orders,
        {"clv"},
        config_path=MAPPINGS_DIR / "customer_value.toml",
        as_of=pd.Timestamp("2026-06-01", tz="UTC"),
    )
    assert outcome.status == "partial"
    assert "not written" in outcome.message
    assert set(outcome.results) == {"account", "contact"}
    for frame in outcome.results.values():
        assert "clv_historical" in frame and "clv_predicted" not in frame and "p_alive" not in frame


def test_throttling_is_waited_out_and_counted(provisioned_template, tmp_path):  # noqa: F811
    """Service-protection 429s (with Retry-After) pause the run, which then finishes and reports them."""
    now = [1000.0]
    lock = threading.Lock()

    def clock() -> float:
        return now[0]

    def sleep(seconds: float) -> None:  # time passes only when the client waits
        with lock:
            now[0] += seconds

    data = tmp_path / "throttled"
    data.mkdir()
    shutil.copy2(provisioned_template / "sandbox.sqlite", data / "sandbox.sqlite")
    config = SandboxConfig(limits=Limits(requests=15, window_seconds=60), monotonic=clock)
    sandbox = Sandbox(data, token=TOKEN, config=config).start()
    try:
        settings = settings_for(
            write_config(tmp_path / "run", sandbox, batch_size=200, max_parallel=4), sandbox
        )
        mappings = load_mappings(settings.mappings.dir, prefix="dvs")
        retry = RetryPolicy(sleep=sleep, clock=clock, random=lambda: 0.5)
        with (
            connect(settings, retry=retry) as client,
            Mirror(settings.mirror.path) as mirror,
        ):
            result = run_pipeline(client, mirror, mappings, settings, jobs=["rfm"])
            assert result.ok, result.error
            assert result.http["throttled"] > 0 and result.http["retries"] >= result.http["throttled"]
            (last,) = collect_status(mirror, ScheduleSettings(sets={}), limit=1)["runs"]
            assert last["throttled"] == result.http["throttled"]  # dvsync status shows the 429s
        written = sum(t["written"] for t in result.tables.values())
        assert written == len(result.plan["record_id"].unique()) > 1000
        assert now[0] > 1000.0  # the run really waited (on the fake clock)
    finally:
        sandbox.stop()


def test_a_mapping_column_the_org_lacks_stops_the_run_as_a_configuration_error(sandbox, tmp_path):
    mappings_dir = tmp_path / "mappings"
    shutil.copytree(MAPPINGS_DIR, mappings_dir)
    orders = mappings_dir / "salesorder.toml"
    orders.write_text(orders.read_text().replace('"totalamount"', '"totalamountt"'), encoding="utf-8")
    config = write_config(tmp_path / "run", sandbox)
    config.write_text(config.read_text().replace(MAPPINGS_DIR.as_posix(), mappings_dir.as_posix()))
    settings = settings_for(config, sandbox)
    mappings = load_mappings(settings.mappings.dir, prefix="dvs")
    with connect(settings) as client, Mirror(settings.mirror.path) as mirror:
        # Exit code 2 like every configuration error: the file, line, key and the real column.
        with pytest.raises(ConfigError, match=r"salesorder\.toml:\d+ \[fields\.amount\.column\]") as caught:
            run_pipeline(client, mirror, mappings, settings, jobs=["rfm"])
        assert "did you mean `totalamount`?" in str(caught.value) and caught.value.exit_code == 2
        runs = mirror.runs(5)
    assert list(runs["outcome"]) == ["failed"] and "totalamountt" in runs["error"].iloc[0]


def test_open_leads_that_already_are_contacts_show_the_contact(sandbox, tmp_path):
    config = write_config(tmp_path / "run", sandbox, tables=["lead", "contact", "account"])
    settings = settings_for(config, sandbox)
    mappings = load_mappings(settings.mappings.dir, prefix="dvs")
    with connect(settings) as client, Mirror(settings.mirror.path) as mirror:
        first = run_pipeline(client, mirror, mappings, settings, jobs=["duplicates"])
        assert first.ok, first.error
        second = run_pipeline(client, mirror, mappings, settings, jobs=["duplicates"])
    assert second.ok and len(second.plan) == 0
    assert all(t["written"] == 0 for t in second.tables.values())

    columns = [
        "statecode",
        *(f"dvs_existing{k}{p}" for k in ("contact", "account") for p in ("", "id", "score")),
    ]
    leads = read_columns(sandbox, "leads", columns)
    truth = pd.read_csv(sandbox.ground_truth_dir / "lead_contact_matches.csv")
    truth = truth[truth["leadid"].map(lambda i: leads[i]["statecode"] == 0)]  # only open leads are checked
    true_contacts = truth.groupby("leadid")["contactid"].agg(set)
    written = {i: v["dvs_existingcontactid"] for i, v in leads.items() if v["dvs_existingcontactid"]}
    right = sum(c in true_contacts.get(i, set()) for i, c in written.items())
    precision, recall = right / len(written), right / len(true_contacts)
    print(f"lead -> existing contact: {len(written)} written, {len(true_contacts)} planted, "
          f"precision {precision:.3f}, recall {recall:.3f}")  # fmt: skip
    assert len(true_contacts) >= 20 and recall >= 0.9 and precision >= 0.95

    # What a salesperson reads: the contact's name and email, with how sure the match is.
    contacts = read_columns(sandbox, "contacts", ["firstname", "lastname", "emailaddress1"])
    lead_id, contact_id = next(iter(written.items()))
    person = contacts[contact_id]
    shown = leads[lead_id]
    assert shown["dvs_existingcontact"].startswith(f"{person['firstname']} {person['lastname']}".strip())
    assert shown["dvs_existingcontact"].endswith(f"<{person['emailaddress1']}>")
    assert 50 <= shown["dvs_existingcontactscore"] <= 100
    # Companies too; and nothing on leads that are no longer open.
    accounts = [v for v in leads.values() if v["dvs_existingaccountid"]]
    assert len(accounts) > 50 and all(", " in v["dvs_existingaccount"] for v in accounts[:20])
    assert all(
        v["statecode"] == 0
        for v in leads.values()
        if v["dvs_existingcontactid"] or v["dvs_existingaccountid"]
    )
