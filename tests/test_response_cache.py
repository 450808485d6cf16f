"""The response cache (cache/): a request, or its preset, turns it on; the first ask goes upstream
(`X-Omnirouter-Cache: miss`), the same ask again is answered from the cache (`hit`) without any
upstream call, in every client format, streamed or not whatever way the answer was first produced,
with billable usage 0 and the cost of `response_cache_price`; never shared between workspaces; kept
for its TTL, in memory within a byte bound, or in Redis."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from openrouter import OpenRouter

from omnirouter.cache import ResponseCache
from omnirouter.cache.store import MemoryStore, RedisStore
from omnirouter.cluster.redis import connect
from omnirouter.testing import Reply, Stream
from tests.conftest import ALPHA_PRICES
from tests.gateway import Gateway, generation, key_usage, postgres_url

MODEL = "test/alpha"
TTL = {"X-Omnirouter-Cache-TTL": "120"}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def prompt() -> str:
    """A prompt of the test's own: no other test's answer can be in the cache for it."""
    return f"cache me {uuid.uuid4().hex}"


def upstream_calls(fake: Any) -> int:
    return len(fake.fake.requests)


def money(value: Any) -> Decimal:
    return Decimal(str(value))


@dataclass
class Answer:
    text: str
    gen_id: str
    cache: str | None  # X-Omnirouter-Cache (None: the SDK does not show headers)
    tokens: int  # billable usage: prompt + completion tokens
    cost: Decimal


# -- one ask through each SDK, in each format


def chat_openai(gw: Gateway, key: str, text: str, stream: bool, headers: dict[str, str]) -> Answer:
    client = openai.OpenAI(base_url=gw.api, api_key=key, max_retries=0)
    messages = [{"role": "user", "content": text}]
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=messages, stream=stream, extra_headers=headers
    )
    if not stream:
        r = raw.parse()
        u = r.usage
        return Answer(
            r.choices[0].message.content,
            r.id,
            raw.headers.get("x-omnirouter-cache"),
            u.prompt_tokens + u.completion_tokens,
            money(u.model_extra["cost"]),
        )
    parts, gen_id, usage = [], "", None
    for chunk in raw.parse():
        gen_id = chunk.id
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
        usage = chunk.usage or usage
    assert usage is not None
    return Answer(
        "".join(parts),
        gen_id,
        raw.headers.get("x-omnirouter-cache"),
        usage.prompt_tokens + usage.completion_tokens,
        money(usage.model_extra["cost"]),
    )


def chat_openrouter(gw: Gateway, key: str, text: str, stream: bool, headers: dict[str, str]) -> Answer:
    with OpenRouter(api_key=key, server_url=gw.api) as sdk:
        messages = [{"role": "user", "content": text}]
        if not stream:
            r = sdk.chat.send(model=MODEL, messages=messages, http_headers=headers)
            assert r.usage is not None
            return Answer(
                r.choices[0].message.content,
                r.id,
                None,  # type: ignore[arg-type]
                r.usage.prompt_tokens + r.usage.completion_tokens,
                money(r.usage.cost),
            )
        chunks = list(sdk.chat.send(model=MODEL, messages=messages, stream=True, http_headers=headers))
    usage = chunks[-1].usage
    assert usage is not None
    joined = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    return Answer(joined, chunks[0].id, None, usage.prompt_tokens + usage.completion_tokens, money(usage.cost))


def responses_openai(gw: Gateway, key: str, text: str, stream: bool, headers: dict[str, str]) -> Answer:
    client = openai.OpenAI(base_url=gw.api, api_key=key, max_retries=0)
    raw = client.responses.with_raw_response.create(model=MODEL, input=text, stream=stream, extra_headers=headers)
    if not stream:
        r = raw.parse()
        assert r.usage is not None
        return Answer(
            r.output_text,
            raw.headers["x-generation-id"],
            raw.headers.get("x-omnirouter-cache"),
            r.usage.input_tokens + r.usage.output_tokens,
            money(r.usage.model_extra["cost"]),
        )
    done = None
    for event in raw.parse():
        if event.type == "response.completed":
            done = event.response
    assert done is not None and done.usage is not None
    return Answer(
        done.output_text,
        raw.headers["x-generation-id"],
        raw.headers.get("x-omnirouter-cache"),
        done.usage.input_tokens + done.usage.output_tokens,
        money(done.usage.model_extra["cost"]),
    )


def messages_anthropic(gw: Gateway, key: str, text: str, stream: bool, headers: dict[str, str]) -> Answer:
    client = anthropic.Anthropic(base_url=gw.url + "/api", auth_token=key, max_retries=0)
    raw = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": text}], stream=stream, extra_headers=headers
    )
    if not stream:
        m = raw.parse()
        body = json.loads(raw.http_response.text)
        return Answer(
            m.content[0].text,
            m.id,
            raw.headers.get("x-omnirouter-cache"),  # type: ignore[union-attr]
            m.usage.input_tokens + m.usage.output_tokens,
            money(body["usage"]["cost"]),
        )
    parts, gen_id, tokens, cost = [], "", 0, None
    for event in raw.parse():
        if event.type == "message_start":
            gen_id = event.message.id
        elif event.type == "content_block_delta" and event.delta.type == "text_delta":
            parts.append(event.delta.text)
        elif event.type == "message_delta":
            tokens = (event.usage.input_tokens or 0) + event.usage.output_tokens  # known at the end
            cost = event.usage.model_extra.get("cost")  # type: ignore[union-attr]
    assert cost is not None
    return Answer("".join(parts), gen_id, raw.headers.get("x-omnirouter-cache"), tokens, money(cost))


CLIENTS = {
    "chat-openai": chat_openai,
    "chat-openrouter": chat_openrouter,
    "responses-openai": responses_openai,
    "messages-anthropic": messages_anthropic,
}


def alpha_cost(prompt_tokens: int, completion_tokens: int) -> Decimal:
    return prompt_tokens * Decimal(ALPHA_PRICES["prompt"]) + completion_tokens * Decimal(ALPHA_PRICES["completion"])


@pytest.mark.parametrize("second_streams", [False, True], ids=["then-json", "then-stream"])
@pytest.mark.parametrize("first_streams", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("client", list(CLIENTS))
def test_miss_then_hit_in_every_format(
    gateway: Gateway, api_key: str, fake_a: Any, client: str, first_streams: bool, second_streams: bool
) -> None:
    ask = CLIENTS[client]
    text = prompt()
    step = Stream if first_streams else Reply
    fake_a.fake.script(step(content="The cached answer.", prompt_tokens=9, completion_tokens=4))
    first = ask(gateway, api_key, text, first_streams, TTL)
    assert first.text == "The cached answer." and first.cost == alpha_cost(9, 4) and first.tokens == 13
    assert first.cache in ("miss", None)
    assert upstream_calls(fake_a) == 1

    second = ask(gateway, api_key, text, second_streams, TTL)
    assert upstream_calls(fake_a) == 1  # answered without the upstream
    assert second.text == "The cached answer."
    assert second.cache in ("hit", None)
    assert second.gen_id != first.gen_id  # a new generation
    assert (second.tokens, second.cost) == (0, 0)  # behaviors §5.6: billable counters 0, free

    gen = generation(gateway, api_key, second.gen_id)
    assert gen["response_cache"] == "hit" and gen["cache_source_id"] == first.gen_id
    assert (gen["total_cost"], gen["tokens_prompt"], gen["tokens_completion"]) == (0, 0, 0)
    assert gen["streamed"] is second_streams and gen["model"] == MODEL and gen["provider_name"] == "Fake A"
    assert gen["finish_reason"] == "stop"
    assert key_usage(gateway, api_key) == alpha_cost(9, 4)  # only the miss was charged


def test_no_cache_without_asking(gateway: Gateway, api_key: str, fake_a: Any) -> None:
    """A request that names no cache goes upstream every time, and says nothing of a cache."""
    text = prompt()
    fake_a.fake.always(Reply("fresh"))
    for _ in range(2):
        answer = chat_openai(gateway, api_key, text, False, {})
        assert answer.cache is None and answer.text == "fresh"
    assert upstream_calls(fake_a) == 2


def test_tool_calls_and_reasoning_replay_both_ways(gateway: Gateway, api_key: str, fake_a: Any) -> None:
    """A streamed answer's tool calls and reasoning come back whole as JSON, and a JSON one's as a stream."""
    client = openai.OpenAI(base_url=gateway.api, api_key=api_key, max_retries=0)
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    for first_streams in (True, False):
        messages = [{"role": "user", "content": prompt()}]
        step = Stream if first_streams else Reply
        fake_a.fake.script(
            step(content="", tool_calls=[call], reasoning="Paris is in France.", finish_reason="tool_calls")
        )
        ask = {"model": MODEL, "messages": messages, "tools": [WEATHER], "extra_headers": TTL}
        if first_streams:
            list(client.chat.completions.create(**ask, stream=True))
        else:
            client.chat.completions.create(**ask)
        before = upstream_calls(fake_a)
        if first_streams:  # stored from a stream, replayed as JSON
            r = client.chat.completions.with_raw_response.create(**ask)
            message = r.parse().choices[0].message
            assert r.headers["x-omnirouter-cache"] == "hit"
            assert r.parse().choices[0].finish_reason == "tool_calls"
            name, arguments = message.tool_calls[0].function.name, message.tool_calls[0].function.arguments
            reasoning = message.model_extra.get("reasoning")
        else:  # stored from JSON, replayed as a stream
            chunks = list(client.chat.completions.create(**ask, stream=True))
            calls = [tc for ch in chunks if ch.choices for tc in ch.choices[0].delta.tool_calls or ()]
            name = calls[0].function.name
            arguments = "".join(tc.function.arguments or "" for tc in calls)
            reasoning = "".join(ch.choices[0].delta.model_extra.get("reasoning") or "" for ch in chunks if ch.choices)
            assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "tool_calls"
        assert upstream_calls(fake_a) == before
        assert (name, json.loads(arguments)) == ("get_weather", {"city": "Paris"})
        assert reasoning == "Paris is in France."


def test_tool_use_replays_as_anthropic_stream(gateway: Gateway, api_key: str, fake_a: Any) -> None:
    client = anthropic.Anthropic(base_url=gateway.url + "/api", auth_token=api_key, max_retries=0)
    tool = {"name": "get_weather", "input_schema": WEATHER["function"]["parameters"]}
    ask = {
        "model": MODEL,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": prompt()}],
        "tools": [tool],
        "extra_headers": TTL,
    }
    fake_a.fake.script(
        Reply(
            content="", tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}], finish_reason="tool_calls"
        )
    )
    first = client.messages.create(**ask)
    assert first.stop_reason == "tool_use"
    with client.messages.stream(**ask) as stream:
        message = stream.get_final_message()
    assert upstream_calls(fake_a) == 1
    assert message.stop_reason == "tool_use" and message.id != first.id
    block = next(b for b in message.content if b.type == "tool_use")
    assert (block.name, block.input) == ("get_weather", {"city": "Oslo"})


def test_completions_format_is_cached_too(gateway: Gateway, api_key: str, fake_a: Any) -> None:
    fake_a.fake.script(Reply("legacy text"))
    with gateway.client(api_key) as c:
        body = {"model": MODEL, "prompt": prompt()}
        first = c.post("/completions", json=body, headers=TTL)
        second = c.post("/completions", json=body, headers=TTL)
        with c.stream("POST", "/completions", json={**body, "stream": True}, headers=TTL) as streamed:
            events = [json.loads(line[6:]) for line in streamed.iter_lines() if line.startswith("data: {")]
    assert (first.headers["x-omnirouter-cache"], second.headers["x-omnirouter-cache"]) == ("miss", "hit")
    assert second.json()["choices"][0]["text"] == first.json()["choices"][0]["text"] == "legacy text"
    assert streamed.headers["x-omnirouter-cache"] == "hit"
    assert "".join(e["choices"][0].get("text") or "" for e in events if e.get("choices")) == "legacy text"
    assert events[-1]["usage"]["cost"] == 0
    assert upstream_calls(fake_a) == 1


def test_what_is_not_kept(gateway: Gateway, api_key: str, fake_a: Any) -> None:
    """Errors, cut streams and truncated answers are not stored: the same ask goes upstream again."""
    text = prompt()
    with gateway.client(api_key) as c:
        body = {"model": MODEL, "messages": [{"role": "user", "content": text}], "stream": True}
        fake_a.fake.script(
            Stream(content="cut short", error_after=1), Stream(content="x", finish_reason="length"), Reply("whole")
        )
        for _ in range(3):
            with c.stream("POST", "/chat/completions", json=body, headers=TTL) as r:
                assert r.headers["x-omnirouter-cache"] == "miss"
                r.read()
        r = c.post("/chat/completions", json={**body, "stream": False}, headers=TTL)
        assert r.headers["x-omnirouter-cache"] == "hit" and r.json()["choices"][0]["message"]["content"] == "whole"
    assert upstream_calls(fake_a) == 3


def test_fields_that_do_not_change_the_answer_share_an_entry(gateway: Gateway, api_key: str, fake_a: Any) -> None:
    text = prompt()
    fake_a.fake.always(Reply("same"))
    with gateway.client(api_key) as c:
        body = {"model": MODEL, "messages": [{"role": "user", "content": text}]}
        assert c.post("/chat/completions", json=body, headers=TTL).headers["x-omnirouter-cache"] == "miss"
        same = {**body, "user": "someone", "session_id": "s-1", "metadata": {"a": "b"}}
        assert c.post("/chat/completions", json=same, headers=TTL).headers["x-omnirouter-cache"] == "hit"
        other = {**body, "temperature": 0.5}  # changes the answer: a request of its own
        assert c.post("/chat/completions", json=other, headers=TTL).headers["x-omnirouter-cache"] == "miss"
        reordered = {"messages": body["messages"], "model": MODEL}  # as OpenRouter's: property order matters
        assert c.post("/chat/completions", json=reordered, headers=TTL).headers["x-omnirouter-cache"] == "miss"
    assert upstream_calls(fake_a) == 3


def test_openrouter_headers(gateway: Gateway, api_key: str, fake_a: Any) -> None:
    """OpenRouter's own spelling (behaviors §7.1/§7.2): X-OpenRouter-Cache, -TTL (clamped, integer
    prefix), -Clear; answered with X-OpenRouter-Cache-Status, -Age, -TTL, -Source-Id."""
    fake_a.fake.always(Reply("openrouter style"))
    body = {"model": MODEL, "messages": [{"role": "user", "content": prompt()}]}
    with gateway.client(api_key) as c:
        assert "x-openrouter-cache-status" not in c.post("/chat/completions", json=body).headers
        on = {"X-OpenRouter-Cache": "true", "X-OpenRouter-Cache-TTL": "12.7"}
        miss = c.post("/chat/completions", json=body, headers=on)
        assert miss.headers["x-openrouter-cache-status"] == "MISS" and miss.headers["x-openrouter-cache-ttl"] == "12"
        hit = c.post("/chat/completions", json=body, headers={"X-OpenRouter-Cache": "true"})
        assert hit.headers["x-openrouter-cache-status"] == "HIT"
        assert hit.headers["x-openrouter-cache-source-id"] == miss.headers["x-generation-id"]
        assert 0 <= int(hit.headers["x-openrouter-cache-age"]) <= 2
        assert 10 <= int(hit.headers["x-openrouter-cache-ttl"]) <= 12
        off = c.post("/chat/completions", json=body, headers={"X-OpenRouter-Cache": "false"})
        assert "x-openrouter-cache-status" not in off.headers
        cleared = c.post("/chat/completions", json=body, headers={**on, "X-OpenRouter-Cache-Clear": "true"})
        assert cleared.headers["x-openrouter-cache-status"] == "MISS"
        huge = c.post("/chat/completions", json=body, headers={"X-Omnirouter-Cache-TTL": "999999999"})
        assert huge.headers["x-omnirouter-cache"] == "hit"  # stored by the clear above
        fresh = {**body, "messages": [{"role": "user", "content": prompt()}]}
        huge = c.post("/chat/completions", json=fresh, headers={"X-Omnirouter-Cache-TTL": "999999999"})
        assert huge.headers["x-openrouter-cache-ttl"] == "86400"  # clamped to response_cache_max_ttl_seconds
    assert upstream_calls(fake_a) == 5  # without cache, the miss, the "false", the clear, the fresh


def test_preset_turns_it_on_and_off(gateway: Gateway, api_key: str, fake_a: Any) -> None:
    def preset(config: dict[str, Any]) -> str:
        slug = "cache-" + uuid.uuid4().hex[:10]
        with gateway.admin() as admin:
            r = admin.post(f"/presets/{slug}/chat/completions", json={"model": MODEL, **config})
        assert r.status_code == 200, r.text
        return slug

    fake_a.fake.always(Reply("by preset"))
    on, off = preset({"cache_enabled": True, "cache_ttl_seconds": 42}), preset({"cache_enabled": False})
    with gateway.client(api_key) as c:
        body = {"model": f"@preset/{on}", "messages": [{"role": "user", "content": prompt()}]}
        first = c.post("/chat/completions", json=body)
        assert first.headers["x-omnirouter-cache"] == "miss" and first.headers["x-openrouter-cache-ttl"] == "42"
        assert c.post("/chat/completions", json=body).headers["x-omnirouter-cache"] == "hit"
        assert "cache_enabled" not in fake_a.fake.last_request.json  # the gateway's field, not the upstream's
        body = {"model": f"@preset/{off}", "messages": [{"role": "user", "content": prompt()}]}
        for _ in range(2):  # the preset's false overrides the header
            assert "x-omnirouter-cache" not in c.post("/chat/completions", json=body, headers=TTL).headers
    assert upstream_calls(fake_a) == 3


def test_key_setting_turns_it_on(gateway: Gateway, fake_a: Any) -> None:
    """A key's response_cache_ttl_seconds caches every request of the key (POST/PATCH /keys)."""
    created = gateway.create_key(response_cache_ttl_seconds=45)
    key, hash_ = created["key"], created["data"]["hash"]
    assert created["data"]["response_cache_ttl_seconds"] == 45
    fake_a.fake.always(Reply("by key"))
    text = prompt()
    with gateway.client(key) as c:
        body = {"model": MODEL, "messages": [{"role": "user", "content": text}]}
        first = c.post("/chat/completions", json=body)
        assert first.headers["x-omnirouter-cache"] == "miss" and first.headers["x-openrouter-cache-ttl"] == "45"
        assert c.post("/chat/completions", json=body).headers["x-omnirouter-cache"] == "hit"
        off = c.post("/chat/completions", json=body, headers={"X-OpenRouter-Cache": "false"})
        assert "x-omnirouter-cache" not in off.headers
        assert c.get("/key").json()["data"]["response_cache_ttl_seconds"] == 45
    with gateway.admin() as admin:
        r = admin.patch(f"/keys/{hash_}", json={"response_cache_ttl_seconds": None})
        assert r.status_code == 200 and r.json()["data"]["response_cache_ttl_seconds"] is None
        assert admin.post("/keys", json={"name": "bad", "response_cache_ttl_seconds": 0}).status_code == 400
    with gateway.client(key) as c:
        assert "x-omnirouter-cache" not in c.post("/chat/completions", json=body).headers
    assert upstream_calls(fake_a) == 3


