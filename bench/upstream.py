"""What the benchmark upstreams (bench.echo, bench.paced) and the byte relay share: how they start, the
line that says they are listening, and SSE framing."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

READY = "bench upstream listening on"
SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


def sse_chunk(data: bytes) -> bytes:
    """One SSE event (`data` is its payload) as one HTTP chunk."""
    payload = b"data: " + data + b"\n\n"
    return b"%x\r\n%b\r\n" % (len(payload), payload)


def run_upstream(prog: str, serve_fn: Any, chunks_default: int | None, delay_default: float) -> None:
    """The command line both benchmark upstreams share: --port, --chunks, --chunk-delay, on uvloop."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--chunks", type=int, default=chunks_default)
    parser.add_argument("--chunk-delay", type=float, default=delay_default)
    args = parser.parse_args()
    factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve_fn(args.port, args.chunks, args.chunk_delay))
