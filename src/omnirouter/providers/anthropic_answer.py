"""Anthropic Messages answers in the internal form: a message as a chat completion, and the stream's
events (message_start, content_block_*, message_delta, message_stop, ping, error) as chunks.

Thinking becomes `reasoning` text and `reasoning_details` entries that keep each block's signature
(or a redacted block's data), so a client can send them back; tool_use blocks become tool_calls.
The native stop_reason is passed on as finish_reason (formats.openai_chat.normalize_finish maps it).
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from omnirouter.providers.anthropic_request import REASONING_FORMAT
from omnirouter.providers.base import UpstreamError

_encode = msgspec.json.encode

# An error event's type -> the HTTP status Anthropic answers it with.
STATUS_OF_ERROR = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def _count(usage: dict[str, Any], name: str) -> int:
    """A token count; anything but a non-negative integer (a broken upstream) counts 0."""
    value = usage.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def usage_of(raw: Any) -> dict[str, Any]:
    """Anthropic usage in OpenAI's terms: its input_tokens exclude cache reads and writes, the
    internal prompt_tokens include them."""
    if not isinstance(raw, dict):
        raw = {}
    fresh, read = _count(raw, "input_tokens"), _count(raw, "cache_read_input_tokens")
    written, output = _count(raw, "cache_creation_input_tokens"), _count(raw, "output_tokens")
    prompt = fresh + read + written
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "total_tokens": prompt + output,
        "prompt_tokens_details": {"cached_tokens": read, "cache_write_tokens": written},
    }
    details = raw.get("output_tokens_details")
    if isinstance(details, dict) and (thinking := _count(details, "thinking_tokens")):
        usage["completion_tokens_details"] = {"reasoning_tokens": thinking}
    return usage


def error_of_event(event: dict[str, Any], raw: bytes) -> UpstreamError:
    """An `error` event (or an error envelope in place of a message) as an UpstreamError."""
    err = event.get("error") if isinstance(event.get("error"), dict) else {}
    kind = err.get("type")
    return UpstreamError(
        str(err.get("message") or "Upstream reported an error"),
        status=STATUS_OF_ERROR.get(kind, 502) if isinstance(kind, str) else 502,
        raw=raw[:2000].decode(errors="replace"),
        provider_code=kind if isinstance(kind, str) else None,
    )


class _Block(msgspec.Struct):
    """A content block of a message (or a stream's content_block_start), in the fields read here."""

    type: str
    text: str | None = None
    thinking: str | None = None
    signature: str | None = None
    data: str | None = None  # a redacted thinking block's
    id: str | None = None
    name: str | None = None
    input: Any = None


class _Message(msgspec.Struct):
    """A Messages response (or the message of message_start), or an error envelope in its place."""

    type: str = ""  # "message" (checked for a response only)
    id: str | None = None
    model: str | None = None
    content: list[_Block] = msgspec.field(default_factory=list)
    stop_reason: str | None = None
    usage: dict[str, Any] | None = None
    error: Any = None


_decode_message = msgspec.json.Decoder(_Message).decode


def _malformed(what: str, raw: bytes) -> UpstreamError:
    return UpstreamError(f"Upstream sent {what} that is not valid", status=502,
                         raw=raw[:2000].decode(errors="replace"), kind="protocol")  # fmt: skip


def _text_detail(text: str, signature: str | None, index: int) -> dict[str, Any]:
    detail: dict[str, Any] = {"type": "reasoning.text", "text": text}
    if signature is not None:
        detail["signature"] = signature
    detail["format"], detail["index"] = REASONING_FORMAT, index
    return detail


def _encrypted_detail(data: str | None, index: int) -> dict[str, Any]:
    return {"type": "reasoning.encrypted", "data": data or "", "format": REASONING_FORMAT, "index": index}


def completion_of(raw: bytes, *, exclude_reasoning: bool = False) -> dict[str, Any]:
    """A Messages response body as a chat completion; an error envelope, or a body that is not a
    message, as an UpstreamError."""
    try:
        msg = _decode_message(raw)
    except msgspec.DecodeError:
        raise _malformed("a response", raw) from None
    if msg.type != "message":
        if msg.type == "error":
            raise error_of_event({"error": msg.error}, raw)
        raise _malformed("a response", raw)
    texts: list[str] = []
    thoughts: list[str] = []
    details: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for block in msg.content:
        kind = block.type
        if kind == "text":
            texts.append(block.text or "")
        elif kind == "thinking":
            thoughts.append(block.thinking or "")
            details.append(_text_detail(block.thinking or "", block.signature, len(details)))
        elif kind == "redacted_thinking":
            details.append(_encrypted_detail(block.data, len(details)))
        elif kind == "tool_use":
            arguments = _encode(block.input if block.input is not None else {}).decode()
            calls.append({"id": block.id, "type": "function", "function": {"name": block.name, "arguments": arguments}})
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if details and not exclude_reasoning:
        message["reasoning"] = "".join(thoughts)
        message["reasoning_details"] = details
    if calls:
        message["tool_calls"] = calls
    return {
        "id": msg.id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": msg.model,
        "choices": [{"index": 0, "message": message, "finish_reason": msg.stop_reason, "logprobs": None}],
        "usage": usage_of(msg.usage),
    }


class _Delta(msgspec.Struct):
    """A content_block_delta's `delta` (or message_delta's, which says the stop reason)."""

    type: str = ""
    text: str | None = None
    partial_json: str | None = None
    thinking: str | None = None
    signature: str | None = None
    stop_reason: str | None = None


class _Event(msgspec.Struct):
    """One stream event, decoded straight into the fields the stream needs: no dicts built for a
    text delta, which most events are, and a malformed event is refused at decode."""

    type: str
    index: int = -1
    delta: _Delta | None = None
    content_block: _Block | None = None
    message: _Message | None = None
    usage: dict[str, Any] | None = None
    error: Any = None


decode_event = msgspec.json.Decoder(_Event).decode


class StreamDecoder:
    """The state of one Messages stream: which content block is which tool call or reasoning
    detail, and the usage so far (message_start's, updated by message_delta)."""

    __slots__ = ("created", "details", "done", "exclude", "id", "model", "spoke", "tools", "usage")

    def __init__(self, *, exclude_reasoning: bool = False) -> None:
        self.id: str | None = None
        self.model: str | None = None
        self.created = int(time.time())
        self.exclude = exclude_reasoning
        self.tools: dict[int, int] = {}  # content block index -> tool_calls index
        self.details: dict[int, int] = {}  # content block index -> reasoning_details index
        self.usage: dict[str, Any] = {}
        self.done = False  # message_stop was read
        self.spoke = False  # a chunk went out (the first says the role)

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        if not self.spoke:
            # Not at message_start: until a chunk goes out, an error event (overloaded) can still
            # fall back to another endpoint.
            self.spoke = True
            delta = {"role": "assistant", **delta}
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    def feed(self, raw: bytes, out: list[dict[str, Any]]) -> str:
        """Append the chunks one event (an SSE data payload) carries to `out` and return its type;
        raise UpstreamError for an error event or one that is not an event."""
        try:
            event = decode_event(raw)
        except msgspec.DecodeError:
            raise _malformed("a stream event", raw) from None
        kind = event.type
        if kind == "content_block_delta":
            delta = event.delta
            if delta is None:
                return kind
            dtype = delta.type
            if dtype == "text_delta":
                if delta.text:
                    out.append(self._chunk({"content": delta.text}))
            elif dtype == "input_json_delta":
                tool = self.tools.get(event.index)
                if delta.partial_json and tool is not None:
                    call = {"index": tool, "function": {"arguments": delta.partial_json}}
                    out.append(self._chunk({"tool_calls": [call]}))
            elif dtype == "thinking_delta":
                if delta.thinking and not self.exclude:
                    detail = _text_detail(delta.thinking, None, self._detail_index(event.index))
                    out.append(self._chunk({"reasoning": delta.thinking, "reasoning_details": [detail]}))
            elif dtype == "signature_delta" and not self.exclude:
                detail = _text_detail("", delta.signature or "", self._detail_index(event.index))
                out.append(self._chunk({"reasoning_details": [detail]}))
        elif kind == "content_block_start":
            if event.content_block is not None:
                self._start(event.index, event.content_block, out)
        elif kind == "message_start":
            if event.message is not None:
                self.id, self.model = event.message.id, event.message.model
                self.usage = dict(event.message.usage or {})
        elif kind == "message_delta":
            if event.usage:  # cumulative counts
                self.usage.update({k: v for k, v in event.usage.items() if v is not None})
            reason = event.delta.stop_reason if event.delta is not None else None
            if reason is not None:
                out.append(self._chunk({}, reason))
        elif kind == "message_stop":
            self.done = True
            out.append({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                        "model": self.model, "choices": [], "usage": usage_of(self.usage)})  # fmt: skip
        elif kind == "error":
            raise error_of_event({"error": event.error}, raw)
        # ping, content_block_stop and event types added later carry nothing to relay
        return kind

    def _detail_index(self, block: int) -> int:
        index = self.details.get(block)
        if index is None:
            index = self.details[block] = len(self.details)
        return index

    def _start(self, block_index: int, block: _Block, out: list[dict[str, Any]]) -> None:
        btype = block.type
        if btype == "tool_use":
            index = self.tools[block_index] = len(self.tools)
            call = {
                "index": index,
                "id": block.id,
                "type": "function",
                "function": {"name": block.name, "arguments": ""},
            }
            out.append(self._chunk({"tool_calls": [call]}))
        elif btype == "text":
            if block.text:
                out.append(self._chunk({"content": block.text}))
        elif btype == "redacted_thinking":
            if not self.exclude:
                detail = _encrypted_detail(block.data, self._detail_index(block_index))
                out.append(self._chunk({"reasoning_details": [detail]}))
        elif btype == "thinking":
            index = self._detail_index(block_index)
            if block.thinking and not self.exclude:
                detail = _text_detail(block.thinking, None, index)
                out.append(self._chunk({"reasoning": block.thinking, "reasoning_details": [detail]}))
