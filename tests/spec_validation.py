"""Validate what the server sends against the OpenRouter OpenAPI document.

The document lives in ``../shared/spec/`` beside the checkout, not in the repository, so every
helper here is usable only when it is present: call ``require_spec()`` first (it skips the test
otherwise), or check ``spec_available()``.

    require_spec()
    validate(body, "ChatResult")
    validate_response("sendChatCompletionRequest", body)
    validate_sse("sendChatCompletionRequest", raw_event_stream_text)
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, ValidationError
from jsonschema.exceptions import best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

__all__ = [
    "SPEC_PATH",
    "ValidationError",
    "parse_sse",
    "require_spec",
    "spec_available",
    "validate",
    "validate_response",
    "validate_sse",
]

SPEC_PATH = Path(__file__).resolve().parents[1].parent / "shared" / "spec" / "openrouter-openapi.json"
_SPEC_URI = "urn:omnirouter:openrouter-openapi"


def spec_available() -> bool:
    return SPEC_PATH.is_file()


def require_spec() -> None:
    if not spec_available():
        pytest.skip(
            "../shared/spec/openrouter-openapi.json not found: spec validation needs the shared/ "
            "folder beside the checkout"
        )


@functools.cache
def _document() -> dict[str, Any]:
    # About 1 MB: read it once per process.
    with SPEC_PATH.open(encoding="utf-8") as f:
        doc = json.load(f)
    # Provider names are the hosted service's list; a self-hosted instance names its own providers
    # ("Local vLLM"), and clients treat unknown enum values as open (behaviors §11).
    doc["components"]["schemas"]["ProviderName"].pop("enum", None)
    doc["components"]["schemas"]["ProviderResponse"]["properties"]["provider_name"].pop("enum", None)
    # Likewise the providers a BYOK key may be for: this instance's own (the SDK's enum is open too).
    doc["components"]["schemas"]["BYOKProviderSlug"].pop("enum", None)
    start = doc["components"]["schemas"]["MessagesStartEvent"]["properties"]["message"]
    start["properties"]["provider"].pop("enum", None)
    return doc


@functools.cache
def _registry() -> Registry:
    # The whole document is one resource, so its "#/components/schemas/..." refs resolve in place.
    resource = Resource.from_contents(_document(), default_specification=DRAFT202012)
    return Registry().with_resource(_SPEC_URI, resource)


@functools.cache
def _validator(pointer: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"{_SPEC_URI}#{pointer}"}, registry=_registry())


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _check(pointer: str, instance: object, label: str) -> None:
    error = best_match(_validator(pointer).iter_errors(instance))
    if error is None:
        return
    where = error.json_path
    rule = "/".join(map(str, error.schema_path))
    shown = json.dumps(error.instance, default=str)
    if len(shown) > 300:
        shown = shown[:300] + "..."
    raise ValidationError(
        f"{label}: {error.message} at {where} (schema {rule}); value: {shown}",
        path=error.path,
        schema_path=error.schema_path,
    )


def validate(instance: object, schema_name: str) -> None:
    """Validate against ``#/components/schemas/<schema_name>``; raise ValidationError if invalid."""
    if schema_name not in _document().get("components", {}).get("schemas", {}):
        raise KeyError(f"no schema named {schema_name!r} in {SPEC_PATH.name}")
    _check(f"/components/schemas/{_escape(schema_name)}", instance, schema_name)


@functools.cache
def _operation(operation_id: str) -> tuple[str, str]:
    for path, item in _document().get("paths", {}).items():
        for method, op in item.items():
            if isinstance(op, dict) and op.get("operationId") == operation_id:
                return path, method
    raise KeyError(f"no operation with operationId {operation_id!r} in {SPEC_PATH.name}")


def _response_pointer(operation_id: str, status: str, content_type: str) -> str:
    path, method = _operation(operation_id)
    responses = _document()["paths"][path][method].get("responses", {})
    if status not in responses:
        raise KeyError(f"{operation_id} documents no {status} response (has {sorted(responses)})")
    content = responses[status].get("content", {})
    if content_type not in content or "schema" not in content[content_type]:
        raise KeyError(f"{operation_id} {status} has no {content_type} schema (has {sorted(content)})")
    return "/" + "/".join(
        _escape(t) for t in ("paths", path, method, "responses", status, "content", content_type, "schema")
    )


def validate_response(
    operation_id: str, instance: object, status: str = "200", content_type: str = "application/json"
) -> None:
    """Validate against the schema the operation documents for ``status`` and ``content_type``.

    For ``text/event-stream`` the documented schema is one event, ``{"data": ..., "event"?: ...}``;
    ``validate_sse`` builds those from a raw stream.
    """
    pointer = _response_pointer(operation_id, str(status), content_type)
    _check(pointer, instance, f"{operation_id} {status} {content_type}")


def parse_sse(raw: str | bytes) -> list[dict[str, Any]]:
    """Split an SSE body into events: ``{"data": <str>, "event"?: <str>}``; comments are dropped."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    events: list[dict[str, Any]] = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        data: list[str] = []
        event: dict[str, Any] = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            elif name == "event":
                event["event"] = value
        if data:
            event["data"] = "\n".join(data)
            events.append(event)
    return events


def validate_sse(
    operation_id: str, raw: str | bytes, status: str = "200", require_done: bool = True
) -> list[dict[str, Any]]:
    """Validate every event of a raw SSE body against the operation's event schema.

    Returns the events with ``data`` parsed as JSON (the sentinel excluded). With ``require_done``
    the stream must end with the documented sentinel (``data: [DONE]``).
    """
    pointer = _response_pointer(operation_id, str(status), "text/event-stream")
    path, method = _operation(operation_id)
    media = _document()["paths"][path][method]["responses"][str(status)]["content"]["text/event-stream"]
    sentinel = media.get("x-speakeasy-sse-sentinel")
    events = parse_sse(raw)
    if require_done and sentinel and (not events or events[-1]["data"] != sentinel):
        raise ValidationError(f"{operation_id}: stream does not end with data: {sentinel}")
    parsed: list[dict[str, Any]] = []
    for index, event in enumerate(events):
        if sentinel and event["data"] == sentinel:
            continue
        try:
            payload = {**event, "data": json.loads(event["data"])}
        except json.JSONDecodeError as exc:
            snippet = event["data"][:200]
            raise ValidationError(f"{operation_id}: event {index} is not JSON: {snippet!r}") from exc
        _check(pointer, payload, f"{operation_id} event {index}")
        parsed.append(payload)
    return parsed
