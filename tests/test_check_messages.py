"""`dvsync check` messages: labels checked against the org's options, one cause per problem, exit 2.

Against the sandbox over HTTP: a scoring rule naming a label no option has (``"Webb"``) is
reported with "did you mean" (an unknown order status once, by its file's own check); a
mapping file that does not parse is reported alone (not with the knock-on "no mapping file for
lead"); a problem found by two checks is listed once; a bad mapping column makes ``run`` exit 2
as every configuration error does.
"""

from __future__ import annotations

import json
import re

import pytest

from connector.sandbox import Sandbox
from jobs.cli.main import main
from jobs.service.workdir import init_workdir


@pytest.fixture
def folder(tmp_path, monkeypatch, sandbox: Sandbox):
    directory = tmp_path / "work"
    init_workdir(directory)
    monkeypatch.chdir(directory)
    monkeypatch.delenv("DVSYNC_CONFIG", raising=False)
    monkeypatch.setenv("DVSYNC__DATAVERSE__URL", sandbox.url)
    monkeypatch.setenv("DVSYNC__AUTH__TOKEN", sandbox.token)
    monkeypatch.setenv("DVSYNC__WRITEBACK__SOLUTION", "dvsync")
    return directory


def _edit(path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def _problems(capsys) -> list[dict]:
    return json.loads(capsys.readouterr().out)["problems"]


def test_labels_in_scoring_rules_and_order_statuses_are_checked_against_the_org(folder, capsys):
    equals_web = 'op = "equals"\nvalue = "Web"'  # the rule, not the comment that shows the syntax
    _edit(folder / "mappings" / "scoring.toml", equals_web, equals_web.replace("Web", "Webb"))
    _edit(folder / "mappings" / "scoring.toml", '"Trade Show", "Seminar"', '"Trade Show", "Seminars"')
    _edit(
        folder / "mappings" / "customer_value.toml", '["fulfilled", "invoiced"]', '["fulfiled", "invoiced"]'
    )
    assert main(["check", "--json"]) == 2
    problems = _problems(capsys)
    texts = [p["text"] for p in problems]
    assert len(texts) == 3, texts
    web = next(p for p in problems if "`Webb`" in p["message"])
    assert web["file"].endswith("scoring.toml") and web["line"] and web["hint"] == "did you mean `Web`?"
    assert "(leadsourcecode)" in web["message"]
    assert any("`Seminars`" in t and "did you mean `Seminar`?" in t for t in texts)
    status = next(p for p in problems if "fulfiled" in p["message"])  # once, by the file's own check
    assert status["file"].endswith("customer_value.toml") and "fulfilled" in status["hint"]


def test_labels_are_compared_case_insensitively_as_the_rules_do(folder, capsys):
    _edit(
        folder / "mappings" / "scoring.toml", 'op = "equals"\nvalue = "Web"', 'op = "equals"\nvalue = "web"'
    )
    assert main(["check", "--json"]) == 0, _problems(capsys)


def test_an_unparseable_mapping_file_is_the_only_problem_reported(folder, capsys):
    lead = folder / "mappings" / "lead.toml"
    _edit(lead, 'values = { 1 = "Advertisement",', 'values = { 1 = "Advertisement",\n')
    assert main(["check", "--json"]) == 2
    problems = _problems(capsys)
    assert len(problems) == 1, [p["text"] for p in problems]
    assert problems[0]["file"].endswith("lead.toml") and "not valid TOML" in problems[0]["message"]


def test_a_duplicate_key_in_a_job_file_is_reported_once(folder, capsys):
    scoring = folder / "mappings" / "scoring.toml"
    scoring.write_text(scoring.read_text() + "\n[grades]\nA = 80\n")
    assert main(["check", "--offline", "--json"]) == 2
    texts = [p["text"] for p in _problems(capsys)]
    assert len(texts) == len(set(texts)) and sum("scoring.toml" in t for t in texts) == 1, texts


def test_a_bad_mapping_column_makes_run_exit_2_naming_file_and_line(folder, capsys):
    _edit(folder / "mappings" / "lead.toml", '"leadsourcecode"', '"leadsourcecod"')
    assert main(["run", "--jobs", "scoring"]) == 2
    err = capsys.readouterr().err
    assert re.search(r"lead\.toml:\d+ \[fields\.source\.column\]: no column `leadsourcecod`", err), err
    assert "did you mean `leadsourcecode`" in err and "Traceback" not in err


def test_provision_without_a_solution_previews_then_exits_2_in_both_modes(folder, monkeypatch, capsys):
    monkeypatch.delenv("DVSYNC__WRITEBACK__SOLUTION")
    assert main(["provision", "--dry-run"]) == 2
    captured = capsys.readouterr()
    assert "would be created, but no solution is configured" in captured.out  # the preview is shown
    assert "[writeback.solution]" in captured.err and "setup-real-org.md" in captured.err
    assert main(["provision"]) == 2
    assert "[writeback.solution]" in capsys.readouterr().err


def test_global_options_work_after_the_command_and_json_before_it(folder, capsys):
    assert main(["check", "--offline", "-v"]) == 0
    capsys.readouterr()
    assert main(["--json", "check", "--offline"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    with pytest.raises(SystemExit) as caught:
        main(["--json", "sandbox", "--port", "0"])
    assert caught.value.code == 2 and "has no --json output" in capsys.readouterr().err
