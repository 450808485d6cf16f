"""The documented contract of what POST /messages and /messages/count_tokens send (formats/
anthropic_*.py build them as dicts): an Anthropic `message`, its stream events, and Anthropic's error
envelope. Names follow the official OpenRouter schema where one corresponds (``MessagesResult``,
``AnthropicUsage``, ``AnthropicMessagesErrorResponse``...).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from omnirouter.api.schemas import CostDetails
from omnirouter.formats.anthropic_terms import CANONICAL_ERROR_TYPES, STOP_REASONS, TYPE_OF_ERROR_TYPE, TYPE_OF_STATUS


def _enum(values: Any) -> Meta:
    return Meta(extra_json_schema={"enum": sorted(set(values))})


StopReason = Annotated[str, _enum(STOP_REASONS)]
ErrorKind = Annotated[
    str, _enum({*TYPE_OF_ERROR_TYPE.values(), *TYPE_OF_STATUS.values(), "api_error", "invalid_request_error"})
]


class _Struct(msgspec.Struct, kw_only=True):
    pass


class _Tagged(msgspec.Struct, kw_only=True, tag_field="type"):
    pass


# ------------------------------------------------------------------------------------------ answers


class AnthropicTextBlock(_Tagged, tag="text"):
    text: str
    citations: list[Any] | None


class AnthropicThinkingBlock(_Tagged, tag="thinking"):
    thinking: str
    signature: Annotated[str, Meta(description="Empty when the model that answered does not sign its reasoning")]


class AnthropicRedactedThinkingBlock(_Tagged, tag="redacted_thinking"):
    data: str


class AnthropicCaller(_Struct):
    type: Literal["direct"]


class AnthropicToolUseBlock(_Tagged, tag="tool_use"):
    id: str
    name: str
    input: dict[str, Any]
    caller: AnthropicCaller


ContentBlock = AnthropicTextBlock | AnthropicThinkingBlock | AnthropicRedactedThinkingBlock | AnthropicToolUseBlock


class AnthropicOutputTokensDetails(_Struct):
    thinking_tokens: int


class AnthropicUsage(_Struct):
    """Anthropic's usage: `input_tokens` excludes cache reads and writes. OpenRouter adds the cost."""

    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int | None
    cache_read_input_tokens: int | None
    cache_creation: dict[str, int] | None
    inference_geo: str | None
    output_tokens_details: AnthropicOutputTokensDetails | None
    server_tool_use: dict[str, int] | None
    service_tier: Literal["standard", "priority", "batch"] | None
    cost: Decimal | UnsetType = UNSET
    is_byok: bool | UnsetType = UNSET
    cost_details: CostDetails | UnsetType = UNSET


class MessagesResult(_Struct):
    """An Anthropic message. `id` is the generation id (gen-...), for GET /generation."""

    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    model: str
    content: list[ContentBlock]
    stop_reason: StopReason | None
    stop_sequence: str | None
    stop_details: dict[str, Any] | None
    container: dict[str, Any] | None
    usage: AnthropicUsage
    provider: Annotated[str, Meta(description="The provider that served the request")] | UnsetType = UNSET
    openrouter_metadata: dict[str, Any] | UnsetType = UNSET


class MessagesCountTokensResult(_Struct):
    input_tokens: Annotated[int, Meta(description="An estimate: see the description of the operation")]


# ----------------------------------------------------------------------------------------- errors


class AnthropicError(_Struct):
    type: ErrorKind
    message: str
    error_type: Annotated[str, _enum(CANONICAL_ERROR_TYPES)] | UnsetType = UNSET


class AnthropicMessagesErrorResponse(_Struct):
    """Every error of /messages: Anthropic's envelope, OpenRouter's canonical `error_type` inside."""

    type: Literal["error"]
    error: AnthropicError
    request_id: str | None
    metadata: dict[str, Any] | UnsetType = UNSET


# ------------------------------------------------------------------------------------------ streams


class MessagesStartMessage(_Struct):
    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    model: str
    content: list[ContentBlock]
    stop_reason: None
    stop_sequence: None
    stop_details: None
    container: None
    usage: AnthropicUsage
    provider: str | UnsetType = UNSET


class MessagesStartEvent(_Tagged, tag="message_start"):
    message: MessagesStartMessage


class MessagesContentBlockStartEvent(_Tagged, tag="content_block_start"):
    index: int
    content_block: ContentBlock


class TextDelta(_Tagged, tag="text_delta"):
    text: str


class ThinkingDelta(_Tagged, tag="thinking_delta"):
    thinking: str


class SignatureDelta(_Tagged, tag="signature_delta"):
    signature: str


class InputJsonDelta(_Tagged, tag="input_json_delta"):
    partial_json: str


class MessagesContentBlockDeltaEvent(_Tagged, tag="content_block_delta"):
    index: int
    delta: TextDelta | ThinkingDelta | SignatureDelta | InputJsonDelta


class MessagesContentBlockStopEvent(_Tagged, tag="content_block_stop"):
    index: int


class MessagesDelta(_Struct):
    stop_reason: StopReason | None
    stop_sequence: str | None
    stop_details: dict[str, Any] | None
    container: dict[str, Any] | None


class MessagesDeltaEvent(_Tagged, tag="message_delta"):
    """The end of the answer: why it stopped, and the final usage with OpenRouter's cost."""

    delta: MessagesDelta
    usage: AnthropicUsage


class MessagesStopEvent(_Tagged, tag="message_stop"):
    openrouter_metadata: dict[str, Any] | UnsetType = UNSET


class MessagesErrorEvent(_Tagged, tag="error"):
    """An error after the stream started; nothing follows it."""

    error: AnthropicError


MessagesStreamEvent = (
    MessagesStartEvent
    | MessagesContentBlockStartEvent
    | MessagesContentBlockDeltaEvent
    | MessagesContentBlockStopEvent
    | MessagesDeltaEvent
    | MessagesStopEvent
    | MessagesErrorEvent
)


class MessagesStreamingResponse(_Struct):
    """A server-sent event of a streamed message, `event:` naming its `data`'s type. As Anthropic's
    streams do, it ends after `message_stop` (or an `error` event), without a `[DONE]` sentinel."""

    event: str
    data: MessagesStreamEvent
