"""The messages of a Chat Completions request, as the OpenRouter spec types them.

Each role and each content part type is a msgspec tagged union member, so a request is validated in
the same single pass that decodes it: a part with a null `text`, a number where content belongs, or
an unknown part type is the caller's 400, never something an upstream is asked (and paid) to read.
Fields a shape does not name are ignored (and forwarded as sent), as everywhere in the request.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec


class _Part(msgspec.Struct, kw_only=True, tag_field="type"):
    pass


class TextPart(_Part, tag="text"):
    text: str
    cache_control: dict[str, Any] | None = None


class ImageUrl(msgspec.Struct, kw_only=True):
    url: str
    detail: Literal["auto", "low", "high", "original"] | None = None


class ImagePart(_Part, tag="image_url"):
    image_url: ImageUrl


class InputAudio(msgspec.Struct, kw_only=True):
    data: str
    format: str


class AudioPart(_Part, tag="input_audio"):
    input_audio: InputAudio


class VideoUrl(msgspec.Struct, kw_only=True):
    url: str


class VideoPart(_Part, tag="video_url"):
    video_url: VideoUrl


class LegacyVideoPart(_Part, tag="input_video"):
    """Deprecated in the spec, still accepted."""

    video_url: VideoUrl


class FileRef(msgspec.Struct, kw_only=True):
    file_data: str | None = None
    file_id: str | None = None
    filename: str | None = None


class FilePart(_Part, tag="file"):
    file: FileRef


ContentPart = TextPart | ImagePart | AudioPart | VideoPart | LegacyVideoPart | FilePart


class ToolCallFunction(msgspec.Struct, kw_only=True):
    name: str
    arguments: str  # JSON text, as OpenAI defines it


class ToolCall(msgspec.Struct, kw_only=True):
    id: str
    type: Literal["function"]
    function: ToolCallFunction


class _Message(msgspec.Struct, kw_only=True, tag_field="role"):
    pass


class SystemMessage(_Message, tag="system"):
    content: str | list[TextPart]
    name: str | None = None


class DeveloperMessage(_Message, tag="developer"):
    content: str | list[TextPart]
    name: str | None = None


class UserMessage(_Message, tag="user"):
    content: str | list[ContentPart]
    name: str | None = None


class AssistantMessage(_Message, tag="assistant"):
    content: str | list[ContentPart] | None = None  # null when the turn is only tool calls
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    reasoning: str | None = None
    refusal: str | None = None


class ToolMessage(_Message, tag="tool"):
    content: str | list[ContentPart]
    tool_call_id: str


class FunctionMessage(_Message, tag="function"):
    """OpenAI's deprecated predecessor of `tool` messages; not in OpenRouter's spec, still accepted."""

    content: str | None
    name: str


Message = SystemMessage | DeveloperMessage | UserMessage | AssistantMessage | ToolMessage | FunctionMessage

PART_TYPES = {
    "system": ("text",),
    "developer": ("text",),
    "user": tuple(p.__struct_config__.tag for p in ContentPart.__args__),
    "assistant": tuple(p.__struct_config__.tag for p in ContentPart.__args__),
    "tool": tuple(p.__struct_config__.tag for p in ContentPart.__args__),
}
ROLES = tuple(m.__struct_config__.tag for m in Message.__args__)

_PART_TYPE_AT = re.compile(r"`\$\.messages\[(\d+)\]\.content\[\d+\]\.type`")
_ROLE_AT = re.compile(r"`\$\.messages\[\d+\]\.role`")


def explain(error: str, body: dict[str, Any]) -> str:
    """msgspec's message for an unknown tag, with the values that would have been accepted."""
    if not error.startswith("Invalid value"):
        return error
    if match := _PART_TYPE_AT.search(error):
        messages = body.get("messages")
        message = messages[int(match[1])] if isinstance(messages, list) else None
        role = message.get("role") if isinstance(message, dict) else None
        if role in PART_TYPES:
            return f"{error}; a {role} message's content parts have type {', '.join(PART_TYPES[role])}"
    elif _ROLE_AT.search(error):
        return f"{error}; role is one of {', '.join(ROLES)}"
    return error
