"""Whether a request uses the response cache, and for how long.

Turned on by the request (`X-Omnirouter-Cache-TTL: <seconds>`, or OpenRouter's `X-OpenRouter-Cache:
true` with an optional `X-OpenRouter-Cache-TTL`), by its preset (`cache_enabled: true`, with an
optional `cache_ttl_seconds`) or by its key (`response_cache_ttl_seconds`). As OpenRouter's
(behaviors §7.1): `X-OpenRouter-Cache: false` or a preset's `cache_enabled: false` overrides the
rest, integer prefixes are read ("12.7" is 12), out-of-range TTLs are clamped, and
`X-OpenRouter-Cache-Clear: true` drops the stored answer so that this request refreshes it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# What may turn the cache on. A request with none of them pays one set test (pipeline/endpoint.py).
HEADERS = ("x-omnirouter-cache-ttl", "x-openrouter-cache", "x-openrouter-cache-ttl", "x-openrouter-cache-clear")
BODY_FIELDS = ("cache_enabled", "cache_ttl_seconds")  # a preset's fields (governance/preset_service.py)

_LEADING_INTEGER = re.compile(r"\s*([+-]?\d+)")


@dataclass(frozen=True, slots=True)
class Policy:
    ttl: int  # seconds an answer stored by this request lives
    clear: bool  # drop the stored answer first (X-OpenRouter-Cache-Clear: true)


def seconds(value: Any) -> int | None:
    """A TTL as OpenRouter reads one: the integer a value starts with; None if it has none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str) and (m := _LEADING_INTEGER.match(value)):
        return int(m.group(1))
    return None


def _flag(value: str | None) -> bool | None:
    if value is None:
        return None
    value = value.strip().lower()
    return True if value == "true" else False if value == "false" else None


def decide(
    headers: Mapping[str, str], body: dict[str, Any], key_ttl: int | None, default_ttl: int, max_ttl: int
) -> Policy | None:
    """The request's cache policy, or None when it does not use the cache. The preset's fields leave
    `body` (they are the gateway's, never the upstream's, and do not change the answer). `key_ttl`: the
    key's response_cache_ttl_seconds."""
    enabled = body.pop("cache_enabled", None)
    preset_ttl = body.pop("cache_ttl_seconds", None)
    flag = _flag(headers.get("x-openrouter-cache"))
    if enabled is False or flag is False:
        return None
    own_ttl = headers.get("x-omnirouter-cache-ttl")
    if not (enabled is True or flag is True or own_ttl is not None or key_ttl is not None):
        return None
    ttl = next(
        (
            s
            for s in (seconds(own_ttl), seconds(headers.get("x-openrouter-cache-ttl")), seconds(preset_ttl), key_ttl)
            if s is not None
        ),
        default_ttl,
    )
    return Policy(ttl=min(max(ttl, 1), max_ttl), clear=_flag(headers.get("x-openrouter-cache-clear")) is True)
