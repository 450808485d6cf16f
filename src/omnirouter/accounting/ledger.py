"""Spend counters with reserve-then-settle, kept in memory and synchronised with the database.

Every scope ("instance", "key:<hash>") has one counter per window (total, day, week, month). What a
scope has spent in a window is

    base (last read from the database) + flushing (being written) + pending (not yet written)

and what it may still spend also subtracts `reserved`: the worst-case cost of requests in flight
at the client's `max_tokens`. A request reserves before its upstream call and settles after; cost
beyond its reservation lands on the counters when it settles.

An upstream may ignore `max_tokens`, so each reservation also carries its `exposure`: the worst case
at what the endpoint can really produce. `exposed` sums the exposure in flight per scope, and
`overrun` names, per scope, the one request admitted although the exposure of everything in flight
did not fit (meter.py decides; this module only keeps the books). That bounds a scope's overspend
to one request's overrun per worker: each worker keeps its own books and slots, and admits only
within the lease it holds of the scope's budget (cluster/budgets.py), so the workers together never
commit more than the budget (docs/configuration.md, "Shared budgets").
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from omnirouter.accounting.periods import PERIODS, current_window_starts, window_starts

ZERO = Decimal(0)
INSTANCE = "instance"

# (scope, period, period_start) -> [usage, byok_usage, requests]
Counts = dict[tuple[str, str, str], list]


def _add(into: Counts, key: tuple[str, str, str], usage: Decimal, byok: Decimal, requests: int) -> None:
    row = into.get(key)
    if row is None:
        into[key] = [usage, byok, requests]
    else:
        row[0] += usage
        row[1] += byok
        row[2] += requests


class Spend(NamedTuple):
    """What one settled request added to the counters: its cost in every window of its scopes."""

    scopes: tuple[str, ...]
    cost: Decimal
    byok: Decimal
    starts: dict[str, str]  # period -> the window's first day, as the counters key on it

    @classmethod
    def decode(cls, raw: Any) -> Spend:
        """From its msgpack form (store/journal.py): Decimals come back as strings."""
        scopes, cost, byok, starts = raw
        return cls(tuple(scopes), Decimal(cost), Decimal(byok), starts)


def add_spend(into: Counts, spend: Spend) -> None:
    for scope in spend.scopes:
        for period, start in spend.starts.items():
            _add(into, (scope, period, start), spend.cost, spend.byok, 1)


def _give_back(held: dict[str, Decimal], scope: str, amount: Decimal) -> None:
    """Subtract `amount` from what `scope` holds, dropping the entry at zero (the dict stays small)."""
    left = held[scope] - amount
    if left:
        held[scope] = left
    else:
        del held[scope]


@dataclass
class Reservation:
    id: int
    scopes: tuple[str, ...]
    amount: Decimal  # worst case at the client's max_tokens
    exposure: Decimal = ZERO  # worst case at what the upstream can produce (>= amount)
    overrun: tuple[str, ...] = ()  # the scopes whose overrun slot this request holds


class Ledger:
    def __init__(self) -> None:
        self.base: Counts = {}
        self.flushing: Counts = {}
        self.pending: Counts = {}
        self.reserved: dict[str, Decimal] = defaultdict(lambda: ZERO)
        self.exposed: dict[str, Decimal] = defaultdict(lambda: ZERO)
        self.overrun: dict[str, Reservation] = {}  # scope -> the request in its overrun slot
        self.credits: Decimal | None = None  # funded credit; None = unlimited, only tracked
        self._ids = itertools.count(1)

    # -- reading
    def spent(self, scope: str, period: str, now: datetime | None = None) -> tuple[Decimal, Decimal]:
        """(usage, byok_usage) of a scope in the current window of `period`."""
        key = (scope, period, (window_starts(now) if now else current_window_starts())[period])
        usage = byok = ZERO
        for layer in (self.base, self.flushing, self.pending):
            row = layer.get(key)
            if row:
                usage += row[0]
                byok += row[1]
        return usage, byok

    def all_windows(self, scope: str, now: datetime | None = None) -> dict[str, tuple[Decimal, Decimal]]:
        now = now or datetime.now(UTC)
        return {p: self.spent(scope, p, now) for p in PERIODS}

    def requests(self, scope: str, period: str, now: datetime | None = None) -> int:
        """How many requests a scope counted in the current window of `period`."""
        key = (scope, period, (window_starts(now) if now else current_window_starts())[period])
        return sum(row[2] for layer in (self.base, self.flushing, self.pending) if (row := layer.get(key)))

    def in_flight(self, scope: str) -> Decimal:
        return self.reserved.get(scope, ZERO)

    def exposure(self, scope: str) -> Decimal:
        """What the requests in flight could cost if their upstreams ignored max_tokens."""
        return self.exposed.get(scope, ZERO)

    def overrun_holder(self, scope: str) -> Reservation | None:
        return self.overrun.get(scope)

    def credit_unspent(self) -> Decimal | None:
        """Funded credit less what was spent, before anything in flight (None: unlimited)."""
        if self.credits is None:
            return None
        return self.credits - self.spent(INSTANCE, "total")[0]

    def credit_remaining(self) -> Decimal | None:
        unspent = self.credit_unspent()
        return None if unspent is None else unspent - self.in_flight(INSTANCE)

    # -- request path
    def reserve(
        self,
        scopes: tuple[str, ...],
        amount: Decimal,
        exposure: Decimal | None = None,
        overrun: tuple[str, ...] = (),
    ) -> Reservation:
        """Hold `amount` (and `exposure`, by default the same) on every scope; take the overrun slot
        of the scopes in `overrun`, which must be free."""
        exposure = amount if exposure is None else exposure
        for scope in scopes:
            self.reserved[scope] += amount
            if exposure:
                self.exposed[scope] += exposure
        reservation = Reservation(next(self._ids), scopes, amount, exposure, overrun)
        for scope in overrun:
            if scope in self.overrun:
                raise RuntimeError(f"the overrun slot of {scope} is taken")
            self.overrun[scope] = reservation
        return reservation

    def release(self, reservation: Reservation) -> None:
        """Give back what a reservation holds (its slots too). Releasing twice is harmless."""
        for scope in reservation.scopes:
            _give_back(self.reserved, scope, reservation.amount)
            if reservation.exposure:
                _give_back(self.exposed, scope, reservation.exposure)
        for scope in reservation.overrun:
            if self.overrun.get(scope) is reservation:
                del self.overrun[scope]
        reservation.amount = reservation.exposure = ZERO
        reservation.overrun = ()

    def settle(self, reservation: Reservation, cost: Decimal, *, byok_cost: Decimal = ZERO) -> Spend:
        """Replace the reservation with what the request really cost, in every window of its scopes."""
        self.release(reservation)
        spend = Spend(reservation.scopes, cost, byok_cost, current_window_starts())
        add_spend(self.pending, spend)
        return spend

    def count(self, scope: str, period: str) -> None:
        """Count one request, without spend, in the current window of `period` (the free-model quota)."""
        _add(self.pending, (scope, period, current_window_starts()[period]), ZERO, ZERO, 1)

    # -- background sync (store/writer.py drives these)
    def take_pending(self) -> Counts:
        """Move pending deltas to `flushing` and hand them to the writer."""
        for key, (u, b, r) in self.pending.items():
            _add(self.flushing, key, u, b, r)
        taken, self.pending = self.pending, {}
        return taken

    def flushed(self) -> None:
        """The writer committed `flushing`: it is part of the base now."""
        for key, (u, b, r) in self.flushing.items():
            _add(self.base, key, u, b, r)
        self.flushing = {}

    def flush_failed(self, taken: Counts) -> None:
        """The write failed: put its deltas back in front of anything settled since."""
        for key, (u, b, r) in taken.items():
            _add(self.pending, key, u, b, r)
        self.flushing = {}
