"""Answering a response-cache hit: no upstream, no reservation; the stored answer under a new
generation id, as JSON or as a stream in the client's format, billed `response_cache_price`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.types import Send

from omnirouter.accounting.cost import Usage
from omnirouter.cache import entry
from omnirouter.jsonio import encode
from omnirouter.pipeline.answer import send_json
from omnirouter.pipeline.call import usage_payload

if TYPE_CHECKING:
    from omnirouter.pipeline.call import Call

SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]


async def answer(call: Call, send: Send) -> None:
    cache = call.cache
    assert cache is not None and cache.hit is not None
    stored = cache.hit
    price = call.st.settings.response_cache_price
    details: dict[str, object] = {"cache": "hit", "cache_source_id": stored["id"]}
    if price:
        details["fees"] = {"response_cache": str(price)}
    cost = call.settle_hit(stored, price, details)
    usage = usage_payload(Usage(), cost)  # every billable counter 0 (behaviors §5.6)
    headers = cache.headers()
    if not call.req.stream:
        completion = entry.completion(stored, call.gen_id, call.created, usage)
        await send_json(send, 200, encode(call.fmt.render(completion, call.body)), call.gen_id, headers)
        return
    encoder = call.fmt.encoder(call.body)
    body = b"".join([encoder.chunk(c) for c in entry.chunks(stored, call.gen_id, call.created, usage)])
    start = [
        *SSE_HEADERS,
        (b"x-generation-id", call.gen_id.encode()),
        (b"x-request-id", (call.request_id or call.gen_id).encode()),
        *[(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
    ]
    await send({"type": "http.response.start", "status": 200, "headers": start})
    await send({"type": "http.response.body", "body": body + encoder.done(), "more_body": False})
