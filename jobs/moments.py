"""One date or moment argument of a job (``as_of``, ``calibration_end``), read without guessing.

The jobs take these as ``date``, ``datetime``, ``pd.Timestamp`` or ISO strings. A value pandas
cannot read, or a missing one (None, NaT), is a :class:`~connector.errors.JobInputError` naming the
argument: a pandas parse error would be a traceback, and a NaT would silently compare false with
every date (no activity in the window, no order before it).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd

from jobs.errors import JobInputError

__all__ = ["PLAUSIBLE_FROM", "PLAUSIBLE_UNTIL", "as_utc", "to_day", "without_sentinels"]

PLAUSIBLE_FROM = pd.Timestamp("1900-01-01", tz="UTC")
PLAUSIBLE_UNTIL = pd.Timestamp("2200-01-01", tz="UTC")
"""Dates outside [PLAUSIBLE_FROM, PLAUSIBLE_UNTIL) are sentinels, not moments: Dataverse accepts
0001-01-01..9999-12-31 and orgs use the ends to mean "never" / "no end" (``actualend =
9999-12-31``, an order dated year 1). Taken as real, one would make an email happen in 8,000
years or a customer's first order 2,000 years ago."""


def as_utc(moment: date | datetime | str | pd.Timestamp, name: str = "as_of") -> pd.Timestamp:
    """Return ``moment`` as a UTC timestamp; naive values are taken to be UTC already.

    Raises:
        JobInputError: ``moment`` is missing (None, NaT) or not a date and time.
    """
    try:
        stamp = pd.Timestamp(moment)
    except (TypeError, ValueError) as exc:  # pandas' DateParseError is a ValueError
        raise JobInputError(
            f"{name} = {moment!r} is not a date and time; give e.g. '2024-06-30', "
            "'2024-06-30T08:00:00Z' or a datetime"
        ) from exc
    if pd.isna(stamp):
        raise JobInputError(f"{name} is missing (NaT); give the moment the results describe")
    return stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)


def to_day(value: date | datetime | str | pd.Timestamp, name: str) -> pd.Timestamp:
    """Return the day of ``value`` as a timezone-naive midnight (aware values converted to UTC first).

    Raises:
        JobInputError: ``value`` is missing or not a date.
    """
    return as_utc(value, name).tz_localize(None).normalize()


def without_sentinels(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Return ``frame`` with sentinel date-times taken as "no date" (missing), and how many there were.

    Every date-time column is checked; values outside ``[PLAUSIBLE_FROM, PLAUSIBLE_UNTIL)`` become
    NaT, and the columns come back in nanoseconds, the unit the analytics compute in.
    """
    if frame is None or frame.empty:
        return frame, 0
    cleared = 0
    out = frame
    for column in frame.columns:
        values = frame[column]
        if not pd.api.types.is_datetime64_any_dtype(values):
            continue
        stamps = values if values.dt.tz is not None else values.dt.tz_localize(UTC)
        outside = stamps.notna() & ((stamps < PLAUSIBLE_FROM) | (stamps >= PLAUSIBLE_UNTIL))
        count = int(outside.sum())
        if out is frame:
            out = frame.copy()
        kept = stamps.where(~outside)
        out[column] = (
            kept.dt.as_unit("ns") if values.dt.tz is not None else kept.dt.tz_localize(None).dt.as_unit("ns")
        )
        cleared += count
    return out, cleared
