"""Image generation end to end: POST /images through the official `openrouter` SDK, OpenAI's
`client.images.generate` (POST /images/generations), OpenAI Images and Gemini upstreams (fakes on
loopback) and the sandbox; fallbacks; money exact per image and per token (and /generation agreeing);
the listings; bad input refused with nothing recorded or billed."""

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
from openrouter.utils.eventstreaming import EventStream

from omnirouter.governance.byok_crypto import new_key as new_encryption_key
from omnirouter.providers.images import png
from omnirouter.providers.images.sandbox import picture
from omnirouter.testing.fakes.core import Status
from omnirouter.testing.fakes.images import FakeAzureImages, FakeOpenAIImages, ImageReply, gpt_image_usage
from omnirouter.testing.fakes.images_gemini import IMAGE_TOKENS, FakeGeminiImages
from tests.gateway import Gateway, generation, key_usage
from tests.sdk_ts_run import run_steps
from tests.spec_validation import spec_available, validate_response

OPENAI_KEY = "sk-images-test-1234"
GEMINI_KEY = "gm-images-test-5678"
AZURE_KEY = "az-images-test-9012"
AZURE_PRICES = {"image_output": "0.05"}
SANDBOX_PRICE = Decimal("0.04")  # sandbox/image's price per image (catalog/loader.py)
GPT_IMAGE_PRICES = {"prompt": "0.000005", "completion": "0.00004"}  # per token, as gpt-image-1 bills
GEMINI_PRICES = {"prompt": "0.0000003", "completion": "0.00003"}
PAINTER_A = {"image_output": "0.02"}
PAINTER_G = {"image_output": "0.03"}
IMAGE_OUT = {"input_modalities": ["text", "image"], "output_modalities": ["image"]}
IMAGE_AND_TEXT = {"input_modalities": ["text", "image"], "output_modalities": ["image", "text"]}
OPENAI_FIRST = {"order": ["oai-img", "gem-img"]}  # test/painter's endpoints, tried in this order
RED = "data:image/png;base64," + base64.b64encode(png.gradient(2, 2, (255, 0, 0), (255, 0, 0))).decode()


def provider(slug: str, name: str, api: str, base_url: str, secret: str) -> dict[str, Any]:
    return {"slug": slug, "name": name, "api": api, "base_url": base_url, "api_key": secret}


def config(openai_url: str, gemini_url: str, azure_url: str) -> dict[str, Any]:
    return {
        "providers": [
            provider("oai-img", "OpenAI Images", "openai", openai_url, OPENAI_KEY),
            provider("gem-img", "Gemini Images", "gemini", gemini_url, GEMINI_KEY),
            provider("az-img", "Azure Images", "azure", azure_url, AZURE_KEY),
        ],
        "models": [
            {
                "id": "test/azure-image",
                "name": "GPT Image on Azure",
                "architecture": IMAGE_OUT,
                "endpoints": [{"provider": "az-img", "upstream_model": "gpt-image-1", "pricing": AZURE_PRICES}],
            },
            {
                "id": "test/gpt-image",
                "name": "GPT Image",
                "architecture": IMAGE_OUT,
                "endpoints": [{"provider": "oai-img", "upstream_model": "gpt-image-1", "pricing": GPT_IMAGE_PRICES}],
            },
            {
                "id": "test/gemini-image",
                "name": "Gemini Image",
                "architecture": IMAGE_AND_TEXT,
                "endpoints": [
                    {"provider": "gem-img", "upstream_model": "gemini-2.5-flash-image", "pricing": GEMINI_PRICES}
                ],
            },
            {
                "id": "test/painter",
                "name": "Painter (two providers)",
                "architecture": IMAGE_OUT,
                "endpoints": [
                    {"provider": "oai-img", "upstream_model": "painter-a", "pricing": PAINTER_A},
                    {"provider": "gem-img", "upstream_model": "painter-g", "pricing": PAINTER_G},
                ],
            },
            {
                "id": "test/lone-painter",
                "name": "Painter (one provider)",
                "architecture": IMAGE_OUT,
                "endpoints": [{"provider": "oai-img", "upstream_model": "painter-a", "pricing": PAINTER_A}],
            },
            {
                "id": "test/chatty",
                "name": "Text only",
                "endpoints": [{"provider": "oai-img", "upstream_model": "chatty", "pricing": GPT_IMAGE_PRICES}],
            },
        ],
    }


