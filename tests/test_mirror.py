"""The mirror: migrations from an older file, type round trips, layout changes, runs, results, plan, audit."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from jobs.service.mirror import SCHEMA_VERSION, Mirror, MirrorError, SyncState, TableLayout


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


LAYOUT = TableLayout(
    name="lead",
    entity="lead",
    source_table="lead",
    id_column="lead_id",
    columns={
        "lead_id": "text",
        "email": "text",
        "employees": "int",
        "revenue": "float",
        "sales_ready": "bool",
        "created_on": "datetime",
    },
)


def sample() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lead_id": ["b", "a", "c"],
            "email": ["b@x.com", None, "c@x.com"],
            "employees": pd.array([10, None, 3], dtype="Int64"),
            "revenue": [1.5, float("nan"), 3.25],
            "sales_ready": pd.array([True, None, False], dtype="boolean"),
            "created_on": pd.to_datetime(
                ["2025-01-01T10:00:00Z", "2025-02-01T00:00:00.123456Z", None], utc=True, format="ISO8601"
            ),
            "_modifiedon": pd.to_datetime(["2025-03-01T00:00:00Z"] * 3, utc=True),
            "_etag": ['W/"1"', 'W/"2"', 'W/"3"'],
        }
    )


def test_round_trip_restores_types_and_orders_by_id(tmp_path):
    with Mirror(tmp_path / "m.sqlite", clock=Clock()) as mirror:
        assert mirror.ensure_table(LAYOUT) is True
        assert mirror.upsert("lead", sample()) == 3
        frame = mirror.read_frame("lead", include_system=True)
    assert frame["lead_id"].tolist() == ["a", "b", "c"]
    assert frame["email"].tolist() == [None, "b@x.com", "c@x.com"]
    assert str(frame["employees"].dtype) == "Int64" and frame["employees"].tolist()[1:] == [10, 3]
    assert frame["revenue"].dtype == float and pd.isna(frame["revenue"][0])
    assert str(frame["sales_ready"].dtype) == "boolean" and frame["sales_ready"].tolist()[1:] == [True, False]
    assert str(frame["created_on"].dtype) == "datetime64[us, UTC]"
    assert frame["created_on"][0] == pd.Timestamp("2025-02-01T00:00:00.123456Z")
    assert pd.isna(frame["created_on"][2])
    assert frame["_etag"].tolist() == ['W/"2"', 'W/"1"', 'W/"3"']


def test_upsert_updates_by_id_and_delete_counts_existing_rows(tmp_path):
    with Mirror(tmp_path / "m.sqlite") as mirror:
        mirror.ensure_table(LAYOUT)
        mirror.upsert("lead", sample())
        change = pd.DataFrame({"lead_id": ["a", "a"], "email": ["old@x.com", "new@x.com"]})
        assert mirror.upsert("lead", change) == 1
        assert mirror.read_frame("lead", ["email"]).set_index("lead_id")["email"]["a"] == "new@x.com"
        assert mirror.delete("lead", ["a", "zz"]) == 1
        assert mirror.ids("lead") == {"b", "c"}


def test_set_values_updates_existing_rows_only(tmp_path):
    with Mirror(tmp_path / "m.sqlite") as mirror:
        mirror.ensure_table(LAYOUT)
        mirror.upsert("lead", sample(), generation=3)
        update = pd.DataFrame({"lead_id": ["A", "zz"], "employees": [99, 1], "sales_ready": [True, False]})
        assert mirror.set_values("lead", update) == 1
        frame = mirror.read_frame("lead", include_system=True).set_index("lead_id")
        assert frame.loc["a", "employees"] == 99 and bool(frame.loc["a", "sales_ready"]) is True
        assert frame.loc["a", "_etag"] == 'W/"2"' and "zz" not in frame.index
        assert mirror._query("SELECT DISTINCT _sync_gen AS g FROM t_lead") == [{"g": 3}]
        with pytest.raises(MirrorError, match="no column nope"):
            mirror.set_values("lead", pd.DataFrame({"lead_id": ["a"], "nope": [1]}))


def test_layout_changes_add_and_drop_columns(tmp_path):
    with Mirror(tmp_path / "m.sqlite") as mirror:
        mirror.ensure_table(LAYOUT)
        mirror.upsert("lead", sample())
        assert mirror.ensure_table(LAYOUT) is False
        wider = TableLayout("lead", "lead", "lead", "lead_id", {"email": "text", "country": "text"})
        assert mirror.ensure_table(wider) is True
        frame = mirror.read_frame("lead")
        assert list(frame.columns) == ["lead_id", "email", "country"]
        assert frame["email"].tolist() == [None, "b@x.com", "c@x.com"]
        with pytest.raises(MirrorError, match="no column employees"):
            mirror.read_frame("lead", ["employees"])


def test_an_older_file_is_migrated_and_keeps_its_data(tmp_path):
    path = tmp_path / "old.sqlite"
    old = Mirror.__new__(Mirror)  # build a version-1 file the way dvsync 0.1 wrote it
    old.path = path
    old._clock = Clock()
    old._lock = __import__("threading").RLock()
    old._depth = 0
    old._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    assert old.migrate(target=1) == 1
    old.ensure_table(LAYOUT)
    old.upsert("lead", sample(), generation=1)
    old.save_sync_state(
        SyncState("lead", mode="delta", delta_link="https://x/leads?$deltatoken=1", generation=1)
    )
    run_id = old.start_run("sync")
    old.close()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == 1
        assert raw.execute("SELECT name FROM sqlite_master WHERE name = 'audit'").fetchone() is None
    with Mirror(path) as mirror:
        assert mirror.schema_version == SCHEMA_VERSION
        assert mirror.sync_state("lead").delta_link == "https://x/leads?$deltatoken=1"
        assert mirror.count("lead") == 3
        assert mirror.run(run_id)["kind"] == "sync"
        mirror.record_audit(
            run_id, "lead", [{"record_id": "A", "column_name": "dvs_score", "outcome": "written"}]
        )
        assert mirror.audit(run_id)["record_id"].tolist() == ["a"]


def test_a_newer_file_is_refused(tmp_path):
    path = tmp_path / "new.sqlite"
    with sqlite3.connect(path) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(MirrorError, match="newer than this dvsync"):
        Mirror(path)


def test_wal_mode_and_transaction_rollback(tmp_path):
    with Mirror(tmp_path / "m.sqlite") as mirror:
        assert mirror._query("PRAGMA journal_mode")[0]["journal_mode"] == "wal"
        mirror.ensure_table(LAYOUT)
        with pytest.raises(RuntimeError), mirror.transaction():
            mirror.upsert("lead", sample())
            mirror.save_sync_state(SyncState("lead", next_link="page-2"))
            raise RuntimeError("crash inside the page")
        assert mirror.count("lead") == 0
        assert mirror.sync_state("lead").next_link is None


def test_runs_record_per_table_counters(tmp_path):
    with Mirror(tmp_path / "m.sqlite", clock=Clock()) as mirror:
        run_id = mirror.start_run("pipeline", jobs=["scoring"], dry_run=True)
        mirror.record_run_table(run_id, "lead", mode="delta", read=10, upserted=9, pages=1)
        mirror.record_run_table(run_id, "lead", written=4, failed=1, throttled=2)
        mirror.finish_run(run_id, "ok", stats={"note": "fine"})
        runs = mirror.runs()
        assert runs.loc[0, ["read", "written", "failed", "throttled"]].tolist() == [10, 4, 1, 2]
        assert runs.loc[0, "jobs"] == ["scoring"] and bool(runs.loc[0, "dry_run"]) is True
        assert mirror.run(run_id)["tables"][0]["mode"] == "delta"
        stale = mirror.start_run("sync")
        assert mirror.mark_abandoned_runs(alive=lambda pid: False) == [stale]
        assert mirror.run(stale)["outcome"] == "interrupted"
        with pytest.raises(MirrorError, match="no run 999"):
            mirror.run(999)


def test_results_keep_the_last_value_per_record_and_rewrite_only_what_changed(tmp_path):
    with Mirror(tmp_path / "m.sqlite", clock=Clock()) as mirror:
        first = mirror.start_run("pipeline")
        scores = pd.DataFrame({"score": [40, 70], "grade": ["C", "B"]}, index=["A", "b"])
        assert mirror.save_results(first, "lead", scores) == 4
        second = mirror.start_run("pipeline")
        # Same grade, a new score, lead b closed (no result any more): three values change.
        changed = mirror.save_results(
            second,
            "lead",
            pd.DataFrame({"lead_id": ["a"], "score": [90], "grade": ["C"]}),
            id_column="lead_id",
        )
        assert changed == 3  # a's score, b's score and grade removed
        latest = mirror.results("lead")
        assert latest.loc["a", "score"] == 90 and latest.loc["a", "grade"] == "C"
        assert list(latest.index) == ["a"]
        assert mirror.results("lead", run_id=second).to_dict() == {"score": {"a": 90}}
        # Comparing against the previous results held in memory gives the same answer.
        third = mirror.start_run("pipeline")
        same = pd.DataFrame({"score": [90], "grade": ["C"]}, index=["a"])
        assert mirror.save_results(third, "lead", same, previous=same) == 0
        assert mirror.results("lead", run_id=third).empty
        assert mirror.results("account").empty
        # The Spark engine sends back the changed records only: the others keep their values.
        mirror.save_results(third, "lead", pd.DataFrame({"score": [20]}, index=["c"]), partial=True)
        assert mirror.results("lead")["score"].to_dict() == {"a": 90, "c": 20}


@pytest.mark.parametrize("against", ["kept", "previous"])
def test_results_write_only_changed_values_from_arrow_backed_frames(tmp_path, against):
    """Ids and text on pyarrow strings, missing values as NaN, None and pd.NA: a value is written
    when it changed, appeared or went missing, never when it is the same; a dropped record loses it."""
    ids = pd.Index(["L1", "l2", "L3", "l4"], dtype="string[pyarrow]")
    first_frame = pd.DataFrame(
        {
            "score": [10.0, float("nan"), 30.0, 40.0],
            "grade": pd.array(["A", None, "C", "D"], dtype="string[pyarrow]"),
            "ready": pd.array([True, None, False, True], dtype="boolean"),
        },
        index=ids,
    )
    second_frame = pd.DataFrame(
        {
            # l1 same, l2 still missing, l3 changed, l5 new; l4 dropped (no result any more)
            "score": [10.0, float("nan"), 31.0, 50.0],
            "grade": pd.array(["A", pd.NA, None, "E"], dtype="string[pyarrow]"),
            "ready": pd.array([True, None, True, None], dtype="boolean"),
        },
        index=pd.Index(["l1", "L2", "l3", "L5"], dtype="string[pyarrow]"),
    )
    with Mirror(tmp_path / "m.sqlite", clock=Clock()) as mirror:
        first = mirror.start_run("pipeline")
        assert mirror.save_results(first, "lead", first_frame) == 12
        second = mirror.start_run("pipeline")
        previous = first_frame if against == "previous" else None
        # l3: score, grade (now missing), ready; l5: three new values; l4: three removed.
        assert mirror.save_results(second, "lead", second_frame, previous=previous) == 9
        written = mirror.results("lead", run_id=second)
        assert sorted(written.index) == ["l3", "l5"]
        latest = mirror.results("lead")
        assert sorted(latest.index) == ["l1", "l2", "l3", "l5"]
        assert latest.loc["l3", "score"] == 31.0 and pd.isna(latest.loc["l3", "grade"])
        assert latest.loc["l5", "grade"] == "E" and pd.isna(latest.loc["l5", "ready"])
        assert latest.loc["l1", "grade"] == "A" and pd.isna(latest.loc["l2", "score"])
        third = mirror.start_run("pipeline")
        again = second_frame if against == "previous" else None
        assert mirror.save_results(third, "lead", second_frame, previous=again) == 0


def test_plan_and_audit(tmp_path):
    with Mirror(tmp_path / "m.sqlite", clock=Clock()) as mirror:
        run_id = mirror.start_run("pipeline")
        plan = pd.DataFrame(
            {
                "table_name": ["lead", "lead"],
                "record_id": ["A", "b"],
                "column_name": ["dvs_leadscore", "dvs_leadscore"],
                "result": ["score", "score"],
                "old_value": [None, 10],
                "new_value": [55, 60],
            }
        )
        assert mirror.save_plan(run_id, plan) == 2
        assert mirror.mark_plan(run_id, "lead", [("a", "dvs_leadscore")], "written") == 1
        assert mirror.mark_plan(run_id, "lead", [("b", "dvs_leadscore")], "failed", error="412") == 1
        pending = mirror.plan(run_id, status="pending")
        assert pending.empty
        failed = mirror.plan(status=["failed"])
        assert failed.loc[0, ["record_id", "old_value", "new_value", "error", "attempts"]].tolist() == [
            "b",
            10,
            60,
            "412",
            1,
        ]
        mirror.record_audit(
            run_id,
            "lead",
            pd.DataFrame(
                {
                    "record_id": ["a", "b"],
                    "column_name": ["dvs_leadscore"] * 2,
                    "old_value": [None, 10],
                    "new_value": [55, 60],
                    "outcome": ["written", "failed"],
                    "error": [None, "412 Precondition Failed"],
                }
            ),
        )
        audit = mirror.audit(run_id, record_id="B")
        assert audit.loc[0, ["old_value", "new_value", "outcome"]].tolist() == [10, 60, "failed"]
        assert str(audit["at"].dtype) == "datetime64[ns, UTC]"


def test_read_entity_combines_the_activity_tables(tmp_path):
    with Mirror(tmp_path / "m.sqlite") as mirror:
        for name, extra in (("email", {"direction": "text"}), ("appointment", {})):
            layout = TableLayout(name, "activity", name, "activity_id", {"activity_type": "text", **extra})
            mirror.ensure_table(layout)
            mirror.upsert(name, pd.DataFrame({"activity_id": [f"{name}-1"], "activity_type": [name]}))
        frame = mirror.read_entity("activity", ["activity_type", "direction"])
        assert sorted(frame["activity_type"]) == ["appointment", "email"]
        assert "direction" in frame
        with pytest.raises(MirrorError, match="no mirrored table holds order"):
            mirror.read_entity("order")


def test_freshness(tmp_path):
    with Mirror(tmp_path / "m.sqlite", clock=Clock()) as mirror:
        mirror.ensure_table(LAYOUT)
        mirror.upsert("lead", sample())
        mirror.save_sync_state(SyncState("lead", mode="window", last_success="2026-01-05T09:00:00.000000Z"))
        fresh = mirror.freshness()
        assert fresh.loc[0, ["table", "rows", "mode", "unfinished"]].tolist() == ["lead", 3, "window", False]


def test_exclusive_lock_refuses_a_second_holder_and_is_released(tmp_path):
    import os
    import subprocess
    import sys

    path = tmp_path / "m.sqlite"
    with Mirror(path) as mirror:
        with mirror.exclusive("dvsync sync"):
            # Another process trying the same lock is refused with the holder's description.
            code = (
                "import sys; from jobs.service.mirror import Mirror, MirrorError\n"
                f"m = Mirror({str(path)!r})\n"
                "try:\n    m.exclusive().__enter__()\nexcept MirrorError as e:\n    print(e); sys.exit(3)\n"
            )
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
            assert done.returncode == 3, done.stderr
            assert f"holds it (pid {os.getpid()})" in done.stdout
        with mirror.exclusive():  # released: can be taken again
            pass


def test_a_file_that_is_not_a_mirror_is_a_clear_error(tmp_path):
    path = tmp_path / "m.sqlite"
    path.write_text("not a database " * 100)
    with pytest.raises(MirrorError, match=r"file is not a database\. Point mirror\.path"):
        Mirror(path)


def test_exclusive_and_the_pipeline_run_lock_exclude_each_other(tmp_path):
    from jobs.service import pipeline

    path = tmp_path / "m.sqlite"
    with Mirror(path) as mirror:
        run_lock = pipeline.RunLock(pipeline.lock_path_for(path))
        assert run_lock.acquire()
        try:
            with pytest.raises(MirrorError, match="busy"), mirror.exclusive("sync"):
                pass
        finally:
            run_lock.release()
        with mirror.exclusive("sync"):
            assert not pipeline.RunLock(pipeline.lock_path_for(path)).acquire()


def test_job_state_is_read_once_and_unpacks_only_the_parts_used_and_drops_an_older_format(
    tmp_path, monkeypatch
):
    import pickle
    import zlib

    from jobs.service.incremental import JobMemory
    from jobs.service.mirror import state

    with Mirror(tmp_path / "m.sqlite") as mirror:
        mirror.save_job_state("dupes", "fp1", 4, {"outcome": "kept", "caches": {"pairs": [1, 2]}})
        fingerprint, run_id, packed = mirror.job_state_packed("dupes")
        assert (fingerprint, run_id, sorted(packed)) == ("fp1", 4, ["caches", "outcome"])
        assert mirror.job_state("dupes")[2] == {"outcome": "kept", "caches": {"pairs": [1, 2]}}

        unpacked: list[bytes] = []
        real = state._unpack
        monkeypatch.setattr(state, "_unpack", lambda blob: unpacked.append(blob) or real(blob))
        queries: list[str] = []
        query = mirror._query
        monkeypatch.setattr(mirror, "_query", lambda sql, *a: queries.append(sql) or query(sql, *a))
        saved = JobMemory(mirror, run_id=5).saved("dupes")
        assert (saved.fingerprint, saved.run_id, unpacked) == ("fp1", 4, [])
        assert saved.outcome == "kept" and len(unpacked) == 1  # the caches are still packed
        assert saved.caches == {"pairs": [1, 2]} and len(unpacked) == 2
        assert len(queries) == 1  # the row was read once for all its parts
        monkeypatch.undo()

        # A row of the format before (one zlib blob) is not misread: the job recomputes.
        old = zlib.compress(pickle.dumps({"format": 1, "payload": {"outcome": "x"}}))
        with mirror.transaction() as db:
            db.execute("UPDATE job_state SET payload = ? WHERE job = 'dupes'", (old,))
        assert mirror.job_state("dupes") is None
        assert JobMemory(mirror, run_id=6).saved("dupes") is None


def test_results_naming_a_record_twice_are_refused(tmp_path):
    with Mirror(tmp_path / "m.sqlite", clock=Clock()) as mirror:
        run_id = mirror.start_run("pipeline")
        twice = pd.DataFrame({"score": [1, 2]}, index=["A", "a"])
        with pytest.raises(MirrorError, match="record a twice"):
            mirror.save_results(run_id, "lead", twice)
        once = pd.DataFrame({"score": [1]}, index=["a"])
        with pytest.raises(MirrorError, match="record a twice"):
            mirror.save_results(run_id, "lead", once, previous=twice)
        assert mirror.results("lead").empty


def test_job_state_reads_back_whatever_zlib_level_wrote_it(tmp_path):
    """Parts are stored uncompressed (faster than the bytes saved); parts compressed by an earlier
    version still unpack, and a payload that cannot be read is dropped."""
    import pickle
    import zlib

    from jobs.service.mirror.state import PAYLOAD_FORMAT

    payload = {"digests": pd.Series([1, 2] * 500, dtype="uint64"), "run": 3}
    with Mirror(tmp_path / "m.sqlite", clock=Clock()) as mirror:
        size = mirror.save_job_state("scoring", "fp1", 1, payload)
        fingerprint, run_id, back = mirror.job_state("scoring")
        assert (fingerprint, run_id, back["run"]) == ("fp1", 1, 3)
        assert back["digests"].equals(payload["digests"])
        parts = {k: zlib.compress(pickle.dumps(v, protocol=5), 1) for k, v in payload.items()}
        older = pickle.dumps({"format": PAYLOAD_FORMAT, "parts": parts}, protocol=5)
        assert len(older) < size  # level 1 was smaller, and slower
        with mirror.transaction() as db:
            db.execute("UPDATE job_state SET payload = ? WHERE job = 'scoring'", (older,))
        assert mirror.job_state("scoring")[2]["digests"].equals(payload["digests"])
        with mirror.transaction() as db:
            db.execute("UPDATE job_state SET payload = ? WHERE job = 'scoring'", (b"not a payload",))
        assert mirror.job_state("scoring") is None


def test_etags_by_lower_case_id_without_the_records_lacking_one(tmp_path):
    with Mirror(tmp_path / "m.sqlite", clock=Clock()) as mirror:
        mirror.ensure_table(LAYOUT)
        frame = pd.DataFrame({"lead_id": ["A1", "b2", "c3"], "_etag": ['W/"1"', None, ""]})
        mirror.upsert("lead", frame)
        assert mirror.etags("lead") == {"a1": 'W/"1"'}
