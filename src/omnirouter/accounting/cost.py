"""What a generation costs, in exact Decimal USD, from catalog prices and native token counts."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from omnirouter.catalog.types import Pricing

ZERO = Decimal(0)


@dataclass(frozen=True)
class Usage:
    """Native token counts as the provider reported them (prompt includes cached; completion
    includes reasoning), which is what OpenRouter bills on."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    images: int = 0  # images the answer carries (chat with `modalities: ["image", ...]`), x pricing.image_output

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Cost:
    total: Decimal  # what is charged
    prompt: Decimal = ZERO  # list-price prompt part
    completion: Decimal = ZERO  # list-price completion part
    cache_discount: Decimal = ZERO  # what caching saved against list prompt price (<0 for writes)
    insured: bool = False  # zero-completion insurance waived the charge
    is_byok: bool = False  # served with a BYOK key: `total` is the BYOK fee (accounting/byok.py)
    byok_usage: Decimal = ZERO  # BYOK: what the request would have cost with the instance's own key
    fees: Decimal = ZERO  # what plugins charged beside the model (web searches ...), within `total`


def insured(usage: Usage, finish_reason: str | None) -> bool:
    """Zero-completion insurance: no charge for an empty answer without a finish reason, or for an
    answer that ended in error (behaviors §5.4)."""
    return finish_reason == "error" or (usage.completion_tokens == 0 and not finish_reason)


def compute(pricing: Pricing, usage: Usage, finish_reason: str | None) -> Cost:
    """The charge, and its list-price parts (what the upstream bills, kept even when insured)."""
    read_price = pricing.input_cache_read if pricing.input_cache_read is not None else pricing.prompt
    write_price = pricing.input_cache_write if pricing.input_cache_write is not None else pricing.prompt
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    written = min(usage.cache_write_tokens, usage.prompt_tokens - cached)
    uncached = usage.prompt_tokens - cached - written
    prompt_cost = uncached * pricing.prompt + cached * read_price + written * write_price

    # Reasoning tokens are output tokens; an endpoint with its own reasoning price bills them at it.
    reasoning = min(usage.reasoning_tokens, usage.completion_tokens)
    if pricing.internal_reasoning and reasoning:
        completion_cost = (
            usage.completion_tokens - reasoning
        ) * pricing.completion + reasoning * pricing.internal_reasoning
    else:
        completion_cost = usage.completion_tokens * pricing.completion
    if usage.images:
        completion_cost += usage.images * pricing.image_output

    is_insured = insured(usage, finish_reason)
    return Cost(
        total=ZERO if is_insured else prompt_cost + completion_cost + pricing.request,
        prompt=prompt_cost,
        completion=completion_cost,
        cache_discount=usage.prompt_tokens * pricing.prompt - prompt_cost,
        insured=is_insured,
    )


def worst_case(pricing: Pricing, prompt_tokens: int, max_completion_tokens: int) -> Decimal:
    """The most a request can cost: what is reserved before the upstream is called."""
    return (
        prompt_tokens * max_prompt_price(pricing)
        + max_completion_tokens * max_output_price(pricing)
        + pricing.request
        + pricing.image_output  # an image model priced per image: one image
    )


def max_prompt_price(pricing: Pricing) -> Decimal:
    # Every prompt token may be a cache write, dearer than the plain prompt price (Anthropic: 1.25x-2x).
    return max(pricing.prompt, pricing.input_cache_write or ZERO, pricing.input_cache_read or ZERO)


def max_output_price(pricing: Pricing) -> Decimal:
    return max(pricing.completion, pricing.internal_reasoning)
