"""The scheduler: cron sets in a time zone, merged due sets, clean stop, one run at a time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from jobs.service.pipeline import RunBusyError, RunLock
from jobs.service.schedule import Scheduler, next_runs
from jobs.service.settings import ScheduleSettings

ROOT = Path(__file__).resolve().parents[1]
SCHEDULE = ScheduleSettings(
    timezone="Europe/Berlin",
    sets={
        "frequent": {"cron": "*/15 * * * *", "jobs": ["scoring", "duplicates"]},
        "nightly": {"cron": "0 2 * * *", "jobs": ["clv", "rfm"]},
    },
)


class FakeTime:
    """A clock that only moves when the scheduler sleeps."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.slept: list[float] = []

    def clock(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> bool:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)
        return False


def test_next_runs_reads_cron_in_the_configured_time_zone():
    after = datetime(2026, 6, 1, 23, 50, tzinfo=UTC)  # 01:50 in Berlin (summer time)
    runs = next_runs(SCHEDULE, after)
    assert [(r.name, r.at) for r in runs] == [
        ("frequent", datetime(2026, 6, 2, 0, 0, tzinfo=UTC)),
        ("nightly", datetime(2026, 6, 2, 0, 0, tzinfo=UTC)),  # 02:00 Berlin
    ]


def test_scheduler_runs_due_sets_at_their_times_and_merges_those_due_together():
    time = FakeTime(datetime(2026, 6, 1, 23, 40, tzinfo=UTC))
    calls = []

    def run(jobs, trigger, stop):
        calls.append((time.now, jobs, trigger))
        time.now += timedelta(minutes=3)  # a run takes a while

    Scheduler(SCHEDULE, run, clock=time.clock, sleep=time.sleep).loop(max_runs=3)
    assert calls == [
        (datetime(2026, 6, 1, 23, 45, tzinfo=UTC), ["scoring", "duplicates"], "schedule:frequent"),
        (
            datetime(2026, 6, 2, 0, 0, tzinfo=UTC),
            ["scoring", "duplicates", "rfm", "clv"],
            "schedule:frequent+nightly",
        ),
        (datetime(2026, 6, 2, 0, 15, tzinfo=UTC), ["scoring", "duplicates"], "schedule:frequent"),
    ]
    assert max(time.slept) <= 60  # wakes at least once a minute


def test_a_run_that_overruns_the_next_slot_is_followed_by_one_run_not_a_backlog():
    time = FakeTime(datetime(2026, 6, 1, 10, 0, 30, tzinfo=UTC))
    calls = []

    def run(jobs, trigger, stop):
        calls.append(time.now)
        time.now += timedelta(minutes=40)  # misses two quarter-hour slots

    Scheduler(SCHEDULE, run, clock=time.clock, sleep=time.sleep).loop(max_runs=2)
    assert calls == [datetime(2026, 6, 1, 10, 15, tzinfo=UTC), datetime(2026, 6, 1, 11, 0, tzinfo=UTC)]


def test_a_failed_run_does_not_stop_the_service_and_a_stop_request_does():
    time = FakeTime(datetime(2026, 6, 1, 10, 0, tzinfo=UTC))
    stop = threading.Event()
    calls = []

    def run(jobs, trigger, stop_event):
        calls.append(time.now)
        if len(calls) == 1:
            raise RuntimeError("Dataverse was down")
        stop_event.set()  # SIGTERM arrives during the second run

    started = Scheduler(SCHEDULE, run, clock=time.clock, sleep=time.sleep, stop=stop).loop()
    assert started == 2 and len(calls) == 2


def test_stop_while_waiting_ends_the_loop_without_running():
    stop = threading.Event()

    def sleep(seconds: float) -> bool:
        stop.set()
        return True

    calls = []
    scheduler = Scheduler(
        SCHEDULE,
        lambda *a: calls.append(a),
        clock=lambda: datetime(2026, 6, 1, tzinfo=UTC),
        sleep=sleep,
        stop=stop,
    )
    assert scheduler.loop() == 0 and calls == []


def test_the_run_lock_is_exclusive_across_processes_and_released_when_the_holder_dies(tmp_path):
    path = tmp_path / "mirror.sqlite.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from jobs.service.pipeline import RunLock; l = RunLock(sys.argv[1]); "
            "assert l.acquire(); print('locked', flush=True); sys.stdin.read()",
            str(path),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        lock = RunLock(path)
        assert not lock.acquire()
        assert lock.holder() == holder.pid
        try:
            with RunLock(path):
                raise AssertionError("entered a held lock")
        except RunBusyError as exc:
            assert f"pid {holder.pid}" in str(exc)
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
        assert lock.acquire()  # the kernel released the dead holder's lock
        assert not RunLock(path).acquire()  # and one process's second opener is refused too
        lock.release()
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_dvsync_schedule_exits_cleanly_on_sigterm(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(
        '[dataverse]\nurl = "http://127.0.0.1:9"\n[auth]\nmode = "token"\n'
        f'[mirror]\npath = "{(tmp_path / "mirror.sqlite").as_posix()}"\n'
        f'[mappings]\ndir = "{(ROOT / "mappings").as_posix()}"\n'
        '[schedule.sets.hourly]\ncron = "0 * * * *"\njobs = ["rfm"]\n',
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DVSYNC__AUTH__TOKEN": "not-a-secret"}
    service = subprocess.Popen(
        [sys.executable, "-m", "jobs.cli.main", "--config", str(config), "schedule"],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        seen = []
        for line in service.stderr:
            seen.append(line)
            if "next run at" in line:
                break
        # No dry_run key and no --no-dry-run: the scheduled runs only plan, and the log says so.
        assert any("dry-run mode: scheduled runs plan and write nothing" in line for line in seen)
        service.send_signal(signal.SIGTERM)
        assert service.wait(timeout=20) == 0
        rest = service.stderr.read()
        assert "scheduler stopped after 0 run(s)" in rest and "Traceback" not in rest
    finally:
        service.kill()
        service.wait(timeout=10)
