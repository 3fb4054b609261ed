"""Lead routing, speed-to-lead, stages and re-engagement over real HTTP against the sandbox.

The seed plants who owns each lead (Lead Intake holds a share of the open ones), teams with members
(and a disabled one), an application user that sends automated e-mail, and the first response by
a person per lead; these tests grade a run against that ground truth.
"""

from __future__ import annotations

from datetime import UTC

import numpy as np
import pandas as pd
from conftest import SEED_NOW, dataverse_session
from pipeline_support import (  # noqa: F401 - fixtures
    patch,
    provisioned_template,
    psandbox,
    read_columns,
    settings_for,
    write_config,
)
from test_lead_engagement import slow_business_minutes

from connector.sandbox.seed.org import TEAMS, team_id, user_id
from jobs.cli.main import main
from jobs.leads.engagement import load_routing, load_stage_settings
from jobs.leads.scoring import load_rules, score_with_rules
from jobs.service.compute import scoring_moment
from jobs.service.connect import connect
from jobs.service.mapping import load_mappings
from jobs.service.mirror import Mirror
from jobs.service.pipeline import run_pipeline
from jobs.service.rollback import rollback
from jobs.service.routing import OWNER_COLUMN, check_routing
from jobs.service.status import collect_status

LEAD_TABLES = ["lead", "email", "phonecall", "appointment"]
LOOKUP_TABLE = "Microsoft.Dynamics.CRM.lookuplogicalname"
OUT = {
    "minutes": "dvs_firstresponseminutes",
    "sla": "dvs_responseslamet",
    "temperature": "dvs_leadtemperature",
    "stage": "dvs_leadlifecyclestage",
    "reengage": "dvs_reengage",
    "sales_ready": "dvs_salesready",
}


def owners(sandbox) -> dict[str, tuple[str, str]]:
    """Every lead's owner as Dynamics has it: id -> (table, owner id)."""
    url = f"{sandbox.api_url}leads?$select=leadid,_ownerid_value"
    out: dict[str, tuple[str, str]] = {}
    with dataverse_session(sandbox) as s:
        while url:
            page = s.get(
                url,
                headers={"Prefer": f'odata.maxpagesize=5000,odata.include-annotations="{LOOKUP_TABLE}"'},
                timeout=30,
            ).json()
            for r in page["value"]:
                out[r["leadid"]] = (r[f"_ownerid_value@{LOOKUP_TABLE}"], r["_ownerid_value"])
            url = page.get("@odata.nextLink")
    return out


def members(sandbox, team: str) -> set[str]:
    with dataverse_session(sandbox) as s:
        rows = s.get(f"{sandbox.api_url}teammemberships?$select=systemuserid,teamid", timeout=30).json()[
            "value"
        ]
        users = s.get(f"{sandbox.api_url}systemusers?$select=systemuserid,isdisabled", timeout=30).json()[
            "value"
        ]
    enabled = {u["systemuserid"] for u in users if not u["isdisabled"]}
    return {r["systemuserid"] for r in rows if r["teamid"] == team_id(team)} & enabled


