"""uvicorn's httptools protocol, with each connection's writes sent once per pass of the event loop.

An ASGI server writes a response's head when the app sends `http.response.start` and each body part
when it is sent: a non-streamed answer costs two send(2) calls, and on loopback each call also wakes
the reader. Profiled, the first of the two was ~15% of a request's CPU. Here a connection's writes
wait for the end of the current loop pass and go out in one call. That joins head and body, and it
puts the writes of many connections back to back, so a client (or a load generator) already awake
reads several answers per wake-up: ~190 -> ~170 us of gateway CPU per request under load, for one
loop pass of delay per write.

A streamed answer's body parts can also go out at once, from any callback, through the
`omnirouter.direct_body` scope extension: a relayed stream event then costs no ASGI message, no
task switch and no loop pass.

The protocol also closes a connection whose client trickles its request (slowloris): headers not
complete within `client_header_timeout`, or a body silent for `client_body_timeout`.

This leans on uvicorn's internals (the protocol's parser callbacks, its cycle's fields): pyproject.toml
pins uvicorn to the versions tested, and tests/test_uvicorn_internals.py fails when they change.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

if TYPE_CHECKING:
    from omnirouter.settings import Settings


class BatchingTransport:
    """A transport whose writes in one loop pass go out together when the pass ends."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        if self._pending is None:
            self._pending = [data]
            self._loop.call_soon(self.flush)
        else:
            self._pending.append(data)

    def write_now(self, data: bytes) -> None:
        """Write at once, after whatever is pending."""
        pending = self._pending
        if pending:
            self._pending = None  # the scheduled flush finds nothing
            pending.append(data)
            data = b"".join(pending)
        self._transport.write(data)

    def flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._pending = None
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending or ()))

    def __getattr__(self, name: str) -> Any:  # everything else is the real transport's
        return getattr(self._transport, name)


DIRECT_BODY = "omnirouter.direct_body"


class DirectBody:
    """The `omnirouter.direct_body` extension: body parts of a started chunked answer, written now;
    and a callback when the client disconnects, instead of a task waiting in receive() for it."""

    __slots__ = ("_cycle", "on_lost")

    def __init__(self, cycle: RequestResponseCycle) -> None:
        self._cycle = cycle
        self.on_lost: Callable[[], None] | None = None

    def watch(self, on_lost: Callable[[], None] | None) -> None:
        """Call `on_lost` (once) when the client disconnects before the answer is complete (at once
        if it already has); None stops watching."""
        self.on_lost = on_lost
        if on_lost is not None and self._cycle.disconnected:
            self.lost()

    def lost(self) -> None:
        on_lost, self.on_lost = self.on_lost, None
        if on_lost is not None and self._cycle.disconnected:
            on_lost()

    def write(self, body: bytes) -> bool:
        """Write a body part now, or return False when it cannot go this way: the answer has not
        started, was not chunked or has ended, or the client is slow (send() waits for it) or gone."""
        cycle = self._cycle
        if not cycle.chunked_encoding or cycle.flow.write_paused or cycle.disconnected or cycle.response_complete:
            return False
        data = b"%x\r\n%b\r\n" % (len(body), body)
        batching: BatchingTransport = cycle.transport  # type: ignore[assignment]
        if batching._pending:  # after what waits for the end of the loop pass
            batching.write_now(data)
        else:  # write_now's own path, without its call: this runs for every relayed chunk
            batching._transport.write(data)
        return True


