"""Start and stop the console: the shared mirror, the action runner, the check, sign-in, the server."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.errors import ConfigError
from jobs.console import pages
from jobs.console.actions import ActionRunner
from jobs.console.auth import EntraSignIn
from jobs.console.context import ConsoleContext
from jobs.console.data_config import CheckRunner
from jobs.console.server import ConsoleApp, ConsoleServer
from jobs.service.connect import connect
from jobs.service.mapping import MappingSet, load_mappings
from jobs.service.mirror import Mirror
from jobs.service.settings import Settings
from jobs.service.settings_console import is_loopback

__all__ = ["RunningConsole", "start_console"]

log = logging.getLogger(__name__)


WARM_EVERY = 2.0
"""Seconds between looks at the mirror for a new or finished run (then the slow pages are rebuilt)."""


def _keep_warm(ctx: ConsoleContext, stop: threading.Event) -> None:
    """Rebuild the slow pages' data in the background whenever the mirror records a run."""
    seen = None
    while not stop.is_set():
        try:
            version = ctx.version()
            if version != seen:
                pages.warm(ctx)
                seen = version
        except Exception:  # a page that cannot be built says why when it is opened; keep serving
            log.debug("console: warming the pages failed", exc_info=True)
        stop.wait(WARM_EVERY)


@dataclass
class RunningConsole:
    """A console serving in a background thread.

    Attributes:
        url: where to open it.
        token: the one-time admin token (``auth = "token"``), else None.
        server: the HTTP server; ``app`` its request handling.
    """

    url: str
    token: str | None
    server: ConsoleServer
    mirror: Mirror
    actions: ActionRunner

    @property
    def app(self) -> ConsoleApp:
        """The request handling (tests call it directly)."""
        return self.server.app

    def stop(self) -> None:
        """Stop serving, let a started action finish its chunk, close the mirror."""
        self.actions.stop.set()
        self.server.stop()
        self.actions.wait(60)
        self.mirror.close()


def start_console(
    settings: Settings,
    *,
    mappings: MappingSet | None = None,
    host: str | None = None,
    port: int | None = None,
    stop: threading.Event | None = None,
    client_factory: Callable[[Settings], Any] = connect,
    run_check: bool = True,
    entra_app: Any | None = None,
) -> RunningConsole:
    """Serve the console for ``settings`` until :meth:`RunningConsole.stop`.

    Args:
        settings: the settings; ``[console]`` says where to listen and how to sign in.
        mappings: the mapping set (loaded from ``mappings.dir`` when None).
        host, port: override ``console.host`` / ``console.port`` (the command line's options).
        stop: set on shutdown; a run started from the console ends after its current chunk.
        client_factory: opens Dataverse clients for actions and the check.
        run_check: run ``dvsync check`` in the background at start (the Configuration page).
        entra_app: an MSAL application for Entra sign-in (built from the settings when None).

    Raises:
        ConfigError: ``auth = "none"`` on a non-loopback address, or Entra settings missing.
        OSError: the port is taken.
    """
    if host is not None or port is not None:
        console = settings.console.model_copy(
            update={k: v for k, v in (("host", host), ("port", port)) if v is not None}
        )
        if console.auth == "none" and not is_loopback(console.host):
            raise ConfigError(
                f'auth = "none" on {console.host}: a console reachable from other machines '
                "must sign people in",
                key="console.auth",
                hint='use auth = "token" or "entra" in [console], or --host 127.0.0.1',
            )
        settings = settings.model_copy(update={"console": console})
    mappings = mappings or load_mappings(settings.mappings.dir, prefix=settings.writeback.publisher_prefix)
    mirror = Mirror(settings.mirror.path)
    try:
        mirror.mark_abandoned_runs()
        ctx = ConsoleContext(
            settings, mappings, mirror, started_at=datetime.now(UTC).isoformat(timespec="seconds")
        )
        actions = ActionRunner(settings, mappings, stop=stop, client_factory=client_factory)
        checker = CheckRunner(settings, client_factory=client_factory)
        console = settings.console

        def make_app(bound_port: int) -> ConsoleApp:
            url = console.url(bound_port)
            entra = None
            if console.auth == "entra":
                entra = EntraSignIn(settings, f"{url}/auth/callback", app=entra_app)
            app = ConsoleApp(ctx, url, actions=actions, checker=checker, entra=entra)
            if console.host in ("0.0.0.0", "::") and not console.public_url:
                # Reached by whatever name or address people use; only signed-in requests get in.
                log.warning(
                    "console: listening on all interfaces without console.public_url; any Host accepted"
                )
                app.allow_any_host()
            return app

        server = ConsoleServer(console.host, console.port, make_app)
    except BaseException:
        mirror.close()
        raise
    server.start()
    if run_check:
        checker.start()
    warmer = threading.Thread(target=_keep_warm, args=(ctx, actions.stop), name="console-warm", daemon=True)
    warmer.start()
    url = server.app.url
    log.info("console: serving %s (sign-in: %s)", url, settings.console.auth)
    return RunningConsole(url=url, token=server.app.token, server=server, mirror=mirror, actions=actions)
