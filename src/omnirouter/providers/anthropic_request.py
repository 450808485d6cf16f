"""The internal chat request (OpenAI Chat Completions with OpenRouter's extensions) as an Anthropic
Messages request body.

System messages become `system` blocks; tool results become `tool_result` blocks in a user turn;
signed reasoning sent back becomes thinking blocks at the start of its assistant turn, signatures
intact; `cache_control` marks are kept where the client put them. Fields Anthropic has no use for
(seed, penalties, logprobs ...) are left out: the catalog's supported_parameters decides what a
client is told was dropped.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import msgspec

from omnirouter.providers.base import UpstreamError

DEFAULT_MAX_TOKENS = 4096  # Anthropic requires max_tokens; used when neither the request nor the endpoint says
MIN_THINKING_BUDGET = 1024  # Anthropic refuses a smaller budget_tokens
MAX_THINKING_BUDGET = 128_000
# Share of max_tokens spent thinking at each effort (OpenRouter's mapping, behaviors §8.4).
EFFORT_RATIO = {"max": 0.95, "xhigh": 0.95, "high": 0.8, "medium": 0.5, "low": 0.2, "minimal": 0.1}
REASONING_FORMAT = "anthropic-claude-v1"
STRICT_TOOLS_BETA = "structured-outputs-2025-11-13"  # without it a tool's `strict` is stripped (behaviors §3.2)
VERBOSITY_EFFORTS = frozenset({"low", "medium", "high", "xhigh", "max"})

_decode = msgspec.json.decode


class Thinking(msgspec.Struct, frozen=True):
    """What the request asked of reasoning: `budget` tokens (None: no thinking), and whether the
    answer leaves the reasoning out (`exclude`)."""

    budget: int | None
    exclude: bool


def thinking_of(body: dict[str, Any], max_tokens: int) -> Thinking:
    """`reasoning` (effort, max_tokens, enabled, exclude), `reasoning_effort` and `include_reasoning`
    as a thinking budget within `max_tokens`. Claude does not think unless asked, so a request that
    only hides reasoning (`exclude`, `include_reasoning: false`) does not turn paid thinking on."""
    reasoning = body.get("reasoning")
    include = body.get("include_reasoning")
    effort = body.get("reasoning_effort")
    if not isinstance(reasoning, dict):
        if effort is None and include is not True:
            return Thinking(None, include is False)
        reasoning = {}
    exclude = bool(reasoning.get("exclude")) or include is False
    effort = reasoning.get("effort") or effort
    if effort == "none" or reasoning.get("enabled") is False or reasoning.keys() == {"exclude"}:
        return Thinking(None, exclude)
    explicit = reasoning.get("max_tokens")
    if isinstance(explicit, int) and not isinstance(explicit, bool) and explicit > 0:
        budget = max(explicit, MIN_THINKING_BUDGET)
    else:
        ratio = EFFORT_RATIO.get(effort if isinstance(effort, str) else "medium", EFFORT_RATIO["medium"])
        budget = max(min(int(max_tokens * ratio), MAX_THINKING_BUDGET), MIN_THINKING_BUDGET)
    budget = min(budget, max_tokens - 1)  # Anthropic: budget_tokens < max_tokens
    return Thinking(budget if budget >= MIN_THINKING_BUDGET else None, exclude)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def max_tokens_of(body: dict[str, Any], endpoint_max: int | None) -> int:
    value = body.get("max_completion_tokens") or body.get("max_tokens")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return endpoint_max or DEFAULT_MAX_TOKENS


def _refused(message: str) -> UpstreamError:
    """A request this API cannot take: the client's error, as the upstream would have answered it."""
    return UpstreamError(message, status=400, provider_code="invalid_request_error")


# -- content ------------------------------------------------------------------------------------------


