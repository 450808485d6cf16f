"""OpenAI-compatible upstreams (OpenAI, Groq, Together, DeepSeek, vLLM, Ollama, OpenRouter ...).

The internal form is this wire format, so requests and responses pass through as dicts.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import msgspec

from omnirouter import __version__
from omnirouter.catalog.types import Endpoint, Provider
from omnirouter.providers.base import StreamResult, Timeouts, UpstreamError

_decode = msgspec.json.decode
_encode = msgspec.json.encode
MAX_ERROR_BODY = 64 * 1024
USER_AGENT = f"omnirouter/{__version__}"


def _retry_after(headers: Any) -> float | None:
    """Retry-After in seconds: a number of seconds, or an HTTP date."""
    value = headers.get("Retry-After")
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


def _transport_error(exc: BaseException) -> UpstreamError:
    if isinstance(exc, (asyncio.TimeoutError, aiohttp.ServerTimeoutError)):
        return UpstreamError("Upstream timed out", kind="timeout")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamError(f"Could not connect to upstream: {exc.os_error or exc}", kind="connect")
    return UpstreamError(f"Upstream connection failed: {type(exc).__name__}", kind="protocol")


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


def _target(provider: Provider) -> tuple[str, dict[str, str], Provider]:
    """A provider's URL and headers, built once rather than per request."""
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **provider.headers}
    if provider.api_key:
        headers["Authorization"] = f"Bearer {provider.api_key}"
    return provider.base_url.rstrip("/") + "/chat/completions", headers, provider


class OpenAICompatAdapter:
    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self._targets: dict[str, tuple[str, dict[str, str], Provider]] = {}

    def _request_args(self, provider: Provider, body: dict[str, Any], timeouts: Timeouts) -> dict[str, Any]:
        target = self._targets.get(provider.slug)
        if target is None or target[2] is not provider:
            target = self._targets[provider.slug] = _target(provider)
        return {
            "url": target[0],
            "data": _encode(body),
            "headers": target[1],
            "timeout": aiohttp.ClientTimeout(
                total=timeouts.total, sock_connect=timeouts.connect, sock_read=timeouts.first_byte
            ),
        }

    async def complete(
        self, provider: Provider, endpoint: Endpoint, body: dict[str, Any], timeouts: Timeouts
    ) -> dict[str, Any]:
        try:
            async with self.session.post(**self._request_args(provider, body, timeouts)) as resp:
                raw = await resp.read()
                if resp.status != 200:
                    raise error_from_body(resp.status, raw[:MAX_ERROR_BODY].decode(errors="replace"), resp.headers)
        except UpstreamError:
            raise
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise _transport_error(exc) from exc
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
        self, provider: Provider, endpoint: Endpoint, body: dict[str, Any], timeouts: Timeouts
    ) -> StreamResult:
        try:
            resp = await self.session.post(**self._request_args(provider, body, timeouts))
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise _transport_error(exc) from exc
        if resp.status != 200:
            try:
                text = (await resp.content.read(MAX_ERROR_BODY)).decode(errors="replace")
            except (TimeoutError, aiohttp.ClientError, OSError):
                text = ""
            finally:
                resp.release()
            raise error_from_body(resp.status, text, resp.headers)
        return _SSEStream(resp)


class _SSEStream(StreamResult):
    """Server-sent events as chunk dicts. An iterator object, not a generator, so that a
    cancellation while waiting for the next line leaves it usable: a caller can go on reading
    (to bill a provider that cannot abort) after its own task was cancelled."""

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self.resp = resp
        self.finished = False
        super().__init__(chunks=self)

    def __aiter__(self) -> _SSEStream:
        return self

    async def __anext__(self) -> dict[str, Any]:
        if self.finished:
            raise StopAsyncIteration
        try:
            while True:
                line = await self.resp.content.readline()
                if not line:
                    self.finished = True
                    # Every OpenAI-compatible server ends with [DONE]; ending without it is a cut.
                    raise UpstreamError("Upstream stream ended before it was complete", status=502, kind="protocol")
                if not line.startswith(b"data:"):
                    continue  # blank separators, ": comments", event: lines
                data = line[5:].strip()
                if data == b"[DONE]":
                    self.finished = True
                    raise StopAsyncIteration
                try:
                    return _parse(data, "a stream event")
                except UpstreamError:
                    self.finished = True
                    raise
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self.finished = True
            raise _transport_error(exc) from exc

    async def close(self) -> None:
        # close(), not release(): an unfinished stream must drop the connection so the upstream
        # stops generating (and billing).
        self.resp.close()
