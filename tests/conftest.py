"""Shared fixtures: a small seeded sandbox over real HTTP on loopback.

The seed is generated once into a template directory shared by the pytest-xdist workers and kept
for later runs while the code is unchanged (tests/shared_templates.py); each test that asks for
``sandbox`` gets its own copy of that SQLite file (so writes never leak between tests) and its own
server on a port the OS assigns. Start-up binds before returning: no sleeps, no races.

Under pytest-xdist (``make test`` runs ``-n`` workers with ``--dist loadgroup``) a test that uses a
module-scoped fixture is kept on one worker with the rest of its module, and so are the tests that
share one of the costly session fixtures in SESSION_GROUPS, so each is built once; tests marked
``xdist_group`` run together on one worker.

Fixtures:
    sandbox: a running :class:`connector.sandbox.Sandbox` (function scope, private copy).
    sandbox_factory: ``sandbox_factory(config=SandboxConfig(...), tls=False)`` for tests that need
        their own limits, faults, clock or change-tracking settings.
    sandbox_session: a ``requests.Session`` authorised for ``sandbox``, with Dataverse's headers.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from shared_templates import shared_template

from connector.sandbox import Sandbox, SandboxConfig

SANDBOX_TOKEN = "test-token-not-a-secret"
# The seed's "now": fixed so seeded dates and the tests that reason about them agree.
SEED_NOW = datetime(2026, 6, 1, tzinfo=UTC)


# Session fixtures too costly to build on every worker (a JVM; a filled console and a browser): the
# tests that use one share a worker.
SESSION_GROUPS = {"spark": "spark", "console_site": "browser", "browser": "browser"}


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Group tests for xdist by the costly fixtures they share (see the module docstring)."""
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None or item.get_closest_marker("xdist_group"):
            continue
        groups = sorted({SESSION_GROUPS[name] for name in info.names_closure if name in SESSION_GROUPS})
        if groups:
            item.add_marker(pytest.mark.xdist_group(groups[0]))
        elif any(defs[-1].scope == "module" for defs in info.name2fixturedefs.values() if defs):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


def pytest_collection_finish(session: pytest.Session) -> None:
    """Fail loudly, not slowly, when xdist's loadgroup silently ignores the groups (it does under
    pytest 9.2 with pytest-xdist 3.8: pytest-xdist issue 1386; pyproject.toml pins pytest below)."""
    if not getattr(session.config.option, "loadgroup", False):  # set on xdist workers only
        return
    lost = [i.nodeid for i in session.items if i.get_closest_marker("xdist_group") and "@" not in i.nodeid]
    if lost:
        raise pytest.UsageError(
            f"pytest-xdist --dist loadgroup ignored the xdist_group of {len(lost)} test(s), e.g. {lost[0]}: "
            "install the pytest version pyproject.toml's test extra allows (pip install -e '.[test]')"
        )


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Undo the logging set-up a CLI command under test leaves behind (a root handler, DEBUG levels):
    else a sandbox thread that logs between two tests writes past pytest's capture to the terminal."""
    names = ("", "urllib3", "msal", "connector.sandbox")
    levels = {name: logging.getLogger(name).level for name in names}
    handlers = list(logging.getLogger().handlers)
    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def _seed(directory: Path) -> None:
    config = SandboxConfig(clock=lambda: SEED_NOW)
    sb = Sandbox(directory, size="small", seed=0, token=SANDBOX_TOKEN, config=config)
    sb.prepare()
    sb.store.close()


@pytest.fixture(scope="session")
def sandbox_template(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seeded small sandbox's data directory, shared by every worker (do not write to it)."""
    return shared_template(request, tmp_path_factory, "sandbox", _seed)


def _copy(template: Path, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(template / "sandbox.sqlite", target / "sandbox.sqlite")
    if (template / "ground_truth").exists():
        shutil.copytree(template / "ground_truth", target / "ground_truth", dirs_exist_ok=True)
    return target


@pytest.fixture
def sandbox_factory(sandbox_template: Path, tmp_path: Path) -> Iterator[Callable[..., Sandbox]]:
    """Start sandboxes on private copies of the seeded template; all are stopped after the test."""
    started: list[Sandbox] = []

    def make(config: SandboxConfig | None = None, tls: bool = False, name: str = "sandbox") -> Sandbox:
        data = _copy(sandbox_template, tmp_path / f"{name}-{len(started)}")
        sb = Sandbox(data, token=SANDBOX_TOKEN, config=config, tls=tls)
        sb.start()
        started.append(sb)
        return sb

    yield make
    for sb in started:
        sb.stop()


@pytest.fixture
def sandbox(sandbox_factory: Callable[..., Sandbox]) -> Sandbox:
    """A running small sandbox with its own copy of the seeded data."""
    return sandbox_factory()


def dataverse_session(sb: Sandbox) -> requests.Session:
    """Return a session with the bearer token and the standard OData headers (§1.2)."""
    session = requests.Session()
    session.headers.update(
        {
            "Authorization": f"Bearer {sb.token}",
            "Accept": "application/json",
            "OData-MaxVersion": "4.0",
            "OData-Version": "4.0",
        }
    )
    if sb.ca_bundle is not None:
        session.verify = str(sb.ca_bundle)
        # requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override session.verify unless trust_env is off.
        session.trust_env = False
    return session


@pytest.fixture
def sandbox_session(sandbox: Sandbox) -> Iterator[requests.Session]:
    """A requests session authorised for the ``sandbox`` fixture."""
    with dataverse_session(sandbox) as session:
        yield session


@pytest.fixture(scope="module")
def api(
    sandbox_template: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[requests.Session, str]]:
    """One read-only sandbox per test module (session, API root) for tests that never write."""
    data = tmp_path_factory.mktemp("readonly-sandbox")
    shutil.copy2(sandbox_template / "sandbox.sqlite", data / "sandbox.sqlite")
    sb = Sandbox(data, token=SANDBOX_TOKEN)
    sb.start()
    with dataverse_session(sb) as session:
        yield session, sb.api_url
    sb.stop()


SPARK_CONF = {
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.driver.memory": "1g",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.catalogImplementation": "in-memory",
    # The JVM's quick compiler only and one GC thread: the tests' Spark jobs are many and tiny, so
    # the optimising JIT and parallel GC threads cost more than they save on a shared 2-core
    # machine (measured: the Spark JVM's CPU time for the engine parity module fell from 68 s to 41 s).
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
}
"""One small local Spark for every Spark test (each xdist worker starts its own)."""


@pytest.fixture(scope="session")
def spark():
    """The Spark session (local[2]) the Spark tests share: starting one costs seconds."""
    from jobs.engines.session import spark_session

    session = spark_session("local[2]", SPARK_CONF)
    yield session
    session.stop()
