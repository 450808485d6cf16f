"""GET /activity: the last 30 completed UTC days by date, model and endpoint (and workspace), summed from
the daily sums (tables.generation_daily, written with the hourly rollups by observability/rollups.py):
its cost grows with the days, keys, models and providers that saw traffic, not with the generations."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, select

from omnirouter.errors import GatewayError
from omnirouter.governance.workspaces import DEFAULT_WORKSPACE_ID
from omnirouter.jsonio import money
from omnirouter.observability.analytics import money_sum, summed_money
from omnirouter.store.db import Database
from omnirouter.store.tables import api_keys, generation_daily

DAYS = 30
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class ActivityQuery:
    day: str | None = None  # YYYY-MM-DD
    key_hash: str | None = None
    user_id: str | None = None
    workspace_id: str | None = None
    by_workspace: bool = False


def window(today: date) -> tuple[str, str]:
    """The first and last day /activity covers: the 30 UTC days before today."""
    return (today - timedelta(days=DAYS)).isoformat(), (today - timedelta(days=1)).isoformat()


def checked_day(raw: str, today: date) -> str:
    """`date` as given, or a 400 when it is no YYYY-MM-DD date or outside the last 30 completed days."""
    try:
        if not _DATE.fullmatch(raw):
            raise ValueError
        day = date.fromisoformat(raw)
    except ValueError:
        raise GatewayError(400, f"Invalid date {raw!r}: expected YYYY-MM-DD") from None
    first, last = window(today)
    if not first <= day.isoformat() <= last:
        raise GatewayError(400, f"date must be within the last {DAYS} completed UTC days ({first} to {last})")
    return day.isoformat()


async def activity(db: Database, query: ActivityQuery, *, today: date | None = None) -> list[dict[str, Any]]:
    """The activity items, oldest day first and within a day the costliest first."""
    first, last = window(today or datetime.now(UTC).date())
    dialect = db.engine.dialect.name
    r = generation_daily.c
    workspace = func.coalesce(func.nullif(r.workspace_id, ""), DEFAULT_WORKSPACE_ID).label("workspace")
    groups = [r.day, r.model, r.provider_slug, r.provider_name] + ([workspace] if query.by_workspace else [])
    where = [r.day == query.day] if query.day else [r.day >= first, r.day <= last]
    if query.key_hash is not None:
        where.append(r.key_hash == query.key_hash)
    if query.user_id is not None:
        where.append(r.key_hash.in_(select(api_keys.c.hash).where(api_keys.c.creator_user_id == query.user_id)))
    if query.workspace_id is not None:
        where.append(workspace == query.workspace_id)
    stmt = (
        select(
            *groups,
            money_sum(r.usage, dialect).label("usage"),
            money_sum(r.byok_usage, dialect).label("byok_usage"),
            func.sum(r.requests).label("requests"),
            func.sum(r.prompt_tokens).label("prompt_tokens"),
            func.sum(r.completion_tokens).label("completion_tokens"),
            func.sum(r.reasoning_tokens).label("reasoning_tokens"),
            func.sum(r.cached_tokens).label("cached_tokens"),
        )
        .where(and_(*where))
        .group_by(*groups)
    )

    def read(conn: Connection) -> list[Any]:
        return list(conn.execute(stmt))

    async with db.engine.connect() as conn:
        rows = await conn.run_sync(read)
    items = []
    for row in rows:
        item: dict[str, Any] = {
            "date": row.day,
            "model": row.model,
            "model_permaslug": row.model,
            "endpoint_id": f"{row.model}@{row.provider_slug}" if row.provider_slug else row.model,
            "provider_name": row.provider_name,
            "usage": money(summed_money(row.usage)),
            "byok_usage_inference": money(summed_money(row.byok_usage)),
            "requests": int(row.requests),
            "prompt_tokens": int(row.prompt_tokens),
            "completion_tokens": int(row.completion_tokens),
            "reasoning_tokens": int(row.reasoning_tokens),
            "cached_tokens": int(row.cached_tokens),  # not in OpenRouter's document, but the Python SDK requires it
        }
        if query.by_workspace:
            item["workspace_id"] = row.workspace
        items.append(item)
    items.sort(key=lambda i: (i["date"], -i["usage"], i["endpoint_id"], i.get("workspace_id", "")))
    return items
