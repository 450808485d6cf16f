"""OpenAI-compatible upstreams (OpenAI, Groq, Together, DeepSeek, vLLM, Ollama, OpenRouter ...).

The internal form is this wire format, so requests and responses pass through as dicts.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import msgspec

from omnirouter import __version__
from omnirouter.catalog.types import Endpoint, Provider
from omnirouter.providers.base import StreamResult, Timeouts, UpstreamContext, UpstreamError
from omnirouter.providers.http1 import Origin, Pool, Response, request_head, split_url

_decode = msgspec.json.decode
_encode = msgspec.json.encode
MAX_ERROR_BODY = 64 * 1024
USER_AGENT = f"omnirouter/{__version__}"


def _retry_after(headers: Any) -> float | None:
    """Retry-After in seconds: a number of seconds, or an HTTP date."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def error_from_body(status: int, text: str, headers: Any = None) -> UpstreamError:
    """Turn an upstream error answer into an UpstreamError carrying its message and code."""
    message, code = f"Upstream returned HTTP {status}", None
    with contextlib.suppress(Exception):
        err = _decode(text).get("error")
        if isinstance(err, dict):
            message = str(err.get("message") or message)
            code = err.get("code") or err.get("type")
        elif isinstance(err, str):
            message = err
    return UpstreamError(
        message,
        status=status,
        raw=text,
        provider_code=str(code) if code is not None else None,
        retry_after=_retry_after(headers) if headers is not None else None,
    )


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


def _target(provider: Provider) -> tuple[Origin, bytes]:
    """A provider's origin and request head, built once rather than per request."""
    headers = {
        "Content-Type": "application/json",
        "Accept-Encoding": "gzip, deflate",
        "User-Agent": USER_AGENT,
        **provider.headers,
    }
    if provider.api_key:
        headers["Authorization"] = f"Bearer {provider.api_key}"
    origin, path = split_url(provider.base_url.rstrip("/") + "/chat/completions")
    if provider.ca_file:  # its own connections, verified against its own CAs
        origin = dataclasses.replace(origin, ca_file=provider.ca_file)
    return origin, request_head(origin, "POST", path, headers)


class OpenAICompatAdapter:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self._targets: dict[str, tuple[Origin, bytes, Provider]] = {}

    async def _send(self, provider: Provider, body: dict[str, Any], timeouts: Timeouts, stream: bool) -> Response:
        target = self._targets.get(provider.slug)
        if target is None or target[2] is not provider:
            target = self._targets[provider.slug] = (*_target(provider), provider)
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
        resp = await self._send(provider, body, timeouts, stream=False)
        try:
            raw = await resp.read()
        finally:
            resp.close()
        if resp.status != 200:
            raise error_from_body(resp.status, raw[:MAX_ERROR_BODY].decode(errors="replace"), resp.headers)
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
        resp = await self._send(provider, body, timeouts, stream=True)
        if resp.status != 200:
            try:
                text = (await resp.read())[:MAX_ERROR_BODY].decode(errors="replace")
            except UpstreamError:
                text = ""
            finally:
                resp.close()
            raise error_from_body(resp.status, text, resp.headers)
        return _SSEStream(resp)


class _SSEStream(StreamResult):
    """Server-sent events as chunk dicts. An iterator object, not a generator, so that a
    cancellation while waiting for the next event leaves it usable: a caller can go on reading
    (to bill a provider that cannot abort) after its own task was cancelled."""

    def __init__(self, resp: Response) -> None:
        self.resp = resp
        self.finished = False
        self.failure: Exception | None = None  # what ended a relay, raised in the relaying task
        super().__init__(chunks=self)

    def __aiter__(self) -> _SSEStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        if self.finished:
            raise StopAsyncIteration
        resp = self.resp
        events = resp.events
        while not events:
            self._check_end()
            await resp.wait()
        data = events.popleft()
        if data == b"[DONE]":
            self.finished = True
            raise StopAsyncIteration
        try:
            return _parse(data, "a stream event")
        except UpstreamError:
            self.finished = True
            raise

    async def relay(self, on_chunks: Callable[[list[dict[str, Any]]], None]) -> None:
        """Events are parsed and handed on in the connection's own callback as they are read, so a
        relayed chunk costs no task switch: the relaying task only waits for the end."""
        resp = self.resp

        def deliver(events: list[bytes]) -> None:
            chunks = []
            for data in events:
                if data == b"[DONE]":
                    self.finished = True
                    break
                try:
                    chunks.append(_parse(data, "a stream event"))
                except UpstreamError as exc:
                    self.finished, self.failure = True, exc
                    break
            if chunks:
                try:
                    on_chunks(chunks)
                except Exception as exc:  # raised in the relaying task, not in the connection's callback
                    self.finished, self.failure = True, self.failure or exc
            if self.finished:
                resp.on_events = None
                resp.wake()

        if resp.events:
            queued = list(resp.events)
            resp.events.clear()
            deliver(queued)
        try:
            resp.on_events = None if self.finished else deliver
            while not self.finished:
                self._check_end()
                await resp.wait()
        finally:
            resp.on_events = None
        if self.failure is not None:
            raise self.failure

    def _check_end(self) -> None:
        resp = self.resp
        if resp.error is not None or resp.complete:
            self.finished = True
            # Every OpenAI-compatible server ends with [DONE]; ending without it is a cut.
            raise resp.error or UpstreamError(
                "Upstream stream ended before it was complete", status=502, kind="protocol"
            )

    def pause(self) -> None:
        self.resp.pause()

    def resume(self) -> None:
        self.resp.resume()

    async def close(self) -> None:
        # An unfinished stream drops its connection so the upstream stops generating (and billing).
        self.resp.close()
