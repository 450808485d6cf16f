"""What a client format offers the inference pipeline (see docs/api.md, "One pipeline").

The pipeline speaks one internal form: OpenRouter's Chat Completions, as dicts. A client format
translates its request into that form and translates the pipeline's answers back:

- ``parse`` takes the client's decoded JSON body and returns the internal request body (the chat
  shape with OpenRouter's extensions: ``model``, ``models``, ``provider``, ``plugins``, ``stream``,
  ``reasoning`` ...), or raises GatewayError(400, ...) for input this format does not accept.
- ``render`` takes the finished OpenRouter chat completion (``id`` is the generation id, ``model``
  and ``provider`` the ones that answered, ``usage`` with ``cost``) and the request ``parse``
  returned (a format may return a dict subclass carrying what its answer echoes), and returns this
  format's body.
- ``encoder()`` makes a fresh per-stream ``StreamEncoder``.
- ``error`` renders a GatewayError (its ``body()`` is OpenRouter's envelope) as (status, body).

Chat itself is the identity format, so a chat request costs no translation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from omnirouter.errors import GatewayError


class StreamEncoder(Protocol):
    """Turns the OpenRouter chat stream, chunk by chunk, into this format's SSE bytes.

    ``chunk`` receives exactly what a chat client would receive, in order: content chunks
    (``choices[].delta`` with ``content``, ``reasoning``, ``reasoning_details``, ``tool_calls``;
    ``finish_reason`` normalised and ``native_finish_reason`` beside it), then an in-band error chunk
    (top-level ``error``, ``finish_reason: "error"``) if the upstream failed mid-stream, then the last
    chunk (``choices: []`` and ``usage`` with ``cost``). ``done`` is called once at the end, in place
    of chat's ``data: [DONE]``. Any of them may return b"" when there is nothing to send yet.
    """

    def chunk(self, chunk: dict[str, Any]) -> bytes: ...

    def done(self) -> bytes: ...


class ClientFormat(Protocol):
    name: str  # "chat", "messages", "responses", "completions"
    # The upstream API (a provider's `api`) that speaks this format natively, for passthrough.
    native_api: str | None

    def parse(self, body: Any, headers: Mapping[str, str]) -> dict[str, Any]: ...

    def render(self, completion: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]: ...

    def encoder(self, request: dict[str, Any]) -> StreamEncoder:
        """A stream's encoder; `request` is the internal body `parse` returned."""
        ...

    def error(self, err: GatewayError) -> tuple[int, dict[str, Any]]: ...


class NativeStreamEncoder(StreamEncoder, Protocol):
    """A passed-through stream: `native` relays one upstream event (the adapter's item, as it
    came; `prefix` holds the generation's `id`, `model`, `provider` and `created` for the events that
    name them); `chunk` gets only the pipeline's own chunks, the in-band error and the last one
    (usage with cost), so the encoder holds back the upstream's closing events until then."""

    def native(self, event: Any, prefix: dict[str, Any]) -> bytes: ...


class PassthroughFormat(ClientFormat, Protocol):
    """A format that an upstream API (`native_api`) speaks too. To such an upstream the pipeline
    sends `native_request` (the client's body, the gateway's own fields removed) instead of a
    translation, and answers with `render_native` (the upstream's answer with OpenRouter's fields
    added) or through `native_encoder`."""

    def native_request(self, request: dict[str, Any], upstream_model: str, stream: bool) -> dict[str, Any]: ...

    def render_native(
        self, answer: dict[str, Any], completion: dict[str, Any], request: dict[str, Any]
    ) -> dict[str, Any]:
        """`completion` is the finished chat completion of the same answer (generation id, model,
        provider, usage with cost)."""
        ...

    def native_encoder(self, request: dict[str, Any]) -> NativeStreamEncoder: ...
