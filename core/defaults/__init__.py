"""The files dvsync ships: the default mappings and the example configuration.

One source of truth: the repository's ``mappings/`` and ``config.example.toml`` (what consultants
edit). A wheel carries copies of them as package data here (``setup.py`` copies them at build
time, so nothing in the repository is duplicated); a source checkout or an editable install reads
them from the repository itself.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from core.errors import DvsyncError

__all__ = ["EXAMPLE_CONFIG", "MAPPINGS", "example_config", "mappings_dir"]

MAPPINGS = "mappings"
EXAMPLE_CONFIG = "config.example.toml"

# core/defaults/__init__.py -> the repository root in a checkout.
_REPO_ROOT = Path(__file__).resolve().parents[2]


def _shipped(name: str) -> Path:
    """The packaged copy when this is an installed wheel, else the repository's file."""
    packaged = Path(str(resources.files(__name__))) / name
    if packaged.exists():
        return packaged
    in_repo = _REPO_ROOT / name
    if in_repo.exists():
        return in_repo
    raise DvsyncError(
        f"dvsync's shipped `{name}` is missing (looked in {packaged.parent} and {_REPO_ROOT}); "
        "reinstall dvsync (`pip install --force-reinstall dvsync`)"
    )


def mappings_dir() -> Path:
    """The directory of the default mapping files (they fit a standard Sales org and the sandbox)."""
    return _shipped(MAPPINGS)


def example_config() -> Path:
    """The example ``config.toml``: every key, commented, with its default."""
    return _shipped(EXAMPLE_CONFIG)
