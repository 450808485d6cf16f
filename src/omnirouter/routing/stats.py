"""Measured endpoint statistics over a rolling window: time to first token, throughput, uptime and
tool-call success. They feed `sort`, the `preferred_*` rules, `:exacto` and the endpoints listing.

Samples are kept in bounded deques per endpoint; percentiles are computed on read and cached for a
second, so the request path does a dict lookup, not a sort.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field

WINDOW_SECONDS = 300.0  # OpenRouter's preferences use a rolling 5-minute window
MAX_SAMPLES = 512
PERCENTILES = ("p50", "p75", "p90", "p99")
_CACHE_SECONDS = 1.0

EndpointKey = tuple[str, str]  # (model id, endpoint slug)


def percentiles(values: list[float]) -> dict[str, float]:
    """Nearest-rank percentiles of a non-empty list."""
    ordered = sorted(values)
    n = len(ordered)
    return {p: ordered[max(0, math.ceil(int(p[1:]) / 100 * n) - 1)] for p in PERCENTILES}


@dataclass
class _Series:
    samples: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=MAX_SAMPLES))
    cached_at: float = -1.0
    cached: dict[str, float] | None = None

    def add(self, now: float, value: float) -> None:
        self.samples.append((now, value))
        self.cached_at = -1.0

    def summary(self, now: float) -> dict[str, float] | None:
        if now - self.cached_at < _CACHE_SECONDS:
            return self.cached
        while self.samples and now - self.samples[0][0] > WINDOW_SECONDS:
            self.samples.popleft()
        self.cached = percentiles([v for _, v in self.samples]) if self.samples else None
        self.cached_at = now
        return self.cached


@dataclass
class _Counts:
    events: deque[tuple[float, bool]] = field(default_factory=lambda: deque(maxlen=MAX_SAMPLES))

    def add(self, now: float, ok: bool) -> None:
        self.events.append((now, ok))

    def rate(self, now: float) -> float | None:
        while self.events and now - self.events[0][0] > WINDOW_SECONDS:
            self.events.popleft()
        if not self.events:
            return None
        return sum(ok for _, ok in self.events) / len(self.events)


class EndpointStats:
    def __init__(self) -> None:
        self._latency: dict[EndpointKey, _Series] = {}  # seconds to first token
        self._throughput: dict[EndpointKey, _Series] = {}  # completion tokens per second
        self._uptime: dict[EndpointKey, _Counts] = {}
        self._tools: dict[EndpointKey, _Counts] = {}

    # -- recording (after each attempt)
    def record_success(
        self, key: EndpointKey, *, ttft: float | None, tokens: int, generation_seconds: float | None
    ) -> None:
        now = time.monotonic()
        self._uptime.setdefault(key, _Counts()).add(now, True)
        if ttft is not None:
            self._latency.setdefault(key, _Series()).add(now, ttft)
        if tokens > 0 and generation_seconds and generation_seconds > 0:
            self._throughput.setdefault(key, _Series()).add(now, tokens / generation_seconds)

    def record_failure(self, key: EndpointKey) -> None:
        self._uptime.setdefault(key, _Counts()).add(time.monotonic(), False)

    def record_tool_call(self, key: EndpointKey, ok: bool) -> None:
        self._tools.setdefault(key, _Counts()).add(time.monotonic(), ok)

    # -- reading
    def latency(self, key: EndpointKey) -> dict[str, float] | None:
        series = self._latency.get(key)
        return series.summary(time.monotonic()) if series else None

    def throughput(self, key: EndpointKey) -> dict[str, float] | None:
        series = self._throughput.get(key)
        return series.summary(time.monotonic()) if series else None

    def uptime(self, key: EndpointKey) -> float | None:
        counts = self._uptime.get(key)
        return counts.rate(time.monotonic()) if counts else None

    def tool_success(self, key: EndpointKey) -> float | None:
        counts = self._tools.get(key)
        return counts.rate(time.monotonic()) if counts else None
