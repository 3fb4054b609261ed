"""The command line: exit codes, --json, -v, JSON-lines logs without secrets, no tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pipeline_support import (  # noqa: F401 - fixtures
    provisioned_template,
    psandbox,
    write_config,
)

from jobs.cli.main import main
from jobs.cli.walkthrough import MAPPINGS_DIR
from jobs.service.pipeline import RunLock

SECRET = "s3cr3t-token-value-never-shown"


def offline_config(tmp_path: Path, extra: str = "") -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        '[dataverse]\nurl = "http://127.0.0.1:9"\n[auth]\nmode = "token"\n'
        f'[mirror]\npath = "{(tmp_path / "mirror.sqlite").as_posix()}"\n'
        f'[mappings]\ndir = "{MAPPINGS_DIR.as_posix()}"\n' + extra,
        encoding="utf-8",
    )
    return config


def test_unknown_job_is_a_configuration_error_with_exit_code_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DVSYNC__AUTH__TOKEN", SECRET)
    assert main(["--config", str(offline_config(tmp_path)), "run", "--jobs", "scorng"]) == 2
    err = capsys.readouterr().err
    assert "unknown job `scorng`" in err and "did you mean `scoring`" in err
    assert "Traceback" not in err


def test_a_bad_config_key_is_exit_code_2_naming_the_file(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DVSYNC__AUTH__TOKEN", SECRET)
    config = offline_config(tmp_path, "[writeback]\nbatch_size = 5000\n")
    assert main(["--config", str(config), "status"]) == 2
    err = capsys.readouterr().err
    assert "batch_size" in err and "config.toml" in err and "Traceback" not in err


def test_unreachable_dataverse_fails_the_run_with_exit_code_2_naming_the_url(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DVSYNC__AUTH__TOKEN", SECRET)
    config = offline_config(tmp_path, "[http]\nmax_attempts = 1\nretry_budget_seconds = 1\n")
    code = main(["--config", str(config), "run", "--jobs", "rfm", "--json"])
    captured = capsys.readouterr()
    # Nothing listens on port 9: a configuration problem under [dataverse.url], not a passing fault.
    assert code == 2 and "Traceback" not in captured.err and "[dataverse.url]" in captured.err
    assert SECRET not in captured.err + captured.out


def test_a_second_run_while_one_holds_the_lock_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DVSYNC__AUTH__TOKEN", SECRET)
    config = offline_config(tmp_path)
    holder = RunLock(tmp_path / "mirror.sqlite.lock")
    assert holder.acquire()
    try:
        assert main(["--config", str(config), "run"]) == 1
    finally:
        holder.release()
    assert "another dvsync run is in progress" in capsys.readouterr().err


def test_run_json_reports_per_table_counts_and_json_logs_hold_no_token(
    psandbox,  # noqa: F811
    tmp_path,
    monkeypatch,
    capsys,
):
    config = write_config(tmp_path / "cli", psandbox, extra='[logging]\njson = true\nlevel = "INFO"\n')
    config.write_text(config.read_text().replace("dry_run = false\n", ""))
    monkeypatch.setenv("DVSYNC__AUTH__TOKEN", psandbox.token)
    # No dry_run key: safe by default, a plain run only plans ...
    assert main(["--config", str(config), "run", "--jobs", "rfm", "--json"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["dry_run"] and dry["mode"] == "dry-run" and dry["plan_csv"]
    assert dry["tables"]["account"]["written"] == 0
    # ... and --no-dry-run writes.
    assert main(["-v", "--config", str(config), "run", "--jobs", "rfm", "--no-dry-run", "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["ok"] and report["outcome"] == "ok" and report["mode"] == "write"
    for table in ("salesorder", "account", "contact"):
        assert {"read", "written", "failed"} <= set(report["tables"][table])
    assert dry["tables"]["salesorder"]["read"] > 10000 and report["tables"]["salesorder"]["mode"] == "delta"
    assert report["tables"]["account"]["written"] > 100 and report["tables"]["account"]["failed"] == 0
    logs = [json.loads(line) for line in captured.err.splitlines() if line.strip()]
    assert logs and all({"time", "level", "logger", "message"} <= set(entry) for entry in logs)
    assert any(entry["level"] == "DEBUG" for entry in logs)  # -v
    assert psandbox.token not in captured.err + captured.out


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("Authorization: Bearer eyJ0eXAiOiJKV1Qi.abc.def", "eyJ0eXAiOiJKV1Qi"),
        ("client_secret=abc123XYZ&scope=x", "abc123XYZ"),
        ('{"password": "hunter2"}', "hunter2"),
        ("Authorization: bearer s3cretTok", "s3cretTok"),
        ("Bearer abcdefghijklmnopqrstu", "abcdefghijklmnopqrstu"),
        ("Bearer AbCdEfGh", "AbCdEfGh"),
    ],
)
def test_secrets_are_redacted_from_log_text(text, hidden):
    from jobs.cli.render import redact

    assert hidden not in redact(text) and "***" in redact(text)


def test_prose_about_a_bearer_token_keeps_its_words():
    from jobs.cli.render import redact

    message = "401: the bearer token was refused; check that the app is an application user"
    assert redact(message) == message


def test_progress_bars_follow_sync_pages_and_written_chunks():
    import io

    from rich.console import Console
    from rich.progress import Progress

    from jobs.cli.render import PipelineBar

    progress = Progress(console=Console(file=io.StringIO(), force_terminal=True))
    bar = PipelineBar(progress)
    bar.sync("lead", read=5000, pages=1, done=False)
    bar.sync("lead", read=7500, pages=2, done=True)
    bar.write("lead", done=1000, total=2500)
    bar.write("lead", done=2500, total=2500)
    tasks = {t.description.split()[0] + " " + t.description.split()[1]: t for t in progress.tasks}
    assert tasks["read lead"].completed == 7500 and tasks["read lead"].finished
    assert tasks["write lead"].completed == 2500 and tasks["write lead"].total == 2500
