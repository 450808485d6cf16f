"""The Response object of OpenAI's Responses API, built from an OpenRouter chat completion.

Shared by the JSON answer (`render`) and the stream (formats/responses_stream.py), whose lifecycle
events carry the same object.
"""

from __future__ import annotations

import time
from typing import Any

# Internal error types (metadata.error_type) -> the Responses error `code` set (behaviors §1.9).
ERROR_CODES = {
    "rate_limit_exceeded": "rate_limit_exceeded",
    "context_length_exceeded": "invalid_prompt",
    "invalid_request": "invalid_prompt",
    "invalid_prompt": "invalid_prompt",
    "content_policy_violation": "image_content_policy_violation",
}
# The top-level `error_type` a failed response may carry (the OpenAPI ApiErrorType).
ERROR_TYPES = frozenset(
    {
        "context_length_exceeded", "max_tokens_exceeded", "token_limit_exceeded", "string_too_long",
        "authentication", "permission_denied", "payment_required", "rate_limit_exceeded",
        "provider_overloaded", "provider_unavailable", "invalid_request", "invalid_prompt", "not_found",
        "precondition_failed", "payload_too_large", "unprocessable", "content_policy_violation", "refusal",
        "invalid_image", "image_too_large", "image_too_small", "unsupported_image_format",
        "image_not_found", "image_download_failed", "server", "timeout", "unmapped",
    }
)  # fmt: skip
# Chat finish reasons that end a response short of done -> incomplete_details.reason.
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}

# What a response echoes when the request's own values are not at hand.
DEFAULT_ECHO: dict[str, Any] = {
    "instructions": None,
    "metadata": None,
    "tools": [],
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "temperature": None,
    "top_p": None,
    "presence_penalty": None,
    "frequency_penalty": None,
    "max_output_tokens": None,
}


def response_id(gen_id: str) -> str:
    """`resp_` and the generation id's own part: `gen-1733-Ab` answers as `resp_1733-Ab`."""
    return "resp_" + gen_id.removeprefix("gen-")


def response(gen_id: str, created: int, model: str, status: str, echo: dict[str, Any] | None) -> dict[str, Any]:
    """A Response object without its output and usage (absent, not null, until known: the OpenAPI
    base schema types it as an object)."""
    body: dict[str, Any] = {
        "id": response_id(gen_id),
        "object": "response",
        "created_at": created,
        "completed_at": None,
        "status": status,
        "model": model,
        "output": [],
        "error": None,
        "incomplete_details": None,
    }
    body.update(echo or DEFAULT_ECHO)
    return body


def finish(body: dict[str, Any], finish_reason: str | None, error: dict[str, Any] | None) -> None:
    """Set a finished response's status (completed, incomplete or failed) and its details."""
    body["completed_at"] = int(time.time())
    if error is not None:
        body["status"] = "failed"
        error_type = (error.get("metadata") or {}).get("error_type") or "server"
        body["error"] = {"code": ERROR_CODES.get(error_type, "server_error"), "message": str(error.get("message"))}
        body["error_type"] = error_type if error_type in ERROR_TYPES else "unmapped"
    elif (reason := INCOMPLETE.get(finish_reason or "")) is not None:
        body["status"] = "incomplete"
        body["incomplete_details"] = {"reason": reason}
    else:
        body["status"] = "completed"


def usage(raw: Any) -> dict[str, Any] | None:
    """OpenRouter's chat usage in the Responses names, cost to the digit (behaviors §5)."""
    if not isinstance(raw, dict):
        return None
    ptd = raw.get("prompt_tokens_details") or {}
    ctd = raw.get("completion_tokens_details") or {}
    prompt, completion = raw.get("prompt_tokens") or 0, raw.get("completion_tokens") or 0
    out: dict[str, Any] = {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": ptd.get("cached_tokens") or 0,
            "cache_write_tokens": ptd.get("cache_write_tokens") or 0,
        },
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": ctd.get("reasoning_tokens") or 0},
        "total_tokens": raw.get("total_tokens") or prompt + completion,
    }
    if "cost" in raw:
        out["cost"] = raw["cost"]
        out["is_byok"] = bool(raw.get("is_byok"))
    details = raw.get("cost_details")
    if isinstance(details, dict):
        out["cost_details"] = {
            "upstream_inference_cost": details.get("upstream_inference_cost"),
            "upstream_inference_input_cost": details.get("upstream_inference_prompt_cost") or 0,
            "upstream_inference_output_cost": details.get("upstream_inference_completions_cost") or 0,
        }
    if (server_tools := raw.get("server_tool_use_details")) is not None:  # what the gateway's tools ran
        out["server_tool_use_details"] = server_tools
    return out


