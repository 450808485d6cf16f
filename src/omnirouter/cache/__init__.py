"""The response cache (beyond OpenRouter, resembling its `X-OpenRouter-Cache`): an exact-match cache
of answers that a request or its preset turns on (cache/policy.py).

A request is keyed by its client format, its key's workspace and its internal body after presets,
defaults and guardrails (cache/entry.py). A hit answers without any upstream and without holding
money, under a new generation id, streamed when the request streams whatever way the answer was
first produced; billable usage is 0, the cost `response_cache_price` (0 by default), and the
generation says `cache: hit`. A miss runs as usual and keeps its answer if it completed.

The pipeline asks `start` only for a request that names one of policy.HEADERS or BODY_FIELDS, or
whose key has `response_cache_ttl_seconds`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from omnirouter.cache import entry
from omnirouter.cache.policy import BODY_FIELDS, HEADERS, Policy, decide
from omnirouter.cache.store import MemoryStore, RedisStore, Store
from omnirouter.jsonio import decode

if TYPE_CHECKING:
    from omnirouter.governance.keys import KeyRecord
    from omnirouter.pipeline.call import Call
    from omnirouter.pipeline.stream import InferenceStream
    from omnirouter.state import AppState

__all__ = ["BODY_FIELDS", "HEADERS", "CacheRequest", "ResponseCache", "start"]


class ResponseCache:
    """One per worker: the store (shared through Redis when the instance has one)."""

    def __init__(self, st: AppState) -> None:
        s = st.settings
        self.store: Store = RedisStore(st.redis) if st.redis is not None else MemoryStore(s.response_cache_max_bytes)
        self.default_ttl = s.response_cache_ttl_seconds
        self.max_ttl = s.response_cache_max_ttl_seconds


def start(st: AppState, key: KeyRecord, headers: Mapping[str, str], body: dict[str, Any]) -> CacheRequest | None:
    """The request's use of the cache, or None. Takes the preset's cache fields out of `body`."""
    cache = st.response_cache
    if cache is None:
        cache = st.response_cache = ResponseCache(st)
    policy = decide(headers, body, key.response_cache_ttl_seconds, cache.default_ttl, cache.max_ttl)
    return CacheRequest(cache.store, policy) if policy is not None else None


class CacheRequest:
    """One request's use of the cache: its key, the answer found (a hit), what a stream collected."""

    __slots__ = ("collected", "hit", "key", "policy", "store")

    def __init__(self, store: Store, policy: Policy) -> None:
        self.store = store
        self.policy = policy
        self.key = ""
        self.hit: dict[str, Any] | None = None
        self.collected: entry.Collected | None = None

    async def lookup(self, fmt: str, workspace: str, body: dict[str, Any]) -> bool | None:
        """Whether a stored answer was found (then in `hit`); None when this request is not cached."""
        key = entry.digest(fmt, workspace, body)
        if key is None:
            return None
        self.key = key
        if self.policy.clear:
            await self.store.delete(key)
            return False
        raw = await self.store.get(key)
        if raw is None:
            return False
        try:
            self.hit = decode(raw)
        except Exception:  # unreadable (written by another version): a miss that replaces it
            return False
        return True

    def headers(self) -> dict[str, str]:
        """Ours (`X-Omnirouter-Cache`) and OpenRouter's (behaviors §7.2) answer headers."""
        if (hit := self.hit) is None:
            return {
                "X-Omnirouter-Cache": "miss",
                "X-OpenRouter-Cache-Status": "MISS",
                "X-OpenRouter-Cache-TTL": str(self.policy.ttl),
            }
        age = max(0, int(time.time() - hit["at"]))
        return {
            "X-Omnirouter-Cache": "hit",
            "X-OpenRouter-Cache-Status": "HIT",
            "X-OpenRouter-Cache-Age": str(age),
            "X-OpenRouter-Cache-TTL": str(max(0, int(hit["ttl"]) - age)),
            "X-OpenRouter-Cache-Source-Id": str(hit["id"]),
        }

    # -- a miss keeps its answer
    async def keep_completion(self, call: Call, completion: dict[str, Any], slug: str) -> None:
        choices = completion.get("choices") or []
        if len(choices) != 1 or not isinstance(message := choices[0].get("message"), dict):
            return
        choice = choices[0]
        await self._put(
            entry.entry(
                call.gen_id,
                self.policy.ttl,
                completion["model"],
                completion["provider"],
                slug,
                message,
                choice.get("finish_reason"),
                choice.get("native_finish_reason"),
            )
        )

    def collect(self, delta: dict[str, Any]) -> None:
        """A streamed delta beyond plain text (InferenceStream._count)."""
        collected = self.collected
        if collected is None:
            collected = self.collected = entry.Collected()
        collected.add(delta)

    async def keep_stream(self, call: Call, stream: InferenceStream, slug: str) -> None:
        """A streamed answer that ended without error: its text, the parts `collect` merged, and the
        annotations the plugins sent in its last content delta."""
        collected = self.collected or entry.Collected()
        if call.plugins is not None and call.plugins.annotations:
            collected.add({"annotations": call.plugins.annotations})
        message = collected.message("".join(stream.text or ()))
        model, provider = stream.prefix["model"], stream.prefix["provider"]
        await self._put(
            entry.entry(
                call.gen_id, self.policy.ttl, model, provider, slug, message, stream.finish, stream.native_finish
            )
        )

    async def _put(self, value: bytes | None) -> None:
        if value is not None and self.key:
            await self.store.put(self.key, value, self.policy.ttl)
