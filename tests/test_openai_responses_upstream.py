"""An `api: openai-responses` provider (OpenAI's Responses API upstream), through the gateway.

Chat and Messages clients are translated to it; a /responses client passes through: its request
reaches the upstream as sent (fields the gateway does not know included), the upstream's events are
relayed with their sequence numbers, and only the generation's id, model and cost are the gateway's.
A fallback to a chat-completions endpoint still translates.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import httpx
import openai
import pytest

from omnirouter.testing import (
    FakeOpenAI,
    FakeOpenAIResponses,
    FakeOpenAIResponsesThread,
    FakeOpenAIThread,
    Reply,
    Status,
    Stream,
)
from tests.gateway import Gateway
from tests.spec_validation import require_spec, validate_response, validate_sse

KEY = "sk-resp-test-0123456789"
PRICES = {"prompt": "0.00000125", "completion": "0.00001", "input_cache_read": "0.000000125",
          "internal_reasoning": "0.00001"}  # fmt: skip
WEATHER = {"type": "function", "function": {"name": "weather", "description": "Weather for a city", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}  # fmt: skip
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
          "additionalProperties": False}  # fmt: skip


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAIResponsesThread]:
    handle = FakeOpenAIResponses.run_in_thread(api_key=KEY)
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def backup() -> Iterator[FakeOpenAIThread]:
    handle = FakeOpenAI.run_in_thread()
    yield handle
    handle.stop()


@pytest.fixture(autouse=True)
def _fresh(fake: FakeOpenAIResponsesThread, backup: FakeOpenAIThread) -> None:
    fake.reset()
    backup.reset()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, fake: FakeOpenAIResponsesThread,
            backup: FakeOpenAIThread) -> Iterator[Gateway]:  # fmt: skip
    config = {
        "providers": [
            {"slug": "oai", "name": "OpenAI Responses", "api": "openai-responses", "base_url": fake.base_url,
             "api_key": KEY},
            {"slug": "backup", "name": "Backup", "api": "openai", "base_url": backup.base_url},
        ],
        "models": [{"id": "test/gpt", "name": "GPT", "context_length": 400000,
                    "endpoints": [{"provider": "oai", "upstream_model": "gpt-5", "pricing": PRICES}]},
                   {"id": "test/backup", "name": "Backup", "context_length": 200000,
                    "endpoints": [{"provider": "backup", "upstream_model": "gpt-backup", "pricing": PRICES}]}],
    }  # fmt: skip
    gw = Gateway(tmp_path_factory.mktemp("responses-upstream"), config).start()
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def key(gateway: Gateway) -> str:
    return gateway.create_key()["key"]


@pytest.fixture(scope="module")
def client(gateway: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/api/v1", api_key=key, max_retries=0)


def generation(gateway: Gateway, key: str, gen_id: str) -> dict[str, Any]:
    gateway.flush()
    r = httpx.get(f"{gateway.url}/api/v1/generation", params={"id": gen_id}, headers={"Authorization": f"Bearer {key}"})
    r.raise_for_status()
    return r.json()["data"]


def expected_cost(prompt: int, cached: int, completion: int) -> Decimal:
    price = {k: Decimal(v) for k, v in PRICES.items()}
    return (prompt - cached) * price["prompt"] + cached * price["input_cache_read"] + completion * price["completion"]


# -- chat clients, translated


def test_chat_text_and_usage_with_cost(client: openai.OpenAI, fake: FakeOpenAIResponsesThread, gateway: Gateway,
                                       key: str) -> None:  # fmt: skip
    fake.script(Reply("Bright and cold.", prompt_tokens=120, cached_tokens=100, completion_tokens=7))
    answer = client.chat.completions.create(
        model="test/gpt", max_tokens=300, user="alice", temperature=0.5,
        messages=[{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Oslo weather?"}],
    )  # fmt: skip
    sent = fake.requests[-1]
    assert sent.path == "/v1/responses" and sent.headers["Authorization"] == f"Bearer {KEY}"
    body = sent.json
    assert body["model"] == "gpt-5" and body["instructions"] == "Be terse." and body["store"] is False
    assert body["input"] == [{"type": "message", "role": "user", "content": "Oslo weather?"}]
    assert body["max_output_tokens"] == 300 and body["temperature"] == 0.5
    assert body["user"] != "alice" and "messages" not in body
    assert answer.choices[0].message.content == "Bright and cold." and answer.choices[0].finish_reason == "stop"
    usage = answer.usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (120, 7)
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 100
    gen = generation(gateway, key, answer.id)
    cost = Decimal(str(usage.model_extra["cost"]))
    assert cost == expected_cost(120, 100, 7) == Decimal(str(gen["total_cost"]))
    assert gen["provider_name"] == "OpenAI Responses" and gen["tokens_prompt"] == 120


def test_chat_tools_round_trip(client: openai.OpenAI, fake: FakeOpenAIResponsesThread) -> None:
    fake.script(Reply("", tool_calls=[{"id": "call_w1", "name": "weather", "arguments": {"city": "Oslo"}}]),
                Reply("It is -3 C in Oslo."))  # fmt: skip
    ask = [{"role": "user", "content": "Weather in Oslo?"}]
    first = client.chat.completions.create(model="test/gpt", messages=ask, tools=[WEATHER],  # type: ignore[list-item]
                                           tool_choice="required")  # fmt: skip
    sent = fake.requests[-1].json
    assert sent["tools"] == [{"type": "function", "name": "weather", "description": "Weather for a city",
                              "parameters": WEATHER["function"]["parameters"], "strict": False}]  # fmt: skip
    assert sent["tool_choice"] == "required"
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert first.choices[0].finish_reason == "tool_calls"
    assert (call.id, call.function.name) == ("call_w1", "weather")
    assert json.loads(call.function.arguments) == {"city": "Oslo"}
    turn = [*ask, first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": "call_w1", "content": "-3 C"}]  # fmt: skip
    second = client.chat.completions.create(model="test/gpt", messages=turn, tools=[WEATHER])  # type: ignore[arg-type,list-item]
    assert second.choices[0].message.content == "It is -3 C in Oslo."
    items = fake.requests[-1].json["input"]
    assert [i["type"] for i in items] == ["message", "function_call", "function_call_output"]
    assert items[1]["call_id"] == items[2]["call_id"] == "call_w1" and items[2]["output"] == "-3 C"


def test_chat_json_schema_is_text_format(client: openai.OpenAI, fake: FakeOpenAIResponsesThread) -> None:
    fake.script(Reply('{"city": "Oslo"}'))
    answer = client.chat.completions.create(
        model="test/gpt", messages=[{"role": "user", "content": "A city?"}],
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": SCHEMA, "strict": True}},
    )  # fmt: skip
    assert fake.requests[-1].json["text"] == {"format": {"type": "json_schema", "name": "city", "schema": SCHEMA,
                                                         "strict": True}}  # fmt: skip
    assert json.loads(answer.choices[0].message.content or "") == {"city": "Oslo"}


def test_chat_reasoning_comes_back_encrypted_and_goes_back(client: openai.OpenAI,
                                                           fake: FakeOpenAIResponsesThread) -> None:  # fmt: skip
    fake.script(Reply("Two.", reasoning="One plus one is two."), Reply("Four."))
    ask = [{"role": "user", "content": "1+1?"}]
    first = client.chat.completions.create(model="test/gpt", messages=ask,
                                           extra_body={"reasoning": {"effort": "high"}})  # fmt: skip
    sent = fake.requests[-1].json
    assert sent["reasoning"] == {"effort": "high", "summary": "auto"}
    assert sent["include"] == ["reasoning.encrypted_content"]
    message = first.choices[0].message.model_dump()
    assert message["reasoning"] == "One plus one is two."
    details = message["reasoning_details"]
    assert [d["type"] for d in details] == ["reasoning.summary", "reasoning.encrypted"]
    assert all(d["format"] == "openai-responses-v1" and d["id"].startswith("rs_") for d in details)
    assert first.usage is not None and first.usage.completion_tokens_details.reasoning_tokens > 0  # type: ignore[union-attr]
    turn = [*ask, {"role": "assistant", "content": "Two.", "reasoning_details": details},
            {"role": "user", "content": "2+2?"}]  # fmt: skip
    client.chat.completions.create(model="test/gpt", messages=turn)  # type: ignore[arg-type]
    items = fake.requests[-1].json["input"]  # the fake refuses encrypted content it did not issue
    assert [i["type"] for i in items] == ["message", "reasoning", "message", "message"]
    assert items[1]["id"] == details[0]["id"] and items[1]["encrypted_content"] == details[1]["data"]


def test_chat_stream_with_reasoning_tool_call_and_cost(client: openai.OpenAI, fake: FakeOpenAIResponsesThread,
                                                       gateway: Gateway, key: str) -> None:  # fmt: skip
    fake.script(Stream("Checking.", reasoning="Need the weather tool.", prompt_tokens=50,
                       tool_calls=[{"id": "call_s1", "name": "weather", "arguments": {"city": "Bergen"}}]))  # fmt: skip
    stream = client.chat.completions.create(model="test/gpt", stream=True, tools=[WEATHER],  # type: ignore[list-item]
                                            messages=[{"role": "user", "content": "Bergen?"}],
                                            extra_body={"reasoning": {"effort": "low"}})  # fmt: skip
    chunks = list(stream)
    assert fake.requests[-1].json["stream"] is True
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reasoning = "".join(c.choices[0].delta.model_extra.get("reasoning") or "" for c in chunks if c.choices)
    args = "".join(tc.function.arguments or "" for c in chunks if c.choices
                   for tc in c.choices[0].delta.tool_calls or () if tc.function)  # fmt: skip
    assert text == "Checking." and reasoning == "Need the weather tool."
    assert json.loads(args) == {"city": "Bergen"}
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["tool_calls"]
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None and last.usage.prompt_tokens == 50
    gen = generation(gateway, key, last.id)
    assert gen["streamed"] and Decimal(str(last.usage.model_extra["cost"])) == Decimal(str(gen["total_cost"])) > 0


@pytest.mark.parametrize("fault", [Stream("one two three four", error_after=2),
                                   Stream("one two three four", stop_after=2)], ids=["failed", "cut"])  # fmt: skip
def test_a_chat_stream_failing_or_cut_mid_way_ends_in_an_in_band_error(
    client: openai.OpenAI, fake: FakeOpenAIResponsesThread, fault: Stream
) -> None:
    fake.script(fault)
    text: list[str] = []
    with pytest.raises(openai.APIError):  # the SDK raises the in-band error chunk
        for chunk in client.chat.completions.create(model="test/gpt", stream=True,
                                                    messages=[{"role": "user", "content": "count"}]):  # fmt: skip
            text += [c.delta.content or "" for c in chunk.choices]
    assert "".join(text) == "one two"  # what came before the fault was relayed


def test_an_upstream_error_is_the_clients_error(client: openai.OpenAI, fake: FakeOpenAIResponsesThread) -> None:
    fake.script(Status(400, {"error": {"message": "Invalid 'input[0]'.", "type": "invalid_request_error",
                                       "param": "input", "code": None}}))  # fmt: skip
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="test/gpt", messages=[{"role": "user", "content": "x"}])
    assert "Invalid 'input[0]'" in str(caught.value)


# -- Messages clients, translated


def test_a_messages_client_reaches_a_responses_upstream(gateway: Gateway, key: str,
                                                         fake: FakeOpenAIResponsesThread) -> None:  # fmt: skip
    fake.script(Reply("Hej."), Stream("Hej igen."))
    sdk = anthropic.Anthropic(base_url=gateway.url + "/api", api_key=key, max_retries=0)
    msg = sdk.messages.create(model="test/gpt", max_tokens=200, system="Answer in Swedish.",
                              messages=[{"role": "user", "content": "Hello"}])  # fmt: skip
    assert msg.content[0].text == "Hej." and msg.stop_reason == "end_turn"  # type: ignore[union-attr]
    assert fake.requests[-1].json["instructions"] == "Answer in Swedish."
    with sdk.messages.stream(model="test/gpt", max_tokens=200, messages=[{"role": "user", "content": "Again"}]) as s:
        final = s.get_final_message()
    assert final.content[0].text == "Hej igen." and final.usage.output_tokens > 0  # type: ignore[union-attr]


# -- Responses clients, passed through


def test_a_responses_request_goes_upstream_as_the_client_sent_it(
    client: openai.OpenAI, fake: FakeOpenAIResponsesThread, gateway: Gateway, key: str
) -> None:
    fake.script(Reply("Hi.", prompt_tokens=80, cached_tokens=64, completion_tokens=3))
    response = client.responses.create(
        model="test/gpt", input="hello", instructions="Be brief.", user="bob",
        include=["reasoning.encrypted_content"], prompt_cache_key="conv-7", text={"verbosity": "low"},
        extra_body={"provider": {"sort": "price"}, "some_future_field": {"x": 1}},
    )  # fmt: skip
    sent = fake.requests[-1].json
    assert sent["model"] == "gpt-5" and sent["store"] is False and sent["input"] == "hello"
    assert sent["include"] == ["reasoning.encrypted_content"] and sent["prompt_cache_key"] == "conv-7"
    assert sent["text"] == {"verbosity": "low"} and sent["some_future_field"] == {"x": 1}  # as sent
    assert "provider" not in sent and sent["user"] != "bob"
    gen_id = "gen-" + response.id.removeprefix("resp_")
    gen = generation(gateway, key, gen_id)
    assert response.model == "test/gpt" and response.output_text == "Hi."
    assert response.usage is not None and response.usage.input_tokens_details.cached_tokens == 64
    cost = Decimal(str(response.usage.model_extra["cost"]))
    assert cost == expected_cost(80, 64, 3) == Decimal(str(gen["total_cost"]))


def test_encrypted_reasoning_round_trips_through_a_passthrough(client: openai.OpenAI,
                                                               fake: FakeOpenAIResponsesThread) -> None:  # fmt: skip
    fake.script(Reply("Two.", reasoning="Adding."), Reply("Four."))
    first = client.responses.create(model="test/gpt", input="1+1?", reasoning={"effort": "low", "summary": "auto"},
                                    include=["reasoning.encrypted_content"])  # fmt: skip
    reasoning = first.output[0]
    assert reasoning.type == "reasoning" and reasoning.encrypted_content  # type: ignore[union-attr]
    history = [{"role": "user", "content": "1+1?"}, *[o.model_dump(exclude_none=True) for o in first.output],
               {"role": "user", "content": "2+2?"}]  # fmt: skip
    second = client.responses.create(model="test/gpt", input=history,  # type: ignore[arg-type]
                                     include=["reasoning.encrypted_content"])  # fmt: skip
    sent = fake.requests[-1].json["input"]
    assert sent[1]["encrypted_content"] == reasoning.encrypted_content  # type: ignore[union-attr]
    assert second.output_text == "Four."


def test_a_passed_through_stream_relays_the_upstreams_events_with_the_cost(
    client: openai.OpenAI, fake: FakeOpenAIResponsesThread, gateway: Gateway, key: str
) -> None:
    fake.script(Stream("Cold and clear.", reasoning="Oslo in winter.",
                       tool_calls=[{"id": "call_p1", "name": "weather", "arguments": {"city": "Oslo"}}]))  # fmt: skip
    tool = {"type": "function", "name": "weather", "parameters": WEATHER["function"]["parameters"], "strict": False}
    with client.responses.stream(model="test/gpt", input="Oslo?", tools=[tool],  # type: ignore[list-item]
                                 reasoning={"effort": "low", "summary": "auto"},
                                 include=["reasoning.encrypted_content"]) as stream:  # fmt: skip
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "response.reasoning_summary_text.delta" in kinds and "response.function_call_arguments.delta" in kinds
    assert [o.type for o in final.output] == ["reasoning", "message", "function_call"]
    assert final.output[0].encrypted_content and final.output_text == "Cold and clear."  # type: ignore[union-attr]
    assert events[0].response.id == final.id and final.model == "test/gpt"  # type: ignore[union-attr]
    gen = generation(gateway, key, "gen-" + final.id.removeprefix("resp_"))
    assert gen["streamed"] and final.usage is not None
    assert Decimal(str(final.usage.model_extra["cost"])) == Decimal(str(gen["total_cost"])) > 0


def test_a_failure_mid_stream_is_response_failed_numbered_after_the_last_event(
    gateway: Gateway, key: str, fake: FakeOpenAIResponsesThread
) -> None:
    fake.script(Stream("one two three four", error_after=2))
    with httpx.stream("POST", gateway.url + "/api/v1/responses", headers={"Authorization": f"Bearer {key}"},
                      json={"model": "test/gpt", "input": "count", "stream": True}) as r:  # fmt: skip
        data = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    events = [json.loads(d) for d in data[:-1]]
    assert events[-1]["type"] == "response.failed" and events[-1]["response"]["error"]["code"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))


@pytest.mark.parametrize("streamed", [False, True])
def test_a_rate_limited_upstream_falls_back_to_chat_completions_translated(
    client: openai.OpenAI, fake: FakeOpenAIResponsesThread, backup: FakeOpenAIThread, streamed: bool
) -> None:
    fake.script(Status(429))
    body: dict[str, Any] = {"model": "test/gpt", "input": "hi", "extra_body": {"models": ["test/backup"]}}
    if streamed:
        with client.responses.stream(**body) as stream:
            final = stream.get_final_response()
    else:
        final = client.responses.create(**body)
    assert final.model == "test/backup" and final.output_text
    assert len(fake.requests) == 1 and backup.requests[-1].json["messages"][-1]["content"] == "hi"  # chat, translated


@pytest.mark.parametrize("passthrough", [False, True], ids=["chat", "responses"])
def test_a_rate_limit_event_before_the_first_token_falls_back(
    client: openai.OpenAI, fake: FakeOpenAIResponsesThread, backup: FakeOpenAIThread, passthrough: bool
) -> None:
    fake.script(Stream("never", error_after=0, error={"code": "rate_limit_exceeded", "message": "Slow down."}))
    fallback = {"models": ["test/backup"]}
    if passthrough:
        with client.responses.stream(model="test/gpt", input="hi", extra_body=fallback) as stream:
            assert stream.get_final_response().model == "test/backup"
    else:
        chunks = list(client.chat.completions.create(model="test/gpt", stream=True, extra_body=fallback,
                                                     messages=[{"role": "user", "content": "hi"}]))  # fmt: skip
        assert chunks[-1].model == "test/backup"
    assert len(backup.requests) == 1  # nothing had reached the client: the next endpoint answered


def test_a_passed_through_incomplete_stream_ends_with_its_own_event_and_the_cost(
    client: openai.OpenAI, fake: FakeOpenAIResponsesThread, gateway: Gateway, key: str
) -> None:
    with client.responses.stream(model="test/gpt", input=" ".join(["word"] * 40), max_output_tokens=16) as stream:
        events = list(stream)
    final = events[-1].response  # type: ignore[union-attr]  # (the SDK's final response is a completed one)
    assert events[-1].type == "response.incomplete" and final.status == "incomplete"
    assert final.incomplete_details is not None and final.incomplete_details.reason == "max_output_tokens"
    gen = generation(gateway, key, "gen-" + final.id.removeprefix("resp_"))
    assert gen["finish_reason"] == "length" and final.usage is not None
    assert Decimal(str(final.usage.model_extra["cost"])) == Decimal(str(gen["total_cost"]))


def test_passed_through_answers_and_events_fit_openrouters_responses_schema(
    gateway: Gateway, key: str, fake: FakeOpenAIResponsesThread
) -> None:
    require_spec()
    headers = {"Authorization": f"Bearer {key}"}
    ask = {"model": "test/gpt", "input": "Oslo?", "reasoning": {"effort": "low", "summary": "auto"},
           "include": ["reasoning.encrypted_content"]}  # fmt: skip
    r = httpx.post(gateway.url + "/api/v1/responses", headers=headers, json=ask)
    validate_response("createResponses", r.json())
    for streamed in (Stream("Cold and clear.", reasoning="Winter."), Stream("Cold.", error_after=1)):
        fake.script(streamed)
        r = httpx.post(gateway.url + "/api/v1/responses", headers=headers, json={**ask, "stream": True})
        events = [e["data"] for e in validate_sse("createResponses", r.text)]
        assert events[-1]["type"] in ("response.completed", "response.failed")


def test_openrouters_reasoning_extensions_reach_openai_in_its_own_terms(
    client: openai.OpenAI, fake: FakeOpenAIResponsesThread
) -> None:
    client.responses.create(model="test/gpt", input="hi", max_output_tokens=10000,
                            extra_body={"reasoning": {"max_tokens": 6000, "exclude": True}})  # fmt: skip
    assert fake.requests[-1].json["reasoning"] == {"effort": "medium"}  # OpenAI refuses max_tokens and exclude
    client.responses.create(model="test/gpt", input="hi", reasoning={"effort": "high", "summary": "detailed"})
    assert fake.requests[-1].json["reasoning"] == {"effort": "high", "summary": "detailed"}  # OpenAI's own: as sent
