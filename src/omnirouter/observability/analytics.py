"""Analytics queries (POST /analytics/query, the dashboard's charts): validated against whitelists and
compiled to SQLAlchemy Core, never to SQL text built from input.

Every metric is computed from additive sums (requests, errors, tokens, money, latency sum and count...):
the database sums them per time bucket and dimension values, and rates are divided out here. Those
sums exist both in the hourly rollups (observability/rollups.py) and, one row each, in the generations;
a query is answered from the rollups when everything it asks for is there (no minute granularity, no
metric or dimension only generations have, a time range on whole hours), from the generations
otherwise. Money is exact: NUMERIC sums on PostgreSQL; on SQLite, whose money is decimal strings its
SUM would turn into floats, the strings of a group are concatenated and summed as Decimals here.

For the dashboard::

    query = analytics.parse({"metrics": ["usage"], "dimensions": ["model"], "granularity": "day"})
    result = await analytics.run(db, query, analytics.Scope(key_hash=None, workspace_id=None))
    result.rows  # [{"date": "2026-12-01T00:00:00Z", "model": "openai/gpt-4o", "usage": Decimal(...)}]

`parse` raises GatewayError(400) naming what it does not know; `run` reads through a read connection.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import ColumnElement, String, and_, case, cast, false, func, literal, not_, or_, select
from sqlalchemy.engine import Connection

from omnirouter.errors import GatewayError
from omnirouter.governance.workspaces import DEFAULT_WORKSPACE_ID
from omnirouter.store.db import Database
from omnirouter.store.tables import generation_feedback, generation_rollups, generations

Source = Literal["rollups", "generations"]

# -- the sums every metric is made of --------------------------------------------------------------
_r = generation_rollups.c
_g = generations.c
_feedback = (
    select(generation_feedback.c.generation_id, func.count().label("n"))
    .group_by(generation_feedback.c.generation_id)
    .subquery("feedback")
)
_has_error = and_(_g.error.is_not(None), cast(_g.error, String) != "null")  # a JSON null is no error


def _count(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.sum(case((condition, 1), else_=0))


@dataclass(frozen=True)
class Sum:
    """An additive quantity: its expression over the rollups (None: they lack it) and the generations."""

    rollups: ColumnElement[Any] | None
    generations: ColumnElement[Any]
    money: bool = False


SUMS: dict[str, Sum] = {
    "requests": Sum(func.sum(_r.requests), func.count()),
    "errors": Sum(func.sum(_r.errors), _count(_has_error)),
    "cancelled": Sum(func.sum(_r.cancelled), _count(_g.cancelled.is_(True))),
    "prompt_tokens": Sum(func.sum(_r.prompt_tokens), func.sum(_g.tokens_prompt)),
    "completion_tokens": Sum(func.sum(_r.completion_tokens), func.sum(_g.tokens_completion)),
    "reasoning_tokens": Sum(func.sum(_r.reasoning_tokens), func.sum(_g.native_tokens_reasoning)),
    "cached_tokens": Sum(func.sum(_r.cached_tokens), func.sum(_g.native_tokens_cached)),
    "usage": Sum(_r.usage, _g.total_cost, money=True),
    "byok_usage": Sum(_r.byok_usage, case((_g.is_byok.is_(True), _g.upstream_inference_cost)), money=True),
    "latency_ms": Sum(func.sum(_r.latency_ms), func.sum(_g.latency_ms)),
    "latency_count": Sum(func.sum(_r.latency_count), func.count(_g.latency_ms)),
    "generation_time_ms": Sum(func.sum(_r.generation_time_ms), func.sum(_g.generation_time_ms)),
    "generation_time_count": Sum(func.sum(_r.generation_time_count), func.count(_g.generation_time_ms)),
    "throughput": Sum(None, func.sum(_g.throughput)),
    "throughput_count": Sum(None, func.count(_g.throughput)),
    "feedback": Sum(None, func.sum(func.coalesce(_feedback.c.n, 0))),
}


# -- metrics ---------------------------------------------------------------------------------------
DisplayFormat = Literal["number", "currency", "percent", "latency", "throughput"]


def _ratio(num: str, den: str) -> Callable[[Mapping[str, Any]], Any]:
    def value(s: Mapping[str, Any]) -> Any:
        d = s[den]
        if not d:
            return None
        n = s[num]
        return n / d if isinstance(n, Decimal) else float(n) / float(d)

    return value


def _total(*names: str) -> Callable[[Mapping[str, Any]], Any]:
    return lambda s: sum((s[n] for n in names), 0)


@dataclass(frozen=True)
class Metric:
    name: str
    display_label: str
    display_format: DisplayFormat
    sums: tuple[str, ...]
    value: Callable[[Mapping[str, Any]], Any]
    is_rate: bool = False


def _metric(name: str, label: str, fmt: DisplayFormat, sums: tuple[str, ...], **kw: Any) -> Metric:
    return Metric(name, label, fmt, sums, kw.pop("value", None) or _total(*sums), **kw)


def _rate(name: str, label: str, fmt: DisplayFormat, num: str, den: str) -> Metric:
    """A ratio of two sums (averaged, not summed, across rows)."""
    return _metric(name, label, fmt, (num, den), value=_ratio(num, den), is_rate=True)


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        _metric("request_count", "Requests", "number", ("requests",)),
        _metric("error_count", "Errors", "number", ("errors",)),
        _rate("error_rate", "Error rate", "percent", "errors", "requests"),
        _metric("cancelled_count", "Cancelled requests", "number", ("cancelled",)),
        _metric("prompt_tokens", "Prompt tokens", "number", ("prompt_tokens",)),
        _metric("completion_tokens", "Completion tokens", "number", ("completion_tokens",)),
        _metric("reasoning_tokens", "Reasoning tokens", "number", ("reasoning_tokens",)),
        _metric("cached_tokens", "Cached prompt tokens", "number", ("cached_tokens",)),
        _metric("total_tokens", "Total tokens", "number", ("prompt_tokens", "completion_tokens")),
        _metric("usage", "Spend (credits)", "currency", ("usage",)),
        _metric("byok_usage", "BYOK inference spend", "currency", ("byok_usage",)),
        _rate("avg_cost_per_request", "Average cost per request", "currency", "usage", "requests"),
        _rate("avg_latency_ms", "Average latency (first token)", "latency", "latency_ms", "latency_count"),
        _rate(
            "avg_generation_time_ms",
            "Average generation time",
            "latency",
            "generation_time_ms",
            "generation_time_count",
        ),
        _rate("avg_throughput", "Average throughput (tokens/s)", "throughput", "throughput", "throughput_count"),
        _metric("feedback_count", "Feedback reports", "number", ("feedback",)),
    )
}


# -- dimensions ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dimension:
    name: str
    display_label: str
    rollups: ColumnElement[Any] | None  # None: only the generations have it
    generations: ColumnElement[Any]


def _unset(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """A nullable column with "" for none, as the rollups hold it, so both sources filter alike."""
    return func.coalesce(column, "")


def _attributed(workspace_id: ColumnElement[Any]) -> ColumnElement[Any]:
    """Activity from before workspaces (none recorded) is the default workspace's, as OpenRouter says."""
    return func.coalesce(func.nullif(workspace_id, ""), DEFAULT_WORKSPACE_ID)


