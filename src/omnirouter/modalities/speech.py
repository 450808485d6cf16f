"""POST /audio/speech: text to audio, relayed to the client as the upstream sends it.

Billing (behaviors §5, TTS): per input character at the endpoint's `character` price, and only once
usable audio has arrived (a complete MP3 frame, a PCM sample; providers/audio/formats.py). The
upstream handler reads that far inside the attempt, so an upstream failing before it is an attempt
that failed (the next endpoint is tried, nothing is billed); after it the request is settled for the
whole input and then streamed, so a client that cancels, or an upstream that breaks off, is still
billed in full (the stream then ends without its last chunk, which clients see as a cut transfer).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from omnirouter.accounting.units import Units
from omnirouter.batched_writes import DIRECT_BODY
from omnirouter.catalog.types import Model
from omnirouter.errors import GatewayError
from omnirouter.openapi_doc import Operation
from omnirouter.pipeline.modality import ModalityCall, ModalityEndpoint
from omnirouter.providers.audio import SpeechAnswer, openai, sandbox
from omnirouter.providers.audio.formats import CONTENT_TYPES, SPEECH_FORMATS
from omnirouter.providers.base import UpstreamError
from omnirouter.routing.plan import Candidate

log = logging.getLogger("omnirouter")

DEFAULT_FORMAT = "pcm"  # the spec's default
MIN_SPEED, MAX_SPEED = 0.25, 4.0

# The request's ASGI scope and receive, for what the seam's Modality methods are not handed: the
# settings (upload limit) and the client's disconnect. Set per request by AudioEndpoint.
current: contextvars.ContextVar[tuple[Scope, Receive]] = contextvars.ContextVar("audio_request")


class AudioEndpoint(ModalityEndpoint):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = current.set((scope, receive))
        try:
            await super().__call__(scope, receive, send)
        finally:
            current.reset(token)


def json_object(raw: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
    """The JSON object a request carries; 415 for another content type, 400 for anything else."""
    media = headers.get("content-type", "application/json").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise GatewayError(415, f"Content-Type must be application/json, not {media or 'empty'}")
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise GatewayError(400, "The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise GatewayError(400, "The request body must be a JSON object")
    return body


def _text(value: Any) -> str:
    """The text to speak: a string, or the texts of a list of turns joined by line breaks."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, list) and value:
        if not all(isinstance(t, dict) and isinstance(t.get("text"), str) for t in value):
            raise GatewayError(400, "input: each turn must be an object with a text string")
        text = "\n".join(t["text"] for t in value)
    else:
        raise GatewayError(400, "input is required: the text to speak (a string, or a list of turns)")
    if not text.strip():
        raise GatewayError(400, "input is empty: there is nothing to speak")
    return text


