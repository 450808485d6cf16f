"""Anthropic's Messages API (`api: anthropic`, base_url like https://api.anthropic.com/v1).

Prompt caching, signed thinking, tools, images and PDFs reach Claude natively, not through the
OpenAI-compatible shim. Translation lives in anthropic_request (chat -> Messages) and
anthropic_answer (message and stream events -> chat); this module speaks HTTP.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec

from omnirouter.catalog.types import Endpoint, Provider
from omnirouter.providers.answers import body_of, stream_opened
from omnirouter.providers.anthropic_answer import StreamDecoder, completion_of
from omnirouter.providers.anthropic_request import messages_request
from omnirouter.providers.base import StreamResult, Timeouts, UpstreamContext, UpstreamError
from omnirouter.providers.http1 import Origin, Pool, Response, request_head, split_url
from omnirouter.providers.openai_compat import USER_AGENT
from omnirouter.providers.sse_stream import DecodedStream, PassedThrough

API_VERSION = "2023-06-01"
# The events a passed-through stream does not relay as they came (formats/anthropic_native.py).
REWRITTEN = frozenset({"message_start", "message_delta"})
# What /messages/count_tokens takes of a Messages request (it refuses max_tokens and sampling settings).
COUNTED_FIELDS = frozenset({"model", "messages", "system", "tools", "tool_choice", "thinking", "output_config"})
_encode = msgspec.json.encode


@dataclasses.dataclass(frozen=True)
class _Target:
    """A provider's origin and request heads, built once rather than per request."""

    provider: Provider
    origin: Origin
    # With the provider's key and betas, up to "Content-Length: "; never in a repr (it holds the key).
    head: bytes = dataclasses.field(repr=False)
    bare: bytes = dataclasses.field(repr=False)  # the fixed headers only (a call's own key and betas follow)
    count_bare: bytes = dataclasses.field(repr=False)  # the same for POST /messages/count_tokens
    betas: str = ""  # the provider's configured anthropic-beta flags


def _target(provider: Provider) -> _Target:
    betas = ""
    headers = {
        "Content-Type": "application/json",
        "Accept-Encoding": "gzip, deflate",
        "User-Agent": USER_AGENT,
        "anthropic-version": API_VERSION,
    }
    for name, value in provider.headers.items():
        if name.lower() == "anthropic-beta":  # merged with the client's flags per call
            betas = value
        else:
            headers[name] = value
    origin, path = split_url(provider.base_url.rstrip("/") + "/messages")
    if provider.ca_file:  # its own connections, verified against its own CAs
        origin = dataclasses.replace(origin, ca_file=provider.ca_file)
    bare = request_head(origin, "POST", path, headers).removesuffix(b"Content-Length: ")
    count_bare = request_head(origin, "POST", path + "/count_tokens", headers).removesuffix(b"Content-Length: ")
    return _Target(provider, origin, _head(bare, provider.api_key, betas), bare, count_bare, betas)


def _head(bare: bytes, key: str | None, betas: str) -> bytes:
    return (
        bare
        + (_header("x-api-key", key) if key else b"")
        + (_header("anthropic-beta", betas) if betas else b"")
        + b"Content-Length: "
    )


def _header(name: str, value: str) -> bytes:
    # A client-supplied value must not be able to start a header of its own.
    return f"{name}: {value.replace(chr(13), '').replace(chr(10), '')}\r\n".encode("latin-1", "replace")


def _betas(target: _Target, ctx: UpstreamContext | None) -> str:
    """The anthropic-beta flags of this call: the provider's and the client's."""
    if ctx is None or not ctx.headers:
        return target.betas
    client = ",".join(v for k in ("anthropic-beta", "x-anthropic-beta") if (v := ctx.headers.get(k)))
    if not client:
        return target.betas
    return f"{target.betas},{client}" if target.betas else client


