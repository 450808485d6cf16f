"""AWS Bedrock through its Converse and ConverseStream APIs (`api: bedrock`).

A provider names a `region` (or the environment does: AWS_REGION, AWS_DEFAULT_REGION, the AWS config
file); its `base_url` defaults to that region's bedrock-runtime endpoint and may point elsewhere (a VPC
endpoint, a test server). Requests are signed with SigV4 from the standard AWS credential chain, or
carry a Bedrock API key (the provider's `api_key_env`, or AWS_BEARER_TOKEN_BEDROCK) as a bearer token.
Streamed answers come in AWS's binary event-stream framing, cut by a framer on the shared HTTP pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
from typing import Any
from urllib.parse import quote

import msgspec

from omnirouter import __version__
from omnirouter.catalog.types import Endpoint, Provider
from omnirouter.providers.answers import MAX_ERROR_BODY, body_of, stream_opened
from omnirouter.providers.aws import AwsIdentity, event_stream_framer, secrets_of, sign
from omnirouter.providers.base import StreamResult, Timeouts, UpstreamContext, UpstreamError
from omnirouter.providers.bedrock_converse import StreamTranslator, completion, converse_request
from omnirouter.providers.http1 import Origin, Pool, Response, request_head, split_url
from omnirouter.providers.sse_stream import SSEStream

_decode = msgspec.json.decode
_encode = msgspec.json.encode
USER_AGENT = f"omnirouter/{__version__}"
BEARER_ENV = "AWS_BEARER_TOKEN_BEDROCK"
EVENT_STREAM = "application/vnd.amazon.eventstream"

# Bedrock's exceptions by name (lower case, as the x-amzn-ErrorType header and stream exception events
# spell them in either case): the status the attempt loop and the client see.
STATUS_OF_EXCEPTION = {
    "validationexception": 400,
    "accessdeniedexception": 403,
    "unrecognizedclientexception": 403,
    "invalidsignatureexception": 403,
    "expiredtokenexception": 403,
    "resourcenotfoundexception": 404,
    "modeltimeoutexception": 408,
    "throttlingexception": 429,
    "servicequotaexceededexception": 429,  # a quota, not a bad request: another endpoint may have room
    "modelnotreadyexception": 429,
    "modelerrorexception": 502,
    "modelstreamerrorexception": 502,
    "internalserverexception": 500,
    "serviceunavailableexception": 503,
}


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return text


def _error(name: str | None, message: str | None, status: int, raw: str, secrets: tuple[str, ...]) -> UpstreamError:
    if name:
        status = STATUS_OF_EXCEPTION.get(name.lower(), status)
    return UpstreamError(
        _scrub(message or f"Upstream returned HTTP {status}", secrets),
        status=status,
        raw=_scrub(raw, secrets),
        provider_code=name[:1].upper() + name[1:] if name else None,
    )


def error_from_response(status: int, text: str, headers: dict[str, str], secrets: tuple[str, ...]) -> UpstreamError:
    """An HTTP error answer: `{"message": ...}` with the exception's name in x-amzn-ErrorType
    (`ThrottlingException:http://internal.amazon.com/...`) or in the body's `__type`."""
    body: Any = None
    with contextlib.suppress(Exception):
        body = _decode(text)
    body = body if isinstance(body, dict) else {}
    name = headers.get("x-amzn-errortype", "").split(":", 1)[0] or str(body.get("__type") or "").rsplit("#", 1)[-1]
    message = body.get("message") or body.get("Message")
    return _error(name or None, str(message) if message else None, status, text, secrets)


def error_from_event(headers: dict[str, Any], payload: bytes, secrets: tuple[str, ...]) -> UpstreamError:
    """An exception (`:exception-type`) or error (`:error-code`) message in the stream."""
    raw = payload[:MAX_ERROR_BODY].decode(errors="replace")
    if headers.get(":message-type") == "exception":
        message = None
        with contextlib.suppress(Exception):
            message = (_decode(payload) or {}).get("message")
        return _error(str(headers.get(":exception-type") or "") or None, message, 502, raw, secrets)
    code = str(headers.get(":error-code") or "") or None
    return _error(code, str(headers.get(":error-message") or "") or None, 502, raw, secrets)


@dataclasses.dataclass(frozen=True)
class _Target:
    origin: Origin
    prefix: str  # the base URL's path, before /model/...
    base_url: str
    region: str
    provider: Provider


