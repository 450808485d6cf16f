"""The documented contract of `POST /responses` (omnirouter.openapi_doc): its request as the server's
document states it, the Response object and the stream's events.

The request Structs describe a subset of what formats/responses_request.py accepts, with every
constraint it enforces that a schema can state, so that whatever the document allows is served.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from omnirouter.formats.openai_chat import ProviderPrefs
from omnirouter.formats.responses_output import ERROR_CODES
from omnirouter.formats.responses_request import (
    FunctionCallItem,
    InputText,
    JsonObjectFormat,
    JsonSchemaFormat,
    Reasoning,
    ReasoningItem,
    TextFormat,
)


class _Struct(msgspec.Struct, kw_only=True):
    pass


# -- the request


class MessageItem(msgspec.Struct, kw_only=True, tag_field="type", tag="message"):
    """A message. Text is what every role takes; user messages may also hold input_image (with an
    image_url), input_file (file_data or file_url), input_audio and input_video parts, and assistant
    messages output_text and refusal parts."""

    role: Literal["user", "system", "developer", "assistant"]
    content: str | list[InputText]


class FunctionCallOutputItem(msgspec.Struct, kw_only=True, tag_field="type", tag="function_call_output"):
    """The output of the `function_call` earlier in `input` with the same `call_id`."""

    call_id: str
    output: str | list[InputText]


class FunctionTool(_Struct):
    type: Literal["function"]
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FunctionChoice(_Struct):
    type: Literal["function"]
    name: str


class Text(_Struct):
    format: TextFormat | JsonObjectFormat | JsonSchemaFormat | None = None


class ResponsesRequestBody(_Struct, kw_only=True):
    """A Responses request. Every item of `input` has its `type`; a `function_call_output` answers a
    `function_call` earlier in `input` (the same `call_id`). Responses are not stored: `store` is
    false, and `previous_response_id` and `item_reference` items cannot be used. Tools other than
    functions (web_search, file_search ...) are accepted and left out: no chat upstream runs them."""

    model: str | None = None
    models: list[str] | None = None
    input: (
        Annotated[str, Meta(min_length=1)]
        | Annotated[list[MessageItem | FunctionCallItem | FunctionCallOutputItem | ReasoningItem], Meta(min_length=1)]
    )
    instructions: str | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: Literal["auto", "none", "required"] | FunctionChoice | None = None
    parallel_tool_calls: bool | None = None
    reasoning: Reasoning | None = None
    text: Text | None = None
    max_output_tokens: Annotated[int, Meta(ge=1)] | None = None
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    user: Annotated[str, Meta(max_length=256)] | None = None
    metadata: dict[str, str] | None = None
    store: Literal[False] | None = None
    stream: bool | None = None
    provider: ProviderPrefs | None = None
    route: Literal["fallback", "sort"] | None = None
    session_id: Annotated[str, Meta(max_length=256)] | None = None


# -- the Response object


class _Typed(msgspec.Struct, kw_only=True, tag_field="type"):
    pass


class ResponseOutputText(_Typed, tag="output_text"):
    text: str
    annotations: list[Any]
    logprobs: list[Any] | UnsetType = UNSET


class ResponseRefusal(_Typed, tag="refusal"):
    refusal: str


class ResponseMessage(_Typed, tag="message"):
    id: str
    role: Literal["assistant"]
    status: Literal["completed", "incomplete", "in_progress"]
    content: list[ResponseOutputText | ResponseRefusal]


class SummaryPart(_Typed, tag="summary_text"):
    text: str


class ReasoningTextPart(_Typed, tag="reasoning_text"):
    text: str


class ResponseReasoning(_Typed, tag="reasoning"):
    """Reasoning: raw text in `content`, a summary in `summary`, an opaque `encrypted_content`; the
    signature and format of the provider's reasoning block, to send back as it came."""

    id: str
    summary: list[SummaryPart]
    status: Literal["completed", "incomplete", "in_progress"] | UnsetType = UNSET
    content: list[ReasoningTextPart] | UnsetType = UNSET
    encrypted_content: str | UnsetType = UNSET
    signature: str | UnsetType = UNSET
    format: str | UnsetType = UNSET


class ResponseFunctionCall(_Typed, tag="function_call"):
    id: str
    call_id: str
    name: str
    arguments: Annotated[str, Meta(description="JSON text")]
    status: Literal["completed", "incomplete", "in_progress"]
    namespace: Annotated[str, Meta(description="The namespace tool that offered the function")] | UnsetType = UNSET


