"""Chat completions served by an `api: bedrock` provider: the openai SDK talks to the gateway, the
gateway talks Converse / ConverseStream to FakeBedrock (a real HTTP server speaking Bedrock's JSON and
binary event-stream wire, and checking every SigV4 signature)."""

from __future__ import annotations

import base64
import datetime
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import anthropic
import httpx
import openai
import pytest
from botocore.credentials import Credentials

from omnirouter.catalog.types import Endpoint, Provider
from omnirouter.providers.aws import event_stream_framer, sign
from omnirouter.providers.base import Timeouts, UpstreamError
from omnirouter.providers.bedrock import BedrockAdapter
from omnirouter.providers.http1 import Pool
from omnirouter.testing import FakeBedrock, FakeBedrockThread, Reply, Status, Stream
from omnirouter.testing.fakes.bedrock import event_message, sigv4_signature
from tests.gateway import Gateway

ACCESS_KEY = "AKIAFAKEBEDROCK00001"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYFAKEKEY0001"
MODEL = "anthropic.claude-sonnet-4-5-20250929-v1:0"
PROFILE_ARN = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6"
PRICES = {
    "prompt": "0.000003",
    "completion": "0.000015",
    "input_cache_read": "0.0000003",
    "input_cache_write": "0.00000375",
}
PARAMETERS = [
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "tools",
    "tool_choice",
    "reasoning",
    "response_format",
    "structured_outputs",
]
TWO = {"provider": {"order": ["bedrock", "backup"]}}
HELLO = [{"role": "user", "content": "hello there"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
# Variables of the AWS credential chain that must not leak in from the machine running the tests.
AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)


def config(bedrock_url: str, backup_url: str, **provider: Any) -> dict[str, Any]:
    bedrock = {"slug": "bedrock", "name": "Amazon Bedrock", "api": "bedrock", "region": "us-east-1",
               "base_url": bedrock_url, **provider}  # fmt: skip
    endpoint = {"provider": "bedrock", "upstream_model": MODEL, "pricing": PRICES, "max_completion_tokens": 16000}
    return {
        "providers": [bedrock, {"slug": "backup", "name": "Backup", "api": "openai", "base_url": backup_url}],
        "models": [
            {
                "id": "test/claude",
                "name": "Claude on Bedrock",
                "context_length": 200000,
                "supported_parameters": PARAMETERS,
                "endpoints": [endpoint],
            },
            {
                "id": "test/claude-profile",
                "name": "Claude through an inference profile",
                "context_length": 200000,
                "supported_parameters": PARAMETERS,
                "endpoints": [{**endpoint, "upstream_model": PROFILE_ARN}],
            },
            {
                "id": "test/claude-two",
                "name": "Claude (two)",
                "context_length": 200000,
                "supported_parameters": PARAMETERS,
                "endpoints": [endpoint, {"provider": "backup", "upstream_model": "claude-backup", "pricing": PRICES}],
            },
        ],
    }


@pytest.fixture(scope="module")
def aws_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[pytest.MonkeyPatch]:
    """The gateway's AWS environment: keys in the environment variables, no files, no instance metadata."""
    nowhere = tmp_path_factory.mktemp("aws") / "absent"
    with pytest.MonkeyPatch.context() as mp:
        for name in AWS_VARIABLES:
            mp.delenv(name, raising=False)
        mp.setenv("AWS_SHARED_CREDENTIALS_FILE", str(nowhere))
        mp.setenv("AWS_CONFIG_FILE", str(nowhere))
        mp.setenv("AWS_EC2_METADATA_DISABLED", "true")
        mp.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        mp.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
        yield mp


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBedrockThread]:
    handle = FakeBedrock.run_in_thread(api_key=f"{ACCESS_KEY}:{SECRET}")
    yield handle
    handle.stop()


@pytest.fixture(autouse=True)
def _fresh(fake: FakeBedrockThread) -> None:
    fake.reset()


@pytest.fixture(scope="module")
def gw(
    tmp_path_factory: pytest.TempPathFactory, fake: FakeBedrockThread, fake_a: Any, aws_env: Any
) -> Iterator[Gateway]:
    gateway = Gateway(tmp_path_factory.mktemp("bedrock"), config(fake.base_url, fake_a.base_url)).start()
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def client(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.api, api_key=gw.create_key()["key"], max_retries=0)


