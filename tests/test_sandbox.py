"""The offline sandbox provider acts like a model an agent can be built against: tool calls whose
arguments validate, structured output that validates, signed reasoning, the same answer every time,
and the same answer streamed. Driven through the `openai` SDK against a gateway started with
sandbox=True."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import openai
import pytest

from omnirouter.providers.sandbox import SIGNING_KEY
from tests.gateway import Gateway
from tests.test_schema_example import SCHEMAS, assert_valid

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": SCHEMAS["weather tool"],
    },
}
CALENDAR = {
    "type": "function",
    "function": {
        "name": "create_event",
        "description": "Add an appointment to the calendar",
        "parameters": {
            "type": "object",
            "properties": {
                "title": {"type": "string", "minLength": 1},
                "day": {"type": "string", "format": "date"},
                "attendees": {"type": "array", "items": {"type": "string", "format": "email"}, "minItems": 1},
            },
            "required": ["title", "day", "attendees"],
            "additionalProperties": False,
        },
    },
}


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = Gateway(Path(tmp_path_factory.mktemp("sandbox")), sandbox=True).start()
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def client(sandbox: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=sandbox.api, api_key=sandbox.create_key()["key"], max_retries=0)


def ask(client: openai.OpenAI, text: str, **kw: Any) -> Any:
    return client.chat.completions.create(
        model=kw.pop("model", "sandbox/chat"), messages=[{"role": "user", "content": text}], **kw
    )


def streamed(client: openai.OpenAI, messages: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    """What a client assembles from the stream: content, reasoning, signatures, tool calls, finish."""
    out: dict[str, Any] = {"content": "", "reasoning": "", "signatures": [], "tool_calls": {}, "finish": None}
    for chunk in client.chat.completions.create(model="sandbox/chat", messages=messages, stream=True, **kw):
        for choice in chunk.choices:
            delta = choice.delta
            out["content"] += delta.content or ""
            out["reasoning"] += (delta.model_extra or {}).get("reasoning") or ""
            for detail in (delta.model_extra or {}).get("reasoning_details") or []:
                if detail.get("signature"):
                    out["signatures"].append(detail["signature"])
            for tc in delta.tool_calls or []:
                call = out["tool_calls"].setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
                call["id"] = tc.id or call["id"]
                call["name"] = (tc.function and tc.function.name) or call["name"]
                call["arguments"] += (tc.function and tc.function.arguments) or ""
            out["finish"] = choice.finish_reason or out["finish"]
        if chunk.usage is not None:
            out["usage"] = chunk.usage
    return out


def tool(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": "A test tool", "parameters": schema}}


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_a_forced_tool_call_has_arguments_that_validate(client: openai.OpenAI, name: str) -> None:
    schema = SCHEMAS[name]
    r = ask(client, "go", tools=[tool("do_it", schema)], tool_choice="required")
    assert r.choices[0].finish_reason == "tool_calls"
    (call,) = r.choices[0].message.tool_calls
    assert call.function.name == "do_it"
    assert_valid(schema, json.loads(call.function.arguments))


def test_auto_calls_the_tools_the_message_mentions_and_only_those(client: openai.OpenAI) -> None:
    r = ask(client, "What is the weather like in Lisbon?", tools=[CALENDAR, WEATHER])
    assert r.choices[0].finish_reason == "tool_calls"
    assert [c.function.name for c in r.choices[0].message.tool_calls] == ["get_weather"]
    assert r.choices[0].message.content is None

    both = ask(client, "Check the weather, then add an appointment for the picnic", tools=[CALENDAR, WEATHER])
    calls = both.choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["create_event", "get_weather"]
    assert len({c.id for c in calls}) == 2
    jsonschema.validate(json.loads(calls[0].function.arguments), CALENDAR["function"]["parameters"])

    one = ask(client, "weather and appointment", tools=[CALENDAR, WEATHER], parallel_tool_calls=False)
    assert len(one.choices[0].message.tool_calls) == 1

    plain = ask(client, "Tell me a joke", tools=[CALENDAR, WEATHER])
    assert plain.choices[0].finish_reason == "stop" and not plain.choices[0].message.tool_calls
    assert plain.choices[0].message.content

    none = ask(client, "What is the weather?", tools=[WEATHER], tool_choice="none")
    assert none.choices[0].finish_reason == "stop" and not none.choices[0].message.tool_calls


def test_a_named_tool_choice_calls_that_tool(client: openai.OpenAI) -> None:
    r = ask(
        client,
        "hello",
        tools=[WEATHER, CALENDAR],
        tool_choice={"type": "function", "function": {"name": "create_event"}},
    )
    (call,) = r.choices[0].message.tool_calls
    assert call.function.name == "create_event"
    jsonschema.validate(json.loads(call.function.arguments), CALENDAR["function"]["parameters"])


def test_a_tool_round_trip_ends_in_text_that_uses_the_result(client: openai.OpenAI) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "How is the weather in Oslo?"}]
    first = client.chat.completions.create(model="sandbox/chat", messages=messages, tools=[WEATHER])
    (call,) = first.choices[0].message.tool_calls
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 7, "sky": "overcast"}'},
    ]
    second = client.chat.completions.create(model="sandbox/chat", messages=messages, tools=[WEATHER])
    assert second.choices[0].finish_reason == "stop"
    text = second.choices[0].message.content
    assert "get_weather" in text and '"sky": "overcast"' in text


@pytest.mark.parametrize("name", ["strict structured output", "nested refs", "discriminated union", "arrays"])
def test_json_schema_output_validates(client: openai.OpenAI, name: str) -> None:
    schema = SCHEMAS[name]
    fmt = {"type": "json_schema", "json_schema": {"name": "out", "strict": True, "schema": schema}}
    r = ask(client, "Answer in JSON", response_format=fmt)
    assert r.choices[0].finish_reason == "stop"
    assert_valid(schema, json.loads(r.choices[0].message.content))


def test_json_object_output_is_an_object(client: openai.OpenAI) -> None:
    r = ask(client, "Answer in JSON", response_format={"type": "json_object"})
    assert isinstance(json.loads(r.choices[0].message.content), dict)


@pytest.mark.parametrize(
    "ask_for",
    [
        {"reasoning": {"effort": "high"}},
        {"reasoning": {"max_tokens": 5}},
        {"reasoning": {"enabled": True}},
        {"include_reasoning": True},
    ],
)
def test_reasoning_when_asked_is_signed_and_counted(client: openai.OpenAI, ask_for: dict[str, Any]) -> None:
    r = ask(client, "Think first, then answer", extra_body=ask_for)
    message = r.choices[0].message.model_extra or {}
    text = message["reasoning"]
    assert text
    (detail,) = message["reasoning_details"]
    assert detail["type"] == "reasoning.text" and detail["text"] == text
    expected = base64.b64encode(hmac.new(SIGNING_KEY, text.encode(), hashlib.sha256).digest()).decode()
    assert detail["signature"] == expected
    reasoning_tokens = r.usage.completion_tokens_details.reasoning_tokens
    assert reasoning_tokens > 0 and r.usage.completion_tokens > reasoning_tokens
    if "max_tokens" in ask_for.get("reasoning", {}):
        assert len(text.split()) <= 5


def test_no_reasoning_unless_asked_and_none_when_excluded(client: openai.OpenAI) -> None:
    plain = ask(client, "hi")
    assert "reasoning" not in (plain.choices[0].message.model_extra or {}) or not plain.choices[0].message.reasoning
    assert plain.usage.completion_tokens_details.reasoning_tokens == 0
    off = ask(client, "hi", extra_body={"reasoning": {"effort": "none"}})
    assert off.usage.completion_tokens_details.reasoning_tokens == 0
    hidden = ask(client, "hi", extra_body={"reasoning": {"effort": "low", "exclude": True}})
    assert not (hidden.choices[0].message.model_extra or {}).get("reasoning")
    assert hidden.usage.completion_tokens_details.reasoning_tokens > 0


def test_the_same_request_gets_the_same_answer(client: openai.OpenAI) -> None:
    kw: dict[str, Any] = {"tools": [WEATHER, CALENDAR], "extra_body": {"reasoning": {"effort": "medium"}}}
    a = ask(client, "weather in Rome and an appointment there", **kw)
    b = ask(client, "weather in Rome and an appointment there", **kw)
    assert a.choices[0].message.model_dump() == b.choices[0].message.model_dump()
    assert a.usage.completion_tokens == b.usage.completion_tokens
    other = ask(client, "weather in Paris and an appointment there", **kw)
    assert other.choices[0].message.tool_calls[0].id != a.choices[0].message.tool_calls[0].id


@pytest.mark.parametrize(
    "kw",
    [
        {"tools": [WEATHER, CALENDAR], "extra_body": {"reasoning": {"effort": "high"}}},
        {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMAS["arrays"]}}},
        {"extra_body": {"include_reasoning": True}},
        {"max_tokens": 4},
    ],
    ids=["tools+reasoning", "json_schema", "text+reasoning", "cut"],
)
def test_streaming_assembles_to_the_non_streamed_answer(client: openai.OpenAI, kw: dict[str, Any]) -> None:
    messages = [{"role": "user", "content": "What's the weather? Then book an appointment."}]
    whole = client.chat.completions.create(model="sandbox/chat", messages=messages, **kw)
    parts = streamed(client, messages, **kw)
    message = whole.choices[0].message
    assert parts["content"] == (message.content or "")
    assert parts["reasoning"] == ((message.model_extra or {}).get("reasoning") or "")
    details = (message.model_extra or {}).get("reasoning_details") or []
    assert parts["signatures"] == [d["signature"] for d in details]
    calls = [parts["tool_calls"][i] for i in sorted(parts["tool_calls"])]
    assert calls == [
        {"id": c.id, "name": c.function.name, "arguments": c.function.arguments} for c in message.tool_calls or []
    ]
    assert parts["finish"] == whole.choices[0].finish_reason
    assert parts["usage"].completion_tokens == whole.usage.completion_tokens
    assert parts["usage"].prompt_tokens == whole.usage.prompt_tokens


def test_the_echo_model_still_echoes(client: openai.OpenAI) -> None:
    r = ask(client, "ping pong", model="sandbox/echo")
    assert r.choices[0].message.content == "You said: ping pong"
    cut = ask(client, "one two three four", model="sandbox/echo", max_tokens=3)
    assert cut.choices[0].message.content == "You said: one" and cut.choices[0].finish_reason == "length"


def test_a_tool_choice_naming_an_unknown_tool_is_refused(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        ask(client, "hi", tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "nope"}})


# -- every client format reaches the same sandbox
def test_messages_clients_get_a_signed_thinking_block_and_a_valid_tool_use(sandbox: Gateway, client: openai.OpenAI):
    import anthropic

    claude = anthropic.Anthropic(base_url=sandbox.url + "/api", api_key=client.api_key, max_retries=0)
    schema = CALENDAR["function"]["parameters"]
    r = claude.messages.create(
        model="sandbox/chat",
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        tools=[{"name": "create_event", "description": "Add an appointment to the calendar", "input_schema": schema}],
        messages=[{"role": "user", "content": "Put the appointment in my calendar"}],
    )
    assert r.stop_reason == "tool_use"
    thinking = next(b for b in r.content if b.type == "thinking")
    expected = base64.b64encode(hmac.new(SIGNING_KEY, thinking.thinking.encode(), hashlib.sha256).digest()).decode()
    assert thinking.signature == expected
    tool_use = next(b for b in r.content if b.type == "tool_use")
    jsonschema.validate(tool_use.input, schema)
    with claude.messages.stream(
        model="sandbox/chat",
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        tools=[{"name": "create_event", "description": "Add an appointment to the calendar", "input_schema": schema}],
        messages=[{"role": "user", "content": "Put the appointment in my calendar"}],
    ) as stream:
        final = stream.get_final_message()
    assert [b.model_dump() for b in final.content] == [b.model_dump() for b in r.content]
    # The turn goes back with its signed thinking, and the tool's result is used.
    again = claude.messages.create(
        model="sandbox/chat",
        max_tokens=2048,
        thinking={"type": "enabled", "budget_tokens": 1024},
        tools=[{"name": "create_event", "description": "Add an appointment", "input_schema": schema}],
        messages=[
            {"role": "user", "content": "Put the appointment in my calendar"},
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in r.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "booked"}]},
        ],
    )
    assert again.stop_reason == "end_turn"
    assert "booked" in next(b for b in again.content if b.type == "text").text


def test_responses_clients_get_valid_function_calls_and_structured_text(client: openai.OpenAI):
    schema = WEATHER["function"]["parameters"]
    r = client.responses.create(
        model="sandbox/chat",
        input="What is the weather in Lima?",
        tools=[{"type": "function", "name": "get_weather", "description": "Current weather", "parameters": schema}],
    )
    (call,) = [item for item in r.output if item.type == "function_call"]
    assert call.name == "get_weather"
    jsonschema.validate(json.loads(call.arguments), schema)
    out_schema = SCHEMAS["strict structured output"]
    text = client.responses.create(
        model="sandbox/chat",
        input="Answer in JSON",
        text={"format": {"type": "json_schema", "name": "answer", "schema": out_schema, "strict": True}},
    )
    assert_valid(out_schema, json.loads(text.output_text))


def test_text_completion_clients_get_the_echo(client: openai.OpenAI):
    r = client.completions.create(model="sandbox/echo", prompt="ping", echo=True)
    assert r.choices[0].text == "pingYou said: ping"
