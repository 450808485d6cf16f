"""What the client raises: one class per documented status, each carrying the envelope's `code`,
`message` and `metadata`, whichever of the three envelopes the server answered in (OpenRouter's, the
Responses stream's `response.failed`, Anthropic's) and whether it came as the answer or inside a stream."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any

import msgspec

from omnirouter.formats.anthropic_terms import ERROR_TYPE_OF_STATUS, TYPE_OF_STATUS


class OpenRouterError(Exception):
    """Anything the client raises."""


class APIConnectionError(OpenRouterError):
    """No answer: the connection failed or broke before a response arrived."""


class APITimeoutError(APIConnectionError):
    """No answer within the timeout."""


class APIError(OpenRouterError):
    """The server answered with an error, as the status or inside a stream (`in_stream`)."""

    status: int = 0

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: Any = None,
        metadata: dict[str, Any] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        in_stream: bool = False,
    ) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.code = status if code is None else code  # OpenRouter's is the status; others a word
        self.message = message
        self.metadata = metadata or {}
        self.body = body
        self.headers: Mapping[str, str] = headers or {}
        self.in_stream = in_stream

    @property
    def error_type(self) -> str | None:
        """OpenRouter's canonical error type (`rate_limit_exceeded`, `context_length_exceeded`...)."""
        return self.metadata.get("error_type")

    @property
    def generation_id(self) -> str | None:
        return self.headers.get("x-generation-id")


class BadRequestError(APIError):
    status = 400


class AuthenticationError(APIError):
    status = 401


class PaymentRequiredError(APIError):
    status = 402


class PermissionDeniedError(APIError):
    status = 403


class NotFoundError(APIError):
    status = 404


class RequestTimeoutError(APIError):
    status = 408


class ConflictError(APIError):
    status = 409


class GoneError(APIError):
    status = 410


class PayloadTooLargeError(APIError):
    status = 413


class UnsupportedMediaTypeError(APIError):
    status = 415


class UnprocessableEntityError(APIError):
    status = 422


class RateLimitError(APIError):
    status = 429

    @property
    def retry_after(self) -> float | None:
        """Seconds to wait, from Retry-After or the error's availability details."""
        return retry_after(self.headers, self.body)


class InternalServerError(APIError):
    status = 500


class BadGatewayError(APIError):
    status = 502


class ServiceUnavailableError(APIError):
    status = 503


class EdgeTimeoutError(APIError):
    status = 524


class ProviderOverloadedError(APIError):
    status = 529


BY_STATUS: dict[int, type[APIError]] = {
    c.status: c
    for c in (
        BadRequestError, AuthenticationError, PaymentRequiredError, PermissionDeniedError, NotFoundError,
        RequestTimeoutError, ConflictError, GoneError, PayloadTooLargeError, UnsupportedMediaTypeError,
        UnprocessableEntityError, RateLimitError, InternalServerError, BadGatewayError, ServiceUnavailableError,
        EdgeTimeoutError, ProviderOverloadedError,
    )
}  # fmt: skip

# The status an error reported without one stands for: Anthropic's error.type, OpenRouter's error_type.
_STATUS_OF_TYPE = {kind: status for status, kind in sorted(TYPE_OF_STATUS.items(), reverse=True)}
_STATUS_OF_ERROR_TYPE = {kind: status for status, kind in sorted(ERROR_TYPE_OF_STATUS.items(), reverse=True)}
_STATUS_OF_ERROR_TYPE |= {"image_not_found": 404, "unmapped": 500}


def status_of(error_type: str | None, fallback: int) -> int:
    if error_type is None:
        return fallback
    return _STATUS_OF_ERROR_TYPE.get(error_type) or _STATUS_OF_TYPE.get(error_type) or fallback


def make(status: int, message: str, **kwargs: Any) -> APIError:
    cls = BY_STATUS.get(status) or (InternalServerError if status >= 500 else BadRequestError)
    return cls(message, status=status, **kwargs)


def from_response(status: int, content: bytes, headers: Mapping[str, str]) -> APIError:
    """The exception for an error answer, from whichever envelope it came in."""
    try:
        body = msgspec.json.decode(content)
    except msgspec.DecodeError:
        body = content.decode(errors="replace")
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        text = body if isinstance(body, str) and body else f"HTTP {status}"
        return make(status, text[:500], body=body, headers=headers)
    metadata = dict(error.get("metadata") or {})
    for extra in ("error_type", "availability"):  # OpenRouter's newer envelope puts these beside metadata
        if extra in error:
            metadata.setdefault(extra, error[extra])
    if "type" in error and body.get("type") == "error":  # Anthropic's: OpenRouter's details beside `error`
        metadata = {**(body.get("metadata") or {}), **metadata}
        metadata.setdefault("error_type", error.get("error_type") or error["type"])
    return make(status, str(error.get("message") or f"HTTP {status}"), code=error.get("code"), metadata=metadata,
                body=body, headers=headers)  # fmt: skip


def in_stream(error: dict[str, Any], headers: Mapping[str, str], error_type: str | None = None) -> APIError:
    """An error that ended a stream after it started: a chat chunk's `error`, a failed response's
    `error`, an `error` event's."""
    metadata = dict(error.get("metadata") or {})
    kind = error_type or metadata.get("error_type") or error.get("error_type") or error.get("type")
    if kind is not None:
        metadata.setdefault("error_type", kind)
    code = error.get("code")
    status = code if isinstance(code, int) and 400 <= code < 600 else status_of(kind, 500)
    return make(status, str(error.get("message") or "stream failed"), code=code, metadata=metadata, body=error,
                headers=headers, in_stream=True)  # fmt: skip


def retry_after(headers: Mapping[str, str], body: Any = None) -> float | None:
    """Retry-After in seconds (a number or an HTTP date), else the error's `availability.retry_after`."""
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            if (when := email.utils.parsedate_tz(value)) is not None:
                return max(0.0, email.utils.mktime_tz(when) - time.time())
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        for holder in (error, error.get("metadata") or {}):
            seconds = (holder.get("availability") or {}).get("retry_after")
            if isinstance(seconds, int | float):
                return float(seconds)
    return None
