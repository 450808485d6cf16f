"""The Python client's inference, modality and catalog methods (omnirouter.client), through the sync
client and the async one alike, against one gateway on loopback: fake OpenAI-compatible upstreams for
the chat formats (so faults can be scripted mid-stream) and the sandbox's model of every other
operation. Results are the server's own Structs; money is Decimal and exact; errors are the APIError
subclass of their status, raised before a stream or inside it (`in_stream`)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from omnirouter.api import messages_schemas as ms
from omnirouter.api import schemas as s
from omnirouter.catalog.loader import SANDBOX_MODALITIES
from omnirouter.client import Binary
from omnirouter.client import errors as e
from omnirouter.files.schemas import OpenAIFile, OpenRouterFile, OpenRouterFileDeleted, OpenRouterFileList
from omnirouter.formats import responses_schemas as rs
from omnirouter.modalities.embeddings import EmbeddingsResponse
from omnirouter.modalities.images import (
    ImageGenerationResponse,
    ImageModelEndpointsResponse,
    ImageModelsListResponse,
    OpenAIImagesResponse,
)
from omnirouter.modalities.rerank import RerankResponse
from omnirouter.modalities.transcriptions import STTResponse
from omnirouter.testing import Reply, Stream
from omnirouter.videos.schemas import VideoGenerationResponse, VideoModelsListResponse
from tests.client_both import KINDS, both
from tests.conftest import ALPHA_PRICES, standard_config
from tests.gateway import Gateway
from tests.test_videos import FAST, boxes, movie_seconds

HELLO = [{"role": "user", "content": "hello there"}]
PRICE = {slug: pricing for slug, *_, pricing in SANDBOX_MODALITIES}  # sandbox/<slug>'s prices
PROMPT, COMPLETION = Decimal(ALPHA_PRICES["prompt"]), Decimal(ALPHA_PRICES["completion"])


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fake_a: Any, fake_b: Any) -> Iterator[Gateway]:
    config = standard_config(fake_a.base_url, fake_b.base_url)
    gateway = Gateway(tmp_path_factory.mktemp("client"), config, sandbox=True, **FAST).start()
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module", params=KINDS)
def client(request: pytest.FixtureRequest, gw: Gateway) -> Iterator[Any]:
    """The sync client, then the async one; each with a key of its own."""
    key = gw.create_key(name=f"client {request.param}")["key"]
    c = both(request.param, api_key=key, base_url=gw.api, max_retries=0)
    yield c
    c.close()


def generation(gw: Gateway, client: Any, gen_id: str) -> s.Generation:
    gw.flush()  # the record is written in batches
    found = client.generations.get(gen_id)
    assert isinstance(found, s.GenerationResponse)
    return found.data


# -- chat completions


def test_chat_answer_is_typed_with_its_exact_cost_and_generation(gw: Gateway, client: Any, fake_a: Any) -> None:
    fake_a.fake.script(Reply("Hi, how can I help?", prompt_tokens=10, completion_tokens=5))
    res = client.chat.completions.create(model="test/alpha", messages=HELLO, max_tokens=50)
    assert isinstance(res, s.ChatResult)
    assert res.choices[0].message.content == "Hi, how can I help?" and res.choices[0].finish_reason == "stop"
    assert (res.model, res.provider) == ("test/alpha", "Fake A")
    cost = 10 * PROMPT + 5 * COMPLETION
    assert (res.usage.prompt_tokens, res.usage.completion_tokens, res.usage.cost) == (10, 5, cost)
    assert type(res.usage.cost) is Decimal
    gen = generation(gw, client, res.id)
    assert (gen.id, gen.model, gen.total_cost, gen.streamed) == (res.id, "test/alpha", cost, False)
    assert (gen.tokens_prompt, gen.tokens_completion) == (10, 5)
    assert fake_a.fake.requests[-1].json["max_tokens"] == 50  # keyword fields are the body


def test_chat_stream_yields_typed_chunks_and_usage_last(gw: Gateway, client: Any, fake_a: Any) -> None:
    fake_a.fake.script(Stream(content="one two three", prompt_tokens=7, completion_tokens=3))
    stream = client.chat.completions.create(model="test/alpha", messages=HELLO, stream=True)
    chunks = list(stream)
    assert chunks and all(isinstance(c, s.ChatStreamChunk) for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "one two three"
    assert {c.id for c in chunks} == {stream.generation_id}
    last = chunks[-1]
    assert last.choices == [] and last.usage.cost == 7 * PROMPT + 3 * COMPLETION
    assert all(not c.usage for c in chunks[:-1])
    gen = generation(gw, client, stream.generation_id)
    assert gen.streamed and gen.total_cost == last.usage.cost


@pytest.mark.parametrize(
    ("code", "raised", "message"),
    [(429, e.RateLimitError, "slow down"), (502, e.BadGatewayError, "Internal Server Error")],  # 5xx masked
)
def test_an_error_inside_a_chat_stream_is_raised_after_what_came_before(
    client: Any, fake_a: Any, code: int, raised: type[e.APIError], message: str
) -> None:
    fake_a.fake.script(Stream(chunks=10, error_after=3, error={"message": "slow down", "code": code}))
    stream = client.chat.completions.create(model="test/alpha", messages=HELLO, stream=True)
    received = []
    with pytest.raises(raised) as caught:
        for chunk in stream:
            received.append(chunk)
    err = caught.value
    assert (err.status, err.code, err.message, err.in_stream) == (code, code, message, True)
    assert err.error_type is not None and err.generation_id == stream.generation_id
    assert len([c for c in received if c.choices and c.choices[0].delta.content]) == 3


def test_an_error_before_the_stream_is_raised_by_create(client: Any, fake_a: Any) -> None:
    with pytest.raises(e.BadRequestError) as caught:
        client.chat.completions.create(model="nobody/nothing", messages=HELLO, stream=True)
    err = caught.value
    assert (err.status, err.code, err.in_stream) == (400, 400, False)
    assert err.message == "nobody/nothing is not a valid model ID"
    assert err.metadata["availability"]["code"] == "model_not_found" and err.error_type == "invalid_request"
    assert fake_a.fake.requests == []


# -- the other chat formats: legacy completions, Responses, Messages


def test_completions(client: Any, fake_a: Any) -> None:
    fake_a.fake.script(Reply("a haiku", prompt_tokens=4, completion_tokens=2))
    res = client.completions.create(model="test/alpha", prompt="write a haiku")
    assert isinstance(res, s.TextCompletionResult)
    assert res.choices[0].text == "a haiku" and res.usage.cost == 4 * PROMPT + 2 * COMPLETION
    fake_a.fake.script(Stream(content="streamed haiku", prompt_tokens=4, completion_tokens=2))
    chunks = list(client.completions.create(model="test/alpha", prompt="write a haiku", stream=True))
    assert all(isinstance(c, s.TextCompletionChunk) for c in chunks)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "streamed haiku"
    assert chunks[-1].usage.cost == 4 * PROMPT + 2 * COMPLETION


def test_responses(gw: Gateway, client: Any, fake_a: Any) -> None:
    fake_a.fake.script(Reply("an answer", prompt_tokens=6, completion_tokens=2))
    res = client.responses.create(model="test/alpha", input="a question")
    assert isinstance(res, rs.ResponsesResult) and res.status == "completed"
    assert res.output[0].content[0].text == "an answer" and res.usage.cost == 6 * PROMPT + 2 * COMPLETION

    fake_a.fake.script(Stream(content="a streamed answer", prompt_tokens=6, completion_tokens=3))
    stream = client.responses.create(model="test/alpha", input="a question", stream=True)
    events = list(stream)
    assert all(isinstance(ev, rs.ResponsesStreamEvent) for ev in events)
    assert [ev.sequence_number for ev in events] == list(range(len(events)))
    assert (events[0].type, events[-1].type) == ("response.created", "response.completed")
    assert "".join(ev.delta for ev in events if ev.type == "response.output_text.delta") == "a streamed answer"
    assert events[-1].response.usage.cost == 6 * PROMPT + 3 * COMPLETION
    assert generation(gw, client, stream.generation_id).total_cost == events[-1].response.usage.cost


def test_a_failed_responses_stream_is_raised(client: Any, fake_a: Any) -> None:
    fake_a.fake.script(Stream(chunks=10, error_after=3, error={"message": "slow down", "code": 429}))
    with pytest.raises(e.RateLimitError) as caught:
        list(client.responses.create(model="test/alpha", input="a question", stream=True))
    err = caught.value
    assert (err.message, err.in_stream, err.error_type) == ("slow down", True, "rate_limit_exceeded")


def test_messages(client: Any, fake_a: Any) -> None:
    fake_a.fake.script(Reply("bonjour", prompt_tokens=8, completion_tokens=1))
    res = client.messages.create(model="test/alpha", max_tokens=64, messages=HELLO)
    assert isinstance(res, ms.MessagesResult) and res.stop_reason == "end_turn"
    assert res.content[0].text == "bonjour" and res.usage.cost == 8 * PROMPT + 1 * COMPLETION

    fake_a.fake.script(Stream(content="bonjour encore", prompt_tokens=8, completion_tokens=2))
    events = list(client.messages.create(model="test/alpha", max_tokens=64, messages=HELLO, stream=True))
    assert isinstance(events[0], ms.MessagesStartEvent) and isinstance(events[-1], ms.MessagesStopEvent)
    deltas = [ev.delta.text for ev in events if isinstance(ev, ms.MessagesContentBlockDeltaEvent)]
    assert "".join(deltas) == "bonjour encore"
    (end,) = [ev for ev in events if isinstance(ev, ms.MessagesDeltaEvent)]
    assert end.delta.stop_reason == "end_turn" and end.usage.cost == 8 * PROMPT + 2 * COMPLETION

    counted = client.messages.count_tokens(model="test/alpha", messages=HELLO)
    assert isinstance(counted, ms.MessagesCountTokensResult) and counted.input_tokens > 0


def test_an_error_event_in_a_messages_stream_is_raised(client: Any, fake_a: Any) -> None:
    fake_a.fake.script(Stream(chunks=10, error_after=3, error={"message": "slow down", "code": 429}))
    with pytest.raises(e.RateLimitError) as caught:
        list(client.messages.create(model="test/alpha", max_tokens=64, messages=HELLO, stream=True))
    assert (caught.value.message, caught.value.in_stream) == ("slow down", True)
    assert caught.value.error_type == "rate_limit_exceeded"


# -- embeddings, rerank, images


def test_embeddings(gw: Gateway, client: Any) -> None:
    texts = ["the cat sat on the mat", "a dog in the fog"]
    res = client.embeddings.create(model="sandbox/embed", input=texts)
    assert isinstance(res, EmbeddingsResponse) and [d.index for d in res.data] == [0, 1]
    assert len(res.data[0].embedding) == len(res.data[1].embedding) > 0
    tokens = sum(len(t.split()) for t in texts)
    assert res.usage.prompt_tokens == tokens and res.usage.cost == tokens * PRICE["embed"].prompt
    assert generation(gw, client, res.id).total_cost == res.usage.cost
    listed = client.embeddings.models()
    assert isinstance(listed, s.ModelsListResponse) and [m.id for m in listed.data] == ["sandbox/embed"]


def test_rerank(client: Any) -> None:
    res = client.rerank.create(model="sandbox/rerank", query="a cat", documents=["a dog", "a cat"])
    assert isinstance(res, RerankResponse)
    assert [r.index for r in res.results] == [1, 0] and res.results[0].document.text == "a cat"
    assert res.usage.search_units == 1 and res.usage.cost == PRICE["rerank"].search_unit


def test_images(client: Any) -> None:
    made = client.images.generate(model="sandbox/image", prompt="a fern", n=2)
    assert isinstance(made, ImageGenerationResponse) and [d.media_type for d in made.data] == ["image/png"] * 2
    png = base64.b64decode(made.data[0].b64_json)
    assert png.startswith(b"\x89PNG") and made.usage.cost == 2 * PRICE["image"].image_output
    openai_shaped = client.images.generations(model="sandbox/image", prompt="a fern")
    assert isinstance(openai_shaped, OpenAIImagesResponse)
    assert base64.b64decode(openai_shaped.data[0].b64_json) == png  # the same prompt draws the same picture
    edited = client.images.edit(image=png, filename="fern.png", prompt="make it blue", model="sandbox/image")
    assert isinstance(edited, OpenAIImagesResponse) and len(edited.data) == 1
    assert base64.b64decode(edited.data[0].b64_json).startswith(b"\x89PNG")
    assert edited.usage.cost == PRICE["image"].image_output

    models = client.images.models()
    assert isinstance(models, ImageModelsListResponse) and [m.id for m in models.data] == ["sandbox/image"]
    endpoints = client.images.endpoints("sandbox/image")
    assert isinstance(endpoints, ImageModelEndpointsResponse)
    assert endpoints.id == "sandbox/image" and [p.provider_slug for p in endpoints.endpoints] == ["sandbox"]
    with pytest.raises(e.NotFoundError, match="not an image generation model"):
        client.images.endpoints("test", "alpha")


# -- audio and video


def test_speech_and_its_transcription(client: Any) -> None:
    text = "hello world"
    audio = client.audio.speech(model="sandbox/speech", input=text, voice="alloy", response_format="wav")
    assert isinstance(audio, Binary) and audio.content_type == "audio/wav"
    assert audio.content[:4] == b"RIFF" and audio.content[8:12] == b"WAVE"
    clip = {"data": base64.b64encode(audio.content).decode(), "format": "wav"}
    heard = client.audio.transcriptions(model="sandbox/transcribe", input_audio=clip)
    assert isinstance(heard, STTResponse) and heard.text == text  # the sandbox hears its own speech
    seconds = len(text) * Decimal("0.06")  # the sandbox speaks 60 ms a character
    assert (heard.usage.seconds, heard.usage.cost) == (seconds, seconds * PRICE["transcribe"].audio_second)
    plain = client.audio.transcriptions(model="sandbox/transcribe", input_audio=clip, response_format="text")
    assert plain == text + "\n"


def test_video_job(gw: Gateway, client: Any) -> None:
    job = client.videos.create(model="sandbox/video", prompt="a red kite", duration=2)
    assert isinstance(job, VideoGenerationResponse) and job.status == "pending"
    assert job.polling_url == f"{gw.api}/videos/{job.id}"
    deadline = time.monotonic() + 15
    while (polled := client.videos.get(job.id)).status not in ("completed", "failed"):
        assert time.monotonic() < deadline, polled
        time.sleep(0.02)  # a job's progress has no event to wait on; the sandbox's is ready after one poll
    assert isinstance(polled, VideoGenerationResponse) and polled.status == "completed"
    assert Decimal(str(polled.usage.cost)) == 2 * PRICE["video"].video_second  # the server's Struct has a float
    video = client.videos.content(job.id)
    assert isinstance(video, Binary) and video.content_type == "video/mp4"
    assert [kind for kind, _ in boxes(video.content)] == [b"ftyp", b"moov", b"mdat"]
    assert movie_seconds(video.content) == 2
    assert generation(gw, client, polled.generation_id).total_cost == 2 * PRICE["video"].video_second
    models = client.videos.models()
    assert isinstance(models, VideoModelsListResponse) and [m.id for m in models.data] == ["sandbox/video"]
    with pytest.raises(e.NotFoundError):
        client.videos.get("gen-vid-1-nosuchjobxxxxxxxxxxxxx")


# -- files


def test_files(client: Any, tmp_path: Path) -> None:
    made = client.files.upload(b"a,b\n1,2\n", filename="table.csv", content_type="text/csv")
    assert isinstance(made, OpenRouterFile) and made.id.startswith("or_file_") and made.type == "file"
    assert (made.filename, made.mime_type, made.size_bytes, made.downloadable) == ("table.csv", "text/csv", 8, False)
    note = tmp_path / "note.txt"
    note.write_bytes(b"a note\n")
    from_path = client.files.upload(note, purpose="user_data")  # OpenAI's purpose: OpenAI's shape
    assert isinstance(from_path, OpenAIFile)
    assert (from_path.filename, from_path.bytes, from_path.purpose) == ("note.txt", 7, "user_data")

    listed = client.files.list()
    assert isinstance(listed, OpenRouterFileList) and not listed.has_more
    assert [f.id for f in listed.data][-2:] == [made.id, from_path.id]
    assert client.files.get(made.id) == made
    with pytest.raises(e.BadRequestError, match="not downloadable"):  # uploads are not served back, by design
        client.files.content(made.id)
    deleted = client.files.delete(made.id)
    assert isinstance(deleted, OpenRouterFileDeleted) and (deleted.id, deleted.type) == (made.id, "file_deleted")
    with pytest.raises(e.NotFoundError):
        client.files.get(made.id)


# -- the catalog


def test_models_endpoints_and_providers(client: Any) -> None:
    listed = client.models.list()
    assert isinstance(listed, s.ModelsListResponse)
    ids = {m.id for m in listed.data}
    assert {"test/alpha", "test/beta", "test/gamma", "sandbox/chat"} <= ids
    assert client.models.count().data.count == len(listed.data)
    assert {m.id for m in client.models.user().data} == ids  # a key without restrictions may use them all

    alpha = client.models.get("test/alpha")
    assert isinstance(alpha, s.ModelResponse) and alpha.data.id == "test/alpha"
    assert Decimal(alpha.data.pricing.prompt) == PROMPT
    assert client.models.get("test", "alpha") == alpha
    endpoints = client.models.endpoints("test/gamma")
    assert isinstance(endpoints, s.ModelEndpointsResponse)
    assert sorted(ep.tag for ep in endpoints.data.endpoints) == ["fake-a", "fake-b"]
    with pytest.raises(e.NotFoundError) as caught:
        client.models.get("nobody/nothing")
    assert caught.value.message == "Model nobody/nothing not found"
    with pytest.raises(ValueError, match="author/slug"):
        client.models.get("no-slash")

    zdr = client.endpoints.zdr()
    assert isinstance(zdr, s.ZdrEndpointsResponse) and {ep.tag for ep in zdr.data} == {"sandbox"}
    providers = client.providers.list()
    assert isinstance(providers, s.ProvidersResponse)
    assert {p.slug for p in providers.data} == {"fake-a", "fake-b", "sandbox"}
