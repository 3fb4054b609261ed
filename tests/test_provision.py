"""``dvsync provision``: a dry run changes nothing, a real run creates and publishes once, a rerun nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from fake_dataverse import column, lead_org

from core.errors import ConfigError
from jobs.service.mapping import MappingErrors, load_mappings
from jobs.service.provision import column_spec, provision

OUTPUTS = """\
[lead.score]
column = "LeadScore"
type = "integer"
min = 0
max = 100
display_name = "Lead Score"
description = "How likely this lead is to buy, 0 to 100."

[lead.factors]
column = "LeadScoreFactors"
type = "memo"
max_length = 4000
display_name = "Why This Score"
description = "The main reasons behind the score."

[lead.duplicate_score]
column = "DuplicateScore"
type = "decimal"
precision = 0
scale = 100
display_name = "Duplicate Match %"
description = "How sure dvsync is this is a duplicate."

[lead.scored_on]
column = "ScoredOn"
type = "date"
display_name = "Scored On"
description = "When the score was computed."

[lead.trend]
column = "Trend"
type = "string"
enabled = false
display_name = "Trend"
description = "Not written."
"""


@pytest.fixture
def mappings(tmp_path: Path):
    directory = tmp_path / "mappings"
    directory.mkdir()
    (directory / "lead.toml").write_text(
        'table = "lead"\nentity = "lead"\n[fields]\nemail = "emailaddress1"\n', encoding="utf-8"
    )
    (directory / "outputs.toml").write_text(OUTPUTS, encoding="utf-8")
    return load_mappings(directory, prefix="dvs")


def test_dry_run_lists_what_would_be_created_and_changes_nothing(mappings):
    org = lead_org()
    report = provision(org, mappings, solution=None, dry_run=True)
    assert [(a.column, a.kind, a.status) for a in report.actions] == [
        ("dvs_leadscore", "Integer", "would create"),
        ("dvs_leadscorefactors", "Memo", "would create"),
        ("dvs_duplicatescore", "Decimal", "would create"),
        ("dvs_scoredon", "DateTime", "would create"),
    ]
    assert org.created == [] and org.published == []
    assert report.as_dict()["created"] == 4


def test_provision_creates_in_the_solution_publishes_once_and_is_idempotent(mappings):
    org = lead_org()
    report = provision(org, mappings, solution="dvsync")
    assert [a.status for a in report.actions] == ["created"] * 4
    assert org.published == [["lead"]] and report.published == ["lead"]
    table, spec, solution = org.created[0]
    assert (table, solution, spec.schema_name, spec.display_name) == (
        "lead",
        "dvsync",
        "dvs_LeadScore",
        "Lead Score",
    )
    assert spec.description.startswith("How likely") and (spec.min_value, spec.max_value) == (0, 100)
    factors = org.created[1][1]
    assert factors.kind == "Memo" and factors.max_length == 4000
    assert org.created[3][1].date_only is True

    again = provision(org, mappings, solution="dvsync")
    assert [a.status for a in again.actions] == ["exists"] * 4
    assert len(org.created) == 4 and org.published == [["lead"]] and again.published == []


def test_an_existing_column_of_another_type_is_refused_before_anything_is_created(mappings):
    org = lead_org()
    table = org.tables["leads"]
    table.definition.attributes["dvs_leadscore"] = column("dvs_leadscore", "String")
    with pytest.raises(MappingErrors) as caught:
        provision(org, mappings, solution="dvsync")
    (problem,) = caught.value.problems
    assert problem.key == "lead.score" and problem.line == 1 and "exists as String" in problem.message
    assert org.created == []


def test_a_missing_solution_is_a_configuration_error(mappings):
    with pytest.raises(ConfigError) as caught:
        provision(lead_org(), mappings, solution=None)
    assert caught.value.key == "writeback.solution" and caught.value.exit_code == 2


def test_column_spec_carries_precision_only_for_decimals(mappings):
    by = {o.result: o for o in mappings.outputs}
    assert column_spec(by["duplicate_score"]).precision == 0
    assert column_spec(by["score"]).precision is None and column_spec(by["score"]).max_length is None


# ------------------------------------------------------------------------------------------------
# Over real HTTP against the sandbox (tests/conftest.py).

SHIPPED_MAPPINGS = Path(__file__).resolve().parent.parent / "mappings"


def _config(sb, tmp_path: Path, mappings_dir: Path = SHIPPED_MAPPINGS) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[dataverse]\nurl = "{sb.url}"\n[auth]\nmode = "token"\n[mirror]\npath = "{tmp_path / "m.sqlite"}"\n'
        f'[mappings]\ndir = "{mappings_dir}"\n[writeback]\npublisher_prefix = "dvs"\nsolution = "dvsync"\n',
        encoding="utf-8",
    )
    return config


def test_sandbox_provision_dry_run_then_real_then_idempotent(sandbox, tmp_path, capsys, monkeypatch):
    import json

    from connector.client import DataverseClient
    from jobs.cli.main import main

    monkeypatch.setenv("DVSYNC__AUTH__TOKEN", sandbox.token)
    config = _config(sandbox, tmp_path)
    expected = len([o for o in load_mappings(SHIPPED_MAPPINGS, prefix="dvs").outputs if o.enabled])

    assert main(["provision", "--config", str(config), "--dry-run", "--json"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["dry_run"] and dry["created"] == expected and dry["published"] == []
    with DataverseClient(sandbox.url, lambda: sandbox.token) as client:
        assert "dvs_leadscore" not in client.get_table("lead").attributes

    assert main(["provision", "--config", str(config), "--json"]) == 0
    real = json.loads(capsys.readouterr().out)
    assert real["created"] == expected and sorted(real["published"]) == ["account", "contact", "lead"]
    with DataverseClient(sandbox.url, lambda: sandbox.token) as client:
        column = client.get_table("lead").attributes["dvs_leadscore"]
        assert column.attribute_type == "Integer"
        assert client.get_table("account").attributes["dvs_customersegment"].max_length == 50

    assert main(["provision", "--config", str(config)]) == 0
    assert "Nothing to do" in capsys.readouterr().out

    # check now finds every output column, and a sync mirrors their (empty) values for the plan.
    assert main(["check", "--config", str(config), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["to_provision"] == [] and report["identity"]["user_id"]
    assert main(["sync", "--config", str(config), "--table", "lead", "--json"]) == 0
    capsys.readouterr()
    from jobs.service.mirror import Mirror

    with Mirror(tmp_path / "m.sqlite") as mirror:
        leads = mirror.read_frame("lead")
    assert {"out_score", "out_grade", "out_sales_ready", "out_scored_on"} <= set(leads.columns)


def test_provision_survives_503s_and_dropped_connections_without_creating_twice(sandbox_factory, tmp_path):
    from connector.client import DataverseClient
    from connector.http import RetryPolicy
    from connector.sandbox import FaultConfig, SandboxConfig

    faulty = sandbox_factory(config=SandboxConfig(faults=FaultConfig(unavailable=0.1, drop=0.1, seed=3)))
    mappings = load_mappings(SHIPPED_MAPPINGS, prefix="dvs")
    expected = {o.logical_name for o in mappings.outputs if o.enabled}
    retry = RetryPolicy(sleep=lambda seconds: None)
    with DataverseClient(faulty.url, lambda: faulty.token, retry=retry) as client:
        report = provision(client, mappings, solution="dvsync", state=tmp_path / "note.json")
        assert {a.column for a in report.actions} == expected
        assert sorted(report.published) == ["account", "contact", "lead"]
        created = {
            name
            for table in ("lead", "account", "contact")
            for name in client.get_table(table).attributes
            if name.startswith("dvs_")
        }
    assert created == expected
    assert not (tmp_path / "note.json").exists()


def test_a_provision_that_could_not_publish_is_finished_by_the_next_and_check_says_so(
    sandbox, tmp_path, capsys, monkeypatch
):
    import json

    from connector.client import DataverseClient
    from connector.errors import ServiceUnavailableError
    from jobs.cli.main import main
    from jobs.service.provision import unpublished_path

    monkeypatch.setenv("DVSYNC__AUTH__TOKEN", sandbox.token)
    config = _config(sandbox, tmp_path)
    mappings = load_mappings(SHIPPED_MAPPINGS, prefix="dvs")
    note = unpublished_path(tmp_path / "m.sqlite")
    with DataverseClient(sandbox.url, lambda: sandbox.token) as client:

        def refuse(tables):
            raise ServiceUnavailableError("publishing is unavailable (gave up after 8 attempts)")

        monkeypatch.setattr(client, "publish", refuse)
        with pytest.raises(ServiceUnavailableError):
            provision(client, mappings, solution="dvsync", state=note)
    assert oct(note.stat().st_mode & 0o777) == "0o600"

    assert main(["check", "--config", str(config), "--json"]) == 2  # something to fix
    report = json.loads(capsys.readouterr().out)
    assert report["to_provision"] == [] and "lead.dvs_leadscore" in report["unpublished"]
    assert any("not published" in p["message"] for p in report["problems"])

    # Nothing is left to create, and the next provision still publishes what the first created.
    assert main(["provision", "--config", str(config), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["created"] == 0 and sorted(again["published"]) == ["account", "contact", "lead"]
    assert not note.exists()
    assert main(["check", "--config", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unpublished"] == []
