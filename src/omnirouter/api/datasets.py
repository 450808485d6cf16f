"""OpenRouter's public datasets, answered from this instance's own traffic (the hourly rollups) where
it can honestly say something: GET /datasets/rankings-daily and /datasets/app-rankings. Where no such
data exists here (task classifications, benchmark scores, sampled session costs, app categories) the
answer is the documented shape, empty. Any key; `meta.scope` says whose data it is."""

from __future__ import annotations

import zlib
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, select
from starlette.requests import Request
from starlette.routing import Route

from omnirouter.api import auth
from omnirouter.api.errors import ApiError
from omnirouter.api.jsonio import JSONResponse
from omnirouter.observability import schemas as s
from omnirouter.openapi_doc import Operation
from omnirouter.state import state
from omnirouter.store.tables import generation_rollups

SCOPE = "this instance's own traffic"
FLOOR = date(2025, 1, 1)
TOP = 50


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _enum(request: Request, name: str, allowed: tuple[str, ...], default: str | None = None) -> str | None:
    value = request.query_params.get(name, default)
    if value is not None and value not in allowed:
        raise ApiError(400, f"Invalid {name} {value!r}: expected one of {', '.join(allowed)}")
    return value


def _int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"Invalid {name} {raw!r}: expected an integer") from None
    if not low <= value <= high:
        raise ApiError(400, f"{name} must be from {low} to {high}")
    return value


def _day(raw: str | None, name: str) -> date | None:
    if raw is None:
        return None
    try:
        if len(raw) != 10:
            raise ValueError
        return date.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, f"Invalid {name} {raw!r}: expected YYYY-MM-DD") from None


def _window(request: Request) -> tuple[date, date]:
    """start_date and end_date as the datasets resolve them (inclusive; end by default yesterday)."""
    end = _day(request.query_params.get("end_date"), "end_date") or datetime.now(UTC).date() - timedelta(days=1)
    if end < FLOOR:
        raise ApiError(400, f"end_date must be on or after {FLOOR.isoformat()}")
    start = max(_day(request.query_params.get("start_date"), "start_date") or end - timedelta(days=30), FLOOR)
    if start > end:
        raise ApiError(400, "start_date must be on or before end_date")
    return start, end


async def _tokens_by(request: Request, column: Any, start: date, end: date) -> list[Any]:
    """(day, value of `column`, tokens, requests) from the rollups."""
    r = generation_rollups.c
    stmt = (
        select(r.day, column, func.sum(r.prompt_tokens + r.completion_tokens), func.sum(r.requests))
        .where(and_(r.day >= start.isoformat(), r.day <= end.isoformat()))
        .group_by(r.day, column)
    )

    def read(conn: Connection) -> list[Any]:
        return list(conn.execute(stmt))

    async with state(request).db.engine.connect() as conn:
        return await conn.run_sync(read)


def _meta(start: date, end: date) -> s.RankingsDailyMeta:
    return s.RankingsDailyMeta(
        as_of=_now(), version="v1", start_date=start.isoformat(), end_date=end.isoformat(), scope=SCOPE
    )


def _period_start(day: str, period: str) -> str:
    d = date.fromisoformat(day)
    if period == "week":
        d -= timedelta(days=d.weekday())
    elif period == "month":
        d = d.replace(day=1)
    return d.isoformat()


async def rankings_daily(request: Request) -> JSONResponse:
    await auth.any_key(request)
    start, end = _window(request)
    period = _enum(request, "period", ("day", "week", "month"))
    modality = _enum(request, "modality", ("text", "image", "image_output", "audio", "tool_calling"))
    bucket = _enum(request, "context_bucket", ("1K", "10K", "100K", "1M", "10M"))
    category = request.query_params.get("category")
    language = _enum(request, "language_type", ("natural", "programming"))
    sampled = [n for n, v in (("category", category), ("language_type", language)) if v is not None]
    exact = [n for n, v in (("modality", modality), ("context_bucket", bucket)) if v is not None]
    if len(sampled) > 1 or (sampled and exact):
        raise ApiError(400, f"{sampled[0]} cannot be combined with {(sampled[1:] + exact)[0]}")
    if sampled and period == "day":
        raise ApiError(400, f"{sampled[0]} is aggregated weekly: period=day is not available with it")
    meta = _meta(start, end)
    if sampled or exact:  # no classification, modality or context length is recorded by this instance
        return JSONResponse(s.RankingsDailyResponse(data=[], meta=meta))
    grain = period or "day"
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for day, model, tokens, _ in await _tokens_by(request, generation_rollups.c.model, start, end):
        totals[_period_start(day, grain)][model] += int(tokens or 0)
    data: list[s.RankingsDailyItem] = []
    for day in sorted(totals):
        ranked = sorted(totals[day].items(), key=lambda kv: (-kv[1], kv[0]))
        data += [s.RankingsDailyItem(day, m, str(t)) for m, t in ranked[:TOP]]
        if rest := ranked[TOP:]:
            data.append(s.RankingsDailyItem(day, "other", str(sum(t for _, t in rest))))
    return JSONResponse(s.RankingsDailyResponse(data=data, meta=meta))


def app_id(name: str) -> int:
    """A stable number for an app (this instance knows apps by their X-Title)."""
    return zlib.crc32(name.encode())


