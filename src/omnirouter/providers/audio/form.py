"""multipart/form-data both ways: the parts of a client's upload (python-multipart's parser, fed the
body the gateway has read), and the body of an upload to an upstream."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from python_multipart.multipart import MultipartParseError, MultipartParser, parse_options_header


class FormError(ValueError):
    """The body is not the multipart form its Content-Type says."""


@dataclass
class Part:
    name: str
    data: bytes
    filename: str | None = None  # a file part has one (possibly empty)
    media_type: str | None = None


def parts(body: bytes, content_type: str) -> list[Part]:
    """The parts of a multipart/form-data body, in order."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise FormError("the multipart Content-Type has no boundary")
    out: list[Part] = []
    state: dict[str, object] = {}
    field, value = bytearray(), bytearray()
    headers: dict[str, str] = {}
    data = bytearray()

    def on_part_begin() -> None:
        headers.clear()
        data.clear()

    def on_header_field(b: bytes, start: int, end: int) -> None:
        field.extend(b[start:end])

    def on_header_value(b: bytes, start: int, end: int) -> None:
        value.extend(b[start:end])

    def on_header_end() -> None:
        # As the bytes came (parse_options_header takes them back as such): names are UTF-8, decoded below.
        headers[field.decode("latin-1").lower()] = value.decode("latin-1")
        field.clear()
        value.clear()

    def on_part_data(b: bytes, start: int, end: int) -> None:
        data.extend(b[start:end])

    def on_part_end() -> None:
        _, disposition = parse_options_header(headers.get("content-disposition", ""))
        name = disposition.get(b"name")
        if name is None:
            state["error"] = "a form part has no name"
            return
        filename = disposition.get(b"filename")
        media = headers.get("content-type")
        out.append(
            Part(
                name.decode("utf-8", "replace"),
                bytes(data),
                None if filename is None else filename.decode("utf-8", "replace"),
                media,
            )
        )

    callbacks = {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field, "on_header_value": on_header_value,
        "on_header_end": on_header_end, "on_part_data": on_part_data, "on_part_end": on_part_end,
        "on_end": lambda: state.__setitem__("ended", True),
    }  # fmt: skip
    try:
        parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
        parser.write(body)
        parser.finalize()
    except MultipartParseError as exc:
        raise FormError(f"the multipart body is malformed: {exc}") from None
    if "error" in state:
        raise FormError(str(state["error"]))
    if not state.get("ended"):
        raise FormError("the multipart body ends before its closing boundary")
    return out


def encode(fields: list[tuple[str, str]], file: tuple[str, str, str, bytes]) -> tuple[bytes, str]:
    """A multipart/form-data body of text fields and one file part (name, filename, media type,
    bytes): (body, its Content-Type)."""
    boundary = "omnirouter-" + secrets.token_hex(16)
    out = bytearray()
    for name, text in fields:
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += text.encode() + b"\r\n"
    name, filename, media_type, data = file
    safe = filename.replace('"', "").replace("\r", "").replace("\n", "")
    out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{safe}"\r\n'.encode()
    out += f"Content-Type: {media_type}\r\n\r\n".encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"