def item_id(prefix: str, gen_id: str, n: int) -> str:
    return f"{prefix}_{gen_id.removeprefix('gen-')}_{n}"


def text_part(text: str, annotations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": annotations or [], "logprobs": []}


def url_citations(annotations: Any) -> list[dict[str, Any]]:
    """A chat message's `url_citation` annotations as the Responses API's (flat, OpenAI's shape)."""
    out = []
    for a in annotations if isinstance(annotations, list) else ():
        cite = a.get("url_citation") if isinstance(a, dict) and a.get("type") == "url_citation" else None
        if isinstance(cite, dict) and isinstance(cite.get("url"), str):
            found = {
                "type": "url_citation",
                "url": cite["url"],
                "title": str(cite.get("title") or ""),
                "start_index": int(cite.get("start_index") or 0),
                "end_index": int(cite.get("end_index") or 0),
            }
            if isinstance(cite.get("content"), str):  # OpenRouter's URLCitation carries the snippet too
                found["content"] = cite["content"]
            out.append(found)
    return out


def function_call(
    item: str, call_id: str, name: str, arguments: str, status: str, namespaced: dict[str, tuple[str, str]]
) -> dict[str, Any]:
    out = {"type": "function_call", "id": item, "call_id": call_id, "name": name, "arguments": arguments,
           "status": status}  # fmt: skip
    if name in namespaced:  # offered as a member of a namespace tool: answered the way it was offered
        out["namespace"], out["name"] = namespaced[name]
    return out


class ReasoningItem:
    """One reasoning output item, filled from reasoning_details in order (whole or streamed)."""

    __slots__ = ("encrypted", "format", "id", "signature", "source_id", "summary", "text")

    def __init__(self, item: str, source_id: str | None = None) -> None:
        self.id = item
        self.source_id = source_id  # the upstream's id of the reasoning it holds
        self.summary: list[str] = []
        self.text: list[str] | None = None
        self.signature: str | None = None
        self.encrypted: str | None = None
        self.format: str | None = None

    @classmethod
    def starting(cls, detail: dict[str, Any], gen_id: str, before: list[ReasoningItem]) -> ReasoningItem:
        """The item a detail starts: named by the upstream's id when it has one of its own (so that
        the client sends back what the upstream knows), else by ours."""
        source = detail.get("id")
        if isinstance(source, str) and source and all(r.id != source for r in before):
            return cls(source, source)
        return cls(item_id("rs", gen_id, len(before)), source if isinstance(source, str) else None)

    def takes(self, detail: dict[str, Any]) -> bool:
        """Whether the detail continues this item rather than starting the next one."""
        source = detail.get("id")
        # A detail with an id of its own is its own item, even after one without: Gemini's thought
        # signature is named by its function call's id, and goes back only as an item of that id.
        if source is not None and source != self.source_id:
            return False
        kind = detail.get("type")
        if kind == "reasoning.text":
            return self.signature is None and self.encrypted is None
        if kind == "reasoning.encrypted":
            return self.encrypted is None
        return self.text is None and self.encrypted is None

    def add(self, detail: dict[str, Any]) -> None:
        """Whole details (a completion's); a stream adds its fragments itself."""
        kind = detail.get("type")
        if kind == "reasoning.summary":
            self.summary.append(str(detail.get("summary") or ""))
        elif kind == "reasoning.text":
            if self.text is None:
                self.text = []
            self.text.append(str(detail.get("text") or ""))
        elif kind == "reasoning.encrypted":
            self.encrypted = detail.get("data")
        self.note(detail)

    def note(self, detail: dict[str, Any]) -> None:
        if detail.get("signature"):
            self.signature = detail["signature"]
        if detail.get("format"):
            self.format = detail["format"]
        if self.source_id is None and isinstance(detail.get("id"), str):
            self.source_id = detail["id"]

    def item(self, status: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": "reasoning",
            "id": self.id,
            "summary": [{"type": "summary_text", "text": s} for s in self.summary],
            "status": status,
        }
        if self.text is not None:
            out["content"] = [{"type": "reasoning_text", "text": "".join(self.text)}]
        if self.encrypted is not None:
            out["encrypted_content"] = self.encrypted
        if self.signature is not None:
            out["signature"] = self.signature
        if self.format is not None:
            out["format"] = self.format
        return out


def render(
    completion: dict[str, Any], echo: dict[str, Any] | None, namespaced: dict[str, tuple[str, str]]
) -> dict[str, Any]:
    gen_id = str(completion.get("id") or "")
    choice = (completion.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    body = response(gen_id, int(completion.get("created") or time.time()), str(completion.get("model") or ""),
                    "in_progress", echo)  # fmt: skip
    finish(body, choice.get("finish_reason"), choice.get("error"))
    status = "completed" if body["status"] == "completed" else "incomplete"
    output = [r.item(status) for r in _reasoning(message, gen_id)]
    if items := completion.get("server_tool_items"):  # what the gateway's server tools ran, first
        from omnirouter.servertools.render import responses_item

        output = [*(responses_item(item) for item in items), *output]
    output += _answer(message, gen_id, len(output), status, namespaced)
    body["output"] = output
    if (used := usage(completion.get("usage"))) is not None:
        body["usage"] = used
    if "openrouter_metadata" in completion:
        body["openrouter_metadata"] = completion["openrouter_metadata"]
    return body


def _reasoning(message: dict[str, Any], gen_id: str) -> list[ReasoningItem]:
    """The reasoning items: one per reasoning block of reasoning_details, else one of the text."""
    details = message.get("reasoning_details")
    items: list[ReasoningItem] = []
    if isinstance(details, list) and details:
        for detail in details:
            if isinstance(detail, dict):
                if not items or not items[-1].takes(detail):
                    items.append(ReasoningItem.starting(detail, gen_id, items))
                items[-1].add(detail)
    elif isinstance(message.get("reasoning"), str) and message["reasoning"]:
        items.append(ReasoningItem(item_id("rs", gen_id, 0)))
        items[0].text = [message["reasoning"]]
    return items


def _answer(
    message: dict[str, Any], gen_id: str, n: int, status: str, namespaced: dict[str, tuple[str, str]]
) -> list[dict[str, Any]]:
    """The message item (when there is text or a refusal, or nothing else), then the function calls."""
    content = message.get("content")
    text = content if isinstance(content, str) else _text_of(content)
    calls = message.get("tool_calls") or []
    refusal = message.get("refusal")
    out: list[dict[str, Any]] = []
    if text or refusal or not calls:
        parts = [text_part(text, url_citations(message.get("annotations")))] if text or not refusal else []
        if refusal:
            parts.append({"type": "refusal", "refusal": refusal})
        out.append({"type": "message", "id": item_id("msg", gen_id, n), "role": "assistant", "status": status,
                    "content": parts})  # fmt: skip
    for i, call in enumerate(calls):
        fn = call.get("function") or {}
        call_id = str(call.get("id") or item_id("call", gen_id, i))
        name, arguments = str(fn.get("name") or ""), str(fn.get("arguments") or "")
        out.append(function_call(item_id("fc", gen_id, i), call_id, name, arguments, status, namespaced))
    return out


def _text_of(content: Any) -> str:
    """Text parts of a content list (some upstreams answer with parts)."""
    if not isinstance(content, list):
        return ""
    return "".join(p.get("text") or "" for p in content if isinstance(p, dict) and p.get("type") == "text")
