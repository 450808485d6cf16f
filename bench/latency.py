"""Figure 1: added latency with one request in flight, gateway and direct interleaved.

Each iteration sends the same request to the gateway and to the upstream directly (alternating which
goes first, so drift and cache effects hit both alike) and keeps the pair's difference. Three kinds:
a non-streaming answer, a short stream (time to its first `data:` event, and to its end) and a long
stream (to its end). The added time per chunk is the slope between the two streams:
(added(long) - added(short)) / (chunks(long) - chunks(short)), so the per-request cost cancels out.
"""

from __future__ import annotations

import gc
from typing import Any

from bench.leanhttp import LeanConnection, Timing, build_request, sse_contents
from bench.procs import HOST
from bench.stats import summary
from bench.targets import Target

LONG_WORDS = 100  # the echo upstream streams "Echo:" and then one chunk per word

KINDS = ("nonstream", "stream_short", "stream_long")


def _bodies(model: str) -> dict[str, dict[str, Any]]:
    def msg(text: str) -> list[dict[str, str]]:
        return [{"role": "user", "content": text}]

    stream = {"stream": True, "stream_options": {"include_usage": True}}
    return {
        "nonstream": {"model": model, "messages": msg("hi")},
        "stream_short": {"model": model, "messages": msg("hi"), **stream},
        "stream_long": {"model": model, "messages": msg(" ".join(["a"] * LONG_WORDS)), **stream},
    }


class _Side:
    def __init__(self, target: Target) -> None:
        self.conn = LeanConnection(HOST, target.port)
        bodies = _bodies(target.model)
        self.raw = {k: build_request(HOST, target.port, target.path, b, target.headers) for k, b in bodies.items()}

    async def send(self, kind: str) -> Timing:
        t = await self.conn.request(self.raw[kind])
        if t.status != 200 or (kind != "nonstream" and b"[DONE]" not in t.body):
            raise RuntimeError(f"{kind}: HTTP {t.status}: {t.body[:300]!r}")
        return t


async def measure(gateway: Target, upstream: Target, *, warmup: int, rounds: int, per_round: int) -> dict[str, Any]:
    gw, up = _Side(gateway), _Side(upstream)
    added: dict[str, list[float]] = {k: [] for k in ("nonstream", "ttfb", "stream_short", "stream_long")}
    raw: dict[str, dict[str, list[float]]] = {"gateway": {k: [] for k in added}, "direct": {k: [] for k in added}}
    chunks: dict[str, int] = {}
    try:
        for i in range(warmup):
            for kind in KINDS:
                for side in (gw, up) if i % 2 else (up, gw):
                    t = await side.send(kind)
                    if kind != "nonstream" and side is gw:
                        chunks[kind] = len(sse_contents(t.body))
        gc.collect()
        gc.disable()  # a collection in the client would land on one side of a pair
        for _ in range(rounds):
            for i in range(per_round):
                for kind in KINDS:
                    if i % 2:
                        g, d = await gw.send(kind), await up.send(kind)
                    else:
                        d, g = await up.send(kind), await gw.send(kind)
                    pairs = [(kind, g.total_ns, d.total_ns)]
                    if kind == "stream_short":
                        pairs.append(("ttfb", g.first_event_ns, d.first_event_ns))
                    for name, gns, dns in pairs:
                        added[name].append((gns - dns) / 1e6)
                        raw["gateway"][name].append(gns / 1e6)
                        raw["direct"][name].append(dns / 1e6)
            gc.collect()
    finally:
        gc.enable()
        await gw.conn.close()
        await up.conn.close()

    result: dict[str, Any] = {
        "added_ms": {k: summary(v) for k, v in added.items()},
        "gateway_ms": {k: summary(v) for k, v in raw["gateway"].items()},
        "direct_ms": {k: summary(v) for k, v in raw["direct"].items()},
        "chunks": chunks,
    }
    span = chunks.get("stream_long", 0) - chunks.get("stream_short", 0)
    slope = (result["added_ms"]["stream_long"]["p50"] - result["added_ms"]["stream_short"]["p50"]) / span if span else 0
    result["per_chunk_added_us"] = round(slope * 1000, 2)
    # The brief's simpler reading: the long stream's whole added time spread over its chunks.
    result["per_chunk_added_naive_us"] = round(
        result["added_ms"]["stream_long"]["p50"] * 1000 / max(1, chunks.get("stream_long", 1)), 2
    )
    result["samples_added_ms"] = {k: [round(v, 4) for v in added[k]] for k in ("nonstream", "ttfb")}
    return result
