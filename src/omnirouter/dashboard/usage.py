"""Usage per day for the overview's charts, grouped in SQL from the generations (queries.py)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from omnirouter.dashboard import queries
from omnirouter.state import AppState

Row = tuple[date, str | None, Decimal, int, int]  # (day, model/provider/key hash, spend, requests, tokens)


async def by_day(st: AppState, dimension: str, since: date, own_key: str | None) -> tuple[list[Row], str]:
    """The rows from `since` to today (UTC days), and where they came from (shown under the charts)."""
    return await queries.usage_by_day(st.db, dimension, since, own_key), "the generations"
