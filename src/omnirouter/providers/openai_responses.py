"""OpenAI's Responses API (`api: openai-responses`): `POST {base_url}/responses` with Bearer auth, for
providers that serve it (OpenAI's newest models, OpenRouter itself).

A chat request is translated (providers/responses_request.py) and the Response or its events come
back as chat (providers/responses_answer.py). A /responses client's own request passes through
(`complete_native`, `stream_native`; pipeline/attempt.py Passthrough): sent as it came, its answer
and events relayed, read only for the books. Errors are OpenAI's envelope.
"""

from __future__ import annotations

import re
from typing import Any

from omnirouter.catalog.types import Endpoint, Provider
from omnirouter.providers.answers import body_of, stream_opened
from omnirouter.providers.base import StreamResult, Timeouts, UpstreamContext
from omnirouter.providers.http1 import Origin, Response
from omnirouter.providers.openai_compat import OpenAICompatAdapter, build_target
from omnirouter.providers.responses_answer import StreamDecoder, completion_of, decode_response
from omnirouter.providers.responses_request import responses_request
from omnirouter.providers.sse_stream import DecodedStream, PassedThrough

_EVENT_NAME = re.compile(r"[A-Za-z0-9._-]+\Z")  # what may follow `event:` on the relayed line


class OpenAIResponsesAdapter(OpenAICompatAdapter):
    """The OpenAI-compatible adapter's HTTP (targets, pooled connections, errors) at `/responses`."""

    def target(self, provider: Provider, endpoint: Endpoint, api_key: str | None) -> tuple[Origin, bytes]:
        key = api_key or provider.api_key
        auth = {"Authorization": f"Bearer {key}"} if key else {}
        return build_target(provider, provider.base_url.rstrip("/") + "/responses", auth)

    async def _answer(
        self,
        provider: Provider,
        endpoint: Endpoint,
        body: dict[str, Any],
        timeouts: Timeouts,
        ctx: UpstreamContext | None,
    ) -> bytes:
        return await body_of(await self._send(provider, endpoint, body, timeouts, stream=False, ctx=ctx))

    async def _open(
        self,
        provider: Provider,
        endpoint: Endpoint,
        body: dict[str, Any],
        timeouts: Timeouts,
        ctx: UpstreamContext | None,
    ) -> Response:
        return await stream_opened(await self._send(provider, endpoint, body, timeouts, stream=True, ctx=ctx))

    async def complete(
        self,
        provider: Provider,
        endpoint: Endpoint,
        body: dict[str, Any],
        timeouts: Timeouts,
        ctx: UpstreamContext | None = None,
    ) -> dict[str, Any]:
        request, exclude = responses_request(body)
        raw = await self._answer(provider, endpoint, request, timeouts, ctx)
        return completion_of(decode_response(raw), exclude_reasoning=exclude)

    async def stream(
        self,
        provider: Provider,
        endpoint: Endpoint,
        body: dict[str, Any],
        timeouts: Timeouts,
        ctx: UpstreamContext | None = None,
    ) -> StreamResult:
        request, exclude = responses_request(body, stream=True)
        resp = await self._open(provider, endpoint, request, timeouts, ctx)
        return DecodedStream(resp, StreamDecoder(exclude_reasoning=exclude))

    # Passthrough (pipeline/attempt.py): a /responses client's own body, sent as it came.
    async def complete_native(
        self,
        provider: Provider,
        endpoint: Endpoint,
        body: dict[str, Any],
        timeouts: Timeouts,
        ctx: UpstreamContext | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The upstream's Response as it came, and the same as a chat completion (for the books)."""
        answer = decode_response(await self._answer(provider, endpoint, body, timeouts, ctx))
        return answer, completion_of(answer)

    async def stream_native(
        self,
        provider: Provider,
        endpoint: Endpoint,
        body: dict[str, Any],
        timeouts: Timeouts,
        ctx: UpstreamContext | None = None,
    ) -> StreamResult:
        resp = await self._open(provider, endpoint, body, timeouts, ctx)
        return _NativeResponsesStream(resp, StreamDecoder())


class _NativeResponsesStream(PassedThrough):
    """Response events passed through (formats/responses_native.py), each with its decoded event."""

    def relayed(self, fed: Any, data: bytes) -> tuple[bytes, bytes, Any]:
        kind, decoded = fed
        return kind.encode() if _EVENT_NAME.match(kind) else b"unknown", data, decoded
