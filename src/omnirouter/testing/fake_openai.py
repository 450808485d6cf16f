"""A scriptable fake OpenAI Chat Completions server on loopback.

It speaks the wire format real OpenAI sends (JSON bodies, SSE framing, usage chunk, error envelopes),
so the gateway's real HTTP client runs in every test. Faults are scripted per request:

    async with FakeOpenAI() as fake:
        fake.script(Status(429, retry_after=1), Delay(0.2, then=Stream(stop_after=3)))
        ...  # point the gateway (or an SDK) at fake.base_url

It is also the benchmark upstream: ``python -m omnirouter.testing.fake_openai --port 9000``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import re
import secrets
import signal
import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Literal

import msgspec
from aiohttp import web
from multidict import CIMultiDict

__all__ = [
    "BrokenJSON",
    "Delay",
    "FakeOpenAI",
    "FakeOpenAIThread",
    "RecordedRequest",
    "Reply",
    "Reset",
    "Status",
    "Step",
    "Stream",
]

# ---------------------------------------------------------------------------------------------------
# Steps: what the fake does for one request.
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """A successful completion. Streamed when the request has ``stream: true``, JSON otherwise.

    ``content=None`` keeps the default echo content (and the default "call tool" behaviour);
    ``max_tokens``/``max_completion_tokens`` still truncate it. Token fields override the
    estimated usage; ``usage`` replaces the usage object verbatim, ``omit_usage`` drops it.
    ``tool_calls`` items are either OpenAI's shape ``{"id", "type", "function": {...}}`` or the
    shorthand ``{"name": ..., "arguments": dict | str}``.
    """

    content: str | None = None
    _: KW_ONLY
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None
    usage: dict[str, Any] | None = None
    omit_usage: bool = False
    tool_calls: list[dict[str, Any]] | None = None
    model: str | None = None
    headers: dict[str, str] | None = None


@dataclass(frozen=True, kw_only=True)
class Stream(Reply):
    """An SSE completion with optional mid-stream faults. Always answers with SSE, even when the
    request did not ask to stream.

    Fault positions ``K`` count body events (content or tool-call deltas) after the first
    role-only chunk: ``stop_after=0`` sends the role chunk and then ends. A ``K`` beyond the last
    body event fires just before the finish_reason chunk.

    - ``chunks``: emit N synthetic content chunks instead of the default content.
    - ``chunk_delay``: pause between body events (defaults to the server's ``pace``).
    - ``stop_after``: end the body cleanly after K events: no finish chunk, usage or [DONE].
    - ``reset_after``: abort the TCP connection (RST) after K events.
    - ``stall_after``: pause ``stall_seconds`` after K events, then carry on.
    - ``broken_chunk_at``: after K events send one malformed ``data:`` line, then carry on.
    - ``error_after``: after K events send an in-band error event and end the stream
      (``error_style`` "openai": ``{"error": {...}}``; "openrouter": a chunk with a top-level
      ``error`` and ``finish_reason: "error"``). ``error`` overrides the error object.
    - ``omit_usage`` (inherited): no usage chunk even when ``include_usage`` was requested.
    - ``omit_done``: no ``data: [DONE]`` line at the end.
    - ``coalesce``: send the whole answer in one write, as a fast upstream's events arrive in one read.
    """

    chunks: int | None = None
    chunk_delay: float | None = None
    stop_after: int | None = None
    reset_after: int | None = None
    stall_after: int | None = None
    stall_seconds: float = 3600.0
    broken_chunk_at: int | None = None
    error_after: int | None = None
    error: dict[str, Any] | None = None
    error_style: Literal["openai", "openrouter"] = "openai"
    coalesce: bool = False
    done_after_error: bool = False
    omit_done: bool = False

    def __post_init__(self) -> None:
        if self.chunks is not None and self.content is not None:
            raise ValueError("Stream takes either chunks=N or content=..., not both")


@dataclass(frozen=True)
class Status:
    """An HTTP error answer. ``body=None`` sends OpenAI's error envelope for ``code``; a dict is
    sent as JSON, str/bytes verbatim (e.g. an HTML page from a proxy)."""

    code: int
    body: dict[str, Any] | str | bytes | None = None
    headers: dict[str, str] | None = None
    _: KW_ONLY
    retry_after: float | None = None


@dataclass(frozen=True)
class Delay:
    """Stall before the first byte, then perform ``then`` (the default completion when None)."""

    seconds: float
    then: Step | None = None


@dataclass(frozen=True)
class Reset:
    """Abort the connection with a TCP RST before any response byte."""


@dataclass(frozen=True)
class BrokenJSON:
    """A response whose body is not valid JSON, labelled as JSON."""

    body: str = '{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [{"index": 0, '
    status: int = 200


Step = Reply | Status | Delay | Reset | BrokenJSON


# ---------------------------------------------------------------------------------------------------
# Recording
# ---------------------------------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    body: bytes
    json: Any = None  # None when the body was empty or not JSON

    @property
    def model(self) -> str | None:
        return self.json.get("model") if isinstance(self.json, dict) else None


class _Counter:
    """A counter that sync and async code, on any thread or loop, can wait on."""

    def __init__(self) -> None:
        self._value = 0
        self._cond = threading.Condition()
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    @property
    def value(self) -> int:
        return self._value

    def increment(self) -> None:
        with self._cond:
            self._value += 1
            self._cond.notify_all()
            ready = [w for w in self._waiters if self._value >= w[0]]
            self._waiters = [w for w in self._waiters if self._value < w[0]]
        for _, loop, fut in ready:
            loop.call_soon_threadsafe(_resolve, fut)

    def reset(self) -> None:
        with self._cond:
            self._value = 0

    def wait(self, count: int, timeout: float | None) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._value >= count, timeout)

    async def wait_async(self, count: int, timeout: float | None) -> bool:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        with self._cond:
            if self._value >= count:
                return True
            entry = (count, loop, fut)
            self._waiters.append(entry)
        try:
            await asyncio.wait_for(fut, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with self._cond, contextlib.suppress(ValueError):
                self._waiters.remove(entry)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


# ---------------------------------------------------------------------------------------------------
# Wire-format helpers
# ---------------------------------------------------------------------------------------------------

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
_TOKEN_RE = re.compile(r"\s*\S+|\s+$")
_LOREM = (
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
)
_ECHO_LIMIT = 200  # characters of the user's text echoed back
_FINGERPRINT = "fp_fake0001"
_DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "o4-mini")

_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to sample from this model.", "invalid_request_error", None),
    404: (
        "The model does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    408: ("Request timed out.", "timeout", None),
    413: ("Request entity too large.", "invalid_request_error", None),
    422: ("Unprocessable entity.", "invalid_request_error", None),
    429: ("Rate limit reached for requests. Please try again later.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
    504: ("Gateway timeout.", "server_error", None),
    529: ("The engine is currently overloaded, please try again later.", "server_error", "overloaded"),
}


def error_body(
    status: int, message: str | None = None, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """OpenAI's error envelope for ``status``."""
    default_message, type_, default_code = _ERRORS.get(
        status, ("Request failed.", "server_error" if status >= 500 else "invalid_request_error", None)
    )
    return {
        "error": {
            "message": message or default_message,
            "type": type_,
            "param": param,
            "code": code or default_code,
        }
    }


def _json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=_encode(payload), status=status, content_type="application/json", headers=headers)


