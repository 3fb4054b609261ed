"""The console's HTTP side: routing, sign-in, CSRF, security headers, and the server thread.

Why the standard library's ``http.server`` and not a web framework: the console is a dozen GET
pages and four POST actions for one or two admins, served from the process that already runs
dvsync; ``ThreadingHTTPServer`` does that without a new dependency to keep patched, and the parts
a framework would add (sessions, CSRF, headers) are a few dozen lines here that the tests check.
It is not meant to face the internet directly: behind a TLS-terminating proxy, set
``console.public_url`` to the https URL.

Every response carries a Content-Security-Policy that allows no script at all (the pages have
none: charts are SVG drawn on the server), ``frame-ancestors 'none'``, ``nosniff``,
``Referrer-Policy: same-origin`` (``no-referrer`` would make browsers send ``Origin: null`` on
our own forms)
and ``no-store``. Every state change is a POST that must come with the session's CSRF token, from
this console's own origin (``Origin``/``Sec-Fetch-Site``), and the session cookie is
``SameSite=Strict``. The ``Host`` header must name the console, which stops DNS-rebinding pages
from reading a loopback console. Known secret values are scrubbed from every body sent, as a last
line of defence behind the masking of settings.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from core.errors import DvsyncError
from jobs.console import pages
from jobs.console.actions import ActionRunner
from jobs.console.auth import (
    FLOW_COOKIE,
    SESSION_COOKIE,
    EntraSignIn,
    Session,
    SessionStore,
    SignInRefused,
    same_secret,
)
from jobs.console.context import ConsoleContext
from jobs.console.data_config import CheckRunner
from jobs.service.mirror import MirrorError
from jobs.service.pipeline import RunBusyError
from jobs.service.settings_console import is_loopback

__all__ = ["ConsoleApp", "ConsoleServer", "Request", "Response"]

log = logging.getLogger(__name__)

CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
MAX_BODY = 64 * 1024
_RUN = re.compile(r"^/(api/)?runs/(\d+)(/plan|/plan\.csv|/rollback)?$")
_GROUP = re.compile(r"^/(api/)?duplicates/(lead|contact|account)/([A-Za-z0-9_-]{1,64})$")


@dataclass
class Request:
    """What the handler needs of one HTTP request."""

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    form: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)


@dataclass
class Response:
    """Status, body and headers to send."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def _html(text: str, status: int = 200) -> Response:
    return Response(status, text.encode("utf-8"))


def _json(data: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(data, default=str, indent=1).encode(), "application/json")


def _redirect(to: str, status: int = 303) -> Response:
    return Response(status, b"", headers={"Location": to})


