"""Chat completions served by an `api: anthropic` provider: the openai SDK talks to the gateway,
the gateway talks Messages to FakeAnthropic (a real HTTP server speaking Anthropic's wire)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import httpx
import openai
import pytest

from omnirouter.catalog.types import Endpoint, Provider
from omnirouter.providers.anthropic import AnthropicAdapter
from omnirouter.providers.base import Credentials, Timeouts, UpstreamContext
from omnirouter.providers.http1 import Pool
from omnirouter.testing import BrokenJSON, FakeAnthropic, FakeAnthropicThread, Reply, Status, Stream
from tests.gateway import Gateway

KEY = "sk-ant-test-0123456789"
PRICES = {
    "prompt": "0.000003",
    "completion": "0.000015",
    "input_cache_read": "0.0000003",
    "input_cache_write": "0.00000375",
}
PARAMETERS = [
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning",
    "include_reasoning",
    "response_format",
    "structured_outputs",
]
TWO = {"provider": {"order": ["claude-a", "claude-b"]}}
HELLO = [{"role": "user", "content": "hello there"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def config(base_url: str) -> dict[str, Any]:
    def provider(slug: str, name: str) -> dict[str, Any]:
        return {"slug": slug, "name": name, "api": "anthropic", "base_url": base_url, "api_key": KEY}

    def endpoint(slug: str) -> dict[str, Any]:
        return {
            "provider": slug,
            "upstream_model": "claude-sonnet-4-5",
            "pricing": PRICES,
            "max_completion_tokens": 16000,
        }

    return {
        "providers": [provider("claude-a", "Claude A"), provider("claude-b", "Claude B")],
        "models": [
            {
                "id": "test/claude",
                "name": "Claude",
                "context_length": 200000,
                "supported_parameters": PARAMETERS,
                "endpoints": [endpoint("claude-a")],
            },
            {
                "id": "test/claude-two",
                "name": "Claude (two)",
                "context_length": 200000,
                "supported_parameters": PARAMETERS,
                "endpoints": [endpoint("claude-a"), endpoint("claude-b")],
            },
        ],
    }


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropicThread]:
    handle = FakeAnthropic.run_in_thread(api_key=KEY)
    yield handle
    handle.stop()


@pytest.fixture(autouse=True)
def _fresh(fake: FakeAnthropicThread) -> None:
    fake.reset()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fake: FakeAnthropicThread) -> Iterator[Gateway]:
    gateway = Gateway(tmp_path_factory.mktemp("anthropic"), config(fake.base_url)).start()
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def client(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.api, api_key=gw.create_key()["key"], max_retries=0)


def sent(fake: FakeAnthropicThread) -> dict[str, Any]:
    """The Messages request the fake got last."""
    return fake.requests[-1].json


def raw_body(raw: Any) -> dict[str, Any]:
    return json.loads(raw.http_response.text, parse_float=Decimal)


def generation(gw: Gateway, key: str, gen_id: str) -> dict[str, Any]:
    with httpx.Client(base_url=gw.api, headers={"Authorization": f"Bearer {key}"}) as c:
        for _ in range(100):
            r = c.get("/generation", params={"id": gen_id})
            if r.status_code != 404:
                return json.loads(r.text, parse_float=Decimal)["data"]
            time.sleep(0.05)
    raise AssertionError(f"no generation {gen_id}")


def test_text_with_a_system_prompt(client: openai.OpenAI, fake: FakeAnthropicThread) -> None:
    fake.script(Reply("Bonjour!", prompt_tokens=12, completion_tokens=3))
    raw = client.chat.completions.with_raw_response.create(
        model="test/claude",
        messages=[{"role": "system", "content": "Answer in French."}, *HELLO],
        temperature=0.2,
        seed=4,
    )
    body = raw_body(raw)
    choice = body["choices"][0]
    assert choice["message"]["content"] == "Bonjour!"
    assert (choice["finish_reason"], choice["native_finish_reason"]) == ("stop", "end_turn")
    assert body["provider"] == "Claude A"
    assert (body["usage"]["prompt_tokens"], body["usage"]["completion_tokens"]) == (12, 3)
    assert body["usage"]["cost"] == 12 * Decimal(PRICES["prompt"]) + 3 * Decimal(PRICES["completion"])
    request = fake.requests[-1]
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == KEY and request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    assert request.json == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 16000,  # Anthropic requires it: the endpoint's limit
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello there"}]}],
        "system": [{"type": "text", "text": "Answer in French."}],
        "temperature": 0.2,
    }


def test_parallel_tool_calls_round_trip(client: openai.OpenAI, fake: FakeAnthropicThread) -> None:
    fake.script(
        Reply(
            "",
            tool_calls=[
                {"id": "toolu_p", "name": "weather", "arguments": {"city": "Paris"}},
                {"id": "toolu_r", "name": "weather", "arguments": {"city": "Rome"}},
            ],
        ),
        Reply("Paris 18C, Rome 24C."),
    )
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris and Rome?"}]
    first = client.chat.completions.create(model="test/claude", messages=messages, tools=[WEATHER])
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or ()] == [
        ("toolu_p", "weather", {"city": "Paris"}),
        ("toolu_r", "weather", {"city": "Rome"}),
    ]
    assert sent(fake)["tools"] == [
        {
            "name": "weather",
            "input_schema": WEATHER["function"]["parameters"],
            "description": "Current weather in a city",
        }
    ]
    messages.append(message.model_dump(exclude_none=True))
    messages += [
        {"role": "tool", "tool_call_id": "toolu_p", "content": "18C"},
        {"role": "tool", "tool_call_id": "toolu_r", "content": "24C"},
    ]
    second = client.chat.completions.create(model="test/claude", messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "Paris 18C, Rome 24C."
    turns = sent(fake)["messages"]
    assert turns[1]["content"] == [
        {"type": "tool_use", "id": "toolu_p", "name": "weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_r", "name": "weather", "input": {"city": "Rome"}},
    ]
    assert turns[2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_p", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "toolu_r", "content": "24C"},
        ],
    }


def test_tool_choice_and_no_parallel_calls(client: openai.OpenAI, fake: FakeAnthropicThread) -> None:
    client.chat.completions.create(
        model="test/claude",
        messages=HELLO,
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "weather"}},
        parallel_tool_calls=False,
    )
    assert sent(fake)["tool_choice"] == {"type": "tool", "name": "weather", "disable_parallel_tool_use": True}


def test_a_tool_result_for_no_call_is_the_clients_400(client: openai.OpenAI, fake: FakeAnthropicThread) -> None:
    messages = [*HELLO, {"role": "tool", "tool_call_id": "toolu_nope", "content": "?"}]
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="test/claude-two", messages=messages, extra_body=TWO)
    assert "toolu_nope" in info.value.message
    assert len(fake.requests) == 1  # a request error does not fall back


def test_streamed_text_and_usage(client: openai.OpenAI, fake: FakeAnthropicThread) -> None:
    fake.script(Reply("one two three four", prompt_tokens=20, completion_tokens=4))
    chunks = list(
        client.chat.completions.create(
            model="test/claude", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = chunks[-1].usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (20, 4)
    assert sent(fake)["stream"] is True


def test_streamed_parallel_tool_calls(client: openai.OpenAI, fake: FakeAnthropicThread) -> None:
    fake.script(
        Reply(
            "",
            tool_calls=[
                {"id": "toolu_1", "name": "weather", "arguments": {"city": "Paris"}},
                {"id": "toolu_2", "name": "weather", "arguments": {"city": "Rome"}},
            ],
        )
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in client.chat.completions.create(model="test/claude", messages=HELLO, tools=[WEATHER], stream=True):
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for tc in choice.delta.tool_calls or ():
                call = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                call["id"] += tc.id or ""
                call["name"] += (tc.function and tc.function.name) or ""
                call["arguments"] += (tc.function and tc.function.arguments) or ""
    assert finish == "tool_calls"
    assert [(c["id"], c["name"], json.loads(c["arguments"])) for c in calls.values()] == [
        ("toolu_1", "weather", {"city": "Paris"}),
        ("toolu_2", "weather", {"city": "Rome"}),
    ]
    assert all(t["eager_input_streaming"] for t in sent(fake)["tools"])


def test_signed_thinking_round_trips(client: openai.OpenAI, fake: FakeAnthropicThread) -> None:
    fake.script(
        Reply(
            "",
            tool_calls=[{"id": "toolu_t", "name": "weather", "arguments": {"city": "Oslo"}}],
            reasoning="The user wants Oslo's weather.",
            reasoning_signature="sig-oslo-1",
        ),
        Reply("Cold."),
    )
    messages: list[Any] = [{"role": "user", "content": "Weather in Oslo?"}]
    reasoning = {"reasoning": {"max_tokens": 4000}}
    first = client.chat.completions.create(
        model="test/claude", messages=messages, tools=[WEATHER], extra_body=reasoning
    )
    assert sent(fake)["thinking"] == {"type": "enabled", "budget_tokens": 4000}
    message = first.choices[0].message.model_dump(exclude_none=True)
    assert message["reasoning"] == "The user wants Oslo's weather."
    assert message["reasoning_details"] == [
        {
            "type": "reasoning.text",
            "text": "The user wants Oslo's weather.",
            "signature": "sig-oslo-1",
            "format": "anthropic-claude-v1",
            "index": 0,
        }
    ]
    messages += [message, {"role": "tool", "tool_call_id": "toolu_t", "content": "-3C"}]
    second = client.chat.completions.create(
        model="test/claude", messages=messages, tools=[WEATHER], extra_body=reasoning
    )
    assert second.choices[0].message.content == "Cold."
    assert sent(fake)["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "The user wants Oslo's weather.",
        "signature": "sig-oslo-1",
    }


def test_streamed_thinking_carries_its_signature(client: openai.OpenAI, fake: FakeAnthropicThread) -> None:
    fake.script(Reply("Done.", reasoning="Short thought here.", reasoning_signature="sig-stream"))
    reasoning, details = "", []
    for chunk in client.chat.completions.create(
        model="test/claude", messages=HELLO, stream=True, extra_body={"reasoning": {"effort": "high"}}
    ):
        for choice in chunk.choices:
            extra = choice.delta.model_extra or {}
            reasoning += extra.get("reasoning") or ""
            details += extra.get("reasoning_details") or []
    assert reasoning == "Short thought here."
    assert sent(fake)["thinking"] == {"type": "enabled", "budget_tokens": 12800}  # high: 0.8 of 16000
    assert [d["signature"] for d in details if d.get("signature")] == ["sig-stream"]
    assert "".join(d["text"] for d in details) == "Short thought here."


def test_image_and_pdf_input(client: openai.OpenAI, fake: FakeAnthropicThread) -> None:
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    pdf = "JVBERi0xLjQKJcOkw7zDtsOfCg=="
    content = [
        {"type": "text", "text": "What are these?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
        {"type": "file", "file": {"filename": "memo.pdf", "file_data": f"data:application/pdf;base64,{pdf}"}},
    ]
    client.chat.completions.create(model="test/claude", messages=[{"role": "user", "content": content}])
    blocks = sent(fake)["messages"][0]["content"]
    assert blocks[1] == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}}
    assert blocks[2] == {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": pdf},
        "title": "memo.pdf",
    }


def test_a_cache_hit_is_billed_at_cache_prices(gw: Gateway, client: openai.OpenAI, fake: FakeAnthropicThread) -> None:
    fake.script(Reply("ok", prompt_tokens=3000, cached_tokens=2000, cache_write_tokens=500, completion_tokens=10))
    doc = {"type": "text", "text": "A long shared document. " * 50, "cache_control": {"type": "ephemeral"}}
    raw = client.chat.completions.with_raw_response.create(
        model="test/claude", messages=[{"role": "system", "content": [doc]}, *HELLO]
    )
    body = raw_body(raw)
    usage = body["usage"]
    assert usage["prompt_tokens"] == 3000
    assert usage["prompt_tokens_details"]["cached_tokens"] == 2000
    assert usage["prompt_tokens_details"]["cache_write_tokens"] == 500
    price = {k: Decimal(v) for k, v in PRICES.items()}
    expected = (
        500 * price["prompt"]
        + 2000 * price["input_cache_read"]
        + 500 * price["input_cache_write"]
        + 10 * price["completion"]
    )
    assert usage["cost"] == expected
    assert sent(fake)["system"][0]["cache_control"] == {"type": "ephemeral"}
    # The fake counted it Anthropic's way: input_tokens without the cache reads and writes.
    gen = generation(gw, client.api_key, body["id"])
    assert gen["total_cost"] == expected
    assert (gen["native_tokens_prompt"], gen["native_tokens_cached"]) == (3000, 2000)
    assert gen["cache_discount"] == 3000 * price["prompt"] - (expected - 10 * price["completion"])


@pytest.mark.parametrize("status", [429, 529])
def test_rate_limited_or_overloaded_falls_back(
    gw: Gateway, client: openai.OpenAI, fake: FakeAnthropicThread, status: int
) -> None:
    fake.script(Status(status, retry_after=1), Reply("from the second"))
    raw = client.chat.completions.with_raw_response.create(model="test/claude-two", messages=HELLO, extra_body=TWO)
    body = raw_body(raw)
    assert body["choices"][0]["message"]["content"] == "from the second"
    assert body["provider"] == "Claude B"
    gen = generation(gw, client.api_key, body["id"])
    assert [p["status"] for p in gen["provider_responses"]] == [status, 200]


def test_an_upstream_400_is_returned(client: openai.OpenAI, fake: FakeAnthropicThread) -> None:
    fake.script(
        Status(
            400, body={"type": "error", "error": {"type": "invalid_request_error", "message": "messages.0: bad block"}}
        )
    )
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="test/claude-two", messages=HELLO, extra_body=TWO)
    assert "messages.0: bad block" in info.value.message
    assert info.value.body["metadata"]["provider_code"] == "invalid_request_error"  # type: ignore[index]
    assert len(fake.requests) == 1


def test_a_stream_broken_after_its_first_token_ends_in_an_error(
    client: openai.OpenAI, fake: FakeAnthropicThread
) -> None:
    fake.script(Stream(content="one two three four five", reset_after=2))
    text = ""
    with pytest.raises(openai.APIError):
        for chunk in client.chat.completions.create(
            model="test/claude-two", messages=HELLO, stream=True, extra_body=TWO
        ):
            text += "".join(c.delta.content or "" for c in chunk.choices)
    assert text == "one two"
    assert len(fake.requests) == 1  # too late to fall back: the client has the first tokens


def test_an_error_event_mid_stream_ends_in_an_error(client: openai.OpenAI, fake: FakeAnthropicThread) -> None:
    fake.script(Stream(content="one two three", error_after=1))
    with pytest.raises(openai.APIError):
        for _ in client.chat.completions.create(model="test/claude", messages=HELLO, stream=True):
            pass


def test_an_overloaded_stream_before_its_first_token_falls_back(
    client: openai.OpenAI, fake: FakeAnthropicThread
) -> None:
    fake.script(Stream(content="lost", error_after=0), Reply("second try"))
    chunks = list(client.chat.completions.create(model="test/claude-two", messages=HELLO, stream=True, extra_body=TWO))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "second try"


def test_anthropic_beta_reaches_the_upstream(gw: Gateway, client: openai.OpenAI, fake: FakeAnthropicThread) -> None:
    beta = "interleaved-thinking-2025-05-14"
    client.chat.completions.create(model="test/claude", messages=HELLO, extra_headers={"anthropic-beta": beta})
    assert fake.requests[-1].headers["anthropic-beta"] == beta
    client.chat.completions.create(model="test/claude", messages=HELLO)
    assert "anthropic-beta" not in fake.requests[-1].headers
    # OpenRouter documents the header as x-anthropic-beta
    client.chat.completions.create(model="test/claude", messages=HELLO, extra_headers={"x-anthropic-beta": beta})
    assert fake.requests[-1].headers["anthropic-beta"] == beta


def test_json_schema_output(client: openai.OpenAI, fake: FakeAnthropicThread) -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    fake.script(Reply('{"a": 1}'))
    answer = client.chat.completions.create(
        model="test/claude",
        messages=HELLO,
        response_format={"type": "json_schema", "json_schema": {"name": "r", "strict": True, "schema": schema}},
    )
    assert json.loads(answer.choices[0].message.content or "") == {"a": 1}
    assert sent(fake)["output_config"] == {"format": {"type": "json_schema", "schema": schema}}


PERSON = {
    "type": "json_schema",
    "json_schema": {
        "name": "person",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"name": {"type": "string"}},
            "required": ["name"],
            "additionalProperties": False,
        },
    },
}


def test_the_bundled_anthropic_provider_speaks_messages(
    make_gateway: Any, fake: FakeAnthropicThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ANTHROPIC_API_KEY enables the catalog's Anthropic provider: its key goes in x-api-key, its
    Claude 4.5 endpoints take json_schema output natively, Opus 4.1's drops it and says so."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    gw = make_gateway({"providers": [{"slug": "anthropic", "base_url": fake.base_url}]})
    key = gw.create_key()["key"]
    only = {"only": ["anthropic"]}
    fake.script(Reply('{"name": "Ada"}', prompt_tokens=1000, completion_tokens=100))
    with gw.client(key) as c:
        r = c.post(
            "/chat/completions",
            json={
                "model": "anthropic/claude-sonnet-4.5",
                "messages": HELLO,
                "response_format": PERSON,
                "provider": only,
            },
        )
        assert r.status_code == 200, r.text
        assert r.json()["provider"] == "Anthropic"
        assert "x-omnirouter-dropped-params" not in r.headers
        request = fake.requests[-1]
        assert request.headers["x-api-key"] == KEY
        assert request.json["model"] == "claude-sonnet-4-5-20250929"
        assert request.json["output_config"] == {
            "format": {"type": "json_schema", "schema": PERSON["json_schema"]["schema"]}
        }
        cost = json.loads(r.text, parse_float=Decimal)["usage"]["cost"]
        assert cost == 1000 * Decimal("0.000003") + 100 * Decimal("0.000015")

        r = c.post(
            "/chat/completions",
            json={"model": "anthropic/claude-opus-4.1", "messages": HELLO, "response_format": PERSON, "provider": only},
        )
        assert r.status_code == 200, r.text
        assert r.headers["x-omnirouter-dropped-params"] == "response_format"
        assert "output_config" not in fake.requests[-1].json


@pytest.mark.parametrize(
    ("native", "finish"),
    [
        ("refusal", "content_filter"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
    ],
)
def test_stop_reasons(client: openai.OpenAI, fake: FakeAnthropicThread, native: str, finish: str) -> None:
    fake.script(Reply("partial", finish_reason=native))
    raw = client.chat.completions.with_raw_response.create(model="test/claude", messages=HELLO, stop=["END"])
    choice = raw_body(raw)["choices"][0]
    assert (choice["finish_reason"], choice["native_finish_reason"]) == (finish, native)
    assert sent(fake)["stop_sequences"] == ["END"]


async def test_a_calls_own_key_and_betas_replace_the_providers() -> None:
    """The request head is built once per provider; a call with its own key (BYOK) or the client's
    anthropic-beta flags gets its own head, with the provider's betas first."""
    async with FakeAnthropic() as upstream:
        provider = Provider(slug="claude", name="Claude", api="anthropic", base_url=upstream.base_url, api_key=KEY,
                            headers={"anthropic-beta": "context-1m-2025-08-07"})  # fmt: skip
        endpoint = Endpoint(provider="claude", upstream_model="claude-sonnet-4-5")
        adapter = AnthropicAdapter(Pool())
        body = {"model": "claude-sonnet-4-5", "messages": HELLO}
        timeouts = Timeouts(connect=2, first_byte=5, total=10)
        try:
            await adapter.complete(provider, endpoint, body, timeouts)
            own = UpstreamContext(
                Credentials(api_key="sk-ant-byok"), {"anthropic-beta": "interleaved-thinking-2025-05-14"}
            )
            answer = await adapter.complete(provider, endpoint, body, timeouts, own)
            await adapter.complete(provider, endpoint, body, timeouts)
        finally:
            adapter.pool.close()
    first, second, third = (r.headers for r in upstream.requests)
    assert (first["x-api-key"], first["anthropic-beta"]) == (KEY, "context-1m-2025-08-07")
    assert second["x-api-key"] == "sk-ant-byok"
    assert second.getall("anthropic-beta") == ["context-1m-2025-08-07,interleaved-thinking-2025-05-14"]
    assert (third["x-api-key"], third["anthropic-beta"]) == (KEY, "context-1m-2025-08-07")
    assert answer["choices"][0]["message"]["content"] == "Echo: hello there"


