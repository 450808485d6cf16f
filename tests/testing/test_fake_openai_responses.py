"""FakeOpenAIResponses read by the official openai SDK: its Response objects, its event streams and its
errors are what the SDK expects from OpenAI's Responses API."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from omnirouter.testing import FakeOpenAIResponses, FakeOpenAIResponsesThread, Reply, Status, Stream

KEY = "sk-fake-responses-key"
TOOL = {"type": "function", "name": "weather", "strict": False, "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}  # fmt: skip


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAIResponsesThread]:
    handle = FakeOpenAIResponses.run_in_thread(api_key=KEY)
    yield handle
    handle.stop()


@pytest.fixture
def sdk(fake: FakeOpenAIResponsesThread) -> openai.OpenAI:
    fake.reset()
    return openai.OpenAI(base_url=fake.base_url, api_key=KEY, max_retries=0)


def test_a_response_with_reasoning_and_a_function_call(sdk: openai.OpenAI, fake: FakeOpenAIResponsesThread) -> None:
    fake.script(Reply("", tool_calls=[{"name": "weather", "arguments": {"city": "Oslo"}}], reasoning="Use the tool.",
                      prompt_tokens=100, cached_tokens=60))  # fmt: skip
    r = sdk.responses.create(model="gpt-5", input="Weather in Oslo?", tools=[TOOL],  # type: ignore[list-item]
                             reasoning={"effort": "low", "summary": "auto"},
                             include=["reasoning.encrypted_content"])  # fmt: skip
    assert [o.type for o in r.output] == ["reasoning", "function_call"] and r.status == "completed"
    reasoning, call = r.output
    assert reasoning.summary[0].text == "Use the tool." and reasoning.encrypted_content  # type: ignore[union-attr]
    assert call.name == "weather" and call.arguments == '{"city":"Oslo"}'  # type: ignore[union-attr]
    assert r.usage is not None and r.usage.input_tokens_details.cached_tokens == 60


def test_reasoning_is_summarised_and_encrypted_only_when_asked(sdk: openai.OpenAI) -> None:
    r = sdk.responses.create(model="gpt-5", input="hi", reasoning={"effort": "low"})
    assert r.output[0].type == "reasoning" and r.output[0].summary == []  # type: ignore[union-attr]
    assert r.output[0].encrypted_content is None  # type: ignore[union-attr]
    assert r.usage is not None and r.usage.output_tokens_details.reasoning_tokens > 0


def test_the_stream_assembles_into_the_same_response(sdk: openai.OpenAI, fake: FakeOpenAIResponsesThread) -> None:
    fake.script(Reply("Snow today.", reasoning="Let me think."))
    with sdk.responses.stream(model="gpt-5", input="Weather?", reasoning={"effort": "low", "summary": "auto"}) as s:
        events = list(s)
        final = s.get_final_response()
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert final.output_text == "Snow today." and final.output[0].summary[0].text == "Let me think."  # type: ignore[union-attr]


def test_a_truncated_answer_is_incomplete(sdk: openai.OpenAI) -> None:
    r = sdk.responses.create(model="gpt-5", input="one two three four five six seven eight", max_output_tokens=16)
    assert r.status == "completed"  # the echo fits
    r = sdk.responses.create(model="gpt-5", input=" ".join(["word"] * 40), max_output_tokens=16)
    assert r.status == "incomplete" and r.incomplete_details and r.incomplete_details.reason == "max_output_tokens"


@pytest.mark.parametrize(("stream", "kind"), [(Stream("a b c d", error_after=2), "response.failed"),
                                              (Stream("a b c d", error_after=2, error={"code": "rate_limit_exceeded",
                                               "message": "Slow down."}), "error")])  # fmt: skip
def test_mid_stream_failures(sdk: openai.OpenAI, fake: FakeOpenAIResponsesThread, stream: Stream, kind: str) -> None:
    fake.script(stream)
    events = list(sdk.responses.create(model="gpt-5", input="x", stream=True))
    assert events[-1].type == kind and events[-2].type == "response.output_text.delta"
    if kind == "response.failed":
        assert events[-1].response.error.code == "server_error"  # type: ignore[union-attr]
    else:
        assert events[-1].code == "rate_limit_exceeded"  # type: ignore[union-attr]
    assert [e.sequence_number for e in events] == list(range(len(events)))


@pytest.mark.parametrize(("step", "error"), [(Status(429), openai.RateLimitError),
                                             (Status(500), openai.InternalServerError)])  # fmt: skip
def test_errors_are_the_sdks_exceptions(
    sdk: openai.OpenAI, fake: FakeOpenAIResponsesThread, step: Status, error: type[Exception]
) -> None:
    fake.script(step)
    with pytest.raises(error):
        sdk.responses.create(model="gpt-5", input="x")


def test_what_openai_refuses(sdk: openai.OpenAI, fake: FakeOpenAIResponsesThread) -> None:
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=fake.base_url, api_key="sk-wrong", max_retries=0).responses.create(
            model="gpt-5", input="x")  # fmt: skip
    forged = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAAAforged"}
    with pytest.raises(openai.BadRequestError, match="could not be verified"):
        sdk.responses.create(model="gpt-5", input=[forged, {"role": "user", "content": "x"}])  # type: ignore[list-item]
    orphan = {"type": "function_call_output", "call_id": "call_9", "output": "x"}
    with pytest.raises(openai.BadRequestError, match="No tool call found"):
        sdk.responses.create(model="gpt-5", input=[{"role": "user", "content": "x"}, orphan])  # type: ignore[list-item]
    with pytest.raises(openai.BadRequestError, match="max_output_tokens"):
        sdk.responses.create(model="gpt-5", input="x", max_output_tokens=5)
