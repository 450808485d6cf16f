"""The Anthropic Messages wire, and FakeAnthropic: the fake that speaks it.

``POST /v1/messages`` answers as Anthropic does: a ``message`` object, or SSE events with an
``event:`` line each (``message_start`` with the input usage, ``content_block_start``, ``ping``,
``content_block_delta`` with ``thinking_delta``/``signature_delta``/``text_delta``/
``input_json_delta``, ``content_block_stop``, ``message_delta`` with the stop reason and usage,
``message_stop``), Anthropic's error envelope (``{"type": "error", "error": {...}}``) and
``x-api-key`` (or bearer) auth. It refuses what Anthropic refuses and a translating client could get wrong:
no ``max_tokens``, a system role in ``messages``, empty text blocks, a thinking block whose
signature it did not issue, a ``tool_result`` that answers no ``tool_use`` of the turn before.

    with FakeAnthropic.run_in_thread() as fake:
        fake.script(Reply("Hi", reasoning="Thinking it over.", cached_tokens=900))
"""

from __future__ import annotations

import secrets
from typing import Any, ClassVar

from aiohttp import web

from omnirouter.testing.fakes.core import (
    Completion,
    FakeServer,
    FakeThread,
    Frames,
    Message,
    NormalRequest,
    Route,
    Stream,
    Tool,
    Wire,
    WireError,
    encode_json,
    json_response,
    signature_of,
    text_of,
)

__all__ = ["AnthropicWire", "FakeAnthropic", "FakeAnthropicThread", "error_body"]

API_VERSION = "2023-06-01"
_DEFAULT_MODELS = ("claude-sonnet-4-5", "claude-opus-4-5", "claude-haiku-4-5")
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "An unexpected error has occurred internal to Anthropic's systems."),
    504: ("timeout_error", "Request timed out."),
    529: ("overloaded_error", "Overloaded"),
}
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_ARGUMENT_PIECE = 8  # characters of tool input per input_json_delta


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """Anthropic's error envelope for ``status``."""
    kind, default = _ERRORS.get(status, ("api_error", "Request failed."))
    return {
        "type": "error",
        "error": {"type": kind, "message": message or default},
        "request_id": "req_" + secrets.token_hex(12),
    }


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + encode_json(payload) + b"\n\n"


def stop_reason(c: Completion) -> str:
    return c.finish_reason if c.finish_verbatim else _STOP_REASONS.get(c.finish_reason, "end_turn")


def usage_json(c: Completion, *, start: bool = False) -> dict[str, Any]:
    """Anthropic's usage: input_tokens exclude cache reads and writes. message_start says one output token."""
    if c.raw_usage is not None:
        return c.raw_usage
    u = c.usage
    if u is None:
        return {"input_tokens": 0, "output_tokens": 0}
    out: dict[str, Any] = {
        "input_tokens": u.uncached_prompt_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens or 0,
        "cache_read_input_tokens": u.cached_tokens,
        "output_tokens": 1 if start else u.completion_tokens,
    }
    if u.reasoning_tokens and not start:
        out["output_tokens_details"] = {"thinking_tokens": u.reasoning_tokens}
    if start:
        out["service_tier"] = "standard"
    return out


def _blocks(c: Completion) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if c.reasoning is not None:
        blocks.append({"type": "thinking", "thinking": c.reasoning, "signature": c.reasoning_signature})
    if c.content:
        blocks.append({"type": "text", "text": c.content})
    for call in c.tool_calls or ():
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": call.args})
    return blocks


