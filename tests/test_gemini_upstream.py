"""A provider with `api: gemini` behind the gateway: the official openai SDK on /chat/completions,
FakeGemini (Google's generateContent wire on loopback) upstream."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from omnirouter.catalog.loader import load_bundled
from omnirouter.formats.anthropic_terms import encrypted_detail
from omnirouter.testing import FakeGemini, FakeGeminiThread, Reply, Status, Stream
from omnirouter.testing.fakes.gemini import blocked_prompt, error_body
from tests.gateway import Gateway

KEY_A, KEY_B = "gemini-key-a", "gemini-key-b"
PRICES = {"prompt": "0.000001", "completion": "0.000004", "input_cache_read": "0.00000025"}
WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "The weather in a city now",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": ["string", "null"], "enum": ["c", "f"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
HELLO = [{"role": "user", "content": "hello there"}]


def config(a: str, b: str) -> dict[str, Any]:
    return {
        "providers": [
            {"slug": "gem-a", "name": "Gemini A", "api": "gemini", "base_url": a, "api_key": KEY_A},
            # Like Google AI Studio, B goes on generating (and billing) when a stream is dropped.
            {"slug": "gem-b", "name": "Gemini B", "api": "gemini", "base_url": b, "api_key": KEY_B, "can_abort": False},
        ],
        "models": [
            {
                "id": "test/gemini",
                "name": "Gemini",
                "context_length": 1048576,
                "endpoints": [{"provider": "gem-a", "upstream_model": "gemini-2.5-flash", "pricing": PRICES}],
            },
            {
                "id": "test/gemini-b",
                "name": "Gemini on B",
                "context_length": 1048576,
                "endpoints": [{"provider": "gem-b", "upstream_model": "gemini-2.5-pro", "pricing": PRICES}],
            },
            {
                "id": "test/gemini-two",
                "name": "Gemini on two endpoints",
                "context_length": 1048576,
                "endpoints": [
                    {"provider": "gem-a", "upstream_model": "gemini-2.5-flash", "pricing": PRICES},
                    {"provider": "gem-b", "upstream_model": "gemini-2.5-pro", "pricing": PRICES},
                ],
            },
        ],
    }


@pytest.fixture(scope="module")
def gem_a() -> Iterator[FakeGeminiThread]:
    with FakeGemini.run_in_thread(api_key=KEY_A) as fake:
        yield fake


@pytest.fixture(scope="module")
def gem_b() -> Iterator[FakeGeminiThread]:
    with FakeGemini.run_in_thread(api_key=KEY_B) as fake:
        yield fake


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, gem_a: FakeGeminiThread, gem_b: FakeGeminiThread) -> Iterator[Gateway]:
    gateway = Gateway(tmp_path_factory.mktemp("gemini"), config(gem_a.base_url, gem_b.base_url)).start()
    yield gateway
    gateway.stop()


@pytest.fixture
def client(gw: Gateway, gem_a: FakeGeminiThread, gem_b: FakeGeminiThread) -> openai.OpenAI:
    gem_a.reset()
    gem_b.reset()
    return openai.OpenAI(base_url=gw.api, api_key=gw.create_key()["key"], max_retries=0)


def sent(fake: FakeGeminiThread, n: int = -1) -> Any:
    return fake.requests[n]


def raw_json(response: Any) -> dict[str, Any]:
    return json.loads(response.http_response.text, parse_float=Decimal)


def generation(gw: Gateway, key: str, gen_id: str) -> dict[str, Any]:
    with gw.client(key) as c:
        for _ in range(100):
            r = c.get("/generation", params={"id": gen_id})
            if r.status_code == 200:
                return json.loads(r.text, parse_float=Decimal)["data"]
            time.sleep(0.05)
    raise AssertionError(f"generation {gen_id} never appeared")


def price(name: str) -> Decimal:
    return Decimal(PRICES[name])


def test_text(client: openai.OpenAI, gem_a: FakeGeminiThread) -> None:
    gem_a.script(Reply("Hello from Gemini.", prompt_tokens=12, completion_tokens=4))
    raw = client.chat.completions.with_raw_response.create(model="test/gemini", messages=HELLO, max_tokens=64)
    body = raw_json(raw)
    choice = body["choices"][0]
    assert choice["message"]["content"] == "Hello from Gemini."
    assert choice["finish_reason"] == "stop"
    assert body["provider"] == "Gemini A"
    assert (body["usage"]["prompt_tokens"], body["usage"]["completion_tokens"]) == (12, 4)
    assert body["usage"]["cost"] == 12 * price("prompt") + 4 * price("completion")
    req = sent(gem_a)
    assert req.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert req.headers["x-goog-api-key"] == KEY_A and "Authorization" not in req.headers
    assert req.json["contents"] == [{"role": "user", "parts": [{"text": "hello there"}]}]
    assert req.json["generationConfig"] == {"maxOutputTokens": 64}


def test_system_prompt_and_multi_turn(client: openai.OpenAI, gem_a: FakeGeminiThread) -> None:
    messages = [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": [{"type": "text", "text": "And of Italy?"}]},
    ]
    answer = client.chat.completions.create(model="test/gemini", messages=messages, temperature=0.1, stop=["\n"])
    assert answer.choices[0].message.content == "Echo: And of Italy?"
    req = sent(gem_a).json
    assert req["systemInstruction"] == {"parts": [{"text": "Answer in one word."}]}
    assert [(c["role"], c["parts"]) for c in req["contents"]] == [
        ("user", [{"text": "Capital of France?"}]),
        ("model", [{"text": "Paris."}]),
        ("user", [{"text": "And of Italy?"}]),
    ]
    assert req["generationConfig"] == {"temperature": 0.1, "stopSequences": ["\n"]}


def test_tools_round_trip_with_parallel_calls(client: openai.OpenAI, gem_a: FakeGeminiThread) -> None:
    calls = [{"name": "weather", "arguments": {"city": "Paris"}}, {"name": "weather", "arguments": {"city": "Rome"}}]
    gem_a.script(Reply("", tool_calls=calls), Reply("Paris 21C, Rome 25C."))
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris and Rome?"}]
    first = client.chat.completions.create(model="test/gemini", messages=messages, tools=[WEATHER])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    tool_calls = choice.message.tool_calls or []
    assert [(t.function.name, json.loads(t.function.arguments)) for t in tool_calls] == [
        ("weather", {"city": "Paris"}),
        ("weather", {"city": "Rome"}),
    ]
    assert len({t.id for t in tool_calls}) == 2
    declared = sent(gem_a).json["tools"][0]["functionDeclarations"][0]
    assert declared["parameters"] == {  # cleaned to Gemini's subset: the fake refuses the rest, as Google does
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "nullable": True, "enum": ["c", "f"]}},
        "required": ["city"],
    }

    # The assistant turn goes back as it came (with reasoning_details), then one result per call.
    messages.append(choice.message.model_dump(exclude_none=True))
    messages += [{"role": "tool", "tool_call_id": t.id, "content": json.dumps({"temp": 21})} for t in tool_calls]
    second = client.chat.completions.create(model="test/gemini", messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "Paris 21C, Rome 25C."
    assert second.choices[0].finish_reason == "stop"
    model_turn, results = sent(gem_a).json["contents"][1:]
    signature = next(
        d["data"] for d in choice.message.model_dump()["reasoning_details"] if d["type"] == "reasoning.encrypted"
    )
    assert model_turn == {
        "role": "model",
        "parts": [
            {"functionCall": {"name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": signature},
            {"functionCall": {"name": "weather", "args": {"city": "Rome"}}},
        ],
    }
    assert results == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "weather", "response": {"temp": 21}}}] * 2,
    }


def test_tool_choice_names_the_function(client: openai.OpenAI, gem_a: FakeGeminiThread) -> None:
    client.chat.completions.create(
        model="test/gemini",
        messages=[{"role": "user", "content": "call tool"}],
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "weather"}},
    )
    assert sent(gem_a).json["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}
    }


def test_json_schema_output(client: openai.OpenAI, gem_a: FakeGeminiThread) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "temp": {"type": "integer"}},
        "required": ["city", "temp"],
        "additionalProperties": False,
    }
    gem_a.script(Reply('{"city": "Paris", "temp": 21}'))
    answer = client.chat.completions.create(
        model="test/gemini",
        messages=[{"role": "user", "content": "Weather as JSON"}],
        response_format={"type": "json_schema", "json_schema": {"name": "weather", "strict": True, "schema": schema}},
    )
    assert json.loads(answer.choices[0].message.content or "") == {"city": "Paris", "temp": 21}
    config = sent(gem_a).json["generationConfig"]
    assert config == {"responseMimeType": "application/json", "responseJsonSchema": schema}


def test_streaming(client: openai.OpenAI, gem_a: FakeGeminiThread) -> None:
    gem_a.script(Stream(content="one two three four", prompt_tokens=7, completion_tokens=4))
    chunks = list(
        client.chat.completions.create(
            model="test/gemini", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    usage = chunks[-1].usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (7, 4)
    assert sent(gem_a).path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert sent(gem_a).query == {"alt": "sse"}


def test_streamed_tool_calls_and_reasoning(client: openai.OpenAI, gem_a: FakeGeminiThread) -> None:
    gem_a.script(
        Stream(reasoning="Two cities, two calls.", tool_calls=[{"name": "weather", "arguments": {"city": "Oslo"}}])
    )
    chunks = list(
        client.chat.completions.create(
            model="test/gemini",
            messages=[{"role": "user", "content": "Weather in Oslo?"}],
            tools=[WEATHER],
            stream=True,
            extra_body={"reasoning": {"effort": "low"}},
        )
    )
    deltas = [c.choices[0].delta.model_dump() for c in chunks if c.choices]
    assert "".join(d.get("reasoning") or "" for d in deltas) == "Two cities, two calls."
    calls = [tc for d in deltas for tc in d.get("tool_calls") or ()]
    assert [(tc["function"]["name"], json.loads(tc["function"]["arguments"])) for tc in calls] == [
        ("weather", {"city": "Oslo"})
    ]
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
    assert sent(gem_a).json["generationConfig"]["thinkingConfig"] == {"includeThoughts": True, "thinkingBudget": 2048}


def test_reasoning_tokens_are_billed_as_output(client: openai.OpenAI, gw: Gateway, gem_a: FakeGeminiThread) -> None:
    gem_a.script(
        Reply("42.", reasoning="Six times seven.", prompt_tokens=100, completion_tokens=50, reasoning_tokens=30)
    )
    raw = client.chat.completions.with_raw_response.create(
        model="test/gemini",
        messages=[{"role": "user", "content": "6*7?"}],
        extra_body={"reasoning": {"max_tokens": 1000}},
    )
    body = raw_json(raw)
    message = body["choices"][0]["message"]
    assert message["content"] == "42." and message["reasoning"] == "Six times seven."
    assert message["reasoning_details"][0]["type"] == "reasoning.text"
    usage = body["usage"]
    assert usage["completion_tokens"] == 50 and usage["completion_tokens_details"]["reasoning_tokens"] == 30
    assert usage["cost"] == 100 * price("prompt") + 50 * price("completion")
    assert sent(gem_a).json["generationConfig"]["thinkingConfig"] == {"includeThoughts": True, "thinkingBudget": 1000}
    gen = generation(gw, client.api_key, body["id"])
    assert gen["native_tokens_reasoning"] == 30 and gen["total_cost"] == usage["cost"]


def test_cached_tokens_are_billed_at_the_cache_price(
    client: openai.OpenAI, gw: Gateway, gem_a: FakeGeminiThread
) -> None:
    gem_a.script(Reply("ok", prompt_tokens=1000, completion_tokens=10, cached_tokens=800))
    raw = client.chat.completions.with_raw_response.create(model="test/gemini", messages=HELLO)
    body = raw_json(raw)
    usage = body["usage"]
    assert usage["prompt_tokens"] == 1000 and usage["prompt_tokens_details"]["cached_tokens"] == 800
    expected = 200 * price("prompt") + 800 * price("input_cache_read") + 10 * price("completion")
    assert usage["cost"] == expected
    gen = generation(gw, client.api_key, body["id"])
    assert gen["total_cost"] == expected and gen["native_tokens_cached"] == 800


def test_streamed_cached_and_reasoning_usage_agrees_with_the_generation(
    client: openai.OpenAI, gw: Gateway, gem_a: FakeGeminiThread
) -> None:
    gem_a.script(Stream(content="fine", reasoning="hm", prompt_tokens=400, completion_tokens=9, cached_tokens=300,
                        reasoning_tokens=6))  # fmt: skip
    chunks = list(
        client.chat.completions.create(
            model="test/gemini", messages=HELLO, stream=True, extra_body={"reasoning": {"enabled": True}}
        )
    )
    usage = chunks[-1].model_dump()["usage"]
    expected = 100 * price("prompt") + 300 * price("input_cache_read") + 9 * price("completion")
    assert Decimal(str(usage["cost"])) == expected
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 6
    assert generation(gw, client.api_key, chunks[0].id)["total_cost"] == expected


@pytest.mark.parametrize("stream", [False, True])
def test_blocked_prompt_is_a_content_filter_finish(
    client: openai.OpenAI, gem_a: FakeGeminiThread, stream: bool
) -> None:
    gem_a.script(blocked_prompt("PROHIBITED_CONTENT", stream=stream, prompt_tokens=9))
    if stream:
        chunks = list(client.chat.completions.create(model="test/gemini", messages=HELLO, stream=True))
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        assert finishes == ["content_filter"]
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ""
    else:
        answer = client.chat.completions.create(model="test/gemini", messages=HELLO)
        assert answer.choices[0].finish_reason == "content_filter"
        assert not answer.choices[0].message.content
        assert answer.usage is not None and answer.usage.prompt_tokens == 9


def test_a_response_stopped_for_safety_is_a_content_filter_finish(
    client: openai.OpenAI, gem_a: FakeGeminiThread
) -> None:
    gem_a.script(Reply("", finish_reason="SAFETY"))
    answer = client.chat.completions.create(model="test/gemini", messages=HELLO)
    assert answer.choices[0].finish_reason == "content_filter"


def test_a_400_is_the_clients_error(client: openai.OpenAI, gem_a: FakeGeminiThread, gem_b: FakeGeminiThread) -> None:
    message = "Invalid value at 'generation_config.temperature' (TYPE_FLOAT), \"hot\""
    gem_a.script(Status(400, error_body(400, message)))
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(
            model="test/gemini-two", messages=HELLO, extra_body={"provider": {"order": ["gem-a", "gem-b"]}}
        )
    assert exc.value.status_code == 400
    err = exc.value.body
    assert isinstance(err, dict) and message in err["message"]
    assert err["metadata"]["provider_code"] == "INVALID_ARGUMENT"
    assert err["metadata"]["error_type"] == "invalid_request"
    assert gem_b.requests == []  # a request error does not fall back


def test_a_wrong_key_is_an_authentication_error(tmp_path: Path, gem_a: FakeGeminiThread) -> None:
    cfg = config(gem_a.base_url, gem_a.base_url)
    cfg["providers"][0]["api_key"] = "not-the-key"
    gateway = Gateway(tmp_path, cfg).start()
    try:
        c = openai.OpenAI(base_url=gateway.api, api_key=gateway.create_key()["key"], max_retries=0)
        with pytest.raises(openai.APIStatusError) as exc:
            c.chat.completions.create(model="test/gemini", messages=HELLO)
        assert exc.value.body["metadata"]["error_type"] == "authentication"  # type: ignore[index]
        assert "API key not valid" in exc.value.body["metadata"]["raw"]  # type: ignore[index]
    finally:
        gateway.stop()


@pytest.mark.parametrize(
    "failure",
    [
        Status(429, error_body(429, retry_delay=20)),
        Status(503, error_body(503)),
    ],
    ids=["429", "503"],
)
@pytest.mark.parametrize("stream", [False, True])
def test_busy_endpoint_falls_back_to_the_next(
    client: openai.OpenAI, gem_a: FakeGeminiThread, gem_b: FakeGeminiThread, failure: Status, stream: bool
) -> None:
    gem_a.script(failure)
    gem_b.script(Reply("from B"))
    provider = {"order": ["gem-a", "gem-b"]}
    if stream:
        chunks = list(client.chat.completions.create(model="test/gemini-two", messages=HELLO, stream=True,
                                                     extra_body={"provider": provider}))  # fmt: skip
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "from B"
    else:
        raw = client.chat.completions.with_raw_response.create(
            model="test/gemini-two", messages=HELLO, extra_body={"provider": provider}
        )
        body = raw_json(raw)
        assert body["choices"][0]["message"]["content"] == "from B" and body["provider"] == "Gemini B"
    assert len(gem_a.requests) == 1 and len(gem_b.requests) == 1
    assert gem_b.requests[0].path == "/v1beta/models/gemini-2.5-pro" + (
        ":streamGenerateContent" if stream else ":generateContent"
    )
    assert gem_b.requests[0].headers["x-goog-api-key"] == KEY_B


def test_stream_cut_after_the_first_token_ends_with_an_error(
    client: openai.OpenAI, gw: Gateway, gem_a: FakeGeminiThread
) -> None:
    gem_a.script(Stream(content="one two three four", stop_after=1))
    with (
        gw.client(client.api_key) as c,
        c.stream("POST", "/chat/completions", json={"model": "test/gemini", "messages": HELLO, "stream": True}) as r,
    ):
        lines = [line for line in r.iter_lines() if line.startswith("data: ")]
    events = [json.loads(line[6:]) for line in lines if line != "data: [DONE]"]
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e.get("choices")) == "one"
    errors = [e for e in events if e.get("error")]
    assert errors and errors[0]["choices"][0]["finish_reason"] == "error"
    assert lines[-1] == "data: [DONE]"


def test_an_error_event_in_the_stream_ends_it_with_an_error(
    client: openai.OpenAI, gw: Gateway, gem_a: FakeGeminiThread
) -> None:
    gem_a.script(Stream(content="one two", error_after=1))
    with (
        gw.client(client.api_key) as c,
        c.stream("POST", "/chat/completions", json={"model": "test/gemini", "messages": HELLO, "stream": True}) as r,
    ):
        events = [json.loads(x[6:]) for x in r.iter_lines() if x.startswith("data: {")]
    assert any(e.get("error") for e in events)


def test_the_bundled_google_provider_speaks_gemini(
    tmp_path: Path, gem_a: FakeGeminiThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GEMINI_API_KEY enables the bundled Google AI Studio provider, which reaches the native API."""
    gem_a.reset()
    monkeypatch.setenv("GEMINI_API_KEY", KEY_A)
    # Point the bundled provider at the fake; everything else (models, prices, api) is the catalog's.
    gateway = Gateway(tmp_path, {"providers": [{"slug": "google-ai-studio", "base_url": gem_a.base_url}]}).start()
    try:
        gem_a.script(Reply("hi", prompt_tokens=1000, completion_tokens=100))
        c = openai.OpenAI(base_url=gateway.api, api_key=gateway.create_key()["key"], max_retries=0)
        raw = c.chat.completions.with_raw_response.create(
            model="google/gemini-2.5-flash", messages=HELLO, extra_body={"provider": {"only": ["google-ai-studio"]}}
        )
        body = raw_json(raw)
    finally:
        gateway.stop()
    assert body["provider"] == "Google AI Studio" and body["choices"][0]["message"]["content"] == "hi"
    assert sent(gem_a).path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent(gem_a).headers["x-goog-api-key"] == KEY_A
    model = next(m for m in load_bundled().models if m.id == "google/gemini-2.5-flash")
    pricing = next(e for e in model.endpoints if e.provider == "google-ai-studio").pricing
    assert body["usage"]["cost"] == 1000 * pricing.prompt + 100 * pricing.completion


