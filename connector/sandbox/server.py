"""The sandbox's HTTP server and the :class:`Sandbox` context manager.

Python's ``ThreadingHTTPServer`` speaking HTTP/1.1 with keep-alive is enough here: one thread per
connection, SQLite reads in parallel (WAL), writes serialised by the store. It binds before
:meth:`Sandbox.start` returns, so a test can connect immediately, with no sleep and no race.

Every request passes, in order: the URL check (``/api/data/v9.x/``), the bearer token (401 with a
Dataverse-shaped body), the service-protection limits (429), fault injection, then the
:class:`~connector.sandbox.service.Service`.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import secrets
import socket
import sqlite3
import ssl
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote, urlsplit

from connector.sandbox import update_log
from connector.sandbox.config import SandboxConfig
from connector.sandbox.customizations import default_forms
from connector.sandbox.datalock import DataLock
from connector.sandbox.faults import ApiError, FaultInjector
from connector.sandbox.limits import RateLimiter
from connector.sandbox.protocol import API_PREFIX, Headers, Request, Response, error_response
from connector.sandbox.service import Service
from connector.sandbox.storage import SeedError, Store
from core.errors import ConfigError

__all__ = ["SIZES", "Sandbox"]

log = logging.getLogger("connector.sandbox")
access_log = logging.getLogger("connector.sandbox.access")

SIZES = ("small", "medium", "large")
_METHODS_WITH_BODY = {"POST", "PATCH", "PUT"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sandbox: Sandbox):
        self.sandbox = sandbox
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        super().__init__(address, _Handler)

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Hang up on kept-alive clients, so none is served after the sandbox stopped."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: object, client_address: object) -> None:
        # A client that hangs up or refuses the certificate is not a server bug: log it quietly.
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            log.debug("sandbox: connection from %s ended: %s", client_address, exc)
            return
        log.exception("sandbox: unexpected error on a connection from %s", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "dvsync-sandbox"

    def version_string(self) -> str:
        return self.server_version

    timeout = 120  # idle keep-alive connections are closed after this many seconds
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        access_log.debug("%s %s", self.address_string(), format % args)

    def handle(self) -> None:
        try:
            super().handle()
        finally:
            # One SQLite connection per connection thread: close it when the client goes away.
            self.server.sandbox.store.release()

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def _serve(self) -> None:
        sandbox = self.server.sandbox
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0:
            self.close_connection = True
            self._send(
                error_response(ApiError(400, "0x0", "Invalid Content-Length header.")), False, "anonymous"
            )
            return
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = self._read_chunked()
            if body is None:
                self.close_connection = True
                self._send(
                    error_response(ApiError(400, "0x0", "Malformed chunked request body.")),
                    False,
                    "anonymous",
                )
                return
        else:
            body = self.rfile.read(length) if length > 0 else b""
        split = urlsplit(self.path)
        headers = Headers(list(self.headers.items()))
        user = "anonymous"
        started = None
        fault = None
        try:
            path = split.path
            if not path.startswith("/api/data/v9."):
                raise ApiError(404, "0x8006088a", f"Resource not found for the segment '{path.strip('/')}'.")
            _, _, rest = path.partition("/api/data/")
            version, _, resource = rest.partition("/")
            if version not in ("v9.0", "v9.1", "v9.2"):
                raise ApiError(404, "0x8006088a", f"Resource not found for the segment '{version}'.")
            user = sandbox._authenticate(headers.get("Authorization"))
            started = sandbox.limiter.admit(user)
            fault = sandbox.faults.next()
            if fault.delay:
                sandbox.config.sleep(fault.delay)
            if fault.kind == "drop":
                self._drop()
                return
            if fault.kind == "throttle":
                retry = str(sandbox.config.faults.retry_after)
                raise ApiError(
                    429,
                    "0x80072322",
                    f"Number of requests exceeded the limit of {sandbox.config.limits.requests} "
                    "over time window "
                    f"of {int(sandbox.config.limits.window_seconds)} seconds.",
                    {"Retry-After": retry},
                )
            if fault.kind == "unavailable":
                raise ApiError(
                    503, "0x80040216", "The service is temporarily unavailable. Please try again later."
                )
            scheme = "https" if sandbox.tls else "http"
            host = self.headers.get("Host") or f"{sandbox.host}:{sandbox.port}"
            request = Request(
                self.command, unquote(resource), split.query, headers, body, f"{scheme}://{host}"
            )
            response = sandbox.service.handle(request)
        except ApiError as exc:
            response = error_response(exc)
            if exc.status == 401:
                response.headers.append(
                    (
                        "WWW-Authenticate",
                        "Bearer authorization_uri=https://login.microsoftonline.com/common/oauth2/authorize",
                    )
                )
        finally:
            if started is not None:
                sandbox.limiter.release(user, started)
        self._send(response, truncate=fault is not None and fault.kind == "truncate", user=user)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Answer protocol-level failures (bad request line, unknown method) in Dataverse's shape too."""
        self.close_connection = True
        text = message or self.responses.get(code, ("Error",))[0]
        with contextlib.suppress(OSError):
            self._send(error_response(ApiError(code, "0x0", f"{text}.")), False, "anonymous")

    def _read_chunked(self) -> bytes | None:
        """Read a ``Transfer-Encoding: chunked`` body (clients streaming a generator send one)."""
        chunks = []
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                return None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _send(self, response: Response, truncate: bool, user: str) -> None:
        sandbox = self.server.sandbox
        self.send_response(response.status)
        names = {name.lower() for name, _ in response.headers}
        for name, value in response.headers:
            self.send_header(name, value)
        if "req_id" not in names:
            self.send_header("REQ_ID", str(uuid.uuid4()))
        if "odata-version" not in names:
            self.send_header("OData-Version", "4.0")
        left, ms_left = sandbox.limiter.remaining(user)
        self.send_header("x-ms-ratelimit-burst-remaining-xrm-requests", str(left))
        self.send_header("x-ms-ratelimit-time-remaining-xrm-requests", f"{ms_left:.2f}")
        self.send_header("x-ms-service-request-id", str(uuid.uuid4()))
        self.send_header("x-ms-dop-hint", str(sandbox.config.dop_hint))
        self.send_header("Content-Length", str(len(response.body)))
        if truncate:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD" or response.status in (204, 304):
            return
        if truncate:
            # Fault: promise the whole body, send half of it, and hang up.
            self.wfile.write(response.body[: len(response.body) // 2])
            self.wfile.flush()
            self._drop()
            return
        self.wfile.write(response.body)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class Sandbox:
    """A Dataverse-compatible Web API on loopback, serving from a data directory (a context manager).

    Args:
        data_dir: where ``sandbox.sqlite`` lives; seeded when new, reused when it exists.
        size: seed size for a new data dir: ``small``, ``medium`` or ``large``.
        seed: random seed for the generator (same seed, same data).
        token: the bearer token to accept; a random one is generated when None.
        host: the address to bind (loopback unless told otherwise).
        port: the port to bind; 0 picks a free one.
        tls: serve https with a self-signed certificate (see :attr:`ca_bundle`).
        config: limits, faults, change-tracking settings and clock.

    Attributes:
        url: environment URL, e.g. ``http://127.0.0.1:54321`` (no trailing slash).
        api_url: ``<url>/api/data/v9.2/``.
        token: the accepted bearer token.
        data_dir, ground_truth_dir: where the state and the seed's ground truth are.
        ca_bundle: with ``tls``, the certificate file to trust.
    """

    def __init__(
        self,
        data_dir: str | Path,
        *,
        size: str = "small",
        seed: int = 0,
        token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: bool = False,
        config: SandboxConfig | None = None,
    ):
        if size not in SIZES:
            raise ConfigError(f"unknown sandbox size {size!r}", hint=f"use one of {', '.join(SIZES)}")
        if not 0 <= port <= 65535:
            raise ConfigError(f"port {port} is not a TCP port", hint="use 1-65535, or 0 for any free port")
        self.data_dir = Path(data_dir)
        self._data_lock = DataLock(self.data_dir)
        self.ground_truth_dir = self.data_dir / "ground_truth"
        self.size = size
        self.seed = seed
        self.token = token or secrets.token_urlsafe(32)
        self.host = host
        self.port = port
        self.tls = tls
        self.config = config or SandboxConfig()
        self.ca_bundle: Path | None = None
        self.limiter = RateLimiter(self.config.limits, self.config.monotonic)
        self.faults = FaultInjector(self.config.faults)
        self.store = Store(self.data_dir, self.config.clock)
        self.service = Service(self.store, self.config)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.seeded_now = False

    def __repr__(self) -> str:
        # Never show the token.
        return f"Sandbox(url={getattr(self, 'url', None)!r}, data_dir={str(self.data_dir)!r})"

    @property
    def url(self) -> str:
        """The environment URL (no trailing slash)."""
        scheme = "https" if self.tls else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    @property
    def api_url(self) -> str:
        """The Web API service root, with trailing slash."""
        return self.url + API_PREFIX

    def _authenticate(self, header: str | None) -> str:
        if header and header[:7].lower() == "bearer ":
            given = header[7:].strip()
            if hmac.compare_digest(given.encode(), self.token.encode()):
                return "sandbox-user"
        raise ApiError(
            401,
            "0x80044302",
            "The request is not authenticated: send 'Authorization: Bearer <token>' with the "
            "token the sandbox printed.",
        )

    def prepare(self) -> None:
        """Seed the data dir if it is new, otherwise open it."""
        if self.store.exists():
            try:
                self.store.open(self.config.change_token_retention)
            except sqlite3.Error as exc:
                self.store.close()
                raise ConfigError(
                    f"{self.store.path} is not a sandbox database ({exc})",
                    hint="delete the data directory or point --data at another one",
                ) from exc
            return
        try:
            from connector.sandbox import seed as seed_module
        except ImportError as exc:  # the generator ships in the same package; this guards a broken install
            raise ConfigError(f"the sandbox seed generator is not available: {exc}") from exc
        if self.data_dir.exists() and not self.data_dir.is_dir():
            raise ConfigError(
                f"the sandbox data path {self.data_dir} is a file", hint="point --data at a directory"
            )
        try:
            data = seed_module.generate(self.size, self.seed, now=self.config.clock())
            self.store.create(
                {**default_forms(self.store.tables), **data.tables},
                {"size": self.size, "seed": str(self.seed)},
            )
        except SeedError as exc:
            raise ConfigError(f"the seed data does not fit the sandbox's tables: {exc}") from exc
        except OSError as exc:
            raise ConfigError(
                f"cannot write the sandbox data in {self.data_dir}: {exc.strerror or exc}",
                hint="choose a writable --data directory",
            ) from exc
        seed_module.write_ground_truth(data, self.ground_truth_dir)
        self.seeded_now = True

    def start(self) -> Sandbox:
        """Lock the data folder, prepare the data, bind the port and serve in a background thread."""
        self._data_lock.acquire()
        try:
            self.prepare()
            update_log.install(
                self.store.conn(), {t.logical_name: t.primary_id for t in self.store.tables.values()}
            )
        except BaseException:
            self._data_lock.release()
            raise
        try:
            server = _Server((self.host, self.port), self)
        except OSError as exc:
            self.store.close()
            self._data_lock.release()
            raise ConfigError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}",
                hint="choose another --port, or 0 for any free port",
            ) from exc
        self.port = server.server_address[1]
        if self.tls:
            from connector.sandbox.tls import ensure_certificate

            cert, key = ensure_certificate(self.data_dir / "tls", self.host)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            server.socket = context.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
            self.ca_bundle = cert
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.name = f"dvsync-sandbox-{self.port}"
        self._thread.start()
        log.info("sandbox serving %s from %s", self.api_url, self.data_dir)
        return self

    def stop(self) -> None:
        """Stop serving and close the database."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.close_connections()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.store.close()
        self._data_lock.release()

    def wait(self) -> None:
        """Block until the server stops (used by the CLI)."""
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
