"""The offline `sandbox` provider: deterministic answers with realistic usage and timing, in process,
so the quickstart works on a machine with no provider key and no network, and agents can be built
against it offline.

What it answers, for a given request always the same (docs/catalog.md, "The sandbox"):

- Tool calls, when tools are offered and a call is asked for: `tool_choice` "required" (any tool
  the message names, else the first) or a named function forces one, whatever the last message;
  with "auto" (or none given) the last message must be the user's and share a word with a tool:
  its name (as written, or with `_`/`-` read as spaces) or a word of five or more letters from its
  name or description, common words aside. Every matching tool is called (only the first with
  `parallel_tool_calls: false`); arguments are made up from the tool's JSON schema
  (providers/schema_example.py), so they validate. `tool_choice: "none"` never calls.
- After `tool` messages: a sentence quoting what the tools returned.
- `response_format` json_schema: JSON that validates against the schema; json_object: an object.
- Otherwise the echo (`sandbox/echo`) or a fixed, prompt-dependent sentence, cut at max_tokens.
- Images (`sandbox/image` with `modalities` naming "image"): `message.images` (streamed as `delta.images`)
  with one PNG data URL drawn from the last user message (providers/images/sandbox.py), and a sentence
  when "text" is asked for too.
- Reasoning, when asked (`reasoning` with an effort other than "none", `max_tokens` or `enabled`,
  or `include_reasoning`/`reasoning_effort`): `reasoning` text and one signed `reasoning.text`
  detail (the signature is an HMAC of the text with a fixed key, so one sent back still matches),
  counted as reasoning tokens; `reasoning.exclude` bills them and leaves the text out.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from omnirouter.catalog.types import Endpoint, Provider
from omnirouter.providers.base import StreamResult, Timeouts, UpstreamContext, UpstreamError
from omnirouter.providers.images import sandbox as images
from omnirouter.providers.schema_example import example

FIRST_TOKEN_SECONDS = 0.02
PER_TOKEN_SECONDS = 0.002

# Signs the sandbox's reasoning: fixed and public, it only makes the signature reproducible.
SIGNING_KEY = b"omnirouter-sandbox-reasoning"
REASONING_FORMAT = "unknown"
JSON_PIECE_CHARS = 8  # streamed JSON (content or tool arguments) comes in pieces this long
KEYWORD_LETTERS = 5
# Words too common to say which tool a message asks for.
COMMON_WORDS = frozenset({
    "about", "above", "after", "again", "being", "below", "between", "could", "doing", "during", "every",
    "given", "having", "other", "return", "returns", "should", "their", "there", "these", "those", "through",
    "under", "until", "using", "value", "values", "where", "which", "while", "would", "yours",
})  # fmt: skip
SENTENCES_BY_EFFORT = {"minimal": 1, "low": 1, "medium": 2, "high": 3, "xhigh": 3, "max": 3}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text") or "" for p in content if isinstance(p, dict))
    return ""


def _prompt_tokens(body: dict[str, Any]) -> int:
    chars = sum(len(_text_of(m.get("content"))) + 4 for m in body.get("messages") or [] if isinstance(m, dict))
    return max(1, chars // 4)


def _spaced(words: list[str]) -> list[str]:
    """Words as streamed pieces: joined, they are the words separated by single spaces."""
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def _json_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def sign(text: str) -> str:
    """The signature of a sandbox reasoning text."""
    return base64.b64encode(hmac.new(SIGNING_KEY, text.encode(), hashlib.sha256).digest()).decode()


def _fingerprint(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Reply:
    """One answer, before it is shaped as a completion or as chunks."""

    pieces: list[str] = field(default_factory=list)  # the content, as streamed
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    reasoning: str | None = None  # None: not asked, or excluded
    reasoning_tokens: int = 0
    finish: str = "stop"
    content_tokens: int = 0
    images: list[str] = field(default_factory=list)  # data URLs (`message.images`)

    @property
    def content(self) -> str | None:
        if self.tool_calls and not self.pieces:
            return None
        return "".join(self.pieces)

    @property
    def completion_tokens(self) -> int:
        args = sum(_json_tokens(tc["function"]["arguments"]) for tc in self.tool_calls)
        return self.content_tokens + args + self.reasoning_tokens


# -- what the request asks for
def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def _functions(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools = body.get("tools")
    out = []
    for tool in tools if isinstance(tools, list) else []:
        fn = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            out.append(fn)
    return out


def _mentions(fn: dict[str, Any], text: str, words: set[str]) -> bool:
    name = fn["name"].lower()
    spaced = re.sub(r"[_\-]+", " ", name)
    if name in text.lower() or spaced in " ".join(re.findall(r"[a-z0-9]+", text.lower())):
        return True
    keywords = {w for w in _words(spaced + " " + str(fn.get("description") or "")) if len(w) >= KEYWORD_LETTERS}
    return bool((keywords - COMMON_WORDS) & words)


def _tools_to_call(body: dict[str, Any], messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    functions = _functions(body)
    choice = body.get("tool_choice")
    if not functions or choice == "none":
        return []
    # The last turn, past system messages that clients such as Claude Code append after it.
    last = next((m for m in reversed(messages) if m.get("role") != "system"), {})
    text = _text_of(last.get("content")) if last.get("role") == "user" else ""
    words = _words(text)
    named = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    if isinstance(named, str):
        chosen = [fn for fn in functions if fn["name"] == named]
        if not chosen:
            raise UpstreamError(f"tool_choice names {named!r}, which is not among the tools offered", status=400)
        return chosen[:1]
    matching = [fn for fn in functions if text and _mentions(fn, text, words)]
    if choice == "required" and not matching:
        matching = functions[:1]
    if body.get("parallel_tool_calls") is False:
        matching = matching[:1]
    return matching


def _reasoning_asked(body: dict[str, Any]) -> tuple[bool, int, int | None, bool]:
    """(asked, sentences, word cap, excluded)."""
    r = body.get("reasoning")
    effort = body.get("reasoning_effort")
    cap: int | None = None
    excluded = False
    asked = bool(body.get("include_reasoning")) or (isinstance(effort, str) and effort != "none")
    if isinstance(r, dict):
        effort = r.get("effort") or effort
        cap = r.get("max_tokens") if isinstance(r.get("max_tokens"), int) else None
        excluded = r.get("exclude") is True
        if r.get("enabled") is False or r.get("effort") == "none":
            return False, 0, None, False
        asked = asked or r.get("enabled") is True or cap is not None or isinstance(r.get("effort"), str)
        asked = asked or excluded
    return asked, SENTENCES_BY_EFFORT.get(str(effort), 2), cap, excluded


def _reasoning_text(last: str, plan: str, sentences: int, cap: int | None) -> str:
    lines = [
        f"The user wrote {len(last.split())} words (fingerprint {hashlib.sha256(last.encode()).hexdigest()[:8]}).",
        plan,
        "Checking the answer against the request once more before replying.",
    ][:sentences]
    words = " ".join(lines).split()
    return " ".join(words[:cap] if cap else words)


# -- the answer
def _answer_words(body: dict[str, Any], model: str, last: str) -> list[str]:
    """The plain-text reply as tokens (words): an echo for sandbox/echo, a fixed but
    prompt-dependent sentence otherwise."""
    if model.endswith("echo"):
        return ("You said: " + last).split()
    digest = hashlib.sha256(last.encode()).hexdigest()[:8]
    return (
        f"This is the Omnirouter sandbox answering without any provider. Your message had "
        f"{len(last.split())} words (fingerprint {digest}). Configure a provider key to reach a real model."
    ).split()


def _tool_results(messages: list[dict[str, Any]]) -> str:
    """A sentence on the tool results that end the conversation."""
    names: dict[str, str] = {}
    for m in messages:
        for tc in m.get("tool_calls") or [] if m.get("role") == "assistant" else []:
            if isinstance(tc, dict):
                names[str(tc.get("id"))] = str((tc.get("function") or {}).get("name") or "tool")
    results = []
    for m in reversed(messages):
        if m.get("role") != "tool":
            break
        results.append(f"{names.get(str(m.get('tool_call_id')), 'the tool')} returned {_text_of(m.get('content'))}")
    return "Based on the tool results: " + "; ".join(reversed(results)) + "."


IMAGE_SENTENCE = "Here is a picture drawn from your message."


def _modalities(body: dict[str, Any]) -> set[str]:
    asked = body.get("modalities")
    return {m for m in asked if isinstance(m, str)} if isinstance(asked, list) else set()


def _picture(body: dict[str, Any], last_user: str) -> Reply:
    """`sandbox/image` asked for an image through chat: one PNG, and a sentence if text is asked too."""
    config = body.get("image_config") if isinstance(body.get("image_config"), dict) else {}
    ratio = config.get("aspect_ratio")
    try:
        a, b = str(ratio).split(":") if ratio else ("1", "1")
        shape = float(a) / float(b)
    except ValueError:
        shape = 1.0
    seed = body.get("seed") if isinstance(body.get("seed"), int) else None
    png = images.picture(last_user, seed=seed, ratio=shape)
    out = Reply(images=["data:image/png;base64," + base64.b64encode(png).decode()])
    if "text" in _modalities(body):
        out.pieces = _spaced(IMAGE_SENTENCE.split())
        out.content_tokens = len(out.pieces)
    return out


def reply(body: dict[str, Any], model: str) -> Reply:
    """The sandbox's answer to an internal (chat) request body."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    last_user = next((_text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    if model == "image" and "image" in _modalities(body):
        return _picture(body, last_user)
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    limit = int(limit) if isinstance(limit, int | float) and limit else None
    out = Reply()
    calls = _tools_to_call(body, messages)
    fmt = body.get("response_format") if isinstance(body.get("response_format"), dict) else {}
    json_schema = fmt.get("json_schema") if fmt.get("type") == "json_schema" else None

    if calls:
        seed = _fingerprint(messages)
        for i, fn in enumerate(calls):
            params = fn.get("parameters") if isinstance(fn.get("parameters"), dict) else {"type": "object"}
            args = json.dumps(example(params), ensure_ascii=False)
            call_id = "call_" + hashlib.sha256(f"{seed}:{i}:{fn['name']}".encode()).hexdigest()[:24]
            out.tool_calls.append(
                {"id": call_id, "type": "function", "function": {"name": fn["name"], "arguments": args}}
            )
        out.finish = "tool_calls"
        plan = f"I will call {', '.join(fn['name'] for fn in calls)} with arguments that fit its schema."
    elif isinstance(json_schema, dict) or fmt.get("type") == "json_object":
        if isinstance(json_schema, dict):
            value = example(json_schema.get("schema") if isinstance(json_schema.get("schema"), dict) else {})
            plan = f"I will answer with JSON matching the schema {json_schema.get('name') or 'given'}."
        else:
            value = {"answer": " ".join(_answer_words(body, model, last_user))}
            plan = "I will answer with a JSON object."
        text = json.dumps(value, ensure_ascii=False)
        out.content_tokens = _json_tokens(text)
        if limit and limit < out.content_tokens:
            text, out.content_tokens, out.finish = text[: limit * 4], limit, "length"
        out.pieces = [text[i : i + JSON_PIECE_CHARS] for i in range(0, len(text), JSON_PIECE_CHARS)] or [""]
    else:
        tool_turn = bool(messages) and messages[-1].get("role") == "tool"
        words = _tool_results(messages).split() if tool_turn else _answer_words(body, model, last_user)
        plan = "I will summarise what the tools returned." if tool_turn else "I will answer in plain text."
        if limit and limit < len(words):
            words, out.finish = words[:limit], "length"
        out.pieces = _spaced(words)
        out.content_tokens = len(words)

    asked, sentences, cap, excluded = _reasoning_asked(body)
    if asked:
        thought = _reasoning_text(last_user, plan, sentences, cap)
        out.reasoning_tokens = len(thought.split())
        out.reasoning = None if excluded else thought
    return out


