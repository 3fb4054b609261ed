"""Lead handling analytics: business minutes, first response, routing, stages, dormant leads, config."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError
from core.tomlfile import parse_toml
from jobs.leads.engagement import (
    BusinessCalendar,
    DormantSettings,
    ResolvedRule,
    ResponseSettings,
    StageSettings,
    business_minutes,
    dormant_leads,
    first_responses,
    lead_stages,
    parse_routing,
    parse_stage_settings,
    response_horizon,
    response_summary,
    route_leads,
)

WEEKDAYS_ALL = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
LONDON = BusinessCalendar(
    "Europe/London", ("Mon", "Tue", "Wed", "Thu", "Fri"), 9 * 60, 17 * 60 + 30, (date(2026, 12, 25),)
)


def slow_business_minutes(start: datetime, end: datetime, calendar: BusinessCalendar) -> int:
    """The reference: walk the local calendar day by day (independent of the vectorised clock)."""
    zone = ZoneInfo(calendar.time_zone)
    a, b = start.astimezone(zone), end.astimezone(zone)
    if b <= a:
        return 0
    total = 0.0
    day = a.date()
    names = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    while day <= b.date():
        if names[day.weekday()] in calendar.days and day not in calendar.holidays:
            opens = datetime(
                day.year, day.month, day.day, calendar.opens // 60, calendar.opens % 60, tzinfo=zone
            )
            closes = datetime(
                day.year, day.month, day.day, calendar.closes // 60, calendar.closes % 60, tzinfo=zone
            )
            lo, hi = max(a, opens), min(b, closes)
            if hi > lo:
                total += (hi - lo).total_seconds() / 60
        day += timedelta(days=1)
    return int(np.floor(total + 1e-9))


def series(*stamps: str | None) -> pd.Series:
    return pd.Series(pd.to_datetime(list(stamps), utc=True))


# ------------------------------------------------------------------------------------ business minutes


def test_business_minutes_skip_nights_weekends_and_holidays():
    start = series(
        "2026-12-04T16:00:00Z", "2026-12-04T08:00:00Z", "2026-12-05T10:00:00Z", "2026-12-24T17:00:00Z", None
    )
    end = series(
        "2026-12-07T09:30:00Z",
        "2026-12-04T09:05:00Z",
        "2026-12-07T10:00:00Z",
        "2026-12-28T09:10:00Z",
        "2026-12-28T09:10:00Z",
    )
    # Fri 16:00 -> Mon 09:30 is 90 + 30; before opening counts from 09:00; Saturday counts from
    # Monday's opening; Christmas Day is a holiday; a missing end is missing.
    assert business_minutes(start, end, LONDON).fillna(-1).tolist() == [120, 5, 60, 40, -1]


def test_business_minutes_agree_with_a_day_by_day_walk_across_daylight_saving():
    rng = np.random.default_rng(7)
    base = datetime(2026, 3, 20, tzinfo=UTC)  # spans the end of March change to summer time
    starts = [base + timedelta(minutes=float(m)) for m in rng.uniform(0, 60 * 24 * 30, 300)]
    ends = [
        s + timedelta(minutes=float(m))
        for s, m in zip(starts, rng.exponential(60 * 24 * 3, 300), strict=True)
    ]
    got = business_minutes(pd.Series(starts), pd.Series(ends), LONDON).tolist()
    assert got == [slow_business_minutes(s, e, LONDON) for s, e in zip(starts, ends, strict=True)]


# ------------------------------------------------------------------------------------ first response


def _activities(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(
        rows, columns=["lead_id", "activity_type", "occurred_on", "direction", "status", "owner_id"]
    )


def test_first_response_counts_only_completed_outgoing_work_by_a_person():
    leads = pd.DataFrame(
        {
            "lead_id": ["a", "b", "c", "d"],
            "created_on": pd.to_datetime(["2026-12-01T10:00:00Z"] * 4, utc=True),
        }
    )
    acts = _activities(
        [
            ("a", "email", "2026-12-01T10:01:00Z", "outgoing", "completed", "bot"),  # automation
            ("a", "email", "2026-12-01T10:02:00Z", "incoming", "completed", "rep"),  # the lead wrote
            ("a", "phonecall", "2026-12-01T10:04:00Z", "outgoing", "canceled", "rep"),  # never made
            ("a", "phonecall", "2026-12-01T10:30:00Z", "outgoing", "completed", "rep"),
            ("b", "appointment", "2026-12-01T09:00:00Z", None, "completed", "rep"),  # before creation
            ("b", "appointment", "2026-12-02T10:00:00Z", None, "completed", "rep"),
            ("c", "email", "2026-12-01T10:03:00Z", "outgoing", "completed", "REP"),
        ]
    )
    acts["occurred_on"] = pd.to_datetime(acts["occurred_on"], utc=True)
    settings = ResponseSettings(LONDON, sla_minutes=60)
    got = first_responses(leads, acts, settings, now=datetime(2026, 12, 3, 12, tzinfo=UTC), persons={"rep"})
    assert got["first_response_minutes"].fillna(-1).tolist() == [30, 510, 3, -1]
    assert got["first_response_by"].tolist()[:3] == ["rep", "rep", "rep"]
    # d: nobody answered and the target passed long ago, so it is a breach already.
    assert got["response_sla_met"].tolist() == [True, False, True, False]
    early = first_responses(
        leads, acts, settings, now=datetime(2026, 12, 1, 10, 20, tzinfo=UTC), persons={"rep"}
    )
    assert early.loc["d", "response_sla_met"] is pd.NA  # the clock still runs
    assert early.loc["d", "waiting_minutes"] == 20


@pytest.mark.parametrize(
    ("zone", "hours", "day"),
    [
        ("UTC", (0, 24 * 60), datetime(2026, 6, 3, tzinfo=UTC)),  # minutes as fast as the clock
        ("Europe/London", (0, 24 * 60), datetime(2026, 3, 29, tzinfo=UTC)),  # clocks jump forward
        ("Europe/London", (0, 24 * 60), datetime(2026, 10, 25, tzinfo=UTC)),  # 01:00-02:00 twice
        ("America/New_York", (9 * 60, 17 * 60), datetime(2026, 11, 2, tzinfo=UTC)),
    ],
)
def test_no_sla_flag_moves_before_the_response_horizon(zone, hours, day):
    rng = np.random.default_rng(int(day.strftime("%Y%m%d")))
    calendar = BusinessCalendar(time_zone=zone, days=WEEKDAYS_ALL, opens=hours[0], closes=hours[1])
    settings = ResponseSettings(calendar=calendar, sla_minutes=60)
    # The first moments: just before London's clocks change at 01:00 UTC.
    for minutes in [30, 59, *rng.uniform(0, 24 * 60, 12)]:
        now = day + timedelta(minutes=float(minutes))
        created = [now - timedelta(minutes=float(m)) for m in rng.uniform(-30, 240, 12)]
        leads = pd.DataFrame({"lead_id": [f"l{i}" for i in range(12)], "created_on": pd.Series(created)})
        at_now = first_responses(leads, None, settings, now=now)
        horizon = response_horizon(at_now, settings, now=now, until=now + timedelta(days=1))
        assert now - timedelta(minutes=61) <= horizon <= now + timedelta(days=1)
        for moment in [
            *(now + (horizon - now) * f for f in rng.uniform(0, 1, 5)),
            horizon - timedelta(0, 0, 1),
        ]:
            if moment >= now:
                later = first_responses(leads, None, settings, now=moment)
                assert later["response_sla_met"].equals(at_now["response_sla_met"]), (now, moment)
        born = (leads["created_on"] <= now).to_numpy()
        if zone == "UTC" and at_now["response_sla_met"].isna().to_numpy()[born].any():
            # Not vacuous: a minute past the horizon, the longest waiting lead has passed the target.
            after = first_responses(leads, None, settings, now=horizon + timedelta(minutes=1, seconds=2))
            assert after["response_sla_met"].eq(False).sum() > at_now["response_sla_met"].eq(False).sum()


def test_the_response_horizon_follows_the_business_hours():
    settings = ResponseSettings(calendar=LONDON, sla_minutes=60)
    # Friday 4 December 2026, 16:31 London (= UTC): nobody answered by the 17:30 close, 59 minutes.
    leads = pd.DataFrame({"lead_id": ["a"], "created_on": series("2026-12-04T16:31:00Z")})
    saturday = datetime(2026, 12, 5, 12, tzinfo=UTC)
    waiting = first_responses(leads, None, settings, now=saturday)
    assert waiting["waiting_minutes"].tolist() == [59] and waiting["response_sla_met"].isna().all()
    # The clock stands still over the weekend: the flags hold to the end of the day asked for ...
    end_of_day = datetime(2026, 12, 6, tzinfo=UTC)
    assert response_horizon(waiting, settings, now=saturday, until=end_of_day) == pd.Timestamp(end_of_day)
    # ... and at most to Monday 09:01 less a second: the wait's fraction of a minute is unknown from
    # the whole minutes, so the lead may pass its target then (this one does at 09:02).
    horizon = response_horizon(waiting, settings, now=saturday, until=saturday + timedelta(days=7))
    assert horizon == pd.Timestamp("2026-12-07T09:00:59Z")
    monday = first_responses(leads, None, settings, now=horizon + timedelta(minutes=1, seconds=2))
    assert monday["response_sla_met"].tolist() == [False]


def test_response_summary_reports_median_p90_and_breaches_per_group():
    responses = pd.DataFrame(
        {
            "first_response_minutes": pd.array([10, 20, 30, 400, None], dtype="Int64"),
            "response_sla_met": pd.array([True, True, True, False, False], dtype="boolean"),
        },
        index=list("abcde"),
    )
    labels = pd.DataFrame(
        {"owner": ["Ann", "Ann", "Bob", "Bob", None], "team": "T", "source": "Web"}, index=list("abcde")
    )
    summary = response_summary(responses, labels)
    assert summary["overall"] == {
        "leads": 5,
        "answered": 4,
        "median_minutes": 25.0,
        "p90_minutes": 289.0,
        "breaches": 2,
        "within_sla": 3,
    }
    assert summary["by_owner"]["Bob"]["breaches"] == 1
    assert summary["by_owner"]["(none)"]["answered"] == 0


# ------------------------------------------------------------------------------------ routing


ROUTING = """
[unassigned]
team = "Lead Intake"

