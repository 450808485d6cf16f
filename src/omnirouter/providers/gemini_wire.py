"""The Gemini API's generateContent body and answers, to and from the internal (chat completions) form.

Pure functions and one small per-stream state object, so the translation is tested without a network.
What Gemini takes and sends: https://ai.google.dev/api/generate-content (contents and parts, tools,
toolConfig, generationConfig with thinkingConfig; candidates, promptFeedback, usageMetadata).
"""

from __future__ import annotations

import base64
import mimetypes
import re
import secrets
import time
from typing import Any
from urllib.parse import unquote

import msgspec

from omnirouter.errors import GatewayError

REASONING_FORMAT = "google-gemini-v1"  # reasoning_details[].format for Gemini's thoughts and signatures
MESSAGES_FORMAT = "anthropic-claude-v1"  # what reasoning from an Anthropic Messages client is labelled
# Gemini 3 refuses a function call sent back without the signature it came with; history that never
# had one (another model's turn, a client that dropped reasoning_details) carries Google's documented
# placeholder instead.
SKIP_SIGNATURE = "skip_thought_signature_validator"

# Gemini's finish reasons, normalised. A prompt blocked outright (promptFeedback.blockReason, no
# candidates) is always content_filter; a call the model garbled is an error, as OpenRouter's SDK maps it.
FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "LANGUAGE": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "MALFORMED_FUNCTION_CALL": "error",
    "UNEXPECTED_TOOL_CALL": "error",
    "TOO_MANY_TOOL_CALLS": "error",
}

# reasoning.effort as a thinkingBudget when max_tokens gives no scale (Gemini 2.5 takes budgets of up
# to 24576 tokens on Flash, 32768 on Pro), and as a Gemini 3 thinkingLevel (xhigh and max go down to high).
EFFORT_RATIO = {"max": 0.95, "xhigh": 0.95, "high": 0.8, "medium": 0.5, "low": 0.2, "minimal": 0.1}
EFFORT_BUDGET = {"max": 24576, "xhigh": 24576, "high": 16384, "medium": 8192, "low": 2048, "minimal": 512}
MAX_BUDGET = 24576
MIN_BUDGET = 128
THINKING_LEVEL = {"max": "high", "xhigh": "high", "high": "high", "medium": "medium", "low": "low",
                  "minimal": "minimal"}  # fmt: skip
_GEMINI_VERSION = re.compile(r"gemini-(\d+)(?:\.(\d+))?")


def _version(model: str) -> tuple[int, int] | None:
    """A Gemini model name's version (gemini-2.5-flash: (2, 5)); None for an alias without one."""
    m = _GEMINI_VERSION.search(model)
    return (int(m.group(1)), int(m.group(2) or 0)) if m else None


# The OpenAPI subset Gemini's function `parameters` take; other JSON Schema keywords are refused (400).
_SCHEMA_KEEP = frozenset(
    {"description", "title", "minItems", "maxItems", "minimum", "maximum", "minLength", "maxLength",
     "pattern", "minProperties", "maxProperties", "default", "example", "propertyOrdering"}
)  # fmt: skip
_FORMATS = {"string": {"enum", "date-time"}, "integer": {"int32", "int64"}, "number": {"float", "double"}}

_decode = msgspec.json.decode
_encode = msgspec.json.encode


def _bad(message: str) -> GatewayError:
    return GatewayError(400, message)


# -- request -------------------------------------------------------------------------------------------


def request_body(body: dict[str, Any], model: str) -> dict[str, Any]:
    """The generateContent body for an internal chat request (`model` decides thinking's form)."""
    system, contents = _contents(body.get("messages") or [])
    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    tools = [_declaration(t) for t in body.get("tools") or () if isinstance(t, dict) and t.get("type") == "function"]
    if tools:
        out["tools"] = [{"functionDeclarations": tools}]
        if (config := _tool_config(body.get("tool_choice"))) is not None:
            out["toolConfig"] = {"functionCallingConfig": config}
    if body.get("web_search_options") is not None:  # web search, native here: grounding with Google Search
        out.setdefault("tools", []).append({"googleSearch": {}})
    if generation := _generation_config(body, model):
        out["generationConfig"] = generation
    return out


