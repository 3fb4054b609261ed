"""What an admin can start from the console: a dry run, a run, a rollback.

Each action calls the service function the CLI calls (:func:`run_pipeline`, :func:`rollback`),
under the same :class:`RunLock` (so it never overlaps ``dvsync run`` or the scheduler, in this
process or another), with its own mirror connection and Dataverse client, in a background thread
(a run takes minutes; the page shows it as running). What the service records is unchanged: the
run, its plan and every write are in the mirror's ``runs``/``writeback_plan``/``audit`` tables.
On top of that, who asked for what and when is appended to ``console-actions.jsonl`` beside the
mirror (the run's own stats carry ``trigger = "console:<user>"`` too).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import DvsyncError
from jobs.service.connect import connect
from jobs.service.mapping import MappingSet
from jobs.service.mirror import Mirror
from jobs.service.pipeline import RunBusyError, RunLock, lock_path_for, run_pipeline
from jobs.service.rollback import rollback
from jobs.service.settings import Settings

__all__ = ["ACTION_LOG", "ActionRunner", "read_action_log"]

log = logging.getLogger(__name__)

ACTION_LOG = "console-actions.jsonl"
ACTIONS = ("dry-run", "run", "rollback")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_action_log(state_dir: Path, *, limit: int = 50) -> list[dict[str, Any]]:
    """The newest console actions first, each with its final state (``started`` until it ends)."""
    path = state_dir / ACTION_LOG
    if not path.is_file():
        return []
    merged: dict[str, dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash; the others still count
        merged.setdefault(entry.get("id", ""), {}).update(entry)
    return list(reversed(list(merged.values())))[:limit]


class ActionRunner:
    """Starts console actions one at a time and records them.

    Args:
        settings: the settings (mirror path, write-back options).
        mappings: the mapping set.
        stop: set when the console shuts down; a running pipeline ends after its current chunk.
        client_factory: opens a Dataverse client (``connect`` by default; tests may pass another).
    """

    def __init__(
        self,
        settings: Settings,
        mappings: MappingSet,
        *,
        stop: threading.Event | None = None,
        client_factory: Callable[[Settings], Any] = connect,
    ) -> None:
        self.settings = settings
        self.mappings = mappings
        self.stop = stop or threading.Event()
        self._client_factory = client_factory
        mirror_path = Path(settings.mirror.path)
        self.state_dir = mirror_path.parent
        self._lock_path = lock_path_for(mirror_path)
        self._write = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self, action: str, *, user: str, run_id: int | None = None, force: bool = False) -> str:
        """Start ``action`` (``dry-run``, ``run``, ``rollback``) in the background; returns its id.

        Raises:
            RunBusyError: a run (from here, the CLI or the scheduler) holds the lock.
            ValueError: an unknown action or a rollback without a run id.
        """
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        if action == "rollback" and run_id is None:
            raise ValueError("a rollback needs the run to roll back")
        lock = RunLock(self._lock_path)
        if not lock.acquire():
            holder = lock.holder()
            raise RunBusyError(
                "another dvsync run is in progress"
                + (f" (pid {holder})" if holder else "")
                + "; try again when it ends"
            )
        action_id = uuid.uuid4().hex[:12]
        entry = {"id": action_id, "at": _now(), "user": user, "action": action, "state": "started"}
        if run_id is not None:
            entry["target_run"] = run_id
        if force:
            entry["force"] = True
        self._append(entry)
        log.info("console: %s started by %s%s", action, user, f" (run {run_id})" if run_id else "")
        thread = threading.Thread(
            target=self._execute,
            args=(lock, action_id, action, user, run_id, force),
            name=f"console-{action}",
            daemon=True,
        )
        self._threads.append(thread)
        thread.start()
        return action_id

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the started actions (tests, shutdown)."""
        for thread in list(self._threads):
            thread.join(timeout)

    def _execute(
        self, lock: RunLock, action_id: str, action: str, user: str, run_id: int | None, force: bool
    ) -> None:
        outcome: dict[str, Any] = {"id": action_id}
        try:
            with Mirror(self.settings.mirror.path) as mirror, self._client_factory(self.settings) as client:
                if action == "rollback":
                    result = rollback(
                        client, mirror, self.mappings, self.settings, int(run_id or 0), force=force
                    )
                    outcome.update(
                        state="ok" if result.ok else "failed",
                        run_id=result.run_id,
                        restored=result.restored,
                        refused=result.refused,
                        failed=result.failed,
                    )
                else:
                    result = run_pipeline(
                        client,
                        mirror,
                        self.mappings,
                        self.settings,
                        dry_run=action == "dry-run",
                        trigger=f"console:{user}",
                        stop=self.stop,
                    )
                    written = sum(t.get("written", 0) for t in result.tables.values())
                    outcome.update(
                        state=result.outcome, run_id=result.run_id, planned=len(result.plan), written=written
                    )
                    if result.error:
                        outcome["error"] = result.error
        except DvsyncError as exc:
            outcome.update(state="failed", error=str(exc))
        except Exception as exc:  # a bug must not kill the console; it is logged with its traceback
            log.exception("console: %s failed", action)
            outcome.update(state="failed", error=f"{type(exc).__name__}: {exc}")
        finally:
            lock.release()
            outcome["finished_at"] = _now()
            self._append(outcome)
            log.info("console: %s by %s ended %s", action, user, outcome.get("state"))

    def _append(self, entry: dict[str, Any]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        line = json.dumps(entry, default=str)
        with self._write, (self.state_dir / ACTION_LOG).open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
