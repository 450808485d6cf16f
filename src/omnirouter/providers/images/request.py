"""What an image request asks for, validated once (modalities/images.py) and read by every upstream:
the prompt, how many images, their size, format and quality, and reference images.

Sizes are given three ways (ImageGenerationRequest): a `resolution` tier with an `aspect_ratio`, a `size`
tier (the same as `resolution`), or a `size` in pixels ("1536x1024"), which is authoritative: a
`resolution` or `aspect_ratio` that disagrees with it is refused. Each upstream maps what was asked to
the sizes it offers (`dimensions`, `aspect`).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from omnirouter.errors import GatewayError
from omnirouter.formats.openai_chat import ProviderPrefs

MAX_IMAGES = 10
MAX_REFERENCES = 16
MAX_PIXELS_SIDE = 8192
TIERS = {"512": 512, "1K": 1024, "2K": 2048, "4K": 4096}
ASPECT_RATIOS = (
    "1:1", "1:2", "1:4", "1:8", "2:1", "2:3", "3:2", "3:4", "4:1", "4:3", "4:5", "5:4", "8:1", "9:16", "16:9",
    "9:19.5", "19.5:9", "9:20", "20:9", "9:21", "21:9", "auto",
)  # fmt: skip
MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "svg": "image/svg+xml"}
# What `size` may be (the document says so): a tier, or pixels; the values are checked in size_fields.
SIZE_PATTERN = r"^\s*(auto|AUTO|Auto|512|[124][kK]|\d{1,5}\s*[xX]\s*\d{1,5})\s*$"
# A reference image: a base64 data URL of an image, or an http(s) URL.
REFERENCE_PATTERN = r"^\s*(data:image/[\w.+-]+(;[^,;]*)*;base64,|[hH][tT][tT][pP][sS]?://)"
_PIXELS = re.compile(r"^\s*(\d{1,5})\s*[xX]\s*(\d{1,5})\s*$")
_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[^,;]*)*?);base64,(?P<data>.*)$", re.S)

AspectRatio = Literal[
    "1:1", "1:2", "1:4", "1:8", "2:1", "2:3", "3:2", "3:4", "4:1", "4:3", "4:5", "5:4", "8:1", "9:16", "16:9",
    "9:19.5", "19.5:9", "9:20", "20:9", "9:21", "21:9", "auto",
]  # fmt: skip


Size = Annotated[str, Meta(pattern=SIZE_PATTERN, description="A tier (512, 1K, 2K, 4K) or pixels (WxH)")]


class ImageURL(msgspec.Struct, kw_only=True):
    url: Annotated[str, Meta(pattern=REFERENCE_PATTERN, description="A base64 data URL of an image, or http(s)")]


class ContentPartImage(msgspec.Struct, kw_only=True):
    type: Literal["image_url"]
    image_url: ImageURL


class ImageGenerationRequest(msgspec.Struct, kw_only=True):
    """POST /images. Routing fields (`models`, `provider`, `user`, `session_id`) are read as chat reads them."""

    model: str
    prompt: Annotated[str, Meta(min_length=1, description="Text description of the desired image")]
    n: Annotated[int, Meta(ge=1, le=MAX_IMAGES, description="How many images (1-10)")] = 1
    size: Size | None = None
    resolution: Literal["512", "1K", "2K", "4K"] | None = None
    aspect_ratio: AspectRatio | None = None
    output_format: Literal["png", "jpeg", "webp", "svg"] | None = None
    output_compression: Annotated[int, Meta(ge=0, le=100)] | None = None
    quality: Literal["auto", "low", "medium", "high"] | None = None
    background: Literal["auto", "transparent", "opaque"] | None = None
    seed: int | None = None
    stream: bool | None = None
    input_references: Annotated[list[ContentPartImage], Meta(max_length=MAX_REFERENCES)] | None = None
    models: list[str] | None = None
    provider: ProviderPrefs | None = None  # read as chat reads it (pipeline/modality.py)
    user: str | None = None
    session_id: Annotated[str, Meta(max_length=256)] | None = None


def _bad(message: str) -> GatewayError:
    return GatewayError(400, message)


def _tier_of(side: int) -> str:
    """The resolution tier nearest a long side of `side` pixels."""
    return min(TIERS, key=lambda t: abs(TIERS[t] - side))


def _ratio(aspect: str) -> float:
    a, b = aspect.split(":")
    return float(a) / float(b)


def size_fields(size: str | None, resolution: str | None, aspect: str | None) -> dict[str, Any]:
    """`size`, `resolution` and `aspect_ratio` as one answer: {"width", "height"} when pixels were given,
    else {"resolution", "aspect_ratio"} (each None when not asked). Refuses sizes it cannot read and
    a pixel size that disagrees with the tier or ratio given beside it."""
    aspect = None if aspect == "auto" else aspect
    if size is None or size.strip().lower() == "auto":
        return {"resolution": resolution, "aspect_ratio": aspect}
    tier = next((t for t in TIERS if t.lower() == size.strip().lower()), None)
    if tier is not None:
        if resolution is not None and resolution != tier:
            raise _bad(f"size {size!r} and resolution {resolution!r} disagree")
        return {"resolution": tier, "aspect_ratio": aspect}
    m = _PIXELS.match(size)
    if m is None:
        raise _bad(f"size {size!r} is neither a tier ({', '.join(TIERS)}) nor pixels such as '1024x1024'")
    width, height = int(m.group(1)), int(m.group(2))
    if not (1 <= width <= MAX_PIXELS_SIDE and 1 <= height <= MAX_PIXELS_SIDE):
        raise _bad(f"size {size!r}: each side must be 1 to {MAX_PIXELS_SIDE} pixels")
    if resolution is not None and _tier_of(max(width, height)) != resolution:
        raise _bad(f"size {size!r} is not of resolution {resolution!r}")
    if aspect is not None and abs(width / height - _ratio(aspect)) > 0.02 * _ratio(aspect):
        raise _bad(f"size {size!r} is not of aspect ratio {aspect!r}")
    return {"width": width, "height": height}


def data_url(url: str) -> tuple[str, bytes] | None:
    """A base64 data URL's (media type, bytes); None for any other URL. Refuses broken base64."""
    m = _DATA_URL.match(url)
    if m is None:
        return None
    try:
        data = base64.b64decode(m.group("data"), validate=True)
    except (binascii.Error, ValueError):
        raise _bad("an input reference's data URL is not valid base64") from None
    if not data:
        raise _bad("an input reference's data URL is empty")
    return m.group("mime") or "application/octet-stream", data


