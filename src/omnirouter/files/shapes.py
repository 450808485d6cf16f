"""The three shapes OpenRouter answers file requests in (`_shape`: openrouter, openai, anthropic), and
which one a request gets.

OpenRouter's document says the shape "is negotiated per request" without saying how; this server
decides from what the client is, in this order:
- `anthropic-version` or `anthropic-beta` headers (the Anthropic SDKs send them): anthropic;
- an OpenAI SDK (User-Agent `OpenAI/...`), or an upload with OpenAI's `purpose` field: openai;
- anything else (the OpenRouter SDKs, curl): openrouter.
Every shape carries `_shape`, which the OpenRouter SDKs read to pick the variant and other clients ignore.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from typing import Any, Literal

from omnirouter.files.records import FileRecord

Shape = Literal["openrouter", "openai", "anthropic"]


def negotiate(headers: Mapping[str, str], purpose: bool = False) -> Shape:
    if "anthropic-version" in headers or "anthropic-beta" in headers:
        return "anthropic"
    if purpose or headers.get("user-agent", "").startswith("OpenAI/"):
        return "openai"
    return "openrouter"


def _rfc3339(record: FileRecord) -> str:
    return record.created_at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def file_object(record: FileRecord, shape: Shape) -> dict[str, Any]:
    if shape == "openai":
        return {
            "_shape": "openai",
            "id": record.id,
            "object": "file",
            "bytes": record.size_bytes,
            "created_at": int(record.created_at.timestamp()),
            "filename": record.filename,
            "purpose": record.purpose,
            "status": "processed",
        }
    return {
        "_shape": shape,
        "id": record.id,
        "type": "file",
        "filename": record.filename,
        "mime_type": record.mime_type,
        "size_bytes": record.size_bytes,
        "created_at": _rfc3339(record),
        "downloadable": False,  # uploads are not downloadable, as on OpenRouter (and OpenAI, Anthropic)
    }


def list_object(page: list[FileRecord], has_more: bool, shape: Shape) -> dict[str, Any]:
    out: dict[str, Any] = {"_shape": shape}
    if shape == "openai":
        out["object"] = "list"
    out["data"] = [file_object(r, shape) for r in page]
    out["has_more"] = has_more
    out["first_id"] = page[0].id if page else None
    out["last_id"] = page[-1].id if page else None
    if shape == "openrouter":
        out["cursor"] = encode_cursor(page[-1].id) if has_more and page else None
    return out


def deleted_object(file_id: str, shape: Shape) -> dict[str, Any]:
    if shape == "openai":
        return {"_shape": "openai", "id": file_id, "object": "file", "deleted": True}
    return {"_shape": shape, "id": file_id, "type": "file_deleted"}


# The list cursor, opaque to clients: the last id of the page before. Any string is a position (the
# files after it in id order), so no cursor is ever refused.
def encode_cursor(last_id: str) -> str:
    return last_id
