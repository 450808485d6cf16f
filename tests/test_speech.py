"""POST /audio/speech end to end: the official `openai` SDK (streaming), the `openrouter` SDK's typed
method, the sandbox's tone, OpenAI-compatible upstreams (fakes on loopback), fallbacks before the first
usable audio and none after it, billing per input character exactly (Decimal; /generation agrees),
client cancels still billed, and bad input refused with nothing recorded."""

from __future__ import annotations

import io
import os
import wave
from collections.abc import Iterator
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import httpx
import openai
import pytest
from openrouter import OpenRouter

from omnirouter.providers.audio import sandbox
from omnirouter.providers.audio.formats import mp3_duration
from omnirouter.testing.fakes.audio import Audio, FakeOpenAIAudio
from omnirouter.testing.fakes.core import Delay, Status
from tests.gateway import Gateway, generation, key_usage
from tests.spec_validation import spec_available, validate_response

AUDIO_KEY = "sk-audio-test-7731"
AUDIO_KEY_ENV = "OMNI_TEST_AUDIO_KEY"
SANDBOX_CHARACTER = Decimal("0.000015")  # sandbox/speech's price per character (catalog/loader.py)
SANDBOX_SECOND = Decimal("0.0001")  # sandbox/transcribe's price per second
A_PRICES = {"character": "0.00001"}
B_PRICES = {"character": "0.00003", "request": "0.0002"}
WHISPER_A = {"audio_second": "0.0001"}
WHISPER_B = {"audio_second": "0.00025"}
ORDER_AB = {"order": ["audio-a", "audio-b"], "allow_fallbacks": True}


def audio_config(a: str, b: str) -> dict[str, Any]:
    """Two OpenAI-compatible audio upstreams (a keyed one, a local Whisper-like one without a key),
    a speech model and a transcription model on both, and a chat model that does neither."""
    tts = {"input_modalities": ["text"], "output_modalities": ["audio"]}
    stt = {"input_modalities": ["audio"], "output_modalities": ["text"]}
    return {
        "providers": [
            {"slug": "audio-a", "name": "Audio A", "api": "openai", "base_url": a, "api_key_env": AUDIO_KEY_ENV},
            {"slug": "audio-b", "name": "Audio B (local)", "api": "openai", "base_url": b},
        ],
        "models": [
            {
                "id": "test/tts",
                "name": "Test TTS",
                "architecture": tts,
                "endpoints": [
                    {"provider": "audio-a", "upstream_model": "tts-1", "pricing": A_PRICES},
                    {"provider": "audio-b", "upstream_model": "kokoro", "pricing": B_PRICES},
                ],
            },
            {
                "id": "test/whisper",
                "name": "Test Whisper",
                "architecture": stt,
                "endpoints": [
                    {"provider": "audio-a", "upstream_model": "whisper-1", "pricing": WHISPER_A},
                    {"provider": "audio-b", "upstream_model": "Systran/faster-whisper-small", "pricing": WHISPER_B},
                ],
            },
            {
                "id": "test/chat",
                "name": "Chat only",
                "endpoints": [{"provider": "audio-a", "upstream_model": "chat", "pricing": {"prompt": "0.000001"}}],
            },
        ],
    }


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


def start_gateway(tmp: Any, a: str, b: str, **settings: Any) -> Gateway:
    os.environ[AUDIO_KEY_ENV] = AUDIO_KEY
    try:
        return Gateway(tmp, audio_config(a, b), sandbox=True, **settings).start()
    finally:
        os.environ.pop(AUDIO_KEY_ENV, None)


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fake_a: Any, fake_b: Any) -> Iterator[Gateway]:
    gateway = start_gateway(tmp_path_factory.mktemp("speech"), fake_a.base_url, fake_b.base_url)
    yield gateway
    gateway.stop()


@pytest.fixture
def key(gw: Gateway) -> str:
    return gw.create_key(name="speech")["key"]


