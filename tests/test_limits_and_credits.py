"""Spend as a user checks it: usage counters match what responses cost, key limits and instance
credits stop requests before anything reaches an upstream, and windows reset when they should."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import uvicorn
from click.testing import CliRunner

from omnirouter.accounting.periods import EPOCH, window_starts
from omnirouter.app import create_app
from omnirouter.cli import main as cli
from omnirouter.governance.keys import KeyRecord, key_hash, mask, new_key
from omnirouter.store import repo
from omnirouter.store.db import Database
from omnirouter.testing import Delay, Reply, Status, Stream
from tests.conftest import standard_config
from tests.gateway import Gateway
from tests.spec_validation import spec_available, validate_response
from tests.test_keys_api import on_gateway, wait_until

D = Decimal
ALPHA_PROMPT, ALPHA_COMPLETION = D("0.000001"), D("0.000002")
PERIODS = ("usage", "usage_daily", "usage_weekly", "usage_monthly")


def check(operation: str, body: Any, status: int | str = "200") -> None:
    if spec_available():
        validate_response(operation, body, str(status))


def exact(response: httpx.Response | str) -> Any:
    """The JSON body with every number as the Decimal its text says (no float rounding)."""
    text = response if isinstance(response, str) else response.text
    return json.loads(text, parse_float=D, parse_int=D)


def key_view(gw: Gateway, secret: str) -> dict[str, Any]:
    with gw.client(secret) as c:
        r = c.get("/key")
    assert r.status_code == 200, r.text
    check("getCurrentKey", r.json())
    return exact(r)["data"]


def body_bytes(model: str = "test/alpha", text: str = "hi", **extra: Any) -> bytes:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": text}], **extra}).encode()


def post_chat(c: httpx.Client, raw: bytes) -> httpx.Response:
    return c.post("/chat/completions", content=raw, headers={"content-type": "application/json"})


def fund(gw: Gateway, amount: str) -> str:
    result = CliRunner().invoke(cli, ["credits", "add", amount], env={"OMNIROUTER_DATABASE_URL": gw.settings.db_url})
    assert result.exit_code == 0, result.output
    return result.output


def credits(gw: Gateway) -> dict[str, Decimal]:
    with gw.admin() as admin:
        r = admin.get("/credits")
    assert r.status_code == 200, r.text
    check("getCredits", r.json())
    return exact(r)["data"]


def add_counts(gw: Gateway, scope: str, rows: dict[tuple[str, str], Decimal]) -> None:
    deltas = {(scope, period, start): [usage, D(0), 1] for (period, start), usage in rows.items()}
    gw.flush()
    on_gateway(gw, lambda conn: conn.run_sync(repo.add_counts, deltas))


# -- usage counters equal what the responses cost


def test_usage_counters_equal_response_costs(gateway: Gateway, fake_a: Any, fake_b: Any) -> None:
    created = gateway.create_key(name="meter")
    secret, hash_ = created["key"], created["data"]["hash"]
    fake_b.fake.script(Reply("cached answer", prompt_tokens=1200, cached_tokens=1000, cache_write_tokens=100))
    fake_a.fake.script(Reply("thinking", completion_tokens=40, reasoning_tokens=30))
    client = openai.OpenAI(base_url=gateway.api, api_key=secret, max_retries=0)
    costs: dict[str, Decimal] = {}
    for model, text in [("test/alpha", "hello there"), ("test/beta", "use the cache"),
                        ("test/reasoner", "think hard"), ("test/alpha", "x" * 333)]:  # fmt: skip
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": text}], max_tokens=50
        )
        body = exact(raw.text)
        assert raw.headers["x-generation-id"] == body["id"]
        assert body["usage"]["cost"] > 0
        costs[body["id"]] = body["usage"]["cost"]
        assert raw.parse().usage is not None  # and the SDK reads it
    # A streamed request counts too; its cost is in the final usage chunk.
    with httpx.Client(base_url=gateway.api, headers={"Authorization": f"Bearer {secret}"}) as c, c.stream(
        "POST", "/chat/completions", json={"model": "test/alpha", "stream": True, "max_tokens": 20,
                                           "messages": [{"role": "user", "content": "stream me"}]},
    ) as r:  # fmt: skip
        assert r.status_code == 200
        events = [exact(line[6:]) for line in r.iter_lines() if line.startswith("data: {")]
    final = events[-1]
    assert final["choices"] == [] and final["usage"]["cost"] > 0
    costs[final["id"]] = final["usage"]["cost"]

    # Expected from the catalog prices: the beta answer is billed at its cache prices and request price.
    beta = next(v for k, v in costs.items() if v > D("0.0001"))
    beta_completion = D(len(["cached", "answer"])) * D("0.000015")
    assert beta == 100 * D("0.000003") + 1000 * D("0.0000003") + 100 * D("0.00000375") + beta_completion + D(
        "0.0001")  # fmt: skip

    total = sum(costs.values(), D(0))
    view = key_view(gateway, secret)
    assert all(view[p] == total for p in PERIODS), view
    for gen_id, cost in costs.items():
        with gateway.client(secret) as c:
            r = c.get("/generation", params={"id": gen_id})
        assert r.status_code == 200
        assert exact(r)["data"]["total_cost"] == cost
        assert exact(r)["data"]["usage"] == cost
    with gateway.admin() as admin:
        managed = exact(admin.get(f"/keys/{hash_}"))["data"]
    assert all(managed[p] == total for p in PERIODS)
    assert managed["byok_usage"] == 0

    gateway.flush()  # and the same once read back from the database
    time.sleep(2 * gateway.settings.sync_interval)
    view = key_view(gateway, secret)
    assert all(view[p] == total for p in PERIODS), view


def test_credits_total_usage_is_the_sum_over_keys(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway()
    keys = [gw.create_key(name=f"k{i}")["key"] for i in range(3)]
    spent = D(0)
    for i, secret in enumerate(keys):
        with gw.client(secret) as c:
            for j in range(i + 1):
                r = post_chat(c, body_bytes(text="spend " * (j + 1), max_tokens=8))
                assert r.status_code == 200, r.text
                spent += exact(r)["usage"]["cost"]
    per_key = [key_view(gw, k)["usage"] for k in keys]
    assert sum(per_key, D(0)) == spent
    assert credits(gw) == {"total_credits": spent, "total_usage": spent}  # unfunded: credit = usage
    with gw.admin() as admin:
        listed = exact(admin.get("/keys"))["data"]
    assert sum((k["usage"] for k in listed), D(0)) == spent


def test_insured_requests_cost_nothing(gateway: Gateway, fake_a: Any) -> None:
    secret = gateway.create_key(name="insured")["key"]
    # An answer that ended in error, and a stream that ended with no token and no finish reason.
    fake_a.fake.script(Reply("partial", finish_reason="error", prompt_tokens=500), Stream(stop_after=0))
    with gateway.client(secret) as c:
        r = post_chat(c, body_bytes(max_tokens=5))
        assert r.status_code == 200
        assert exact(r)["usage"]["cost"] == 0
        with c.stream("POST", "/chat/completions", content=body_bytes(max_tokens=5, stream=True)) as s:
            assert s.status_code == 200
            events = [exact(line[6:]) for line in s.iter_lines() if line.startswith("data: {")]
    assert events[-1]["usage"]["completion_tokens"] == 0 and events[-1]["usage"]["cost"] == 0
    assert key_view(gateway, secret)["usage"] == 0


# -- key limits


def test_exhausted_key_limit_blocks_before_upstream(gateway: Gateway, fake_a: Any) -> None:
    assert gateway.settings.key_limit_status == 402  # the documented default
    created = gateway.create_key(name="capped", limit=0.0001)
    secret, hash_ = created["key"], created["data"]["hash"]
    # The upstream reports more than was reserved: the key ends up over its limit.
    fake_a.fake.script(Reply("ok", prompt_tokens=100, completion_tokens=50))
    with gateway.client(secret) as c:
        first = post_chat(c, body_bytes(max_tokens=5))
        assert first.status_code == 200, first.text
        assert exact(first)["usage"]["cost"] == D("0.0002")
        view = key_view(gateway, secret)
        assert view["usage"] == D("0.0002") and view["limit_remaining"] == 0 and view["limit"] == D("0.0001")

        sent = len(fake_a.fake.requests)
        for raw in (body_bytes(max_tokens=1), body_bytes(max_tokens=1, stream=True)):
            r = post_chat(c, raw)
            assert r.status_code == 402, r.text
            assert r.headers["content-type"].startswith("application/json")
            err = r.json()["error"]
            assert err["code"] == 402 and "Key limit exceeded (total limit)" in err["message"]
            check("sendChatCompletionRequest", r.json(), 402)
        assert len(fake_a.fake.requests) == sent
        assert key_view(gateway, secret)["usage"] == D("0.0002")  # refusals cost nothing

        with gateway.admin() as admin:
            r = admin.patch(f"/keys/{hash_}", json={"limit": 1})
            assert exact(r)["data"]["limit_remaining"] == D("0.9998")
        assert key_view(gateway, secret)["limit_remaining"] == D("0.9998")
        assert post_chat(c, body_bytes(max_tokens=5)).status_code == 200
        assert len(fake_a.fake.requests) == sent + 1


def test_exhausted_key_limit_status_is_configurable(make_gateway: Callable[..., Gateway], fake_a: Any) -> None:
    gw = make_gateway(key_limit_status=403)
    secret = gw.create_key(name="capped", limit=0, limit_reset="daily")["key"]
    with gw.client(secret) as c:
        r = post_chat(c, body_bytes(max_tokens=1))
    assert r.status_code == 403
    assert "Key limit exceeded (daily limit)" in r.json()["error"]["message"]
    assert fake_a.fake.requests == []


def test_affordability_uses_worst_case_cost(gateway: Gateway, fake_a: Any) -> None:
    budget = D("0.001")
    secret = gateway.create_key(name="afford", limit=float(budget))["key"]
    raw = body_bytes()  # no max_tokens: test/alpha's endpoint allows up to 4096
    prompt_estimate = math.ceil(len(raw) / 4) * ALPHA_PROMPT
    affordable = ((budget - prompt_estimate) / ALPHA_COMPLETION).to_integral_value(ROUND_FLOOR)
    with gateway.client(secret) as c:
        r = post_chat(c, raw)
        assert r.status_code == 402, r.text
        check("sendChatCompletionRequest", r.json(), 402)
        message = r.json()["error"]["message"]
        assert message.startswith("This request requires more credits, or fewer max_tokens.")
        assert f"You requested up to 4096 tokens, but can only afford {affordable}" in message
        r = post_chat(c, body_bytes(max_tokens=3000))
        assert r.status_code == 402 and "requested up to 3000 tokens" in r.json()["error"]["message"]
        assert fake_a.fake.requests == []
        view = key_view(gateway, secret)
        assert view["limit_remaining"] == budget and view["usage"] == 0

        r = post_chat(c, body_bytes(max_tokens=int(affordable) - 20))
        assert r.status_code == 200, r.text
        cost = exact(r)["usage"]["cost"]
    view = key_view(gateway, secret)
    assert view["usage"] == cost and view["limit_remaining"] == budget - cost


def test_limit_remaining_per_window(gateway: Gateway) -> None:
    created = gateway.create_key(name="windows", limit=5, limit_reset="weekly")
    secret, scope = created["key"], "key:" + created["data"]["hash"]
    starts = window_starts(datetime.now(UTC))
    last_week = (datetime.fromisoformat(starts["week"]) - timedelta(days=7)).date().isoformat()
    add_counts(gateway, scope, {("total", EPOCH): D("3.5"), ("week", last_week): D("3"),
                                ("week", starts["week"]): D("0.5")})  # fmt: skip
    wait_until(lambda: key_view(gateway, secret)["usage"] == D("3.5"))
    view = key_view(gateway, secret)
    assert view["usage_weekly"] == D("0.5") and view["limit_remaining"] == D("4.5")


@pytest.mark.parametrize(("reset", "period"), [("daily", "day"), ("weekly", "week"), ("monthly", "month")])
def test_spend_in_a_previous_window_does_not_count(gateway: Gateway, fake_a: Any, reset: str, period: str) -> None:
    created = gateway.create_key(name=f"{reset} reset", limit=0.01, limit_reset=reset)
    secret, scope = created["key"], "key:" + created["data"]["hash"]
    now = datetime.now(UTC)
    current = window_starts(now)[period]
    previous = window_starts(datetime.fromisoformat(current).replace(tzinfo=UTC) - timedelta(days=1))[period]
    assert previous < current
    # Big spend yesterday / last week / last month, recorded by some worker.
    add_counts(gateway, scope, {("total", EPOCH): D(5), (period, previous): D(5)})
    wait_until(lambda: key_view(gateway, secret)["usage"] == D(5))
    view = key_view(gateway, secret)
    assert view["limit_remaining"] == D("0.01")
    with gateway.client(secret) as c:
        r = post_chat(c, body_bytes(max_tokens=5))
        assert r.status_code == 200, r.text
        cost = exact(r)["usage"]["cost"]
        assert key_view(gateway, secret)["limit_remaining"] == D("0.01") - cost

        # The same spend in the current window does count.
        add_counts(gateway, scope, {("total", EPOCH): D(5), (period, current): D(5)})
        wait_until(lambda: key_view(gateway, secret)["limit_remaining"] == 0)
        sent = len(fake_a.fake.requests)
        r = post_chat(c, body_bytes(max_tokens=5))
        assert r.status_code == 402
        assert f"Key limit exceeded ({reset} limit)" in r.json()["error"]["message"]
        assert len(fake_a.fake.requests) == sent


def test_previous_window_is_ignored_at_startup(tmp_path: Path, fake_a: Any, fake_b: Any) -> None:
    # A (re)starting worker reads the counters of the current windows only.
    gw = Gateway(tmp_path, standard_config(fake_a.base_url, fake_b.base_url))
    secret = new_key()
    record = KeyRecord(hash=key_hash(secret), name="restart", label=mask(secret), created_at=datetime.now(UTC),
                       limit=D(1), limit_reset="daily")  # fmt: skip
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()

    async def seed() -> None:
        db = Database(gw.settings.db_url)
        await db.migrate()
        async with db.engine.begin() as conn:
            await repo.insert_key(conn, record)
            await conn.run_sync(repo.add_counts, {(record.scope, "day", yesterday): [D(7), D(0), 3],
                                                  (record.scope, "total", EPOCH): [D(7), D(0), 3]})  # fmt: skip
        await db.close()

    asyncio.run(seed())
    gw.start()
    try:
        view = key_view(gw, secret)
        assert view["usage"] == 7 and view["usage_daily"] == 0 and view["limit_remaining"] == 1
        with gw.client(secret) as c:
            assert post_chat(c, body_bytes(max_tokens=5)).status_code == 200
    finally:
        gw.stop()


def test_concurrent_requests_run_while_their_exposure_fits(gateway: Gateway, fake_a: Any) -> None:
    raw = body_bytes(max_tokens=10)
    prompt_tokens = math.ceil(len(raw) / 4)
    worst = prompt_tokens * ALPHA_PROMPT + 10 * ALPHA_COMPLETION
    # What one request may cost should its upstream ignore max_tokens: test/alpha's endpoint allows 4096.
    exposure = prompt_tokens * ALPHA_PROMPT + 4096 * ALPHA_COMPLETION
    limit = exposure * D("3.5")  # three in flight are covered whatever their upstreams do, not four
    created = gateway.create_key(name="concurrent", limit=float(limit))
    secret, hash_ = created["key"], created["data"]["hash"]
    assert key_view(gateway, secret)["limit"] == limit
    n = 10
    fake_a.fake.always(Delay(0.4, then=Reply("a b c d e f g h i j", prompt_tokens=prompt_tokens)))

    with httpx.Client(base_url=gateway.api, headers={"Authorization": f"Bearer {secret}"}, timeout=30) as c:

        def one(_: int) -> httpx.Response:
            return post_chat(c, raw)

        with ThreadPoolExecutor(n) as pool:
            responses = list(pool.map(one, range(n)))
    ok = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    # Three covered, and a fourth in the key's overrun slot: its max_tokens fit in what is left.
    assert len(ok) == 4, sorted(r.status_code for r in responses)
    for r in refused:
        assert_overrun_refusal(r, "This key's remaining limit is")
    assert len([q for q in fake_a.fake.requests if q.method == "POST"]) == len(ok)
    spent = sum((exact(r)["usage"]["cost"] for r in ok), D(0))
    assert spent == 4 * worst
    view = key_view(gateway, secret)
    assert view["usage"] == spent <= limit  # upstreams that honour max_tokens: no overspend at all
    assert view["limit_remaining"] == limit - spent
    gateway.flush()
    with gateway.admin() as admin:
        assert exact(admin.get(f"/keys/{hash_}"))["data"]["usage"] == spent


def assert_overrun_refusal(r: httpx.Response, whose: str) -> None:
    """The documented refusal while a scope's overrun slot is taken: 429 with Retry-After."""
    assert r.status_code == 429, r.text
    assert r.headers["retry-after"] == "1"
    assert r.headers["x-generation-id"].startswith("gen-")
    body = r.json()
    check("sendChatCompletionRequest", body, 429)
    error = body["error"]
    assert error["code"] == 429 and error["metadata"] == {"error_type": "rate_limit_exceeded"}
    assert error["message"].startswith(f"{whose} held by requests in flight"), error


