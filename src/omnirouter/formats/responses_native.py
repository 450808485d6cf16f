"""/responses passed through to an OpenAI Responses upstream (pipeline/attempt.py, Passthrough).

The client's body goes upstream as it came, less the gateway's own fields and stateless
(`store: false`, as every /responses request here is); the upstream's events come back as it sent
them (the same `data:` bytes and sequence numbers), except the ones that carry the gateway's facts:
response.created and response.in_progress name the generation and the model that answered, and the
upstream's last event (response.completed or response.incomplete) is held until the stream has
settled, to go out with OpenRouter's cost in its usage. An error after the first event is a
response.failed event numbered after the last one relayed.
"""

from __future__ import annotations

import hashlib
from typing import Any

from omnirouter.formats import responses_output as out
from omnirouter.formats.anthropic_native import GATEWAY_FIELDS
from omnirouter.formats.responses_stream import DONE
from omnirouter.jsonio import encode
from omnirouter.providers.responses_request import effort_of

COST_FIELDS = ("cost", "is_byok", "cost_details")
STARTED = frozenset({b"response.created", b"response.in_progress", b"response.queued"})
FINAL = frozenset({b"response.completed", b"response.incomplete"})


def _with_required(response: dict[str, Any]) -> dict[str, Any]:
    """The fields OpenRouter's Response object requires that OpenAI's may leave out (the penalties);
    usage is absent until known, as OpenRouter types it an object (OpenAI sends null)."""
    if "usage" in response and response["usage"] is None:
        del response["usage"]
    for name, value in out.DEFAULT_ECHO.items():
        response.setdefault(name, value)
    for name in ("completed_at", "error", "incomplete_details"):
        response.setdefault(name, None)
    return response


def _event(name: bytes, payload: dict[str, Any]) -> bytes:
    return b"event: " + name + b"\ndata: " + encode(payload) + b"\n\n"


def native_request(client: dict[str, Any], upstream_model: str, stream: bool) -> dict[str, Any]:
    """The body an OpenAI Responses upstream gets: the client's, with its model name and stream flag."""
    body = {k: v for k, v in client.items() if k not in GATEWAY_FIELDS}
    body["model"] = upstream_model
    body["store"] = False  # stateless, as /responses is here: nothing kept upstream either
    if stream:
        body["stream"] = True
    else:
        body.pop("stream", None)
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and (reasoning.keys() - {"effort", "summary"} or reasoning.get("effort") == "max"):
        body["reasoning"] = _openai_reasoning(reasoning, body.get("max_output_tokens"))
    for name in ("user", "safety_identifier"):
        # An end-user id is hashed before it leaves, as on every other path (behaviors §7.1).
        if isinstance(value := body.get(name), str):
            body[name] = hashlib.sha256(value.encode()).hexdigest()[:32]
    return body


def _openai_reasoning(reasoning: dict[str, Any], limit: Any) -> dict[str, Any]:
    """OpenRouter's reasoning extensions (a `max_tokens` budget, `enabled`, `exclude`, effort `max`)
    in the terms OpenAI takes, {effort, summary}: it refuses the others."""
    result = {k: v for k, v in reasoning.items() if k in ("effort", "summary")}
    if result.get("effort") == "max":
        result["effort"] = "xhigh"
    if reasoning.get("enabled") is False:
        result["effort"] = "none"
    elif "effort" not in result and isinstance(budget := reasoning.get("max_tokens"), int):
        result["effort"] = effort_of(budget, limit)
    if reasoning.get("exclude"):
        result.pop("summary", None)  # (the reasoning is still billed, only not shown)
    return result


def with_cost(usage: Any, completion_usage: dict[str, Any] | None) -> dict[str, Any]:
    """The upstream's usage, with OpenRouter's cost beside its token counts (in the Responses names
    the translated answer uses)."""
    result = dict(usage) if isinstance(usage, dict) else {}
    ours = out.usage(completion_usage) or {}
    for name in COST_FIELDS:
        if name in ours:
            result[name] = ours[name]
    return result


def render_native(answer: dict[str, Any], completion: dict[str, Any]) -> dict[str, Any]:
    """The upstream's Response as it came, naming the generation and the model, carrying its cost."""
    result = dict(answer)
    result["id"] = out.response_id(str(completion.get("id") or ""))
    result["model"] = completion.get("model")
    result["usage"] = with_cost(answer.get("usage"), completion.get("usage"))
    if "openrouter_metadata" in completion:
        result["openrouter_metadata"] = completion["openrouter_metadata"]
    return _with_required(result)


class NativeResponsesEncoder:
    """Relays an OpenAI Responses upstream's events. Items are the adapter's (event type, data bytes,
    decoded event)."""

    __slots__ = ("ended", "failed", "final", "metadata", "response", "seq")

    def __init__(self) -> None:
        self.final: tuple[bytes, dict[str, Any]] | None = None  # the upstream's last event, held for the cost
        self.response: dict[str, Any] = {}  # the response as response.created named it
        self.seq = -1  # the last relayed event's sequence number
        self.ended = False
        self.failed = False
        self.metadata: Any = None

    def native(self, item: tuple[bytes, bytes, dict[str, Any]], prefix: dict[str, Any]) -> bytes:
        name, data, decoded = item
        if isinstance(seq := decoded.get("sequence_number"), int):
            self.seq = seq
        if name in STARTED:
            response = decoded.get("response")
            response = {**(response if isinstance(response, dict) else {}),
                        "id": out.response_id(prefix["id"]), "model": prefix["model"]}  # fmt: skip
            self.response = response
            return _event(name, {**decoded, "response": _with_required(response)})
        if name in FINAL:
            self.final = (name, decoded)
            return b""
        return b"event: " + name + b"\ndata: " + data + b"\n\n"

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        """The pipeline's own chunks: the in-band error, and the last one with usage and cost."""
        if self.failed or self.ended:
            return b""
        if (error := chunk.get("error")) is not None:
            self.failed = True
            response = {**self.response, "output": []}
            out.finish(response, None, error)
            self.seq += 1
            return _event(b"response.failed", {"type": "response.failed", "response": response,
                                               "sequence_number": self.seq})  # fmt: skip
        if "openrouter_metadata" in chunk:
            self.metadata = chunk["openrouter_metadata"]
        if (usage := chunk.get("usage")) is None:
            return b""
        self.ended = True
        if self.final is None:  # (the adapter ends a stream only at its last event; kept safe anyway)
            self.seq += 1
            name = b"response.completed"
            started = {**self.response, "status": "completed"}
            decoded: dict[str, Any] = {"type": "response.completed", "response": started, "sequence_number": self.seq}
        else:
            name, decoded = self.final
        response = dict(decoded.get("response") or {})
        for name_of in ("id", "model"):  # named as response.created named them
            if name_of in self.response:
                response[name_of] = self.response[name_of]
        response["usage"] = with_cost(response.get("usage"), usage)
        if self.metadata is not None:
            response["openrouter_metadata"] = self.metadata
        return _event(name, {**decoded, "response": _with_required(response)})

    def done(self) -> bytes:
        return DONE