class ConsoleApp:
    """The console's request handling, independent of the socket (tests call :meth:`handle`).

    Args:
        ctx: settings, mappings and the shared mirror.
        url: the console's own URL (its origin is the only one allowed to post).
        actions: starts dry runs, runs and rollbacks.
        checker: runs ``dvsync check``.
        entra: the Entra sign-in (``auth = "entra"``).
        token: the one-time admin token (``auth = "token"``); generated when None.
    """

    def __init__(
        self,
        ctx: ConsoleContext,
        url: str,
        *,
        actions: ActionRunner,
        checker: CheckRunner | None = None,
        entra: EntraSignIn | None = None,
        token: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        console = ctx.settings.console
        self.ctx = ctx
        self.url = url.rstrip("/")
        self.origin = "{0.scheme}://{0.netloc}".format(urlsplit(self.url))
        self.auth = console.auth
        self.actions = actions
        self.checker = checker
        self.entra = entra
        self.token = token or secrets.token_urlsafe(32) if console.auth == "token" else None
        self.sessions = SessionStore(console.session_minutes * 60.0, console.idle_minutes * 60.0, clock=clock)
        self.secure = self.url.startswith("https://")
        self._hosts = self._allowed_hosts()
        self._secrets = [s for s in self._secret_values() if len(s) >= 6]

    # ------------------------------------------------------------------ plumbing

    def _allowed_hosts(self) -> set[str]:
        own = urlsplit(self.url)
        hosts = {own.netloc.lower()}
        port = own.port
        if port is not None and (own.hostname and is_loopback(own.hostname)):
            hosts |= {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}
        bound = self.ctx.settings.console.host
        if port is not None and bound not in ("0.0.0.0", "::"):
            hosts.add(f"{bound}:{port}".lower())
        return hosts

    def _secret_values(self) -> list[str]:
        settings = self.ctx.settings
        values = [self.token or ""]
        for secret in (
            settings.auth.client_secret,
            settings.auth.certificate_passphrase,
            settings.auth.token,
            settings.console.client_secret,
        ):
            if secret is not None:
                values.append(secret.get_secret_value())
        return values

    def scrub(self, body: bytes) -> bytes:
        """Replace any known secret value that found its way into a body."""
        for value in self._secrets:
            body = body.replace(value.encode(), b"********")
        return body

    def allow_any_host(self) -> None:
        """Accept any Host header (binding to all interfaces without a public_url; see the log)."""
        self._hosts = set()

    def finish(self, request: Request, response: Response) -> Response:
        """Add the security headers and scrub the body."""
        if response.content_type.startswith(("text/html", "application/json", "text/csv")):
            response.body = self.scrub(response.body)
        headers = {
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "same-origin",
            "Cross-Origin-Opener-Policy": "same-origin",
            "Cross-Origin-Resource-Policy": "same-origin",
            "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
            "Cache-Control": "no-store",
        }
        if self.secure:
            headers["Strict-Transport-Security"] = "max-age=31536000"
        response.headers = {**headers, **response.headers}
        return response

    def _cookie(self, sid: str, *, clear: bool = False) -> str:
        parts = [f"{SESSION_COOKIE}={'' if clear else sid}", "Path=/", "HttpOnly", "SameSite=Strict"]
        if clear:
            parts.append("Max-Age=0")
        if self.secure:
            parts.append("Secure")
        return "; ".join(parts)

    def _same_origin(self, request: Request) -> bool:
        """A POST must come from a page of this console (browsers send Origin and Sec-Fetch-Site)."""
        site = request.headers.get("sec-fetch-site")
        if site and site not in ("same-origin", "none"):
            return False
        origin = request.headers.get("origin")
        return not (origin and origin.rstrip("/") != self.origin)

    # ------------------------------------------------------------------ entry

    def handle(self, request: Request) -> Response:
        """Route one request; never raises (errors become pages)."""
        started = time.perf_counter()
        try:
            response = self._route(request)
        except DvsyncError as exc:
            response = self._error(request, 404 if isinstance(exc, MirrorError) else 400, str(exc))
        except Exception:
            log.exception("console: %s %s failed", request.method, request.path)
            response = self._error(request, 500, "the console hit an internal error; its log has the details")
        log.debug(
            "console: %s %s -> %d in %.0f ms",
            request.method,
            request.path,
            response.status,
            (time.perf_counter() - started) * 1000,
        )
        return self.finish(request, response)

    def _error(self, request: Request, status: int, message: str) -> Response:
        if request.path.startswith("/api/"):
            return _json({"error": message}, status)
        return _html(pages.message_page(HTTPStatus(status).phrase, message), status)

    def _route(self, request: Request) -> Response:
        host = request.headers.get("host", "").lower()
        if self._hosts and host not in self._hosts:
            return self._error(request, 421, f"this console does not answer for host {host!r}")
        path = request.path
        if path == "/static/console.css" and request.method == "GET":
            css = resources.files("jobs.console").joinpath("static/console.css").read_bytes()
            return Response(200, css, "text/css; charset=utf-8", {"Cache-Control": "max-age=300"})
        if path in ("/login", "/auth/start", "/auth/callback"):
            return self._sign_in(request)
        session, new_sid = self._session(request)
        if session is None:
            if path.startswith("/api/") or request.method != "GET":
                return self._error(request, 401, "sign in first")
            return _redirect("/login")
        response = self._post(request, session) if request.method == "POST" else self._get(request, session)
        if new_sid:
            response.headers["Set-Cookie"] = self._cookie(new_sid)
        return response

    def _session(self, request: Request) -> tuple[Session | None, str | None]:
        session = self.sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is not None:
            return session, None
        if self.auth == "token":
            bearer = request.headers.get("authorization", "")
            api_get = request.path.startswith("/api/") and request.method == "GET"
            if api_get and bearer.startswith("Bearer ") and same_secret(bearer[7:].strip(), self.token):
                return Session(user="api (admin token)", created=0, last_seen=0, csrf=""), None
        if self.auth == "none" and request.method == "GET":
            sid, session = self.sessions.create("local admin")
            return session, sid
        return None, None

    # ------------------------------------------------------------------ sign-in

    def _sign_in(self, request: Request) -> Response:
        if self.auth == "none":
            return _redirect("/")
        if request.path == "/login" and request.method == "GET":
            return _html(pages.login_page(self.auth, error=None))
        if request.path == "/login" and request.method == "POST" and self.auth == "token":
            if not self._same_origin(request):
                return self._error(request, 403, "cross-site sign-in refused")
            if not same_secret(request.form.get("token", "").strip(), self.token):
                log.warning("console: a sign-in with a wrong token was refused")
                return _html(pages.login_page(self.auth, error="That is not this console's token."), 401)
            return self._signed_in("admin (token)")
        if request.path == "/auth/start" and self.entra is not None:
            uri, state = self.entra.start()
            response = _redirect(uri, 302)
            secure = "; Secure" if self.secure else ""
            response.headers["Set-Cookie"] = (
                f"{FLOW_COOKIE}={state}; Path=/auth; HttpOnly; SameSite=Lax; Max-Age=600{secure}"
            )
            return response
        if request.path == "/auth/callback" and self.entra is not None:
            try:
                user = self.entra.finish(request.query, request.cookies.get(FLOW_COOKIE))
            except SignInRefused as exc:
                log.warning("console: Entra sign-in refused: %s", exc)
                return _html(pages.login_page(self.auth, error=str(exc)), 403)
            return self._signed_in(user)
        return self._error(request, 404, "no such page")

    def _signed_in(self, user: str) -> Response:
        sid, _ = self.sessions.create(user)
        log.info("console: %s signed in", user)
        response = _redirect("/")
        response.headers["Set-Cookie"] = self._cookie(sid)
        return response

    # ------------------------------------------------------------------ pages

    def _get(self, request: Request, session: Session) -> Response:
        path, q = request.path, request.query
        view = pages.View(ctx=self.ctx, user=session.user, csrf=session.csrf, path=path, query=q)
        simple: dict[str, Callable[[pages.View], tuple[str, Any]]] = {
            "/": pages.overview,
            "/runs": pages.runs,
            "/runs/confirm": pages.confirm_run,
            "/leads": pages.leads,
            "/duplicates": pages.duplicates,
            "/customers": pages.customers,
        }
        if path == "/config" or path == "/api/config":
            html, data = pages.configuration(view, self.checker)
            return _json(data) if path.startswith("/api/") else _html(html)
        if path == "/api/actions":
            return _json({"actions": pages.action_log(view)})
        api = path.startswith("/api/")
        key = "/" + path[5:] if api else path
        key = "/" if key in ("/overview", "/") else key
        if key in simple:
            html, data = simple[key](view)
            return _json(data) if api else _html(html)
        match = _RUN.match(path)
        if match:
            run_id, tail = int(match.group(2)), match.group(3) or ""
            if tail == "/plan.csv":
                body, name = pages.plan_csv(view, run_id)
                return Response(
                    200,
                    body.encode(),
                    "text/csv; charset=utf-8",
                    {"Content-Disposition": f'attachment; filename="{name}"'},
                )
            renderer = {"": pages.run_detail, "/plan": pages.run_plan, "/rollback": pages.confirm_rollback}[
                tail
            ]
            html, data = renderer(view, run_id)
            return _json(data) if match.group(1) else _html(html)
        match = _GROUP.match(path)
        if match:
            html, data = pages.duplicate_group(view, match.group(2), match.group(3))
            if data is None:
                return self._error(request, 404, f"no duplicate group {match.group(3)} in {match.group(2)}")
            return _json(data) if match.group(1) else _html(html)
        return self._error(request, 404, f"no page at {path}")

    # ------------------------------------------------------------------ actions

    def _post(self, request: Request, session: Session) -> Response:
        if not self._same_origin(request):
            log.warning("console: cross-site POST to %s refused", request.path)
            return self._error(request, 403, "cross-site request refused")
        if not same_secret(request.form.get("csrf"), session.csrf):
            log.warning("console: POST to %s without a valid CSRF token refused", request.path)
            return self._error(request, 403, "the form's security token is missing or stale; reload the page")
        if request.path == "/logout":
            self.sessions.end(request.cookies.get(SESSION_COOKIE))
            response = _redirect("/login" if self.auth != "none" else "/")
            response.headers["Set-Cookie"] = self._cookie("", clear=True)
            return response
        if request.path == "/actions/check":
            if self.checker is None:
                return self._error(request, 404, "the check is not available here")
            self.checker.run()
            return _redirect("/config")
        action = {"/actions/dry-run": "dry-run", "/actions/run": "run", "/actions/rollback": "rollback"}.get(
            request.path
        )
        if action is None:
            return self._error(request, 404, f"no action at {request.path}")
        run_id = None
        if action == "rollback":
            text = request.form.get("run_id", "")
            if not text.isdigit():
                return self._error(request, 400, "which run? (run_id missing)")
            run_id = int(text)
        if action != "dry-run" and request.form.get("confirm") != "yes":
            return self._error(request, 400, "confirm first: the confirmation page shows what will change")
        try:
            action_id = self.actions.start(
                action, user=session.user, run_id=run_id, force=request.form.get("force") == "yes"
            )
        except RunBusyError as exc:
            return self._error(request, 409, str(exc))
        return _redirect(f"/runs?started={action_id}")


class _Handler(BaseHTTPRequestHandler):
    app: ConsoleApp
    server_version = "dvsync-console"
    sys_version = ""

    def _request(self, method: str) -> Request:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        form: dict[str, str] = {}
        if method == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                raise ValueError("request body too large")
            raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
            form = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        cookies: dict[str, str] = {}
        if self.headers.get("Cookie"):
            jar = SimpleCookie()
            try:
                jar.load(self.headers["Cookie"])
            except Exception:  # a malformed cookie header is treated as no cookie
                jar = SimpleCookie()
            cookies = {k: m.value for k, m in jar.items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        return Request(method, parts.path or "/", query, headers, form, cookies)

    def _serve(self, method: str) -> None:
        try:
            request = self._request(method)
        except ValueError as exc:
            self.send_error(413, str(exc))
            return
        response = self.app.handle(request)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(response.body)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def log_message(self, format: str, *args: Any) -> None:
        # Access lines at debug level: the query string never carries a secret, but keep it quiet.
        log.debug("console: %s %s", self.address_string(), format % args)


class ConsoleServer:
    """``ThreadingHTTPServer`` serving a :class:`ConsoleApp` (start in a thread, or serve forever)."""

    def __init__(self, host: str, port: int, app_factory: Callable[[int], ConsoleApp]) -> None:
        self.httpd = ThreadingHTTPServer((host, port), _Handler, bind_and_activate=True)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.app = app_factory(self.port)
        handler = type("ConsoleHandler", (_Handler,), {"app": self.app})
        self.httpd.RequestHandlerClass = handler
        self._thread: threading.Thread | None = None

    def start(self) -> ConsoleServer:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="console-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
