"""The internal chat stream re-encoded as Anthropic's Messages SSE events.

    message_start
    (content_block_start, content_block_delta*, content_block_stop)*   thinking / text / tool_use
    message_delta          stop_reason, and the final usage with OpenRouter's cost
    message_stop           (openrouter_metadata rides here, as OpenRouter sends it)

A chat stream interleaves reasoning, text and tool-call fragments in its deltas; Anthropic's has one
open block at a time, so a change of kind closes the open block and starts the next index. Each
tool call (by its chat `index`) is one tool_use block whose arguments arrive as input_json_delta.
An in-band error chunk becomes an `error` event, and the stream says nothing more after it.
"""

from __future__ import annotations

from typing import Any

from omnirouter.formats.anthropic_terms import (
    error_object,
    redacted_data,
    stop_reason,
    usage_block,
    web_citations,
)
from omnirouter.jsonio import encode


def event(name: bytes, payload: dict[str, Any]) -> bytes:
    return b"event: " + name + b"\ndata: " + encode(payload) + b"\n\n"


class MessagesEncoder:
    __slots__ = (
        "ended",
        "failed",
        "finish",
        "index",
        "kind",
        "metadata",
        "native",
        "signed",
        "started",
        "tools",
    )  # fmt: skip

    def __init__(self) -> None:
        self.started = False
        self.index = -1  # the open block's index (-1: none yet)
        self.kind: str | None = None  # the open block's kind: "thinking", "text", "tool_use"; None when closed
        self.signed = False  # the open thinking block got its signature: more thinking starts a new block
        self.tools: dict[int, int] = {}  # chat tool call index -> its tool_use block's index
        self.finish: str | None = None
        self.native: str | None = None
        self.ended = False  # message_delta went out
        self.failed = False  # an error event went out: nothing follows it
        self.metadata: Any = None

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        if self.failed or self.ended:
            return b""
        out = b"" if self.started else self._start(chunk)
        if (error := chunk.get("error")) is not None:
            self.failed = True
            return out + error_event(error)
        choices = chunk.get("choices")
        if not choices:
            if (item := chunk.get("server_tool_item")) is not None:  # a server tool ran (servertools/)
                from omnirouter.servertools.render import messages_blocks

                for block in messages_blocks(item):
                    out += self._open(block["type"], block) + self._close()
                return out
            if "openrouter_metadata" in chunk:
                self.metadata = chunk["openrouter_metadata"]
            if (usage := chunk.get("usage")) is not None:  # the last chunk: usage with OpenRouter's cost
                out += self._end(usage)
            return out
        choice = choices[0]
        delta = choice.get("delta")
        if delta:
            content = delta.get("content")
            if len(delta) == 1 and content.__class__ is str:  # the common chunk: text and nothing else
                if content:
                    out += self._text(content)
            else:
                out += self._delta(delta)
        if (native := choice.get("finish_reason")) is not None:
            self.finish = native
            self.native = choice.get("native_finish_reason")
        return out

    def done(self) -> bytes:
        if self.failed:
            return b""
        out = b"" if self.started else self._start({})
        if not self.ended:  # the stream ended without its usage chunk
            out += self._end(None)
        payload: dict[str, Any] = {"type": "message_stop"}
        if self.metadata is not None:
            payload["openrouter_metadata"] = self.metadata
        return out + event(b"message_stop", payload)

    # -- events

    def _start(self, chunk: dict[str, Any]) -> bytes:
        self.started = True
        message: dict[str, Any] = {
            "id": chunk.get("id"),
            "type": "message",
            "role": "assistant",
            "model": chunk.get("model"),
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "stop_details": None,
            "container": None,
            "usage": usage_block(None),  # the input tokens are known only when the usage chunk comes
        }
        if "provider" in chunk:
            message["provider"] = chunk["provider"]
        return event(b"message_start", {"type": "message_start", "message": message})

    def _open(self, kind: str, block: dict[str, Any]) -> bytes:
        out = self._close()
        self.index += 1
        self.kind = kind
        self.signed = False
        return out + event(b"content_block_start", {"type": "content_block_start", "index": self.index,
                                                    "content_block": block})  # fmt: skip

    def _close(self) -> bytes:
        if self.kind is None:
            return b""
        self.kind = None
        return event(b"content_block_stop", {"type": "content_block_stop", "index": self.index})

    def _block_delta(self, index: int, delta: dict[str, Any]) -> bytes:
        return event(b"content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})

    def _text(self, text: str) -> bytes:
        out = b"" if self.kind == "text" else self._open("text", {"type": "text", "text": "", "citations": None})
        # The hottest event, written around the encoded text (the same bytes event() would make).
        return out + (
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
            b'"delta":{"type":"text_delta","text":%s}}\n\n' % (self.index, encode(text))
        )

    def _thinking(self, text: str | None, signature: str | None) -> bytes:
        out = b""
        if self.kind != "thinking" or self.signed:
            out = self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
        if text:
            out += self._block_delta(self.index, {"type": "thinking_delta", "thinking": text})
        if signature:
            self.signed = True
            out += self._block_delta(self.index, {"type": "signature_delta", "signature": signature})
        return out

    def _delta(self, delta: dict[str, Any]) -> bytes:
        out = b""
        details = delta.get("reasoning_details")
        if details:  # carries the same text as delta.reasoning, and the signatures
            for d in details:
                if not isinstance(d, dict):
                    continue
                kind = d.get("type")
                if kind == "reasoning.encrypted" and d.get("data"):
                    out += self._open("redacted_thinking", {"type": "redacted_thinking", "data": redacted_data(d)})
                    out += self._close()
                elif kind == "reasoning.text":
                    out += self._thinking(d.get("text"), d.get("signature"))
                elif kind == "reasoning.summary":
                    out += self._thinking(d.get("summary"), None)
        elif isinstance(reasoning := delta.get("reasoning"), str) and reasoning:
            out += self._thinking(reasoning, None)
        content = delta.get("content")
        if isinstance(content, str) and content:
            out += self._text(content)
        refusal = delta.get("refusal")  # a model's refusal is its text (stop_reason says refusal)
        if isinstance(refusal, str) and refusal:
            out += self._text(refusal)
        for call in delta.get("tool_calls") or ():
            out += self._tool_call(call)
        if annotations := delta.get("annotations"):  # citations, in the stream's last content chunk
            out += self._citations(web_citations(annotations))
        return out

    def _citations(self, citations: list[dict[str, Any]]) -> bytes:
        """Each as a `citations_delta` of the open text block (a new, empty one if none is open)."""
        if not citations:
            return b""
        out = b"" if self.kind == "text" else self._open("text", {"type": "text", "text": "", "citations": None})
        for c in citations:
            out += self._block_delta(self.index, {"type": "citations_delta", "citation": c})
        return out

    def _tool_call(self, call: dict[str, Any]) -> bytes:
        out = b""
        position = call.get("index")
        if position is None:  # an upstream that numbers no calls: an id starts one, fragments continue it
            position = len(self.tools) if call.get("id") or not self.tools else len(self.tools) - 1
        function = call.get("function") or {}
        block = self.tools.get(position)
        if block is None:
            out = self._open("tool_use", {"type": "tool_use", "id": call.get("id") or f"toolu_{position}",
                                          "name": function.get("name") or "", "input": {},
                                          "caller": {"type": "direct"}})  # fmt: skip
            block = self.tools[position] = self.index
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            out += self._block_delta(block, {"type": "input_json_delta", "partial_json": arguments})
        return out

    def _end(self, usage: dict[str, Any] | None) -> bytes:
        self.ended = True
        reason = stop_reason(self.finish, self.native, bool(self.tools))
        delta = {"stop_reason": reason, "stop_sequence": None, "stop_details": None, "container": None}
        return self._close() + event(b"message_delta", {"type": "message_delta", "delta": delta,
                                                        "usage": usage_block(usage)})  # fmt: skip


def error_event(error: dict[str, Any]) -> bytes:
    """An in-band error chunk's `error` as Anthropic's `error` event."""
    metadata = error.get("metadata") or {}
    status = error.get("code") if isinstance(error.get("code"), int) else 500
    body = error_object(status, str(error.get("message") or ""), metadata.get("error_type"))
    return event(b"error", {"type": "error", "error": body})
