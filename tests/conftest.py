"""Shared fixtures: a small seeded sandbox over real HTTP on loopback.

The seed is generated once per test session into a template directory; each test that asks for
``sandbox`` gets its own copy of that SQLite file (so writes never leak between tests) and its own
server on a free port. Start-up binds before returning: no sleeps, no races.

Fixtures:
    sandbox: a running :class:`connector.sandbox.Sandbox` (function scope, private copy).
    sandbox_factory: ``sandbox_factory(config=SandboxConfig(...), tls=False)`` for tests that need
        their own limits, faults, clock or change-tracking settings.
    sandbox_session: a ``requests.Session`` authorised for ``sandbox``, with Dataverse's headers.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from connector.sandbox import Sandbox, SandboxConfig

SANDBOX_TOKEN = "test-token-not-a-secret"
# The seed's "now": fixed so seeded dates and the tests that reason about them agree.
SEED_NOW = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="session")
def sandbox_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seed a small sandbox once per session and return its data directory (do not write to it)."""
    directory = tmp_path_factory.mktemp("sandbox-template")
    config = SandboxConfig(clock=lambda: SEED_NOW)
    sb = Sandbox(directory, size="small", seed=0, token=SANDBOX_TOKEN, config=config)
    sb.prepare()
    sb.store.close()
    return directory


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