DIMENSIONS: dict[str, Dimension] = {
    d.name: d
    for d in (
        Dimension("model", "Model", _r.model, _g.model),
        Dimension("provider", "Provider", _r.provider_name, _unset(_g.provider_name)),
        Dimension("provider_slug", "Provider (slug)", _r.provider_slug, _unset(_g.provider_slug)),
        Dimension("api_key_id", "API key (hash)", _r.key_hash, _g.key_hash),
        Dimension("workspace", "Workspace", _attributed(_r.workspace_id), _attributed(_g.workspace_id)),
        Dimension("app", "App", _r.app, _unset(_g.app_title)),
        Dimension("api_type", "API", _r.api_type, _g.api_type),
        Dimension("finish_reason", "Finish reason", None, _unset(_g.finish_reason)),
        Dimension("origin", "Origin (HTTP referer)", None, _unset(_g.http_referer)),
        Dimension("external_user", "External user", None, _unset(_g.external_user)),
    )
}

OPERATORS: dict[str, Literal["scalar", "array"]] = {
    "eq": "scalar",
    "neq": "scalar",
    "in": "array",
    "not_in": "array",
    "gt": "scalar",
    "gte": "scalar",
    "lt": "scalar",
    "lte": "scalar",
}

GRANULARITIES: dict[str, tuple[str, timedelta]] = {
    "minute": ("Minute", timedelta(minutes=1)),
    "hour": ("Hour", timedelta(hours=1)),
    "day": ("Day", timedelta(days=1)),
    "week": ("Week", timedelta(weeks=1)),
    "month": ("Month", timedelta(days=31)),
}

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
MAX_BUCKETS = 20_000  # time buckets a query may span (minute granularity: two weeks)
DEFAULT_RANGE = timedelta(days=30)


