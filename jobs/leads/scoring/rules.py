"""Explainable rule-based lead scoring: points for fit and for engagement, configured in TOML.

A consultant writes ``mappings/scoring.toml`` (every key is documented in that file and in
``docs/lead-scoring.md``). Three kinds of rule add (or take away) points:

- ``fit``: an attribute of the lead or of its contact/account (joined onto the lead frame by the
  caller with :func:`attach_related`): source, industry, job-title keywords, company size range,
  country, business vs personal e-mail, revenue, budget, purchase timeframe...
- ``activity``: e-mails, phone calls and appointments regarding the lead, optionally by direction,
  within a window, decaying with age.
- ``engagement``: a numeric column the consultant maps onto the lead (web visits, form fills...),
  optionally decaying with the age of a date column.

How the score is computed (also in the docs):

1. Each rule yields points per lead. ``once`` rules give ``points`` (times the decay weight of the
   most recent matching activity, for activity rules); ``each_time`` rules give ``points`` per
   occurrence (each decayed by its own age), capped at ``cap`` in absolute value; activity rules
   with ``if_none`` give ``points`` when there was no matching activity in the window.
2. Decay weight of an activity of age ``a`` days in a window of ``W`` days: ``none`` → 1;
   ``linear`` → ``1 - a / W``; ``half_life`` → ``0.5 ** (a / H)``; always 0 when ``a > W`` or the
   activity lies after ``as_of`` (it had not happened yet at that time).
3. ``raw`` = sum of all rule points (negative points allowed);
   ``score = clip(raw / max_points * 100, 0, 100)`` rounded half up to a whole number.
4. The grade is the band of ``[grades]`` that holds the score; ``sales_ready`` is
   ``score >= sales_ready``; ``factors`` are the ``top_factors`` rules with the largest absolute
   points, as sentences ("Source = Employee Referral: +15").

Kept as one module on purpose: parsing a rule and applying it must agree rule kind by rule kind,
so each kind's parser and scorer sit side by side.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ConfigError
from core.tomlfile import TomlFile, closest, load_toml, parse_toml
from jobs.leads.scoring.common import (
    ACTIVITY_TYPES,
    DEFAULT_GRADES,
    FREE_MAIL_DOMAINS,
    Grades,
    as_utc,
    column_label,
    email_domains,
    format_points,
    is_free_mail,
    lead_index,
    normalise_activities,
    round_score,
)

__all__ = [
    "DECAY_METHODS",
    "FIRE_MODES",
    "FIT_OPERATORS",
    "RULE_KINDS",
    "ActivityRule",
    "EngagementRule",
    "FitRule",
    "ScoringRules",
    "attach_related",
    "decay_weights",
    "load_rules",
    "parse_rules",
    "score_with_rules",
]

RULE_KINDS = ("fit", "activity", "engagement")
FIRE_MODES = ("once", "each_time", "if_none")
DECAY_METHODS = ("none", "linear", "half_life")
# operator -> the keys it needs
FIT_OPERATORS: dict[str, tuple[str, ...]] = {
    "equals": ("value",),
    "not_equals": ("value",),
    "in": ("values",),
    "not_in": ("values",),
    "contains_any": ("keywords",),
    "between": (),  # min and/or max
    "gt": ("value",),
    "gte": ("value",),
    "lt": ("value",),
    "lte": ("value",),
    "is_missing": (),
    "is_present": (),
    "free_email": (),
    "business_email": (),
}
_NUMERIC_OPS = {"between", "gt", "gte", "lt", "lte"}
_OP_WORDS = {"gt": "over", "gte": "at least", "lt": "under", "lte": "at most"}
_TYPE_WORDS = {
    "email": ("email", "emails"),
    "phonecall": ("phone call", "phone calls"),
    "appointment": ("appointment", "appointments"),
}
_KNOWN_KEYS = {
    "fit": {
        "kind",
        "name",
        "column",
        "op",
        "value",
        "values",
        "keywords",
        "min",
        "max",
        "points",
        "fire",
        "cap",
    },
    "activity": {"kind", "name", "activity_type", "direction", "window_days", "points", "fire", "cap"},
    "engagement": {"kind", "name", "column", "date_column", "points", "fire", "cap"},
}


@dataclass(frozen=True)
class FitRule:
    """Points for an attribute of the lead (or its joined contact/account)."""

    index: int
    column: str
    op: str
    points: float
    value: Any = None
    values: tuple[Any, ...] = ()
    keywords: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None
    fire: str = "once"
    cap: float | None = None
    name: str | None = None
    kind: str = field(default="fit", init=False)


@dataclass(frozen=True)
class ActivityRule:
    """Points for activities regarding the lead within a window, decaying with age."""

    index: int
    activity_types: tuple[str, ...]
    points: float
    window_days: float
    direction: str | None = None
    fire: str = "each_time"
    cap: float | None = None
    name: str | None = None
    kind: str = field(default="activity", init=False)


@dataclass(frozen=True)
class EngagementRule:
    """Points for a numeric engagement column mapped onto the lead (visits, downloads...)."""

    index: int
    column: str
    points: float
    date_column: str | None = None
    fire: str = "each_time"
    cap: float | None = None
    name: str | None = None
    kind: str = field(default="engagement", init=False)


Rule = FitRule | ActivityRule | EngagementRule


@dataclass(frozen=True)
class ScoringRules:
    """A validated ``mappings/scoring.toml``: rules, decay, normalisation, grades, threshold."""

    rules: tuple[Rule, ...]
    grades: Grades = DEFAULT_GRADES
    sales_ready: int = 70
    max_points: float = 100.0
    top_factors: int = 5
    decay_method: str = "half_life"
    lookback_days: float = 90.0
    half_life_days: float = 30.0
    free_mail_domains: frozenset[str] = FREE_MAIL_DOMAINS
    source: TomlFile | None = field(default=None, repr=False, compare=False)

    def error(self, key: tuple[str | int, ...], message: str, hint: str | None = None) -> ConfigError:
        """Build a ConfigError naming this rules file, the line and the key."""
        if self.source is not None:
            return self.source.error(key, message, hint)
        return ConfigError(message, key=".".join(str(k) for k in key), hint=hint)


# ---------------------------------------------------------------- loading and validation


def load_rules(path: str | Path, *, columns: Iterable[str] | None = None) -> ScoringRules:
    """Read and validate a scoring rules file.

    Args:
        path: the TOML file, usually ``mappings/scoring.toml``.
        columns: when given, the lead columns the mapping provides; a rule on any other column is
            reported now rather than at scoring time.

    Raises:
        ConfigError: naming file:line [key] for anything invalid.
    """
    return _from_doc(load_toml(path), columns)


def parse_rules(
    text: str, path: str | Path = "<string>", *, columns: Iterable[str] | None = None
) -> ScoringRules:
    """Validate scoring rules from TOML text (``path`` is only used in error messages)."""
    return _from_doc(parse_toml(text, path), columns)


def _number(doc: TomlFile, key: tuple[str | int, ...], value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise doc.error(key, f"must be a number, not {value!r}")
    if positive and value <= 0:
        raise doc.error(key, f"must be greater than 0, not {value!r}")
    return float(value)


def _choice(doc: TomlFile, key: tuple[str | int, ...], value: Any, allowed: Sequence[str], what: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        near = closest(str(value), allowed)
        hint = f"did you mean `{near[0]}`?" if near else f"use one of {', '.join(allowed)}"
        raise doc.error(key, f"unknown {what} {value!r}", hint)
    return value


def _from_doc(doc: TomlFile, columns: Iterable[str] | None) -> ScoringRules:
    data = doc.data
    # [stage] and [dormant] are read by jobs.leads.engagement.config (lead stages, re-engagement).
    known_tables = {"score", "grades", "decay", "email", "rule", "stage", "dormant"}
    for name in data:
        if name not in known_tables:
            near = closest(name, known_tables)
            raise doc.error(
                (name,), f"unknown section `{name}`", f"did you mean `{near[0]}`?" if near else None
            )

    score = data.get("score", {})
    _only_keys(doc, ("score",), score, {"max_points", "sales_ready", "top_factors"})
    max_points = _number(doc, ("score", "max_points"), score.get("max_points", 100), positive=True)
    sales_ready = score.get("sales_ready", 70)
    if isinstance(sales_ready, bool) or not isinstance(sales_ready, int) or not 0 <= sales_ready <= 100:
        raise doc.error(("score", "sales_ready"), "must be a whole number from 0 to 100")
    top = score.get("top_factors", 5)
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise doc.error(("score", "top_factors"), "must be a whole number of at least 1")

    grades = Grades.from_mapping(data["grades"], error=doc) if "grades" in data else DEFAULT_GRADES

    decay = data.get("decay", {})
    _only_keys(doc, ("decay",), decay, {"method", "lookback_days", "half_life_days"})
    method = _choice(
        doc, ("decay", "method"), decay.get("method", "half_life"), DECAY_METHODS, "decay method"
    )
    lookback = _number(doc, ("decay", "lookback_days"), decay.get("lookback_days", 90), positive=True)
    half_life = _number(doc, ("decay", "half_life_days"), decay.get("half_life_days", 30), positive=True)

    email = data.get("email", {})
    _only_keys(doc, ("email",), email, {"free_mail_domains_extra"})
    extra = email.get("free_mail_domains_extra", [])
    if not isinstance(extra, list) or not all(isinstance(d, str) and "." in d for d in extra):
        raise doc.error(
            ("email", "free_mail_domains_extra"), "must be a list of domains", 'e.g. ["example.net"]'
        )
    free = FREE_MAIL_DOMAINS | {d.strip().lower().lstrip("@") for d in extra}

    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list):
        raise doc.error(("rule",), "rules are written as [[rule]] tables")
    if not raw_rules:
        # Without rules every lead would score 0 and grade D: a wiped or mistyped file, not a choice.
        raise doc.error(
            ("rule",),
            "the file has no [[rule]] entries, so every lead would score 0",
            "add at least one [[rule]] (see mappings/scoring.toml for examples)",
        )
    rules = tuple(_parse_rule(doc, i, raw, lookback) for i, raw in enumerate(raw_rules))
    result = ScoringRules(
        rules=rules,
        grades=grades,
        sales_ready=sales_ready,
        max_points=max_points,
        top_factors=top,
        decay_method=method,
        lookback_days=lookback,
        half_life_days=half_life,
        free_mail_domains=frozenset(free),
        source=doc,
    )
    if columns is not None:
        _check_columns(result, set(columns))
    return result


def _only_keys(doc: TomlFile, key: tuple[str | int, ...], table: Any, allowed: set[str]) -> None:
    if not isinstance(table, dict):
        raise doc.error(key, "must be a table")
    for name in table:
        if name not in allowed:
            near = closest(name, allowed)
            hint = f"did you mean `{near[0]}`?" if near else f"allowed keys: {', '.join(sorted(allowed))}"
            raise doc.error((*key, name), f"unknown key `{name}`", hint)


def _parse_rule(doc: TomlFile, i: int, raw: Any, lookback: float) -> Rule:
    key: tuple[str | int, ...] = ("rule", i)
    if not isinstance(raw, dict):
        raise doc.error(key, "each [[rule]] must be a table")
    kind = _choice(doc, (*key, "kind"), raw.get("kind", "fit"), RULE_KINDS, "rule kind")
    _only_keys(doc, key, raw, _KNOWN_KEYS[kind])
    if "points" not in raw:
        raise doc.error(key, "the rule has no `points`", "add e.g. points = 10 (negative to subtract)")
    points = _number(doc, (*key, "points"), raw["points"])
    name = raw.get("name")
    if name is not None and not isinstance(name, str):
        raise doc.error((*key, "name"), "must be text")
    default_fire = "once" if kind == "fit" else "each_time"
    fire = _choice(doc, (*key, "fire"), raw.get("fire", default_fire), FIRE_MODES, "fire mode")
    cap = _number(doc, (*key, "cap"), raw["cap"], positive=True) if "cap" in raw else None
    if cap is not None and fire != "each_time":
        raise doc.error((*key, "cap"), '`cap` only applies to fire = "each_time"')
    if fire == "if_none" and kind != "activity":
        raise doc.error((*key, "fire"), '`if_none` only applies to kind = "activity"')

    if kind == "activity":
        types = raw.get("activity_type", "any")
        types = [types] if isinstance(types, str) else types
        if not isinstance(types, list) or not types:
            raise doc.error((*key, "activity_type"), "must be a type or a list of types")
        for t in types:
            _choice(doc, (*key, "activity_type"), t, (*ACTIVITY_TYPES, "any"), "activity type")
        resolved = ACTIVITY_TYPES if "any" in types else tuple(dict.fromkeys(types))
        direction = raw.get("direction", "any")
        _choice(doc, (*key, "direction"), direction, ("incoming", "outgoing", "any"), "direction")
        window = _number(doc, (*key, "window_days"), raw.get("window_days", lookback), positive=True)
        return ActivityRule(
            i, resolved, points, window, None if direction == "any" else direction, fire, cap, name
        )

    column = raw.get("column")
    if not isinstance(column, str) or not column:
        raise doc.error((*key, "column"), "the rule needs `column`, the lead column it reads")
    if kind == "engagement":
        date_column = raw.get("date_column")
        if date_column is not None and not isinstance(date_column, str):
            raise doc.error((*key, "date_column"), "must be a column name")
        return EngagementRule(i, column, points, date_column, fire, cap, name)

    op = _choice(doc, (*key, "op"), raw.get("op"), tuple(FIT_OPERATORS), "operator")
    for needed in FIT_OPERATORS[op]:
        if needed not in raw:
            raise doc.error(key, f"operator `{op}` needs `{needed}`")
    if fire == "each_time" and op != "contains_any":
        raise doc.error(
            (*key, "fire"),
            '`each_time` on a fit rule only applies to op = "contains_any"',
            "it counts each keyword found; other fit rules fire once",
        )
    values: tuple[Any, ...] = ()
    if "values" in FIT_OPERATORS[op]:
        values = raw["values"]
        if not isinstance(values, list) or not values:
            raise doc.error((*key, "values"), "must be a non-empty list")
        values = tuple(values)
    keywords: tuple[str, ...] = ()
    if op == "contains_any":
        kw = raw["keywords"]
        if not isinstance(kw, list) or not kw or not all(isinstance(k, str) and k.strip() for k in kw):
            raise doc.error(
                (*key, "keywords"), "must be a non-empty list of words", 'e.g. ["director", "head of"]'
            )
        keywords = tuple(dict.fromkeys(k.strip().lower() for k in kw))
    low = high = None
    value = raw.get("value")
    if op == "between":
        if "min" not in raw and "max" not in raw:
            raise doc.error(key, "operator `between` needs `min`, `max` or both")
        low = _number(doc, (*key, "min"), raw["min"]) if "min" in raw else None
        high = _number(doc, (*key, "max"), raw["max"]) if "max" in raw else None
        if low is not None and high is not None and high <= low:
            raise doc.error((*key, "max"), f"max ({high:g}) must be greater than min ({low:g})")
    elif op in _NUMERIC_OPS:
        value = _number(doc, (*key, "value"), value)
    return FitRule(i, column, op, points, value, values, keywords, low, high, fire, cap, name)


def _check_columns(rules: ScoringRules, columns: set[str]) -> None:
    missing = [
        (rule.index, attr, getattr(rule, attr))
        for rule in rules.rules
        for attr in ("column", "date_column")
        if getattr(rule, attr, None) is not None and getattr(rule, attr) not in columns
    ]
    if not missing:
        return
    index, attr, column = missing[0]
    near = closest(column, columns)
    hint = (
        f"did you mean `{near[0]}`?"
        if near
        else "map it in mappings/lead.toml, join it onto the leads, or remove the rule"
    )
    others = sorted({c for _, _, c in missing[1:]} - {column})
    message = f"column `{column}` is not in the lead data"
    if others:
        # Name every missing column at once, so a consultant fixes the mapping in one pass.
        message += f"; other rules also read missing column(s) {', '.join(f'`{c}`' for c in others)}"
    raise rules.error(("rule", index, attr), message, hint)


# ---------------------------------------------------------------- scoring


def attach_related(
    leads: pd.DataFrame, related: pd.DataFrame, *, on: str, related_id: str, prefix: str
) -> pd.DataFrame:
    """Join a contact or account frame onto the leads, prefixing its columns.

    Fit rules read columns of the frame they are given; to score on the parent account's industry,
    join it first: ``attach_related(leads, accounts, on="account_id", related_id="account_id",
    prefix="account_")`` gives ``account_industry``, ``account_employees`` and so on.

    Args:
        leads: the lead frame, with the lookup column ``on``.
        related: the contact or account frame.
        on: the lead column that holds the related record's id.
        related_id: the id column of ``related``.
        prefix: put before every related column name.
    """
    if on not in leads.columns:
        raise ConfigError(f"the leads have no column `{on}` to join on", key=f"lead.{on}")
    if related_id not in related.columns:
        raise ConfigError(f"the related frame has no id column `{related_id}`", key=related_id)
    right = related.drop_duplicates(related_id).set_index(related_id).add_prefix(prefix)
    joined = leads.join(right, on=on)
    joined.index = leads.index
    return joined


def decay_weights(
    age_days: np.ndarray, *, method: str, window_days: float, half_life_days: float
) -> np.ndarray:
    """Return each activity's weight for its age in days (0 outside ``[0, window_days]``).

    ``none`` → 1, ``linear`` → ``1 - age / window``, ``half_life`` → ``0.5 ** (age / half_life)``.
    """
    age = np.asarray(age_days, dtype=float)
    inside = (age >= 0) & (age <= window_days)
    if method == "none":
        weight = np.ones_like(age)
    elif method == "linear":
        weight = 1.0 - age / window_days
    elif method == "half_life":
        weight = np.power(0.5, age / half_life_days)
    else:
        raise ValueError(f"unknown decay method {method!r}")
    return np.where(inside, weight, 0.0)


def score_with_rules(
    leads: pd.DataFrame,
    rules: ScoringRules,
    *,
    as_of: datetime | str | pd.Timestamp,
    activities: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Score leads with the configured rules.

    Args:
        leads: canonical lead columns (plus any joined contact/account or engagement columns);
            ids from a ``lead_id`` column, else from the index.
        rules: from :func:`load_rules`.
        as_of: the moment the score describes; activity ages are measured from it and later
            activities are ignored.
        activities: canonical activities (``lead_id``, ``activity_type``, ``occurred_on``,
            ``direction``, ``status``). Required when there are activity rules; an empty frame
            means "no activity".

    Returns:
        A frame indexed by ``lead_id`` with ``score`` (int 0..100), ``grade``, ``sales_ready``
        (bool), ``raw_points`` (the sum before normalising), ``factors`` (list of sentences, the
        ``top_factors`` rules with the largest absolute points, largest first),
        ``positive_factors`` and ``negative_factors`` (the same split by sign), ``fit_points`` and
        ``engagement_points`` (the fit rules' points, and the activity and engagement rules'),
        ``fit_factors`` (the positive fit sentences, strongest first).

    Raises:
        ConfigError: a rule on a column that is not in ``leads``, a numeric rule on a text column,
            activity rules without activities, or a malformed activities frame.
    """
    ids = lead_index(leads)
    _check_columns(rules, set(leads.columns))
    frame = leads.reset_index(drop=True)
    n = len(frame)
    stamp = as_utc(as_of)
    activity_rules = [r for r in rules.rules if isinstance(r, ActivityRule)]
    acts = None
    if activity_rules:
        if activities is None:
            first = activity_rules[0]
            raise rules.error(
                ("rule", first.index, "kind"),
                "this rule scores activities but no activities were given",
                "map the email, phonecall and appointment tables, or remove the activity rules",
            )
        acts = _activities_by_position(normalise_activities(activities), ids, stamp)

    # Each rule gives points per lead plus, for its factor sentence, a code per lead into a small
    # table of descriptions; sentences are only written for the factors finally shown.
    points = np.zeros((n, len(rules.rules)))
    codes = np.zeros((n, len(rules.rules)), dtype=np.int64)
    labels: list[np.ndarray] = []
    email_cache: dict[str, tuple[pd.Series, pd.Series]] = {}
    for j, rule in enumerate(rules.rules):
        if isinstance(rule, FitRule):
            pts, code, label = _fit_points(frame, rule, rules, email_cache)
        elif isinstance(rule, EngagementRule):
            pts, code, label = _engagement_points(frame, rule, rules, stamp)
        else:
            pts, code, label = _activity_points(acts, n, rule, rules)
        points[:, j] = pts
        codes[:, j] = code
        labels.append(label)

    raw = points.sum(axis=1)
    score = round_score(raw / rules.max_points * 100.0).astype(int)
    result = pd.DataFrame({"score": score}, index=ids)
    result["grade"] = rules.grades.assign(result["score"])
    result["sales_ready"] = result["score"] >= rules.sales_ready
    result["raw_points"] = np.round(raw, 4)
    result["factors"], result["positive_factors"], result["negative_factors"] = _top_sentences(
        points, codes, labels, rules.top_factors
    )
    # Fit (who the lead is) and engagement (what they did) apart, for stages and re-engagement.
    fit = np.array([isinstance(r, FitRule) for r in rules.rules], dtype=bool)
    result["fit_points"] = np.round(points[:, fit].sum(axis=1), 4)
    result["engagement_points"] = np.round(points[:, ~fit].sum(axis=1), 4)
    fit_labels = [label for label, is_fit in zip(labels, fit, strict=True) if is_fit]
    result["fit_factors"] = _top_sentences(points[:, fit], codes[:, fit], fit_labels, rules.top_factors)[1]
    return result