def speak(gw: Gateway, key: str, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(gw.api + "/audio/speech", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30,
                      **kwargs)  # fmt: skip


def wav_frames(data: bytes) -> tuple[int, int]:
    with wave.open(io.BytesIO(data)) as w:
        return w.getframerate(), w.getnframes()


# -- the sandbox, through the official SDKs --------------------------------------------------------


def test_openai_sdk_streams_the_sandbox_tone_as_wav(gw: Gateway, key: str) -> None:
    text = "Hello from the sandbox."
    client = openai.OpenAI(api_key=key, base_url=gw.api)
    with client.audio.speech.with_streaming_response.create(
        model="sandbox/speech", voice="alloy", input=text, response_format="wav"
    ) as resp:
        assert resp.headers["content-type"] == "audio/wav"
        gen_id = resp.headers["x-generation-id"]
        pieces = list(resp.iter_bytes())
    data = b"".join(pieces)
    rate, frames = wav_frames(data)
    assert (rate, frames) == (24000, int(len(text) * Decimal("0.06") * rate))  # 60 ms per character
    assert sandbox.heard(data, "wav") == text  # the text rides in the samples' low bits
    row = generation(gw, key, gen_id)
    assert row["total_cost"] == len(text) * SANDBOX_CHARACTER == Decimal("0.000345")
    assert row["api_type"] == "tts" and row["model"] == "sandbox/speech"
    assert key_usage(gw, key) == Decimal("0.000345")


def test_the_default_format_is_pcm_and_the_openrouter_sdk_reads_it(gw: Gateway, key: str) -> None:
    with OpenRouter(api_key=key, server_url=gw.api) as client:
        resp = client.tts.create_speech(model="sandbox/speech", input="Four", voice="nova")
        data = resp.read()
        assert resp.headers["content-type"] == "audio/pcm"
    # 16-bit samples at 24 kHz, at least a quarter second: 4 characters x 60 ms is less
    assert len(data) == int(Decimal("0.25") * 24000) * 2
    assert sandbox.heard(data, "pcm") == "Four"


def test_mp3_is_whole_frames_after_a_tag_that_carries_the_text(gw: Gateway, key: str) -> None:
    text = "An mp3 of silence, and a tag."
    r = speak(gw, key, {"model": "sandbox/speech", "input": text, "response_format": "mp3", "speed": 2.0})
    assert r.status_code == 200 and r.headers["content-type"] == "audio/mpeg"
    assert r.content[:3] == b"ID3" and sandbox.heard(r.content, "mp3") == text
    duration = mp3_duration(r.content)
    assert duration is not None and abs(duration - len(text) * Decimal("0.03")) < Decimal("0.027")  # speed 2
    assert generation(gw, key, r.headers["x-generation-id"])["total_cost"] == len(text) * SANDBOX_CHARACTER


def test_turns_are_spoken_in_order_and_billed_for_every_character(gw: Gateway, key: str) -> None:
    turns = [{"text": "First turn."}, {"text": "Second one.", "voice": "echo"}]
    r = speak(gw, key, {"model": "sandbox/speech", "input": turns, "response_format": "wav"})
    assert r.status_code == 200
    assert sandbox.heard(r.content, "wav") == "First turn.\nSecond one."
    assert generation(gw, key, r.headers["x-generation-id"])["total_cost"] == 23 * SANDBOX_CHARACTER


# -- OpenAI-compatible upstreams -------------------------------------------------------------------


def test_the_upstream_is_asked_in_openais_form_and_its_bytes_relayed(gw: Gateway, key: str, fake_a: Any) -> None:
    body = b"ID3" + bytes(7) + b"\xff\xfb\x90\xc0" + bytes(413)  # an empty tag, then one MP3 frame
    fake_a.script(Audio(body=body * 3, chunk_size=100))
    r = speak(gw, key, {"model": "test/tts", "input": "Say it.", "voice": "shimmer", "response_format": "mp3",
                        "speed": 1.5, "instructions": "calmly", "provider": ORDER_AB})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "audio/mpeg" and r.content == body * 3
    sent = fake_a.requests[-1]
    assert sent.path == "/v1/audio/speech" and sent.headers["Authorization"] == f"Bearer {AUDIO_KEY}"
    assert sent.json == {"model": "tts-1", "input": "Say it.", "voice": "shimmer", "response_format": "mp3",
                         "speed": 1.5, "instructions": "calmly"}  # fmt: skip
    row = generation(gw, key, r.headers["x-generation-id"])
    assert row["total_cost"] == 7 * Decimal("0.00001") and row["provider_name"] == "Audio A"


def test_a_voice_is_always_sent_upstream(gw: Gateway, key: str, fake_a: Any) -> None:
    r = speak(gw, key, {"model": "test/tts", "input": "No voice given.", "provider": ORDER_AB})
    assert r.status_code == 200 and r.headers["content-type"] == "audio/pcm"
    assert fake_a.requests[-1].json["voice"] == "alloy" and fake_a.requests[-1].json["response_format"] == "pcm"


def test_an_upstream_failing_before_any_audio_falls_back(gw: Gateway, key: str, fake_a: Any, fake_b: Any) -> None:
    fake_a.script(Status(503))
    text = "Falls back to B."
    r = speak(gw, key, {"model": "test/tts", "input": text, "response_format": "wav", "provider": ORDER_AB})
    assert r.status_code == 200, r.text
    assert sandbox.heard(r.content, "wav") == text
    assert len(fake_a.requests) == 1 and len(fake_b.requests) == 1
    assert "Authorization" not in fake_b.requests[-1].headers  # a local server without a key
    row = generation(gw, key, r.headers["x-generation-id"])
    assert row["provider_name"] == "Audio B (local)"
    assert row["total_cost"] == len(text) * Decimal("0.00003") + Decimal("0.0002")  # B's prices, per request too


def test_an_upstream_ending_before_usable_audio_falls_back(gw: Gateway, key: str, fake_a: Any, fake_b: Any) -> None:
    # A WAV header without one whole sample is no usable audio (behaviors §5): not billed, next endpoint.
    fake_a.script(Audio(body=sandbox.speech_bytes("x", None, "wav")[:45]))
    r = speak(gw, key, {"model": "test/tts", "input": "Usable?", "response_format": "wav", "provider": ORDER_AB})
    assert r.status_code == 200
    assert len(fake_b.requests) == 1
    assert generation(gw, key, r.headers["x-generation-id"])["provider_name"] == "Audio B (local)"


def test_a_json_answer_instead_of_audio_falls_back(gw: Gateway, key: str, fake_a: Any, fake_b: Any) -> None:
    # Some OpenAI-compatible servers answer an error with a 200 and a JSON body: that is not audio.
    fake_a.script(Audio(body=b'{"error": "model not loaded"}', content_type="application/json"))
    r = speak(gw, key, {"model": "test/tts", "input": "JSON is not audio.", "provider": ORDER_AB})
    assert r.status_code == 200 and len(fake_b.requests) == 1
    assert generation(gw, key, r.headers["x-generation-id"])["provider_name"] == "Audio B (local)"


def test_mp3_bytes_without_a_frame_are_no_usable_audio(gw: Gateway, key: str, fake_a: Any, fake_b: Any) -> None:
    fake_a.script(Audio(body=bytes(20000), chunk_size=1000))
    r = speak(gw, key, {"model": "test/tts", "input": "Zeros are not MP3.", "response_format": "mp3",
                        "provider": ORDER_AB})  # fmt: skip
    assert r.status_code == 200 and len(fake_b.requests) == 1


def test_no_usable_audio_anywhere_is_a_502_and_costs_nothing(gw: Gateway, fake_a: Any, fake_b: Any) -> None:
    key = gw.create_key(name="speech nothing")["key"]
    fake_a.script(Status(500))
    fake_b.script(Audio(body=b""))
    r = speak(gw, key, {"model": "test/tts", "input": "Nothing.", "provider": ORDER_AB})
    # Every endpoint failed: the attempt loop's answer for that (as for chat), nothing billed.
    assert r.status_code in (502, 503) and r.json()["error"]["code"] == r.status_code
    if spec_available():
        validate_response("createAudioSpeech", r.json(), str(r.status_code))
    assert key_usage(gw, key) == 0


def test_an_upstream_breaking_off_mid_audio_cuts_the_stream_and_is_billed(gw: Gateway, fake_a: Any,
                                                                          fake_b: Any) -> None:  # fmt: skip
    key = gw.create_key(name="speech cut")["key"]
    text = "This audio will be cut off in the middle."
    fake_a.script(Audio(reset_after=3, chunk_size=1000))
    got = bytearray()
    with pytest.raises(httpx.RemoteProtocolError), httpx.stream(
        "POST", gw.api + "/audio/speech", headers={"Authorization": f"Bearer {key}"}, timeout=30,
        json={"model": "test/tts", "input": text, "response_format": "wav", "provider": ORDER_AB},
    ) as r:  # fmt: skip
        assert r.status_code == 200
        gen_id = r.headers["x-generation-id"]
        for piece in r.iter_bytes():
            got += piece
    assert len(got) == 3000  # what arrived before the cut, and nothing from elsewhere
    assert len(fake_b.requests) == 0  # too late to fall back
    assert generation(gw, key, gen_id)["total_cost"] == len(text) * Decimal("0.00001")
    assert key_usage(gw, key) == len(text) * Decimal("0.00001")


def test_a_client_that_cancels_is_billed_in_full_and_the_upstream_is_dropped(gw: Gateway, fake_a: Any) -> None:
    key = gw.create_key(name="speech cancel")["key"]
    text = "A long answer the client stops listening to. " * 4
    fake_a.script(Audio(chunk_size=2000, chunk_delay=0.05))
    with httpx.stream(
        "POST", gw.api + "/audio/speech", headers={"Authorization": f"Bearer {key}"}, timeout=30,
        json={"model": "test/tts", "input": text, "response_format": "pcm", "provider": ORDER_AB},
    ) as r:  # fmt: skip
        assert r.status_code == 200
        gen_id = r.headers["x-generation-id"]
        first = next(r.iter_bytes())
        assert first
    fake_a.wait_for_disconnect(timeout=10)  # the gateway hung up on the upstream
    assert generation(gw, key, gen_id)["total_cost"] == len(text) * Decimal("0.00001")


def test_audio_is_relayed_as_it_arrives_not_buffered(gw: Gateway, key: str, fake_a: Any) -> None:
    # The upstream sends two pieces and then goes quiet: the client has them while it waits.
    fake_a.script(Audio(chunk_size=1000, stall_after=2, stall_seconds=30))
    got = bytearray()
    with httpx.stream(
        "POST", gw.api + "/audio/speech", headers={"Authorization": f"Bearer {key}"}, timeout=10,
        json={"model": "test/tts", "input": "Streamed through.", "response_format": "pcm", "provider": ORDER_AB},
    ) as r:  # fmt: skip
        for piece in r.iter_raw():
            got += piece
            if len(got) >= 2000:
                break
    assert len(got) == 2000
    fake_a.wait_for_disconnect(timeout=10)  # the client left: the stalled upstream was dropped


def test_a_slow_first_byte_is_a_timeout_that_falls_back(gw: Gateway, key: str, fake_a: Any, fake_b: Any) -> None:
    fake_a.script(Delay(0.3, Status(429)))
    r = speak(gw, key, {"model": "test/tts", "input": "Rate limited first.", "provider": ORDER_AB})
    assert r.status_code == 200 and len(fake_b.requests) == 1


def test_an_upstream_refusal_is_not_retried_elsewhere(gw: Gateway, key: str, fake_a: Any, fake_b: Any) -> None:
    fake_a.script(Status(400, {"error": {"message": "voice 'zz' is not supported", "type": "invalid_request_error"}}))
    r = speak(gw, key, {"model": "test/tts", "input": "Hi", "voice": "zz", "provider": ORDER_AB})
    assert r.status_code == 400 and "voice 'zz'" in r.json()["error"]["message"]
    assert len(fake_b.requests) == 0


# -- bad input: a clear 4xx, nothing recorded ------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"model": "sandbox/speech", "input": ""}, 400, "input is empty"),
        ({"model": "sandbox/speech", "input": "   "}, 400, "input is empty"),
        ({"model": "sandbox/speech"}, 400, "input is required"),
        ({"model": "sandbox/speech", "input": 42}, 400, "input is required"),
        ({"model": "sandbox/speech", "input": [{"voice": "x"}]}, 400, "each turn"),
        ({"model": "sandbox/speech", "input": "hi", "response_format": "ogg"}, 400, "response_format must be one of"),
        ({"model": "sandbox/speech", "input": "hi", "speed": 9}, 400, "speed must be"),
        ({"model": "sandbox/speech", "input": "hi", "voice": ""}, 400, "voice must be"),
        ({"model": "sandbox/speech", "input": "hi", "stream_format": "sse"}, 400, "stream_format"),
        ({"input": "hi"}, 400, "model is required"),
        ({"model": "test/nope", "input": "hi"}, 400, "test/nope"),
        ({"model": "test/chat", "input": "hi"}, 400, "does not support speech"),
        ({"model": "sandbox/transcribe", "input": "hi"}, 400, "does not support speech"),
        ([1, 2], 400, "JSON object"),
    ],
)
def test_bad_input_is_refused_with_nothing_recorded(gw: Gateway, body: Any, status: int, says: str) -> None:
    key = gw.create_key(name="speech bad input")["key"]
    r = speak(gw, key, body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == status and says in err["message"]
    if spec_available():
        validate_response("createAudioSpeech", r.json(), str(status))
    assert key_usage(gw, key) == 0


def test_a_body_that_is_not_json_is_refused(gw: Gateway, key: str) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    r = httpx.post(gw.api + "/audio/speech", content=b"model=x", headers={**headers, "Content-Type": "text/plain"})
    assert r.status_code == 415 and "application/json" in r.json()["error"]["message"]
    r = httpx.post(gw.api + "/audio/speech", content=b"{", headers={**headers, "Content-Type": "application/json"})
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]


