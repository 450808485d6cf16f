"""OpenAI-compatible upstreams (OpenAI, Groq, Together, DeepSeek, vLLM, Ollama, OpenRouter ...).

The internal form is this wire format, so requests and responses pass through as dicts.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec

from omnirouter import __version__
from omnirouter.catalog.types import Endpoint, Provider
from omnirouter.providers.answers import body_of, error_from_body, stream_opened
from omnirouter.providers.base import StreamResult, Timeouts, UpstreamContext, UpstreamError
from omnirouter.providers.http1 import Origin, Pool, Response, request_head, split_url
from omnirouter.providers.sse_stream import SSEStream

_decode = msgspec.json.decode
_encode = msgspec.json.encode
USER_AGENT = f"omnirouter/{__version__}"
MAX_TARGETS = 4096  # request heads kept per adapter (one per provider, or per provider and BYOK key)


def _parse(raw: bytes, what: str) -> Any:
    """Decode an upstream body or stream event; an error object in it becomes an UpstreamError."""
    try:
        data = _decode(raw)
    except msgspec.DecodeError as exc:
        raise UpstreamError(
            f"Upstream sent {what} that is not valid JSON",
            status=502,
            raw=raw[:2000].decode(errors="replace"),
            kind="protocol",
        ) from exc
    if isinstance(data, dict) and data.get("error") and not data.get("choices"):
        err = data["error"]
        code = err.get("code") if isinstance(err, dict) else None
        raise error_from_body(code if isinstance(code, int) else 502, raw.decode(errors="replace"))
    return data


def build_target(provider: Provider, url: str, auth: dict[str, str]) -> tuple[Origin, bytes]:
    """The origin and request head of a POST to ``url``, built once rather than per request."""
    headers = {
        "Content-Type": "application/json",
        "Accept-Encoding": "gzip, deflate",
        "User-Agent": USER_AGENT,
        **provider.headers,
        **auth,
    }
    origin, path = split_url(url)
    if provider.ca_file:  # its own connections, verified against its own CAs
        origin = dataclasses.replace(origin, ca_file=provider.ca_file)
    return origin, request_head(origin, "POST", path, headers)


class OpenAICompatAdapter:
    """Chat completions at ``{base_url}/chat/completions`` with Bearer auth. A variant of the same wire
    at other URLs or with other auth (Azure) overrides ``target`` and ``target_key``."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self._targets: dict[Any, tuple[Origin, bytes, Provider]] = {}

    def target(self, provider: Provider, endpoint: Endpoint, api_key: str | None) -> tuple[Origin, bytes]:
        """`api_key`: the call's credentials (a BYOK key), else the provider's own."""
        key = api_key or provider.api_key
        auth = {"Authorization": f"Bearer {key}"} if key else {}
        return build_target(provider, provider.base_url.rstrip("/") + "/chat/completions", auth)

    def target_key(self, provider: Provider, endpoint: Endpoint) -> Any:
        """What ``target`` depends on besides the provider object: one target per provider here."""
        return provider.slug

    async def _send(
        self,
        provider: Provider,
        endpoint: Endpoint,
        body: dict[str, Any],
        timeouts: Timeouts,
        stream: bool,
        ctx: UpstreamContext | None = None,
    ) -> Response:
        key = self.target_key(provider, endpoint)
        api_key = ctx.credentials.api_key if ctx is not None else None
        if api_key is not None:  # a call with credentials of its own (BYOK): a target per secret
            key = (key, api_key)
            if len(self._targets) > MAX_TARGETS:  # keys rotated away leave targets behind: start afresh
                self._targets.clear()
        target = self._targets.get(key)
        if target is None or target[2] is not provider:
            target = self._targets[key] = (*self.target(provider, endpoint, api_key), provider)
        data = _encode(body)
        payload = b"%b%d\r\n\r\n%b" % (target[1], len(data), data)
        return await self.pool.request(target[0], payload, timeouts, stream=stream)

    async def complete(
        self,
        provider: Provider,
        endpoint: Endpoint,
        body: dict[str, Any],
        timeouts: Timeouts,
        ctx: UpstreamContext | None = None,
    ) -> dict[str, Any]:
        raw = await body_of(await self._send(provider, endpoint, body, timeouts, stream=False, ctx=ctx))
        data = _parse(raw, "a response")
        if not isinstance(data, dict) or "choices" not in data:
            raise UpstreamError(
                "Upstream response has no choices",
                status=502,
                raw=raw[:2000].decode(errors="replace"),
                kind="protocol",
            )
        return data

    async def stream(
        self,
        provider: Provider,
        endpoint: Endpoint,
        body: dict[str, Any],
        timeouts: Timeouts,
        ctx: UpstreamContext | None = None,
    ) -> StreamResult:
        return _SSEStream(
            await stream_opened(await self._send(provider, endpoint, body, timeouts, stream=True, ctx=ctx))
        )


class _SSEStream(SSEStream):
    """OpenAI's chunks pass through as sent; `data: [DONE]` ends the stream."""

    def translate(self, events: list[bytes]) -> list[dict[str, Any]]:
        chunks = []
        for data in events:
            if data == b"[DONE]":
                self.finished = True
                break
            try:
                chunk = _decode(data)
            except msgspec.DecodeError:
                chunk = None  # _parse says what is wrong with it
            # Decoded here, not by _parse: one call less per relayed event (and `in`, not `.get`: no call).
            if chunk.__class__ is not dict or ("error" in chunk and chunk["error"]):  # noqa: RUF019
                try:
                    chunk = _parse(data, "a stream event")
                except UpstreamError as exc:
                    self.finished, self.failure = True, exc
                    break
            chunks.append(chunk)
        return chunks