def test_images_and_files(client: openai.OpenAI, gem_a: FakeGeminiThread) -> None:
    content = [
        {"type": "text", "text": "What are these?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
        {"type": "file", "file": {"filename": "report.pdf", "file_data": "data:application/pdf;base64,JVBERi0x"}},
    ]
    answer = client.chat.completions.create(model="test/gemini", messages=[{"role": "user", "content": content}])
    assert answer.choices[0].message.content == "Echo: What are these?"
    assert sent(gem_a).json["contents"][0]["parts"] == [
        {"text": "What are these?"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.jpg"}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0x"}},
    ]


def test_a_client_that_leaves_drops_the_upstream_stream(
    client: openai.OpenAI, gw: Gateway, gem_a: FakeGeminiThread
) -> None:
    gem_a.script(Stream(chunks=200, chunk_delay=0.02, prompt_tokens=50))
    body = {"model": "test/gemini", "messages": HELLO, "stream": True}
    with gw.client(client.api_key) as c, c.stream("POST", "/chat/completions", json=body) as r:
        gen_id = r.headers["x-generation-id"]
        received = 0
        for line in r.iter_lines():
            received += line.startswith("data: {")
            if received >= 5:
                break
    gem_a.wait_for_disconnect(timeout=5)
    gen = generation(gw, client.api_key, gen_id)
    assert gen["cancelled"] is True and 0 < gen["tokens_completion"] < 200


