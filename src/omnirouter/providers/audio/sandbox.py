"""The offline sandbox's speech and transcription (`sandbox/speech`, `sandbox/transcribe`).

Speech is a tone, the same for the same request: 60 ms of audio per input character (divided by
`speed`), at least a quarter second; its pitch depends on the voice. The input text rides along in
the audio so that transcribing it gives the text back, offline:
- wav and pcm (24 kHz, 16-bit, mono): in the least significant bit of the first samples (a marker,
  the length, then the UTF-8 text), inaudible and kept by any lossless copy;
- mp3: silent MPEG-1 Layer III frames (128 kbit/s, 44.1 kHz) after an ID3v2.4 tag whose TXXX frame
  carries the text.
Other formats are refused (the sandbox encodes only these three).

Transcription reads the text back from such audio; any other audio is "heard" as one fixed sentence.
Its length comes from the upload itself (WAV header, MP3 frames, PCM byte count; formats.py), else
from its size as if it were 128 kbit/s audio.
"""

from __future__ import annotations

import hashlib
import io
import math
import wave
from array import array
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

from omnirouter.accounting.units import Units
from omnirouter.providers.audio import SpeechAnswer, Transcript, first_usable
from omnirouter.providers.audio.formats import id3_size, measured_duration, seconds, wav_layout
from omnirouter.providers.base import UpstreamError

RATE = 24_000  # samples per second of wav and pcm output
SECONDS_PER_CHARACTER = Decimal("0.06")
MIN_SECONDS = Decimal("0.25")
CHUNK = 16 * 1024  # bytes per streamed piece
MARKER = b"OMNI"
TXXX_NAME = b"omnirouter-sandbox-text"
FIXED_SENTENCE = "The quick brown fox jumps over the lazy dog."
FORMATS = ("pcm", "wav", "mp3")

# One silent MPEG-1 Layer III frame: 128 kbit/s, 44.1 kHz, mono, no CRC; all-zero side information
# and main data decode to silence. 144 * 128000 / 44100 = 417 bytes, 1152 samples.
_MP3_FRAME = b"\xff\xfb\x90\xc0" + bytes(413)
_MP3_FRAME_SECONDS = Decimal(1152) / Decimal(44100)


def duration_of(text: str, speed: float) -> Decimal:
    """How long the sandbox speaks `text`."""
    return max(MIN_SECONDS, len(text) * SECONDS_PER_CHARACTER / Decimal(str(speed)))


def _period(voice: str | None) -> int:
    """Samples per period of the voice's tone: a whole number, so one period repeats exactly
    (24000 / 40..95 samples: 253 to 600 Hz)."""
    return 40 + hashlib.sha256((voice or "").encode()).digest()[0] % 56


def _samples(text: str, voice: str | None, speed: float) -> array[int]:
    n = int(duration_of(text, speed) * RATE)
    period = _period(voice)
    one = array("h", (round(9000 * math.sin(2 * math.pi * i / period)) for i in range(period)))
    samples = one * (n // period + 1)
    del samples[n:]
    payload = MARKER + len(text.encode()).to_bytes(4, "big") + text.encode()
    bits = [(byte >> (7 - k)) & 1 for byte in payload for k in range(8)]
    if len(bits) > n:
        raise UpstreamError("The sandbox cannot fit this text in its audio", status=400)
    for i, bit in enumerate(bits):
        samples[i] = (samples[i] & ~1) | bit
    return samples


def _wav(pcm: bytes) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm)
    return out.getvalue()


