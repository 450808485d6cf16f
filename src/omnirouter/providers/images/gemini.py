"""Gemini image models (`api: gemini`: gemini-2.5-flash-image, gemini-3-pro-image-preview ...):
generateContent with `responseModalities: ["IMAGE"]`; the images come back as `inlineData` parts.

One call makes one image, so `n` images are `n` calls made together; their usage is summed, and the
images of the calls that succeeded are the answer (a call that failed made none, and is not billed). Reference
images go in as inlineData parts beside the prompt (image editing). The size is asked for with
`imageConfig`: the nearest aspect ratio Gemini offers and, when a tier was asked for, `imageSize`.
"""

from __future__ import annotations

import asyncio
import base64
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from omnirouter.errors import GatewayError
from omnirouter.providers.base import UpstreamError
from omnirouter.providers.images.answer import Image, ImageAnswer, answer
from omnirouter.providers.images.request import TIERS, asked_size, aspect, data_url, nearest_ratio, prompt_of

if TYPE_CHECKING:
    from omnirouter.pipeline.modality import Upstream

RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
SIZES = ("1K", "2K", "4K")
# Finish reasons that mean the model would not draw this prompt.
REFUSALS = frozenset({"SAFETY", "IMAGE_SAFETY", "PROHIBITED_CONTENT", "IMAGE_PROHIBITED_CONTENT", "BLOCKLIST", "SPII"})


def _tier(request: dict[str, Any]) -> str | None:
    if "width" in request:
        side = max(request["width"], request["height"])
        return min(SIZES, key=lambda t: abs(TIERS[t] - side))
    tier = request.get("resolution")
    return None if tier is None else "1K" if tier == "512" else tier


def body(request: dict[str, Any]) -> dict[str, Any]:
    """The generateContent body for one image."""
    parts: list[dict[str, Any]] = [{"text": prompt_of(request)}]
    for url in request.get("references") or ():
        decoded = data_url(url)
        if decoded is None:  # Gemini reads inline bytes, or files it stores itself
            raise GatewayError(400, "This provider takes reference images as base64 data URLs only")
        parts.append({"inlineData": {"mimeType": decoded[0], "data": base64.b64encode(decoded[1]).decode()}})
    config: dict[str, Any] = {"responseModalities": ["IMAGE"]}
    if asked_size(request):
        image_config = {"aspectRatio": nearest_ratio(aspect(request), RATIOS)}
        if (tier := _tier(request)) is not None:
            image_config["imageSize"] = tier
        config["imageConfig"] = image_config
    if request.get("seed") is not None:
        config["seed"] = request["seed"]
    return {"contents": [{"role": "user", "parts": parts}], "generationConfig": config}


def _images(data: Any) -> tuple[list[Image], list[str], int, int]:
    """(images, text, prompt tokens, output tokens) of one GenerateContentResponse."""
    if not isinstance(data, dict):
        raise UpstreamError("Upstream sent an answer that is not an object", status=502, kind="protocol")
    images, text = [], []
    for cand in data.get("candidates") or ():
        reason = cand.get("finishReason")
        for part in (cand.get("content") or {}).get("parts") or ():
            inline = part.get("inlineData") if isinstance(part, dict) else None
            if isinstance(inline, dict) and str(inline.get("mimeType", "")).startswith("image/"):
                images.append(Image(str(inline.get("data") or ""), inline.get("mimeType")))
            elif isinstance(part, dict) and isinstance(part.get("text"), str) and not part.get("thought"):
                text.append(part["text"])
        if reason in REFUSALS and not images:
            raise UpstreamError(
                f"The provider refused to draw this prompt ({reason})", status=400, raw=str(data)[:2000]
            )
    if not data.get("candidates") and (blocked := (data.get("promptFeedback") or {}).get("blockReason")):
        raise UpstreamError(f"The provider refused the prompt ({blocked})", status=400)
    meta = data.get("usageMetadata") or {}
    prompt = int(meta.get("promptTokenCount") or 0)
    output = int(meta.get("candidatesTokenCount") or 0) + int(meta.get("thoughtsTokenCount") or 0)
    return images, text, prompt, output


async def generate(up: Upstream, request: dict[str, Any]) -> ImageAnswer:
    model = up.endpoint.upstream_model.removeprefix("models/")
    url = up.url(f"/models/{quote(model, safe='-._~')}:generateContent")
    headers = {"x-goog-api-key": up.api_key} if up.api_key else {}
    payload = body(request)
    calls = [up.json("POST", url, payload, headers=headers) for _ in range(request["n"])]
    results = await asyncio.gather(*calls, return_exceptions=True)
    answered = [r for r in results if not isinstance(r, BaseException)]
    if not answered:  # every call failed: the attempt fails as the first did (the next provider may serve)
        raise next(r for r in results if isinstance(r, BaseException))
    # `n` is an upper bound (the document says providers may return fewer): calls that failed made no image.
    images: list[Image] = []
    text: list[str] = []
    prompt = output = 0
    for data in answered:
        got, words, p, o = _images(data)
        images += got
        text += words
        prompt, output = prompt + p, output + o
    return answer(images, input_tokens=prompt, output_tokens=output, text="".join(text) or None)