def _contents(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """System text as systemInstruction parts, and the turns as contents (consecutive turns of one
    role merged: tool results and a following user message are one user turn to Gemini)."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}  # tool_call id -> function name, for the functionResponse parts

    def add(role: str, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})

    for m in messages:
        if not isinstance(m, dict):
            continue
        role = m.get("role")
        if role in ("system", "developer"):
            system.extend(p for p in _parts(m.get("content")) if "text" in p)
        elif role == "user":
            add("user", _parts(m.get("content")))
        elif role == "assistant":
            add("model", _assistant_parts(m, call_names))
        elif role in ("tool", "function"):
            name = call_names.get(str(m.get("tool_call_id"))) or m.get("name")
            if not name:
                raise _bad(f"Tool message with tool_call_id {m.get('tool_call_id')!r} has no matching tool call")
            add("user", [{"functionResponse": {"name": name, "response": _tool_result(m.get("content"))}}])
    return system, contents


def _parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for p in content if isinstance(content, list) else ():
        if not isinstance(p, dict):
            continue
        kind = p.get("type")
        if kind == "text" and isinstance(p.get("text"), str):
            parts.append({"text": p["text"]})
        elif kind == "image_url":
            image = p.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if isinstance(url, str):
                parts.append(_media(url, "image/jpeg"))
        elif kind == "file" and isinstance(p.get("file"), dict):
            f = p["file"]
            data = f.get("file_data") or f.get("url") or f.get("file_url")
            guessed = mimetypes.guess_type(str(f.get("filename") or ""))[0]
            if isinstance(data, str):
                parts.append(_media(data, guessed or "application/pdf"))
        elif kind == "input_audio" and isinstance(p.get("input_audio"), dict):
            audio = p["input_audio"]
            parts.append(
                {"inlineData": {"mimeType": f"audio/{audio.get('format') or 'wav'}", "data": audio.get("data")}}
            )
    return parts


def _media(url: str, default_mime: str) -> dict[str, Any]:
    """A data: URL inline (base64, as Gemini takes it); any other URL by reference."""
    if url.startswith("data:"):
        header, _, data = url[5:].partition(",")
        mime, _, encoding = header.partition(";")
        if "base64" not in encoding:
            data = base64.b64encode(unquote(data).encode()).decode()
        return {"inlineData": {"mimeType": mime or default_mime, "data": data}}
    mime = mimetypes.guess_type(url.split("?", 1)[0])[0] or default_mime
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _signature_of(detail: Any) -> str | None:
    """The Gemini thought signature a reasoning detail carries, if it can be one. A Messages client
    carries every detail as a thinking or redacted_thinking block, which comes back labelled
    anthropic-claude-v1; an encrypted one so labelled is taken too: it is almost always a Gemini
    signature that went out as redacted_thinking (Claude redacts its own thinking only rarely)."""
    if not isinstance(detail, dict):
        return None
    fmt, kind = detail.get("format"), detail.get("type")
    if fmt not in (None, "unknown", REASONING_FORMAT) and not (
        kind == "reasoning.encrypted" and fmt == MESSAGES_FORMAT
    ):
        return None
    sig = detail.get("data") if kind == "reasoning.encrypted" else detail.get("signature")
    return sig if isinstance(sig, str) and sig else None


def _assistant_parts(m: dict[str, Any], call_names: dict[str, str]) -> list[dict[str, Any]]:
    """An assistant turn as model parts, each function call with the thought signature it came with."""
    by_call: dict[str, str] = {}
    loose: str | None = None  # a signature without the id of its call (a Messages client drops it)
    for d in m.get("reasoning_details") or ():
        if (sig := _signature_of(d)) is None:
            continue
        if d.get("id"):
            by_call[str(d["id"])] = sig
        elif loose is None:
            loose = sig
    parts = [p for p in _parts(m.get("content")) if "text" in p]
    # Images the model made earlier go back as it sent them, so a later turn can edit them.
    parts += [p for p in _parts(m.get("images")) if "inlineData" in p]
    calls: list[dict[str, Any]] = []
    for call in m.get("tool_calls") or ():
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not fn.get("name"):
            continue
        call_id = str(call.get("id"))
        call_names[call_id] = fn["name"]
        part: dict[str, Any] = {"functionCall": {"name": fn["name"], "args": _arguments(fn.get("arguments"))}}
        if call_id in by_call:
            part["thoughtSignature"] = by_call[call_id]
        calls.append(part)
    # Gemini signs the first function call of a step, or else the turn's text.
    if calls and not any("thoughtSignature" in c for c in calls):
        calls[0]["thoughtSignature"] = loose if loose is not None else SKIP_SIGNATURE
    elif loose is not None and parts and not calls:
        parts[0]["thoughtSignature"] = loose
    return parts + calls


def _arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        args = _decode(raw) if isinstance(raw, str) and raw.strip() else {}
    except msgspec.DecodeError:
        raise _bad("Tool call arguments are not valid JSON") from None
    return args if isinstance(args, dict) else {"value": args}


def _tool_result(content: Any) -> dict[str, Any]:
    """A tool message as functionResponse.response (an object): a JSON object as it is, anything else
    under "output", the key Gemini reads as the function's output."""
    text = content if isinstance(content, str) else "".join(p["text"] for p in _parts(content) if "text" in p)
    try:
        value = _decode(text)
    except msgspec.DecodeError:
        return {"output": text}
    return value if isinstance(value, dict) else {"output": value}


def _declaration(tool: dict[str, Any]) -> dict[str, Any]:
    fn = tool.get("function") or {}
    out: dict[str, Any] = {"name": fn.get("name")}
    if fn.get("description"):
        out["description"] = fn["description"]
    params = fn.get("parameters")
    # An object without properties is refused ("properties: should be non-empty"): a call with no arguments.
    if isinstance(params, dict) and params.get("properties"):
        out["parameters"] = clean_schema(params)
    return out


def _tool_config(choice: Any) -> dict[str, Any] | None:
    if choice == "auto":
        return {"mode": "AUTO"}
    if choice == "none":
        return {"mode": "NONE"}
    if choice == "required":
        return {"mode": "ANY"}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return {"mode": "ANY", "allowedFunctionNames": [choice["function"].get("name")]}
    return None


def clean_schema(schema: Any, defs: dict[str, Any] | None = None, seen: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A JSON Schema as the OpenAPI subset Gemini's function parameters take: local $refs inlined
    (a recursive one cut to a plain object), `type: [T, "null"]` as nullable, const as enum, oneOf as
    anyOf, allOf merged, formats and keywords Gemini refuses left out."""
    if not isinstance(schema, dict):
        return {}
    if defs is None:
        defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name in seen or name not in defs:
            return {"type": "object", **({"description": schema["description"]} if "description" in schema else {})}
        return clean_schema({**defs[name], **{k: v for k, v in schema.items() if k != "$ref"}}, defs, seen | {name})
    if isinstance(schema.get("allOf"), list):
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for sub in schema["allOf"]:
            sub = clean_schema(sub, defs, seen)
            merged.setdefault("properties", {}).update(sub.pop("properties", {}))
            merged["required"] = [*merged.get("required", []), *sub.pop("required", [])]
            for k, v in sub.items():
                merged.setdefault(k, v)
        if not merged["properties"]:
            del merged["properties"]
        return clean_schema(merged, defs, seen)
    out: dict[str, Any] = {k: v for k, v in schema.items() if k in _SCHEMA_KEEP}
    kind = schema.get("type")
    if isinstance(kind, list):
        if "null" in kind:
            out["nullable"] = True
        kinds = [k for k in kind if k != "null"]
        if len(kinds) == 1:
            kind = kinds[0]
        else:
            kind = None
            out["anyOf"] = [{"type": k} for k in kinds]
    if schema.get("nullable") is True:
        out["nullable"] = True
    if isinstance(kind, str) and kind != "null":
        out["type"] = kind
    options = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(options, list):
        alternatives = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
        if len(alternatives) < len(options):
            out["nullable"] = True
        if len(alternatives) == 1:
            out = {**clean_schema(alternatives[0], defs, seen), **out}
        elif alternatives:
            out["anyOf"] = [clean_schema(o, defs, seen) for o in alternatives]
    enum = [schema["const"]] if "const" in schema else schema.get("enum")
    if isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum):
        out["enum"] = enum
        out.setdefault("type", "string")
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS.get(str(out.get("type")), ()):
        out["format"] = fmt
    if isinstance(schema.get("properties"), dict):
        out["properties"] = {k: clean_schema(v, defs, seen) for k, v in schema["properties"].items()}
        required = [r for r in schema.get("required") or () if r in out["properties"]]
        if required:
            out["required"] = required
    if "items" in schema:
        out["items"] = clean_schema(schema["items"], defs, seen)
    return out


def _generation_config(body: dict[str, Any], model: str) -> dict[str, Any]:
    config: dict[str, Any] = {}
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit is not None:
        config["maxOutputTokens"] = limit
    for ours, theirs in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        if body.get(ours) is not None:
            config[theirs] = body[ours]
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("logprobs") is True:
        config["responseLogprobs"] = True
        if isinstance(body.get("top_logprobs"), int):
            config["logprobs"] = body["top_logprobs"]
    if isinstance(body.get("n"), int) and body["n"] > 1:
        config["candidateCount"] = body["n"]
    rf = body.get("response_format")
    if isinstance(rf, dict) and rf.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = (rf.get("json_schema") or {}).get("schema") if rf["type"] == "json_schema" else None
        if isinstance(schema, dict):
            # Gemini 2.5 and later take a JSON Schema as it is; earlier ones only the OpenAPI subset.
            version = _version(model)
            if version is not None and version < (2, 5):
                config["responseSchema"] = clean_schema(schema)
            else:
                config["responseJsonSchema"] = schema
    if (thinking := _thinking(body, model, limit)) is not None:
        config["thinkingConfig"] = thinking
    config.update(_image_output(body))
    return config


def _image_output(body: dict[str, Any]) -> dict[str, Any]:
    """`modalities` naming "image" as responseModalities, and `image_config` (aspect_ratio, image_size)
    as imageConfig; nothing when the request asks for text only."""
    modalities = body.get("modalities")
    if not isinstance(modalities, list) or "image" not in modalities:
        return {}
    out: dict[str, Any] = {"responseModalities": [m.upper() for m in ("text", "image") if m in modalities]}
    image_config = body.get("image_config") if isinstance(body.get("image_config"), dict) else {}
    names = (("aspect_ratio", "aspectRatio"), ("image_size", "imageSize"))
    native = {theirs: image_config[ours] for ours, theirs in names if isinstance(image_config.get(ours), str)}
    if native:
        out["imageConfig"] = native
    return out


def _thinking(body: dict[str, Any], model: str, limit: Any) -> dict[str, Any] | None:
    """reasoning (effort, max_tokens, enabled, exclude) as thinkingConfig: a budget for Gemini 2.5, a
    level for Gemini 3 and later (behaviors §8.4). None when the request says nothing about reasoning."""
    reasoning = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else None
    include = body.get("include_reasoning")
    effort = (reasoning or {}).get("effort") or body.get("reasoning_effort")
    if reasoning is None and effort is None and include is None:
        return None
    reasoning = reasoning or {}
    version = _version(model)
    leveled = version is not None and version >= (3, 0)
    if reasoning.get("enabled") is False or effort == "none" or (include is False and not reasoning and not effort):
        # Gemini 3 cannot stop thinking, only think least; 2.5 stops with a zero budget.
        return {"thinkingLevel": "minimal"} if leveled else {"thinkingBudget": 0}
    config: dict[str, Any] = {"includeThoughts": not reasoning.get("exclude", False)}
    if isinstance(reasoning.get("max_tokens"), int):
        config["thinkingBudget"] = reasoning["max_tokens"]
    elif effort in EFFORT_RATIO:
        if leveled:
            config["thinkingLevel"] = THINKING_LEVEL[effort]
        elif isinstance(limit, int):
            config["thinkingBudget"] = min(MAX_BUDGET, max(MIN_BUDGET, int(limit * EFFORT_RATIO[effort])))
        else:
            config["thinkingBudget"] = EFFORT_BUDGET[effort]
    return config


# -- answers -------------------------------------------------------------------------------------------


def usage(meta: Any) -> dict[str, Any] | None:
    """usageMetadata in the internal form: thoughts are completion (and reasoning) tokens, the cached
    prompt is part of the prompt, tool-use prompt tokens are prompt tokens too (all billed as input)."""
    if not isinstance(meta, dict):
        return None
    prompt = int(meta.get("promptTokenCount") or 0) + int(meta.get("toolUsePromptTokenCount") or 0)
    thoughts = int(meta.get("thoughtsTokenCount") or 0)
    completion = int(meta.get("candidatesTokenCount") or 0) + thoughts
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": int(meta.get("cachedContentTokenCount") or 0)},
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    }


def finish(native: str, tool_calls: bool) -> str:
    """Gemini ends a turn that calls functions with STOP: that is a tool_calls finish."""
    normalized = FINISH_REASONS.get(native, "stop")
    return "tool_calls" if tool_calls and normalized == "stop" else normalized


def logprobs(result: Any) -> dict[str, Any] | None:
    """logprobsResult (chosen tokens, and the top ones at each step) in OpenAI's logprobs shape."""
    if not isinstance(result, dict) or not isinstance(result.get("chosenCandidates"), list):
        return None
    tops = result.get("topCandidates") or []

    def entry(c: dict[str, Any]) -> dict[str, Any]:
        token = str(c.get("token", ""))
        return {"token": token, "logprob": c.get("logProbability", 0.0), "bytes": list(token.encode())}

    content = []
    for i, chosen in enumerate(result["chosenCandidates"]):
        top = tops[i].get("candidates") or [] if i < len(tops) and isinstance(tops[i], dict) else []
        content.append({**entry(chosen), "top_logprobs": [entry(t) for t in top]})
    return {"content": content, "refusal": None}


def annotations(grounding: Any) -> list[dict[str, Any]]:
    """Google Search grounding (groundingMetadata) as url_citation annotations, one per cited source
    of each supported segment of the answer."""
    if not isinstance(grounding, dict):
        return []
    sources = [c.get("web") or {} for c in grounding.get("groundingChunks") or () if isinstance(c, dict)]
    out = []
    for support in grounding.get("groundingSupports") or ():
        segment = support.get("segment") or {}
        for i in support.get("groundingChunkIndices") or ():
            if isinstance(i, int) and 0 <= i < len(sources) and sources[i].get("uri"):
                citation = {
                    "url": sources[i]["uri"],
                    "title": sources[i].get("title") or "",
                    "content": segment.get("text") or "",
                    "start_index": segment.get("startIndex", 0),
                    "end_index": segment.get("endIndex", 0),
                }
                out.append({"type": "url_citation", "url_citation": citation})
    return out


def call_id() -> str:
    return "call_" + secrets.token_hex(12)


class _Message:
    """One candidate's parts gathered as a message or a delta."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.thoughts: list[str] = []
        self.details: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self.images: list[dict[str, Any]] = []  # image parts (inlineData) as chat's message.images

    def add(self, parts: Any, index_from: int = 0) -> None:
        for part in parts if isinstance(parts, list) else ():
            if not isinstance(part, dict):
                continue
            sig = part.get("thoughtSignature")
            if isinstance(part.get("functionCall"), dict):
                fc = part["functionCall"]
                cid = str(fc.get("id") or call_id())
                args = fc.get("args")
                self.calls.append(
                    {
                        "index": index_from + len(self.calls),
                        "id": cid,
                        "type": "function",
                        "function": {"name": fc.get("name"), "arguments": _encode(args or {}).decode()},
                    }
                )
                if sig:
                    self.details.append(_encrypted(sig, cid))
            elif part.get("thought") is True:
                text = part.get("text") or ""
                if text:
                    self.thoughts.append(text)
                last = self.details[-1] if self.details else None
                if last is not None and last["type"] == "reasoning.text" and "signature" not in last:
                    last["text"] += text  # one thought in pieces is one detail
                elif text or sig:
                    last = {"type": "reasoning.text", "text": text, "format": REASONING_FORMAT, "index": 0}
                    self.details.append(last)
                if sig and last is not None:
                    last["signature"] = sig
            elif isinstance(part.get("text"), str):
                self.text.append(part["text"])
                if sig:
                    self.details.append(_encrypted(sig, None))
            elif isinstance(part.get("inlineData"), dict) and not part.get("thought"):
                inline = part["inlineData"]
                mime, data = str(inline.get("mimeType") or ""), inline.get("data")
                if mime.startswith("image/") and isinstance(data, str) and data:
                    url = f"data:{mime};base64,{data}"
                    self.images.append({"type": "image_url", "image_url": {"url": url}})
                if sig:
                    self.details.append(_encrypted(sig, None))

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.text:
            out["content"] = "".join(self.text)
        if self.thoughts:
            out["reasoning"] = "".join(self.thoughts)
        if self.details:
            out["reasoning_details"] = self.details
        if self.calls:
            out["tool_calls"] = self.calls
        if self.images:
            out["images"] = self.images
        return out


def _encrypted(sig: str, cid: str | None) -> dict[str, Any]:
    return {"type": "reasoning.encrypted", "data": sig, "id": cid, "format": REASONING_FORMAT, "index": 0}


def completion(data: dict[str, Any], model: str) -> dict[str, Any]:
    """A GenerateContentResponse as a chat completion (`native_finish_reason` keeps Gemini's reason)."""
    choices = []
    for n, cand in enumerate(data.get("candidates") or ()):
        msg = _Message()
        msg.add((cand.get("content") or {}).get("parts"))
        native = cand.get("finishReason") or "STOP"
        message = {"role": "assistant", "content": None, **msg.fields()}
        if cited := annotations(cand.get("groundingMetadata")):
            message["annotations"] = cited
        choices.append(
            {
                "index": cand.get("index", n),
                "message": message,
                "finish_reason": finish(native, bool(msg.calls)),
                "native_finish_reason": native,
                "logprobs": logprobs(cand.get("logprobsResult")),
            }
        )
    if not choices:  # the prompt itself was blocked
        native = (data.get("promptFeedback") or {}).get("blockReason") or "OTHER"
        choices.append(
            {
                "index": 0,
                "message": {"role": "assistant", "content": ""},
                "finish_reason": "content_filter",
                "native_finish_reason": native,
            }
        )
    out: dict[str, Any] = {
        "id": data.get("responseId") or "gen-" + secrets.token_hex(12),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": data.get("modelVersion") or model,
        "choices": choices,
    }
    if (u := usage(data.get("usageMetadata"))) is not None:
        out["usage"] = u
    return out


class StreamState:
    """streamGenerateContent events as chat chunks. Gemini sends text in pieces, each function call
    whole, and usageMetadata (running totals) on every event; no event marks the end. Some models
    repeat the finishReason on every event, so the finish chunks (and the usage chunk after them)
    are made once the connection has ended: `end_chunks`."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.id: str | None = None
        self.created = int(time.time())
        self.usage: dict[str, Any] | None = None
        self.blocked: str | None = None  # promptFeedback.blockReason: the prompt was refused
        self._finishes: dict[int, str] = {}  # candidate index -> its last finishReason
        self._started: set[int] = set()
        self._calls: dict[int, int] = {}  # candidate index -> tool calls sent so far

    @property
    def finished(self) -> bool:
        """Whether the answer was whole: a finishReason or a blocked prompt was seen."""
        return bool(self._finishes) or self.blocked is not None

    def chunks(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        """The content, reasoning and tool call deltas of one event."""
        self.id = self.id or event.get("responseId") or "gen-" + secrets.token_hex(12)
        self.model = event.get("modelVersion") or self.model
        if event.get("usageMetadata") is not None:
            self.usage = usage(event["usageMetadata"])
        out = []
        candidates = event.get("candidates") or ()
        for n, cand in enumerate(candidates):
            index = cand.get("index", n)
            msg = _Message()
            msg.add((cand.get("content") or {}).get("parts"), self._calls.get(index, 0))
            self._calls[index] = self._calls.get(index, 0) + len(msg.calls)
            delta = msg.fields()
            if cited := annotations(cand.get("groundingMetadata")):
                delta["annotations"] = cited
            scores = logprobs(cand.get("logprobsResult"))
            if delta or scores:
                if index not in self._started:
                    self._started.add(index)
                    delta = {"role": "assistant", **delta}
                chunk = self._chunk(index, delta)
                if scores is not None:
                    chunk["choices"][0]["logprobs"] = scores
                out.append(chunk)
            if cand.get("finishReason"):
                self._finishes[index] = cand["finishReason"]
        if not candidates and (block := (event.get("promptFeedback") or {}).get("blockReason")):
            self.blocked = str(block)
        return out

    def end_chunks(self) -> list[dict[str, Any]]:
        """After the last event: a finish chunk per candidate (`native_finish_reason` keeps Gemini's
        reason), then the usage-only chunk."""
        out = []
        if self.blocked is not None and not self._finishes:
            out.append(self._chunk(0, {"role": "assistant", "content": ""}, self.blocked, "content_filter"))
        for index, native in sorted(self._finishes.items()):
            out.append(self._chunk(index, {}, native, finish(native, self._calls.get(index, 0) > 0)))
        if self.usage is not None:
            out.append({**self._chunk(0, {}), "choices": [], "usage": self.usage})
        return out

    def _chunk(
        self, index: int, delta: dict[str, Any], native: str | None = None, finish_reason: str | None = None
    ) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": index, "delta": delta, "finish_reason": finish_reason}
        if native is not None:
            choice["native_finish_reason"] = native
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        }