def test_workspaces_never_share(gateway: Gateway, fake_a: Any) -> None:
    with gateway.admin() as admin:
        slug = "cache-" + uuid.uuid4().hex[:8]
        r = admin.post("/workspaces", json={"name": "Cache team", "slug": slug})
        assert r.status_code in (200, 201), r.text
        team = r.json()["data"]["id"]
    default_a, default_b = gateway.create_key()["key"], gateway.create_key()["key"]
    team_key = gateway.create_key(workspace_id=team)["key"]
    fake_a.fake.always(Reply("per workspace"))
    text = prompt()
    assert chat_openai(gateway, default_a, text, False, TTL).cache == "miss"
    assert chat_openai(gateway, team_key, text, False, TTL).cache == "miss"  # another workspace: its own
    assert chat_openai(gateway, default_b, text, False, TTL).cache == "hit"  # the same workspace shares
    assert chat_openai(gateway, team_key, text, True, TTL).cache == "hit"
    assert upstream_calls(fake_a) == 2


def test_ttl_expiry(make_gateway: Any, fake_a: Any) -> None:
    """An entry lives its TTL to the second: the store's clock is moved instead of waited out."""
    gw = make_gateway()
    key = gw.create_key()["key"]
    fake_a.fake.always(Reply("short-lived"))
    text = prompt()
    assert chat_openai(gw, key, text, False, {"X-Omnirouter-Cache-TTL": "30"}).cache == "miss"
    store = gw.state.response_cache.store
    assert isinstance(store, MemoryStore)
    stored_at = time.monotonic()
    store.clock = lambda: stored_at + 29  # within its 30 s
    assert chat_openai(gw, key, text, False, TTL).cache == "hit"
    store.clock = lambda: time.monotonic() + 30  # past them
    assert chat_openai(gw, key, text, False, TTL).cache == "miss"
    assert upstream_calls(fake_a) == 2


