"""The Anthropic Messages client format (`POST /messages`): what the Anthropic SDKs and Claude Code
speak, on the one inference pipeline.

The request is translated to the internal chat body in anthropic_request.py, the stream in
anthropic_stream.py; this module renders the finished completion as an Anthropic `message`, and
errors in Anthropic's envelope with the status kept (the SDKs pick their exception class by status).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from omnirouter.errors import GatewayError
from omnirouter.formats.anthropic_native import NativeMessagesEncoder, native_request, render_native
from omnirouter.formats.anthropic_request import parse_request
from omnirouter.formats.anthropic_stream import MessagesEncoder
from omnirouter.formats.anthropic_terms import (
    error_object,
    redacted_data,
    stop_reason,
    usage_block,
    web_citations,
)


def tool_input(arguments: Any) -> Any:
    """A tool call's JSON arguments as the `input` object; text that is not a JSON object is kept
    whole (under `raw_arguments`) so the client's tool, not the gateway, rejects it."""
    if isinstance(arguments, dict):
        return arguments
    if not arguments:
        return {}
    try:
        value = msgspec.json.decode(arguments)
    except (msgspec.DecodeError, TypeError):
        return {"raw_arguments": str(arguments)}
    return value if isinstance(value, dict) else {"raw_arguments": arguments}


def thinking_blocks(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The message's reasoning as thinking blocks: signed ones from reasoning_details (so a client
    can send them back), else the plain reasoning text unsigned."""
    blocks: list[dict[str, Any]] = []
    for d in message.get("reasoning_details") or ():
        if not isinstance(d, dict):
            continue
        kind = d.get("type")
        if kind == "reasoning.encrypted" and d.get("data"):
            blocks.append({"type": "redacted_thinking", "data": redacted_data(d)})
        elif kind in ("reasoning.text", "reasoning.summary"):
            text = d.get("text") if kind == "reasoning.text" else d.get("summary")
            if blocks and blocks[-1]["type"] == "thinking" and not blocks[-1]["signature"]:
                blocks[-1]["thinking"] += text or ""  # pieces of one block (a stream's deltas, collected)
                blocks[-1]["signature"] = d.get("signature") or ""
            else:
                blocks.append({"type": "thinking", "thinking": text or "", "signature": d.get("signature") or ""})
    if not blocks and isinstance(reasoning := message.get("reasoning"), str) and reasoning:
        blocks.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    return blocks


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


class MessagesBody(dict[str, Any]):
    """The internal chat request, holding on to the client's own body for a passthrough."""

    __slots__ = ("client",)

    def __init__(self, internal: dict[str, Any], client: dict[str, Any]) -> None:
        super().__init__(internal)
        self.client = client


class MessagesFormat:
    name = "messages"
    native_api = "anthropic"

    def parse(self, body: Any, headers: Mapping[str, str]) -> dict[str, Any]:
        # anthropic-version and anthropic-beta are accepted as they come; the pipeline forwards the
        # beta flags to an Anthropic upstream.
        return MessagesBody(parse_request(body), body)

    def render(self, completion: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        choices = completion.get("choices") or []
        choice = choices[0] if choices else {}
        message = choice.get("message") or {}
        content = thinking_blocks(message)
        if items := completion.get("server_tool_items"):  # what the gateway's server tools ran
            from omnirouter.servertools.render import messages_blocks

            for item in items:
                content += messages_blocks(item)
        if text := _text_of(message.get("content")):
            citations = web_citations(message.get("annotations")) or None
            content.append({"type": "text", "text": text, "citations": citations})
        refusal = message.get("refusal")
        if isinstance(refusal, str) and refusal:
            content.append({"type": "text", "text": refusal, "citations": None})
        calls = message.get("tool_calls") or []
        for call in calls:
            function = call.get("function") or {}
            content.append({"type": "tool_use", "id": call.get("id") or "", "name": function.get("name") or "",
                            "input": tool_input(function.get("arguments")), "caller": {"type": "direct"}})  # fmt: skip
        reason = stop_reason(choice.get("finish_reason"), choice.get("native_finish_reason"), bool(calls))
        if refusal and reason == "end_turn":
            reason = "refusal"
        matched = choice.get("stop_reason")  # the matched stop string, from upstreams that report it (vLLM)
        answer: dict[str, Any] = {
            "id": completion.get("id"),
            "type": "message",
            "role": "assistant",
            "model": completion.get("model"),
            "content": content,
            "stop_reason": "stop_sequence" if isinstance(matched, str) and reason == "end_turn" else reason,
            "stop_sequence": matched if isinstance(matched, str) else None,
            "stop_details": None,
            "container": None,
            "usage": usage_block(completion.get("usage")),
        }
        if "provider" in completion:
            answer["provider"] = completion["provider"]
        if "openrouter_metadata" in completion:
            answer["openrouter_metadata"] = completion["openrouter_metadata"]
        return answer

    def encoder(self, request: dict[str, Any]) -> MessagesEncoder:
        return MessagesEncoder()

    # Passthrough to an Anthropic upstream (formats/anthropic_native.py).
    def native_request(self, request: dict[str, Any], upstream_model: str, stream: bool) -> dict[str, Any]:
        client = request.client if isinstance(request, MessagesBody) else request
        return native_request(client, upstream_model, stream)

    def render_native(
        self, answer: dict[str, Any], completion: dict[str, Any], request: dict[str, Any]
    ) -> dict[str, Any]:
        return render_native(answer, completion)

    def native_encoder(self, request: dict[str, Any]) -> NativeMessagesEncoder:
        return NativeMessagesEncoder()

    def error(self, err: GatewayError) -> tuple[int, dict[str, Any]]:
        body: dict[str, Any] = {
            "type": "error",
            "error": error_object(err.status, err.message, err.error_type),
            "request_id": None,
        }
        if err.metadata or err.extra:  # OpenRouter's details (provider, raw, availability ...) beside
            body["metadata"] = {**(err.metadata or {}), **(err.extra or {})}
        return err.status, body


MESSAGES = MessagesFormat()
