"""Gemini image models, faked: ``POST /v1beta/models/{model}:generateContent`` (and
``:streamGenerateContent?alt=sse``) answering with ``inlineData`` image parts when
``generationConfig.responseModalities`` asks for IMAGE, on the shared core (scripted faults,
recording, ``x-goog-api-key`` auth, Google's error envelope).

One candidate per call, as Gemini's image models make: a PNG (the sandbox's ``picture`` of the last
user text, so tests can compare bytes) and, when TEXT is asked for too, a sentence before it. Usage
counts the prompt (4 characters a token, 258 per input image) and 1290 tokens per image made.
``ImageReply`` (fakes/images.py) scripts the answer: ``count``, ``b64``, ``text``, ``finish_reason``
(IMAGE_SAFETY with ``count=0`` is a refusal), ``usage`` (a usageMetadata object).

The chat adapter's image output (providers/gemini_wire.py) is tested against this fake too.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from aiohttp import web

from omnirouter.testing.fakes.core import (
    FakeServer,
    FakeThread,
    Reply,
    Route,
    Step,
    Wire,
    WireError,
    _Exchange,
    encode_json,
    json_response,
)
from omnirouter.testing.fakes.gemini import GeminiWire
from omnirouter.testing.fakes.images import ImageReply, pictures

__all__ = ["IMAGE_TOKENS", "INPUT_IMAGE_TOKENS", "FakeGeminiImages", "GeminiImagesWire"]

IMAGE_TOKENS = 1290  # what Gemini 2.5 Flash Image counts for one image made
INPUT_IMAGE_TOKENS = 258
_MODALITIES = frozenset({"TEXT", "IMAGE"})
_RATIOS = frozenset({"1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"})


class GeminiImagesWire(GeminiWire):
    name: ClassVar[str] = "FakeGeminiImages"

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/models/{model}:generateContent", stream=False),
            Route("POST", "/models/{model}:streamGenerateContent", stream=True),
        ]


def _texts(body: dict[str, Any]) -> tuple[str, int]:
    """The last user turn's text, and how many images the request carries."""
    last, images = "", 0
    for content in body.get("contents") or ():
        parts = content.get("parts") or []
        images += sum(1 for p in parts if isinstance(p, dict) and "inlineData" in p)
        if content.get("role", "user") == "user":
            last = " ".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str))
    return last, images


def _chars(body: dict[str, Any]) -> int:
    return sum(
        len(p.get("text") or "")
        for c in body.get("contents") or ()
        for p in c.get("parts") or ()
        if isinstance(p, dict)
    )


class FakeGeminiImages(FakeServer):
    wire: ClassVar[Wire] = GeminiImagesWire()

    async def _perform(self, step: Step | None, ex: _Exchange, route: Route) -> web.StreamResponse:
        if step is not None and not isinstance(step, Reply):
            return await super()._perform(step, ex, route)
        reply = step if isinstance(step, ImageReply) else ImageReply()
        try:
            answer = self._answer(ex, reply)
        except WireError as err:
            return self._error(err)
        if not route.stream:
            return json_response(answer)
        resp = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream"})
        await resp.prepare(ex.request)
        # Text first, then the image in an event of its own, as Gemini streams them.
        parts = answer["candidates"][0]["content"]["parts"]
        for i, part in enumerate(parts):
            event: dict[str, Any] = {
                "candidates": [{"content": {"role": "model", "parts": [part]}, "index": 0}],
                "modelVersion": answer["modelVersion"],
                "responseId": answer["responseId"],
            }
            if i == len(parts) - 1:
                event["candidates"][0]["finishReason"] = answer["candidates"][0]["finishReason"]
                event["usageMetadata"] = answer["usageMetadata"]
            await resp.write(b"data: " + encode_json(event) + b"\r\n\r\n")
        if not parts:
            await resp.write(b"data: " + encode_json(answer) + b"\r\n\r\n")
        return resp

    def _answer(self, ex: _Exchange, reply: ImageReply) -> dict[str, Any]:
        body = ex.json
        if not isinstance(body, dict) or not isinstance(body.get("contents"), list) or not body["contents"]:
            raise WireError(400, "* GenerateContentRequest.contents: contents is not specified")
        config = body.get("generationConfig") or {}
        modalities = set(config.get("responseModalities") or ["TEXT"])
        if not modalities <= _MODALITIES:
            raise WireError(400, f"Invalid value at 'generation_config.response_modalities': {sorted(modalities)}")
        image_config = config.get("imageConfig") or {}
        if image_config.get("aspectRatio") not in (None, *_RATIOS):
            raise WireError(400, f"Unsupported aspect ratio: {image_config['aspectRatio']}")
        if image_config.get("imageSize") not in (None, "1K", "2K", "4K"):
            raise WireError(400, f"Unsupported image size: {image_config['imageSize']}")
        prompt, inputs = _texts(body)
        parts: list[dict[str, Any]] = []
        if "TEXT" in modalities:
            parts.append({"text": reply.text if reply.text is not None else "Here is the picture you asked for."})
        count = reply.count if reply.count is not None else 1 if "IMAGE" in modalities else 0
        for b64 in pictures(prompt, count, reply):
            parts.append({"inlineData": {"mimeType": "image/png", "data": b64}})
        prompt_tokens = max(1, _chars(body) // 4) + inputs * INPUT_IMAGE_TOKENS
        text_tokens = sum(max(1, len(p["text"]) // 4) for p in parts if "text" in p)
        images = sum(1 for p in parts if "inlineData" in p)
        usage = reply.usage or {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": text_tokens + images * IMAGE_TOKENS,
            "totalTokenCount": prompt_tokens + text_tokens + images * IMAGE_TOKENS,
            "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": images * IMAGE_TOKENS}],
        }
        return {
            "candidates": [
                {
                    "content": {"role": "model", "parts": parts},
                    "finishReason": reply.finish_reason or "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": usage,
            "modelVersion": ex.request.match_info.get("model", "gemini-2.5-flash-image"),
            "responseId": f"fake-{time.time_ns():x}",
        }

    @classmethod
    def run_in_thread(cls, **kwargs: Any) -> FakeThread[FakeGeminiImages]:
        return FakeThread(cls(**kwargs))
