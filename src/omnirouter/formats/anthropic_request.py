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
from omnirouter.formats.anthropic_terms import ANTHROPIC_FORMAT, encrypted_detail
from omnirouter.formats.openai_chat import ProviderPrefs

CacheControl = dict[str, Any] | None


class _Block(msgspec.Struct, kw_only=True, tag_field="type"):
    pass


class _Source(msgspec.Struct, kw_only=True, tag_field="type"):
    pass


class AnthropicBase64Source(_Source, tag="base64"):
    media_type: str
    data: str


class AnthropicUrlSource(_Source, tag="url"):
    url: str


class AnthropicPlainTextSource(_Source, tag="text"):
    data: str
    media_type: str = "text/plain"


class AnthropicTextBlockParam(_Block, tag="text"):
    text: str
    cache_control: CacheControl = None


class AnthropicImageBlockParam(_Block, tag="image"):
    source: AnthropicBase64Source | AnthropicUrlSource
    cache_control: CacheControl = None


class AnthropicContentSource(_Source, tag="content"):
    content: str | list[AnthropicTextBlockParam | AnthropicImageBlockParam]


class AnthropicDocumentBlockParam(_Block, tag="document"):
    source: AnthropicBase64Source | AnthropicUrlSource | AnthropicPlainTextSource | AnthropicContentSource
    title: str | None = None
    context: str | None = None
    cache_control: CacheControl = None


class AnthropicSearchResultBlockParam(_Block, tag="search_result"):
    source: str
    title: str
    content: list[AnthropicTextBlockParam]
    cache_control: CacheControl = None


# What a user turn's blocks (and a tool result's) turn into: chat content parts.
PartBlock = (
    AnthropicTextBlockParam | AnthropicImageBlockParam | AnthropicDocumentBlockParam | AnthropicSearchResultBlockParam
)


class AnthropicToolResultBlockParam(_Block, tag="tool_result"):
    tool_use_id: str
    content: str | list[PartBlock] | None = None
    is_error: bool | None = None
    cache_control: CacheControl = None


class AnthropicToolUseBlockParam(_Block, tag="tool_use"):
    id: str
    name: str
    input: Any = None
    cache_control: CacheControl = None


class AnthropicThinkingBlockParam(_Block, tag="thinking"):
    thinking: str
    signature: str | None = None


class AnthropicRedactedThinkingBlockParam(_Block, tag="redacted_thinking"):
    data: str


class AnthropicServerToolUseBlockParam(_Block, tag="server_tool_use"):
    """Anthropic's own server tools (web search ...): only its servers can run them, so a turn that
    used one is replayed without it."""

    id: str
    name: str


class AnthropicWebSearchToolResultBlockParam(_Block, tag="web_search_tool_result"):
    tool_use_id: str


UserBlock = PartBlock | AnthropicToolResultBlockParam
AssistantBlock = (
    AnthropicTextBlockParam
    | AnthropicToolUseBlockParam
    | AnthropicThinkingBlockParam
    | AnthropicRedactedThinkingBlockParam
    | AnthropicServerToolUseBlockParam
    | AnthropicWebSearchToolResultBlockParam
)


class _Message(msgspec.Struct, kw_only=True, tag_field="role"):
    pass


class MessagesUserMessage(_Message, tag="user"):
    content: str | list[UserBlock]


class MessagesAssistantMessage(_Message, tag="assistant"):
    content: str | list[AssistantBlock]


class MessagesSystemMessage(_Message, tag="system"):
    """Not Anthropic's, but Claude Code sends them (and OpenRouter's schema accepts them)."""

    content: str | list[AnthropicTextBlockParam]


Message = MessagesUserMessage | MessagesAssistantMessage | MessagesSystemMessage


class MessagesTool(msgspec.Struct, kw_only=True):
    name: str
    type: str | None = None  # "custom" (or absent); anything else is one of Anthropic's server tools
    # Anthropic's web search tool's options, for the gateway's openrouter:web_search (servertools/)
    max_uses: int | None = None
    allowed_domains: list[str] | None = None
    blocked_domains: list[str] | None = None
    description: str | None = None
    input_schema: dict[str, Any] | None = None  # a custom tool without one takes no input
    strict: bool | None = None


class _ToolChoice(msgspec.Struct, kw_only=True, tag_field="type"):
    pass


