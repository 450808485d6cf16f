"""Guardrail content filters (behaviors §10.1): custom regexes and the builtin detectors, checked at
write time and compiled once per snapshot, then run over a request's message text.

Custom patterns are JavaScript-flavoured as OpenRouter's: lookarounds, backreferences and nested
unbounded quantifiers (`(a+)+`, the classic catastrophic backtracking) are refused when the guardrail
is written, never at request time. They run on Python's `re` (named groups `(?<n>...)` translated)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from re import _constants as sre  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

from omnirouter.errors import GatewayError

MAX_PATTERN_CHARS = 100_000
INVALID_REGEX = "invalid_regex_pattern"
_SHOWN = 200  # characters of a pattern an error message quotes

# -- custom patterns: checked at write time

_JS_NAMED_GROUP = re.compile(r"(?<!\\)\(\?<(?=[A-Za-z_$])")
_REPEATS = {sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", sre.MAX_REPEAT)}
_GROUP_OPENERS = re.compile(r"(?<!\\)\(\?(?!:|<[A-Za-z_$])")  # JavaScript has (?: and (?<name> only


def _shown(pattern: str) -> str:
    return pattern if len(pattern) <= _SHOWN else pattern[:_SHOWN] + "..."


def invalid_pattern(pattern: str, reason: str) -> GatewayError:
    return GatewayError(
        400,
        f"Invalid regex pattern `{_shown(pattern)}` in content_filters: {reason}",
        {"code": INVALID_REGEX, "pattern": _shown(pattern), "reason": reason},
    )


def _python(pattern: str) -> str:
    """JavaScript's named groups in Python's spelling (the rest of the common syntax is shared)."""
    return _JS_NAMED_GROUP.sub("(?P<", pattern)


def _walk(items: Any, depth_unbounded: int, pattern: str) -> None:
    """Refuse lookarounds, backreferences and an unbounded repeat inside another (star height > 1)."""
    for op, arg in items:
        if op in (sre.ASSERT, sre.ASSERT_NOT):
            raise invalid_pattern(pattern, "lookaround assertions are not allowed")
        if op in (sre.GROUPREF, sre.GROUPREF_EXISTS):
            raise invalid_pattern(pattern, "backreferences are not allowed")
        if op in _REPEATS:
            _low, high, sub = arg
            unbounded = high == sre.MAXREPEAT
            if unbounded and depth_unbounded:
                raise invalid_pattern(pattern, "nested quantifiers (such as (a+)+) can backtrack catastrophically")
            _walk(sub, depth_unbounded + (1 if unbounded else 0), pattern)
        elif op == sre.SUBPATTERN:
            _walk(arg[-1], depth_unbounded, pattern)
        elif op == sre.BRANCH:
            for branch in arg[1]:
                _walk(branch, depth_unbounded, pattern)
        elif op == getattr(sre, "ATOMIC_GROUP", None):
            _walk(arg, depth_unbounded, pattern)


def check_pattern(pattern: str) -> re.Pattern[str]:
    """The compiled pattern, or the 400 naming it (code invalid_regex_pattern)."""
    if not pattern:
        raise invalid_pattern(pattern, "the pattern is empty")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise invalid_pattern(pattern, f"longer than {MAX_PATTERN_CHARS:,} characters")
    if "\x00" in pattern:
        raise invalid_pattern(pattern, "NUL characters are not allowed")
    if re.search(r"(?<!\\)\\k<", pattern):
        raise invalid_pattern(pattern, "backreferences are not allowed")
    if m := re.search(r"(?<!\\)\(\?<?[=!]", pattern):
        raise invalid_pattern(pattern, "lookaround assertions are not allowed")
    if m := _GROUP_OPENERS.search(pattern):
        raise invalid_pattern(pattern, f"group syntax {pattern[m.start() : m.start() + 4]!r} is not JavaScript")
    source = _python(pattern)
    try:
        parsed = sre_parse.parse(source)
    except re.error as exc:
        raise invalid_pattern(pattern, str(exc)) from None
    except RecursionError:
        raise invalid_pattern(pattern, "nested too deeply") from None
    _walk(parsed, 0, pattern)
    try:
        return re.compile(source)
    except (re.error, RecursionError, OverflowError) as exc:
        raise invalid_pattern(pattern, str(exc)) from None


# -- builtin detectors

Spans = list[tuple[int, int]]


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum every payment card number carries."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _finder(regex: str, flags: int = 0, keep: Callable[[re.Match[str]], bool] | None = None) -> Callable[[str], Spans]:
    compiled = re.compile(regex, flags)

    def find(text: str) -> Spans:
        return [m.span() for m in compiled.finditer(text) if keep is None or keep(m)]

    return find


def _card(m: re.Match[str]) -> bool:
    digits = re.sub(r"\D", "", m.group())
    return 13 <= len(digits) <= 19 and luhn_ok(digits)


def _ipv4(m: re.Match[str]) -> bool:
    return all(int(part) <= 255 for part in m.group().split("."))


_INJECTION = (
    r"\b(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+|any\s+|the\s+|your\s+|my\s+)*"
    r"(?:previous|prior|above|earlier|preceding|system|original)\s+"
    r"(?:instructions?|prompts?|rules|directions|guidelines)\b"
    r"|\byou\s+are\s+now\s+(?:DAN|in\s+developer\s+mode|jailbroken|unrestricted)\b"
    r"|\b(?:enable|enter|activate)\s+(?:DAN|developer|god|jailbreak)\s+mode\b"
    r"|\b(?:reveal|print|show|repeat|output|leak)\s+(?:me\s+)?(?:your|the)\s+(?:system|hidden|initial)\s+"
    r"(?:prompt|instructions|message)\b"
    r"|\bpretend\s+(?:that\s+)?you\s+(?:have|had)\s+no\s+(?:restrictions|rules|guidelines|filters)\b"
)
# Phrases, not topics: "forget the previous messages" or "I can do anything now" are ordinary requests.


@dataclass(frozen=True)
class Builtin:
    slug: str
    label: str  # the redaction placeholder, system-assigned
    find: Callable[[str], Spans]
    echo: bool = False  # a block names what matched (prompt-injection phrases), never PII


BUILTINS: dict[str, Builtin] = {
    b.slug: b
    for b in (
        Builtin("email", "[EMAIL]", _finder(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")),
        Builtin(
            "phone",
            "[PHONE]",
            _finder(
                r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)|\d{2,4})[\s.-]?\d{3,4}[\s.-]?\d{3,4}(?![\w])"
                r"|(?<![\w+])\+\d{7,14}(?!\w)"
            ),
        ),
        Builtin("ssn", "[SSN]", _finder(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")),
        Builtin("credit-card", "[CREDIT_CARD]", _finder(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)", keep=_card)),
        Builtin(
            "ip-address",
            "[IP_ADDRESS]",
            _finder(
                r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])",
                keep=_ipv4,
            ),
        ),
        Builtin(
            "secrets",
            "[SECRET]",
            _finder(
                r"\bsk-(?:or-v1-|ant-|proj-)?[A-Za-z0-9_-]{20,}"
                r"|\bAKIA[0-9A-Z]{16}\b"
                r"|\bgh[pousr]_[A-Za-z0-9]{36,}\b"
                r"|\bxox[abposr]-[A-Za-z0-9-]{10,}"
                r"|\bAIza[0-9A-Za-z_-]{35}\b"
                r"|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"
            ),
        ),
        Builtin("regex-prompt-injection", "[PROMPT_INJECTION]", _finder(_INJECTION, re.IGNORECASE), echo=True),
    )
}
# In the document's enum, but detecting them needs a language model this server does not have:
# a guardrail asking for them is refused rather than silently unenforced.
UNSUPPORTED_BUILTINS = {"person-name", "address"}


# -- what a request's text goes through


@dataclass(frozen=True)
class Filter:
    """One content filter of one guardrail, compiled."""

    guardrail_id: str
    guardrail_name: str
    kind: str  # a builtin's slug, or "custom"
    action: str  # "block", "redact" or "flag"
    label: str  # the placeholder a redaction leaves
    shown: str  # what a block names: the custom pattern (or its label), the builtin's slug
    find: Callable[[str], Spans]
    all_roles: bool = False  # the prompt-injection builtin's scan_scope all_messages
    echo: bool = False


def compile_filters(guardrail_id: str, name: str, custom: Any, builtins: Any) -> tuple[Filter, ...]:
    """A stored guardrail's filters, compiled (stored ones were checked when written)."""
    out: list[Filter] = []
    for entry in custom or ():
        compiled = check_pattern(entry["pattern"])
        label = entry.get("label") or "[REDACTED]"

        def find(text: str, c: re.Pattern[str] = compiled) -> Spans:
            return [m.span() for m in c.finditer(text) if m.end() > m.start()]

        out.append(Filter(guardrail_id, name, "custom", entry["action"], label,
                          entry.get("label") or _shown(entry["pattern"]), find))  # fmt: skip
    for entry in builtins or ():
        b = BUILTINS.get(entry["slug"])
        if b is None:
            continue
        all_roles = b.slug == "regex-prompt-injection" and entry.get("scan_scope", "all_messages") == "all_messages"
        out.append(Filter(guardrail_id, name, b.slug, entry["action"], b.label, b.slug, b.find, all_roles, b.echo))
    return tuple(out)