def _data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a base64 `data:` URL."""
    if not url.startswith("data:"):
        return None
    head, sep, data = url[5:].partition(",")
    if not sep or not head.endswith(";base64"):
        return None
    return head[: -len(";base64")].split(";", 1)[0] or "application/octet-stream", data


def _with_cache(block: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    cache = part.get("cache_control")
    if cache is not None:
        block["cache_control"] = cache
    return block


def _image(part: dict[str, Any]) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise _refused("image_url part without a url")
    inline = _data_url(url)
    if inline is not None:
        source: dict[str, Any] = {"type": "base64", "media_type": inline[0], "data": inline[1]}
    else:
        source = {"type": "url", "url": url}
    return _with_cache({"type": "image", "source": source}, part)


def _document(part: dict[str, Any]) -> dict[str, Any]:
    file = part.get("file") if isinstance(part.get("file"), dict) else {}
    data, file_id = file.get("file_data"), file.get("file_id")
    if isinstance(data, str):
        inline = _data_url(data)
        if inline is None:
            source: dict[str, Any] = {"type": "url", "url": data}
        elif inline[0].startswith("image/"):  # an image sent as a file is still an image to Claude
            return _with_cache(
                {"type": "image", "source": {"type": "base64", "media_type": inline[0], "data": inline[1]}}, part
            )
        elif inline[0] == "text/plain":  # Anthropic takes plain text as text, base64 only for PDFs
            try:
                text = base64.b64decode(inline[1], validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                raise _refused("file part: text/plain data that is not base64 UTF-8") from None
            source = {"type": "text", "media_type": "text/plain", "data": text}
        else:
            source = {"type": "base64", "media_type": inline[0], "data": inline[1]}
    elif isinstance(file_id, str):
        source = {"type": "file", "file_id": file_id}
    else:
        raise _refused("file part without file_data or file_id")
    block: dict[str, Any] = {"type": "document", "source": source}
    if isinstance(file.get("filename"), str):
        block["title"] = file["filename"]
    return _with_cache(block, part)


def _blocks(content: Any, role: str) -> list[dict[str, Any]]:
    """A message's content as Anthropic content blocks (empty text left out: Anthropic refuses it)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        return []
    blocks = []
    for part in content:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text":
            if part.get("text"):
                blocks.append(_with_cache({"type": "text", "text": part["text"]}, part))
        elif kind == "image_url":
            blocks.append(_image(part))
        elif kind == "file":
            blocks.append(_document(part))
        elif kind in ("input_audio", "video_url", "input_video"):
            raise _refused(f"Anthropic models do not accept {kind} content ({role} message)")
    return blocks


def _thinking_blocks(details: Any) -> list[dict[str, Any]]:
    """Signed reasoning the client sent back, as the thinking blocks it came from. Anthropic checks
    the signature, so text without one (or reasoning from another provider) cannot go back."""
    blocks: list[dict[str, Any]] = []
    if not isinstance(details, list):
        return blocks
    for d in details:
        if not isinstance(d, dict) or d.get("format", REASONING_FORMAT) not in (REASONING_FORMAT, None):
            continue
        kind = d.get("type")
        if kind == "reasoning.text" and d.get("signature"):
            blocks.append({"type": "thinking", "thinking": d.get("text") or "", "signature": d["signature"]})
        elif kind == "reasoning.encrypted" and d.get("data"):
            blocks.append({"type": "redacted_thinking", "data": d["data"]})
    return blocks


