"""The sandbox's video model: a job that is complete at its first poll, and a tiny deterministic video.

The video is a well-formed MP4 (ISO base media file): an `ftyp` box, a `moov` box describing one video
track of 16x16 pixels lasting the requested duration, and an `mdat` box with its frames: one a second,
at most eight (a longer video shows each for longer, so an hour is as small as eight seconds). The
frames are uncompressed 24-bit RGB (QuickTime's `raw ` sample entry), which FFmpeg's MP4 demuxer
decodes as rawvideo; browsers, which expect H.264, will not play it. Its colour comes from the prompt,
so the same request always makes the same bytes."""

from __future__ import annotations

import hashlib
import struct
from decimal import Decimal
from typing import Any

from omnirouter.providers.videos.base import COMPLETED, Progress, Submitted, Upstream, prompt_of, requested_seconds

SIDE = 16  # pixels
MAX_FRAMES = 8
TIMESCALE = 1000  # units per second in the movie and media headers
_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)


def _box(kind: bytes, *parts: bytes) -> bytes:
    payload = b"".join(parts)
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def _full(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *parts)


def _frames(prompt: str, seconds: int) -> list[bytes]:
    digest = hashlib.sha256(prompt.encode()).digest()
    frames = []
    for n in range(min(seconds, MAX_FRAMES)):  # a little brighter each time
        pixel = bytes(min(255, c + 8 * n) for c in digest[:3])
        frames.append(pixel * SIDE * SIDE)
    return frames


def _moov(seconds: int, frames: int, frame_size: int, data_offset: int) -> bytes:
    duration = seconds * TIMESCALE  # a whole multiple of `frames` (at most 8, and 1000 is a multiple of 8)
    mvhd = _full(b"mvhd", 0, 0, struct.pack(">IIIIIH10x", 0, 0, TIMESCALE, duration, 0x00010000, 0x0100),
                 _MATRIX, bytes(24), struct.pack(">I", 2))  # fmt: skip
    tkhd = _full(b"tkhd", 0, 3, struct.pack(">IIII", 0, 0, 1, 0), struct.pack(">I8xHHH2x", duration, 0, 0, 0),
                 _MATRIX, struct.pack(">II", SIDE << 16, SIDE << 16))  # fmt: skip
    mdhd = _full(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, TIMESCALE, duration, 0x55C4, 0))  # language "und"
    hdlr = _full(b"hdlr", 0, 0, struct.pack(">I4s12x", 0, b"vide"), b"VideoHandler\x00")
    vmhd = _full(b"vmhd", 0, 1, bytes(8))
    dinf = _box(b"dinf", _full(b"dref", 0, 0, struct.pack(">I", 1), _full(b"url ", 0, 1)))
    entry = _box(
        b"raw ",
        bytes(6), struct.pack(">H", 1),  # reserved, data_reference_index
        bytes(16), struct.pack(">HHII4xH", SIDE, SIDE, 0x00480000, 0x00480000, 1),  # size, 72 dpi, 1 frame a sample
        bytes(32), struct.pack(">Hh", 24, -1),  # compressor name, depth, no colour table
    )  # fmt: skip
    stbl = _box(
        b"stbl",
        _full(b"stsd", 0, 0, struct.pack(">I", 1), entry),
        _full(b"stts", 0, 0, struct.pack(">III", 1, frames, duration // frames)),  # frames of equal length
        _full(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, frames, 1)),  # one chunk of every frame
        _full(b"stsz", 0, 0, struct.pack(">II", frame_size, frames)),
        _full(b"stco", 0, 0, struct.pack(">II", 1, data_offset)),
    )
    minf = _box(b"minf", vmhd, dinf, stbl)
    return _box(b"moov", mvhd, _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, minf)))


def tiny_mp4(prompt: str, seconds: int) -> bytes:
    """`seconds` of a 16x16 video whose colour the prompt picks."""
    frames = _frames(prompt, seconds)
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isomiso2mp41")
    size, count = len(frames[0]), len(frames)
    moov_length = len(_moov(seconds, count, size, 0))  # the chunk offset is a fixed-size field
    moov = _moov(seconds, count, size, len(ftyp) + moov_length + 8)
    return ftyp + moov + _box(b"mdat", *frames)


class SandboxVideos:
    """No network: the job id carries nothing, the job is done when first asked about."""

    async def submit(self, up: Upstream, request: dict[str, Any]) -> Submitted:
        digest = hashlib.sha256(repr(sorted(request.items())).encode()).hexdigest()[:24]
        return Submitted(f"sandbox-video-{digest}")

    async def progress(self, up: Upstream, upstream_id: str, request: dict[str, Any]) -> Progress:
        return Progress(COMPLETED, seconds=Decimal(requested_seconds(request)))

    async def content(self, up: Upstream, upstream_id: str, index: int, request: dict[str, Any]) -> bytes:
        return tiny_mp4(prompt_of(request), requested_seconds(request))
