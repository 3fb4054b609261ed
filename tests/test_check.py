"""``dvsync check``: every problem at once with file, line, key and suggestion; exit code 2; --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_dataverse import lead_org

from connector.errors import AuthError
from jobs.cli.main import main
from jobs.service.check import check
from jobs.service.mapping import load_mappings
from jobs.service.settings_load import load_settings

LEAD = """\
table = "lead"
entity = "lead"

[fields]
first_name = "firstname"
last_name = "lastname"
email = "emailadress1"
company = "companyname"
phone = { column = "telephone1", type = "string" }
status = { column = "statecode", type = "choice" }
created_on = { column = "createdon", type = "integer" }
"""

OUTPUTS = """\
[lead.score]
column = "LeadScore"
type = "integer"
display_name = "Lead Score"
description = "0 to 100"
"""


def settings_for(
    tmp_path: Path, *, lead: str = LEAD, jobs: str = '["duplicates"]', solution: str | None = None
):
    mappings = tmp_path / "mappings"
    mappings.mkdir(exist_ok=True)
    (mappings / "lead.toml").write_text(lead, encoding="utf-8")
    (mappings / "outputs.toml").write_text(OUTPUTS, encoding="utf-8")
    config = tmp_path / "config.toml"
    lines = [
        "[dataverse]",
        'url = "http://127.0.0.1:9"',
        "[auth]",
        'mode = "token"',
        "[mappings]",
        f'dir = "{mappings}"',
        "[jobs]",
        f"enabled = {jobs}",
        "[writeback]",
        'publisher_prefix = "dvs"',
    ]
    if solution:
        lines.append(f'solution = "{solution}"')
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def test_all_problems_are_reported_at_once_with_lines_and_suggestions(tmp_path):
    config = settings_for(tmp_path)
    settings = load_settings(config, env={})
    report = check(settings, lead_org())
    assert not report.ok
    texts = [str(p) for p in report.problems]
    lead_file = str(tmp_path / "mappings" / "lead.toml")
    assert (
        f"{lead_file}:7 [fields.email.column]: "
        "no column `emailadress1` on lead (did you mean `emailaddress1`?)" in texts
    )
    assert any(":8 [fields.company.column]" in t and "no column `companyname`" in t for t in texts)
    assert any(":9 [fields.phone.column]" in t for t in texts)
    assert any(":11 [fields.created_on.type]" in t for t in texts)  # static: integer cannot fill a datetime
    assert any("writeback.solution" in t for t in texts)  # columns to create, nowhere to create them
    assert [o.logical_name for o in report.to_provision] == ["dvs_leadscore"]
    assert report.identity["organization_id"].endswith("3")
    assert report.tables[0].change_tracking is True


def test_a_clean_configuration_passes(tmp_path):
    lead = (
        'table = "lead"\nentity = "lead"\n[fields]\nemail = "emailaddress1"\n'
        'status = { column = "statecode", type = "choice" }\n'
    )
    config = settings_for(tmp_path, lead=lead, jobs="[]", solution="dvsync")
    report = check(load_settings(config, env={}), lead_org())
    assert report.ok, report.problems
    assert len(report.to_provision) == 1  # not a problem: provision will create it


def test_failed_authentication_is_one_problem_and_stops_there(tmp_path):
    class NoAuth:
        def whoami(self):
            raise AuthError("the token was refused", code="AADSTS7000215", hint="check the client secret")

        def get_table(self, name):  # pragma: no cover - must not be reached
            raise AssertionError("no metadata call without a token")

    config = settings_for(tmp_path, jobs="[]")
    report = check(load_settings(config, env={}), NoAuth())
    assert any(p.key == "auth" and "AADSTS7000215" in str(p) for p in report.problems)


def test_an_unknown_table_names_the_mapping_file(tmp_path):
    lead = 'table = "leadz"\nentity = "lead"\n[fields]\nemail = "emailaddress1"\n'
    config = settings_for(tmp_path, lead=lead, jobs="[]")
    (tmp_path / "mappings" / "outputs.toml").write_text("", encoding="utf-8")
    report = check(load_settings(config, env={}), lead_org())
    (problem,) = report.problems
    assert problem.key == "table" and problem.line == 1 and "no table `leadz`" in problem.message


def test_missing_job_fields_are_reported(tmp_path):
    lead = 'table = "lead"\nentity = "lead"\n[fields]\nemail = "emailaddress1"\n'
    config = settings_for(tmp_path, lead=lead, jobs='["duplicates", "rfm"]', solution="s")
    settings = load_settings(config, env={})
    report = check(settings, lead_org(), mappings=load_mappings(settings.mappings.dir, prefix="dvs"))
    texts = " | ".join(str(p) for p in report.problems)
    assert "job `duplicates` needs `first_name`, `last_name`, `company`, `phone`" in texts
    assert "job `rfm` needs order records" in texts


def test_cli_exit_code_and_json_offline(tmp_path, capsys):
    config = settings_for(tmp_path)
    code = main(["check", "--config", str(config), "--offline", "--json"])
    assert code == 2
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False
    keys = {p["key"] for p in data["problems"]}
    assert "fields.created_on.type" in keys
    assert all({"file", "line", "key", "message", "hint", "text"} <= set(p) for p in data["problems"])


def test_cli_text_output_lists_every_problem(tmp_path, capsys):
    config = settings_for(tmp_path)
    assert main(["check", "--config", str(config), "--offline"]) == 2
    out = capsys.readouterr().out
    assert "problem" in out and "fields.created_on.type" in out


@pytest.mark.parametrize("bad", ['table = "lead"\nentity = \n'])
def test_a_broken_toml_file_is_a_problem_not_a_traceback(tmp_path, capsys, bad):
    config = settings_for(tmp_path, lead=bad)
    assert main(["check", "--config", str(config), "--offline"]) == 2
    assert "lead.toml:2" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------
# Over real HTTP against the sandbox (tests/conftest.py).

SHIPPED_MAPPINGS = Path(__file__).resolve().parent.parent / "mappings"


def test_sandbox_shipped_mappings_pass_and_a_typo_is_caught(sandbox, tmp_path, capsys, monkeypatch):
    import shutil

    monkeypatch.setenv("DVSYNC__AUTH__TOKEN", sandbox.token)
    mappings = tmp_path / "mappings"
    shutil.copytree(SHIPPED_MAPPINGS, mappings)
    config = tmp_path / "config.toml"
    config.write_text(
        f'[dataverse]\nurl = "{sandbox.url}"\n[auth]\nmode = "token"\n[mappings]\ndir = "{mappings}"\n'
        '[writeback]\npublisher_prefix = "dvs"\nsolution = "dvsync"\n',
        encoding="utf-8",
    )
    assert main(["check", "--config", str(config), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"], report["problems"]
    assert {t["name"] for t in report["tables"]} >= {"lead", "account", "contact", "salesorder", "email"}
    assert all(t["change_tracking"] for t in report["tables"])
    assert len(report["to_provision"]) > 30

    lead = mappings / "lead.toml"
    lead.write_text(lead.read_text().replace('"emailaddress1"', '"emailadress1"'), encoding="utf-8")
    assert main(["check", "--config", str(config)]) == 2
    out = capsys.readouterr().out
    assert "[fields.email.column]: no column `emailadress1` on lead (did you mean `emailaddress1`?)" in out


def test_sandbox_wrong_token_is_reported_as_one_problem(sandbox, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DVSYNC__AUTH__TOKEN", "not-the-token")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[dataverse]\nurl = "{sandbox.url}"\n[auth]\nmode = "token"\n'
        f'[mappings]\ndir = "{SHIPPED_MAPPINGS}"\n[writeback]\npublisher_prefix = "dvs"\n',
        encoding="utf-8",
    )
    assert main(["check", "--config", str(config), "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    (problem,) = report["problems"]
    assert problem["key"] == "auth" and report["identity"] is None


def test_a_column_the_web_api_refuses_is_found_by_the_probe_read(tmp_path):
    from connector.errors import FatalApiError

    lead = 'table = "lead"\nentity = "lead"\n[fields]\nemail = "emailaddress1"\n'
    config = settings_for(tmp_path, lead=lead, jobs="[]", solution="s")
    org = lead_org()
    org.upsert("leads", emailaddress1="a@x.com")

    def refuse(*args, **kwargs):
        raise FatalApiError("Could not find a property named 'emailaddress1'", status=400, code="0x0")

    org.iter_records = refuse
    report = check(load_settings(config, env={}), org)
    (problem,) = report.problems
    assert (
        problem.key == "fields"
        and problem.line == 3
        and "reading lead with the mapped columns failed" in str(problem)
    )


def test_the_probe_converts_a_record_with_the_mapping(tmp_path):
    lead = (
        'table = "lead"\nentity = "lead"\n[fields]\n'
        'employees = { column = "numberofemployees", type = "integer" }\n'
    )
    config = settings_for(tmp_path, lead=lead, jobs="[]", solution="s")
    org = lead_org()
    org.upsert("leads", numberofemployees="a dozen")  # the org holds something the type cannot read
    report = check(load_settings(config, env={}), org)
    (problem,) = report.problems
    assert problem.key == "fields.employees.type" and problem.line == 4


def test_job_files_are_loaded_and_checked_against_the_mapping(tmp_path):
    import shutil

    lead = (
        'table = "lead"\nentity = "lead"\n[fields]\nemail = "emailaddress1"\n'
        'status = { column = "statecode", type = "choice" }\n'
        'created_on = { column = "createdon", type = "datetime" }\n'
    )
    config = settings_for(tmp_path, lead=lead, jobs='["scoring", "rfm"]', solution="s")
    shutil.copy(SHIPPED_MAPPINGS / "scoring.toml", tmp_path / "mappings" / "scoring.toml")
    report = check(load_settings(config, env={}), None)
    texts = [str(p) for p in report.problems]
    # The shipped rules score on `source`, which this mapping does not provide.
    assert any("scoring.toml:" in t and "source" in t for t in texts), texts
    # rfm is enabled but customer_value.toml is missing: said, with the path.
    assert any("customer_value.toml" in t and "not found" in t for t in texts), texts


def _dedup_setup(tmp_path: Path, *, contact_enabled: bool | None, jobs: str = '["duplicates"]') -> Path:
    import shutil

    config = settings_for(
        tmp_path, lead=(SHIPPED_MAPPINGS / "lead.toml").read_text(), jobs=jobs, solution="s"
    )
    mappings = tmp_path / "mappings"
    shutil.copy(SHIPPED_MAPPINGS / "duplicates.toml", mappings / "duplicates.toml")
    shutil.copy(SHIPPED_MAPPINGS / "account.toml", mappings / "account.toml")
    if contact_enabled is not None:
        text = (SHIPPED_MAPPINGS / "contact.toml").read_text()
        if not contact_enabled:
            text = text.replace("enabled = true", "enabled = false")
        (mappings / "contact.toml").write_text(text, encoding="utf-8")
    return config


@pytest.mark.parametrize("contact_enabled", [None, False])
def test_a_duplicates_link_to_an_unmapped_table_is_no_problem(tmp_path, contact_enabled):
    # The org does not map contacts (no file, or enabled = false): [lead.link.contact] has nothing to
    # run against, so its columns are not judged by the contact mapping (which would say that
    # first_name, email, ... are missing on contacts).
    config = _dedup_setup(tmp_path, contact_enabled=contact_enabled)
    report = check(load_settings(config, env={}), None)
    assert [str(p) for p in report.problems if "duplicates.toml" in str(p)] == []


def test_a_duplicates_link_between_mapped_tables_is_still_checked(tmp_path):
    config = _dedup_setup(tmp_path, contact_enabled=True)
    assert check(load_settings(config, env={}), None).problems == []
    # Contacts mapped without an e-mail: the link's `email` has nothing on the contact side.
    contact = tmp_path / "mappings" / "contact.toml"
    contact.write_text(
        "\n".join(line for line in contact.read_text().splitlines() if not line.startswith("email =")),
        encoding="utf-8",
    )
    texts = [str(p) for p in check(load_settings(config, env={}), None).problems]
    assert any("duplicates.toml:" in t and "email" in t for t in texts), texts


def test_duplicate_settings_are_not_checked_when_the_job_is_disabled(tmp_path):
    config = _dedup_setup(tmp_path, contact_enabled=None, jobs="[]")
    (tmp_path / "mappings" / "duplicates.toml").write_text("[lead]\nbogus = 1\n", encoding="utf-8")
    assert check(load_settings(config, env={}), None).problems == []


def test_sandbox_an_old_style_companion_type_column_is_flagged_with_the_new_form(
    sandbox, tmp_path, capsys, monkeypatch
):
    import shutil

    monkeypatch.setenv("DVSYNC__AUTH__TOKEN", sandbox.token)
    mappings = tmp_path / "mappings"
    shutil.copytree(SHIPPED_MAPPINGS, mappings)
    order = mappings / "salesorder.toml"
    old = order.read_text().replace(
        'customer_type = { column = "customerid", type = "lookup_type" }',
        'customer_type = { column = "customerid", type = "lookup_type", type_column = "customeridtype" }',
    )
    assert 'customeridtype" }' in old
    order.write_text(old, encoding="utf-8")
    line = old.splitlines().index(next(x for x in old.splitlines() if x.startswith("customer_type"))) + 1
    config = tmp_path / "config.toml"
    config.write_text(
        f'[dataverse]\nurl = "{sandbox.url}"\n[auth]\nmode = "token"\n[mappings]\ndir = "{mappings}"\n'
        '[writeback]\npublisher_prefix = "dvs"\nsolution = "dvsync"\n[sync]\ntables = ["salesorder"]\n',
        encoding="utf-8",
    )
    assert main(["check", "--config", str(config), "--json"]) == 2
    (problem,) = json.loads(capsys.readouterr().out)["problems"]
    assert (problem["file"], problem["line"], problem["key"]) == (
        str(order),
        line,
        "fields.customer_type.type_column",
    )
    assert "EntityName companion of `customerid`" in problem["message"]
    assert "remove `type_column`" in problem["hint"]
