"""An upstream's answer taken off the connection, the same for every adapter: the body of a 200, or
the upstream's error answer as an UpstreamError (its message, code, Retry-After)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import msgspec

from omnirouter.providers.base import UpstreamError
from omnirouter.providers.http1 import Response

MAX_ERROR_BODY = 64 * 1024
# (status, body text, headers) -> the attempt's error; an adapter whose provider answers errors in
# its own way (Bedrock's x-amzn-ErrorType) passes its own.
ErrorOf = Callable[[int, str, Any], UpstreamError]


def retry_after(headers: Any) -> float | None:
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
    """An error answer in the `{"error": {"message", "code" or "type"}}` envelope that OpenAI,
    Anthropic and Google share, as an UpstreamError carrying its message and code."""
    message, code = f"Upstream returned HTTP {status}", None
    with contextlib.suppress(Exception):
        err = msgspec.json.decode(text).get("error")
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
        retry_after=retry_after(headers) if headers is not None else None,
    )


async def body_of(resp: Response, error_of: ErrorOf = error_from_body) -> bytes:
    """A non-streamed answer's whole body; the upstream's error if it is not a 200."""
    try:
        raw = await resp.read()
    finally:
        resp.close()
    if resp.status != 200:
        raise error_of(resp.status, raw[:MAX_ERROR_BODY].decode(errors="replace"), resp.headers)
    return raw


async def stream_opened(resp: Response, error_of: ErrorOf = error_from_body) -> Response:
    """A stream the upstream opened; the upstream's error (read whole, closed) if it did not."""
    if resp.status == 200:
        return resp
    try:
        text = (await resp.read())[:MAX_ERROR_BODY].decode(errors="replace")
    except UpstreamError:
        text = ""
    finally:
        resp.close()
    raise error_of(resp.status, text, resp.headers)