USER_ROLES = frozenset({"user"})
TEXT_PARTS = frozenset({"text", "input_text"})


def _content_slots(holder: dict[str, Any], key: str) -> Iterator[tuple[Any, Any]]:
    content = holder.get(key)
    if isinstance(content, str):
        yield holder, key
    elif isinstance(content, list):
        for i, part in enumerate(content):
            if isinstance(part, str):
                yield content, i
            elif (
                isinstance(part, dict) and isinstance(part.get("text"), str) and part.get("type", "text") in TEXT_PARTS
            ):
                yield part, "text"


def text_slots(body: Any, all_roles: bool) -> Iterator[tuple[Any, Any]]:
    """Where a request's message text sits, as (container, key) pairs: chat `messages` (also the
    internal form of every format), Anthropic's `messages` and `system`, the Responses API's `input`
    and `instructions`. Only user messages, unless `all_roles`."""
    if not isinstance(body, dict):
        return
    messages = body.get("messages")
    if not isinstance(messages, list):
        messages = body.get("input")
        if isinstance(messages, str):
            yield body, "input"
            messages = None
    for m in messages or ():
        if isinstance(m, dict) and (all_roles or m.get("role", "user") in USER_ROLES):
            yield from _content_slots(m, "content")
    if all_roles:
        for key in ("system", "instructions"):
            if key in body:
                yield from _content_slots(body, key)