def test_memory_store_is_bounded_lru() -> None:
    async def main() -> None:
        value = b"x" * 300
        cost = MemoryStore._cost("a", value)
        store = MemoryStore(max_bytes=2 * cost)
        await store.put("a", value, 60)
        await store.put("b", value, 60)
        assert await store.get("a") == value  # a is now the most recently used
        await store.put("c", value, 60)  # evicts b, the least recently used
        assert await store.get("b") is None and await store.get("a") == value and await store.get("c") == value
        assert store.size == 2 * cost
        await store.put("big", b"y" * (3 * cost), 60)  # larger than the whole store: not kept, nothing evicted
        assert await store.get("big") is None and store.size == 2 * cost
        await store.put("a", b"z", 60)  # replaced: its old size leaves the count
        assert store.size == cost + MemoryStore._cost("a", b"z")

    asyncio.run(main())


def test_memory_bound_evicts_through_the_gateway(make_gateway: Any, fake_a: Any) -> None:
    gw = make_gateway()
    key = gw.create_key()["key"]
    fake_a.fake.always(Reply("bounded"))
    first, second = prompt(), prompt()
    assert chat_openai(gw, key, first, False, TTL).cache == "miss"
    store = gw.state.response_cache.store
    store.max_bytes = store.size * 3 // 2  # room for one answer of this size
    assert chat_openai(gw, key, first, False, TTL).cache == "hit"
    assert chat_openai(gw, key, second, False, TTL).cache == "miss"  # evicts the first
    assert chat_openai(gw, key, first, False, TTL).cache == "miss"
    assert len(store.entries) == 1 and store.size <= store.max_bytes
    assert upstream_calls(fake_a) == 3


