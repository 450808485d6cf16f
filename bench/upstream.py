"""The benchmark upstream: omnirouter's FakeOpenAI, with its request log bounded.

`python -m omnirouter.testing.fake_openai` keeps every request it saw (for tests that inspect them),
so over the hundreds of thousands of requests of a full run the upstream would grow by gigabytes and
slow down as it went, and the "direct" memory figure would measure that log. This launcher is the same
server with the log capped.

    python -m bench.upstream --port 0 [--chunks N] [--chunk-delay S]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from typing import Any

from omnirouter.testing.fake_openai import FakeOpenAI, Reply

READY = "FakeOpenAI listening on"


async def serve(port: int, chunks: int | None, chunk_delay: float) -> None:
    fake = FakeOpenAI(port=port, pace=chunk_delay, keep_requests=100)
    if chunks is not None:
        # N distinct words, so a client can tell a lost or reordered chunk from the next one.
        fake.always(Reply(" ".join(f"w{i}" for i in range(chunks))))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await fake.start()
    print(f"{READY} {fake.base_url}", flush=True)
    try:
        await stop.wait()
    finally:
        await fake.stop()


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


def main() -> None:
    run_upstream("python -m bench.upstream", serve, None, 0.0)


if __name__ == "__main__":
    main()