def test_failed_upstream_releases_the_reservation(gateway: Gateway, fake_a: Any) -> None:
    raw = body_bytes(max_tokens=10)
    worst = math.ceil(len(raw) / 4) * ALPHA_PROMPT + 10 * ALPHA_COMPLETION
    secret = gateway.create_key(name="release", limit=float(worst * D("1.5")))["key"]
    fake_a.fake.script(Status(400))  # not retried: the reservation must come back
    with gateway.client(secret) as c:
        assert post_chat(c, raw).status_code == 400
        view = key_view(gateway, secret)
        assert view["usage"] == 0 and view["limit_remaining"] == worst * D("1.5")
        assert post_chat(c, raw).status_code == 200


def test_abandoned_requests_do_not_leak_reservations(gateway: Gateway, fake_a: Any) -> None:
    created = gateway.create_key(name="abandoned", limit=1)
    secret, scope = created["key"], "key:" + created["data"]["hash"]
    ledger = gateway.state.ledger
    fake_a.fake.script(Delay(0.5), Stream(chunks=50, chunk_delay=0.02))
    with httpx.Client(base_url=gateway.api, headers={"Authorization": f"Bearer {secret}"}, timeout=0.2) as c:
        with pytest.raises(httpx.ReadTimeout):  # the client gives up while the upstream is still thinking
            post_chat(c, body_bytes(max_tokens=5))
        with c.stream("POST", "/chat/completions", content=body_bytes(max_tokens=100, stream=True)) as s:
            next(s.iter_lines())  # the first event, then hang up mid-stream
    wait_until(lambda: ledger.in_flight(scope) == 0 and ledger.in_flight("instance") == 0)
    view = key_view(gateway, secret)
    assert view["usage"] > 0  # what the upstream generated is still billed
    assert view["limit_remaining"] == 1 - view["usage"]


