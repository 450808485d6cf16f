"""The pure parts of image generation, without a network: how sizes are read and mapped per upstream,
what counts as a usable image, the sandbox's PNG."""

from __future__ import annotations

import base64
import struct
import zlib

import pytest

from omnirouter.errors import GatewayError
from omnirouter.providers.base import UpstreamError
from omnirouter.providers.images import gemini, openai, png
from omnirouter.providers.images.answer import Image, answer, usable
from omnirouter.providers.images.request import dimensions, nearest_ratio, size_fields
from omnirouter.providers.images.sandbox import picture


def request(**fields: object) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": "p"}], "n": 1, **fields}


@pytest.mark.parametrize(
    ("size", "resolution", "aspect", "expected"),
    [
        (None, None, None, {"resolution": None, "aspect_ratio": None}),
        ("auto", "2K", "auto", {"resolution": "2K", "aspect_ratio": None}),
        ("2k", None, "16:9", {"resolution": "2K", "aspect_ratio": "16:9"}),
        ("1536x1024", None, "3:2", {"width": 1536, "height": 1024}),
        ("1024X1024", "1K", None, {"width": 1024, "height": 1024}),
    ],
)
def test_sizes_are_read_three_ways(size, resolution, aspect, expected) -> None:
    assert size_fields(size, resolution, aspect) == expected


@pytest.mark.parametrize(
    ("size", "resolution", "aspect"),
    [("big", None, None), ("0x10", None, None), ("9000x10", None, None), ("2K", "4K", None),
     ("1024x1024", "4K", None), ("1024x1024", None, "16:9")],
)  # fmt: skip
def test_sizes_that_cannot_be_read_or_disagree_are_refused(size, resolution, aspect) -> None:
    with pytest.raises(GatewayError) as err:
        size_fields(size, resolution, aspect)
    assert err.value.status == 400


def test_dimensions_keep_the_ratio_at_the_tier() -> None:
    assert dimensions(request()) == (1024, 1024)
    assert dimensions(request(resolution="2K", aspect_ratio="16:9")) == (2048, 1152)
    assert dimensions(request(resolution="1K", aspect_ratio="9:16")) == (576, 1024)
    assert dimensions(request(width=300, height=200)) == (300, 200)


def test_each_openai_family_gets_a_size_it_makes() -> None:
    wide = request(aspect_ratio="16:9")
    assert openai.size("gpt-image-1", wide) == "1536x1024"
    assert openai.size("dall-e-3", wide) == "1792x1024"
    assert openai.size("dall-e-2", request(resolution="512")) == "512x512"
    assert openai.size("dall-e-2", request(resolution="4K")) == "1024x1024"
    assert openai.size("flux-schnell", wide) == "1024x576"
    assert openai.size("gpt-image-1", request()) is None  # nothing asked, nothing sent
    assert openai.fields("dall-e-3", request(quality="high"))["quality"] == "hd"
    assert openai.fields("dall-e-3", request())["response_format"] == "b64_json"
    assert "response_format" not in openai.fields("gpt-image-1", request())


def test_gemini_is_asked_for_the_nearest_ratio_and_a_tier() -> None:
    assert nearest_ratio(2.0, gemini.RATIOS) == "16:9"
    body = gemini.body(request(width=1000, height=2000, seed=7))
    assert body["generationConfig"] == {
        "responseModalities": ["IMAGE"],
        "imageConfig": {"aspectRatio": "9:16", "imageSize": "2K"},
        "seed": 7,
    }
    assert "imageConfig" not in gemini.body(request())["generationConfig"]


def test_gemini_answers_without_an_image() -> None:
    refused = {"candidates": [{"content": {"parts": []}, "finishReason": "IMAGE_SAFETY"}]}
    with pytest.raises(UpstreamError) as err:
        gemini._images(refused)
    assert err.value.status == 400
    images, text, prompt, output = gemini._images(
        {
            "candidates": [
                {
                    "content": {
                        "parts": [{"text": "Here."}, {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]
                    }
                }
            ],
            "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 1290},
        }
    )
    assert images == [Image("iVBORw0KGgo=", "image/png")] and text == ["Here."] and (prompt, output) == (4, 1290)


def test_the_worst_case_reserved_follows_the_quality_asked() -> None:
    from omnirouter.modalities.images import IMAGES

    worst = IMAGES.worst_case(request(n=2, quality="medium"), None)
    assert (worst.images, worst.output_tokens, worst.input_tokens) == (2, 2 * 2048, 2 * (len("p") // 2 + 1))
    assert IMAGES.worst_case(request(n=1), None).output_tokens == 8192  # unsaid: high is possible
    with_ref = request(references=["data:image/png;base64,AA=="])
    assert IMAGES.worst_case(with_ref, None).input_tokens == 1 + 1024


def test_only_decodable_non_empty_images_are_usable_and_billed() -> None:
    good = base64.b64encode(picture("x")).decode()
    assert usable(good) and not usable("") and not usable("   ") and not usable("%%%") and not usable(None)
    billed = answer([Image(good), Image(""), Image("not base64!")], input_tokens=3)
    assert billed.units.images == 1 and billed.units.input_tokens == 3
    assert billed.images[0].media_type == "image/png"  # read from its bytes
    with pytest.raises(UpstreamError) as err:
        answer([Image("")])
    assert err.value.status == 502 and err.value.retryable


def test_the_sandbox_png_is_a_real_png() -> None:
    data = picture("hello", ratio=2.0)
    assert png.size_of(data) == (64, 32)
    # Walk the chunks: each CRC matches, and the pixels inflate to height rows of 1 + 3 * width bytes.
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])[0] == zlib.crc32(kind + body)
        chunks[kind] = body
        pos += 12 + length
    assert set(chunks) == {b"IHDR", b"IDAT", b"IEND"}
    assert len(zlib.decompress(chunks[b"IDAT"])) == 32 * (1 + 3 * 64)
    assert picture("hello") == picture("hello") and picture("hello") != picture("hello!")
    assert picture("hello", seed=1) != picture("hello", seed=2)
