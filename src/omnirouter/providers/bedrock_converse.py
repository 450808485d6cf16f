"""The internal chat request as a Bedrock Converse request, and Converse answers and stream events as
chat completions and chunks.

Converse is close to Anthropic Messages (system apart, alternating turns, tool results in user turns,
signed reasoning sent back in order), so the conversation is first shaped by anthropic_request's
`conversation` and its blocks then renamed to Converse's: one set of rules for both APIs.
"""

from __future__ import annotations

import re
import time
from typing import Any

import msgspec

from omnirouter.providers.anthropic_request import (
    REASONING_FORMAT,
    Thinking,
    conversation,
    max_tokens_of,
    thinking_of,
)
from omnirouter.providers.base import UpstreamError

_decode = msgspec.json.decode
CACHE_POINT = {"cachePoint": {"type": "default"}}
IMAGE_FORMATS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/gif": "gif",
    "image/webp": "webp",
}
DOCUMENT_FORMATS = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "text/plain": "txt",
    "text/markdown": "md",
    "text/html": "html",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
}
# Converse allows letters, digits, single spaces, hyphens, parentheses and square brackets in a name.
_NAME_CHARS = re.compile(r"[^A-Za-z0-9\-()\[\] ]+")


def _refused(message: str) -> UpstreamError:
    return UpstreamError(message, status=400, provider_code="ValidationException")


def is_claude(model: str) -> bool:
    """Anthropic's models on Bedrock (ids, inference profiles and their ARNs all name them)."""
    lowered = model.lower()
    return "anthropic" in lowered or "claude" in lowered


def reasoning_format(model: str) -> str:
    return REASONING_FORMAT if is_claude(model) else "unknown"


# -- the request ---------------------------------------------------------------------------------------


def _merged_details(details: Any) -> Any:
    """Streamed reasoning_details come in pieces (text deltas, then the signature) that share an
    index; a client may send them back unjoined. One detail per index, as the model produced it."""
    if not isinstance(details, list) or len(details) < 2:
        return details
    merged: list[dict[str, Any]] = []
    for d in details:
        if not isinstance(d, dict):
            continue
        last = merged[-1] if merged else None
        if (
            last is not None
            and d.get("type") == last.get("type") == "reasoning.text"
            and d.get("index") is not None
            and d.get("index") == last.get("index")
        ):
            last["text"] = (last.get("text") or "") + (d.get("text") or "")
            if d.get("signature"):
                last["signature"] = d["signature"]
        else:
            merged.append(dict(d))
    return merged


def _source_bytes(source: dict[str, Any], what: str) -> tuple[str, dict[str, Any]]:
    """(media type, Converse source) of an Anthropic-shaped block source."""
    if source.get("type") == "base64":
        return str(source.get("media_type")), {"bytes": source.get("data")}  # JSON carries bytes as base64
    url = source.get("url")
    if source.get("type") == "url" and isinstance(url, str) and url.startswith("s3://"):
        return "", {"s3Location": {"uri": url}}
    raise _refused(f"Bedrock takes {what} inline (a base64 data: URL) or from S3 (an s3:// URL)")


def _image(block: dict[str, Any]) -> dict[str, Any]:
    media, source = _source_bytes(block.get("source") or {}, "images")
    fmt = IMAGE_FORMATS.get(media) if media else _extension(source, IMAGE_FORMATS.values())
    if fmt is None:
        raise _refused(f"Bedrock does not accept images of type {media or 'unknown'} (png, jpeg, gif, webp)")
    return {"image": {"format": fmt, "source": source}}


def _extension(source: dict[str, Any], known: Any) -> str | None:
    uri = str((source.get("s3Location") or {}).get("uri") or "")
    ext = uri.rsplit(".", 1)[-1].lower() if "." in uri else ""
    ext = "jpeg" if ext == "jpg" else ext
    return ext if ext in known else None


