"""Usage per day for the overview's charts, from the analytics API (observability/analytics.py: the
hourly rollups where they suffice, else the generations)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from omnirouter.observability import analytics
from omnirouter.state import AppState

Row = tuple[date, str | None, Decimal, int, int]  # (day, model/provider/key hash, spend, requests, tokens)
DIMENSIONS = {"model": "model", "provider": "provider", "key": "api_key_id"}


async def by_day(st: AppState, dimension: str, since: date, own_key: str | None) -> tuple[list[Row], str]:
    """The rows from `since` to today (UTC days), and where they came from (shown under the charts)."""
    name = DIMENSIONS[dimension]
    start = datetime.combine(since, time(), UTC)
    end = datetime.combine(datetime.now(UTC).date() + timedelta(days=1), time(), UTC)
    query = analytics.parse(
        {
            "metrics": ["usage", "request_count", "total_tokens"],
            "dimensions": [name],
            "granularity": "day",
            "time_range": {"start": start.isoformat(), "end": end.isoformat()},
            "limit": analytics.MAX_LIMIT,
        }
    )
    result = await analytics.run(st.db, query, analytics.Scope(key_hash=own_key))
    rows = [
        (
            datetime.fromisoformat(r["date"].replace("Z", "+00:00")).date(),
            r[name],
            Decimal(r["usage"] or 0),
            int(r["request_count"] or 0),
            int(r["total_tokens"] or 0),
        )
        for r in result.rows
    ]
    return rows, f"the {result.source}" + (" (truncated)" if result.truncated else "")
