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
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

from omnirouter.accounting.cost import max_output_price, max_prompt_price, worst_case
from omnirouter.accounting.ledger import INSTANCE, ZERO, Ledger, Reservation
from omnirouter.accounting.periods import LIMIT_NAME, WINDOW_OF_RESET
from omnirouter.catalog.types import Pricing
from omnirouter.errors import GatewayError
from omnirouter.governance.keys import KeyRecord

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


def reserve(
    ledger: Ledger,
    key: KeyRecord,
    pricing: Pricing,
    prompt_tokens: int,
    max_completion: int,
    *,
    key_limit_status: int,
    exposure: Decimal | None = None,
) -> Reservation:
    """Admit a request or raise the GatewayError that refuses it. `exposure` is its worst case at what
    the upstream can produce (None: trust max_completion)."""
    scopes = (key.scope, INSTANCE)
    key_room = key_unspent(ledger, key)  # limit less spent, before anything in flight
    credit_room = ledger.credit_unspent()
    if key_room is None and credit_room is None:
        return ledger.reserve(scopes, ZERO)  # nothing to enforce: only track
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

    need = worst_case(pricing, prompt_tokens, max_completion)
    budget = min(x for x in (key_left, credit_left) if x is not None)
    if need > budget:
        which = "the key's limit" if budget == key_left else "the instance's credits"
        raise GatewayError(
            402,
            f"This request requires more credits, or fewer max_tokens. You requested up to {max_completion} "
            f"tokens, but can only afford {_affordable_tokens(budget, pricing, prompt_tokens)} with {which}.",
        )

    exposure = need if exposure is None else max(exposure, need)
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
    return ledger.reserve(scopes, need, exposure, tuple(overrun))


def _overrun_taken(instance: bool) -> GatewayError:
    what = "The instance's remaining credits are" if instance else "This key's remaining limit is"
    return GatewayError(
        429,
        f"{what} held by requests in flight whose upstreams may produce more than their max_tokens. "
        f"Retry when they finish.",
        {"error_type": "rate_limit_exceeded"},
        headers={"Retry-After": str(OVERRUN_RETRY_AFTER)},
    )
