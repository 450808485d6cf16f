"""What a request served with a BYOK key costs (behaviors §5.5): the provider bills the workspace's own
key, the instance charges the BYOK fee (`byok_fee_percent` of what the request would have cost, 0 by
default), and the would-have-cost is counted apart as BYOK usage: in the key's `byok_usage*`, and
toward a limit only where it says so (a key's `include_byok_in_limit`, a budget's
`include_byok_in_budgets`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import msgspec

from omnirouter.accounting.cost import ZERO, Cost
from omnirouter.catalog.types import Pricing
from omnirouter.governance.keys import KeyRecord

HUNDRED = Decimal(100)
PLACES = Decimal(10) ** -18  # the money columns' precision (store.types.Money)
_PRICES = ("prompt", "completion", "request", "image", "web_search", "internal_reasoning",
           "image_output", "character", "audio_second", "video_second", "search_unit")  # fmt: skip


def fee_cost(cost: Cost, fee_percent: Decimal) -> Cost:
    """A BYOK request's Cost: `total` the fee, `byok_usage` what it would have cost."""
    fee = (cost.total * fee_percent / HUNDRED).quantize(PLACES) if fee_percent else ZERO
    return dataclasses.replace(cost, total=fee, is_byok=True, byok_usage=cost.total)


@dataclasses.dataclass(frozen=True)
class Charges:
    """How much of a BYOK candidate's list price the limits a request is checked against may see: the
    fee, plus the whole price where any of them counts BYOK usage."""

    factor: Decimal

    @property
    def free(self) -> bool:
        return not self.factor

    def pricing(self, pricing: Pricing) -> Pricing:
        f = self.factor
        scaled: dict[str, Any] = {name: getattr(pricing, name) * f for name in _PRICES}
        for name in ("input_cache_read", "input_cache_write"):
            value = getattr(pricing, name)
            scaled[name] = None if value is None else value * f
        return msgspec.structs.replace(pricing, **scaled)


def byok_charges(fee_percent: Decimal, key: KeyRecord, governed: Sequence[Any]) -> Charges:
    counted = key.include_byok_in_limit or any(b.include_byok for b in governed)
    return Charges(fee_percent / HUNDRED + (1 if counted else 0))