def test_routing_speed_to_lead_stages_and_rollback_against_the_seed(psandbox, tmp_path, capsys):  # noqa: F811
    config = write_config(
        tmp_path / "routing", psandbox, tables=LEAD_TABLES, extra="[routing]\nenabled = true\n"
    )
    settings = settings_for(config, psandbox)
    mappings = load_mappings(settings.mappings.dir, prefix="dvs")
    truth = pd.read_csv(psandbox.data_dir / "ground_truth" / "lead_owners.csv").set_index("leadid")
    before = owners(psandbox)
    assert {o for o, _ in before.values()} == {"team", "systemuser"}
    clock = lambda: SEED_NOW  # noqa: E731 - the seed's "now"

    with connect(settings) as client, Mirror(settings.mirror.path) as mirror:
        dry = run_pipeline(client, mirror, mappings, settings, jobs=["scoring"], dry_run=True, clock=clock)
        assert dry.ok, dry.error
        planned = dry.plan[dry.plan["column_name"] == OWNER_COLUMN]
        assert len(planned) > 20
        assert owners(psandbox) == before  # a dry run writes nothing

        run = run_pipeline(client, mirror, mappings, settings, jobs=["scoring"], dry_run=False, clock=clock)
        assert run.ok, run.error
        routing = run.as_dict()["jobs"]["lead_handling"]["routing"]
        after = owners(psandbox)

        # Only unassigned open leads moved, exactly the planned ones; nobody a person holds.
        moved = {k for k in after if after[k] != before[k]}
        assert moved == set(planned["record_id"])
        assert not moved & set(truth.index[truth["held_by_person"]])
        assert all(before[k] == ("team", team_id("Lead Intake")) for k in moved)

        # Every unassigned open lead above the threshold has an owner from the matching team.
        leads = read_columns(psandbox, "leads", ["statecode", "numberofemployees", OUT["sales_ready"]])
        unassigned = [
            k for k, (_, o) in before.items() if o == team_id("Lead Intake") and leads[k]["statecode"] == 0
        ]
        enterprise, inside, partner = (
            members(psandbox, t) for t in ("Enterprise Sales", "Inside Sales", "Partner Sales")
        )
        assert user_id("Karl", "Former") not in inside  # the disabled member never receives leads
        for lead in unassigned:
            if not leads[lead][OUT["sales_ready"]]:
                continue
            owner = after[lead][1]
            if (leads[lead]["numberofemployees"] or 0) >= 200:
                assert owner in enterprise, lead
            else:
                assert owner in inside | partner, lead
        for rule, counts in routing["by_rule"].items():
            if rule != "Partner and referral leads":  # fewest_open balances load, not counts
                assert max(counts.values()) - min(counts.values()) <= 1, (rule, counts)

        # Response minutes equal those computed from the seeded activities.
        calendar = load_routing(mappings.directory / "routing.toml").response
        response = pd.read_csv(psandbox.data_dir / "ground_truth" / "lead_response.csv").set_index("leadid")
        written = read_columns(psandbox, "leads", ["statecode", OUT["minutes"], OUT["sla"], OUT["reengage"]])
        open_ids = [k for k, v in written.items() if v["statecode"] == 0]
        checked = 0
        for lead in open_ids:
            created = pd.Timestamp(response.loc[lead, "createdon"]).to_pydatetime()
            first = response.loc[lead, "first_response_on"]
            if pd.isna(first):
                assert written[lead][OUT["minutes"]] is None
                waited = slow_business_minutes(created, SEED_NOW, calendar.calendar)
                assert written[lead][OUT["sla"]] == (False if waited > calendar.sla_minutes else None)
                continue
            expected = slow_business_minutes(created, pd.Timestamp(first).to_pydatetime(), calendar.calendar)
            assert written[lead][OUT["minutes"]] == expected, lead
            assert written[lead][OUT["sla"]] == (expected <= calendar.sla_minutes)
            checked += 1
        assert checked > 200

        # Stages and re-engagement flags match their thresholds.
        frame = mirror.read_frame("lead")
        frame = frame[frame["status"] == "open"]
        acts = mirror.read_entity("activity")
        rules = load_rules(mappings.directory / "scoring.toml")
        stage, dormant = load_stage_settings(mappings.directory / "scoring.toml")
        # As of the moment the score shown describes (the end of the run's UTC day).
        points = score_with_rules(frame, rules, as_of=scoring_moment(SEED_NOW), activities=acts)
        points.index = points.index.astype(str).str.lower()
        shown = read_columns(psandbox, "leads", [OUT["temperature"], OUT["stage"], "dvs_leadscore"])
        labels = {100000000: "Cold", 100000001: "Warm", 100000002: "Hot"}
        hot = points["engagement_points"] >= stage.hot_engagement
        warm = points["engagement_points"] >= stage.warm_engagement
        want = np.where(hot, "Hot", np.where(warm, "Warm", "Cold"))
        assert [labels[shown[k][OUT["temperature"]]] for k in points.index] == list(want)
        stages = {100000000: "Lead", 100000001: "MQL", 100000002: "SQL"}
        sql_score = stage.sql_score if stage.sql_score is not None else rules.sales_ready
        score = pd.Series({k: shown[k]["dvs_leadscore"] for k in points.index})
        lifecycle = np.where(
            score >= sql_score, "SQL", np.where(warm & (points["fit_points"] >= stage.mql_fit), "MQL", "Lead")
        )
        assert [stages[shown[k][OUT["stage"]]] for k in points.index] == list(lifecycle)
        assert set(lifecycle) == {"Lead", "MQL", "SQL"}
        done = acts[acts["status"] == "completed"]
        last = pd.to_datetime(done.groupby(done["lead_id"].str.lower())["occurred_on"].max(), utc=True)
        since = last.reindex(points.index).fillna(
            pd.to_datetime(frame.set_index(frame["lead_id"].str.lower())["created_on"], utc=True)
        )
        quiet = (pd.Timestamp(SEED_NOW).normalize() - since.dt.normalize()).dt.days  # calendar days
        flagged = (quiet >= dormant.days) & (points["fit_points"] >= dormant.min_fit)
        assert flagged.any() and not flagged.all()
        assert [written[k][OUT["reengage"]] for k in points.index] == flagged.tolist()

        # A second run with nothing new writes nothing (no owner either).
        again = run_pipeline(client, mirror, mappings, settings, jobs=["scoring"], dry_run=False, clock=clock)
        assert again.ok and again.plan.empty

        # `dvsync status --json` shows the latest speed-to-lead summary per owner, team and source.
        summary = collect_status(mirror, settings.schedule)["speed_to_lead"]
        assert summary["run_id"] == again.run_id and summary["sla_minutes"] == calendar.sla_minutes
        assert summary["computed_in_run"] == again.run_id  # routing: computed on every run
        assert pd.Timestamp(summary["valid_until"]) <= scoring_moment(SEED_NOW)  # the end of the day at most
        assert summary["overall"]["breaches"] > 0 and summary["overall"]["median_minutes"] > 0
        assert set(summary["by_team"]) >= {"Enterprise Sales", "Inside Sales", "Partner Sales"}
        assert "Karl Former" in summary["by_owner"] and "Web" in summary["by_source"]
        assert main(["--config", str(config), "status"]) == 0
        assert "Speed to lead, business minutes" in capsys.readouterr().out

        # A person takes one routed lead; rollback restores every other owner and refuses that one.
        taken = sorted(moved)[0]
        patch(psandbox, "leads", taken, {"ownerid@odata.bind": f"/systemusers({user_id('Amelia', 'Hart')})"})
        undo = rollback(client, mirror, mappings, settings, run.run_id)
    final = owners(psandbox)
    assert final[taken] == ("systemuser", user_id("Amelia", "Hart"))
    assert all(final[k] == before[k] for k in moved - {taken})
    refused = [r for r in undo.refusals if r["column"] == OWNER_COLUMN]
    assert [r["record_id"] for r in refused] == [taken]
    assert len(TEAMS) == 4 and SEED_NOW.tzinfo is UTC