@pytest.mark.parametrize("price", ["0", "0.0025"])
def test_hit_cost_exact_in_generation_key_and_credits(make_gateway: Any, fake_a: Any, price: str) -> None:
    gw = make_gateway(response_cache_price=price)
    key = gw.create_key()["key"]
    fake_a.fake.always(Reply("priced", prompt_tokens=20, completion_tokens=5))
    text = prompt()
    miss = chat_openai(gw, key, text, False, TTL)
    hits = [chat_openai(gw, key, text, stream, TTL) for stream in (False, True)]
    assert upstream_calls(fake_a) == 1
    for hit in hits:
        assert hit.cost == Decimal(price) and hit.tokens == 0
        gen = generation(gw, key, hit.gen_id)
        assert gen["total_cost"] == Decimal(price) and gen["response_cache"] == "hit"
    expected = alpha_cost(20, 5) + 2 * Decimal(price)
    assert key_usage(gw, key) == expected
    with OpenRouter(api_key=gw.management_key, server_url=gw.api) as sdk:
        credits = sdk.credits.get_credits()
    assert money(credits.data.total_usage) == expected
    assert miss.cost == alpha_cost(20, 5)


def test_rate_limited_key_counts_a_hit_as_a_request(make_gateway: Any, fake_a: Any) -> None:
    """A hit is a request (rpm_limit) that used no token; the next one past the limit is still refused."""
    gw = make_gateway()
    key = gw.create_key(rpm_limit=3)["key"]
    fake_a.fake.always(Reply("counted"))
    text = prompt()
    assert chat_openai(gw, key, text, False, TTL).cache == "miss"
    assert [chat_openai(gw, key, text, False, TTL).cache for _ in range(2)] == ["hit", "hit"]
    with pytest.raises(openai.RateLimitError):
        chat_openai(gw, key, text, False, TTL)
    assert upstream_calls(fake_a) == 1


