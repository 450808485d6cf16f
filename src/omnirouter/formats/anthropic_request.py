"""An Anthropic Messages request, validated in one msgspec pass and translated to the internal
(OpenRouter Chat Completions) body.

Each role's content blocks are a tagged union, so a block a role cannot hold (a `thinking` block in
a user turn, an unknown type) is the caller's 400 with the accepted types named. Top-level fields
this module does not name (Claude Code's `context_management`, `container`, `mcp_servers`,
`service_tier`, `speed` ...) are accepted and dropped: they steer features only Anthropic's own
servers have.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from omnirouter.errors import GatewayError

ANTHROPIC_FORMAT = "anthropic-claude-v1"  # reasoning_details.format of blocks that came from a Messages client

CacheControl = dict[str, Any] | None


class _Block(msgspec.Struct, kw_only=True, tag_field="type"):
    pass


class _Source(msgspec.Struct, kw_only=True, tag_field="type"):
    pass


class Base64Source(_Source, tag="base64"):
    media_type: str
    data: str


class UrlSource(_Source, tag="url"):
    url: str


class FileSource(_Source, tag="file"):
    file_id: str


class PlainTextSource(_Source, tag="text"):
    data: str
    media_type: str = "text/plain"


class TextBlock(_Block, tag="text"):
    text: str
    cache_control: CacheControl = None


class ImageBlock(_Block, tag="image"):
    source: Base64Source | UrlSource | FileSource
    cache_control: CacheControl = None


class ContentSource(_Source, tag="content"):
    content: str | list[TextBlock | ImageBlock]


class DocumentBlock(_Block, tag="document"):
    source: Base64Source | UrlSource | FileSource | PlainTextSource | ContentSource
    title: str | None = None
    context: str | None = None
    cache_control: CacheControl = None


class SearchResultBlock(_Block, tag="search_result"):
    source: str
    title: str
    content: list[TextBlock]
    cache_control: CacheControl = None


class ToolResultBlock(_Block, tag="tool_result"):
    tool_use_id: str
    content: str | list[TextBlock | ImageBlock | DocumentBlock | SearchResultBlock] | None = None
    is_error: bool | None = None
    cache_control: CacheControl = None


class ToolUseBlock(_Block, tag="tool_use"):
    id: str
    name: str
    input: Any = None
    cache_control: CacheControl = None


class ThinkingBlock(_Block, tag="thinking"):
    thinking: str
    signature: str | None = None


class RedactedThinkingBlock(_Block, tag="redacted_thinking"):
    data: str


class ServerToolUseBlock(_Block, tag="server_tool_use"):
    """Anthropic's own server tools (web search ...): only its servers can run them, so a turn that
    used one is replayed without it."""

    id: str
    name: str


class WebSearchResultBlock(_Block, tag="web_search_tool_result"):
    tool_use_id: str


UserBlock = TextBlock | ImageBlock | DocumentBlock | SearchResultBlock | ToolResultBlock
AssistantBlock = (
    TextBlock | ToolUseBlock | ThinkingBlock | RedactedThinkingBlock | ServerToolUseBlock | WebSearchResultBlock
)


class _Message(msgspec.Struct, kw_only=True, tag_field="role"):
    pass


class UserMessage(_Message, tag="user"):
    content: str | list[UserBlock]


class AssistantMessage(_Message, tag="assistant"):
    content: str | list[AssistantBlock]


class SystemMessage(_Message, tag="system"):
    """Not Anthropic's, but Claude Code sends them (and OpenRouter's schema accepts them)."""

    content: str | list[TextBlock]


Message = UserMessage | AssistantMessage | SystemMessage


class Tool(msgspec.Struct, kw_only=True):
    name: str
    type: str | None = None  # "custom" (or absent); anything else is one of Anthropic's server tools
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    strict: bool | None = None


class _ToolChoice(msgspec.Struct, kw_only=True, tag_field="type"):
    pass


class ChoiceAuto(_ToolChoice, tag="auto"):
    disable_parallel_tool_use: bool | None = None


class ChoiceAny(_ToolChoice, tag="any"):
    disable_parallel_tool_use: bool | None = None


class ChoiceTool(_ToolChoice, tag="tool"):
    name: str
    disable_parallel_tool_use: bool | None = None


class ChoiceNone(_ToolChoice, tag="none"):
    pass


class _Thinking(msgspec.Struct, kw_only=True, tag_field="type"):
    pass


class ThinkingEnabled(_Thinking, tag="enabled"):
    budget_tokens: Annotated[int, Meta(ge=1)]


class ThinkingAdaptive(_Thinking, tag="adaptive"):
    pass


class ThinkingDisabled(_Thinking, tag="disabled"):
    pass


class Metadata(msgspec.Struct, kw_only=True):
    user_id: str | None = None


class OutputFormat(msgspec.Struct, kw_only=True):
    type: Literal["json_schema"]
    schema: dict[str, Any]


class OutputConfig(msgspec.Struct, kw_only=True):
    effort: str | None = None
    format: OutputFormat | None = None


class Fallback(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    model: str


class MessagesRequest(msgspec.Struct, kw_only=True):
    model: str | None = None
    messages: list[Message] | None = None
    max_tokens: Annotated[int, Meta(ge=1)] | None = None
    system: str | list[TextBlock] | None = None
    stream: bool | None = None
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    top_k: Annotated[int, Meta(ge=0)] | None = None
    stop_sequences: list[str] | None = None
    tools: list[Tool] | None = None
    tool_choice: ChoiceAuto | ChoiceAny | ChoiceTool | ChoiceNone | None = None
    thinking: ThinkingEnabled | ThinkingAdaptive | ThinkingDisabled | None = None
    metadata: Metadata | None = None
    output_config: OutputConfig | None = None
    user: str | None = None
    models: list[str] | None = None
    fallbacks: Annotated[list[Fallback], Meta(max_length=3)] | None = None


# OpenRouter's own request fields, the same in every format: passed to the pipeline as they are.
PASSTHROUGH = ("provider", "plugins", "route", "session_id", "trace", "transforms", "debug", "cache_control")

# The efforts OpenRouter's `reasoning.effort` takes that Anthropic's `output_config.effort` also names.
EFFORTS = frozenset({"low", "medium", "high", "xhigh", "max"})

BLOCK_TYPES = {
    "user": tuple(b.__struct_config__.tag for b in UserBlock.__args__),
    "assistant": ("text", "tool_use", "thinking", "redacted_thinking"),
    "system": ("text",),
}
_BLOCK_AT = re.compile(r"`\$\.messages\[(\d+)\]\.content\[\d+\]\.type`")
_ROLE_AT = re.compile(r"`\$\.messages\[\d+\]\.role`")
INTEGER_FIELDS = ("max_tokens", "top_k")


def parse_request(body: Any, *, count_only: bool = False) -> dict[str, Any]:
    """The internal chat body for a Messages request; GatewayError(400) for what Anthropic refuses.
    `count_only`: a count_tokens body, which has no max_tokens."""
    if not isinstance(body, dict):
        raise GatewayError(400, "Request body must be a JSON object")
    try:
        req = msgspec.convert(body, MessagesRequest)
    except msgspec.ValidationError as exc:
        if not _integral_floats_to_int(body):
            raise GatewayError(400, f"Invalid request: {_explain(str(exc), body)}") from None
        return parse_request(body, count_only=count_only)
    if not req.model:
        raise GatewayError(400, "Invalid request: model: Field required")
    if not req.messages:
        raise GatewayError(400, "Invalid request: messages: at least one message is required")
    if req.max_tokens is None and not count_only:
        raise GatewayError(400, "Invalid request: max_tokens: Field required")
    return _to_chat(req, body)


def _integral_floats_to_int(body: dict[str, Any]) -> bool:
    """`max_tokens: 1024.0` is the integer 1024 in JSON; msgspec reads int fields strictly."""
    changed = False
    for name in INTEGER_FIELDS:
        value = body.get(name)
        if isinstance(value, float) and value.is_integer():
            body[name] = int(value)
            changed = True
    return changed


def _explain(error: str, body: dict[str, Any]) -> str:
    """msgspec's message for an unknown tag, with the values that would have been accepted."""
    if not error.startswith("Invalid value"):
        return error
    if match := _BLOCK_AT.search(error):
        message = body["messages"][int(match[1])]
        role = message.get("role") if isinstance(message, dict) else None
        if role in BLOCK_TYPES:
            return f"{error}; {role} messages hold content blocks of type {', '.join(BLOCK_TYPES[role])}"
    elif _ROLE_AT.search(error):
        return f"{error}; role is one of user, assistant"
    return error


