"""Chat completions through the real SDKs: OpenRouter-shaped answers, exact cost, dropped parameters."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import openai
import pytest
from openrouter import OpenRouter

from omnirouter.testing import Reply, Status, Stream
from tests.conftest import ALPHA_PRICES, BETA_PRICES, REASONER_PRICES
from tests.spec_validation import require_spec, validate, validate_response

HELLO = [{"role": "user", "content": "hello there"}]


def dec(prices: dict[str, str], key: str) -> Decimal:
    return Decimal(prices[key])


def raw_json(response: httpx.Response) -> dict:
    """The body with numbers as Decimal, as written on the wire."""
    return json.loads(response.text, parse_float=Decimal)


def test_openai_sdk_non_streaming(gateway, api_key, fake_a):
    fake_a.fake.script(Reply("Bonjour!", prompt_tokens=12, completion_tokens=4))
    client = openai.OpenAI(base_url=gateway.api, api_key=api_key)
    raw = client.chat.completions.with_raw_response.create(model="test/alpha", messages=HELLO)
    completion = raw.parse()
    assert completion.id.startswith("gen-")
    assert raw.headers["x-generation-id"] == completion.id
    assert completion.model == "test/alpha"
    assert completion.choices[0].message.content == "Bonjour!"
    assert completion.choices[0].finish_reason == "stop"
    body = json.loads(raw.http_response.text, parse_float=Decimal)
    assert body["provider"] == "Fake A"
    usage = body["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (12, 4, 16)
    expected = 12 * dec(ALPHA_PRICES, "prompt") + 4 * dec(ALPHA_PRICES, "completion")
    assert usage["cost"] == expected
    assert usage["is_byok"] is False
    assert usage["cost_details"]["upstream_inference_prompt_cost"] == 12 * dec(ALPHA_PRICES, "prompt")
    assert usage["cost_details"]["upstream_inference_completions_cost"] == 4 * dec(ALPHA_PRICES, "completion")
    # The upstream was asked for its own model name, without our routing fields.
    sent = fake_a.fake.last_request.json
    assert sent["model"] == "alpha-upstream"
    assert "provider" not in sent and "models" not in sent


def test_response_matches_spec(gateway, api_key):
    require_spec()
    with gateway.client(api_key) as c:
        r = c.post("/chat/completions", json={"model": "test/alpha", "messages": HELLO})
    assert r.status_code == 200
    validate_response("sendChatCompletionRequest", r.json())


def test_v1_alias_serves_the_same_api(gateway, api_key):
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=api_key)
    assert client.chat.completions.create(model="test/alpha", messages=HELLO).model == "test/alpha"


def test_openai_sdk_streaming(gateway, api_key, fake_a):
    require_spec()
    fake_a.fake.script(Stream(content="one two three four", prompt_tokens=9))
    client = openai.OpenAI(base_url=gateway.api, api_key=api_key)
    chunks = list(client.chat.completions.create(model="test/alpha", messages=HELLO, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four"
    ids = {c.id for c in chunks}
    assert len(ids) == 1 and ids.pop().startswith("gen-")
    # Usage exactly once, in the last chunk, with empty choices.
    with_usage = [c for c in chunks if c.usage is not None]
    assert with_usage == [chunks[-1]] and chunks[-1].choices == []
    assert chunks[-2].choices[0].finish_reason == "stop"
    for c in chunks:
        validate(c.model_dump(exclude_unset=True), "ChatStreamChunk")
    usage = chunks[-1].usage
    assert usage.prompt_tokens == 9
    upstream = fake_a.fake.last_request.json
    assert upstream["stream"] is True and upstream["stream_options"] == {"include_usage": True}


def test_stream_framing_and_cost_on_the_wire(gateway, api_key, fake_a):
    fake_a.fake.script(Stream(content="a b c", prompt_tokens=20, completion_tokens=3))
    with (
        gateway.client(api_key) as c,
        c.stream("POST", "/chat/completions", json={"model": "test/alpha", "messages": HELLO, "stream": True}) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        gen_id = r.headers["x-generation-id"]
        events = [line for line in r.iter_lines() if line]
    assert events[-1] == "data: [DONE]"
    final = json.loads(events[-2][len("data: ") :], parse_float=Decimal)
    assert final["id"] == gen_id and final["choices"] == []
    expected = 20 * dec(ALPHA_PRICES, "prompt") + 3 * dec(ALPHA_PRICES, "completion")
    assert final["usage"]["cost"] == expected


def test_openrouter_sdk(gateway, api_key, fake_a):
    fake_a.fake.script(Reply("from the OpenRouter SDK"))
    with OpenRouter(api_key=api_key, server_url=gateway.api) as client:
        res = client.chat.send(model="test/alpha", messages=HELLO)
        assert res.choices[0].message.content == "from the OpenRouter SDK"
        assert res.id.startswith("gen-")
        assert res.usage is not None and res.usage.cost is not None and res.usage.cost > 0
        fake_a.fake.script(Stream(content="x y"))
        chunks = list(client.chat.send(model="test/alpha", messages=HELLO, stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "x y"
        assert chunks[-1].usage is not None


def test_cache_and_request_prices(gateway, api_key, fake_b):
    fake_b.fake.script(Reply("ok", prompt_tokens=1000, completion_tokens=10, cached_tokens=600))
    with gateway.client(api_key) as c:
        body = raw_json(c.post("/chat/completions", json={"model": "test/beta", "messages": HELLO}))
    usage = body["usage"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == 600
    p = BETA_PRICES
    expected = 400 * dec(p, "prompt") + 600 * dec(p, "input_cache_read") + 10 * dec(p, "completion") + dec(p, "request")
    assert usage["cost"] == expected


def test_reasoning_tokens_billed_at_reasoning_price(gateway, api_key, fake_a):
    fake_a.fake.script(Reply("42", prompt_tokens=100, completion_tokens=50, reasoning_tokens=40))
    with gateway.client(api_key) as c:
        body = raw_json(c.post("/chat/completions", json={"model": "test/reasoner", "messages": HELLO}))
    assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] == 40
    p = REASONER_PRICES
    expected = 100 * dec(p, "prompt") + 10 * dec(p, "completion") + 40 * dec(p, "internal_reasoning")
    assert body["usage"]["cost"] == expected


def test_unsupported_parameters_are_dropped(gateway, api_key, fake_a):
    # test/alpha supports max_tokens, temperature, top_p, stop, tools, tool_choice, but not seed or logit_bias.
    with gateway.client(api_key) as c:
        r = c.post(
            "/chat/completions",
            json={
                "model": "test/alpha",
                "messages": HELLO,
                "temperature": 0.3,
                "seed": 7,
                "logit_bias": {"50256": -100},
                "safe_prompt": True,
                "usage": {"include": True},
                "transforms": ["middle-out"],
            },
        )
    assert r.status_code == 200, r.text
    assert r.headers["x-omnirouter-dropped-params"] == "seed, logit_bias"
    sent = fake_a.fake.last_request.json
    assert sent["temperature"] == 0.3
    assert "seed" not in sent and "logit_bias" not in sent
    assert sent["safe_prompt"] is True  # provider-specific extras pass through
    assert "usage" not in sent and "transforms" not in sent


def test_require_parameters_excludes_endpoints(gateway, api_key, fake_a):
    with gateway.client(api_key) as c:
        r = c.post(
            "/chat/completions",
            json={
                "model": "test/alpha",
                "messages": HELLO,
                "seed": 7,
                "provider": {"require_parameters": True},
            },
        )
    assert r.status_code == 404
    error = r.json()["error"]
    assert error["availability"]["code"] == "constraint_filtered"
    assert "require_parameters" in error["availability"]["excluded_by"]
    assert fake_a.fake.requests == []


@pytest.mark.parametrize("stream", [False, True])
def test_a_dropped_parameter_is_named_in_a_header(gateway, api_key, fake_a, stream):
    # test/alpha does not support top_k: its upstream is not sent it, and the answer says so.
    body = {"model": "test/alpha", "messages": HELLO, "temperature": 0.2, "stream": stream}
    with gateway.client(api_key) as c:
        r = c.post("/chat/completions", json={**body, "top_k": 40})
        assert r.status_code == 200, r.text
        assert r.headers["x-omnirouter-dropped-params"] == "top_k"
        sent = fake_a.fake.last_request.json
        assert "top_k" not in sent and sent["temperature"] == 0.2

        r = c.post("/chat/completions", json=body)  # nothing dropped: no header
        assert r.status_code == 200, r.text
        assert "x-omnirouter-dropped-params" not in r.headers
    if stream:
        assert r.headers["content-type"].startswith("text/event-stream") and r.text.endswith("data: [DONE]\n\n")


def _two_hosts(a_url: str, b_url: str) -> dict:
    """test/hosts on Fake A, which takes top_k, then Fake B, which does not."""
    params = ["max_tokens", "temperature"]
    return {
        "providers": [
            {"slug": "fake-a", "name": "Fake A", "api": "openai", "base_url": a_url},
            {"slug": "fake-b", "name": "Fake B", "api": "openai", "base_url": b_url},
        ],
        "models": [
            {
                "id": "test/hosts",
                "name": "Hosts",
                "context_length": 32768,
                "supported_parameters": [*params, "top_k"],
                "endpoints": [
                    {"provider": "fake-a", "upstream_model": "h-a", "pricing": ALPHA_PRICES},
                    {"provider": "fake-b", "upstream_model": "h-b", "pricing": ALPHA_PRICES,
                     "supported_parameters": params},
                ],
            }
        ],
    }  # fmt: skip


@pytest.mark.parametrize("stream", [False, True])
def test_the_header_names_what_the_answering_endpoint_dropped(make_gateway, fake_a, fake_b, stream):
    gw = make_gateway(_two_hosts(fake_a.base_url, fake_b.base_url))
    key = gw.create_key()["key"]
    body = {"model": "test/hosts", "messages": HELLO, "top_k": 5, "stream": stream,
            "provider": {"order": ["fake-a", "fake-b"]}}  # fmt: skip
    with gw.client(key) as c:
        r = c.post("/chat/completions", json=body)  # Fake A answers, with top_k
        assert r.status_code == 200, r.text
        assert "x-omnirouter-dropped-params" not in r.headers
        assert fake_a.fake.last_request.json["top_k"] == 5

        fake_a.fake.script(Status(503))  # Fake A fails, so Fake B answers, without top_k
        r = c.post("/chat/completions", json=body)
        assert r.status_code == 200, r.text
        assert r.headers["x-omnirouter-dropped-params"] == "top_k"
        assert fake_a.fake.last_request.json["top_k"] == 5
        assert "top_k" not in fake_b.fake.last_request.json


def test_tool_calls_round_trip(gateway, api_key):
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            },
        }
    ]
    client = openai.OpenAI(base_url=gateway.api, api_key=api_key)
    msg = [{"role": "user", "content": "please call tool for Paris"}]
    res = client.chat.completions.create(model="test/alpha", messages=msg, tools=tools)
    assert res.choices[0].finish_reason == "tool_calls"
    assert res.choices[0].message.tool_calls[0].function.name == "get_weather"
    chunks = list(client.chat.completions.create(model="test/alpha", messages=msg, tools=tools, stream=True))
    assert any(c.choices and c.choices[0].delta.tool_calls for c in chunks)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


def test_user_is_hashed_before_it_goes_upstream(gateway, api_key, fake_a):
    with gateway.client(api_key) as c:
        assert (
            c.post(
                "/chat/completions", json={"model": "test/alpha", "messages": HELLO, "user": "alice@example.com"}
            ).status_code
            == 200
        )
    sent_user = fake_a.fake.last_request.json["user"]
    assert sent_user and "alice" not in sent_user


@pytest.mark.parametrize("model_field", [{"models": ["test/alpha"]}, {"model": "TEST/Alpha"}])
def test_model_resolution(gateway, api_key, model_field):
    with gateway.client(api_key) as c:
        r = c.post("/chat/completions", json={**model_field, "messages": HELLO})
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "test/alpha"


def test_prompt_instead_of_messages(gateway, api_key, fake_a):
    with gateway.client(api_key) as c:
        r = c.post("/chat/completions", json={"model": "test/alpha", "prompt": "say hi"})
    assert r.status_code == 200
    assert fake_a.fake.last_request.json["messages"] == [{"role": "user", "content": "say hi"}]
