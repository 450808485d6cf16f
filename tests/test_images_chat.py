"""Images out of chat completions: `modalities: ["image", "text"]` answers `choices[0].message.images`
(`delta.images` when streamed), each `{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}`,
through the openai SDK: from the sandbox, from Gemini (inlineData parts, fake on loopback), and from an
OpenAI-compatible upstream whose `images` pass through."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import openai
import pytest

from omnirouter.catalog.loader import SANDBOX_MODALITIES
from omnirouter.providers.images.sandbox import picture
from omnirouter.testing.fakes.core import Status
from omnirouter.testing.fakes.images_gemini import FakeGeminiImages
from tests.gateway import Gateway
from tests.spec_validation import spec_available, validate_response, validate_sse

GEMINI_KEY = "gm-chat-images-9876"
IMAGE_AND_TEXT = {"input_modalities": ["text", "image"], "output_modalities": ["image", "text"]}
PRICES = {"prompt": "0.0000003", "completion": "0.00003"}
ASK = [{"role": "user", "content": "draw a lighthouse"}]
BOTH = {"modalities": ["image", "text"]}
RELAYED = "data:image/png;base64," + base64.b64encode(picture("relayed")).decode()


@pytest.fixture(scope="module")
def gem() -> Iterator[Any]:
    handle = FakeGeminiImages.run_in_thread(api_key=GEMINI_KEY)
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, gem: Any, fake_a: Any) -> Iterator[Gateway]:
    config = {
        "providers": [
            {"slug": "gem-img", "name": "Gemini", "api": "gemini", "base_url": gem.base_url, "api_key": GEMINI_KEY},
            {"slug": "fake-a", "name": "Fake A", "api": "openai", "base_url": fake_a.base_url},
        ],
        "models": [
            {
                "id": "test/gemini-image",
                "name": "Gemini Image",
                "architecture": IMAGE_AND_TEXT,
                "endpoints": [{"provider": "gem-img", "upstream_model": "gemini-2.5-flash-image", "pricing": PRICES}],
            },
            {
                "id": "test/relay-image",
                "name": "An OpenAI-compatible image model",
                "architecture": IMAGE_AND_TEXT,
                "endpoints": [{"provider": "fake-a", "upstream_model": "relay", "pricing": PRICES}],
            },
        ],
    }
    gateway = Gateway(tmp_path_factory.mktemp("images-chat"), config, sandbox=True).start()
    yield gateway
    gateway.stop()


@pytest.fixture(autouse=True)
def _fresh(gem: Any) -> None:
    gem.reset()


@pytest.fixture
def client(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(api_key=gw.create_key(name="chat images")["key"], base_url=gw.api)


IMAGE_PRICE = next(p for slug, *_, p in SANDBOX_MODALITIES if slug == "image").image_output


def urls(images: Any) -> list[str]:
    return [i["image_url"]["url"] for i in images or ()]


def png_of(url: str) -> bytes:
    head, _, data = url.partition(",")
    assert head == "data:image/png;base64"
    return base64.b64decode(data)


def streamed(client: openai.OpenAI, model: str, **extra: Any) -> tuple[str, list[str], str]:
    """(text, image URLs, the raw stream) of a streamed chat."""
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=ASK, stream=True, extra_body=extra or BOTH
    )
    body = raw.http_response.read().decode()
    text, images = "", []
    for line in body.splitlines():
        if line.startswith("data: {"):
            chunk = json.loads(line[6:])
            for choice in chunk.get("choices") or ():
                text += choice["delta"].get("content") or ""
                images += urls(choice["delta"].get("images"))
    return text, images, body


def test_the_sandbox_draws_in_chat(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="sandbox/image", messages=ASK, extra_body=BOTH)
    body = json.loads(raw.http_response.text)
    if spec_available():
        validate_response("sendChatCompletionRequest", body)
    message = raw.parse().choices[0].message
    assert message.content == "Here is a picture drawn from your message."
    images = (message.model_extra or {})["images"]
    assert [i["type"] for i in images] == ["image_url"]
    assert png_of(urls(images)[0]) == picture("draw a lighthouse")
    assert Decimal(str(body["usage"]["cost"])) == IMAGE_PRICE  # billed per image, as on /images


def test_the_sandbox_streams_its_image_as_delta_images(client: openai.OpenAI) -> None:
    text, images, body = streamed(client, "sandbox/image")
    if spec_available():
        validate_sse("sendChatCompletionRequest", body)
    assert text == "Here is a picture drawn from your message."
    assert [png_of(u) for u in images] == [picture("draw a lighthouse")]
    usage = [
        json.loads(line[6:])["usage"] for line in body.splitlines() if line.startswith("data: {") and '"usage"' in line
    ]
    assert Decimal(str(usage[-1]["cost"])) == IMAGE_PRICE


def test_no_image_unless_asked(client: openai.OpenAI) -> None:
    res = client.chat.completions.create(model="sandbox/image", messages=ASK)
    assert "images" not in (res.choices[0].message.model_extra or {})
    assert res.choices[0].message.content


def test_gemini_inline_images_become_message_images(client: openai.OpenAI, gem: Any) -> None:
    res = client.chat.completions.create(
        model="test/gemini-image", messages=ASK, extra_body={**BOTH, "image_config": {"aspect_ratio": "16:9"}}
    )
    sent = gem.requests[-1].json["generationConfig"]
    assert sent["responseModalities"] == ["TEXT", "IMAGE"] and sent["imageConfig"] == {"aspectRatio": "16:9"}
    message = res.choices[0].message
    assert message.content == "Here is the picture you asked for."
    assert [png_of(u) for u in urls((message.model_extra or {})["images"])] == [picture("draw a lighthouse")]
    assert res.usage is not None and res.usage.completion_tokens > 1290  # the image's tokens are billed


def test_gemini_streams_its_image(client: openai.OpenAI, gem: Any) -> None:
    text, images, body = streamed(client, "test/gemini-image")
    assert ":streamGenerateContent" in gem.requests[-1].path
    if spec_available():
        validate_sse("sendChatCompletionRequest", body)
    assert text == "Here is the picture you asked for."
    assert [png_of(u) for u in images] == [picture("draw a lighthouse")]


def test_an_earlier_image_goes_back_to_gemini(client: openai.OpenAI, gem: Any) -> None:
    history = [
        *ASK,
        {
            "role": "assistant",
            "content": "Here it is.",
            "images": [{"type": "image_url", "image_url": {"url": RELAYED}}],
        },
        {"role": "user", "content": "now at night"},
    ]
    client.chat.completions.create(model="test/gemini-image", messages=history, extra_body=BOTH)  # type: ignore[arg-type]
    model_turn = gem.requests[-1].json["contents"][1]
    assert model_turn["role"] == "model"
    assert model_turn["parts"][1] == {"inlineData": {"mimeType": "image/png", "data": RELAYED.split(",", 1)[1]}}


def _completion(images: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-relay",
        "object": "chat.completion",
        "created": 1,
        "model": "relay",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Relayed.", "images": images},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1300, "total_tokens": 1305},
    }


def test_an_openai_compatible_upstreams_images_pass_through(client: openai.OpenAI, fake_a: Any) -> None:
    images = [{"type": "image_url", "image_url": {"url": RELAYED}}]
    fake_a.fake.script(Status(200, _completion(images)))
    res = client.chat.completions.create(model="test/relay-image", messages=ASK, extra_body=BOTH)
    assert (res.choices[0].message.model_extra or {})["images"] == images
    assert fake_a.fake.requests[-1].json["modalities"] == ["image", "text"]  # asked of the upstream as sent

    chunk = {
        "id": "chatcmpl-relay",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "relay",
        "choices": [{"index": 0, "delta": {"role": "assistant", "images": images}, "finish_reason": "stop"}],
    }
    usage = {**chunk, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 1300, "total_tokens": 1305}}
    sse = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in (chunk, usage)) + b"data: [DONE]\n\n"
    fake_a.fake.script(Status(200, sse, {"Content-Type": "text/event-stream"}))
    _, got, _ = streamed(client, "test/relay-image")
    assert got == [RELAYED]
