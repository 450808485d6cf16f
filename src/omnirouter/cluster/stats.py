"""Endpoint statistics merged across instances (routing/stats.py keeps one process's).

Each instance publishes a summary of its own measurements every `cluster_stats_interval` (the link
does, cluster/routing_link.py): per endpoint and per window, the success and failure counts, and for
latency and throughput a sketch of the values: all of them up to SKETCH_POINTS, else SKETCH_POINTS
values at evenly spaced ranks, each standing for n / SKETCH_POINTS samples. What the planner and the
endpoints listing read is then this process's own samples (weight 1 each) and the other instances'
sketch points (their weights) taken together: percentiles by weighted nearest rank, which is the
local nearest rank when there is nothing from elsewhere, and within half a sketch step (0.5% of one
instance's samples) of the exact cluster-wide value otherwise. Uptime and tool success add counts,
which is exact.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from omnirouter.routing.stats import (
    LISTING_WINDOW,
    PERCENTILES,
    ROUTING_WINDOW,
    EndpointKey,
    EndpointStats,
    _Outcomes,
    _Series,
)

SKETCH_POINTS = 100
SERIES_WINDOWS = (ROUTING_WINDOW, LISTING_WINDOW)
UPTIME_WINDOWS = (300.0, 1800.0, 86400.0)
_CACHE_SECONDS = 1.0
RESUMMARISE_SECONDS = 10.0

Sketch = tuple[int, list[float]]  # (samples summarised, values)
Counts = tuple[int, int]  # (succeeded, failed)


def sketch(values: list[float]) -> Sketch:
    """A list of at most SKETCH_POINTS values standing for `values`, each point n / points samples."""
    ordered = sorted(values)
    n = len(ordered)
    if n <= SKETCH_POINTS:
        return n, ordered
    return n, [ordered[int((i + 0.5) * n / SKETCH_POINTS)] for i in range(SKETCH_POINTS)]


def merged_percentiles(local: list[float], remote: Iterable[Sketch]) -> dict[str, float] | None:
    """Weighted nearest-rank percentiles of local samples (weight 1) and other instances' sketches."""
    weighted = [(v, 1.0) for v in local]
    for n, points in remote:
        if points:
            weight = n / len(points)
            weighted.extend((v, weight) for v in points)
    if not weighted:
        return None
    weighted.sort()
    total = sum(w for _, w in weighted)
    out: dict[str, float] = {}
    targets = [(p, int(p[1:]) / 100 * total - 1e-9) for p in PERCENTILES]
    cumulative, i = 0.0, 0
    for value, weight in weighted:
        cumulative += weight
        while i < len(targets) and cumulative >= targets[i][1]:
            out[targets[i][0]] = value
            i += 1
        if i == len(targets):
            break
    for p, _ in targets[i:]:  # rounding at the very top: the largest value
        out[p] = weighted[-1][0]
    return out


def counts(outcomes: _Outcomes | None, now: float, window: float) -> Counts:
    return (0, 0) if outcomes is None else outcomes.counts(now, window)


def _window_values(series: _Series | None, now: float, window: float) -> list[float]:
    return [] if series is None else [v for t, v in series.samples if now - t <= window]


def _series_window(window: float) -> float:
    return ROUTING_WINDOW if window <= ROUTING_WINDOW else LISTING_WINDOW


def _uptime_window(window: float) -> float:
    return next((w for w in UPTIME_WINDOWS if window <= w), UPTIME_WINDOWS[-1])