# -- Redis


def _redis_gateway(make_gateway: Any, tmp_path: Path) -> tuple[Gateway, Any]:
    from tests.cluster import RedisServer

    server = RedisServer(tmp_path)
    gw = make_gateway()
    # The gateway's store, on a Redis of the test's own (a gateway on SQLite cannot have redis_url: it is
    # for instances that share a database). The client connects from the gateway's loop on first use.
    cache = ResponseCache(gw.state)
    cache.store = RedisStore(connect(server.url))
    gw.state.response_cache = cache
    return gw, server


def test_redis_backend(make_gateway: Any, fake_a: Any, tmp_path: Path) -> None:
    gw, server = _redis_gateway(make_gateway, tmp_path)
    try:
        key = gw.create_key()["key"]
        fake_a.fake.always(Reply("from redis"))
        text = prompt()
        assert chat_openai(gw, key, text, True, {"X-Omnirouter-Cache-TTL": "90"}).cache == "miss"
        names = server.command("KEYS", "omnirouter:*:response-cache").decode().split("\r\n")
        name = next(n for n in names if n.startswith("omnirouter:"))
        ttl_ms = int(server.command("PTTL", name).decode().strip().lstrip(":"))
        assert 85_000 < ttl_ms <= 90_000  # expired by Redis itself, at the TTL asked
        hit = chat_openai(gw, key, text, False, TTL)
        assert hit.cache == "hit" and hit.text == "from redis"
        server.command("PEXPIRE", name, "1")
        while server.command("EXISTS", name).strip() != b":0":  # gone within the millisecond
            time.sleep(0.001)
        assert chat_openai(gw, key, text, False, TTL).cache == "miss"
        assert upstream_calls(fake_a) == 2
    finally:
        server.stop()