def parse(raw: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
    body = json_object(raw, headers)
    text = _text(body.get("input"))
    fmt = body.get("response_format", DEFAULT_FORMAT)
    if fmt not in SPEECH_FORMATS:
        raise GatewayError(400, f"response_format must be one of {', '.join(SPEECH_FORMATS)}, not {fmt!r}")
    speed = body.get("speed")
    if speed is not None and (
        isinstance(speed, bool) or not isinstance(speed, int | float) or not MIN_SPEED <= speed <= MAX_SPEED
    ):
        raise GatewayError(400, f"speed must be a number from {MIN_SPEED} to {MAX_SPEED}")
    voice = body.get("voice")
    if voice is not None and (not isinstance(voice, str) or not voice):
        raise GatewayError(400, "voice must be a non-empty string")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise GatewayError(400, "instructions must be a string")
    if body.get("input_references"):
        raise GatewayError(400, "input_references (voice cloning) is not supported by any configured provider")
    if body.get("stream_format") not in (None, "audio"):
        raise GatewayError(400, "stream_format must be 'audio': the audio is streamed as raw bytes")
    request = {k: body[k] for k in ("model", "models", "provider", "user", "route") if k in body}
    request.update(
        input=text, characters=len(text), response_format=fmt, voice=voice, instructions=instructions,
        speed=float(speed) if speed is not None else None,
    )  # fmt: skip
    return request


class Speech:
    name = "speech"
    api_type = "tts"
    handlers = {"openai": openai.speech, "sandbox": sandbox.speech}

    def serves(self, model: Model) -> bool:
        return "audio" in model.architecture.output_modalities

    def parse(self, raw: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        return parse(raw, headers)

    def worst_case(self, request: dict[str, Any], cand: Candidate) -> Units:
        return Units(characters=request["characters"])  # billed in full once audio flows

    async def respond(self, call: ModalityCall, answer: SpeechAnswer, send: Send) -> None:
        call.settle(answer)  # usable audio is in hand: the whole input is billed, whatever follows
        stop = _watch_client(answer)
        try:
            await send({
                "type": "http.response.start", "status": 200,
                "headers": [
                    (b"content-type", CONTENT_TYPES[answer.fmt].encode()),
                    (b"x-generation-id", call.gen_id.encode()),
                    (b"cache-control", b"no-store"),
                ],
            })  # fmt: skip
            await send({"type": "http.response.body", "body": answer.head, "more_body": True})
            try:
                async for piece in answer.rest:
                    if stop.gone:
                        return
                    await send({"type": "http.response.body", "body": piece, "more_body": True})
            except UpstreamError as err:
                if stop.gone:
                    return
                log.warning("speech %s: the upstream broke off mid-audio: %s", call.gen_id, err.message)
                # Too late for an error answer: end the response without its last chunk (a cut
                # transfer to the client); the seam ignores a GatewayError once the answer started.
                raise GatewayError(502, "The upstream broke off the audio") from None
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            stop()
            answer.close()


class _Watch:
    """Closes the upstream when the client disconnects (the relay then ends)."""

    def __init__(self, answer: SpeechAnswer) -> None:
        self.answer = answer
        self.gone = False
        self.task: asyncio.Task[None] | None = None
        self.direct: Any = None

    def lost(self) -> None:
        self.gone = True
        self.answer.close()

    def __call__(self) -> None:
        if self.task is not None:
            self.task.cancel()
        if self.direct is not None:
            self.direct.watch(None)


def _watch_client(answer: SpeechAnswer) -> _Watch:
    watch = _Watch(answer)
    scope, receive = current.get()
    direct = (scope.get("extensions") or {}).get(DIRECT_BODY)
    if direct is not None:
        watch.direct = direct
        direct.watch(watch.lost)  # the server calls it when the client disconnects
        return watch

    async def wait() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        watch.lost()

    watch.task = asyncio.create_task(wait())
    return watch


class SpeechTurn(msgspec.Struct, omit_defaults=True):
    text: Annotated[str, msgspec.Meta(min_length=1)]
    voice: str | None = None
    instructions: str | None = None


class SpeechRequest(msgspec.Struct, omit_defaults=True):
    """Text to speech. `input` may be a list of turns; their texts are spoken one after the other."""

    model: str
    input: Annotated[str, msgspec.Meta(min_length=1)] | Annotated[list[SpeechTurn], msgspec.Meta(min_length=1)]
    voice: Annotated[str, msgspec.Meta(min_length=1)] | None = None
    response_format: Literal["pcm", "mp3", "wav", "opus", "aac", "flac"] = "pcm"
    speed: Annotated[float, msgspec.Meta(ge=MIN_SPEED, le=MAX_SPEED)] | None = None
    instructions: str | None = None
    models: list[str] | None = None
    provider: dict[str, Any] | None = None
    user: str | None = None


SPEECH = Speech()

routes = [Route("/audio/speech", AudioEndpoint(SPEECH), methods=["POST"])]

TAGS = {"TTS": "Text to speech"}

OPERATIONS = {
    ("/audio/speech", "post"): Operation(
        operation_id="createAudioSpeech",
        summary="Create speech",
        tag="TTS",
        auth="inference",
        body=SpeechRequest,
        response=None,
        response_media={"audio/*": {"type": "string", "format": "binary"}},
        response_description=(
            "The audio, streamed as it is made; Content-Type per response_format (audio/pcm: 16-bit "
            "little-endian mono, audio/mpeg, audio/wav, ...)"
        ),
        headers=("X-Generation-Id",),
        errors=(400, 401, 402, 404, 415, 429, 500, 502, 503),
    ),
}
