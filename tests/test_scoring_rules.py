"""Rule-based lead scoring: every rule type against hand-computed points, and bad configuration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError
from jobs.errors import JobInputError
from jobs.leads.scoring import attach_related, load_rules, parse_rules, score_with_rules
from jobs.leads.scoring.common import DEFAULT_GRADES, Grades
from jobs.leads.scoring.rules import decay_weights

AS_OF = pd.Timestamp("2026-06-30T12:00:00Z")
ROOT = Path(__file__).resolve().parents[1]

HEADER = """
[score]
max_points = 100
sales_ready = 70
top_factors = 5

[decay]
method = "none"
lookback_days = 90
"""


def rules(body: str, header: str = HEADER):
    return parse_rules(header + body, "mappings/scoring.toml")


def leads(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    return pd.DataFrame({"lead_id": [f"L{i}" for i in range(n)], **columns})


def acts(*rows) -> pd.DataFrame:
    """rows: (lead_id, type, age in days before AS_OF, direction)."""
    return pd.DataFrame(
        {
            "lead_id": [r[0] for r in rows],
            "activity_type": [r[1] for r in rows],
            "occurred_on": [AS_OF - pd.Timedelta(days=r[2]) for r in rows],
            "direction": [r[3] if len(r) > 3 else None for r in rows],
        }
    )


NO_ACTS = acts()


# ---------------------------------------------------------------- fit rules


def test_equals_and_in_compare_text_case_insensitively_and_say_the_leads_value():
    cfg = rules(
        """
[[rule]]
column = "source"
op = "in"
values = ["Employee Referral", "Partner"]
points = 15
[[rule]]
column = "source"
op = "equals"
value = "web"
points = 5
"""
    )
    out = score_with_rules(
        leads(source=["employee referral", "Web", "Advertisement", None]), cfg, as_of=AS_OF
    )
    assert out["raw_points"].tolist() == [15, 5, 0, 0]
    assert out["score"].tolist() == [15, 5, 0, 0]
    assert out.loc["L0", "factors"] == ["Source = employee referral: +15"]
    assert out.loc["L1", "factors"] == ["Source = Web: +5"]
    assert out.loc["L2", "factors"] == []


def test_not_in_does_not_fire_on_missing_values():
    cfg = rules('[[rule]]\ncolumn = "country"\nop = "not_in"\nvalues = ["France"]\npoints = -10\n')
    out = score_with_rules(leads(country=["France", "Chile", None]), cfg, as_of=AS_OF)
    assert out["raw_points"].tolist() == [0, -10, 0]


def test_keywords_match_whole_words_case_insensitively_once_or_each_time_with_cap():
    body = """
[[rule]]
column = "job_title"
op = "contains_any"
keywords = ["cto", "Head of", "vp"]
points = 10
"""
    titles = ["Director of Sales", "CTO", "head  of IT", "VP Sales and CTO", "Victor", None]
    once = score_with_rules(leads(job_title=titles), rules(body), as_of=AS_OF)
    # "cto" is inside "director" and "vp" inside nothing: whole words only.
    assert once["raw_points"].tolist() == [0, 10, 10, 10, 0, 0]
    assert once.loc["L3", "factors"] == ["Job title contains 'cto', 'vp': +10"]
    each = score_with_rules(
        leads(job_title=titles), rules(body + 'fire = "each_time"\ncap = 15\n'), as_of=AS_OF
    )
    assert each["raw_points"].tolist() == [0, 10, 10, 15, 0, 0]  # 2 keywords x 10 capped at 15


def test_between_is_min_inclusive_max_exclusive_and_open_ended():
    cfg = rules(
        """
[[rule]]
column = "employees"
op = "between"
min = 50
max = 200
points = 5
[[rule]]
column = "employees"
op = "between"
min = 200
points = 8
"""
    )
    out = score_with_rules(leads(employees=[49, 50, 199, 200, 5000, None]), cfg, as_of=AS_OF)
    assert out["raw_points"].tolist() == [0, 5, 5, 8, 8, 0]
    assert out.loc["L1", "factors"] == ["Employees = 50 (50 to under 200): +5"]
    assert out.loc["L4", "factors"] == ["Employees = 5,000 (200 or more): +8"]


def test_comparison_operators_and_missing_present():
    cfg = rules(
        """