def _document(block: dict[str, Any], number: int) -> dict[str, Any]:
    media, source = _source_bytes(block.get("source") or {}, "files")
    fmt = DOCUMENT_FORMATS.get(media) if media else _extension(source, DOCUMENT_FORMATS.values())
    if fmt is None:
        raise _refused(f"Bedrock does not accept documents of type {media or 'unknown'}")
    title = str(block.get("title") or "").rsplit(".", 1)[0]
    name = " ".join(_NAME_CHARS.sub(" ", title).split()) or f"document {number}"
    return {"document": {"format": fmt, "name": name, "source": source}}


class _Blocks:
    """Anthropic-shaped content blocks renamed to Converse's, numbering documents as it goes."""

    def __init__(self) -> None:
        self.documents = 0

    def convert(self, blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for block in blocks:
            kind = block["type"]
            if kind == "text":
                out.append({"text": block["text"]})
            elif kind == "image":
                out.append(_image(block))
            elif kind == "document":
                self.documents += 1
                out.append(_document(block, self.documents))
            elif kind == "thinking":
                text = {"text": block.get("thinking") or "", "signature": block["signature"]}
                out.append({"reasoningContent": {"reasoningText": text}})
            elif kind == "redacted_thinking":
                out.append({"reasoningContent": {"redactedContent": block["data"]}})
            elif kind == "tool_use":
                out.append({"toolUse": {"toolUseId": block["id"], "name": block["name"], "input": block["input"]}})
            elif kind == "tool_result":
                out.append({"toolResult": self._tool_result(block)})
            else:
                continue
            if block.get("cache_control") is not None:
                out.append(dict(CACHE_POINT))
        return out

    def _tool_result(self, block: dict[str, Any]) -> dict[str, Any]:
        content = block.get("content")
        if isinstance(content, str):
            inner = [{"text": content}] if content else []
        else:
            inner = [b for b in self.convert(content or []) if "cachePoint" not in b]
        return {"toolUseId": block["tool_use_id"], "content": inner}


def _tools(body: dict[str, Any], turns: list[dict[str, Any]]) -> dict[str, Any] | None:
    """toolConfig: the request's function tools and its tool_choice. Converse refuses tool blocks in
    the conversation without a toolConfig, so tools only called earlier are declared (schema-less)."""
    specs: list[dict[str, Any]] = []
    for tool in body.get("tools") or ():
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            continue
        params = fn.get("parameters")
        spec: dict[str, Any] = {
            "name": fn["name"],
            "inputSchema": {"json": params if isinstance(params, dict) and params else {"type": "object"}},
        }
        if fn.get("description"):
            spec["description"] = fn["description"]
        specs.append({"toolSpec": spec})
    choice = body.get("tool_choice")
    used = {b["toolUse"]["name"] for t in turns for b in t["content"] if "toolUse" in b}
    if choice == "none" and not used:
        return None  # Converse has no "none": offering no tool is the same
    declared = {s["toolSpec"]["name"] for s in specs}
    specs += [{"toolSpec": {"name": n, "inputSchema": {"json": {"type": "object"}}}} for n in sorted(used - declared)]
    if not specs:
        return None
    config: dict[str, Any] = {"tools": specs}
    if choice == "required":
        config["toolChoice"] = {"any": {}}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        config["toolChoice"] = {"tool": {"name": choice["function"].get("name")}}
    elif choice == "auto":
        config["toolChoice"] = {"auto": {}}
    return config


def converse_request(body: dict[str, Any], model: str, *, endpoint_max: int | None) -> tuple[dict[str, Any], Thinking]:
    """The Converse request body for a chat request (the model goes in the URL), and the reasoning
    it asked for."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise _refused("messages must be a list")
    messages = [
        {**m, "reasoning_details": _merged_details(m["reasoning_details"])}
        if isinstance(m, dict) and m.get("role") == "assistant" and m.get("reasoning_details")
        else m
        for m in messages
    ]
    system_blocks, anthropic_turns = conversation(messages)
    if not anthropic_turns:
        raise _refused("the conversation has no user or assistant message")
    blocks = _Blocks()
    turns = [{"role": t["role"], "content": blocks.convert(t["content"])} for t in anthropic_turns]
    out: dict[str, Any] = {"messages": turns}
    if system_blocks:
        out["system"] = blocks.convert(system_blocks)
    last = turns[-1]["content"]
    if isinstance(body.get("cache_control"), dict) and last and "cachePoint" not in last[-1]:
        last.append(dict(CACHE_POINT))  # a top-level mark is a trailing breakpoint (behaviors §8.5)
    claude = is_claude(model)
    inference: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    thinking = Thinking(None, False)
    if claude:
        thinking = thinking_of(body, max_tokens_of(body, endpoint_max))
    requested_max = body.get("max_completion_tokens") or body.get("max_tokens")
    if thinking.budget is not None:
        extra["thinking"] = {"type": "enabled", "budget_tokens": thinking.budget}
        inference["maxTokens"] = max_tokens_of(body, endpoint_max)
    elif isinstance(requested_max, int):
        inference["maxTokens"] = requested_max
    if thinking.budget is None:  # Claude takes no sampling settings while thinking, but top_p >= 0.95
        if body.get("temperature") is not None:
            inference["temperature"] = body["temperature"]
        if claude and isinstance(body.get("top_k"), int):
            extra["top_k"] = body["top_k"]
    top_p = body.get("top_p")
    if top_p is not None and (thinking.budget is None or top_p >= 0.95):
        inference["topP"] = top_p
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if isinstance(stop, list) and (sequences := [s for s in stop if isinstance(s, str) and s]):
        inference["stopSequences"] = sequences
    if inference:
        out["inferenceConfig"] = inference
    if extra:
        out["additionalModelRequestFields"] = extra
    tools = _tools(body, turns)
    if tools is not None:
        out["toolConfig"] = tools
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("json_schema"), dict):
        spec = fmt["json_schema"]
        if isinstance(spec.get("schema"), dict):  # Converse takes the schema as a JSON string
            definition = {"schema": msgspec.json.encode(spec["schema"]).decode()}
            for name in ("name", "description"):
                if isinstance(spec.get(name), str) and spec[name]:
                    definition[name] = spec[name]
            out["outputConfig"] = {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": definition}}}
    return out, thinking


# -- the answer ----------------------------------------------------------------------------------------


def usage_of(usage: Any) -> dict[str, Any] | None:
    """Converse usage in the internal form. inputTokens leaves out the tokens read from and written
    to the cache; prompt_tokens counts them, as OpenAI's does."""
    if not isinstance(usage, dict):
        return None
    read = int(usage.get("cacheReadInputTokens") or 0)
    write = int(usage.get("cacheWriteInputTokens") or 0)
    prompt = int(usage.get("inputTokens") or 0) + read + write
    completion = int(usage.get("outputTokens") or 0)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": read, "cache_write_tokens": write},
    }


