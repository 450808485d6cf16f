"""A whole JSON answer on a raw ASGI `send`: every inference answer names its generation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.types import Send

from omnirouter.errors import GatewayError
from omnirouter.formats.base import ClientFormat
from omnirouter.jsonio import encode
from omnirouter.observability.logs import REQUEST_ID

if TYPE_CHECKING:
    from omnirouter.observability.metrics import Metrics


async def send_json(send: Send, status: int, payload: bytes, gen_id: str, extra: dict[str, str] | None = None) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"x-generation-id", gen_id.encode()),  # errors included
        (b"x-request-id", (REQUEST_ID.get() or gen_id).encode()),
    ]
    if extra:
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def send_error(
    send: Send, fmt: ClientFormat, err: GatewayError, gen_id: str, metrics: Metrics | None = None
) -> None:
    """The error in the client's format, with its status and headers (Retry-After, Allow ...);
    counted in `metrics` (GET /metrics)."""
    if metrics is not None:
        metrics.error(err)
    status, body = fmt.error(err)
    await send_json(send, status, encode(body), gen_id, err.headers)
