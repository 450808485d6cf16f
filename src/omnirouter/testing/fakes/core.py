"""The provider-neutral core of the fake upstreams: server, script vocabulary, recording, faults, planning.

A fake is a real aiohttp server on loopback. Each request to a completion route consumes one scripted
step (``Reply``, ``Stream``, ``Status``, ``Delay``, ``Reset``, ``BrokenJSON``); the answer is planned
here from a *normalised request* (model, texts, tools, limits) into a ``Completion`` (tokens, tool
calls, reasoning, usage, finish reason), and a ``Wire`` turns both directions into one provider's
exact format. Adding a provider is one module: a ``Wire`` subclass and a ``FakeServer`` subclass
naming it (see ``fakes/openai.py`` and notes in the ``Wire`` docstring).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import hashlib
import re
import secrets
import signal
import socket
import ssl
import struct
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, ClassVar, Generic, Literal, NamedTuple, Self, TypeVar

import msgspec
from aiohttp import web
from multidict import CIMultiDict

__all__ = [
    "BrokenJSON",
    "Completion",
    "Delay",
    "FakeServer",
    "FakeThread",
    "Frames",
    "Message",
    "NormalRequest",
    "RecordedRequest",
    "Reply",
    "Reset",
    "Route",
    "Status",
    "Step",
    "Stream",
    "Tool",
    "ToolCall",
    "Usage",
    "Wire",
    "WireError",
    "encode_json",
    "text_of",
]

# ---------------------------------------------------------------------------------------------------
# Steps: what the fake does for one request.
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """A successful completion. Streamed when the request asks to stream, JSON otherwise.

    ``content=None`` keeps the default echo content (and the default "call tool" behaviour); the
    request's max tokens still truncate it. Token fields override the estimated usage; ``usage``
    replaces the wire's usage object verbatim, ``omit_usage`` drops it. ``tool_calls`` items are
    either OpenAI's shape ``{"id", "type", "function": {...}}`` or the shorthand
    ``{"name": ..., "arguments": dict | str}``. ``reasoning`` is reasoning text the fake emits
    (wires that sign it send ``reasoning_signature``, a digest of the text by default); its tokens
    count as reasoning tokens unless ``reasoning_tokens`` says otherwise. ``finish_reason`` is sent
    verbatim, in the wire's own vocabulary.
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
    reasoning: str | None = None
    reasoning_signature: str | None = None


@dataclass(frozen=True, kw_only=True)
class Stream(Reply):
    """A streamed completion with optional mid-stream faults. Always answers with a stream, even
    when the request did not ask for one.

    Fault positions ``K`` count body events (content, reasoning or tool-call deltas) after the
    wire's head events: ``stop_after=0`` sends the head and then ends. A ``K`` beyond the last body
    event fires just before the finish events.

    - ``chunks``: emit N synthetic content chunks instead of the default content.
    - ``chunk_delay``: pause between body events (defaults to the server's ``pace``).
    - ``stop_after``: end the body cleanly after K events: no finish, usage or end-of-stream events.
    - ``reset_after``: abort the TCP connection (RST) after K events.
    - ``stall_after``: pause ``stall_seconds`` after K events, then carry on.
    - ``broken_chunk_at``: after K events send one malformed event, then carry on.
    - ``error_after``: after K events send the wire's in-band error event and end the stream.
      ``error`` overrides the error object; ``error_style`` "openrouter" is the OpenAI wire's
      alternative (a chunk with a top-level ``error`` and ``finish_reason: "error"``).
    - ``omit_usage`` (inherited): no usage event.
    - ``omit_done``: no end-of-stream marker (OpenAI's ``data: [DONE]``).
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
    """An HTTP error answer. ``body=None`` sends the wire's error envelope for ``code``; a dict is
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

