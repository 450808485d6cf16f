"""GatewayError as an HTTP answer in OpenRouter's envelope (the chat and management APIs' own).

``ApiError`` is the name the HTTP layer has always used for GatewayError; other client formats render
errors through their ``ClientFormat``.
"""

from __future__ import annotations

from omnirouter.api.jsonio import JSONResponse
from omnirouter.errors import MASKED_500_MESSAGE, GatewayError, bad_request, not_found

ApiError = GatewayError

__all__ = ["MASKED_500_MESSAGE", "ApiError", "GatewayError", "bad_request", "error_response", "not_found"]


def error_response(err: GatewayError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=err.headers)
