"""/messages to an `api: anthropic` provider: the anthropic SDK on both sides of the gateway (the
client, and FakeAnthropic speaking Anthropic's wire). What Anthropic-native clients depend on must
survive the trip: signed thinking blocks sent back, cache breakpoints, cache token counts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from omnirouter.testing import FakeAnthropic, FakeAnthropicThread, Reply
from tests.gateway import Gateway

KEY = "sk-ant-test-0123456789"
PRICES = {"prompt": "0.000003", "completion": "0.000015", "input_cache_read": "0.0000003",
          "input_cache_write": "0.00000375"}  # fmt: skip
WEATHER = {
    "name": "weather",
    "description": "Current weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
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
def client(tmp_path_factory: pytest.TempPathFactory, fake: FakeAnthropicThread) -> Iterator[anthropic.Anthropic]:
    config = {
        "providers": [{"slug": "claude", "name": "Claude", "api": "anthropic", "base_url": fake.base_url,
                       "api_key": KEY}],
        "models": [{"id": "test/claude", "name": "Claude", "context_length": 200000,
                    "supported_parameters": ["max_tokens", "temperature", "stop", "tools", "tool_choice",
                                             "parallel_tool_calls", "reasoning", "include_reasoning"],
                    "endpoints": [{"provider": "claude", "upstream_model": "claude-sonnet-4-5", "pricing": PRICES}]}],
    }  # fmt: skip
    gw = Gateway(tmp_path_factory.mktemp("messages-anthropic"), config).start()
    yield anthropic.Anthropic(base_url=gw.url + "/api", auth_token=gw.create_key()["key"], max_retries=0)
    gw.stop()


def sent(fake: FakeAnthropicThread) -> dict[str, Any]:
    return fake.requests[-1].json


def test_signed_thinking_goes_back_as_it_came(client: anthropic.Anthropic, fake: FakeAnthropicThread) -> None:
    fake.script(
        Reply("", tool_calls=[{"id": "toolu_o", "name": "weather", "arguments": {"city": "Oslo"}}],
              reasoning="The user wants Oslo's weather.", reasoning_signature="sig-oslo-1"),
        Reply("Cold."),
    )  # fmt: skip
    ask = [{"role": "user", "content": "Weather in Oslo?"}]
    thinking = {"type": "enabled", "budget_tokens": 4000}
    first = client.messages.create(model="test/claude", max_tokens=8000, messages=ask, tools=[WEATHER],
                                   thinking=thinking)  # fmt: skip
    assert sent(fake)["thinking"] == thinking
    assert [b.type for b in first.content] == ["thinking", "tool_use"]
    assert (first.content[0].thinking, first.content[0].signature) == ("The user wants Oslo's weather.", "sig-oslo-1")
    assert first.stop_reason == "tool_use"

    second = client.messages.create(
        model="test/claude",
        max_tokens=8000,
        tools=[WEATHER],
        thinking=thinking,
        messages=[
            *ask,
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_o", "content": "-3C"}]},
        ],
    )
    assert second.content[-1].text == "Cold."
    replayed = sent(fake)["messages"][1]["content"]  # the fake refuses a thinking block it did not sign
    assert replayed[0] == {"type": "thinking", "thinking": "The user wants Oslo's weather.", "signature": "sig-oslo-1"}
    assert replayed[1]["type"] == "tool_use" and replayed[1]["id"] == "toolu_o"


def test_streamed_thinking_has_its_signature(client: anthropic.Anthropic, fake: FakeAnthropicThread) -> None:
    fake.script(Reply("Done.", reasoning="Short thought here.", reasoning_signature="sig-stream"))
    with client.messages.stream(model="test/claude", max_tokens=8000, thinking={"type": "adaptive"},
                                messages=[{"role": "user", "content": "hi"}]) as stream:  # fmt: skip
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert (final.content[0].thinking, final.content[0].signature) == ("Short thought here.", "sig-stream")
    assert final.content[1].text == "Done."


def test_cache_breakpoints_and_cache_tokens(client: anthropic.Anthropic, fake: FakeAnthropicThread) -> None:
    fake.script(Reply("ok", prompt_tokens=3000, cached_tokens=2000, cache_write_tokens=500, completion_tokens=10))
    doc = {"type": "text", "text": "A long shared document. " * 50, "cache_control": {"type": "ephemeral"}}
    message = client.messages.create(model="test/claude", max_tokens=100, system=[doc],
                                     messages=[{"role": "user", "content": "summarise"}])  # fmt: skip
    assert sent(fake)["system"][0]["cache_control"] == {"type": "ephemeral"}
    usage = message.usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (500, 2000, 500)
    assert usage.output_tokens == 10
