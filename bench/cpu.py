"""Gateway CPU per request under load, per client format, in a few minutes (not part of the full run).

The echo upstream and wrk on core 0, one omnirouter worker on core 1, as in figure 2; each round runs
wrk at 32 connections against each format's endpoint in turn (chat, Messages, Responses, all to the
OpenAI-compatible upstream), and reports the gateway's CPU time (user + kernel, its whole process
tree) per request and requests/s. Rounds alternate, so a slow spell of the host shows in every
format's spread rather than in one format's figure.

    .venv/bin/python -m bench.cpu [--rounds 3] [--seconds 8] [--formats chat,messages,responses] [--latency]

With `--latency`, figure 1 (added latency of chat, one request in flight, paired with the upstream
directly) runs first, at a smaller plan than the full run's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench import latency, load, procs
from bench.load import LoadSpec
from bench.targets import MODEL, direct, start_omnirouter, start_upstream

BODIES = {
    "chat": ("/api/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}),
    "messages": (
        "/api/v1/messages",
        {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]},
    ),
    "responses": ("/api/v1/responses", {"model": MODEL, "input": "hi", "max_output_tokens": 64}),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--formats", default="chat,messages,responses")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--latency", action="store_true", help="figure 1 for chat first (about a minute)")
    args = parser.parse_args(argv)
    if not load.wrk_path():
        print("bench.cpu needs wrk (apt-get install -y wrk)", file=sys.stderr)
        return 2
    procs.install_cleanup()
    os.sched_setaffinity(0, {0})
    formats = args.formats.split(",")
    cores = "1" if args.workers == 1 else "0,1"
    work = Path(tempfile.mkdtemp(prefix="bench-cpu-"))
    figures: dict[str, list[tuple[float, float]]] = {f: [] for f in formats}
    try:
        echo = start_upstream("echo", "0", work)
        gateway = start_omnirouter("omnirouter", cores, args.workers, echo, echo, work)
        if args.latency:
            lat = asyncio.run(latency.measure(gateway, direct(echo, echo), warmup=100, rounds=5, per_round=100))
            for kind in ("nonstream", "ttfb"):
                a = lat["added_ms"][kind]
                print(f"added latency {kind:9s} p50 {a['p50']:.3f} ms  p99 {a['p99']:.3f} ms", flush=True)
            print(f"added per streamed chunk {lat['per_chunk_added_us']} us", flush=True)
        for name in formats:  # warm-up: every path's first requests import and compile what they use
            path, body = BODIES[name]
            spec = LoadSpec(gateway.port, path, gateway.headers, body, args.connections, 2)
            load.run(spec, tool="wrk", cores="0", watch=[gateway.proc], work=work, tag=f"warm-{name}")
        for r in range(args.rounds):
            for name in formats:
                path, body = BODIES[name]
                spec = LoadSpec(gateway.port, path, gateway.headers, body, args.connections, args.seconds)
                watch = [gateway.proc, echo.proc]
                res = load.run(spec, tool="wrk", cores="0", watch=watch, work=work, tag=f"{name}-{r}")
                if res.errors:
                    raise RuntimeError(f"{name}: {res.errors} errors")
                us = 1e6 * res.cpu_s[gateway.proc.name] / max(1, res.requests)
                figures[name].append((us, res.rps))
                print(f"round {r} {name:10s} {us:7.1f} us/request  {res.rps:8.0f} req/s  p50 {res.p50_ms:.2f} ms",
                      flush=True)  # fmt: skip
    finally:
        procs.stop_all()
    print("\nmedian over rounds: gateway CPU us per request, requests/s")
    for name, rows in figures.items():
        if rows:
            us, rps = statistics.median(u for u, _ in rows), statistics.median(r for _, r in rows)
            print(f"  {name:10s} {us:7.1f} us  {rps:8.0f}/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