[[rule]]
name = "Big"
when = { sales_ready = true, employees = { min = 200 } }
assign = "round_robin"
team = "Enterprise"

[[rule]]
name = "Partners"
when = { source = ["Partner"] }
assign = "fewest_open"
team = "Partner Sales"

[[rule]]
name = "Rest"
when = { grade = "a" }
assign = "team"
team = "Inside"
"""


def _leads(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "lead_id": [f"L{i:03d}" for i in range(n)],
            "status": np.where(np.arange(n) % 10 == 9, "qualified", "open"),
            "owner_id": np.where(np.arange(n) % 7 == 3, "rep-x", "intake"),
            "owner_type": np.where(np.arange(n) % 7 == 3, "systemuser", "team"),
            "created_on": pd.date_range("2026-01-01", periods=n, freq="h", tz="UTC"),
            "sales_ready": rng.random(n) < 0.6,
            "employees": rng.integers(10, 2000, n),
            "source": rng.choice(["Partner", "Web"], n),
            "grade": rng.choice(["A", "B"], n),
        }
    )


def _resolved() -> tuple[object, list[ResolvedRule]]:
    config = parse_routing(parse_toml(ROUTING, "routing.toml"))
    rules = [
        ResolvedRule(config.rules[0], "systemuser", ("u1", "u2", "u3"), cursor_key="enterprise"),
        ResolvedRule(config.rules[1], "systemuser", ("p1", "p2"), cursor_key="partner"),
        ResolvedRule(config.rules[2], "team", ("inside",)),
    ]
    return config, rules


def test_routing_assigns_by_first_matching_rule_and_never_moves_a_held_or_closed_lead():
    leads = _leads()
    config, rules = _resolved()
    got, cursors = route_leads(
        leads, rules, unassigned=("team", "intake"), open_counts={"p1": 5}, config=config
    )
    eligible = leads[(leads["status"] == "open") & (leads["owner_id"] == "intake")].set_index("lead_id")
    assert set(got.index) <= set(eligible.index.str.lower())
    held = leads.loc[(leads["owner_id"] != "intake") | (leads["status"] != "open"), "lead_id"].str.lower()
    assert not set(got.index) & set(held)
    big = eligible[eligible["sales_ready"] & (eligible["employees"] >= 200)].index.str.lower()
    assert set(got.index[got["rule"] == "Big"]) == set(big)
    counts = got.loc[got["rule"] == "Big", "owner_id"].value_counts()
    assert set(counts.index) == {"u1", "u2", "u3"} and counts.max() - counts.min() <= 1
    assert cursors["enterprise"] == len(big)
    # fewest_open: p1 already holds 5 open leads, so p2 gets leads until they are level.
    partners = got[got["rule"] == "Partners"].sort_index()
    assert partners["owner_id"].iloc[: min(5, len(partners))].eq("p2").all()
    assert got.loc[got["rule"] == "Rest", "owner_type"].eq("team").all()
    assert got["previous_owner_id"].eq("intake").all()


def test_round_robin_continues_from_the_cursor():
    leads = _leads().assign(sales_ready=True, employees=500)
    config, rules = _resolved()
    got, _ = route_leads(
        leads, rules[:1], unassigned=("team", "intake"), cursors={"enterprise": 1}, config=config
    )
    first = got.sort_values("previous_owner_id").index[0]
    ordered = (
        leads.assign(lead_id=leads["lead_id"].str.lower())
        .set_index("lead_id")
        .loc[got.index]
        .sort_values("created_on")
    )
    assert got.loc[ordered.index[0], "owner_id"] == "u2"
    assert first in got.index


def test_a_queue_rule_queues_and_leads_already_in_a_queue_are_left_alone():
    leads = _leads().assign(sales_ready=True, employees=500)
    config = parse_routing(
        parse_toml(
            '[unassigned]\nteam = "X"\n[[rule]]\nassign = "queue"\nqueue = "Hot Leads"\n', "routing.toml"
        )
    )
    assert config.rules[0].assign == "queue" and config.rules[0].target.kind == "queue"
    queued = {"l000", "l001"}
    got, _ = route_leads(
        leads,
        [ResolvedRule(config.rules[0], "queue", ("q1",))],
        unassigned=("team", "intake"),
        exclude=queued,
    )
    eligible = leads[(leads["status"] == "open") & (leads["owner_id"] == "intake")]["lead_id"].str.lower()
    assert set(got.index) == set(eligible) - queued
    assert got["owner_type"].eq("queue").all() and got["owner_id"].eq("q1").all()


def test_a_rule_on_a_column_the_leads_lack_names_the_line():
    config, rules = _resolved()
    with pytest.raises(ConfigError) as err:
        route_leads(_leads().drop(columns=["employees"]), rules, unassigned=("team", "intake"), config=config)
    assert "routing.toml:7" in str(err.value) and "employees" in str(err.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[unassigned]\nteam = "X"\n[[rule]]\nasign = "team"\n',
            "unknown key `asign` (did you mean `assign`?)",
        ),
        (
            '[unassigned]\nteam = "X"\n[[rule]]\nassign = "round_robbin"\nteam = "T"\n',
            "did you mean `round_robin`?",
        ),
        ('[[rule]]\nassign = "team"\nteam = "T"\n', "need [unassigned]"),
        ('[response]\ntime_zone = "Mars/Olympus"\n', "unknown time zone"),
        ('[response]\nhours = ["17:00", "09:00"]\n', "closing time must be after"),
        ('[unassigned]\nteam = "X"\nuser = "Y"\n', "name exactly one of"),
        ('[unassigned]\nteam = "X"\n[[rule]]\nassign = "queue"\nteam = "T"\n', "takes `queue`, not `team`"),
    ],
)
def test_routing_file_mistakes_name_file_line_and_fix(text, expected):
    with pytest.raises(ConfigError) as err:
        parse_routing(parse_toml(text, "routing.toml"))
    assert expected in str(err.value) and "routing.toml:" in str(err.value)


# ------------------------------------------------------------------------------------ stages, dormant


def test_stages_follow_the_thresholds():
    points = pd.DataFrame(
        {
            "engagement_points": [0, 4.99, 5, 15, 30, 30],
            "fit_points": [50, 50, 24, 25, 0, 0],
            "score": [10, 10, 20, 40, 69, 70],
        },
        index=list("abcdef"),
    )
    got = lead_stages(points, StageSettings(warm_engagement=5, hot_engagement=15, mql_fit=25), sales_ready=70)
    assert got["temperature"].tolist() == ["Cold", "Cold", "Warm", "Hot", "Hot", "Hot"]
    assert got["lifecycle_stage"].tolist() == ["Lead", "Lead", "Lead", "MQL", "Lead", "SQL"]


def test_stage_settings_are_validated():
    stage, dormant = parse_stage_settings(
        parse_toml("[stage]\nsql_score = 80\n[dormant]\ndays = 30\n", "s.toml")
    )
    assert stage.sql_score == 80 and dormant.days == 30
    with pytest.raises(ConfigError, match=r"s.toml:2 .*must be above warm_engagement"):
        parse_stage_settings(parse_toml("[stage]\nhot_engagement = 1\n", "s.toml"))


def test_dormant_leads_are_flagged_with_the_reason_and_clear_when_activity_resumes():
    now = datetime(2026, 6, 1, tzinfo=UTC)
    leads = pd.DataFrame(
        {"lead_id": ["a", "b", "c", "d"], "created_on": pd.to_datetime(["2025-01-01"] * 4, utc=True)}
    )
    fit = pd.DataFrame(
        {
            "fit_points": [30, 30, 10, 40],
            "fit_factors": [["Source = Partner: +15", "Title: +10"], [], [], []],
        },
        index=list("abcd"),
    )
    acts = _activities(
        [
            ("a", "phonecall", "2026-03-01T10:00:00Z", "outgoing", "completed", "rep"),
            ("b", "email", "2026-05-20T10:00:00Z", "incoming", "completed", "rep"),
            ("c", "email", "2026-01-01T10:00:00Z", "outgoing", "completed", "rep"),
            ("a", "email", "2026-05-30T10:00:00Z", "outgoing", "canceled", "rep"),  # cancelled: not activity
        ]
    )
    got = dormant_leads(leads, fit, acts, DormantSettings(days=60, min_fit=25), now=now)
    assert got["reengage"].tolist() == [True, False, False, True]  # b is recent, c is a poor fit
    assert got.loc["a", "reengage_reason"] == (
        "No activity for 92 days (last: phone call on 2026-03-01); "  # calendar days, 91.6 elapsed
        "fit 30 points: Source = Partner: +15; Title: +10"
    )
    assert got.loc["d", "reengage_reason"].startswith("No activity since it was created 516 days ago")
    assert pd.isna(got.loc["b", "reengage_reason"])
    resumed = pd.concat(
        [acts, _activities([("a", "email", "2026-05-31T10:00:00Z", "incoming", "completed", "x")])]
    )
    assert not dormant_leads(leads, fit, resumed, DormantSettings(days=60, min_fit=25), now=now).loc[
        "a", "reengage"
    ]


def test_quiet_days_are_utc_calendar_days_so_every_run_of_a_day_agrees():
    leads = pd.DataFrame(
        {"lead_id": ["late", "early"], "created_on": pd.to_datetime(["2026-05-31T23:30:00Z"] * 2, utc=True)}
    )
    fit = pd.DataFrame({"fit_points": [30, 30], "fit_factors": [[], []]}, index=["late", "early"])
    acts = _activities([("early", "email", "2026-05-31T00:10:00Z", "outgoing", "completed", "rep")])
    acts = acts.assign(occurred_on=pd.to_datetime(acts["occurred_on"], utc=True))
    settings = DormantSettings(days=1, min_fit=25)
    for hour, minute in ((0, 0), (0, 20), (23, 59)):  # the whole of 1 June
        got = dormant_leads(leads, fit, acts, settings, now=datetime(2026, 6, 1, hour, minute, tzinfo=UTC))
        assert got["quiet_days"].tolist() == [1, 1]  # 30 minutes and 23 h 50 min ago: both yesterday
        assert got["reengage"].tolist() == [True, True]
    same_day = dormant_leads(leads, fit, acts, settings, now=datetime(2026, 5, 31, 23, 59, tzinfo=UTC))
    assert same_day["quiet_days"].tolist() == [0, 0] and not same_day["reengage"].any()


# ------------------------------------------------------------------------------------ settings, outputs


def test_routing_is_off_until_an_admin_enables_it(tmp_path):
    from jobs.service.settings_load import load_settings

    assert load_settings(None, env={}).routing.enabled is False
    assert load_settings(None, env={"DVSYNC__ROUTING__ENABLED": "true"}).routing.enabled is True
    config = tmp_path / "config.toml"
    config.write_text("[routing]\nenabled = true\n", encoding="utf-8")
    assert load_settings(config, env={}).routing.enabled is True


def test_a_choice_output_is_written_as_its_option_value():
    from jobs.service.mapping import load_mappings

    mappings = load_mappings("mappings", prefix="dvs")
    temperature = next(o for o in mappings.outputs if o.result == "temperature")
    assert temperature.type == "choice" and temperature.dtype == "int"
    assert temperature.to_wire(pd.Series(["Hot", "cold", None])) == [100000002, 100000000, None]
    # What the mirror read back (option values) compares equal, so an unchanged stage is not rewritten.
    assert temperature.to_wire(pd.Series([100000002, 100000000]), scaled=True) == [100000002, 100000000]
    with pytest.raises(ValueError, match="not an option"):
        temperature.to_wire(pd.Series(["Lukewarm"]))


def test_the_rules_in_docs_routing_md_are_valid():
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "routing.md").read_text(encoding="utf-8")
    blocks = [
        b
        for b in re.findall(r"```toml\n(.*?)```", text, re.S)
        if ("[unassigned]" in b or "[response]" in b) and '"..."' not in b  # the reference has placeholders
    ]
    assert len(blocks) >= 4
    for block in blocks:
        if "[[rule]]" in block and "name =" in block and "[unassigned]" in block:
            config = parse_routing(parse_toml(block, "docs/routing.md"))
            assert config.rules and config.unassigned is not None
        elif block.lstrip().startswith("[response]"):
            parse_routing(parse_toml(block, "docs/routing.md"))


def test_the_run_report_shows_speed_to_lead_per_team():
    from io import StringIO

    from rich.console import Console

    from jobs.cli.render import render_run
    from jobs.service.compute import JobOutcome
    from jobs.service.pipeline import PipelineResult

    figures = {"leads": 4, "answered": 3, "median_minutes": 42.0, "p90_minutes": 97.5, "breaches": 2}
    job = JobOutcome(
        "lead_handling",
        message="4 open leads",
        details={"speed_to_lead": {"sla_minutes": 60, "by_team": {"Inside Sales": figures}}},
    )
    buffer = StringIO()
    render_run(PipelineResult(run_id=7, outcome="ok", jobs=[job]), Console(file=buffer, width=160))
    text = buffer.getvalue()
    assert "Speed to lead, business minutes (target 60)" in text
    assert "Inside Sales" in text and "97.5" in text


def test_check_says_routing_needs_the_owner_mapped(tmp_path):
    from jobs.service.routing import check_routing

    (tmp_path / "routing.toml").write_text('[unassigned]\nteam = "Lead Intake"\n', encoding="utf-8")
    (problem,) = check_routing(tmp_path, None, enabled=True, lead_fields=["email", "status"])
    assert problem.key == "routing.enabled" and 'owner_id = { column = "ownerid"' in str(problem)
    assert check_routing(tmp_path, None, enabled=False, lead_fields=["email"]) == []


def test_check_refuses_a_choice_output_whose_options_the_column_lacks():
    from connector.metadata import ColumnDefinition, TableDefinition
    from jobs.service.mapping import load_mappings, validate_against_org

    mappings = load_mappings("mappings", prefix="dvs")
    lead = mappings.tables["lead"]
    temperature = next(o for o in mappings.outputs if o.result == "temperature")
    existing = {100000000: "Cold", 100000001: "Warm"}  # someone made the column without Hot
    columns = {c: ColumnDefinition(c, "String") for f in lead.fields.values() for c in [f.column] if c}
    columns["statecode"] = ColumnDefinition(
        "statecode", "State", options={0: "Open", 1: "Qualified", 2: "Disqualified"}
    )
    columns[temperature.logical_name] = ColumnDefinition(
        temperature.logical_name, "Picklist", options=existing
    )
    definition = TableDefinition("lead", "leads", "leadid", "fullname", True, columns)
    problems, _ = validate_against_org(lead, definition, [temperature])
    texts = [str(p) for p in problems if "options" in (p.key or "")]
    assert texts == [
        "[lead.temperature.options]: choice column `dvs_leadtemperature` on lead has no option 100000002 "
        "(use the column's option values: 100000000 = 'Cold', 100000001 = 'Warm')"
    ]


def test_choice_outputs_with_options_and_dvsync_defined_choices_live_together(tmp_path):
    from jobs.service.mapping import MappingErrors, load_outputs
    from jobs.service.provision import column_spec

    entry = '[lead.{result}]\ncolumn = "{column}"\ntype = "choice"\ndisplay_name = "x"\ndescription = "x"\n'
    stage = (
        entry.format(result="lifecycle_stage", column="Stage")
        + 'options = { 100000000 = "Lead", 100000001 = "MQL" }\n'
    )
    decision = entry.format(result="duplicate_decision", column="Decision")
    (tmp_path / "outputs.toml").write_text(stage + decision, encoding="utf-8")
    by_result = {o.result: o for o in load_outputs(tmp_path / "outputs.toml", "dvs")}
    assert by_result["lifecycle_stage"].to_wire(pd.Series(["mql", None])) == [100000001, None]
    assert by_result["duplicate_decision"].to_wire(pd.Series([123450001.0, None])) == [123450001, None]
    assert column_spec(by_result["lifecycle_stage"]).options == ((100000000, "Lead"), (100000001, "MQL"))
    decided = column_spec(by_result["duplicate_decision"]).options
    assert decided == ((None, "Merge into suggested master"), (None, "Not a duplicate"), (None, "Keep both"))
    # Options are asked for where the job defines labels, refused where dvsync defines them.
    (tmp_path / "outputs.toml").write_text(
        entry.format(result="temperature", column="T") + decision + 'options = { 1 = "Merge" }\n',
        encoding="utf-8",
    )
    with pytest.raises(MappingErrors) as caught:
        load_outputs(tmp_path / "outputs.toml", "dvs")
    keys = {p.key for p in caught.value.problems}
    assert keys == {"lead.temperature.options", "lead.duplicate_decision.options"}


def test_run_report_lines_up_the_job_statuses_whatever_the_job_names():
    from io import StringIO

    from rich.console import Console

    from jobs.cli.render import render_run
    from jobs.service.compute import JobOutcome
    from jobs.service.pipeline import PipelineResult

    jobs = [JobOutcome("rfm", message="m1"), JobOutcome("lead_handling", status="partial", message="m2")]
    buffer = StringIO()
    render_run(PipelineResult(run_id=3, outcome="ok", jobs=jobs), Console(file=buffer, width=160))
    lines = [line for line in buffer.getvalue().splitlines() if line.startswith(("rfm", "lead_handling"))]
    assert [line.index(status) for line, status in zip(lines, ("ok", "partial"), strict=True)] == [14, 14]
