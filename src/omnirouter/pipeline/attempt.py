"""The attempt loop: try the planned endpoints in order until one answers.

Connection errors, timeouts, 408, 429, 5xx and upstream auth or billing failures move on to the
next endpoint; request errors (400, 404, 413, 422) are the client's and return at once. For a
stream, an attempt lasts until the first chunk arrives: until then nothing has reached the client,
so a stall or a broken stream can still fall back.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from omnirouter.errors import MASKED_500_MESSAGE, GatewayError
from omnirouter.formats.openai_chat import dropped_parameters, upstream_body
from omnirouter.providers.base import StreamResult, Timeouts, UpstreamContext, UpstreamError
from omnirouter.routing.availability import availability_error
from omnirouter.routing.plan import Candidate, Plan

if TYPE_CHECKING:
    from omnirouter.routing.engine import Routing

# One attempt of an operation other than chat: (candidate, timeouts, credentials) -> its answer.
Send = Callable[[Candidate, Timeouts, UpstreamContext | None], Awaitable[Any]]

# Omnirouter's own header (OpenRouter documents none): the request fields that the endpoint which
# answered does not support, so they were left out of what it was sent.
DROPPED_PARAMETERS_HEADER = "X-Omnirouter-Dropped-Params"
CLIENT_FAULT_STATUSES = frozenset({400, 404, 413, 422})
KEY_FAULTS = frozenset({401, 402, 403})  # the credentials' fault: the endpoint itself may be fine
CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length", "max_tokens_exceeded"})
# OpenAI, vLLM and Anthropic ("prompt is too long"), Bedrock ("Input is too long"), Gemini ("The input
# token count ... exceeds the maximum number of tokens allowed").
_CONTEXT_MESSAGE = re.compile(
    r"context (length|window)|maximum context|(prompt|input) is too long|too many tokens"
    r"|input token count .* exceeds the maximum",
    re.I,
)
# A timeout is 408 ("Request timed out"): the status the chat operation documents for it.
STATUS_OF_ERROR_TYPE = {
    "provider_overloaded": 503,
    "provider_unavailable": 502,
    "timeout": 408,
    "server": 500,
}


@dataclass
class Attempt:
    candidate: Candidate
    started: float
    latency_ms: int
    status: int | None
    error: UpstreamError | None = None

    def record(self) -> dict[str, Any]:
        """The `provider_responses` entry of /generation."""
        ep = self.candidate.endpoint
        return {
            "endpoint_id": f"{self.candidate.model.id}@{ep.slug}",
            "model_permaslug": self.candidate.model.id,
            "provider_name": self.candidate.provider.name,
            "status": self.status if self.status is not None else (200 if self.error is None else 502),
            "latency": self.latency_ms,
            "is_byok": self.candidate.byok is not None,
        }


class RouteFailed(GatewayError):
    """The client-facing error of a request whose every attempt failed, with the attempts made, so
    the generation record can list them."""

    def __init__(self, err: GatewayError, attempts: list[Attempt]) -> None:
        super().__init__(err.status, err.message, err.metadata, headers=err.headers, extra=err.extra)
        self.attempts = attempts


@dataclass
class Outcome:
    candidate: Candidate
    attempts: list[Attempt]
    body: dict[str, Any] = field(default_factory=dict)  # the upstream request body that succeeded
    response: dict[str, Any] | None = None  # non-streaming answer
    stream: StreamResult | None = None  # streaming answer, its first chunk already read
    first_chunk: dict[str, Any] | None = None
    first_byte_at: float | None = None
    dropped: list[str] = field(default_factory=list)  # request fields this endpoint was not sent
    # Passed through: the client's own request went to an upstream of its format. `native` is that
    # upstream's answer as it came (non-streaming); a stream's items carry its events (see Passthrough).
    passthrough: bool = False
    native: dict[str, Any] | None = None

    def headers(self) -> dict[str, str]:
        """Response headers of this answer: the parameters its endpoint did not support, if any."""
        return {DROPPED_PARAMETERS_HEADER: ", ".join(self.dropped)} if self.dropped else {}


@dataclass(frozen=True)
class Passthrough:
    """A request whose client format an upstream API speaks too (Messages to Anthropic): to such an
    upstream the client's own body goes, made by `body(upstream_model, stream)`, not a translation,
    so cache prefixes, signatures and fields the gateway does not know arrive intact.

    The adapter's `complete_native` returns (its answer as it came, the same as a chat completion),
    and its `stream_native` yields chat chunks to account with plus, in order, one
    `{"native": event}` item per upstream event for the client's format to relay."""

    api: str
    body: Callable[[str, bool], dict[str, Any]]


