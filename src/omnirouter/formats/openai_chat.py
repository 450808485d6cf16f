"""The OpenAI/OpenRouter Chat Completions format: request validation and the upstream body.

The body is decoded once to a dict. `ChatRequest` validates only the fields the gateway acts on
(msgspec.convert, no second JSON parse); everything else is forwarded as sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from omnirouter.errors import GatewayError
from omnirouter.formats.chat_messages import Message, explain
from omnirouter.jsonio import encode

# A price may be a JSON number or a decimal string (the OpenAPI type).
PriceText = Annotated[str, Meta(pattern=r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")]


class MaxPrice(msgspec.Struct, kw_only=True):
    prompt: float | PriceText | None = None
    completion: float | PriceText | None = None
    request: float | PriceText | None = None
    image: float | PriceText | None = None
    audio: float | PriceText | None = None


class SortConfig(msgspec.Struct, kw_only=True):
    by: Literal["price", "throughput", "latency", "exacto"] | None = None
    partition: Literal["model", "none"] | None = None


class Percentiles(msgspec.Struct, kw_only=True):
    """Percentile cutoffs of `preferred_*`; a null one is not set."""

    p50: float | None = None
    p75: float | None = None
    p90: float | None = None
    p99: float | None = None


class ProviderPrefs(msgspec.Struct, kw_only=True):
    order: list[str] | None = None
    allow_fallbacks: bool | None = None
    require_parameters: bool | None = None
    data_collection: Literal["allow", "deny"] | None = None
    zdr: bool | None = None
    enforce_distillable_text: bool | None = None
    only: list[str] | None = None
    ignore: list[str] | None = None
    quantizations: list[str] | None = None
    sort: Literal["price", "throughput", "latency", "exacto"] | SortConfig | None = None
    max_price: MaxPrice | None = None
    preferred_min_throughput: float | Percentiles | None = None
    preferred_max_latency: float | Percentiles | None = None


class ChatRequest(msgspec.Struct, kw_only=True):
    model: str | None = None
    models: list[str] | None = None
    messages: Annotated[list[Message], Meta(min_length=1)] | None = None
    prompt: str | None = None
    stream: bool | None = False
    max_tokens: Annotated[int, Meta(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Meta(ge=1)] | None = None
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    top_k: Annotated[int, Meta(ge=0)] | None = None
    frequency_penalty: Annotated[float, Meta(ge=-2, le=2)] | None = None
    presence_penalty: Annotated[float, Meta(ge=-2, le=2)] | None = None
    repetition_penalty: Annotated[float, Meta(ge=0, le=2)] | None = None
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | None = None
    provider: ProviderPrefs | None = None
    route: Literal["fallback", "sort"] | None = None
    user: str | None = None
    session_id: Annotated[str, Meta(max_length=256)] | None = None
    tools: list[Any] | None = None
    tool_choice: Any = None
    response_format: dict[str, Any] | None = None

    @property
    def completion_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


# The request as the OpenAPI document describes it: what `parse` requires beyond the fields' types.
ChatRequestBody = Annotated[
    ChatRequest,
    Meta(
        extra_json_schema={
            "anyOf": [
                {"required": ["messages"], "properties": {"messages": {"type": "array"}}},
                {"required": ["prompt"], "properties": {"prompt": {"type": "string"}}},
            ]
        }
    ),
]


# Fields that steer the gateway and never go upstream.
CONTROL_FIELDS = frozenset(
    {
        "model",
        "models",
        "route",
        "provider",
        "transforms",
        "plugins",
        "usage",
        "session_id",
        "preset",
        "debug",
        "stream_options",
        "trace",
        "prompt",
    }
)

# Request field -> the name OpenRouter's `supported_parameters` uses for it. Only these can be
# "unsupported"; other unknown fields are provider-specific extras and pass through (behaviors §8.1).
PARAMETER_OF_FIELD = {
    "max_tokens": "max_tokens",
    "max_completion_tokens": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "top_a": "top_a",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "repetition_penalty": "repetition_penalty",
    "seed": "seed",
    "stop": "stop",
    "logit_bias": "logit_bias",
    "logprobs": "logprobs",
    "top_logprobs": "top_logprobs",
    "tools": "tools",
    "tool_choice": "tool_choice",
    "parallel_tool_calls": "parallel_tool_calls",
    "response_format": "response_format",
    "structured_outputs": "structured_outputs",
    "reasoning": "reasoning",
    "reasoning_effort": "reasoning",
    "include_reasoning": "include_reasoning",
    "web_search_options": "web_search_options",
    "verbosity": "verbosity",
}


def parse(body: Any) -> ChatRequest:
    if not isinstance(body, dict):
        raise GatewayError(400, "Request body must be a JSON object")
    try:
        req = msgspec.convert(body, ChatRequest)
    except msgspec.ValidationError as exc:
        if not _integral_floats_to_int(body):
            raise GatewayError(400, f"Invalid request: {explain(str(exc), body)}") from None
        return parse(body)
    if req.messages is None and req.prompt is None:
        raise GatewayError(400, 'Input required: specify "messages" or "prompt"')
    if req.provider is not None and req.provider.max_price is not None:
        check_max_price(req.provider.max_price)
    return req


INTEGER_FIELDS = ("max_tokens", "max_completion_tokens", "top_k", "top_logprobs")


def _integral_floats_to_int(body: dict[str, Any]) -> bool:
    """JSON has one number type, so `max_tokens: 100.0` is the integer 100 (as JSON Schema says), but
    msgspec reads an int field strictly. Rewritten in place (off the hot path: only after a refusal);
    whether anything changed."""
    changed = False
    for name in INTEGER_FIELDS:
        value = body.get(name)
        if isinstance(value, float) and value.is_integer():
            body[name] = int(value)
            changed = True
    return changed


def check_max_price(mp: MaxPrice) -> None:
    """max_price values may be strings (the OpenAPI type); a non-number is the caller's error, not a 500."""
    for name in mp.__struct_fields__:
        value = getattr(mp, name)
        if value is None:
            continue
        try:
            ok = Decimal(str(value)).is_finite()
        except InvalidOperation:
            ok = False
        if not ok:
            raise GatewayError(400, f"Invalid request: provider.max_price.{name} must be a number, got {value!r}")


