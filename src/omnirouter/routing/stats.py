"""Measured endpoint statistics: time to first token, throughput, uptime and tool-call success.

They feed `sort`, the `preferred_*` rules (over the last 5 minutes, as OpenRouter's do), `:exacto`,
and the endpoints listing (latency and throughput over 30 minutes, uptime over 5 minutes, 30 minutes
and a day). Samples are kept in bounded deques; percentiles are computed on read and cached for a
second, so the request path does dict lookups, not sorts.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ROUTING_WINDOW = 300.0
LISTING_WINDOW = 1800.0
MAX_SAMPLES = 1024
PERCENTILES = ("p50", "p75", "p90", "p99")
_CACHE_SECONDS = 1.0
_BUCKET_SECONDS = 60
_MAX_BUCKETS = 24 * 60  # a day of one-minute uptime buckets

EndpointKey = tuple[str, str]  # (model id, endpoint slug)


def percentiles(values: list[float]) -> dict[str, float]:
    """Nearest-rank percentiles of a non-empty list."""
    ordered = sorted(values)
    n = len(ordered)
    return {p: ordered[max(0, math.ceil(int(p[1:]) / 100 * n) - 1)] for p in PERCENTILES}


@dataclass
class _Series:
    samples: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=MAX_SAMPLES))
    cache: dict[float, tuple[float, dict[str, float] | None]] = field(default_factory=dict)

    def add(self, now: float, value: float) -> None:
        self.samples.append((now, value))
        self.cache.clear()

    def summary(self, now: float, window: float) -> dict[str, float] | None:
        cached = self.cache.get(window)
        if cached is not None and now - cached[0] < _CACHE_SECONDS:
            return cached[1]
        values = [v for t, v in self.samples if now - t <= window]
        result = percentiles(values) if values else None
        self.cache[window] = (now, result)
        return result


@dataclass
class _Outcomes:
    """Successes and failures in one-minute buckets: [minute, ok, failed]."""

    buckets: deque[list[int]] = field(default_factory=lambda: deque(maxlen=_MAX_BUCKETS))

    def add(self, now: float, ok: bool) -> None:
        minute = int(now // _BUCKET_SECONDS)
        if not self.buckets or self.buckets[-1][0] != minute:
            self.buckets.append([minute, 0, 0])
        self.buckets[-1][1 if ok else 2] += 1

    def counts(self, now: float, window: float) -> tuple[int, int]:
        """(succeeded, failed) within the last `window` seconds."""
        first = int((now - window) // _BUCKET_SECONDS)
        ok = failed = 0
        for minute, good, bad in reversed(self.buckets):
            if minute < first:
                break
            ok += good
            failed += bad
        return ok, failed

    def rate(self, now: float, window: float) -> float | None:
        ok, failed = self.counts(now, window)
        return ok / (ok + failed) if ok + failed else None


class EndpointStats:
    def __init__(self) -> None:
        self._latency: dict[EndpointKey, _Series] = {}  # seconds to first token
        self._throughput: dict[EndpointKey, _Series] = {}  # completion tokens per second
        self._uptime: dict[EndpointKey, _Outcomes] = {}
        self._tools: dict[EndpointKey, _Outcomes] = {}

    # -- recording
    def record_success(
        self, key: EndpointKey, *, ttft: float | None, tokens: int, generation_seconds: float | None
    ) -> None:
        now = time.monotonic()
        _entry(self._uptime, key, _Outcomes).add(now, True)
        if ttft is not None:
            _entry(self._latency, key, _Series).add(now, ttft)
        if tokens > 0 and generation_seconds and generation_seconds > 0:
            _entry(self._throughput, key, _Series).add(now, tokens / generation_seconds)

    def record_failure(self, key: EndpointKey) -> None:
        _entry(self._uptime, key, _Outcomes).add(time.monotonic(), False)

    def record_tool_call(self, key: EndpointKey, ok: bool) -> None:
        _entry(self._tools, key, _Outcomes).add(time.monotonic(), ok)

    # -- reading
    def latency(self, key: EndpointKey, window: float = ROUTING_WINDOW) -> dict[str, float] | None:
        """Time to first token percentiles, in seconds."""
        series = self._latency.get(key)
        return series.summary(time.monotonic(), window) if series else None

    def throughput(self, key: EndpointKey, window: float = ROUTING_WINDOW) -> dict[str, float] | None:
        """Output tokens per second percentiles."""
        series = self._throughput.get(key)
        return series.summary(time.monotonic(), window) if series else None

    def uptime(self, key: EndpointKey, window: float) -> float | None:
        """Share of attempts that succeeded (rate limits excluded), 0..1."""
        outcomes = self._uptime.get(key)
        return outcomes.rate(time.monotonic(), window) if outcomes else None

    def tool_success(self, key: EndpointKey) -> float | None:
        outcomes = self._tools.get(key)
        return outcomes.rate(time.monotonic(), ROUTING_WINDOW) if outcomes else None


def _entry(by_key: dict[EndpointKey, Any], key: EndpointKey, make: Callable[[], Any]) -> Any:
    """`by_key[key]`, made on first use (setdefault would build a throw-away default on every call)."""
    found = by_key.get(key)
    if found is None:
        found = by_key[key] = make()
    return found
