"""What a response-cache hit costs against a miss (cache/), side by side in one run.

    python -m bench.cache [--seconds 5] [--concurrency 8] [--rounds 3] [--quick]

`omnirouter serve --workers 1` (a real key, accounting and generation recording on, SQLite, the cache
in the worker's memory) runs on core 1; bench.echo, the fake upstream, on core 0, with the load from
this process beside it (bench/README.md). Five rows, each JSON and streamed:

- **off**: the same request without any cache header, every one upstream (the baseline);
- **miss**: cache on, every request's prompt its own (a counter), so every one goes upstream and is
  stored (the key's hash, the store, the collected stream on top of the baseline);
- **hit**: cache on, the same request over and over: answered from the cache, no upstream;
- **off / hit, 1 connection**: the latency of one request alone, without queueing behind others.

Prints requests/s, p50 latency (ms) and the gateway's CPU per request (us, its process), each the
median of `--rounds` runs taken in turn with the other rows; every answer is checked for its status
and its `X-Omnirouter-Cache` verdict. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.leanhttp import LeanConnection, build_request
from bench.procs import HOST, Proc, clean_env, free_port, http_json, install_cleanup, spawn, stop_all, wait_http
from bench.targets import start_upstream

MODEL = "bench/chat"
PRICING = {"prompt": "0.000001", "completion": "0.000002"}
PROMPT = "the quick brown fox jumps over the lazy dog"
TTL = {"X-Omnirouter-Cache-TTL": "3600"}


@dataclass
class Figure:
    requests_per_s: float
    p50_ms: float
    cpu_us: float  # the gateway's CPU per request
    errors: int


def verdict(expected: str | None) -> Callable[[bytes, bytes], bool]:
    """Checks an answer's head (the cache verdict) and body."""
    wanted = None if expected is None else f"x-omnirouter-cache: {expected}".encode()

    def check(head: bytes, body: bytes) -> bool:
        said = wanted is None or wanted in head.lower()
        absent = expected is not None or b"x-omnirouter-cache" not in head.lower()
        return said and absent and (b'"choices"' in body or b"event:" in body or b"data:" in body)

    return check


async def measure(
    port: int, headers: dict[str, str], bodies: Callable[[], dict[str, Any]], check: Callable[[bytes, bytes], bool],
    args: argparse.Namespace, gateway: Proc, concurrency: int,
) -> Figure:  # fmt: skip
    deadline = 0.0
    measuring = False
    done, errors, times = 0, 0, []

    async def worker() -> None:
        nonlocal done, errors
        conn = LeanConnection(HOST, port)
        try:
            while time.monotonic() < deadline:
                t = await conn.request(build_request(HOST, port, "/api/v1/chat/completions", bodies(), headers))
                ok = t.status == 200 and check(conn.last_head, t.body)
                if measuring:
                    done += ok
                    errors += not ok
                    times.append(t.total_ns)
        finally:
            await conn.close()

    deadline = time.monotonic() + args.warmup
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    measuring = True
    start, cpu = time.monotonic(), gateway.cpu_seconds()
    deadline = start + args.seconds
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed, cpu = time.monotonic() - start, gateway.cpu_seconds() - cpu
    times.sort()
    p50 = times[len(times) // 2] / 1e6 if times else float("nan")
    return Figure(done / elapsed, p50, cpu * 1e6 / done if done else float("nan"), errors)


def start(work: Path) -> tuple[Proc, int, dict[str, str]]:
    root = Path(__file__).parent.parent
    echo = start_upstream("chat-upstream", "0", work)
    config = {
        "providers": [{"slug": "bench", "name": "Bench", "api": "openai", "base_url": echo.base_url}],
        "models": [{"id": MODEL, "endpoints": [{"provider": "bench", "upstream_model": "up", "pricing": PRICING}]}],
    }
    (work / "omnirouter.yaml").write_text(yaml.safe_dump(config))
    (work / "data").mkdir()
    management = "sk-or-v1-" + secrets.token_hex(32)
    port = free_port()
    env = clean_env(OMNIROUTER_DATA_DIR=str(work / "data"), OMNIROUTER_MANAGEMENT_KEY=management,
                    OMNIROUTER_LOG_LEVEL="warning")  # fmt: skip
    argv = [sys.executable, "-m", "omnirouter", "serve", "--config", str(work / "omnirouter.yaml"), "--host", HOST,
            "--port", str(port), "--workers", "1"]  # fmt: skip
    gateway = spawn("omnirouter", argv, cores="1", env=env, log_dir=work, cwd=root)
    wait_http(gateway, port, "/api/v1/models", timeout=60)
    status, created = http_json(
        port, "POST", "/api/v1/keys", {"name": "bench"}, {"Authorization": f"Bearer {management}"}
    )
    if status >= 300 or not isinstance(created, dict):
        raise RuntimeError(f"creating an inference key failed: HTTP {status} {created}")
    return gateway, port, {"Authorization": f"Bearer {created['key']}"}


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        gateway, port, auth = start(Path(tmp))
        with contextlib.suppress(OSError, AttributeError):
            os.sched_setaffinity(0, {0})  # the load shares the upstream's core, off the gateway's
        counter = itertools.count()
        print(f"response cache, {args.concurrency} connections, median of {args.rounds} runs of {args.seconds:g} s, "
              f"memory store; load average {os.getloadavg()[0]:.1f}")  # fmt: skip
        print(f"{'':>22} {'requests/s':>11} {'p50 ms':>8} {'gateway CPU us/request':>23} {'errors':>7}")
        for stream in (False, True):
            same = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}], "stream": stream}

            def unique(stream: bool = stream) -> dict[str, Any]:
                content = f"{PROMPT} {next(counter)}"
                return {"model": MODEL, "messages": [{"role": "user", "content": content}], "stream": stream}

            rows = [
                ("off", auth, lambda same=same: same, verdict(None), args.concurrency),
                ("miss", {**auth, **TTL}, unique, verdict("miss"), args.concurrency),
                ("hit", {**auth, **TTL}, lambda same=same: same, verdict("hit"), args.concurrency),
                ("off, 1 connection", auth, lambda same=same: same, verdict(None), 1),
                ("hit, 1 connection", {**auth, **TTL}, lambda same=same: same, verdict("hit"), 1),
            ]
            kind = "stream" if stream else "JSON"
            figures: dict[str, list[Figure]] = {name: [] for name, *_ in rows}
            for _ in range(args.rounds):  # rows interleaved, so that a busy moment of the host spreads over all
                for name, headers, bodies, check, concurrency in rows:
                    figures[name].append(await measure(port, headers, bodies, check, args, gateway, concurrency))
            for name, runs in figures.items():
                f = Figure(statistics.median(r.requests_per_s for r in runs), statistics.median(r.p50_ms for r in runs),
                           statistics.median(r.cpu_us for r in runs), sum(r.errors for r in runs))  # fmt: skip
                label = f"{kind}, {name}"
                print(f"{label:>22} {f.requests_per_s:>11,.0f} {f.p50_ms:>8.2f} {f.cpu_us:>23,.0f} {f.errors:>7}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3, help="each figure is the median of this many runs")
    p.add_argument("--quick", action="store_true", help="a smoke run: 0.5 s per figure")
    args = p.parse_args()
    if args.quick:
        args.seconds, args.warmup, args.rounds = 0.5, 0.2, 1
    install_cleanup()
    try:
        asyncio.run(run(args))
    finally:
        stop_all()


if __name__ == "__main__":
    main()
