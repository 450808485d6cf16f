"""What omnirouter.client costs a caller against the OpenAI SDK, side by side in one run.

    python -m bench.client [--requests 2000] [--rounds 3]

bench.echo (OpenAI chat completions from bare asyncio) runs on core 0; this process, on core 1, sends
the same chat completion through each client in turn, one request at a time on one keep-alive
connection: omnirouter.client's OpenRouter and AsyncOpenRouter, and openai's OpenAI and AsyncOpenAI
(both clients are built on httpx). Each row is a JSON answer and a 5-word stream read to its end.

Prints the caller's CPU per request (us, this process: building the request, httpx, reading and
typing the answer) and the ratio to the OpenAI SDK's, each the median of `--rounds` runs taken in
turn. Every answer's text is checked. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.procs import install_cleanup, stop_all
from bench.targets import start_upstream

MESSAGES = [{"role": "user", "content": "the quick brown fox jumps"}]
EXPECTED = "Echo: the quick brown fox jumps"


def _sync_rows(base_url: str) -> dict[str, Callable[[], str]]:
    import openai

    from omnirouter.client import OpenRouter

    ours, theirs = OpenRouter(api_key="k", base_url=base_url), openai.OpenAI(api_key="k", base_url=base_url)

    def ours_json() -> str:
        return ours.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content

    def theirs_json() -> str:
        return theirs.chat.completions.create(model="m", messages=MESSAGES).choices[0].message.content  # type: ignore[return-value]

    def ours_stream() -> str:
        chunks = ours.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    def theirs_stream() -> str:
        chunks = theirs.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    return {"omnirouter sync JSON": ours_json, "openai sync JSON": theirs_json,
            "omnirouter sync stream": ours_stream, "openai sync stream": theirs_stream}  # fmt: skip


def _async_rows(base_url: str, loop: asyncio.AbstractEventLoop) -> dict[str, Callable[[], str]]:
    import openai

    from omnirouter.client import AsyncOpenRouter

    ours, theirs = AsyncOpenRouter(api_key="k", base_url=base_url), openai.AsyncOpenAI(api_key="k", base_url=base_url)

    async def ours_json() -> str:
        return (await ours.chat.completions.create(model="m", messages=MESSAGES)).choices[0].message.content

    async def theirs_json() -> str:
        return (await theirs.chat.completions.create(model="m", messages=MESSAGES)).choices[0].message.content or ""

    return {"omnirouter async JSON": lambda: loop.run_until_complete(ours_json()),
            "openai async JSON": lambda: loop.run_until_complete(theirs_json())}  # fmt: skip


def measure(run: Callable[[], str], requests: int) -> float:
    """The caller's CPU per request, in microseconds."""
    for _ in range(20):  # connections open, caches warm
        assert run() == EXPECTED
    start = time.process_time()
    for _ in range(requests):
        if run() != EXPECTED:
            raise SystemExit("an answer was not the echo")
    return (time.process_time() - start) / requests * 1e6


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    install_cleanup()
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    loop = asyncio.new_event_loop()
    try:
        upstream = start_upstream("echo", "0", Path(tempfile.mkdtemp(prefix="bench-client-")))
        base_url = upstream.base_url.rstrip("/") + "/v1"
        rows: dict[str, Any] = {**_sync_rows(base_url), **_async_rows(base_url, loop)}
        figures: dict[str, list[float]] = {name: [] for name in rows}
        for _ in range(args.rounds):
            for name, run in rows.items():
                figures[name].append(measure(run, args.requests))
        cpu = {name: statistics.median(values) for name, values in figures.items()}
        print(f"caller CPU per request, median of {args.rounds} rounds of {args.requests}")
        for name, us in cpu.items():
            peer = name.replace("omnirouter", "openai")
            ratio = f"  {us / cpu[peer]:.2f}x openai" if peer != name else ""
            print(f"  {name:24} {us:8.0f} us{ratio}")
    finally:
        loop.close()
        stop_all()


if __name__ == "__main__":
    main()