@pytest.fixture(scope="module")
def oai() -> Iterator[Any]:
    handle = FakeOpenAIImages.run_in_thread(api_key=OPENAI_KEY)
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def gem() -> Iterator[Any]:
    handle = FakeGeminiImages.run_in_thread(api_key=GEMINI_KEY)
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def azure() -> Iterator[Any]:
    handle = FakeAzureImages.run_in_thread(api_key=AZURE_KEY)
    yield handle
    handle.stop()


@pytest.fixture(autouse=True)
def _fresh_fakes(request: pytest.FixtureRequest) -> None:
    for name in ("oai", "gem", "azure"):
        if name in request.fixturenames:
            request.getfixturevalue(name).reset()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, oai: Any, gem: Any, azure: Any) -> Iterator[Gateway]:
    gateway = Gateway(
        tmp_path_factory.mktemp("images"),
        config(oai.base_url, gem.base_url, azure.base_url),
        sandbox=True,
        encryption_key=new_encryption_key(),  # for BYOK keys
    ).start()
    yield gateway
    gateway.stop()


@pytest.fixture
def key(gw: Gateway) -> str:
    return gw.create_key(name="images")["key"]


@pytest.fixture
def sdk(gw: Gateway, key: str) -> Iterator[OpenRouter]:
    with OpenRouter(api_key=key, server_url=gw.api) as client:
        yield client


def post(gw: Gateway, key: str, body: dict[str, Any], path: str = "/images") -> httpx.Response:
    with gw.client(key) as c:
        return c.post(path, json=body)


def decimal_json(r: httpx.Response) -> Any:
    return json.loads(r.text, parse_float=Decimal)


def pngs(data: list[Any]) -> list[bytes]:
    return [base64.b64decode(d["b64_json"] if isinstance(d, dict) else d.b64_json) for d in data]


# -- the sandbox, through the official OpenRouter SDK


def test_sandbox_images_through_the_openrouter_sdk(gw: Gateway, key: str, sdk: OpenRouter) -> None:
    res = sdk.images.generate(model="sandbox/image", prompt="a red panda astronaut", n=2, aspect_ratio="16:9")
    images = pngs(res.data)
    assert len(images) == 2 and images[0] != images[1]
    assert all(png.size_of(i) == (64, 36) for i in images)  # the sandbox's size at 16:9
    assert [d.media_type for d in res.data] == ["image/png", "image/png"]
    assert res.usage is not None and Decimal(str(res.usage.cost)) == 2 * SANDBOX_PRICE
    again = sdk.images.generate(model="sandbox/image", prompt="a red panda astronaut", n=1, aspect_ratio="16:9")
    assert pngs(again.data) == images[:1]  # deterministic: the same prompt draws the same picture
    other = sdk.images.generate(model="sandbox/image", prompt="a blue whale")
    assert pngs(other.data)[0] not in images
    assert key_usage(gw, key) == 4 * SANDBOX_PRICE


def test_stream_is_answered_whole(sdk: OpenRouter) -> None:
    """No upstream here streams partial images, so `stream: true` gets the buffered answer (as the
    document says of providers without native streaming); the SDK reads it as the JSON it is."""
    res = sdk.images.generate(model="sandbox/image", prompt="a comet", stream=True)
    assert not isinstance(res, EventStream) and pngs(res.data) == [picture("a comet")]


def test_answers_and_generation_agree_and_conform(gw: Gateway, key: str) -> None:
    r = post(gw, key, {"model": "sandbox/image", "prompt": "a lighthouse", "n": 3})
    assert r.status_code == 200, r.text
    if spec_available():
        validate_response("createImages", r.json())
    body = decimal_json(r)
    assert body["usage"]["cost"] == 3 * SANDBOX_PRICE
    assert body["data"][0]["b64_json"] == base64.b64encode(picture("a lighthouse")).decode()
    gen = generation(gw, key, r.headers["x-generation-id"])
    assert gen["model"] == "sandbox/image" and gen["api_type"] == "image"
    assert gen["total_cost"] == body["usage"]["cost"] == gen["usage"]


def test_svg_output(gw: Gateway, key: str) -> None:
    r = post(gw, key, {"model": "sandbox/image", "prompt": "a tree", "output_format": "svg"})
    assert r.status_code == 200, r.text
    item = r.json()["data"][0]
    assert item["media_type"] == "image/svg+xml"
    assert base64.b64decode(item["b64_json"]).startswith(b"<svg")


# -- OpenAI's Images API: the openai SDK, and as an upstream