def _text_of(content: Any) -> str:
    """The text of a message's content: a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _estimate_prompt_tokens(messages: list[Any]) -> int:
    chars = 0
    for m in messages:
        if isinstance(m, dict):
            chars += len(_text_of(m.get("content")))
            for call in m.get("tool_calls") or ():
                if isinstance(call, dict):
                    chars += len(str((call.get("function") or {}).get("arguments", "")))
    return max(1, chars // 4)


def _last_user_text(messages: list[Any]) -> str:
    for m in reversed(messages):
        if isinstance(m, dict) and m.get("role") == "user":
            return _text_of(m.get("content"))
    return ""


def _tokens(text: str) -> list[str]:
    """Split text into word-sized tokens that join back to the text."""
    return _TOKEN_RE.findall(text)


def _synthetic(n: int) -> str:
    return " ".join(_LOREM[i % len(_LOREM)] for i in range(n))


def _example_value(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return "test"
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object":
        return _example_args(schema)
    return {"integer": 1, "number": 1.0, "boolean": True, "array": [], "null": None}.get(kind, "test")


def _example_args(schema: Any) -> dict[str, Any]:
    """Plausible arguments for a JSON-schema'd function: its required properties filled in."""
    if not isinstance(schema, dict):
        return {}
    props = schema.get("properties") or {}
    names = schema.get("required") or list(props)
    return {name: _example_value(props.get(name)) for name in names}


