"""The analytics operations through the official SDKs (`openrouter` and `@openrouter/sdk`), which parse
every answer with their own models: activity, analytics meta and queries, feedback, the datasets,
task classifications and benchmarks, over real traffic (past days' generations recorded as the
recorder writes them, and today's chats sent through the SDK with an app title)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from openrouter import OpenRouter, errors

from omnirouter.testing import Reply
from tests.conftest import standard_config
from tests.gateway import Gateway
from tests.sdk_ts_run import run_steps
from tests.test_analytics import MODELS, TODAY, _row

TITLE = "Conformance App"
HELLO = [{"role": "user", "content": "hello analytics"}]
CHAT_TOKENS = (7, 3)  # prompt, completion of each chat sent today


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fake_a: Any, fake_b: Any) -> Iterator[Gateway]:
    """A gateway with three past days of an app's generations and today's chats, one per model."""
    g = Gateway(tmp_path_factory.mktemp("analytics-sdk"), standard_config(fake_a.base_url, fake_b.base_url)).start()
    key = g.create_key(name="analytics sdk")
    rows = [
        _row(f"gen-sdk-{day}-{i}-{uuid.uuid4().hex[:8]}", key["data"]["hash"], TODAY - timedelta(days=day, hours=i + 1),
             "0.000123", model=MODELS[i], app_title=TITLE)
        for day in (1, 2, 3)
        for i in (0, 1)
    ]  # fmt: skip
    assert g.loop is not None

    async def record() -> None:
        for row in rows:
            g.state.recorder.record(row)
        await g.state.recorder.flush()

    asyncio.run_coroutine_threadsafe(record(), g.loop).result(timeout=10)
    with OpenRouter(api_key=key["key"], server_url=g.api, x_open_router_title=TITLE) as sdk:
        chats = []
        for model, fake in zip(MODELS, (fake_a, fake_b), strict=True):  # test/beta is served by fake B
            fake.fake.script(Reply("noted", prompt_tokens=CHAT_TOKENS[0], completion_tokens=CHAT_TOKENS[1]))
            chats.append(sdk.chat.send(model=model, messages=HELLO).id)
    g.flush()
    g.ctx = {"key": key["key"], "hash": key["data"]["hash"], "rows": rows, "chats": chats}  # type: ignore[attr-defined]
    yield g
    g.stop()


class _Ctx:
    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.rows: list[dict[str, Any]] = gw.ctx["rows"]  # type: ignore[attr-defined]
        self.chats: list[str] = gw.ctx["chats"]  # type: ignore[attr-defined]
        self.key_hash: str = gw.ctx["hash"]  # type: ignore[attr-defined]
        self.admin = OpenRouter(api_key=gw.management_key, server_url=gw.api)
        self.sdk = OpenRouter(api_key=gw.ctx["key"], server_url=gw.api)  # type: ignore[attr-defined]

    def close(self) -> None:
        self.admin.__exit__(None, None, None)
        self.sdk.__exit__(None, None, None)

    def query(self, **body: Any) -> list[dict[str, Any]]:
        body.setdefault(
            "time_range",
            {"start": (TODAY - timedelta(days=5)).isoformat(), "end": (TODAY + timedelta(days=1)).isoformat()},
        )
        with self.gw.admin() as admin:
            r = admin.post("/analytics/query", json=body)
        assert r.status_code == 200, r.text
        return r.json()["data"]["data"]

    @property
    def past_days(self) -> set[str]:
        return {r["created_at"].date().isoformat() for r in self.rows}


def get_user_activity(c: _Ctx) -> None:
    items = c.admin.analytics.get_user_activity(request={"api_key_hash": c.key_hash}).data
    assert {i.date_ for i in items} == c.past_days  # completed days only: not today's chats
    assert sum(i.requests for i in items) == len(c.rows)
    assert {i.model for i in items} == set(MODELS) and all(i.endpoint_id == i.model + "@fake-a" for i in items)
    assert sum(Decimal(str(i.usage)) for i in items) == sum(r["total_cost"] for r in c.rows)
    split = c.admin.analytics.get_user_activity(request={"group_by": "workspace"}).data
    assert all(i.workspace_id for i in split) and sum(i.requests for i in split) == len(c.rows)


def get_analytics_meta(c: _Ctx) -> None:
    meta = c.admin.analytics.get_analytics_meta().data
    assert {"usage", "request_count", "feedback_count"} <= {m.name for m in meta.metrics}
    assert "model" in {d.name for d in meta.dimensions}
    assert [g.name for g in meta.granularities] == ["minute", "hour", "day", "week", "month"]


def query_analytics(c: _Ctx) -> None:
    res = c.admin.analytics.query_analytics(
        metrics=["request_count", "total_tokens"],
        dimensions=["model"],
        granularity="day",
        time_range={"start": (TODAY - timedelta(days=5)).isoformat(), "end": (TODAY + timedelta(days=1)).isoformat()},
    )
    assert res.data.metadata.row_count == len(res.data.data) > 0 and res.data.metadata.truncated is False
    # The SDK's row model keeps no field (it declares none): the rows' values, straight from the answer.
    rows = c.query(metrics=["request_count"], dimensions=["model"], granularity="day")
    assert len(rows) == len(res.data.data) and {r["model"] for r in rows} == set(MODELS)
    assert sum(r["request_count"] for r in rows) == len(c.rows) + len(c.chats)
    with pytest.raises(errors.BadRequestResponseError, match="spend_in_yen"):
        c.admin.analytics.query_analytics(metrics=["spend_in_yen"])


def submit_feedback(c: _Ctx) -> None:
    res = c.admin.generations.submit_feedback(generation_id=c.chats[0], category="latency", comment="slow today")
    assert res.data.SUCCESS is True
    [counted] = c.query(metrics=["feedback_count"], filters=[{"field": "model", "operator": "eq", "value": MODELS[0]}])
    assert counted["feedback_count"] >= 1
    with pytest.raises(errors.NotFoundResponseError):
        c.admin.generations.submit_feedback(generation_id="gen-none-such", category="other")


def get_task_classifications(c: _Ctx) -> None:
    data = c.sdk.classifications.get_task_classifications().data
    assert data.window_days == 7 and data.classifications == [] and data.macro_categories == []


def get_benchmarks(c: _Ctx) -> None:
    res = c.sdk.benchmarks.get_benchmarks(source="openrouter", task_type="coding")
    assert res.data == [] and res.meta.model_count == 0
    assert (res.meta.source, res.meta.task_type) == ("openrouter", "coding")


def get_app_rankings(c: _Ctx) -> None:
    page = c.sdk.datasets.get_app_rankings(end_date=TODAY.date().isoformat())
    assert page is not None
    [app] = page.result.data
    assert (app.rank, app.app_name, app.total_requests) == (1, TITLE, len(c.rows) + len(c.chats))
    tokens = sum(r["tokens_prompt"] + r["tokens_completion"] for r in c.rows) + len(c.chats) * sum(CHAT_TOKENS)
    assert int(app.total_tokens) == tokens
    assert page.next() is None  # fewer than a page


def get_rankings_daily(c: _Ctx) -> None:
    res = c.sdk.datasets.get_rankings_daily(end_date=TODAY.date().isoformat())
    assert res.meta.end_date == TODAY.date().isoformat()
    by_day: dict[str, int] = {}
    for item in res.data:
        by_day[item.date_] = by_day.get(item.date_, 0) + int(item.total_tokens)
    past = {d: 0 for d in c.past_days}
    for r in c.rows:
        past[r["created_at"].date().isoformat()] += r["tokens_prompt"] + r["tokens_completion"]
    assert by_day == past | {TODAY.date().isoformat(): len(c.chats) * sum(CHAT_TOKENS)}


def get_session_cost(c: _Ctx) -> None:
    page = c.sdk.datasets.get_session_cost()
    assert page is not None and page.result.data == [] and page.result.meta.window_days is None


CONFORMANCE = {
    "analytics.getUserActivity": get_user_activity,
    "analytics.getAnalyticsMeta": get_analytics_meta,
    "analytics.queryAnalytics": query_analytics,
    "generations.submitFeedback": submit_feedback,
    "classifications.getTaskClassifications": get_task_classifications,
    "benchmarks.getBenchmarks": get_benchmarks,
    "datasets.getAppRankings": get_app_rankings,
    "datasets.getRankingsDaily": get_rankings_daily,
    "datasets.getSessionCost": get_session_cost,
}


@pytest.mark.parametrize("operation", CONFORMANCE)
def test_openrouter_sdk(operation: str, gw: Gateway) -> None:
    ctx = _Ctx(gw)
    try:
        CONFORMANCE[operation](ctx)
    finally:
        ctx.close()


def test_typescript_sdk(gw: Gateway) -> None:
    ctx = gw.ctx  # type: ignore[attr-defined]
    tokens = sum(r["tokens_prompt"] + r["tokens_completion"] for r in ctx["rows"]) + len(ctx["chats"]) * sum(
        CHAT_TOKENS
    )
    config = {
        "serverURL": gw.api,
        "apiKey": ctx["key"],
        "managementKey": gw.management_key,
        "keyHash": ctx["hash"],
        "generationId": ctx["chats"][1],
        "title": TITLE,
        "today": TODAY.date().isoformat(),
        "pastRequests": len(ctx["rows"]),
        "requests": len(ctx["rows"]) + len(ctx["chats"]),
        "tokens": tokens,
    }
    results = run_steps("analytics.mjs", config)
    assert set(results) >= set(CONFORMANCE)
    assert [r for r in results.values() if not r["ok"]] == []
