"""A provider with `api: azure` behind the gateway: the official openai SDK on /chat/completions,
FakeAzure (OpenAI's chat wire at Azure's deployment URLs, `api-key` auth) upstream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

from omnirouter.providers.azure import DEFAULT_API_VERSION
from omnirouter.testing import FakeAzure, Reply, Status
from omnirouter.testing.fakes.core import FakeThread
from tests.gateway import Gateway

KEY_A, KEY_B = "azure-key-a", "azure-key-b"
PRICES = {"prompt": "0.000002", "completion": "0.000008", "input_cache_read": "0.0000005"}
HELLO = [{"role": "user", "content": "hello there"}]


def config(a: str, b: str) -> dict[str, Any]:
    return {
        "providers": [
            {"slug": "az-a", "name": "Azure A", "api": "azure", "base_url": a, "api_key": KEY_A,
             "api_version": "2025-01-01-preview"},
            {"slug": "az-b", "name": "Azure B", "api": "azure", "base_url": b, "api_key": KEY_B},
        ],
        "models": [
            {"id": "test/azure", "name": "Azure GPT", "context_length": 128000,
             "endpoints": [{"provider": "az-a", "upstream_model": "gpt-4o-prod", "pricing": PRICES}]},
            {"id": "test/azure-two", "name": "Azure GPT on two resources", "context_length": 128000,
             "endpoints": [{"provider": "az-a", "upstream_model": "gpt-4o-prod", "pricing": PRICES},
                           {"provider": "az-b", "upstream_model": "gpt-4o-backup", "pricing": PRICES}]},
        ],
    }  # fmt: skip


@pytest.fixture(scope="module")
def az_a() -> Iterator[FakeThread[FakeAzure]]:
    with FakeAzure.run_in_thread(api_key=KEY_A) as fake:
        yield fake


@pytest.fixture(scope="module")
def az_b() -> Iterator[FakeThread[FakeAzure]]:
    with FakeAzure.run_in_thread(api_key=KEY_B) as fake:
        yield fake


@pytest.fixture(scope="module")
def gw(
    tmp_path_factory: pytest.TempPathFactory, az_a: FakeThread[FakeAzure], az_b: FakeThread[FakeAzure]
) -> Iterator[Gateway]:
    gateway = Gateway(tmp_path_factory.mktemp("azure"), config(az_a.base_url, az_b.base_url)).start()
    yield gateway
    gateway.stop()


@pytest.fixture
def client(gw: Gateway, az_a: FakeThread[FakeAzure], az_b: FakeThread[FakeAzure]) -> openai.OpenAI:
    az_a.reset()
    az_b.reset()
    return openai.OpenAI(base_url=gw.api, api_key=gw.create_key()["key"], max_retries=0)


def price(name: str) -> Decimal:
    return Decimal(PRICES[name])


def test_chat_reaches_the_deployment_with_api_key_and_version(
    client: openai.OpenAI, az_a: FakeThread[FakeAzure]
) -> None:
    az_a.script(Reply("Hi from Azure.", prompt_tokens=1000, completion_tokens=20, cached_tokens=400))
    raw = client.chat.completions.with_raw_response.create(model="test/azure", messages=HELLO)
    body = json.loads(raw.http_response.text, parse_float=Decimal)
    assert body["choices"][0]["message"]["content"] == "Hi from Azure."
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["provider"] == "Azure A"
    usage = body["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (1000, 20)
    assert usage["prompt_tokens_details"]["cached_tokens"] == 400
    expected = 600 * price("prompt") + 400 * price("input_cache_read") + 20 * price("completion")
    assert usage["cost"] == expected

    [sent] = az_a.requests
    assert sent.path == "/openai/deployments/gpt-4o-prod/chat/completions"
    assert sent.query == {"api-version": "2025-01-01-preview"}
    assert sent.headers["api-key"] == KEY_A
    assert "Authorization" not in sent.headers
    assert sent.json["messages"] == HELLO


def test_streaming(client: openai.OpenAI, az_a: FakeThread[FakeAzure]) -> None:
    az_a.script(Reply("one two three", prompt_tokens=50, completion_tokens=3))
    chunks = list(client.chat.completions.create(model="test/azure", messages=HELLO, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "one two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage = chunks[-1].usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (50, 3)
    assert Decimal(str(usage.model_extra["cost"])) == 50 * price("prompt") + 3 * price("completion")  # type: ignore[index]
    sent = az_a.requests[-1]
    assert sent.json["stream"] is True
    assert sent.path == "/openai/deployments/gpt-4o-prod/chat/completions"
    assert sent.headers["api-key"] == KEY_A and "Authorization" not in sent.headers


def test_tool_call(client: openai.OpenAI, az_a: FakeThread[FakeAzure]) -> None:
    az_a.script(Reply(tool_calls=[{"name": "weather", "arguments": {"city": "Oslo"}}]))
    tool = {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}
    result = client.chat.completions.create(model="test/azure", messages=HELLO, tools=[tool])  # type: ignore[list-item]
    call = result.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "weather" and json.loads(call.function.arguments) == {"city": "Oslo"}  # type: ignore[union-attr]
    assert result.choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("stream", [False, True])
def test_a_429_falls_back_to_the_next_resource(
    client: openai.OpenAI, az_a: FakeThread[FakeAzure], az_b: FakeThread[FakeAzure], stream: bool
) -> None:
    az_a.script(Status(429, retry_after=5))
    az_b.script(Reply("from B"))
    extra = {"provider": {"order": ["az-a", "az-b"]}}
    if stream:
        chunks = list(
            client.chat.completions.create(model="test/azure-two", messages=HELLO, stream=True, extra_body=extra)
        )
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "from B"
    else:
        result = client.chat.completions.create(model="test/azure-two", messages=HELLO, extra_body=extra)
        assert result.choices[0].message.content == "from B"
    assert len(az_a.requests) == 1 and len(az_b.requests) == 1
    sent = az_b.requests[0]
    assert sent.path == "/openai/deployments/gpt-4o-backup/chat/completions"
    assert sent.query == {"api-version": DEFAULT_API_VERSION}  # the provider set none
    assert sent.headers["api-key"] == KEY_B


def test_a_content_filter_400_is_the_clients_error(
    client: openai.OpenAI, az_a: FakeThread[FakeAzure], az_b: FakeThread[FakeAzure]
) -> None:
    message = "The response was filtered due to the prompt triggering Azure OpenAI's content management policy."
    az_a.script(Status(400, {"error": {"message": message, "type": None, "param": "prompt", "code": "content_filter"}}))
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(
            model="test/azure-two", messages=HELLO, extra_body={"provider": {"order": ["az-a", "az-b"]}}
        )
    err = exc.value.body
    assert isinstance(err, dict) and message in err["message"]
    assert err["metadata"]["provider_code"] == "content_filter"
    assert az_b.requests == []  # a request error does not fall back


def test_a_wrong_key_is_an_authentication_error(tmp_path: Path, az_a: FakeThread[FakeAzure]) -> None:
    cfg = config(az_a.base_url, az_a.base_url)
    cfg["providers"][0]["api_key"] = "not-the-key"
    gateway = Gateway(tmp_path, cfg).start()
    try:
        c = openai.OpenAI(base_url=gateway.api, api_key=gateway.create_key()["key"], max_retries=0)
        with pytest.raises(openai.APIStatusError) as exc:
            c.chat.completions.create(model="test/azure", messages=HELLO)
        body = exc.value.body
        assert isinstance(body, dict) and body["metadata"]["error_type"] == "authentication"
        assert "not-the-key" not in json.dumps(body)
    finally:
        gateway.stop()
