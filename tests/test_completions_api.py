"""POST /completions, the legacy text-completions format, driven by the `openai` SDK's
`client.completions` against a gateway routing to a fake OpenAI-compatible upstream."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from omnirouter.formats.text_completions import COMPLETIONS, legacy_logprobs
from omnirouter.testing import Reply, Status, Stream
from tests.test_generation import fetch
from tests.test_openapi import SSE, conforms, events


def sdk(gateway: Any, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.api, api_key=key, max_retries=0)


def test_a_prompt_gets_a_text_completion(gateway, api_key, fake_a):
    fake_a.fake.script(Reply("Paris.", prompt_tokens=12, completion_tokens=3))
    r = sdk(gateway, api_key).completions.create(
        model="test/alpha", prompt="The capital of France is", max_tokens=20, temperature=0.2
    )
    assert r.object == "text_completion"
    assert r.id.startswith("gen-") and r.model == "test/alpha"
    (choice,) = r.choices
    assert (choice.text, choice.index, choice.finish_reason, choice.logprobs) == ("Paris.", 0, "stop", None)
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens) == (12, 3, 15)
    sent = fake_a.fake.last_request.json
    assert sent["messages"] == [{"role": "user", "content": "The capital of France is"}]
    assert sent["model"] == "alpha-upstream" and sent["max_tokens"] == 20 and sent["temperature"] == 0.2
    assert not {"prompt", "echo", "suffix", "logprobs", "best_of"} & set(sent)


def test_an_array_of_one_prompt_and_the_openrouter_fields(gateway, api_key, fake_a):
    fake_a.fake.script(Reply("ok"))
    r = sdk(gateway, api_key).completions.create(
        model="test/nonexistent",
        prompt=["Say ok"],
        extra_body={"models": ["test/alpha"], "provider": {"order": ["fake-a"]}},
    )
    assert r.choices[0].text == "ok" and r.model == "test/alpha"
    assert fake_a.fake.last_request.json["messages"][0]["content"] == "Say ok"


def test_echo_puts_the_prompt_before_the_text(gateway, api_key, fake_a):
    fake_a.fake.script(Reply(" world"), Stream(" world"))
    client = sdk(gateway, api_key)
    r = client.completions.create(model="test/alpha", prompt="Hello", echo=True)
    assert r.choices[0].text == "Hello world"
    streamed = "".join(
        c.choices[0].text for c in client.completions.create(model="test/alpha", prompt="Hello", echo=True, stream=True)
        if c.choices
    )  # fmt: skip
    assert streamed == "Hello world"


def test_stop_and_suffix(gateway, api_key, fake_a):
    fake_a.fake.script(Reply("one, two", finish_reason="stop"))
    r = sdk(gateway, api_key).completions.create(model="test/alpha", prompt="Count:", stop=["three"], suffix=" done.")
    assert r.choices[0].finish_reason == "stop"
    sent = fake_a.fake.last_request.json
    assert sent["stop"] == ["three"]
    assert "suffix" not in sent  # chat upstreams have no insertion mode


def test_a_cut_answer_finishes_with_length(gateway, api_key, fake_a):
    fake_a.fake.script(Reply("a b c", finish_reason="length"))
    r = sdk(gateway, api_key).completions.create(model="test/alpha", prompt="go", max_tokens=3)
    assert r.choices[0].finish_reason == "length"


def test_a_stream_of_text_completion_chunks(gateway, api_key, fake_a):
    fake_a.fake.script(Stream("The quick brown fox", prompt_tokens=7, completion_tokens=4))
    with httpx.Client(base_url=gateway.api, headers={"Authorization": f"Bearer {api_key}"}) as c:
        r = c.post("/completions", json={"model": "test/alpha", "prompt": "Once", "stream": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    for event in events(r.text):  # ends with [DONE]; each event as the OpenAPI document describes
        conforms("/completions", "post", 200, event, media=SSE)
    chunks = [e["data"] for e in events(r.text)]
    assert {c["object"] for c in chunks} == {"text_completion"}
    assert {c["id"] for c in chunks} == {r.headers["x-generation-id"]}
    assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"]) == "The quick brown fox"
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 4
    assert Decimal(str(chunks[-1]["usage"]["cost"])) > 0


def test_the_sdk_streams_and_the_cost_agrees_with_the_generation(gateway, api_key, fake_a):
    fake_a.fake.script(Stream("streamed text", prompt_tokens=20, completion_tokens=6))
    client = sdk(gateway, api_key)
    chunks = list(
        client.completions.create(
            model="test/alpha", prompt="Tell me", stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "streamed text"
    usage = chunks[-1].usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (20, 6)
    gen = fetch(gateway, api_key, "/generation", chunks[0].id).json()["data"]
    assert gen["streamed"] is True
    assert Decimal(str(gen["total_cost"])) == Decimal(str(usage.model_extra["cost"]))
    expected = 20 * Decimal("0.000001") + 6 * Decimal("0.000002")
    assert Decimal(str(usage.model_extra["cost"])) == expected


def test_usage_and_cost_agree_with_the_generation(gateway, api_key, fake_a):
    fake_a.fake.script(Reply("priced", prompt_tokens=1000, completion_tokens=500))
    raw = sdk(gateway, api_key).completions.with_raw_response.create(model="test/alpha", prompt="price me")
    body = json.loads(raw.http_response.text, parse_float=Decimal)
    conforms("/completions", "post", 200, raw.http_response.json())
    assert raw.http_response.headers["x-generation-id"] == body["id"]
    assert body["usage"]["cost"] == Decimal("0.002")  # 1000 * 0.000001 + 500 * 0.000002
    gen = json.loads(fetch(gateway, api_key, "/generation", body["id"]).text, parse_float=Decimal)["data"]
    assert gen["total_cost"] == body["usage"]["cost"]
    assert (gen["native_tokens_prompt"], gen["native_tokens_completion"]) == (1000, 500)
    assert gen["finish_reason"] == "stop" and gen["streamed"] is False


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "test/alpha"}, 'specify "prompt"'),
        ({"model": "test/alpha", "prompt": ["a", "b"]}, "one prompt per request"),
        ({"model": "test/alpha", "prompt": [1, 2, 3]}, "token-id prompts"),
        ({"model": "test/alpha", "prompt": []}, "empty"),
        ({"model": "test/alpha", "prompt": 42}, "prompt must be"),
        ({"model": "test/alpha", "prompt": "x", "logprobs": 99}, "logprobs"),
        ({"model": "test/alpha", "prompt": "x", "echo": "yes"}, "echo"),
        ({"model": "test/alpha", "prompt": "x", "best_of": 3}, "best_of"),
        ({"model": "test/alpha", "prompt": "x", "temperature": 9}, "temperature"),
        ({"model": "test/alpha", "prompt": "x", "tools": [{"type": "function"}]}, "/chat/completions"),
        ({"model": "test/alpha", "messages": [{"role": "user", "content": "y"}]}, 'specify "prompt"'),
        ({"model": "test/alpha", "prompt": "x", "max_tokens": 0}, "max_tokens"),
    ],
)
def test_bad_input_is_a_400_in_openrouters_envelope(gateway, api_key, fake_a, body, message):
    with gateway.client(api_key) as c:
        err = c.post("/completions", json=body)
    assert err.status_code == 400
    conforms("/completions", "post", 400, err.json())
    assert err.json()["error"]["code"] == 400 and message in err.json()["error"]["message"]
    assert err.headers["x-generation-id"]
    assert fake_a.fake.requests == []


def test_an_upstream_failure_is_openrouters_error(gateway, api_key, fake_a):
    fake_a.fake.script(Status(400))
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(gateway, api_key).completions.create(model="test/alpha", prompt="x")
    assert caught.value.response.json()["error"]["code"] == 400


def test_the_sdk_raises_on_a_bad_request(gateway, api_key):
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(gateway, api_key).completions.create(model="test/alpha", prompt=["one", "two"])
    assert caught.value.response.json()["error"]["code"] == 400


def test_no_key_is_a_401(gateway):
    with pytest.raises(openai.AuthenticationError):
        sdk(gateway, "sk-or-v1-nope").completions.create(model="test/alpha", prompt="x")


# -- logprobs: the fake upstream sends none, so the translation is checked on chat-shaped values
CHAT_LOGPROBS = {
    "content": [
        {"token": "Hi", "logprob": -0.1, "top_logprobs": [{"token": "Hi", "logprob": -0.1},
                                                          {"token": "Yo", "logprob": -2.5}]},
        {"token": "!", "logprob": -0.4, "top_logprobs": [{"token": "!", "logprob": -0.4}]},
    ]
}  # fmt: skip


def test_logprobs_are_asked_for_and_rendered_in_the_legacy_shape():
    body = COMPLETIONS.parse({"model": "m", "prompt": "Say", "logprobs": 2, "echo": True}, {})
    assert (body["logprobs"], body["top_logprobs"]) == (True, 2)
    completion = {
        "id": "gen-1",
        "model": "m",
        "created": 1,
        "choices": [{"index": 0, "message": {"content": "Hi!"}, "finish_reason": "stop", "logprobs": CHAT_LOGPROBS}],
    }
    rendered = COMPLETIONS.render(completion, body)
    assert rendered["choices"][0]["text"] == "SayHi!"
    assert rendered["choices"][0]["logprobs"] == {
        "tokens": ["Hi", "!"],
        "token_logprobs": [-0.1, -0.4],
        "top_logprobs": [{"Hi": -0.1, "Yo": -2.5}, {"!": -0.4}],
        "text_offset": [3, 5],
    }
    encoder = COMPLETIONS.encoder(body)
    first = {"id": "gen-1", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
    events = [encoder.chunk(first)]
    for entry, text in zip(CHAT_LOGPROBS["content"], ("Hi", "!"), strict=True):
        delta = {"index": 0, "delta": {"content": text}, "logprobs": {"content": [entry]}, "finish_reason": None}
        events.append(encoder.chunk({"id": "gen-1", "choices": [delta]}))
    chunks = [json.loads(e.removeprefix(b"data: ")) for e in events]
    assert [c["choices"][0]["text"] for c in chunks] == ["Say", "Hi", "!"]
    assert [c["choices"][0]["logprobs"]["text_offset"] for c in chunks[1:]] == [[3], [5]]
    assert legacy_logprobs(None, 0) == (None, 0)


def test_a_failure_mid_stream_is_an_error_event_then_usage_and_done(gateway, api_key, fake_a):
    fake_a.fake.script(Stream("one two three four", error_after=2))
    with gateway.client(api_key) as c:
        r = c.post("/completions", json={"model": "test/alpha", "prompt": "Count", "stream": True})
    assert r.status_code == 200
    for event in events(r.text):
        conforms("/completions", "post", 200, event, media=SSE)
    chunks = [e["data"] for e in events(r.text)]
    failed = next(c for c in chunks if "error" in c)
    assert failed["object"] == "text_completion" and failed["choices"][0]["finish_reason"] == "error"
    assert chunks[-1]["choices"] == [] and "usage" in chunks[-1]
    with pytest.raises(openai.APIError):
        fake_a.fake.script(Stream("one two three four", error_after=2))
        list(sdk(gateway, api_key).completions.create(model="test/alpha", prompt="Count", stream=True))
