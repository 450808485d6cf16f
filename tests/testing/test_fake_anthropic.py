"""FakeAnthropic read by the official anthropic SDK: its JSON, its event stream and its errors are
what the SDK expects from Anthropic."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import pytest

from omnirouter.testing import FakeAnthropic, FakeAnthropicThread, Reply, Status, Stream

KEY = "sk-ant-fake-key"
TOOL = {"name": "weather", "description": "Weather", "input_schema": {"type": "object", "properties": {
    "city": {"type": "string"}}, "required": ["city"]}}  # fmt: skip


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropicThread]:
    handle = FakeAnthropic.run_in_thread(api_key=KEY)
    yield handle
    handle.stop()


@pytest.fixture
def sdk(fake: FakeAnthropicThread) -> anthropic.Anthropic:
    fake.reset()
    return anthropic.Anthropic(base_url=fake.base_url.removesuffix("/v1"), api_key=KEY, max_retries=0)


def test_a_message_with_thinking_and_a_tool_call(sdk: anthropic.Anthropic, fake: FakeAnthropicThread) -> None:
    call = {"name": "weather", "arguments": {"city": "Oslo"}}
    reply = Reply("", tool_calls=[call], reasoning="Oslo.", cached_tokens=40, cache_write_tokens=10, prompt_tokens=100)
    fake.script(reply)
    msg = sdk.messages.create(model="claude-sonnet-4-5", max_tokens=4096, tools=[TOOL],  # type: ignore[list-item]
                              thinking={"type": "enabled", "budget_tokens": 1024},
                              messages=[{"role": "user", "content": "Weather in Oslo?"}])  # fmt: skip
    assert [b.type for b in msg.content] == ["thinking", "tool_use"]
    assert msg.stop_reason == "tool_use" and msg.id.startswith("msg_")
    assert msg.content[1].input == {"city": "Oslo"}  # type: ignore[union-attr]
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens, msg.usage.cache_creation_input_tokens) == (
        50, 40, 10)  # fmt: skip


def test_the_stream_assembles_into_the_same_message(sdk: anthropic.Anthropic, fake: FakeAnthropicThread) -> None:
    fake.script(Reply("Snow today.", reasoning="Let me think.", completion_tokens=9))
    with sdk.messages.stream(model="claude-sonnet-4-5", max_tokens=4096,
                             thinking={"type": "enabled", "budget_tokens": 1024},
                             messages=[{"role": "user", "content": "Weather?"}]) as stream:  # fmt: skip
        events = [e.type for e in stream]
        final = stream.get_final_message()
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert final.content[0].type == "thinking" and final.content[0].signature  # type: ignore[union-attr]
    assert final.content[1].text == "Snow today."  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 9


def test_a_streamed_tool_call(sdk: anthropic.Anthropic, fake: FakeAnthropicThread) -> None:
    fake.script(Reply("", tool_calls=[{"name": "weather", "arguments": {"city": "Rome"}}]))
    with sdk.messages.stream(model="claude-sonnet-4-5", max_tokens=100, tools=[TOOL],  # type: ignore[list-item]
                             messages=[{"role": "user", "content": "Rome?"}]) as stream:  # fmt: skip
        final = stream.get_final_message()
    assert final.content[0].input == {"city": "Rome"}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("step", "error"),
    [(Status(429), anthropic.RateLimitError), (Status(529), anthropic.InternalServerError),
     (Status(400), anthropic.BadRequestError)],
)  # fmt: skip
def test_errors_are_the_sdks_exceptions(
    sdk: anthropic.Anthropic, fake: FakeAnthropicThread, step: Status, error: type[Exception]
) -> None:
    fake.script(step)
    with pytest.raises(error) as info:
        sdk.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert info.value.body["type"] == "error"  # type: ignore[attr-defined]


def test_an_error_event_mid_stream(sdk: anthropic.Anthropic, fake: FakeAnthropicThread) -> None:
    fake.script(Stream(content="a b c", error_after=1))
    with pytest.raises(anthropic.APIStatusError, match="Overloaded"), sdk.messages.stream(
        model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": "x"}]
    ) as stream:  # fmt: skip
        stream.get_final_message()


def test_what_anthropic_refuses_is_refused(sdk: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError, match="signature"):
        sdk.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=[
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "forged"}]},
            {"role": "user", "content": "y"}])  # fmt: skip
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=str(sdk.base_url), api_key="wrong", max_retries=0).messages.create(
            model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": "x"}])  # fmt: skip


def test_count_tokens(sdk: anthropic.Anthropic) -> None:
    counted = sdk.messages.count_tokens(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "x" * 80}])
    assert counted.input_tokens == 20