def _to_chat(req: MessagesRequest, body: dict[str, Any]) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if req.system:
        messages.append({"role": "system", "content": _text_content(req.system)})
    tool_ids: set[str] = set()
    assert req.messages is not None
    for m in req.messages:
        if isinstance(m, UserMessage):
            _user(m, messages, tool_ids)
        elif isinstance(m, AssistantMessage):
            messages.append(_assistant(m, tool_ids))
        else:
            messages.append({"role": "system", "content": _text_content(m.content)})

    out: dict[str, Any] = {"model": req.model, "messages": messages}
    if req.max_tokens is not None:
        out["max_tokens"] = req.max_tokens
    if req.stream:
        out["stream"] = True
    if req.temperature is not None:
        out["temperature"] = req.temperature
    if req.top_p is not None:
        out["top_p"] = req.top_p
    if req.top_k is not None:
        out["top_k"] = req.top_k
    if req.stop_sequences:
        out["stop"] = req.stop_sequences
    _tools(req, out)
    if (reasoning := _reasoning(req)) is not None:
        out["reasoning"] = reasoning
    if req.output_config is not None and req.output_config.format is not None:
        schema = req.output_config.format.schema
        out["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": schema, "strict": True},
        }
    user = req.user or (req.metadata.user_id if req.metadata else None)
    if user:
        out["user"] = user
    if req.fallbacks is not None:
        if req.models is not None:
            raise GatewayError(400, 'Invalid request: "fallbacks" cannot be combined with "models"')
        out["models"] = [f.model for f in req.fallbacks]
    elif req.models is not None:
        out["models"] = req.models
    for name in PASSTHROUGH:
        if name in body:
            out[name] = body[name]
    return out


