"""What the response cache stores: one answer in the internal (chat) form, whether it was streamed or
not, so that any client format renders it either way; and the key it is stored under."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from omnirouter.jsonio import encode

# Request fields that do not change the answer: how it is delivered (`stream`), who asked (`user`,
# `session_id`, `metadata`, `trace`) and the provider's own prompt-cache routing hint.
IGNORED = frozenset({"stream", "stream_options", "user", "session_id", "metadata", "trace", "prompt_cache_key"})
# Part of every key: a change to what an entry holds starts afresh rather than misreads what Redis kept.
ENTRY_VERSION = "1"
# Only complete answers are kept: not errors, cut streams, filtered or truncated (`length`) answers.
STORED_FINISH = frozenset({"stop", "tool_calls"})


def digest(fmt: str, workspace: str, body: dict[str, Any]) -> str | None:
    """The key of a request: its client format, its key's workspace (answers are never shared between
    workspaces) and its internal body after presets and defaults, fields in the order they came
    (as OpenRouter's). None for a request that is not cached (`debug`, several choices)."""
    if "debug" in body or body.get("n") not in (None, 1):
        return None
    canonical = {name: value for name, value in body.items() if name not in IGNORED}
    h = hashlib.sha256(f"{ENTRY_VERSION}\0{fmt}\0{workspace}\0".encode())
    h.update(encode(canonical))
    return h.hexdigest()


def entry(
    gen_id: str,
    ttl: int,
    model: str,
    provider: str,
    slug: str,
    message: dict[str, Any],
    finish: str | None,
    native_finish: str | None,
) -> bytes | None:
    """The stored form of a complete answer, or None when it is not one to keep."""
    if finish not in STORED_FINISH or not (message.get("content") or message.get("tool_calls")):
        return None
    return encode(
        {
            "id": gen_id,
            "at": time.time(),
            "ttl": ttl,
            "model": model,
            "provider": provider,
            "slug": slug,
            "message": message,
            "finish_reason": finish,
            "native_finish_reason": native_finish,
        }
    )


class Collected:
    """A streamed answer's parts beyond its text (which the stream keeps anyway), merged from the
    deltas as they pass: reasoning, tool calls (their arguments joined by index), refusals,
    annotations, images."""

    __slots__ = ("annotations", "images", "reasoning", "reasoning_details", "refusal", "tool_calls")

    def __init__(self) -> None:
        self.reasoning: list[str] = []
        self.reasoning_details: list[Any] = []
        self.refusal: list[str] = []
        self.tool_calls: dict[int, dict[str, Any]] = {}
        self.annotations: list[Any] = []
        self.images: list[Any] = []

    def add(self, delta: dict[str, Any]) -> None:
        if isinstance(r := delta.get("reasoning") or delta.get("reasoning_content"), str):
            self.reasoning.append(r)
        if isinstance(r := delta.get("refusal"), str):
            self.refusal.append(r)
        for name in ("reasoning_details", "annotations", "images"):
            if isinstance(items := delta.get(name), list):
                getattr(self, name).extend(items)
        for tc in delta.get("tool_calls") or ():
            if not isinstance(tc, dict):
                continue
            index = tc.get("index", len(self.tool_calls))
            call = self.tool_calls.get(index)
            fn = tc.get("function") or {}
            if call is None:
                call = self.tool_calls[index] = {
                    "id": tc.get("id"),
                    "type": tc.get("type") or "function",
                    "function": {"name": fn.get("name"), "arguments": ""},
                }
            call["function"]["arguments"] += fn.get("arguments") or ""

    def message(self, text: str) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": text or (None if self.tool_calls else "")}
        if self.reasoning:
            message["reasoning"] = "".join(self.reasoning)
        if self.reasoning_details:
            message["reasoning_details"] = self.reasoning_details
        if self.refusal:
            message["refusal"] = "".join(self.refusal)
        if self.tool_calls:
            message["tool_calls"] = [self.tool_calls[i] for i in sorted(self.tool_calls)]
        if self.annotations:
            message["annotations"] = self.annotations
        if self.images:
            message["images"] = self.images
        return message


def completion(stored: dict[str, Any], gen_id: str, created: int, usage: dict[str, Any]) -> dict[str, Any]:
    """A hit as a chat completion: the stored answer under a new generation id."""
    return {
        "id": gen_id,
        "object": "chat.completion",
        "created": created,
        "model": stored["model"],
        "provider": stored["provider"],
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": stored["message"],
                "finish_reason": stored["finish_reason"],
                "native_finish_reason": stored["native_finish_reason"],
                "logprobs": None,
            }
        ],
        "usage": usage,
    }


def chunks(stored: dict[str, Any], gen_id: str, created: int, usage: dict[str, Any]) -> list[dict[str, Any]]:
    """A hit as a chat stream: reasoning, text, tool calls, the rest, the finish, then the usage."""
    message = stored["message"]
    deltas: list[dict[str, Any]] = []
    if message.get("reasoning") or message.get("reasoning_details"):
        deltas.append(
            {
                "role": "assistant",
                "content": "",
                **{k: message[k] for k in ("reasoning", "reasoning_details") if k in message},
            }
        )
    if message.get("content") or not message.get("tool_calls"):
        deltas.append({"role": "assistant", "content": message.get("content") or ""})
    if message.get("tool_calls"):
        deltas.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"index": i, **tc} for i, tc in enumerate(message["tool_calls"])],
            }
        )
    if rest := {k: message[k] for k in ("refusal", "annotations", "images") if message.get(k)}:
        deltas.append(rest)
    prefix = {
        "id": gen_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": stored["model"],
        "provider": stored["provider"],
    }
    out = [{**prefix, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
    out.append(
        {
            **prefix,
            "choices": [
                {
                    "index": 0,
                    "delta": {},
                    "finish_reason": stored["finish_reason"],
                    "native_finish_reason": stored["native_finish_reason"],
                }
            ],
        }
    )
    out.append({**prefix, "choices": [], "usage": usage})
    return out
