"""A circuit breaker per endpoint, so a dead provider costs one failed attempt, not one per request.

closed     the endpoint takes its normal place in the order.
open       it failed: for a cooling period (30 s, or the upstream's Retry-After, doubling while it
           keeps failing, up to 5 minutes) it goes to the end of the order, still a last resort.
half-open  the cooling period is over: one request at a time probes it at its normal place; others
           keep it at the end. A success closes the circuit, a failure opens it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

COOLDOWN_SECONDS = 30.0  # OpenRouter prefers providers without outages in the last 30 seconds
MAX_COOLDOWN_SECONDS = 300.0
PROBE_TIMEOUT_SECONDS = 60.0  # a probe that never reported back frees its slot after this

EndpointKey = tuple[str, str]  # (model id, endpoint slug)


@dataclass
class _Circuit:
    open_until: float
    cooldown: float
    probe_started: float | None = None


class Health:
    def __init__(self, cooldown: float = COOLDOWN_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.cooldown = cooldown
        self.clock = clock  # monotonic seconds; a test advances its own instead of sleeping
        self._circuits: dict[EndpointKey, _Circuit] = {}

    def state(self, key: EndpointKey, now: float | None = None) -> str:
        circuit = self._circuits.get(key)
        if circuit is None:
            return "closed"
        return "open" if (self.clock() if now is None else now) < circuit.open_until else "half_open"

    def states(self) -> dict[EndpointKey, str]:
        """Every circuit that is not closed, with its state (for /metrics)."""
        now = self.clock()
        return {key: self.state(key, now) for key in self._circuits}

    def deprioritised(self, key: EndpointKey) -> bool:
        """Whether the endpoint belongs at the end of the order for a new request."""
        circuit = self._circuits.get(key)
        if circuit is None:
            return False
        now = self.clock()
        if now < circuit.open_until:
            return True
        probing = circuit.probe_started is not None and now - circuit.probe_started < PROBE_TIMEOUT_SECONDS
        return probing

    def attempt_started(self, key: EndpointKey) -> None:
        circuit = self._circuits.get(key)
        now = self.clock()
        if circuit is not None and now >= circuit.open_until:
            circuit.probe_started = now

    def failed(self, key: EndpointKey, retry_after: float | None = None) -> None:
        now = self.clock()
        circuit = self._circuits.get(key)
        if retry_after is not None:  # the upstream said when to come back (a day's quota: still 5 min)
            cooldown = min(retry_after, MAX_COOLDOWN_SECONDS)
        elif circuit is None:
            cooldown = self.cooldown
        else:  # failing again after its cooling period: wait longer this time
            cooldown = min(circuit.cooldown * 2, MAX_COOLDOWN_SECONDS)
        self._circuits[key] = _Circuit(open_until=now + cooldown, cooldown=cooldown)

    def succeeded(self, key: EndpointKey) -> None:
        self._circuits.pop(key, None)

    def reset(self) -> None:
        """Close every circuit (an operator's reload, or a test's fresh start)."""
        self._circuits.clear()

    def recently_failed(self, model_id: str, endpoint_slug: str) -> bool:
        return self.deprioritised((model_id, endpoint_slug))