class _Events(Frames):
    """Anthropic's SSE events for one message. Each body event is one delta; a block's
    content_block_start rides with its first delta and content_block_stop with its last."""

    def __init__(self, c: Completion) -> None:
        self.c = c
        self.blocks: list[list[bytes]] = []  # per content block: its events, start and stop included
        index = 0
        if c.reasoning is not None:
            deltas = [{"type": "thinking_delta", "thinking": t} for t in c.reasoning_tokens]
            deltas.append({"type": "signature_delta", "signature": c.reasoning_signature})
            self._block(index, {"type": "thinking", "thinking": "", "signature": ""}, deltas)
            index += 1
        if c.tokens:
            self._block(index, {"type": "text", "text": ""}, [{"type": "text_delta", "text": t} for t in c.tokens])
            index += 1
        for call in c.tool_calls or ():
            args = encode_json(call.args).decode()
            pieces = [args[i : i + _ARGUMENT_PIECE] for i in range(0, len(args), _ARGUMENT_PIECE)]
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in ["", *pieces]]
            self._block(index, {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}, deltas)
            index += 1

    def _block(self, index: int, start: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
        events = [_event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
                  for d in deltas]  # fmt: skip
        events[0] = _event("content_block_start", {"type": "content_block_start", "index": index,
                                                   "content_block": start}) + events[0]  # fmt: skip
        events[-1] += _event("content_block_stop", {"type": "content_block_stop", "index": index})
        self.blocks.append(events)

    def head(self) -> bytes:
        c = self.c
        message = {
            "id": c.id,
            "type": "message",
            "role": "assistant",
            "model": c.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_json(c, start=True),
        }
        return _event("message_start", {"type": "message_start", "message": message}) + _event("ping", {"type": "ping"})

    def body(self) -> list[bytes]:
        return [event for block in self.blocks for event in block]

    def finish(self) -> bytes:
        delta: dict[str, Any] = {"type": "message_delta", "delta": {"stop_reason": stop_reason(self.c),
                                                                     "stop_sequence": None}}  # fmt: skip
        if self.c.usage is not None or self.c.raw_usage is not None:
            delta["usage"] = usage_json(self.c)
        return _event("message_delta", delta) + _event("message_stop", {"type": "message_stop"})

    def broken(self) -> bytes:
        return b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {\n\n'

    def error(self, stream: Stream) -> bytes:
        err = stream.error or error_body(529)["error"]
        return _event("error", {"type": "error", "error": err})


def _system_text(system: Any) -> str:
    if isinstance(system, str):
        return system
    if not isinstance(system, list):
        raise WireError(400, "system: Input should be a valid string or list")
    for block in system:
        if not isinstance(block, dict) or block.get("type") != "text":
            raise WireError(400, "system: only text blocks are allowed")
    return text_of(system)


class AnthropicWire(Wire):
    """Anthropic Messages: ``POST /messages``, ``POST /messages/count_tokens``, ``GET /models``,
    ``x-api-key`` auth, ``anthropic-version`` required."""

    name: ClassVar[str] = "FakeAnthropic"
    base_path: ClassVar[str] = "/v1"
    default_models: ClassVar[tuple[str, ...]] = _DEFAULT_MODELS
    tool_call_prefix: ClassVar[str] = "toolu_"
    reasoning_by_default: ClassVar[bool] = True  # thinking enabled: Claude shows its (summarised) thinking

    def __init__(self) -> None:
        self.issued: set[str] = set()  # signatures of thinking blocks the fake sent

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/messages"),
            Route("POST", "/messages/count_tokens", handler=_count_tokens),
            Route("GET", "/models", handler=_list_models),
        ]

    def parse(self, body: Any, request: web.Request) -> NormalRequest:
        if not request.headers.get("anthropic-version"):
            raise WireError(400, "anthropic-version: header is required")
        if not isinstance(body, dict):
            raise WireError(400, "There was an error parsing the body of your request.")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise WireError(400, "model: Field required")
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise WireError(400, "max_tokens: Field required")
        system = _system_text(body["system"]) if "system" in body else None
        messages, chars = self._messages(body.get("messages"))
        thinking = body.get("thinking")
        reasoning = isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")
        if isinstance(thinking, dict) and thinking.get("type") == "enabled":
            budget = thinking.get("budget_tokens")
            if not isinstance(budget, int) or budget < 1024:
                raise WireError(400, "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
            if budget >= max_tokens:
                raise WireError(400, "`max_tokens` must be greater than `thinking.budget_tokens`.")
            if body.get("temperature") not in (None, 1) or body.get("top_k") is not None:
                raise WireError(400, "`temperature` and `top_k` may not be set while thinking is enabled.")
        tools = [self._tool(t) for t in body.get("tools") or ()]
        return NormalRequest(
            model=model,
            stream=body.get("stream") is True,
            messages=messages,
            system=system,
            tools=tools,
            max_tokens=max_tokens,
            reasoning=reasoning,
            prompt_chars=chars + len(system or ""),
        )

    @staticmethod
    def _tool(tool: Any) -> Tool:
        if not isinstance(tool, dict) or not tool.get("name"):
            raise WireError(400, "tools: each tool needs a name")
        if "input_schema" not in tool and tool.get("type") in (None, "custom"):
            raise WireError(400, "tools.input_schema: Field required")
        return Tool(tool["name"], tool.get("description"), tool.get("input_schema"))

    def _messages(self, raw: Any) -> tuple[list[Message], int]:
        if not isinstance(raw, list) or not raw:
            raise WireError(400, "messages: at least one message is required")
        out: list[Message] = []
        chars = 0
        calls: set[str] = set()  # tool_use ids of the last assistant turn
        for i, m in enumerate(raw):
            if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
                role = m.get("role") if isinstance(m, dict) else None
                raise WireError(400, f'messages.{i}.role: Input should be "user" or "assistant", got {role!r}')
            content = m.get("content")
            blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
            if not isinstance(blocks, list):
                raise WireError(400, f"messages.{i}.content: Input should be a valid list")
            texts, results = [], 0
            answered: set[str] = set()
            for j, block in enumerate(blocks):
                where = f"messages.{i}.content.{j}"
                kind = block.get("type") if isinstance(block, dict) else None
                if kind == "text":
                    if not block.get("text") and not isinstance(content, str):
                        raise WireError(400, f"{where}: text content blocks must be non-empty")
                    texts.append(block.get("text") or "")
                elif kind in ("thinking", "redacted_thinking"):
                    if m["role"] != "assistant":
                        raise WireError(400, f"{where}: thinking blocks belong to assistant turns")
                    self._check_thinking(block, where)
                elif kind == "tool_use":
                    if m["role"] != "assistant" or not block.get("id") or not isinstance(block.get("input"), dict):
                        raise WireError(400, f"{where}: tool_use needs an id and an input object")
                    answered.add(block["id"])
                    chars += len(encode_json(block["input"]))
                elif kind == "tool_result":
                    if block.get("tool_use_id") not in calls:
                        raise WireError(
                            400,
                            f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: "
                            f"{block.get('tool_use_id')}. Each `tool_result` block must have a corresponding "
                            "`tool_use` block in the previous message.",
                        )
                    results += 1
                    texts.append(text_of(block.get("content")))
                elif kind == "image":
                    source = block.get("source") or {}
                    if source.get("type") == "base64" and source.get("media_type") not in _IMAGE_TYPES:
                        raise WireError(400, f"{where}.source.media_type: unsupported image type")
                elif kind == "document":
                    source = block.get("source")
                    if not isinstance(source, dict):
                        raise WireError(400, f"{where}.source: Field required")
                    if source.get("type") == "base64" and source.get("media_type") != "application/pdf":
                        raise WireError(400, f"{where}.source.media_type: Input should be 'application/pdf'")
                else:
                    raise WireError(400, f"{where}.type: unknown content block type {kind!r}")
            if m["role"] == "user" and calls and results < len(calls):
                raise WireError(
                    400,
                    f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                    f"{', '.join(sorted(calls))}. Each `tool_use` block must have a corresponding `tool_result` "
                    "block in the next message.",
                )
            calls = answered if m["role"] == "assistant" else set()
            text = " ".join(texts)
            chars += len(text)
            role = "tool" if results and results == len(blocks) else m["role"]
            out.append(Message(role, text))
        return out, chars

    def _check_thinking(self, block: dict[str, Any], where: str) -> None:
        if block["type"] == "redacted_thinking":
            if not block.get("data"):
                raise WireError(400, f"{where}.data: Field required")
            return
        signature = block.get("signature")
        if not signature or (signature not in self.issued and signature != signature_of(block.get("thinking") or "")):
            raise WireError(400, f"{where}: Invalid `signature` in `thinking` block")

    def completion_id(self) -> str:
        return "msg_" + secrets.token_hex(12)

    def _issue(self, c: Completion) -> None:
        if c.reasoning_signature:
            self.issued.add(c.reasoning_signature)

    def completion_json(self, c: Completion) -> dict[str, Any]:
        self._issue(c)
        return {
            "id": c.id,
            "type": "message",
            "role": "assistant",
            "model": c.model,
            "content": _blocks(c),
            "stop_reason": stop_reason(c),
            "stop_sequence": None,
            "usage": usage_json(c),
        }

    def frames(self, c: Completion) -> Frames:
        self._issue(c)
        return _Events(c)

    def error_body(self, status: int, message: str | None = None, param: str | None = None) -> Any:
        return error_body(status, message)

    def check_auth(self, request: web.Request, api_key: str) -> WireError | None:
        # x-api-key, or the key as a bearer token (what the anthropic SDK sends since 2.x)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        key = request.headers.get("x-api-key") or (token.strip() if scheme.lower() == "bearer" else "")
        if not key:
            return WireError(401, "x-api-key header is required")
        if key != api_key:
            return WireError(401, "invalid x-api-key")
        return None

    def response_headers(self, c: Completion) -> dict[str, str]:
        return {"request-id": "req_" + secrets.token_hex(12)}


async def _count_tokens(fake: FakeServer, request: web.Request) -> web.StreamResponse:
    wire = fake.wire
    try:
        body = await request.json()
        for name in ("max_tokens", "stream", "temperature", "top_p", "top_k", "stop_sequences"):
            if isinstance(body, dict) and name in body:
                raise WireError(400, f"{name}: Extra inputs are not permitted")
        # parse() wants a max_tokens (above any thinking budget); counting has none
        req = wire.parse({"max_tokens": 1 << 30, **body} if isinstance(body, dict) else body, request)
    except WireError as err:
        return json_response(error_body(err.status, err.message), err.status)
    except ValueError:
        return json_response(error_body(400, "There was an error parsing the body of your request."), 400)
    return json_response({"input_tokens": max(1, (req.prompt_chars or 0) // 4)})


async def _list_models(fake: FakeServer, request: web.Request) -> web.StreamResponse:
    data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-09-29T00:00:00Z"} for m in fake.models]
    return json_response(
        {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }
    )


class FakeAnthropic(FakeServer):
    """A fake Anthropic upstream over real HTTP on loopback; its base_url ends in /v1, as a
    provider's `base_url` for `api: anthropic` does."""

    wire: ClassVar[Wire] = AnthropicWire()

    @classmethod
    def run_in_thread(cls, **kwargs: Any) -> FakeAnthropicThread:
        """Start a fake on its own event loop in a daemon thread (for synchronous clients)."""
        return FakeAnthropicThread(cls(**kwargs))


class FakeAnthropicThread(FakeThread[FakeAnthropic]):
    """A FakeAnthropic served from a daemon thread with its own event loop."""


if __name__ == "__main__":
    from omnirouter.testing.fakes.core import main

    main(FakeAnthropic, "python -m omnirouter.testing.fakes.anthropic")
