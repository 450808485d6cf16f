"""How long an upload is, from its own bytes (what a transcription is billed by), and when the first
bytes of speech are usable audio (what speech is billed from): providers/audio/formats.py."""

from __future__ import annotations

import io
import wave
from decimal import Decimal

import pytest

from omnirouter.providers.audio import form
from omnirouter.providers.audio.formats import measured_duration, mp3_duration, upload_format, usable


def wav(frames: int, rate: int = 16000, channels: int = 1, width: int = 2) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(bytes(frames * channels * width))
    return out.getvalue()


def test_wav_length_is_frames_over_rate_in_whole_milliseconds() -> None:
    assert measured_duration(wav(16000), "wav") == Decimal("1.000")
    assert measured_duration(wav(22050, rate=44100, channels=2), "wav") == Decimal("0.500")
    assert measured_duration(wav(8001, rate=8000, width=1), "wav") == Decimal("1.000")  # 1.000125 s
    assert measured_duration(wav(12, rate=8000), "wav") == Decimal("0.002")  # 1.5 ms rounds half up


def test_wav_chunks_before_data_and_a_streamed_size_are_read() -> None:
    data = wav(8000)
    listed = data[:36] + b"LIST" + (5).to_bytes(4, "little") + b"INFOx\x00" + data[36:]  # odd size, padded
    assert measured_duration(listed, None) == Decimal("0.500")
    streamed = data[:40] + b"\xff\xff\xff\xff" + data[44:]  # a streamed WAV does not know its length
    assert measured_duration(streamed, "wav") == Decimal("0.500")


def test_headerless_pcm_is_16khz_16bit_mono() -> None:
    assert measured_duration(bytes(48000), "pcm") == Decimal("1.500")


def frame(header: bytes, length: int) -> bytes:
    return header + bytes(length - 4)


def test_mp3_length_is_the_sum_of_its_frames() -> None:
    mpeg1 = frame(b"\xff\xfb\x90\xc0", 417)  # 128 kbit/s, 44.1 kHz: 1152 samples
    assert mp3_duration(mpeg1 * 100) == Decimal(115200) / 44100
    mpeg2 = frame(b"\xff\xf3\x84\xc0", 192)  # MPEG-2, 64 kbit/s, 24 kHz: 72 * 64000 / 24000 = 192 bytes, 576 samples
    assert measured_duration(mpeg2 * 250, "mp3") == Decimal("6.000")
    tagged = b"ID3\x04\x00\x00\x00\x00\x00\x0a" + bytes(10) + mpeg2 * 25
    assert measured_duration(tagged, "mp3") == Decimal("0.600")
    assert measured_duration(bytes(1000), "mp3") is None  # no frames: not measurable


@pytest.mark.parametrize(
    ("fmt", "head", "ok"),
    [
        ("pcm", b"\x01", False),
        ("pcm", b"\x01\x02", True),
        ("wav", wav(1)[:44], False),  # a header without a sample
        ("wav", wav(1), True),
        ("mp3", b"\xff\xfb\x90\xc0" + bytes(400), False),  # a frame not yet whole
        ("mp3", b"\xff\xfb\x90\xc0" + bytes(413), True),
        ("mp3", bytes(9000) + b"\xff\xfb\x90\xc0" + bytes(413), False),  # junk first is not MP3
        ("opus", b"O", True),
    ],
)
def test_usable_audio(fmt: str, head: bytes, ok: bool) -> None:
    assert usable(fmt, head) is ok


def test_an_uploads_format_comes_from_its_name_then_its_type() -> None:
    assert upload_format("Talk.MP3", "audio/wav") == "mp3"
    assert upload_format("blob", "audio/x-wav; codecs=1") == "wav"
    assert upload_format("notes.txt", "text/plain") is None


def test_form_fields_with_names_beyond_latin1_are_read_not_a_server_error():
    """Header values are bytes on the wire: a field named in UTF-8 (any character) is read as such."""
    body = (
        b'--b\r\nContent-Disposition: form-data; name="\xf0\xa9\x9a\x93 r\xc3\xa9sum\xc3\xa9"\r\n\r\n[]\r\n'
        b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nsandbox/transcribe\r\n--b--\r\n'
    )
    parts = form.parts(body, "multipart/form-data; boundary=b")
    assert [(p.name, p.data) for p in parts] == [("\U00029693 résumé", b"[]"), ("model", b"sandbox/transcribe")]
