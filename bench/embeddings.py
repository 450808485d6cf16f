"""Embeddings throughput: inputs per second through omnirouter against the same upstream called
directly, side by side in one run, for a few batch sizes.

    python -m bench.embeddings [--seconds 5] [--concurrency 16] [--batches 1,16,128] [--dims 1536] [--quick]

The upstream is bench.embeddings_upstream (OpenAI's /v1/embeddings, one pre-encoded vector of `--dims`
floats per input) on core 0, with bench.echo beside it for a reference row: a chat completion through
the same gateway, what the pipeline costs any request. `omnirouter serve --workers 1` (a real key,
accounting and generation recording on, SQLite) runs on core 1; the load (`--concurrency` keep-alive
connections, each sending one request after another, `--batches` inputs of eight words each per
request) comes from this process on core 0, as the other figures place them (bench/README.md). Every
answer is checked for its status and its count of vectors. Prints inputs/s direct, through the
gateway, their ratio, and the gateway's CPU per input; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
import yaml

from bench.embeddings_upstream import READY
from bench.leanhttp import LeanConnection, build_request
from bench.procs import (
    HOST,
    Proc,
    clean_env,
    free_port,
    http_json,
    install_cleanup,
    spawn,
    stop_all,
    wait_http,
    wait_line,
)
from bench.targets import start_upstream

MODEL = "bench/embed"
CHAT_MODEL = "bench/chat"  # the reference row: a chat completion through the same gateway
CHAT = {"model": CHAT_MODEL, "messages": [{"role": "user", "content": "the quick brown fox jumps over the lazy dog"}]}
UPSTREAM_MODEL = "bench-embed-upstream"
PRICING = {"prompt": "0.00000002"}
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "the",
    "lazy",
    "dog",
    "near",
    "a",
    "quiet",
    "river",
    "bank",
    "at",
    "dawn",
]


class _Answer(msgspec.Struct):
    data: list[msgspec.Raw]


decode_answer = msgspec.json.Decoder(_Answer).decode


@dataclass
class Figure:
    inputs_per_s: float
    requests_per_s: float
    p50_ms: float
    errors: int
    cpu_us_per_input: float = float("nan")  # the measured server's CPU (its process tree), per input


def texts(n: int) -> list[str]:
    return [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(8)) for i in range(n)]


def vectors(batch: int) -> Callable[[bytes], bool]:
    return lambda body: len(decode_answer(body).data) == batch


def a_completion(body: bytes) -> bool:
    return b'"choices"' in body


async def measure(
    port: int, path: str, headers: dict[str, str], body: dict[str, Any], batch: int, args: argparse.Namespace,
    proc: Proc, check: Callable[[bytes], bool] | None = None,
) -> Figure:  # fmt: skip
    """`body` sent over and over on `--concurrency` connections; `batch` inputs each; `check` an answer."""
    raw = build_request(HOST, port, path, body, headers)
    check = check or vectors(batch)
    deadline = 0.0
    done, errors, times = 0, 0, []

    async def worker() -> None:
        nonlocal done, errors
        conn = LeanConnection(HOST, port)
        try:
            while time.monotonic() < deadline:
                t = await conn.request(raw)
                ok = t.status == 200 and check(t.body)
                if measuring:
                    done += ok
                    errors += not ok
                    times.append(t.total_ns)
        finally:
            await conn.close()

    measuring = False
    deadline = time.monotonic() + args.warmup
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    measuring = True
    start, cpu = time.monotonic(), proc.cpu_seconds()
    deadline = start + args.seconds
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    elapsed, cpu = time.monotonic() - start, proc.cpu_seconds() - cpu
    times.sort()
    p50 = times[len(times) // 2] / 1e6 if times else float("nan")
    cpu_us = cpu * 1e6 / (done * batch) if done else float("nan")
    return Figure(done * batch / elapsed, done / elapsed, p50, errors, cpu_us)


def start(work: Path, dims: int) -> tuple[Proc, int, Proc, int, dict[str, str]]:
    """The upstreams and the gateway: the embeddings upstream's and the gateway's process and port, and
    the gateway key's headers. The chat upstream (bench.echo) serves the reference row."""
    root = Path(__file__).parent.parent
    echo = start_upstream("chat-upstream", "0", work)
    upstream = spawn("embeddings-upstream", [sys.executable, "-m", "bench.embeddings_upstream", "--port", "0",
                     "--dims", str(dims)], cores="0", env=clean_env(), log_dir=work, cwd=root)  # fmt: skip
    base_url = wait_line(upstream, READY, timeout=30)
    config = {
        "providers": [
            {"slug": "bench", "name": "Bench", "api": "openai", "base_url": base_url},
            {"slug": "bench-chat", "name": "Bench chat", "api": "openai", "base_url": echo.base_url},
        ],
        "models": [
            {
                "id": CHAT_MODEL,
                "endpoints": [{"provider": "bench-chat", "upstream_model": "chat-upstream", "pricing": PRICING}],
            },
            {
                "id": MODEL,
                "architecture": {"input_modalities": ["text"], "output_modalities": ["embeddings"]},
                "endpoints": [{"provider": "bench", "upstream_model": UPSTREAM_MODEL, "pricing": PRICING}],
            },
        ],
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
    return upstream, urlsplit(base_url).port or 0, gateway, port, {"Authorization": f"Bearer {created['key']}"}


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        upstream, upstream_port, gateway_proc, gateway_port, headers = start(Path(tmp), args.dims)
        with contextlib.suppress(OSError, AttributeError):
            os.sched_setaffinity(0, {0})  # the load shares the upstream's core, off the gateway's
        print(f"embeddings, {args.dims} dims, {args.concurrency} connections, {args.seconds:g} s per figure")
        print(f"{'inputs/request':>14} {'direct inputs/s':>16} {'gateway inputs/s':>17} {'ratio':>6} "
              f"{'direct p50 ms':>14} {'gateway p50 ms':>15} {'gateway CPU us/input':>21} {'errors':>7}")  # fmt: skip
        for batch in args.batches:
            sent = {"input": texts(batch)}
            direct = await measure(
                upstream_port, "/v1/embeddings", {}, {"model": UPSTREAM_MODEL, **sent}, batch, args, upstream
            )
            gateway = await measure(
                gateway_port, "/api/v1/embeddings", headers, {"model": MODEL, **sent}, batch, args, gateway_proc
            )
            ratio = gateway.inputs_per_s / direct.inputs_per_s if direct.inputs_per_s else float("nan")
            print(f"{batch:>14} {direct.inputs_per_s:>16,.0f} {gateway.inputs_per_s:>17,.0f} {ratio:>6.2f} "
                  f"{direct.p50_ms:>14.2f} {gateway.p50_ms:>15.2f} {gateway.cpu_us_per_input:>21,.0f} "
                  f"{direct.errors + gateway.errors:>7}")  # fmt: skip
        chat = await measure(
            gateway_port, "/api/v1/chat/completions", headers, CHAT, 1, args, gateway_proc, a_completion
        )
        print(f"reference, a chat completion through the same gateway: {chat.requests_per_s:,.0f} requests/s, "
              f"gateway CPU {chat.cpu_us_per_input:,.0f} us/request, {chat.errors} errors")  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--batches", type=lambda s: [int(x) for x in s.split(",")], default=[1, 16, 128])
    p.add_argument("--dims", type=int, default=1536)
    p.add_argument("--quick", action="store_true", help="a smoke run: 0.5 s per figure")
    args = p.parse_args()
    if args.quick:
        args.seconds, args.warmup = 0.5, 0.2
    install_cleanup()
    try:
        asyncio.run(run(args))
    finally:
        stop_all()


if __name__ == "__main__":
    main()
