"""The offline `sandbox` provider: deterministic answers with realistic usage and timing, in process,
so the quickstart works on a machine with no provider key and no network."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any

from omnirouter.catalog.types import Endpoint, Provider
from omnirouter.providers.base import StreamResult, Timeouts, UpstreamContext

FIRST_TOKEN_SECONDS = 0.02
PER_TOKEN_SECONDS = 0.002


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _prompt_tokens(body: dict[str, Any]) -> int:
    chars = sum(len(_text_of(m.get("content"))) + 4 for m in body.get("messages") or [] if isinstance(m, dict))
    return max(1, chars // 4)


def _answer(body: dict[str, Any], model: str) -> list[str]:
    """The reply as tokens (words): an echo for sandbox/echo, a fixed but prompt-dependent
    sentence otherwise, capped by max_tokens."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    last = next((_text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), "")
    if model.endswith("echo"):
        words = ("You said: " + last).split()
    else:
        digest = hashlib.sha256(last.encode()).hexdigest()[:8]
        words = (
            f"This is the Omnirouter sandbox answering without any provider. Your message had "
            f"{len(last.split())} words (fingerprint {digest}). Configure a provider key to reach a real model."
        ).split()
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    return [w + " " for w in words[: int(limit)]] if limit else [w + " " for w in words]


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class SandboxAdapter:
    async def complete(
        self,
        provider: Provider,
        endpoint: Endpoint,
        body: dict[str, Any],
        timeouts: Timeouts,
        ctx: UpstreamContext | None = None,
    ) -> dict[str, Any]:
        tokens = _answer(body, endpoint.upstream_model)
        full = len(tokens) == len(_answer({**body, "max_tokens": None}, endpoint.upstream_model))
        await asyncio.sleep(FIRST_TOKEN_SECONDS + PER_TOKEN_SECONDS * len(tokens))
        return {
            "id": "sandbox-" + hashlib.sha256(repr(body).encode()).hexdigest()[:16],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": endpoint.upstream_model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(tokens).rstrip()},
                    "finish_reason": "stop" if full else "length",
                }
            ],
            "usage": _usage(_prompt_tokens(body), len(tokens)),
        }

    async def stream(
        self,
        provider: Provider,
        endpoint: Endpoint,
        body: dict[str, Any],
        timeouts: Timeouts,
        ctx: UpstreamContext | None = None,
    ) -> StreamResult:
        return StreamResult(chunks=self._chunks(body, endpoint.upstream_model))

    async def _chunks(self, body: dict[str, Any], model: str) -> AsyncIterator[dict[str, Any]]:
        tokens = _answer(body, model)
        full = len(tokens) == len(_answer({**body, "max_tokens": None}, model))
        base = {
            "id": "sandbox-stream",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }
        await asyncio.sleep(FIRST_TOKEN_SECONDS)
        yield {
            **base,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
        }
        for token in tokens:
            await asyncio.sleep(PER_TOKEN_SECONDS)
            yield {**base, "choices": [{"index": 0, "delta": {"content": token}, "finish_reason": None}]}
        yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop" if full else "length"}]}
        yield {**base, "choices": [], "usage": _usage(_prompt_tokens(body), len(tokens))}