def references(parts: list[ContentPartImage] | None) -> list[str]:
    """The reference images' URLs: base64 data URLs of images, or http(s) URLs."""
    urls = []
    for part in parts or ():
        url = part.image_url.url.strip()
        decoded = data_url(url) if url.startswith("data:") else None
        if decoded is not None:
            if not decoded[0].startswith("image/"):
                raise _bad(f"an input reference is {decoded[0]}, not an image")
        elif not url.lower().startswith(("http://", "https://")):
            raise _bad("an input reference must be a base64 data URL or an http(s) URL")
        urls.append(url)
    return urls


def prompt_of(request: dict[str, Any]) -> str:
    """The prompt, as guardrails left it."""
    return str(request["messages"][0]["content"])


def validated(req: ImageGenerationRequest) -> dict[str, Any]:
    """The request as a dict every upstream reads: routing fields as sent, the prompt (`prompt_of`), `n`,
    the size (see size_fields), `output_format` (png by default), `quality`, `background`,
    `output_compression`, `seed`, `references` (URLs)."""
    if not req.prompt.strip():
        raise _bad("prompt must not be empty")
    if not req.model.strip():
        raise _bad("model must not be empty")
    # The prompt is kept as a user message, where guardrails' content filters read (and may redact) text;
    # every upstream reads it back with `prompt_of`.
    out: dict[str, Any] = {"model": req.model, "messages": [{"role": "user", "content": req.prompt}], "n": req.n}
    for name in ("models", "provider", "user", "session_id"):
        if (value := getattr(req, name)) is not None:
            out[name] = msgspec.to_builtins(value)  # as sent: the pipeline reads the routing fields again
    out.update(size_fields(req.size, req.resolution, req.aspect_ratio))
    out["output_format"] = req.output_format or "png"
    out["quality"] = req.quality
    out["background"] = req.background
    out["output_compression"] = req.output_compression
    out["seed"] = req.seed
    out["stream"] = bool(req.stream)
    out["references"] = references(req.input_references)
    if req.background == "transparent" and out["output_format"] not in ("png", "webp"):
        raise _bad("a transparent background needs output_format png or webp")
    return out


def dimensions(request: dict[str, Any], default_tier: str = "1K") -> tuple[int, int]:
    """The pixels asked for: the explicit size, else the tier's long side at the aspect ratio."""
    if "width" in request:
        return request["width"], request["height"]
    side = TIERS[request.get("resolution") or default_tier]
    ratio = _ratio(request.get("aspect_ratio") or "1:1")
    if ratio >= 1:
        return side, max(16, round(side / ratio / 16) * 16)
    return max(16, round(side * ratio / 16) * 16), side


def aspect(request: dict[str, Any]) -> float:
    """Width over height of what was asked (1 when nothing was)."""
    if "width" in request:
        return request["width"] / request["height"]
    return _ratio(request.get("aspect_ratio") or "1:1")


def asked_size(request: dict[str, Any]) -> bool:
    """Whether the client said anything about the size."""
    return "width" in request or request.get("resolution") is not None or request.get("aspect_ratio") is not None


def nearest_ratio(ratio: float, offered: tuple[str, ...]) -> str:
    """Of the `offered` "a:b" ratios, the one nearest `ratio` (compared on a log scale)."""
    return min(offered, key=lambda r: abs(math.log(_ratio(r)) - math.log(ratio)))