def sent(fake: FakeBedrockThread) -> dict[str, Any]:
    """The Converse request the fake got last."""
    return fake.requests[-1].json


def raw_body(raw: Any) -> dict[str, Any]:
    return json.loads(raw.http_response.text, parse_float=Decimal)


# -- the wire, without a gateway ------------------------------------------------------------------------


def test_the_signature_agrees_with_an_independent_sigv4() -> None:
    """botocore's signing (the adapter's) and the fake's own SigV4 code agree on a fixed request and
    clock, with a session token and a model id that needs percent-encoding."""
    frozen = Credentials(ACCESS_KEY, SECRET, "session-token-1").get_frozen_credentials()
    path = "/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream"
    body = b'{"messages":[]}'
    at = datetime.datetime(2026, 12, 2, 8, 30, 0)
    with mock.patch("botocore.auth.get_current_datetime", return_value=at):
        headers = sign(frozen, "eu-west-3", "https://bedrock-runtime.eu-west-3.amazonaws.com" + path, body,
                       {"Content-Type": "application/json"})  # fmt: skip
    assert headers["X-Amz-Date"] == "20261202T083000Z"
    assert headers["X-Amz-Security-Token"] == "session-token-1"
    match = re.fullmatch(r"AWS4-HMAC-SHA256 Credential=(\S+?)/(\S+), SignedHeaders=(\S+), Signature=(\w+)",
                         headers["Authorization"])  # fmt: skip
    assert match is not None
    assert match[1] == ACCESS_KEY and match[2] == "20261202/eu-west-3/bedrock/aws4_request"
    received = {k.lower(): v for k, v in headers.items()} | {"host": "bedrock-runtime.eu-west-3.amazonaws.com"}
    expected = sigv4_signature(
        SECRET,
        method="POST",
        raw_path=path,
        query="",
        headers=received,
        signed=match[3].split(";"),
        body=body,
        amz_date="20261202T083000Z",
        scope=match[2],
    )
    assert match[4] == expected
    assert SECRET not in json.dumps(headers)


def test_event_stream_messages_are_cut_however_the_bytes_arrive() -> None:
    one = event_message({":event-type": "messageStart", ":message-type": "event"}, b'{"role":"assistant"}')
    two = event_message({":event-type": "metadata", ":message-type": "event"}, b'{"usage":{}}')
    frame = event_stream_framer()
    got: list[Any] = []
    data = one + two
    for i in range(0, len(data), 7):
        got += frame(data[i : i + 7])
    assert [(h[":event-type"], p) for h, p in got] == [("messageStart", b'{"role":"assistant"}'),
                                                       ("metadata", b'{"usage":{}}')]  # fmt: skip
    broken = event_message({":event-type": "metadata", ":message-type": "event"}, b"{}", corrupt=True)
    with pytest.raises(UpstreamError) as info:
        event_stream_framer()(broken)
    assert info.value.kind == "protocol"


async def test_the_regions_endpoint_is_the_default_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    adapter = BedrockAdapter(Pool())
    target = await adapter._target(Provider(slug="b", name="B", api="bedrock", region="eu-central-1"))
    assert target.base_url == "https://bedrock-runtime.eu-central-1.amazonaws.com"
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    target = await adapter._target(Provider(slug="c", name="C", api="bedrock"))
    assert (target.region, target.origin.host) == ("ap-south-1", "bedrock-runtime.ap-south-1.amazonaws.com")


# -- through the gateway --------------------------------------------------------------------------------