class ResponseError(_Struct):
    code: Annotated[str, Meta(extra_json_schema={"enum": sorted({*ERROR_CODES.values(), "server_error"})})]
    message: str


class IncompleteDetails(_Struct):
    reason: Literal["max_output_tokens", "content_filter"]


class InputTokensDetails(_Struct):
    cached_tokens: int
    cache_write_tokens: int


class OutputTokensDetails(_Struct):
    reasoning_tokens: int


class ResponsesCostDetails(_Struct):
    upstream_inference_cost: Decimal | None
    upstream_inference_input_cost: Decimal
    upstream_inference_output_cost: Decimal


class ResponsesUsage(_Struct):
    """Token counts and what the request cost, in USD (the same as GET /generation's total_cost)."""

    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int
    cost: Decimal
    is_byok: bool
    cost_details: ResponsesCostDetails


class ResponsesResult(_Struct):
    """A Response. Its `id` is `resp_` and the generation id without `gen-`; the X-Generation-Id header
    has the generation id itself, for GET /generation. Request fields are echoed back."""

    id: str
    object: Literal["response"]
    created_at: int
    completed_at: int | None
    status: Literal["completed", "incomplete", "failed", "in_progress"]
    model: str
    output: list[ResponseMessage | ResponseReasoning | ResponseFunctionCall]
    error: ResponseError | None
    incomplete_details: IncompleteDetails | None
    instructions: str | None
    metadata: dict[str, str] | None
    tools: list[dict[str, Any]]
    tool_choice: Any
    parallel_tool_calls: bool
    temperature: float | None
    top_p: float | None
    presence_penalty: float | None
    frequency_penalty: float | None
    max_output_tokens: int | None
    usage: ResponsesUsage | UnsetType = UNSET
    error_type: Annotated[str, Meta(description="Why a failed response failed")] | UnsetType = UNSET
    store: bool | UnsetType = UNSET
    background: bool | UnsetType = UNSET
    user: str | UnsetType | None = UNSET
    reasoning: dict[str, Any] | UnsetType = UNSET
    text: dict[str, Any] | UnsetType = UNSET


# -- the stream

EVENT_TYPES = [
    "response.created", "response.in_progress", "response.completed", "response.incomplete", "response.failed",
    "response.output_item.added", "response.output_item.done", "response.content_part.added",
    "response.content_part.done", "response.output_text.delta", "response.output_text.done",
    "response.reasoning_text.delta", "response.reasoning_text.done", "response.reasoning_summary_part.added",
    "response.reasoning_summary_part.done", "response.reasoning_summary_text.delta",
    "response.reasoning_summary_text.done", "response.function_call_arguments.delta",
    "response.function_call_arguments.done", "response.refusal.delta", "response.refusal.done", "response.debug",
]  # fmt: skip


class ResponsesStreamEvent(_Struct):
    """One event. `response.created` and `response.in_progress` carry the response as it starts; each
    output item is `response.output_item.added`, its deltas, and `response.output_item.done`; the
    last event, `response.completed`, `response.incomplete` or `response.failed`, carries the whole
    response with its usage. `sequence_number` counts the events from 0."""

    type: Annotated[str, Meta(extra_json_schema={"enum": EVENT_TYPES})]
    sequence_number: int
    response: ResponsesResult | UnsetType = UNSET
    output_index: int | UnsetType = UNSET
    item: ResponseMessage | ResponseReasoning | ResponseFunctionCall | UnsetType = UNSET
    item_id: str | UnsetType = UNSET
    content_index: int | UnsetType = UNSET
    summary_index: int | UnsetType = UNSET
    part: ResponseOutputText | ResponseRefusal | SummaryPart | UnsetType = UNSET
    delta: str | UnsetType = UNSET
    text: str | UnsetType = UNSET
    refusal: str | UnsetType = UNSET
    name: str | UnsetType = UNSET
    arguments: str | UnsetType = UNSET
    logprobs: list[Any] | UnsetType = UNSET
    debug: dict[str, Any] | UnsetType = UNSET


class ResponsesStreamingResponse(_Struct):
    """A server-sent event (`event: <type>` and `data: <event>`); the stream ends with `data: [DONE]`."""

    data: ResponsesStreamEvent
    event: str | UnsetType = UNSET
