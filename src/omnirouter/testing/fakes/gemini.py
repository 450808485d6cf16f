"""The Google Gemini API wire (generateContent, streamGenerateContent?alt=sse), and FakeGemini.

It answers what the Gemini API answers: candidates with parts (thought summaries marked
``thought: true``, function calls whole with a ``thoughtSignature`` on the first one), Gemini's
finish reasons, ``usageMetadata`` with cached and thoughts tokens, SSE events separated by CRLF
pairs and no end marker, Google's error envelope, ``x-goog-api-key`` (or ``?key=``) auth. Like the
real API it refuses unknown fields in the body and JSON Schema keywords outside the subset function
parameters take, so an adapter that sends either fails here as it would there.

    with FakeGemini.run_in_thread(api_key="k") as fake:
        fake.script(Reply("hi", reasoning="Let me see.", cached_tokens=100), Status(429), blocked_prompt())
        ...  # a provider with api: gemini and base_url fake.base_url (ends in /v1beta)
"""

from __future__ import annotations

import secrets
from typing import Any, ClassVar

from aiohttp import web

from omnirouter.testing.fakes.core import (
    Completion,
    FakeServer,
    FakeThread,
    Frames,
    Message,
    NormalRequest,
    Route,
    Status,
    Stream,
    Tool,
    Wire,
    WireError,
    encode_json,
    json_response,
    signature_of,
)

__all__ = ["FakeGemini", "FakeGeminiThread", "GeminiWire", "blocked_prompt", "error_body"]

_DEFAULT_MODELS = ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.5-flash-lite", "gemini-3-pro-preview")

# HTTP status -> (Google's status name, a message the API sends with it).
_ERRORS: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "models/unknown is not found for API version v1beta, or is not supported for generateContent."),
    408: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    500: ("INTERNAL", "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}  # fmt: skip

# Fields the API knows; any other is refused ("Invalid JSON payload received. Unknown name ...").
_REQUEST_FIELDS = frozenset(
    {"contents", "systemInstruction", "tools", "toolConfig", "generationConfig", "safetySettings", "cachedContent"}
)
_GENERATION_FIELDS = frozenset(
    {"stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema", "responseModalities",
     "candidateCount", "maxOutputTokens", "temperature", "topP", "topK", "seed", "presencePenalty",
     "frequencyPenalty", "responseLogprobs", "logprobs", "thinkingConfig", "mediaResolution", "speechConfig"}
)  # fmt: skip
_THINKING_FIELDS = frozenset({"includeThoughts", "thinkingBudget", "thinkingLevel"})
_PART_FIELDS = frozenset(
    {"text", "inlineData", "fileData", "functionCall", "functionResponse", "thought", "thoughtSignature",
     "executableCode", "codeExecutionResult", "videoMetadata"}
)  # fmt: skip
# The OpenAPI subset of function `parameters` (a JSON Schema goes in `parametersJsonSchema`).
_SCHEMA_FIELDS = frozenset(
    {"type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties",
     "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example", "anyOf",
     "propertyOrdering", "default", "items", "minimum", "maximum"}
)  # fmt: skip
_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}
_SAFETY_CATEGORIES = (
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
)


def error_body(
    status: int, message: str | None = None, reason: str | None = None, retry_delay: float | None = None
) -> dict[str, Any]:
    """Google's error envelope; ``reason`` adds an ErrorInfo detail (``API_KEY_INVALID``),
    ``retry_delay`` a RetryInfo one (what a 429 carries)."""
    name, default = _ERRORS.get(status, ("INTERNAL" if status >= 500 else "FAILED_PRECONDITION", "Request failed."))
    err: dict[str, Any] = {"code": status, "message": message or default, "status": name}
    details = []
    if reason is not None:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        )
    if retry_delay is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_delay:g}s"})
    if details:
        err["details"] = details
    return {"error": err}


def _ratings(blocked: str | None = None) -> list[dict[str, Any]]:
    ratings: list[dict[str, Any]] = []
    for c in _SAFETY_CATEGORIES:
        rating: dict[str, Any] = {"category": c, "probability": "HIGH" if c == blocked else "NEGLIGIBLE"}
        if c == blocked:
            rating["blocked"] = True
        ratings.append(rating)
    return ratings