def test_redis_down_is_a_miss_not_an_error(make_gateway: Any, fake_a: Any, tmp_path: Path) -> None:
    gw, server = _redis_gateway(make_gateway, tmp_path)
    server.stop()
    key = gw.create_key()["key"]
    fake_a.fake.always(Reply("no redis"))
    text = prompt()
    for _ in range(2):
        answer = chat_openai(gw, key, text, False, TTL)
        assert answer.text == "no redis" and answer.cache == "miss"
    assert upstream_calls(fake_a) == 2


@pytest.mark.skipif(postgres_url() is None, reason="redis_url needs a shared database (PostgreSQL)")
def test_instances_share_through_redis_url(make_gateway: Any, fake_a: Any, tmp_path: Path) -> None:
    from tests.cluster import RedisServer

    server = RedisServer(tmp_path)
    try:
        one, two = make_gateway(redis_url=server.url), make_gateway(redis_url=server.url)
        fake_a.fake.always(Reply("shared"))
        text = prompt()
        assert chat_openai(one, one.create_key()["key"], text, False, TTL).cache == "miss"
        assert chat_openai(two, two.create_key()["key"], text, True, TTL).cache == "hit"
        assert isinstance(two.state.response_cache.store, RedisStore)
        assert upstream_calls(fake_a) == 1
    finally:
        server.stop()


