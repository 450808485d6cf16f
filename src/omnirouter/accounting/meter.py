"""Pre-flight checks and reservations: a key over its limit, or an instance out of credit, gets 402
before anything is sent upstream; otherwise the request's worst-case cost is held until it settles.

Admission, per limited scope (the key with a limit, the instance with funded credit):

- `amount` is the worst case at the client's max_tokens. Beyond what is left after the amounts in
  flight: 402 `requires more credits`, as OpenRouter answers.
- `exposure` is the worst case at what the upstream can produce, should it ignore max_tokens. While
  what is left covers the exposure of everything in flight, this one included, requests run side by
  side and cannot overspend.
- Past that, one request (the scope's overrun slot) may still run if its amount fits beside the
  exposure of the others; the rest get 429 with Retry-After until it settles.

Spent plus the exposure in flight outside the slot never exceeds the limit while a slot is taken,
so once everything has settled the scope is over its limit by at most one request's overrun: what
the slot's request cost beyond what was left for it. That assumes an upstream produces no more than
its catalog entry allows (max_completion_tokens, else context_length less the prompt estimate); one
that bills beyond that adds what it bills beyond.

What is left is what the worker's lease of the budget leaves (cluster/budgets.py): several workers
and instances share one budget, and each admits within its own share of it, topping it up when it
runs short. A request refused because the other workers hold the rest gets 429 with Retry-After.
"""

from __future__ import annotations

from collections.abc import Collection
from decimal import ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING

from omnirouter.accounting.cost import max_output_price, max_prompt_price, worst_case
from omnirouter.accounting.ledger import INSTANCE, ZERO, Ledger, Reservation
from omnirouter.accounting.periods import EPOCH, LIMIT_NAME, WINDOW_OF_RESET, current_window_starts
from omnirouter.catalog.types import Pricing
from omnirouter.errors import GatewayError
from omnirouter.governance.keys import KeyRecord

if TYPE_CHECKING:
    from omnirouter.cluster.budgets import Bucket, Leases

SLICE = 8  # a top-up asks for at least this many more requests' worth than the request needs,
SHARE = 32  # or this fraction of what the budget has left, if more

DEFAULT_MAX_COMPLETION = 4096
# Seconds a request refused for want of the overrun slot is told to wait: about one request.
OVERRUN_RETRY_AFTER = 1


def enforced(ledger: Ledger, key: KeyRecord) -> bool:
    """Whether a request of this key has a limit or a credit to check (else it is only tracked)."""
    return key.limit is not None or ledger.credits is not None


def key_unspent(ledger: Ledger, key: KeyRecord) -> Decimal | None:
    """The key's limit less what it spent in the current window, before anything in flight."""
    if key.limit is None:
        return None
    usage, byok = ledger.spent(key.scope, WINDOW_OF_RESET[key.limit_reset])
    return key.limit - (usage + byok if key.include_byok_in_limit else usage)


def key_remaining(ledger: Ledger, key: KeyRecord) -> Decimal | None:
    """What the key may still spend in its current limit window (None: no limit)."""
    unspent = key_unspent(ledger, key)
    return None if unspent is None else unspent - ledger.in_flight(key.scope)


def _affordable_tokens(budget: Decimal, pricing: Pricing, prompt_tokens: int) -> int:
    left = budget - prompt_tokens * max_prompt_price(pricing) - pricing.request
    out_price = max_output_price(pricing)
    if out_price <= 0:
        return 0 if left < 0 else 10**9
    return max(0, int((left / out_price).to_integral_value(ROUND_FLOOR)))


class TopUp(Exception):
    """The worker's lease of a shared budget cannot cover this request: top it up, then reserve again."""

    def __init__(self, bucket: Bucket, limit: Decimal, minimum: Decimal, want: Decimal) -> None:
        self.bucket, self.limit, self.minimum, self.want = bucket, limit, minimum, want


def key_bucket(key: KeyRecord) -> Bucket:
    period = WINDOW_OF_RESET[key.limit_reset]
    return (key.scope, period, current_window_starts()[period])


CREDIT_BUCKET: Bucket = (INSTANCE, "total", EPOCH)


