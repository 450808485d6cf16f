"""The concurrent-stream client: N SSE streams at once, each checked chunk by chunk.

Its own process (pinned away from the server under test) with uvloop and bare asyncio Protocols: no
HTTP library, one buffer per connection, chunked decoding and SSE splitting by hand, and each event's
JSON decoded by msgspec into only the fields checked. A stream passes when its answer is 200, every
content chunk equals the reference sequence in order, `data: [DONE]` arrives, and no error event.
Pacing is judged on the plateau, the window in which every stream is open (after the ramp, before the
first stream ends): the gaps between consecutive chunks there show whether the server kept up.

    python -m bench.streamclient --port P --path /v1/chat/completions --body-file F --ref-file R \
        --streams N --nominal S --delay S [--ramp S] [--timeout S] [--header 'K: V']...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.leanhttp import decode_chunk
from bench.procs import HOST
from bench.stats import summary


class StreamCheck(asyncio.Protocol):
    def __init__(
        self, request: bytes, ref: list[str], done: asyncio.Future[None], plateau: list[float], gaps: list[float]
    ) -> None:
        self.request, self.ref, self.done = request, ref, done
        self.plateau, self.gaps = plateau, gaps  # shared by all streams: [start, end], and the gaps in it
        self.buf = bytearray()
        self.sse = bytearray()
        self.headed = False
        self.chunk_left = -1  # bytes of the current HTTP chunk still to come; -1: expecting a size line
        self.index = 0  # content chunks matched so far
        self.saw_done = False
        self.error: str | None = None
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport subclasses
        self.start = self.last = self.end = 0.0
        self.max_gap = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.start = self.last = time.perf_counter()
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        try:
            self._parse()
        except Exception as exc:  # a malformed answer is a failed stream, not a crashed client
            self.finish(f"parse: {type(exc).__name__}: {exc}")

    def connection_lost(self, exc: Exception | None) -> None:
        self.finish(f"closed early: {exc or 'EOF'}")

    def finish(self, error: str | None = None) -> None:
        if self.done.done():
            return
        self.error = error
        self.end = time.perf_counter()
        self.done.set_result(None)
        if self.transport is not None:
            self.transport.close()

    def _parse(self) -> None:
        buf = self.buf
        if not self.headed:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            del buf[: end + 4]
            if not head.startswith(b"http/1.1 200"):
                return self.finish(f"status {head[9:12].decode()}")
            if b"transfer-encoding: chunked" not in head:
                return self.finish("answer not chunked")
            self.headed = True
        while not self.done.done():
            if self.chunk_left < 0:
                eol = buf.find(b"\r\n")
                if eol < 0:
                    return
                size = int(bytes(buf[:eol]).split(b";")[0], 16)
                del buf[: eol + 2]
                if size == 0:
                    return self._complete()
                self.chunk_left = size
            if len(buf) < self.chunk_left + 2:
                return
            self.sse += buf[: self.chunk_left]
            del buf[: self.chunk_left + 2]
            self.chunk_left = -1
            self._events()

    def _events(self) -> None:
        sse = self.sse
        while (end := sse.find(b"\n\n")) >= 0:
            event = bytes(sse[:end])
            del sse[: end + 2]
            for line in event.split(b"\n"):
                if not line.startswith(b"data:"):
                    continue  # comments (keep-alives) and other fields
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    self.saw_done = True
                    continue
                chunk = decode_chunk(payload)
                if chunk.error is not None:
                    return self.finish(f"error event: {payload[:200].decode(errors='replace')}")
                for choice in chunk.choices:
                    content = choice.delta.content if choice.delta is not None else None
                    if not content:
                        continue
                    if self.index >= len(self.ref) or content != self.ref[self.index]:
                        return self.finish(f"chunk {self.index}: got {content!r}")
                    now = time.perf_counter()
                    gap = now - self.last
                    self.max_gap = max(self.max_gap, gap)
                    if self.index and self.plateau[0] <= self.last and now <= self.plateau[1]:
                        self.gaps.append(gap)
                    self.index += 1
                    self.last = now

    def _complete(self) -> None:
        if self.index != len(self.ref):
            return self.finish(f"incomplete: {self.index} of {len(self.ref)} chunks")
        if not self.saw_done:
            return self.finish("no [DONE]")
        self.finish(None)


def _kind(error: str) -> str:
    return error.split(":")[0].split(" ")[0] if error else "ok"


async def run(
    port: int, request: bytes, ref: list[str], streams: int, ramp: float, timeout: float, nominal: float, delay: float
) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    checks: list[StreamCheck] = []
    connect_errors: Counter[str] = Counter()
    # Every stream is open from the end of the ramp (plus one chunk interval for the last one's first
    # chunk) until the first stream ends. Without such a window (a ramp as long as a stream), all gaps.
    t0 = time.perf_counter()
    plateau = [t0 + ramp + delay, t0 + nominal]
    if plateau[1] - plateau[0] < 2 * delay:
        plateau = [0.0, float("inf")]
    gaps: list[float] = []

    async def open_one() -> None:
        check = StreamCheck(request, ref, loop.create_future(), plateau, gaps)
        checks.append(check)
        try:
            await loop.create_connection(lambda: check, HOST, port)
        except OSError as exc:
            connect_errors[type(exc).__name__] += 1
            check.finish(f"connect: {exc}")

    # Open the streams evenly over `ramp` seconds, in 10 ms steps, so the listen backlog keeps up.
    start = loop.time()
    steps = max(1, int(ramp / 0.01))
    openers = []
    for step in range(steps):
        due = streams * (step + 1) // steps - streams * step // steps
        openers += [asyncio.create_task(open_one()) for _ in range(due)]
        await asyncio.sleep(max(0.0, start + (step + 1) * ramp / steps - loop.time()))
    await asyncio.gather(*openers)
    deadline = start + ramp + timeout
    pending = [c.done for c in checks if not c.done.done()]
    if pending:
        await asyncio.wait(pending, timeout=max(0.1, deadline - loop.time()))
    for c in checks:
        c.finish("timeout")
    errors = [c.error for c in checks if c.error]
    ok = [c for c in checks if not c.error]
    kinds = Counter(_kind(e) for e in errors)
    to_monotonic = time.monotonic() - time.perf_counter()  # the harness samples on time.monotonic()
    return {
        "streams": streams,
        "plateau_monotonic": [round(x + to_monotonic, 4) for x in plateau] if plateau[0] else None,
        "ok": len(ok),
        "failed": len(errors),
        "error_kinds": dict(kinds),
        "first_errors": errors[:3],
        "chunks_expected": streams * len(ref),
        "chunks_received": sum(c.index for c in checks),
        "duration_s": summary([c.end - c.start for c in ok]),
        "max_gap_ms": summary([c.max_gap * 1000 for c in ok]),
        "plateau_s": round(min(plateau[1] - plateau[0], nominal), 3),
        "plateau_gap_ms": summary([g * 1000 for g in gaps]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.streamclient")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--body-file", required=True)
    parser.add_argument("--ref-file", required=True)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--streams", type=int, required=True)
    parser.add_argument("--ramp", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--nominal", type=float, required=True, help="a stream's length when on time, seconds")
    parser.add_argument("--delay", type=float, required=True, help="seconds between chunks")
    args = parser.parse_args()
    # Each stream is a socket: lift the soft limit on open files as far as the hard limit allows.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    body = Path(args.body_file).read_bytes()
    head = [f"POST {args.path} HTTP/1.1", f"Host: {HOST}:{args.port}", "Content-Type: application/json"]
    head += [*args.header, f"Content-Length: {len(body)}"]
    request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    ref = json.loads(Path(args.ref_file).read_text())
    factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        result = runner.run(
            run(args.port, request, ref, args.streams, args.ramp, args.timeout, args.nominal, args.delay)
        )
    result["nofile_limit"] = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    print("BENCH_JSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
