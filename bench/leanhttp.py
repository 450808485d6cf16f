"""A lean HTTP/1.1 client on one keep-alive connection, for latency with one request in flight.

No pool, no header objects, no decoding: the request bytes are built once, and the response is read
with the fewest awaits (headers in one `readuntil`, Content-Length bodies in one `readexactly`,
chunked bodies a chunk at a time), so the client adds as little as possible to what it measures.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import msgspec


def build_request(host: str, port: int, path: str, body: object, headers: dict[str, str]) -> bytes:
    payload = msgspec.json.encode(body)
    head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Content-Type: application/json"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    head.append(f"Content-Length: {len(payload)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


@dataclass(slots=True)
class Timing:
    status: int
    first_event_ns: int  # until the first SSE `data:` event (streams); the whole answer otherwise
    total_ns: int
    body: bytes


class LeanConnection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.last_head = b""  # the last answer's status line and headers

    async def _open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._reader = self._writer = None

    async def request(self, raw: bytes, timeout: float = 60.0) -> Timing:
        # Connecting is not part of the measured time: a client keeps its connection.
        if self._writer is None:
            await self._open()
        try:
            return await asyncio.wait_for(self._exchange(raw), timeout)
        except BaseException:
            await self.close()
            raise

    async def _exchange(self, raw: bytes) -> Timing:
        reader, writer = self._reader, self._writer
        assert reader is not None and writer is not None
        start = time.perf_counter_ns()
        writer.write(raw)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        self.last_head = head
        lower = head.lower()
        first = 0
        if b"transfer-encoding: chunked" in lower:
            parts: list[bytes] = []
            tail = b""
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b""):
                        pass  # trailers
                    break
                data = (await reader.readexactly(size + 2))[:-2]
                if not first and b"data:" in tail + data:
                    first = time.perf_counter_ns() - start
                tail = data[-5:]
                parts.append(data)
            body = b"".join(parts)
        else:
            length = 0
            for line in lower.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line[15:])
            body = await reader.readexactly(length) if length else b""
        total = time.perf_counter_ns() - start
        if b"connection: close" in lower:
            await self.close()
        return Timing(status, first or total, total, body)


class _Delta(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    delta: _Delta | None = None


class Chunk(msgspec.Struct):
    """The parts of a chat.completion.chunk a client checks; everything else is skipped unparsed."""

    choices: list[_Choice] = []
    error: object = None


decode_chunk = msgspec.json.Decoder(Chunk).decode


def sse_contents(body: bytes) -> list[str]:
    """The non-empty `delta.content` strings of an SSE body, in order."""
    out = []
    for line in body.split(b"\n"):
        if line.startswith(b"data:") and line[5:].strip() != b"[DONE]":
            chunk = decode_chunk(line[5:])
            out += [c.delta.content for c in chunk.choices if c.delta is not None and c.delta.content]
    return out
