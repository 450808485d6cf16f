"""The gateway's errors, free of any wire format.

Domain code (routing, accounting, governance, formats, providers) raises ``GatewayError``. Its
``body()`` is OpenRouter's envelope ``{"error": {"code", "message", "metadata"}}``, the canonical form;
each client format (``formats/``) renders it in its own envelope (Anthropic's ``{"type": "error", ...}``,
the Responses API's ...), and ``api/`` turns it into an HTTP response.
"""

from __future__ import annotations

from typing import Any

MASKED_500_MESSAGE = "Internal Server Error"


class GatewayError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        metadata: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.metadata = metadata
        self.headers = headers
        self.extra = extra  # additional keys inside "error" (e.g. "availability")

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.status, "message": self.message}
        if self.metadata is not None:
            error["metadata"] = self.metadata
        if self.extra:
            error.update(self.extra)
        return {"error": error}

    @property
    def error_type(self) -> str | None:
        """The gateway's classification (metadata.error_type), when it made one."""
        return (self.metadata or {}).get("error_type")


def bad_request(message: str, **metadata: Any) -> GatewayError:
    return GatewayError(400, message, metadata or None)


def not_found(message: str) -> GatewayError:
    return GatewayError(404, message)