BAD_ROUTING = """\
[unassigned]
queue = "Inbound Leads"

[[rule]]
name = "Enterprise"
assign = "round_robin"
team = "Enterprise Sale"

[[rule]]
name = "To the automation"
assign = "user"
user = "Marketing Automation"
"""


def test_check_names_routing_users_and_teams_the_org_does_not_have(sandbox, tmp_path):
    config = write_config(tmp_path / "check", sandbox, tables=LEAD_TABLES)
    settings = settings_for(config, sandbox)
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    (mappings / "routing.toml").write_text(BAD_ROUTING, encoding="utf-8")
    with connect(settings) as client:
        problems = [str(p) for p in check_routing(mappings, client, enabled=True)]
        good = check_routing(
            load_mappings(settings.mappings.dir, prefix="dvs").directory, client, enabled=True
        )
    routing = str(mappings / "routing.toml")
    assert (
        f"{routing}:7 [rule.0.team]: no team `Enterprise Sale` in the org (did you mean `Enterprise Sales`?)"
        in problems
    )
    assert any(f"{routing}:12 [rule.1.user]" in p and "application user" in p for p in problems)
    # The queue resolves to the team that owns it (Lead Intake): no problem there.
    assert len(problems) == 2, problems
    assert good == []  # the shipped routing.toml names only what the sandbox has