[[rule]]
column = "revenue"
op = "gte"
value = 1000000
points = 5
[[rule]]
column = "budget"
op = "lt"
value = 1000
points = -4
[[rule]]
column = "phone"
op = "is_missing"
points = -3
[[rule]]
column = "website"
op = "is_present"
points = 2
"""
    )
    frame = leads(
        revenue=[1_000_000, 999_999.5, None],
        budget=[500, 1000, None],
        phone=["+1 555", "  ", None],
        website=["contoso.com", None, ""],
    )
    out = score_with_rules(frame, cfg, as_of=AS_OF)
    assert out["raw_points"].tolist() == [5 - 4 + 2, -3, -3]
    assert "Revenue = 1,000,000 (at least 1,000,000): +5" in out.loc["L0", "factors"]
    assert "Phone is blank: -3" in out.loc["L1", "factors"]


def test_free_mail_and_business_domains_with_extra_domains_from_config():
    header = HEADER + '\n[email]\nfree_mail_domains_extra = ["isp.example"]\n'
    cfg = rules(
        """
[[rule]]
column = "email"
op = "business_email"
points = 10
[[rule]]
column = "email"
op = "free_email"
points = -5
""",
        header,
    )
    emails = ["Ann@Gmail.com", "bob@contoso.com", "eve@mail.yahoo.com", "x@isp.example", "not-an-email", None]
    out = score_with_rules(leads(email=emails), cfg, as_of=AS_OF)
    assert out["raw_points"].tolist() == [-5, 10, -5, -5, 0, 0]
    assert out.loc["L0", "factors"] == ["Personal email address (gmail.com): -5"]
    assert out.loc["L1", "factors"] == ["Business email address (contoso.com): +10"]


def test_infinite_numbers_count_as_missing_so_no_output_is_infinite():
    r = rules(
        '[[rule]]\nkind = "engagement"\ncolumn = "visits"\npoints = 2\n'
        '[[rule]]\nkind = "fit"\ncolumn = "revenue"\nop = "gt"\nvalue = 10\npoints = 5\n'
    )
    frame = leads(visits=[np.inf, -np.inf, 3.0], revenue=[np.inf, 20.0, -np.inf])
    out = score_with_rules(frame, r, as_of=AS_OF)
    assert np.isfinite(out["raw_points"]).all()
    assert out["raw_points"].tolist() == [0.0, 5.0, 6.0]
    assert not any("inf" in sentence for sentences in out["factors"] for sentence in sentences)


def test_rule_name_replaces_the_generated_words():
    cfg = rules(
        '[[rule]]\nname = "Came through a partner"\ncolumn = "source"\n'
        'op = "equals"\nvalue = "Partner"\npoints = 7\n'
    )
    out = score_with_rules(leads(source=["Partner"]), cfg, as_of=AS_OF)
    assert out.loc["L0", "factors"] == ["Came through a partner: +7"]


# ---------------------------------------------------------------- activity rules and decay


def test_decay_weights_at_several_ages():
    ages = np.array([-1, 0, 15, 30, 45, 60, 90, 91])
    half = decay_weights(ages, method="half_life", window_days=90, half_life_days=30)
    assert half.tolist() == pytest.approx([0, 1, 2**-0.5, 0.5, 2**-1.5, 0.25, 0.125, 0])
    linear = decay_weights(ages, method="linear", window_days=90, half_life_days=30)
    assert linear.tolist() == pytest.approx([0, 1, 1 - 15 / 90, 2 / 3, 0.5, 1 / 3, 0, 0])
    flat = decay_weights(ages, method="none", window_days=90, half_life_days=30)
    assert flat.tolist() == [0, 1, 1, 1, 1, 1, 1, 0]


ACTIVITY_EMAIL_IN = """
[[rule]]
kind = "activity"
activity_type = "email"
direction = "incoming"
window_days = 30
points = 4
"""


def test_each_time_counts_every_activity_in_the_window_and_the_sentence_says_how_many():
    cfg = rules(ACTIVITY_EMAIL_IN)
    a = acts(
        ("L0", "email", 1, "incoming"),
        ("L0", "email", 10, "incoming"),
        ("L0", "email", 29, "incoming"),
        ("L0", "email", 31, "incoming"),  # outside the 30-day window
        ("L0", "email", 2, "outgoing"),  # wrong direction
        ("L0", "phonecall", 2, "incoming"),  # wrong type
        ("L1", "email", 3, "incoming"),
    )
    out = score_with_rules(leads(source=["x", "y", "z"]), cfg, as_of=AS_OF, activities=a)
    assert out["raw_points"].tolist() == [12, 4, 0]
    assert out.loc["L0", "factors"] == ["3 incoming emails in the last 30 days: +12"]
    assert out.loc["L1", "factors"] == ["1 incoming email in the last 30 days: +4"]


def test_each_time_cap_and_once():
    a = acts(*[("L0", "email", d, "incoming") for d in (1, 2, 3, 4, 5)])
    capped = score_with_rules(
        leads(x=[1]), rules(ACTIVITY_EMAIL_IN + "cap = 10\n"), as_of=AS_OF, activities=a
    )
    assert capped["raw_points"].tolist() == [10]
    once = score_with_rules(
        leads(x=[1]), rules(ACTIVITY_EMAIL_IN + 'fire = "once"\n'), as_of=AS_OF, activities=a
    )
    assert once["raw_points"].tolist() == [4]
    assert once.loc["L0", "factors"] == ["5 incoming emails in the last 30 days: +4"]


def test_half_life_decay_through_scoring_and_once_uses_the_most_recent():
    header = HEADER.replace('method = "none"', 'method = "half_life"\nhalf_life_days = 10')
    body = '[[rule]]\nkind = "activity"\nactivity_type = "phonecall"\nwindow_days = 60\npoints = 8\n'
    a = acts(
        ("L0", "phonecall", 0), ("L0", "phonecall", 10), ("L1", "phonecall", 20), ("L1", "phonecall", 30)
    )
    each = score_with_rules(leads(x=[1, 2]), rules(body, header), as_of=AS_OF, activities=a)
    assert each["raw_points"].tolist() == pytest.approx([8 + 4, 2 + 1])
    once = score_with_rules(
        leads(x=[1, 2]), rules(body + 'fire = "once"\n', header), as_of=AS_OF, activities=a
    )
    assert once["raw_points"].tolist() == pytest.approx([8, 2])
    assert once.loc["L1", "factors"] == ["2 phone calls in the last 60 days: +2"]


def test_linear_decay_and_future_activities_do_not_count():
    header = HEADER.replace('method = "none"', 'method = "linear"')
    body = '[[rule]]\nkind = "activity"\nactivity_type = "appointment"\nwindow_days = 40\npoints = 10\n'
    a = acts(("L0", "appointment", 10), ("L0", "appointment", -5), ("L1", "appointment", 30))
    out = score_with_rules(leads(x=[1, 2]), rules(body, header), as_of=AS_OF, activities=a)
    assert out["raw_points"].tolist() == pytest.approx([7.5, 2.5])
    assert out.loc["L0", "factors"] == ["1 appointment in the last 40 days: +7.5"]


def test_if_none_penalises_silence_and_cancelled_activities_do_not_count():
    body = (
        '[[rule]]\nkind = "activity"\nactivity_type = "any"\nwindow_days = 60\n'
        'fire = "if_none"\npoints = -10\n'
    )
    a = acts(("L0", "email", 5, "incoming"), ("L1", "phonecall", 70), ("L2", "appointment", 3))
    a["status"] = ["completed", "completed", "Canceled"]
    out = score_with_rules(leads(x=[1, 2, 3]), rules(body), as_of=AS_OF, activities=a)
    assert out["raw_points"].tolist() == [0, -10, -10]
    assert out.loc["L1", "factors"] == ["No activity in the last 60 days: -10"]


def test_engagement_column_each_time_capped_once_and_decayed_by_date():
    header = HEADER.replace('method = "none"', 'method = "half_life"\nhalf_life_days = 30')
    body = """
