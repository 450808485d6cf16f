"""GET /activity, /analytics/meta, POST /analytics/query and /generation/feedback: the instance's
generations summed from hourly rollups (daily sums for /activity), which always equal the generations
themselves (after the recorder's flushes and after a journal's replay alike); analytics queries accept
only documented names and take every value as a bound parameter."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from omnirouter import observability
from omnirouter.observability import analytics
from omnirouter.store.db import Database
from omnirouter.store.journal import Journal, replay
from omnirouter.store.tables import generation_daily, generation_rollups, generations
from tests.conftest import standard_config
from tests.gateway import FreshDatabase, Gateway, generation
from tests.spec_validation import spec_available, validate_response

HELLO = [{"role": "user", "content": "hello"}]
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
TOMORROW = TODAY + timedelta(days=1)
MODELS = ("test/alpha", "test/beta")


# Refusals of schema-valid requests that no schema states (tests/test_schemathesis.py): a date within the
# last 30 completed days (the clock's), names that GET /analytics/meta lists, no classifier on this
# instance, the query's own consistency (no repeats, a range in order and of bounded size, an order_by
# among the query's fields, an array for in/not_in).
_QUERY_REFUSALS = ("Unknown", "No classifier", "repeated", "time_range", "order_by", "Ordering by date",
                   "spans more than", "non-empty array", "A filter value", "A filter needs")  # fmt: skip
SEMANTIC_REFUSALS = {
    ("/activity", "get"): lambda error: any(t in error["message"] for t in ("Invalid date", "must be within the last")),
    ("/analytics/query", "post"): lambda error: any(t in error["message"] for t in _QUERY_REFUSALS),
}


def _row(gen_id: str, key_hash: str, at: datetime, cost: str, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {c.name: None for c in generations.columns}
    row.update(
        id=gen_id, request_id=gen_id, key_hash=key_hash, model="test/alpha", api_type="completions",
        streamed=False, cancelled=False, created_at=at, total_cost=Decimal(cost), is_byok=False,
        provider_name="Fake A", provider_slug="fake-a", provider_responses=[{"status": 200, "provider_name": "Fake A"}],
        tokens_prompt=10, tokens_completion=5, native_tokens_prompt=10, native_tokens_completion=5,
        native_tokens_reasoning=2, native_tokens_cached=0, native_tokens_cache_write=0, latency_ms=100,
    )  # fmt: skip
    row.update(extra)
    return row


def _past_rows(key_hash: str, workspace: str | None) -> list[dict[str, Any]]:
    """Generations over the last days (what /activity covers), two models, BYOK and not, a workspace
    and none (recorded before workspaces)."""
    rows = []
    for day in range(1, 6):
        for i in range(4):
            at = TODAY - timedelta(days=day, hours=i * 5, minutes=7 * i)
            rows.append(
                _row(
                    f"gen-past-{day}-{i}-{uuid.uuid4().hex[:8]}", key_hash, at, f"0.0000{day}{i}123456789",
                    model=MODELS[i % 2], workspace_id=workspace if i % 3 else None,
                    is_byok=i == 3, upstream_inference_cost=Decimal("0.0042") if i == 3 else None,
                    error={"code": 502, "message": "upstream"} if i == 2 else None,
                )
            )  # fmt: skip
    return rows


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fake_a: Any, fake_b: Any):
    tmp = tmp_path_factory.mktemp("analytics")
    g = Gateway(tmp, standard_config(fake_a.base_url, fake_b.base_url)).start()
    key = g.create_key(name="analytics")
    with g.admin() as admin:
        ws = admin.post("/workspaces", json={"name": "Team", "slug": "team"}).json()["data"]
    key_hash = key["data"]["hash"]
    rows = _past_rows(key_hash, ws["id"])
    assert g.loop is not None

    async def record() -> None:
        for row in rows:
            g.state.recorder.record(row)
        await g.state.recorder.flush()

    asyncio.run_coroutine_threadsafe(record(), g.loop).result(timeout=10)
    with g.client(key["key"]) as c:  # and today's traffic, through the gateway
        for model in MODELS:
            r = c.post("/chat/completions", json={"model": model, "messages": HELLO})
            assert r.status_code == 200, r.text
            last = r.json()["id"]
    generation(g, key["key"], last)
    g.flush()
    g.ctx = {"key": key["key"], "hash": key_hash, "workspace": ws["id"], "rows": rows, "last": last}  # type: ignore[attr-defined]
    yield g
    g.stop()


def _json(r: Any) -> Any:
    return json.loads(r.text, parse_float=Decimal)


def _generation_sums(gw: Gateway) -> dict[tuple[str, str], list[Any]]:
    """Straight from the generations: (day, model) -> [usage, requests, prompt, completion, reasoning]."""

    def read(conn: Any) -> list[Any]:
        return list(conn.execute(select(generations)))

    async def go() -> list[Any]:
        async with gw.state.db.engine.connect() as conn:
            return await conn.run_sync(read)

    assert gw.loop is not None
    sums: dict[tuple[str, str], list[Any]] = {}
    for g in asyncio.run_coroutine_threadsafe(go(), gw.loop).result(timeout=10):
        at = g.created_at if g.created_at.tzinfo else g.created_at.replace(tzinfo=UTC)
        if not TODAY - timedelta(days=30) <= at < TODAY:
            continue
        s = sums.setdefault((at.date().isoformat(), g.model), [Decimal(0), 0, 0, 0, 0, Decimal(0)])
        s[0] += g.total_cost
        s[1] += 1
        s[2] += g.tokens_prompt
        s[3] += g.tokens_completion
        s[4] += g.native_tokens_reasoning
        s[5] += (g.upstream_inference_cost or 0) if g.is_byok else 0
    return sums


def test_activity_equals_the_sum_of_generations(gw):
    with gw.admin() as admin:
        r = admin.get("/activity")
    assert r.status_code == 200, r.text
    if spec_available():
        validate_response("getUserActivity", r.json())
    items = _json(r)["data"]
    got: dict[tuple[str, str], list[Any]] = {}
    for i in items:
        assert "workspace_id" not in i
        assert i["endpoint_id"] == i["model"] + "@fake-a" and i["provider_name"] == "Fake A"
        s = got.setdefault((i["date"], i["model"]), [Decimal(0), 0, 0, 0, 0, Decimal(0)])
        for n, f in enumerate(("usage", "requests", "prompt_tokens", "completion_tokens", "reasoning_tokens")):
            s[n] += i[f]
        s[5] += i["byok_usage_inference"]
    assert got == _generation_sums(gw)
    # Today's requests are not a completed day.
    assert {i["date"] for i in items} == {r["created_at"].date().isoformat() for r in gw.ctx["rows"]}


def test_activity_filters_and_groups_by_workspace(gw):
    ctx = gw.ctx
    with gw.admin() as admin:
        split = _json(admin.get("/activity", params={"group_by": "workspace"}))["data"]
        whole = _json(admin.get("/activity"))["data"]
        team = _json(admin.get("/activity", params={"workspace_id": ctx["workspace"]}))["data"]
        by_key = _json(admin.get("/activity", params={"api_key_hash": ctx["hash"]}))["data"]
        nobody = _json(admin.get("/activity", params={"api_key_hash": "0" * 64}))["data"]
        day = (TODAY - timedelta(days=2)).date().isoformat()
        one_day = _json(admin.get("/activity", params={"date": day}))["data"]
    assert {i["workspace_id"] for i in split} == {ctx["workspace"], "00000000-0000-4000-8000-000000000000"}
    assert sum(i["requests"] for i in split) == sum(i["requests"] for i in whole) == 20
    expected = sum(1 for r in ctx["rows"] if r["workspace_id"] == ctx["workspace"])
    assert sum(i["requests"] for i in team) == expected
    assert sum(i["requests"] for i in by_key) == 20 and nobody == []
    assert {i["date"] for i in one_day} == {day} and sum(i["requests"] for i in one_day) == 4


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"date": "yesterday"}, 400),
        ({"date": "2020-01-01"}, 400),
        ({"date": TODAY.date().isoformat()}, 400),  # today is not completed
        ({"group_by": "model"}, 400),
        ({"workspace_id": str(uuid.uuid4())}, 404),
    ],
)
def test_activity_rejects_what_it_cannot_answer(gw, params, status):
    with gw.admin() as admin:
        r = admin.get("/activity", params=params)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == status


def test_analytics_need_a_management_key(gw):
    with gw.client(gw.ctx["key"]) as c:
        for r in (
            c.get("/activity"),
            c.get("/analytics/meta"),
            c.post("/analytics/query", json={"metrics": ["usage"]}),
            c.post("/generation/feedback", json={"generation_id": gw.ctx["last"], "category": "other"}),
        ):
            assert r.status_code == 403, r.text


def test_meta_lists_what_queries_accept(gw):
    with gw.admin() as admin:
        r = admin.get("/analytics/meta")
    assert r.status_code == 200
    if spec_available():
        validate_response("getAnalyticsMeta", r.json())
    data = r.json()["data"]
    assert {m["name"] for m in data["metrics"]} == set(analytics.METRICS)
    assert {d["name"] for d in data["dimensions"]} == set(analytics.DIMENSIONS)
    assert [o["name"] for o in data["operators"]] == ["eq", "neq", "in", "not_in", "gt", "gte", "lt", "lte"]
    assert [g["name"] for g in data["granularities"]] == ["minute", "hour", "day", "week", "month"]


def _query(gw: Gateway, body: dict[str, Any]) -> Any:
    with gw.admin() as admin:
        return admin.post("/analytics/query", json=body)


def test_rollups_and_generations_give_the_same_answer(gw):
    end = TODAY + timedelta(days=1)
    base = {"metrics": ["usage", "request_count", "total_tokens", "byok_usage", "error_rate", "avg_latency_ms"]}
    whole = {"start": (end - timedelta(days=10)).isoformat(), "end": end.isoformat()}
    # A range off the hour: only the generations can say what happened in part of an hour.
    ragged = {"start": (end - timedelta(days=10, seconds=1)).isoformat(), "end": end.isoformat()}
    answers = []
    for time_range in (whole, ragged):
        r = _query(gw, {**base, "dimensions": ["model"], "granularity": "day", "time_range": time_range})
        assert r.status_code == 200, r.text
        if spec_available():
            validate_response("queryAnalytics", r.json())
        answers.append(_json(r)["data"]["data"])
    assert answers[0] == answers[1]
    rows = answers[0]
    assert sum(r["request_count"] for r in rows) == 22
    sums = _generation_sums(gw)
    assert sum(r["usage"] for r in rows if r["date"] < TODAY.isoformat()) == sum(s[0] for s in sums.values())
    assert all(r["date"].endswith("T00:00:00Z") for r in rows)


def test_every_granularity_and_filter_answers(gw):
    for granularity in analytics.GRANULARITIES:
        r = _query(
            gw,
            {
                "metrics": ["request_count"],
                "granularity": granularity,
                "order_by": {"field": "date", "direction": "desc"},
                "time_range": {"start": (TODAY - timedelta(days=10)).isoformat(), "end": TOMORROW.isoformat()},
            },
        )
        assert r.status_code == 200, (granularity, r.text)
        assert sum(row["request_count"] for row in r.json()["data"]["data"]) == 22
    beta = [{"field": "model", "operator": "in", "value": ["test/beta"]}]
    r = _query(gw, {"metrics": ["request_count"], "dimensions": ["model", "workspace"], "filters": beta})
    rows = r.json()["data"]["data"]
    assert {row["model"] for row in rows} == {"test/beta"} and sum(row["request_count"] for row in rows) == 11
    r = _query(gw, {"metrics": ["usage"], "dimensions": ["model"], "limit": 1})
    assert r.json()["data"]["metadata"] == {**r.json()["data"]["metadata"], "row_count": 1, "truncated": True}


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"metrics": ["spend_in_yen"]}, "spend_in_yen"),
        ({"metrics": ["usage"], "dimensions": ["country"]}, "country"),
        ({"metrics": ["usage"], "filters": [{"field": "model", "operator": "like", "value": "x"}]}, "like"),
        ({"metrics": ["usage"], "filters": [{"field": "password", "operator": "eq", "value": "x"}]}, "password"),
        ({"metrics": ["usage"], "granularity": "fortnight"}, "fortnight"),
        ({"metrics": ["usage"], "order_by": {"field": "model", "direction": "asc"}}, "model"),
        ({"metrics": []}, "metric"),
        (
            {
                "metrics": ["usage"],
                "granularity": "minute",
                "time_range": {"start": "2020-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
            },
            "minute",
        ),
    ],
)
def test_unknown_names_are_400_naming_them(gw, body, named):
    r = _query(gw, body)
    assert r.status_code == 400, r.text
    assert named in r.json()["error"]["message"]


def test_feedback_is_stored_and_counted(gw):
    gen_id = gw.ctx["last"]
    with gw.admin() as admin:
        r = admin.post("/generation/feedback", json={"generation_id": gen_id, "category": "latency", "comment": "slow"})
        assert r.status_code == 200, r.text
        assert r.json() == {"data": {"success": True}}
        missing = admin.post("/generation/feedback", json={"generation_id": "gen-nope", "category": "other"})
        bad = admin.post("/generation/feedback", json={"generation_id": gen_id, "category": "mood"})
    assert missing.status_code == 404 and bad.status_code == 400
    r = _query(gw, {"metrics": ["feedback_count"], "dimensions": ["model"]})
    assert r.status_code == 200, r.text
    rows = {row["model"]: row["feedback_count"] for row in r.json()["data"]["data"]}
    assert rows["test/beta"] == 1 and rows["test/alpha"] == 0


_NAMES = st.sampled_from([*analytics.METRICS, *analytics.DIMENSIONS, "date", "1; DROP TABLE generations", "x'--"])
_VALUES = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["' OR '1'='1", "test/alpha'; DELETE FROM generations; --", '"; SELECT 1; --']),
    st.integers(-5, 5),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    metrics=st.lists(st.sampled_from([*analytics.METRICS, "nope", "usage;--"]), min_size=1, max_size=3),
    dimensions=st.lists(_NAMES, max_size=2),
    field=_NAMES,
    operator=st.sampled_from([*analytics.OPERATORS, "like", "= 1 OR 1=1"]),
    value=_VALUES,
    granularity=st.sampled_from([None, *analytics.GRANULARITIES, "second"]),
)
def test_fuzzed_queries_accept_only_documented_names_and_bind_every_value(
    gw, metrics, dimensions, field, operator, value, granularity
):
    array = analytics.OPERATORS.get(operator) == "array"
    body: dict[str, Any] = {
        "metrics": metrics,
        "dimensions": dimensions,
        "filters": [{"field": field, "operator": operator, "value": [value] if array else value}],
        "time_range": {
            "start": (TODAY - timedelta(days=7)).isoformat(),
            "end": (TODAY + timedelta(days=1)).isoformat(),
        },
    }
    if granularity is not None:
        body["granularity"] = granularity
    documented = (
        all(m in analytics.METRICS for m in metrics)
        and all(d in analytics.DIMENSIONS for d in dimensions)
        and len(set(dimensions)) == len(dimensions)
        and field in analytics.DIMENSIONS
        and operator in analytics.OPERATORS
        and (granularity is None or granularity in analytics.GRANULARITIES)
        and len(set(metrics)) == len(metrics)
    )
    r = _query(gw, body)
    assert r.status_code == (200 if documented else 400), (body, r.text)
    if documented and isinstance(value, str) and ("'" in value or '"' in value) and operator in ("eq", "in"):
        assert r.json()["data"]["data"] == []  # a quoted value is a value, matching nothing


def test_generations_are_intact_after_the_fuzzing(gw):
    r = _query(gw, {"metrics": ["request_count"]})
    assert r.json()["data"]["data"][0]["request_count"] == 22


def test_rollups_equal_generations_after_a_journal_replay(tmp_path: Path):
    fresh = FreshDatabase()
    url = fresh.url or f"sqlite+aiosqlite:///{tmp_path / 'replay.db'}"
    journal = Journal(tmp_path / "data")
    rows = _past_rows("h" * 64, "ws-1")
    for row in rows:
        journal.append(row, None, None)
    journal.close(everything_committed=False)

    async def scenario() -> None:
        db = Database(url)
        await db.migrate()
        try:
            done = await replay(db, tmp_path / "data", observability.derived())
            assert done.generations == len(rows)
            async with db.engine.connect() as conn:
                for table in (generation_rollups, generation_daily):  # hourly (analytics), daily (/activity)
                    r = table.c
                    count = (await conn.execute(select(func.sum(r.requests)))).scalar()
                    tokens = (await conn.execute(select(func.sum(r.prompt_tokens)))).scalar()
                    usages = (await conn.execute(select(r.usage))).scalars().all()
                    assert count == len(rows), table.name
                    assert tokens == sum(row["tokens_prompt"] for row in rows), table.name
                    assert sum(usages, Decimal(0)) == sum(row["total_cost"] for row in rows), table.name
            # And the same rows answered by both sources agree.
            end = TODAY
            body = {"metrics": ["usage", "request_count"], "dimensions": ["model"]}
            whole = {"start": (end - timedelta(days=9)).isoformat(), "end": end.isoformat()}
            ragged = {**whole, "start": (end - timedelta(days=9, seconds=1)).isoformat()}
            from_rollups = await analytics.run(db, analytics.parse({**body, "time_range": whole}))
            from_generations = await analytics.run(db, analytics.parse({**body, "time_range": ragged}))
            assert (from_rollups.source, from_generations.source) == ("rollups", "generations")
            assert from_rollups.rows == from_generations.rows
        finally:
            await db.close()

    try:
        asyncio.run(scenario())
    finally:
        fresh.drop()


def test_datasets_are_this_instances_own_traffic(gw):
    start = (TODAY - timedelta(days=10)).date().isoformat()
    with gw.client(gw.ctx["key"]) as c:
        daily = c.get("/datasets/rankings-daily", params={"start_date": start})
        apps = c.get("/datasets/app-rankings")
        others = {
            "getSessionCost": c.get("/datasets/session-cost"),
            "getTaskClassifications": c.get("/classifications/task"),
            "getBenchmarks": c.get("/benchmarks", params={"source": "openrouter"}),
        }
        bad = [
            c.get("/datasets/rankings-daily", params={"end_date": "2024-12-31"}),
            c.get("/datasets/rankings-daily", params={"category": "programming", "period": "day"}),
            c.get("/benchmarks", params={"source": "vibes"}),
            c.get("/datasets/app-rankings", params={"limit": "0"}),
        ]
    assert daily.status_code == 200, daily.text
    rows = daily.json()["data"]
    tokens = sum(r["tokens_prompt"] + r["tokens_completion"] for r in gw.ctx["rows"])
    assert sum(int(r["total_tokens"]) for r in rows) == tokens
    assert daily.json()["meta"]["scope"] == "this instance's own traffic"
    assert apps.status_code == 200 and apps.json()["data"] == []  # no X-Title in this traffic
    for operation, r in others.items():
        assert r.status_code == 200, r.text
        if spec_available():
            validate_response(operation, r.json())
    if spec_available():
        validate_response("getRankingsDaily", daily.json())
    assert [r.status_code for r in bad] == [400, 400, 400, 400]