def blocked_prompt(reason: str = "SAFETY", *, stream: bool = False, prompt_tokens: int = 8) -> Status:
    """A step answering as Gemini does when it refuses the prompt itself: HTTP 200, no candidates,
    ``promptFeedback.blockReason`` (one SSE event when ``stream``)."""
    body: dict[str, Any] = {
        "promptFeedback": {"blockReason": reason, "safetyRatings": _ratings("HARM_CATEGORY_DANGEROUS_CONTENT")},
        "usageMetadata": {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens},
        "modelVersion": "gemini-2.5-flash",
        "responseId": secrets.token_urlsafe(16),
    }
    if not stream:
        return Status(200, body)
    return Status(200, _sse(body), {"Content-Type": "text/event-stream"})


def _sse(payload: Any) -> bytes:
    return b"data: " + encode_json(payload) + b"\r\n\r\n"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def _get(fields: Any, name: str) -> Any:
    """A field by its JSON name; like Google's parser, the proto's snake_case name works too."""
    if not isinstance(fields, dict):
        return None
    if name in fields:
        return fields[name]
    return fields.get("".join("_" + ch.lower() if ch.isupper() else ch for ch in name))


def _unknown(fields: Any, known: frozenset[str], where: str) -> None:
    if isinstance(fields, dict):
        for name in fields:
            if _camel(name) not in known:
                message = f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}': Cannot find field."
                raise WireError(400, message)


def _check_schema(schema: Any, where: str) -> None:
    if not isinstance(schema, dict):
        return
    _unknown(schema, _SCHEMA_FIELDS, where)
    if isinstance(schema.get("type"), list):
        message = f"Invalid JSON payload received. Proto field is not repeating, cannot start list at '{where}.type'."
        raise WireError(400, message)
    if schema.get("type") in ("object", "OBJECT") and "properties" in schema and not schema["properties"]:
        raise WireError(400, f"* GenerateContentRequest.{where}.properties: should be non-empty for OBJECT type")
    for name, sub in (schema.get("properties") or {}).items():
        _check_schema(sub, f"{where}.properties[{name}].value")
    _check_schema(schema.get("items"), f"{where}.items")
    for i, sub in enumerate(schema.get("anyOf") or ()):
        _check_schema(sub, f"{where}.any_of[{i}]")


def _text(parts: Any) -> str:
    return " ".join(p["text"] for p in parts or () if isinstance(p, dict) and isinstance(p.get("text"), str))


def usage_metadata(c: Completion, final: bool = True) -> dict[str, Any] | None:
    """usageMetadata as Gemini counts: candidates exclude thoughts, prompt includes the cached part.
    Before the last event only the prompt is counted (what the real stream's early events carry)."""
    if c.raw_usage is not None:
        return c.raw_usage
    u = c.usage
    if u is None:
        return None
    meta: dict[str, Any] = {"promptTokenCount": u.prompt_tokens}
    if final:
        meta["candidatesTokenCount"] = u.completion_tokens - u.reasoning_tokens
    meta["totalTokenCount"] = u.prompt_tokens + (u.completion_tokens if final else 0)
    if u.cached_tokens:
        meta["cachedContentTokenCount"] = u.cached_tokens
    meta["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": u.prompt_tokens}]
    if u.cached_tokens:
        meta["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": u.cached_tokens}]
    if final and u.reasoning_tokens:
        meta["thoughtsTokenCount"] = u.reasoning_tokens
    return meta


def _finish_reason(c: Completion) -> str:
    return c.finish_reason if c.finish_verbatim else _FINISH.get(c.finish_reason, "STOP")


def _call_parts(c: Completion) -> list[dict[str, Any]]:
    """Function calls, the first signed (Gemini signs the first call of a step, parallel or not)."""
    parts: list[dict[str, Any]] = []
    for call in c.tool_calls or ():
        part: dict[str, Any] = {"functionCall": {"name": call.name, "args": call.args}}
        if not parts:
            part["thoughtSignature"] = c.reasoning_signature or signature_of(call.name + call.arguments)
        parts.append(part)
    return parts


