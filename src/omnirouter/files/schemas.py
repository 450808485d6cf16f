"""The Files API's answers as msgspec Structs, in the three shapes files/shapes.py negotiates: what the
server encodes, what the OpenAPI document describes (the component names are OpenRouter's) and what
omnirouter.client decodes.

Each shape is tagged on `_shape`, so a union decodes into the variant the server chose. The field order
is the wire order (the tag first); the constant fields have no default, so the document says they are
always sent (required), as they are.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

# OpenAI's upload purposes, as service.PURPOSES accepts them (tests/test_files_schemas.py keeps the two equal).
Purpose = Literal[
    "assistants", "assistants_output", "batch", "batch_output", "evals", "fine-tune", "fine-tune-results", "user_data",
    "vision",
]  # fmt: skip
_FirstId = Annotated[str | None, msgspec.Meta(description="The page's first file id; null on an empty page")]
_LastId = Annotated[str | None, msgspec.Meta(description="The page's last file id; null on an empty page")]
_Cursor = Annotated[str | None, msgspec.Meta(description="The next page's cursor; null on the last page")]


class _Tagged(msgspec.Struct, tag_field="_shape"):
    pass


class _StoredFile(_Tagged, kw_only=True):
    id: str
    type: Literal["file"]
    filename: str
    mime_type: str
    size_bytes: int
    created_at: Annotated[str, msgspec.Meta(description="RFC 3339, UTC, milliseconds")]
    downloadable: bool


class OpenRouterFile(_StoredFile, tag="openrouter"):
    """A stored file in the OpenRouter shape."""


class AnthropicFile(_StoredFile, tag="anthropic"):
    """A stored file in Anthropic's Files API shape."""


class OpenAIFile(_Tagged, kw_only=True, tag="openai"):
    """A stored file in OpenAI's Files API shape."""

    id: str
    object: Literal["file"]
    bytes: int
    created_at: Annotated[int, msgspec.Meta(description="Unix seconds")]
    filename: str
    purpose: Purpose
    status: Literal["processed"]


class OpenRouterFileList(_Tagged, kw_only=True, tag="openrouter"):
    """A page of files in the OpenRouter shape."""

    data: list[OpenRouterFile]
    has_more: bool
    first_id: _FirstId
    last_id: _LastId
    cursor: _Cursor


class OpenAIFileList(_Tagged, kw_only=True, tag="openai"):
    """A page of files in OpenAI's shape."""

    object: Literal["list"]
    data: list[OpenAIFile]
    has_more: bool
    first_id: _FirstId
    last_id: _LastId


class AnthropicFileList(_Tagged, kw_only=True, tag="anthropic"):
    """A page of files in Anthropic's shape."""

    data: list[AnthropicFile]
    has_more: bool
    first_id: _FirstId
    last_id: _LastId


class _Deleted(_Tagged, kw_only=True):
    id: str
    type: Literal["file_deleted"]


class OpenRouterFileDeleted(_Deleted, tag="openrouter"):
    """Deletion result in the OpenRouter shape."""


class AnthropicFileDeleted(_Deleted, tag="anthropic"):
    """Deletion result in Anthropic's shape."""


class OpenAIFileDeleted(_Tagged, kw_only=True, tag="openai"):
    """Deletion result in OpenAI's shape."""

    id: str
    object: Literal["file"]
    deleted: Literal[True]


FileObject = OpenRouterFile | OpenAIFile | AnthropicFile
FileList = OpenRouterFileList | OpenAIFileList | AnthropicFileList
FileDeleted = OpenRouterFileDeleted | OpenAIFileDeleted | AnthropicFileDeleted