def _activities_by_position(acts: pd.DataFrame, ids: pd.Index, as_of: pd.Timestamp) -> pd.DataFrame:
    """Attach each activity's lead row position and age in days; drop activities of other leads."""
    position = ids.get_indexer(acts["lead_id"])
    acts = acts.assign(row=position, age=(as_of - acts["occurred_on"]).dt.total_seconds() / 86400.0)
    return acts.loc[acts["row"] >= 0]


def _value_text(series: pd.Series) -> pd.Series:
    """Render values for sentences: numbers with thousands separators, integral ones without `.0`."""
    if series.dtype.kind in "iuf":
        # Format each distinct value once, then map: far cheaper than formatting every row.
        uniques = pd.unique(series.dropna())
        lookup = {v: _fmt(v) for v in uniques}
        return series.map(lookup).astype("string").fillna("")
    return series.astype("string").str.strip().fillna("")


def _fmt(number: float) -> str:
    return f"{number:,.0f}" if float(number).is_integer() else f"{number:,.2f}"


def _norm_text(series: pd.Series) -> pd.Series:
    return series.astype("string").str.strip().str.casefold()


def _numeric(values: pd.Series, rule: FitRule | EngagementRule, rules: ScoringRules) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce") if values.dtype != bool else values.astype(float)
    # No Dataverse column holds an infinite number; one that arrives (a joined ratio divided by 0)
    # is unknown, not huge, and would otherwise put +inf points and an "= inf" factor on a lead.
    numbers = numbers.where(np.isfinite(numbers.astype(float)))
    if values.notna().any() and numbers.notna().sum() == 0:
        raise rules.error(
            ("rule", rule.index, "column"),
            f"column `{rule.column}` holds text (e.g. {values.dropna().iloc[0]!r}) but this rule "
            "compares numbers",
            'use op = "equals" / "in" for text, or point the rule at a numeric column',
        )
    return numbers


