"""An OpenAI Responses request, as OpenRouter's stateless `/responses` takes it, in the internal form.

msgspec Structs validate the fields the translation reads, in one pass; the items become chat
messages: `instructions` a system message, `function_call` items an assistant turn's `tool_calls`,
`function_call_output` items `tool` messages, `reasoning` items the turn's `reasoning_details`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from omnirouter.errors import GatewayError

# -- content parts


class _Part(msgspec.Struct, kw_only=True, tag_field="type"):
    pass


class InputText(_Part, tag="input_text"):
    text: str


class InputImage(_Part, tag="input_image"):
    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["auto", "low", "high", "original"] | None = None


class InputFile(_Part, tag="input_file"):
    file_data: str | None = None
    file_id: str | None = None
    file_url: str | None = None
    filename: str | None = None


class AudioData(msgspec.Struct, kw_only=True):
    data: str
    format: str


class InputAudio(_Part, tag="input_audio"):
    input_audio: AudioData


class InputVideo(_Part, tag="input_video"):
    video_url: str


class OutputText(_Part, tag="output_text"):
    text: str


class Refusal(_Part, tag="refusal"):
    refusal: str


class SummaryText(_Part, tag="summary_text"):
    text: str


class ReasoningText(_Part, tag="reasoning_text"):
    text: str


Part = InputText | InputImage | InputFile | InputAudio | InputVideo | OutputText | Refusal
INPUT_PARTS = (InputText, InputImage, InputFile, InputAudio, InputVideo)
# What a function's output may hold (the spec's FunctionCallOutputItem).
OutputPart = InputText | InputImage | InputFile

# -- input items


class _Item(msgspec.Struct, kw_only=True, tag_field="type"):
    pass


class MessageItem(_Item, tag="message"):
    role: Literal["user", "system", "developer", "assistant"]
    content: str | list[Part] | None = None


class FunctionCallItem(_Item, tag="function_call"):
    call_id: str
    name: str
    arguments: str
    namespace: str | None = None


class FunctionCallOutputItem(_Item, tag="function_call_output"):
    call_id: str
    output: str | list[OutputPart]


class ReasoningItem(_Item, tag="reasoning"):
    id: str | None = None
    summary: list[SummaryText] | None = None
    content: list[ReasoningText] | None = None
    encrypted_content: str | None = None
    signature: str | None = None
    format: str | None = None


class ItemReference(_Item, tag="item_reference"):
    id: str


Item = MessageItem | FunctionCallItem | FunctionCallOutputItem | ReasoningItem | ItemReference
ITEM_TYPES = ("message", "function_call", "function_call_output", "reasoning")

# -- tools and options


class FunctionTool(msgspec.Struct, kw_only=True):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Reasoning(msgspec.Struct, kw_only=True):
    effort: Literal["max", "xhigh", "high", "medium", "low", "minimal", "none"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None
    max_tokens: Annotated[int, Meta(ge=0)] | None = None
    enabled: bool | None = None
    exclude: bool | None = None


class _Format(msgspec.Struct, kw_only=True, tag_field="type"):
    pass


class TextFormat(_Format, tag="text"):
    pass


class JsonObjectFormat(_Format, tag="json_object"):
    pass


class JsonSchemaFormat(_Format, tag="json_schema"):
    name: str
    schema: dict[str, Any]
    description: str | None = None
    strict: bool | None = None


class Text(msgspec.Struct, kw_only=True):
    format: TextFormat | JsonObjectFormat | JsonSchemaFormat | None = None
    verbosity: str | None = None


class ResponsesRequest(msgspec.Struct, kw_only=True):
    input: str | list[Item] | None = None
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Literal["auto", "none", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    reasoning: Reasoning | None = None
    text: Text | None = None
    max_output_tokens: Annotated[int, Meta(ge=1)] | None = None
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    user: Annotated[str, Meta(max_length=256)] | None = None
    safety_identifier: str | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    previous_response_id: Any = None
    background: bool | None = None
    prompt: Any = None
    stream: bool | None = None


# Fields that mean the same in the internal (chat) request, copied as sent; chat's own validation
# checks them next (openai_chat.parse).
SHARED_FIELDS = (
    "model",
    "models",
    "provider",
    "plugins",
    "route",
    "session_id",
    "trace",
    "debug",
    "cache_control",
    "service_tier",
    "prompt_cache_key",
    "prompt_cache_options",
    "modalities",
    "image_config",
    "temperature",
    "top_p",
    "top_k",
    "presence_penalty",
    "frequency_penalty",
    "parallel_tool_calls",
    "max_tool_calls",  # the server-tool loop's (servertools/)
    "stop_server_tools_when",
)  # not `metadata`: only echoed (OpenAI's chat API has refused it without `store`)

# Hosted web search spellings the gateway's openrouter:web_search takes (servertools/__init__.py).
WEB_SEARCH_SHORTHANDS = frozenset({"web_search", "web_search_preview", "web_search_preview_2025_03_11",
                                   "web_search_2025_08_26"})  # fmt: skip
SEPARATOR = "__"  # a namespaced tool `ns` / `name` is the chat function `ns__name`


class ResponsesBody(dict[str, Any]):
    """The internal request, plus what the answer echoes back that the chat form cannot hold."""

    echo: dict[str, Any]
    namespaced: dict[str, tuple[str, str]]  # chat function name -> (namespace, name)
    client: dict[str, Any]  # the body as the client sent it, for a passthrough


def parse_request(body: Any) -> ResponsesBody:
    if not isinstance(body, dict):
        raise GatewayError(400, "Request body must be a JSON object")
    items = body.get("input")
    if isinstance(items, list):
        for item in items:  # `type` may be left out of a message (EasyInputMessage)
            if isinstance(item, dict) and "type" not in item and "role" in item:
                item["type"] = "message"
    try:
        req = msgspec.convert(body, ResponsesRequest)
    except msgspec.ValidationError as exc:
        if not _integral_floats_to_int(body):
            raise GatewayError(400, f"Invalid request: {_explain(str(exc))}") from None
        return parse_request(body)
    _refuse_state(req)
    out = ResponsesBody((k, body[k]) for k in SHARED_FIELDS if body.get(k) is not None)
    out.namespaced = {}
    tools = _tools(req.tools or [], out.namespaced)
    out["messages"] = _messages(req, out.namespaced)
    out["stream"] = bool(req.stream)
    if tools:
        out["tools"] = tools
    if req.tool_choice is not None:
        choice, allowed = _tool_choice(req.tool_choice, out.namespaced)
        if tools:  # (with no function left, a choice could only name a hosted tool, which is not sent)
            out["tool_choice"] = choice
            if allowed is not None:
                out["tools"] = [t for t in tools if t["type"] != "function" or t["function"]["name"] in allowed]
    if req.max_output_tokens is not None:
        out["max_tokens"] = req.max_output_tokens
    if req.reasoning is not None:
        reasoning = {k: v for k in req.reasoning.__struct_fields__ if (v := getattr(req.reasoning, k)) is not None}
        if reasoning:
            out["reasoning"] = reasoning
    if req.text is not None:
        if (rf := _response_format(req.text.format)) is not None:
            out["response_format"] = rf
        if req.text.verbosity is not None:
            out["verbosity"] = req.text.verbosity
    if user := req.user or req.safety_identifier:
        out["user"] = user
    out.echo = _echo(body, req)
    return out


def _integral_floats_to_int(body: dict[str, Any]) -> bool:
    """JSON has one number type: `max_output_tokens: 300.0` is the integer 300 (as in chat's parse).
    Rewritten in place, only after a refusal; whether anything changed."""
    changed = False
    for holder, name in ((body, "max_output_tokens"), (body.get("reasoning"), "max_tokens")):
        value = holder.get(name) if isinstance(holder, dict) else None
        if isinstance(value, float) and value.is_integer():
            holder[name] = int(value)  # type: ignore[index]
            changed = True
    return changed


def _refuse_state(req: ResponsesRequest) -> None:
    """OpenRouter's Responses API is stateless (behaviors §9.1): nothing is stored to refer back to."""
    if req.store:
        raise GatewayError(400, "store: true is not supported: responses are not stored (send store: false or omit it)")
    if req.previous_response_id is not None:
        raise GatewayError(
            400,
            "previous_response_id is not supported: responses are not stored; send the whole conversation in `input`",
        )
    if req.background:
        raise GatewayError(400, "background: true is not supported: responses are not stored")
    if req.prompt is not None:
        raise GatewayError(400, "prompt (a stored prompt template) is not supported; send the text in `input`")


def _tools(tools: list[dict[str, Any]], namespaced: dict[str, tuple[str, str]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "function":
            out.append(_function(tool, f"tools[{i}]"))
        elif kind == "namespace":
            ns = tool.get("name")
            members = tool.get("tools")
            if not isinstance(ns, str) or not isinstance(members, list):
                raise GatewayError(
                    400, f"Invalid request: tools[{i}] (namespace) needs a string `name` and a `tools` list"
                )
            for j, member in enumerate(members):
                if isinstance(member, dict) and member.get("type") == "function":
                    fn = _function(member, f"tools[{i}].tools[{j}]")
                    name = fn["function"]["name"]
                    fn["function"]["name"] = full = f"{ns}{SEPARATOR}{name}"
                    namespaced[full] = (ns, name)
                    out.append(fn)
        elif not isinstance(kind, str):
            raise GatewayError(400, f"Invalid request: tools[{i}] needs a string `type`")
        elif kind.startswith("openrouter:") or kind in WEB_SEARCH_SHORTHANDS:
            out.append(tool)  # a server tool the gateway runs (servertools/), or leaves out
        # Other types (web_search, file_search, code_interpreter ...) are tools that OpenAI hosts and no
        # chat upstream runs: left out (docs/api.md), rather than refusing clients such as the Codex
        # CLI, which offers `web_search` beside its functions.
    return out


def _function(tool: dict[str, Any], where: str) -> dict[str, Any]:
    try:
        fn = msgspec.convert(tool, FunctionTool)
    except msgspec.ValidationError as exc:
        raise GatewayError(400, f"Invalid request: {where}: {exc}") from None
    spec: dict[str, Any] = {"name": fn.name}
    if fn.description is not None:
        spec["description"] = fn.description
    spec["parameters"] = fn.parameters if fn.parameters is not None else {"type": "object", "properties": {}}
    if fn.strict is not None:
        spec["strict"] = fn.strict
    return {"type": "function", "function": spec}


def _tool_choice(choice: str | dict[str, Any], namespaced: dict[str, tuple[str, str]]) -> tuple[Any, set[str] | None]:
    """The chat tool_choice, and the names `allowed_tools` keeps (None: every tool)."""
    if isinstance(choice, str):
        return choice, None
    kind = choice.get("type")
    if kind == "function" and isinstance(choice.get("name"), str):
        name = choice["name"]
        if isinstance(choice.get("namespace"), str):
            name = f"{choice['namespace']}{SEPARATOR}{name}"
        return {"type": "function", "function": {"name": name}}, None
    if kind == "allowed_tools" and choice.get("mode") in ("auto", "required") and isinstance(choice.get("tools"), list):
        allowed = {t["name"] for t in choice["tools"] if isinstance(t, dict) and isinstance(t.get("name"), str)}
        return choice["mode"], allowed
    raise GatewayError(
        400,
        'Invalid request: tool_choice must be "auto", "none", "required", {"type": "function", "name": ...} '
        'or {"type": "allowed_tools", "mode": ..., "tools": [...]}',
    )


def _response_format(fmt: TextFormat | JsonObjectFormat | JsonSchemaFormat | None) -> dict[str, Any] | None:
    if isinstance(fmt, JsonSchemaFormat):
        schema: dict[str, Any] = {"name": fmt.name, "schema": fmt.schema}
        if fmt.description is not None:
            schema["description"] = fmt.description
        if fmt.strict is not None:
            schema["strict"] = fmt.strict
        return {"type": "json_schema", "json_schema": schema}
    if isinstance(fmt, JsonObjectFormat):
        return {"type": "json_object"}
    return None  # plain text is what a chat upstream answers anyway


def _echo(body: dict[str, Any], req: ResponsesRequest) -> dict[str, Any]:
    """The request fields a Response object repeats (OpenResponsesResult requires most of them)."""
    tools = [t for t in req.tools or () if isinstance(t, dict)]
    echo: dict[str, Any] = {
        "instructions": req.instructions,
        "metadata": req.metadata,
        "tools": tools,
        "tool_choice": body.get("tool_choice") if req.tool_choice is not None else "auto",
        "parallel_tool_calls": req.parallel_tool_calls is not False,
        "temperature": req.temperature,
        "top_p": req.top_p,
        "presence_penalty": body.get("presence_penalty"),
        "frequency_penalty": body.get("frequency_penalty"),
        "max_output_tokens": req.max_output_tokens,
        "store": False,
        "background": False,
        "user": req.user,
    }
    if isinstance(body.get("reasoning"), dict):
        echo["reasoning"] = {k: body["reasoning"].get(k) for k in ("effort", "summary")}
    if isinstance(body.get("text"), dict):
        echo["text"] = body["text"]
    return echo


# -- items to messages


class _Turns:
    """Builds the chat messages; consecutive assistant-side items (reasoning, the assistant's
    messages, function calls) make one assistant message: the chat form holds a turn as one."""

    def __init__(self, namespaced: dict[str, tuple[str, str]]) -> None:
        self.messages: list[dict[str, Any]] = []
        self.turn: dict[str, Any] | None = None  # the assistant message being built
        self.calls: set[str] = set()
        self.full_names = {v: k for k, v in namespaced.items()}

    def assistant(self) -> dict[str, Any]:
        if self.turn is None:
            self.turn = {"role": "assistant", "content": None}
            self.messages.append(self.turn)
        return self.turn

    def close(self) -> None:
        self.turn = None

    def add(self, i: int, item: Item) -> None:
        if isinstance(item, MessageItem):
            self.message(i, item)
        elif isinstance(item, FunctionCallItem):
            name = item.name
            if item.namespace is not None:
                name = self.full_names.get((item.namespace, item.name), f"{item.namespace}{SEPARATOR}{item.name}")
            turn = self.assistant()
            turn.setdefault("tool_calls", []).append(
                {"id": item.call_id, "type": "function", "function": {"name": name, "arguments": item.arguments}}
            )
            self.calls.add(item.call_id)
        elif isinstance(item, FunctionCallOutputItem):
            if item.call_id not in self.calls:
                raise GatewayError(
                    400,
                    f"Invalid request: input[{i}] is a function_call_output for call_id {item.call_id!r}, "
                    "but no function_call item before it has that call_id",
                )
            self.close()
            output = item.output if isinstance(item.output, str) else [_part(i, p) for p in item.output]
            self.messages.append({"role": "tool", "tool_call_id": item.call_id, "content": output})
        elif isinstance(item, ReasoningItem):
            # Reasoning between function calls (interleaved thinking) stays in the turn: a chat upstream
            # wants every tool call of a turn answered before the next assistant message.
            self.assistant().setdefault("reasoning_details", []).extend(reasoning_details(item))
        else:  # ItemReference
            raise GatewayError(
                400,
                f"Invalid request: input[{i}] is an item_reference, but responses are not stored; send the item itself",
            )

    def message(self, i: int, item: MessageItem) -> None:
        content = item.content
        if item.role == "assistant":
            text: list[str] = []
            refusal: list[str] = []
            if isinstance(content, str):
                text.append(content)
            for part in content if isinstance(content, list) else ():
                if isinstance(part, OutputText | InputText):
                    text.append(part.text)
                elif isinstance(part, Refusal):
                    refusal.append(part.refusal)
                else:
                    raise GatewayError(
                        400,
                        f"Invalid request: input[{i}] is an assistant message, whose content parts are "
                        f"output_text or refusal, not {part.__struct_config__.tag}",
                    )
            turn = self.assistant()
            # Several messages in one turn (a commentary, then the answer) share the turn's content.
            said = [turn["content"]] if turn.get("content") else []
            turn["content"] = "\n\n".join([*said, "".join(text)])
            if refusal:
                turn["refusal"] = (turn.get("refusal") or "") + "".join(refusal)
            return
        self.close()
        if content is None:
            raise GatewayError(400, f"Invalid request: input[{i}] ({item.role} message) has no content")
        if isinstance(content, str):
            self.messages.append({"role": item.role, "content": content})
            return
        parts = [_part(i, p) for p in content]
        if item.role != "user" and any(p["type"] != "text" for p in parts):
            raise GatewayError(400, f"Invalid request: input[{i}]: a {item.role} message holds only input_text parts")
        self.messages.append({"role": item.role, "content": parts})


def _part(i: int, part: Part) -> dict[str, Any]:
    """One input content part as its chat content part."""
    if isinstance(part, InputText):
        return {"type": "text", "text": part.text}
    if isinstance(part, InputImage):
        if part.image_url is None:
            raise GatewayError(
                400, f"Invalid request: input[{i}]: input_image needs an image_url (files are not stored here)"
            )
        image: dict[str, Any] = {"url": part.image_url}
        if part.detail is not None:
            image["detail"] = part.detail
        return {"type": "image_url", "image_url": image}
    if isinstance(part, InputFile):
        data = part.file_data or part.file_url
        if data is None:
            raise GatewayError(400, f"Invalid request: input[{i}]: input_file needs file_data or file_url")
        file: dict[str, Any] = {"file_data": data}
        if part.filename is not None:
            file["filename"] = part.filename
        return {"type": "file", "file": file}
    if isinstance(part, InputAudio):
        return {
            "type": "input_audio",
            "input_audio": {"data": part.input_audio.data, "format": part.input_audio.format},
        }
    if isinstance(part, InputVideo):
        return {"type": "video_url", "video_url": {"url": part.video_url}}
    raise GatewayError(
        400,
        f"Invalid request: input[{i}]: a {part.__struct_config__.tag} part belongs in an assistant message; "
        "user, system and developer messages hold input_text, input_image, input_file, input_audio, input_video",
    )


def reasoning_details(item: ReasoningItem) -> list[dict[str, Any]]:
    """A reasoning item as reasoning_details (the OpenAPI ReasoningDetail shapes)."""
    details: list[dict[str, Any]] = []
    common: dict[str, Any] = {}
    if item.id is not None:
        common["id"] = item.id
    if item.format is not None:
        common["format"] = item.format
    for s in item.summary or ():
        details.append({"type": "reasoning.summary", "summary": s.text, **common})
    for c in item.content or ():
        detail = {"type": "reasoning.text", "text": c.text, **common}
        if item.signature is not None:
            detail["signature"] = item.signature
        details.append(detail)
    if item.encrypted_content is not None:
        details.append({"type": "reasoning.encrypted", "data": item.encrypted_content, **common})
    return details


def _messages(req: ResponsesRequest, namespaced: dict[str, tuple[str, str]]) -> list[dict[str, Any]]:
    turns = _Turns(namespaced)
    if req.instructions:
        turns.messages.append({"role": "system", "content": req.instructions})
    items = req.input
    if items is None or items == "" or items == []:
        raise GatewayError(400, "Invalid request: `input` is required: a string or a non-empty list of items")
    if isinstance(items, str):
        turns.messages.append({"role": "user", "content": items})
        return turns.messages
    for i, item in enumerate(items):
        turns.add(i, item)
    for message in turns.messages:  # a turn of reasoning alone still needs a content for chat upstreams
        if message["role"] == "assistant" and message["content"] is None and not message.get("tool_calls"):
            message["content"] = ""
    return turns.messages


_TAG_AT = re.compile(r"Invalid value '([^']*)' - at `\$\.input\[(\d+)\]\.type`")
_PART_TAG_AT = re.compile(r"Invalid value '([^']*)' - at `\$\.input\[(\d+)\]\.content\[\d+\]\.type`")


def _explain(error: str) -> str:
    """msgspec's message for an unknown item or part type, with the types that are accepted."""
    if match := _TAG_AT.match(error):
        return (
            f"input[{match[2]}] has type {match[1]!r}, which this gateway does not take; "
            f"input items have type {', '.join(ITEM_TYPES)}"
        )
    if match := _PART_TAG_AT.match(error):
        return (
            f"input[{match[2]}] has a content part of type {match[1]!r}; parts have type input_text, "
            "input_image, input_file, input_audio, input_video (user, system, developer) or output_text, "
            "refusal (assistant)"
        )
    return error