# -- the overspend bound: upstreams that ignore max_tokens

# Whatever max_tokens said, the upstream generates and bills 2000 tokens.
GREEDY = Reply("x", prompt_tokens=10, completion_tokens=2000)
GREEDY_COST = 10 * ALPHA_PROMPT + 2000 * ALPHA_COMPLETION


async def _wave(gw: Gateway, secret: str, n: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    headers = {"Authorization": f"Bearer {secret}", "content-type": "application/json"}
    async with httpx.AsyncClient(base_url=gw.api, headers=headers, timeout=30, limits=limits) as c:
        return await asyncio.gather(*(c.post("/chat/completions", content=body_bytes(max_tokens=1)) for _ in range(n)))


def spend_in_waves(gw: Gateway, secret: str, fake_a: Any, whose: str) -> list[httpx.Response]:
    """200 concurrent `max_tokens: 1` requests to an upstream that ignores it, then waves of 50 until
    one is refused entirely; every refusal checked against what docs/api.md promises."""
    fake_a.fake.always(Delay(0.2, then=GREEDY))  # slow enough for each wave to be in flight at once
    responses: list[httpx.Response] = []
    for n in (200, *[50] * 20):
        wave = asyncio.run(_wave(gw, secret, n))
        responses += wave
        if not any(r.status_code == 200 for r in wave):
            break
    fake_a.fake.always(None)
    for r in responses:
        if r.status_code == 429:
            assert_overrun_refusal(r, whose)
        elif r.status_code == 402:
            check("sendChatCompletionRequest", r.json(), 402)
            assert r.json()["error"]["code"] == 402
        else:
            assert r.status_code == 200, r.text
            assert exact(r)["usage"]["cost"] == GREEDY_COST  # billed what the upstream reported
    ok = [r for r in responses if r.status_code == 200]
    assert len(ok) >= 2  # some got through, side by side or one at a time
    assert len([q for q in fake_a.fake.requests if q.method == "POST"]) == len(ok)  # refusals cost nothing
    return responses


def in_flight_is_empty(gw: Gateway, *scopes: str) -> bool:
    ledger = gw.state.ledger
    return all(
        ledger.in_flight(s) == 0 and ledger.exposure(s) == 0 and ledger.overrun_holder(s) is None for s in scopes
    )


def test_key_limit_holds_against_an_upstream_that_ignores_max_tokens(gateway: Gateway, fake_a: Any) -> None:
    limit = D("0.01")
    created = gateway.create_key(name="greedy upstream", limit=float(limit))
    secret, hash_ = created["key"], created["data"]["hash"]
    responses = spend_in_waves(gateway, secret, fake_a, "This key's remaining limit is")
    ok = [r for r in responses if r.status_code == 200]
    gateway.flush()
    with gateway.admin() as admin:
        usage = exact(admin.get(f"/keys/{hash_}"))["data"]["usage"]
    assert usage == len(ok) * GREEDY_COST
    assert usage <= limit + GREEDY_COST  # over by one request's overrun at most (trusting max_tokens: 200x)
    assert any(r.status_code == 429 for r in responses)
    last = responses[-50:]  # the wave that found the limit spent
    assert all("Key limit exceeded (total limit)" in r.json()["error"]["message"] for r in last)

    # Nothing stays held: a request that needs the overrun slot again (what is left is less than
    # test/alpha's exposure) is admitted once the limit leaves room for its max_tokens.
    assert in_flight_is_empty(gateway, "key:" + hash_, "instance")
    with gateway.admin() as admin:
        assert admin.patch(f"/keys/{hash_}", json={"limit": float(usage + D("0.001"))}).status_code == 200
    with gateway.client(secret) as c:
        r = post_chat(c, body_bytes(max_tokens=1))
    assert r.status_code == 200, r.text


def test_instance_credit_holds_against_an_upstream_that_ignores_max_tokens(
    make_gateway: Callable[..., Gateway], fake_a: Any
) -> None:
    gw = make_gateway()
    secret = gw.create_key(name="no limit of its own")["key"]
    fund(gw, "0.01")
    wait_until(lambda: credits(gw)["total_credits"] == D("0.01"))
    responses = spend_in_waves(gw, secret, fake_a, "The instance's remaining credits are")
    ok = [r for r in responses if r.status_code == 200]
    gw.flush()
    used = credits(gw)["total_usage"]
    assert used == len(ok) * GREEDY_COST
    assert used <= D("0.01") + GREEDY_COST
    assert any(r.status_code == 429 for r in responses)
    assert all("Insufficient credits" in r.json()["error"]["message"] for r in responses[-50:])

    assert in_flight_is_empty(gw, "instance")
    fund(gw, str(used - D("0.01") + D("0.001")))  # room for max_tokens, not for test/alpha's exposure
    wait_until(lambda: credits(gw)["total_credits"] == used + D("0.001"))
    with gw.client(secret) as c:
        r = post_chat(c, body_bytes(max_tokens=1))
    assert r.status_code == 200, r.text


def test_every_way_a_request_ends_frees_the_overrun_slot(
    make_gateway: Callable[..., Gateway], fake_a: Any, fake_b: Any
) -> None:
    gw = make_gateway()
    # Below what any test model's endpoint can produce: every request takes the key's overrun slot,
    # so one that kept it would leave the key refusing everything.
    created = gw.create_key(name="one at a time", limit=0.005)
    secret, scope = created["key"], "key:" + created["data"]["hash"]

    def next_request_is_admitted(c: httpx.Client) -> None:
        wait_until(lambda: in_flight_is_empty(gw, scope, "instance"))  # a drained stream settles in the background
        r = post_chat(c, body_bytes("test/beta", max_tokens=1))
        assert r.status_code == 200, r.text

    def stream(c: httpx.Client, raw: bytes) -> tuple[int, list[Any]]:
        with c.stream("POST", "/chat/completions", content=raw) as s:
            events = [json.loads(line[6:]) for line in s.iter_lines() if line.startswith("data: {")]
            return s.status_code, events

    order = {"provider": {"order": ["fake-a", "fake-b"], "allow_fallbacks": True}}
    with gw.client(secret) as c:
        # The slot is taken: a second request is refused until the first ends.
        fake_b.fake.script(Delay(0.5))
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(post_chat, c, body_bytes("test/beta", max_tokens=1))
            asyncio.run(fake_b.fake.wait_for_requests(1))
            assert_overrun_refusal(post_chat(c, body_bytes(max_tokens=1)), "This key's remaining limit is")
            assert first.result().status_code == 200
        next_request_is_admitted(c)

        # Streams the client abandons mid-way: an upstream that aborts, and one read to its end.
        for model, fake in (("test/alpha", fake_a), ("test/beta", fake_b)):
            fake.fake.script(Stream(chunks=40, chunk_delay=0.02))
            with c.stream("POST", "/chat/completions", content=body_bytes(model, max_tokens=50, stream=True)) as s:
                assert s.status_code == 200
                next(s.iter_lines())
            next_request_is_admitted(c)

        # An upstream 500 that falls back to the next provider, streamed or not.
        for streamed in (False, True):
            fake_a.fake.script(Status(500))
            raw = body_bytes("test/gamma", max_tokens=5, stream=streamed, **order)
            if streamed:
                status, events = stream(c, raw)
                assert status == 200 and events[-1]["usage"]["cost"] > 0
            else:
                r = post_chat(c, raw)
                assert r.status_code == 200 and r.json()["provider"] == "Fake B", r.text
            next_request_is_admitted(c)

        # Request errors, an upstream error mid-stream, and an answer the gateway cannot read.
        fake_a.fake.script(Status(400))
        assert post_chat(c, body_bytes(max_tokens=5)).status_code == 400
        next_request_is_admitted(c)
        fake_a.fake.script(Status(400))
        assert stream(c, body_bytes(max_tokens=5, stream=True))[0] == 400
        next_request_is_admitted(c)
        fake_a.fake.script(Stream(chunks=10, error_after=3))
        status, events = stream(c, body_bytes(max_tokens=50, stream=True))
        assert status == 200 and any("error" in e for e in events)
        next_request_is_admitted(c)
        fake_a.fake.script(Status(200, {"choices": ["not a choice"]}))
        assert post_chat(c, body_bytes(max_tokens=5)).status_code in (500, 502)
        next_request_is_admitted(c)
        fake_a.fake.script(Status(503), Status(503))
        assert stream(c, body_bytes(max_tokens=5, stream=True))[0] == 503
        next_request_is_admitted(c)


# -- instance credits


def test_instance_credits(make_gateway: Callable[..., Gateway], fake_a: Any) -> None:
    gw = make_gateway()
    secret = gw.create_key(name="funded")["key"]
    assert credits(gw) == {"total_credits": 0, "total_usage": 0}
    assert key_view(gw, secret)["is_free_tier"] is True
    spent = D(0)
    with gw.client(secret) as c:
        # Unfunded: unlimited, but tracked.
        fake_a.fake.script(Reply("ok", prompt_tokens=50))
        r = post_chat(c, body_bytes(max_tokens=4096))
        assert r.status_code == 200, r.text
        spent += exact(r)["usage"]["cost"]
        assert credits(gw) == {"total_credits": spent, "total_usage": spent}

        assert "Total credits: 0.00001 USD" in fund(gw, "0.00001")
        wait_until(lambda: credits(gw)["total_credits"] == D("0.00001"))
        assert key_view(gw, secret)["is_free_tier"] is False
        assert spent > D("0.00001")
        sent = len(fake_a.fake.requests)
        for raw in (body_bytes(max_tokens=1), body_bytes(max_tokens=1, stream=True)):
            r = post_chat(c, raw)
            assert r.status_code == 402, r.text
            assert r.json()["error"]["code"] == 402
            assert "Insufficient credits" in r.json()["error"]["message"]
        assert len(fake_a.fake.requests) == sent

        fund(gw, "0.001")
        wait_until(lambda: credits(gw)["total_credits"] == D("0.00101"))
        r = post_chat(c, body_bytes())  # worst case 4096 completion tokens > the balance
        assert r.status_code == 402
        assert "requires more credits, or fewer max_tokens" in r.json()["error"]["message"]
        assert len(fake_a.fake.requests) == sent
        r = post_chat(c, body_bytes(max_tokens=10))
        assert r.status_code == 200, r.text
        spent += exact(r)["usage"]["cost"]
    assert credits(gw) == {"total_credits": D("0.00101"), "total_usage": spent}
    gw.flush()
    time.sleep(2 * gw.settings.sync_interval)
    assert credits(gw) == {"total_credits": D("0.00101"), "total_usage": spent}


# -- several workers on one database


def second_worker(tmp: Path, first: Gateway, config: dict[str, Any]) -> Gateway:
    """Another worker process's view: its own app, key cache and ledger, on `first`'s database."""
    tmp.mkdir()
    gw = Gateway(tmp, config)
    gw.management_key = first.management_key
    gw.settings = first.settings.model_copy()
    gw.app = create_app(gw.settings)
    gw.server = uvicorn.Server(
        uvicorn.Config(gw.app, loop="asyncio", http="httptools", log_level="warning", lifespan="on")
    )
    return gw.start()


def test_workers_share_keys_spend_and_credits(
    make_gateway: Callable[..., Gateway], tmp_path: Path, fake_a: Any, fake_b: Any
) -> None:
    config = standard_config(fake_a.base_url, fake_b.base_url)
    a = make_gateway(config)
    b = second_worker(tmp_path / "worker-b", a, config)
    try:
        created = a.create_key(name="shared", limit=1)
        secret, hash_ = created["key"], created["data"]["hash"]
        with a.client(secret) as ca, b.client(secret) as cb:
            # A key created on one worker works on the other at once.
            assert cb.get("/key").status_code == 200
            r = post_chat(ca, body_bytes(max_tokens=5))
            assert r.status_code == 200
            spent = exact(r)["usage"]["cost"]
            r = post_chat(cb, body_bytes(max_tokens=5))
            assert r.status_code == 200
            spent += exact(r)["usage"]["cost"]
            # Each worker's spend reaches the other within a flush and a sync.
            wait_until(lambda: key_view(a, secret)["usage"] == spent == key_view(b, secret)["usage"])
            assert credits(a)["total_usage"] == spent == credits(b)["total_usage"]
            a.flush()
            b.flush()
            time.sleep(3 * a.settings.sync_interval)
            assert key_view(a, secret)["usage"] == spent == key_view(b, secret)["usage"]  # nothing doubled

            # A limit lowered on one worker binds on the other.
            with a.admin() as admin:
                assert admin.patch(f"/keys/{hash_}", json={"limit": float(spent)}).status_code == 200
            wait_until(lambda: post_chat(cb, body_bytes(max_tokens=1)).status_code == 402)
            with b.admin() as admin:
                assert admin.patch(f"/keys/{hash_}", json={"limit": None}).status_code == 200
            wait_until(lambda: post_chat(ca, body_bytes(max_tokens=1)).status_code == 200)

            # Disabled on one worker, rejected by the other.
            with a.admin() as admin:
                assert admin.patch(f"/keys/{hash_}", json={"disabled": True}).status_code == 200
            wait_until(lambda: cb.get("/key").status_code == 401)
            with b.admin() as admin:
                assert admin.patch(f"/keys/{hash_}", json={"disabled": False}).status_code == 200
            wait_until(lambda: ca.get("/key").status_code == 200)

            # Credits funded from the command line bind on every worker.
            fund(a, "0.000001")
            wait_until(lambda: credits(a)["total_credits"] == D("0.000001") == credits(b)["total_credits"])
            sent = len(fake_a.fake.requests)
            assert post_chat(ca, body_bytes(max_tokens=1)).status_code == 402
            assert post_chat(cb, body_bytes(max_tokens=1)).status_code == 402
            assert len(fake_a.fake.requests) == sent

            # Deleted on one worker, gone on the other.
            with b.admin() as admin:
                assert admin.delete(f"/keys/{hash_}").json() == {"deleted": True}
            wait_until(lambda: ca.get("/key").status_code == 401)
            assert cb.get("/key").status_code == 401
    finally:
        b.stop()