def test_openai_sdk_generates_through_the_gpt_image_upstream(gw: Gateway, key: str, oai: Any) -> None:
    client = openai.OpenAI(api_key=key, base_url=gw.api)
    prompt = "a watercolour of a harbour at dawn"
    raw = client.images.with_raw_response.generate(
        model="test/gpt-image", prompt=prompt, n=2, size="1536x1024", quality="high", output_format="webp"
    )
    res = raw.parse()
    assert [base64.b64decode(d.b64_json or "") for d in res.data] == [picture(prompt, index=i) for i in range(2)]
    sent = oai.requests[-1]
    assert sent.path == "/v1/images/generations" and sent.headers["Authorization"] == f"Bearer {OPENAI_KEY}"
    assert sent.json == {
        "model": "gpt-image-1",
        "prompt": prompt,
        "n": 2,
        "size": "1536x1024",
        "quality": "high",
        "output_format": "webp",
    }
    usage = gpt_image_usage(prompt, 2)
    expected = usage["input_tokens"] * Decimal(GPT_IMAGE_PRICES["prompt"]) + usage["output_tokens"] * Decimal(
        GPT_IMAGE_PRICES["completion"]
    )
    body = json.loads(raw.http_response.text, parse_float=Decimal)
    assert body["usage"]["input_tokens"] == usage["input_tokens"]
    assert body["usage"]["output_tokens"] == usage["output_tokens"] and body["usage"]["cost"] == expected
    assert generation(gw, key, raw.http_response.headers["x-generation-id"])["total_cost"] == expected
    assert key_usage(gw, key) == expected


def test_the_upstreams_refusal_comes_back_at_once(gw: Gateway, key: str, oai: Any, gem: Any) -> None:
    """A size gpt-image does not make: OpenAI's 400 is the answer (no other provider would do better)."""
    r = post(gw, key, {"model": "test/gpt-image", "prompt": "huge", "size": "2048x2048"})
    assert r.status_code == 400, r.text
    assert "Supported values are: 1024x1024" in r.json()["error"]["message"]
    assert len(oai.requests) == 1 and gem.requests == [] and key_usage(gw, key) == 0


def test_openai_sdk_url_format_answers_data_urls(gw: Gateway, key: str) -> None:
    client = openai.OpenAI(api_key=key, base_url=gw.api)
    res = client.images.generate(model="sandbox/image", prompt="a kite", response_format="url")
    url = res.data[0].url or ""
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == picture("a kite")


def test_sizes_map_to_what_the_openai_family_offers(gw: Gateway, key: str, oai: Any) -> None:
    r = post(gw, key, {"model": "test/gpt-image", "prompt": "tall", "aspect_ratio": "9:16", "resolution": "2K"})
    assert r.status_code == 200, r.text
    assert oai.requests[-1].json["size"] == "1024x1536"
    r = post(gw, key, {"model": "test/lone-painter", "prompt": "wide", "size": "2K", "aspect_ratio": "16:9"})
    assert r.status_code == 200, r.text
    assert oai.requests[-1].json["size"] == "2048x1152"  # another server: the pixels asked for
    r = post(gw, key, {"model": "test/gpt-image", "prompt": "anything"})
    assert "size" not in oai.requests[-1].json  # nothing asked: the model's default


def test_edits_send_reference_images(gw: Gateway, key: str, oai: Any, gem: Any) -> None:
    refs = [{"type": "image_url", "image_url": {"url": RED}}]
    r = post(gw, key, {"model": "test/gpt-image", "prompt": "make it blue", "input_references": refs})
    assert r.status_code == 200, r.text
    sent = oai.requests[-1]
    assert sent.path == "/v1/images/edits" and sent.headers["Content-Type"].startswith("multipart/form-data")
    assert sent.json["images"] == 1 and sent.json["prompt"] == "make it blue"
    usage = gpt_image_usage("make it blue", 1, references=1)
    assert r.json()["usage"]["prompt_tokens"] == usage["input_tokens"]

    r = post(gw, key, {"model": "test/gemini-image", "prompt": "make it blue", "input_references": refs})
    assert r.status_code == 200, r.text
    parts = gem.requests[-1].json["contents"][0]["parts"]
    assert parts[0] == {"text": "make it blue"}
    assert parts[1]["inlineData"] == {"mimeType": "image/png", "data": RED.split(",", 1)[1]}

    url_ref = [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]
    before = len(oai.requests)
    r = post(gw, key, {"model": "test/gpt-image", "prompt": "edit", "input_references": url_ref})
    assert r.status_code == 400 and "data URL" in r.json()["error"]["message"]
    assert len(oai.requests) == before