def timeouts_for(candidate: Candidate, defaults: Timeouts, remaining: float) -> Timeouts:
    """The provider's own timeouts where it sets them, none longer than the request has left."""
    p = candidate.provider
    return Timeouts(
        connect=min(p.connect_timeout or defaults.connect, remaining),
        first_byte=min(p.first_byte_timeout or defaults.first_byte, remaining),
        total=min(defaults.total, remaining),
    )


# Upstreams quote (part of) the key they rejected, e.g. "Incorrect API key provided: sk-abc***xyz".
_SECRET_LIKE = re.compile(r"\b(?:sk|rk|pk|key|gsk|xai)[-_][A-Za-z0-9_*\-.]{6,}")


def scrub(text: str | None, secret: str | None) -> str | None:
    """Remove provider secrets from upstream text before it reaches a client or a log."""
    if not text:
        return text
    if secret:
        text = text.replace(secret, "[redacted]")
    return _SECRET_LIKE.sub("[redacted]", text)


def provider_error(err: UpstreamError, candidate: Candidate) -> GatewayError:
    """The client-facing error for one failed attempt: the upstream's own status for request errors,
    502/503/504 for the provider's failures; a 500's details are masked."""
    error_type = err.error_type
    if err.status is not None and 400 <= err.status < 500 and err.status in CLIENT_FAULT_STATUSES | {408, 429}:
        status = err.status
    else:
        status = STATUS_OF_ERROR_TYPE.get(error_type, 502)
    metadata: dict[str, Any] = {"provider_name": candidate.provider.name, "error_type": error_type}
    if status == 500:
        return GatewayError(500, MASKED_500_MESSAGE, metadata)
    secret = candidate.byok.secret if candidate.byok is not None else candidate.provider.api_key
    metadata["raw"] = scrub(err.raw, secret)
    if err.provider_code:
        metadata["provider_code"] = err.provider_code
    headers = {"Retry-After": str(int(err.retry_after + 0.999))} if err.retry_after is not None else None
    message = scrub(err.message, secret) or ""
    if status >= 500:
        message = f"Provider returned error: {message}"
    return GatewayError(status, message, metadata, headers=headers)


def _all_failed(attempts: list[Attempt], requested: list[str]) -> GatewayError:
    last = attempts[-1]
    assert last.error is not None
    if len(attempts) == 1:
        return provider_error(last.error, last.candidate)
    previous = [
        {
            "provider": a.candidate.provider.name,
            "code": a.error.error_type if a.error else None,
            "status": a.status,
        }
        for a in attempts
    ]
    if all(a.status == 429 for a in attempts):
        hints = [a.error.retry_after for a in attempts if a.error and a.error.retry_after is not None]
        return availability_error(
            "capacity_exhausted",
            "All providers for this request are rate limited",
            requested,
            retry_after=min(hints) if len(hints) == len(attempts) else None,
            previous_errors=previous,
        )
    return availability_error(
        "temporarily_unavailable",
        f"All {len(attempts)} providers for this request failed",
        requested,
        previous_errors=previous,
    )


def attempt_status(err: UpstreamError) -> int:
    """The status an attempt is recorded with: the upstream's, else 408 for a timeout (as the
    client is told) and 502 for a connection that failed or broke."""
    if err.status is not None:
        return err.status
    return 408 if err.kind == "timeout" else 502


def falls_back(err: UpstreamError) -> bool:
    """Request errors stop the attempt loop, except a prompt too long for this endpoint: another
    endpoint or fallback model may have a larger context (behaviors §3.3)."""
    if err.status in CLIENT_FAULT_STATUSES:
        return err.status == 400 and (
            err.provider_code in CONTEXT_CODES or bool(_CONTEXT_MESSAGE.search(err.message or ""))
        )
    return True


def _deadline_error(attempts: list[Attempt], requested: list[str]) -> GatewayError:
    previous = [{"provider": a.candidate.provider.name, "code": a.error.error_type if a.error else None,
                 "status": a.status} for a in attempts]  # fmt: skip
    return GatewayError(
        504,
        f"The request's deadline passed after {len(attempts)} attempt(s)",
        {"error_type": "timeout", "previous_errors": previous},
    )


