"""Sticky routing for prompt-cache locality (behaviors §8.5).

After a request that used caching, the same conversation goes to the same endpoint for 10 minutes
(each success renews it). The conversation is the request's `session_id` (or `x-session-id`, or
`prompt_cache_key`), which sticks from its first success; or else a hash of its first system and
first other message, which sticks only once the provider reported a cache hit. Only endpoints
whose cache reads are cheaper than their prompts stick, never with `provider.order`, and an
endpoint that fails is forgotten so the next request re-routes.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from omnirouter.catalog.types import Endpoint

TTL_SECONDS = 600.0
MAX_SESSIONS = 100_000


def conversation_key(messages: list[Any] | None) -> str | None:
    """A hash of the first system/developer message and the first other message."""
    if not messages:
        return None
    system = next((m for m in messages if isinstance(m, dict) and m.get("role") in ("system", "developer")), None)
    first = next((m for m in messages if isinstance(m, dict) and m.get("role") not in ("system", "developer")), None)
    digest = hashlib.sha256(repr((system and system.get("content"), first and first.get("content"))).encode())
    return "conv:" + digest.hexdigest()[:32]


def caches(ep: Endpoint) -> bool:
    read = ep.pricing.input_cache_read
    return read is not None and read < ep.pricing.prompt


class Sticky:
    def __init__(self, ttl: float = TTL_SECONDS) -> None:
        self.ttl = ttl
        self._routes: dict[str, tuple[str, str, float]] = {}

    def __bool__(self) -> bool:
        return bool(self._routes)

    def get(self, key: str | None) -> tuple[str, str] | None:
        if key is None:
            return None
        route = self._routes.get(key)
        if route is None:
            return None
        if route[2] < time.monotonic():
            del self._routes[key]
            return None
        return route[0], route[1]

    def remember(self, key: str, model_id: str, slug: str) -> None:
        if len(self._routes) >= MAX_SESSIONS:  # bounded: drop the oldest entries
            for old in list(self._routes)[: MAX_SESSIONS // 10]:
                del self._routes[old]
        self._routes.pop(key, None)
        self._routes[key] = (model_id, slug, time.monotonic() + self.ttl)

    def forget(self, key: str | None) -> None:
        if key is not None:
            self._routes.pop(key, None)
