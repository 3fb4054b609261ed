"""Views, charts and form sections: provisioned over real HTTP, kept idempotent, and what sales see."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import dataverse_session
from pipeline_support import (  # noqa: F401 - fixtures
    provisioned_template,
    psandbox,
    settings_for,
    write_config,
)

from connector.sandbox.customizations import solution_components
from core.errors import ConfigError
from jobs.cli.walkthrough import MAPPINGS_DIR
from jobs.service.check import check
from jobs.service.connect import connect
from jobs.service.mapping import MappingErrors, load_mappings
from jobs.service.mirror import Mirror
from jobs.service.pipeline import run_pipeline
from jobs.service.views import load_views, provision_customizations, read_view, record_id_for
from jobs.service.views.xml import SECTION_NAME, fingerprint

VIEWS = MAPPINGS_DIR / "views.toml"
BAD_FORM = (
    "<form><tabs><tab><columns><column><sections><section><rows><row><cell>"
    '<control id="x" datafieldname="nosuchcolumn"/>'
    "</cell></row></rows></section></sections></column></columns></tab></tabs></form>"
)


@pytest.fixture
def setup(psandbox, tmp_path):  # noqa: F811 - the imported fixture
    config = write_config(tmp_path / "run", psandbox, tables=None)
    settings = settings_for(config, psandbox)
    mappings = load_mappings(settings.mappings.dir, prefix="dvs")
    views = load_views(VIEWS, mappings)
    with connect(settings) as client:
        yield settings, mappings, views, client


def _view(views, key):
    return next(v for v in views.views if v.key == key)


def _forms(sandbox) -> dict[str, str]:
    with dataverse_session(sandbox) as s:
        body = s.get(sandbox.api_url + "systemforms?$select=objecttypecode,formxml&$filter=type eq 2").json()
    return {f["objecttypecode"]: f["formxml"] for f in body["value"]}


def test_views_and_charts_are_created_in_the_solution_and_a_second_provision_changes_nothing(setup, psandbox):  # noqa: F811
    _, _, views, client = setup
    first = provision_customizations(client, views, solution="dvsync")
    assert [a.status for a in first.actions] == ["created"] * (len(views.views) + len(views.charts))
    assert first.published == ["lead", "account", "contact"]
    second = provision_customizations(client, views, solution="dvsync")
    assert {a.status for a in second.actions} == {"unchanged"} and second.published == []
    members = solution_components(psandbox.store.conn(), "dvsync")
    assert members["savedquery"] == {record_id_for("view", v.table, v.key) for v in views.views}
    assert len(members["savedqueryvisualization"]) == len(views.charts)


def test_hottest_open_leads_returns_the_open_leads_by_score_after_a_run(setup, psandbox):  # noqa: F811
    settings, mappings, views, client = setup
    provision_customizations(client, views, solution="dvsync")
    with Mirror(settings.mirror.path) as mirror:
        result = run_pipeline(client, mirror, mappings, settings, jobs=["scoring"])
    assert result.ok, result.error
    view = _view(views, "hottest_open_leads")
    shown = client.run_saved_query("leads", record_id_for("view", "lead", view.key), top=25)
    with dataverse_session(psandbox) as s:
        expected = s.get(
            psandbox.api_url
            + "leads?$select=leadid,dvs_leadscore&$filter=statecode eq 0 and dvs_leadscore ne null"
            "&$orderby=dvs_leadscore desc,leadid asc&$top=25"
        ).json()["value"]
    scores = [r["dvs_leadscore"] for r in shown]
    assert len(shown) == 25 and scores == sorted(scores, reverse=True)
    assert scores == [r["dvs_leadscore"] for r in expected]
    rows = read_view(client, view, top=3)
    assert list(rows[0]) == list(view.labels) and rows[0]["Lead Score"] == str(scores[0])


def test_the_form_section_appears_once_and_is_removed_cleanly(setup, psandbox):  # noqa: F811
    _, _, views, client = setup
    before = _forms(psandbox)
    preview = provision_customizations(client, views, solution="dvsync", forms=True, dry_run=True)
    forms = [a for a in preview.actions if a.kind == "form"]
    assert [a.status for a in forms] == ["would add"] * 3
    added = [line for line in forms[0].detail.splitlines() if line.startswith("+")]
    assert any(f'<section name="{SECTION_NAME}"' in line for line in added)
    assert _forms(psandbox) == before  # a dry run changes nothing
    provision_customizations(client, views, solution="dvsync", forms=True)
    again = provision_customizations(client, views, solution="dvsync", forms=True)
    assert [a.status for a in again.actions if a.kind == "form"] == ["unchanged"] * 3
    for table, formxml in _forms(psandbox).items():
        sections = [s for s in ET.fromstring(formxml).iter("section") if s.get("name") == SECTION_NAME]
        assert len(sections) == 1, table
        fields = [c.get("datafieldname") for c in sections[0].iter("control")]
        spec = next(f for f in views.forms if f.table == table)
        assert fields == list(spec.columns)
    removed = provision_customizations(client, views, solution="dvsync", remove_forms=True)
    assert [a.status for a in removed.actions if a.kind == "form"] == ["removed"] * 3
    after = _forms(psandbox)
    assert {t: fingerprint(x) for t, x in after.items()} == {t: fingerprint(x) for t, x in before.items()}
    assert members_forms(psandbox) == 3


def members_forms(sandbox) -> int:
    return len(solution_components(sandbox.store.conn(), "dvsync").get("systemform", set()))


def test_a_view_changed_in_dynamics_is_reported_and_kept_unless_forced(setup, psandbox):  # noqa: F811
    _, _, views, client = setup
    provision_customizations(client, views, solution="dvsync")
    view = _view(views, "accounts_by_value")
    view_id = record_id_for("view", "account", view.key)
    consultant_layout = (
        '<grid name="resultset" object="1" jump="name" select="1" icon="1" preview="1">'
        '<row name="result" id="accountid"><cell name="name" width="300"/></row></grid>'
    )
    with dataverse_session(psandbox) as s:
        s.patch(
            f"{psandbox.api_url}savedqueries({view_id})",
            json={"layoutxml": consultant_layout},
            headers={"If-Match": "*"},
        ).raise_for_status()
    kept = provision_customizations(client, views, solution="dvsync")
    action = next(a for a in kept.actions if a.name == view.name and a.table == "account")
    assert action.status == "kept" and "--force" in action.detail and "-<cell" not in action.detail
    assert '+    <cell name="dvs_customersegment"' in action.detail
    assert client.get_record("savedqueries", view_id, ["layoutxml"])["layoutxml"] == consultant_layout
    forced = provision_customizations(client, views, solution="dvsync", force=True)
    assert (
        next(a for a in forced.actions if a.name == view.name and a.table == "account").status == "replaced"
    )
    restored = client.get_record("savedqueries", view_id, ["layoutxml"])["layoutxml"]
    assert "dvs_customersegment" in restored


def test_the_sandbox_refuses_xml_dataverse_refuses_and_runs_views_by_id(psandbox):  # noqa: F811
    fetch = '<fetch><entity name="lead"><attribute name="fullname"/></entity></fetch>'
    layout = '<grid name="resultset" object="4"><row name="result" id="leadid"><cell name="{}"/></row></grid>'
    with dataverse_session(psandbox) as s:
        url = psandbox.api_url
        bad = s.post(
            url + "savedqueries",
            json={
                "name": "x",
                "returnedtypecode": "lead",
                "querytype": 0,
                "fetchxml": fetch,
                "layoutxml": layout.format("companyname"),
            },
        )
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "0x80040203"
        assert "companyname" in bad.json()["error"]["message"]
        made = s.post(
            url + "savedqueries",
            json={
                "name": "x",
                "returnedtypecode": "lead",
                "querytype": 0,
                "fetchxml": fetch,
                "layoutxml": layout.format("fullname"),
            },
        )
        assert made.status_code == 204
        view_id = made.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
        assert s.get(url + f"leads?savedQuery={view_id}").status_code == 200
        assert s.get(url + f"accounts?savedQuery={view_id}").status_code == 400
        assert s.get(url + "leads?savedQuery=5a1e8d52-0000-0000-0000-000000000000").status_code == 404
        form = s.post(
            url + "systemforms",
            json={
                "name": "f",
                "objecttypecode": "lead",
                "type": 2,
                "formxml": BAD_FORM,
            },
        )
        assert form.status_code == 400 and "nosuchcolumn" in form.json()["error"]["message"]


def test_views_file_mistakes_are_reported_at_their_line_with_the_fix(tmp_path):
    mappings = load_mappings(MAPPINGS_DIR, prefix="dvs")
    path = tmp_path / "views.toml"
    path.write_text(
        "language = 1033\n"
        "[views.a]\n"
        'table = "lead"\n'
        'name = "A"\n'
        'columns = ["fullname", "scroe"]\n'
        'filter = [{ column = "statecode", operator = "equals", value = 0 }]\n'
        "[charts.b]\n"
        'table = "leed"\n'
        'name = "B"\n'
        'category = "grade"\n',
        encoding="utf-8",
    )
    with pytest.raises(MappingErrors) as caught:
        load_views(path, mappings)
    text = [str(p) for p in caught.value.problems]
    assert any(":6 [views.a.filter.0.operator]" in t and "equals" in t for t in text), text
    assert any(":8 [charts.b.table]" in t and "did you mean `lead`" in t for t in text), text
    # `scroe` is not a result, so it is taken as a column's logical name: dvsync check asks the org.
    assert not any("scroe" in t for t in text)


def test_check_names_a_view_column_the_org_does_not_have(setup, tmp_path):
    settings, mappings, _, client = setup
    directory = tmp_path / "mappings"
    directory.mkdir()
    for source in Path(settings.mappings.dir).glob("*.toml"):
        (directory / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    views = (directory / "views.toml").read_text(encoding="utf-8")
    (directory / "views.toml").write_text(
        views.replace('"companyname", "score"', '"compnyname", "score"'), encoding="utf-8"
    )
    settings.mappings.dir = directory
    report = check(settings, client, mappings=mappings)
    found = [p for p in report.problems if isinstance(p, ConfigError) and "compnyname" in str(p)]
    assert (
        len(found) == 1 and "views.toml:" in str(found[0]) and "did you mean `companyname`" in str(found[0])
    )
