"""Every name a package says is public can be imported, so __all__ cannot drift from the code."""

import importlib

import pytest

import connector
import connector.sandbox
import jobs


@pytest.mark.parametrize("package", [connector, connector.sandbox])
def test_every_exported_name_exists(package):
    missing = [name for name in package.__all__ if not hasattr(package, name)]
    assert not missing


@pytest.mark.parametrize("module", jobs.__all__)
def test_every_public_jobs_module_imports(module):
    importlib.import_module(f"jobs.{module}")
