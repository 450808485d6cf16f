"""What every provider adapter offers the attempt loop, and how upstream failures are described.

The internal form is the OpenAI Chat Completions shape as plain dicts: a request body going up, a
response body or a stream of chunk dicts coming back. An adapter for another wire format translates
to and from it; the openai-compatible adapter passes it through.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from omnirouter.catalog.types import Endpoint, Provider

# Statuses that mean "this endpoint, now": try the next one (behaviors §3.5).
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 520, 522, 524, 529})

ERROR_TYPE_BY_UPSTREAM_STATUS = {
    400: "invalid_request",
    401: "authentication",
    402: "payment_required",
    403: "permission_denied",
    404: "not_found",
    408: "timeout",
    413: "payload_too_large",
    422: "unprocessable",
    429: "rate_limit_exceeded",
    503: "provider_overloaded",
    529: "provider_overloaded",
}


@dataclass
class UpstreamError(Exception):
    """A failed attempt. `status` is the upstream's HTTP status, or None for a transport failure."""

    message: str
    status: int | None = None
    raw: str | None = None  # the upstream's body, for error.metadata.raw
    provider_code: str | None = None
    retry_after: float | None = None
    kind: str = "http"  # http | connect | timeout | protocol

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status in RETRYABLE_STATUSES

    @property
    def error_type(self) -> str:
        if self.kind == "timeout":
            return "timeout"
        if self.status is None:
            return "provider_unavailable"
        if self.status in ERROR_TYPE_BY_UPSTREAM_STATUS:
            return ERROR_TYPE_BY_UPSTREAM_STATUS[self.status]
        return "server" if self.status == 500 else "provider_unavailable"


@dataclass
class Timeouts:
    connect: float
    first_byte: float
    total: float


@dataclass(frozen=True)
class Credentials:
    """What one call authenticates with upstream: the provider's configured secret by default; a
    BYOK key or a signed-request identity later. Adapters read it per call, never from the provider."""

    api_key: str | None = field(default=None, repr=False)  # a secret: never in a repr or a log line


@dataclass(frozen=True)
class UpstreamContext:
    """Per-request facts an adapter may need beyond the body: the credentials, and client headers
    meant for the upstream (`anthropic-beta`), lower-case names."""

    credentials: Credentials = field(default_factory=Credentials)
    headers: dict[str, str] = field(default_factory=dict)


# Client request headers forwarded (in UpstreamContext.headers) to the adapters that understand them;
# `x-anthropic-beta` is the name OpenRouter documents for `anthropic-beta` (behaviors §3.2).
FORWARDED_HEADERS = ("anthropic-beta", "x-anthropic-beta")


@dataclass
class StreamResult:
    """An upstream stream that has answered 200. Iterate `chunks`; always `close()` it."""

    chunks: AsyncIterator[dict[str, Any]]
    upstream_body: dict[str, Any] = field(default_factory=dict)

    async def relay(self, on_chunks: Callable[[list[dict[str, Any]]], None]) -> None:
        """Hand every further chunk to `on_chunks` (those that arrived together in one call) until
        the stream ends; raise UpstreamError if it fails. If cancelled, it can be called again,
        with another handler, and goes on where it stopped."""
        async for chunk in self.chunks:
            on_chunks([chunk])

    def pause(self) -> None:
        """Stop taking data from the upstream until `resume()`: the client is behind. Adapters that
        read a connection override it."""

    def resume(self) -> None:
        """Take data again after `pause()`."""

    async def close(self) -> None:  # adapters override to abort the upstream connection
        return None


class Adapter(Protocol):
    """One provider API. `body` is the internal (chat) request prepared for this endpoint: its
    upstream model name, the gateway's control fields removed, unsupported parameters dropped."""

    async def complete(
        self,
        provider: Provider,
        endpoint: Endpoint,
        body: dict[str, Any],
        timeouts: Timeouts,
        ctx: UpstreamContext | None = None,
    ) -> dict[str, Any]:
        """Send a non-streaming request; return the response body or raise UpstreamError."""
        ...

    async def stream(
        self,
        provider: Provider,
        endpoint: Endpoint,
        body: dict[str, Any],
        timeouts: Timeouts,
        ctx: UpstreamContext | None = None,
    ) -> StreamResult:
        """Open a streaming request; return once the upstream answered 200, or raise UpstreamError."""
        ...
