"""Which generations a destination receives: its api_key_hashes allow-list, its filter_rules and its
sampling_rate, decided once, when the generation is written (observability/outbox.py)."""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from omnirouter.errors import GatewayError


def sampled(rate: float, destination_id: str, generation_id: str) -> bool:
    """The same answer every time for a generation and destination (a journal's replay agrees)."""
    if rate >= 1:
        return True
    digest = hashlib.blake2b(f"{destination_id}:{generation_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest) / 2**64 < rate


def field_value(name: str, row: dict[str, Any], content: dict[str, Any] | None, key_names: dict[str, str]) -> Any:
    match name:
        case "model" | "session_id" | "finish_reason":
            return row.get(name)
        case "provider":
            return row.get("provider_slug") or row.get("provider_name")
        case "user_id":
            return row.get("external_user")
        case "api_key_name":
            return key_names.get(row.get("key_hash") or "")
        case "input":
            return content.get("prompt") if content else None
        case "output":
            return content.get("completion") if content else None
        case "total_cost":
            return row.get("total_cost")
        case "prompt_tokens":
            return row.get("tokens_prompt")
        case "completion_tokens":
            return row.get("tokens_completion")
        case "total_tokens":
            return (row.get("tokens_prompt") or 0) + (row.get("tokens_completion") or 0)
    return None


def _number(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


@lru_cache(maxsize=256)
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


def check_rules(rules: dict[str, Any] | None) -> None:
    """A 400 for a regex that does not compile (the rest is the request's schema)."""
    for group in (rules or {}).get("groups", ()):
        for rule in group["rules"]:
            if rule["operator"] == "regex":
                try:
                    _pattern(str(rule.get("value", "")))
                except re.error as exc:
                    raise GatewayError(
                        400, f"filter_rules: regex {rule.get('value')!r} does not compile: {exc}"
                    ) from None


def _holds(rule: dict[str, Any], value: Any) -> bool:
    op, want = rule["operator"], rule.get("value")
    if op == "exists":
        return value not in (None, "")
    if op == "not_exists":
        return value in (None, "")
    if value is None:
        return op in ("not_equals", "not_contains")
    if op in ("gt", "lt", "gte", "lte"):
        a, b = _number(value), _number(want)
        if a is None or b is None:
            return False
        return {"gt": a > b, "lt": a < b, "gte": a >= b, "lte": a <= b}[op]
    text, target = str(value), "" if want is None else str(want)
    match op:
        case "equals":
            a, b = _number(value), _number(want)
            return a == b if a is not None and b is not None and not isinstance(value, str) else text == target
        case "not_equals":
            return not _holds({**rule, "operator": "equals"}, value)
        case "contains":
            return target in text
        case "not_contains":
            return target not in text
        case "starts_with":
            return text.startswith(target)
        case "ends_with":
            return text.endswith(target)
        case "regex":
            return _pattern(target).search(text) is not None
    return False


def matches(rules: dict[str, Any] | None, row: dict[str, Any], content: dict[str, Any] | None,
            key_names: dict[str, str]) -> bool:  # fmt: skip
    """True without rules (or with them disabled), else when any group holds."""
    if not rules or not rules.get("enabled", True) or not rules.get("groups"):
        return True
    for group in rules["groups"]:
        results = (_holds(r, field_value(r["field"], row, content, key_names)) for r in group["rules"])
        if (all if group.get("logic", "and") == "and" else any)(results):
            return True
    return False


def names_needed(rules: dict[str, Any] | None) -> bool:
    return any(r["field"] == "api_key_name" for g in (rules or {}).get("groups", ()) for r in g["rules"])
