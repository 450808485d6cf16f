"""Stopping for a rollout: what a worker does between SIGTERM and its exit.

uvicorn already stops accepting on SIGTERM (or SIGINT), lets the requests in flight finish, then runs
the app's shutdown (which flushes generations and spend). This adds what a rollout needs around it:

- the worker knows at once that it is stopping, so `/health/ready` answers 503 (a load balancer or
  Kubernetes takes it out of rotation) while the answers in flight go on;
- a bound, `shutdown_timeout`: streams still open then are cut cleanly (an in-band error, the usage
  and cost of what was relayed, the end marker; billed and recorded like a client's disconnect), and
  uvicorn's own timeout, a little later, cancels whatever is left;
- the app's shutdown waits for background billing reads only until that bound.

uvicorn installs its handlers with signal.signal when it starts serving, before the app's startup:
the app wraps them (in the main thread only, where signal handlers live) and calls the original, so
uvicorn's behaviour is unchanged. uvicorn restores the handlers it found when it stops.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from omnirouter.errors import GatewayError

if TYPE_CHECKING:
    from omnirouter.pipeline.stream import KeepAlive

log = logging.getLogger("omnirouter")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# After the bound, the time cut streams have to write their end and settle before uvicorn cancels
# what is left (a non-streamed request still waiting for its upstream).
CUT_GRACE_SECONDS = 5.0


def server_timeout(shutdown_timeout: float) -> float:
    """uvicorn's `timeout_graceful_shutdown` for a given `shutdown_timeout`."""
    return shutdown_timeout + CUT_GRACE_SECONDS


class Shutdown:
    """Whether this worker is stopping, since when, and what to do when its bound is reached."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.since: float | None = None  # monotonic time of the signal
        self.on_bound: Callable[[], None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._wrapped: dict[int, tuple[Any, Any]] = {}  # signal -> (our handler, the one it wraps)

    @property
    def draining(self) -> bool:
        return self.since is not None

    def remaining(self) -> float:
        """Seconds left until the bound (the whole timeout before a stop began)."""
        if self.since is None:
            return self.timeout
        return max(0.0, self.since + self.timeout - time.monotonic())

    def install(self, on_bound: Callable[[], None]) -> None:
        """Watch for the stop signals (wrapping the server's handlers); call `on_bound` at the bound."""
        self.on_bound = on_bound
        self._loop = asyncio.get_running_loop()
        if threading.current_thread() is not threading.main_thread():
            return  # an embedding server in a thread: begin() is its to call
        for sig in STOP_SIGNALS:
            previous = signal.getsignal(sig)
            if callable(previous):
                ours = self._wrap(previous)
                signal.signal(sig, ours)
                self._wrapped[sig] = (ours, previous)

    def _wrap(self, previous: Callable[[int, FrameType | None], Any]) -> Callable[[int, FrameType | None], None]:
        def handler(signum: int, frame: FrameType | None) -> None:
            if self.since is None:
                self.since = time.monotonic()  # readiness is 503 from this instant
                loop = self._loop
                if loop is not None and not loop.is_closed():
                    loop.call_soon_threadsafe(self.begin)
            previous(signum, frame)

        return handler

    def begin(self) -> None:
        """The stop has begun (a signal, or a caller): arm the bound once."""
        if self.since is None:
            self.since = time.monotonic()
        if self._timer is not None:
            return
        log.info("stopping: new connections refused, finishing what is in flight for up to %g s", self.timeout)
        loop = self._loop or asyncio.get_running_loop()
        self._timer = loop.call_later(self.remaining(), self._reached)

    def _reached(self) -> None:
        if self.on_bound is not None:
            self.on_bound()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        # Give the server its handlers back (a server embedding the app may outlive it).
        for sig, (ours, previous) in self._wrapped.items():
            if signal.getsignal(sig) is ours:
                signal.signal(sig, previous)
        self._wrapped.clear()


def cut_streams(keepalive: KeepAlive, timeout: float) -> None:
    """End every stream still open at the bound (KeepAlive knows each open stream of the worker)."""
    streams = list(keepalive.streams)
    if not streams:
        return
    log.warning("shutdown_timeout (%g s) reached: ending %d open stream(s)", timeout, len(streams))
    err = GatewayError(
        503,
        f"The server is restarting and this stream reached its shutdown_timeout ({timeout:g} s); "
        "what was generated so far is billed; retry to continue",
        {"error_type": "server_shutdown"},
    )
    for stream in streams:
        stream.cut(err)
