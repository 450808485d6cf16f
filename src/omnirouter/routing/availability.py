"""The `availability` error object: why a model could not be served (behaviors §1.6)."""

from __future__ import annotations

from typing import Any

from omnirouter.errors import GatewayError

DOCS_URL = "https://openrouter.ai/docs/api_reference/errors-and-debugging"

# code -> (HTTP status, error_type, retryable)
CODES = {
    "model_not_found": (400, "invalid_request", False),
    "no_endpoints": (404, "not_found", False),
    "constraint_filtered": (404, "not_found", False),
    "privacy_restricted": (404, "not_found", False),
    "capacity_exhausted": (429, "rate_limit_exceeded", True),
    "temporarily_unavailable": (503, "provider_overloaded", True),
    "free_variant_ended": (404, "not_found", False),
}


def availability_error(
    code: str,
    message: str,
    requested: list[str],
    *,
    excluded_by: list[str] | None = None,
    fallback_models: list[str] | None = None,
    retry_after: float | None = None,
    previous_errors: list[dict[str, Any]] | None = None,
) -> GatewayError:
    status, error_type, retryable = CODES[code]
    availability: dict[str, Any] = {
        "code": code,
        "retryable": retryable,
        "requested_models": requested,
        "docs_url": DOCS_URL,
    }
    if excluded_by:
        availability["excluded_by"] = excluded_by
    if fallback_models:
        availability["fallback_models"] = fallback_models
    if retry_after is not None:
        availability["retry_after"] = retry_after
    metadata: dict[str, Any] = {"error_type": error_type}
    if previous_errors:
        metadata["previous_errors"] = previous_errors
    headers = {"Retry-After": str(int(retry_after + 0.999))} if retry_after is not None else None
    return GatewayError(
        status,
        message,
        metadata,
        headers=headers,
        extra={"error_type": error_type, "http_status": status, "availability": availability},
    )
