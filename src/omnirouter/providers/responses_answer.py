"""An OpenAI Responses API answer in the internal form: a Response object as a chat completion, and
its `response.*` events as chat chunks (`api: openai-responses`).

Output items map back as the /responses client format maps them out (formats/responses_output.py):
`message` items are the content (and refusal), `function_call` items the tool calls, `reasoning`
items the reasoning text (their summaries and reasoning text) and `reasoning_details` (the same
mapping as a client's reasoning items, formats/responses_request.reasoning_details, with OpenAI's
`encrypted_content` kept so it can go back). `incomplete` is a finish reason; `failed`, or an
`error` event, is an UpstreamError.
"""

from __future__ import annotations

from typing import Any

import msgspec

from omnirouter.formats.responses_output import INCOMPLETE
from omnirouter.formats.responses_request import ReasoningItem, reasoning_details
from omnirouter.providers.base import UpstreamError

REASONING_FORMAT = "openai-responses-v1"  # reasoning_details[].format of OpenAI's reasoning items
FINISH_OF_INCOMPLETE = {reason: finish for finish, reason in INCOMPLETE.items()}
# A Responses error code -> the HTTP status it stands for (which decides fallback).
STATUS_OF_CODE = {
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "invalid_prompt": 400,
    "context_length_exceeded": 400,
    "invalid_request_error": 400,
    "server_error": 502,
}
_decode = msgspec.json.decode


def protocol_error(message: str, raw: bytes) -> UpstreamError:
    return UpstreamError(message, status=502, raw=raw[:2000].decode(errors="replace"), kind="protocol")


def failure(error: Any, raw: bytes | str = b"") -> UpstreamError:
    """The UpstreamError of a failed response's `error`, or of an `error` event."""
    err = error if isinstance(error, dict) else {}
    code = err.get("code")
    message = str(err.get("message") or "The upstream response failed")
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
    return UpstreamError(message, status=STATUS_OF_CODE.get(str(code), 502), raw=text[:2000] or None,
                         provider_code=str(code) if code is not None else None)  # fmt: skip


def chat_usage(usage: Any) -> dict[str, Any] | None:
    """Responses usage in the internal names (input tokens include cached ones, as in chat)."""
    if not isinstance(usage, dict):
        return None
    itd = usage.get("input_tokens_details") or {}
    otd = usage.get("output_tokens_details") or {}
    prompt, completion = usage.get("input_tokens") or 0, usage.get("output_tokens") or 0
    ptd: dict[str, Any] = {"cached_tokens": itd.get("cached_tokens") or 0}
    if itd.get("cache_write_tokens"):
        ptd["cache_write_tokens"] = itd["cache_write_tokens"]
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": usage.get("total_tokens") or prompt + completion,
        "prompt_tokens_details": ptd,
        "completion_tokens_details": {"reasoning_tokens": otd.get("reasoning_tokens") or 0},
    }


def finish_of(response: dict[str, Any], tool_calls: bool) -> tuple[str, str]:
    """The chat finish reason of a finished response, and the provider's own (status or reason)."""
    if response.get("status") == "incomplete":
        reason = str((response.get("incomplete_details") or {}).get("reason") or "max_output_tokens")
        return FINISH_OF_INCOMPLETE.get(reason, "length"), reason
    return ("tool_calls" if tool_calls else "stop"), str(response.get("status") or "completed")


def details_of(item: dict[str, Any]) -> list[dict[str, Any]]:
    """A reasoning item as reasoning_details, labelled as OpenAI's."""
    try:
        parsed = msgspec.convert(item, ReasoningItem)
    except msgspec.ValidationError:
        return []
    parsed.format = parsed.format or REASONING_FORMAT
    return reasoning_details(parsed)


def decode_response(raw: bytes) -> dict[str, Any]:
    try:
        data = _decode(raw)
    except msgspec.DecodeError:
        raise protocol_error("Upstream sent a response that is not valid JSON", raw) from None
    if not isinstance(data, dict) or not isinstance(data.get("output"), list):
        raise protocol_error("Upstream sent no Response object", raw)
    return data


def completion_of(data: dict[str, Any], *, exclude_reasoning: bool = False) -> dict[str, Any]:
    """A Response object as a chat completion; a failed one raises its UpstreamError."""
    if data.get("status") == "failed":
        raise failure(data.get("error"), msgspec.json.encode(data.get("error")))
    text: list[str] = []
    refusal: list[str] = []
    calls: list[dict[str, Any]] = []
    thoughts: list[str] = []
    details: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for item in data["output"]:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "message":
            for part in item.get("content") or ():
                if not isinstance(part, dict):
                    continue
                if part.get("type") == "output_text":
                    text.append(str(part.get("text") or ""))
                    annotations += _citations(part.get("annotations"))
                elif part.get("type") == "refusal":
                    refusal.append(str(part.get("refusal") or ""))
        elif kind == "function_call":
            calls.append({"id": str(item.get("call_id") or item.get("id") or ""), "type": "function",
                          "function": {"name": str(item.get("name") or ""),
                                       "arguments": str(item.get("arguments") or "")}})  # fmt: skip
        elif kind == "reasoning":
            thoughts += [s.get("text") or "" for s in item.get("summary") or () if isinstance(s, dict)]
            thoughts += [c.get("text") or "" for c in item.get("content") or () if isinstance(c, dict)]
            details += details_of(item)
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text or not calls else None}
    if refusal:
        message["refusal"] = "".join(refusal)
    if calls:
        message["tool_calls"] = calls
    if annotations:
        message["annotations"] = annotations
    if not exclude_reasoning and (thoughts or details):
        message["reasoning"] = "\n\n".join(t for t in thoughts if t) or None
        message["reasoning_details"] = details
    finish, native = finish_of(data, bool(calls))
    out: dict[str, Any] = {
        "id": data.get("id"),
        "object": "chat.completion",
        "created": data.get("created_at"),
        "model": data.get("model"),
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "native_finish_reason": native}],
    }
    if (usage := chat_usage(data.get("usage"))) is not None:
        out["usage"] = usage
    return out


