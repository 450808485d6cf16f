"""The form OpenAI SDKs post to /images/edits (`client.images.edit`): multipart/form-data with the
images as `image` or `image[]` files beside text fields. Read with the standard library's MIME parser;
the images become the base64 data URLs every upstream here takes as references."""

from __future__ import annotations

import base64
import email.parser
import email.policy

from omnirouter.errors import GatewayError

# First bytes -> media type, for the formats image models take.
SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"))
IMAGE_FIELDS = ("image", "image[]")


def _media_type(data: bytes) -> str | None:
    for magic, media in SIGNATURES:
        if data.startswith(magic):
            return media
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def read(raw: bytes, content_type: str) -> tuple[dict[str, str], list[str]]:
    """(text fields, images as data URLs). Refuses a body that is not a form, a mask (inpainting is
    not offered), files that are not PNG, JPEG, WebP or GIF, and a form without an image."""
    if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in content_type:
        raise GatewayError(400, "The body must be multipart/form-data, with the images as `image[]` files")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + raw
    )
    if not message.is_multipart():
        raise GatewayError(400, "The multipart body could not be read")
    fields: dict[str, str] = {}
    images: list[str] = []
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True) or b""
        if name in IMAGE_FIELDS:
            media = _media_type(data)
            if media is None:
                raise GatewayError(400, f"image {len(images) + 1} is not a PNG, JPEG, WebP or GIF image")
            images.append(f"data:{media};base64,{base64.b64encode(data).decode()}")
        elif name == "mask":
            raise GatewayError(400, "mask is not supported: describe the change in the prompt instead")
        elif isinstance(name, str):
            fields[name] = data.decode(errors="replace")
    if not images:
        raise GatewayError(400, "image is required: one or more image files to edit")
    return fields, images