async def attempt(
    routing: Routing,
    plan: Plan,
    request_body: dict[str, Any],
    defaults: Timeouts,
    *,
    stream: bool,
    deadline: float,
    on_attempt: Callable[[Candidate, dict[str, Any]], Awaitable[None]] | None = None,
    ctx: UpstreamContext | None = None,
    passthrough: Passthrough | None = None,
    send: Send | None = None,
) -> Outcome:
    """Try the plan's candidates in order until one answers; raise the client-facing error if none
    does. `deadline` (monotonic seconds) bounds the whole loop; `on_attempt` sees each upstream body.
    `send`, for an operation other than chat (pipeline/modality.py), makes each attempt instead of the
    chat adapters and returns its answer (in `Outcome.response`)."""
    attempts: list[Attempt] = []
    for cand in plan.candidates:
        adapter = routing.adapters.get(cand.provider.api) if send is None else send
        if adapter is None:
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RouteFailed(_deadline_error(attempts, plan.requested), attempts)
        native = passthrough is not None and cand.provider.api == passthrough.api and hasattr(adapter, "stream_native")
        if native:
            assert passthrough is not None
            body = passthrough.body(cand.endpoint.upstream_model, stream)
        elif send is not None:
            body = request_body
        else:
            body = upstream_body(request_body, cand.endpoint.upstream_model, cand.supported, stream=stream)
        if on_attempt is not None:
            await on_attempt(cand, body)
        timeouts = timeouts_for(cand, defaults, remaining)
        # A BYOK candidate carries its own credentials (governance/byok_store.py); others use the provider's.
        call_ctx = ctx if cand.byok is None else cand.byok.context_for(ctx)
        routing.health.attempt_started(cand.key)
        started = time.monotonic()
        result: StreamResult | None = None
        try:
            if send is not None:
                response = await send(cand, timeouts, call_ctx)
                outcome = Outcome(cand, attempts, body=body, response=response)
            elif stream:
                opener = adapter.stream_native if native else adapter.stream  # type: ignore[attr-defined]
                result = await opener(cand.provider, cand.endpoint, body, timeouts, call_ctx)
                first = await anext(result.chunks, None)
                if first is None:
                    raise UpstreamError("Upstream stream was empty", status=502, kind="protocol")
                outcome = Outcome(cand, attempts, body=body, stream=result, first_chunk=first, passthrough=native)
            elif native:
                answer, response = await adapter.complete_native(  # type: ignore[attr-defined]
                    cand.provider, cand.endpoint, body, timeouts, call_ctx
                )
                outcome = Outcome(cand, attempts, body=body, response=response, passthrough=True, native=answer)
            else:
                response = await adapter.complete(cand.provider, cand.endpoint, body, timeouts, call_ctx)
                outcome = Outcome(cand, attempts, body=body, response=response)
            if not native and send is None:  # a passed-through request is the upstream's own API: nothing to drop
                outcome.dropped = dropped_parameters(request_body, cand.supported)
        except UpstreamError as err:
            if result is not None:
                await result.close()
            attempts.append(Attempt(cand, started, int((time.monotonic() - started) * 1000), attempt_status(err), err))
            if not falls_back(err):
                raise RouteFailed(provider_error(err, cand), attempts) from None
            # Too long a prompt is not the endpoint's fault, nor a BYOK key refused the endpoint's.
            if err.status not in CLIENT_FAULT_STATUSES and not (cand.byok is not None and err.status in KEY_FAULTS):
                routing.health.failed(cand.key, retry_after=err.retry_after)
                if err.status != 429:  # uptime leaves rate limits out, as OpenRouter's does
                    routing.stats.record_failure(cand.key)
            continue
        except BaseException:  # cancelled (the client left) while waiting: drop the upstream connection
            if result is not None:
                await result.close()
            raise
        routing.health.succeeded(cand.key)
        attempts.append(Attempt(cand, started, int((time.monotonic() - started) * 1000), 200))
        outcome.first_byte_at = time.monotonic()
        return outcome
    if not attempts:
        raise availability_error("no_endpoints", "No provider adapter can serve this request", plan.requested)
    if deadline - time.monotonic() <= 0:
        raise RouteFailed(_deadline_error(attempts, plan.requested), attempts)
    raise RouteFailed(_all_failed(attempts, plan.requested), attempts)
