"""Run the pipeline on cron schedules, in the foreground, as a service (systemd, container, Kubernetes).

``[schedule.sets.<name>]`` in the config gives a five-field cron expression (read in
``schedule.timezone``) and the jobs that set runs after its sync. The scheduler sleeps until the
next due time, runs the due sets as **one** run (the union of their jobs, e.g. the nightly set and
the half-hourly one at 02:00), and records it like any run. Occurrences missed while a run was
going are not replayed one by one: the next run picks everything up, since each run syncs what
changed.

Never two runs at once: each run holds :class:`jobs.service.pipeline.RunLock` (``fcntl.flock`` on a file
beside the mirror), which a manual ``dvsync run`` takes as well; when it is busy the scheduler
waits for it. On SIGTERM (or SIGINT) the current run finishes its page or chunk, is recorded as
interrupted, and the scheduler exits 0; whatever was left is picked up by the next run.

Clock and sleep are injectable so the tests never wait.
"""

from __future__ import annotations

import logging
import threading
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from croniter import croniter

from jobs.service.settings import KNOWN_JOBS, ScheduleSet, ScheduleSettings

__all__ = ["DueRun", "Scheduler", "due_sets", "next_runs"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DueRun:
    """The next occurrence of a schedule set."""

    name: str
    at: datetime
    jobs: tuple[str, ...]
    cron: str


def next_runs(schedule: ScheduleSettings, after: datetime) -> list[DueRun]:
    """Each set's next occurrence strictly after ``after`` (aware), soonest first."""
    zone = zoneinfo.ZoneInfo(schedule.timezone)
    local = after.astimezone(zone)
    runs = []
    for name, spec in schedule.sets.items():
        at = croniter(spec.cron, local).get_next(datetime)
        runs.append(DueRun(name, at.astimezone(UTC), tuple(spec.jobs), spec.cron))
    return sorted(runs, key=lambda r: (r.at, r.name))


def due_sets(sets: Mapping[str, ScheduleSet], names: list[str]) -> list[str]:
    """The union of the jobs of the named sets, in the canonical job order."""
    wanted = {j for n in names for j in sets[n].jobs}
    return [j for j in KNOWN_JOBS if j in wanted]


class Scheduler:
    """The foreground scheduling loop.

    Args:
        schedule: the ``[schedule]`` settings.
        run: called with ``(jobs, trigger, stop)`` for each due run; it takes the run lock itself
            and returns when the run is over.
        clock: the current aware time.
        sleep: waits up to the given seconds; returns True when woken by a stop request. The
            default waits on the stop event, so SIGTERM ends the wait at once.
        stop: set by the signal handler (or a test) to end the loop.
    """

    def __init__(
        self,
        schedule: ScheduleSettings,
        run: Callable[[list[str], str, threading.Event], object],
        *,
        clock: Callable[[], datetime] | None = None,
        sleep: Callable[[float], bool] | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.schedule = schedule
        self.run = run
        self.clock = clock or (lambda: datetime.now(UTC))
        self.stop = stop or threading.Event()
        self.sleep = sleep or self.stop.wait
        self.runs_started = 0

    def loop(self, *, max_runs: int | None = None) -> int:
        """Run until stopped (or ``max_runs`` runs); returns how many runs were started."""
        if not self.schedule.sets:
            log.warning("no schedule sets are configured; nothing to do")
            return 0
        cursor = self.clock()
        while not self.stop.is_set():
            upcoming = next_runs(self.schedule, cursor)
            when = upcoming[0].at
            due = [r.name for r in upcoming if r.at == when]
            log.info("next run at %s: %s", when.isoformat(), ", ".join(due))
            while not self.stop.is_set():
                remaining = (when - self.clock()).total_seconds()
                if remaining <= 0:
                    break
                # Wake at least every minute: a suspended laptop or a clock change is noticed.
                if self.sleep(min(remaining, 60.0)):
                    break
            if self.stop.is_set():
                break
            jobs = due_sets(self.schedule.sets, due)
            trigger = "schedule:" + "+".join(due)
            self.runs_started += 1
            try:
                self.run(jobs, trigger, self.stop)
            except Exception as exc:  # one failed run must not end the service; it is recorded
                log.error("scheduled run (%s) failed: %s", trigger, exc)
            # Occurrences that fell during the run are folded into the next one.
            cursor = max(when, self.clock())
            if max_runs is not None and self.runs_started >= max_runs:
                break
        log.info("scheduler stopped after %d run(s)", self.runs_started)
        return self.runs_started