class SharedStats(EndpointStats):
    """This process's measurements, read together with the other instances' latest summaries."""

    def __init__(self) -> None:
        super().__init__()
        # endpoint -> the other instances' summaries of it (what `summary()` produced there)
        self.remote: dict[EndpointKey, list[dict[str, Any]]] = {}
        self._merged: dict[tuple[str, EndpointKey, float], tuple[float, Any]] = {}
        # endpoint -> (what was recorded by then, when, its summary) as last published
        self._published: dict[EndpointKey, tuple[tuple[Any, ...], float, dict[str, Any] | None]] = {}

    def install(self, remote: dict[EndpointKey, list[dict[str, Any]]]) -> None:
        """Replace what the other instances said (the link calls it after each read from Redis)."""
        self.remote = remote
        self._merged.clear()

    # -- what this process publishes
    def summary(self) -> list[dict[str, Any]]:
        """This process's own measurements, per endpoint; an endpoint with nothing new since its last
        summary reuses it for up to RESUMMARISE_SECONDS (its windows move on slowly)."""
        now = time.monotonic()
        keys = set(self._uptime) | set(self._latency) | set(self._throughput) | set(self._tools)
        out = []
        for key in keys:
            mark = self._mark(key)
            last = self._published.get(key)
            if last is not None and last[0] == mark and now - last[1] < RESUMMARISE_SECONDS:
                if last[2] is not None:
                    out.append(last[2])
                continue
            up = {str(int(w)): counts(self._uptime.get(key), now, w) for w in UPTIME_WINDOWS}
            tools = counts(self._tools.get(key), now, ROUTING_WINDOW)
            if not any(sum(c) for c in up.values()) and not sum(tools):
                self._published[key] = (mark, now, None)  # nothing left within a day
                continue
            latency = {str(int(w)): sketch(_window_values(self._latency.get(key), now, w)) for w in SERIES_WINDOWS}
            throughput = {
                str(int(w)): sketch(_window_values(self._throughput.get(key), now, w)) for w in SERIES_WINDOWS
            }
            summary = {"m": key[0], "e": key[1], "up": up, "tools": tools, "latency": latency, "throughput": throughput}
            self._published[key] = (mark, now, summary)
            out.append(summary)
        return out

    def _mark(self, key: EndpointKey) -> tuple[Any, ...]:
        """Changes whenever something is recorded for the endpoint."""
        latency, throughput = self._latency.get(key), self._throughput.get(key)
        uptime, tools = self._uptime.get(key), self._tools.get(key)
        return (
            latency.samples[-1][0] if latency and latency.samples else None,
            throughput.samples[-1][0] if throughput and throughput.samples else None,
            tuple(uptime.buckets[-1]) if uptime and uptime.buckets else None,
            tuple(tools.buckets[-1]) if tools and tools.buckets else None,
        )

    # -- reading: the local figures when no other instance measured the endpoint
    def latency(self, key: EndpointKey, window: float = ROUTING_WINDOW) -> dict[str, float] | None:
        if key not in self.remote:
            return EndpointStats.latency(self, key, window)  # not super(): cheaper, on the planner's path
        return self._cached("latency", key, window, lambda: self._percentiles("latency", self._latency, key, window))

    def throughput(self, key: EndpointKey, window: float = ROUTING_WINDOW) -> dict[str, float] | None:
        if key not in self.remote:
            return EndpointStats.throughput(self, key, window)  # not super(): cheaper, on the planner's path
        return self._cached(
            "throughput", key, window, lambda: self._percentiles("throughput", self._throughput, key, window)
        )

    def uptime(self, key: EndpointKey, window: float) -> float | None:
        if key not in self.remote:
            return EndpointStats.uptime(self, key, window)  # not super(): cheaper, on the planner's path
        return self._cached("up", key, window, lambda: self._rate("up", self._uptime, key, window))

    def tool_success(self, key: EndpointKey) -> float | None:
        if key not in self.remote:
            return EndpointStats.tool_success(self, key)  # not super(): cheaper, on the planner's path
        return self._cached("tools", key, ROUTING_WINDOW, lambda: self._rate("tools", self._tools, key, ROUTING_WINDOW))

    def _cached(self, kind: str, key: EndpointKey, window: float, compute: Any) -> Any:
        now = time.monotonic()
        hit = self._merged.get((kind, key, window))
        if hit is not None and now - hit[0] < _CACHE_SECONDS:
            return hit[1]
        value = compute()
        self._merged[(kind, key, window)] = (now, value)
        return value

    def _percentiles(
        self, kind: str, local: dict[EndpointKey, _Series], key: EndpointKey, window: float
    ) -> dict[str, float] | None:
        name = str(int(_series_window(window)))
        remote = [tuple(s[kind][name]) for s in self.remote.get(key, ()) if name in s.get(kind, {})]
        values = _window_values(local.get(key), time.monotonic(), window)
        return merged_percentiles(values, remote)  # type: ignore[arg-type]

    def _rate(self, kind: str, local: dict[EndpointKey, _Outcomes], key: EndpointKey, window: float) -> float | None:
        ok, failed = counts(local.get(key), time.monotonic(), window)
        name = str(int(_uptime_window(window)))
        for s in self.remote.get(key, ()):
            theirs = s.get("up", {}).get(name) if kind == "up" else s.get("tools")
            if theirs:
                ok += theirs[0]
                failed += theirs[1]
        return ok / (ok + failed) if ok + failed else None
