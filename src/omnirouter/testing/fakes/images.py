"""OpenAI's Images API, faked: ``POST /v1/images/generations`` (JSON) and ``POST /v1/images/edits``
(multipart with ``image[]`` files), on the shared core (scripted ``Status``, ``Delay``, ``Reset``,
``BrokenJSON``; recording; Bearer auth).

By default it answers as OpenAI does, per model family: gpt-image models return ``b64_json`` PNGs and
token usage, refuse ``response_format`` and sizes they do not make; DALL·E models return URLs unless
asked for ``b64_json`` and report no usage; any other model returns ``b64_json`` without usage. The
pictures are the sandbox's (providers/images/sandbox.py ``picture``), so a test can compare bytes.
``ImageReply`` scripts an answer: how many images, their base64 verbatim (an empty one, broken base64),
the usage object.

    with FakeOpenAIImages.run_in_thread(api_key="k") as fake:
        fake.script(Status(503), ImageReply(b64=[""]))
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

from omnirouter.providers.images.sandbox import picture
from omnirouter.testing.fakes.core import (
    FakeServer,
    FakeThread,
    Reply,
    Route,
    Step,
    Wire,
    WireError,
    _Exchange,
    json_response,
)
from omnirouter.testing.fakes.openai import OpenAIWire

__all__ = [
    "AzureImagesWire",
    "FakeAzureImages",
    "FakeOpenAIImages",
    "ImageReply",
    "OpenAIImagesWire",
    "gpt_image_usage",
]

GPT_IMAGE_SIZES = ("1024x1024", "1536x1024", "1024x1536", "auto")
DALL_E_3_SIZES = ("1024x1024", "1792x1024", "1024x1792")
OUTPUT_TOKENS_PER_IMAGE = 1056  # gpt-image-1 at medium quality, 1024x1024
REFERENCE_TOKENS = 323  # what one input image costs gpt-image-1 in input tokens (low fidelity)


@dataclass(frozen=True, kw_only=True)
class ImageReply(Reply):
    """A scripted image answer. ``count`` images (default: the request's ``n``); ``b64`` sends these
    strings verbatim as the images; ``usage`` (inherited) replaces the usage object, ``omit_usage``
    drops it; ``text`` is what a model that talks (Gemini) says beside its images; ``finish_reason``
    (Gemini's vocabulary) ends the candidate, e.g. IMAGE_SAFETY with ``count=0``."""

    count: int | None = None
    b64: list[str] | None = None
    text: str | None = None


def gpt_image_usage(prompt: str, images: int, references: int = 0) -> dict[str, Any]:
    """The usage the fake reports for a gpt-image request (a test computes the expected cost from it)."""
    text_tokens = max(1, len(prompt) // 4)
    image_tokens = references * REFERENCE_TOKENS
    output = images * OUTPUT_TOKENS_PER_IMAGE
    return {
        "total_tokens": text_tokens + image_tokens + output,
        "input_tokens": text_tokens + image_tokens,
        "output_tokens": output,
        "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": image_tokens},
    }


def pictures(prompt: str, count: int, reply: ImageReply) -> list[str]:
    if reply.b64 is not None:
        return list(reply.b64)
    return [base64.b64encode(picture(prompt, index=i)).decode() for i in range(count)]


def _multipart(raw: bytes, content_type: str) -> tuple[dict[str, str], list[bytes]]:
    """A multipart/form-data body's text fields and its ``image``/``image[]`` files."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw
    )
    values: dict[str, str] = {}
    files: list[bytes] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        if name in ("image", "image[]"):
            files.append(data)
        elif isinstance(name, str):
            values[name] = data.decode()
    return values, files


class OpenAIImagesWire(OpenAIWire):
    name: ClassVar[str] = "FakeOpenAIImages"

    def routes(self) -> list[Route]:
        return [Route("POST", "/images/generations"), Route("POST", "/images/edits")]


class AzureImagesWire(OpenAIImagesWire):
    """Azure OpenAI's image deployments: the same API at
    ``/openai/deployments/{deployment}/images/...?api-version=...``, authenticated by ``api-key``."""

    name: ClassVar[str] = "FakeAzureImages"
    base_path: ClassVar[str] = ""

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/openai/deployments/{deployment}/images/generations"),
            Route("POST", "/openai/deployments/{deployment}/images/edits"),
        ]

    def check_auth(self, request: web.Request, api_key: str) -> WireError | None:
        if not request.query.get("api-version"):
            return WireError(404, "Resource not found")
        return None if request.headers.get("api-key") == api_key else WireError(401, "Access denied: wrong api-key.")


class FakeOpenAIImages(FakeServer):
    wire: ClassVar[Wire] = OpenAIImagesWire()

    async def _perform(self, step: Step | None, ex: _Exchange, route: Route) -> web.StreamResponse:
        if step is not None and not isinstance(step, Reply):
            return await super()._perform(step, ex, route)  # faults: the core's
        reply = step if isinstance(step, ImageReply) else ImageReply()
        try:
            return self._answer(ex, reply)
        except WireError as err:
            return self._error(err)

    def _answer(self, ex: _Exchange, reply: ImageReply) -> web.Response:
        references = 0
        if ex.request.path.endswith("/images/edits"):
            body: dict[str, Any] = {}
            recorded = self.requests[-1]
            values, files = _multipart(recorded.body, ex.request.headers.get("Content-Type", ""))
            body = dict(values)
            if "n" in body:
                body["n"] = int(body["n"])
            if not files:
                raise WireError(400, "Missing required parameter: 'image'.", "image")
            references = len(files)
            recorded.json = {**body, "images": len(files)}  # what a test inspects
        elif isinstance(ex.json, dict):
            body = ex.json
        else:
            raise WireError(400, "We could not parse the JSON body of your request.")
        model, prompt = str(body.get("model") or "dall-e-2"), body.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            raise WireError(400, "Missing required parameter: 'prompt'.", "prompt")
        n = body.get("n", 1)
        if not isinstance(n, int) or not 1 <= n <= 10:
            raise WireError(400, f"Invalid 'n': integer must be between 1 and 10, got {n}.", "n")
        gpt_image, size = model.startswith("gpt-image"), body.get("size")
        if gpt_image and "response_format" in body:
            raise WireError(400, "Unknown parameter: 'response_format'.", "response_format")
        offered = GPT_IMAGE_SIZES if gpt_image else DALL_E_3_SIZES if model.startswith("dall-e-3") else None
        if size is not None and offered is not None and size not in offered:
            raise WireError(400, f"Invalid value: '{size}'. Supported values are: {', '.join(offered)}.", "size")
        count = reply.count if reply.count is not None else n
        images = pictures(prompt, count, reply)
        urls = model.startswith("dall-e") and body.get("response_format") != "b64_json"
        data = [{"url": f"https://images.example/{i}.png"} if urls else {"b64_json": b} for i, b in enumerate(images)]
        out: dict[str, Any] = {"created": int(time.time()), "data": data}
        if gpt_image:
            out["output_format"] = body.get("output_format", "png")
            if not reply.omit_usage:
                out["usage"] = reply.usage or gpt_image_usage(prompt, len(images), references)
        elif reply.usage is not None:
            out["usage"] = reply.usage
        return json_response(out)

    @classmethod
    def run_in_thread(cls, **kwargs: Any) -> FakeThread[FakeOpenAIImages]:
        return FakeThread(cls(**kwargs))


class FakeAzureImages(FakeOpenAIImages):
    """A fake Azure OpenAI resource with image deployments (its ``base_url`` is the resource URL); the
    request body's ``model`` (the deployment's, as the gateway sends it) picks the model family."""

    wire: ClassVar[Wire] = AzureImagesWire()