# -- content


def _text_part(block: TextBlock) -> dict[str, Any]:
    part: dict[str, Any] = {"type": "text", "text": block.text}
    if block.cache_control is not None:
        part["cache_control"] = block.cache_control
    return part


def _text_content(content: str | list[TextBlock]) -> str | list[dict[str, Any]]:
    """A string stays a string; one plain text block becomes one; blocks otherwise stay parts (so
    each keeps its cache_control breakpoint)."""
    if isinstance(content, str):
        return content
    if len(content) == 1 and content[0].cache_control is None:
        return content[0].text
    return [_text_part(b) for b in content]


def _collapse(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    if len(parts) == 1 and parts[0]["type"] == "text" and "cache_control" not in parts[0]:
        return parts[0]["text"]
    return parts


def _with_cache(part: dict[str, Any], cache_control: CacheControl) -> dict[str, Any]:
    if cache_control is not None:
        part["cache_control"] = cache_control
    return part


def _image_url(source: Base64Source | UrlSource | FileSource) -> str:
    if isinstance(source, Base64Source):
        return f"data:{source.media_type};base64,{source.data}"
    if isinstance(source, UrlSource):
        return source.url
    raise GatewayError(
        400, "Invalid request: file sources (Anthropic's Files API) are not supported; send base64 or url"
    )


def _parts(block: TextBlock | ImageBlock | DocumentBlock | SearchResultBlock) -> list[dict[str, Any]]:
    """The chat content parts of one user-side block."""
    if isinstance(block, TextBlock):
        return [_text_part(block)]
    if isinstance(block, ImageBlock):
        return [_with_cache({"type": "image_url", "image_url": {"url": _image_url(block.source)}}, block.cache_control)]
    if isinstance(block, SearchResultBlock):
        text = f"{block.title} ({block.source})\n" + "\n".join(b.text for b in block.content)
        return [_with_cache({"type": "text", "text": text}, block.cache_control)]
    return _document(block)


def _document(block: DocumentBlock) -> list[dict[str, Any]]:
    source = block.source
    if isinstance(source, PlainTextSource):
        parts = [{"type": "text", "text": source.data}]
    elif isinstance(source, ContentSource):
        inner = source.content
        parts = [{"type": "text", "text": inner}] if isinstance(inner, str) else [p for b in inner for p in _parts(b)]
    elif isinstance(source, FileSource):
        raise GatewayError(
            400, "Invalid request: file sources (Anthropic's Files API) are not supported; send base64 or url"
        )
    else:  # a PDF, as OpenRouter's chat `file` part carries it (a data URL or a URL)
        data = f"data:{source.media_type};base64,{source.data}" if isinstance(source, Base64Source) else source.url
        parts = [{"type": "file", "file": {"filename": block.title or "document.pdf", "file_data": data}}]
    if block.context:
        parts.insert(0, {"type": "text", "text": block.context})
    if block.cache_control is not None:
        parts[-1]["cache_control"] = block.cache_control
    return parts


def _user(m: UserMessage, out: list[dict[str, Any]], tool_ids: set[str]) -> None:
    """A user turn: its tool results become `tool` messages (first, as chat wants them right after
    the assistant's calls), the rest one user message."""
    if isinstance(m.content, str):
        out.append({"role": "user", "content": m.content})
        return
    parts: list[dict[str, Any]] = []
    for block in m.content:
        if isinstance(block, ToolResultBlock):
            out.append(_tool_message(block, tool_ids))
        else:
            parts.extend(_parts(block))
    if parts:
        out.append({"role": "user", "content": _collapse(parts)})
    elif not m.content:
        out.append({"role": "user", "content": ""})


def _tool_message(block: ToolResultBlock, tool_ids: set[str]) -> dict[str, Any]:
    if block.tool_use_id not in tool_ids:
        raise GatewayError(
            400,
            f"Invalid request: tool_result block's tool_use_id {block.tool_use_id!r} matches no earlier tool_use block",
        )
    content = block.content
    if content is None or isinstance(content, str):
        parts = [{"type": "text", "text": content or ""}]
    else:
        parts = [p for b in content for p in _parts(b)] or [{"type": "text", "text": ""}]
    if block.is_error:  # chat has no error flag on tool results: say it in the content
        if parts[0]["type"] == "text":
            parts[0]["text"] = "Error: " + parts[0]["text"]
        else:
            parts.insert(0, {"type": "text", "text": "Error:"})
    if block.cache_control is not None:
        parts[-1]["cache_control"] = block.cache_control
    return {"role": "tool", "tool_call_id": block.tool_use_id, "content": _collapse(parts)}


def _assistant(m: AssistantMessage, tool_ids: set[str]) -> dict[str, Any]:
    if isinstance(m.content, str):
        return {"role": "assistant", "content": m.content}
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    for block in m.content:
        if isinstance(block, TextBlock):
            parts.append(_text_part(block))
        elif isinstance(block, ToolUseBlock):
            tool_ids.add(block.id)
            args = msgspec.json.encode(block.input if block.input is not None else {}).decode()
            calls.append({"id": block.id, "type": "function", "function": {"name": block.name, "arguments": args}})
        elif isinstance(block, ThinkingBlock):
            detail = {
                "type": "reasoning.text",
                "text": block.thinking,
                "format": ANTHROPIC_FORMAT,
                "index": len(details),
            }
            if block.signature:
                detail["signature"] = block.signature
            details.append(detail)
        elif isinstance(block, RedactedThinkingBlock):
            details.append({"type": "reasoning.encrypted", "data": block.data, "format": ANTHROPIC_FORMAT,
                            "index": len(details)})  # fmt: skip
        # server tool blocks: only Anthropic's servers ran them; the turn is replayed without them
    message: dict[str, Any] = {
        "role": "assistant",
        "content": _collapse(parts) if parts else ("" if not calls else None),
    }
    if calls:
        message["tool_calls"] = calls
    if details:
        message["reasoning_details"] = details
    return message


# -- tools and reasoning


def _tools(req: MessagesRequest, out: dict[str, Any]) -> None:
    tools = []
    for tool in req.tools or ():
        if tool.type not in (None, "custom"):
            continue  # Anthropic's server tools (web search, code execution ...) run only on its servers
        if tool.input_schema is None:
            raise GatewayError(400, f"Invalid request: tool {tool.name!r}: input_schema: Field required")
        function: dict[str, Any] = {"name": tool.name, "parameters": tool.input_schema}
        if tool.description is not None:
            function["description"] = tool.description
        if tool.strict is not None:
            function["strict"] = tool.strict
        tools.append({"type": "function", "function": function})
    if tools:
        out["tools"] = tools
    choice = req.tool_choice
    if choice is None or (not tools and not isinstance(choice, ChoiceNone)):
        return
    if isinstance(choice, ChoiceNone):
        if tools:
            out["tool_choice"] = "none"
        return
    if isinstance(choice, ChoiceAuto):
        out["tool_choice"] = "auto"
    elif isinstance(choice, ChoiceAny):
        out["tool_choice"] = "required"
    else:
        out["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
    if choice.disable_parallel_tool_use:
        out["parallel_tool_calls"] = False


def _reasoning(req: MessagesRequest) -> dict[str, Any] | None:
    """`thinking` as OpenRouter's unified reasoning config: a budget is `max_tokens`, adaptive thinking
    is reasoning at the effort `output_config.effort` names (the model's default otherwise)."""
    thinking = req.thinking
    if isinstance(thinking, ThinkingEnabled):
        return {"max_tokens": thinking.budget_tokens}
    if isinstance(thinking, ThinkingDisabled):
        return {"effort": "none"}
    if isinstance(thinking, ThinkingAdaptive):
        effort = req.output_config.effort if req.output_config else None
        return {"effort": effort} if effort in EFFORTS else {"enabled": True}
    return None
