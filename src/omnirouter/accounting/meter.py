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

import functools
from collections.abc import Collection, Sequence
from decimal import ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, NamedTuple

from omnirouter.accounting.cost import max_output_price, max_prompt_price, worst_case
from omnirouter.accounting.ledger import INSTANCE, ZERO, Ledger, Reservation
from omnirouter.accounting.periods import EPOCH, LIMIT_NAME, WINDOW_OF_RESET, current_window_starts
from omnirouter.catalog.types import Pricing
from omnirouter.errors import GatewayError
from omnirouter.governance.budgets import EXCEEDED_STATUS, GovernedBudget
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


class Limit(NamedTuple):
    """One budget a request must fit: the key's limit, the instance's credit, or one governance puts
    on the key (a guardrail's or its workspace's, governance/budgets.py)."""

    bucket: Bucket  # (ledger scope, period, window start): what a lease of it is held on
    limit: Decimal
    unspent: Decimal  # the limit less what was spent in the current window, before anything in flight
    governed: GovernedBudget | None = None  # None: the key's own limit, or the instance's credit

    @property
    def scope(self) -> str:
        return self.bucket[0]


def _limits(ledger: Ledger, key: KeyRecord, governed: Sequence[GovernedBudget]) -> list[Limit]:
    limits = []
    if (key_room := key_unspent(ledger, key)) is not None:
        assert key.limit is not None
        limits.append(Limit(key_bucket(key), key.limit, key_room))
    if (credit_room := ledger.credit_unspent()) is not None:
        assert ledger.credits is not None
        limits.append(Limit(CREDIT_BUCKET, ledger.credits, credit_room))
    if governed:
        starts = current_window_starts()
        for budget in governed:
            usage, byok = ledger.spent(budget.scope, budget.period)
            unspent = budget.limit - (usage + byok if budget.include_byok else usage)
            limits.append(Limit((budget.scope, budget.period, starts[budget.period]), budget.limit, unspent, budget))
    return limits


def scopes_of(key: KeyRecord, governed: Sequence[GovernedBudget]) -> tuple[str, ...]:
    """The ledger scopes a request of `key` counts under."""
    if not governed:
        return (key.scope, INSTANCE)
    return tuple(dict.fromkeys((key.scope, INSTANCE, *(b.scope for b in governed))))


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
    governed: Sequence[GovernedBudget] = (),
) -> Reservation:
    """Admit a request or raise the GatewayError that refuses it. `exposure` is its worst case at what
    the upstream can produce (None: trust max_completion). `governed`: the guardrail and workspace
    budgets on the key, checked beside its own limit and the instance's credit. With `leases` (budgets
    shared by several workers), a budget is admitted within this worker's lease, and TopUp is raised
    for a bucket not in `tried` whose lease falls short."""
    scopes = scopes_of(key, governed)
    limits = _limits(ledger, key, governed)
    if not limits:
        return ledger.reserve(scopes, ZERO)  # nothing to enforce: only track
    need = worst_case(pricing, prompt_tokens, max_completion)
    exposure = need if exposure is None else max(exposure, need)
    admit = functools.partial(_admit, ledger, scopes, pricing, prompt_tokens, max_completion, need, exposure,
                              key_limit_status=key_limit_status)  # fmt: skip
    if leases is None:
        return admit([(lim, lim.unspent) for lim in limits])
    rooms: list[tuple[Limit, Decimal]] = []
    for lim in limits:
        bucket = lim.bucket
        room = min(lim.unspent, leases.room(bucket))
        left = room - ledger.in_flight(lim.scope)
        exposed = ledger.exposure(lim.scope)
        # A top-up asks for a slice beyond what it needs: several requests' worth, or a share of what
        # is left, so that a big budget is topped up rarely.
        # Beyond the need, asking to cover the exposure is worth it only while the store can give
        # more (a budget smaller than one upstream's worst case never covers it).
        short_of_exposure = exposure + exposed > room and leases.may_ask(bucket)
        if (need > left or short_of_exposure) and bucket not in tried:
            short = max(ZERO, need - left)
            raise TopUp(bucket, lim.limit, short, max(short, exposure + exposed - room) + _slice(need, lim.unspent))
        after = left - need
        if after + after < need * SLICE or after * (2 * SHARE) < lim.unspent:  # under half a slice left
            leases.refill(bucket, lim.limit, _slice(need, lim.unspent))  # off this request's path
        rooms.append((lim, room))
    try:
        return admit(rooms)
    except GatewayError:
        # Refused within the lease. Say why as the cluster sees it: the store's last answer tells what
        # was counted everywhere and what the other workers hold; this worker's spend since its last
        # flush is on top.
        cluster: list[tuple[Limit, Decimal]] = []
        for lim, room in rooms:
            refused = leases.refused.get(lim.bucket)
            if refused is None:
                cluster.append((lim, room))
                continue
            spent = refused.spent + leases.unreported(lim.bucket)
            if need <= lim.limit - spent - ledger.in_flight(lim.scope):
                raise _held(lim, "by requests in flight on other workers") from None
            cluster.append((lim, min(lim.unspent, lim.limit - spent - refused.others)))
        return admit(cluster)


