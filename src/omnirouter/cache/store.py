"""Where cached answers live: Redis when the instance has one (shared by every worker and instance,
expired by Redis itself), else each worker's memory, bounded in bytes, least recently used first out."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from omnirouter.cluster import redis as cluster_redis

if TYPE_CHECKING:
    from redis.asyncio import Redis

ENTRY_OVERHEAD = 200  # bytes an in-memory entry holds beside its value and key (tuple, dict slot, str header)


class Store(Protocol):
    async def get(self, key: str) -> bytes | str | None: ...

    async def put(self, key: str, value: bytes, ttl: int) -> None: ...

    async def delete(self, key: str) -> None: ...


class MemoryStore:
    """An LRU of at most `max_bytes`; `clock` is injectable so that tests need not wait out a TTL."""

    def __init__(self, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.clock = clock
        self.entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()  # key -> (expires at, value)
        self.size = 0

    @staticmethod
    def _cost(key: str, value: bytes) -> int:
        return len(key) + len(value) + ENTRY_OVERHEAD

    async def get(self, key: str) -> bytes | None:
        found = self.entries.get(key)
        if found is None:
            return None
        if found[0] <= self.clock():
            await self.delete(key)
            return None
        self.entries.move_to_end(key)
        return found[1]

    async def put(self, key: str, value: bytes, ttl: int) -> None:
        await self.delete(key)
        cost = self._cost(key, value)
        if cost > self.max_bytes:  # larger than the whole store: not kept
            return
        while self.size + cost > self.max_bytes:
            old_key, (_, old) = self.entries.popitem(last=False)
            self.size -= self._cost(old_key, old)
        self.entries[key] = (self.clock() + ttl, value)
        self.size += cost

    async def delete(self, key: str) -> None:
        if (found := self.entries.pop(key, None)) is not None:
            self.size -= self._cost(key, found[1])


class RedisStore:
    """Entries as Redis strings with a TTL (PX). A Redis that cannot be reached makes every request a
    miss that stores nothing, never an error: the cache is an optimisation."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.outage = cluster_redis.Outage("Redis (response cache)", "requests skip the response cache meanwhile")

    @staticmethod
    def name(key: str) -> str:
        return cluster_redis.key(key, "response-cache")  # each entry its own hash slot

    async def get(self, key: str) -> str | None:
        if not self.outage.usable():
            return None
        try:
            value = await self.redis.get(self.name(key))
        except Exception as exc:
            self.outage.failed(exc)
            return None
        self.outage.recovered()
        return value

    async def put(self, key: str, value: bytes, ttl: int) -> None:
        if not self.outage.usable():
            return
        try:
            await self.redis.set(self.name(key), value, px=ttl * 1000)
        except Exception as exc:
            self.outage.failed(exc)

    async def delete(self, key: str) -> None:
        if not self.outage.usable():
            return
        try:
            await self.redis.delete(self.name(key))
        except Exception as exc:
            self.outage.failed(exc)
