"""Session templates built once and shared: by the pytest-xdist workers of a run, and by later runs.

Seeding the small sandbox and provisioning every output column are the suite's session set-up.
With ``-n 2`` each worker would build both; instead a template is built under a file lock, in a
folder named by a digest of everything it is made from (the sources of core/, connector/, jobs/
and mappings/, the test helpers that build it, and the Python, pandas and numpy versions), so the
other worker and later runs of unchanged code reuse it. It lives in pytest's cache
(``.pytest_cache/d/dvsync-templates``); without the cache plugin, in the run's own temporary folder.
Each file's digest is recorded when built and checked at every reuse: a template that a test wrote
to (they must only copy it) is rebuilt, never served. Templates unused for a day are removed.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import platform
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy
import pandas
import pytest

ROOT = Path(__file__).resolve().parents[1]
# What a template is made from: any change here means a new template.
SOURCES = ("core", "connector", "jobs", "mappings")
HELPERS = ("tests/conftest.py", "tests/pipeline_support.py", "tests/shared_templates.py")
STALE_AFTER = 24 * 3600.0
DONE = "template.json"


def source_digest() -> str:
    """A digest of the sources and versions every template depends on."""
    hasher = hashlib.sha256(f"{platform.python_version()} {pandas.__version__} {numpy.__version__}".encode())
    files = [p for d in SOURCES for p in sorted((ROOT / d).rglob("*")) if p.is_file()]
    files += [ROOT / h for h in HELPERS]
    for path in files:
        if "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        hasher.update(path.relative_to(ROOT).as_posix().encode() + b"\0")
        hasher.update(path.read_bytes() + b"\0")
    return hasher.hexdigest()[:16]


def _file_digests(directory: Path) -> dict[str, str]:
    out = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.name != DONE):
        out[path.relative_to(directory).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock across processes (the xdist workers, a second pytest in the same checkout)."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _root(config: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = getattr(config, "cache", None)
    if cache is not None:
        return cache.mkdir("dvsync-templates")
    base = tmp_path_factory.getbasetemp()
    # An xdist worker's base is <run's base>/popen-gwN: the parent is shared by this run's workers only.
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "dvsync-templates"
    root.mkdir(exist_ok=True)
    return root


def _prune(root: Path, keep: Path) -> None:
    """Remove templates unused for a day (each reuse touches its marker)."""
    for marker in root.glob(f"*/{DONE}"):
        folder = marker.parent
        if folder != keep and time.time() - marker.stat().st_mtime > STALE_AFTER:
            shutil.rmtree(folder, ignore_errors=True)


def shared_template(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    build: Callable[[Path], None],
) -> Path:
    """Return the folder of template ``name``, calling ``build(folder)`` only when none is valid."""
    root = _root(request.config, tmp_path_factory)
    folder = root / f"{name}-{source_digest()}"
    with _locked(root / ".lock"):
        marker = folder / DONE
        if marker.is_file() and json.loads(marker.read_text()) == _file_digests(folder):
            marker.touch()
            return folder
        shutil.rmtree(folder, ignore_errors=True)
        building = root / f".{folder.name}.building"
        shutil.rmtree(building, ignore_errors=True)
        building.mkdir()
        build(building)
        (building / DONE).write_text(json.dumps(_file_digests(building)))
        building.rename(folder)
        _prune(root, folder)
        return folder
