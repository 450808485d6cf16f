"""Server tools (openrouter:datetime, openrouter:web_search, openrouter:web_fetch) run by the gateway
in a loop with the model, in the three client formats, streamed and not, billed per step."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import anthropic
import openai
import pytest
from openrouter import OpenRouter

from omnirouter.testing import Reply
from tests.conftest import ALPHA_PRICES
from tests.gateway import generation, key_usage

ASK = [{"role": "user", "content": "what time is it?"}]
DATETIME = {"type": "openrouter:datetime"}
WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}


def price(prompt: int, completion: int) -> Decimal:
    return prompt * Decimal(ALPHA_PRICES["prompt"]) + completion * Decimal(ALPHA_PRICES["completion"])


def calls_datetime(**tokens: int) -> Reply:
    return Reply("", tool_calls=[{"id": "call_dt1", "name": "datetime", "arguments": {}}],
                 finish_reason="tool_calls", **tokens)  # fmt: skip


def _tool_result(request: dict) -> dict:
    """The datetime result the gateway gave the model, from the second step's request."""
    tool_messages = [m for m in request["messages"] if m["role"] == "tool"]
    assert len(tool_messages) == 1
    return json.loads(tool_messages[0]["content"])


def test_chat_datetime_loop_non_streaming(gateway, api_key, fake_a):
    fake_a.fake.script(calls_datetime(prompt_tokens=20, completion_tokens=5),
                       Reply("It is noon.", prompt_tokens=40, completion_tokens=4))  # fmt: skip
    client = openai.OpenAI(base_url=gateway.api, api_key=api_key)
    before = datetime.now(UTC)
    raw = client.chat.completions.with_raw_response.create(model="test/alpha", messages=ASK, tools=[DATETIME])
    completion = raw.parse()
    assert completion.choices[0].message.content == "It is noon."
    assert completion.choices[0].finish_reason == "stop"
    assert not completion.choices[0].message.tool_calls
    # The model saw a function, then the tool's answer after its own call.
    first, second = fake_a.fake.requests[-2].json, fake_a.fake.requests[-1].json
    assert [t["function"]["name"] for t in first["tools"]] == ["datetime"]
    assert second["messages"][-2]["tool_calls"][0]["id"] == "call_dt1"
    result = _tool_result(second)
    assert result["timezone"] == "UTC"
    stamp = datetime.fromisoformat(result["datetime"].replace("Z", "+00:00"))
    assert before - timedelta(seconds=1) <= stamp <= datetime.now(UTC)
    body = json.loads(raw.http_response.text, parse_float=Decimal)
    usage = body["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (60, 9)
    assert usage["cost"] == price(20, 5) + price(40, 4)
    assert usage["server_tool_use_details"]["tool_calls_executed"] == 1
    gen = generation(gateway, api_key, completion.id)
    assert len(gen["provider_responses"]) == 2
    assert gen["total_cost"] == price(20, 5) + price(40, 4)
    assert (gen["tokens_prompt"], gen["tokens_completion"]) == (60, 9)
    assert key_usage(gateway, api_key) == price(20, 5) + price(40, 4)


def test_chat_datetime_loop_streaming(gateway, api_key, fake_a):
    fake_a.fake.script(Reply("Let me check. ", tool_calls=[{"id": "call_dt2", "name": "datetime", "arguments": {}}],
                             finish_reason="tool_calls", prompt_tokens=20, completion_tokens=6),
                       Reply("It is noon.", prompt_tokens=40, completion_tokens=4))  # fmt: skip
    client = openai.OpenAI(base_url=gateway.api, api_key=api_key)
    chunks = list(client.chat.completions.create(model="test/alpha", messages=ASK, tools=[DATETIME], stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Let me check. It is noon."
    assert not any(c.choices and c.choices[0].delta.tool_calls for c in chunks)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1
    usage = usage_chunks[0].usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (60, 10)
    extra = usage.model_extra or {}
    assert extra["server_tool_use_details"]["tool_calls_executed"] == 1
    assert Decimal(str(extra["cost"])) == price(20, 6) + price(40, 4)
    assert _tool_result(fake_a.fake.requests[-1].json)["timezone"] == "UTC"
    gen = generation(gateway, api_key, chunks[0].id)
    assert len(gen["provider_responses"]) == 2
    assert gen["total_cost"] == price(20, 6) + price(40, 4)
    assert key_usage(gateway, api_key) == price(20, 6) + price(40, 4)


@pytest.mark.parametrize("stream", [False, True])
def test_responses_datetime_item(gateway, api_key, fake_a, stream):
    fake_a.fake.script(calls_datetime(prompt_tokens=20, completion_tokens=5),
                       Reply("It is noon.", prompt_tokens=40, completion_tokens=4))  # fmt: skip
    tools = [{"type": "openrouter:datetime", "parameters": {"timezone": "Asia/Tokyo"}}]
    client = OpenRouter(api_key=api_key, server_url=gateway.api)
    if stream:
        events = list(client.responses.send(model="test/alpha", input="what time is it?", tools=tools, stream=True))
        response = events[-1].response
    else:
        response = client.responses.send(model="test/alpha", input="what time is it?", tools=tools)
    kinds = [item.type for item in response.output]
    assert kinds == ["openrouter:datetime", "message"]
    item = response.output[0]
    assert item.timezone == "Asia/Tokyo"
    stamp = datetime.fromisoformat(item.datetime_)
    assert stamp.utcoffset() == datetime.now(ZoneInfo("Asia/Tokyo")).utcoffset()
    assert response.output[1].content[0].text == "It is noon."
    assert (response.usage.input_tokens, response.usage.output_tokens) == (60, 9)
    assert response.usage.server_tool_use_details.tool_calls_executed == 1
    assert Decimal(str(response.usage.cost)) == price(20, 5) + price(40, 4)
    assert _tool_result(fake_a.fake.requests[-1].json)["timezone"] == "Asia/Tokyo"


@pytest.mark.parametrize("stream", [False, True])
def test_messages_datetime_usage(gateway, api_key, fake_a, stream):
    fake_a.fake.script(calls_datetime(prompt_tokens=20, completion_tokens=5),
                       Reply("It is noon.", prompt_tokens=40, completion_tokens=4))  # fmt: skip
    client = anthropic.Anthropic(base_url=gateway.url + "/api", auth_token=api_key, max_retries=0)
    kwargs = {"model": "test/alpha", "max_tokens": 100, "messages": ASK, "tools": [DATETIME]}
    if stream:
        with client.messages.stream(**kwargs) as s:
            message = s.get_final_message()
    else:
        message = client.messages.create(**kwargs)
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "It is noon."
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (60, 9)
    assert message.usage.server_tool_use.web_search_requests == 0
    gen = generation(gateway, api_key, message.id)
    assert len(gen["provider_responses"]) == 2 and gen["total_cost"] == price(20, 5) + price(40, 4)


def test_a_client_function_ends_the_loop(gateway, api_key, fake_a):
    fake_a.fake.script(calls_datetime(prompt_tokens=20, completion_tokens=5),
                       Reply("", tool_calls=[{"id": "call_w", "name": "get_weather", "arguments": {"city": "Paris"}}],
                             finish_reason="tool_calls", prompt_tokens=40, completion_tokens=4))  # fmt: skip
    client = openai.OpenAI(base_url=gateway.api, api_key=api_key)
    res = client.chat.completions.create(model="test/alpha", messages=ASK, tools=[DATETIME, WEATHER])
    assert res.choices[0].finish_reason == "tool_calls"
    assert [c.function.name for c in res.choices[0].message.tool_calls] == ["get_weather"]
    assert res.usage.model_extra["server_tool_use_details"]["tool_calls_executed"] == 1


@pytest.mark.parametrize(
    "limits", [{"max_tool_calls": 1}, {"stop_server_tools_when": [{"type": "step_count_is", "step_count": 1}]}]
)
def test_the_budget_ends_with_a_turn_without_tools(gateway, api_key, fake_a, limits):
    fake_a.fake.script(calls_datetime(prompt_tokens=20, completion_tokens=5),
                       Reply("Done.", prompt_tokens=40, completion_tokens=4))  # fmt: skip
    with gateway.client(api_key) as c:
        r = c.post("/chat/completions", json={"model": "test/alpha", "messages": ASK, "tools": [DATETIME], **limits})
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "Done."
    last = fake_a.fake.requests[-1].json
    assert last["tool_choice"] == "none"  # the last turn may not call a tool
    assert "max_tool_calls" not in last and "stop_server_tools_when" not in last


def test_bad_server_tool_configuration_is_a_400(gateway, api_key):
    with gateway.client(api_key) as c:
        mars = [{"type": "openrouter:datetime", "parameters": {"timezone": "Mars/Olympus"}}]
        bad_zone = c.post("/chat/completions", json={"model": "test/alpha", "messages": ASK, "tools": mars})
        unknown = c.post("/chat/completions", json={"model": "test/alpha", "messages": ASK,
                         "tools": [{"type": "openrouter:teleport"}]})  # fmt: skip
        bad_stop = c.post("/chat/completions", json={"model": "test/alpha", "messages": ASK, "tools": [DATETIME],
                          "stop_server_tools_when": [{"type": "when_bored"}]})  # fmt: skip
    assert bad_zone.status_code == 400 and "Mars/Olympus" in bad_zone.json()["error"]["message"]
    assert unknown.status_code == 400 and "openrouter:teleport" in unknown.json()["error"]["message"]
    assert bad_stop.status_code == 400