def requested_parameters(body: dict[str, Any]) -> set[str]:
    """The `supported_parameters` names this request uses (for dropping or `require_parameters`)."""
    params = {PARAMETER_OF_FIELD[k] for k in body if k in PARAMETER_OF_FIELD and body[k] is not None}
    rf = body.get("response_format")
    if isinstance(rf, dict) and rf.get("type") == "json_schema":
        params.add("structured_outputs")
    return params


def dropped_parameters(body: dict[str, Any], supported: list[str] | None) -> list[str]:
    """The request fields upstream_body leaves out for an endpoint that does not support them, in
    request order (null ones request nothing and are not named)."""
    if not supported:
        return []
    allowed = set(supported)
    return [
        k for k, v in body.items() if k in PARAMETER_OF_FIELD and PARAMETER_OF_FIELD[k] not in allowed and v is not None
    ]


def upstream_body(
    body: dict[str, Any], upstream_model: str, supported: list[str] | None, *, stream: bool
) -> dict[str, Any]:
    """The request as the upstream gets it: its model name, our control fields removed, parameters
    it does not support dropped, usage asked for on streams."""
    out: dict[str, Any] = {}
    allowed = set(supported) if supported else None
    for k, v in body.items():
        if k in CONTROL_FIELDS:
            continue
        if allowed is not None and k in PARAMETER_OF_FIELD and PARAMETER_OF_FIELD[k] not in allowed:
            continue
        out[k] = v
    if out.get("messages") is None and isinstance(body.get("prompt"), str):  # absent, or null beside a prompt
        out["messages"] = [{"role": "user", "content": body["prompt"]}]
    if isinstance(out.get("user"), str):  # an end-user id is hashed before it leaves (behaviors §7.1)
        out["user"] = hashlib.sha256(out["user"].encode()).hexdigest()[:32]
    out["model"] = upstream_model
    if stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    else:
        out.pop("stream", None)
    return out


FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "error": "error",
    "function_call": "tool_calls",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",  # Anthropic's safety stop
    "model_context_window_exceeded": "length",  # Anthropic: the context window, not max_tokens, ran out
    "eos": "stop",
}


def normalize_finish(reason: Any) -> str | None:
    if reason is None or reason == "":
        return None
    return FINISH_REASONS.get(str(reason), "stop")


class ChatEncoder:
    """Chat's stream is the internal stream: each chunk is one `data:` event, as it is."""

    __slots__ = ()

    @staticmethod
    def chunk(chunk: dict[str, Any]) -> bytes:
        return b"data: " + encode(chunk) + b"\n\n"

    @staticmethod
    def done() -> bytes:
        return b"data: [DONE]\n\n"


class ChatFormat:
    """OpenRouter's Chat Completions: the internal form itself, so nothing is translated."""

    name = "chat"
    native_api = "openai"
    _encoder = ChatEncoder()

    def parse(self, body: Any, headers: Mapping[str, str]) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise GatewayError(400, "Request body must be a JSON object")
        return body

    def render(self, completion: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        return completion

    def encoder(self, request: dict[str, Any]) -> ChatEncoder:
        return self._encoder

    def error(self, err: GatewayError) -> tuple[int, dict[str, Any]]:
        return err.status, err.body()


CHAT = ChatFormat()
