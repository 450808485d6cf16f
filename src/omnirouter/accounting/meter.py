"""Pre-flight checks and reservations: a key over its limit, or an instance out of credit, gets 402
before anything is sent upstream; otherwise the request's worst-case cost is held until it settles."""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal

from omnirouter.accounting.cost import max_output_price, max_prompt_price, worst_case
from omnirouter.accounting.ledger import INSTANCE, Ledger, Reservation
from omnirouter.accounting.periods import LIMIT_NAME, WINDOW_OF_RESET
from omnirouter.api.errors import ApiError
from omnirouter.catalog.types import Pricing
from omnirouter.governance.keys import KeyRecord

DEFAULT_MAX_COMPLETION = 4096


def key_remaining(ledger: Ledger, key: KeyRecord) -> Decimal | None:
    """What the key may still spend in its current limit window (None: no limit)."""
    if key.limit is None:
        return None
    usage, byok = ledger.spent(key.scope, WINDOW_OF_RESET[key.limit_reset])
    counted = usage + byok if key.include_byok_in_limit else usage
    return key.limit - counted - ledger.in_flight(key.scope)


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
) -> Reservation:
    scopes = (key.scope, INSTANCE)
    key_left = key_remaining(ledger, key)
    credit_left = ledger.credit_remaining()
    if key_left is None and credit_left is None:
        return ledger.reserve(scopes, Decimal(0))  # nothing to enforce: only track

    if key_left is not None and key_left <= 0:
        window = LIMIT_NAME[WINDOW_OF_RESET[key.limit_reset]]
        raise ApiError(
            key_limit_status,
            f"Key limit exceeded ({window} limit). Raise the key's limit or wait for it to reset.",
        )
    if credit_left is not None and credit_left <= 0:
        raise ApiError(402, "Insufficient credits. Add more using `omnirouter credits add AMOUNT`.")

    need = worst_case(pricing, prompt_tokens, max_completion)
    budget = min(x for x in (key_left, credit_left) if x is not None)
    if need > budget:
        which = "the key's limit" if budget == key_left else "the instance's credits"
        raise ApiError(
            402,
            f"This request requires more credits, or fewer max_tokens. You requested up to {max_completion} "
            f"tokens, but can only afford {_affordable_tokens(budget, pricing, prompt_tokens)} with {which}.",
        )
    return ledger.reserve(scopes, need)
