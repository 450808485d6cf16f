"""POST /audio/transcriptions end to end: the official `openai` SDK's multipart upload in every
response_format, the `openrouter` SDK's JSON (base64) and multipart methods, the sandbox (which hears
its own speech back), OpenAI-compatible upstreams (fakes on loopback), fallbacks, money exact per
second (Decimal; /generation agrees), the upload limit (413), wrong content types and bad input
refused with nothing recorded."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import httpx
import openai
import pytest
from openrouter import OpenRouter, errors

from omnirouter.providers.audio import form, sandbox
from omnirouter.providers.audio.formats import measured_duration
from omnirouter.testing.fakes.audio import FakeOpenAIAudio, Transcription
from omnirouter.testing.fakes.core import Reset, Status
from tests.gateway import Gateway, generation, key_usage
from tests.sdk_ts_run import run_steps
from tests.spec_validation import spec_available, validate_response
from tests.test_speech import AUDIO_KEY, ORDER_AB, SANDBOX_SECOND, start_gateway

LIMIT = 200_000  # transcription_max_bytes of this module's gateway
TEXT = "Offline speech, heard back."
CLIP = sandbox.speech_bytes(TEXT, "alloy", "wav")  # 27 characters x 60 ms = 1.62 s at 24 kHz
CLIP_SECONDS = Decimal("1.62")


@pytest.fixture(scope="module")
def fake_a() -> Iterator[Any]:
    handle = FakeOpenAIAudio.run_in_thread(api_key=AUDIO_KEY)
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def fake_b() -> Iterator[Any]:
    handle = FakeOpenAIAudio.run_in_thread()
    yield handle
    handle.stop()


@pytest.fixture(autouse=True)
def _fresh_fakes(request: pytest.FixtureRequest) -> None:
    for name in ("fake_a", "fake_b"):
        if name in request.fixturenames:
            request.getfixturevalue(name).reset()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fake_a: Any, fake_b: Any) -> Iterator[Gateway]:
    gateway = start_gateway(
        tmp_path_factory.mktemp("stt"), fake_a.base_url, fake_b.base_url, transcription_max_bytes=LIMIT
    )
    yield gateway
    gateway.stop()


@pytest.fixture
def key(gw: Gateway) -> str:
    return gw.create_key(name="stt")["key"]


def upload(gw: Gateway, key: str, fields: dict[str, Any], file: tuple[str, bytes, str] | None) -> httpx.Response:
    """A multipart form (even without a file): the fields as parts, lists repeated, then the file."""
    parts: list[tuple[str, Any]] = [
        (k, (None, x)) for k, v in fields.items() for x in (v if isinstance(v, list) else [v])
    ]
    if file is not None:
        parts.append(("file", file))
    return httpx.post(gw.api + "/audio/transcriptions", files=parts, headers={"Authorization": f"Bearer {key}"},
                      timeout=30)  # fmt: skip


def exact(r: httpx.Response) -> dict[str, Any]:
    return json.loads(r.text, parse_float=Decimal)


def checked(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    if spec_available():
        validate_response("createAudioTranscriptions", r.json())
    return exact(r)


# -- the sandbox, through the official SDKs --------------------------------------------------------


def test_openai_sdk_json_hears_the_sandbox_speech_back_priced_per_second(gw: Gateway, key: str) -> None:
    client = openai.OpenAI(api_key=key, base_url=gw.api)
    raw = client.audio.transcriptions.with_raw_response.create(
        model="sandbox/transcribe", file=("clip.wav", CLIP, "audio/wav")
    )
    assert raw.parse().text == TEXT
    body = json.loads(raw.text, parse_float=Decimal)
    if spec_available():
        validate_response("createAudioTranscriptions", json.loads(raw.text))
    assert body["usage"] == {"seconds": CLIP_SECONDS, "cost": CLIP_SECONDS * SANDBOX_SECOND}
    row = generation(gw, key, raw.headers["x-generation-id"])
    assert row["total_cost"] == Decimal("0.000162") and row["api_type"] == "stt"
    assert key_usage(gw, key) == Decimal("0.000162")


def test_openai_sdk_verbose_json_has_segments_and_words(gw: Gateway, key: str) -> None:
    client = openai.OpenAI(api_key=key, base_url=gw.api)
    text = "First sentence here. And a second one!"
    clip = sandbox.speech_bytes(text, None, "wav")
    result = client.audio.transcriptions.create(
        model="sandbox/transcribe", file=("two.wav", clip), response_format="verbose_json",
        timestamp_granularities=["word", "segment"], language="en",
    )  # fmt: skip
    assert result.text == text and result.language == "en"
    assert Decimal(str(result.duration)) == measured_duration(clip, "wav") == Decimal("2.280")
    assert [s.text for s in result.segments or []] == ["First sentence here.", "And a second one!"]
    assert result.segments and result.segments[0].start == 0 and result.segments[-1].end == result.duration
    assert [w.word for w in result.words or []] == text.split()
    assert result.words and result.words[-1].end == result.duration


def test_openai_sdk_text_srt_and_vtt(gw: Gateway, key: str) -> None:
    client = openai.OpenAI(api_key=key, base_url=gw.api)
    file = ("clip.wav", CLIP, "audio/wav")
    text = client.audio.transcriptions.create(model="sandbox/transcribe", file=file, response_format="text")
    assert text.strip() == TEXT
    srt = client.audio.transcriptions.create(model="sandbox/transcribe", file=file, response_format="srt")
    assert srt == f"1\n00:00:00,000 --> 00:00:01,620\n{TEXT}\n\n"
    vtt = client.audio.transcriptions.create(model="sandbox/transcribe", file=file, response_format="vtt")
    assert vtt == f"WEBVTT\n\n00:00:00.000 --> 00:00:01.620\n{TEXT}\n\n"
    r = upload(gw, key, {"model": "sandbox/transcribe", "response_format": "srt"}, file)
    assert r.headers["content-type"].startswith("application/x-subrip") and r.headers["x-generation-id"]
    r = upload(gw, key, {"model": "sandbox/transcribe", "response_format": "vtt"}, file)
    assert r.headers["content-type"].startswith("text/vtt")
    r = upload(gw, key, {"model": "sandbox/transcribe", "response_format": "text"}, file)
    assert r.headers["content-type"].startswith("text/plain")
    assert generation(gw, key, r.headers["x-generation-id"])["total_cost"] == CLIP_SECONDS * SANDBOX_SECOND


def test_openrouter_sdk_json_body_with_base64_audio(gw: Gateway, key: str) -> None:
    with OpenRouter(api_key=key, server_url=gw.api) as client:
        res = client.stt.create_transcription(
            model="sandbox/transcribe", input_audio={"data": base64.b64encode(CLIP).decode(), "format": "wav"}
        )
    assert res.text == TEXT
    assert res.usage is not None and res.usage.seconds == 1.62 and res.usage.cost == 0.000162


def test_openrouter_sdk_multipart(gw: Gateway, key: str) -> None:
    mp3 = sandbox.speech_bytes("An mp3 round trip.", None, "mp3")
    with OpenRouter(api_key=key, server_url=gw.api) as client:
        res = client.stt.create_transcription_multipart(
            model="sandbox/transcribe", file={"file_name": "speech.mp3", "content": mp3, "content_type": "audio/mpeg"},
            response_format="verbose_json", timestamp_granularities=["word"],
        )  # fmt: skip
    assert res.text == "An mp3 round trip."
    seconds = measured_duration(mp3, "mp3")
    assert seconds is not None and res.duration == float(seconds) and res.words and len(res.words) == 4
    assert res.usage is not None and Decimal(str(res.usage.cost)) == seconds * SANDBOX_SECOND


def test_speech_then_transcription_round_trips_through_the_gateway(gw: Gateway, key: str) -> None:
    said = "Round trips are deterministic."
    audio = httpx.post(gw.api + "/audio/speech", headers={"Authorization": f"Bearer {key}"},
                       json={"model": "sandbox/speech", "input": said, "response_format": "wav"}).content  # fmt: skip
    r = upload(gw, key, {"model": "sandbox/transcribe"}, ("said.wav", audio, "audio/wav"))
    assert checked(r)["text"] == said


def test_other_audio_is_heard_as_the_fixed_sentence_timed_by_its_size(gw: Gateway, key: str) -> None:
    r = upload(gw, key, {"model": "sandbox/transcribe"}, ("noise.ogg", b"OggS" + bytes(15996), "audio/ogg"))
    body = checked(r)
    assert body["text"] == sandbox.FIXED_SENTENCE
    assert body["usage"]["seconds"] == 1  # 16000 bytes read as 128 kbit/s


# -- OpenAI-compatible upstreams -------------------------------------------------------------------


def test_the_upload_goes_upstream_as_openais_multipart(gw: Gateway, key: str, fake_a: Any) -> None:
    r = upload(gw, key, {"model": "test/whisper", "language": "en", "prompt": "Names: Ada.", "temperature": "0.2",
                         "provider": json.dumps(ORDER_AB)}, ("clip.wav", CLIP, "audio/wav"))  # fmt: skip
    body = checked(r)
    assert body["text"] == TEXT
    assert body["usage"] == {"seconds": CLIP_SECONDS, "cost": CLIP_SECONDS * Decimal("0.0001")}  # measured
    sent = fake_a.requests[-1]
    assert sent.path == "/v1/audio/transcriptions" and sent.headers["Authorization"] == f"Bearer {AUDIO_KEY}"
    parts = {p.name: p for p in form.parts(sent.body, sent.headers["Content-Type"])}
    assert {n: p.data.decode() for n, p in parts.items() if n != "file"} == {
        "model": "whisper-1", "response_format": "json", "language": "en", "prompt": "Names: Ada.",
        "temperature": "0.2",
    }  # fmt: skip
    assert parts["file"].data == CLIP and parts["file"].filename == "clip.wav"
    assert parts["file"].media_type == "audio/wav"


def test_audio_it_cannot_measure_is_billed_by_the_upstreams_duration(gw: Gateway, key: str, fake_a: Any) -> None:
    fake_a.script(Transcription(text="From an m4a.", duration=3.25))
    r = upload(gw, key, {"model": "test/whisper", "provider": json.dumps(ORDER_AB)},
               ("voice.m4a", b"\x00\x00\x00\x20ftypM4A " + bytes(500), "audio/mp4"))  # fmt: skip
    body = checked(r)
    assert body == {"text": "From an m4a.", "usage": {"seconds": Decimal("3.25"), "cost": Decimal("0.000325")}}
    parts = {p.name: p.data for p in form.parts(fake_a.requests[-1].body, fake_a.requests[-1].headers["Content-Type"])}
    assert parts["response_format"] == b"verbose_json"  # asked for what carries the duration
    assert generation(gw, key, r.headers["x-generation-id"])["total_cost"] == Decimal("0.000325")


def test_verbose_json_srt_from_upstream_segments(gw: Gateway, key: str, fake_a: Any) -> None:
    segments = [{"id": 0, "start": 0.0, "end": 0.9, "text": " Hello."}, {"id": 1, "start": 0.9, "end": 1.62,
                                                                         "text": " Again."}]  # fmt: skip
    fake_a.script(Transcription(text="Hello. Again.", segments=segments), Transcription(text="Hello. Again.",
                                                                                        segments=segments))  # fmt: skip
    fields = {"model": "test/whisper", "provider": json.dumps(ORDER_AB), "response_format": "srt"}
    r = upload(gw, key, fields, ("clip.wav", CLIP, "audio/wav"))
    assert r.text == "1\n00:00:00,000 --> 00:00:00,900\nHello.\n\n2\n00:00:00,900 --> 00:00:01,620\nAgain.\n\n"
    fields["response_format"] = "verbose_json"
    fields["timestamp_granularities[]"] = ["word", "segment"]
    body = checked(upload(gw, key, fields, ("clip.wav", CLIP, "audio/wav")))
    assert body["segments"][1]["text"] == " Again." and body["language"] == "english"
    assert body["duration"] == CLIP_SECONDS and [w["word"] for w in body["words"]] == ["Hello.", "Again."]
    sent = form.parts(fake_a.requests[-1].body, fake_a.requests[-1].headers["Content-Type"])
    assert [p.data for p in sent if p.name == "timestamp_granularities[]"] == [b"word", b"segment"]


@pytest.mark.parametrize("failure", [Status(503), Status(429), Reset()])
def test_a_failing_upstream_falls_back_at_the_next_ones_price(gw: Gateway, key: str, fake_a: Any, fake_b: Any,
                                                              failure: Any) -> None:  # fmt: skip
    fake_a.script(failure)
    r = upload(gw, key, {"model": "test/whisper", "provider": json.dumps(ORDER_AB)}, ("clip.wav", CLIP, "audio/wav"))
    body = checked(r)
    assert body["text"] == TEXT and len(fake_b.requests) == 1
    assert "Authorization" not in fake_b.requests[-1].headers
    parts = {p.name: p.data for p in form.parts(fake_b.requests[-1].body, fake_b.requests[-1].headers["Content-Type"])}
    assert parts["model"] == b"Systran/faster-whisper-small"
    assert body["usage"]["cost"] == CLIP_SECONDS * Decimal("0.00025")
    row = generation(gw, key, r.headers["x-generation-id"])
    assert row["provider_name"] == "Audio B (local)" and row["total_cost"] == Decimal("0.000405")


def test_json_body_goes_upstream_as_a_file(gw: Gateway, key: str, fake_a: Any) -> None:
    r = httpx.post(gw.api + "/audio/transcriptions", headers={"Authorization": f"Bearer {key}"}, json={
        "model": "test/whisper", "input_audio": {"data": base64.b64encode(CLIP).decode(), "format": "wav"},
        "provider": {"only": ["audio-a"]},
    })  # fmt: skip
    assert checked(r)["text"] == TEXT
    file = next(p for p in form.parts(fake_a.requests[-1].body, fake_a.requests[-1].headers["Content-Type"])
                if p.name == "file")  # fmt: skip
    assert file.data == CLIP and file.filename == "audio.wav"


# -- limits, content types, bad input: a clear 4xx and nothing recorded ----------------------------


def big_wav(size: int) -> bytes:
    return sandbox.speech_bytes("x" * (size // 2880 + 1), None, "wav")[:size]


def test_an_oversized_upload_is_413(gw: Gateway, fake_a: Any) -> None:
    key = gw.create_key(name="stt big")["key"]
    r = upload(gw, key, {"model": "test/whisper"}, ("big.wav", big_wav(LIMIT + 1), "audio/wav"))
    assert r.status_code == 413 and f"the limit is {LIMIT} bytes" in r.json()["error"]["message"]
    data = base64.b64encode(big_wav(LIMIT + 1)).decode()
    with OpenRouter(api_key=key, server_url=gw.api) as client, pytest.raises(errors.PayloadTooLargeResponseError):
        client.stt.create_transcription(model="test/whisper", input_audio={"data": data, "format": "wav"})
    # More than the body may hold (the audio as base64 and the form's fields): refused while reading it
    huge = upload(gw, key, {"model": "test/whisper"}, ("huge.wav", bytes(LIMIT * 4 // 3 + (1 << 20)), "audio/wav"))
    assert huge.status_code == 413 and "byte limit" in huge.json()["error"]["message"]
    assert len(fake_a.requests) == 0 and key_usage(gw, key) == 0
    r = upload(gw, key, {"model": "sandbox/transcribe"}, ("limit.wav", big_wav(LIMIT), "audio/wav"))
    assert r.status_code == 200  # at the limit is allowed


@pytest.mark.parametrize(
    ("content_type", "body", "status", "says"),
    [
        ("text/plain", b"hello", 415, "multipart/form-data"),
        ("application/x-www-form-urlencoded", b"model=sandbox%2Ftranscribe", 415, "multipart/form-data"),
        ("multipart/form-data", b"--x\r\n", 400, "boundary"),
        ("multipart/form-data; boundary=xyz", b"--xyz\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm",
         400, "multipart"),
        ("application/json", b"{", 400, "not valid JSON"),
    ],
)  # fmt: skip
def test_wrong_content_types_are_refused(gw: Gateway, content_type: str, body: bytes, status: int, says: str) -> None:
    key = gw.create_key(name="stt content type")["key"]
    r = httpx.post(gw.api + "/audio/transcriptions", content=body,
                   headers={"Authorization": f"Bearer {key}", "Content-Type": content_type})  # fmt: skip
    assert r.status_code == status and says in r.json()["error"]["message"], r.text
    assert key_usage(gw, key) == 0


B64 = base64.b64encode(CLIP).decode()


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"model": "sandbox/transcribe"}, "input_audio is required"),
        ({"model": "sandbox/transcribe", "input_audio": {"data": "", "format": "wav"}}, "non-empty base64"),
        ({"model": "sandbox/transcribe", "input_audio": {"data": "%%%", "format": "wav"}}, "not valid base64"),
        ({"model": "sandbox/transcribe", "input_audio": {"data": B64, "format": "exe"}}, "input_audio.format"),
        ({"model": "sandbox/transcribe", "input_audio": {"data": "data:audio/wav;base64," + B64, "format": "wav"}},
         "not a data: URI"),
        ({"model": "sandbox/transcribe", "input_audio": {"url": "https://x/a.wav"}}, "url is not supported"),
        ({"model": "sandbox/transcribe", "input_audio": {"data": B64, "format": "wav"}, "response_format": "xml"},
         "response_format must be one of"),
        ({"model": "sandbox/transcribe", "input_audio": {"data": B64, "format": "wav"}, "temperature": 3},
         "temperature"),
        ({"model": "sandbox/transcribe", "input_audio": {"data": B64, "format": "wav"},
          "timestamp_granularities": ["char"]}, "timestamp_granularities"),
        ({"model": "sandbox/transcribe", "input_audio": {"data": B64, "format": "wav"}, "diarize": True}, "diarize"),
        ({"model": "sandbox/speech", "input_audio": {"data": B64, "format": "wav"}}, "does not support transcriptions"),
        ({"model": "test/nope", "input_audio": {"data": B64, "format": "wav"}}, "test/nope"),
        ({"input_audio": {"data": B64, "format": "wav"}}, "model is required"),
    ],
)  # fmt: skip
def test_bad_json_input_is_400_with_nothing_recorded(gw: Gateway, body: dict[str, Any], says: str) -> None:
    key = gw.create_key(name="stt bad json")["key"]
    r = httpx.post(gw.api + "/audio/transcriptions", json=body, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 400 and says in r.json()["error"]["message"], r.text
    if spec_available():
        validate_response("createAudioTranscriptions", r.json(), "400")
    assert key_usage(gw, key) == 0


@pytest.mark.parametrize(
    ("fields", "file", "says"),
    [
        ({"model": "sandbox/transcribe"}, None, "file is required"),
        ({"model": "sandbox/transcribe"}, ("empty.wav", b"", "audio/wav"), "empty"),
        ({"model": "sandbox/transcribe"}, ("notes.txt", b"just text", "text/plain"), "audio format is not known"),
        ({"model": "sandbox/transcribe", "response_format": "xml"}, ("a.wav", CLIP, "audio/wav"), "response_format"),
        ({"model": "sandbox/transcribe", "provider": "{"}, ("a.wav", CLIP, "audio/wav"), "provider must be JSON"),
        ({"model": "sandbox/transcribe", "source_url": "https://x/a.wav"}, None, "source_url"),
        ({}, ("a.wav", CLIP, "audio/wav"), "model is required"),
    ],
)
def test_bad_form_input_is_400_with_nothing_recorded(gw: Gateway, fields: dict[str, Any], file: Any, says: str) -> None:
    key = gw.create_key(name="stt bad form")["key"]
    r = upload(gw, key, fields, file)
    assert r.status_code == 400 and says in r.json()["error"]["message"], r.text
    assert key_usage(gw, key) == 0


def test_an_upstream_refusal_is_returned_and_not_billed(gw: Gateway, fake_a: Any, fake_b: Any) -> None:
    key = gw.create_key(name="stt refused")["key"]
    fake_a.script(Status(400, {"error": {"message": "Audio file might be corrupted", "type": "invalid_request_error"}}))
    r = upload(gw, key, {"model": "test/whisper", "provider": json.dumps(ORDER_AB)}, ("a.wav", CLIP, "audio/wav"))
    assert r.status_code == 400 and "corrupted" in r.json()["error"]["message"]
    assert len(fake_b.requests) == 0 and key_usage(gw, key) == 0


# -- the official SDKs' conformance checks (collected by tests/test_sdk_conformance.py)


def stt_create_transcription(ctx: Any) -> None:
    clip = sandbox.speech_bytes("Conformance, base64.", None, "wav")
    res = ctx.sdk.stt.create_transcription(
        model="sandbox/transcribe", input_audio={"data": base64.b64encode(clip).decode(), "format": "wav"}
    )
    assert res.text == "Conformance, base64."
    assert res.usage is not None and res.usage.seconds == 1.2 and Decimal(str(res.usage.cost)) == Decimal("0.00012")


def stt_create_transcription_multipart(ctx: Any) -> None:
    clip = sandbox.speech_bytes("Conformance, uploaded.", None, "wav")
    res = ctx.sdk.stt.create_transcription_multipart(
        model="sandbox/transcribe", file={"file_name": "clip.wav", "content": clip}, response_format="verbose_json"
    )
    assert res.text == "Conformance, uploaded." and res.task == "transcribe" and res.duration == 1.32
    assert res.segments and res.segments[0].text == "Conformance, uploaded."


# For tests/test_schemathesis.py: made-up bytes under a made-up file name are no audio it can name, and
# a made-up string is seldom base64.
SEMANTIC_REFUSALS = {
    ("/audio/transcriptions", "post"): lambda error: any(
        text in error["message"] for text in ("The audio format is not known", "is not valid base64", "is empty")
    ),
}

CONFORMANCE = {
    "stt.createTranscription": stt_create_transcription,
    "stt.createTranscriptionMultipart": stt_create_transcription_multipart,
}


def test_the_conformance_checks_pass(gw: Gateway, key: str) -> None:
    """What tests/test_sdk_conformance.py runs, here against this module's gateway."""
    with OpenRouter(api_key=key, server_url=gw.api) as sdk:
        for check in CONFORMANCE.values():
            check(SimpleNamespace(sdk=sdk, gw=gw, key=key))


# -- @openrouter/sdk (node): tests/sdk_ts/audio.mjs, speech and transcription, one JSON line per check


def test_typescript_sdk(gw: Gateway, key: str) -> None:
    results = run_steps("audio.mjs", {"serverURL": gw.api, "apiKey": key, "maxBytes": LIMIT})
    expected = ["tts.createSpeech", "stt.createTranscription", "stt.createTranscriptionMultipart", "errors"]
    assert sorted(results) == sorted(expected), results
    failed = {op: r["error"] for op, r in results.items() if not r["ok"]}
    assert not failed, failed
