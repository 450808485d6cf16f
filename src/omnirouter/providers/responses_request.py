"""A chat request (the internal form) as an OpenAI Responses API request (`api: openai-responses`).

Messages become input items: system and developer messages at the start become `instructions`,
later ones developer messages; an assistant turn its reasoning items (OpenAI's own encrypted
reasoning sent back from `reasoning_details`), its message and its `function_call` items; tool
messages `function_call_output` items. Only fields the Responses API takes are sent (it refuses
unknown parameters); the request is stateless (`store: false`).
"""

from __future__ import annotations

from typing import Any

from omnirouter.providers.responses_answer import REASONING_FORMAT

ENCRYPTED_REASONING = "reasoning.encrypted_content"
# Chat fields the Responses API takes under the same name.
SAME_FIELDS = ("temperature", "top_p", "top_logprobs", "parallel_tool_calls", "prompt_cache_key", "service_tier",
               "user", "safety_identifier", "metadata")  # fmt: skip
EFFORTS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh"})
MIN_OUTPUT_TOKENS = 16  # OpenAI refuses a smaller max_output_tokens


def responses_request(body: dict[str, Any], *, stream: bool = False) -> tuple[dict[str, Any], bool]:
    """The Responses request for a chat request, and whether the answer leaves reasoning out
    (`reasoning.exclude`, `include_reasoning: false`)."""
    out: dict[str, Any] = {"model": body.get("model")}
    instructions, items = _input(body.get("messages") or [])
    if instructions:
        out["instructions"] = instructions
    out["input"] = items
    for name in SAME_FIELDS:
        if body.get(name) is not None:
            out[name] = body[name]
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(limit, int):
        # (Raised to OpenAI's minimum rather than refused: a few more tokens than asked, not an error.)
        out["max_output_tokens"] = max(limit, MIN_OUTPUT_TOKENS)
    tools = [t for tool in body.get("tools") or () if (t := _tool(tool)) is not None]
    if tools:
        out["tools"] = tools
        if (choice := _tool_choice(body.get("tool_choice"))) is not None:
            out["tool_choice"] = choice
    text: dict[str, Any] = {}
    if (fmt := _text_format(body.get("response_format"))) is not None:
        text["format"] = fmt
    if isinstance(body.get("verbosity"), str):
        text["verbosity"] = body["verbosity"]
    if text:
        out["text"] = text
    reasoning, exclude = _reasoning(body, limit)
    if reasoning is not None:
        out["reasoning"] = reasoning
    if (reasoning is not None and reasoning.get("effort") != "none") or _sends_reasoning(items):
        out["include"] = [ENCRYPTED_REASONING]  # stateless: reasoning goes back to the model encrypted
    out["store"] = False
    if stream:
        out["stream"] = True
    return out, exclude


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _input(messages: list[Any]) -> tuple[str, list[dict[str, Any]]]:
    """`instructions` (the leading system messages) and the input items."""
    leading: list[str] = []
    items: list[dict[str, Any]] = []
    for m in messages:
        if not isinstance(m, dict):
            continue
        role = m.get("role")
        if role in ("system", "developer"):
            if not items:
                leading.append(_text(m.get("content")))
            else:
                items.append({"type": "message", "role": "developer", "content": _text(m.get("content"))})
        elif role == "assistant":
            items += _assistant(m)
        elif role in ("tool", "function"):
            items.append({"type": "function_call_output", "call_id": str(m.get("tool_call_id") or m.get("name") or ""),
                          "output": _output(m.get("content"))})  # fmt: skip
        else:
            items.append({"type": "message", "role": "user", "content": _parts(m.get("content"))})
    return "\n\n".join(t for t in leading if t), items


def _parts(content: Any) -> str | list[dict[str, Any]]:
    if not isinstance(content, list):
        return content if isinstance(content, str) else ""
    parts: list[dict[str, Any]] = []
    for p in content:
        if not isinstance(p, dict):
            continue
        kind = p.get("type")
        if kind == "text":
            parts.append({"type": "input_text", "text": p.get("text") or ""})
        elif kind == "image_url":
            image = p.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            part = {"type": "input_image", "image_url": url, "detail": "auto"}
            if isinstance(image, dict) and image.get("detail"):
                part["detail"] = image["detail"]
            parts.append(part)
        elif kind == "file":
            f = p.get("file") or {}
            part = {"type": "input_file"}
            data = f.get("file_data")
            if isinstance(data, str) and data.startswith(("http://", "https://")):
                part["file_url"] = data
            elif data is not None:
                part["file_data"] = data
            if f.get("file_id"):
                part["file_id"] = f["file_id"]
            if f.get("filename"):
                part["filename"] = f["filename"]
            parts.append(part)
        elif kind == "input_audio":
            parts.append({"type": "input_audio", "input_audio": p.get("input_audio")})
    return parts


def _output(content: Any) -> str | list[dict[str, Any]]:
    """A tool result: its text, or its parts when it holds more than text."""
    if isinstance(content, list) and any(isinstance(p, dict) and p.get("type") != "text" for p in content):
        return _parts(content)
    return _text(content)


