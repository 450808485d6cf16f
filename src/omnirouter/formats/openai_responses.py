"""OpenAI's Responses API as OpenRouter serves it (`POST /responses`, stateless): a client format.

The request becomes the internal chat request (formats/responses_request.py), the finished chat
completion a Response object (formats/responses_output.py), the chat stream the `response.*` events
(formats/responses_stream.py). Errors keep OpenRouter's envelope, `{"error": {"code", "message",
"metadata"}}` with the HTTP status as `code`, which is what the OpenAPI document gives `/responses`
for every status; a failure after the stream started is a `response.failed` event whose response
carries the Responses error `code` and OpenRouter's `error_type`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omnirouter.errors import GatewayError
from omnirouter.formats.responses_native import NativeResponsesEncoder, native_request, render_native
from omnirouter.formats.responses_output import render
from omnirouter.formats.responses_request import ResponsesBody, parse_request
from omnirouter.formats.responses_stream import ResponsesEncoder


class ResponsesFormat:
    name = "responses"
    native_api = "openai-responses"

    def parse(self, body: Any, headers: Mapping[str, str]) -> dict[str, Any]:
        request = parse_request(body)
        request.client = body  # for a passthrough
        return request

    def render(self, completion: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        """The Response object; `request` (what `parse` returned) supplies the fields it echoes."""
        echo, namespaced = _of(request)
        return render(completion, echo, namespaced)

    def encoder(self, request: dict[str, Any]) -> ResponsesEncoder:
        echo, namespaced = _of(request)
        return ResponsesEncoder(echo, namespaced)

    # Passthrough to an OpenAI Responses upstream (formats/responses_native.py).
    def native_request(self, request: dict[str, Any], upstream_model: str, stream: bool) -> dict[str, Any]:
        client = request.client if isinstance(request, ResponsesBody) else request
        return native_request(client, upstream_model, stream)

    def render_native(
        self, answer: dict[str, Any], completion: dict[str, Any], request: dict[str, Any]
    ) -> dict[str, Any]:
        return render_native(answer, completion)

    def native_encoder(self, request: dict[str, Any]) -> NativeResponsesEncoder:
        return NativeResponsesEncoder()

    def error(self, err: GatewayError) -> tuple[int, dict[str, Any]]:
        return err.status, err.body()


def _of(request: dict[str, Any] | None) -> tuple[dict[str, Any] | None, dict[str, tuple[str, str]]]:
    if isinstance(request, ResponsesBody):
        return request.echo, request.namespaced
    return None, {}


RESPONSES = ResponsesFormat()
