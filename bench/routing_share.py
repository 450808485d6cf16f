"""What sharing routing health through Redis costs (issue 14; cluster/routing_link.py). Not part of the
full run.

1. The request path: nanoseconds per call of what a request calls on the circuits, the sticky
   sessions and the statistics, for one process's classes (routing/) and the shared ones (cluster/),
   without Redis (the shared ones only add to an outbox, and only when something changes).
2. Propagation: two links on a redis-server of the run's own (two clients, one event loop): from a
   circuit opened on A to A's state applied by B; the same for a sticky session; and how long B
   takes to list A's statistics (bounded by cluster_stats_interval).
3. The statistics push: CPU per push and bytes in Redis per instance for E endpoints with full
   sample windows (1,024 latency and throughput samples, a day of uptime buckets), and the cost of a
   merged read on the planner's side.

    flock /work/notes/bench.lock .venv/bin/python -m bench.routing_share [--trials 200] [--endpoints 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable

from bench.procs import free_port
from omnirouter.cluster import routing_link
from omnirouter.cluster.health import SharedHealth
from omnirouter.cluster.redis import connect
from omnirouter.cluster.routing_link import RoutingLink
from omnirouter.cluster.stats import SharedStats
from omnirouter.cluster.sticky import SharedSticky
from omnirouter.jsonio import encode
from omnirouter.routing.engine import Routing
from omnirouter.routing.health import Health
from omnirouter.routing.stats import MAX_SAMPLES, EndpointStats
from omnirouter.routing.sticky import Sticky

KEY = ("vendor/model", "provider")


def per_call(stmt: Callable[[], object], n: int = 100_000) -> float:
    """Nanoseconds per call, the least of 15 repeats (the machine is shared: the least is the figure)."""
    return min(timeit.repeat(stmt, number=n, repeat=15)) / n * 1e9


def request_path() -> None:
    print("## 1. Request path: ns per call (least of 15 x 100,000)")
    print(f"{'call':<44} {'per process':>12} {'shared':>8}")
    rows: list[tuple[str, Callable[[object], Callable[[], object]]]] = []
    rows.append(("health.deprioritised (closed)", lambda h: lambda: h.deprioritised(KEY)))
    rows.append(("health.attempt_started (closed)", lambda h: lambda: h.attempt_started(KEY)))
    rows.append(("health.succeeded (closed)", lambda h: lambda: h.succeeded(KEY)))
    for name, make in rows:
        base, shared = Health(), SharedHealth()
        print(f"{name:<44} {per_call(make(base)):>12.0f} {per_call(make(shared)):>8.0f}")
    for name, fill in (("sticky.get (miss)", False), ("sticky.get (hit)", True)):
        base_s, shared_s = Sticky(), SharedSticky()
        if fill:
            base_s.remember("s", *KEY)
            shared_s.remember("s", *KEY)
        print(
            f"{name:<44} {per_call(lambda b=base_s: b.get('s')):>12.0f} {per_call(lambda s=shared_s: s.get('s')):>8.0f}"
        )
    base_s, shared_s = Sticky(), SharedSticky()
    base_s.remember("s", *KEY)
    shared_s.remember("s", *KEY)
    b = per_call(lambda: base_s.remember("s", *KEY))
    s = per_call(lambda: shared_s.remember("s", *KEY))
    print(f"{'sticky.remember (a renewal)':<44} {b:>12.0f} {s:>8.0f}")
    stats, shared_stats = EndpointStats(), SharedStats()
    for st in (stats, shared_stats):
        for i in range(100):
            st.record_success(KEY, ttft=0.1 + i / 1000, tokens=100, generation_seconds=1.0)
    b = per_call(lambda: stats.latency(KEY))
    s = per_call(lambda: shared_stats.latency(KEY))
    print(f"{'stats.latency (cached, no other instance)':<44} {b:>12.0f} {s:>8.0f}")
    other = SharedStats()
    other.record_success(KEY, ttft=0.2, tokens=100, generation_seconds=1.0)
    shared_stats.install({KEY: other.summary()})
    s = per_call(lambda: shared_stats.latency(KEY))
    print(f"{'stats.latency (cached, merged with one other)':<44} {'':>12} {s:>8.0f}")
    b = per_call(lambda: stats.record_success(KEY, ttft=0.1, tokens=100, generation_seconds=1.0), 50_000)
    s = per_call(lambda: shared_stats.record_success(KEY, ttft=0.1, tokens=100, generation_seconds=1.0), 50_000)
    print(f"{'stats.record_success':<44} {b:>12.0f} {s:>8.0f}")


def shared_routing() -> Routing:
    return Routing(planner=None, health=SharedHealth(), stats=SharedStats(), sticky=SharedSticky(), adapters={})  # type: ignore[arg-type]


async def propagation(url: str, trials: int) -> None:
    a_routing, b_routing = shared_routing(), shared_routing()
    a = RoutingLink(connect(url), a_routing, stats_interval=1.0)
    b = RoutingLink(connect(url), b_routing, stats_interval=1.0)
    await a.start()
    await b.start()
    await asyncio.sleep(0.5)  # both subscribed

    async def until(check: Callable[[], bool]) -> float:
        start = time.perf_counter()
        while not check():
            await asyncio.sleep(0)
            if time.perf_counter() - start > 5:
                raise RuntimeError("not propagated within 5 s")
        return (time.perf_counter() - start) * 1000

    opened, closed, stuck = [], [], []
    for i in range(trials):
        key = ("m", f"e{i}")
        start = time.perf_counter()
        a_routing.health.failed(key)
        await until(lambda k=key: b_routing.health.state(k) == "open")
        opened.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        a_routing.health.succeeded(key)
        await until(lambda k=key: b_routing.health.state(k) == "closed")
        closed.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        a_routing.sticky.remember(f"s{i}", *key)
        await until(lambda i=i: b_routing.sticky.get(f"s{i}") is not None)
        stuck.append((time.perf_counter() - start) * 1000)
    print(f"\n## 2. Propagation, ms ({trials} trials; two links, one event loop, redis-server on loopback)")
    for name, xs in (("circuit opened", opened), ("circuit closed", closed), ("sticky session", stuck)):
        xs.sort()
        p99 = xs[min(len(xs) - 1, int(len(xs) * 0.99))]
        print(f"{name:<16} p50 {statistics.median(xs):6.2f}  p99 {p99:6.2f}  max {xs[-1]:6.2f}")
    a_routing.stats.record_success(("m", "listed"), ttft=0.2, tokens=10, generation_seconds=1.0)
    start = time.perf_counter()
    await until(lambda: b_routing.stats.latency(("m", "listed")) is not None)
    print(f"statistics listed by B {(time.perf_counter() - start) * 1000:.0f} ms after A measured them "
          "(cluster_stats_interval 1 s)")  # fmt: skip
    await a.close()
    await b.close()
    await a.redis.aclose()
    await b.redis.aclose()


async def probes(url: str, windows: int, workers: int = 3, *, slot: bool = True) -> None:
    """`workers` links whose requests (one every 10 ms each, all at the same moment) want an endpoint
    that keeps failing with Retry-After: 1; `slot=False` turns the race for the probe slot off."""
    routing_link.CLAIM_LEAD = 0.25 if slot else float("-inf")
    routings = [shared_routing() for _ in range(workers)]
    links = [RoutingLink(connect(url), r, stats_interval=60.0) for r in routings]
    for link in links:
        await link.start()
    await asyncio.sleep(0.5)
    key = ("m", "down")
    routings[0].health.failed(key, retry_after=1)
    while not all(r.health.deprioritised(key) for r in routings):  # the first failure reaches everyone
        await asyncio.sleep(0.001)
    probed: list[tuple[float, int]] = []
    start = time.monotonic()
    while time.monotonic() - start < windows * 1.0 + 0.5:
        for i, r in enumerate(routings):
            if not r.health.deprioritised(key):  # a request here would try it at its normal place
                r.health.attempt_started(key)
                probed.append((time.monotonic() - start, i))
                r.health.failed(key, retry_after=1)  # the probe fails: a new window, for everyone
        await asyncio.sleep(0.01)
    per_window = len(probed) / windows
    title = "with the probe slot" if slot else "without the probe slot (pub/sub of the probes only)"
    print(f"\n## Probes, {title}: {workers} workers, an endpoint failing with Retry-After: 1, {windows} windows")
    print(f"{len(probed)} probes ({per_window:.2f} per window): "
          + ", ".join(f"{t:.2f}s@{i}" for t, i in probed))  # fmt: skip
    for link in links:
        await link.close()
        await link.redis.aclose()


def push_cost(endpoints: int) -> None:
    stats = SharedStats()
    now = time.monotonic()
    for e in range(endpoints):
        key = ("vendor/model", f"p{e}")
        for i in range(MAX_SAMPLES):
            stats.record_success(key, ttft=0.1 + (i % 97) / 100, tokens=100 + i % 13, generation_seconds=1.0)
        for minute in range(1440):  # a day of uptime buckets
            stats._uptime[key].buckets.append([int(now // 60) - 1440 + minute, 10, 1])
    rounds = 20
    start = time.process_time()
    for _ in range(rounds):
        stats._published.clear()  # every endpoint has new samples: each summarised again
        blob = encode({"at": time.time(), "eps": stats.summary()})
    push_ms = (time.process_time() - start) / rounds * 1000
    start = time.process_time()
    for _ in range(rounds):
        encode({"at": time.time(), "eps": stats.summary()})
    idle_ms = (time.process_time() - start) / rounds * 1000
    other = SharedStats()
    other.install({key: [s] for s in stats.summary() for key in [(s["m"], s["e"])]})
    for key in list(other.remote)[:1]:
        other.record_success(key, ttft=0.3, tokens=10, generation_seconds=1.0)
    start = time.process_time()
    for key in other.remote:
        other._merged.clear()
        other.latency(key)
    merge_us = (time.process_time() - start) / len(other.remote) * 1e6
    print(f"\n## 3. Statistics push: {endpoints} endpoints with full windows")
    print(f"summary + encode per push: {push_ms:.1f} ms CPU when every endpoint has new samples, {idle_ms:.1f} ms "
          f"when none has; {len(blob) / 1024:.0f} KiB in Redis per instance")  # fmt: skip
    print(f"a merged percentile read (recomputed once a second per endpoint and window): {merge_us:.0f} us")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--endpoints", type=int, default=50)
    parser.add_argument("--windows", type=int, default=10, help="Retry-After windows for the probe count")
    args = parser.parse_args(argv)
    request_path()
    server = shutil.which("redis-server")
    if server is None:
        print("\nredis-server not found: propagation not measured", file=sys.stderr)
    else:
        port = free_port()
        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.Popen(
                [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", tmp],
                stdout=subprocess.DEVNULL,
            )
            try:
                time.sleep(0.3)
                asyncio.run(propagation(f"redis://127.0.0.1:{port}/0", args.trials))
                asyncio.run(probes(f"redis://127.0.0.1:{port}/0", args.windows))
                asyncio.run(probes(f"redis://127.0.0.1:{port}/0", args.windows, slot=False))
            finally:
                proc.kill()
                proc.wait()
    push_cost(args.endpoints)
    print(f"\n# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, pid {os.getpid()}")


if __name__ == "__main__":
    main()