class AnthropicAdapter:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self._targets: dict[str, _Target] = {}

    def _target_of(self, provider: Provider) -> _Target:
        target = self._targets.get(provider.slug)
        if target is None or target.provider is not provider:
            target = self._targets[provider.slug] = _target(provider)
        return target

    async def _send(
        self, target: _Target, request: dict[str, Any], timeouts: Timeouts, ctx: UpstreamContext | None, betas: str
    ) -> Response:
        key = (ctx.credentials.api_key if ctx is not None else None) or target.provider.api_key
        if key == target.provider.api_key and betas == target.betas:
            head = target.head
        else:  # a call's own key (BYOK) or the client's beta flags
            head = _head(target.bare, key, betas)
        data = _encode(request)
        payload = b"%b%d\r\n\r\n%b" % (head, len(data), data)
        return await self.pool.request(target.origin, payload, timeouts, stream=request.get("stream", False))

    async def complete(
        self,
        provider: Provider,
        endpoint: Endpoint,
        body: dict[str, Any],
        timeouts: Timeouts,
        ctx: UpstreamContext | None = None,
    ) -> dict[str, Any]:
        target = self._target_of(provider)
        betas = _betas(target, ctx)
        request, thinking = messages_request(body, endpoint_max=endpoint.max_completion_tokens, betas=betas)
        raw = await body_of(await self._send(target, request, timeouts, ctx, betas))
        return completion_of(raw, exclude_reasoning=thinking.exclude)

    async def stream(
        self,
        provider: Provider,
        endpoint: Endpoint,
        body: dict[str, Any],
        timeouts: Timeouts,
        ctx: UpstreamContext | None = None,
    ) -> StreamResult:
        target = self._target_of(provider)
        betas = _betas(target, ctx)
        request, thinking = messages_request(
            body, endpoint_max=endpoint.max_completion_tokens, betas=betas, stream=True
        )
        resp = await stream_opened(await self._send(target, request, timeouts, ctx, betas))
        return DecodedStream(resp, StreamDecoder(exclude_reasoning=thinking.exclude))

    # Passthrough (pipeline/attempt.py): a Messages client's own body, sent as it came.
    async def complete_native(
        self,
        provider: Provider,
        endpoint: Endpoint,
        body: dict[str, Any],
        timeouts: Timeouts,
        ctx: UpstreamContext | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The upstream's message as it came, and the same as a chat completion (for the books)."""
        target = self._target_of(provider)
        raw = await body_of(await self._send(target, body, timeouts, ctx, _betas(target, ctx)))
        completion = completion_of(raw)  # refuses what is not a message
        return msgspec.json.decode(raw), completion

    async def stream_native(
        self,
        provider: Provider,
        endpoint: Endpoint,
        body: dict[str, Any],
        timeouts: Timeouts,
        ctx: UpstreamContext | None = None,
    ) -> StreamResult:
        target = self._target_of(provider)
        resp = await stream_opened(await self._send(target, body, timeouts, ctx, _betas(target, ctx)))
        return _NativeMessagesStream(resp, StreamDecoder())

    async def count_tokens(
        self,
        provider: Provider,
        endpoint: Endpoint,
        body: dict[str, Any],
        timeouts: Timeouts,
        ctx: UpstreamContext | None = None,
    ) -> int:
        """The input tokens Anthropic counts for a chat request (POST /messages/count_tokens: free,
        exact, nothing generated); raise UpstreamError if it cannot say."""
        target = self._target_of(provider)
        betas = _betas(target, ctx)
        request, _ = messages_request(body, endpoint_max=endpoint.max_completion_tokens, betas=betas)
        counted = {k: v for k, v in request.items() if k in COUNTED_FIELDS}
        key = (ctx.credentials.api_key if ctx is not None else None) or provider.api_key
        head = _head(target.count_bare, key, betas)
        data = _encode(counted)
        resp = await self.pool.request(
            target.origin, b"%b%d\r\n\r\n%b" % (head, len(data), data), timeouts, stream=False
        )
        raw = await body_of(resp)
        try:
            tokens = msgspec.json.decode(raw, type=_Count).input_tokens
        except msgspec.DecodeError:
            raise UpstreamError("Upstream sent a token count that is not valid", status=502,
                                raw=raw[:2000].decode(errors="replace"), kind="protocol") from None  # fmt: skip
        return tokens


class _Count(msgspec.Struct):
    input_tokens: int


class _NativeMessagesStream(PassedThrough):
    """Anthropic's events passed through (formats/anthropic_native.py); `decoded` only for the
    events that format rewrites."""

    def relayed(self, fed: Any, data: bytes) -> tuple[bytes, bytes, Any]:
        name = fed.encode() if fed.isidentifier() else b"unknown"  # it becomes an `event:` line
        return name, data, msgspec.json.decode(data) if fed in REWRITTEN else None
