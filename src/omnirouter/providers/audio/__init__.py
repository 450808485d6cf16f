"""Upstream handlers of POST /audio/speech and POST /audio/transcriptions (modalities/speech.py and
modalities/transcriptions.py), one module per upstream API, and what their answers look like."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from omnirouter.accounting.units import Units
from omnirouter.providers.audio.formats import usable
from omnirouter.providers.base import UpstreamError

MAX_HEAD = 1 << 20  # bytes read for the first usable audio before the answer is taken for something else


@dataclass
class SpeechAnswer:
    """Audio an upstream has started to send: `head` is usable audio already read (what makes the
    request billable), `rest` the remainder as it arrives; `close` drops the upstream (client gone)."""

    units: Units
    fmt: str
    head: bytes
    rest: AsyncIterator[bytes]
    close: Callable[[], None] = lambda: None


@dataclass
class Transcript:
    """A transcription, whatever the upstream: rendered per response_format by the modality."""

    text: str
    units: Units  # audio_seconds = `duration`
    duration: Decimal
    language: str | None = None
    segments: list[dict[str, Any]] = field(default_factory=list)
    words: list[dict[str, Any]] | None = None


async def first_usable(fmt: str, chunks: AsyncIterator[bytes]) -> bytes:
    """Read until the audio is usable; an UpstreamError (the attempt falls back) if it ends first."""
    head = b""
    async for chunk in chunks:
        head += chunk
        if usable(fmt, head):
            return head
        if len(head) > MAX_HEAD:
            break
    raise UpstreamError("Upstream sent no usable audio", status=502, kind="protocol")