def _tool_use(call: Any) -> dict[str, Any]:
    fn = call.get("function") if isinstance(call, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise _refused("assistant tool_calls entry without a function name")
    args = fn.get("arguments")
    try:
        value = _decode(args) if isinstance(args, str) and args.strip() else (args or {})
    except msgspec.DecodeError:
        raise _refused(f"tool call {fn['name']!r}: arguments are not valid JSON") from None
    if not isinstance(value, dict):
        raise _refused(f"tool call {fn['name']!r}: arguments must be a JSON object")
    return {"type": "tool_use", "id": call.get("id") or "", "name": fn["name"], "input": value}


def _tool_result(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.get("tool_call_id") or ""}
    if isinstance(content, str):
        block["content"] = content
    else:
        inner = [b for b in _blocks(content, "tool") if b["type"] in ("text", "image", "document")]
        if inner:
            block["content"] = inner
    return block


def _named(blocks: list[dict[str, Any]], name: Any) -> None:
    """A message's `name` is prepended to its text for non-OpenAI models (behaviors §8.1)."""
    if isinstance(name, str) and name:
        for block in blocks:
            if block["type"] == "text":
                block["text"] = f"{name}: {block['text']}"
                return


def conversation(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system blocks, messages) of a chat conversation. Consecutive turns of one role are merged
    (tool results with the user text after them), tool results first as Anthropic requires."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for m in messages:
        if not isinstance(m, dict):
            continue
        role = m.get("role")
        if role in ("system", "developer"):
            system.extend(b for b in _blocks(m.get("content"), role) if b["type"] == "text")
            continue
        if role == "tool":
            role, blocks = "user", [_tool_result(m)]
        elif role == "user":
            blocks = _blocks(m.get("content"), role)
            _named(blocks, m.get("name"))
        elif role == "assistant":
            blocks = _thinking_blocks(m.get("reasoning_details"))
            text = _blocks(m.get("content"), role)
            _named(text, m.get("name"))
            blocks += text
            calls = m.get("tool_calls") or []
            if not isinstance(calls, list):
                raise _refused("assistant tool_calls must be a list")
            blocks += [_tool_use(c) for c in calls]
        else:
            raise _refused(f"message role {role!r} has no Anthropic equivalent")
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            previous = turns[-1]["content"]
            if role == "user" and blocks[0]["type"] == "tool_result":
                # results answer the last assistant turn's calls and must open the user turn
                results = [b for b in previous if b["type"] == "tool_result"]
                previous[:] = results + blocks + [b for b in previous if b["type"] != "tool_result"]
            else:
                previous.extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if turns and turns[-1]["role"] == "assistant":  # a prefill: Anthropic refuses trailing whitespace there
        last = turns[-1]["content"][-1]
        if last["type"] == "text":
            last["text"] = last["text"].rstrip()
    return system, turns


# -- tools -----------------------------------------------------------------------------------------------


def tools_of(tools: Any, *, strict_allowed: bool, eager: bool) -> list[dict[str, Any]]:
    out = []
    for tool in tools if isinstance(tools, list) else ():
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            continue  # not a function tool: no Anthropic equivalent here
        params = fn.get("parameters")
        converted: dict[str, Any] = {
            "name": fn["name"],
            "input_schema": params if isinstance(params, dict) and params else {"type": "object", "properties": {}},
        }
        if fn.get("description"):
            converted["description"] = fn["description"]
        if strict_allowed and fn.get("strict") is not None:
            converted["strict"] = fn["strict"]
        if eager:  # streamed tool arguments arrive as generated (behaviors §3.2)
            converted["eager_input_streaming"] = True
        _with_cache(converted, tool)
        out.append(converted)
    return out


def tool_choice_of(choice: Any, parallel: Any) -> dict[str, Any] | None:
    if choice is None or choice == "auto":
        result: dict[str, Any] | None = {"type": "auto"} if parallel is False else None
    elif choice == "required":
        result = {"type": "any"}
    elif choice == "none":
        return {"type": "none"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        result = {"type": "tool", "name": choice["function"].get("name")}
    else:
        raise _refused(f"tool_choice {choice!r} is not supported")
    if result is not None and parallel is False:
        result["disable_parallel_tool_use"] = True
    return result


# -- the request -----------------------------------------------------------------------------------------


def _mark_last_block(turns: list[dict[str, Any]], system: list[dict[str, Any]], cache: Any) -> None:
    """A top-level `cache_control` puts one breakpoint on the last cacheable block (behaviors §8.5)."""
    for blocks in [t["content"] for t in reversed(turns)] + [system]:
        for block in reversed(blocks):
            if block["type"] not in ("thinking", "redacted_thinking"):
                block.setdefault("cache_control", cache)
                return


def messages_request(
    body: dict[str, Any], *, endpoint_max: int | None, betas: str = "", stream: bool = False
) -> tuple[dict[str, Any], Thinking]:
    """The Messages request for a chat request, and the reasoning it asked for."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise _refused("messages must be a list")
    system, turns = conversation(messages)
    if not turns:
        raise _refused("the conversation has no user or assistant message")
    max_tokens = max_tokens_of(body, endpoint_max)
    out: dict[str, Any] = {"model": body.get("model"), "max_tokens": max_tokens, "messages": turns}
    if system:
        out["system"] = system
    if isinstance(body.get("cache_control"), dict):
        _mark_last_block(turns, system, body["cache_control"])
    thinking = thinking_of(body, max_tokens)
    if thinking.budget is not None:
        out["thinking"] = {"type": "enabled", "budget_tokens": thinking.budget}
    else:
        # Sampling settings: Anthropic takes none but top_p >= 0.95 while thinking.
        if _number(body.get("temperature")):  # OpenAI's range is 0-2, Anthropic's 0-1
            out["temperature"] = min(body["temperature"], 1.0)
        if _number(body.get("top_k")):
            out["top_k"] = body["top_k"]
    top_p = body.get("top_p")
    if _number(top_p) and (thinking.budget is None or top_p >= 0.95):
        out["top_p"] = top_p
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if isinstance(stop, list) and (sequences := [s for s in stop if isinstance(s, str) and s]):
        out["stop_sequences"] = sequences
    tools = tools_of(
        body.get("tools"), strict_allowed=STRICT_TOOLS_BETA in betas, eager=stream
    ) if body.get("tools") else []  # fmt: skip
    if tools:
        out["tools"] = tools
        choice = tool_choice_of(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            out["tool_choice"] = choice
    if isinstance(body.get("user"), str) and body["user"]:
        out["metadata"] = {"user_id": body["user"]}
    config: dict[str, Any] = {}
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            config["format"] = {"type": "json_schema", "schema": schema}
    if isinstance(body.get("verbosity"), str) and body["verbosity"] in VERBOSITY_EFFORTS:
        config["effort"] = body["verbosity"]
    if config:
        out["output_config"] = config
    if stream:
        out["stream"] = True
    return out, thinking