def test_bad_json_header_values_are_lenient(gateway: Gateway, api_key: str, fake_a: Any) -> None:
    """A TTL without digits falls back to the default (as OpenRouter's, never a 400)."""
    fake_a.fake.always(Reply("lenient"))
    with httpx.Client(base_url=gateway.api, headers={"Authorization": f"Bearer {api_key}"}) as c:
        body = {"model": MODEL, "messages": [{"role": "user", "content": prompt()}]}
        r = c.post("/chat/completions", json=body, headers={"X-Omnirouter-Cache-TTL": "soon"})
    assert r.status_code == 200 and r.headers["x-openrouter-cache-ttl"] == "300"


def test_typescript_sdk(gateway: Gateway, api_key: str, fake_a: Any) -> None:
    """@openrouter/sdk (zod-validated): a miss, then hits as JSON and as a stream, and the hit's record."""
    from tests.sdk_ts_run import run_steps

    fake_a.fake.always(Reply("typed and cached", prompt_tokens=6, completion_tokens=3))
    config = {
        "serverURL": gateway.api,
        "apiKey": api_key,
        "model": MODEL,
        "prompt": prompt(),
        "answer": "typed and cached",
    }
    results = run_steps("response_cache.mjs", config)
    assert list(results) == [
        "cache.chat.send(miss)",
        "cache.chat.send(hit)",
        "cache.chat.send(hit, stream)",
        "cache.generations.getGeneration(hit)",
    ]
    assert all(r["ok"] for r in results.values()), results
    assert upstream_calls(fake_a) == 1


