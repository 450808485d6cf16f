"""OpenTelemetry traces of the gateway itself: request -> plan -> attempts -> settle, one trace per
request, exported over OTLP/HTTP. Off unless an endpoint is configured.

Nothing runs on the request path: the spans are built after the fact, once per flush round, from the
timestamps the request already kept (observability/metrics.py Timing) and its generation row, and
the SDK's batch processor exports them from its own thread. With tracing off, none of this exists.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from omnirouter import __version__

if TYPE_CHECKING:
    from omnirouter.observability.metrics import Observed
    from omnirouter.settings import Settings
    from omnirouter.state import AppState

TRACES_PATH = "/v1/traces"


def endpoint_of(settings: Settings) -> str | None:
    """Where traces go: `otel_endpoint`, else OpenTelemetry's own variables; None: tracing off."""
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    if base := settings.otel_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        base = base.rstrip("/")
        return base if base.endswith(TRACES_PATH) else base + TRACES_PATH
    return os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or None


class Tracing:
    def __init__(self, endpoint: str, service_name: str) -> None:
        resource = Resource.create({"service.name": service_name, "service.version": __version__})
        self.provider = TracerProvider(resource=resource)
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        self.tracer = self.provider.get_tracer("omnirouter", __version__)
        # Monotonic seconds (what requests keep) to the wall clock's nanoseconds (what spans carry).
        self.offset = time.time_ns() - time.monotonic_ns()

    def _ns(self, monotonic: float) -> int:
        return int(monotonic * 1e9) + self.offset

    def observe(self, st: AppState, batch: list[Observed]) -> None:
        names = st.keys.by_hash
        for row, timing in batch:
            if timing is not None:
                record = names.get(row["key_hash"])
                self._trace(row, timing, record.name if record is not None else "unknown")

    def _trace(self, row: dict[str, Any], timing: Any, key: str) -> None:
        arrived, starts, first_byte, _first_token, settled = timing
        attempts = row["provider_responses"] or []
        failed = row["finish_reason"] == "error"
        root = self.tracer.start_span(
            f"{row['api_type']} {row['model']}",
            kind=SpanKind.SERVER,
            start_time=self._ns(arrived),
            attributes={
                "omnirouter.generation_id": row["id"],
                "omnirouter.request_id": row["request_id"],
                "omnirouter.api_type": row["api_type"],
                "omnirouter.key": key,
                "omnirouter.streamed": bool(row["streamed"]),
                "omnirouter.cost_usd": str(row["total_cost"]),
                "omnirouter.attempts": len(starts),
                "gen_ai.request.model": row["model"],
                "gen_ai.provider.name": row["provider_name"],
                "gen_ai.usage.input_tokens": row["tokens_prompt"] or 0,
                "gen_ai.usage.output_tokens": row["tokens_completion"] or 0,
                **({"gen_ai.response.finish_reasons": [row["finish_reason"]]} if row["finish_reason"] else {}),
            },
        )
        if failed:
            root.set_status(Status(StatusCode.ERROR, str((row["error"] or {}).get("message") or "error")))
        inside = trace.set_span_in_context(root)
        # plan: auth, decode, resolve, plan and reserve, up to the first upstream attempt.
        plan_end = starts[0] if starts else settled
        self.tracer.start_span("plan", inside, start_time=self._ns(arrived)).end(self._ns(plan_end))
        for n, (a, start) in enumerate(zip(attempts, starts, strict=False)):
            last = n == len(starts) - 1
            end = first_byte if last and first_byte is not None else start + a["latency"] / 1000
            model, _, endpoint = a["endpoint_id"].rpartition("@")
            span = self.tracer.start_span(
                "attempt",
                inside,
                kind=SpanKind.CLIENT,
                start_time=self._ns(start),
                attributes={
                    "omnirouter.attempt": n + 1,
                    "gen_ai.request.model": model,
                    "gen_ai.provider.name": a["provider_name"],
                    "omnirouter.endpoint": endpoint,
                    "http.response.status_code": a["status"],
                },
            )
            if a["status"] != 200:
                span.set_status(Status(StatusCode.ERROR, f"upstream answered {a['status']}"))
            span.end(self._ns(end))
        # settle: the answer read (a stream relayed) and its cost charged and recorded.
        settle_start = first_byte if first_byte is not None else settled
        self.tracer.start_span("settle", inside, start_time=self._ns(settle_start)).end(self._ns(settled))
        root.end(self._ns(settled))

    def close(self) -> None:
        self.provider.shutdown()  # exports what is pending