def test_openai_sdk_edits_images(gw: Gateway, key: str, oai: Any, gem: Any) -> None:
    client = openai.OpenAI(api_key=key, base_url=gw.api)
    start = png.gradient(4, 4, (0, 0, 255), (0, 255, 0))
    res = client.images.edit(
        model="test/gpt-image", image=[("a.png", start), ("b.png", start)], prompt="add a moon", n=1, quality="low"
    )
    assert base64.b64decode(res.data[0].b64_json or "") == picture("add a moon")
    sent = oai.requests[-1]
    assert sent.path == "/v1/images/edits" and sent.json["images"] == 2 and sent.json["quality"] == "low"
    assert (
        res.usage is not None
        and res.usage.input_tokens == gpt_image_usage("add a moon", 1, references=2)["input_tokens"]
    )

    res = client.images.edit(model="test/gemini-image", image=("a.png", start), prompt="add a moon")
    parts = gem.requests[-1].json["contents"][0]["parts"]
    assert parts[1]["inlineData"] == {"mimeType": "image/png", "data": base64.b64encode(start).decode()}

    before = key_usage(gw, key)
    with pytest.raises(openai.BadRequestError) as err:
        client.images.edit(model="test/gpt-image", image=("a.txt", b"not an image"), prompt="x")
    assert "is not a PNG, JPEG, WebP or GIF" in str(err.value)
    with pytest.raises(openai.BadRequestError) as err:
        client.post("/images/edits", cast_to=object, body={"model": "test/gpt-image", "prompt": "x"})  # JSON
    assert "multipart/form-data" in str(err.value)
    with gw.client(key) as c:  # a form without an image
        r = c.post("/images/edits", files={"model": (None, "test/gpt-image"), "prompt": (None, "x")})
    assert r.status_code == 400 and "image is required" in r.json()["error"]["message"]
    with pytest.raises(openai.BadRequestError) as err:
        client.images.edit(model="test/gpt-image", image=("a.png", start), mask=("m.png", start), prompt="x")
    assert "mask is not supported" in str(err.value)
    assert key_usage(gw, key) == before


# -- Azure OpenAI image deployments


def test_azure_deployments_generate_and_edit(gw: Gateway, key: str, azure: Any) -> None:
    r = post(gw, key, {"model": "test/azure-image", "prompt": "a sail", "n": 2, "aspect_ratio": "3:2"})
    assert r.status_code == 200, r.text
    sent = azure.requests[-1]
    assert sent.path == "/openai/deployments/gpt-image-1/images/generations"
    assert sent.query == {"api-version": "2025-04-01-preview"} and sent.headers["api-key"] == AZURE_KEY
    assert "Authorization" not in sent.headers and sent.json["size"] == "1536x1024"
    assert pngs(r.json()["data"]) == [picture("a sail", index=i) for i in range(2)]
    assert decimal_json(r)["usage"]["cost"] == 2 * Decimal(AZURE_PRICES["image_output"])

    refs = [{"type": "image_url", "image_url": {"url": RED}}]
    r = post(gw, key, {"model": "test/azure-image", "prompt": "make it blue", "input_references": refs})
    assert r.status_code == 200, r.text
    assert azure.requests[-1].path == "/openai/deployments/gpt-image-1/images/edits"
    assert azure.requests[-1].json["images"] == 1


# -- Gemini image models


