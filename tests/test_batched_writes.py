"""The server transport that sends a connection's writes once per event-loop pass."""

from __future__ import annotations

import asyncio
from typing import Any

from omnirouter.batched_writes import BatchingTransport


class Recording:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


async def test_writes_of_one_pass_go_out_together_in_order():
    raw = Recording()
    t = BatchingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(b"HTTP/1.1 200 OK\r\n\r\n")
    t.write(b"body")
    assert raw.writes == [] and t.get_write_buffer_size() == 23
    await asyncio.sleep(0)
    assert raw.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
    t.write(b"next")
    await asyncio.sleep(0)
    assert raw.writes[-1] == b"next" and len(raw.writes) == 2


async def test_close_sends_what_is_pending_and_abort_drops_it():
    raw = Recording()
    t = BatchingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(b"last words")
    t.close()
    assert raw.writes == [b"last words"] and raw.closed
    await asyncio.sleep(0)
    assert raw.writes == [b"last words"]  # the scheduled flush finds nothing left

    raw = Recording()
    t = BatchingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(b"never")
    t.abort()
    await asyncio.sleep(0)
    assert raw.writes == [] and raw.aborted


async def test_other_transport_methods_are_the_real_ones():
    raw = Recording()
    t = BatchingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    assert t.get_extra_info("peername") == ("127.0.0.1", 1)
    assert not t.is_closing()


async def test_write_now_goes_after_what_is_pending_at_once():
    raw = Recording()
    t = BatchingTransport(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
    t.write(b"head ")
    t.write_now(b"event")
    assert raw.writes == [b"head event"]
    await asyncio.sleep(0)
    assert raw.writes == [b"head event"]  # the scheduled flush finds nothing left
    t.write_now(b"next")
    assert raw.writes[-1] == b"next"
