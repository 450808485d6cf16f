"""The sandbox's images (`sandbox/image`): a small PNG, the same for the same prompt, seed and index and
different otherwise (its two colours come from a hash of them), at the aspect ratio asked for; an SVG
when `output_format` is svg. No network, no imaging library. The chat sandbox (providers/sandbox.py)
draws with `picture` too."""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING, Any

from omnirouter.providers.images import png
from omnirouter.providers.images.answer import Image, ImageAnswer, answer
from omnirouter.providers.images.request import aspect, prompt_of

if TYPE_CHECKING:
    from omnirouter.pipeline.modality import Upstream

LONG_SIDE = 64  # pixels: enough to look at, small enough for every test to carry around


def colours(prompt: str, seed: int | None, index: int) -> tuple[png.Colour, png.Colour]:
    digest = hashlib.sha256(f"{prompt}\x00{seed}\x00{index}".encode()).digest()
    return (digest[0], digest[1], digest[2]), (digest[3], digest[4], digest[5])


def size_for(ratio: float) -> tuple[int, int]:
    if ratio >= 1:
        return LONG_SIDE, max(1, round(LONG_SIDE / ratio))
    return max(1, round(LONG_SIDE * ratio)), LONG_SIDE


def picture(prompt: str, *, seed: int | None = None, index: int = 0, ratio: float = 1.0) -> bytes:
    """The sandbox's PNG for a prompt."""
    top, bottom = colours(prompt, seed, index)
    width, height = size_for(ratio)
    return png.gradient(width, height, top, bottom)


def drawing(prompt: str, *, seed: int | None = None, index: int = 0, ratio: float = 1.0) -> bytes:
    """The sandbox's SVG for a prompt: the same gradient, as markup."""
    (r1, g1, b1), (r2, g2, b2) = colours(prompt, seed, index)
    width, height = size_for(ratio)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
        f'<defs><linearGradient id="g" x2="0" y2="1"><stop offset="0" stop-color="#{r1:02x}{g1:02x}{b1:02x}"/>'
        f'<stop offset="1" stop-color="#{r2:02x}{g2:02x}{b2:02x}"/></linearGradient></defs>'
        f'<rect width="100%" height="100%" fill="url(#g)"/></svg>'
    ).encode()


def data_url(prompt: str, *, seed: int | None = None, index: int = 0) -> str:
    """A PNG of the prompt as a data URL (chat's `message.images`)."""
    return "data:image/png;base64," + base64.b64encode(picture(prompt, seed=seed, index=index)).decode()


async def generate(up: Upstream | None, request: dict[str, Any]) -> ImageAnswer:
    """`n` images for the prompt. PNG whatever raster format was asked (the media type says so)."""
    prompt, seed, ratio = prompt_of(request), request.get("seed"), aspect(request)
    if refs := request.get("references"):  # an edit: the picture depends on what it starts from
        prompt += "\x00" + hashlib.sha256("\x00".join(refs).encode()).hexdigest()
    svg = request.get("output_format") == "svg"
    made = []
    for i in range(request.get("n") or 1):
        data = (drawing if svg else picture)(prompt, seed=seed, index=i, ratio=ratio)
        made.append(Image(base64.b64encode(data).decode(), "image/svg+xml" if svg else "image/png"))
    return answer(made)