# Stop reasons the pipeline's chat vocabulary has no word for; the others (end_turn, tool_use,
# max_tokens, stop_sequence) stay native and are normalised there.
_FINISH = {
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    "model_context_window_exceeded": "length",
}


def finish_reason(stop: Any) -> str:
    stop = str(stop or "end_turn")
    return _FINISH.get(stop, stop)


def _arguments(value: Any) -> str:
    return msgspec.json.encode(value if value is not None else {}).decode()


def completion(data: Any, model: str, request_id: str | None, exclude_reasoning: bool) -> dict[str, Any]:
    """A Converse response as a chat completion; the stop reason stays native (the pipeline
    normalises it)."""
    if not isinstance(data, dict) or not isinstance(data.get("output"), dict):
        raise UpstreamError("Upstream response has no output", status=502, kind="protocol")
    content = ((data["output"].get("message") or {}).get("content")) or []
    fmt = reasoning_format(model)
    text: list[str] = []
    reasoning: list[str] = []
    details: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        if "text" in block:
            text.append(str(block["text"]))
        elif "toolUse" in block:
            use = block["toolUse"]
            calls.append(
                {
                    "id": use.get("toolUseId"),
                    "type": "function",
                    "function": {"name": use.get("name"), "arguments": _arguments(use.get("input"))},
                }
            )
        elif "reasoningContent" in block:
            rc = block["reasoningContent"] or {}
            if isinstance(rc.get("reasoningText"), dict):
                rt = rc["reasoningText"]
                reasoning.append(str(rt.get("text") or ""))
                detail = {"type": "reasoning.text", "text": rt.get("text") or "", "format": fmt, "index": len(details)}
                if rt.get("signature"):
                    detail["signature"] = rt["signature"]
                details.append(detail)
            elif rc.get("redactedContent"):
                details.append(
                    {"type": "reasoning.encrypted", "data": rc["redactedContent"], "format": fmt, "index": len(details)}
                )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text or not calls else None}
    if details and not exclude_reasoning:
        message["reasoning"] = "".join(reasoning) or None
        message["reasoning_details"] = details
    if calls:
        message["tool_calls"] = calls
    result: dict[str, Any] = {
        "id": request_id or "",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason(data.get("stopReason"))}],
    }
    usage = usage_of(data.get("usage"))
    if usage is not None:
        result["usage"] = usage
    return result


