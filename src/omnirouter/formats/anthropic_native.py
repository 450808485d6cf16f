"""Messages passed through to an Anthropic upstream (pipeline/attempt.py, Passthrough).

The client's body goes upstream as it came, less the gateway's own fields; the upstream's events
come back as it sent them (the same `data:` bytes), except three that carry the gateway's facts:
message_start names the generation and the model that answered, and the upstream's message_delta
(its final usage) and message_stop are held until the stream has settled, to go out with
OpenRouter's cost added. Those, and content_block_start, also get the fields OpenRouter's schema
requires where the upstream left them out (never overwriting one it sent). An error after the first
event is Anthropic's `error` event.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from omnirouter.formats.anthropic_stream import error_event, event

# The OpenRouter extensions a Messages body may carry, which no Anthropic upstream takes.
GATEWAY_FIELDS = frozenset(
    {"models", "provider", "plugins", "route", "session_id", "transforms", "usage", "preset", "debug", "trace"}
)
COST_FIELDS = ("cost", "is_byok", "cost_details")
# Fields OpenRouter's schema requires of a message and a message_delta, null when unused, that an
# upstream (an older API version, a compatible server) may leave out.
NULLABLE: dict[str, Any] = {"container": None, "stop_details": None}
USAGE_NULLABLE: dict[str, Any] = dict.fromkeys(
    ("cache_creation_input_tokens", "cache_read_input_tokens", "cache_creation", "inference_geo",
     "output_tokens_details", "server_tool_use", "service_tier")
)  # fmt: skip
# Block fields likewise required (as the translated answers carry them), by block type.
BLOCK_DEFAULTS: dict[str, dict[str, Any]] = {"text": {"citations": None}, "tool_use": {"caller": {"type": "direct"}}}


def conform_block(block: Any) -> Any:
    """A content block with the fields OpenRouter's schema requires of its type filled in, if missing."""
    if isinstance(block, dict) and (defaults := BLOCK_DEFAULTS.get(block.get("type"))):  # type: ignore[arg-type]
        return {**defaults, **block}
    return block


def native_request(client: dict[str, Any], upstream_model: str, stream: bool) -> dict[str, Any]:
    """The body an Anthropic upstream gets: the client's, with its model name and stream flag."""
    body = {k: v for k, v in client.items() if k not in GATEWAY_FIELDS}
    body["model"] = upstream_model
    if stream:
        body["stream"] = True
    else:
        body.pop("stream", None)
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(user := metadata.get("user_id"), str):
        # An end-user id is hashed before it leaves, as on every other path (behaviors §7.1).
        body["metadata"] = {**metadata, "user_id": hashlib.sha256(user.encode()).hexdigest()[:32]}
    return body


def with_cost(usage: Any, completion_usage: dict[str, Any] | None) -> dict[str, Any]:
    """The upstream's usage, with OpenRouter's cost beside its token counts."""
    out = {**USAGE_NULLABLE, **usage} if isinstance(usage, dict) else dict(USAGE_NULLABLE)
    for name in COST_FIELDS:
        if completion_usage and name in completion_usage:
            out[name] = completion_usage[name]
    return out


def render_native(answer: dict[str, Any], completion: dict[str, Any]) -> dict[str, Any]:
    """The upstream's message as it came, naming the generation and carrying its cost."""
    out = {**NULLABLE, **answer}
    if isinstance(content := answer.get("content"), list):
        out["content"] = [conform_block(b) for b in content]
    out["id"] = completion.get("id")
    out["model"] = completion.get("model")
    out["usage"] = with_cost(answer.get("usage"), completion.get("usage"))
    if "provider" in completion:
        out["provider"] = completion["provider"]
    if "openrouter_metadata" in completion:
        out["openrouter_metadata"] = completion["openrouter_metadata"]
    return out


class NativeMessagesEncoder:
    """Relays an Anthropic upstream's events. Items are the adapter's (event type, data bytes,
    decoded event)."""

    __slots__ = ("delta", "ended", "failed", "metadata")

    def __init__(self) -> None:
        self.delta: dict[str, Any] | None = None  # the upstream's message_delta, held for the cost
        self.ended = False
        self.failed = False
        self.metadata: Any = None

    def native(self, item: tuple[bytes, bytes, dict[str, Any]], prefix: dict[str, Any]) -> bytes:
        name, data, decoded = item
        if name == b"message_start":
            message = {**NULLABLE, **(decoded.get("message") or {}), "id": prefix["id"], "model": prefix["model"]}
            message["usage"] = {**USAGE_NULLABLE, **(message.get("usage") or {})}
            if "provider" in prefix:
                message["provider"] = prefix["provider"]
            return event(b"message_start", {**decoded, "message": message})
        if name == b"content_block_start":  # one per block, not decoded by the adapter
            start = msgspec.json.decode(data)
            if isinstance(start, dict) and "content_block" in start:
                return event(name, {**start, "content_block": conform_block(start["content_block"])})
        if name == b"message_delta":
            self.delta = decoded
            return b""
        if name == b"message_stop":
            return b""  # done() sends it, after the cost
        return b"event: " + name + b"\ndata: " + data + b"\n\n"

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        """The pipeline's own chunks: the in-band error, and the last one with usage and cost."""
        if self.failed or self.ended:
            return b""
        if (error := chunk.get("error")) is not None:
            self.failed = True
            return error_event(error)
        if "openrouter_metadata" in chunk:
            self.metadata = chunk["openrouter_metadata"]
        if (usage := chunk.get("usage")) is None:
            return b""
        self.ended = True
        delta = self.delta or {"type": "message_delta", "delta": {"stop_reason": None, "stop_sequence": None}}
        fields = {**NULLABLE, **(delta.get("delta") or {})}
        return event(b"message_delta", {**delta, "delta": fields, "usage": with_cost(delta.get("usage"), usage)})

    def done(self) -> bytes:
        if self.failed:
            return b""
        payload: dict[str, Any] = {"type": "message_stop"}
        if self.metadata is not None:
            payload["openrouter_metadata"] = self.metadata
        return event(b"message_stop", payload)
