"""No litter: sandbox state where --data says (else the user's state dir), one sandbox per data
folder, and read-only commands that never create a mirror. (The demo's temporary folder is
checked by tests/test_install.py.)"""

from __future__ import annotations

import json

import pytest

from connector.sandbox import Sandbox
from connector.sandbox.cli import add_arguments
from connector.sandbox.datalock import default_data_dir
from core.defaults import mappings_dir
from core.errors import ConfigError
from jobs.cli.main import main


def test_the_default_sandbox_data_lives_in_the_users_state_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert default_data_dir() == tmp_path / "state" / "dvsync" / "sandbox"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_data_dir() == tmp_path / "home" / ".local" / "state" / "dvsync" / "sandbox"
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args([]).data is None  # resolved to default_data_dir() at start


def test_a_data_folder_is_served_by_one_sandbox_at_a_time(sandbox_template, tmp_path):
    import shutil

    data = tmp_path / "data"
    data.mkdir()
    shutil.copy2(sandbox_template / "sandbox.sqlite", data / "sandbox.sqlite")
    first = Sandbox(data, token="t").start()
    try:
        with pytest.raises(ConfigError, match=r"in use by another sandbox \(pid \d+\)"):
            Sandbox(data, token="t").start()
    finally:
        first.stop()
    second = Sandbox(data, token="t").start()  # free again once the first one stopped
    second.stop()


def test_status_and_check_in_an_empty_folder_create_no_mirror(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DVSYNC_CONFIG", raising=False)
    monkeypatch.setenv("DVSYNC__MAPPINGS__DIR", str(mappings_dir()))
    assert main(["status"]) == 0
    assert "no mirror yet" in capsys.readouterr().out
    assert main(["status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["mirror"] is None and report["runs"] == [] and report["next_runs"]
    assert main(["check", "--offline"]) == 0
    assert list(tmp_path.iterdir()) == []
