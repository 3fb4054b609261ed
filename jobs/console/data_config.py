"""The data behind the Configuration page: effective settings (secrets masked), the check, the schedule.

The check is :func:`jobs.service.check.check`, what ``dvsync check`` runs; it talks to Dynamics,
so it runs when the console starts and when an admin asks again, never on every page view.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from core.errors import ConfigError, DvsyncError
from jobs.console.context import ConsoleContext
from jobs.service.check import check
from jobs.service.connect import connect
from jobs.service.schedule import next_runs
from jobs.service.settings import Settings

__all__ = ["MASK", "CheckRunner", "configuration", "masked_settings"]

log = logging.getLogger(__name__)

MASK = "********"


def masked_settings(settings: Settings) -> dict[str, Any]:
    """Every effective setting as JSON; a secret shows as ``********`` when set, never its value."""
    data = settings.model_dump(mode="json")
    for section, values in data.items():
        if not isinstance(values, dict):
            continue
        model = getattr(settings, section)
        for key in list(values):
            raw = getattr(model, key, None)
            if type(raw).__name__ == "SecretStr" or key in (
                "client_secret",
                "certificate_passphrase",
                "token",
            ):
                values[key] = MASK if raw is not None else None
    return data


class CheckRunner:
    """Runs ``dvsync check`` and keeps the last report (one at a time)."""

    def __init__(self, settings: Settings, *, client_factory: Callable[[Settings], Any] = connect) -> None:
        self.settings = settings
        self._client_factory = client_factory
        self._lock = threading.Lock()
        self.report: dict[str, Any] | None = None
        self.checked_at: str | None = None

    def run(self) -> dict[str, Any]:
        """Check now; returns the report (``ok``, ``problems``, ``tables``, ``to_provision``...)."""
        with self._lock:
            client = None
            setup: ConfigError | None = None
            try:
                client = self._client_factory(self.settings)
            except DvsyncError as exc:
                setup = exc if isinstance(exc, ConfigError) else ConfigError(str(exc), key="auth")
            try:
                report = check(self.settings, client)
                if setup is not None:
                    report.problems.insert(0, setup)
                self.report = report.as_dict()
            except DvsyncError as exc:
                self.report = {
                    "ok": False,
                    "problems": [{"text": str(exc)}],
                    "tables": [],
                    "to_provision": [],
                }
            finally:
                if client is not None:
                    client.close()
            self.checked_at = datetime.now(UTC).isoformat(timespec="seconds")
            log.info("console: check %s", "passed" if self.report.get("ok") else "found problems")
            return self.report

    def start(self) -> threading.Thread:
        """Check in the background (at start-up)."""
        thread = threading.Thread(target=self.run, name="console-check", daemon=True)
        thread.start()
        return thread


def configuration(ctx: ConsoleContext, checker: CheckRunner | None) -> dict[str, Any]:
    """Settings, the last check and the schedule with its next runs."""
    schedule = ctx.settings.schedule
    upcoming = {r.name: r.at.isoformat() for r in next_runs(schedule, datetime.now(UTC))}
    return {
        "settings": masked_settings(ctx.settings),
        "check": checker.report if checker else None,
        "checked_at": checker.checked_at if checker else None,
        "schedule": {
            "timezone": schedule.timezone,
            "sets": [
                {"set": name, "cron": s.cron, "jobs": list(s.jobs), "next": upcoming.get(name)}
                for name, s in schedule.sets.items()
            ],
        },
        "mappings": sorted(ctx.mappings.tables),
    }