class _Events(Frames):
    """One completion as Gemini's SSE events: each a whole GenerateContentResponse."""

    def __init__(self, c: Completion) -> None:
        self.c = c
        self.prompt_usage = usage_metadata(c, final=False)

    def event(self, parts: list[dict[str, Any]] | None, finish: str | None = None) -> bytes:
        candidate: dict[str, Any] = {}
        if parts is not None:
            candidate["content"] = {"parts": parts, "role": "model"}
        if finish is not None:
            candidate["finishReason"] = finish
            if finish in ("SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII"):
                candidate["safetyRatings"] = _ratings("HARM_CATEGORY_DANGEROUS_CONTENT")
        candidate["index"] = 0
        payload: dict[str, Any] = {"candidates": [candidate]}
        usage = usage_metadata(self.c) if finish is not None else self.prompt_usage
        if usage is not None:
            payload["usageMetadata"] = usage
        payload["modelVersion"] = self.c.model
        payload["responseId"] = self.c.id
        return _sse(payload)

    def head(self) -> bytes:
        return b""

    def body(self) -> list[bytes]:
        events = [self.event([{"text": t, "thought": True}]) for t in self.c.reasoning_tokens]
        events += [self.event([{"text": t}]) for t in self.c.tokens]
        events += [self.event([part]) for part in _call_parts(self.c)]
        return events

    def finish(self) -> bytes:
        return self.event([{"text": ""}], _finish_reason(self.c))

    def broken(self) -> bytes:
        return b'data: {"candidates": [{"content": {"parts": [{"text": \r\n\r\n'

    def error(self, stream: Stream) -> bytes:
        return _sse({"error": stream.error or error_body(500)["error"]})


async def _list_models(fake: FakeServer, request: web.Request) -> web.StreamResponse:
    return json_response({"models": [_model_card(m) for m in fake.models]})


async def _get_model(fake: FakeServer, request: web.Request) -> web.StreamResponse:
    name = request.match_info["model"]
    if name not in fake.models:
        return json_response(error_body(404, f"models/{name} is not found for API version v1beta"), 404)
    return json_response(_model_card(name))


def _model_card(name: str) -> dict[str, Any]:
    return {
        "name": f"models/{name}",
        "displayName": name,
        "inputTokenLimit": 1048576,
        "outputTokenLimit": 65536,
        "supportedGenerationMethods": ["generateContent", "countTokens", "streamGenerateContent"],
        "thinking": True,
    }