def test_gemini_images_one_call_per_image(gw: Gateway, key: str, gem: Any) -> None:
    prompt = "a paper boat on a pond"
    r = post(gw, key, {"model": "test/gemini-image", "prompt": prompt, "n": 2, "aspect_ratio": "16:9", "size": "2K"})
    assert r.status_code == 200, r.text
    if spec_available():
        validate_response("createImages", r.json())
    assert len(gem.requests) == 2
    sent = gem.requests[-1]
    assert sent.path == "/v1beta/models/gemini-2.5-flash-image:generateContent"
    assert sent.headers["x-goog-api-key"] == GEMINI_KEY
    assert sent.json["generationConfig"] == {
        "responseModalities": ["IMAGE"],
        "imageConfig": {"aspectRatio": "16:9", "imageSize": "2K"},
    }
    body = decimal_json(r)
    assert pngs(body["data"]) == [picture(prompt)] * 2
    prompt_tokens = 2 * max(1, len(prompt) // 4)
    assert (body["usage"]["prompt_tokens"], body["usage"]["completion_tokens"]) == (prompt_tokens, 2 * IMAGE_TOKENS)
    expected = prompt_tokens * Decimal(GEMINI_PRICES["prompt"]) + 2 * IMAGE_TOKENS * Decimal(
        GEMINI_PRICES["completion"]
    )
    assert body["usage"]["cost"] == expected
    gen = generation(gw, key, r.headers["x-generation-id"])
    assert gen["total_cost"] == expected and gen["provider_name"] == "Gemini Images"
    assert (gen["native_tokens_prompt"], gen["native_tokens_completion"]) == (prompt_tokens, 2 * IMAGE_TOKENS)


def test_gemini_calls_that_fail_make_no_image_and_are_not_billed(gw: Gateway, key: str, gem: Any) -> None:
    gem.script(Status(429))  # one of the three calls
    r = post(gw, key, {"model": "test/gemini-image", "prompt": "three ducks", "n": 3})
    assert r.status_code == 200, r.text
    body = decimal_json(r)
    assert len(gem.requests) == 3 and len(body["data"]) == 2
    assert body["usage"]["completion_tokens"] == 2 * IMAGE_TOKENS

    gem.script(Status(503), Status(503))
    r = post(gw, key, {"model": "test/gemini-image", "prompt": "two ducks", "n": 2})
    assert r.status_code == 503 and r.json()["error"]["metadata"]["provider_name"] == "Gemini Images", r.text
    assert key_usage(gw, key) == body["usage"]["cost"]


def test_a_refused_prompt_is_a_400_and_not_billed(gw: Gateway, key: str, gem: Any) -> None:
    gem.script(ImageReply(count=0, finish_reason="IMAGE_SAFETY"))
    r = post(gw, key, {"model": "test/gemini-image", "prompt": "something forbidden"})
    assert r.status_code == 400 and "IMAGE_SAFETY" in r.json()["error"]["message"]
    assert key_usage(gw, key) == 0


# -- fallbacks and what is billed


def test_falls_back_to_the_next_provider(gw: Gateway, key: str, oai: Any, gem: Any) -> None:
    oai.script(Status(503))
    r = post(gw, key, {"model": "test/painter", "prompt": "a castle", "n": 2, "provider": OPENAI_FIRST})
    assert r.status_code == 200, r.text
    assert len(oai.requests) == 1 and len(gem.requests) == 2
    assert decimal_json(r)["usage"]["cost"] == 2 * Decimal(PAINTER_G["image_output"])
    gen = generation(gw, key, r.headers["x-generation-id"])
    assert gen["provider_name"] == "Gemini Images"
    assert [p["status"] for p in gen["provider_responses"]] == [503, 200]


def test_an_answer_without_a_usable_image_is_not_billed_and_falls_back(gw: Gateway, key: str, oai: Any) -> None:
    oai.script(ImageReply(b64=["", "!!not base64!!"]))
    r = post(gw, key, {"model": "test/painter", "prompt": "a bridge", "provider": OPENAI_FIRST})
    assert len(oai.requests) == 1
    assert r.status_code == 200, r.text
    assert decimal_json(r)["usage"]["cost"] == Decimal(PAINTER_G["image_output"])  # the Gemini endpoint's

    oai.script(ImageReply(b64=[""]))
    before = key_usage(gw, key)
    r = post(gw, key, {"model": "test/lone-painter", "prompt": "a bridge"})
    assert r.status_code == 502 and "no usable image" in r.json()["error"]["message"]
    assert key_usage(gw, key) == before


def test_a_key_that_cannot_afford_n_images_is_refused_before_any_upstream_call(gw: Gateway, oai: Any) -> None:
    poor = gw.create_key(name="poor", limit=0.05)["key"]
    r = post(gw, poor, {"model": "test/lone-painter", "prompt": "three", "n": 3})  # 3 x 0.02 > 0.05
    assert r.status_code == 402, r.text
    assert oai.requests == [] and key_usage(gw, poor) == 0
    r = post(gw, poor, {"model": "test/lone-painter", "prompt": "two", "n": 2})
    assert r.status_code == 200, r.text
    assert key_usage(gw, poor) == 2 * Decimal(PAINTER_A["image_output"])


def test_a_workspace_brings_its_own_key(gw: Gateway, oai: Any) -> None:
    """BYOK: the workspace's key serves its API keys; the instance bills nothing (no fee configured)
    and records what the provider bills the workspace."""
    with gw.admin() as admin:
        r = admin.post("/workspaces", json={"name": "Studio", "slug": "images-studio"})
        assert r.status_code == 201, r.text
        team = r.json()["data"]["id"]
        r = admin.post("/byok", json={"provider": "oai-img", "key": OPENAI_KEY, "workspace_id": team})
        assert r.status_code == 201, r.text
    studio = gw.create_key(name="studio", workspace_id=team)["key"]
    r = post(gw, studio, {"model": "test/lone-painter", "prompt": "a studio", "n": 2})
    assert r.status_code == 200, r.text
    usage = decimal_json(r)["usage"]
    assert usage["is_byok"] is True and usage["cost"] == 0
    assert usage["cost_details"]["upstream_inference_cost"] == 2 * Decimal(PAINTER_A["image_output"])
    assert oai.requests[-1].headers["Authorization"] == f"Bearer {OPENAI_KEY}"
    gen = generation(gw, studio, r.headers["x-generation-id"])
    assert gen["is_byok"] is True and gen["total_cost"] == 0
    assert gen["upstream_inference_cost"] == 2 * Decimal(PAINTER_A["image_output"])


# -- guardrails: their content filters see the prompt


def guarded_key(gw: Gateway, **fields: Any) -> str:
    created = gw.create_key(name="guarded")
    with gw.admin() as admin:
        g = admin.post("/guardrails", json={"name": f"images-{created['data']['hash'][:8]}", **fields})
        assert g.status_code == 201, g.text
        r = admin.post(
            f"/guardrails/{g.json()['data']['id']}/assignments/keys", json={"key_hashes": [created["data"]["hash"]]}
        )
        assert r.status_code == 200, r.text
    return created["key"]


def test_a_content_filter_redacts_the_prompt_before_the_provider(gw: Gateway, oai: Any) -> None:
    key = guarded_key(gw, content_filter_builtins=[{"slug": "email", "action": "redact"}])
    r = post(gw, key, {"model": "test/lone-painter", "prompt": "a poster for bob@example.com"})
    assert r.status_code == 200, r.text
    assert oai.requests[-1].json["prompt"] == "a poster for [EMAIL]"
    actions = generation(gw, key, r.headers["x-generation-id"])["guardrail_actions"]
    assert [(a["filter"], a["action"], a["count"]) for a in actions] == [("email", "redacted", 1)]


def test_a_content_filter_blocks_the_prompt_and_nothing_is_sent(gw: Gateway, oai: Any) -> None:
    key = guarded_key(gw, content_filter_builtins=[{"slug": "credit-card", "action": "block"}])
    r = post(gw, key, {"model": "test/lone-painter", "prompt": "print card 4111 1111 1111 1111"})
    assert r.status_code == 403, r.text
    assert oai.requests == [] and key_usage(gw, key) == 0


def test_only_usable_images_are_billed(gw: Gateway, key: str, oai: Any) -> None:
    good = base64.b64encode(picture("one")).decode()
    oai.script(ImageReply(b64=[good, ""]))
    r = post(gw, key, {"model": "test/lone-painter", "prompt": "two please", "n": 2})
    assert r.status_code == 200, r.text
    body = decimal_json(r)
    assert [d["b64_json"] for d in body["data"]] == [good]
    assert body["usage"]["cost"] == Decimal(PAINTER_A["image_output"])


# -- bad input


BAD = [
    ({"model": "sandbox/image", "prompt": ""}, "prompt"),
    ({"model": "sandbox/image", "prompt": "   "}, "prompt"),
    ({"model": "sandbox/image"}, "prompt"),
    ({"model": "sandbox/image", "prompt": "x", "n": 0}, "n"),
    ({"model": "sandbox/image", "prompt": "x", "n": 11}, "n"),
    ({"model": "sandbox/image", "prompt": "x", "size": "huge"}, "size"),
    ({"model": "sandbox/image", "prompt": "x", "size": "1024x1024", "aspect_ratio": "16:9"}, "aspect ratio"),
    ({"model": "sandbox/image", "prompt": "x", "size": "1024x1024", "resolution": "4K"}, "resolution"),
    ({"model": "sandbox/image", "prompt": "x", "aspect_ratio": "7:3"}, "aspect_ratio"),
    ({"model": "sandbox/image", "prompt": "x", "output_format": "bmp"}, "output_format"),
    ({"model": "sandbox/image", "prompt": "x", "input_references": [{"type": "image_url", "image_url": {"url": "x"}}]},
     "reference"),
    ({"model": "test/chatty", "prompt": "x"}, "does not support images"),
    ({"model": "test/typo", "prompt": "x"}, "test/typo"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "says"), BAD)
def test_bad_input_is_a_400_with_nothing_recorded(
    gw: Gateway, key: str, oai: Any, gem: Any, body: dict[str, Any], says: str
) -> None:
    r = post(gw, key, body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == 400 and says in error["message"]
    assert oai.requests == [] and gem.requests == []
    gw.flush()
    with gw.client(key) as c:
        assert c.get("/generation", params={"id": r.headers["x-generation-id"]}).status_code == 404
    assert key_usage(gw, key) == 0


def test_bad_input_through_the_sdk_is_its_typed_error(sdk: OpenRouter) -> None:
    with pytest.raises(errors.BadRequestResponseError):
        sdk.images.generate(model="sandbox/image", prompt="x", n=11)


def test_not_json_and_no_key(gw: Gateway, key: str) -> None:
    with gw.client(key) as c:
        r = c.post("/images", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == 400
    r = httpx.post(gw.api + "/images", json={"model": "sandbox/image", "prompt": "x"})
    assert r.status_code == 401


# -- listings


def test_image_models_are_listed(gw: Gateway, sdk: OpenRouter) -> None:
    r = httpx.get(gw.api + "/images/models")
    assert r.status_code == 200
    if spec_available():
        validate_response("listImageModels", r.json())
    items = {m["id"]: m for m in r.json()["data"]}
    assert set(items) == {
        "sandbox/image",
        "test/gpt-image",
        "test/gemini-image",
        "test/painter",
        "test/lone-painter",
        "test/azure-image",
    }
    painter = items["test/painter"]
    assert painter["endpoints"] == "/api/v1/images/models/test/painter/endpoints"
    assert painter["architecture"] == IMAGE_OUT and painter["supports_streaming"] is False
    assert painter["supported_parameters"]["n"] == {"type": "range", "min": 1, "max": 10}
    listed = sdk.images.list_models()
    assert {m.id for m in listed.data} == set(items)
    assert httpx.get(gw.url + "/v1/images/models").json()["data"][0]["endpoints"].startswith("/v1/images/models/")


def test_image_model_endpoints(gw: Gateway, sdk: OpenRouter) -> None:
    r = httpx.get(gw.api + "/images/models/test/painter/endpoints")
    assert r.status_code == 200, r.text
    if spec_available():
        validate_response("listImageModelEndpoints", r.json())
    body = decimal_json(r)
    assert body["id"] == "test/painter"
    assert [(e["provider_slug"], e["provider_name"]) for e in body["endpoints"]] == [
        ("oai-img", "OpenAI Images"),
        ("gem-img", "Gemini Images"),
    ]
    assert [e["pricing"] for e in body["endpoints"]] == [
        [{"billable": "output_image", "unit": "image", "cost_usd": Decimal("0.02")}],
        [{"billable": "output_image", "unit": "image", "cost_usd": Decimal("0.03")}],
    ]
    gpt = sdk.images.list_model_endpoints(author="test", slug="gpt-image")
    assert [(p.billable, p.unit, p.cost_usd) for p in gpt.endpoints[0].pricing] == [
        ("input_text", "token", 0.000005),
        ("output_image", "token", 0.00004),
    ]
    assert gpt.endpoints[0].supported_parameters["size"].values == ["1024x1024", "1536x1024", "1024x1536"]
    for path in ("/images/models/test/chatty/endpoints", "/images/models/test/typo/endpoints"):
        r = httpx.get(gw.api + path)
        assert r.status_code == 404 and r.json()["error"]["code"] == 404
    with pytest.raises(errors.NotFoundResponseError):
        sdk.images.list_model_endpoints(author="test", slug="chatty")


# -- our own OpenAPI document describes what is served, strictly (no field it does not name)


def test_answers_conform_to_our_own_document(gw: Gateway, key: str) -> None:
    from tests.test_openapi import conforms

    r = post(gw, key, {"model": "test/gpt-image", "prompt": "a fern"})
    conforms("/images", "post", 200, r.json())
    r = post(gw, key, {"model": "sandbox/image", "prompt": "a fern", "response_format": "url"}, "/images/generations")
    conforms("/images/generations", "post", 200, r.json())
    with gw.client(key) as c:
        form = {"model": (None, "sandbox/image"), "prompt": (None, "a fern"), "image[]": ("a.png", picture("x"))}
        conforms("/images/edits", "post", 200, c.post("/images/edits", files=form).json())
    conforms("/images/models", "get", 200, httpx.get(gw.api + "/images/models").json())
    path = "/images/models/{author}/{slug}/endpoints"
    for model in ("test/painter", "test/gpt-image", "test/gemini-image", "sandbox/image"):
        conforms(path, "get", 200, httpx.get(f"{gw.api}/images/models/{model}/endpoints").json())
    conforms(path, "get", 404, httpx.get(gw.api + "/images/models/test/chatty/endpoints").json())
    conforms("/images", "post", 400, post(gw, key, {"model": "sandbox/image", "prompt": ""}).json())


# -- the SDK conformance checks (tests/test_sdk_conformance.py runs them against its own gateway, which
# needs the sandbox: sandbox/image), here against this module's


def images_generate(ctx: Any) -> None:
    res = ctx.sdk.images.generate(model="sandbox/image", prompt="conformance", n=2, aspect_ratio="16:9")
    assert len(res.data) == 2 and all(d.media_type == "image/png" for d in res.data), res
    assert pngs(res.data) == [picture("conformance", index=i, ratio=16 / 9) for i in range(2)]
    assert res.usage is not None and Decimal(str(res.usage.cost)) == 2 * SANDBOX_PRICE


def images_list_models(ctx: Any) -> None:
    res = ctx.sdk.images.list_models()
    found = next(m for m in res.data if m.id == "sandbox/image")
    assert "image" in found.architecture.output_modalities and found.endpoints.endswith("/sandbox/image/endpoints")


def images_list_model_endpoints(ctx: Any) -> None:
    res = ctx.sdk.images.list_model_endpoints(author="sandbox", slug="image")
    assert res.id == "sandbox/image" and [e.provider_slug for e in res.endpoints] == ["sandbox"]
    assert [(p.billable, p.unit, p.cost_usd) for p in res.endpoints[0].pricing] == [("output_image", "image", 0.04)]


def openai_images_generate(ctx: Any) -> None:
    """POST /images/generations: the SDKs have no method for it; OpenAI's SDK is the client it serves."""
    client = openai.OpenAI(api_key=ctx.key, base_url=ctx.gw.api)
    res = client.images.generate(model="sandbox/image", prompt="conformance", n=1)
    assert base64.b64decode(res.data[0].b64_json or "") == picture("conformance")
    assert res.usage is not None and res.usage.output_tokens == 0


def openai_images_edit(ctx: Any) -> None:
    """POST /images/edits: OpenAI's images.edit form, through OpenAI's SDK."""
    client = openai.OpenAI(api_key=ctx.key, base_url=ctx.gw.api)
    res = client.images.edit(model="sandbox/image", image=("start.png", picture("start")), prompt="conformance")
    assert len(res.data) == 1 and base64.b64decode(res.data[0].b64_json or "").startswith(b"\x89PNG")
    assert res.usage is not None and Decimal(str(res.usage.model_extra["cost"])) == SANDBOX_PRICE  # type: ignore[index]


CONFORMANCE = {
    "images.generate": images_generate,
    "images.listModels": images_list_models,
    "images.listModelEndpoints": images_list_model_endpoints,
    "POST /images/generations": openai_images_generate,
    "POST /images/edits": openai_images_edit,
}


def test_the_conformance_checks_pass(gw: Gateway, key: str, sdk: OpenRouter) -> None:
    for check in CONFORMANCE.values():
        check(SimpleNamespace(sdk=sdk, gw=gw, key=key))
    assert key_usage(gw, key) == 4 * SANDBOX_PRICE


# -- @openrouter/sdk (node): tests/sdk_ts/images.mjs, one JSON line per check


def test_typescript_sdk(gw: Gateway, key: str) -> None:
    results = run_steps("images.mjs", {"serverURL": gw.api, "apiKey": key})
    assert set(results) == {"images.generate", "images.listModels", "images.listModelEndpoints", "images.errors"}
    assert all(r["ok"] for r in results.values()), results
    assert key_usage(gw, key) == 2 * SANDBOX_PRICE  # the two images; the refused requests cost nothing


# -- what tests/test_schemathesis.py may see refused: requests the document's schemas allow but that are
# wrong in ways a schema cannot say (a blank prompt, sizes that disagree, broken base64 ...)

_REFUSED = (
    "must not be empty",
    "each side must be",
    "disagree",
    "is not of resolution",
    "is not of aspect ratio",
    "transparent background",
    "not valid base64",
    "data URL is empty",
    "does not support images",
)


def _refused(error: dict[str, Any]) -> bool:
    availability = error.get("availability") or {}
    return availability.get("code") == "model_not_found" or any(text in error["message"] for text in _REFUSED)


SEMANTIC_REFUSALS = {
    ("/images", "post"): _refused,
    ("/images/generations", "post"): _refused,
    # Random bytes are no image.
    ("/images/edits", "post"): lambda error: _refused(error) or "is not a PNG, JPEG, WebP or GIF" in error["message"],
}