def _assistant(m: dict[str, Any]) -> list[dict[str, Any]]:
    """An assistant turn: its reasoning items first (each must precede what it led to), then the
    message, then the function calls."""
    items = _reasoning_items(m.get("reasoning_details"))
    text = _text(m.get("content"))
    if text or m.get("refusal"):
        parts: list[dict[str, Any]] = [{"type": "output_text", "text": text, "annotations": []}] if text else []
        if m.get("refusal"):
            parts.append({"type": "refusal", "refusal": str(m["refusal"])})
        items.append({"type": "message", "role": "assistant", "content": parts})
    for call in m.get("tool_calls") or ():
        if not isinstance(call, dict):
            continue
        fn = call.get("function") or {}
        items.append({"type": "function_call", "call_id": str(call.get("id") or ""), "name": str(fn.get("name") or ""),
                      "arguments": str(fn.get("arguments") or "{}")})  # fmt: skip
    return items


def _ours(detail: dict[str, Any]) -> bool:
    """Reasoning an OpenAI Responses upstream gave: its format, or its reasoning item id."""
    fmt = detail.get("format")
    ident = detail.get("id")
    return fmt == REASONING_FORMAT or (fmt is None and isinstance(ident, str) and ident.startswith("rs_"))


def _reasoning_items(details: Any) -> list[dict[str, Any]]:
    """OpenAI's encrypted reasoning, as the reasoning items it came in (by id). Reasoning from other
    providers, or without its encrypted content, cannot go back: OpenAI checks what it decrypts."""
    items: dict[str, dict[str, Any]] = {}
    for d in details if isinstance(details, list) else ():
        if not isinstance(d, dict) or not _ours(d):
            continue
        key = str(d.get("id") or "")
        item = items.setdefault(key, {"type": "reasoning", "summary": []})
        if key:
            item["id"] = key
        kind = d.get("type")
        if kind == "reasoning.summary" and isinstance(d.get("summary"), str):
            item["summary"].append({"type": "summary_text", "text": d["summary"]})
        elif kind == "reasoning.encrypted" and isinstance(d.get("data"), str):
            item["encrypted_content"] = d["data"]
    return [item for item in items.values() if "encrypted_content" in item]


def _sends_reasoning(items: list[dict[str, Any]]) -> bool:
    return any(item["type"] == "reasoning" for item in items)


def _tool(tool: Any) -> dict[str, Any] | None:
    if not isinstance(tool, dict):
        return None
    fn = tool.get("function")
    if tool.get("type") != "function" or not isinstance(fn, dict):
        return None  # (hosted tools of other APIs have no Responses equivalent here)
    out: dict[str, Any] = {"type": "function", "name": fn.get("name")}
    if fn.get("description") is not None:
        out["description"] = fn["description"]
    out["parameters"] = fn.get("parameters") or {"type": "object", "properties": {}}
    # Responses functions are strict unless told otherwise; chat functions are not.
    out["strict"] = fn.get("strict") is True
    return out


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, str):
        return choice
    if isinstance(choice, dict):
        fn = choice.get("function")
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            return {"type": "function", "name": fn["name"]}
    return None


def _text_format(fmt: Any) -> dict[str, Any] | None:
    if not isinstance(fmt, dict):
        return None
    kind = fmt.get("type")
    if kind == "json_schema" and isinstance(spec := fmt.get("json_schema"), dict):
        out: dict[str, Any] = {"type": "json_schema", "name": spec.get("name") or "response",
                               "schema": spec.get("schema") or {}}  # fmt: skip
        for name in ("description", "strict"):
            if spec.get(name) is not None:
                out[name] = spec[name]
        return out
    if kind in ("json_object", "text"):
        return {"type": kind}
    return None


def _reasoning(body: dict[str, Any], limit: Any) -> tuple[dict[str, Any] | None, bool]:
    """OpenRouter's `reasoning` (effort, max_tokens, enabled, exclude, summary), `reasoning_effort`
    and `include_reasoning` as OpenAI's {effort, summary}; whether the answer hides reasoning."""
    reasoning = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else None
    include = body.get("include_reasoning")
    effort = (reasoning or {}).get("effort") or body.get("reasoning_effort")
    exclude = bool((reasoning or {}).get("exclude")) or include is False
    if reasoning is None and effort is None and include is not True:
        return None, exclude
    reasoning = reasoning or {}
    if reasoning.get("enabled") is False or effort == "none":
        return {"effort": "none"}, exclude
    out: dict[str, Any] = {}
    if effort == "max":
        effort = "xhigh"
    if effort is None and isinstance(budget := reasoning.get("max_tokens"), int):
        effort = effort_of(budget, limit)  # OpenAI takes an effort, not a budget
    if effort in EFFORTS:
        out["effort"] = effort
    if not exclude:  # a summary is what OpenAI shows of its reasoning
        out["summary"] = reasoning.get("summary") or "auto"
    return out, exclude


def effort_of(budget: int, limit: Any) -> str:
    """A thinking budget as the effort that spends about its share of max_tokens."""
    share = budget / limit if isinstance(limit, int) and limit > 0 else None
    if share is None:
        return "high" if budget >= 16000 else "medium" if budget >= 4000 else "low"
    return "high" if share >= 0.8 else "medium" if share >= 0.5 else "low" if share >= 0.2 else "minimal"