def meta() -> dict[str, Any]:
    """GET /analytics/meta's data."""
    return {
        "metrics": [
            {"name": m.name, "display_label": m.display_label, "is_rate": m.is_rate, "display_format": m.display_format}
            for m in METRICS.values()
        ],
        "dimensions": [{"name": d.name, "display_label": d.display_label} for d in DIMENSIONS.values()],
        "operators": [{"name": name, "value_type": kind} for name, kind in OPERATORS.items()],
        "granularities": [{"name": name, "display_label": label} for name, (label, _) in GRANULARITIES.items()],
    }


# -- the query -------------------------------------------------------------------------------------
Value = str | float | int


@dataclass(frozen=True)
class Filter:
    field: str
    operator: str
    value: Value | tuple[Value, ...]
    include_unset: bool = False


@dataclass(frozen=True)
class Query:
    metrics: tuple[str, ...]
    dimensions: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = ()
    granularity: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    order_by: tuple[str, Literal["asc", "desc"]] | None = None
    limit: int = DEFAULT_LIMIT
    group_limit: int | None = None


@dataclass(frozen=True)
class Scope:
    """Whose generations a query sees: the organisation's (both None), a workspace's, or one key's."""

    key_hash: str | None = None
    workspace_id: str | None = None


@dataclass
class Result:
    rows: list[dict[str, Any]]
    truncated: bool
    source: Source
    query_time_ms: float
    warnings: list[str] = field(default_factory=list)


def _bad(message: str) -> GatewayError:
    return GatewayError(400, message)


def _names(raw: Any, what: str, known: Mapping[str, Any], *, most: int | None = None) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise _bad(f"{what} must be an array of strings")
    if most is not None and len(raw) > most:
        raise _bad(f"At most {most} {what} may be given")
    for name in raw:
        if name not in known:
            raise _bad(f"Unknown {what[:-1] if what.endswith('s') else what}: {name!r}")
    if len(set(raw)) != len(raw):
        raise _bad(f"{what} are repeated")
    return tuple(raw)


def _value(raw: Any) -> Value:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise _bad("A filter value must be a string or a number")
    if isinstance(raw, float) and not math.isfinite(raw):
        raise _bad("A filter value must be a finite number")
    return raw


def _filter(raw: Any) -> Filter:
    if not isinstance(raw, dict):
        raise _bad("Each filter must be an object with field, operator and value")
    unknown = set(raw) - {"field", "operator", "value", "include_unset"}
    if unknown:
        raise _bad(f"Unknown filter property: {sorted(unknown)[0]!r}")
    fld, op = raw.get("field"), raw.get("operator")
    if not isinstance(fld, str) or fld not in DIMENSIONS:
        raise _bad(f"Unknown filter field: {fld!r}")
    if not isinstance(op, str) or op not in OPERATORS:
        raise _bad(f"Unknown filter operator: {op!r}")
    if "value" not in raw:
        raise _bad("A filter needs a value")
    value: Value | tuple[Value, ...]
    if OPERATORS[op] == "array":
        if not isinstance(raw["value"], list) or not raw["value"]:
            raise _bad(f"Operator {op!r} takes a non-empty array of values")
        if len(raw["value"]) > 1000:
            raise _bad("A filter takes at most 1000 values")
        value = tuple(_value(v) for v in raw["value"])
    else:
        value = _value(raw["value"])
    include_unset = raw.get("include_unset", False)
    if not isinstance(include_unset, bool):
        raise _bad("include_unset must be a boolean")
    return Filter(fld, op, value, include_unset)