def test_the_anthropic_sdk_through_messages_keeps_signed_thinking(
    gw: Gateway, client: openai.OpenAI, fake: FakeAnthropicThread
) -> None:
    """Messages in, Messages out: a thinking block's signature survives both translations, there and back."""
    sdk = anthropic.Anthropic(base_url=gw.url + "/api", auth_token=client.api_key, max_retries=0)
    fake.script(
        Reply("", tool_calls=[{"id": "toolu_m", "name": "weather", "arguments": {"city": "Lima"}}],
              reasoning="Lima, then.", reasoning_signature="sig-lima"),
        Reply("Warm."),
    )  # fmt: skip
    tool = {"name": "weather", "description": "Weather", "input_schema": WEATHER["function"]["parameters"]}
    thinking = {"type": "enabled", "budget_tokens": 2048}
    first = sdk.messages.create(model="test/claude", max_tokens=4096, thinking=thinking, tools=[tool],
                                messages=[{"role": "user", "content": "Weather in Lima?"}])  # fmt: skip
    assert [b.type for b in first.content] == ["thinking", "tool_use"]
    assert first.content[0].signature == "sig-lima"  # type: ignore[union-attr]
    second = sdk.messages.create(
        model="test/claude", max_tokens=4096, thinking=thinking, tools=[tool],
        messages=[
            {"role": "user", "content": "Weather in Lima?"},
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_m", "content": "25C"}]},
        ],
    )  # fmt: skip
    assert [b.text for b in second.content if b.type == "text"] == ["Warm."]
    upstream = sent(fake)
    assert upstream["thinking"] == thinking
    assert upstream["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "Lima, then.",
        "signature": "sig-lima",
    }


