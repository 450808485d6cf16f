"""A fake of OpenAI's audio API (which OpenAI-compatible Whisper servers such as speaches speak too):
``POST {base}/audio/speech`` and ``POST {base}/audio/transcriptions``, Bearer auth.

Each request consumes one scripted step, as the chat fakes do: the core's ``Status``, ``Delay``,
``Reset`` and ``BrokenJSON``, or this module's ``Audio`` (speech bytes, with faults) and
``Transcription`` (a transcript). Without a step, speech is the sandbox's audio for the request (so
it carries its text: providers/audio/sandbox.py), in chunks; a transcription is what the sandbox
hears in the upload, timed by its header or frames.

    fake = FakeOpenAIAudio.run_in_thread(api_key="sk-test")
    fake.script(Status(503), Audio(reset_after=1))
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

from aiohttp import web

from omnirouter.providers.audio import form, sandbox
from omnirouter.providers.audio.formats import CONTENT_TYPES, measured_duration, upload_format
from omnirouter.testing.fakes.core import (
    FakeServer,
    FakeThread,
    Route,
    Wire,
    _abort,
    _Exchange,
    json_response,
)
from omnirouter.testing.fakes.openai import OpenAIWire, error_body

__all__ = ["Audio", "FakeOpenAIAudio", "FakeOpenAIAudioThread", "Transcription"]


@dataclass(frozen=True)
class Audio:
    """A speech answer: ``body`` (default: the sandbox's audio for the request) in ``chunk_size``
    pieces, ``chunk_delay`` seconds apart; ``reset_after`` K pieces the connection is cut (RST);
    ``stall_after`` K pieces the server waits ``stall_seconds``."""

    body: bytes | None = None
    chunk_size: int = 4096
    chunk_delay: float = 0.0
    reset_after: int | None = None
    stall_after: int | None = None
    stall_seconds: float = 3600.0
    content_type: str | None = None


@dataclass(frozen=True)
class Transcription:
    """A transcription answer: ``text`` (default: what the sandbox hears), ``duration`` (default:
    measured from the upload, else 1.0), and ``segments``/``words``/``language`` for verbose_json.
    ``omit_duration`` leaves duration and usage out, as a server that does not report them."""

    text: str | None = None
    duration: float | None = None
    language: str = "english"
    segments: list[dict[str, Any]] | None = None
    words: list[dict[str, Any]] | None = None
    omit_duration: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


async def _speech(fake: FakeServer, request: web.Request) -> web.StreamResponse:
    body = await request.json()
    step = fake._queue.popleft() if fake._queue else fake._always
    while step is not None and not isinstance(step, Audio):
        if type(step).__name__ == "Delay":
            await asyncio.sleep(step.seconds)  # type: ignore[union-attr]
            step = step.then  # type: ignore[union-attr]
            continue
        return await fake._perform(step, _Exchange(request, body), Route("POST", "/audio/speech"))  # type: ignore[arg-type]
    step = step or Audio()
    fmt = body.get("response_format") or "mp3"
    if not isinstance(body.get("input"), str) or not body.get("voice"):
        return json_response(error_body(400, "input and voice are required"), 400)
    data = step.body
    if data is None:
        data = (
            sandbox.speech_bytes(body["input"], body["voice"], fmt, float(body.get("speed") or 1.0))
            if fmt in sandbox.FORMATS
            else (b"fake-" + fmt.encode()) * 64
        )
    resp = web.StreamResponse(
        status=200, headers={"Content-Type": step.content_type or CONTENT_TYPES.get(fmt, "audio/mpeg")}
    )
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    pieces = [data[i : i + step.chunk_size] for i in range(0, len(data), step.chunk_size)]
    for k, piece in enumerate(pieces):
        if step.reset_after == k:
            _abort(_Exchange(request, body))
            return resp
        if step.stall_after == k:
            await asyncio.sleep(step.stall_seconds)
        if k and step.chunk_delay:
            await asyncio.sleep(step.chunk_delay)
        await resp.write(piece)
    await resp.write_eof()
    return resp


def _fields(parts: list[form.Part]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for p in parts:
        if p.filename is None:
            name = p.name.removesuffix("[]")
            text = p.data.decode()
            if name == "timestamp_granularities":
                fields.setdefault(name, []).append(text)
            else:
                fields[name] = text
    return fields


async def _transcriptions(fake: FakeServer, request: web.Request) -> web.StreamResponse:
    raw = await request.read()
    try:
        parts = form.parts(raw, request.headers.get("Content-Type", ""))
    except form.FormError as exc:
        return json_response(error_body(400, str(exc)), 400)
    upload = next((p for p in parts if p.name == "file" and p.filename is not None), None)
    fields = _fields(parts)
    if upload is None or not fields.get("model"):
        return json_response(error_body(400, "file and model are required"), 400)
    step = fake._queue.popleft() if fake._queue else fake._always
    while step is not None and not isinstance(step, Transcription):
        if type(step).__name__ == "Delay":
            await asyncio.sleep(step.seconds)  # type: ignore[union-attr]
            step = step.then  # type: ignore[union-attr]
            continue
        return await fake._perform(step, _Exchange(request, None), Route("POST", "/audio/transcriptions"))  # type: ignore[arg-type]
    step = step or Transcription()
    fmt = upload_format(upload.filename, upload.media_type)
    text = step.text if step.text is not None else sandbox.heard(upload.data, fmt)
    duration = step.duration
    if duration is None:
        measured = measured_duration(upload.data, fmt)
        duration = float(measured) if measured is not None else 1.0
    wanted = fields.get("response_format") or "json"
    if wanted in ("text", "srt", "vtt"):
        return web.Response(text=text, content_type="text/plain")
    out: dict[str, Any] = {"text": text, **step.extra}
    if wanted == "verbose_json":
        out["task"] = "transcribe"
        out["language"] = step.language
        if not step.omit_duration:
            out["duration"] = duration
        out["segments"] = step.segments if step.segments is not None else [
            {"id": 0, "seek": 0, "start": 0.0, "end": duration, "text": " " + text, "tokens": [50364, 2425],
             "temperature": 0.0, "avg_logprob": -0.2, "compression_ratio": 1.1, "no_speech_prob": 0.01},
        ]  # fmt: skip
        if "word" in fields.get("timestamp_granularities", []):
            out["words"] = step.words if step.words is not None else _words(text, duration)
    if not step.omit_duration:
        out["usage"] = {"type": "duration", "seconds": math.ceil(duration)}
    return json_response(out)


def _words(text: str, duration: float) -> list[dict[str, Any]]:
    words = text.split() or [text]
    each = Decimal(str(duration)) / len(words)
    return [{"word": w, "start": float(each * i), "end": float(each * (i + 1))} for i, w in enumerate(words)]


class AudioWire(OpenAIWire):
    """OpenAI's audio endpoints; errors and auth as OpenAI's."""

    name: ClassVar[str] = "FakeOpenAIAudio"

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/audio/speech", handler=_speech),
            Route("POST", "/audio/transcriptions", handler=_transcriptions),
        ]


class FakeOpenAIAudio(FakeServer):
    """A fake OpenAI audio upstream over real HTTP on loopback (see the module's docstring)."""

    wire: ClassVar[Wire] = AudioWire()


class FakeOpenAIAudioThread(FakeThread[FakeOpenAIAudio]):
    """A FakeOpenAIAudio served from a daemon thread with its own event loop."""