class MessagesToolChoiceAuto(_ToolChoice, tag="auto"):
    disable_parallel_tool_use: bool | None = None


class MessagesToolChoiceAny(_ToolChoice, tag="any"):
    disable_parallel_tool_use: bool | None = None


class MessagesToolChoiceTool(_ToolChoice, tag="tool"):
    name: str
    disable_parallel_tool_use: bool | None = None


class MessagesToolChoiceNone(_ToolChoice, tag="none"):
    pass


class _Thinking(msgspec.Struct, kw_only=True, tag_field="type"):
    pass


class MessagesThinkingEnabled(_Thinking, tag="enabled"):
    budget_tokens: Annotated[int, Meta(ge=1)]


class MessagesThinkingAdaptive(_Thinking, tag="adaptive"):
    pass


class MessagesThinkingDisabled(_Thinking, tag="disabled"):
    pass


class MessagesMetadata(msgspec.Struct, kw_only=True):
    user_id: str | None = None


class MessagesOutputFormat(msgspec.Struct, kw_only=True):
    type: Literal["json_schema"]
    schema: dict[str, Any]


class MessagesOutputConfig(msgspec.Struct, kw_only=True):
    effort: str | None = None
    format: MessagesOutputFormat | None = None


class MessagesFallbackParam(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    model: str


class MessagesRequest(msgspec.Struct, kw_only=True):
    model: str | None = None  # none: the gateway's default model, if it has one (as on /chat/completions)
    messages: Annotated[list[Message], Meta(min_length=1)]
    max_tokens: Annotated[int, Meta(ge=1)]
    system: str | list[AnthropicTextBlockParam] | None = None
    stream: bool | None = None
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    top_k: Annotated[int, Meta(ge=0)] | None = None
    stop_sequences: list[str] | None = None
    tools: list[MessagesTool] | None = None
    tool_choice: (
        MessagesToolChoiceAuto | MessagesToolChoiceAny | MessagesToolChoiceTool | MessagesToolChoiceNone | None
    ) = None
    thinking: MessagesThinkingEnabled | MessagesThinkingAdaptive | MessagesThinkingDisabled | None = None
    metadata: MessagesMetadata | None = None
    output_config: MessagesOutputConfig | None = None
    user: str | None = None
    # OpenRouter's extensions, typed as on /chat/completions (which checks them again).
    models: list[str] | None = None
    fallbacks: Annotated[list[MessagesFallbackParam], Meta(max_length=3)] | None = None
    provider: ProviderPrefs | None = None
    route: Literal["fallback", "sort"] | None = None
    session_id: Annotated[str, Meta(max_length=256)] | None = None


class MessagesCountTokensRequest(MessagesRequest):
    """A /messages/count_tokens body: a /messages one, `max_tokens` optional."""

    max_tokens: Annotated[int, Meta(ge=1)] | None = None  # type: ignore[assignment]


# OpenRouter's own request fields, the same in every format: passed to the pipeline as they are.
PASSTHROUGH = ("provider", "plugins", "route", "session_id", "trace", "transforms", "debug", "cache_control",
               "max_tool_calls", "stop_server_tools_when")  # fmt: skip

# The efforts OpenRouter's `reasoning.effort` takes that Anthropic's `output_config.effort` also names.
EFFORTS = frozenset({"low", "medium", "high", "xhigh", "max"})

BLOCK_TYPES = {
    "user": tuple(b.__struct_config__.tag for b in UserBlock.__args__),
    "assistant": ("text", "tool_use", "thinking", "redacted_thinking"),
    "system": ("text",),
}
_BLOCK_AT = re.compile(r"`\$\.messages\[(\d+)\]\.content\[\d+\]\.type`")
_ROLE_AT = re.compile(r"`\$\.messages\[\d+\]\.role`")
_SOURCE_AT = re.compile(r"\.source\.type`")
INTEGER_FIELDS = ("max_tokens", "top_k")


def parse_request(body: Any, *, count_only: bool = False) -> dict[str, Any]:
    """The internal chat body for a Messages request; GatewayError(400) for what Anthropic refuses.
    `count_only`: a count_tokens body, which has no max_tokens."""
    if not isinstance(body, dict):
        raise GatewayError(400, "Request body must be a JSON object")
    tools = body.get("tools")
    if isinstance(tools, list) and any(_openrouter_tool(t) for t in tools):
        # OpenRouter's server tools (no `name`: not custom tools) go to the gateway's loop (servertools/)
        out = parse_request({**body, "tools": [t for t in tools if not _openrouter_tool(t)]}, count_only=count_only)
        server = [{"type": t["type"], "parameters": t.get("parameters") or {}} for t in tools if _openrouter_tool(t)]
        out["tools"] = [*(out.get("tools") or ()), *server]
        return out
    try:
        req = msgspec.convert(body, MessagesCountTokensRequest if count_only else MessagesRequest)
    except msgspec.ValidationError as exc:
        if not _integral_floats_to_int(body):
            raise GatewayError(400, f"Invalid request: {_explain(str(exc), body)}") from None
        return parse_request(body, count_only=count_only)
    return _to_chat(req, body)


def _openrouter_tool(tool: Any) -> bool:
    return isinstance(tool, dict) and isinstance(kind := tool.get("type"), str) and kind.startswith("openrouter:")


def _integral_floats_to_int(body: dict[str, Any]) -> bool:
    """`max_tokens: 1024.0` is the integer 1024 in JSON; msgspec reads int fields strictly."""
    changed = False
    thinking = body.get("thinking")
    places = [(body, name) for name in INTEGER_FIELDS]
    if isinstance(thinking, dict):
        places.append((thinking, "budget_tokens"))
    for holder, name in places:
        value = holder.get(name)
        if isinstance(value, float) and value.is_integer():
            holder[name] = int(value)
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
    elif _SOURCE_AT.search(error):
        return f"{error}; a source is base64, url, or text or content for a document (file ids are not supported)"
    return error


def _to_chat(req: MessagesRequest, body: dict[str, Any]) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if req.system:
        messages.append({"role": "system", "content": _text_content(req.system)})
    tool_ids: set[str] = set()
    for m in req.messages:
        if isinstance(m, MessagesUserMessage):
            _user(m, messages, tool_ids)
        elif isinstance(m, MessagesAssistantMessage):
            messages.append(_assistant(m, tool_ids))
        else:
            messages.append({"role": "system", "content": _text_content(m.content)})

    out: dict[str, Any] = {"messages": messages}
    if req.model is not None:
        out["model"] = req.model
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


def _text_part(block: AnthropicTextBlockParam) -> dict[str, Any]:
    part: dict[str, Any] = {"type": "text", "text": block.text}
    if block.cache_control is not None:
        part["cache_control"] = block.cache_control
    return part


def _text_content(content: str | list[AnthropicTextBlockParam]) -> str | list[dict[str, Any]]:
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


def _image_url(source: AnthropicBase64Source | AnthropicUrlSource) -> str:
    if isinstance(source, AnthropicBase64Source):
        return f"data:{source.media_type};base64,{source.data}"
    return source.url


def _parts(block: PartBlock) -> list[dict[str, Any]]:
    """The chat content parts of one user-side block."""
    if isinstance(block, AnthropicTextBlockParam):
        return [_text_part(block)]
    if isinstance(block, AnthropicImageBlockParam):
        return [_with_cache({"type": "image_url", "image_url": {"url": _image_url(block.source)}}, block.cache_control)]
    if isinstance(block, AnthropicSearchResultBlockParam):
        text = f"{block.title} ({block.source})\n" + "\n".join(b.text for b in block.content)
        return [_with_cache({"type": "text", "text": text}, block.cache_control)]
    return _document(block)


def _document(block: AnthropicDocumentBlockParam) -> list[dict[str, Any]]:
    source = block.source
    if isinstance(source, AnthropicPlainTextSource):
        parts = [{"type": "text", "text": source.data}]
    elif isinstance(source, AnthropicContentSource):
        inner = source.content
        parts = [{"type": "text", "text": inner}] if isinstance(inner, str) else [p for b in inner for p in _parts(b)]
    else:  # a PDF, as OpenRouter's chat `file` part carries it (a data URL or a URL)
        data = (
            f"data:{source.media_type};base64,{source.data}"
            if isinstance(source, AnthropicBase64Source)
            else source.url
        )
        parts = [{"type": "file", "file": {"filename": block.title or "document.pdf", "file_data": data}}]
    if block.context:
        parts.insert(0, {"type": "text", "text": block.context})
    if block.cache_control is not None and parts:
        parts[-1]["cache_control"] = block.cache_control
    return parts


def _user(m: MessagesUserMessage, out: list[dict[str, Any]], tool_ids: set[str]) -> None:
    """A user turn: its tool results become `tool` messages (first, as chat wants them right after
    the assistant's calls), the rest one user message."""
    if isinstance(m.content, str):
        out.append({"role": "user", "content": m.content})
        return
    parts: list[dict[str, Any]] = []
    results = 0
    for block in m.content:
        if isinstance(block, AnthropicToolResultBlockParam):
            out.append(_tool_message(block, tool_ids))
            results += 1
        else:
            parts.extend(_parts(block))
    if parts or not results:  # a turn of empty blocks is still a turn
        out.append({"role": "user", "content": _collapse(parts) if parts else ""})


def _tool_message(block: AnthropicToolResultBlockParam, tool_ids: set[str]) -> dict[str, Any]:
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


def _assistant(m: MessagesAssistantMessage, tool_ids: set[str]) -> dict[str, Any]:
    if isinstance(m.content, str):
        return {"role": "assistant", "content": m.content}
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    details: list[dict[str, Any]] = []
    for block in m.content:
        if isinstance(block, AnthropicTextBlockParam):
            parts.append(_text_part(block))
        elif isinstance(block, AnthropicToolUseBlockParam):
            tool_ids.add(block.id)
            args = msgspec.json.encode(block.input if block.input is not None else {}).decode()
            calls.append({"id": block.id, "type": "function", "function": {"name": block.name, "arguments": args}})
        elif isinstance(block, AnthropicThinkingBlockParam):
            detail = {
                "type": "reasoning.text",
                "text": block.thinking,
                "format": ANTHROPIC_FORMAT,
                "index": len(details),
            }
            if block.signature:
                detail["signature"] = block.signature
            details.append(detail)
        elif isinstance(block, AnthropicRedactedThinkingBlockParam):
            details.append(encrypted_detail(block.data, len(details)))
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
        if tool.type is not None and tool.type.startswith("web_search_"):
            # Anthropic's web search, run by the gateway as openrouter:web_search (servertools/)
            params: dict[str, Any] = {}
            for name, value in (("max_uses", tool.max_uses), ("allowed_domains", tool.allowed_domains),
                                ("excluded_domains", tool.blocked_domains)):  # fmt: skip
                if value is not None:
                    params.setdefault(name, value)
            tools.append({"type": tool.type, "parameters": params})
            continue
        if tool.type not in (None, "custom"):
            continue  # Anthropic's server tools (code execution ...) run only on its servers
        parameters = tool.input_schema if tool.input_schema is not None else {"type": "object", "properties": {}}
        function: dict[str, Any] = {"name": tool.name, "parameters": parameters}
        if tool.description is not None:
            function["description"] = tool.description
        if tool.strict is not None:
            function["strict"] = tool.strict
        tools.append({"type": "function", "function": function})
    if tools:
        out["tools"] = tools
    choice = req.tool_choice
    if choice is None or (not tools and not isinstance(choice, MessagesToolChoiceNone)):
        return
    if isinstance(choice, MessagesToolChoiceNone):
        if tools:
            out["tool_choice"] = "none"
        return
    if isinstance(choice, MessagesToolChoiceAuto):
        out["tool_choice"] = "auto"
    elif isinstance(choice, MessagesToolChoiceAny):
        out["tool_choice"] = "required"
    else:
        out["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
    if choice.disable_parallel_tool_use:
        out["parallel_tool_calls"] = False


def _reasoning(req: MessagesRequest) -> dict[str, Any] | None:
    """`thinking` as OpenRouter's unified reasoning config: a budget is `max_tokens`, adaptive thinking
    is reasoning at the effort `output_config.effort` names (the model's default otherwise)."""
    thinking = req.thinking
    if isinstance(thinking, MessagesThinkingEnabled):
        return {"max_tokens": thinking.budget_tokens}
    if isinstance(thinking, MessagesThinkingDisabled):
        return {"effort": "none"}
    if isinstance(thinking, MessagesThinkingAdaptive):
        effort = req.output_config.effort if req.output_config else None
        return {"effort": effort} if effort in EFFORTS else {"enabled": True}
    return None