def _syncsafe(n: int) -> bytes:
    return bytes(((n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F))


def _mp3(text: str, speed: float) -> bytes:
    content = b"\x03" + TXXX_NAME + b"\x00" + text.encode()  # encoding 3: UTF-8
    frame = b"TXXX" + _syncsafe(len(content)) + b"\x00\x00" + content
    tag = b"ID3\x04\x00\x00" + _syncsafe(len(frame)) + frame
    frames = math.ceil(duration_of(text, speed) / _MP3_FRAME_SECONDS)
    return tag + _MP3_FRAME * frames


def speech_bytes(text: str, voice: str | None, fmt: str, speed: float = 1.0) -> bytes:
    """The whole sandbox answer for a speech request."""
    if fmt == "mp3":
        return _mp3(text, speed)
    pcm = _samples(text, voice, speed)
    if pcm.itemsize != 2:  # pragma: no cover - 'h' is 16-bit on every supported platform
        raise RuntimeError("array('h') is not 16-bit here")
    raw = pcm.tobytes() if _little_endian() else _swapped(pcm)
    return _wav(raw) if fmt == "wav" else raw


def _little_endian() -> bool:
    return array("h", [1]).tobytes() == b"\x01\x00"


def _swapped(pcm: array[int]) -> bytes:  # pragma: no cover - big-endian hosts
    copy = array("h", pcm)
    copy.byteswap()
    return copy.tobytes()


# -- reading it back --------------------------------------------------------------------------------


def _lsb_text(pcm: bytes) -> str | None:
    """The text hidden in 16-bit little-endian samples' low bits, if it starts with the marker."""

    def read(first: int, count: int) -> bytes | None:
        end = first + count * 8
        if end * 2 > len(pcm):
            return None
        out = bytearray()
        for b in range(first, end, 8):
            byte = 0
            for k in range(8):
                byte = byte << 1 | pcm[(b + k) * 2] & 1
            out.append(byte)
        return bytes(out)

    if read(0, 4) != MARKER or (size_bytes := read(32, 4)) is None:
        return None
    text = read(64, int.from_bytes(size_bytes, "big"))
    try:
        return None if text is None else text.decode()
    except UnicodeDecodeError:
        return None


def _id3_text(data: bytes) -> str | None:
    """The text of the sandbox's TXXX frame in an ID3v2.4 tag."""
    end, pos = id3_size(data), 10
    while pos + 10 <= end:
        name, size = data[pos : pos + 4], data[pos + 4 : pos + 8]
        length = size[0] << 21 | size[1] << 14 | size[2] << 7 | size[3]
        content = data[pos + 10 : pos + 10 + length]
        if name == b"TXXX" and content[1:].startswith(TXXX_NAME + b"\x00"):
            return content[len(TXXX_NAME) + 2 :].decode(errors="replace")
        if not name.strip(b"\x00"):
            break
        pos += 10 + length
    return None


def heard(data: bytes, fmt: str | None) -> str:
    """What the sandbox hears in an upload: its own speech's text, else the fixed sentence."""
    text = None
    if data[:3] == b"ID3":
        text = _id3_text(data)
    elif (layout := wav_layout(data)) is not None:
        if layout[2] == 16:
            text = _lsb_text(data[layout[3] : layout[3] + layout[4]])
    elif fmt == "pcm":
        text = _lsb_text(data)
    return FIXED_SENTENCE if text is None else text


def _timeline(text: str, duration: Decimal, words: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """Segments (one per sentence) and words spread over the audio by their share of the characters."""
    sentences = [s.strip() for s in _sentences(text)] or [text]
    total = sum(len(s) for s in sentences) or 1
    segments, spoken, at = [], [], Decimal(0)
    for i, sentence in enumerate(sentences):
        end = duration if i == len(sentences) - 1 else seconds(at + duration * len(sentence) / total)
        segments.append({
            "id": i, "seek": 0, "start": float(at), "end": float(end), "text": sentence, "tokens": [],
            "temperature": 0.0, "avg_logprob": -0.1, "compression_ratio": 1.0, "no_speech_prob": 0.0,
        })  # fmt: skip
        if words:
            parts = sentence.split()
            length = sum(len(w) for w in parts) or 1
            w_at = at
            for w in parts:
                w_end = seconds(w_at + (end - at) * len(w) / length)
                spoken.append({"word": w, "start": float(w_at), "end": float(w_end)})
                w_at = w_end
        at = end
    return segments, spoken if words else None


def _sentences(text: str) -> list[str]:
    out, current = [], ""
    for ch in text:
        current += ch
        if ch in ".!?":
            out.append(current)
            current = ""
    if current.strip():
        out.append(current)
    return [s for s in out if s.strip()]


# -- the handlers -----------------------------------------------------------------------------------


async def _pieces(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), CHUNK):
        yield data[i : i + CHUNK]


async def speech(upstream: Any, request: dict[str, Any]) -> SpeechAnswer:
    fmt = request["response_format"]
    if fmt not in FORMATS:
        raise UpstreamError(f"The sandbox speaks pcm, wav and mp3, not {fmt}", status=400)
    data = speech_bytes(request["input"], request.get("voice"), fmt, request.get("speed") or 1.0)
    pieces = _pieces(data)
    head = await first_usable(fmt, pieces)
    return SpeechAnswer(Units(characters=request["characters"]), fmt, head, pieces)


async def transcribe(upstream: Any, request: dict[str, Any]) -> Transcript:
    audio: bytes = request["audio"]
    duration = request.get("measured_seconds")
    if duration is None:
        duration = measured_duration(audio, request.get("format")) or seconds(Decimal(len(audio)) / 16_000)
    text = heard(audio, request.get("format"))
    verbose = request.get("response_format") in ("verbose_json", "srt", "vtt")
    granularities = request.get("timestamp_granularities") or ["segment"]
    segments, words = _timeline(text, duration, verbose and "word" in granularities)
    return Transcript(
        text=text,
        units=Units(audio_seconds=duration),
        duration=duration,
        language=request.get("language") or "english",
        segments=segments,
        words=words,
    )