def _call_id() -> str:
    return "call_" + secrets.token_hex(12)


def _normalize_tool_call(call: dict[str, Any]) -> dict[str, Any]:
    if "function" in call:
        fn = call["function"]
        args = fn.get("arguments", "{}")
        return {
            "id": call.get("id") or _call_id(),
            "type": call.get("type", "function"),
            "function": {
                "name": fn["name"],
                "arguments": args if isinstance(args, str) else _encode(args).decode(),
            },
        }
    args = call.get("arguments", {})
    return {
        "id": call.get("id") or _call_id(),
        "type": "function",
        "function": {
            "name": call["name"],
            "arguments": args if isinstance(args, str) else _encode(args).decode(),
        },
    }


def _auto_tool_calls(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The default behaviour's tool call: the first function tool, when the user says "call tool"."""
    tools = body.get("tools")
    if not tools or "call tool" not in _last_user_text(body.get("messages") or []).lower():
        return None
    for tool in tools:
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict) and fn.get("name"):
            args = _encode(_example_args(fn.get("parameters"))).decode()
            call = {"name": fn["name"], "arguments": args}
            return [{"id": _call_id(), "type": "function", "function": call}]
    return None


@dataclass
class _Completion:
    """Everything one answer needs, computed once from the request and the step."""

    id: str
    created: int
    model: str
    tokens: list[str]
    content: str | None
    tool_calls: list[dict[str, Any]] | None
    finish_reason: str
    usage: dict[str, Any] | None
    include_usage: bool
    headers: dict[str, str] = field(default_factory=dict)


