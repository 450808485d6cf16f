"""What the dashboard reads from the database: the generations log (filtered, paged) and what
sits beside it. Every query takes the viewer's scope: an inference key's pages read its own rows only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.sql.elements import ColumnElement

from omnirouter.store.db import Database
from omnirouter.store.tables import credit_grants, generations

PAGE = 50
STATUSES = ("ok", "error", "cancelled")
LIST_COLUMNS = (
    generations.c.id,
    generations.c.created_at,
    generations.c.model,
    generations.c.provider_name,
    generations.c.key_hash,
    generations.c.api_type,
    generations.c.streamed,
    generations.c.cancelled,
    generations.c.finish_reason,
    generations.c.latency_ms,
    generations.c.generation_time_ms,
    generations.c.tokens_prompt,
    generations.c.tokens_completion,
    generations.c.total_cost,
)


@dataclass
class Filters:
    """The generations log's filters, as the page's query string gives them (invalid ones are dropped)."""

    model: str = ""
    provider: str = ""
    key: str = ""
    status: str = ""
    since: date | None = None
    until: date | None = None
    page: int = 0

    @classmethod
    def parse(cls, params: Any) -> Filters:
        def day(name: str) -> date | None:
            try:
                return date.fromisoformat(params.get(name, ""))
            except ValueError:
                return None

        page = params.get("page", "0")
        return cls(
            model=params.get("model", "").strip()[:255],
            provider=params.get("provider", "").strip()[:255],
            key=params.get("key", "").strip()[:64],
            status=s if (s := params.get("status", "")) in STATUSES else "",
            since=day("since"),
            until=day("until"),
            page=min(int(page), 10_000) if page.isdigit() else 0,
        )

    def conditions(self, own_key: str | None) -> list[ColumnElement[bool]]:
        g = generations.c
        where: list[ColumnElement[bool]] = []
        if own_key is not None:
            where.append(g.key_hash == own_key)
        elif self.key:
            where.append(g.key_hash == self.key)
        if self.model:
            where.append(g.model == self.model)
        if self.provider:
            where.append(g.provider_name == self.provider)
        if self.since:
            where.append(g.created_at >= datetime.combine(self.since, time(), UTC))
        if self.until:
            where.append(g.created_at < datetime.combine(self.until + timedelta(days=1), time(), UTC))
        failed = g.finish_reason == "error"
        if self.status == "error":
            where.append(failed)
        elif self.status == "cancelled":
            where.append(g.cancelled.is_(True))
        elif self.status == "ok":
            where.append(and_(g.cancelled.is_(False), or_(g.finish_reason.is_(None), ~failed)))
        return where


def status_of(row: Any) -> str:
    if row["finish_reason"] == "error":
        return "error"
    return "cancelled" if row["cancelled"] else "ok"


async def generation_page(db: Database, filters: Filters, own_key: str | None) -> tuple[list[dict[str, Any]], bool]:
    """One page of the log, newest first, and whether an older page exists."""
    query = (
        select(*LIST_COLUMNS)
        .where(*filters.conditions(own_key))
        .order_by(generations.c.created_at.desc(), generations.c.id.desc())
        .offset(filters.page * PAGE)
        .limit(PAGE + 1)
    )
    async with db.engine.connect() as conn:
        rows = [dict(r._mapping) for r in await conn.execute(query)]
    for row in rows:
        row["status"] = status_of(row)
        if row["created_at"].tzinfo is None:  # SQLite hands back naive UTC
            row["created_at"] = row["created_at"].replace(tzinfo=UTC)
    return rows[:PAGE], len(rows) > PAGE


async def choices(db: Database, own_key: str | None) -> dict[str, list[str]]:
    """The models and providers the viewer's generations used: the log's filter menus."""
    g = generations.c
    scope = [g.key_hash == own_key] if own_key is not None else []
    async with db.engine.connect() as conn:
        models = (await conn.execute(select(g.model).where(*scope).distinct().order_by(g.model).limit(500))).scalars()
        models = list(models)
        providers = await conn.execute(
            select(g.provider_name).where(*scope, g.provider_name.isnot(None)).distinct().order_by(g.provider_name)
        )
        return {"models": models, "providers": list(providers.scalars())}


async def credit_history(db: Database) -> list[dict[str, Any]]:
    async with db.engine.connect() as conn:
        rows = await conn.execute(select(credit_grants).order_by(credit_grants.c.created_at.desc()).limit(100))
        return [dict(r._mapping) for r in rows]
