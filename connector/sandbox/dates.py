"""Dates as the sandbox stores them, and the windows Dataverse's relative date conditions cover.

Times are stored and served as ISO-8601 UTC with whole seconds and ``Z``; DateOnly columns as
``yyyy-MM-dd``. The windows (Today, LastXDays, ThisMonth, ...) are computed against the server's
UTC now, the same for ``$filter`` functions and FetchXML operators: weeks start on Sunday (en-US,
the sandbox user's locale), "days" windows run from midnight UTC, hours count from now.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

__all__ = [
    "PERIOD_FUNCTIONS",
    "format_datetime",
    "midnight",
    "parse_datetime_literal",
    "relative_window",
    "shift",
]


def format_datetime(value: datetime) -> str:
    """Format a datetime the way the sandbox stores and serves it: ISO-8601 UTC, whole seconds, ``Z``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_datetime_literal(text: str, date_only: bool) -> str:
    """Normalise a date or date-time literal to the stored text form.

    Raises:
        ValueError: the text is not an ISO-8601 date or date-time.
    """
    text = text.strip()
    if len(text) == 10:
        d = date.fromisoformat(text)
        return d.isoformat() if date_only else f"{d.isoformat()}T00:00:00Z"
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if date_only:
        return parsed.date().isoformat()
    return format_datetime(parsed)


def midnight(moment: datetime) -> datetime:
    """The start of the moment's UTC day."""
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def _add_months(moment: datetime, months: int) -> datetime:
    total = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(total, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def shift(moment: datetime, unit: str, amount: int) -> datetime:
    """Move a moment by whole Minutes, Hours, Days, Weeks, Months or Years."""
    if unit == "Minutes":
        return moment + timedelta(minutes=amount)
    if unit == "Hours":
        return moment + timedelta(hours=amount)
    if unit == "Days":
        return moment + timedelta(days=amount)
    if unit == "Weeks":
        return moment + timedelta(weeks=amount)
    if unit == "Months":
        return _add_months(moment, amount)
    return _add_months(moment, 12 * amount)


def relative_window(now: datetime, direction: str, unit: str, x: int) -> tuple[datetime, datetime]:
    """LastX*/NextX*: hours count from now; days and longer run from/to whole days, as Dataverse does."""
    if unit == "Hours":
        return (shift(now, unit, -x), now) if direction == "Last" else (now, shift(now, unit, x))
    if direction == "Last":
        return midnight(shift(now, unit, -x)), now
    end = midnight(shift(now, unit, x)) + timedelta(days=1) - timedelta(seconds=1)
    return now, end


def _week_start(moment: datetime) -> datetime:
    # Weeks start on Sunday (en-US, the sandbox user's locale).
    return midnight(moment) - timedelta(days=(moment.weekday() + 1) % 7)


def _month_start(moment: datetime, offset: int = 0) -> datetime:
    return _add_months(midnight(moment).replace(day=1), offset)


def _year_start(moment: datetime, offset: int = 0) -> datetime:
    return datetime(moment.year + offset, 1, 1, tzinfo=UTC)


# Dataverse's period functions: name → (start, end) of the window, end exclusive.
PERIOD_FUNCTIONS: dict[str, Callable[[datetime], tuple[datetime, datetime]]] = {
    "Today": lambda n: (midnight(n), midnight(n) + timedelta(days=1)),
    "Yesterday": lambda n: (midnight(n) - timedelta(days=1), midnight(n)),
    "Tomorrow": lambda n: (midnight(n) + timedelta(days=1), midnight(n) + timedelta(days=2)),
    "ThisWeek": lambda n: (_week_start(n), _week_start(n) + timedelta(days=7)),
    "LastWeek": lambda n: (_week_start(n) - timedelta(days=7), _week_start(n)),
    "NextWeek": lambda n: (_week_start(n) + timedelta(days=7), _week_start(n) + timedelta(days=14)),
    "ThisMonth": lambda n: (_month_start(n), _month_start(n, 1)),
    "LastMonth": lambda n: (_month_start(n, -1), _month_start(n)),
    "NextMonth": lambda n: (_month_start(n, 1), _month_start(n, 2)),
    "ThisYear": lambda n: (_year_start(n), _year_start(n, 1)),
    "LastYear": lambda n: (_year_start(n, -1), _year_start(n)),
    "NextYear": lambda n: (_year_start(n, 1), _year_start(n, 2)),
    "Last7Days": lambda n: (midnight(n) - timedelta(days=7), n + timedelta(seconds=1)),
    "Next7Days": lambda n: (n, midnight(n) + timedelta(days=8)),
}