def _plan(body: dict[str, Any], reply: Reply) -> _Completion:
    messages = body.get("messages") or []
    chunks = reply.chunks if isinstance(reply, Stream) else None
    tool_calls = [_normalize_tool_call(c) for c in reply.tool_calls] if reply.tool_calls else None

    if reply.content is not None:
        text: str | None = reply.content
    elif chunks is not None:
        text = _synthetic(chunks)
    elif tool_calls is None and (tool_calls := _auto_tool_calls(body)) is not None:
        text = None
    else:
        user = " ".join(_last_user_text(messages).split())
        text = f"Echo: {user[:_ECHO_LIMIT]}" if user else "Hello from FakeOpenAI."

    tokens = _tokens(text) if text else []
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    truncated = isinstance(limit, int) and limit >= 0 and len(tokens) > limit
    if truncated:
        tokens = tokens[:limit]
    if text is not None:
        text = "".join(tokens)

    finish = reply.finish_reason or ("tool_calls" if tool_calls else "length" if truncated else "stop")

    usage: dict[str, Any] | None = None
    if reply.usage is not None:
        usage = reply.usage
    elif not reply.omit_usage:
        cached = reply.cached_tokens or 0
        written = reply.cache_write_tokens or 0
        reasoning = reply.reasoning_tokens or 0
        prompt = reply.prompt_tokens
        if prompt is None:
            # Cached and written tokens are part of the prompt, as OpenAI counts them.
            prompt = max(_estimate_prompt_tokens(messages), cached + written)
        completion = reply.completion_tokens
        if completion is None:
            call_tokens = sum(max(1, len(c["function"]["arguments"]) // 4) for c in tool_calls or ())
            completion = len(tokens) + call_tokens + reasoning
        prompt_details: dict[str, int] = {"cached_tokens": cached, "audio_tokens": 0}
        if reply.cache_write_tokens is not None:
            prompt_details["cache_write_tokens"] = written
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": prompt_details,
            "completion_tokens_details": {
                "reasoning_tokens": reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    stream_options = body.get("stream_options")
    include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True
    return _Completion(
        id="chatcmpl-" + secrets.token_urlsafe(21),
        created=int(time.time()),
        model=reply.model or str(body.get("model", "")),
        tokens=tokens,
        content=text,
        tool_calls=tool_calls,
        finish_reason=finish,
        usage=usage,
        include_usage=include_usage,
        headers=dict(reply.headers or {}),
    )


def _completion_json(c: _Completion) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": c.content, "refusal": None, "annotations": []}
    if c.tool_calls:
        message["tool_calls"] = c.tool_calls
    out: dict[str, Any] = {
        "id": c.id,
        "object": "chat.completion",
        "created": c.created,
        "model": c.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": c.finish_reason}],
    }
    if c.usage is not None:
        out["usage"] = c.usage
    out["service_tier"] = "default"
    out["system_fingerprint"] = _FINGERPRINT
    return out


def _sse(payload: Any) -> bytes:
    return b"data: " + _encode(payload) + b"\n\n"


class _Chunks:
    """Builds OpenAI's chat.completion.chunk events for one completion."""

    def __init__(self, c: _Completion) -> None:
        self.c = c
        self.base = {
            "id": c.id,
            "object": "chat.completion.chunk",
            "created": c.created,
            "model": c.model,
            "service_tier": "default",
            "system_fingerprint": _FINGERPRINT,
        }

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        payload = {
            **self.base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if self.c.include_usage:
            payload["usage"] = None  # OpenAI sends an explicit null on every chunk but the last
        return _sse(payload)

    def head(self) -> bytes:
        if self.c.content is None and self.c.tool_calls:
            return self.chunk({"role": "assistant", "content": None, "refusal": None})
        return self.chunk({"role": "assistant", "content": "", "refusal": None})

    def body(self) -> list[bytes]:
        events = [self.chunk({"content": t}) for t in self.c.tokens]
        for index, call in enumerate(self.c.tool_calls or ()):
            fn = call["function"]
            events.append(
                self.chunk(
                    {
                        "tool_calls": [
                            {
                                "index": index,
                                "id": call["id"],
                                "type": "function",
                                "function": {"name": fn["name"], "arguments": ""},
                            }
                        ]
                    }
                )
            )
            args = fn["arguments"]
            for i in range(0, len(args), 8):
                events.append(
                    self.chunk({"tool_calls": [{"index": index, "function": {"arguments": args[i : i + 8]}}]})
                )
        return events

    def finish(self) -> bytes:
        return self.chunk({}, self.c.finish_reason)

    def usage(self) -> bytes | None:
        if not self.c.include_usage or self.c.usage is None:
            return None
        return _sse({**self.base, "choices": [], "usage": self.c.usage})

    def broken(self) -> bytes:
        head = b'data: {"id": "' + self.c.id.encode()
        return head + b'", "object": "chat.completion.chunk", "choices": [{\n\n'

    def error(self, stream: Stream) -> bytes:
        if stream.error_style == "openrouter":
            err = stream.error or {
                "code": 502,
                "message": "Provider returned error",
                "metadata": {"error_type": "provider_unavailable"},
            }
            return _sse(
                {
                    **self.base,
                    "error": err,
                    "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
                }
            )
        err = stream.error or error_body(500)["error"]
        return _sse({"error": err})


_DONE = b"data: [DONE]\n\n"


@dataclass
class _Exchange:
    """One request in flight: the parsed body, and whether the fake itself cut the connection."""

    request: web.Request
    json: Any
    aborted: bool = False


def _abort(ex: _Exchange) -> None:
    """Close the connection with a TCP RST, the way a crashed peer or a middlebox does."""
    ex.aborted = True
    transport = ex.request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


# ---------------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------------


class FakeOpenAI:
    """A fake OpenAI upstream over real HTTP on loopback.

    Scripted steps apply to ``POST {base}/chat/completions`` only; ``GET {base}/models`` always
    answers with ``models``. Any model name is accepted for completions.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        pace: float = 0.0,
        models: tuple[str, ...] | list[str] = _DEFAULT_MODELS,
        host: str = "127.0.0.1",
        port: int = 0,
        base_path: str = "/v1",
        reuse_port: bool = False,
        keep_requests: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.api_key = api_key
        self.ssl_context = ssl_context  # serve https with it
        self.pace = pace
        self.models = list(models)
        self.host = host
        self.port = port
        self.base_path = "/" + base_path.strip("/") if base_path.strip("/") else ""
        self.reuse_port = reuse_port
        # Every request by default, for tests to inspect; only the last N for a long-running server.
        self.requests: list[RecordedRequest] | collections.deque[RecordedRequest] = (
            [] if keep_requests is None else collections.deque(maxlen=keep_requests)
        )
        self._queue: collections.deque[Step] = collections.deque()
        self._always: Step | None = None
        self._disconnects = _Counter()
        self._received = _Counter()
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False

    # -- scripting -----------------------------------------------------------------------------------

    def script(self, *steps: Step) -> None:
        """Queue steps, consumed one per chat request in order; then ``always``/default applies."""
        self._queue.extend(steps)

    def always(self, step: Step | None) -> None:
        """Use ``step`` for every chat request once the script is empty (None: the default)."""
        self._always = step

    @property
    def pending(self) -> int:
        """Scripted steps not consumed yet."""
        return len(self._queue)

    def reset(self) -> None:
        """Forget the script, the persistent step, recorded requests and counters."""
        self._queue.clear()
        self._always = None
        self.requests.clear()
        self._disconnects.reset()
        self._received.reset()

    # -- observation ---------------------------------------------------------------------------------

    @property
    def last_request(self) -> RecordedRequest:
        return self.requests[-1]

    @property
    def disconnects(self) -> int:
        """Responses the client abandoned before they were complete (mid-stream or during a Delay)."""
        return self._disconnects.value

    async def wait_for_disconnect(self, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until ``disconnects >= count``; raise TimeoutError otherwise. Any loop, any thread."""
        if not await self._disconnects.wait_async(count, timeout):
            raise TimeoutError(f"expected {count} client disconnect(s), saw {self.disconnects}")

    async def wait_for_requests(self, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until ``count`` requests have arrived; raise TimeoutError otherwise."""
        if not await self._received.wait_async(count, timeout):
            raise TimeoutError(f"expected {count} request(s), saw {self._received.value}")

    # -- lifecycle -----------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._runner is None:
            raise RuntimeError("FakeOpenAI is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{host}:{self.port}{self.base_path}"

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        b = self.base_path
        app.router.add_post(f"{b}/chat/completions", self._tracked(self._chat))
        app.router.add_get(f"{b}/models", self._tracked(self._list_models))
        app.router.add_get(f"{b}/models/{{model:.+}}", self._tracked(self._get_model))
        return app

    async def start(self) -> FakeOpenAI:
        if self._runner is not None:
            return self
        self._stopping = False
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        # handler_cancellation turns a client hanging up into CancelledError in the handler, which is
        # how a stalled or delayed response notices the disconnect at all.
        runner = web.AppRunner(self._app(), handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        await web.SockSite(runner, sock, backlog=1024, ssl_context=self.ssl_context).start()
        self._runner = runner
        return self

    async def stop(self) -> None:
        if self._runner is None:
            return
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        runner, self._runner = self._runner, None
        await runner.cleanup()

    async def __aenter__(self) -> FakeOpenAI:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @classmethod
    def run_in_thread(cls, **kwargs: Any) -> FakeOpenAIThread:
        """Start a fake on its own event loop in a daemon thread (for synchronous clients)."""
        return FakeOpenAIThread(cls(**kwargs))

    # -- handlers ------------------------------------------------------------------------------------

    def _tracked(
        self, handler: Callable[[_Exchange], Awaitable[web.StreamResponse]]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """Record every request, check auth, and count responses the client abandoned."""

        async def wrapper(request: web.Request) -> web.StreamResponse:
            task = asyncio.current_task()
            ex = _Exchange(request, None)
            if task is not None:
                self._tasks.add(task)
            try:
                raw = await request.read()
                try:
                    parsed = _decode(raw) if raw else None
                except msgspec.DecodeError:
                    parsed = None
                self.requests.append(
                    RecordedRequest(
                        request.method,
                        request.path,
                        dict(request.query),
                        CIMultiDict(request.headers),
                        raw,
                        parsed,
                    )
                )
                self._received.increment()
                if (denied := self._check_auth(request)) is not None:
                    return denied
                ex.json = parsed
                return await handler(ex)
            except asyncio.CancelledError:
                if not self._stopping and not ex.aborted:
                    self._disconnects.increment()
                raise
            finally:
                if task is not None:
                    self._tasks.discard(task)

        return wrapper

    def _check_auth(self, request: web.Request) -> web.Response | None:
        if self.api_key is None:
            return None
        header = request.headers.get("Authorization", "")
        if not header:
            return _json_response(
                error_body(
                    401,
                    "You didn't provide an API key. Send it in an Authorization header using Bearer auth.",
                ),
                401,
            )
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self.api_key:
            shown = token[:4] + "*" * max(0, len(token) - 8) + token[-4:] if len(token) > 8 else "****"
            return _json_response(error_body(401, f"Incorrect API key provided: {shown}."), 401)
        return None

    async def _list_models(self, ex: _Exchange) -> web.StreamResponse:
        return _json_response({"object": "list", "data": [self._model_card(m) for m in self.models]})

    async def _get_model(self, ex: _Exchange) -> web.StreamResponse:
        name = ex.request.match_info["model"]
        if name not in self.models:
            return _json_response(error_body(404, f"The model '{name}' does not exist", param="model"), 404)
        return _json_response(self._model_card(name))

    @staticmethod
    def _model_card(name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": 1715367049, "owned_by": "system"}

    async def _chat(self, ex: _Exchange) -> web.StreamResponse:
        if self._queue:
            step: Step | None = self._queue.popleft()
        else:
            step = self._always
        return await self._perform(step, ex)

    async def _perform(self, step: Step | None, ex: _Exchange) -> web.StreamResponse:
        if isinstance(step, Delay):
            await asyncio.sleep(step.seconds)
            return await self._perform(step.then, ex)
        if isinstance(step, Status):
            return self._status(step)
        if isinstance(step, Reset):
            _abort(ex)
            return web.Response()  # never written: aiohttp swallows the write to a closed transport
        if isinstance(step, BrokenJSON):
            return web.Response(body=step.body.encode(), status=step.status, content_type="application/json")

        body = ex.json
        if not isinstance(body, dict):
            return _json_response(error_body(400, "We could not parse the JSON body of your request."), 400)
        if not body.get("model") or not isinstance(body.get("messages"), list):
            missing = "model" if not body.get("model") else "messages"
            return _json_response(error_body(400, f"Missing required parameter: '{missing}'.", param=missing), 400)
        reply = step if isinstance(step, Reply) else Reply()
        completion = _plan(body, reply)
        if isinstance(reply, Stream) or body.get("stream") is True:
            stream = reply if isinstance(reply, Stream) else Stream()
            return await self._stream(ex, completion, stream)
        return _json_response(_completion_json(completion), headers=self._headers(completion.headers))

    @staticmethod
    def _headers(extra: dict[str, str]) -> dict[str, str]:
        return {"x-request-id": "req_" + secrets.token_hex(16), "openai-processing-ms": "1", **extra}

    @staticmethod
    def _status(step: Status) -> web.Response:
        headers = dict(step.headers or {})
        if step.retry_after is not None:
            value = step.retry_after
            headers.setdefault("Retry-After", str(int(value)) if float(value).is_integer() else str(value))
        if step.body is None or isinstance(step.body, dict):
            return _json_response(step.body if step.body is not None else error_body(step.code), step.code, headers)
        raw = step.body.encode() if isinstance(step.body, str) else step.body
        headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        return web.Response(body=raw, status=step.code, headers=headers)

    async def _stream(self, ex: _Exchange, c: _Completion, s: Stream) -> web.StreamResponse:
        resp = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                **self._headers(c.headers),
            },
        )
        chunks = _Chunks(c)
        delay = s.chunk_delay if s.chunk_delay is not None else self.pace
        held: list[bytes] | None = [] if s.coalesce else None

        async def write(data: bytes) -> None:
            if held is None:
                await resp.write(data)
            else:
                held.append(data)

        async def flush() -> None:
            if held:
                await resp.write(b"".join(held))

        try:
            await resp.prepare(ex.request)
            await write(chunks.head())
            body = chunks.body()
            for k in range(len(body) + 1):
                # Faults fire once k body events are out; k == len(body) is "before the finish chunk".
                if s.broken_chunk_at == k:
                    await write(chunks.broken())
                if s.stall_after == k:
                    await flush()
                    held = None if held is None else []
                    await asyncio.sleep(s.stall_seconds)
                if s.error_after == k:
                    await write(chunks.error(s))
                    if s.done_after_error:
                        await write(_DONE)
                    await flush()
                    return resp
                if s.stop_after == k:
                    await flush()
                    return resp
                if s.reset_after == k:
                    await flush()
                    _abort(ex)
                    return resp
                if k == len(body):
                    break
                if delay > 0 and k > 0:
                    await asyncio.sleep(delay)
                await write(body[k])
            await write(chunks.finish())
            if not s.omit_usage and (usage := chunks.usage()) is not None:
                await write(usage)
            if not s.omit_done:
                await write(_DONE)
            await flush()
        except ConnectionResetError:
            # The client went away between two writes.
            if not self._stopping and not ex.aborted:
                self._disconnects.increment()
        return resp


class FakeOpenAIThread:
    """A FakeOpenAI served from a daemon thread with its own event loop.

    Scripting and inspection are safe from the calling thread: ``script``/``always`` append to a
    thread-safe deque and the counters are lock-protected.
    """

    def __init__(self, fake: FakeOpenAI) -> None:
        self.fake = fake
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="FakeOpenAI", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.fake.start())
        except BaseException as exc:
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.fake.stop())
        self._loop.close()

    @property
    def base_url(self) -> str:
        return self.fake.base_url

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.fake.requests

    @property
    def disconnects(self) -> int:
        return self.fake.disconnects

    def script(self, *steps: Step) -> None:
        self.fake.script(*steps)

    def always(self, step: Step | None) -> None:
        self.fake.always(step)

    def reset(self) -> None:
        self.fake.reset()

    def wait_for_disconnect(self, count: int = 1, timeout: float = 5.0) -> None:
        """Block until ``disconnects >= count``; raise TimeoutError otherwise."""
        if not self.fake._disconnects.wait(count, timeout):
            raise TimeoutError(f"expected {count} client disconnect(s), saw {self.fake.disconnects}")

    def wait_for_requests(self, count: int = 1, timeout: float = 5.0) -> None:
        if not self.fake._received.wait(count, timeout):
            raise TimeoutError(f"expected {count} request(s), saw {self.fake._received.value}")

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)

    def __enter__(self) -> FakeOpenAIThread:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------------
# CLI: the benchmark upstream
# ---------------------------------------------------------------------------------------------------


def _serve(options: dict[str, Any], chunks: int | None, announce: bool) -> None:
    async def serve() -> None:
        fake = FakeOpenAI(**options)
        if chunks is not None:
            fake.always(Reply(_synthetic(chunks)))
        # Exit cleanly on SIGTERM too, so worker processes are reaped with the parent.
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, done.set)
        await fake.start()
        if announce:
            print(f"FakeOpenAI listening on {fake.base_url}", flush=True)
        try:
            await done.wait()
        finally:
            await fake.stop()

    loop_factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        loop_factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m omnirouter.testing.fake_openai",
        description="Serve a fake OpenAI Chat Completions API.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on start)")
    parser.add_argument(
        "--chunks",
        type=int,
        default=None,
        help="answer every request with N content tokens instead of the echo",
    )
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between stream chunks")
    parser.add_argument("--api-key", default=None, help="require this bearer token")
    parser.add_argument("--workers", type=int, default=1, help="processes sharing the port (SO_REUSEPORT)")
    args = parser.parse_args(argv)

    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "pace": args.chunk_delay,
        "api_key": args.api_key,
        "reuse_port": args.workers > 1,
        "keep_requests": 100,  # a server that runs for hours must not keep every request it saw
    }
    if args.workers > 1:
        import multiprocessing

        # Bind once here so port 0 resolves to one port all workers share.
        probe = socket.socket()
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        probe.bind((args.host, args.port))
        options["port"] = probe.getsockname()[1]
        ctx = multiprocessing.get_context("spawn")
        workers = [
            ctx.Process(target=_serve, args=(options, args.chunks, False), daemon=True) for _ in range(args.workers - 1)
        ]
        for w in workers:
            w.start()
        # The probe stays bound (never listening, so it takes no connections) to hold the port.
    _serve(options, args.chunks, announce=True)


if __name__ == "__main__":
    sys.exit(main())