def _time(raw: Any, what: str) -> datetime:
    if not isinstance(raw, str):
        raise _bad(f"time_range.{what} must be a date-time string")
    try:
        at = datetime.fromisoformat(raw.replace("Z", "+00:00") if raw.endswith(("Z", "z")) else raw)
    except ValueError:
        raise _bad(f"time_range.{what} is not an ISO 8601 date-time: {raw!r}") from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _positive(raw: Any, what: str, most: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= most:
        raise _bad(f"{what} must be an integer from 1 to {most}")
    return raw


QUERY_FIELDS = {
    "metrics",
    "dimensions",
    "filters",
    "granularity",
    "time_range",
    "order_by",
    "limit",
    "group_limit",
    "classifier_dimensions",
    "classifier_filters",
}


def parse(body: Any) -> Query:
    """A request body (decoded JSON) as a Query, or GatewayError(400) saying what is wrong."""
    if not isinstance(body, dict):
        raise _bad("The body must be a JSON object")
    unknown = set(body) - QUERY_FIELDS
    if unknown:
        raise _bad(f"Unknown field: {sorted(unknown)[0]!r}")
    if body.get("classifier_dimensions") is not None or body.get("classifier_filters") is not None:
        raise _bad("No classifier exists on this instance (classifier_dimensions and classifier_filters)")
    if "metrics" not in body:
        raise _bad("metrics is required")
    metrics = _names(body["metrics"], "metrics", METRICS)
    if not metrics:
        raise _bad("metrics must name at least one metric")
    dimensions = _names(body.get("dimensions") or [], "dimensions", DIMENSIONS, most=2)
    raw_filters = body.get("filters") or []
    if not isinstance(raw_filters, list) or len(raw_filters) > 20:
        raise _bad("filters must be an array of at most 20 filters")
    filters = tuple(_filter(f) for f in raw_filters)
    granularity = body.get("granularity")
    if granularity is not None and (not isinstance(granularity, str) or granularity not in GRANULARITIES):
        raise _bad(f"Unknown granularity: {granularity!r}")
    start = end = None
    if (tr := body.get("time_range")) is not None:
        if not isinstance(tr, dict) or "start" not in tr or "end" not in tr or set(tr) - {"start", "end"}:
            raise _bad("time_range must be an object with start and end")
        start, end = _time(tr["start"], "start"), _time(tr["end"], "end")
        if end <= start:
            raise _bad("time_range.end must be after time_range.start")
    order_by = None
    if (ob := body.get("order_by")) is not None:
        if not isinstance(ob, dict) or set(ob) != {"field", "direction"}:
            raise _bad("order_by must be an object with field and direction")
        fld, direction = ob["field"], ob["direction"]
        if direction not in ("asc", "desc"):
            raise _bad(f"Unknown order_by direction: {direction!r}")
        allowed = {*metrics, "request_count", *dimensions, "date"}
        if not isinstance(fld, str) or fld not in allowed:
            raise _bad(
                f"Cannot order by {fld!r}: order by a requested metric, request_count, a requested dimension or date"
            )
        if fld == "date" and granularity is None:
            raise _bad("Ordering by date needs a granularity")
        order_by = (fld, direction)
    limit = DEFAULT_LIMIT if body.get("limit") is None else _positive(body["limit"], "limit", MAX_LIMIT)
    group_limit = None if body.get("group_limit") is None else _positive(body["group_limit"], "group_limit", MAX_LIMIT)
    return Query(metrics, dimensions, filters, granularity, start, end, order_by, limit, group_limit)


# -- compiling and running -------------------------------------------------------------------------
def _window(query: Query, now: datetime) -> tuple[datetime, datetime]:
    """The time range: the query's, else the 30 days (one for minutes) up to the end of the current hour."""
    if query.start is not None and query.end is not None:
        start, end = query.start, query.end
    else:
        end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        start = end - (timedelta(days=1) if query.granularity == "minute" else DEFAULT_RANGE)
    if query.granularity is not None:
        step = GRANULARITIES[query.granularity][1]
        if (end - start) / step > MAX_BUCKETS:
            raise _bad(f"The time range spans more than {MAX_BUCKETS} {query.granularity}s")
    return start, end


def _whole_hour(at: datetime) -> bool:
    return at.minute == 0 and at.second == 0 and at.microsecond == 0


def source_for(query: Query, start: datetime, end: datetime) -> Source:
    """The rollups when they hold everything the query needs, else the generations."""
    sums = {s for m in query.metrics for s in METRICS[m].sums}
    fields = set(query.dimensions) | {f.field for f in query.filters}
    if (
        query.granularity == "minute"
        or not (_whole_hour(start) and _whole_hour(end))
        or any(SUMS[s].rollups is None for s in sums)
        or any(DIMENSIONS[d].rollups is None for d in fields)
    ):
        return "generations"
    return "rollups"


def _bucket(column: ColumnElement[Any], granularity: str, dialect: str) -> ColumnElement[Any]:
    """The start of the UTC time bucket `column` falls in."""
    if dialect == "postgresql":
        return func.date_trunc(granularity, func.timezone("UTC", column))
    # SQLite holds a time as "YYYY-MM-DD HH:MM:SS.ffffff" (UTC here)
    if granularity == "week":  # the Monday on or before the day
        return func.date(func.substr(column, 1, 10), "weekday 0", "-6 days")
    return func.substr(column, 1, {"minute": 16, "hour": 13, "day": 10, "month": 7}[granularity])


def _as_time(value: Any) -> str:
    """A bucket from either dialect as an ISO 8601 UTC time."""
    if isinstance(value, datetime):
        at = value
    else:
        text = str(value)
        at = datetime.fromisoformat(text + {7: "-01", 10: "", 13: ":00", 16: ""}.get(len(text), ""))
    return at.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def _condition(column: ColumnElement[Any], f: Filter) -> ColumnElement[bool]:
    def text(v: Value) -> str:  # the dimensions are strings: a number is matched as its text
        return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)

    if isinstance(f.value, tuple):
        values = [text(v) for v in f.value]
        cond = column.in_(values) if f.operator == "in" else not_(column.in_(values))
        return or_(cond, column == "") if f.include_unset else cond
    v = text(f.value)
    return {
        "eq": lambda: column == v,
        "neq": lambda: column != v,
        "gt": lambda: column > v,
        "gte": lambda: column >= v,
        "lt": lambda: column < v,
        "lte": lambda: column <= v,
    }[f.operator]()