def connection_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for the client connections: this protocol with the settings' timeouts, and
    the cap on a worker's connections (uvicorn answers 503 once it holds `limit_concurrency`,
    counting the one asking: one more lets `max_connections_per_worker` be served)."""
    return {
        "http": BatchingHttpToolsProtocol.configured(settings),
        "limit_concurrency": settings.max_connections_per_worker + 1,
    }


# What a connection waits for from its client.
_NOTHING, _HEADERS, _BODY = 0, 1, 2
REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class _Pipeline(list):  # type: ignore[type-arg]
    """uvicorn's queue of pipelined requests, which is almost always empty: a deque is 760 bytes per
    connection even then, a list 56."""

    __slots__ = ()

    def appendleft(self, item: Any) -> None:
        self.insert(0, item)


def _lean(event: asyncio.Event) -> None:
    """An asyncio.Event's waiters in a list instead of a deque (760 bytes): uvicorn makes one per
    connection and one per request, and at most one task waits on either. Event only appends to,
    removes from and iterates over it; if its internals differ, the event is left as it is."""
    if type(getattr(event, "_waiters", None)) is deque and not event._waiters:  # type: ignore[attr-defined]
        event._waiters = []  # type: ignore[attr-defined]


class BatchingHttpToolsProtocol(HttpToolsProtocol):
    # Our own fields in slots: uvicorn's protocol has 28 attributes, and an instance dict with more
    # than 29 keys is a table of its own (1.6 KB per connection instead of 0.3).
    __slots__ = ("_direct", "_since", "_stall_timer", "_waiting", "body_timeout", "header_timeout")

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        header_timeout: float = 10.0,
        body_timeout: float = 30.0,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.pipeline = _Pipeline()
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        # One timer per connection, armed when a request is still incomplete after a read; it checks
        # the deadline when it fires instead of being moved on every read.
        self._stall_timer: asyncio.TimerHandle | None = None
        self._waiting = _HEADERS
        self._since = 0.0  # when the awaited headers began, or the body last moved
        self._direct: DirectBody | None = None  # the current request's

    @classmethod
    def configured(cls, settings: Settings) -> Callable[..., BatchingHttpToolsProtocol]:
        """The protocol factory for uvicorn's `http` option, with the settings' timeouts (picklable, for
        the worker processes)."""
        return functools.partial(
            cls, header_timeout=settings.client_header_timeout, body_timeout=settings.client_body_timeout
        )

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(BatchingTransport(transport, self.loop))  # type: ignore[arg-type]
        _lean(self.flow._is_writable_event)
        self._since = self.loop.time()
        self._stall_timer = self.loop.call_later(self.header_timeout, self._check_stall)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None
        super().connection_lost(exc)
        if self._direct is not None:
            self._direct.lost()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # Mostly a read holds a whole request and nothing is awaited after it: no timer to arm.
        if self._waiting != _NOTHING:
            if self._waiting == _BODY:
                self._since = self.loop.time()
            if self._stall_timer is None and not self.transport.is_closing():
                timeout = self.header_timeout if self._waiting == _HEADERS else self.body_timeout
                self._stall_timer = self.loop.call_later(timeout, self._check_stall)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._waiting = _HEADERS
        self._since = self.loop.time()

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._waiting = _BODY
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope:  # not for an upgrade, which has no cycle
            _lean(cycle.message_event)
            self._direct = DirectBody(cycle)
            self.scope.setdefault("extensions", {})[DIRECT_BODY] = self._direct  # type: ignore[typeddict-item]

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._waiting = _NOTHING
        # Nothing is awaited from the client until the answer is out: no timer is held meanwhile (a
        # stream would hold one for the first `header_timeout` seconds of its life).
        if self._stall_timer is not None:
            self._stall_timer.cancel()
            self._stall_timer = None

    def _check_stall(self) -> None:
        self._stall_timer = None
        if self._waiting == _NOTHING or self.transport.is_closing():
            return
        now = self.loop.time()
        cycle = self.cycle
        if self._waiting == _HEADERS:
            timeout = self.header_timeout
            if cycle is not None and not cycle.response_complete:  # a pipelined request behind an answer
                self._since = now
        else:
            timeout = self.body_timeout
            # Not the client's silence: the app has not read what came (reading paused) or not yet
            # asked for the body (a client that sent `Expect: 100-continue` waits for that).
            if self.flow.read_paused or (cycle is not None and cycle.waiting_for_100_continue):
                self._since = now
        remaining = self._since + timeout - now
        if remaining > 0:
            self._stall_timer = self.loop.call_later(remaining, self._check_stall)
            return
        # Say why, unless this request's answer has begun or no byte of a request came (then close
        # quietly, as uvicorn closes an idle keep-alive connection).
        quiet = (cycle is not None and cycle.response_started) if self._waiting == _BODY else self.scope is None
        if not quiet:
            self.transport.write(REQUEST_TIMEOUT)
        self.transport.close()
