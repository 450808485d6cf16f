"""What an image upstream answered, as the gateway bills and renders it.

Billing rule (behaviors §5): a request is billed only when at least one image with non-empty,
decodable base64 came back. `answer` keeps only such images; with none it raises, so the attempt
fails (and the next provider is tried) instead of charging for nothing.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from omnirouter.accounting.units import Units
from omnirouter.providers.base import UpstreamError
from omnirouter.providers.images.request import MEDIA_TYPES


@dataclass(frozen=True)
class Image:
    b64: str  # base64 of the image's bytes
    media_type: str | None = None  # image/png ...; None when the upstream did not say


@dataclass(frozen=True)
class ImageAnswer:
    images: list[Image]
    units: Units  # what is billed: the images, and tokens where the upstream counts them
    text: str | None = None  # words the model said beside the images (Gemini), not sent on /images


def usable(b64: object) -> bool:
    """Non-empty, decodable base64."""
    if not isinstance(b64, str) or not b64.strip():
        return False
    try:
        return bool(base64.b64decode(b64, validate=True))
    except (binascii.Error, ValueError):
        return False


def media_type_of(data_b64: str, fallback: str | None = None) -> str | None:
    """An image's media type from its first bytes (PNG, JPEG, WebP, GIF, SVG); `fallback` otherwise."""
    try:
        head = base64.b64decode(data_b64[:64], validate=False)
    except (binascii.Error, ValueError):
        return fallback
    if head.startswith(b"\x89PNG"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"GIF8":
        return "image/gif"
    if head.lstrip().startswith((b"<svg", b"<?xml")):
        return "image/svg+xml"
    return fallback


def answer(
    images: list[Image], *, input_tokens: int = 0, output_tokens: int = 0, text: str | None = None
) -> ImageAnswer:
    """The billable answer: the usable images, each image counted, tokens as the upstream reported them."""
    kept = [Image(i.b64, media_type_of(i.b64, i.media_type)) for i in images if usable(i.b64)]
    if not kept:
        raise UpstreamError("The provider returned no usable image", status=502, kind="protocol")
    units = Units(input_tokens=max(0, input_tokens), output_tokens=max(0, output_tokens), images=len(kept))
    return ImageAnswer(kept, units, text)


def format_media_type(output_format: str | None) -> str | None:
    return MEDIA_TYPES.get(output_format or "")
