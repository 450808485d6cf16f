"""context-compression (engine middle-out): a prompt too long for the endpoint loses messages from its
middle instead of failing (behaviors §8.6).

On when the request asks (`plugins: [{id: "context-compression"}]`, or the legacy
`transforms: ["middle-out"]`), off when it says so (`enabled: false`, or `transforms: []`), and on by
default for endpoints of at most 8,192 tokens of context. The planner keeps the endpoints it may
compress for (routing/plan.py `_fits`: at least half the context needed, else the largest). When the
endpoint tried first is one of them, the prompt is shrunk to the smallest context among those the
prompt does not fit, so that any of them can serve it; when the first holds the prompt whole,
nothing is shrunk and the endpoints that could not take it leave the plan.

What is kept: every system (developer) message, the first turn and the last; an assistant message's
tool calls and their results go or stay together. Messages are dropped from the middle outwards,
which also keeps half of them from the start and half from the end when a model's `max_messages`
(catalog) is exceeded. If dropping is not enough, the longest remaining text is cut in its middle.
Tokens are estimated as the rest of the gateway does (4 characters each).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from omnirouter.errors import GatewayError
from omnirouter.jsonio import encode
from omnirouter.plugins import requested

if TYPE_CHECKING:
    from omnirouter.pipeline.call import Call
    from omnirouter.plugins.run import PluginRun

ID = "context-compression"
CHARS_PER_TOKEN = 4  # pipeline/call.py estimate_tokens
_CUT = "\n...\n"  # where a truncated text lost its middle
_SYSTEM = ("system", "developer")


def asked(body: dict[str, Any]) -> bool | None:
    """True when the request turns compression on, False when it turns it off, None when it says nothing."""
    entry = requested(body).get(ID)
    return None if entry is None else entry.get("enabled", True) is not False


def _enabled(options: dict[str, Any] | None) -> bool:
    return options is not None and options.get("enabled", True) is not False


def wanted(call: Call, options: dict[str, Any] | None) -> bool:
    if options is not None:
        return _enabled(options)
    # Unasked: only when the planner kept small endpoints that the prompt does not fit as it is.
    return call.needs.shrink


def _units(messages: list[Any]) -> list[list[int]]:
    """The messages' indices in groups that stay or go together: an assistant message that calls
    tools with the tool results after it; every other message alone."""
    units: list[list[int]] = []
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "tool" and units and _calls_tools(messages[units[-1][0]]):
            units[-1].append(i)
        else:
            units.append([i])
    return units


def _calls_tools(message: Any) -> bool:
    return isinstance(message, dict) and message.get("role") == "assistant" and bool(message.get("tool_calls"))


def _size(value: Any) -> int:
    return len(encode(value))


class _Prompt:
    """The messages being shrunk, with their encoded sizes (characters) kept up to date."""

    def __init__(self, body: dict[str, Any], messages: list[Any]) -> None:
        self.messages = list(messages)
        self.sizes = [_size(m) + 1 for m in messages]  # +1: the comma between them
        self.rest = _size({k: v for k, v in body.items() if k != "messages"})
        self.kept = [True] * len(messages)

    @property
    def chars(self) -> int:
        return self.rest + sum(s for s, k in zip(self.sizes, self.kept, strict=True) if k)

    @property
    def count(self) -> int:
        return sum(self.kept)

    def texts(self) -> list[tuple[int, int | None, str]]:
        """The kept messages' texts as (message index, part index or None, text), longest first,
        system messages last (the instructions are the last thing to cut)."""
        found = []
        for i, (message, kept) in enumerate(zip(self.messages, self.kept, strict=True)):
            if not kept or not isinstance(message, dict):
                continue
            content = message.get("content")
            if isinstance(content, str):
                found.append((i, None, content))
            elif isinstance(content, list):
                found += [(i, j, p["text"]) for j, p in enumerate(content)
                          if isinstance(p, dict) and isinstance(p.get("text"), str)]  # fmt: skip
        return sorted(found, key=lambda t: (self.messages[t[0]].get("role") in _SYSTEM, -len(t[2])))

    def cut(self, i: int, part: int | None, text: str, chars: int) -> None:
        """Take `chars` characters out of the middle of a message's text."""
        keep = max(0, len(text) - chars - len(_CUT))
        head = keep // 2
        shorter = text[:head] + _CUT + text[len(text) - (keep - head) :] if keep else ""
        message = dict(self.messages[i])
        if part is None:
            message["content"] = shorter
        else:
            content = list(message["content"])
            content[part] = {**content[part], "text": shorter}
            message["content"] = content
        self.messages[i] = message
        self.sizes[i] = _size(message) + 1


