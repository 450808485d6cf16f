"""Circuit breakers shared by every instance through Redis (routing/health.py is one process's).

The request path reads and writes the local circuits exactly as without Redis; what changes is
announced: an endpoint that opens its circuit (a failure, or the upstream's Retry-After), closes it (a
success) or starts its half-open probe goes into an outbox, and the link (cluster/routing_link.py)
publishes it and applies what the other instances published. Events are states, not operations
("open until T with cooldown C"), so every instance applies the same sequence in Redis's order and
ends up with the same circuits, its own events included.

Times cross machines as wall-clock seconds (instances' clocks are assumed NTP-close) and are turned
into this process's monotonic clock on arrival.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from omnirouter.routing.health import PROBE_TIMEOUT_SECONDS, EndpointKey, Health, _Circuit

# One announcement: (kind, key, wall-clock deadline, cooldown): kind "open" (deadline: end of the
# cooling period), "close", or "probe" (deadline: when the probe's slot frees itself).
Event = tuple[str, EndpointKey, float, float]


class SharedHealth(Health):
    def __init__(self, announce: Callable[[Event], None] | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.announce: Callable[[Event], None] = announce or (lambda event: None)

    # -- the request path: the local breaker, plus an announcement when a circuit changes
    def failed(self, key: EndpointKey, retry_after: float | None = None) -> None:
        super().failed(key, retry_after)
        circuit = self._circuits[key]
        self.announce(("open", key, self.wall(circuit.open_until), circuit.cooldown))

    def succeeded(self, key: EndpointKey) -> None:
        if self._circuits.pop(key, None) is not None:  # only a closing circuit is news
            self.announce(("close", key, 0.0, 0.0))

    def attempt_started(self, key: EndpointKey) -> None:
        circuit = self._circuits.get(key)
        if circuit is None:  # the common case: nothing to probe
            return
        now = self.clock()
        if now >= circuit.open_until:
            circuit.probe_started = now
            self.announce(("probe", key, self.wall(now + PROBE_TIMEOUT_SECONDS), 0.0))

    # -- what other instances said
    def apply(self, event: Event) -> None:
        kind, key, deadline, cooldown = event
        if kind == "open":
            self._circuits[key] = _Circuit(open_until=self.local(deadline), cooldown=cooldown)
        elif kind == "close":
            self._circuits.pop(key, None)
        elif kind == "probe" and (circuit := self._circuits.get(key)) is not None:
            self.hold_probe(key, circuit, self.local(deadline))

    def hold_probe(self, key: EndpointKey, circuit: _Circuit, until: float) -> None:
        """Someone else probes (or holds the slot to probe) until `until`: keep the endpoint at the end
        of the order here meanwhile (Health counts a probe's slot from its start)."""
        start = until - PROBE_TIMEOUT_SECONDS
        if circuit.probe_started is None or circuit.probe_started < start:
            circuit.probe_started = start

    def circuits(self) -> dict[EndpointKey, _Circuit]:
        return self._circuits

    def open_events(self) -> list[Event]:
        """Every circuit this process knows, as announcements (republished after Redis comes back)."""
        return [("open", k, self.wall(c.open_until), c.cooldown) for k, c in self._circuits.items()]

    # -- clocks
    def wall(self, local: float) -> float:
        return time.time() + (local - self.clock())

    def local(self, wall: float) -> float:
        return self.clock() + (wall - time.time())
