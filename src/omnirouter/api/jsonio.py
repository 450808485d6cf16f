"""JSON answers for the HTTP layer; the codec itself is omnirouter.jsonio."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from omnirouter.jsonio import decode, encode, encoder, money

__all__ = ["JSONResponse", "decode", "encode", "encoder", "money"]


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return encode(content)