def _slice(need: Decimal, unspent: Decimal) -> Decimal:
    return max(need * SLICE, unspent / SHARE)


def _admit(
    ledger: Ledger,
    scopes: tuple[str, ...],
    pricing: Pricing,
    prompt_tokens: int,
    max_completion: int,
    need: Decimal,
    exposure: Decimal,
    rooms: list[tuple[Limit, Decimal]],
    *,
    key_limit_status: int,
) -> Reservation:
    """Admission within `rooms`: each budget with what it may spend, before its requests in flight."""
    binding: Limit | None = None
    budget = ZERO
    for lim, room in rooms:
        left = room - ledger.in_flight(lim.scope)
        if left <= 0:
            raise _spent(lim, key_limit_status)
        if binding is None or left < budget:
            binding, budget = lim, left
    assert binding is not None
    if need > budget:
        if not prompt_tokens and not max_completion:  # priced per unit (pipeline/modality.py), not per token
            raise GatewayError(
                402,
                f"This request requires more credits: it may cost up to ${need.normalize():f}, but only "
                f"${budget.normalize():f} is left with {_owner(binding)}.",
            )
        raise GatewayError(
            402,
            f"This request requires more credits, or fewer max_tokens. You requested up to {max_completion} "
            f"tokens, but can only afford {_affordable_tokens(budget, pricing, prompt_tokens)} with "
            f"{_owner(binding)}.",
        )

    overrun: list[str] = []
    for lim, room in rooms:
        exposed = ledger.exposure(lim.scope)
        if exposure + exposed <= room:
            continue  # covered: even if every upstream in flight ignores max_tokens
        if need <= room - exposed and (lim.scope in overrun or ledger.overrun_holder(lim.scope) is None):
            if lim.scope not in overrun:  # one slot per scope, whichever of its windows needs it
                overrun.append(lim.scope)
            continue
        raise _held(lim, "by requests in flight whose upstreams may produce more than their max_tokens")
    return ledger.reserve(scopes, need, exposure, tuple(overrun))


def _owner(lim: Limit) -> str:
    if lim.governed is not None:
        return lim.governed.owner
    return "the instance's credits" if lim.scope == INSTANCE else "the key's limit"


def _spent(lim: Limit, key_limit_status: int) -> GatewayError:
    if lim.governed is not None:
        return GatewayError(EXCEEDED_STATUS, lim.governed.exceeded)
    if lim.scope == INSTANCE:
        return GatewayError(402, "Insufficient credits. Add more using `omnirouter credits add AMOUNT`.")
    window = LIMIT_NAME[lim.bucket[1]]
    return GatewayError(
        key_limit_status, f"Key limit exceeded ({window} limit). Raise the key's limit or wait for it to reset."
    )


def _held(lim: Limit, by: str) -> GatewayError:
    """429: what is left of the budget is held by other requests; one may pass when they settle."""
    if lim.governed is not None:
        what = f"What is left of {lim.governed.owner} is"
    else:
        what = "The instance's remaining credits are" if lim.scope == INSTANCE else "This key's remaining limit is"
    return GatewayError(
        429,
        f"{what} held {by}. Retry when they finish.",
        {"error_type": "rate_limit_exceeded"},
        headers={"Retry-After": str(OVERRUN_RETRY_AFTER)},
    )