async def app_rankings(request: Request) -> JSONResponse:
    await auth.any_key(request)
    start, end = _window(request)
    sort = _enum(request, "sort", ("popular", "trending"), "popular")
    category = request.query_params.get("category")
    subcategory = request.query_params.get("subcategory")
    limit = _int(request, "limit", 50, 1, 100)
    offset = _int(request, "offset", 0, 0, 100)
    meta = _meta(start, end)
    if category is not None or subcategory is not None:  # apps carry no category here
        return JSONResponse(s.AppRankingsResponse(data=[], meta=meta))
    span = (end - start).days + 1
    since = start - timedelta(days=3 * span) if sort == "trending" else start
    inside: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    before: dict[str, int] = defaultdict(int)
    for day, app, tokens, requests in await _tokens_by(request, generation_rollups.c.app, since, end):
        if not app:
            continue
        if day >= start.isoformat():
            inside[app][0] += int(tokens or 0)
            inside[app][1] += int(requests or 0)
        else:
            before[app] += int(tokens or 0)
    if sort == "trending":
        score = {a: v[0] - before[a] / 3 for a, v in inside.items() if v[0] - before[a] / 3 > 0}
    else:
        score = {a: v[0] for a, v in inside.items()}
    ranked = sorted(score, key=lambda a: (-score[a], a))
    data = [
        s.AppRankingsItem(
            rank=i + 1, app_id=app_id(a), app_name=a, total_tokens=str(inside[a][0]), total_requests=inside[a][1]
        )
        for i, a in enumerate(ranked)
    ][offset : offset + limit]
    return JSONResponse(s.AppRankingsResponse(data=data, meta=meta))


async def session_cost(request: Request) -> JSONResponse:
    await auth.any_key(request)
    _enum(request, "turn_range", ("1-turn", "2-9-turns", "10-49-turns", "50-plus-turns"))
    _int(request, "limit", 100, 1, 500)
    _int(request, "offset", 0, 0, 5000)
    # No weekly sampled snapshot of harness sessions is published by this instance.
    meta = s.SessionCostMeta(as_of=_now(), version="v1", window_days=None, window_end_date=None, scope=SCOPE)
    return JSONResponse(s.SessionCostResponse(data=[], meta=meta))


async def task_classifications(request: Request) -> JSONResponse:
    await auth.any_key(request)
    _enum(request, "window", ("7d",), "7d")
    as_of = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    # This instance classifies no request by task: no classification can be reported.
    data = s.TaskClassifications(window_days=7, as_of=as_of, classifications=[], macro_categories=[])
    return JSONResponse(s.TaskClassificationResponse(data=data))


async def benchmarks(request: Request) -> JSONResponse:
    await auth.any_key(request)
    source = _enum(request, "source", ("artificial-analysis", "design-arena", "openrouter"))
    task_type = _enum(request, "task_type", ("coding", "intelligence", "agentic", "search"))
    _enum(
        request,
        "benchmark_type",
        (
            "gpqa_diamond",
            "tau_bench_verified_airline",
            "search_browsecomp",
            "search_hle",
            "search_dsqa",
            "search_widesearch",
        ),
    )
    _enum(request, "search_surface", ("server-tool", "plugin"))
    _enum(request, "arena", ("models", "builders", "agents"))
    _enum(request, "include_run_config", ("true", "false"))
    _int(request, "max_results", 1, 1, 2**31 - 1)
    # This instance runs no benchmark and imports no third party's scores.
    meta = s.UnifiedBenchmarksMeta(
        as_of=_now(), version="v1", source=source, source_url=None, citation=None, model_count=0, task_type=task_type
    )
    return JSONResponse(s.UnifiedBenchmarksResponse(data=[], meta=meta))


routes = [
    Route("/datasets/rankings-daily", rankings_daily, methods=["GET"]),
    Route("/datasets/app-rankings", app_rankings, methods=["GET"]),
    Route("/datasets/session-cost", session_cost, methods=["GET"]),
    Route("/classifications/task", task_classifications, methods=["GET"]),
    Route("/benchmarks", benchmarks, methods=["GET"]),
]

OPERATIONS = {
    ("/datasets/rankings-daily", "get"): Operation(
        operation_id="getRankingsDaily",
        summary="Daily token totals for top 50 models",
        tag="Datasets",
        auth="any",
        response=s.RankingsDailyResponse,
        errors=(400, 401, 500),
        description="The top 50 models per day of this instance's traffic by prompt + completion tokens, and `other`.",
    ),
    ("/datasets/app-rankings", "get"): Operation(
        operation_id="getAppRankings",
        summary="Top apps by token usage",
        tag="Datasets",
        auth="any",
        response=s.AppRankingsResponse,
        errors=(400, 401, 500),
        description="Apps (by X-Title) of this instance's traffic ranked by tokens; no app has a category here.",
    ),
    ("/datasets/session-cost", "get"): Operation(
        operation_id="getSessionCost",
        summary="Cost per session by harness and model",
        tag="Datasets",
        auth="any",
        response=s.SessionCostResponse,
        errors=(400, 401, 500),
        description="Empty: this instance publishes no sampled session snapshot.",
    ),
    ("/classifications/task", "get"): Operation(
        operation_id="getTaskClassifications",
        summary="Task classification market share",
        tag="Classifications",
        auth="any",
        response=s.TaskClassificationResponse,
        errors=(400, 401, 500),
        description="Empty: this instance classifies no request by task.",
    ),
    ("/benchmarks", "get"): Operation(
        operation_id="getBenchmarks",
        summary="List Benchmarks",
        tag="Benchmarks",
        auth="any",
        response=s.UnifiedBenchmarksResponse,
        components=s.BENCHMARK_ITEMS,
        errors=(400, 401, 500),
        description="Empty: this instance runs no benchmark and imports no third party's scores.",
    ),
}

TAGS = {
    "Datasets": "Rankings from this instance's own traffic (docs/api.md, Analytics)",
    "Classifications": "Task classifications (none on this instance)",
    "Benchmarks": "Benchmark scores (none on this instance)",
}
