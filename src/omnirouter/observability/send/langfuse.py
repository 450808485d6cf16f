"""Langfuse's public ingestion API: POST <baseUrl>/api/public/ingestion with basic auth (public key,
secret key) and a batch of events: a trace-create and a generation-create per generation."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import aiohttp

from omnirouter.governance.key_service import iso
from omnirouter.observability.events import Event, Target
from omnirouter.observability.send import json_body, request, with_headers

PATH = "/api/public/ingestion"


def batch(target: Target, events: list[Event]) -> list[dict[str, Any]]:
    out = []
    for e in events:
        r, usage, at = e.row, e.usage(), iso(e.start)
        metadata = e.metadata(target)
        trace: dict[str, Any] = {"id": e.id, "timestamp": at, "name": f"{e.operation} {r.get('model')}",
                                 "sessionId": r.get("session_id"), "metadata": metadata}  # fmt: skip
        generation: dict[str, Any] = {
            "id": e.id,
            "traceId": e.id,
            "name": f"{e.operation} {r.get('model')}",
            "startTime": at,
            "endTime": iso(e.end),
            "model": r.get("model"),
            "usageDetails": {
                "input": usage["prompt_tokens"],
                "output": usage["completion_tokens"],
                "total": usage["total_tokens"],
            },
            "metadata": metadata,
        }
        if target.broadcast_generation_identity and r.get("external_user"):
            trace["userId"] = r["external_user"]
        if target.broadcast_generation_cost:
            generation["costDetails"] = {"total": r.get("total_cost")}
        if e.has_content:
            trace["input"] = generation["input"] = e.input
            trace["output"] = generation["output"] = e.output
        if r.get("error") is not None:
            generation["level"] = "ERROR"
            generation["statusMessage"] = str((r["error"] or {}).get("message", "error"))[:500]
        # Event ids derived from the generation's: a batch retried after a lost answer is deduplicated.
        for kind, body in (("trace-create", trace), ("generation-create", generation)):
            out.append({"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}:{e.id}")), "timestamp": at, "type": kind,
                        "body": body})  # fmt: skip
    return out


async def send(session: aiohttp.ClientSession, target: Target, events: list[Event]) -> None:
    c = target.config
    auth = base64.b64encode(f"{c['publicKey']}:{c['secretKey']}".encode()).decode()
    headers = with_headers(target, {"Content-Type": "application/json", "Authorization": f"Basic {auth}"})
    await request(
        session, "POST", c["baseUrl"].rstrip("/") + PATH, json_body({"batch": batch(target, events)}), headers
    )