_MODEL_PARAMS = ("model", "modelId", "deployment")


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    body: bytes
    json: Any = None  # None when the body was empty or not JSON
    path_params: dict[str, str] = field(default_factory=dict)  # the route's {placeholders}

    @property
    def model(self) -> str | None:
        """The model the request names: in its JSON body, or in its path (Gemini, Bedrock, Azure)."""
        if isinstance(self.json, dict) and (model := self.json.get("model")):
            return str(model)
        return next((self.path_params[k] for k in _MODEL_PARAMS if k in self.path_params), None)


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
# The normalised request and the planned completion
# ---------------------------------------------------------------------------------------------------

encode_json = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode


class Message(NamedTuple):
    """One turn of the conversation as plain text (images and other parts dropped)."""

    role: str  # "user" or "assistant" (tool results count as "user" or "tool", as the wire says)
    text: str


class Tool(NamedTuple):
    """A function the client offers."""

    name: str
    description: str | None
    parameters: Any  # its JSON schema (None when it takes no arguments)


@dataclass(slots=True)
class NormalRequest:
    """What the fake needs to know of a completion request, whatever wire it came in on."""

    model: str
    stream: bool = False
    messages: list[Message] = field(default_factory=list)  # without the system prompt
    system: str | None = None
    tools: list[Tool] = field(default_factory=list)
    max_tokens: int | None = None
    reasoning: bool = False  # the client asked for reasoning (thinking) output
    include_usage: bool = True  # only OpenAI asks for the usage chunk (``stream_options``)
    # Characters the prompt estimate counts (4 a token); None: the system and message texts.
    prompt_chars: int | None = None


class ToolCall(NamedTuple):
    id: str
    name: str
    arguments: str  # JSON text

    @property
    def args(self) -> Any:
        """The arguments decoded (wires that send them as a JSON object); {} when not JSON."""
        try:
            return _decode(self.arguments)
        except msgspec.DecodeError:
            return {}


