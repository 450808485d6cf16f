"""Errors in the OpenRouter envelope: ``{"error": {"code", "message", "metadata"}}``.

Handlers raise ``ApiError``; the middleware in ``app.py`` turns it into the envelope of the API format
the client spoke (only the OpenRouter/OpenAI one so far).
"""

from __future__ import annotations

from typing import Any

from omnirouter.api.jsonio import JSONResponse

MASKED_500_MESSAGE = "Internal Server Error"


class ApiError(Exception):
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

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def bad_request(message: str, **metadata: Any) -> ApiError:
    return ApiError(400, message, metadata or None)


def not_found(message: str) -> ApiError:
    return ApiError(404, message)