def test_without_a_key_it_is_401(gw: Gateway) -> None:
    r = httpx.post(gw.api + "/audio/speech", json={"model": "sandbox/speech", "input": "hi"})
    assert r.status_code == 401
    if spec_available():
        validate_response("createAudioSpeech", r.json(), "401")


def test_a_key_over_its_limit_is_refused_before_anything_is_spoken(gw: Gateway, fake_a: Any) -> None:
    key = gw.create_key(name="speech poor", limit=0.0001)["key"]  # 10 characters at A's price
    r = speak(gw, key, {"model": "test/tts", "input": "x" * 11, "provider": {"only": ["audio-a"]}})
    assert r.status_code == 402, r.text
    assert len(fake_a.requests) == 0
    r = speak(gw, key, {"model": "test/tts", "input": "x" * 10, "provider": {"only": ["audio-a"]}})
    assert r.status_code == 200
    assert key_usage(gw, key) == Decimal("0.0001")


def test_the_sandbox_refuses_formats_it_cannot_encode(gw: Gateway) -> None:
    key = gw.create_key(name="speech opus")["key"]
    r = speak(gw, key, {"model": "sandbox/speech", "input": "Opus, please.", "response_format": "opus"})
    assert r.status_code == 400 and "pcm, wav and mp3" in r.json()["error"]["message"]
    assert key_usage(gw, key) == 0


# -- the official SDKs' conformance checks (collected by tests/test_sdk_conformance.py)


def tts_create_speech(ctx: Any) -> None:
    text = "Conformance speech."
    resp = ctx.sdk.tts.create_speech(model="sandbox/speech", input=text, voice="alloy", response_format="mp3")
    data = resp.read()
    assert resp.status_code == 200 and resp.headers["content-type"] == "audio/mpeg"
    assert resp.headers["x-generation-id"].startswith("gen-")
    assert sandbox.heard(data, "mp3") == text


# For tests/test_schemathesis.py: a text of spaces only is no schema's business, and nothing to speak.
SEMANTIC_REFUSALS = {("/audio/speech", "post"): lambda error: "there is nothing to speak" in error["message"]}

CONFORMANCE = {"tts.createSpeech": tts_create_speech}


def test_the_conformance_checks_pass(gw: Gateway, key: str) -> None:
    """What tests/test_sdk_conformance.py runs, here against this module's gateway."""
    with OpenRouter(api_key=key, server_url=gw.api) as sdk:
        for check in CONFORMANCE.values():
            check(SimpleNamespace(sdk=sdk, gw=gw, key=key))
