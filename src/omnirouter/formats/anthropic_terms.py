"""Anthropic's vocabulary for what the pipeline reports: stop reasons, usage, error types.

Shared by the Messages answer (anthropic_messages.py) and its stream (anthropic_stream.py).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import msgspec

ANTHROPIC_FORMAT = "anthropic-claude-v1"  # reasoning_details.format of Claude's reasoning
# Reasoning without a provider of its own ("unknown": the sandbox's, Bedrock's non-Claude models').
UNLABELLED = frozenset({None, ANTHROPIC_FORMAT, "unknown"})
# The data of a redacted_thinking block that carries another provider's encrypted reasoning.
FOREIGN = "omnirouter-reasoning:"

# Anthropic's stop reasons, as an Anthropic upstream reports them (native_finish_reason).
STOP_REASONS = frozenset(
    {"end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal", "model_context_window_exceeded"}
)
STOP_OF_FINISH = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}

# OpenRouter's canonical error_type -> Anthropic's error.type (behaviors §1.9).
TYPE_OF_ERROR_TYPE = {
    "authentication": "authentication_error",
    "permission_denied": "permission_error",
    "payment_required": "billing_error",
    "not_found": "not_found_error",
    "image_not_found": "not_found_error",
    "rate_limit_exceeded": "rate_limit_error",
    "provider_overloaded": "overloaded_error",
    "timeout": "timeout_error",
    "provider_unavailable": "api_error",
    "server": "api_error",
    "unmapped": "api_error",
}
TYPE_OF_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    # 413 stays invalid_request_error: Anthropic's `request_too_large` is in neither the SDK's error
    # types nor OpenRouter's schema for this envelope.
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
# When the gateway made no classification of its own: the canonical type a status stands for.
ERROR_TYPE_OF_STATUS = {
    400: "invalid_request",
    401: "authentication",
    402: "payment_required",
    403: "permission_denied",
    404: "not_found",
    408: "timeout",
    413: "payload_too_large",
    422: "unprocessable",
    429: "rate_limit_exceeded",
    500: "server",
    502: "provider_unavailable",
    503: "provider_overloaded",
    504: "timeout",
    529: "provider_overloaded",
}
# OpenRouter's ApiErrorType: the values `error.error_type` may take.
CANONICAL_ERROR_TYPES = frozenset(
    {
        "context_length_exceeded", "max_tokens_exceeded", "token_limit_exceeded", "string_too_long", "authentication",
        "permission_denied", "payment_required", "rate_limit_exceeded", "provider_overloaded", "provider_unavailable",
        "invalid_request", "invalid_prompt", "not_found", "precondition_failed", "payload_too_large", "unprocessable",
        "content_policy_violation", "refusal", "invalid_image", "image_too_large", "image_too_small",
        "unsupported_image_format", "image_not_found", "image_download_failed", "server", "timeout", "unmapped",
    }
)  # fmt: skip


def error_object(status: int, message: str, error_type: str | None) -> dict[str, Any]:
    """Anthropic's `error` object, with OpenRouter's canonical `error_type` beside its `type`."""
    canonical = error_type if error_type in CANONICAL_ERROR_TYPES else ERROR_TYPE_OF_STATUS.get(status)
    kind = TYPE_OF_ERROR_TYPE.get(canonical or "") or TYPE_OF_STATUS.get(status)
    if kind is None:
        kind = "api_error" if status >= 500 else "invalid_request_error"
    error: dict[str, Any] = {"type": kind, "message": message}
    if canonical is not None:
        error["error_type"] = canonical
    return error


def stop_reason(finish: str | None, native: str | None, has_tool_calls: bool) -> str:
    if native in STOP_REASONS:
        return native  # type: ignore[return-value]
    if has_tool_calls and finish in (None, "stop", "tool_calls"):
        return "tool_use"
    return STOP_OF_FINISH.get(finish or "stop", "end_turn")


def usage_block(usage: Mapping[str, Any] | None) -> dict[str, Any]:
    """OpenRouter's usage in Anthropic's terms: `input_tokens` excludes cache reads and writes (the
    internal prompt_tokens includes them, as OpenAI counts), and OpenRouter's cost rides along."""
    usage = usage or {}
    details = usage.get("prompt_tokens_details") or {}
    cached = int(details.get("cached_tokens") or 0)
    written = int(details.get("cache_write_tokens") or 0)
    reasoning = int((usage.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)
    out: dict[str, Any] = {
        "input_tokens": max(0, int(usage.get("prompt_tokens") or 0) - cached - written),
        "output_tokens": int(usage.get("completion_tokens") or 0),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
        "cache_creation": None,
        "inference_geo": None,
        "output_tokens_details": {"thinking_tokens": reasoning} if reasoning else None,
        "server_tool_use": None,
        "service_tier": "standard",
    }
    for name in ("cost", "is_byok", "cost_details"):
        if name in usage:
            out[name] = usage[name]
    if (details := usage.get("server_tool_use_details")) is not None:  # what the gateway's tools ran
        out["server_tool_use"] = {"web_search_requests": details.get("web_search_requests") or 0,
                                  "web_fetch_requests": details.get("web_fetch_requests") or 0}  # fmt: skip
    return out


def redacted_data(detail: Mapping[str, Any]) -> str:
    """The data of the redacted_thinking block an encrypted reasoning detail becomes. Another
    provider's (OpenAI's encrypted items, Gemini's thought signatures) has only that data to live
    in: it goes there wrapped with its format and id, so that sent back it is that provider's again."""
    data = str(detail.get("data") or "")
    if detail.get("format") in UNLABELLED and not detail.get("id"):
        return data
    packed = msgspec.json.encode({"format": detail.get("format"), "id": detail.get("id"), "data": data})
    return FOREIGN + base64.urlsafe_b64encode(packed).decode()


def encrypted_detail(data: str, index: int) -> dict[str, Any]:
    """The reasoning_details entry of a redacted_thinking block a client sent (redacted_data undone)."""
    if data.startswith(FOREIGN):
        try:
            packed = msgspec.json.decode(base64.urlsafe_b64decode(data[len(FOREIGN) :]))
        except (binascii.Error, ValueError, msgspec.DecodeError):
            packed = None
        if isinstance(packed, dict) and isinstance(packed.get("data"), str):
            detail = {"type": "reasoning.encrypted", "data": packed["data"], "format": packed.get("format"),
                      "index": index}  # fmt: skip
            if packed.get("id"):
                detail["id"] = packed["id"]
            return detail
    return {"type": "reasoning.encrypted", "data": data, "format": ANTHROPIC_FORMAT, "index": index}


CITED_TEXT_CHARS = 150  # Anthropic cites at most this much of a search result's text


def web_citations(annotations: Any) -> list[dict[str, Any]]:
    """A chat message's `url_citation` annotations as Anthropic's `web_search_result_location`
    citations of a text block (`encrypted_index`: the result's position, as an opaque string)."""
    out = []
    for n, a in enumerate(annotations if isinstance(annotations, list) else ()):
        cite = a.get("url_citation") if isinstance(a, dict) and a.get("type") == "url_citation" else None
        if isinstance(cite, dict) and isinstance(cite.get("url"), str):
            out.append({
                "type": "web_search_result_location", "url": cite["url"], "title": cite.get("title"),
                "cited_text": str(cite.get("content") or "")[:CITED_TEXT_CHARS],
                "encrypted_index": base64.b64encode(str(n).encode()).decode(),
            })  # fmt: skip
    return out