def compress(body: dict[str, Any], budget_chars: int | None, max_messages: int | None) -> dict[str, Any] | None:
    """Shrink `body["messages"]` in place to at most `budget_chars` encoded characters and
    `max_messages` messages; what was done, or None when nothing needed doing."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    prompt = _Prompt(body, messages)
    before_chars, before_count = prompt.chars, prompt.count

    def over() -> bool:
        return (budget_chars is not None and prompt.chars > budget_chars) or (
            max_messages is not None and prompt.count > max_messages
        )

    if not over():
        return None
    units = _units(messages)
    non_system = [u for u in units if not (isinstance(messages[u[0]], dict) and messages[u[0]].get("role") in _SYSTEM)]
    pinned = {id(non_system[0]), id(non_system[-1])} if non_system else set()
    droppable = [u for u in non_system if id(u) not in pinned]
    dropped = 0
    while over() and droppable:
        for i in droppable.pop(len(droppable) // 2):  # the middle one
            prompt.kept[i] = False
            dropped += 1
    truncated = 0
    for _ in range(64):  # each cut shrinks the prompt (the margin covers the marker's escapes)
        if budget_chars is None or prompt.chars <= budget_chars:
            break
        texts = [t for t in prompt.texts() if len(t[2]) > len(_CUT)]
        if not texts:
            break
        i, part, text = texts[0]
        prompt.cut(i, part, text, prompt.chars - budget_chars + 2 * len(_CUT))
        truncated += 1
    if over():
        return {"fits": False}
    body["messages"] = [m for m, k in zip(prompt.messages, prompt.kept, strict=True) if k]
    return {
        "engine": "middle-out",
        "messages_dropped": dropped,
        "messages_truncated": truncated,
        "messages_before": before_count,
        "messages_after": prompt.count,
        "prompt_tokens_before": -(-before_chars // CHARS_PER_TOKEN),
        "prompt_tokens_after": -(-prompt.chars // CHARS_PER_TOKEN),
    }


def _target(call: Call) -> int | None:
    """The context to compress for: the smallest among the planned endpoints the prompt does not fit,
    when the endpoint tried first is one of them. When the first holds the prompt as it is, nothing
    is compressed, and the endpoints kept only to be compressed for leave the plan (they could not
    take the prompt whole)."""
    context_of = call.st.catalog.endpoint_context_length
    need = call.needs.prompt_tokens + (call.req.completion_limit or 0)
    sized = [(c, context_of(c.model, c.endpoint)) for c in call.plan.candidates]
    short = [ctx for _, ctx in sized if ctx and need > ctx]
    if not short:
        return None
    first = sized[0][1]
    if first and need > first:
        return min(short)
    call.plan.candidates = [c for c, ctx in sized if not ctx or need <= ctx]
    return None


async def prepare(call: Call, options: dict[str, Any] | None, run: PluginRun) -> None:
    context = _target(call)
    limits = [c.model.max_messages for c in call.plan.candidates if c.model.max_messages]
    if context is None and not limits:
        return
    completion = call.req.completion_limit or 0
    budget = (context - completion) * CHARS_PER_TOKEN if context is not None else None
    if budget is not None and budget <= 0:
        raise GatewayError(
            400, f"The completion asked for ({completion} tokens) leaves no room for a prompt in this "
            f"endpoint's context length of {context} tokens",
            {"error_type": "context_length_exceeded"},
        )  # fmt: skip
    done = compress(call.body, budget, min(limits) if limits else None)
    if done is None:
        return
    if not done.get("fits", True):
        raise GatewayError(
            400, f"The prompt does not fit this endpoint's maximum context length of {context} tokens even "
            "compressed: shorten it, or ask for a shorter completion",
            {"error_type": "context_length_exceeded"},
        )  # fmt: skip
    run.changed(call)
    done["context_length"] = context
    run.details["compressed"] = done
    call.needs.prompt_tokens = done["prompt_tokens_after"]
