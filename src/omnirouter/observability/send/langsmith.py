"""LangSmith's runs API: POST <endpoint>/runs/batch with x-api-key, an `llm` run per generation."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp

from omnirouter.governance.key_service import iso
from omnirouter.observability.events import Event, Target
from omnirouter.observability.send import json_body, request, with_headers

PATH = "/runs/batch"


def run(target: Target, e: Event) -> dict[str, Any]:
    r, usage = e.row, e.usage()
    run_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"omnirouter:{e.id}"))
    metadata = e.metadata(target) | {"usage_metadata": {"input_tokens": usage["prompt_tokens"],
                                                        "output_tokens": usage["completion_tokens"],
                                                        "total_tokens": usage["total_tokens"]}}  # fmt: skip
    if target.broadcast_generation_cost:
        metadata["total_cost"] = r.get("total_cost")
    body: dict[str, Any] = {
        "id": run_id,
        "trace_id": run_id,
        "dotted_order": f"{e.start:%Y%m%dT%H%M%S%fZ}{run_id}",
        "name": f"{e.operation} {r.get('model')}",
        "run_type": "llm",
        "start_time": iso(e.start),
        "end_time": iso(e.end),
        "session_name": target.config.get("project", "main"),
        "inputs": {"messages": e.input} if e.has_content else {},
        "outputs": {"output": e.output} if e.has_content else {},
        "extra": {"metadata": metadata, "invocation_params": {"model": r.get("model")}},
    }
    if r.get("error") is not None:
        body["error"] = str((r["error"] or {}).get("message", "error"))[:500]
    return body


async def send(session: aiohttp.ClientSession, target: Target, events: list[Event]) -> None:
    c = target.config
    own = {"Content-Type": "application/json", "x-api-key": c["apiKey"]}
    if c.get("workspaceId"):
        own["X-Tenant-Id"] = c["workspaceId"]
    body = json_body({"post": [run(target, e) for e in events], "patch": []})
    await request(session, "POST", c["endpoint"].rstrip("/") + PATH, body, with_headers(target, own))