def test_a_stream_that_cannot_be_aborted_is_read_to_the_end_and_billed_in_full(
    client: openai.OpenAI, gw: Gateway, gem_b: FakeGeminiThread
) -> None:
    gem_b.script(Stream(chunks=40, chunk_delay=0.01, prompt_tokens=10, completion_tokens=40, cached_tokens=4))
    body = {"model": "test/gemini-b", "messages": HELLO, "stream": True}
    with gw.client(client.api_key) as c, c.stream("POST", "/chat/completions", json=body) as r:
        gen_id = r.headers["x-generation-id"]
        for line in r.iter_lines():
            if line.startswith("data: {"):
                break
    gen = generation(gw, client.api_key, gen_id)
    assert gen["cancelled"] is True and gen["tokens_completion"] == 40
    assert gen["total_cost"] == 6 * price("prompt") + 4 * price("input_cache_read") + 40 * price("completion")


def test_anthropic_messages_to_gemini_with_a_tool_round_trip(
    client: openai.OpenAI, gw: Gateway, gem_a: FakeGeminiThread
) -> None:
    """Claude Code's format to Gemini: tool_use back as functionCall (signed, as Gemini 3 requires),
    tool_result as functionResponse, usage and stop reasons in Anthropic's words."""
    sdk = anthropic.Anthropic(base_url=gw.url + "/api", auth_token=client.api_key, max_retries=0)
    tool = {"name": "weather", "description": "Weather now", "input_schema": WEATHER["function"]["parameters"]}
    paris = [{"name": "weather", "arguments": {"city": "Paris"}}]
    gem_a.script(Reply("", reasoning="Need the weather.", tool_calls=paris, prompt_tokens=30, completion_tokens=12,
                       reasoning_tokens=4), Reply("18C in Paris."))  # fmt: skip
    ask = [{"role": "user", "content": "Weather in Paris?"}]
    first = sdk.messages.create(
        model="test/gemini", max_tokens=256, tools=[tool], messages=ask,
        thinking={"type": "enabled", "budget_tokens": 1024},
    )  # fmt: skip
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert (call.name, call.input) == ("weather", {"city": "Paris"})
    assert first.usage.output_tokens == 12
    assert sent(gem_a).json["generationConfig"]["thinkingConfig"] == {"includeThoughts": True, "thinkingBudget": 1024}

    second = sdk.messages.create(
        model="test/gemini",
        max_tokens=256,
        tools=[tool],
        messages=[
            *ask,
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18C"}]},
        ],
    )
    assert second.content[0].text == "18C in Paris." and second.stop_reason == "end_turn"
    model_turn, results = sent(gem_a).json["contents"][1:]
    # Gemini's signature went out in a redacted_thinking block (wrapped with its provenance: the
    # Messages client cannot tell it from Claude's) and comes back, unwrapped, on its call.
    redacted = next(b for b in first.content if b.type == "redacted_thinking")
    signature = encrypted_detail(redacted.data, 0)
    assert signature["format"] == "google-gemini-v1" and signature["data"] != redacted.data
    assert [p.get("thoughtSignature") for p in model_turn["parts"] if "functionCall" in p] == [signature["data"]]
    assert results["parts"] == [{"functionResponse": {"name": "weather", "response": {"output": "18C"}}}]


