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

__all__ = ["as_utc", "to_day"]


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