@dataclass(slots=True)
class Usage:
    """Token counts, as OpenAI counts them: prompt includes cached and cache-write tokens,
    completion includes reasoning tokens. ``cache_write_tokens`` is None when the reply set none
    (the OpenAI wire then leaves the field out)."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    cache_write_tokens: int | None = None
    reasoning_tokens: int = 0

    @property
    def uncached_prompt_tokens(self) -> int:
        """Prompt tokens neither read from nor written to a cache (Anthropic's ``input_tokens``)."""
        return self.prompt_tokens - self.cached_tokens - (self.cache_write_tokens or 0)


@dataclass(slots=True)
class Completion:
    """Everything one answer needs, computed once from the request and the step.

    ``finish_reason`` is neutral ("stop", "length", "tool_calls") unless the reply set one
    (``finish_verbatim``): wires map the neutral ones to their own words.
    """

    id: str
    created: int
    model: str
    tokens: list[str]  # the content, in stream-sized pieces
    content: str | None
    tool_calls: list[ToolCall] | None
    finish_reason: str
    usage: Usage | None
    raw_usage: dict[str, Any] | None  # Reply.usage: the wire sends it verbatim
    include_usage: bool
    request: NormalRequest
    headers: dict[str, str] = field(default_factory=dict)
    reasoning: str | None = None
    reasoning_tokens: list[str] = field(default_factory=list)
    reasoning_signature: str | None = None
    finish_verbatim: bool = False


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


def text_of(content: Any) -> str:
    """The text of a content value: a string, or a list of parts with ``text`` (OpenAI's and
    Anthropic's shapes; Gemini's ``parts`` too)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def tokens_of(text: str) -> list[str]:
    """Split text into word-sized tokens that join back to the text."""
    return _TOKEN_RE.findall(text)


def synthetic(n: int) -> str:
    return " ".join(_LOREM[i % len(_LOREM)] for i in range(n))


def last_user_text(req: NormalRequest) -> str:
    for m in reversed(req.messages):
        if m.role == "user":
            return m.text
    return ""


def _example_value(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return "test"
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if isinstance(kind, str):
        kind = kind.lower()  # Gemini writes OBJECT, STRING, ...
    if kind == "object":
        return example_args(schema)
    return {"integer": 1, "number": 1.0, "boolean": True, "array": [], "null": None}.get(kind, "test")


def example_args(schema: Any) -> dict[str, Any]:
    """Plausible arguments for a JSON-schema'd function: its required properties filled in."""
    if not isinstance(schema, dict):
        return {}
    props = schema.get("properties") or {}
    names = schema.get("required") or list(props)
    return {name: _example_value(props.get(name)) for name in names}


def _tool_call(call: dict[str, Any], prefix: str) -> ToolCall:
    fn = call.get("function", call)
    args = fn.get("arguments", {})
    return ToolCall(
        call.get("id") or prefix + secrets.token_hex(12),
        fn["name"],
        args if isinstance(args, str) else encode_json(args).decode(),
    )


def _auto_tool_calls(req: NormalRequest, user: str, prefix: str) -> list[ToolCall] | None:
    """The default behaviour's tool call: the first tool, when the user says "call tool"."""
    if not req.tools or "call tool" not in user.lower():
        return None
    tool = req.tools[0]
    return [ToolCall(prefix + secrets.token_hex(12), tool.name, encode_json(example_args(tool.parameters)).decode())]


def signature_of(text: str) -> str:
    """A stable stand-in for a provider's reasoning signature."""
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def plan(req: NormalRequest, reply: Reply, wire: Wire) -> Completion:
    """The answer to ``req`` under ``reply``: content, tool calls, reasoning, usage, finish reason."""
    chunks = reply.chunks if isinstance(reply, Stream) else None
    prefix = wire.tool_call_prefix
    tool_calls = [_tool_call(c, prefix) for c in reply.tool_calls] if reply.tool_calls else None
    user = last_user_text(req)

    if reply.content is not None:
        text: str | None = reply.content
    elif chunks is not None:
        text = synthetic(chunks)
    elif tool_calls is None and (tool_calls := _auto_tool_calls(req, user, prefix)) is not None:
        text = None
    else:
        user = " ".join(user.split())
        text = f"Echo: {user[:_ECHO_LIMIT]}" if user else f"Hello from {wire.name}."

    tokens = tokens_of(text) if text else []
    limit = req.max_tokens
    truncated = isinstance(limit, int) and limit >= 0 and len(tokens) > limit
    if truncated:
        tokens = tokens[:limit]
    if text is not None:
        text = "".join(tokens)

    reasoning = reply.reasoning
    if reasoning is None and req.reasoning and wire.reasoning_by_default:
        reasoning = f"The user wrote {len(user.split())} words; answer them."
    thought = tokens_of(reasoning) if reasoning else []

    finish = reply.finish_reason or ("tool_calls" if tool_calls else "length" if truncated else "stop")

    usage: Usage | None = None
    if reply.usage is None and not reply.omit_usage:
        cached = reply.cached_tokens or 0
        reasoning_count = reply.reasoning_tokens if reply.reasoning_tokens is not None else len(thought)
        prompt = reply.prompt_tokens
        if prompt is None:
            chars = req.prompt_chars
            if chars is None:
                chars = len(req.system or "") + sum(len(m.text) for m in req.messages)
            # Cached and written tokens are part of the prompt, as OpenAI counts them.
            prompt = max(max(1, chars // 4), cached + (reply.cache_write_tokens or 0))
        completion = reply.completion_tokens
        if completion is None:
            call_tokens = sum(max(1, len(c.arguments) // 4) for c in tool_calls or ())
            completion = len(tokens) + call_tokens + reasoning_count
        usage = Usage(prompt, completion, cached, reply.cache_write_tokens, reasoning_count)

    return Completion(
        id=wire.completion_id(),
        created=int(time.time()),
        model=reply.model or req.model,
        tokens=tokens,
        content=text,
        tool_calls=tool_calls,
        finish_reason=finish,
        usage=usage,
        raw_usage=reply.usage,
        include_usage=req.include_usage,
        request=req,
        headers=dict(reply.headers or {}),
        reasoning=reasoning,
        reasoning_tokens=thought,
        reasoning_signature=(reply.reasoning_signature or signature_of(reasoning)) if reasoning else None,
        finish_verbatim=reply.finish_reason is not None,
    )


# ---------------------------------------------------------------------------------------------------
# The wire: what one provider API looks like
# ---------------------------------------------------------------------------------------------------


class WireError(Exception):
    """Raised by a wire to answer with its error envelope (a bad request body, a wrong key)."""

    def __init__(self, status: int, message: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param


Handler = Callable[["FakeServer", web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    """One endpoint of the fake, relative to the server's base path.

    ``path`` is an aiohttp pattern (``/models/{model}:generateContent``); its placeholders are
    recorded in ``RecordedRequest.path_params``. Without ``handler`` the route answers with the
    script; ``stream`` True/False then fixes streaming for the route (Gemini's two methods, Bedrock's
    ``converse-stream``), None lets the request body decide. A ``handler(fake, request)`` route
    (a model listing) does not consume the script.
    """

    method: str
    path: str
    stream: bool | None = None
    handler: Handler | None = None


class Frames:
    """The events of one streamed completion, each already framed as bytes (SSE, AWS event-stream).

    The server writes ``head()``, then each of ``body()`` (fault positions count these), then
    ``finish()``, ``usage()`` and ``done()`` (the last two skipped when None or omitted).
    """

    def head(self) -> bytes:
        """Events before the content (OpenAI's role chunk, Anthropic's ``message_start``); may be b""."""
        raise NotImplementedError

    def body(self) -> list[bytes]:
        """One event per reasoning, content or tool-argument piece."""
        raise NotImplementedError

    def finish(self) -> bytes:
        """The events that close the answer (finish reason; Anthropic's usage and ``message_stop``)."""
        raise NotImplementedError

    def usage(self) -> bytes | None:
        """A separate usage event (OpenAI's usage chunk, Bedrock's ``metadata``), or None."""
        return None

    def done(self) -> bytes | None:
        """An end-of-stream marker (OpenAI's ``data: [DONE]``), or None."""
        return None

    def broken(self) -> bytes:
        """One malformed event (for ``broken_chunk_at``)."""
        raise NotImplementedError

    def error(self, stream: Stream) -> bytes:
        """The in-band error event that ends a stream (for ``error_after``; ``stream.error`` overrides)."""
        raise NotImplementedError


class Wire:
    """One provider API's wire format. Subclass it, fill in the methods, and name it in a
    ``FakeServer`` subclass (``wire = MyWire()``). Everything else (script, faults, recording,
    threads, usage and tool-call planning) is the core's.

    - ``routes()``: the endpoints (``Route``), relative to ``base_path``.
    - ``parse(body, request)``: the decoded JSON body (None when not JSON) into a ``NormalRequest``;
      raise ``WireError(400, ...)`` for a body the real API refuses.
    - ``completion_json(c)``: the non-streamed answer as a JSON-able value.
    - ``frames(c)``: the streamed answer as ``Frames``.
    - ``error_body(status, message, param)``: the error envelope (JSON-able) for a status;
      ``error_headers(status)`` adds headers to it (Bedrock's ``x-amzn-ErrorType``).
    - ``check_auth(request, api_key)``: None when the credentials are right, else a ``WireError``.
    - ``response_headers(c)``: headers sent with every completion (a Reply's ``headers`` are added).
    """

    name: ClassVar[str] = "Fake"  # "Hello from {name}." when the user said nothing
    base_path: ClassVar[str] = "/v1"  # the default base path of a server on this wire
    default_models: ClassVar[tuple[str, ...]] = ()
    tool_call_prefix: ClassVar[str] = "call_"
    reasoning_by_default: ClassVar[bool] = False  # emit reasoning text whenever the request asks
    stream_content_type: ClassVar[str] = "text/event-stream; charset=utf-8"

    def routes(self) -> list[Route]:
        raise NotImplementedError

    def parse(self, body: Any, request: web.Request) -> NormalRequest:
        raise NotImplementedError

    def completion_id(self) -> str:
        return "fake-" + secrets.token_hex(12)

    def completion_json(self, c: Completion) -> Any:
        raise NotImplementedError

    def frames(self, c: Completion) -> Frames:
        raise NotImplementedError

    def error_body(self, status: int, message: str | None = None, param: str | None = None) -> Any:
        raise NotImplementedError

    def error_headers(self, status: int) -> dict[str, str]:
        return {}

    def check_auth(self, request: web.Request, api_key: str) -> WireError | None:
        return None

    def response_headers(self, c: Completion) -> dict[str, str]:
        return {}


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=encode_json(payload), status=status, content_type="application/json", headers=headers)


# ---------------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------------


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


class FakeServer:
    """A fake upstream over real HTTP on loopback, speaking ``wire``.

    Scripted steps apply to the wire's completion routes; other routes (model listings) always
    answer the same. Any model name is accepted for completions.
    """

    wire: ClassVar[Wire]

    def __init__(
        self,
        *,
        api_key: str | None = None,
        pace: float = 0.0,
        models: tuple[str, ...] | list[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        base_path: str | None = None,
        reuse_port: bool = False,
        keep_requests: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.api_key = api_key
        self.ssl_context = ssl_context  # serve https with it
        self.pace = pace
        self.models = list(self.wire.default_models if models is None else models)
        self.host = host
        self.port = port
        base = self.wire.base_path if base_path is None else base_path
        self.base_path = "/" + base.strip("/") if base.strip("/") else ""
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
        """Queue steps, consumed one per completion request in order; then ``always``/default applies."""
        self._queue.extend(steps)

    def always(self, step: Step | None) -> None:
        """Use ``step`` for every completion request once the script is empty (None: the default)."""
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
            raise RuntimeError(f"{type(self).__name__} is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{host}:{self.port}{self.base_path}"

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for route in self.wire.routes():
            app.router.add_route(route.method, self.base_path + route.path, self._tracked(route))
        return app

    async def start(self) -> Self:
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

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @classmethod
    def run_in_thread(cls, **kwargs: Any) -> FakeThread[Self]:
        """Start a fake on its own event loop in a daemon thread (for synchronous clients)."""
        return FakeThread(cls(**kwargs))

    # -- handlers ------------------------------------------------------------------------------------

    def _tracked(self, route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """Record every request, check auth, and count responses the client abandoned."""
        wire = self.wire

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
                        dict(request.match_info),
                    )
                )
                self._received.increment()
                if self.api_key is not None and (denied := wire.check_auth(request, self.api_key)) is not None:
                    return self._error(denied)
                if route.handler is not None:
                    return await route.handler(self, request)
                ex.json = parsed
                step = self._queue.popleft() if self._queue else self._always
                return await self._perform(step, ex, route)
            except asyncio.CancelledError:
                if not self._stopping and not ex.aborted:
                    self._disconnects.increment()
                raise
            finally:
                if task is not None:
                    self._tasks.discard(task)

        return wrapper

    def _error(self, err: WireError) -> web.Response:
        wire = self.wire
        return json_response(
            wire.error_body(err.status, err.message, err.param), err.status, wire.error_headers(err.status) or None
        )

    async def _perform(self, step: Step | None, ex: _Exchange, route: Route) -> web.StreamResponse:
        if isinstance(step, Delay):
            await asyncio.sleep(step.seconds)
            return await self._perform(step.then, ex, route)
        if isinstance(step, Status):
            return self._status(step)
        if isinstance(step, Reset):
            _abort(ex)
            return web.Response()  # never written: aiohttp swallows the write to a closed transport
        if isinstance(step, BrokenJSON):
            return web.Response(body=step.body.encode(), status=step.status, content_type="application/json")

        wire = self.wire
        try:
            req = wire.parse(ex.json, ex.request)
        except WireError as err:
            return self._error(err)
        reply = step if isinstance(step, Reply) else Reply()
        completion = plan(req, reply, wire)
        streaming = req.stream if route.stream is None else route.stream
        if isinstance(reply, Stream) or streaming:
            return await self._stream(ex, completion, reply if isinstance(reply, Stream) else Stream())
        headers = wire.response_headers(completion)
        if completion.headers:
            headers = {**headers, **completion.headers}
        return json_response(wire.completion_json(completion), headers=headers)

    def _status(self, step: Status) -> web.Response:
        headers = dict(step.headers or {})
        if step.retry_after is not None:
            value = step.retry_after
            headers.setdefault("Retry-After", str(int(value)) if float(value).is_integer() else str(value))
        if step.body is None:
            headers = {**self.wire.error_headers(step.code), **headers}
            return json_response(self.wire.error_body(step.code), step.code, headers)
        if isinstance(step.body, dict):
            return json_response(step.body, step.code, headers)
        raw = step.body.encode() if isinstance(step.body, str) else step.body
        headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        return web.Response(body=raw, status=step.code, headers=headers)

    async def _stream(self, ex: _Exchange, c: Completion, s: Stream) -> web.StreamResponse:
        wire = self.wire
        resp = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": wire.stream_content_type,
                "Cache-Control": "no-cache",
                **wire.response_headers(c),
                **c.headers,
            },
        )
        frames = wire.frames(c)
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
            if head := frames.head():
                await write(head)
            body = frames.body()
            for k in range(len(body) + 1):
                # Faults fire once k body events are out; k == len(body) is "before the finish events".
                if s.broken_chunk_at == k:
                    await write(frames.broken())
                if s.stall_after == k:
                    await flush()
                    held = None if held is None else []
                    await asyncio.sleep(s.stall_seconds)
                if s.error_after == k:
                    await write(frames.error(s))
                    if s.done_after_error and (done := frames.done()) is not None:
                        await write(done)
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
            await write(frames.finish())
            if not s.omit_usage and (usage := frames.usage()) is not None:
                await write(usage)
            if not s.omit_done and (done := frames.done()) is not None:
                await write(done)
            await flush()
        except ConnectionResetError:
            # The client went away between two writes.
            if not self._stopping and not ex.aborted:
                self._disconnects.increment()
        return resp


F = TypeVar("F", bound=FakeServer)


class FakeThread(Generic[F]):
    """A fake served from a daemon thread with its own event loop.

    Scripting and inspection are safe from the calling thread: ``script``/``always`` append to a
    thread-safe deque and the counters are lock-protected.
    """

    def __init__(self, fake: F) -> None:
        self.fake = fake
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=type(fake).__name__, daemon=True)
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
    def requests(self) -> list[RecordedRequest] | collections.deque[RecordedRequest]:
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

    def __enter__(self) -> FakeThread[F]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------------
# CLI: serve a fake from the command line (the benchmark upstream)
# ---------------------------------------------------------------------------------------------------


def _serve(cls: type[FakeServer], options: dict[str, Any], chunks: int | None, announce: bool) -> None:
    async def serve() -> None:
        fake = cls(**options)
        if chunks is not None:
            fake.always(Reply(synthetic(chunks)))
        # Exit cleanly on SIGTERM too, so worker processes are reaped with the parent.
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, done.set)
        await fake.start()
        if announce:
            print(f"{cls.__name__} listening on {fake.base_url}", flush=True)
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


def main(cls: type[FakeServer], prog: str, argv: list[str] | None = None) -> None:
    """``python -m <module of cls>``: serve one fake until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog=prog, description=f"Serve {cls.__name__}, a fake {cls.wire.name} API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed on start)")
    parser.add_argument(
        "--chunks",
        type=int,
        default=None,
        help="answer every request with N content tokens instead of the echo",
    )
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between stream chunks")
    parser.add_argument("--api-key", default=None, help="require this key")
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
            ctx.Process(target=_serve, args=(cls, options, args.chunks, False), daemon=True)
            for _ in range(args.workers - 1)
        ]
        for w in workers:
            w.start()
        # The probe stays bound (never listening, so it takes no connections) to hold the port.
    _serve(cls, options, args.chunks, announce=True)