def compile_query(query: Query, scope: Scope, source: Source, start: datetime, end: datetime, dialect: str) -> Any:
    """The SELECT answering `query`: its bucket and dimensions, then each sum it needs (by name)."""
    rollups = source == "rollups"
    sums = sorted({s for m in query.metrics for s in METRICS[m].sums} | {"requests"})
    columns: list[ColumnElement[Any]] = []
    groups: list[ColumnElement[Any]] = []
    if query.granularity is not None:
        bucket = _bucket(_r.hour if rollups else _g.created_at, query.granularity, dialect).label("date")
        columns.append(bucket)
        groups.append(bucket)
    for name in query.dimensions:
        d = DIMENSIONS[name]
        expr = (d.rollups if rollups else d.generations).label(f"d_{name}")  # type: ignore[union-attr]
        columns.append(expr)
        groups.append(expr)
    for name in sums:
        s = SUMS[name]
        expr = s.rollups if rollups else s.generations
        assert expr is not None
        if s.money:
            # Exact everywhere: NUMERIC sums; SQLite's decimal strings joined, summed in Python.
            expr = money_sum(expr, dialect)
        columns.append(expr.label(f"s_{name}"))
    time_column = _r.hour if rollups else _g.created_at
    where: list[ColumnElement[bool]] = [time_column >= start, time_column < end]
    if scope.key_hash is not None:
        where.append((_r.key_hash if rollups else _g.key_hash) == scope.key_hash)
    if scope.workspace_id is not None:
        where.append(
            DIMENSIONS["workspace"].rollups == scope.workspace_id if rollups else _g.workspace_id == scope.workspace_id
        )  # type: ignore[operator]
    for f in query.filters:
        d = DIMENSIONS[f.field]
        where.append(_condition(d.rollups if rollups else d.generations, f))  # type: ignore[arg-type]
    stmt = select(*columns).where(and_(*where) if where else false())
    if not rollups and "feedback" in sums:
        stmt = stmt.select_from(generations.outerjoin(_feedback, _feedback.c.generation_id == _g.id))
    return stmt.group_by(*groups) if groups else stmt