def test_key_setting_with_fusion_caches_the_answer_not_the_panel(make_gateway: Any, fake_a: Any, fake_b: Any) -> None:
    """A plugin's own completions (fusion's panel) never come from the cache: on a miss each is called and
    billed; the final answer is kept, and a hit answers without the panel or the final model."""
    from tests.test_plugin_fusion import ALPHA_COST, BETA_COST, FINAL_COST, ask, script

    gw = make_gateway()
    key = gw.create_key(response_cache_ttl_seconds=60)["key"]
    script(fake_a, fake_b)
    text, first_id = ask(gw, key, "openai-chat", False)
    assert text == "9.9 is larger than 9.11."
    assert (upstream_calls(fake_a), upstream_calls(fake_b)) == (2, 1)
    assert key_usage(gw, key) == ALPHA_COST + BETA_COST + FINAL_COST
    text, hit_id = ask(gw, key, "openai-chat", True)
    assert text == "9.9 is larger than 9.11." and hit_id != first_id
    assert (upstream_calls(fake_a), upstream_calls(fake_b)) == (2, 1)
    assert generation(gw, key, hit_id)["response_cache"] == "hit"
    assert key_usage(gw, key) == ALPHA_COST + BETA_COST + FINAL_COST


def test_policy_precedence_and_ttl_parsing() -> None:
    from omnirouter.cache.policy import Policy, decide, seconds

    assert [seconds(v) for v in ("12.7", "30abc", " 7", "-5", "soon", "", 9.9, True)] == [
        12,
        30,
        7,
        -5,
        None,
        None,
        9,
        None,
    ]

    def policy(headers: dict[str, str], body: dict[str, Any] | None = None, key_ttl: int | None = None) -> Any:
        return decide(headers, dict(body or {}), key_ttl, 300, 86_400)

    assert policy({}) is None
    assert policy({"x-omnirouter-cache-ttl": "60"}) == Policy(60, False)
    assert policy({"x-omnirouter-cache-ttl": "-5"}) == Policy(1, False)  # clamped
    assert policy({"x-openrouter-cache-ttl": "60"}) is None  # OpenRouter's TTL alone does not turn it on
    assert policy({"x-openrouter-cache": "TRUE", "x-openrouter-cache-clear": "true"}) == Policy(300, True)
    assert policy({}, {"cache_enabled": True, "cache_ttl_seconds": 42}) == Policy(42, False)
    assert policy({"x-omnirouter-cache-ttl": "7"}, {"cache_enabled": True, "cache_ttl_seconds": 42}) == Policy(7, False)
    assert policy({"x-omnirouter-cache-ttl": "7"}, {"cache_enabled": False}) is None  # the preset's false wins
    assert policy({}, key_ttl=45) == Policy(45, False)
    assert policy({}, {"cache_ttl_seconds": 42}, key_ttl=45) == Policy(42, False)
    assert policy({"x-openrouter-cache": "false"}, key_ttl=45) is None
    body = {"model": "m", "cache_enabled": True, "cache_ttl_seconds": 5}
    decide({}, body, None, 300, 86_400)
    assert body == {"model": "m"}  # the gateway's fields never go upstream
