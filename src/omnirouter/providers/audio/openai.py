"""OpenAI's audio API, which OpenAI-compatible servers speak too (a local Whisper server such as
speaches / faster-whisper-server, vLLM's transcription endpoint): `POST {base}/audio/speech` (JSON
in, audio bytes out, relayed as they arrive) and `POST {base}/audio/transcriptions` (a multipart
upload in, JSON out).

Transcriptions are asked for as `json`, or as `verbose_json` when the client wants segments (its own
verbose_json, srt or vtt, which the gateway renders from the segments) or when the upload's length
could not be measured from its bytes: verbose_json carries `duration`, what the request is billed by.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from decimal import Decimal, InvalidOperation
from typing import Any

import msgspec

from omnirouter.accounting.units import Units
from omnirouter.providers.answers import body_of, stream_opened
from omnirouter.providers.audio import SpeechAnswer, Transcript, first_usable, form
from omnirouter.providers.audio.formats import seconds
from omnirouter.providers.base import UpstreamError
from omnirouter.providers.http1 import Response

log = logging.getLogger("omnirouter")

DEFAULT_VOICE = "alloy"  # OpenAI requires a voice; the spec leaves it optional
_QUEUE_HIGH, _QUEUE_LOW = 32, 4  # pieces read ahead of a slow client before reading stops


def _auth(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def _pieces(data: bytes) -> list[bytes]:
    """The framer of a raw byte stream: each piece as it arrives."""
    return [data]


async def _relay(resp: Response) -> AsyncIterator[bytes]:
    """The body of a 200 as it arrives; reading pauses while the client is far behind, so the
    upstream is held back by TCP instead of the gateway buffering the audio."""
    try:
        while True:
            if resp.paused and len(resp.events) < _QUEUE_LOW:
                resp.resume()
            piece = await resp.next_event()
            if piece is None:
                return
            if len(resp.events) > _QUEUE_HIGH:
                resp.pause()
            yield piece
    finally:
        resp.close()


async def speech(upstream: Any, request: dict[str, Any]) -> SpeechAnswer:
    fmt = request["response_format"]
    payload: dict[str, Any] = {
        "model": upstream.endpoint.upstream_model,
        "input": request["input"],
        "voice": request.get("voice") or DEFAULT_VOICE,
        "response_format": fmt,
    }
    for name in ("speed", "instructions"):
        if request.get(name) is not None:
            payload[name] = request[name]
    headers = {"Content-Type": "application/json", "Accept": "*/*", **_auth(upstream.api_key)}
    resp = await upstream.send(
        "POST", upstream.url("/audio/speech"), headers=headers, body=msgspec.json.encode(payload), stream=True,
        framer=_pieces,
    )  # fmt: skip
    await stream_opened(resp)
    media = resp.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media == "application/json" or media.startswith("text/"):  # an error some servers send with a 200
        text = (await body_of(resp))[:2000].decode(errors="replace")
        raise UpstreamError(f"Upstream answered speech with {media}, not audio", status=502, raw=text, kind="protocol")
    rest = _relay(resp)
    try:
        head = await first_usable(fmt, rest)  # a failure before this is the attempt's: it falls back
    except BaseException:
        resp.close()
        raise
    return SpeechAnswer(Units(characters=request["characters"]), fmt, head, rest, resp.close)


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return seconds(number) if number.is_finite() and number >= 0 else None


def upstream_format(request: dict[str, Any]) -> str:
    """verbose_json when the client wants segments, or the length must come from the upstream."""
    wants = request.get("response_format") or "json"
    segments = wants in ("verbose_json", "srt", "vtt")
    return "verbose_json" if segments or request.get("measured_seconds") is None else "json"


async def transcribe(upstream: Any, request: dict[str, Any]) -> Transcript:
    asked = upstream_format(request)
    fields = [("model", upstream.endpoint.upstream_model), ("response_format", asked)]
    for name in ("language", "prompt"):
        if request.get(name):
            fields.append((name, request[name]))
    if request.get("temperature") is not None:
        fields.append(("temperature", repr(float(request["temperature"]))))
    if asked == "verbose_json":
        fields += [("timestamp_granularities[]", g) for g in request.get("timestamp_granularities") or ()]
    fmt = request.get("format") or "wav"
    file = ("file", request.get("filename") or f"audio.{fmt}", request.get("media_type") or "application/octet-stream",
            request["audio"])  # fmt: skip
    body, content_type = form.encode(fields, file)
    headers = {"Content-Type": content_type, "Accept": "application/json", **_auth(upstream.api_key)}
    raw = await body_of(await upstream.send("POST", upstream.url("/audio/transcriptions"), headers=headers, body=body))
    try:
        answer = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        answer = None
    if not isinstance(answer, dict) or not isinstance(answer.get("text"), str):
        raise UpstreamError(
            "Upstream sent a transcription without text", status=502, raw=raw[:2000].decode(errors="replace"),
            kind="protocol",
        )  # fmt: skip
    return transcript_of(answer, request, upstream.endpoint.upstream_model)


def transcript_of(answer: dict[str, Any], request: dict[str, Any], model: str) -> Transcript:
    """An OpenAI transcription object as a Transcript, its length measured where possible (formats.py),
    else the upstream's verbose `duration`, else its `usage.seconds`."""
    usage = answer.get("usage") if isinstance(answer.get("usage"), dict) else {}
    duration = request.get("measured_seconds")
    if duration is None:
        duration = _decimal(answer.get("duration"))
    if duration is None:
        duration = _decimal(usage.get("seconds"))
    if duration is None:
        log.warning("transcription by %s: no length measured or reported; billed 0 seconds", model)
        duration = Decimal(0)
    segments = [_segment(i, s) for i, s in enumerate(answer.get("segments") or []) if isinstance(s, dict)]
    words = answer.get("words")
    return Transcript(
        text=answer["text"],
        units=Units(audio_seconds=duration),
        duration=duration,
        language=answer.get("language") if isinstance(answer.get("language"), str) else request.get("language"),
        segments=[s for s in segments if s is not None],
        words=[_word(w) for w in words if isinstance(w, dict) and isinstance(w.get("word"), str)]
        if isinstance(words, list)
        else None,
    )


_SEGMENT_NUMBERS = ("avg_logprob", "compression_ratio", "no_speech_prob", "temperature")


def _segment(index: int, s: dict[str, Any]) -> dict[str, Any] | None:
    if not isinstance(s.get("text"), str):
        return None
    out: dict[str, Any] = {
        "id": s["id"] if isinstance(s.get("id"), int) else index,
        "start": float(s.get("start") or 0),
        "end": float(s.get("end") or 0),
        "text": s["text"],
    }
    if isinstance(s.get("seek"), int):
        out["seek"] = s["seek"]
    if isinstance(s.get("tokens"), list):
        out["tokens"] = [t for t in s["tokens"] if isinstance(t, int)]
    for name in _SEGMENT_NUMBERS:
        if isinstance(s.get(name), int | float) and not isinstance(s.get(name), bool):
            out[name] = float(s[name])
    return out


def _word(w: dict[str, Any]) -> dict[str, Any]:
    return {"word": w["word"], "start": float(w.get("start") or 0), "end": float(w.get("end") or 0)}
