"""Pieces both lead-scoring engines share: grade bands, score rounding, e-mail domains, activities.

The rules engine (:mod:`.rules`) and the model (:mod:`.model`) both turn a number
into a 0..100 score and an A–D grade, read the same activity frame and tell business from personal
e-mail addresses; those pieces live here so the two engines cannot drift apart.

Activities frame (canonical, see COMMON.md): one row per e-mail, phone call or appointment with
``lead_id`` (the lead it is regarding), ``activity_type`` (``email`` / ``phonecall`` /
``appointment``), ``occurred_on`` (when it happened), ``direction`` (``incoming`` / ``outgoing``;
blank for appointments) and optionally ``status``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from core.errors import ConfigError
from jobs.moments import as_utc

__all__ = [
    "ACTIVITY_COLUMNS",
    "ACTIVITY_TYPES",
    "DEFAULT_GRADES",
    "FREE_MAIL_DOMAINS",
    "GradeBand",
    "Grades",
    "as_utc",
    "column_label",
    "email_domains",
    "format_points",
    "is_free_mail",
    "lead_index",
    "normalise_activities",
    "round_score",
    "utc_now",
]

ACTIVITY_TYPES = ("email", "phonecall", "appointment")
ACTIVITY_COLUMNS = ("lead_id", "activity_type", "occurred_on")
# Dataverse activities end in Open, Completed or Canceled (statecode 0/1/2). A cancelled meeting or
# an e-mail that was never sent is not engagement, so those rows are ignored by both engines.
_CANCELLED = {"canceled", "cancelled"}

# Personal (free) mail providers: an address at one of these says nothing about an employer.
# The list covers the large consumer providers worldwide (Google, Microsoft, Yahoo, Apple, AOL,
# Proton, Zoho, GMX/Web.de, Mail.ru/Yandex, the big ISP mailboxes and the major regional ones);
# a consultant adds more in mappings/scoring.toml under [email] free_mail_domains_extra.
FREE_MAIL_DOMAINS: frozenset[str] = frozenset(
    {
        # Google, Microsoft, Yahoo, Apple, AOL
        "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "hotmail.co.uk", "hotmail.fr",
        "hotmail.de", "hotmail.it", "hotmail.es", "live.com", "live.co.uk", "live.fr", "msn.com",
        "yahoo.com", "yahoo.co.uk", "yahoo.fr", "yahoo.de", "yahoo.it", "yahoo.es", "yahoo.co.jp",
        "yahoo.com.br", "ymail.com", "rocketmail.com", "icloud.com", "me.com", "mac.com",
        "aol.com", "aim.com",
        # privacy and independent providers
        "protonmail.com", "proton.me", "pm.me", "tutanota.com", "tuta.io", "zoho.com",
        "zohomail.com", "mail.com", "email.com", "fastmail.com", "hushmail.com", "hey.com",
        # Europe
        "gmx.com", "gmx.de", "gmx.net", "gmx.at", "gmx.ch", "web.de", "t-online.de", "freenet.de",
        "orange.fr", "wanadoo.fr", "free.fr", "laposte.net", "sfr.fr", "libero.it", "virgilio.it",
        "tiscali.it", "btinternet.com", "sky.com", "virginmedia.com", "ntlworld.com", "seznam.cz",
        "wp.pl", "o2.pl", "onet.pl", "interia.pl", "telenet.be", "skynet.be", "ziggo.nl",
        "kpnmail.nl", "bluewin.ch",
        # Russia, Asia, Americas
        "mail.ru", "yandex.ru", "yandex.com", "rambler.ru", "qq.com", "163.com", "126.com",
        "sina.com", "naver.com", "daum.net", "hanmail.net", "rediffmail.com", "uol.com.br",
        "bol.com.br", "terra.com.br", "comcast.net", "verizon.net", "att.net", "sbcglobal.net",
        "cox.net", "charter.net", "shaw.ca", "rogers.com", "bigpond.com", "optusnet.com.au",
    }
)  # fmt: skip


@dataclass(frozen=True)
class GradeBand:
    """One grade and the inclusive integer score range it covers."""

    grade: str
    low: int
    high: int


@dataclass(frozen=True)
class Grades:
    """Contiguous, non-overlapping grade bands that together cover scores 0..100.

    Scores are whole numbers, so bands are inclusive integer ranges: ``A = [75, 100]`` and
    ``B = [50, 74]`` meet without a gap. Construct through :meth:`from_mapping`, which validates.
    """

    bands: tuple[GradeBand, ...]

    @classmethod
    def from_mapping(
        cls,
        ranges: Mapping[str, object],
        *,
        error: object = None,
        key: tuple[str | int, ...] = ("grades",),
    ) -> Grades:
        """Validate ``{"A": [75, 100], ...}`` into grade bands.

        Args:
            ranges: grade name to a ``[low, high]`` pair of whole numbers (inclusive).
            error: a ``TomlFile`` whose ``error(key, message, hint)`` builds the ConfigError;
                without one the error names only the key.
            key: the key path of the table in that file, for error messages.

        Raises:
            ConfigError: a range that is malformed, overlaps another, leaves a gap, or the bands
                not covering exactly 0..100.
        """

        def fail(sub: tuple[str | int, ...], message: str, hint: str | None = None) -> ConfigError:
            if error is not None:
                return error.error((*key, *sub), message, hint)  # type: ignore[attr-defined]
            return ConfigError(message, key=".".join(str(p) for p in (*key, *sub)), hint=hint)

        if not isinstance(ranges, Mapping) or not ranges:
            raise fail((), "grades must be a table of `GRADE = [low, high]` entries", "e.g. A = [75, 100]")
        bands = []
        for name, value in ranges.items():
            ok = (
                isinstance(value, list)
                and len(value) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            )
            if not ok:
                raise fail(
                    (name,), f"grade {name} must be a pair of whole numbers [low, high]", "e.g. [50, 74]"
                )
            low, high = value
            if not 0 <= low <= high <= 100:
                raise fail((name,), f"grade {name} = [{low}, {high}] must satisfy 0 <= low <= high <= 100")
            bands.append(GradeBand(str(name), low, high))
        bands.sort(key=lambda b: b.low)
        for before, after in itertools.pairwise(bands):
            if after.low <= before.high:
                raise fail(
                    (after.grade,),
                    f"grade {after.grade} [{after.low}, {after.high}] overlaps grade {before.grade} "
                    f"[{before.low}, {before.high}]",
                    f"start {after.grade} at {before.high + 1} or end {before.grade} at {after.low - 1}",
                )
            if after.low != before.high + 1:
                raise fail(
                    (after.grade,),
                    f"scores {before.high + 1}..{after.low - 1} have no grade (gap between "
                    f"{before.grade} and {after.grade})",
                    f"start {after.grade} at {before.high + 1}",
                )
        if bands[0].low != 0:
            raise fail(
                (bands[0].grade,),
                f"scores 0..{bands[0].low - 1} have no grade",
                "the lowest band must start at 0",
            )
        if bands[-1].high != 100:
            raise fail(
                (bands[-1].grade,),
                f"scores {bands[-1].high + 1}..100 have no grade",
                "the highest band must end at 100",
            )
        return cls(tuple(bands))

    def assign(self, scores: pd.Series) -> pd.Series:
        """Return the grade of each whole-number score (missing stays missing)."""
        lows = np.array([b.low for b in self.bands])
        names = np.array([b.grade for b in self.bands], dtype=object)
        values = scores.to_numpy(dtype=float)
        position = np.searchsorted(lows, np.nan_to_num(values, nan=0.0), side="right") - 1
        grades = names[np.clip(position, 0, len(names) - 1)]
        grades[np.isnan(values)] = None
        return pd.Series(grades, index=scores.index, name="grade", dtype=object)

    def as_dict(self) -> dict[str, list[int]]:
        """Return the bands as ``{"A": [75, 100], ...}``, highest first (JSON-friendly)."""
        return {b.grade: [b.low, b.high] for b in sorted(self.bands, key=lambda b: -b.low)}


# Microsoft Learn's predictive lead scoring module shows these default bands
# (A 75–100, B 50–74, C 25–49, D below 25); Dynamics lets the admin change them, so can we.
DEFAULT_GRADES = Grades.from_mapping({"A": [75, 100], "B": [50, 74], "C": [25, 49], "D": [0, 24]})


def round_score(values: np.ndarray | pd.Series) -> np.ndarray:
    """Clip to 0..100 and round half up to whole numbers (``np.round`` would round 12.5 to 12)."""
    array = np.asarray(values, dtype=float)
    return np.floor(np.clip(array, 0.0, 100.0) + 0.5)


def column_label(column: str) -> str:
    """Name a column for a factor sentence: ``job_title`` → ``Job title``."""
    text = column.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def format_points(points: float) -> str:
    """Render signed points for a sentence: ``+12``, ``-5``, ``+4.5``."""
    rounded = round(float(points), 1)
    text = f"{rounded:+.1f}"
    return text[:-2] if text.endswith(".0") else text


def lead_index(leads: pd.DataFrame, id_column: str = "lead_id") -> pd.Index:
    """Return the lead ids: the ``lead_id`` column if present, else the frame's index.

    Raises:
        ConfigError: duplicate or missing lead ids (a score must belong to exactly one lead).
    """
    if id_column in leads.columns:
        index = pd.Index(leads[id_column], name=id_column)
    else:
        index = leads.index.rename(id_column)
    if index.hasnans:
        raise ConfigError(
            f"{int(index.isna().sum())} lead(s) have no `{id_column}`",
            key=f"lead.{id_column}",
            hint="map the lead's primary id (leadid) in mappings/lead.toml",
        )
    if not index.is_unique:
        dupes = index[index.duplicated()].unique()[:3].tolist()
        raise ConfigError(
            f"lead ids are not unique (e.g. {dupes})",
            key=f"lead.{id_column}",
            hint="pass one row per lead",
        )
    return index


def email_domains(emails: pd.Series) -> pd.Series:
    """Return the lower-cased domain of each address (missing when there is no ``@``)."""
    text = emails.astype("string").str.strip().str.lower()
    return text.str.extract(r"@([^@\s]+)$", expand=False).str.rstrip(".")


def is_free_mail(domains: pd.Series, free: Iterable[str]) -> pd.Series:
    """Return True where the domain is (a subdomain of) a free-mail provider, NA when missing."""
    free_set = set(free)
    # `mail.yahoo.com`-style subdomains count as the provider; compare the last two and three labels.
    last2 = domains.str.extract(r"([^.]+\.[^.]+)$", expand=False)
    last3 = domains.str.extract(r"([^.]+\.[^.]+\.[^.]+)$", expand=False)
    hit = domains.isin(free_set) | last2.isin(free_set) | last3.isin(free_set)
    return hit.astype("boolean").mask(domains.isna())


def _clean_labels(series: pd.Series) -> pd.Series:
    """Strip and lower-case a label column, working once per distinct value (a handful of labels)."""
    codes, uniques = pd.factorize(series, use_na_sentinel=False)
    cleaned = pd.Series(uniques, dtype=object).astype("string").str.strip().str.lower()
    return pd.Series(cleaned.array.take(codes), index=series.index, dtype="string")


def normalise_activities(activities: pd.DataFrame) -> pd.DataFrame:
    """Validate the canonical activities frame and return the rows that count as engagement.

    Returns a frame with ``lead_id``, ``activity_type`` (lower-case), ``direction`` (lower-case,
    ``incoming``/``outgoing``/missing) and ``occurred_on`` (UTC); cancelled activities and rows
    without a lead or a date are dropped, since they cannot be engagement with a known lead.

    Raises:
        ConfigError: a required column is missing, or an activity type is not one of
            email / phonecall / appointment.
    """
    missing = [c for c in ACTIVITY_COLUMNS if c not in activities.columns]
    if missing:
        raise ConfigError(
            f"the activities frame has no column(s) {missing}",
            key="activity",
            hint="map email, phonecall and appointment with lead_id (regardingobjectid), "
            "activity_type and occurred_on",
        )
    frame = pd.DataFrame(
        {
            "lead_id": activities["lead_id"],
            "activity_type": _clean_labels(activities["activity_type"]),
            "occurred_on": pd.to_datetime(activities["occurred_on"], utc=True, errors="coerce"),
            "direction": (
                _clean_labels(activities["direction"])
                if "direction" in activities.columns
                else pd.Series(pd.NA, index=activities.index, dtype="string")
            ),
        }
    )
    unknown = sorted(set(frame["activity_type"].dropna().unique()) - set(ACTIVITY_TYPES))
    if unknown:
        raise ConfigError(
            f"unknown activity type(s) {unknown[:5]}",
            key="activity.activity_type",
            hint=f"activity_type must be one of {list(ACTIVITY_TYPES)}",
        )
    untyped = int(frame["activity_type"].isna().sum())
    if untyped:
        raise ConfigError(
            f"{untyped} activities have no activity_type",
            key="activity.activity_type",
            hint="set it from the table each activity comes from (email, phonecall, appointment)",
        )
    keep = frame["lead_id"].notna() & frame["occurred_on"].notna()
    if "status" in activities.columns:
        status = _clean_labels(activities["status"])
        keep &= ~status.isin(_CANCELLED).fillna(False)
    return frame.loc[keep].reset_index(drop=True)


def utc_now() -> datetime:
    """Return the current time in UTC (one place, so callers can inject their own ``as_of``)."""
    return datetime.now(UTC)
