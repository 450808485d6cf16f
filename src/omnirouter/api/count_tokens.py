"""POST /messages/count_tokens: how many input tokens a Messages request would use.

When the model has an Anthropic endpoint, Anthropic counts (its count_tokens is exact and free);
nothing is billed or recorded. Otherwise, or when that endpoint cannot answer, the gateway, which
serves many tokenizers and knows none of them, estimates from the request as the pipeline would
send it. How, so that a client can judge it (docs/api.md says the same):

- text (system, messages, tool results, tool calls' arguments) and the tool definitions' JSON:
  one token per 4 characters, the heuristic the gateway reserves credit with;
- 4 tokens per message for its framing;
- an image: 1,600 tokens (what Anthropic charges for the largest image it keeps unresized);
- a PDF: 3,000 tokens per page (the top of Anthropic's 1,500-3,000 range; pages are counted in
  the file's page objects, a PDF by URL counts as one page);
- previous turns' thinking is not counted (Anthropic drops it from the context).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from omnirouter.api import auth
from omnirouter.api.jsonio import JSONResponse
from omnirouter.errors import GatewayError
from omnirouter.formats.anthropic_messages import MESSAGES
from omnirouter.formats.anthropic_request import parse_request
from omnirouter.governance import presets
from omnirouter.jsonio import decode, encode
from omnirouter.pipeline.endpoint import read_body
from omnirouter.providers.base import Timeouts, UpstreamError
from omnirouter.state import AppState, state

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 4
IMAGE_TOKENS = 1600
PDF_PAGE_TOKENS = 3000
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


async def count_tokens(request: Request) -> Response:
    st = state(request)
    try:
        key = auth.for_inference(await auth.key_of(st, request.headers))  # counting is not a use of the key
        raw = await read_body(request.receive, request.headers, st.settings.max_body_bytes)
        try:
            decoded = decode(raw)
        except Exception:
            raise GatewayError(400, "Invalid JSON in request body") from None
        body = parse_request(decoded, count_only=True)
        if "preset" in decoded or (type(m := body.get("model")) is str and "@" in m):  # counted as it will be sent
            presets.apply(st.governance.get("presets"), key, body, decoded, "messages")
    except GatewayError as err:
        status, payload = MESSAGES.error(err)
        return JSONResponse(payload, status_code=status, headers=err.headers)
    counted = await _counted_upstream(st, body)
    return JSONResponse({"input_tokens": counted if counted is not None else estimate_input_tokens(body)})


async def _counted_upstream(st: AppState, body: dict[str, Any]) -> int | None:
    """Anthropic's own count, from the model's first live Anthropic endpoint; None without one."""
    model = st.catalog.model(body["model"]) if isinstance(body.get("model"), str) else None
    if model is None:
        return None
    for endpoint in st.catalog.live_endpoints(model):
        provider = st.catalog.provider(endpoint.provider)
        adapter = st.routing.adapters.get(provider.api) if provider is not None else None
        if provider is None or not hasattr(adapter, "count_tokens"):
            continue
        s = st.settings
        timeouts = Timeouts(s.upstream_connect_timeout, s.upstream_first_byte_timeout, s.upstream_connect_timeout)
        try:
            return await adapter.count_tokens(provider, endpoint, {**body, "model": endpoint.upstream_model}, timeouts)
        except UpstreamError:
            return None  # estimated instead: a count is advice, not worth an error
    return None


def estimate_input_tokens(body: dict[str, Any]) -> int:
    """The estimate described above, for an internal (chat) request body."""
    chars = 0
    fixed = 0
    for message in body.get("messages") or ():
        fixed += MESSAGE_OVERHEAD
        content = message.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                text, tokens = _part_size(part)
                chars += text
                fixed += tokens
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            chars += len(function.get("name") or "") + len(function.get("arguments") or "")
    if tools := body.get("tools"):
        chars += len(encode(tools))
    return fixed + math.ceil(chars / CHARS_PER_TOKEN)


def _part_size(part: dict[str, Any]) -> tuple[int, int]:
    """(characters of text, tokens counted whole) of one content part."""
    kind = part.get("type")
    if kind == "text":
        return len(part.get("text") or ""), 0
    if kind == "image_url":
        return 0, IMAGE_TOKENS
    if kind == "file":
        return 0, PDF_PAGE_TOKENS * _pdf_pages((part.get("file") or {}).get("file_data") or "")
    return 0, 0


def _pdf_pages(data: str) -> int:
    """The page objects of a base64 data-URL PDF (at least one); one for a URL."""
    if not data.startswith("data:"):
        return 1
    try:
        pdf = base64.b64decode(data.partition(",")[2], validate=False)
    except (binascii.Error, ValueError):
        return 1
    return max(1, len(_PDF_PAGE.findall(pdf)))


routes = [Route("/messages/count_tokens", count_tokens, methods=["POST"])]
