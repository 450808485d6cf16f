"""Spend windows. Limits reset at midnight UTC; weeks run Monday to Sunday (behaviors §6.5)."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

PERIODS = ("total", "day", "week", "month")
EPOCH = "1970-01-01"
# The window a key's `limit_reset` value counts against.
WINDOW_OF_RESET = {None: "total", "daily": "day", "weekly": "week", "monthly": "month"}
LIMIT_NAME = {"total": "total", "day": "daily", "week": "weekly", "month": "monthly"}


def window_starts(now: datetime) -> dict[str, str]:
    """The first day of each current window, as the ISO date the counters table keys on."""
    if now.tzinfo is not None:  # windows turn at midnight UTC, not at the caller's local midnight
        now = now.astimezone(UTC)
    today: date = now.date()
    return {
        "total": EPOCH,
        "day": today.isoformat(),
        "week": (today - timedelta(days=today.weekday())).isoformat(),
        "month": today.replace(day=1).isoformat(),
    }


def window_end(period: str, now: datetime) -> datetime | None:
    """When the current window of `period` rolls over (midnight UTC); None for "total", which never does."""
    if period == "total":
        return None
    start = date.fromisoformat(window_starts(now)[period])
    if period == "day":
        end = start + timedelta(days=1)
    elif period == "week":
        end = start + timedelta(weeks=1)
    else:
        end = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return datetime(end.year, end.month, end.day, tzinfo=UTC)


@lru_cache(maxsize=4)
def _starts_of_day(day_number: int) -> dict[str, str]:
    return window_starts(datetime.fromtimestamp(day_number * 86400, UTC))


def current_window_starts() -> dict[str, str]:
    """window_starts for now, computed once per UTC day: every settle needs it."""
    return _starts_of_day(int(time.time() // 86400))