@pytest.mark.parametrize("broken", [BrokenJSON(), Status(200, body={"type": "completion", "text": "?"})])
def test_an_answer_that_is_not_a_message_falls_back(
    gw: Gateway, client: openai.OpenAI, fake: FakeAnthropicThread, broken: Any
) -> None:
    fake.script(broken, Reply("from the second"))
    raw = client.chat.completions.with_raw_response.create(model="test/claude-two", messages=HELLO, extra_body=TWO)
    body = raw_body(raw)
    assert body["choices"][0]["message"]["content"] == "from the second"
    assert [p["status"] for p in generation(gw, client.api_key, body["id"])["provider_responses"]] == [502, 200]


def test_the_anthropic_sdk_streams_signed_thinking_through_messages(
    gw: Gateway, client: openai.OpenAI, fake: FakeAnthropicThread
) -> None:
    sdk = anthropic.Anthropic(base_url=gw.url + "/api", auth_token=client.api_key, max_retries=0)
    fake.script(Reply("Sunny.", reasoning="Checking the sky.", reasoning_signature="sig-sky", cached_tokens=5))
    with sdk.messages.stream(model="test/claude", max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 2048},
                             messages=[{"role": "user", "content": "Weather?"}]) as stream:  # fmt: skip
        final = stream.get_final_message()
    thinking, text = final.content
    assert (thinking.type, thinking.thinking, thinking.signature) == ("thinking", "Checking the sky.", "sig-sky")  # type: ignore[union-attr]
    assert (text.type, text.text) == ("text", "Sunny.")  # type: ignore[union-attr]
    assert final.usage.cache_read_input_tokens == 5