def test_text_with_a_system_prompt(client: openai.OpenAI, fake: FakeBedrockThread) -> None:
    fake.script(Reply("Bonjour!", prompt_tokens=12, completion_tokens=3))
    raw = client.chat.completions.with_raw_response.create(
        model="test/claude",
        messages=[{"role": "system", "content": "Answer in French."}, *HELLO],
        temperature=0.2,
        max_tokens=300,
        stop=["END"],
    )
    body = raw_body(raw)
    choice = body["choices"][0]
    assert choice["message"]["content"] == "Bonjour!"
    assert (choice["finish_reason"], choice["native_finish_reason"]) == ("stop", "end_turn")
    assert body["provider"] == "Amazon Bedrock"
    assert (body["usage"]["prompt_tokens"], body["usage"]["completion_tokens"]) == (12, 3)
    assert body["usage"]["cost"] == 12 * Decimal(PRICES["prompt"]) + 3 * Decimal(PRICES["completion"])
    request = fake.requests[-1]
    assert request.path_params == {"modelId": MODEL}
    assert request.path.endswith("/converse")
    assert request.headers["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert "/us-east-1/bedrock/aws4_request" in request.headers["Authorization"]
    assert request.json == {
        "messages": [{"role": "user", "content": [{"text": "hello there"}]}],
        "system": [{"text": "Answer in French."}],
        "inferenceConfig": {"maxTokens": 300, "temperature": 0.2, "stopSequences": ["END"]},
    }


def test_images_and_documents_go_inline(client: openai.OpenAI, fake: FakeBedrockThread) -> None:
    png = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()
    pdf = base64.b64encode(b"%PDF-1.7 fake").decode()
    client.chat.completions.create(
        model="test/claude",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is in these?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
                    {
                        "type": "file",
                        "file": {"filename": "q3_report.pdf", "file_data": f"data:application/pdf;base64,{pdf}"},
                    },
                ],
            }
        ],
    )
    assert sent(fake)["messages"][0]["content"] == [
        {"text": "What is in these?"},
        {"image": {"format": "png", "source": {"bytes": png}}},
        {"document": {"format": "pdf", "name": "q3 report", "source": {"bytes": pdf}}},
    ]


