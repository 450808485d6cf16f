"""POST /audio/transcriptions: audio to text, from a multipart upload (OpenAI's form: `file`, `model`,
`language`, `prompt`, `response_format`, `temperature`, `timestamp_granularities[]`) or a JSON body
(the spec's STTRequest: `input_audio` {data: base64, format}).

Priced per second of input audio (`audio_second`), billed in whole milliseconds. The length is
measured from the upload itself where its format says it (the WAV header, the MP3 frames, the byte
count of headerless 16 kHz PCM: providers/audio/formats.py); otherwise it is the upstream's
(verbose_json `duration`, which the upstream handler then asks for, else `usage.seconds`). The upload
is limited to `transcription_max_bytes` of audio (413 above it).

Answers per `response_format`: json (STTResponse: text and usage with seconds and cost), verbose_json
(also task, language, duration, segments, words), text (text/plain), srt and vtt (subtitles made from
the segments).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from starlette.routing import Route
from starlette.types import Send

from omnirouter.accounting.units import Units
from omnirouter.catalog.types import Model
from omnirouter.errors import GatewayError
from omnirouter.jsonio import encode, money
from omnirouter.modalities.speech import AudioEndpoint, current, json_object
from omnirouter.openapi_doc import Operation
from omnirouter.pipeline.answer import send_json
from omnirouter.pipeline.modality import ModalityCall
from omnirouter.providers.audio import Transcript, form, openai, sandbox
from omnirouter.providers.audio.formats import UPLOAD_FORMATS, measured_duration, seconds, upload_format
from omnirouter.routing.plan import Candidate
from omnirouter.settings import Settings

RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
GRANULARITIES = ("word", "segment")
FORM_OVERHEAD = 1 << 20  # the text fields of a form, and JSON around base64
WORST_BYTES_PER_SECOND = 1000  # an upload whose length cannot be measured is reserved as 8 kbit/s audio


def _limit() -> int:
    scope, _ = current.get()
    settings: Settings = scope["app"].state.omni.settings
    return settings.transcription_max_bytes


def _sniff(audio: bytes) -> str | None:
    if audio[:4] == b"RIFF":
        return "wav"
    if audio[:3] == b"ID3" or (len(audio) > 1 and audio[0] == 0xFF and audio[1] & 0xE0 == 0xE0):
        return "mp3"
    if audio[:4] == b"fLaC":
        return "flac"
    if audio[:4] == b"OggS":
        return "ogg"
    return None


def _checked_audio(audio: bytes, fmt: str | None) -> str:
    limit = _limit()
    if len(audio) > limit:
        raise GatewayError(
            413, f"The audio file is {len(audio)} bytes; the limit is {limit} bytes (transcription_max_bytes)"
        )
    if not audio:
        raise GatewayError(400, "The audio file is empty")
    fmt = fmt or _sniff(audio)
    if fmt is None:
        raise GatewayError(
            400, f"The audio format is not known: name the file with one of {', '.join(UPLOAD_FORMATS)} as extension"
        )
    return fmt


def _options(fields: Mapping[str, Any], request: dict[str, Any]) -> None:
    """The fields both forms share, validated into `request`."""
    fmt = fields.get("response_format") or "json"
    if fmt not in RESPONSE_FORMATS:
        raise GatewayError(400, f"response_format must be one of {', '.join(RESPONSE_FORMATS)}, not {fmt!r}")
    request["response_format"] = fmt
    for name in ("language", "prompt", "user"):
        value = fields.get(name)
        if value is not None and not isinstance(value, str):
            raise GatewayError(400, f"{name} must be a string")
        if value:
            request[name] = value
    temperature = fields.get("temperature")
    if temperature is not None:
        if isinstance(temperature, str):
            try:
                temperature = float(temperature)
            except ValueError:
                raise GatewayError(400, "temperature must be a number") from None
        if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0 <= temperature <= 1:
            raise GatewayError(400, "temperature must be a number from 0 to 1")
        request["temperature"] = float(temperature)
    granularities = fields.get("timestamp_granularities") or []
    if not isinstance(granularities, list) or any(g not in GRANULARITIES for g in granularities):
        raise GatewayError(400, f"timestamp_granularities must list only {' and '.join(GRANULARITIES)}")
    request["timestamp_granularities"] = granularities
    for name in ("diarize", "keyterms"):
        if fields.get(name) not in (None, False, "false", []):
            raise GatewayError(400, f"{name} is not supported by any configured transcription provider")
    if fields.get("stream") not in (None, False, "false"):
        raise GatewayError(400, "stream is not supported: the transcription is answered whole")


def _from_form(raw: bytes, content_type: str) -> dict[str, Any]:
    try:
        parts = form.parts(raw, content_type)
    except form.FormError as exc:
        raise GatewayError(400, f"Invalid multipart body: {exc}") from None
    fields: dict[str, Any] = {}
    files = [p for p in parts if p.filename is not None]
    for p in parts:
        if p.filename is not None:
            continue
        text = p.data.decode("utf-8", "replace")
        name = p.name
        while name.endswith("[]"):  # a list's field repeated; the openrouter SDK writes `[][]`
            name = name.removesuffix("[]")
        if name == "timestamp_granularities":  # @openrouter/sdk sends the list as one "word,segment"
            fields.setdefault(name, []).extend(g.strip() for g in text.split(","))
        elif name == "keyterms":
            fields.setdefault(name, []).append(text)
        else:
            fields[name] = text
    if fields.get("source_url"):
        raise GatewayError(400, "source_url is not supported: upload the audio as `file`")
    upload = next((p for p in files if p.name == "file"), None)
    if upload is None:
        raise GatewayError(400, "file is required: the audio to transcribe, as a file part named `file`")
    request: dict[str, Any] = {}
    if fields.get("model"):
        request["model"] = fields["model"]
    for name in ("provider", "models"):
        if fields.get(name):
            try:
                request[name] = msgspec.json.decode(fields[name])
            except msgspec.DecodeError:
                raise GatewayError(400, f"{name} must be JSON (a form field carries it encoded)") from None
    _options(fields, request)
    fmt = _checked_audio(upload.data, upload_format(upload.filename, upload.media_type))
    request.update(audio=upload.data, format=fmt, filename=upload.filename or f"audio.{fmt}",
                   media_type=upload.media_type)  # fmt: skip
    return request


def _from_json(raw: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
    body = json_object(raw, headers)
    audio = body.get("input_audio")
    if not isinstance(audio, dict):
        raise GatewayError(400, "input_audio is required: {data: base64 audio, format}")
    if "url" in audio:
        raise GatewayError(400, "input_audio.url is not supported: send the audio as base64 `data`")
    data, fmt = audio.get("data"), audio.get("format")
    if not isinstance(data, str) or not data:
        raise GatewayError(400, "input_audio.data must be the audio as a non-empty base64 string")
    if not isinstance(fmt, str) or fmt.lower() not in UPLOAD_FORMATS:
        raise GatewayError(400, f"input_audio.format must be one of {', '.join(UPLOAD_FORMATS)}")
    if data.startswith("data:"):
        raise GatewayError(400, "input_audio.data must be raw base64, not a data: URI")
    try:
        decoded = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise GatewayError(400, "input_audio.data is not valid base64") from None
    request = {k: body[k] for k in ("model", "models", "provider", "user", "route") if k in body}
    _options(body, request)
    fmt = _checked_audio(decoded, fmt.lower())
    request.update(audio=decoded, format=fmt, filename=f"audio.{fmt}", media_type=None)
    return request


def parse(raw: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
    content_type = headers.get("content-type", "")
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        request = _from_form(raw, content_type)
    elif media == "application/json":
        request = _from_json(raw, headers)
    else:
        raise GatewayError(
            415, f"Content-Type must be multipart/form-data (a file upload) or application/json (input_audio "
            f"as base64), not {media or 'empty'}",
        )  # fmt: skip
    request["measured_seconds"] = measured_duration(request["audio"], request["format"])
    return request


# -- answers ----------------------------------------------------------------------------------------


def _clock(at: float, separator: str) -> str:
    ms = round(at * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}{separator}{ms % 1000:03d}"


def _cues(t: Transcript) -> list[tuple[float, float, str]]:
    if t.segments:
        return [(s["start"], s["end"], s["text"].strip()) for s in t.segments]
    return [(0.0, float(t.duration), t.text.strip())]


def subtitles(t: Transcript, fmt: str) -> str:
    """SubRip or WebVTT cues, one per segment (the whole text as one cue when there are none)."""
    if fmt == "srt":
        return "".join(
            f"{i}\n{_clock(a, ',')} --> {_clock(b, ',')}\n{text}\n\n" for i, (a, b, text) in enumerate(_cues(t), 1)
        )
    return "WEBVTT\n\n" + "".join(f"{_clock(a, '.')} --> {_clock(b, '.')}\n{text}\n\n" for a, b, text in _cues(t))


_TEXT_TYPES = {"text": "text/plain; charset=utf-8", "srt": "application/x-subrip; charset=utf-8",
               "vtt": "text/vtt; charset=utf-8"}  # fmt: skip


class Transcriptions:
    name = "transcriptions"
    api_type = "stt"
    handlers = {"openai": openai.transcribe, "sandbox": sandbox.transcribe}

    def serves(self, model: Model) -> bool:
        arch = model.architecture
        return "audio" in arch.input_modalities and "text" in arch.output_modalities

    def max_body_bytes(self, settings: Settings) -> int:
        """The raw body: the audio, base64's third more in JSON, and the form's other fields."""
        return settings.transcription_max_bytes * 4 // 3 + FORM_OVERHEAD

    def parse(self, raw: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        return parse(raw, headers)

    def worst_case(self, request: dict[str, Any], cand: Candidate) -> Units:
        measured = request["measured_seconds"]
        if measured is None:
            measured = seconds(Decimal(len(request["audio"])) / WORST_BYTES_PER_SECOND)
        return Units(audio_seconds=measured)

    async def respond(self, call: ModalityCall, answer: Transcript, send: Send) -> None:
        cost = call.settle(answer)
        fmt = call.body["response_format"]
        if fmt in _TEXT_TYPES:
            text = answer.text + "\n" if fmt == "text" else subtitles(answer, fmt)
            payload = text.encode()
            await send({
                "type": "http.response.start", "status": 200,
                "headers": [(b"content-type", _TEXT_TYPES[fmt].encode()), (b"content-length", b"%d" % len(payload)),
                            (b"x-generation-id", call.gen_id.encode())],
            })  # fmt: skip
            await send({"type": "http.response.body", "body": payload})
            return
        out: dict[str, Any] = {"text": answer.text}
        if fmt == "verbose_json":
            out.update(task="transcribe", language=answer.language or call.body.get("language") or "unknown",
                       duration=answer.duration, segments=answer.segments)  # fmt: skip
            if answer.words is not None:
                out["words"] = answer.words
        out["usage"] = {"seconds": answer.duration, "cost": money(cost.total)}
        await send_json(send, 200, encode(out), call.gen_id, {})


class STTInputAudio(msgspec.Struct):
    data: Annotated[str, msgspec.Meta(min_length=1)]  # base64, not a data: URI
    format: Literal[UPLOAD_FORMATS]  # type: ignore[valid-type]


class STTRequest(msgspec.Struct, omit_defaults=True):
    """Speech to text with the audio inline, base64 (multipart/form-data with a `file` part is also accepted)."""

    model: str
    input_audio: STTInputAudio
    language: str | None = None
    prompt: str | None = None
    response_format: Literal["json", "text", "srt", "verbose_json", "vtt"] = "json"
    temperature: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    timestamp_granularities: list[Literal["word", "segment"]] | None = None
    models: list[str] | None = None
    provider: dict[str, Any] | None = None
    user: str | None = None


class STTSegment(msgspec.Struct, omit_defaults=True):
    id: int
    start: float
    end: float
    text: str
    seek: int | None = None
    tokens: list[int] | None = None
    temperature: float | None = None
    avg_logprob: float | None = None
    compression_ratio: float | None = None
    no_speech_prob: float | None = None


class STTWord(msgspec.Struct):
    word: str
    start: float
    end: float


class STTUsage(msgspec.Struct):
    seconds: Decimal  # of input audio, billed in whole milliseconds
    cost: Decimal


class STTResponse(msgspec.Struct, omit_defaults=True):
    text: str
    usage: STTUsage
    task: str | None = None
    language: str | None = None
    duration: Decimal | None = None
    segments: list[STTSegment] | None = None
    words: list[STTWord] | None = None


TRANSCRIPTIONS = Transcriptions()

routes = [Route("/audio/transcriptions", AudioEndpoint(TRANSCRIPTIONS), methods=["POST"])]

TAGS = {"STT": "Speech to text"}

# The upload's form, as OpenRouter documents it (the fields the JSON form has, as form fields; `provider`
# preferences are taken too, as a JSON text field, which no schema here can promise a generator writes).
_TEXT = {"type": "string"}
MULTIPART_SCHEMA = {
    "type": "object",
    "required": ["file", "model"],
    "properties": {
        "file": {
            "type": "string",
            "format": "binary",
            "description": "The audio file (its name or part type tells the format)",
        },
        "model": _TEXT,
        "language": {**_TEXT, "description": "ISO-639-1"},
        "prompt": _TEXT,
        "response_format": {"type": "string", "enum": ["json", "text", "srt", "verbose_json", "vtt"]},
        "temperature": {"type": "number", "minimum": 0, "maximum": 1},
        "timestamp_granularities[]": {"type": "array", "items": {"type": "string", "enum": ["word", "segment"]}},
    },
}

OPERATIONS = {
    ("/audio/transcriptions", "post"): Operation(
        operation_id="createAudioTranscriptions",
        summary="Create transcription",
        tag="STT",
        auth="inference",
        body=STTRequest,
        body_description=(
            "JSON with input_audio as base64, or multipart/form-data with the audio as a `file` part and the "
            "other fields as form fields (timestamp_granularities[] repeated; provider as JSON text)."
        ),
        body_media={"multipart/form-data": MULTIPART_SCHEMA},
        response=STTResponse,
        response_media={media: {"type": "string"} for media in ("text/plain", "application/x-subrip", "text/vtt")},
        response_description=(
            "The transcription: JSON for json and verbose_json; text/plain, application/x-subrip or text/vtt "
            "for text, srt and vtt"
        ),
        headers=("X-Generation-Id",),
        errors=(400, 401, 402, 404, 413, 415, 429, 500, 502, 503),
    ),
}
