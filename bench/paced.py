"""The paced upstream for figure 4: OpenAI chat completion streams, one chunk every `delay` seconds.

omnirouter's FakeOpenAI (aiohttp, a sleeping task per stream) needs ~25 us of CPU per chunk and fell
behind at 2,000 concurrent streams on its own core, below what the gateways are asked to carry. This
server is bare asyncio: pre-encoded chunks, one timer heap for every stream, one `write` per chunk. It
answers every POST with the same stream, in the wire format FakeOpenAI sends (a role chunk, N content
chunks "w0", " w1", ..., a finish chunk, a usage chunk, `data: [DONE]`). A request whose body says
`"pace C D"` (anywhere: the user's message, which every gateway passes on as it is) gets C content
chunks D seconds apart instead, so one upstream serves the ladders of both figure 4 and figure 4b.

    python -m bench.paced --port 0 --chunks N --chunk-delay S
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import re
import signal
import time
from typing import Any

from bench.upstream import READY, SSE_HEAD, run_upstream, sse_chunk

TICK = 0.002  # seconds: chunks go out up to this early, which does not accumulate (see Stream.step)
PACE = re.compile(rb"pace (\d+) (\d+(?:\.\d+)?)")
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def _frame(event: dict[str, object] | str) -> bytes:
    """One SSE event as one HTTP chunk."""
    return sse_chunk((event if isinstance(event, str) else json.dumps(event, separators=(",", ":"))).encode())


def frames(chunks: int) -> tuple[bytes, list[bytes], bytes]:
    """(first write: head, role chunk and first content chunk; the other content chunks; the end)."""
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": int(time.time())}
    base["model"] = "bench-upstream"

    def chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _frame({**base, "choices": [choice]})

    words = [chunk({"content": ("" if i == 0 else " ") + f"w{i}"}) for i in range(chunks)]
    role = chunk({"role": "assistant", "content": ""})
    usage = {"prompt_tokens": 1, "completion_tokens": chunks, "total_tokens": chunks + 1}
    end = chunk({}, "stop") + _frame({**base, "choices": [], "usage": usage}) + _frame("[DONE]") + b"0\r\n\r\n"
    return SSE_HEAD + role + words[0], words[1:], end


class Pace:
    """One kind of stream: its frames, pre-encoded, and the delay between its content chunks."""

    __slots__ = ("delay", "end", "first", "rest")

    def __init__(self, chunks: int, delay: float) -> None:
        self.first, self.rest, self.end = frames(chunks)
        self.delay = delay


class Scheduler:
    """Every pending chunk of every stream in one heap, drained by one task."""

    def __init__(self, default: Pace) -> None:
        self.default = default
        self.paces: dict[bytes, Pace] = {}  # by the "pace C D" a request asked for
        self.heap: list[tuple[float, int, Stream]] = []
        self.seq = itertools.count()
        self.wake = asyncio.Event()

    def pace(self, body: bytes) -> Pace:
        found = PACE.search(body)
        if found is None:
            return self.default
        pace = self.paces.get(found[0])
        if pace is None:
            pace = self.paces[found[0]] = Pace(int(found[1]), float(found[2]))
        return pace

    def add(self, stream: Stream, due: float) -> None:
        heapq.heappush(self.heap, (due, next(self.seq), stream))
        self.wake.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self.heap:
                self.wake.clear()
                await self.wake.wait()
            # Everything due within the next TICK goes now, then sleep at least TICK: the loop's timers
            # have millisecond resolution, so waiting for each due time exactly would busy-spin.
            horizon = loop.time() + TICK
            while self.heap and self.heap[0][0] <= horizon:
                _, _, stream = heapq.heappop(self.heap)
                stream.step(self)
            if self.heap:
                await asyncio.sleep(max(TICK, self.heap[0][0] - loop.time()))


class Stream(asyncio.Protocol):
    """One client connection: reads requests (keep-alive), answers each with the paced stream."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport subclasses
        self.buf = bytearray()
        self.pace = scheduler.default
        self.index = -1  # the next of pace.rest to send; -1: no answer in progress
        self.due = 0.0
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def data_received(self, data: bytes) -> None:
        self.buf += data
        self._next_request()

    def _next_request(self) -> None:
        if self.index >= 0 or self.transport is None:
            return  # one answer at a time; a pipelined request waits in the buffer
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end]).lower()
        length = 0
        for line in head.split(b"\r\n"):
            if line.startswith(b"content-length:"):
                length = int(line[15:])
        if len(self.buf) < end + 4 + length:
            return
        body = bytes(self.buf[end + 4 : end + 4 + length])
        del self.buf[: end + 4 + length]
        if not head.startswith(b"post "):
            self.transport.write(NOT_FOUND)
            return self._next_request()
        pace = self.pace = self.scheduler.pace(body)
        self.transport.write(pace.first)
        if not pace.rest:
            return self._end()
        self.index = 0
        self.due = asyncio.get_running_loop().time() + pace.delay
        self.scheduler.add(self, self.due)

    def step(self, scheduler: Scheduler) -> None:
        if self.closed or self.transport is None:
            return
        pace = self.pace
        self.transport.write(pace.rest[self.index])
        self.index += 1
        if self.index == len(pace.rest):
            return self._end()  # the finish, usage and [DONE] follow the last chunk at once
        # Due times advance along the schedule, not from `now`: a late tick does not drift, so any
        # lateness a client sees is the gateway's (or this server's, if it is saturated).
        self.due += pace.delay
        scheduler.add(self, self.due)

    def _end(self) -> None:
        self.transport.write(self.pace.end)
        self.index = -1
        self._next_request()


async def serve(port: int, chunks: int, delay: float) -> None:
    loop = asyncio.get_running_loop()
    scheduler = Scheduler(Pace(chunks, delay))
    ticker = asyncio.create_task(scheduler.run())
    server = await loop.create_server(lambda: Stream(scheduler), "127.0.0.1", port, backlog=4096)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    bound = server.sockets[0].getsockname()[1]
    print(f"{READY} http://127.0.0.1:{bound}/v1", flush=True)
    try:
        await stop.wait()
    finally:
        ticker.cancel()
        server.close()


def main() -> None:
    run_upstream("python -m bench.paced", serve, 100, 0.1)


if __name__ == "__main__":
    main()
