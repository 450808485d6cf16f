"""A multipart/form-data upload read as it arrives: the `file` part streams into a spool file while
it is counted, hashed and sniffed; the other fields (OpenAI's `purpose`) are kept, small. Nothing of
the file is held in memory beyond one chunk, and a file over the limit stops being written at once.

python-multipart's push parser (the one Starlette's own form parsing uses) cuts the parts.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.types import Receive

from omnirouter.errors import GatewayError
from omnirouter.files.sniff import Sniffer

FIELD_LIMIT = 64 * 1024  # a form field other than the file (purpose ...)
# After the file passed the limit the rest of the body is still read (and dropped), so that the client
# gets its 413 rather than a connection cut while it sends; past this much more, the connection goes.
DRAIN_LIMIT = 64 * 1024 * 1024


@dataclass
class Upload:
    spool: Path
    limit: int
    filename: str | None = None
    declared_type: str | None = None
    size: int = 0
    too_large: bool = False
    fields: dict[str, str] = field(default_factory=dict)
    files: int = 0  # `file` parts seen
    sniffer: Sniffer = field(default_factory=Sniffer)
    digest: Any = field(default_factory=hashlib.sha256)

    @property
    def sha256(self) -> str:
        return str(self.digest.hexdigest())


def _boundary(headers: Mapping[str, str]) -> bytes:
    kind, params = parse_options_header(headers.get("content-type", ""))
    if kind != b"multipart/form-data" or not params.get(b"boundary"):
        raise GatewayError(400, "Upload the file as multipart/form-data with a `file` field")
    return params[b"boundary"]


async def receive_upload(receive: Receive, headers: Mapping[str, str], spool: Path, limit: int) -> Upload:
    """Read the request body into `spool`; the caller removes the spool on any error."""
    boundary = _boundary(headers)
    up = Upload(spool=spool, limit=limit)
    out = spool.open("wb")
    part: dict[str, Any] = {}
    header_name = bytearray()
    header_value = bytearray()

    def on_part_begin() -> None:
        part.clear()
        part["headers"] = {}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_name.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        part["headers"][bytes(header_name).decode("latin-1").lower()] = bytes(header_value)
        header_name.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        _, disposition = parse_options_header(part["headers"].get("content-disposition"))
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        part["name"] = name
        part["is_file"] = name == "file"
        if part["is_file"]:
            up.files += 1
            raw_name = disposition.get(b"filename")
            up.filename = raw_name.decode("utf-8", "replace") if raw_name is not None else None
            ctype = part["headers"].get("content-type")
            up.declared_type = ctype.decode("latin-1") if ctype else None
        else:
            part["value"] = bytearray()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if part.get("is_file"):
            if up.files > 1 or up.too_large:
                return
            if up.size + len(chunk) > up.limit:
                up.too_large = True
                return
            up.size += len(chunk)
            out.write(chunk)
            up.digest.update(chunk)
            up.sniffer.feed(chunk)
        elif len(part["value"]) + len(chunk) <= FIELD_LIMIT:
            part["value"].extend(chunk)

    def on_part_end() -> None:
        if not part.get("is_file") and "value" in part:
            up.fields[part["name"]] = bytes(part["value"]).decode("utf-8", "replace")

    callbacks = {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    }
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    received = 0
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise GatewayError(400, "The client closed the connection while sending the file")
            chunk = message.get("body", b"")
            received += len(chunk)
            if up.too_large and received > limit + DRAIN_LIMIT:
                break
            try:
                parser.write(chunk)
            except Exception as exc:  # python-multipart's MultipartParseError and friends
                raise GatewayError(400, f"Malformed multipart body: {exc}") from None
            if not message.get("more_body"):
                break
        if not up.too_large:
            parser.finalize()
            out.flush()
            # On disk before it is renamed into place and listed; in a thread, as a slow disk's flush
            # would stall every request on this worker.
            await asyncio.to_thread(os.fsync, out.fileno())
    finally:
        out.close()
    if up.too_large:
        raise GatewayError(413, f"The file is larger than this server's {limit}-byte limit")
    if up.files == 0:
        raise GatewayError(400, "No `file` field in the multipart body")
    if up.files > 1:
        raise GatewayError(400, "Upload one file per request")
    return up
