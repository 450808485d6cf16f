"""One wire format per destination type: each `send(session, target, events)` delivers a batch or
raises Failed (whose reason names a status or an error's type, never a credential)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from omnirouter.observability.events import Event, Target


class Failed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason[:300]


Sender = Callable[[aiohttp.ClientSession, Target, list[Event]], Awaitable[None]]


async def request(session: aiohttp.ClientSession, method: str, url: str, body: bytes, headers: dict[str, str]) -> bytes:
    """The answer's body of a 2xx; anything else is Failed."""
    try:
        async with session.request(method, url, data=body, headers=headers) as resp:
            answer = await resp.read()
            if resp.status >= 300:
                raise Failed(f"HTTP {resp.status}")
            return answer
    except TimeoutError:
        raise Failed("timed out") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise Failed(type(exc).__name__) from None


def with_headers(target: Target, own: dict[str, str]) -> dict[str, str]:
    """The destination's custom headers, under the format's own (which authenticate and type the body)."""
    return {**(target.config.get("headers") or {}), **own}


def senders() -> dict[str, Sender]:
    from omnirouter.observability.send import datadog, langfuse, langsmith, otlp, s3, webhook

    return {
        "webhook": webhook.send,
        "otel-collector": otlp.send,
        "langfuse": langfuse.send,
        "langsmith": langsmith.send,
        "s3": s3.send,
        "datadog": datadog.send,
    }


def json_body(value: Any) -> bytes:
    from omnirouter.observability.events import ENCODER

    return ENCODER.encode(value)