class GeminiWire(Wire):
    """``POST /models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse``, ``GET /models``."""

    name: ClassVar[str] = "FakeGemini"
    base_path: ClassVar[str] = "/v1beta"
    default_models: ClassVar[tuple[str, ...]] = _DEFAULT_MODELS
    reasoning_by_default: ClassVar[bool] = True  # thought summaries whenever includeThoughts is set

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/models/{model}:generateContent", stream=False),
            Route("POST", "/models/{model}:streamGenerateContent", stream=True),
            Route("GET", "/models", handler=_list_models),
            Route("GET", "/models/{model}", handler=_get_model),
        ]

    def parse(self, body: Any, request: web.Request) -> NormalRequest:
        if not isinstance(body, dict):
            raise WireError(400, "Invalid JSON payload received.")
        if request.path.endswith(":streamGenerateContent") and request.query.get("alt") != "sse":
            raise WireError(400, "FakeGemini streams only as server-sent events (alt=sse).")
        _unknown(body, _REQUEST_FIELDS, "")
        contents = _get(body, "contents")
        if not isinstance(contents, list) or not contents:
            raise WireError(400, "* GenerateContentRequest.contents: contents is not specified")
        messages: list[Message] = []
        chars = 0
        for i, content in enumerate(contents):
            parts = _get(content, "parts")
            if not isinstance(parts, list) or not parts:
                raise WireError(400, f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.")
            for j, part in enumerate(parts):
                _unknown(part, _PART_FIELDS, f"contents[{i}].parts[{j}]")
            role = _get(content, "role") or "user"
            if role not in ("user", "model"):
                raise WireError(400, f"Please use a valid role: user, model. Got {role!r}.")
            text = _text(parts)
            chars += len(text) + sum(
                len(encode_json(p)) for p in parts if _get(p, "functionCall") or _get(p, "functionResponse")
            )
            results_only = all(_get(p, "functionResponse") is not None for p in parts)
            messages.append(Message("assistant" if role == "model" else "tool" if results_only else "user", text))
        system = _get(body, "systemInstruction")
        system_text = _text(_get(system, "parts"))
        tools: list[Tool] = []
        for i, tool in enumerate(_get(body, "tools") or ()):
            for j, fn in enumerate(_get(tool, "functionDeclarations") or ()):
                where = f"tools[{i}].function_declarations[{j}].parameters"
                _check_schema(fn.get("parameters"), where)
                tools.append(
                    Tool(
                        str(fn.get("name")),
                        fn.get("description"),
                        fn.get("parameters") or _get(fn, "parametersJsonSchema"),
                    )
                )
        config = _get(body, "generationConfig") or {}
        _unknown(config, _GENERATION_FIELDS, "generation_config")
        _check_schema(_get(config, "responseSchema"), "generation_config.response_schema")
        thinking = _get(config, "thinkingConfig") or {}
        _unknown(thinking, _THINKING_FIELDS, "generation_config.thinking_config")
        return NormalRequest(
            model=request.match_info["model"],
            stream=request.path.endswith(":streamGenerateContent"),
            messages=messages,
            system=system_text or None,
            tools=tools,
            max_tokens=_get(config, "maxOutputTokens"),
            reasoning=_get(thinking, "includeThoughts") is True,
            prompt_chars=chars + len(system_text or ""),
        )

    def completion_id(self) -> str:
        return secrets.token_urlsafe(16)  # Gemini's responseId

    def completion_json(self, c: Completion) -> dict[str, Any]:
        parts: list[dict[str, Any]] = []
        if c.reasoning:
            parts.append({"text": c.reasoning, "thought": True})
        if c.content:
            parts.append({"text": c.content})
        parts += _call_parts(c)
        finish = _finish_reason(c)
        candidate: dict[str, Any] = {}
        if parts:
            candidate["content"] = {"parts": parts, "role": "model"}
        candidate["finishReason"] = finish
        if finish in ("SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII"):
            candidate["safetyRatings"] = _ratings("HARM_CATEGORY_DANGEROUS_CONTENT")
        candidate["index"] = 0
        out: dict[str, Any] = {"candidates": [candidate]}
        if (usage := usage_metadata(c)) is not None:
            out["usageMetadata"] = usage
        out["modelVersion"] = c.model
        out["responseId"] = c.id
        return out

    def frames(self, c: Completion) -> Frames:
        return _Events(c)

    def error_body(self, status: int, message: str | None = None, param: str | None = None) -> Any:
        # ``param`` carries the ErrorInfo reason (check_auth's API_KEY_INVALID): Gemini names no field.
        return error_body(status, message, reason=param)

    def check_auth(self, request: web.Request, api_key: str) -> WireError | None:
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not key:
            return WireError(
                403,
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API.",
            )
        if key != api_key:
            return WireError(400, "API key not valid. Please pass a valid API key.", "API_KEY_INVALID")
        return None

    def response_headers(self, c: Completion) -> dict[str, str]:
        return {"server-timing": "gfet4t7; dur=1", "vary": "Origin, X-Origin, Referer"}


class FakeGemini(FakeServer):
    """A fake Gemini API over real HTTP on loopback; its ``base_url`` ends in ``/v1beta``."""

    wire: ClassVar[Wire] = GeminiWire()

    @classmethod
    def run_in_thread(cls, **kwargs: Any) -> FakeGeminiThread:
        """Start a fake on its own event loop in a daemon thread (for synchronous clients)."""
        return FakeGeminiThread(cls(**kwargs))


class FakeGeminiThread(FakeThread[FakeGemini]):
    """A FakeGemini served from a daemon thread with its own event loop."""