def _citations(annotations: Any) -> list[dict[str, Any]]:
    """url_citation annotations in chat's shape."""
    out = []
    for a in annotations if isinstance(annotations, list) else ():
        if isinstance(a, dict) and a.get("type") == "url_citation":
            cite = {k: a.get(k) for k in ("url", "title", "start_index", "end_index")}
            out.append({"type": "url_citation", "url_citation": cite})
    return out


class StreamDecoder:
    """Turns a Responses event stream into chat chunks, event by event. `done` is set by the
    response's last event (completed or incomplete); failed and error events raise."""

    __slots__ = ("args_seen", "calls", "created", "done", "exclude", "id", "model", "role_sent")

    def __init__(self, *, exclude_reasoning: bool = False) -> None:
        self.exclude = exclude_reasoning
        self.id: str | None = None
        self.model: str | None = None
        self.created: int | None = None
        self.calls: dict[str, int] = {}  # function_call item id -> its tool call index
        self.args_seen: set[str] = set()
        self.role_sent = False
        self.done = False

    def _chunk(self, delta: dict[str, Any], finish: str | None = None, native: str | None = None) -> dict[str, Any]:
        if not self.role_sent:
            self.role_sent = True
            delta = {"role": "assistant", **delta}
        choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
        if native is not None:
            choice["native_finish_reason"] = native
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [choice]}  # fmt: skip

    def feed(self, data: bytes, out: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
        """Append the chunks one event carries to `out`; return its type and the decoded event."""
        try:
            event = _decode(data)
        except msgspec.DecodeError:
            raise protocol_error("Upstream sent a stream event that is not valid JSON", data) from None
        if not isinstance(event, dict) or not isinstance(kind := event.get("type"), str):
            raise protocol_error("Upstream sent a stream event without a type", data)
        if kind == "response.output_text.delta":
            out.append(self._chunk({"content": str(event.get("delta") or "")}))
        elif kind in ("response.created", "response.in_progress", "response.queued"):
            response = event.get("response") or {}
            self.id, self.model = response.get("id"), response.get("model")
            self.created = response.get("created_at")
        elif kind == "response.output_item.added":
            self._added(event.get("item") or {}, out)
        elif kind == "response.function_call_arguments.delta":
            item = str(event.get("item_id"))
            if item in self.calls:
                self.args_seen.add(item)
                call = {"index": self.calls[item], "function": {"arguments": str(event.get("delta") or "")}}
                out.append(self._chunk({"tool_calls": [call]}))
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            if not self.exclude:
                delta = str(event.get("delta") or "")
                detail: dict[str, Any] = (
                    {"type": "reasoning.summary", "summary": delta} if "summary" in kind
                    else {"type": "reasoning.text", "text": delta}
                )  # fmt: skip
                detail.update(id=event.get("item_id"), format=REASONING_FORMAT)
                out.append(self._chunk({"reasoning": delta, "reasoning_details": [detail]}))
        elif kind == "response.output_text.annotation.added":
            if cites := _citations([event.get("annotation")]):
                out.append(self._chunk({"annotations": cites}))
        elif kind == "response.refusal.delta":
            out.append(self._chunk({"refusal": str(event.get("delta") or "")}))
        elif kind == "response.output_item.done":
            self._item_done(event.get("item") or {}, out)
        elif kind in ("response.completed", "response.incomplete"):
            self._end(event.get("response") or {}, out)
        elif kind == "response.failed":
            raise failure((event.get("response") or {}).get("error"), data)
        elif kind == "error":
            raise failure(event, data)
        return kind, event

    def _added(self, item: dict[str, Any], out: list[dict[str, Any]]) -> None:
        if item.get("type") != "function_call":
            return
        index = self.calls[str(item.get("id"))] = len(self.calls)
        call = {"index": index, "id": item.get("call_id"), "type": "function",
                "function": {"name": item.get("name") or "", "arguments": ""}}  # fmt: skip
        out.append(self._chunk({"tool_calls": [call]}))

    def _item_done(self, item: dict[str, Any], out: list[dict[str, Any]]) -> None:
        kind, ident = item.get("type"), str(item.get("id"))
        if kind == "reasoning" and not self.exclude and isinstance(item.get("encrypted_content"), str):
            detail = {"type": "reasoning.encrypted", "data": item["encrypted_content"], "id": item.get("id"),
                      "format": REASONING_FORMAT}  # fmt: skip
            out.append(self._chunk({"reasoning_details": [detail]}))
        elif kind == "function_call" and ident in self.calls and ident not in self.args_seen and item.get("arguments"):
            call = {"index": self.calls[ident], "function": {"arguments": str(item["arguments"])}}
            out.append(self._chunk({"tool_calls": [call]}))

    def _end(self, response: dict[str, Any], out: list[dict[str, Any]]) -> None:
        self.done = True
        finish, native = finish_of(response, bool(self.calls))
        out.append(self._chunk({}, finish, native))
        usage = chat_usage(response.get("usage"))
        if usage is not None:
            out.append({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                        "model": self.model, "choices": [], "usage": usage})  # fmt: skip