def test_tools_round_trip(client: openai.OpenAI, fake: FakeBedrockThread) -> None:
    fake.script(
        Reply(
            "",
            tool_calls=[
                {"id": "tooluse_p", "name": "weather", "arguments": {"city": "Paris"}},
                {"id": "tooluse_r", "name": "weather", "arguments": {"city": "Rome"}},
            ],
        ),
        Reply("Paris 18C, Rome 24C."),
    )
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris and Rome?"}]
    first = client.chat.completions.create(
        model="test/claude", messages=messages, tools=[WEATHER], tool_choice="required"
    )
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or ()] == [
        ("tooluse_p", "weather", {"city": "Paris"}),
        ("tooluse_r", "weather", {"city": "Rome"}),
    ]
    assert sent(fake)["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "weather",
                    "inputSchema": {"json": WEATHER["function"]["parameters"]},
                    "description": "Current weather in a city",
                }
            }
        ],
        "toolChoice": {"any": {}},
    }
    messages.append(message.model_dump(exclude_none=True))
    messages += [
        {"role": "tool", "tool_call_id": "tooluse_p", "content": "18C"},
        {"role": "tool", "tool_call_id": "tooluse_r", "content": "24C"},
    ]
    second = client.chat.completions.create(model="test/claude", messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "Paris 18C, Rome 24C."
    turns = sent(fake)["messages"]
    assert turns[1]["content"] == [
        {"toolUse": {"toolUseId": "tooluse_p", "name": "weather", "input": {"city": "Paris"}}},
        {"toolUse": {"toolUseId": "tooluse_r", "name": "weather", "input": {"city": "Rome"}}},
    ]
    assert turns[2] == {
        "role": "user",
        "content": [
            {"toolResult": {"toolUseId": "tooluse_p", "content": [{"text": "18C"}]}},
            {"toolResult": {"toolUseId": "tooluse_r", "content": [{"text": "24C"}]}},
        ],
    }


def test_streaming_text_and_tool_calls(client: openai.OpenAI, fake: FakeBedrockThread) -> None:
    fake.script(
        Stream(content="one two three four", prompt_tokens=20, completion_tokens=4),
        Stream(content="", tool_calls=[{"id": "tooluse_w", "name": "weather", "arguments": {"city": "Lisbon"}}]),
    )
    chunks = list(
        client.chat.completions.create(
            model="test/claude", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )
    assert fake.requests[-1].path.endswith("/converse-stream")
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "one two three four"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].usage is not None and (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (
        20,
        4,
    )

    chunks = list(client.chat.completions.create(model="test/claude", messages=HELLO, tools=[WEATHER], stream=True))
    calls = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or ()]
    assert calls[0].id == "tooluse_w" and calls[0].function and calls[0].function.name == "weather"
    assert json.loads("".join(t.function.arguments or "" for t in calls if t.function)) == {"city": "Lisbon"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


def test_reasoning_with_its_signature_round_trips(client: openai.OpenAI, fake: FakeBedrockThread) -> None:
    fake.script(Reply("42.", reasoning="Six times seven."), Reply("Yes."))
    raw = client.chat.completions.with_raw_response.create(
        model="test/claude", messages=[{"role": "user", "content": "6*7?"}], max_tokens=4096,
        extra_body={"reasoning": {"max_tokens": 2048}},
    )  # fmt: skip
    message = raw_body(raw)["choices"][0]["message"]
    assert sent(fake)["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 2048}}
    assert sent(fake)["inferenceConfig"] == {"maxTokens": 4096}
    assert message["reasoning"] == "Six times seven."
    [detail] = message["reasoning_details"]
    assert (detail["type"], detail["text"], detail["format"]) == (
        "reasoning.text",
        "Six times seven.",
        "anthropic-claude-v1",
    )
    assert detail["signature"]

    turn = {"role": "assistant", "content": message["content"], "reasoning_details": message["reasoning_details"]}
    client.chat.completions.create(
        model="test/claude", messages=[{"role": "user", "content": "6*7?"}, turn, {"role": "user", "content": "Sure?"}]
    )
    assert sent(fake)["messages"][1]["content"] == [
        {"reasoningContent": {"reasoningText": {"text": "Six times seven.", "signature": detail["signature"]}}},
        {"text": "42."},
    ]

    forged = {**turn, "reasoning_details": [{**detail, "signature": "Zm9yZ2Vk"}]}
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="test/claude",
            messages=[{"role": "user", "content": "6*7?"}, forged, {"role": "user", "content": "?"}],
        )
    assert "signature" in info.value.message


def test_streamed_reasoning_pieces_go_back_as_one_signed_block(client: openai.OpenAI, fake: FakeBedrockThread) -> None:
    fake.script(Stream(content="Blue.", reasoning="Rayleigh scattering favours short wavelengths."))
    question = {"role": "user", "content": "Why is the sky blue?"}
    chunks = list(
        client.chat.completions.create(
            model="test/claude", messages=[question], stream=True, max_tokens=4096,
            extra_body={"reasoning": {"effort": "low"}},
        )
    )  # fmt: skip
    assert sent(fake)["additionalModelRequestFields"] == {"thinking": {"type": "enabled", "budget_tokens": 1024}}
    deltas = [c.choices[0].delta.model_extra or {} for c in chunks if c.choices]
    assert "".join(d.get("reasoning") or "" for d in deltas) == "Rayleigh scattering favours short wavelengths."
    details = [x for d in deltas for x in d.get("reasoning_details") or ()]
    assert details[-1]["signature"] and all(x["index"] == 0 for x in details)
    turn = {"role": "assistant", "content": "Blue.", "reasoning_details": details}  # pieces, as streamed
    reply = client.chat.completions.create(
        model="test/claude", messages=[question, turn, {"role": "user", "content": "Sure?"}]
    )
    assert reply.choices[0].message.content
    block = sent(fake)["messages"][1]["content"][0]["reasoningContent"]["reasoningText"]
    assert block == {"text": "Rayleigh scattering favours short wavelengths.", "signature": details[-1]["signature"]}


def test_cache_tokens_are_billed_at_their_prices(client: openai.OpenAI, fake: FakeBedrockThread) -> None:
    reply = {"prompt_tokens": 1000, "cached_tokens": 800, "cache_write_tokens": 150, "completion_tokens": 10}
    fake.script(Reply("ok", **reply), Stream(content="ok", **reply))
    expected = (
        50 * Decimal(PRICES["prompt"])
        + 800 * Decimal(PRICES["input_cache_read"])
        + 150 * Decimal(PRICES["input_cache_write"])
        + 10 * Decimal(PRICES["completion"])
    )
    usage = raw_body(client.chat.completions.with_raw_response.create(model="test/claude", messages=HELLO))["usage"]
    assert usage["prompt_tokens"] == 1000
    assert usage["prompt_tokens_details"]["cached_tokens"] == 800
    assert usage["prompt_tokens_details"]["cache_write_tokens"] == 150
    assert usage["cost"] == expected
    chunks = list(
        client.chat.completions.create(
            model="test/claude", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )
    streamed = chunks[-1].usage
    assert streamed is not None and streamed.prompt_tokens == 1000
    assert Decimal(str((streamed.model_extra or {})["cost"])) == expected


def test_throttling_falls_back(client: openai.OpenAI, fake: FakeBedrockThread, fake_a: Any) -> None:
    fake.script(Status(429))
    fake_a.script(Reply("from the backup"))
    raw = client.chat.completions.with_raw_response.create(model="test/claude-two", messages=HELLO, extra_body=TWO)
    body = raw_body(raw)
    assert body["choices"][0]["message"]["content"] == "from the backup"
    assert body["provider"] == "Backup"
    assert fake.requests[-1].json is not None  # Bedrock was asked first


def test_an_exception_before_the_first_token_falls_back(
    client: openai.OpenAI, fake: FakeBedrockThread, fake_a: Any
) -> None:
    fake.script(Stream(content="never", error_after=0, error={"type": "throttlingException", "message": "Slow down"}))
    fake_a.script(Stream(content="backup stream"))
    chunks = list(client.chat.completions.create(model="test/claude-two", messages=HELLO, stream=True, extra_body=TWO))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "backup stream"


def test_validation_error_is_the_clients_400(client: openai.OpenAI, fake: FakeBedrockThread, fake_a: Any) -> None:
    error_type = {"x-amzn-ErrorType": "ValidationException:http://internal.amazon.com/coral/"}
    fake.script(Status(400, body={"message": "messages.0.content: too many images"}, headers=error_type))
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="test/claude-two", messages=HELLO, extra_body=TWO)
    assert "too many images" in info.value.message
    body: Any = info.value.body
    assert body["metadata"]["provider_code"] == "ValidationException"
    assert not fake_a.requests  # a request error does not fall back


def test_an_exception_after_the_first_token_ends_the_stream_in_band(
    client: openai.OpenAI, fake: FakeBedrockThread
) -> None:
    fake.script(
        Stream(content="one two three", error_after=2, error={"type": "modelStreamErrorException", "message": "boom"})
    )
    received: list[str] = []
    with pytest.raises(openai.APIError):
        for chunk in client.chat.completions.create(model="test/claude", messages=HELLO, stream=True):
            if chunk.choices:
                received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "one two"


def test_a_broken_event_stream_is_a_protocol_error(client: openai.OpenAI, fake: FakeBedrockThread) -> None:
    fake.script(Stream(content="one two three", broken_chunk_at=1))
    with pytest.raises(openai.APIError):
        list(client.chat.completions.create(model="test/claude", messages=HELLO, stream=True))


def test_a_wrong_secret_is_refused_and_never_shown(
    tmp_path: Path, fake: FakeBedrockThread, fake_a: Any, aws_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "wrongSecretKey/ABCDEFGHIJKLMNOPQRSTUVWXYZ0123"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong)
    gw = Gateway(tmp_path, config(fake.base_url, fake_a.base_url)).start()
    try:
        bad = openai.OpenAI(base_url=gw.api, api_key=gw.create_key()["key"], max_retries=0)
        with pytest.raises(openai.APIStatusError) as info:
            bad.chat.completions.create(model="test/claude", messages=HELLO)
    finally:
        gw.stop()
    err = info.value
    body: Any = err.body
    assert err.status_code == 502  # the provider's credentials failed, not the client's request
    assert body["metadata"]["error_type"] == "permission_denied"
    assert body["metadata"]["provider_code"] == "InvalidSignatureException"
    assert "signature we calculated does not match" in err.message
    assert wrong not in err.response.text and SECRET not in err.response.text


def test_credentials_from_a_profile_with_a_session_token(
    tmp_path: Path, fake: FakeBedrockThread, fake_a: Any, aws_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[default]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = other\n\n"
        f"[bedrock-test]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET}\n"
        "aws_session_token = IQoJb3JpZ2luX2VjEFAKE\n"
    )
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_PROFILE", "bedrock-test")
    (tmp_path / "gw").mkdir()
    gw = Gateway(tmp_path / "gw", config(fake.base_url, fake_a.base_url)).start()
    try:
        other = openai.OpenAI(base_url=gw.api, api_key=gw.create_key()["key"], max_retries=0)
        reply = other.chat.completions.create(model="test/claude", messages=HELLO)
    finally:
        gw.stop()
    assert reply.choices[0].message.content == "Echo: hello there"
    headers = fake.requests[-1].headers
    assert headers["X-Amz-Security-Token"] == "IQoJb3JpZ2luX2VjEFAKE"
    assert "x-amz-security-token" in headers["Authorization"]


def test_without_credentials_the_next_endpoint_answers(
    tmp_path: Path, fake: FakeBedrockThread, fake_a: Any, aws_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    fake_a.script(Reply("from the backup"))
    gw = Gateway(tmp_path, config(fake.base_url, fake_a.base_url)).start()
    try:
        other = openai.OpenAI(base_url=gw.api, api_key=gw.create_key()["key"], max_retries=0)
        reply = other.chat.completions.create(model="test/claude-two", messages=HELLO, extra_body=TWO)
        with pytest.raises(openai.APIStatusError) as info:
            other.chat.completions.create(model="test/claude", messages=HELLO)
    finally:
        gw.stop()
    assert reply.choices[0].message.content == "from the backup"
    assert "No AWS credentials found" in info.value.message
    assert not fake.requests  # nothing unsigned was sent


def test_a_bedrock_api_key_is_a_bearer_token(tmp_path: Path, fake_a: Any, aws_env: Any) -> None:
    with FakeBedrock.run_in_thread(api_key="ABSKQmVkcm9ja0FQSUtleS1mYWtl") as keyed:
        gw = Gateway(tmp_path, config(keyed.base_url, fake_a.base_url, api_key="ABSKQmVkcm9ja0FQSUtleS1mYWtl")).start()
        try:
            other = openai.OpenAI(base_url=gw.api, api_key=gw.create_key()["key"], max_retries=0)
            reply = other.chat.completions.create(model="test/claude", messages=HELLO)
        finally:
            gw.stop()
        assert reply.choices[0].message.content == "Echo: hello there"
        assert keyed.requests[-1].headers["Authorization"] == "Bearer ABSKQmVkcm9ja0FQSUtleS1mYWtl"


async def test_the_adapter_on_its_own(fake: FakeBedrockThread, aws_env: Any) -> None:
    """complete() and stream() against the fake, without the pipeline: the internal form comes back."""
    pool = Pool()
    adapter = BedrockAdapter(pool)
    provider = Provider(slug="b", name="B", api="bedrock", region="us-east-1", base_url=fake.base_url)
    endpoint = Endpoint(provider="b", upstream_model=MODEL)
    timeouts = Timeouts(connect=5, first_byte=10, total=30)
    fake.script(
        Reply("hi", prompt_tokens=5, completion_tokens=1), Stream(content="a b", prompt_tokens=5, completion_tokens=2)
    )
    try:
        answer = await adapter.complete(provider, endpoint, {"model": MODEL, "messages": HELLO}, timeouts)
        assert answer["choices"][0]["message"]["content"] == "hi"
        assert answer["choices"][0]["finish_reason"] == "end_turn"
        assert answer["usage"]["prompt_tokens"] == 5
        result = await adapter.stream(provider, endpoint, {"model": MODEL, "messages": HELLO, "stream": True}, timeouts)
        chunks = [c async for c in result.chunks]
        await result.close()
    finally:
        pool.close()
    assert [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]] == ["a", " b", None]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert (chunks[-1]["choices"], chunks[-1]["usage"]["prompt_tokens"]) == ([], 5)  # the usage-only chunk last


def test_an_inference_profile_arn_is_one_signed_path_segment(client: openai.OpenAI, fake: FakeBedrockThread) -> None:
    reply = client.chat.completions.create(model="test/claude-profile", messages=HELLO)
    assert reply.choices[0].message.content == "Echo: hello there"  # the fake checked the signature
    assert fake.requests[-1].path_params == {"modelId": PROFILE_ARN}


def test_json_schema_output_and_a_trailing_cache_point(client: openai.OpenAI, fake: FakeBedrockThread) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    fake.script(Reply('{"answer": "yes"}'))
    reply = client.chat.completions.create(
        model="test/claude",
        messages=HELLO,
        response_format={"type": "json_schema", "json_schema": {"name": "verdict", "schema": schema}},
        extra_body={"cache_control": {"type": "ephemeral"}},
    )
    assert json.loads(reply.choices[0].message.content or "") == {"answer": "yes"}
    request = sent(fake)
    definition = request["outputConfig"]["textFormat"]["structure"]["jsonSchema"]
    assert request["outputConfig"]["textFormat"]["type"] == "json_schema"
    assert (definition["name"], json.loads(definition["schema"])) == ("verdict", schema)
    assert request["messages"][-1]["content"] == [{"text": "hello there"}, {"cachePoint": {"type": "default"}}]


def test_a_guardrail_stop_is_a_content_filter_finish(client: openai.OpenAI, fake: FakeBedrockThread) -> None:
    fake.script(Reply("Sorry, I can't help with that.", finish_reason="guardrail_intervened"))
    reply = client.chat.completions.create(model="test/claude", messages=HELLO)
    assert reply.choices[0].finish_reason == "content_filter"


def test_claude_code_style_messages_reach_bedrock_with_thinking(gw: Gateway, fake: FakeBedrockThread) -> None:
    """The anthropic SDK on /messages, through the internal form, to Converse: a thinking block comes
    back signed and goes up again as reasoningContent with its signature."""
    sdk = anthropic.Anthropic(base_url=gw.url + "/api", api_key=gw.create_key()["key"], max_retries=0)
    fake.script(Reply("4.", reasoning="Two and two."), Reply("Yes."))
    question = {"role": "user", "content": "2+2?"}
    first = sdk.messages.create(
        model="test/claude", max_tokens=4096, messages=[question], thinking={"type": "enabled", "budget_tokens": 1024}
    )
    assert sent(fake)["additionalModelRequestFields"]["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    thinking = next(b for b in first.content if b.type == "thinking")
    assert (thinking.thinking, bool(thinking.signature)) == ("Two and two.", True)
    sdk.messages.create(
        model="test/claude",
        max_tokens=4096,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[question, {"role": "assistant", "content": first.content}, {"role": "user", "content": "Sure?"}],
    )
    assert sent(fake)["messages"][1]["content"][0] == {
        "reasoningContent": {"reasoningText": {"text": "Two and two.", "signature": thinking.signature}}
    }


def test_the_fake_refuses_what_bedrock_refuses(fake: FakeBedrockThread) -> None:
    """Unsigned, tampered-with and malformed requests fail as Bedrock fails them, with its error names."""
    frozen = Credentials(ACCESS_KEY, SECRET).get_frozen_credentials()
    url = f"{fake.base_url}/model/{MODEL.replace(':', '%3A')}/converse"

    def post(body: bytes, *, signed_body: bytes | None = None) -> httpx.Response:
        headers = sign(
            frozen, "us-east-1", url, body if signed_body is None else signed_body, {"Content-Type": "application/json"}
        )
        return httpx.post(url, content=body, headers=headers)

    good = json.dumps({"messages": [{"role": "user", "content": [{"text": "hi"}]}]}).encode()
    assert post(good).status_code == 200
    unsigned = httpx.post(url, content=good, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 403
    assert unsigned.headers["x-amzn-ErrorType"].startswith("MissingAuthenticationTokenException")
    tampered = post(good.replace(b"hi", b"ho"), signed_body=good)
    assert tampered.status_code == 403 and tampered.headers["x-amzn-ErrorType"].startswith("InvalidSignatureException")
    blank = post(json.dumps({"messages": [{"role": "user", "content": [{"text": " "}]}]}).encode())
    assert blank.status_code == 400 and blank.headers["x-amzn-ErrorType"].startswith("ValidationException")
    assert "is blank" in blank.json()["message"]
    unknown = post(json.dumps({"messages": [{"role": "user", "content": [{"text": "hi"}]}], "stream": True}).encode())
    assert unknown.status_code == 400 and "stream" in unknown.json()["message"]