class ContentBlocked(GatewayError):
    """A content filter's block (403). With the opt-in metadata header, the answer also carries
    `openrouter_metadata` with the guardrail's pipeline stage (behaviors §1.4)."""

    def __init__(self, f: Filter, message: str, metadata: dict[str, Any]) -> None:
        super().__init__(403, message, metadata)
        self.filter = f
        self.openrouter_metadata: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        out = super().body()
        if self.openrouter_metadata is not None:
            out["openrouter_metadata"] = self.openrouter_metadata
        return out


def _blocked(f: Filter, matched: list[str]) -> ContentBlocked:
    patterns = sorted(set(matched)) if f.echo else [f.shown]
    what = "prompt injection patterns detected" if f.kind == "regex-prompt-injection" else (
        f"content matched the {f.kind} filter" if f.kind != "custom" else "content matched a custom filter"
    )  # fmt: skip
    return ContentBlocked(
        f,
        f"Request blocked: {what} (guardrail '{f.guardrail_name}')",
        {
            "guardrail_id": f.guardrail_id,
            "guardrail_name": f.guardrail_name,
            "filter": f.kind,
            "action": "blocked",
            "patterns": patterns,
        },
    )


def apply(filters: tuple[Filter, ...], body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Run the filters over `body` (the internal request; a passthrough's client body is redacted too):
    any block raises the 403 (block beats redact), flags are noted, redactions made in place. Returns
    what was done, for the generation, or None when nothing matched."""
    slots = {all_roles: list(text_slots(body, all_roles)) for all_roles in {f.all_roles for f in filters}}
    for f in filters:
        if f.action != "block":
            continue
        for holder, key in slots[f.all_roles]:
            text = holder[key]
            if spans := f.find(text):
                raise _blocked(f, [text[a:b] for a, b in spans])
    actions: list[dict[str, Any]] = []
    client = getattr(body, "client", None)
    for f in filters:
        if f.action == "block":
            continue
        if f.action == "flag":
            count = sum(len(f.find(holder[key])) for holder, key in slots[f.all_roles])
        else:
            count = _redact_all(f, slots[f.all_roles])
            if isinstance(client, dict) and client is not body:  # the same text, as the client sent it
                _redact_all(f, list(text_slots(client, f.all_roles)))
        if count:
            actions.append({
                "guardrail_id": f.guardrail_id,
                "guardrail_name": f.guardrail_name,
                "filter": f.kind,
                "action": "redacted" if f.action == "redact" else "flagged",
                "label": f.label if f.action == "redact" else None,
                "count": count,
            })  # fmt: skip
    return actions or None


def _redact_all(f: Filter, slots: list[tuple[Any, Any]]) -> int:
    count = 0
    seen: set[tuple[int, Any]] = set()
    for holder, key in slots:
        if (id(holder), key) in seen:
            continue
        seen.add((id(holder), key))
        text = holder[key]
        if spans := f.find(text):
            holder[key] = _redacted(text, spans, f.label)
            count += len(spans)
    return count


def _redacted(text: str, spans: Spans, label: str) -> str:
    out, last = [], 0
    for a, b in spans:
        if a < last:
            continue
        out.append(text[last:a])
        out.append(label)
        last = b
    out.append(text[last:])
    return "".join(out)
