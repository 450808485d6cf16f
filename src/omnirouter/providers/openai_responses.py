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
from omnirouter.providers.base import StreamResult, Timeouts, UpstreamContext, UpstreamError
from omnirouter.providers.http1 import Origin, Response
from omnirouter.providers.openai_compat import OpenAICompatAdapter, build_target
from omnirouter.providers.responses_answer import StreamDecoder, completion_of, decode_response
from omnirouter.providers.responses_request import responses_request
from omnirouter.providers.sse_stream import SSEStream

_EVENT_NAME = re.compile(r"[A-Za-z0-9._-]+\Z")  # what may follow `event:` on the relayed line


class OpenAIResponsesAdapter(OpenAICompatAdapter):
    """The OpenAI-compatible adapter's HTTP (targets, pooled connections, errors) at `/responses`."""

    def target(self, provider: Provider, endpoint: Endpoint) -> tuple[Origin, bytes]:
        auth = {"Authorization": f"Bearer {provider.api_key}"} if provider.api_key else {}
        return build_target(provider, provider.base_url.rstrip("/") + "/responses", auth)

    async def _answer(self, provider: Provider, endpoint: Endpoint, body: dict[str, Any], timeouts: Timeouts) -> bytes:
        return await body_of(await self._send(provider, endpoint, body, timeouts, stream=False))

    async def _open(self, provider: Provider, endpoint: Endpoint, body: dict[str, Any], timeouts: Timeouts) -> Response:
        return await stream_opened(await self._send(provider, endpoint, body, timeouts, stream=True))

    async def complete(
        self,
        provider: Provider,
        endpoint: Endpoint,
        body: dict[str, Any],
        timeouts: Timeouts,
        ctx: UpstreamContext | None = None,
    ) -> dict[str, Any]:
        request, exclude = responses_request(body)
        raw = await self._answer(provider, endpoint, request, timeouts)
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
        resp = await self._open(provider, endpoint, request, timeouts)
        return _ResponsesStream(resp, StreamDecoder(exclude_reasoning=exclude))

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
        answer = decode_response(await self._answer(provider, endpoint, body, timeouts))
        return answer, completion_of(answer)

    async def stream_native(
        self,
        provider: Provider,
        endpoint: Endpoint,
        body: dict[str, Any],
        timeouts: Timeouts,
        ctx: UpstreamContext | None = None,
    ) -> StreamResult:
        resp = await self._open(provider, endpoint, body, timeouts)
        return _NativeResponsesStream(resp, StreamDecoder())


class _ResponsesStream(SSEStream):
    """Response events as chunks; response.completed (or incomplete) ends the stream, a failed
    response or an error event fails it."""

    def __init__(self, resp: Response, decoder: StreamDecoder) -> None:
        super().__init__(resp)
        self.decoder = decoder

    def translate(self, events: list[bytes]) -> list[dict[str, Any]]:
        chunks: list[dict[str, Any]] = []
        decoder = self.decoder
        for data in events:
            try:
                decoder.feed(data, chunks)
            except UpstreamError as exc:
                self.finished, self.failure = True, exc
                break
            if decoder.done:
                self.finished = True
                break
        return chunks


class _NativeResponsesStream(_ResponsesStream):
    """A passed-through stream: the decoder's chunks, for the gateway's books, and after them each
    event as it came, `{"native": (type, data, decoded)}`, for the client
    (formats/responses_native.py). Until the first chunk the events are held, so that a failure
    before any content still falls back to another endpoint, as a translated stream does."""

    def __init__(self, resp: Response, decoder: StreamDecoder) -> None:
        super().__init__(resp, decoder)
        self.held: list[dict[str, Any]] | None = []

    def translate(self, events: list[bytes]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        decoder = self.decoder
        for data in events:
            try:
                kind, decoded = decoder.feed(data, out)
            except UpstreamError as exc:
                self.finished, self.failure = True, exc
                break
            item = {"native": (kind.encode() if _EVENT_NAME.match(kind) else b"unknown", data, decoded)}
            if self.held is None:
                out.append(item)
            else:
                self.held.append(item)
                if out or decoder.done:
                    out += self.held
                    self.held = None
            if decoder.done:
                self.finished = True
                break
        return out