def test_anthropic_messages_stream_from_gemini(client: openai.OpenAI, gw: Gateway, gem_a: FakeGeminiThread) -> None:
    sdk = anthropic.Anthropic(base_url=gw.url + "/api", auth_token=client.api_key, max_retries=0)
    gem_a.script(Stream(content="one two three", prompt_tokens=9, completion_tokens=3))
    with sdk.messages.stream(model="test/gemini", max_tokens=64, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "one two three"
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 3


def test_responses_to_gemini_with_a_function_call_round_trip(client: openai.OpenAI, gem_a: FakeGeminiThread) -> None:
    tool = {"type": "function", **WEATHER["function"]}
    gem_a.script(Reply("", tool_calls=[{"name": "weather", "arguments": {"city": "Rome"}}]), Reply("Sunny in Rome."))
    first = client.responses.create(model="test/gemini", input="Weather in Rome?", tools=[tool])
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "weather" and json.loads(call.arguments) == {"city": "Rome"}
    second = client.responses.create(
        model="test/gemini",
        tools=[tool],
        input=[
            {"role": "user", "content": "Weather in Rome?"},
            *[item.model_dump(exclude_none=True) for item in first.output],
            {"type": "function_call_output", "call_id": call.call_id, "output": '{"sky": "sunny"}'},
        ],
    )
    assert second.output_text == "Sunny in Rome."
    model_turn, results = sent(gem_a).json["contents"][1:]
    # Gemini's signature went out as a reasoning item's encrypted_content and comes back on its call.
    [reasoning] = [item for item in first.output if item.type == "reasoning"]
    assert [p.get("thoughtSignature") for p in model_turn["parts"] if "functionCall" in p] == [
        reasoning.encrypted_content
    ]
    assert results["parts"] == [{"functionResponse": {"name": "weather", "response": {"sky": "sunny"}}}]
