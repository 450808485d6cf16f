"""The echo upstream for figures 1, 2, 3 and 5: OpenAI chat completions, JSON or streamed, from bare asyncio.

It answers as omnirouter's FakeOpenAI does by default: "Echo: " and the last user message's words, one
stream event per word (role chunk first, finish chunk, the usage chunk when asked for, `[DONE]`), usage
with the prompt estimated at 4 characters a token, `max_tokens` honoured. FakeOpenAI (aiohttp, built for
scripted faults) costs ~80 us of CPU per request; this one parses with httptools and encodes with
msgspec, so the upstream's core is not what the gateways' figures measure, and two gateway workers have
the most of the second core a 2-core machine can give them (figure 5). Stream events are written one
at a time, as a model emits them: a gateway is not handed a whole stream in one read.

`POST .../messages` gets the same echo in Anthropic's Messages wire (a `message`, or the events
message_start, content_block_start, ping, one content_block_delta per word, content_block_stop,
message_delta with the usage, message_stop), for `api: anthropic` providers (bench.instructions).

    python -m bench.echo --port 0
"""

from __future__ import annotations

import asyncio
import itertools
import re
import signal
import time
from typing import Any

import httptools
import msgspec

from bench.upstream import READY, SSE_HEAD, run_upstream, sse_chunk

ECHO_LIMIT = 200  # characters of the user's text echoed back, as FakeOpenAI
TOKEN = re.compile(r"\s*\S+|\s+$")  # word-sized tokens that join back to the text, as FakeOpenAI
FINGERPRINT = "fp_bench0001"
JSON_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
NOT_FOUND = JSON_HEAD.replace(b"200 OK", b"404 Not Found") % 2 + b"{}"
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

encode = msgspec.json.Encoder().encode
decode = msgspec.json.Decoder().decode
ids = itertools.count()


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _usage(messages: list[Any], completion: int) -> dict[str, Any]:
    prompt = max(1, sum(len(_text(m.get("content"))) for m in messages if isinstance(m, dict)) // 4)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }


def _echo(messages: list[Any], limit: Any) -> tuple[list[str], bool]:
    """The answer's tokens, and whether `limit` cut them short."""
    user = next((_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    user = " ".join(user.split())
    tokens = TOKEN.findall(f"Echo: {user[:ECHO_LIMIT]}" if user else "Hello from the bench upstream.")
    if isinstance(limit, int) and 0 <= limit < len(tokens):
        return tokens[:limit], True
    return tokens, False


def reply(body: dict[str, Any]) -> list[bytes]:
    """The writes that answer one chat completion request."""
    messages = body.get("messages") or []
    tokens, cut = _echo(messages, body.get("max_completion_tokens") or body.get("max_tokens"))
    finish = "length" if cut else "stop"
    stream = body.get("stream") is True
    base = {
        "id": f"chatcmpl-bench{next(ids)}",
        "object": "chat.completion.chunk" if stream else "chat.completion",
        "created": int(time.time()),
        "model": str(body.get("model", "")),
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }
    usage = _usage(messages, len(tokens))
    if not stream:
        message = {"role": "assistant", "content": "".join(tokens), "refusal": None, "annotations": []}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        data = encode({**base, "choices": [choice], "usage": usage})
        return [JSON_HEAD % len(data) + data]
    options = body.get("stream_options")
    with_usage = isinstance(options, dict) and options.get("include_usage") is True
    if with_usage:
        base["usage"] = None  # OpenAI sends an explicit null on every chunk but the last

    def event(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return sse_chunk(encode({**base, "choices": [choice]}))

    writes = [SSE_HEAD + event({"role": "assistant", "content": "", "refusal": None})]
    writes += [event({"content": t}) for t in tokens]
    end = event({}, finish)
    if with_usage:
        end += sse_chunk(encode({**base, "choices": [], "usage": usage}))
    writes.append(end + sse_chunk(b"[DONE]") + b"0\r\n\r\n")
    return writes


def _event(name: bytes, payload: dict[str, Any]) -> bytes:
    """One Anthropic SSE event (an `event:` line and its data) as one HTTP chunk."""
    data = b"event: %b\ndata: %b\n\n" % (name, encode(payload))
    return b"%x\r\n%b\r\n" % (len(data), data)


def messages_reply(body: dict[str, Any]) -> list[bytes]:
    """The writes that answer one Anthropic Messages request, JSON or streamed."""
    messages = body.get("messages") or []
    tokens, cut = _echo(messages, body.get("max_tokens"))
    chat_usage = _usage(messages, len(tokens))
    usage = {
        "input_tokens": chat_usage["prompt_tokens"],
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": len(tokens),
    }
    message = {
        "id": f"msg_bench{next(ids)}",
        "type": "message",
        "role": "assistant",
        "model": str(body.get("model", "")),
        "content": [{"type": "text", "text": "".join(tokens)}],
        "stop_reason": "max_tokens" if cut else "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }
    if body.get("stream") is not True:
        data = encode(message)
        return [JSON_HEAD % len(data) + data]
    start = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
    writes = [
        SSE_HEAD + _event(b"message_start", {"type": "message_start", "message": start}),
        _event(b"content_block_start", {"type": "content_block_start", "index": 0,
                                         "content_block": {"type": "text", "text": ""}}),
        _event(b"ping", {"type": "ping"}),
    ]  # fmt: skip
    writes += [
        _event(b"content_block_delta", {"type": "content_block_delta", "index": 0,
                                         "delta": {"type": "text_delta", "text": t}})
        for t in tokens
    ]  # fmt: skip
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    writes.append(
        _event(b"content_block_stop", {"type": "content_block_stop", "index": 0})
        + _event(b"message_delta", {"type": "message_delta", "delta": delta, "usage": {"output_tokens": len(tokens)}})
        + _event(b"message_stop", {"type": "message_stop"})
        + b"0\r\n\r\n"
    )
    return writes


class Echo(asyncio.Protocol):
    """One client connection, keep-alive; requests are answered in the order they arrive."""

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport subclasses
        self.url = b""
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.write(BAD_REQUEST)
            self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url, self.body = b"", []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        path = self.url.partition(b"?")[0]
        if self.parser.get_method() != b"POST" or not path.endswith((b"/chat/completions", b"/messages")):
            self.transport.write(NOT_FOUND)
            return
        try:
            answer = reply if path.endswith(b"/chat/completions") else messages_reply
            writes = answer(decode(b"".join(self.body)))
        except (msgspec.DecodeError, AttributeError, TypeError):
            self.transport.write(BAD_REQUEST)
            self.transport.close()
            return
        for data in writes:
            self.transport.write(data)


async def serve(port: int, chunks: int | None, delay: float) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", port, backlog=4096)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"{READY} http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1", flush=True)
    try:
        await stop.wait()
    finally:
        server.close()


def main() -> None:
    run_upstream("python -m bench.echo", serve, None, 0.0)


if __name__ == "__main__":
    main()