def _usage(body: dict[str, Any], answer: Reply) -> dict[str, Any]:
    prompt, completion = _prompt_tokens(body), answer.completion_tokens
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if answer.reasoning_tokens:
        usage["completion_tokens_details"] = {"reasoning_tokens": answer.reasoning_tokens}
    return usage


def _reasoning_detail(text: str, piece: str | None = None, *, signed: bool = True) -> dict[str, Any]:
    detail: dict[str, Any] = {"type": "reasoning.text", "text": text if piece is None else piece}
    if signed:
        detail["signature"] = sign(text)
    return {**detail, "format": REASONING_FORMAT, "index": 0}


def _images(answer: Reply) -> list[dict[str, Any]]:
    return [{"type": "image_url", "image_url": {"url": url}} for url in answer.images]


class SandboxAdapter:
    async def complete(
        self,
        provider: Provider,
        endpoint: Endpoint,
        body: dict[str, Any],
        timeouts: Timeouts,
        ctx: UpstreamContext | None = None,
    ) -> dict[str, Any]:
        answer = reply(body, endpoint.upstream_model)
        await asyncio.sleep(FIRST_TOKEN_SECONDS + PER_TOKEN_SECONDS * answer.completion_tokens)
        message: dict[str, Any] = {"role": "assistant", "content": answer.content}
        if answer.reasoning is not None:
            message["reasoning"] = answer.reasoning
            message["reasoning_details"] = [_reasoning_detail(answer.reasoning)]
        if answer.tool_calls:
            message["tool_calls"] = answer.tool_calls
        if answer.images:
            message["images"] = _images(answer)
        return {
            "id": "sandbox-" + _fingerprint(body)[:16],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": endpoint.upstream_model,
            "choices": [{"index": 0, "message": message, "finish_reason": answer.finish}],
            "usage": _usage(body, answer),
        }

    async def stream(
        self,
        provider: Provider,
        endpoint: Endpoint,
        body: dict[str, Any],
        timeouts: Timeouts,
        ctx: UpstreamContext | None = None,
    ) -> StreamResult:
        answer = reply(body, endpoint.upstream_model)  # a bad request fails here, before the 200
        return StreamResult(chunks=self._chunks(body, endpoint.upstream_model, answer))

    async def _chunks(self, body: dict[str, Any], model: str, answer: Reply) -> AsyncIterator[dict[str, Any]]:
        base = {"id": "sandbox-stream", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        await asyncio.sleep(FIRST_TOKEN_SECONDS)
        yield chunk({"role": "assistant", "content": ""})
        if answer.reasoning is not None:
            for piece in _spaced(answer.reasoning.split(" ")):
                await asyncio.sleep(PER_TOKEN_SECONDS)
                yield chunk({"reasoning": piece, "reasoning_details": [_reasoning_detail("", piece, signed=False)]})
            # The signature comes last, as providers send it once the thought is complete.
            yield chunk({"reasoning_details": [_reasoning_detail(answer.reasoning, "")]})
        elif answer.reasoning_tokens:
            await asyncio.sleep(PER_TOKEN_SECONDS * answer.reasoning_tokens)
        for piece in answer.pieces:
            await asyncio.sleep(PER_TOKEN_SECONDS)
            yield chunk({"content": piece})
        for i, tc in enumerate(answer.tool_calls):
            fn = tc["function"]
            yield chunk(
                {
                    "tool_calls": [
                        {
                            "index": i,
                            "id": tc["id"],
                            "type": "function",
                            "function": {"name": fn["name"], "arguments": ""},
                        }
                    ]
                }
            )
            args = fn["arguments"]
            for start in range(0, len(args), JSON_PIECE_CHARS):
                await asyncio.sleep(PER_TOKEN_SECONDS)
                yield chunk(
                    {"tool_calls": [{"index": i, "function": {"arguments": args[start : start + JSON_PIECE_CHARS]}}]}
                )
        if answer.images:
            await asyncio.sleep(PER_TOKEN_SECONDS)
            yield chunk({"images": _images(answer)})
        yield chunk({}, answer.finish)
        yield {**base, "choices": [], "usage": _usage(body, answer)}
