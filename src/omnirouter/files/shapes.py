"""The three shapes OpenRouter answers file requests in (`_shape`: openrouter, openai, anthropic), and
which one a request gets.

OpenRouter's document says the shape "is negotiated per request" without saying how; this server
decides from what the client is, in this order:
- `anthropic-version` or `anthropic-beta` headers (the Anthropic SDKs send them): anthropic;
- an OpenAI SDK (User-Agent `OpenAI/...`), or an upload with OpenAI's `purpose` field: openai;
- anything else (the OpenRouter SDKs, curl): openrouter.
Every shape carries `_shape`, which the OpenRouter SDKs read to pick the variant and other clients ignore.
The answers are files/schemas.py's Structs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from typing import Any, Literal

from omnirouter.files import schemas
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


def file_object(record: FileRecord, shape: Shape) -> schemas.FileObject:
    if shape == "openai":
        return schemas.OpenAIFile(
            id=record.id,
            object="file",
            bytes=record.size_bytes,
            created_at=int(record.created_at.timestamp()),
            filename=record.filename,
            purpose=record.purpose,  # type: ignore[arg-type]  # one of PURPOSES: service.upload checked it
            status="processed",
        )
    kind = schemas.AnthropicFile if shape == "anthropic" else schemas.OpenRouterFile
    return kind(
        id=record.id,
        type="file",
        filename=record.filename,
        mime_type=record.mime_type,
        size_bytes=record.size_bytes,
        created_at=_rfc3339(record),
        downloadable=False,  # uploads are not downloadable, as on OpenRouter (and OpenAI, Anthropic)
    )


def list_object(page: list[FileRecord], has_more: bool, shape: Shape) -> schemas.FileList:
    data: Any = [file_object(r, shape) for r in page]
    first_id, last_id = (page[0].id, page[-1].id) if page else (None, None)
    if shape == "openai":
        return schemas.OpenAIFileList(object="list", data=data, has_more=has_more, first_id=first_id, last_id=last_id)
    if shape == "anthropic":
        return schemas.AnthropicFileList(data=data, has_more=has_more, first_id=first_id, last_id=last_id)
    cursor = encode_cursor(page[-1].id) if has_more and page else None
    return schemas.OpenRouterFileList(data=data, has_more=has_more, first_id=first_id, last_id=last_id, cursor=cursor)


def deleted_object(file_id: str, shape: Shape) -> schemas.FileDeleted:
    if shape == "openai":
        return schemas.OpenAIFileDeleted(id=file_id, object="file", deleted=True)
    return (schemas.AnthropicFileDeleted if shape == "anthropic" else schemas.OpenRouterFileDeleted)(
        id=file_id, type="file_deleted"
    )


# The list cursor, opaque to clients: the last id of the page before. Any string is a position (the
# files after it in id order), so no cursor is ever refused.
def encode_cursor(last_id: str) -> str:
    return last_id