def _factorize(series: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Return a code per row and the distinct values (missing included) the codes point into."""
    codes, uniques = pd.factorize(series, use_na_sentinel=False)
    return codes, pd.Series(uniques, dtype=series.dtype if series.dtype != object else object)


def _fit_points(
    frame: pd.DataFrame, rule: FitRule, rules: ScoringRules, cache: dict[str, tuple[pd.Series, pd.Series]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Rules are evaluated once per distinct value (a source column has a handful among 100,000
    # leads), then spread back to the rows by code.
    codes, values = _factorize(frame[rule.column])
    label = rule.name or column_label(rule.column)
    op = rule.op
    count = None
    if op in ("equals", "not_equals", "in", "not_in"):
        wanted = [rule.value] if op in ("equals", "not_equals") else list(rule.values)
        numeric_wanted = all(isinstance(v, int | float) and not isinstance(v, bool) for v in wanted)
        if numeric_wanted and values.dtype.kind in "ifb":
            hit = values.isin(wanted)
        else:
            hit = _norm_text(values).isin([str(v).strip().casefold() for v in wanted]).fillna(False)
        if op.startswith("not"):
            hit = ~hit & values.notna()
        describe = label + " = " + _value_text(values)
    elif op == "contains_any":
        text = values.astype("string").fillna("")
        found = pd.Series("", index=values.index, dtype="string")
        count = np.zeros(len(values))
        for kw in rule.keywords:
            # Whole words only, so "cto" does not fire inside "director".
            pattern = r"(?<!\w)" + re.escape(kw).replace(r"\ ", r"\s+") + r"(?!\w)"
            match = text.str.contains(pattern, case=False, regex=True).fillna(False).to_numpy(dtype=bool)
            count += match
            found = found.where(~match, found + np.where(found == "", "", ", ") + f"'{kw}'")
        hit = pd.Series(count > 0, index=values.index)
        describe = label + " contains " + found
    elif op in _NUMERIC_OPS:
        numbers = _numeric(values, rule, rules)
        if op == "between":
            hit = numbers.notna()
            if rule.low is not None:
                hit &= numbers >= rule.low
            if rule.high is not None:
                hit &= numbers < rule.high
            if rule.low is not None and rule.high is not None:
                bounds = f"{_fmt(rule.low)} to under {_fmt(rule.high)}"
            elif rule.low is not None:
                bounds = f"{_fmt(rule.low)} or more"
            else:
                bounds = f"under {_fmt(rule.high)}"
        else:
            compare = {"gt": numbers.gt, "gte": numbers.ge, "lt": numbers.lt, "lte": numbers.le}[op]
            hit = compare(rule.value).fillna(False)
            bounds = f"{_OP_WORDS[op]} {_fmt(rule.value)}"
        describe = label + " = " + _value_text(numbers) + f" ({bounds})"
    elif op in ("is_missing", "is_present"):
        blank = values.isna() | (values.astype("string").str.strip() == "").fillna(True)
        hit = blank if op == "is_missing" else ~blank
        describe = pd.Series(
            f"{label} is blank" if op == "is_missing" else f"{label} given", index=values.index
        )
    else:  # free_email / business_email
        # A business and a personal rule usually read the same column: classify its domains once.
        if rule.column not in cache:
            found = email_domains(values)
            cache[rule.column] = (found, is_free_mail(found, rules.free_mail_domains))
        domains, free = cache[rule.column]
        hit = (free if op == "free_email" else ~free).fillna(False).astype(bool)
        words = rule.name or ("Personal email address" if op == "free_email" else "Business email address")
        describe = words + " (" + domains.fillna("") + ")"
    hit_array = np.asarray(hit, dtype=bool)
    if count is not None and rule.fire == "each_time":
        pts = _cap(rule.points * count, rule.cap)
    else:
        pts = np.where(hit_array, rule.points, 0.0)
    if rule.name and op not in ("free_email", "business_email"):
        describe = pd.Series(rule.name, index=values.index)
    return pts[codes], codes, pd.Series(describe).astype(object).to_numpy()


def _engagement_points(
    frame: pd.DataFrame, rule: EngagementRule, rules: ScoringRules, as_of: pd.Timestamp
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    codes, distinct = _factorize(frame[rule.column])
    numbers = _numeric(distinct, rule, rules).fillna(0.0)
    values = numbers.to_numpy(dtype=float)[codes]
    weight = np.ones(len(frame))
    if rule.date_column:
        when = pd.to_datetime(frame[rule.date_column], utc=True, errors="coerce")
        age = ((as_of - when).dt.total_seconds() / 86400.0).to_numpy(dtype=float)
        weight = decay_weights(
            np.nan_to_num(age, nan=np.inf),
            method=rules.decay_method,
            window_days=rules.lookback_days,
            half_life_days=rules.half_life_days,
        )
    if rule.fire == "each_time":
        pts = _cap(rule.points * values * weight, rule.cap)
    else:
        pts = np.where(values > 0, rule.points * weight, 0.0)
    describe = (rule.name or column_label(rule.column)) + " = " + _value_text(numbers)
    return pts, codes, describe.astype(object).to_numpy()


def _activity_points(
    acts: pd.DataFrame | None, n: int, rule: ActivityRule, rules: ScoringRules
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    assert acts is not None  # score_with_rules guarantees activities for activity rules
    mask = acts["activity_type"].isin(rule.activity_types).to_numpy(dtype=bool, copy=True)
    if rule.direction:
        mask &= (acts["direction"] == rule.direction).fillna(False).to_numpy(dtype=bool)
    age = acts["age"].to_numpy(dtype=float)
    mask &= (age >= 0) & (age <= rule.window_days)
    rows = acts["row"].to_numpy()[mask]
    weight = decay_weights(
        age[mask],
        method=rules.decay_method,
        window_days=rule.window_days,
        half_life_days=rules.half_life_days,
    )
    count = np.bincount(rows, minlength=n)
    if rule.fire == "each_time":
        pts = _cap(rule.points * np.bincount(rows, weights=weight, minlength=n), rule.cap)
    elif rule.fire == "once":
        best = np.zeros(n)
        np.maximum.at(best, rows, weight)  # the most recent activity counts
        pts = rule.points * best
    else:  # if_none
        pts = np.where(count == 0, rule.points, 0.0)
    # The description depends only on the count: one per count from 0 to the largest.
    window = f"in the last {_fmt(rule.window_days)} days"
    singular = f"{_activity_words(rule, plural=False)} {window}"
    plural = f"{_activity_words(rule, plural=True)} {window}"
    largest = int(count.max()) if n else 0
    if rule.name:
        describe = [rule.name] * (largest + 1)
    elif rule.fire == "if_none":
        describe = [f"No {singular}"] * (largest + 1)
    else:
        describe = [f"{c} {singular if c == 1 else plural}" for c in range(largest + 1)]
    return pts, count, np.array(describe, dtype=object)


def _activity_words(rule: ActivityRule, *, plural: bool) -> str:
    if set(rule.activity_types) == set(ACTIVITY_TYPES):
        noun = "activities" if plural else "activity"
    else:
        noun = " or ".join(_TYPE_WORDS[t][1 if plural else 0] for t in rule.activity_types)
    return f"{rule.direction} {noun}" if rule.direction else noun


def _cap(points: np.ndarray, cap: float | None) -> np.ndarray:
    return points if cap is None else np.clip(points, -cap, cap)


def _top_sentences(
    points: np.ndarray, codes: np.ndarray, labels: list[np.ndarray], top: int
) -> tuple[list, list, list]:
    """Pick, per lead, the ``top`` non-zero contributions by absolute size, as sentences."""
    n, k = points.shape
    if k == 0 or n == 0:
        return [[] for _ in range(n)], [[] for _ in range(n)], [[] for _ in range(n)]
    rounded = np.round(points, 1)
    order = np.argsort(-np.abs(rounded), axis=1, kind="stable")[:, : min(top, k)]
    chosen_pts = np.take_along_axis(rounded, order, axis=1).ravel()
    chosen_codes = np.take_along_axis(codes, order, axis=1).ravel()
    chosen_rules = order.ravel()
    keep = chosen_pts != 0
    # Write each distinct (rule, description, points) sentence once and spread it by code.
    key = pd.DataFrame({"rule": chosen_rules[keep], "code": chosen_codes[keep], "points": chosen_pts[keep]})
    key_codes = key.groupby(["rule", "code", "points"], sort=False).ngroup().to_numpy()
    distinct = key.drop_duplicates()
    describe = np.empty(len(distinct), dtype=object)
    rule_of = distinct["rule"].to_numpy()
    for r in np.unique(rule_of):  # a loop over rules, not leads
        at = rule_of == r
        describe[at] = labels[r][distinct["code"].to_numpy()[at]]
    point_text = {p: format_points(p) for p in np.unique(distinct["points"])}
    texts = describe + ": " + distinct["points"].map(point_text).to_numpy(dtype=object)
    flat = np.full(chosen_pts.shape, None, dtype=object)
    flat[keep] = texts[key_codes]
    chosen = flat.reshape(n, -1)
    pts = chosen_pts.reshape(n, -1)
    # One list per lead is the output format (a cell of sentences). The selection is vectorised;
    # each list is then a prefix of a row rearranged so that the wanted sentences come first.
    lists = []
    for wanted in (pts != 0, pts > 0, pts < 0):
        arranged = np.take_along_axis(chosen, np.argsort(~wanted, axis=1, kind="stable"), axis=1)
        lengths = wanted.sum(axis=1).tolist()
        lists.append([row[:m] for row, m in zip(arranged.tolist(), lengths, strict=True)])
    factors, positive, negative = lists
    return factors, positive, negative
