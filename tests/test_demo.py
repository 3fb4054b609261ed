"""``dvsync demo``'s exit code and JSON. The demo end to end (sandbox, provisioning, a full run that
writes, a second that writes nothing) runs once, from the installed wheel: tests/test_install.py."""

from __future__ import annotations


def test_demo_command_exit_code_and_json(tmp_path, capsys, monkeypatch):
    import json

    from jobs.cli import demo as cli_demo
    from jobs.cli.main import main

    fake = {
        "first": {"ok": True},
        "second": {"ok": True, "tables": {"lead": {"written": 0}}},
        "data_dir": str(tmp_path),
    }
    monkeypatch.setattr(cli_demo, "run_demo", lambda **kwargs: fake)
    assert main(["demo", "--json", "--data-dir", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out)["data_dir"] == str(tmp_path)
    fake["second"]["tables"]["lead"]["written"] = 3  # a second run that writes is a failed demo
    assert main(["demo", "--json"]) == 1
