"""The fake OpenAI upstream, exercised through the real openai SDK over loopback HTTP."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest
from openai import AsyncOpenAI, OpenAI
from tests.spec_validation import require_spec, validate, validate_sse

from omnirouter.testing import BrokenJSON, Delay, FakeOpenAI, Reply, Reset, Status, Stream

MESSAGES: list[Any] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "hello there friend"},
]
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"enum": ["c", "f"]},
                "days": {"type": "integer"},
            },
            "required": ["city", "unit"],
        },
    },
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[AsyncOpenAI]:
    # No SDK retries: each scripted step must surface exactly once.
    async with AsyncOpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0, timeout=5) as c:
        yield c


async def collect(stream: Any) -> list[Any]:
    return [chunk async for chunk in stream]


async def raw_post(fake: FakeOpenAI, body: dict[str, Any]) -> tuple[int, str, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(fake.base_url + "/chat/completions", json=body) as resp,
    ):
        return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


# -- default behaviour --------------------------------------------------------------------------------


async def test_default_completion(client: AsyncOpenAI) -> None:
    result = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert result.id.startswith("chatcmpl-")
    assert result.object == "chat.completion"
    assert result.model == "gpt-4o-mini"
    assert result.system_fingerprint
    choice = result.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "Echo: hello there friend"
    assert choice.finish_reason == "stop"
    assert result.usage is not None
    # "You are terse." + "hello there friend" = 32 chars -> 8 tokens; 4 word tokens out.
    assert result.usage.prompt_tokens == 8
    assert result.usage.completion_tokens == 4
    assert result.usage.total_tokens == 12


async def test_max_tokens_truncates_with_length(client: AsyncOpenAI) -> None:
    result = await client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=2)
    assert result.choices[0].message.content == "Echo: hello"
    assert result.choices[0].finish_reason == "length"
    assert result.usage is not None and result.usage.completion_tokens == 2

    result = await client.chat.completions.create(model="m", messages=MESSAGES, max_completion_tokens=3)
    assert result.choices[0].message.content == "Echo: hello there"
    assert result.choices[0].finish_reason == "length"


async def test_stream_with_usage(client: AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-4o", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = await collect(stream)
    assert all(c.object == "chat.completion.chunk" and c.model == "gpt-4o" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: hello there friend"
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) == 4  # one word per chunk
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (8, 4)
    assert all(c.usage is None for c in chunks[:-1])


async def test_stream_without_include_usage_has_no_usage_chunk(client: AsyncOpenAI) -> None:
    chunks = await collect(await client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


async def test_raw_stream_framing(fake: FakeOpenAI) -> None:
    status, content_type, text = await raw_post(
        fake, {"model": "m", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    )
    assert status == 200
    assert content_type.startswith("text/event-stream")
    events = text.split("\n\n")
    assert events[-1] == ""
    assert events[-2] == "data: [DONE]"
    assert all(e.startswith("data: ") for e in events[:-1])
    usage_chunk = json.loads(events[-3].removeprefix("data: "))
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["total_tokens"] == 12


async def test_tool_call(client: AsyncOpenAI) -> None:
    messages = [{"role": "user", "content": "Please call tool for Paris"}]
    result = await client.chat.completions.create(model="m", messages=messages, tools=[WEATHER_TOOL])
    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "test", "unit": "c"}

    # Without tools, or without the phrase, the default is plain text.
    result = await client.chat.completions.create(model="m", messages=MESSAGES, tools=[WEATHER_TOOL])
    assert result.choices[0].message.tool_calls is None


async def test_tool_call_streaming(client: AsyncOpenAI) -> None:
    messages = [{"role": "user", "content": "call tool"}]
    stream = await client.chat.completions.create(model="m", messages=messages, tools=[WEATHER_TOOL], stream=True)
    chunks = await collect(stream)
    fragments = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert len(fragments) > 2  # header plus several argument pieces
    assert all(f.index == 0 for f in fragments)
    assert fragments[0].id and fragments[0].function and fragments[0].function.name == "get_weather"
    arguments = "".join(f.function.arguments or "" for f in fragments if f.function)
    assert json.loads(arguments) == {"city": "test", "unit": "c"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_models_listing(client: AsyncOpenAI, fake: FakeOpenAI) -> None:
    models = [m.id async for m in client.models.list()]
    assert models == fake.models
    assert (await client.models.retrieve("gpt-4o")).id == "gpt-4o"
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("nope")


# -- scripting --------------------------------------------------------------------------------------


async def test_reply_overrides(client: AsyncOpenAI, fake: FakeOpenAI) -> None:
    fake.script(
        Reply(
            "Thought hard.",
            reasoning_tokens=50,
            cached_tokens=100,
            cache_write_tokens=20,
            model="gpt-4o-2024",
        ),
        Reply("x", usage={"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8}),
        Reply("y", omit_usage=True, finish_reason="content_filter"),
    )
    result = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert result.model == "gpt-4o-2024"
    usage = result.usage
    assert usage is not None and usage.prompt_tokens_details and usage.completion_tokens_details
    assert usage.prompt_tokens == 120  # cached and written tokens are part of the prompt
    assert usage.prompt_tokens_details.cached_tokens == 100
    assert getattr(usage.prompt_tokens_details, "cache_write_tokens", None) == 20
    assert usage.completion_tokens == 2 + 50
    assert usage.completion_tokens_details.reasoning_tokens == 50

    result = await client.chat.completions.create(model="m", messages=MESSAGES)
    assert result.usage is not None and result.usage.prompt_tokens == 7

    result = await client.chat.completions.create(model="m", messages=MESSAGES)
    assert result.usage is None and result.choices[0].finish_reason == "content_filter"


async def test_script_is_fifo_then_always_then_default(client: AsyncOpenAI, fake: FakeOpenAI) -> None:
    fake.script(Reply("one"), Reply("two"))
    fake.always(Reply("forever"))
    contents = [
        (await client.chat.completions.create(model="m", messages=MESSAGES)).choices[0].message.content
        for _ in range(4)
    ]
    assert contents == ["one", "two", "forever", "forever"]
    assert fake.pending == 0
    fake.always(None)
    result = await client.chat.completions.create(model="m", messages=MESSAGES)
    assert result.choices[0].message.content == "Echo: hello there friend"


async def test_reply_is_streamed_when_requested(client: AsyncOpenAI, fake: FakeOpenAI) -> None:
    fake.script(Reply("a b c", tool_calls=[{"name": "f", "arguments": {"x": 1}}]))
    chunks = await collect(await client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "a b c"
    fragments = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert fragments[0].function and fragments[0].function.name == "f"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("code", "exc"),
    [
        (400, openai.BadRequestError),
        (500, openai.InternalServerError),
        (502, openai.InternalServerError),
        (503, openai.InternalServerError),
        (529, openai.InternalServerError),
    ],
)
async def test_status(client: AsyncOpenAI, fake: FakeOpenAI, code: int, exc: type[Exception]) -> None:
    fake.script(Status(code))
    with pytest.raises(exc) as info:
        await client.chat.completions.create(model="m", messages=MESSAGES)
    assert isinstance(info.value, openai.APIStatusError)
    assert info.value.status_code == code
    body = info.value.body
    assert isinstance(body, dict) and {"message", "type", "param", "code"} <= body.keys()


async def test_status_429_retry_after_and_custom_bodies(client: AsyncOpenAI, fake: FakeOpenAI) -> None:
    fake.script(
        Status(429, retry_after=7),
        Status(
            400,
            {
                "error": {
                    "message": "bad temp",
                    "type": "invalid_request_error",
                    "param": "temperature",
                    "code": None,
                }
            },
        ),
        Status(502, "<html>Bad Gateway</html>", {"Content-Type": "text/html"}),
    )
    with pytest.raises(openai.RateLimitError) as rate:
        await client.chat.completions.create(model="m", messages=MESSAGES)
    assert rate.value.status_code == 429
    assert rate.value.response.headers["retry-after"] == "7"
    assert rate.value.code == "rate_limit_exceeded"

    with pytest.raises(openai.BadRequestError) as bad:
        await client.chat.completions.create(model="m", messages=MESSAGES)
    assert bad.value.param == "temperature" and "bad temp" in bad.value.message

    with pytest.raises(openai.InternalServerError) as gateway:
        await client.chat.completions.create(model="m", messages=MESSAGES)
    assert gateway.value.response.text == "<html>Bad Gateway</html>"


async def test_reset(client: AsyncOpenAI, fake: FakeOpenAI) -> None:
    fake.script(Reset())
    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(model="m", messages=MESSAGES)
    # The server keeps serving, and our own abort is not a client disconnect.
    assert (await client.chat.completions.create(model="m", messages=MESSAGES)).choices
    assert fake.disconnects == 0


async def test_broken_json(client: AsyncOpenAI, fake: FakeOpenAI) -> None:
    fake.script(BrokenJSON())
    with pytest.raises((openai.APIResponseValidationError, json.JSONDecodeError, ValueError)):
        await client.chat.completions.create(model="m", messages=MESSAGES)


async def test_delay_then_stream(client: AsyncOpenAI, fake: FakeOpenAI) -> None:
    fake.script(Delay(0.2), Delay(0.2, then=Stream(chunks=3)))
    start = time.perf_counter()
    await client.chat.completions.create(model="m", messages=MESSAGES)
    assert time.perf_counter() - start >= 0.2

    start = time.perf_counter()
    stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    assert time.perf_counter() - start >= 0.2  # nothing, not even headers, before the delay ends
    chunks = await collect(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "lorem ipsum dolor"


async def test_delay_times_out_the_client_and_counts_a_disconnect(fake: FakeOpenAI) -> None:
    fake.script(Delay(30))
    async with AsyncOpenAI(base_url=fake.base_url, api_key="k", max_retries=0, timeout=0.2) as c:
        with pytest.raises(openai.APITimeoutError):
            await c.chat.completions.create(model="m", messages=MESSAGES)
    await fake.wait_for_disconnect(timeout=2)


async def test_stream_stop_after(client: AsyncOpenAI, fake: FakeOpenAI) -> None:
    fake.script(Stream(chunks=10, stop_after=3))
    chunks = await collect(await client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert len(chunks) == 4  # role chunk + 3 content chunks, then a clean end without [DONE]
    assert all(c.choices[0].finish_reason is None for c in chunks)


async def test_stream_reset_after(client: AsyncOpenAI, fake: FakeOpenAI) -> None:
    fake.script(Stream(chunks=10, reset_after=2))
    stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    seen: list[Any] = []
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            seen.append(chunk)
    assert len(seen) == 3


@pytest.mark.parametrize("style", ["openai", "openrouter"])
async def test_stream_error_after(client: AsyncOpenAI, fake: FakeOpenAI, style: str) -> None:
    fake.script(Stream(chunks=10, error_after=2, error_style=style))  # type: ignore[arg-type]
    stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    seen: list[Any] = []
    with pytest.raises(openai.APIError) as info:
        async for chunk in stream:
            seen.append(chunk)
    assert len(seen) == 3
    assert info.value.message


async def test_stream_error_event_shapes(fake: FakeOpenAI) -> None:
    fake.script(Stream(error_after=0), Stream(error_after=1, error_style="openrouter", done_after_error=True))
    _, _, text = await raw_post(fake, {"model": "m", "messages": MESSAGES, "stream": True})
    last = json.loads(text.strip().split("\n\n")[-1].removeprefix("data: "))
    assert last == {
        "error": {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }

    _, _, text = await raw_post(fake, {"model": "m", "messages": MESSAGES, "stream": True})
    events = text.strip().split("\n\n")
    assert events[-1] == "data: [DONE]"
    error_chunk = json.loads(events[-2].removeprefix("data: "))
    assert error_chunk["error"]["code"] == 502
    assert error_chunk["choices"][0]["finish_reason"] == "error"


async def test_stream_broken_chunk(client: AsyncOpenAI, fake: FakeOpenAI) -> None:
    fake.script(Stream(chunks=5, broken_chunk_at=2))
    stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    seen: list[Any] = []
    with pytest.raises(json.JSONDecodeError):
        async for chunk in stream:
            seen.append(chunk)
    assert len(seen) == 3


async def test_stream_omit_done_and_usage(fake: FakeOpenAI) -> None:
    fake.script(Stream(chunks=2, omit_usage=True, omit_done=True))
    _, _, text = await raw_post(
        fake, {"model": "m", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    )
    events = text.strip().split("\n\n")
    assert "[DONE]" not in text
    assert json.loads(events[-1].removeprefix("data: "))["choices"][0]["finish_reason"] == "stop"


async def test_stream_step_answers_sse_even_when_not_requested(fake: FakeOpenAI) -> None:
    fake.script(Stream(chunks=1))
    _, content_type, text = await raw_post(fake, {"model": "m", "messages": MESSAGES})
    assert content_type.startswith("text/event-stream") and text.endswith("data: [DONE]\n\n")


async def test_pacing(fake: FakeOpenAI, client: AsyncOpenAI) -> None:
    fake.script(Stream(chunks=5, chunk_delay=0.05))
    start = time.perf_counter()
    await collect(await client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert time.perf_counter() - start >= 0.2  # four gaps between five chunks


async def test_client_disconnect_mid_stream_is_counted(client: AsyncOpenAI, fake: FakeOpenAI) -> None:
    fake.script(Stream(chunks=1000, chunk_delay=0.01), Stream(chunks=5, stall_after=2))
    stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    async for chunk in stream:
        if chunk.choices[0].delta.content:
            break
    await stream.close()
    await fake.wait_for_disconnect(timeout=2)
    assert fake.disconnects == 1

    stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await collect(stream)  # stalls after two content chunks
    await stream.close()
    await fake.wait_for_disconnect(count=2, timeout=2)


async def test_wait_for_disconnect_times_out(fake: FakeOpenAI) -> None:
    with pytest.raises(TimeoutError):
        await fake.wait_for_disconnect(timeout=0.05)


# -- recording and auth -----------------------------------------------------------------------------


async def test_requests_are_recorded(fake: FakeOpenAI) -> None:
    async with AsyncOpenAI(base_url=fake.base_url, api_key="sk-upstream", max_retries=0) as c:
        await c.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, temperature=0.5, extra_headers={"X-Trace": "abc"}
        )
    await fake.wait_for_requests(1)
    [req] = fake.requests
    assert (req.method, req.path) == ("POST", "/v1/chat/completions")
    assert req.headers["authorization"] == "Bearer sk-upstream"
    assert req.headers["x-trace"] == "abc"
    assert req.model == "gpt-4o-mini"
    assert req.json["temperature"] == 0.5 and "top_p" not in req.json
    assert json.loads(req.body) == req.json
    fake.reset()
    assert fake.requests == [] and fake.disconnects == 0


async def test_api_key_is_checked() -> None:
    async with FakeOpenAI(api_key="sk-right") as fake:
        async with AsyncOpenAI(base_url=fake.base_url, api_key="sk-wrong-key", max_retries=0) as c:
            with pytest.raises(openai.AuthenticationError) as info:
                await c.chat.completions.create(model="m", messages=MESSAGES)
            assert info.value.code == "invalid_api_key"
            with pytest.raises(openai.AuthenticationError):
                await c.models.list()
        async with AsyncOpenAI(base_url=fake.base_url, api_key="sk-right", max_retries=0) as c:
            assert (await c.chat.completions.create(model="m", messages=MESSAGES)).choices
        assert len(fake.requests) == 3  # rejected requests are recorded too


async def test_invalid_body_is_a_400(fake: FakeOpenAI) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            fake.base_url + "/chat/completions", data=b"{nope", headers={"Content-Type": "application/json"}
        ) as resp,
    ):
        assert resp.status == 400
        assert (await resp.json())["error"]["type"] == "invalid_request_error"
    status, _, text = await raw_post(fake, {"messages": MESSAGES})
    assert status == 400 and json.loads(text)["error"]["param"] == "model"


# -- threads and processes --------------------------------------------------------------------------


def test_run_in_thread_with_sync_client() -> None:
    with FakeOpenAI.run_in_thread(api_key="sk-sync") as handle:
        client = OpenAI(base_url=handle.base_url, api_key="sk-sync", max_retries=0, timeout=5)
        result = client.chat.completions.create(model="m", messages=MESSAGES)
        assert result.choices[0].message.content == "Echo: hello there friend"

        handle.script(Status(503), Stream(chunks=50, chunk_delay=0.01))
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="m", messages=MESSAGES)
        with client.chat.completions.create(model="m", messages=MESSAGES, stream=True) as stream:
            next(iter(stream))
        handle.wait_for_disconnect(timeout=2)
        assert handle.disconnects == 1
        assert len(handle.requests) == 3
        client.close()


def test_cli_serves_a_benchmark_upstream() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "omnirouter.testing.fake_openai", "--port", "0", "--chunks", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("FakeOpenAI listening on http://127.0.0.1:")
        base_url = line.split(" on ", 1)[1].strip()
        client = OpenAI(base_url=base_url, api_key="k", max_retries=0, timeout=5)
        result = client.chat.completions.create(model="m", messages=MESSAGES)
        assert result.choices[0].message.content == "lorem ipsum dolor sit amet"
        client.close()
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=5)
    assert "Warning" not in err, err


# -- the fake's own output against the OpenRouter schemas ---------------------------------------------


async def test_output_matches_openrouter_schemas(fake: FakeOpenAI) -> None:
    require_spec()
    status, _, text = await raw_post(fake, {"model": "m", "messages": MESSAGES, "max_tokens": 2})
    assert status == 200
    validate(json.loads(text), "ChatResult")
    fake.script(Reply(tool_calls=[{"name": "f", "arguments": "{}"}], reasoning_tokens=3))
    _, _, text = await raw_post(fake, {"model": "m", "messages": MESSAGES})
    validate(json.loads(text), "ChatResult")
    # Without include_usage: OpenAI's "usage": null on every chunk is not valid OpenRouter output.
    _, _, text = await raw_post(fake, {"model": "m", "messages": MESSAGES, "stream": True})
    events = validate_sse("sendChatCompletionRequest", text)
    assert len(events) == 6