[[rule]]
kind = "engagement"
column = "web_visits"
points = 2
cap = 10
[[rule]]
kind = "engagement"
column = "downloads"
fire = "once"
date_column = "last_download_on"
points = 6
"""
    frame = leads(
        web_visits=[3, 8, None],
        downloads=[1, 2, 0],
        last_download_on=[AS_OF, AS_OF - pd.Timedelta(days=30), None],
    )
    out = score_with_rules(frame, rules(body, header), as_of=AS_OF)
    assert out["raw_points"].tolist() == pytest.approx([6 + 6, 10 + 3, 0])
    assert out.loc["L0", "factors"] == ["Web visits = 3: +6", "Downloads = 1: +6"]


# ---------------------------------------------------------------- normalising, grades, factors


def test_negative_totals_clip_to_zero_max_points_scales_and_half_rounds_up():
    header = HEADER.replace("max_points = 100", "max_points = 40")
    body = """
[[rule]]
column = "rating"
op = "equals"
value = "Hot"
points = 5
[[rule]]
column = "rating"
op = "equals"
value = "Cold"
points = -20
[[rule]]
column = "budget"
op = "gt"
value = 0
points = 50
"""
    frame = leads(rating=["Hot", "Cold", "Hot"], budget=[0, 0, 10])
    out = score_with_rules(frame, rules(body, header), as_of=AS_OF)
    # 5/40*100 = 12.5 -> 13 (half up); -20 -> 0; 55/40*100 = 137.5 -> 100
    assert out["score"].tolist() == [13, 0, 100]
    assert out["raw_points"].tolist() == [5, -20, 55]


def test_grade_boundaries_and_sales_ready_threshold():
    body = '[[rule]]\ncolumn = "p"\nop = "gte"\nvalue = -1000\npoints = 0\n'
    values = [0, 24, 25, 49, 50, 69, 70, 74, 75, 100]
    # One engagement rule whose points equal the column: the score is the value itself.
    cfg = rules('[[rule]]\nkind = "engagement"\ncolumn = "p"\npoints = 1\n' + body)
    out = score_with_rules(leads(p=values), cfg, as_of=AS_OF)
    assert out["score"].tolist() == values
    assert out["grade"].tolist() == ["D", "D", "C", "C", "B", "B", "B", "B", "A", "A"]
    assert out["sales_ready"].tolist() == [False] * 6 + [True] * 4


def test_factors_are_the_top_rules_by_absolute_points_split_by_sign():
    header = HEADER.replace("top_factors = 5", "top_factors = 2")
    body = """
