"""Uploaded files named by id in an inference request, replaced by their content before anything is
parsed or sent upstream, for the key that owns them only (another key's id is not found: 404).

Where each client format takes a file id (OpenRouter's document):
- chat: `{"type": "file", "file": {"file_id": id}}` -> `file.file_data` as a data URL (and its filename);
- responses: `{"type": "input_file", "file_id": id}` -> `file_data`; `{"type": "input_image", "file_id": id}`
  -> `image_url`, both data URLs;
- messages: a `document` or `image` block with `source: {"type": "file", "file_id": id}` -> a `base64`
  source (a text file: a `text` source).
Only this server's ids (`or_file_...`) are touched; any other id is left as the client sent it.

The pipeline calls `inline_files` only when the raw body contains `file_id` (pipeline/endpoint.py), so
a request without one pays one substring search.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from omnirouter.errors import GatewayError
from omnirouter.files import records
from omnirouter.files.records import PREFIX, FileRecord
from omnirouter.files.service import files_of
from omnirouter.files.sniff import TEXT_TYPES
from omnirouter.files.stores import Missing
from omnirouter.governance.keys import KeyRecord
from omnirouter.jsonio import encode

MARK = b"file_id"


def _ours(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def _anthropic_ref(source: dict[str, Any]) -> bool:
    return source.get("type") == "file" and _ours(source.get("file_id"))


def _references(body: Any) -> list[tuple[dict[str, Any], str]]:
    """(the dict holding the id, the kind of reference) for every one of our ids in the body."""
    found: list[tuple[dict[str, Any], str]] = []
    stack = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        kind = node.get("type")
        inner = node.get("file")
        source = node.get("source")
        if kind == "file" and isinstance(inner, dict) and _ours(inner.get("file_id")):
            found.append((inner, "chat"))
        elif kind in ("input_file", "input_image") and _ours(node.get("file_id")):
            found.append((node, kind))
        elif kind in ("document", "image") and isinstance(source, dict) and _anthropic_ref(source):
            found.append((node, "anthropic"))
        stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
    return found


def _id_of(holder: dict[str, Any], how: str) -> str:
    return holder["source"]["file_id"] if how == "anthropic" else holder["file_id"]


def _data_url(record: FileRecord, content: bytes) -> str:
    return f"data:{record.mime_type};base64,{base64.b64encode(content).decode()}"


def _inline(holder: dict[str, Any], how: str, record: FileRecord, content: bytes) -> None:
    if how in ("chat", "input_file"):
        del holder["file_id"]
        holder["file_data"] = _data_url(record, content)
        holder.setdefault("filename", record.filename)
    elif how == "input_image":
        if not record.mime_type.startswith("image/"):
            raise GatewayError(400, f"File {record.id} is {record.mime_type}, not an image: send it as input_file")
        del holder["file_id"]
        holder["image_url"] = _data_url(record, content)
    else:  # an Anthropic block
        holder["source"] = _anthropic_source(holder.get("type"), record, content)


def _anthropic_source(block: Any, record: FileRecord, content: bytes) -> dict[str, Any]:
    mime = record.mime_type
    if block == "image" and mime.startswith("image/"):
        return {"type": "base64", "media_type": mime, "data": base64.b64encode(content).decode()}
    if block == "document" and mime == "application/pdf":
        return {"type": "base64", "media_type": mime, "data": base64.b64encode(content).decode()}
    if block == "document" and mime in TEXT_TYPES:
        return {"type": "text", "media_type": "text/plain", "data": content.decode("utf-8")}
    raise GatewayError(
        400, f"File {record.id} is {mime}: an Anthropic {block} block takes "
        + ("an image" if block == "image" else "a PDF or a text file"),
    )  # fmt: skip


async def inline_files(st: Any, key: KeyRecord, body: Any, raw: bytes) -> bytes:
    """Replace every reference to one of this key's files in `body` (the decoded request, changed in
    place); the request's bytes as they now are (`raw` when nothing was replaced), so that the prompt's
    estimate, and what is reserved for it, counts the files' content as it would inline data."""
    refs = _references(body)
    if not refs:
        return raw
    ids = {_id_of(holder, how) for holder, how in refs}
    owned = await records.get_files(st.db.engine, ids, key.hash)
    if missing := sorted(ids - owned.keys()):
        raise GatewayError(404, f"File {missing[0]} not found", {"file_id": missing[0]})
    store = files_of(st).store
    try:
        contents = dict(zip(owned, await asyncio.gather(*(store.read(i) for i in owned)), strict=True))
    except Missing as gone:  # deleted between the lookup and the read
        raise GatewayError(404, f"File {gone.args[0]} not found", {"file_id": gone.args[0]}) from None
    for holder, how in refs:
        file_id = _id_of(holder, how)
        _inline(holder, how, owned[file_id], contents[file_id])
    return encode(body)
