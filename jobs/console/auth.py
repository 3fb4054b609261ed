"""Who may use the console: sessions, the one-time admin token, Entra ID sign-in, CSRF tokens.

* Sessions live in memory only (a restart signs everyone out). The cookie is ``HttpOnly``,
  ``SameSite=Strict`` (and ``Secure`` behind https); a session ends ``session_minutes`` after
  sign-in or ``idle_minutes`` after its last request, whichever comes first.
* ``auth = "token"``: a random token (32 bytes) is made when the console starts and printed once
  on its terminal; it is kept only in this process's memory and ends with it. Typing it on the
  sign-in page opens a session.
* ``auth = "entra"``: OAuth 2.0 authorization-code flow with PKCE through MSAL
  (``initiate_auth_code_flow`` / ``acquire_token_by_auth_code_flow``, which also checks the state
  and the ID token's nonce); the ID token's ``preferred_username`` must be in ``allowed_users``
  or one of its ``groups`` in ``allowed_groups``.
* ``auth = "none"`` (loopback only): every browser gets a session as "local admin" on its first
  request, still with a CSRF token, so a page on another site cannot post to the console.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jobs.service.settings import Settings

__all__ = ["FLOW_COOKIE", "SESSION_COOKIE", "EntraSignIn", "Session", "SessionStore", "SignInRefused"]

SESSION_COOKIE = "dvsync_session"
FLOW_COOKIE = "dvsync_signin"
"""Holds the state of an Entra sign-in started by this browser (SameSite=Lax: the callback is a
top-level navigation coming back from Microsoft)."""
_FLOW_TTL = 600.0
"""An Entra sign-in started and not finished within 10 minutes is forgotten."""


class SignInRefused(Exception):
    """Sign-in failed; the message is shown to the person signing in (no secret in it)."""


@dataclass
class Session:
    """A signed-in browser."""

    user: str
    created: float
    last_seen: float
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))


class SessionStore:
    """Sessions by id, with absolute and idle expiry.

    Args:
        lifetime: seconds from sign-in until the session ends.
        idle: seconds without a request until the session ends.
        clock: seconds (monotonic); injectable for tests.
    """

    def __init__(self, lifetime: float, idle: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.lifetime = lifetime
        self.idle = idle
        self.clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, user: str) -> tuple[str, Session]:
        """A new session for ``user``: (cookie value, session)."""
        now = self.clock()
        sid = secrets.token_urlsafe(32)
        session = Session(user=user, created=now, last_seen=now)
        with self._lock:
            self._prune(now)
            self._sessions[sid] = session
        return sid, session

    def get(self, sid: str | None) -> Session | None:
        """The live session for a cookie value (its idle timer restarts), or None."""
        if not sid:
            return None
        now = self.clock()
        with self._lock:
            session = self._sessions.get(sid)
            if session is None:
                return None
            if now - session.created > self.lifetime or now - session.last_seen > self.idle:
                del self._sessions[sid]
                return None
            session.last_seen = now
            return session

    def end(self, sid: str | None) -> None:
        """Sign out."""
        with self._lock:
            self._sessions.pop(sid or "", None)

    def _prune(self, now: float) -> None:
        dead = [
            k
            for k, s in self._sessions.items()
            if now - s.created > self.lifetime or now - s.last_seen > self.idle
        ]
        for key in dead:
            del self._sessions[key]


def same_secret(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison of two secrets (False when either is missing)."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


class EntraSignIn:
    """The authorization-code flow against the organisation's Entra ID.

    Args:
        settings: ``[console]`` (tenant, client, allowed users/groups, public URL) with ``[auth]``
            as the fallback for tenant, client id, client secret and authority host.
        redirect_uri: ``<console URL>/auth/callback`` (register it on the app registration).
        app: an MSAL ``ConfidentialClientApplication`` (made from the settings when None).
    """

    def __init__(self, settings: Settings, redirect_uri: str, *, app: Any | None = None) -> None:
        console = settings.console
        self.redirect_uri = redirect_uri
        self.allowed_users = {u.strip().lower() for u in console.allowed_users}
        self.allowed_groups = {g.strip().lower() for g in console.allowed_groups}
        self._flows: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        if app is None:
            import msal

            tenant = console.tenant_id or settings.auth.tenant_id
            client_id = console.client_id or settings.auth.client_id
            secret = console.client_secret or settings.auth.client_secret
            if not (tenant and client_id and secret):
                from core.errors import ConfigError

                raise ConfigError(
                    "Entra sign-in for the console needs a tenant, an app registration and its secret",
                    key="console.client_id",
                    hint="set [console] tenant_id and client_id (or [auth] ones) and "
                    "DVSYNC__CONSOLE__CLIENT_SECRET; register the redirect URI " + redirect_uri,
                )
            host = settings.auth.authority_host or "login.microsoftonline.com"
            app = msal.ConfidentialClientApplication(
                client_id, client_credential=secret.get_secret_value(), authority=f"https://{host}/{tenant}"
            )
        self.app = app

    def start(self) -> tuple[str, str]:
        """Begin a sign-in; returns the Microsoft URL to send the browser to, and the flow's state
        (kept in a cookie of the browser that started it, so no other browser can finish it)."""
        flow = self.app.initiate_auth_code_flow(scopes=[], redirect_uri=self.redirect_uri)
        now = time.monotonic()
        with self._lock:
            self._flows = {k: v for k, v in self._flows.items() if now - v[0] < _FLOW_TTL}
            self._flows[flow["state"]] = (now, flow)
        return str(flow["auth_uri"]), str(flow["state"])

    def finish(self, params: dict[str, str], started_here: str | None) -> str:
        """Complete the sign-in with the callback's query; returns the user, or raises SignInRefused.

        Args:
            params: the callback's query (code, state, or error).
            started_here: the state this browser's cookie holds from :meth:`start`.
        """
        if not same_secret(params.get("state"), started_here):
            raise SignInRefused("this sign-in was not started in this browser; sign in again")
        with self._lock:
            started = self._flows.pop(params.get("state", ""), None)
        if started is None:
            raise SignInRefused("this sign-in link has expired or was already used; sign in again")
        if "error" in params:
            raise SignInRefused(
                f"Entra ID refused the sign-in: {params.get('error_description') or params['error']}"
            )
        result = self.app.acquire_token_by_auth_code_flow(started[1], params)
        if "error" in result:
            raise SignInRefused(
                f"Entra ID refused the sign-in: {result.get('error_description') or result['error']}"
            )
        claims = result.get("id_token_claims") or {}
        user = str(claims.get("preferred_username") or claims.get("upn") or claims.get("email") or "").lower()
        groups = {str(g).lower() for g in claims.get("groups") or []}
        if not user:
            raise SignInRefused(
                "the ID token names no user; check the app registration's token configuration"
            )
        if user in self.allowed_users or groups & self.allowed_groups:
            return user
        raise SignInRefused(f"{user} is not allowed to use this console (ask an admin to add you)")
