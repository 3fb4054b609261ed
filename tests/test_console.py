"""The console's security and pages without a browser: sign-in, sessions, CSRF, headers, secrets.

Requests go to :meth:`ConsoleApp.handle` (the same code the HTTP server calls) over an empty
mirror, or over real HTTP where the socket matters. The browser tests are in
test_console_browser.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from core.errors import ConfigError
from jobs.cli.walkthrough import MAPPINGS_DIR
from jobs.console.actions import ActionRunner, read_action_log
from jobs.console.app import start_console
from jobs.console.auth import FLOW_COOKIE, SESSION_COOKIE, EntraSignIn
from jobs.console.context import ConsoleContext
from jobs.console.data_config import CheckRunner
from jobs.console.server import CSP, ConsoleApp, Request, Response
from jobs.service.mapping import load_mappings
from jobs.service.mirror import Mirror
from jobs.service.settings_load import load_settings

SECRET = "very-secret-bearer-token-value"
URL = "http://127.0.0.1:8766"
PAGES = ["/", "/runs", "/runs/confirm", "/leads", "/duplicates", "/customers", "/config"]


def _settings(tmp_path: Path, console: str = "", env: dict[str, str] | None = None) -> Any:
    config = tmp_path / "config.toml"
    config.write_text(
        "\n".join(
            [
                "[dataverse]",
                'url = "http://127.0.0.1:9"',
                "[auth]",
                'mode = "token"',
                "[mirror]",
                f'path = "{(tmp_path / "mirror.sqlite").as_posix()}"',
                "[mappings]",
                f'dir = "{MAPPINGS_DIR.as_posix()}"',
                "[console]",
                console,
                "",
            ]
        ),
        encoding="utf-8",
    )
    return load_settings(config, env={"DVSYNC__AUTH__TOKEN": SECRET, **(env or {})})


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _unreachable(settings: Any) -> Any:
    raise ConfigError("no Dataverse in these tests", key="dataverse.url")


@pytest.fixture
def site(tmp_path: Path) -> Any:
    settings = _settings(tmp_path)
    mappings = load_mappings(settings.mappings.dir, prefix="dvs")
    mirror = Mirror(settings.mirror.path)
    clock = _Clock()
    app = ConsoleApp(
        ConsoleContext(settings, mappings, mirror),
        URL,
        actions=ActionRunner(settings, mappings, client_factory=_unreachable),
        checker=CheckRunner(settings, client_factory=_unreachable),
        token="the-admin-token-for-tests",
        clock=clock,
    )
    app.clock = clock
    yield app
    app.actions.wait(30)
    mirror.close()


def _request(method: str, path: str, **kw: Any) -> Request:
    headers = {"host": "127.0.0.1:8766", **kw.pop("headers", {})}
    return Request(method, path, headers=headers, **kw)


def _cookie(response: Response) -> str:
    return response.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]


def _sign_in(app: ConsoleApp) -> tuple[str, str]:
    """Sign in with the token; returns (session cookie, CSRF token)."""
    response = app.handle(
        _request(
            "POST",
            "/login",
            form={"token": app.token},
            headers={"origin": URL, "sec-fetch-site": "same-origin"},
        )
    )
    assert response.status == 303 and response.headers["Location"] == "/"
    sid = _cookie(response)
    return sid, app.sessions.get(sid).csrf


def test_every_response_carries_the_security_headers(site):
    for path in ["/", "/login", "/static/console.css", "/api/leads", "/no-such-page"]:
        response = site.handle(_request("GET", path))
        assert response.headers["Content-Security-Policy"] == CSP
        assert "script-src" not in CSP and "'unsafe-inline'" not in CSP and "frame-ancestors 'none'" in CSP
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store" or path.startswith("/static/")


def test_without_sign_in_pages_send_to_the_sign_in_page_and_the_api_refuses(site):
    assert site.handle(_request("GET", "/leads")).headers["Location"] == "/login"
    api = site.handle(_request("GET", "/api/leads"))
    assert api.status == 401 and json.loads(api.body) == {"error": "sign in first"}
    post = site.handle(_request("POST", "/actions/run", form={"confirm": "yes"}, headers={"origin": URL}))
    assert post.status == 401
    assert read_action_log(site.actions.state_dir) == []


def test_the_token_signs_in_and_a_wrong_one_does_not(site):
    wrong = site.handle(_request("POST", "/login", form={"token": "guess"}, headers={"origin": URL}))
    assert wrong.status == 401 and "Set-Cookie" not in wrong.headers
    sid, _ = _sign_in(site)
    assert (
        "HttpOnly"
        in site.handle(
            _request("POST", "/login", form={"token": site.token}, headers={"origin": URL})
        ).headers["Set-Cookie"]
    )
    for path in PAGES:
        response = site.handle(_request("GET", path, cookies={SESSION_COOKIE: sid}))
        assert response.status == 200, (path, response.body[:300])
        api = site.handle(
            _request("GET", "/api" + (path if path != "/" else "/overview"), cookies={SESSION_COOKIE: sid})
        )
        assert api.status == 200 and api.content_type == "application/json", path
    bearer = site.handle(_request("GET", "/api/runs", headers={"authorization": f"Bearer {site.token}"}))
    assert bearer.status == 200
    assert site.handle(_request("GET", "/api/runs", headers={"authorization": "Bearer nope"})).status == 401


def test_cookie_is_strict_and_sessions_expire_when_idle_and_after_their_lifetime(site):
    sid, _ = _sign_in(site)
    login = site.handle(_request("POST", "/login", form={"token": site.token}, headers={"origin": URL}))
    assert "SameSite=Strict" in login.headers["Set-Cookie"]
    site.clock.now += 29 * 60
    assert site.handle(_request("GET", "/", cookies={SESSION_COOKIE: sid})).status == 200
    site.clock.now += 31 * 60  # idle for 31 minutes
    assert (
        site.handle(_request("GET", "/", cookies={SESSION_COOKIE: sid})).headers.get("Location") == "/login"
    )
    sid, _ = _sign_in(site)
    for _ in range(17):  # busy all along, but 8.5 hours after sign-in
        site.clock.now += 29 * 60 + 60
        last = site.handle(_request("GET", "/", cookies={SESSION_COOKIE: sid}))
    assert last.headers.get("Location") == "/login"


def test_state_changes_need_post_the_csrf_token_and_our_own_origin(site):
    sid, csrf = _sign_in(site)
    cookies = {SESSION_COOKIE: sid}
    refused = [
        _request("POST", "/actions/dry-run", cookies=cookies, form={}, headers={"origin": URL}),
        _request(
            "POST", "/actions/dry-run", cookies=cookies, form={"csrf": "stale"}, headers={"origin": URL}
        ),
        _request(
            "POST",
            "/actions/dry-run",
            cookies=cookies,
            form={"csrf": csrf},
            headers={"origin": "https://evil.example"},
        ),
        _request(
            "POST",
            "/actions/dry-run",
            cookies=cookies,
            form={"csrf": csrf},
            headers={"sec-fetch-site": "cross-site"},
        ),
    ]
    for request in refused:
        assert site.handle(request).status == 403
    assert site.handle(_request("GET", "/actions/dry-run", cookies=cookies)).status == 404
    assert read_action_log(site.actions.state_dir) == []
    # A run that writes must be confirmed (the confirmation page shows what will change).
    unconfirmed = _request(
        "POST", "/actions/run", cookies=cookies, form={"csrf": csrf}, headers={"origin": URL}
    )
    assert site.handle(unconfirmed).status == 400
    ok = _request("POST", "/actions/dry-run", cookies=cookies, form={"csrf": csrf}, headers={"origin": URL})
    response = site.handle(ok)
    assert response.status == 303 and response.headers["Location"].startswith("/runs?started=")
    site.actions.wait(30)
    (entry,) = read_action_log(site.actions.state_dir)
    assert entry["action"] == "dry-run" and entry["user"] == "admin (token)"
    assert entry["state"] == "failed" and "no Dataverse in these tests" in entry["error"]


def test_another_host_name_is_refused(site):
    """A DNS-rebinding page reaching the loopback console under its own name gets nothing."""
    response = site.handle(_request("GET", "/", headers={"host": "attacker.example:8766"}))
    assert response.status == 421
    assert site.handle(_request("GET", "/login", headers={"host": "localhost:8766"})).status == 200


def test_no_secret_is_rendered(site):
    sid, _ = _sign_in(site)
    for path in ["/config", "/api/config"]:
        body = site.handle(_request("GET", path, cookies={SESSION_COOKIE: sid})).body.decode()
        assert SECRET not in body and site.token not in body
    settings = json.loads(site.handle(_request("GET", "/api/config", cookies={SESSION_COOKIE: sid})).body)
    assert settings["settings"]["auth"]["token"] == "********"
    # Even a message that quotes a secret (an error from below) is scrubbed on its way out.
    assert site.scrub(f"bearer {SECRET} refused".encode()) == b"bearer ******** refused"


def test_no_sign_in_is_only_allowed_on_loopback(tmp_path):
    with pytest.raises(ConfigError) as refused:
        _settings(tmp_path, 'host = "0.0.0.0"\nauth = "none"')
    assert "config.toml" in str(refused.value) and "must sign people in" in str(refused.value)
    settings = _settings(tmp_path, 'auth = "none"')
    with pytest.raises(ConfigError, match="must sign people in"):
        start_console(settings, host="0.0.0.0", port=0, run_check=False)
    with pytest.raises(ConfigError, match="who is allowed in"):
        _settings(tmp_path, 'auth = "entra"')


def test_loopback_without_sign_in_still_needs_csrf(tmp_path):
    settings = _settings(tmp_path, 'auth = "none"')
    console = start_console(settings, port=0, run_check=False, client_factory=_unreachable)
    try:
        browser = requests.Session()
        page = browser.get(console.url + "/")
        assert page.status_code == 200 and console.token is None
        assert browser.cookies.get(SESSION_COOKIE)
        refused = browser.post(console.url + "/actions/dry-run", data={}, headers={"Origin": console.url})
        assert refused.status_code == 403
        elsewhere = requests.post(console.url + "/actions/dry-run", data={"csrf": "x"})
        assert elsewhere.status_code == 401
    finally:
        console.stop()


class _FakeMsal:
    """The two MSAL calls the console makes, answering as Entra ID would."""

    def __init__(self, claims: dict[str, Any]) -> None:
        self.claims = claims

    def initiate_auth_code_flow(self, scopes: list[str], redirect_uri: str) -> dict[str, Any]:
        return {
            "state": "s1",
            "auth_uri": f"https://login.example/authorize?redirect_uri={redirect_uri}&state=s1",
        }

    def acquire_token_by_auth_code_flow(self, flow: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        assert params["state"] == flow["state"]
        return {"id_token_claims": self.claims}


@pytest.mark.parametrize(
    ("claims", "allowed"),
    [
        ({"preferred_username": "Admin@Contoso.com"}, True),
        ({"preferred_username": "someone@contoso.com", "groups": ["G-CRM-ADMINS"]}, True),
        ({"preferred_username": "someone@contoso.com", "groups": ["other"]}, False),
    ],
)
def test_entra_sign_in_lets_in_allowed_users_and_groups_only(tmp_path, claims, allowed):
    settings = _settings(
        tmp_path,
        'auth = "entra"\nhost = "0.0.0.0"\npublic_url = "https://dvsync.contoso.com"\n'
        'allowed_users = ["admin@contoso.com"]\nallowed_groups = ["g-crm-admins"]',
    )
    mappings = load_mappings(settings.mappings.dir, prefix="dvs")
    with Mirror(settings.mirror.path) as mirror:
        entra = EntraSignIn(settings, "https://dvsync.contoso.com/auth/callback", app=_FakeMsal(claims))
        app = ConsoleApp(
            ConsoleContext(settings, mappings, mirror),
            "https://dvsync.contoso.com",
            actions=ActionRunner(settings, mappings, client_factory=_unreachable),
            entra=entra,
        )
        host = {"host": "dvsync.contoso.com"}
        start = app.handle(_request("GET", "/auth/start", headers=host))
        assert start.status == 302 and start.headers["Location"].startswith("https://login.example/authorize")
        flow = {FLOW_COOKIE: start.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]}
        # The callback in another browser (a login-CSRF link) is refused even with a valid state.
        elsewhere = _request("GET", "/auth/callback", query={"state": "s1", "code": "c"}, headers=host)
        assert app.handle(elsewhere).status == 403
        assert (
            app.handle(
                _request("GET", "/auth/callback", query={"state": "forged", "code": "c"}, headers=host)
            ).status
            == 403
        )
        done = app.handle(
            _request("GET", "/auth/callback", query={"state": "s1", "code": "c"}, headers=host, cookies=flow)
        )
        if allowed:
            assert done.status == 303 and "Secure" in done.headers["Set-Cookie"]
            assert "Strict-Transport-Security" in done.headers
            page = app.handle(_request("GET", "/", headers=host, cookies={SESSION_COOKIE: _cookie(done)}))
            assert page.status == 200 and claims["preferred_username"].lower().encode() in page.body
        else:
            assert done.status == 403 and b"not allowed" in done.body


@pytest.mark.parametrize("command", [["console"], ["schedule", "--console"]])
def test_dvsync_console_prints_url_and_token_serves_and_stops_on_sigterm(tmp_path, command):
    _settings(tmp_path, "port = 0")
    env = {**os.environ, "DVSYNC__AUTH__TOKEN": SECRET}
    process = subprocess.Popen(
        [sys.executable, "-m", "jobs.cli.main", "--config", str(tmp_path / "config.toml"), *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        url = process.stdout.readline().strip().removeprefix("Console: ")
        token = process.stdout.readline().strip().rsplit(": ", 1)[1]
        assert url.startswith("http://127.0.0.1:") and len(token) >= 40
        assert requests.get(url + "/login", timeout=10).status_code == 200
        browser = requests.Session()
        browser.post(url + "/login", data={"token": token}, headers={"Origin": url}, timeout=10)
        assert browser.get(url + "/api/runs", timeout=10).json()["runs"] == []
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert SECRET not in out + err


def test_the_demo_serves_the_console_until_sigterm(tmp_path, monkeypatch, capsys):
    """``dvsync demo`` ends by serving the console over its mirror; SIGTERM (or Ctrl-C) stops it."""
    from jobs.cli import console as console_cli
    from jobs.cli import demo

    settings = _settings(tmp_path)
    seen: dict[str, Any] = {}
    announce = console_cli.announce

    def announce_then_stop(console: Any, out: Any = None) -> None:
        announce(console, out)
        seen["url"] = console.url
        seen["login"] = requests.get(console.url + "/login", timeout=10).status_code
        os.kill(os.getpid(), signal.SIGTERM)  # handled by the demo's stop_on_signals: a clean stop

    monkeypatch.setattr(console_cli, "announce", announce_then_stop)
    demo._serve_console(settings)
    printed = capsys.readouterr().out
    assert seen["login"] == 200
    assert f"Console: {seen['url']}" in printed and "Admin token" in printed and "Ctrl-C" in printed
    with pytest.raises(requests.ConnectionError):
        requests.get(seen["url"] + "/login", timeout=5)


def test_a_slow_rollback_comparison_answers_at_once_and_shows_when_ready(site, monkeypatch):
    from jobs.console import data_runs, pages

    mirror = site.ctx.mirror
    run_id = mirror.start_run("run", jobs=["scoring"])
    entry = {"record_id": "ID-1", "column_name": "dvs_leadscore", "old_value": 3, "new_value": 70}
    mirror.record_audit(run_id, "lead", [{**entry, "outcome": "written"}])
    mirror.finish_run(run_id, "ok")
    release = threading.Event()
    real = data_runs.rollback_preview

    def slow(ctx: Any, rid: int) -> dict[str, Any]:
        release.wait(30)
        return real(ctx, rid)

    monkeypatch.setattr(data_runs, "rollback_preview", slow)
    monkeypatch.setattr(pages, "PREVIEW_WAIT", 0.05)
    sid, _ = _sign_in(site)
    cookies = {SESSION_COOKIE: sid}
    pending = site.handle(_request("GET", f"/runs/{run_id}/rollback", cookies=cookies))
    assert pending.status == 200 and b"wrote 1 value(s)" in pending.body and b"reload" in pending.body
    assert b"/actions/rollback" not in pending.body
    release.set()
    for _ in range(100):
        ready = site.handle(_request("GET", f"/api/runs/{run_id}/rollback", cookies=cookies))
        if "counts" in json.loads(ready.body):
            break
        time.sleep(0.05)
    # The record is not in the mirror (no lead table), so the comparison refuses to restore it.
    assert json.loads(ready.body)["counts"] == {"restore": 0, "refuse": 1}
    page = site.handle(_request("GET", f"/runs/{run_id}/rollback", cookies=cookies))
    assert b"Will be refused (1)" in page.body
