"""A typed Python client for OpenRouter and any Omnirouter: ``OpenRouter`` (synchronous) and
``AsyncOpenRouter``, one method per operation, results in the server's own Structs (docs/client.md)."""

from omnirouter.client._async.client import AsyncOpenRouter, AsyncStream
from omnirouter.client._base import PKCE, Binary
from omnirouter.client._sync.client import OpenRouter, Stream
from omnirouter.client.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadGatewayError,
    BadRequestError,
    ConflictError,
    EdgeTimeoutError,
    GoneError,
    InternalServerError,
    NotFoundError,
    OpenRouterError,
    PayloadTooLargeError,
    PaymentRequiredError,
    PermissionDeniedError,
    ProviderOverloadedError,
    RateLimitError,
    RequestTimeoutError,
    ServiceUnavailableError,
    UnprocessableEntityError,
    UnsupportedMediaTypeError,
)

__all__ = [
    "PKCE",
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AsyncOpenRouter",
    "AsyncStream",
    "AuthenticationError",
    "BadGatewayError",
    "BadRequestError",
    "Binary",
    "ConflictError",
    "EdgeTimeoutError",
    "GoneError",
    "InternalServerError",
    "NotFoundError",
    "OpenRouter",
    "OpenRouterError",
    "PayloadTooLargeError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "ProviderOverloadedError",
    "RateLimitError",
    "RequestTimeoutError",
    "ServiceUnavailableError",
    "Stream",
    "UnprocessableEntityError",
    "UnsupportedMediaTypeError",
]  # fmt: skip