def money_sum(expr: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    """An exact sum of a Money expression, read back with `summed_money`: NUMERIC on PostgreSQL; on
    SQLite its decimal strings joined, to be summed as Decimals here."""
    return func.sum(expr) if dialect == "postgresql" else func.group_concat(cast(expr, String), literal(","))


def summed_money(value: Any) -> Decimal:
    if value is None:
        return Decimal(0)
    if isinstance(value, Decimal):
        return value
    return sum((Decimal(x) for x in str(value).split(",") if x), Decimal(0))


_REQUESTS = " requests"  # no dimension or metric has this name


def _rows(query: Query, fetched: Sequence[Any]) -> list[dict[str, Any]]:
    out = []
    for r in fetched:
        m = r._mapping
        sums = {}
        for name in {s for metric in query.metrics for s in METRICS[metric].sums} | {"requests"}:
            v = m[f"s_{name}"]
            sums[name] = summed_money(v) if SUMS[name].money else (v or 0)
        if not sums["requests"]:
            continue  # an empty total (no generation matched) is no row
        row: dict[str, Any] = {}
        if query.granularity is not None:
            row["date"] = _as_time(m["date"])
        for name in query.dimensions:
            row[name] = m[f"d_{name}"] or None
        for name in query.metrics:
            v = METRICS[name].value(sums)
            row[name] = (
                float(v) if isinstance(v, float | int) and not isinstance(v, bool) and METRICS[name].is_rate else v
            )
        row[_REQUESTS] = sums["requests"]  # what order_by "request_count" sorts on, requested or not
        out.append(row)
    return out


def _ordered(query: Query, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], bool]:
    if query.order_by is not None:
        fld, direction = query.order_by
    elif query.granularity is not None:
        fld, direction = "date", "asc"
    else:
        fld, direction = query.metrics[0], "desc"
    if fld == "request_count":
        fld = _REQUESTS
    present = [r for r in rows if r.get(fld) is not None]
    missing = [r for r in rows if r.get(fld) is None]
    present.sort(key=lambda r: r[fld], reverse=direction == "desc")
    rows = present + missing
    truncated = False
    if query.group_limit is not None and query.dimensions:
        seen: dict[tuple[Any, ...], int] = {}
        kept = []
        for r in rows:
            k = tuple(r[d] for d in query.dimensions)
            seen[k] = seen.get(k, 0) + 1
            if seen[k] <= query.group_limit:
                kept.append(r)
        truncated = len(kept) < len(rows)
        rows = kept
    if len(rows) > query.limit:
        rows, truncated = rows[: query.limit], True
    return rows, truncated


async def run(db: Database, query: Query, scope: Scope = Scope(), *, now: datetime | None = None) -> Result:
    """Answer a parsed query within `scope` through a read connection (no write lock taken)."""
    began = time.perf_counter()
    start, end = _window(query, now or datetime.now(UTC))
    source = source_for(query, start, end)
    dialect = db.engine.dialect.name
    stmt = compile_query(query, scope, source, start, end, dialect)

    def read(conn: Connection) -> list[Any]:
        return list(conn.execute(stmt))

    async with db.engine.connect() as conn:
        fetched = await conn.run_sync(read)
    rows, truncated = _ordered(query, _rows(query, fetched))
    for r in rows:
        del r[_REQUESTS]
    return Result(rows, truncated, source, (time.perf_counter() - began) * 1000)
