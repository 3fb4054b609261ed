"""The admin console in a real headless browser (Debian's chromium driven by Playwright).

One session-scoped console serves a mirror filled by one sandbox run (small seed, every job), so
the whole file costs one run. Each page is opened as an admin would: signed in with the one-time
token, every chart drawn, no error in the browser's console (a CSP violation is one), and a
screenshot saved under ``test-artefacts/console/`` (not committed). The actions are clicked
through: a dry run, a run that writes, and the rollback of that run, each checked in the mirror's
run history and audit and in the console's own action log.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pipeline_support import (  # noqa: F401 - fixtures
    TOKEN,
    _copy_data,
    patch,
    provisioned_template,
    read_columns,
    settings_for,
    write_config,
)
from playwright import sync_api as playwright_sync

from connector.sandbox import Sandbox
from jobs.console.actions import read_action_log
from jobs.console.app import RunningConsole, start_console
from jobs.service.connect import connect
from jobs.service.mapping import load_mappings
from jobs.service.mirror import Mirror
from jobs.service.pipeline import run_pipeline

CHROMIUM = Path("/usr/bin/chromium")
ARTEFACTS = Path(__file__).resolve().parents[1] / "test-artefacts" / "console"
SCORE = "dvs_leadscore"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "console"
# (path, title, charts at least, name of the screenshot)
PAGES = [
    ("/", "Overview", 2, "overview"),
    ("/runs", "Runs", 0, "runs"),
    ("/runs/1", "Run #1", 0, "run"),
    ("/runs/1/plan", "Plan of run #1", 0, "plan"),
    ("/runs/1/rollback", "Roll back run #1?", 0, "rollback"),
    ("/leads", "Leads", 6, "leads"),
    ("/duplicates", "Duplicates", 1, "duplicates"),
    ("/customers", "Customers", 6, "customers"),
    ("/config", "Configuration", 0, "config"),
]


def _shoot(page: Any, name: str, *, docs: bool = True) -> None:
    """A full-page screenshot into the test artefacts; with DVSYNC_DOCS_SCREENSHOTS=1 also the top
    of the page into docs/console/ (how the pictures in docs/console.md are made)."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)
    if docs and os.environ.get("DVSYNC_DOCS_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        # Long tables of ids compress badly: their pictures show the first screen only (< 200 KB).
        tallest = 640 if name in ("plan", "rollback") else 1100
        height = min(int(page.evaluate("document.documentElement.scrollHeight")), tallest)
        clip = {"x": 0, "y": 0, "width": 1280, "height": height}
        page.screenshot(path=str(DOCS / f"{name}.png"), full_page=True, clip=clip)


@pytest.fixture(scope="session")
def console_site(
    provisioned_template: Path,  # noqa: F811 - the fixture imported above
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """A sandbox, a mirror filled by one run of every job, and a console over it (token sign-in)."""
    root = tmp_path_factory.mktemp("console")
    (root / "sandbox").mkdir()
    _copy_data(provisioned_template, root / "sandbox")
    sandbox = Sandbox(root / "sandbox", token=TOKEN).start()
    try:
        # The console's own runs score only, so the action tests stay quick; the fill runs everything.
        config = write_config(
            root / "site",
            sandbox,
            tables=None,
            extra='[jobs]\nenabled = ["scoring"]\n[console]\nport = 0\nacquisition_cost = {Web = 150.0}\n',
        )
        settings = settings_for(config, sandbox)
        mappings = load_mappings(settings.mappings.dir, prefix="dvs")
        with connect(settings) as client, Mirror(settings.mirror.path) as mirror:
            first = run_pipeline(
                client, mirror, mappings, settings, jobs=["scoring", "duplicates", "rfm", "clv"]
            )
        assert first.ok, first.error
        console = start_console(settings, mappings=mappings)
        try:
            yield {"console": console, "sandbox": sandbox, "settings": settings}
        finally:
            console.stop()
    finally:
        sandbox.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("chromium is not installed: `apt-get install -y chromium` (make test does it)")
    with playwright_sync.sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield chromium
        chromium.close()


class Admin:
    """A signed-in browser tab that records every console message and failed request."""

    def __init__(self, browser: Any, console: RunningConsole) -> None:
        self.console = console
        self.context = browser.new_context(viewport={"width": 1280, "height": 860})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on(
            "console", lambda m: self.errors.append(m.text) if m.type in ("error", "warning") else None
        )
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url}"))

    def sign_in(self) -> Admin:
        self.page.goto(self.console.url + "/")
        assert self.page.url.endswith("/login")
        self.page.fill("input[name=token]", self.console.token or "")
        self.page.click("button[type=submit]")
        self.page.wait_for_url(self.console.url + "/")
        return self

    def open(self, path: str) -> Any:
        response = self.page.goto(self.console.url + path)
        assert response is not None and response.status == 200, f"{path}: {response and response.status}"
        return response

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def admin(browser: Any, console_site: dict[str, Any]) -> Iterator[Admin]:
    tab = Admin(browser, console_site["console"]).sign_in()
    yield tab
    tab.close()


def test_every_page_renders_with_its_charts_and_no_browser_errors(admin, console_site):
    for path, title, charts, name in PAGES:
        response = admin.open(path)
        headers = response.headers
        assert (
            "script-src" not in headers["content-security-policy"]
            or "'unsafe-inline'" not in headers["content-security-policy"]
        )
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert admin.page.locator("h1").inner_text() == title
        drawn = admin.page.locator("svg.chart")
        assert drawn.count() >= charts, f"{path}: {drawn.count()} charts, expected {charts}"
        for i in range(drawn.count()):
            box = drawn.nth(i).bounding_box()
            assert box and box["width"] > 50 and box["height"] > 50, f"{path}: chart {i} not drawn"
        if charts:
            assert admin.page.locator("svg.chart .mark").count() > 0, f"{path}: charts without marks"
        _shoot(admin.page, name)
    # A duplicate group, opened from the list: its records side by side with per-field evidence.
    admin.open("/duplicates")
    admin.page.locator("table a[href^='/duplicates/lead/']").first.click()
    admin.page.wait_for_load_state()
    assert admin.page.locator("h1").inner_text().startswith("Duplicate group DUP-")
    assert admin.page.locator(".side .master").count() == 1
    assert admin.page.locator(".side .badge").count() > 0
    _shoot(admin.page, "duplicate-group")
    assert admin.errors == []


def test_the_pages_show_the_runs_data(admin, console_site):
    admin.open("/leads")
    text = admin.page.locator("main").inner_text()
    assert "Top open leads and why" in text and "AUC" in text
    assert admin.page.locator("svg[aria-label^='ROC curve']").count() == 1
    admin.open("/customers")
    assert "Champions" in admin.page.locator("main").inner_text()
    assert admin.page.locator("td", has_text="150").count() >= 1  # the Web source's acquisition cost
    admin.open("/config")
    body = admin.page.content()
    assert TOKEN not in body and "********" in body
    admin.open("/runs/1/plan?table=lead")
    rows = admin.page.locator("main table tbody tr")
    assert rows.count() > 10
    assert all(t == "lead" for t in rows.locator("td:first-child").all_inner_texts())
    with admin.page.expect_download() as download:
        admin.page.click("text=download these as CSV")
    csv_text = Path(download.value.path()).read_text(encoding="utf-8")
    assert csv_text.startswith("run_id,table_name,record_id,column_name") and ",lead," in csv_text
    assert ",account," not in csv_text


def _finish(console: RunningConsole) -> dict[str, Any]:
    console.actions.wait(300)
    return read_action_log(console.actions.state_dir, limit=1)[0]


def test_dry_run_run_and_rollback_are_clicked_through_and_audited(admin, console_site):
    console: RunningConsole = console_site["console"]
    sandbox: Sandbox = console_site["sandbox"]
    settings = console_site["settings"]
    # A salesperson overwrote three scores in Dynamics: the next run puts dvsync's back.
    scores = read_columns(sandbox, "leads", [SCORE])
    edited = sorted(rid for rid, v in scores.items() if v[SCORE] is not None)[:3]
    for rid in edited:
        patch(sandbox, "leads", rid, {SCORE: 1})

    admin.open("/")
    admin.page.click("text=Dry run now")
    dry = _finish(console)
    assert dry["state"] == "ok" and dry["action"] == "dry-run" and dry["user"] == "admin (token)"
    with Mirror(settings.mirror.path) as mirror:
        run = mirror.run(dry["run_id"])
        assert run["dry_run"] and run["stats"]["trigger"] == "console:admin (token)"
        assert mirror.audit(dry["run_id"]).empty  # a dry run writes nothing
    assert all(read_columns(sandbox, "leads", [SCORE])[rid][SCORE] == 1 for rid in edited)

    admin.open("/runs/confirm")
    assert admin.page.locator(f".notice a[href='/runs/{dry['run_id']}']").count() == 1
    assert admin.page.locator("td").all_inner_texts().count(SCORE) == 1  # the planned score column
    admin.page.click("text=Run now and write to Dynamics")
    wrote = _finish(console)
    assert wrote["state"] == "ok" and wrote["action"] == "run" and wrote["written"] >= 3
    after = read_columns(sandbox, "leads", [SCORE])
    assert all(after[rid][SCORE] != 1 for rid in edited)
    with Mirror(settings.mirror.path) as mirror:
        audit = mirror.audit(wrote["run_id"])
        assert set(edited) <= set(audit.loc[audit["outcome"] == "written", "record_id"])

    for _ in range(60):  # the comparison may still be running right after the run: reload
        admin.open(f"/runs/{wrote['run_id']}/rollback")
        if admin.page.locator("h2", has_text="Will be restored").count():
            break
        admin.page.wait_for_timeout(1000)
    restore_heading = admin.page.locator("h2", has_text="Will be restored").inner_text()
    _shoot(admin.page, "confirm-rollback", docs=False)
    admin.page.locator("button", has_text=f"Roll back run #{wrote['run_id']}").click()
    undone = _finish(console)
    assert (
        undone["state"] == "ok" and undone["action"] == "rollback" and undone["target_run"] == wrote["run_id"]
    )
    assert f"({undone['restored']:,})" in restore_heading
    assert all(read_columns(sandbox, "leads", [SCORE])[rid][SCORE] == 1 for rid in edited)
    with Mirror(settings.mirror.path) as mirror:
        rollback_run = mirror.run(undone["run_id"])
        assert rollback_run["kind"] == "rollback" and rollback_run["outcome"] == "ok"
        restored = mirror.audit(undone["run_id"])
        assert set(edited) <= set(restored.loc[restored["outcome"] == "restored", "record_id"])
    admin.open(f"/runs?started={undone['id']}")
    assert "rollback started by admin (token)" in admin.page.locator(".notice").inner_text()
    log_lines = [
        json.loads(x) for x in (console.actions.state_dir / "console-actions.jsonl").read_text().splitlines()
    ]
    assert [e["action"] for e in log_lines if e.get("state") == "started"][-3:] == [
        "dry-run",
        "run",
        "rollback",
    ]
    assert admin.errors == []


def test_without_sign_in_the_browser_gets_the_sign_in_page_and_the_api_refuses(browser, console_site):
    console: RunningConsole = console_site["console"]
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(console.url + "/leads")
        assert page.url.endswith("/login") and page.locator("input[name=token]").count() == 1
        page.fill("input[name=token]", "not-the-token")
        page.click("button[type=submit]")
        assert "not this console's token" in page.locator(".failed").inner_text()
        response = page.goto(console.url + "/api/leads")
        assert response is not None and response.status == 401
    finally:
        context.close()


def test_a_cross_site_form_post_is_refused(browser, console_site):
    """A page on another origin posting to the console (a signed-in admin's browser) changes nothing."""
    console: RunningConsole = console_site["console"]
    tab = Admin(browser, console).sign_in()
    try:
        before = len(read_action_log(console.actions.state_dir, limit=1000))
        evil = (
            f'<form method="post" action="{console.url}/actions/run"><input name="confirm" value="yes">'
            '<input name="csrf" value="guess"><button>win a prize</button></form>'
        )
        tab.page.route(
            "http://attacker.test/", lambda route: route.fulfill(body=evil, content_type="text/html")
        )
        tab.page.goto("http://attacker.test/")
        with tab.page.expect_navigation():
            tab.page.click("button")
        assert "cross-site request refused" in tab.page.content() or "sign in first" in tab.page.content()
        assert len(read_action_log(console.actions.state_dir, limit=1000)) == before
    finally:
        tab.close()
