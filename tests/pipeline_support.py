"""Helpers for the pipeline, rollback, crash-safety, status and CLI tests against the sandbox."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import dataverse_session
from requests.adapters import HTTPAdapter
from shared_templates import shared_template

from connector import DataverseClient, RetryPolicy
from connector.sandbox import Sandbox
from jobs.cli.walkthrough import MAPPINGS_DIR
from jobs.service.connect import connect
from jobs.service.mapping import MappingSet, load_mappings
from jobs.service.provision import provision
from jobs.service.settings import Settings
from jobs.service.settings_load import load_settings

CUSTOMER_TABLES = ["salesorder", "account", "contact"]
TOKEN = "test-token-not-a-secret"  # the token tests/conftest.py seeds the template with


@pytest.fixture(scope="session")
def provisioned_template(
    sandbox_template: Path, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The seeded sandbox with every output column provisioned, shared by all workers (never write to it)."""

    def build(directory: Path) -> None:
        _copy_data(sandbox_template, directory)
        sandbox = Sandbox(directory, token=TOKEN).start()
        try:
            provisioned(write_config(tmp_path_factory.mktemp("provision-config"), sandbox), sandbox)
        finally:
            sandbox.stop()

    return shared_template(request, tmp_path_factory, "provisioned", build)


@pytest.fixture
def psandbox(provisioned_template: Path, tmp_path: Path) -> Iterator[Sandbox]:
    """A running sandbox on a private copy of the provisioned template."""
    directory = tmp_path / "psandbox"
    directory.mkdir()
    _copy_data(provisioned_template, directory)
    sandbox = Sandbox(directory, token=TOKEN).start()
    yield sandbox
    sandbox.stop()


def _copy_data(source: Path, target: Path) -> None:
    """Copy a sandbox's state and, when it has one, the seed's ground truth (graded by some tests)."""
    shutil.copy2(source / "sandbox.sqlite", target / "sandbox.sqlite")
    if (source / "ground_truth").exists():
        shutil.copytree(source / "ground_truth", target / "ground_truth", dirs_exist_ok=True)


def write_config(
    directory: Path,
    sandbox: Sandbox,
    *,
    tables: list[str] | None = CUSTOMER_TABLES,
    batch_size: int = 1000,
    max_parallel: int | None = None,
    page_size: int = 5000,
    extra: str = "",
) -> Path:
    """Write a config.toml for ``sandbox`` (the token comes from DVSYNC__AUTH__TOKEN)."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = [
        "[dataverse]",
        f'url = "{sandbox.url}"',
        "[auth]",
        'mode = "token"',
        "[mirror]",
        f'path = "{(directory / "mirror.sqlite").as_posix()}"',
        "[mappings]",
        f'dir = "{MAPPINGS_DIR.as_posix()}"',
        "[sync]",
        f"page_size = {page_size}",
    ]
    if tables:
        lines.append("tables = [" + ", ".join(f'"{t}"' for t in tables) + "]")
    lines += ["[writeback]", "dry_run = false", 'solution = "dvsync"', 'publisher_prefix = "dvs"']
    lines.append(f"batch_size = {batch_size}")
    if max_parallel:
        lines.append(f"max_parallel = {max_parallel}")
    config = directory / "config.toml"
    config.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return config


def settings_for(config: Path, sandbox: Sandbox) -> Settings:
    """Load the settings with the sandbox's token."""
    return load_settings(config, env={"DVSYNC__AUTH__TOKEN": sandbox.token})


def provisioned(config: Path, sandbox: Sandbox) -> tuple[Settings, MappingSet]:
    """Create the output columns in the sandbox; return settings and mappings."""
    settings = settings_for(config, sandbox)
    mappings = load_mappings(settings.mappings.dir, prefix="dvs")
    with connect(settings) as client:
        provision(client, mappings, solution="dvsync")
    return settings, mappings


def read_columns(sandbox: Sandbox, entity_set: str, columns: list[str]) -> dict[str, dict[str, Any]]:
    """Every record of ``entity_set`` with ``columns``, read over HTTP: id -> {column: value}.

    A sandbox injecting faults (429, 503, dropped or truncated answers) may hit this check's own
    reads too, depending on how many requests the run made before: a page is asked again until it
    arrives whole (the faults are a few percent, so a handful of tries always suffices).
    """
    key = {"accounts": "accountid", "contacts": "contactid", "leads": "leadid"}[entity_set]
    url = f"{sandbox.api_url}{entity_set}?$select={','.join([key, *columns])}"
    out: dict[str, dict[str, Any]] = {}
    with dataverse_session(sandbox) as s:
        while url:
            page: dict[str, Any] = {}
            for _attempt in range(20):
                try:
                    response = s.get(url, headers={"Prefer": "odata.maxpagesize=5000"}, timeout=30)
                    page = response.json() if response.status_code == 200 else {}
                except (requests.RequestException, ValueError):
                    page = {}
                if "value" in page:
                    break
            for record in page["value"]:
                out[record[key]] = {c: record.get(c) for c in columns}
            url = page.get("@odata.nextLink")
    return out


def patch(sandbox: Sandbox, entity_set: str, record_id: str, body: dict[str, Any]) -> None:
    """Change a record as a person in Dynamics would."""
    with dataverse_session(sandbox) as s:
        response = s.patch(
            f"{sandbox.api_url}{entity_set}({record_id})",
            json=body,
            headers={"If-Match": "*", "Content-Type": "application/json"},
            timeout=30,
        )
        response.raise_for_status()


def sandbox_client(sandbox: Sandbox, adapter: HTTPAdapter | None = None) -> DataverseClient:
    """A client of ``sandbox`` whose retries wait no time; ``adapter`` (mounted for http://) lets a
    test drop or alter requests on the wire."""
    session = requests.Session()
    if adapter is not None:
        session.mount("http://", adapter)
    retry = RetryPolicy(sleep=lambda seconds: None, random=lambda: 0.5)
    return DataverseClient(sandbox.url, lambda: sandbox.token, session=session, retry=retry)
