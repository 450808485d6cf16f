"""Webhook: the batch's events as JSON, signed with HMAC-SHA256 under the destination's secret.

`X-Omnirouter-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>`: a receiver
recomputes it with its copy of the secret and rejects a mismatch or an old `t` (replays)."""

from __future__ import annotations

import hashlib
import hmac
import time

import aiohttp

from omnirouter.observability.events import Event, Target
from omnirouter.observability.send import json_body, request, with_headers

SIGNATURE_HEADER = "X-Omnirouter-Signature"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


async def send(session: aiohttp.ClientSession, target: Target, events: list[Event]) -> None:
    body = json_body({"type": "generations", "data": [e.document(target) for e in events]})
    headers = with_headers(
        target,
        {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(target.config["secret"], int(time.time()), body),
        },
    )
    await request(session, target.config.get("method", "POST"), target.config["url"], body, headers)