async def test_the_adapter_asks_anthropic_to_count_tokens() -> None:
    """count_tokens sends what /messages/count_tokens takes (no max_tokens or sampling settings)."""
    async with FakeAnthropic(api_key=KEY) as upstream:
        provider = Provider(slug="claude", name="Claude", api="anthropic", base_url=upstream.base_url, api_key=KEY)
        endpoint = Endpoint(provider="claude", upstream_model="claude-sonnet-4-5", max_completion_tokens=8000)
        adapter = AnthropicAdapter(Pool())
        body = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "x" * 400}],
                "temperature": 0.5, "reasoning": {"effort": "low"}}  # fmt: skip
        try:
            tokens = await adapter.count_tokens(provider, endpoint, body, Timeouts(connect=2, first_byte=5, total=10))
        finally:
            adapter.pool.close()
    request = upstream.requests[-1]
    assert request.path == "/v1/messages/count_tokens" and request.headers["x-api-key"] == KEY
    assert set(request.json) == {"model", "messages", "thinking"}
    assert tokens == 100  # the fake counts 4 characters a token


@pytest.mark.parametrize("coalesce", [False, True], ids=["event-by-event", "one-read"])
def test_a_long_stream_arrives_whole_however_it_is_packed(
    client: openai.OpenAI, fake: FakeAnthropicThread, coalesce: bool
) -> None:
    content = " ".join(f"w{i}" for i in range(600))
    fake.script(Stream(content=content, coalesce=coalesce, reasoning="Thinking first."))
    chunks = list(client.chat.completions.create(model="test/claude", messages=HELLO, stream=True,
                                                 stream_options={"include_usage": True}))  # fmt: skip
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == content
    assert "".join((c.choices[0].delta.model_extra or {}).get("reasoning") or "" for c in chunks if c.choices) == (
        "Thinking first.")  # fmt: skip
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens >= 600


def test_a_client_that_leaves_mid_stream_stops_the_upstream(
    gw: Gateway, client: openai.OpenAI, fake: FakeAnthropicThread
) -> None:
    fake.script(Stream(chunks=200, chunk_delay=0.02, prompt_tokens=50))
    body = {"model": "test/claude", "messages": HELLO, "stream": True}
    with gw.client(client.api_key) as c, c.stream("POST", "/chat/completions", json=body) as r:
        gen_id = r.headers["x-generation-id"]
        received = 0
        for line in r.iter_lines():
            received += line.startswith("data: {")
            if received >= 5:
                break
    fake.wait_for_disconnect(timeout=5)  # the gateway dropped the upstream connection
    gen = generation(gw, client.api_key, gen_id)
    assert gen["cancelled"] is True and 0 < gen["tokens_completion"] < 200
