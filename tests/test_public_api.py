"""Every name a package says is public can be imported, so __all__ cannot drift from the code."""

import importlib
import pkgutil

import pytest

import connector
import core
import jobs

PACKAGES = sorted(
    {"core", "connector", "jobs"}
    | {
        info.name
        for root in (core, connector, jobs)
        for info in pkgutil.walk_packages(root.__path__, prefix=f"{root.__name__}.")
        if info.ispkg
    }
)


@pytest.mark.parametrize("name", PACKAGES)
def test_every_exported_name_exists(name):
    package = importlib.import_module(name)
    assert package.__doc__ and package.__doc__.strip(), f"{name} does not say what it is for"
    missing = [n for n in package.__all__ if not hasattr(package, n) and not _is_submodule(name, n)]
    assert not missing


def _is_submodule(package: str, name: str) -> bool:
    try:
        importlib.import_module(f"{package}.{name}")
    except ModuleNotFoundError:
        return False
    return True
