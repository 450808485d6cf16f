"""Google's Gemini API (`api: gemini`): generateContent and streamGenerateContent?alt=sse.

A provider's `base_url` is the API version root (https://generativelanguage.googleapis.com/v1beta);
requests go to `{base_url}/models/{model}:generateContent`, authenticated by `x-goog-api-key`. The
body and answers are translated by gemini_wire; this module speaks HTTP through the shared Pool.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from typing import Any
from urllib.parse import quote

import msgspec

from omnirouter.catalog.types import Endpoint, Provider
from omnirouter.providers import gemini_wire
from omnirouter.providers.answers import body_of, retry_after, stream_opened
from omnirouter.providers.base import StreamResult, Timeouts, UpstreamContext, UpstreamError
from omnirouter.providers.http1 import Origin, Pool, Response, request_head, split_url
from omnirouter.providers.openai_compat import USER_AGENT
from omnirouter.providers.sse_stream import SSEStream

_decode = msgspec.json.decode
_encode = msgspec.json.encode
_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def error_from_body(status: int, text: str, headers: Any = None) -> UpstreamError:
    """Google's error envelope `{"error": {"code", "message", "status", "details"}}` (sometimes inside a
    one-element list) as an UpstreamError: provider_code is the status name (RESOURCE_EXHAUSTED ...),
    retry_after comes from a RetryInfo detail or the Retry-After header."""
    message, code, retry = f"Upstream returned HTTP {status}", None, None
    with contextlib.suppress(Exception):
        data = _decode(text)
        if isinstance(data, list) and data:
            data = data[0]
        err = data.get("error")
        if isinstance(err, dict):
            message = str(err.get("message") or message)
            code = err.get("status") or err.get("code")
            for detail in err.get("details") or ():
                kind = str(detail.get("@type", ""))
                if kind.endswith("RetryInfo") and (m := _SECONDS.match(str(detail.get("retryDelay", "")))):
                    retry = float(m.group(1))
                # Google answers a wrong key with 400 INVALID_ARGUMENT; it is an authentication failure.
                if kind.endswith("ErrorInfo") and detail.get("reason") == "API_KEY_INVALID" and status == 400:
                    status = 401
    if retry is None and headers is not None:
        retry = retry_after(headers)
    return UpstreamError(
        message, status=status, raw=text, provider_code=str(code) if code is not None else None, retry_after=retry
    )


def _parse(raw: bytes, what: str) -> dict[str, Any]:
    try:
        data = _decode(raw)
    except msgspec.DecodeError as exc:
        raise UpstreamError(
            f"Upstream sent {what} that is not valid JSON",
            status=502,
            raw=raw[:2000].decode(errors="replace"),
            kind="protocol",
        ) from exc
    if not isinstance(data, dict):
        raise UpstreamError(f"Upstream sent {what} that is not an object", status=502, kind="protocol")
    if data.get("error") and not data.get("candidates"):
        err = data["error"]
        code = err.get("code") if isinstance(err, dict) else None
        raise error_from_body(code if isinstance(code, int) else 502, raw.decode(errors="replace"))
    return data


class GeminiAdapter:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self._roots: dict[str, tuple[Origin, str, Provider]] = {}

    def _root(self, provider: Provider) -> tuple[Origin, str]:
        root = self._roots.get(provider.slug)
        if root is None or root[2] is not provider:
            origin, path = split_url(provider.base_url.rstrip("/"))
            if provider.ca_file:
                origin = dataclasses.replace(origin, ca_file=provider.ca_file)
            root = self._roots[provider.slug] = (origin, path.rstrip("/"), provider)
        return root[0], root[1]

    async def _send(
        self,
        provider: Provider,
        endpoint: Endpoint,
        body: dict[str, Any],
        timeouts: Timeouts,
        ctx: UpstreamContext | None,
        stream: bool,
    ) -> Response:
        model = endpoint.upstream_model.removeprefix("models/")
        data = _encode(gemini_wire.request_body(body, model))
        origin, root = self._root(provider)
        method = ":streamGenerateContent?alt=sse" if stream else ":generateContent"
        headers = {
            "Content-Type": "application/json",
            "Accept-Encoding": "gzip, deflate",
            "User-Agent": USER_AGENT,
            **provider.headers,
        }
        key = (ctx.credentials.api_key if ctx is not None else None) or provider.api_key
        if key:
            headers["x-goog-api-key"] = key
        head = request_head(origin, "POST", f"{root}/models/{quote(model, safe='-._~')}{method}", headers)
        return await self.pool.request(origin, b"%b%d\r\n\r\n%b" % (head, len(data), data), timeouts, stream=stream)

    async def complete(
        self,
        provider: Provider,
        endpoint: Endpoint,
        body: dict[str, Any],
        timeouts: Timeouts,
        ctx: UpstreamContext | None = None,
    ) -> dict[str, Any]:
        raw = await body_of(await self._send(provider, endpoint, body, timeouts, ctx, stream=False), error_from_body)
        return gemini_wire.completion(_parse(raw, "a response"), endpoint.upstream_model)

    async def stream(
        self,
        provider: Provider,
        endpoint: Endpoint,
        body: dict[str, Any],
        timeouts: Timeouts,
        ctx: UpstreamContext | None = None,
    ) -> StreamResult:
        resp = await self._send(provider, endpoint, body, timeouts, ctx, stream=True)
        await stream_opened(resp, error_from_body)
        return GeminiStream(resp, gemini_wire.StreamState(endpoint.upstream_model))


class GeminiStream(SSEStream):
    """Gemini's SSE events as chat chunks. Gemini sends no end marker (and some models repeat the
    finishReason on every event), so unlike the SSE streams that end on their own last event, this
    one is whole when the connection ends after a finishReason was seen; the finish and usage chunks
    are sent then."""

    def __init__(self, resp: Response, state: gemini_wire.StreamState) -> None:
        super().__init__(resp)
        self.state = state

    def translate(self, events: list[bytes]) -> list[dict[str, Any]]:
        chunks: list[dict[str, Any]] = []
        for data in events:
            if not data:
                continue
            try:
                chunks.extend(self.state.chunks(_parse(data, "a stream event")))
            except UpstreamError as exc:
                self.finished, self.failure = True, exc
                break
        return chunks

    def ended(self) -> list[dict[str, Any]]:
        if not self.state.finished:  # no finishReason yet: cut short
            return super().ended()
        return self.state.end_chunks()
