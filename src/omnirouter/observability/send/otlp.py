"""OTLP/HTTP (protobuf) traces to an OpenTelemetry collector: one CLIENT span per generation, with
the OpenTelemetry GenAI semantic conventions' attributes (gen_ai.*)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from omnirouter.observability.events import Event, Target
from omnirouter.observability.send import request, with_headers

TRACES_PATH = "/v1/traces"


def _value(v: Any) -> AnyValue:
    if isinstance(v, bool):
        return AnyValue(bool_value=v)
    if isinstance(v, int):
        return AnyValue(int_value=v)
    if isinstance(v, list):
        return AnyValue(array_value=ArrayValue(values=[_value(x) for x in v]))
    return AnyValue(string_value=str(v))


def _attributes(values: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=_value(v)) for k, v in values.items() if v is not None]


def _nanos(moment: Any) -> int:
    return int(moment.timestamp() * 1_000_000_000)


def span(event: Event, target: Target) -> Span:
    r, usage = event.row, event.usage()
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": event.operation,
        "gen_ai.provider.name": event.provider,
        "gen_ai.system": event.provider,  # the attribute's earlier name, which many backends still read
        "gen_ai.request.model": r.get("model"),
        "gen_ai.response.model": r.get("model"),
        "gen_ai.response.id": event.id,
        "gen_ai.response.finish_reasons": [r["finish_reason"]] if r.get("finish_reason") else None,
        "gen_ai.usage.input_tokens": usage["prompt_tokens"],
        "gen_ai.usage.output_tokens": usage["completion_tokens"],
        "gen_ai.conversation.id": r.get("session_id"),
        "omnirouter.generation_id": event.id,
        "omnirouter.streamed": bool(r.get("streamed")),
    }
    if target.broadcast_generation_cost:  # exact: a decimal string, not a double
        attrs["omnirouter.cost.total"] = str(r.get("total_cost"))
        attrs["omnirouter.cost.is_byok"] = bool(r.get("is_byok"))
    if target.broadcast_generation_identity:
        attrs["user.id"] = r.get("external_user")
        attrs["omnirouter.api_key.name"] = event.key_name
    if target.broadcast_generation_request_context:
        attrs["http.request.header.referer"] = r.get("http_referer")
        attrs["user_agent.original"] = r.get("user_agent")
    if event.has_content:
        attrs["gen_ai.input.messages"] = json.dumps(event.input)
        attrs["gen_ai.output.messages"] = json.dumps(event.output)
    failed = r.get("error") is not None
    return Span(
        trace_id=event.trace_id(),
        span_id=event.span_id(),
        name=f"{event.operation} {r.get('model')}",
        kind=Span.SPAN_KIND_CLIENT,
        start_time_unix_nano=_nanos(event.start),
        end_time_unix_nano=_nanos(event.end),
        attributes=_attributes(attrs),
        status=Status(code=Status.STATUS_CODE_ERROR if failed else Status.STATUS_CODE_OK),
    )


def export_request(target: Target, events: list[Event]) -> ExportTraceServiceRequest:
    resource = Resource(attributes=_attributes({"service.name": "omnirouter"}))
    scope = InstrumentationScope(name="omnirouter.observability")
    spans = [span(e, target) for e in events]
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(resource=resource, scope_spans=[ScopeSpans(scope=scope, spans=spans)])]
    )


def url_of(endpoint: str) -> str:
    """The collector's base URL gets the traces path, as OTEL_EXPORTER_OTLP_ENDPOINT does."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith(TRACES_PATH) else endpoint + TRACES_PATH


async def send(session: aiohttp.ClientSession, target: Target, events: list[Event]) -> None:
    body = export_request(target, events).SerializeToString()
    headers = with_headers(target, {"Content-Type": "application/x-protobuf"})
    await request(session, "POST", url_of(target.config["endpoint"]), body, headers)
