"""Build hook: the wheel carries the repository's mappings/ and config.example.toml as package data.

Everything else is declared in pyproject.toml. The files are copied into ``core/defaults/`` of the
build only, so the repository keeps one copy of each (the one consultants edit); see
``core.defaults``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildPyWithDefaults(build_py):
    """``build_py`` that also copies the shipped defaults into ``core/defaults`` of the build."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the repository's files directly
        target = Path(self.build_lib) / "core" / "defaults"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / "config.example.toml", target / "config.example.toml")
        mappings = target / "mappings"
        if mappings.exists():
            shutil.rmtree(mappings)
        mappings.mkdir()
        for source in sorted((ROOT / "mappings").glob("*.toml")):
            shutil.copy2(source, mappings / source.name)


setup(cmdclass={"build_py": BuildPyWithDefaults})
