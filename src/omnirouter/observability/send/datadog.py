"""Datadog LLM Observability: POST <url>/api/intake/llm-obs/v1/trace/spans with DD-API-KEY, an `llm`
span per generation under the destination's ml_app."""

from __future__ import annotations

from typing import Any

import aiohttp

from omnirouter.observability.events import Event, Target, messages
from omnirouter.observability.send import json_body, request, with_headers

PATH = "/api/intake/llm-obs/v1/trace/spans"


def span(target: Target, e: Event) -> dict[str, Any]:
    r, usage = e.row, e.usage()
    meta: dict[str, Any] = {"kind": "llm", "model_name": r.get("model"), "model_provider": e.provider,
                            "metadata": e.metadata(target)}  # fmt: skip
    if e.has_content:
        meta["input"] = {"messages": messages(e.input, "user")}
        meta["output"] = {"messages": messages(e.output, "assistant")}
    metrics: dict[str, Any] = {"input_tokens": usage["prompt_tokens"], "output_tokens": usage["completion_tokens"],
                               "total_tokens": usage["total_tokens"]}  # fmt: skip
    if target.broadcast_generation_cost:
        metrics["total_cost"] = r.get("total_cost")
    out: dict[str, Any] = {
        "parent_id": "undefined",
        "trace_id": e.trace_id().hex(),
        "span_id": str(int.from_bytes(e.span_id()) >> 1),  # a decimal 63-bit id, as Datadog's own spans
        "name": f"{e.operation} {r.get('model')}",
        "start_ns": int(e.start.timestamp() * 1_000_000_000),
        "duration": (r.get("latency_ms") or 0) * 1_000_000,
        "status": "error" if r.get("error") is not None else "ok",
        "meta": meta,
        "metrics": metrics,
        "tags": [f"model:{r.get('model')}", f"provider:{e.provider}"],
    }
    if r.get("session_id"):
        out["session_id"] = r["session_id"]
    return out


async def send(session: aiohttp.ClientSession, target: Target, events: list[Event]) -> None:
    c = target.config
    body = {"data": {"type": "span", "attributes": {"ml_app": c["mlApp"], "tags": ["source:omnirouter"],
                                                    "spans": [span(target, e) for e in events]}}}  # fmt: skip
    headers = with_headers(target, {"Content-Type": "application/json", "DD-API-KEY": c["apiKey"]})
    await request(session, "POST", c["url"].rstrip("/") + PATH, json_body(body), headers)
