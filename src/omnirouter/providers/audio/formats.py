"""What the gateway needs to know of audio containers: the content type of each speech format, when
the first bytes of a speech stream are usable audio (the billing rule), and the length of an upload
in seconds where its header or frames say it (WAV, MP3, headerless PCM), so transcription is priced
on a measurement rather than on the upstream's word."""

from __future__ import annotations

import struct
from decimal import ROUND_HALF_UP, Decimal

# The speech formats a client may ask for; the spec lists mp3 and pcm, OpenAI's API the others.
CONTENT_TYPES = {
    "pcm": "audio/pcm",  # 16-bit little-endian mono samples, no header (24 kHz from OpenAI)
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "opus": "audio/ogg",  # Opus in an Ogg container, as OpenAI sends it
    "aac": "audio/aac",
    "flac": "audio/flac",
}
SPEECH_FORMATS = tuple(CONTENT_TYPES)

# Upload formats by file extension or part content type (Whisper's list, plus pcm).
UPLOAD_FORMATS = ("flac", "mp3", "mp4", "mpeg", "mpga", "m4a", "ogg", "oga", "wav", "webm", "pcm", "aac", "opus")
_BY_MEDIA_TYPE = {
    "audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav", "audio/vnd.wave": "wav",
    "audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/flac": "flac", "audio/x-flac": "flac",
    "audio/ogg": "ogg", "audio/webm": "webm", "audio/mp4": "m4a", "audio/x-m4a": "m4a",
    "audio/m4a": "m4a", "audio/aac": "aac", "audio/opus": "opus", "audio/pcm": "pcm",
    "audio/l16": "pcm", "video/mp4": "mp4", "video/webm": "webm",
}  # fmt: skip

PCM_UPLOAD_RATE = 16_000  # headerless pcm uploads: 16 kHz, 16-bit, mono (the SDK's definition)
MILLISECOND = Decimal("0.001")
MP3_SYNC_WINDOW = 8192  # the first frame is looked for this far after the tag (junk is not audio)


def seconds(value: Decimal) -> Decimal:
    """A duration as billed: whole milliseconds, so usage, /generation and the charge agree exactly."""
    return value.quantize(MILLISECOND, rounding=ROUND_HALF_UP)


def upload_format(filename: str | None, media_type: str | None) -> str | None:
    """An upload's format from its file name's extension, else from its part's content type."""
    if filename and "." in filename:
        ext = filename.rsplit(".", 1)[1].strip().lower()
        if ext in UPLOAD_FORMATS:
            return ext
    if media_type:
        return _BY_MEDIA_TYPE.get(media_type.split(";", 1)[0].strip().lower())
    return None


# -- WAV --------------------------------------------------------------------------------------------


def wav_layout(data: bytes) -> tuple[int, int, int, int, int] | None:
    """(channels, sample rate, bits per sample, data offset, data length) of a RIFF/WAVE file, the
    length cut to what is there (a streamed WAV declares 0xFFFFFFFF); None if it is not one."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos, fmt = 12, None
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = pos + 8
        if chunk == b"fmt " and body + 16 <= len(data):
            _, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            fmt = (channels, rate, bits)
        elif chunk == b"data":
            if fmt is None or not fmt[0] or not fmt[1] or not fmt[2]:
                return None
            return (*fmt, body, min(size, len(data) - body))
        pos = body + size + (size & 1)
    return None


def wav_duration(data: bytes) -> Decimal | None:
    layout = wav_layout(data)
    if layout is None:
        return None
    channels, rate, bits, _, length = layout
    frame = channels * ((bits + 7) // 8)
    return Decimal(length // frame) / Decimal(rate)


# -- MP3 --------------------------------------------------------------------------------------------

_L3_KBPS = {
    1: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),  # MPEG-1
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),  # MPEG-2 and 2.5
}
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def mp3_frame(data: bytes, pos: int) -> tuple[int, int, int] | None:
    """(frame length, samples, sample rate) of the MPEG Layer III frame header at `pos`, or None."""
    if pos + 4 > len(data) or data[pos] != 0xFF or data[pos + 1] & 0xE0 != 0xE0:
        return None
    version, layer = (data[pos + 1] >> 3) & 3, (data[pos + 1] >> 1) & 3
    index, rate_index, padding = data[pos + 2] >> 4, (data[pos + 2] >> 2) & 3, (data[pos + 2] >> 1) & 1
    if version == 1 or layer != 1 or index in (0, 15) or rate_index == 3:
        return None
    rate = _RATES[version][rate_index]
    mpeg1 = version == 3
    kbps = _L3_KBPS[1 if mpeg1 else 2][index]
    length = (144 if mpeg1 else 72) * kbps * 1000 // rate + padding
    return length, 1152 if mpeg1 else 576, rate


def id3_size(data: bytes) -> int:
    """Bytes of an ID3v2 tag at the start (0 without one)."""
    if len(data) < 10 or data[:3] != b"ID3":
        return 0
    size = (data[6] & 0x7F) << 21 | (data[7] & 0x7F) << 14 | (data[8] & 0x7F) << 7 | data[9] & 0x7F
    return 10 + size + (10 if data[5] & 0x10 else 0)


def mp3_duration(data: bytes) -> Decimal | None:
    """The sum of the frames' lengths, walking frame to frame after any ID3v2 tag; None when the
    data does not start with Layer III frames."""
    pos = id3_size(data)
    samples_at: dict[int, int] = {}  # samples per sample rate, divided once (no rounding per frame)
    while (frame := mp3_frame(data, pos)) is not None and pos + frame[0] <= len(data):
        length, samples, rate = frame
        samples_at[rate] = samples_at.get(rate, 0) + samples
        pos += length
    return sum((Decimal(n) / rate for rate, n in samples_at.items()), Decimal(0)) if samples_at else None


def first_mp3_frame_end(data: bytes) -> int | None:
    """Where the first complete MP3 frame ends, or None while there is none yet."""
    pos = id3_size(data)
    if pos >= len(data):
        return None
    for i in range(pos, min(len(data) - 3, pos + MP3_SYNC_WINDOW)):
        frame = mp3_frame(data, i)
        if frame is not None:
            end = i + frame[0]
            return end if end <= len(data) else None
    return None


# -- the rules built on them ------------------------------------------------------------------------


def usable(fmt: str, head: bytes) -> bool:
    """Whether the first bytes of a speech answer hold usable audio (behaviors: at least one complete
    MP3 frame or PCM sample); what a request is billed from."""
    if fmt == "pcm":
        return len(head) >= 2
    if fmt == "wav":
        layout = wav_layout(head)
        return layout is not None and layout[4] >= layout[0] * ((layout[2] + 7) // 8)
    if fmt == "mp3":
        return first_mp3_frame_end(head) is not None
    return len(head) > 0  # compressed formats the gateway does not parse: any byte of them


def measured_duration(data: bytes, fmt: str | None) -> Decimal | None:
    """An upload's length in seconds from its own bytes, where the format says it: the WAV header,
    MP3 frames, or the byte count of headerless 16 kHz PCM. None for other formats."""
    if data[:4] == b"RIFF":
        duration = wav_duration(data)
    elif fmt == "pcm":
        duration = Decimal(len(data) // 2) / PCM_UPLOAD_RATE
    elif fmt in (None, "mp3", "mpeg", "mpga") or data[:3] == b"ID3":
        duration = mp3_duration(data)
    else:
        duration = None
    return None if duration is None else seconds(duration)
