"""POST /responses through the official `openai` SDK (`client.responses`), against a gateway whose
upstream is an OpenAI-compatible chat fake: Responses in, chat out, and back."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import httpx
import openai
import pydantic
import pytest

from omnirouter.testing import Reply, Status, Stream
from tests.conftest import ALPHA_PRICES, BETA_PRICES
from tests.gateway import Gateway
from tests.spec_validation import require_spec, validate_response, validate_sse
from tests.test_openapi import SSE, conforms
from tests.test_openapi import events as sse_events

OP = "createResponses"
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def sdk(gateway: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.api, api_key=key, max_retries=0)


def exact(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


def generation(gateway: Gateway, key: str, gen_id: str) -> dict[str, Any]:
    with gateway.client(key) as c:
        for _ in range(100):  # written as the answer goes out; served from memory at once
            r = c.get("/generation", params={"id": gen_id})
            if r.status_code != 404:
                break
            time.sleep(0.02)
    assert r.status_code == 200, r.text
    return exact(r.text)["data"]


def key_usage(gateway: Gateway, key: str) -> Decimal:
    with gateway.client(key) as c:
        return exact(c.get("/key").text)["data"]["usage"]


def raw_stream(gateway: Gateway, key: str, body: dict[str, Any]) -> tuple[httpx.Response, str]:
    with gateway.client(key) as c, c.stream("POST", "/responses", json={**body, "stream": True}) as r:
        return r, r.read().decode()


def test_plain_text_with_usage_and_cost(gateway, api_key, fake_a):
    fake_a.fake.script(Reply("Bonjour!", prompt_tokens=12, completion_tokens=4))
    raw = sdk(gateway, api_key).responses.with_raw_response.create(model="test/alpha", input="hello there")
    response = raw.parse()
    gen_id = raw.headers["x-generation-id"]
    assert response.id == "resp_" + gen_id.removeprefix("gen-")
    assert (response.object, response.status, response.model) == ("response", "completed", "test/alpha")
    assert response.output_text == "Bonjour!"
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens) == (12, 4, 16)
    body = exact(raw.http_response.text)
    cost = 12 * Decimal(ALPHA_PRICES["prompt"]) + 4 * Decimal(ALPHA_PRICES["completion"])
    assert body["usage"]["cost"] == cost
    require_spec()
    validate_response(OP, raw.http_response.json())
    sent = fake_a.fake.last_request.json
    assert sent["model"] == "alpha-upstream"
    assert sent["messages"] == [{"role": "user", "content": "hello there"}]
    gen = generation(gateway, api_key, gen_id)
    assert gen["total_cost"] == cost == key_usage(gateway, api_key)


def test_cached_tokens_and_cost_agree_with_generation_and_key(gateway, api_key, fake_b):
    fake_b.fake.script(Reply("cached", prompt_tokens=1000, completion_tokens=10, cached_tokens=600))
    raw = sdk(gateway, api_key).responses.with_raw_response.create(model="test/beta", input="hi")
    body = exact(raw.http_response.text)
    usage = body["usage"]
    assert (usage["input_tokens"], usage["input_tokens_details"]["cached_tokens"], usage["output_tokens"]) == (
        1000, 600, 10)  # fmt: skip
    expected = (
        400 * Decimal(BETA_PRICES["prompt"]) + 600 * Decimal(BETA_PRICES["input_cache_read"])
        + 10 * Decimal(BETA_PRICES["completion"]) + Decimal(BETA_PRICES["request"])
    )  # fmt: skip
    assert usage["cost"] == expected
    gen = generation(gateway, api_key, raw.headers["x-generation-id"])
    assert gen["total_cost"] == usage["cost"] == key_usage(gateway, api_key)
    assert (gen["native_tokens_prompt"], gen["native_tokens_cached"]) == (1000, 600)


def test_instructions_and_multi_turn_items(gateway, api_key, fake_a):
    response = sdk(gateway, api_key).responses.create(
        model="test/alpha",
        instructions="You are terse.",
        input=[
            {"role": "user", "content": "first"},
            {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
             "content": [{"type": "output_text", "text": "one", "annotations": []}]},
            {"role": "user", "content": [{"type": "input_text", "text": "second"}]},
        ],
        temperature=0.3,
        max_output_tokens=64,
        metadata={"ticket": "7"},
    )  # fmt: skip
    sent = fake_a.fake.last_request.json
    assert sent["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "one"},
        {"role": "user", "content": [{"type": "text", "text": "second"}]},
    ]
    assert (sent["temperature"], sent["max_tokens"]) == (0.3, 64)
    assert (response.instructions, response.temperature, response.max_output_tokens) == ("You are terse.", 0.3, 64)
    assert response.metadata == {"ticket": "7"}


def test_function_tool_round_trip(gateway, api_key, fake_a):
    client = sdk(gateway, api_key)
    fake_a.fake.script(Reply("", tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}]))
    first = client.responses.create(model="test/alpha", input="Weather in Paris?", tools=[WEATHER],
                                    tool_choice="auto")  # fmt: skip
    sent = fake_a.fake.last_request.json
    assert sent["tools"] == [{"type": "function", "function": {k: WEATHER[k] for k in ("name", "description",
                                                                                       "parameters")}}]  # fmt: skip
    assert sent["tool_choice"] == "auto"
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}
    assert first.tools[0].name == "get_weather"

    fake_a.fake.script(Reply("It is sunny in Paris."))
    second = client.responses.create(
        model="test/alpha",
        tools=[WEATHER],
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            *[item.model_dump(exclude_none=True) for item in first.output],
            {"type": "function_call_output", "call_id": call.call_id, "output": '{"sky": "sunny"}'},
        ],
    )
    assert second.output_text == "It is sunny in Paris."
    messages = fake_a.fake.last_request.json["messages"]
    assert messages[1]["role"] == "assistant"
    assert messages[1]["tool_calls"][0]["id"] == call.call_id
    assert messages[1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert messages[2] == {"role": "tool", "tool_call_id": call.call_id, "content": '{"sky": "sunny"}'}


class City(pydantic.BaseModel):
    name: str
    population: int


def test_json_schema_output(gateway, api_key, fake_b):
    fake_b.fake.script(Reply('{"name": "Paris", "population": 2100000}'))
    parsed = sdk(gateway, api_key).responses.parse(model="test/beta", input="A big city?", text_format=City)
    assert parsed.output_parsed == City(name="Paris", population=2100000)
    rf = fake_b.fake.last_request.json["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["name"] == "City"
    assert rf["json_schema"]["schema"]["properties"]["population"] == {"title": "Population", "type": "integer"}
    assert rf["json_schema"]["strict"] is True


def test_reasoning(gateway, api_key, fake_a):
    fake_a.fake.script(Reply("42", reasoning="Six times seven.", reasoning_tokens=5, completion_tokens=7))
    response = sdk(gateway, api_key).responses.create(
        model="test/reasoner", input="6*7?", reasoning={"effort": "low", "summary": "auto"}
    )
    assert fake_a.fake.last_request.json["reasoning"] == {"effort": "low", "summary": "auto"}
    reasoning, message = response.output
    assert reasoning.type == "reasoning" and reasoning.content[0].text == "Six times seven."
    assert message.content[0].text == "42"
    assert response.usage.output_tokens_details.reasoning_tokens == 5
    assert response.reasoning.effort == "low"


def test_stream_events_in_order_with_usage(gateway, api_key, fake_a):
    fake_a.fake.script(Stream("Hello there friend", prompt_tokens=9, completion_tokens=3))
    r, text = raw_stream(gateway, api_key, {"model": "test/alpha", "input": "hi"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    require_spec()
    events = [e["data"] for e in validate_sse(OP, text)]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    kinds = [e["type"] for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added"]  # fmt: skip
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]  # fmt: skip
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    final = events[-1]["response"]
    assert deltas == final["output"][0]["content"][0]["text"] == "Hello there friend"
    cost = 9 * Decimal(ALPHA_PRICES["prompt"]) + 3 * Decimal(ALPHA_PRICES["completion"])
    assert exact(json.dumps(final["usage"]))["cost"] == cost
    gen = generation(gateway, api_key, r.headers["x-generation-id"])
    assert gen["total_cost"] == cost == key_usage(gateway, api_key)
    assert gen["streamed"] is True


def test_sdk_stream_helper_with_a_tool_call(gateway, api_key, fake_a):
    fake_a.fake.script(Stream("", tool_calls=[{"name": "get_weather", "arguments": {"city": "Rome"}}]))
    with sdk(gateway, api_key).responses.stream(model="test/alpha", input="Rome?", tools=[WEATHER]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds and kinds[-1] == "response.completed"
    [call] = final.output
    assert call.type == "function_call" and json.loads(call.arguments) == {"city": "Rome"}


def test_sdk_iterates_a_plain_stream(gateway, api_key, fake_a):
    fake_a.fake.script(Stream("one two three"))
    events = list(sdk(gateway, api_key).responses.create(model="test/alpha", input="count", stream=True))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert events[-1].response.output_text == "one two three"


def test_error_after_first_token_is_response_failed(gateway, api_key, fake_a):
    fake_a.fake.script(Stream("partial answer here", error_after=1))
    r, text = raw_stream(gateway, api_key, {"model": "test/alpha", "input": "hi"})
    assert r.status_code == 200
    require_spec()
    events = [e["data"] for e in validate_sse(OP, text)]
    failed = events[-1]
    assert failed["type"] == "response.failed"
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"]["code"] in ("server_error", "rate_limit_exceeded", "invalid_prompt")
    assert "error_type" in failed["response"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"model": "test/alpha", "input": []}, "`input` is required"),
        ({"model": "test/alpha", "input": "x", "previous_response_id": "resp_1"}, "previous_response_id"),
        ({"model": "test/alpha", "input": "x", "store": True}, "store: true"),
        ({"model": "test/alpha", "input": [{"type": "function_call_output", "call_id": "c9", "output": "x"}]},
         "no function_call item"),
        ({"model": "test/alpha", "input": [{"type": "computer_call", "id": "x"}]}, "input[0] has type"),
    ],
)  # fmt: skip
def test_bad_input_is_a_400_in_openrouters_envelope(gateway, api_key, fake_a, body, says):
    with gateway.client(api_key) as c:
        r = c.post("/responses", json=body)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == 400 and says in r.json()["error"]["message"]
    require_spec()
    validate_response(OP, r.json(), status="400")
    assert fake_a.fake.requests == []
    with pytest.raises(openai.BadRequestError):
        sdk(gateway, api_key).responses.create(**body)


def test_unauthenticated_is_401(gateway):
    with httpx.Client(base_url=gateway.api) as c:
        r = c.post("/responses", json={"model": "test/alpha", "input": "x"})
    assert r.status_code == 401 and r.json()["error"]["code"] == 401
    require_spec()
    validate_response(OP, r.json(), status="401")


def test_upstream_error_before_first_token_keeps_its_status(gateway, api_key, fake_a):
    fake_a.fake.script(Status(429, retry_after=1))
    with pytest.raises(openai.RateLimitError) as info:
        sdk(gateway, api_key).responses.create(model="test/alpha", input="x", stream=True)
    assert info.value.status_code == 429
    assert info.value.body["code"] == 429


def test_models_fallback(gateway, api_key, fake_a, fake_b):
    fake_a.fake.script(Status(500))
    fake_b.fake.script(Reply("from beta"))
    response = sdk(gateway, api_key).responses.create(
        model="test/alpha", input="x", extra_body={"models": ["test/alpha", "test/beta"]}
    )
    assert response.output_text == "from beta" and response.model == "test/beta"


def test_streamed_reasoning(gateway, api_key, fake_a):
    fake_a.fake.script(Stream("42", reasoning="Six times seven."))
    _, text = raw_stream(gateway, api_key, {"model": "test/reasoner", "input": "6*7?", "reasoning": {"effort": "low"}})
    require_spec()
    events = [e["data"] for e in validate_sse(OP, text)]
    reasoning = "".join(e["delta"] for e in events if e["type"] == "response.reasoning_text.delta")
    assert reasoning == "Six times seven."
    final = events[-1]["response"]
    assert [i["type"] for i in final["output"]] == ["reasoning", "message"]
    assert final["output"][0]["content"] == [{"type": "reasoning_text", "text": "Six times seven."}]


def test_answers_conform_to_the_servers_own_document(gateway, api_key, fake_a):
    fake_a.fake.script(Reply("", tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}]))
    with gateway.client(api_key) as c:
        r = c.post("/responses", json={"model": "test/alpha", "input": "Oslo?", "tools": [WEATHER]})
    assert r.status_code == 200
    conforms("/responses", "post", 200, r.json(), strict=False)
    fake_a.fake.script(Stream("fine", reasoning="hm"))
    _, text = raw_stream(gateway, api_key, {"model": "test/alpha", "input": "x"})
    for event in sse_events(text):
        conforms("/responses", "post", 200, event, media=SSE, strict=False)
    with gateway.client(api_key) as c:
        r = c.post("/responses", json={"model": "test/alpha", "input": []})
    conforms("/responses", "post", 400, r.json())


def test_router_metadata_on_request(gateway, api_key, fake_a):
    headers = {"X-OpenRouter-Metadata": "enabled"}
    fake_a.fake.script(Reply("hi"))
    with gateway.client(api_key) as c:
        r = c.post("/responses", json={"model": "test/alpha", "input": "x"}, headers=headers)
    assert r.json()["openrouter_metadata"]["requested"] == "test/alpha"
    require_spec()
    validate_response(OP, r.json())
    fake_a.fake.script(Stream("hi"))
    with (
        gateway.client(api_key) as c,
        c.stream(
            "POST", "/responses", json={"model": "test/alpha", "input": "x", "stream": True}, headers=headers
        ) as s,
    ):
        text = s.read().decode()
    final = validate_sse(OP, text)[-1]["data"]
    assert (
        final["type"] == "response.completed" and final["response"]["openrouter_metadata"]["requested"] == "test/alpha"
    )
