"""The consultant's lead-handling settings: routing rules, business hours, stage and dormancy thresholds.

Two files hold them, each key documented in the file itself:

- ``mappings/routing.toml``: ``[unassigned]`` (the owner that holds leads nobody has taken yet),
  ordered ``[[rule]]`` s (which open leads go to whom, and how), and ``[response]`` (the business
  calendar and the response target for speed-to-lead).
- ``mappings/scoring.toml``: ``[stage]`` (cold / warm / hot and Lead / MQL / SQL thresholds) and
  ``[dormant]`` (when a quiet lead with a good fit is flagged for re-engagement).

Parsing checks everything that can be checked offline (types, ranges, known keys, a time zone that
exists) and names ``file:line [key]`` with a fix for any mistake. Whether the users, teams and
queue named in the rules exist is checked against the org by ``dvsync check``; whether a rule's
columns exist, against the lead columns when the rules are applied.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from core.errors import ConfigError
from core.tomlfile import TomlFile, closest, load_toml

__all__ = [
    "ASSIGN_METHODS",
    "WEEKDAYS",
    "BusinessCalendar",
    "Condition",
    "DormantSettings",
    "Principal",
    "ResponseSettings",
    "RoutingConfig",
    "RoutingRule",
    "StageSettings",
    "load_routing",
    "load_stage_settings",
]

ASSIGN_METHODS = ("round_robin", "fewest_open", "team", "user", "queue")
"""``round_robin`` and ``fewest_open`` pick a member of ``team``; ``team`` and ``user`` give the lead
to that team or user itself; ``queue`` puts it in that queue (its owner does not change)."""
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class Principal:
    """A user, team or queue named in the rules (resolved to an id against the org by the service).

    Attributes:
        kind: ``user``, ``team`` or ``queue``.
        name: its name as the org shows it (a user's full name, a team's or queue's name), or its id.
        key: where it was written, for errors.
    """

    kind: str
    name: str
    key: tuple[str | int, ...] = ()


@dataclass(frozen=True)
class Condition:
    """One test a rule makes on a lead column.

    Attributes:
        column: the lead column (a mapped field such as ``source``, or a score result: ``score``,
            ``grade``, ``sales_ready``).
        equals: the values that match (text compares case-insensitively); empty when a range.
        min_value, max_value: a range ``min <= value < max`` (either may be missing).
        present: ``True``/``False`` to match a filled/empty column.
    """

    column: str
    equals: tuple[Any, ...] = ()
    min_value: float | None = None
    max_value: float | None = None
    present: bool | None = None


@dataclass(frozen=True)
class RoutingRule:
    """One ordered routing rule: the first rule a lead matches decides its owner.

    Attributes:
        index: the rule's position (0-based) in the file.
        name: what the report and the audit call it.
        conditions: all must hold (an empty list matches every unassigned open lead).
        assign: one of :data:`ASSIGN_METHODS`.
        target: the team (round_robin, fewest_open, team), user (user) or queue (queue) leads go to.
    """

    index: int
    name: str
    conditions: tuple[Condition, ...]
    assign: str
    target: Principal


@dataclass(frozen=True)
class BusinessCalendar:
    """When the sales team works: weekdays, opening hours and holidays, in one time zone.

    Attributes:
        time_zone: an IANA zone (``Europe/London``); hours are wall-clock time there, so a working
            day keeps its length across daylight-saving changes.
        days: the working weekdays (``Mon``...``Sun``).
        opens, closes: minutes after local midnight.
        holidays: local dates with no working hours.
    """

    time_zone: str = "UTC"
    days: tuple[str, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri")
    opens: int = 9 * 60
    closes: int = 17 * 60
    holidays: tuple[date, ...] = ()

    @property
    def minutes_per_day(self) -> int:
        """Working minutes in one working day."""
        return self.closes - self.opens

    @property
    def weekmask(self) -> str:
        """The working days as numpy's busday weekmask (Monday first)."""
        return "".join("1" if d in self.days else "0" for d in WEEKDAYS)


@dataclass(frozen=True)
class ResponseSettings:
    """Speed-to-lead: the calendar responses are counted in, the target, and the report window.

    Attributes:
        calendar: the business hours.
        sla_minutes: a response within this many business minutes meets the target.
        report_days: the summaries cover leads created on the run's UTC day and this many days before.
    """

    calendar: BusinessCalendar = field(default_factory=BusinessCalendar)
    sla_minutes: int = 60
    report_days: int = 90


@dataclass(frozen=True)
class RoutingConfig:
    """``mappings/routing.toml``, parsed.

    Attributes:
        unassigned: the owner that holds leads nobody has taken (a user, team or queue; for a queue,
            the queue's owner holds them).
        rules: in file order.
        response: the speed-to-lead settings.
        doc: the parsed file, for errors that point at a line.
    """

    unassigned: Principal | None
    rules: tuple[RoutingRule, ...]
    response: ResponseSettings
    doc: TomlFile | None = field(default=None, repr=False, compare=False)

    def error(self, key: tuple[str | int, ...], message: str, hint: str | None = None) -> ConfigError:
        """A ConfigError pointing at ``key`` in the file."""
        if self.doc is not None:
            return self.doc.error(key, message, hint)
        return ConfigError(message, key=".".join(map(str, key)), hint=hint)


@dataclass(frozen=True)
class StageSettings:
    """``[stage]`` of scoring.toml: temperature from engagement points, lifecycle from fit and score.

    Attributes:
        warm_engagement: engagement points (activity and engagement rules, decayed) that make a lead
            Warm; below it a lead is Cold.
        hot_engagement: engagement points that make it Hot.
        mql_fit: fit points (fit rules) a Warm or Hot lead needs to be an MQL.
        sql_score: the score that makes a lead an SQL (default: the sales-ready threshold).
    """

    warm_engagement: float = 5.0
    hot_engagement: float = 15.0
    mql_fit: float = 25.0
    sql_score: int | None = None


@dataclass(frozen=True)
class DormantSettings:
    """``[dormant]`` of scoring.toml: quiet leads with a good fit are flagged for re-engagement.

    Attributes:
        days: days without a completed activity (or since creation, when there was none).
        min_fit: the fit points that count as a good fit.
        factors: how many fit factors the reason names.
    """

    days: int = 60
    min_fit: float = 25.0
    factors: int = 3


# ---------------------------------------------------------------------------------- helpers


def _only_keys(doc: TomlFile, key: tuple[str | int, ...], table: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise doc.error(key, "must be a table of keys")
    for name in table:
        if name not in allowed:
            near = closest(name, allowed)
            hint = f"did you mean `{near[0]}`?" if near else f"allowed keys: {', '.join(sorted(allowed))}"
            raise doc.error((*key, name), f"unknown key `{name}`", hint)
    return table


def _number(doc: TomlFile, key: tuple[str | int, ...], value: Any, *, minimum: float | None = 0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise doc.error(key, f"must be a number, not {value!r}")
    if minimum is not None and value < minimum:
        raise doc.error(key, f"must be at least {minimum:g}, not {value!r}")
    return float(value)


def _whole(doc: TomlFile, key: tuple[str | int, ...], value: Any, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise doc.error(key, f"must be a whole number of at least {minimum}, not {value!r}")
    return int(value)


def _text(doc: TomlFile, key: tuple[str | int, ...], value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise doc.error(key, "must be a non-empty text")
    return value.strip()


def _minutes(doc: TomlFile, key: tuple[str | int, ...], value: Any) -> int:
    match = _TIME.match(value) if isinstance(value, str) else None
    if not match:
        raise doc.error(key, f'must be a time like "09:00", not {value!r}')
    return int(match.group(1)) * 60 + int(match.group(2))


# ---------------------------------------------------------------------------------- routing.toml


def _principal(
    doc: TomlFile, key: tuple[str | int, ...], table: dict[str, Any], kinds: tuple[str, ...]
) -> Principal:
    named = [k for k in kinds if k in table]
    if len(named) != 1:
        raise doc.error(
            key,
            f"name exactly one of {', '.join(kinds)}",
            f'e.g. {kinds[0]} = "{"Lead Intake" if kinds[0] != "user" else "Jane Doe"}"',
        )
    kind = named[0]
    return Principal(kind, _text(doc, (*key, kind), table[kind]), (*key, kind))


def _condition(doc: TomlFile, key: tuple[str | int, ...], column: str, raw: Any) -> Condition:
    if isinstance(raw, dict):
        _only_keys(doc, key, raw, {"min", "max", "present", "not"})
        if "present" in raw:
            if not isinstance(raw["present"], bool) or len(raw) > 1:
                raise doc.error((*key, "present"), "`present` is true or false, on its own")
            return Condition(column, present=raw["present"])
        if "not" in raw:
            raise doc.error((*key, "not"), "`not` is not supported", "list the values that match instead")
        if not raw:
            raise doc.error(key, "give `min`, `max` or both", "e.g. { min = 1000 }")
        lo = _number(doc, (*key, "min"), raw["min"], minimum=None) if "min" in raw else None
        hi = _number(doc, (*key, "max"), raw["max"], minimum=None) if "max" in raw else None
        if lo is not None and hi is not None and lo >= hi:
            raise doc.error((*key, "min"), "`min` must be below `max` (the range is min <= value < max)")
        return Condition(column, min_value=lo, max_value=hi)
    values = raw if isinstance(raw, list) else [raw]
    if not values or any(isinstance(v, dict | list) for v in values):
        raise doc.error(key, "a value, a list of values, or { min, max } / { present }")
    return Condition(column, equals=tuple(values))


def _rule(doc: TomlFile, index: int, raw: Any) -> RoutingRule:
    key: tuple[str | int, ...] = ("rule", index)
    _only_keys(doc, key, raw, {"name", "when", "assign", "team", "user", "queue"})
    assign = raw.get("assign")
    if assign not in ASSIGN_METHODS:
        near = closest(str(assign), ASSIGN_METHODS)
        hint = f"did you mean `{near[0]}`?" if near else f"use one of {', '.join(ASSIGN_METHODS)}"
        raise doc.error((*key, "assign"), f"unknown assign method {assign!r}", hint)
    kinds = (str(assign),) if assign in ("user", "queue") else ("team",)
    wrong = {"team", "user", "queue"} - set(kinds)
    for other in sorted(wrong):
        if other in raw:
            raise doc.error((*key, other), f"assign = {assign!r} takes `{kinds[0]}`, not `{other}`")
    target = _principal(doc, key, raw, kinds)
    when = raw.get("when", {})
    if not isinstance(when, dict):
        raise doc.error((*key, "when"), "`when` is a table: column = value, [values] or { min, max }")
    conditions = tuple(_condition(doc, (*key, "when", c), c, v) for c, v in when.items())
    name = _text(doc, (*key, "name"), raw["name"]) if "name" in raw else f"rule {index + 1}"
    return RoutingRule(index, name, conditions, str(assign), target)


def _calendar(doc: TomlFile, raw: dict[str, Any]) -> BusinessCalendar:
    key = ("response",)
    zone = _text(doc, (*key, "time_zone"), raw.get("time_zone", "UTC"))
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise doc.error(
            (*key, "time_zone"), f"unknown time zone {zone!r}", 'use an IANA name like "Europe/London"'
        ) from None
    days = raw.get("days", ["Mon", "Tue", "Wed", "Thu", "Fri"])
    if not isinstance(days, list) or not days or any(d not in WEEKDAYS for d in days):
        raise doc.error(
            (*key, "days"),
            f"must be a list of {', '.join(WEEKDAYS)}",
            'e.g. ["Mon", "Tue", "Wed", "Thu", "Fri"]',
        )
    hours = raw.get("hours", ["09:00", "17:00"])
    if not isinstance(hours, list) or len(hours) != 2:
        raise doc.error((*key, "hours"), 'must be [opens, closes], e.g. ["09:00", "17:30"]')
    opens, closes = (_minutes(doc, (*key, "hours"), h) for h in hours)
    if closes <= opens:
        raise doc.error((*key, "hours"), "the closing time must be after the opening time")
    holidays = []
    for i, day in enumerate(raw.get("holidays", [])):
        if not isinstance(day, date) or hasattr(day, "hour"):
            raise doc.error((*key, "holidays", i), f"must be a date like 2026-12-25 (unquoted), not {day!r}")
        holidays.append(day)
    return BusinessCalendar(
        zone, tuple(d for d in WEEKDAYS if d in days), opens, closes, tuple(sorted(holidays))
    )


def parse_routing(doc: TomlFile) -> RoutingConfig:
    """Validate a parsed ``routing.toml``.

    Raises:
        ConfigError: naming file:line [key] for anything invalid.
    """
    data = doc.data
    _only_keys(doc, (), data, {"unassigned", "rule", "response"})
    unassigned = None
    if "unassigned" in data:
        table = _only_keys(doc, ("unassigned",), data["unassigned"], {"user", "team", "queue"})
        unassigned = _principal(doc, ("unassigned",), table, ("team", "user", "queue"))
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list):
        raise doc.error(("rule",), "rules are written as [[rule]] tables")
    rules = tuple(_rule(doc, i, r) for i, r in enumerate(raw_rules))
    if rules and unassigned is None:
        raise doc.error(
            ("rule",),
            "routing rules need [unassigned]: the owner that holds leads nobody has taken yet",
            'add [unassigned] with team = "...", user = "..." or queue = "..."',
        )
    response_raw = _only_keys(
        doc,
        ("response",),
        data.get("response", {}),
        {"time_zone", "days", "hours", "holidays", "sla_minutes", "report_days"},
    )
    response = ResponseSettings(
        calendar=_calendar(doc, response_raw),
        sla_minutes=_whole(doc, ("response", "sla_minutes"), response_raw.get("sla_minutes", 60), minimum=1),
        report_days=_whole(doc, ("response", "report_days"), response_raw.get("report_days", 90), minimum=1),
    )
    return RoutingConfig(unassigned, rules, response, doc)


def load_routing(path: str | Path) -> RoutingConfig:
    """Read and validate ``mappings/routing.toml``; a missing file means no rules and default hours.

    Raises:
        ConfigError: naming file:line [key] for anything invalid.
    """
    path = Path(path)
    if not path.exists():
        return RoutingConfig(None, (), ResponseSettings())
    return parse_routing(load_toml(path))


# ---------------------------------------------------------------------------------- scoring.toml


def parse_stage_settings(doc: TomlFile) -> tuple[StageSettings, DormantSettings]:
    """Read ``[stage]`` and ``[dormant]`` of a parsed ``scoring.toml`` (defaults when absent).

    Raises:
        ConfigError: naming file:line [key] for anything invalid.
    """
    raw = _only_keys(
        doc,
        ("stage",),
        doc.data.get("stage", {}),
        {"warm_engagement", "hot_engagement", "mql_fit", "sql_score"},
    )
    warm = _number(doc, ("stage", "warm_engagement"), raw.get("warm_engagement", 5), minimum=None)
    hot = _number(doc, ("stage", "hot_engagement"), raw.get("hot_engagement", 15), minimum=None)
    if hot <= warm:
        raise doc.error(("stage", "hot_engagement"), "must be above warm_engagement")
    sql = raw.get("sql_score")
    if sql is not None and (isinstance(sql, bool) or not isinstance(sql, int) or not 0 <= sql <= 100):
        raise doc.error(("stage", "sql_score"), "must be a whole number from 0 to 100")
    stage = StageSettings(
        warm, hot, _number(doc, ("stage", "mql_fit"), raw.get("mql_fit", 25), minimum=None), sql
    )
    raw = _only_keys(doc, ("dormant",), doc.data.get("dormant", {}), {"days", "min_fit", "factors"})
    dormant = DormantSettings(
        days=_whole(doc, ("dormant", "days"), raw.get("days", 60), minimum=1),
        min_fit=_number(doc, ("dormant", "min_fit"), raw.get("min_fit", 25), minimum=None),
        factors=_whole(doc, ("dormant", "factors"), raw.get("factors", 3), minimum=0),
    )
    return stage, dormant


def load_stage_settings(path: str | Path) -> tuple[StageSettings, DormantSettings]:
    """Read ``[stage]`` and ``[dormant]`` from ``mappings/scoring.toml``.

    Raises:
        ConfigError: naming file:line [key] for anything invalid.
    """
    return parse_stage_settings(load_toml(path))