class StreamTranslator:
    """ConverseStream events as chat.completion.chunk dicts. Bedrock numbers content blocks across
    kinds; chat numbers tool calls and reasoning details each from 0."""

    def __init__(self, model: str, request_id: str | None, exclude_reasoning: bool) -> None:
        self.model = model
        self.id = request_id or ""
        self.created = int(time.time())
        self.exclude = exclude_reasoning
        self.format = reasoning_format(model)
        self.role_sent = False
        self.tools: dict[int, int] = {}  # contentBlockIndex -> tool call index
        self.reasoning: dict[int, int] = {}  # contentBlockIndex -> reasoning detail index
        self.done = False  # the metadata event (usage), Bedrock's last, was read

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        if not self.role_sent:  # the role rides on the first chunk with content, not on messageStart,
            self.role_sent = True  # so an exception before any output can still fall back
            delta = {"role": "assistant", **delta}
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    def event(self, kind: str | None, data: dict[str, Any]) -> dict[str, Any] | None:
        """The chunk one event makes, if any."""
        if kind == "contentBlockDelta":
            return self._delta(int(data.get("contentBlockIndex") or 0), data.get("delta") or {})
        if kind == "contentBlockStart":
            use = (data.get("start") or {}).get("toolUse")
            if isinstance(use, dict):
                index = self.tools[int(data.get("contentBlockIndex") or 0)] = len(self.tools)
                call = {"index": index, "id": use.get("toolUseId"), "type": "function"}
                call["function"] = {"name": use.get("name"), "arguments": ""}
                return self._chunk({"tool_calls": [call]})
            return None
        if kind == "messageStop":
            return self._chunk({}, finish_reason(data.get("stopReason")))
        if kind == "metadata":
            self.done = True
            usage = usage_of(data.get("usage"))
            if usage is None:
                return None
            return {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                    "model": self.model, "choices": [], "usage": usage}  # fmt: skip
        return None  # messageStart, contentBlockStop

    def _delta(self, block: int, delta: dict[str, Any]) -> dict[str, Any] | None:
        text = delta.get("text")
        if isinstance(text, str):
            return self._chunk({"content": text}) if text else None
        use = delta.get("toolUse")
        if isinstance(use, dict):
            index = self.tools.get(block)
            if index is None:  # input without a start event: open the call here
                index = self.tools[block] = len(self.tools)
            return self._chunk({"tool_calls": [{"index": index, "function": {"arguments": use.get("input") or ""}}]})
        rc = delta.get("reasoningContent")
        if isinstance(rc, dict) and not self.exclude:
            index = self.reasoning.get(block)
            if index is None:
                index = self.reasoning[block] = len(self.reasoning)
            detail: dict[str, Any] = {"type": "reasoning.text", "format": self.format, "index": index}
            out: dict[str, Any] = {}
            if isinstance(rc.get("text"), str):
                detail["text"] = out["reasoning"] = rc["text"]
            elif isinstance(rc.get("signature"), str):
                detail["signature"] = rc["signature"]
            elif rc.get("redactedContent"):
                detail = {"type": "reasoning.encrypted", "data": rc["redactedContent"], "format": self.format,
                          "index": index}  # fmt: skip
            else:
                return None
            out["reasoning_details"] = [detail]
            return self._chunk(out)
        return None
