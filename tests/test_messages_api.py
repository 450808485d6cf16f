"""POST /messages and /messages/count_tokens through the official `anthropic` SDK, against a gateway
whose upstream is an OpenAI-compatible fake: Anthropic in, chat out, and back."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from omnirouter.testing import Reply, Status, Stream
from tests.conftest import ALPHA_PRICES
from tests.gateway import Gateway
from tests.spec_validation import require_spec, validate_response, validate_sse

FIXTURES = Path(__file__).parent / "fixtures" / "cli"
HELLO = [{"role": "user", "content": "hello there"}]


def sdk(gateway: Gateway, key: str, **options: Any) -> anthropic.Anthropic:
    """The SDK as Claude Code points it at us: base URL `.../api`, so it calls /api/v1/messages."""
    return anthropic.Anthropic(base_url=gateway.url + "/api", auth_token=key, max_retries=0, **options)


def exact(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


def generation(gateway: Gateway, key: str, gen_id: str) -> dict[str, Any]:
    with gateway.client(key) as c:
        for _ in range(100):  # the record is written as the answer goes out; it is served from memory at once
            r = c.get("/generation", params={"id": gen_id})
            if r.status_code != 404:
                break
            time.sleep(0.02)
    assert r.status_code == 200, r.text
    return exact(r.text)["data"]


def key_usage(gateway: Gateway, key: str) -> Decimal:
    with gateway.client(key) as c:
        return exact(c.get("/key").text)["data"]["usage"]


def test_plain_text_with_usage_and_cost(gateway, api_key, fake_a):
    fake_a.fake.script(Reply("Bonjour!", prompt_tokens=12, completion_tokens=4))
    raw = sdk(gateway, api_key).messages.with_raw_response.create(model="test/alpha", max_tokens=64, messages=HELLO)
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("gen-") and raw.headers["x-generation-id"] == message.id
    assert message.model == "test/alpha"
    assert [(b.type, b.text) for b in message.content] == [("text", "Bonjour!")]
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (12, 4)
    body = exact(raw.http_response.text)
    assert body["provider"] == "Fake A"
    cost = 12 * Decimal(ALPHA_PRICES["prompt"]) + 4 * Decimal(ALPHA_PRICES["completion"])
    assert body["usage"]["cost"] == cost
    require_spec()
    validate_response("createMessages", raw.http_response.json())
    sent = fake_a.fake.last_request.json
    assert sent["model"] == "alpha-upstream" and sent["max_tokens"] == 64
    assert sent["messages"] == HELLO


def test_cost_agrees_with_generation_and_key(gateway, api_key, fake_b):
    fake_b.fake.script(Reply("cached", prompt_tokens=1000, completion_tokens=10, cached_tokens=600))
    raw = sdk(gateway, api_key).messages.with_raw_response.create(model="test/beta", max_tokens=64, messages=HELLO)
    body = exact(raw.http_response.text)
    usage = body["usage"]
    assert (usage["input_tokens"], usage["cache_read_input_tokens"], usage["output_tokens"]) == (400, 600, 10)
    gen = generation(gateway, api_key, body["id"])
    assert gen["total_cost"] == usage["cost"] == key_usage(gateway, api_key)
    assert (gen["native_tokens_prompt"], gen["native_tokens_cached"]) == (1000, 600)


def test_system_prompt_and_multi_turn(gateway, api_key, fake_a):
    client = sdk(gateway, api_key)
    client.messages.create(
        model="test/alpha",
        max_tokens=64,
        system=[{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        messages=[
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": [{"type": "text", "text": "one"}]},
            {"role": "user", "content": [{"type": "text", "text": "second"}]},
        ],
        stop_sequences=["STOP"],
        metadata={"user_id": "u-7"},
        extra_body={"temperature": 0.3},  # the SDK no longer offers it as an argument; the API still takes it
    )
    sent = fake_a.fake.last_request.json
    assert sent["messages"] == [
        {
            "role": "system",
            "content": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        },
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "one"},
        {"role": "user", "content": "second"},
    ]
    assert sent["stop"] == ["STOP"] and sent["temperature"] == 0.3
    assert sent["user"] != "u-7"  # hashed before it leaves, as for chat


WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def test_tools_round_trip(gateway, api_key, fake_a):
    client = sdk(gateway, api_key)
    fake_a.fake.script(Reply("", tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}]))
    ask = [{"role": "user", "content": "Weather in Paris?"}]
    raw = client.messages.with_raw_response.create(model="test/alpha", max_tokens=64, tools=[WEATHER], messages=ask,
                                   tool_choice={"type": "any", "disable_parallel_tool_use": True})  # fmt: skip
    first = raw.parse()
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert (call.name, call.input) == ("get_weather", {"city": "Paris"})
    sent = fake_a.fake.last_request.json
    assert sent["tools"][0]["function"]["parameters"] == WEATHER["input_schema"]
    assert sent["tool_choice"] == "required"
    # parallel_tool_calls: false was asked; test/alpha does not list it, so it is dropped, and named
    assert raw.headers["x-omnirouter-dropped-params"] == "parallel_tool_calls"

    fake_a.fake.script(Reply("It is 18C in Paris."))
    second = client.messages.create(
        model="test/alpha",
        max_tokens=64,
        tools=[WEATHER],
        messages=[
            *ask,
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18C"}]},
        ],
    )
    assert second.content[0].text == "It is 18C in Paris." and second.stop_reason == "end_turn"
    assistant, result = fake_a.fake.last_request.json["messages"][1:]
    assert assistant["tool_calls"][0]["id"] == call.id
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}
    assert result == {"role": "tool", "tool_call_id": call.id, "content": "18C"}


def test_streaming_text(gateway, api_key, fake_a):
    fake_a.fake.script(Stream(content="streamed words here", prompt_tokens=9, completion_tokens=3))
    with sdk(gateway, api_key).messages.stream(model="test/alpha", max_tokens=64, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "streamed words here"
    assert final.content[0].text == text and final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (9, 3)
    gen = generation(gateway, api_key, final.id)
    assert gen["streamed"] is True and gen["native_tokens_prompt"] == 9


def test_stream_events_on_the_wire_match_the_spec_and_carry_the_cost(gateway, api_key, fake_a):
    fake_a.fake.script(Stream(content="a b c", prompt_tokens=5, completion_tokens=3))
    with httpx.Client(base_url=gateway.api, headers={"x-api-key": api_key}, timeout=30) as c:
        r = c.post("/messages", json={"model": "test/alpha", "max_tokens": 32, "messages": HELLO, "stream": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    require_spec()
    events = validate_sse("createMessages", r.text, require_done=False)  # Anthropic's streams end at message_stop
    names = [e["event"] for e in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    usage = exact(json.dumps(events[-2]["data"]))["usage"]
    gen = generation(gateway, api_key, r.headers["x-generation-id"])
    assert Decimal(str(usage["cost"])) == gen["total_cost"]


def test_streaming_tool_call(gateway, api_key, fake_a):
    fake_a.fake.script(Stream(content="", tool_calls=[{"name": "get_weather", "arguments": {"city": "Rome"}}]))
    with sdk(gateway, api_key).messages.stream(
        model="test/alpha", max_tokens=64, tools=[WEATHER], messages=[{"role": "user", "content": "Rome?"}]
    ) as stream:
        final = stream.get_final_message()
    call = next(b for b in final.content if b.type == "tool_use")
    assert (call.name, call.input) == ("get_weather", {"city": "Rome"})
    assert final.stop_reason == "tool_use"


def test_thinking_is_asked_as_reasoning(gateway, api_key, fake_a):
    client = sdk(gateway, api_key)
    client.messages.create(model="test/reasoner", max_tokens=4096, messages=HELLO,
                           thinking={"type": "enabled", "budget_tokens": 2048})  # fmt: skip
    assert fake_a.fake.last_request.json["reasoning"] == {"max_tokens": 2048}
    client.messages.create(model="test/reasoner", max_tokens=4096, messages=HELLO, thinking={"type": "disabled"})
    assert fake_a.fake.last_request.json["reasoning"] == {"effort": "none"}


def test_thinking_comes_back_as_thinking_blocks(gateway, api_key, fake_a):
    if "reasoning" not in Reply.__dataclass_fields__:
        pytest.skip("this fake cannot send reasoning text")
    client = sdk(gateway, api_key)
    fake_a.fake.script(Reply("42", reasoning="Six times seven."))
    message = client.messages.create(model="test/reasoner", max_tokens=4096, messages=HELLO,
                                     thinking={"type": "adaptive"})  # fmt: skip
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].thinking == "Six times seven."
    fake_a.fake.script(Stream(content="42", reasoning="Six times seven."))
    with client.messages.stream(model="test/reasoner", max_tokens=4096, messages=HELLO,
                                thinking={"type": "adaptive"}) as stream:  # fmt: skip
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "Six times seven." and final.content[1].text == "42"


def test_models_fallback(gateway, api_key, fake_a, fake_b):
    fake_a.fake.script(Status(500))
    message = sdk(gateway, api_key).messages.create(
        model="test/alpha", max_tokens=64, messages=HELLO, extra_body={"models": ["test/beta"]}
    )
    assert message.model == "test/beta"
    assert fake_b.fake.last_request.json["model"] == "beta-upstream"


def test_beta_path_and_x_api_key(gateway, api_key, fake_a):
    """What Claude Code calls: /api/v1/messages?beta=true with anthropic-beta flags; and x-api-key."""
    client = anthropic.Anthropic(base_url=gateway.url + "/api", api_key=api_key, max_retries=0)
    message = client.beta.messages.create(
        model="test/alpha", max_tokens=64, messages=HELLO, betas=["interleaved-thinking-2025-05-14"]
    )
    assert message.content[0].type == "text"
    assert fake_a.fake.last_request.json["messages"] == HELLO


def test_claude_code_request_is_served(gateway, api_key, fake_b):
    """A recorded Claude Code turn (tool result, ~12 tools, adaptive thinking, context_management,
    output_config, its headers) answers with a stream of valid events."""
    recorded = json.loads((FIXTURES / "claude_code_tool_turn.json").read_text())
    body = {**recorded["body"], "model": "test/beta"}  # max_tokens 32000: more than test/alpha's endpoint gives
    headers = {k: v for k, v in recorded["headers"].items() if k.lower() not in ("authorization", "content-type")}
    fake_b.fake.script(Stream(content="The word is pelican."))
    with httpx.Client(base_url=gateway.url, timeout=30) as c:
        r = c.post("/api/v1/messages?beta=true", json=body,
                   headers={**headers, "Authorization": f"Bearer {api_key}"})  # fmt: skip
    assert r.status_code == 200, r.text
    require_spec()
    events = validate_sse("createMessages", r.text, require_done=False)
    text = "".join(e["data"]["delta"].get("text", "") for e in events if e["event"] == "content_block_delta")
    assert text == "The word is pelican."
    sent = fake_b.fake.last_request.json
    assert sent["messages"][-1]["role"] == "tool" and len(sent["tools"]) == len(body["tools"])
    assert "context_management" not in sent and "output_config" not in sent


def test_bad_block_is_an_invalid_request_error(gateway, api_key):
    with pytest.raises(anthropic.BadRequestError) as info:
        sdk(gateway, api_key).messages.create(
            model="test/alpha",
            max_tokens=64,
            messages=[{"role": "user", "content": [{"type": "thinking", "thinking": "x", "signature": "s"}]}],
        )
    assert info.value.status_code == 400
    assert info.value.body["type"] == "error"
    assert info.value.body["error"]["type"] == "invalid_request_error"
    assert "user messages hold content blocks of type" in info.value.body["error"]["message"]


def test_unmatched_tool_result_and_empty_messages(gateway, api_key):
    client = sdk(gateway, api_key)
    with pytest.raises(anthropic.BadRequestError, match="matches no earlier tool_use"):
        orphan = {"type": "tool_result", "tool_use_id": "toolu_9", "content": "x"}
        client.messages.create(model="test/alpha", max_tokens=64, messages=[{"role": "user", "content": [orphan]}])
    with pytest.raises(anthropic.BadRequestError, match="length >= 1"):
        client.messages.create(model="test/alpha", max_tokens=64, messages=[])
    with httpx.Client(base_url=gateway.api, headers={"x-api-key": api_key}) as c:
        no_model = c.post("/messages", json={"max_tokens": 64, "messages": HELLO})  # and no default model set
    assert no_model.status_code == 400 and "No model specified" in no_model.json()["error"]["message"]


def test_unknown_model_bad_key_and_upstream_errors(gateway, api_key, fake_a):
    with pytest.raises(anthropic.BadRequestError) as info:
        sdk(gateway, api_key).messages.create(model="nobody/nothing", max_tokens=64, messages=HELLO)
    assert info.value.body["error"]["type"] == "invalid_request_error"
    require_spec()
    validate_response("createMessages", info.value.body, "400")

    with pytest.raises(anthropic.AuthenticationError) as auth:
        sdk(gateway, "sk-or-v1-" + "0" * 64).messages.create(model="test/alpha", max_tokens=64, messages=HELLO)
    assert auth.value.body["error"]["type"] == "authentication_error"

    fake_a.fake.script(Status(429))
    with pytest.raises(anthropic.RateLimitError) as limited:
        sdk(gateway, api_key).messages.create(model="test/alpha", max_tokens=64, messages=HELLO)
    assert limited.value.body["error"]["type"] == "rate_limit_error"


def test_error_mid_stream_raises_in_the_sdk(gateway, api_key, fake_a):
    fake_a.fake.script(Stream(chunks=5, error_after=2))
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        sdk(gateway, api_key).messages.stream(model="test/alpha", max_tokens=64, messages=HELLO) as stream,
    ):
        stream.get_final_message()
    assert info.value.body["type"] == "error" and info.value.body["error"]["message"]


def test_count_tokens(gateway, api_key):
    client = sdk(gateway, api_key)
    short = client.messages.count_tokens(model="test/alpha", messages=HELLO)
    longer = client.messages.count_tokens(model="test/alpha", system="x" * 400, messages=HELLO, tools=[WEATHER])
    assert 0 < short.input_tokens < longer.input_tokens
    assert longer.input_tokens - short.input_tokens >= 100  # 400 characters of system prompt, and the tool
    with pytest.raises(anthropic.AuthenticationError):
        sdk(gateway, "sk-or-v1-" + "0" * 64).messages.count_tokens(model="test/alpha", messages=HELLO)
    with pytest.raises(anthropic.BadRequestError):
        client.messages.count_tokens(model="test/alpha", messages=[{"role": "user", "content": [{"type": "nope"}]}])


def test_an_oversized_body_is_refused_in_anthropic_envelope(make_gateway):
    gw = make_gateway(max_body_bytes=2048)
    key = gw.create_key()["key"]
    big = [{"role": "user", "content": "x" * 4096}]
    with pytest.raises(anthropic.APIStatusError) as info:
        sdk(gw, key).messages.create(model="test/alpha", max_tokens=64, messages=big)
    assert info.value.status_code == 413
    assert info.value.body["type"] == "error" and info.value.body["error"]["type"] == "invalid_request_error"
    assert "2048-byte limit" in info.value.body["error"]["message"]