class BedrockAdapter:
    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.identity = AwsIdentity()
        self._targets: dict[str, _Target] = {}

    async def _target(self, provider: Provider) -> _Target:
        target = self._targets.get(provider.slug)
        if target is not None and target.provider is provider:
            return target
        region = provider.region or await asyncio.to_thread(self.identity.region)
        if not region:
            raise UpstreamError(
                f"Bedrock provider {provider.slug} has no region: set `region` or AWS_REGION", status=401
            )
        base = provider.base_url.rstrip("/") or f"https://bedrock-runtime.{region}.amazonaws.com"
        origin, prefix = split_url(base)
        if provider.ca_file:
            origin = dataclasses.replace(origin, ca_file=provider.ca_file)
        target = self._targets[provider.slug] = _Target(origin, prefix.rstrip("/"), base, region, provider)
        return target

    async def _send(
        self, provider: Provider, model: str, data: bytes, timeouts: Timeouts, ctx: UpstreamContext | None, stream: bool
    ) -> tuple[Response, tuple[str, ...]]:
        target = await self._target(provider)
        path = f"{target.prefix}/model/{quote(model, safe='')}/{'converse-stream' if stream else 'converse'}"
        headers = {"Content-Type": "application/json", **provider.headers}
        bearer = (ctx.credentials.api_key if ctx else None) or provider.api_key or os.environ.get(BEARER_ENV)
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
            secrets: tuple[str, ...] = (bearer,)
        else:
            frozen = await self.identity.frozen()
            url = f"{target.origin.scheme}://{target.origin.authority}{path}"
            headers = sign(frozen, target.region, url, data, headers)
            secrets = secrets_of(frozen)
        # Added after signing: headers a proxy on the way may rewrite stay out of the signature.
        headers["User-Agent"] = USER_AGENT
        headers["Accept"] = EVENT_STREAM if stream else "application/json"
        head = request_head(target.origin, "POST", path, headers)
        payload = b"%b%d\r\n\r\n%b" % (head, len(data), data)
        framer = event_stream_framer() if stream else None
        return await self.pool.request(target.origin, payload, timeouts, stream=stream, framer=framer), secrets

    async def complete(
        self,
        provider: Provider,
        endpoint: Endpoint,
        body: dict[str, Any],
        timeouts: Timeouts,
        ctx: UpstreamContext | None = None,
    ) -> dict[str, Any]:
        model = endpoint.upstream_model
        request, thinking = converse_request(body, model, endpoint_max=endpoint.max_completion_tokens)
        resp, secrets = await self._send(provider, model, _encode(request), timeouts, ctx, stream=False)
        raw = await body_of(resp, functools.partial(error_from_response, secrets=secrets))
        try:
            data = _decode(raw)
        except msgspec.DecodeError:
            raise UpstreamError(
                "Upstream sent a response that is not valid JSON",
                status=502,
                raw=raw[:2000].decode(errors="replace"),
                kind="protocol",
            ) from None
        return completion(data, model, resp.headers.get("x-amzn-requestid"), thinking.exclude)

    async def stream(
        self,
        provider: Provider,
        endpoint: Endpoint,
        body: dict[str, Any],
        timeouts: Timeouts,
        ctx: UpstreamContext | None = None,
    ) -> StreamResult:
        model = endpoint.upstream_model
        request, thinking = converse_request(body, model, endpoint_max=endpoint.max_completion_tokens)
        resp, secrets = await self._send(provider, model, _encode(request), timeouts, ctx, stream=True)
        await stream_opened(resp, functools.partial(error_from_response, secrets=secrets))
        translator = StreamTranslator(model, resp.headers.get("x-amzn-requestid"), thinking.exclude)
        return _EventStream(resp, translator, secrets)


class _EventStream(SSEStream):
    """ConverseStream's event-stream messages (cut by the framer: `(headers, payload)` pairs) as
    chunks. Ends with the `metadata` event; an exception message fails it."""

    def __init__(self, resp: Response, translator: StreamTranslator, secrets: tuple[str, ...]) -> None:
        super().__init__(resp)
        self.translator = translator
        self.secrets = secrets

    def translate(self, events: list[Any]) -> list[dict[str, Any]]:
        chunks = []
        event = self.translator.event
        for headers, payload in events:
            if headers.get(":message-type") != "event":
                self.finished, self.failure = True, error_from_event(headers, payload, self.secrets)
                break
            try:
                data = _decode(payload)
            except msgspec.DecodeError:
                self.finished = True
                self.failure = UpstreamError(
                    "Upstream sent a stream event that is not valid JSON",
                    status=502,
                    raw=payload[:2000].decode(errors="replace"),
                    kind="protocol",
                )
                break
            chunk = event(headers.get(":event-type"), data if isinstance(data, dict) else {})
            if chunk is not None:
                chunks.append(chunk)
            if self.translator.done:
                self.finished = True
                break
        return chunks
