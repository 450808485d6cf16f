"""An upstream's server-sent events as internal chunk dicts, for every adapter whose provider streams SSE.

The connection (http1.Response) splits the stream into `data:` payloads; a subclass's `translate`
turns a batch of them into chat.completion.chunk dicts and says when the stream is complete.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omnirouter.providers.base import StreamResult, UpstreamError
from omnirouter.providers.http1 import Response


class SSEStream(StreamResult):
    """An iterator object, not a generator, so that a cancellation while waiting for the next event
    leaves it usable: a caller can go on reading (to bill a provider that cannot abort) after its
    own task was cancelled."""

    def __init__(self, resp: Response) -> None:
        self.resp = resp
        self.finished = False  # the stream's last event was read, or it failed
        self.failure: Exception | None = None  # what ended it, raised in the relaying task
        # Translated by __anext__, not yet taken: a list, not a deque (760 bytes for each open stream),
        # taken from the front only until a relay takes over (which takes every chunk as it comes).
        self.pending: list[dict[str, Any]] = []
        self.on_chunks: Callable[[list[dict[str, Any]]], None] | None = None  # while relaying
        super().__init__(chunks=self)

    def translate(self, events: list[bytes]) -> list[dict[str, Any]]:
        """The chunks these SSE data payloads carry, in order. Set `finished` on the stream's last
        event; on a failure set `finished` and `failure` and return the chunks before it."""
        raise NotImplementedError

    def ended(self) -> list[dict[str, Any]]:
        """The connection ended before `translate` saw the stream's last event: the chunks still
        owed, for an API whose streams end with the connection (Gemini), else raise. Here: a cut."""
        raise self.resp.error or UpstreamError(
            "Upstream stream ended before it was complete", status=502, kind="protocol"
        )

    def __aiter__(self) -> SSEStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        pending = self.pending
        while not pending:
            if self.finished:
                failure, self.failure = self.failure, None
                if failure is not None:
                    raise failure
                raise StopAsyncIteration
            resp = self.resp
            events = resp.events
            while not events:
                if (tail := self._at_end()) is not None:
                    pending.extend(tail)
                    break
                await resp.wait()
            else:
                pending.extend(self.translate([events.pop(0)]))
        return pending.pop(0)

    async def relay(self, on_chunks: Callable[[list[dict[str, Any]]], None]) -> None:
        """Events are translated and handed on in the connection's own callback as they are read, so
        a relayed chunk costs no task switch: the relaying task only waits for the end."""
        resp = self.resp
        self.on_chunks = on_chunks
        if self.pending:
            taken, self.pending = self.pending, []
            on_chunks(taken)
        if resp.events and not self.finished:
            queued, resp.events = resp.events, []
            self._deliver(queued)
        try:
            # A bound method, not a closure: no function, cells and tuple held per open stream.
            resp.on_events = None if self.finished else self._deliver
            while not self.finished:
                if (tail := self._at_end()) is not None:
                    resp.on_events = None
                    if tail:
                        on_chunks(tail)
                    break
                await resp.wait()
        finally:
            resp.on_events = None
            self.on_chunks = None
        if self.failure is not None:
            raise self.failure

    def _deliver(self, events: list[bytes]) -> None:
        """The connection's callback while relaying: these events' chunks, to `on_chunks`."""
        chunks = self.translate(events)
        if chunks:
            try:
                self.on_chunks(chunks)  # type: ignore[misc]
            except Exception as exc:  # raised in the relaying task, not in the connection's callback
                self.finished, self.failure = True, self.failure or exc
        if self.finished:
            self.resp.on_events = None
            self.resp.wake()

    def _at_end(self) -> list[dict[str, Any]] | None:
        """None while the connection is open; once it has ended, what `ended` says is still owed."""
        resp = self.resp
        if resp.error is None and not resp.complete:
            return None
        self.finished = True
        return self.ended()

    def pause(self) -> None:
        self.resp.pause()

    def resume(self) -> None:
        self.resp.resume()

    async def close(self) -> None:
        # An unfinished stream drops its connection so the upstream stops generating (and billing).
        self.resp.close()


class DecodedStream(SSEStream):
    """An SSE stream whose decoder turns each event into chunks (`feed(data, out)`, raising
    UpstreamError for an error event) and says when the stream's last event came (`done`)."""

    def __init__(self, resp: Response, decoder: Any) -> None:
        super().__init__(resp)
        self.decoder = decoder

    def translate(self, events: list[bytes]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        decoder = self.decoder
        for data in events:
            try:
                fed = decoder.feed(data, out)
            except UpstreamError as exc:
                self.finished, self.failure = True, exc
                break
            self.fed(fed, data, out)
            if decoder.done:
                self.finished = True
                break
        return out

    def fed(self, fed: Any, data: bytes, out: list[dict[str, Any]]) -> None:
        """After each event, with what `feed` returned: nothing more here (see PassedThrough)."""


class PassedThrough(DecodedStream):
    """A passed-through stream (pipeline/attempt.py, Passthrough): the decoder's chunks, for the
    gateway's books, and after them each event as it came, `{"native": relayed(...)}`, for the
    client's format to relay. Until the first chunk the events are held, so that an error before
    any content still falls back to another endpoint, as a translated stream does."""

    def __init__(self, resp: Response, decoder: Any) -> None:
        super().__init__(resp, decoder)
        self.held: list[dict[str, Any]] | None = []

    def relayed(self, fed: Any, data: bytes) -> tuple[bytes, bytes, Any]:
        """(event name, its data as it came, the decoded event where the format needs it)."""
        raise NotImplementedError

    def fed(self, fed: Any, data: bytes, out: list[dict[str, Any]]) -> None:
        item = {"native": self.relayed(fed, data)}
        if self.held is None:
            out.append(item)
            return
        self.held.append(item)
        if out or self.decoder.done:
            out += self.held
            self.held = None