def reserve(
    ledger: Ledger,
    key: KeyRecord,
    pricing: Pricing,
    prompt_tokens: int,
    max_completion: int,
    *,
    key_limit_status: int,
    exposure: Decimal | None = None,
    leases: Leases | None = None,
    tried: Collection[Bucket] = (),
) -> Reservation:
    """Admit a request or raise the GatewayError that refuses it. `exposure` is its worst case at what
    the upstream can produce (None: trust max_completion). With `leases` (budgets shared by several
    workers), a scope is admitted within this worker's lease, and TopUp is raised for a bucket not in
    `tried` whose lease falls short."""
    scopes = (key.scope, INSTANCE)
    key_room = key_unspent(ledger, key)  # limit less spent, before anything in flight
    credit_room = ledger.credit_unspent()
    if key_room is None and credit_room is None:
        return ledger.reserve(scopes, ZERO)  # nothing to enforce: only track
    need = worst_case(pricing, prompt_tokens, max_completion)
    exposure = need if exposure is None else max(exposure, need)
    if leases is None:
        return _admit(ledger, key, pricing, prompt_tokens, max_completion, need, exposure, key_room, credit_room,
                      key_limit_status)  # fmt: skip
    shared = []
    if key_room is not None:
        shared.append((key_bucket(key), key.limit, key_room))
    if credit_room is not None:
        shared.append((CREDIT_BUCKET, ledger.credits, credit_room))
    rooms: dict[str, Decimal] = {}
    for bucket, limit, unspent in shared:
        assert limit is not None
        room = min(unspent, leases.room(bucket))
        left = room - ledger.in_flight(bucket[0])
        exposed = ledger.exposure(bucket[0])
        # A top-up asks for a slice beyond what it needs: several requests' worth, or a share of what
        # is left, so that a big budget is topped up rarely.
        # Beyond the need, asking to cover the exposure is worth it only while the store can give
        # more (a budget smaller than one upstream's worst case never covers it).
        short_of_exposure = exposure + exposed > room and leases.may_ask(bucket)
        if (need > left or short_of_exposure) and bucket not in tried:
            short = max(ZERO, need - left)
            raise TopUp(bucket, limit, short, max(short, exposure + exposed - room) + _slice(need, unspent))
        after = left - need
        if after + after < need * SLICE or after * (2 * SHARE) < unspent:  # under half a slice left
            leases.refill(bucket, limit, _slice(need, unspent))  # off this request's path
        rooms[bucket[0]] = room
    try:
        return _admit(ledger, key, pricing, prompt_tokens, max_completion, need, exposure,
                      rooms.get(key.scope), rooms.get(INSTANCE), key_limit_status)  # fmt: skip
    except GatewayError:
        # Refused within the lease. Say why as the cluster sees it: the store's last answer tells what
        # was counted everywhere and what the other workers hold; this worker's spend since its last
        # flush is on top.
        cluster: dict[str, Decimal] = {}
        for bucket, limit, unspent in shared:
            refused = leases.refused.get(bucket)
            if refused is None:
                cluster[bucket[0]] = rooms[bucket[0]]
                continue
            spent = refused.spent + leases.unreported(bucket)
            if need <= limit - spent - ledger.in_flight(bucket[0]):
                raise _held_elsewhere(bucket[0] == INSTANCE) from None
            cluster[bucket[0]] = min(unspent, limit - spent - refused.others)
        return _admit(ledger, key, pricing, prompt_tokens, max_completion, need, exposure,
                      cluster.get(key.scope), cluster.get(INSTANCE), key_limit_status)  # fmt: skip


def _slice(need: Decimal, unspent: Decimal) -> Decimal:
    return max(need * SLICE, unspent / SHARE)


def _admit(
    ledger: Ledger,
    key: KeyRecord,
    pricing: Pricing,
    prompt_tokens: int,
    max_completion: int,
    need: Decimal,
    exposure: Decimal,
    key_room: Decimal | None,
    credit_room: Decimal | None,
    key_limit_status: int,
) -> Reservation:
    """Admission within `key_room` and `credit_room` (what each scope may spend, before its requests
    in flight; None: not limited)."""
    key_left = None if key_room is None else key_room - ledger.in_flight(key.scope)
    credit_left = None if credit_room is None else credit_room - ledger.in_flight(INSTANCE)

    if key_left is not None and key_left <= 0:
        window = LIMIT_NAME[WINDOW_OF_RESET[key.limit_reset]]
        raise GatewayError(
            key_limit_status,
            f"Key limit exceeded ({window} limit). Raise the key's limit or wait for it to reset.",
        )
    if credit_left is not None and credit_left <= 0:
        raise GatewayError(402, "Insufficient credits. Add more using `omnirouter credits add AMOUNT`.")

    budget = min(x for x in (key_left, credit_left) if x is not None)
    if need > budget:
        which = "the key's limit" if budget == key_left else "the instance's credits"
        raise GatewayError(
            402,
            f"This request requires more credits, or fewer max_tokens. You requested up to {max_completion} "
            f"tokens, but can only afford {_affordable_tokens(budget, pricing, prompt_tokens)} with {which}.",
        )

    overrun: list[str] = []
    for scope, room in ((key.scope, key_room), (INSTANCE, credit_room)):
        if room is None:
            continue
        exposed = ledger.exposure(scope)
        if exposure + exposed <= room:
            continue  # covered: even if every upstream in flight ignores max_tokens
        if ledger.overrun_holder(scope) is None and need <= room - exposed:
            overrun.append(scope)
            continue
        raise _overrun_taken(scope == INSTANCE)
    return ledger.reserve((key.scope, INSTANCE), need, exposure, tuple(overrun))


def _held_elsewhere(instance: bool) -> GatewayError:
    what = "The instance's remaining credits are" if instance else "This key's remaining limit is"
    return GatewayError(
        429,
        f"{what} held by requests in flight on other workers. Retry when they finish.",
        {"error_type": "rate_limit_exceeded"},
        headers={"Retry-After": str(OVERRUN_RETRY_AFTER)},
    )


def _overrun_taken(instance: bool) -> GatewayError:
    what = "The instance's remaining credits are" if instance else "This key's remaining limit is"
    return GatewayError(
        429,
        f"{what} held by requests in flight whose upstreams may produce more than their max_tokens. "
        f"Retry when they finish.",
        {"error_type": "rate_limit_exceeded"},
        headers={"Retry-After": str(OVERRUN_RETRY_AFTER)},
    )