[[rule]]
column = "source"
op = "equals"
value = "Partner"
points = 15
[[rule]]
column = "rating"
op = "equals"
value = "Cold"
points = -20
[[rule]]
column = "country"
op = "equals"
value = "Chile"
points = 3
"""
    out = score_with_rules(
        leads(source=["Partner"], rating=["Cold"], country=["Chile"]), rules(body, header), as_of=AS_OF
    )
    assert out.loc["L0", "factors"] == ["Rating = Cold: -20", "Source = Partner: +15"]
    assert out.loc["L0", "positive_factors"] == ["Source = Partner: +15"]
    assert out.loc["L0", "negative_factors"] == ["Rating = Cold: -20"]


def test_grades_must_be_contiguous_non_overlapping_and_cover_0_to_100():
    with pytest.raises(
        ConfigError, match=r"grade B \[50, 75\] overlaps grade A|grade A \[75, 100\] overlaps grade B"
    ):
        Grades.from_mapping({"A": [75, 100], "B": [50, 75], "C": [0, 49]})
    with pytest.raises(ConfigError, match=r"scores 50\.\.59 have no grade"):
        Grades.from_mapping({"A": [60, 100], "B": [0, 49]})
    with pytest.raises(ConfigError, match=r"scores 91\.\.100 have no grade"):
        Grades.from_mapping({"A": [50, 90], "B": [0, 49]})
    with pytest.raises(ConfigError, match=r"scores 0\.\.9 have no grade"):
        Grades.from_mapping({"A": [50, 100], "B": [10, 49]})
    assert DEFAULT_GRADES.as_dict() == {"A": [75, 100], "B": [50, 74], "C": [25, 49], "D": [0, 24]}


def test_lead_ids_come_from_the_index_when_there_is_no_lead_id_column():
    cfg = rules('[[rule]]\ncolumn = "source"\nop = "equals"\nvalue = "Web"\npoints = 5\n')
    frame = pd.DataFrame({"source": ["Web", "Fax"]}, index=pd.Index(["a", "b"], name="id"))
    out = score_with_rules(frame, cfg, as_of=AS_OF)
    assert out.index.tolist() == ["a", "b"] and out.index.name == "lead_id"
    with pytest.raises(ConfigError, match="not unique"):
        score_with_rules(pd.DataFrame({"lead_id": ["a", "a"], "source": ["Web", "Web"]}), cfg, as_of=AS_OF)


def test_attach_related_lets_rules_read_account_columns():
    frame = leads(account_id=["A1", "A2", None])
    accounts = pd.DataFrame(
        {"account_id": ["A1", "A2"], "industry": ["Financial", "Wholesale"], "employees": [900, 3]}
    )
    joined = attach_related(frame, accounts, on="account_id", related_id="account_id", prefix="account_")
    cfg = rules('[[rule]]\ncolumn = "account_industry"\nop = "equals"\nvalue = "Financial"\npoints = 9\n')
    out = score_with_rules(joined, cfg, as_of=AS_OF)
    assert out["raw_points"].tolist() == [9, 0, 0]
    assert out.loc["L0", "factors"] == ["Account industry = Financial: +9"]


def test_the_shipped_rules_file_scores_canonical_leads():
    cfg = load_rules(ROOT / "mappings" / "scoring.toml")
    canonical = leads(
        source=["Employee Referral", "Web"],
        job_title=["Head of Procurement", "Student"],
        employees=[450, 3],
        revenue=[2e7, None],
        budget=[75000, None],
        purchase_timeframe=["This Quarter", "Unknown"],
        rating=["Hot", "Cold"],
        email=["ann@contoso.com", "bob@hotmail.com"],
        phone=["+44 20 7946 0000", None],
        country=["United Kingdom", "France"],
    )
    a = acts(("L0", "email", 2, "incoming"), ("L0", "appointment", 5), ("L0", "phonecall", 9, "outgoing"))
    out = score_with_rules(canonical, cfg, as_of=AS_OF, activities=a)
    assert out.loc["L0", "grade"] == "A" and out.loc["L0", "sales_ready"]
    assert out.loc["L1", "score"] == 0 and out.loc["L1", "grade"] == "D"
    assert "No activity in the last 60 days: -10" in out.loc["L1", "factors"]


# ---------------------------------------------------------------- bad configuration


@pytest.mark.parametrize(
    ("body", "where", "message"),
    [
        (
            '[[rule]]\ncolumn = "source"\nop = "equal"\nvalue = "Web"\npoints = 5\n',
            ":12 [rule.0.op]",
            "did you mean `equals`",
        ),
        (
            '[[rule]]\nkind = "firmographic"\ncolumn = "source"\npoints = 5\n',
            ":11 [rule.0.kind]",
            "unknown rule kind",
        ),
        (
            '[[rule]]\ncolumn = "source"\nop = "in"\npoints = 5\n',
            ":10 [rule.0]",
            "operator `in` needs `values`",
        ),
        (
            '[[rule]]\ncolumn = "x"\nop = "between"\nmin = 5\nmax = 1\npoints = 5\n',
            ":14 [rule.0.max]",
            "greater than min",
        ),
        (
            '[[rule]]\ncolumn = "x"\nop = "is_missing"\npoints = 5\ncap = 3\n',
            ":14 [rule.0.cap]",
            "only applies",
        ),
        ('[[rule]]\ncolumn = "x"\nop = "is_missing"\npont = 5\n', ":13 [rule.0.pont]", "unknown key `pont`"),
        ('[[rule]]\ncolumn = "x"\nop = "is_missing"\n', ":10 [rule.0]", "has no `points`"),
        (
            '[[rule]]\nkind = "activity"\nactivity_type = "sms"\npoints = 5\n',
            ":12 [rule.0.activity_type]",
            "sms",
        ),
        (
            "[grades]\nA = [70, 100]\nB = [0, 70]\n",
            ":11 [grades.A]",
            "grade A [70, 100] overlaps grade B [0, 70]",
        ),
        ('[decay]\nmethod = "exponential"\n', "[decay.method]", "unknown decay method"),
    ],
)
def test_bad_configuration_names_file_line_and_key(body, where, message):
    with pytest.raises(ConfigError) as caught:
        # Line numbers count from HEADER's 9 lines; a body with its own [decay] replaces HEADER's.
        rules(body, HEADER.split("[decay]")[0] if "[decay]" in body else HEADER)
    text = str(caught.value)
    assert text.startswith("mappings/scoring.toml")
    assert where in text
    assert message in text


def test_a_rule_on_a_column_that_is_not_in_the_data_names_the_rule():
    cfg = rules('[[rule]]\ncolumn = "sorce"\nop = "equals"\nvalue = "Web"\npoints = 5\n')
    with pytest.raises(ConfigError) as caught:
        score_with_rules(leads(source=["Web"]), cfg, as_of=AS_OF)
    assert str(caught.value).startswith(
        "mappings/scoring.toml:11 [rule.0.column]: column `sorce` is not in the lead data"
    )
    assert "did you mean `source`?" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        score_with_rules(leads(source=["Web"]), load_rules(ROOT / "mappings" / "scoring.toml"), as_of=AS_OF)
    text = str(caught.value)
    assert "column `job_title` is not in the lead data; other rules also read missing column(s)" in text
    assert "`budget`, `email`, `employees`, `phone`, `purchase_timeframe`, `rating`, `revenue`" in text
    assert "map it in mappings/lead.toml, join it onto the leads, or remove the rule" in text
    with pytest.raises(ConfigError, match=r"\[rule\.0\.column\]"):
        parse_rules(
            HEADER + '[[rule]]\ncolumn = "sorce"\nop = "is_missing"\npoints = 1\n',
            "m.toml",
            columns=["source"],
        )


def test_numeric_rule_on_a_text_column_and_activity_rules_without_activities():
    cfg = rules('[[rule]]\ncolumn = "source"\nop = "gt"\nvalue = 3\npoints = 5\n')
    with pytest.raises(ConfigError, match=r"\[rule\.0\.column\].*holds text"):
        score_with_rules(leads(source=["Web"]), cfg, as_of=AS_OF)
    with pytest.raises(ConfigError, match=r"\[rule\.0\.kind\].*no activities were given"):
        score_with_rules(leads(x=[1]), rules(ACTIVITY_EMAIL_IN), as_of=AS_OF)
    with pytest.raises(ConfigError, match="no column"):
        score_with_rules(
            leads(x=[1]), rules(ACTIVITY_EMAIL_IN), as_of=AS_OF, activities=pd.DataFrame({"lead_id": []})
        )


def test_a_rules_file_without_rules_is_a_config_error():
    with pytest.raises(ConfigError, match=r"scoring.toml.*\[rule\].*no \[\[rule\]\] entries"):
        rules("")


@pytest.mark.parametrize("as_of", ["soon", pd.NaT, None])
def test_an_as_of_that_is_not_a_moment_is_a_clear_error(as_of):
    # NaT used to score silently with every activity aged out of the window.
    one = rules('[[rule]]\nkind = "activity"\npoints = 5\n')
    with pytest.raises(JobInputError, match="as_of"):
        score_with_rules(leads(source=["Web"]), one, as_of=as_of, activities=acts(("L0", "email", 1)))


def test_missing_rules_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_rules(tmp_path / "scoring.toml")


def test_activities_with_unknown_or_missing_types_are_config_errors():
    cfg = rules(ACTIVITY_EMAIL_IN)
    bad = acts(("L0", "sms", 1, "incoming"))
    with pytest.raises(
        ConfigError, match=r"\[activity.activity_type\]: unknown activity type\(s\) \['sms'\]"
    ):
        score_with_rules(leads(x=[1]), cfg, as_of=AS_OF, activities=bad)
    untyped = acts(("L0", None, 1, "incoming"))
    with pytest.raises(ConfigError, match="1 activities have no activity_type"):
        score_with_rules(leads(x=[1]), cfg, as_of=AS_OF, activities=untyped)
    # Activities regarding something other than a lead (no lead_id) are not lead engagement.
    other = acts(("L0", "email", 1, "incoming"), (None, "email", 1, "incoming"))
    assert score_with_rules(leads(x=[1]), cfg, as_of=AS_OF, activities=other)["raw_points"].tolist() == [4]
