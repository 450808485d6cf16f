"""The fallback load generator, for machines without `wrk`: aiohttp at fixed concurrency.

Runs in its own process (pinned like wrk would be) and prints the same `BENCH_JSON` summary line as
the harness's wrk script. It is slower than wrk: results.json names the tool, and its CPU share
shows when it, not the server, was the limit.

    python -m bench.loadgen --url URL --body-file F [--header 'K: V']... --connections C --duration S
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from pathlib import Path

import aiohttp

from bench.stats import pct


async def run(
    url: str, body: bytes, headers: dict[str, str], connections: int, duration: float, max_requests: int
) -> dict[str, float]:
    latencies: list[int] = []
    errors = {"status": 0, "socket": 0}
    issued = 0
    timeout = aiohttp.ClientTimeout(total=10)
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False) as session:
        start = time.perf_counter()
        deadline = start + duration

        async def worker() -> None:
            nonlocal issued
            while time.perf_counter() < deadline and (not max_requests or issued < max_requests):
                issued += 1
                t0 = time.perf_counter_ns()
                try:
                    async with session.post(url, data=body, headers=headers) as resp:
                        await resp.read()
                        if resp.status > 399:  # what wrk counts as a status error
                            errors["status"] += 1
                except (aiohttp.ClientError, TimeoutError, OSError):
                    errors["socket"] += 1
                    continue
                latencies.append(time.perf_counter_ns() - t0)

        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - start
    return {
        "requests": len(latencies),
        "duration_us": int(elapsed * 1e6),
        "status": errors["status"],
        "socket": errors["socket"],
        "p50_us": pct(latencies, 50) / 1000 if latencies else 0,
        "p99_us": pct(latencies, 99) / 1000 if latencies else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    parser.add_argument("--url", required=True)
    parser.add_argument("--body-file", required=True)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--max-requests", type=int, default=0)
    args = parser.parse_args()
    headers = dict(h.split(": ", 1) for h in args.header)
    headers.setdefault("Content-Type", "application/json")
    factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        factory = uvloop.new_event_loop
    body = Path(args.body_file).read_bytes()
    with asyncio.Runner(loop_factory=factory) as runner:
        result = runner.run(run(args.url, body, headers, args.connections, args.duration, args.max_requests))
    print("BENCH_JSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
