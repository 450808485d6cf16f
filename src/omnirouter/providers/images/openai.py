"""OpenAI's Images API (`api: openai`, and OpenAI-compatible image servers): POST /images/generations
(JSON), and POST /images/edits (multipart) when the request brings reference images.

gpt-image models always answer base64 and report token usage (`input_tokens`, `output_tokens`), which
the catalog may price (pricing.prompt / completion) beside or instead of a price per image; DALL·E
models are asked for `b64_json` (they answer URLs by default). Sizes are mapped to what each family
offers; other servers get the pixels asked for.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from omnirouter.errors import GatewayError
from omnirouter.providers.answers import body_of
from omnirouter.providers.base import UpstreamError
from omnirouter.providers.images.answer import Image, ImageAnswer, answer, format_media_type
from omnirouter.providers.images.request import asked_size, aspect, data_url, dimensions, prompt_of

if TYPE_CHECKING:
    from omnirouter.pipeline.modality import Upstream

GPT_IMAGE_SIZES = {"square": "1024x1024", "landscape": "1536x1024", "portrait": "1024x1536"}
DALL_E_3_SIZES = {"square": "1024x1024", "landscape": "1792x1024", "portrait": "1024x1792"}
DALL_E_2_SIZES = {"512": "512x512"}  # other tiers: 1024x1024 (its largest)


def _shape(ratio: float) -> str:
    return "square" if 0.8 <= ratio <= 1.25 else "landscape" if ratio > 1 else "portrait"


def size(model: str, request: dict[str, Any]) -> str | None:
    """The `size` to send: None (the model's default) when the client asked nothing."""
    if not asked_size(request):
        return None
    if "width" in request:
        return f"{request['width']}x{request['height']}"
    if model.startswith("gpt-image"):
        return GPT_IMAGE_SIZES[_shape(aspect(request))]
    if model.startswith("dall-e-3"):
        return DALL_E_3_SIZES[_shape(aspect(request))]
    if model.startswith("dall-e-2"):
        return DALL_E_2_SIZES.get(request.get("resolution") or "", "1024x1024")
    width, height = dimensions(request)
    return f"{width}x{height}"


def fields(model: str, request: dict[str, Any]) -> dict[str, Any]:
    """The request's fields in OpenAI's terms (shared by generations and edits)."""
    out: dict[str, Any] = {"model": model, "prompt": prompt_of(request), "n": request.get("n") or 1}
    if (chosen := size(model, request)) is not None:
        out["size"] = chosen
    dall_e = model.startswith("dall-e")
    if dall_e:
        out["response_format"] = "b64_json"  # their default is a URL that expires in an hour
        if model.startswith("dall-e-3") and request.get("quality"):
            out["quality"] = "hd" if request["quality"] == "high" else "standard"
    else:
        for name in ("quality", "background", "output_compression"):
            if request.get(name) is not None:
                out[name] = request[name]
        if request.get("output_format") in ("png", "jpeg", "webp"):
            out["output_format"] = request["output_format"]
    if request.get("user"):
        out["user"] = request["user"]
    return out


def _auth(up: Upstream) -> dict[str, str]:
    return {"Authorization": f"Bearer {up.api_key}"} if up.api_key else {}


def _multipart(values: dict[str, Any], files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = "omnirouter-" + secrets.token_hex(12)
    parts = []
    for name, value in values.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for i, (mime, data) in enumerate(files):
        ext = mime.split("/", 1)[1].split("+", 1)[0]
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image[]"; filename="reference-{i}.{ext}"\r\n'
            f"Content-Type: {mime}\r\n\r\n"
        )
        parts.append(head.encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


# Where a provider's image operations are, and how it is authenticated: OpenAI's (and compatible servers')
# paths under base_url with a Bearer key; Azure's deployments (images/azure.py) bring their own.
UrlOf = Callable[[str], str]


async def _edit(up: Upstream, payload: dict[str, Any], refs: list[str], url: str, auth: dict[str, str]) -> Any:
    files = []
    for ref in refs:
        decoded = data_url(ref)
        if decoded is None:  # the edits endpoint takes uploads: a URL would have to be fetched first
            raise GatewayError(400, "This provider takes reference images as base64 data URLs only")
        files.append(decoded)
    body, content_type = _multipart(payload, files)
    resp = await up.send("POST", url, headers={**auth, "Content-Type": content_type}, body=body)
    raw = await body_of(resp)
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise UpstreamError("Upstream sent an answer that is not valid JSON", status=502, kind="protocol") from None


async def generate(up: Upstream, request: dict[str, Any]) -> ImageAnswer:
    return await generate_at(up, request, up.url, _auth(up))


async def generate_at(up: Upstream, request: dict[str, Any], url_of: UrlOf, auth: dict[str, str]) -> ImageAnswer:
    """OpenAI's image request at `url_of("/images/generations")` (or `/images/edits`), with `auth`."""
    model = up.endpoint.upstream_model
    payload = fields(model, request)
    if request.get("references"):
        data = await _edit(up, payload, request["references"], url_of("/images/edits"), auth)
    else:
        data = await up.json("POST", url_of("/images/generations"), payload, headers=auth)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise UpstreamError("Upstream sent an answer without images", status=502, kind="protocol")
    media = format_media_type(data.get("output_format") or payload.get("output_format") or "png")
    images = [Image(item.get("b64_json") or "", media) for item in data["data"] if isinstance(item, dict)]
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    return answer(
        images, input_tokens=int(usage.get("input_tokens") or 0), output_tokens=int(usage.get("output_tokens") or 0)
    )
