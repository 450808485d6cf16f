"""The documented contract of every body the API sends (and of query strings it reads).

Handlers build plain dicts; these Structs are what ``omnirouter.openapi_doc`` turns into the OpenAPI
document, and tests/test_openapi.py checks real responses against that document. Request bodies are
the Structs the handlers already decode with (``ChatRequest``, ``CreateKey``, ``UpdateKey``).

Names follow the official OpenRouter schema where one corresponds (``ChatResult``, ``ChatUsage``...).
``Decimal`` fields leave the server as JSON numbers with every digit (``jsonio``); the document says
``number`` for them. ``UNSET`` defaults mark fields that are omitted, rather than null, when absent.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from omnirouter.api.keys import LimitReset
from omnirouter.api.models import INPUT_MODALITIES, MAX_LIMIT, OUTPUT_MODALITIES, SORTS
from omnirouter.formats.openai_chat import FINISH_REASONS
from omnirouter.governance.key_service import OFFSET_MAX
from omnirouter.routing.availability import CODES as AVAILABILITY_CODES


def _enum(values: Any, description: str | None = None) -> Meta:
    # Enums taken from the handlers' own tables, so the document cannot list a value they reject.
    return Meta(extra_json_schema={"enum": sorted(set(values))}, description=description)


ChatFinishReason = Annotated[str, _enum(FINISH_REASONS.values(), "Normalized across providers")]


class _Struct(msgspec.Struct, kw_only=True):
    pass


# ------------------------------------------------------------------------------------------- errors


class Availability(_Struct):
    """Why no endpoint could serve the requested model(s)."""

    code: Annotated[str, _enum(AVAILABILITY_CODES)]
    retryable: bool
    requested_models: list[str]
    docs_url: str
    excluded_by: list[str] | UnsetType = UNSET
    retry_after: Annotated[float, Meta(description="Seconds; also sent as the Retry-After header")] | UnsetType = UNSET


class ErrorData(_Struct):
    code: Annotated[int, Meta(description="The HTTP status")]
    message: str
    metadata: (
        Annotated[
            dict[str, Any],
            Meta(description="Details: error_type, provider_name, raw, provider_code, previous_errors..."),
        ]
        | UnsetType
    ) = UNSET
    error_type: str | UnsetType = UNSET
    http_status: int | UnsetType = UNSET
    availability: Availability | UnsetType = UNSET


class ErrorResponse(_Struct):
    """Every error answer: ``{"error": {"code", "message", "metadata"?}}``."""

    error: ErrorData


# --------------------------------------------------------------------------------------------- chat


class CostDetails(_Struct):
    upstream_inference_cost: Decimal | None
    upstream_inference_prompt_cost: Decimal
    upstream_inference_completions_cost: Decimal


class ChatPromptTokensDetails(_Struct):
    cached_tokens: int
    cache_write_tokens: int
    audio_tokens: int
    video_tokens: int


class ChatCompletionTokensDetails(_Struct):
    reasoning_tokens: int
    audio_tokens: int


class ChatUsage(_Struct):
    """Token counts and what the request cost, in USD."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: ChatPromptTokensDetails
    completion_tokens_details: ChatCompletionTokensDetails
    cost: Decimal
    is_byok: bool
    cost_details: CostDetails


class ChatTopLogprob(_Struct):
    token: str
    logprob: float
    bytes: list[int] | None


class ChatTokenLogprob(_Struct):
    token: str
    logprob: float
    bytes: list[int] | None
    top_logprobs: list[ChatTopLogprob]


class ChatTokenLogprobs(_Struct):
    content: list[ChatTokenLogprob] | None
    refusal: list[ChatTokenLogprob] | UnsetType | None = UNSET


class ChatToolCallFunction(_Struct):
    name: str
    arguments: Annotated[str, Meta(description="JSON text")]


class ChatToolCall(_Struct):
    id: str
    type: Literal["function"]
    function: ChatToolCallFunction


class ChatAssistantMessage(_Struct):
    role: Literal["assistant"]
    content: str | list[Any] | None = None
    reasoning: str | UnsetType | None = UNSET
    refusal: str | UnsetType | None = UNSET
    tool_calls: list[ChatToolCall] | UnsetType = UNSET


class ChatChoice(_Struct):
    index: int
    message: ChatAssistantMessage
    finish_reason: ChatFinishReason | None
    native_finish_reason: Annotated[str | None, Meta(description="As the provider sent it")]
    logprobs: ChatTokenLogprobs | None


class ChatResult(_Struct):
    """A chat completion. Fields the provider adds beyond these are passed through."""

    id: Annotated[str, Meta(description="The generation id (gen-...), for GET /generation")]
    object: Literal["chat.completion"]
    created: int
    model: str
    provider: Annotated[str, Meta(description="The provider that served the request")]
    choices: list[ChatChoice]
    system_fingerprint: str | None
    usage: ChatUsage
    service_tier: str | UnsetType | None = UNSET


class ChatStreamToolCallFunction(_Struct):
    name: str | UnsetType = UNSET
    arguments: str | UnsetType = UNSET


class ChatStreamToolCall(_Struct):
    index: int
    id: str | UnsetType = UNSET
    type: Literal["function"] | UnsetType = UNSET
    function: ChatStreamToolCallFunction | UnsetType = UNSET


class ChatStreamDelta(_Struct):
    role: Literal["assistant"] | UnsetType = UNSET
    content: str | UnsetType | None = UNSET
    reasoning: str | UnsetType | None = UNSET
    refusal: str | UnsetType | None = UNSET
    tool_calls: list[ChatStreamToolCall] | UnsetType = UNSET


class ChatStreamChoice(_Struct):
    index: int
    delta: ChatStreamDelta
    finish_reason: ChatFinishReason | None
    native_finish_reason: str | UnsetType | None = UNSET
    logprobs: ChatTokenLogprobs | UnsetType | None = UNSET


class ChatStreamErrorMetadata(_Struct):
    error_type: str
    provider_code: str | UnsetType = UNSET


class ChatStreamError(_Struct):
    code: int
    message: str
    metadata: ChatStreamErrorMetadata


class ChatStreamChunk(_Struct):
    """One `data:` event of a streamed completion. The last one before `[DONE]` has empty `choices` and
    the `usage`; an error after the stream started arrives as a chunk with `error`."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChatStreamChoice]
    provider: str | UnsetType = UNSET
    usage: ChatUsage | UnsetType = UNSET
    error: ChatStreamError | UnsetType = UNSET
    system_fingerprint: str | UnsetType | None = UNSET
    service_tier: str | UnsetType | None = UNSET


class ChatStreamingResponse(_Struct):
    """A server-sent event of a streamed completion; the stream ends with `data: [DONE]`."""

    data: ChatStreamChunk


# ------------------------------------------------------------------ legacy text completions (/completions)


class TextCompletionLogprobs(_Struct):
    tokens: list[str]
    token_logprobs: list[float | None]
    top_logprobs: list[dict[str, float]]
    text_offset: Annotated[list[int], Meta(description="Where each token starts in `text`")]


class TextCompletionChoice(_Struct):
    text: Annotated[str, Meta(description="The completion; with `echo`, the prompt followed by it")]
    index: int
    logprobs: TextCompletionLogprobs | None
    finish_reason: ChatFinishReason | None
    native_finish_reason: str | UnsetType | None = UNSET


class TextCompletionResult(_Struct):
    """A text completion. Fields the provider adds beyond these are passed through."""

    id: Annotated[str, Meta(description="The generation id (gen-...), for GET /generation")]
    object: Literal["text_completion"]
    created: int
    model: str
    provider: Annotated[str, Meta(description="The provider that served the request")]
    choices: list[TextCompletionChoice]
    system_fingerprint: str | None
    usage: ChatUsage


class TextCompletionChunk(_Struct):
    """One `data:` event of a streamed text completion. The last one before `[DONE]` has empty
    `choices` and the `usage`; an error after the stream started arrives as a chunk with `error`."""

    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[TextCompletionChoice]
    provider: str | UnsetType = UNSET
    usage: ChatUsage | UnsetType = UNSET
    error: ChatStreamError | UnsetType = UNSET
    system_fingerprint: str | UnsetType | None = UNSET


class TextCompletionStreamingResponse(_Struct):
    """A server-sent event of a streamed text completion; the stream ends with `data: [DONE]`."""

    data: TextCompletionChunk


# --------------------------------------------------------------------------------------------- keys


class _KeyUsage(_Struct):
    limit: Annotated[Decimal | None, Meta(description="Spending limit in USD; null for none")]
    limit_remaining: Decimal | None
    limit_reset: LimitReset | None
    include_byok_in_limit: bool
    usage: Decimal
    usage_daily: Decimal
    usage_weekly: Decimal
    usage_monthly: Decimal
    byok_usage: Decimal
    byok_usage_daily: Decimal
    byok_usage_weekly: Decimal
    byok_usage_monthly: Decimal
    rpm_limit: Annotated[int | None, Meta(description="Omnirouter: requests per minute; null for none")]
    tpm_limit: Annotated[int | None, Meta(description="Omnirouter: prompt + completion tokens per minute")]
    response_cache_ttl_seconds: Annotated[
        int | None, Meta(description="Omnirouter: every request of this key uses the response cache this long")
    ]


class ApiKey(_KeyUsage):
    """An inference key as /keys shows it (never the secret itself)."""

    hash: str
    name: str
    label: str
    disabled: bool
    created_at: datetime
    updated_at: datetime | None
    expires_at: datetime | None
    last_used_at: Annotated[
        datetime | None, Meta(description="When the key last authenticated an inference request; null if never")
    ]
    creator_user_id: str | None
    external_user: Annotated[str | None, Meta(description="The partner's end-user id (`external.user` on create)")]
    workspace_id: str


class ApiKeyResponse(_Struct):
    data: ApiKey


class ApiKeyListResponse(_Struct):
    data: list[ApiKey]


class CreateKeyResponse(_Struct):
    data: ApiKey
    key: Annotated[str, Meta(description="The secret: shown once, only here")]


class DeleteKeyResponse(_Struct):
    deleted: Literal[True]


class RateLimit(_Struct):
    """Deprecated upstream; a fixed placeholder."""

    requests: int
    interval: str
    note: str


class KeyBudget(_Struct):
    """A budget layer checked for the key's requests; on this server only the key's own limit."""

    scope: Literal["key_limit"]
    budget_id: None
    guardrail_id: None
    include_byok: bool
    limit_usd: Decimal
    spend_usd: Annotated[Decimal, Meta(description="Settled spend in the current window")]
    remaining_usd: Annotated[Decimal, Meta(description="limit_usd - spend_usd; may be negative")]
    reset_interval: LimitReset | None
    resets_at: Annotated[datetime | None, Meta(description="When the window rolls over; null for a lifetime limit")]


class FreeModelDailyRequests(_Struct):
    """Requests served by free endpoints today (UTC). Reported against OpenRouter's tier; not enforced."""

    limit: int
    remaining: int
    used: int


class CurrentKey(_KeyUsage):
    label: str
    is_free_tier: bool
    is_management_key: bool
    is_provisioning_key: bool
    expires_at: datetime | None
    creator_user_id: str | None
    organization_id: None
    workspace_id: str
    allowed_data_regions: list[Literal["global"]]
    budgets: list[KeyBudget]
    effective_budget: KeyBudget | None
    free_model_daily_requests: FreeModelDailyRequests
    rate_limit: RateLimit


class CurrentKeyResponse(_Struct):
    data: CurrentKey


class Credits(_Struct):
    total_credits: Annotated[Decimal, Meta(description="USD funded; equals total_usage on an unfunded instance")]
    total_usage: Decimal


class CreditsResponse(_Struct):
    data: Credits


# -------------------------------------------------------------------------------------- generations


class ProviderResponse(_Struct):
    """One attempt at one provider."""

    endpoint_id: str
    model_permaslug: str
    provider_name: str
    status: int | None
    latency: Annotated[int, Meta(description="Milliseconds")]
    is_byok: bool


class Generation(_Struct):
    id: str
    request_id: str
    session_id: str | None
    upstream_id: str | None
    total_cost: Decimal
    usage: Decimal
    cache_discount: Decimal | None
    upstream_inference_cost: Decimal | None
    created_at: datetime
    model: str
    app_id: int | None
    streamed: bool
    cancelled: bool
    provider_name: str
    latency: Annotated[int | None, Meta(description="Milliseconds")]
    moderation_latency: int | None
    generation_time: Annotated[int | None, Meta(description="Milliseconds")]
    finish_reason: str | None
    native_finish_reason: str | None
    service_tier: str | None
    tokens_prompt: int
    tokens_completion: int
    native_tokens_prompt: int
    native_tokens_completion: int
    native_tokens_completion_images: int
    native_tokens_reasoning: int
    native_tokens_cached: int
    num_media_prompt: int | None
    num_input_audio_prompt: int | None
    num_media_completion: int | None
    num_search_results: int | None
    num_fetches: int | None
    web_search_engine: str | None
    response_cache: Annotated[
        Literal["hit"] | None, Meta(description='Omnirouter: "hit" when the response cache answered (no upstream)')
    ]
    cache_source_id: Annotated[str | None, Meta(description="Omnirouter: on a hit, the generation that produced it")]
    origin: str
    http_referer: str | None
    app_name: str | None
    user_agent: str | None
    external_user: str | None
    is_byok: bool
    api_type: Literal["completions", "embeddings", "rerank", "tts", "stt", "video", "image"] | None
    preset_id: str | None
    # Omnirouter's: what the key's guardrails redacted or flagged in the prompt (null when nothing).
    guardrail_actions: list[GuardrailAction] | None
    router: str | None
    provider_responses: list[ProviderResponse]
    data_region: Literal["global", "europe", "us"]
    workspace_id: str | None


class GuardrailAction(_Struct):
    guardrail_id: str
    guardrail_name: str
    filter: Annotated[str, Meta(description="A builtin filter's slug, or `custom`")]
    action: Literal["redacted", "flagged"]
    label: Annotated[str | None, Meta(description="The placeholder left in the prompt (redactions)")]
    count: Annotated[int, Meta(description="Matches in the request's messages")]


class GenerationResponse(_Struct):
    data: Generation


class GenerationInput(_Struct):
    """The request's `messages`, or its `prompt`."""

    messages: list[Any] | UnsetType = UNSET
    prompt: str | UnsetType = UNSET


class GenerationOutput(_Struct):
    completion: str | None
    reasoning: str | None


class GenerationContentErrorAttempt(_Struct):
    code: int
    message: str
    provider_name: str | None
    raw: str | None


class GenerationContentError(_Struct):
    status: int | None
    message: str | None
    provider_name: str | None
    raw: str | None
    previous_errors: list[GenerationContentErrorAttempt]


class GenerationContentData(_Struct):
    input: GenerationInput
    output: GenerationOutput
    error: GenerationContentError | None


class GenerationContentResponse(_Struct):
    data: GenerationContentData


# ------------------------------------------------------------------------------------------- models

# Prices are decimal strings (USD per token, per request, per image...), as the listing writes them.


class PublicPricing(_Struct):
    prompt: str
    completion: str
    request: str
    image: str
    web_search: str
    internal_reasoning: str
    input_cache_read: str | UnsetType = UNSET
    input_cache_write: str | UnsetType = UNSET
    discount: float | UnsetType = UNSET


class ModelArchitecture(_Struct):
    modality: str
    input_modalities: list[str]
    output_modalities: list[str]
    tokenizer: str
    instruct_type: str | None


class TopProviderInfo(_Struct):
    context_length: int | None
    max_completion_tokens: int | None
    is_moderated: bool


class PerRequestLimits(_Struct):
    prompt_tokens: float
    completion_tokens: float


class DefaultParameters(_Struct, forbid_unknown_fields=True):
    temperature: float | UnsetType | None = UNSET
    top_p: float | UnsetType | None = UNSET
    top_k: int | UnsetType | None = UNSET
    frequency_penalty: float | UnsetType | None = UNSET
    presence_penalty: float | UnsetType | None = UNSET
    repetition_penalty: float | UnsetType | None = UNSET


class ModelReasoning(_Struct):
    mandatory: bool
    default_enabled: bool
    supported_efforts: list[str] | None
    default_effort: str | None
    supports_max_tokens: bool | UnsetType = UNSET


class AABenchmarkEntry(_Struct):
    """Artificial Analysis index scores; this gateway knows the coding index alone (catalog `coding_score`)."""

    intelligence_index: float | None
    coding_index: Annotated[float | None, Meta(description="The catalog's coding_score x 100")]
    agentic_index: float | None


class ModelBenchmarks(_Struct):
    design_arena: Annotated[list[dict[str, Any]], Meta(description="Always empty here")]
    artificial_analysis: AABenchmarkEntry | UnsetType = UNSET


class ModelLinks(_Struct):
    details: Annotated[str, Meta(description="Path of the model's endpoint list")]


class Model(_Struct):
    """A model this instance can serve (at least one configured provider offers it)."""

    id: str
    canonical_slug: str
    hugging_face_id: str | None
    name: str
    created: int
    description: str
    context_length: int | None
    architecture: ModelArchitecture
    pricing: Annotated[PublicPricing, Meta(description="The cheapest live endpoint's prices")]
    top_provider: TopProviderInfo
    per_request_limits: PerRequestLimits | None
    supported_parameters: list[str]
    default_parameters: DefaultParameters | None
    supported_voices: list[str] | None
    knowledge_cutoff: str | None
    expiration_date: str | None
    links: ModelLinks
    reasoning: ModelReasoning | UnsetType = UNSET
    benchmarks: Annotated[ModelBenchmarks, Meta(description="Only for models with a coding score")] | UnsetType = UNSET


class ModelsListLinks(_Struct):
    next: Annotated[str | None, Meta(description="URL of the next page, if any")]


class ModelsListResponse(_Struct):
    data: list[Model]
    total_count: int
    links: ModelsListLinks


class ModelResponse(_Struct):
    data: Model


class ModelsCount(_Struct):
    count: int


class ModelsCountResponse(_Struct):
    data: ModelsCount


class PercentileStats(_Struct):
    p50: float
    p75: float
    p90: float
    p99: float


class ToolChoiceSupport(_Struct):
    auto: bool
    none: bool
    required: bool
    function: bool


class PublicEndpoint(_Struct):
    """One provider's offer of a model."""

    name: str
    model_id: str
    model_name: str
    context_length: int
    pricing: PublicPricing
    provider_name: str
    tag: str
    quantization: str | None
    max_completion_tokens: int | None
    max_prompt_tokens: int | None
    supported_parameters: list[str]
    status: int
    uptime_last_30m: float | None
    uptime_last_5m: float | None
    uptime_last_1d: float | None
    latency_last_30m: PercentileStats | None
    throughput_last_30m: PercentileStats | None
    supports_implicit_caching: bool
    supports_tool_choice: ToolChoiceSupport
    native_tools: dict[str, Any]
    service_tier: str | None
    supports_diarization: bool


class ListEndpointsResponse(_Struct):
    id: str
    name: str
    created: int
    description: str
    architecture: ModelArchitecture
    endpoints: list[PublicEndpoint]


class ModelEndpointsResponse(_Struct):
    data: ListEndpointsResponse


class ProviderInfo(_Struct):
    name: str
    slug: str
    privacy_policy_url: str | None
    terms_of_service_url: str | None
    status_page_url: str | None
    headquarters: Annotated[str, Meta(description="ISO 3166-1 alpha-2")] | UnsetType = UNSET
    datacenters: Annotated[list[str], Meta(description="ISO 3166-1 alpha-2 codes")] | UnsetType = UNSET


class ProvidersResponse(_Struct):
    data: list[ProviderInfo]


class ZdrEndpointsResponse(_Struct):
    data: list[PublicEndpoint]


# ------------------------------------------------------------------------------------ query strings
# Each field is one query parameter (openapi_doc inlines them; they are not components).

_CSV = "comma-separated"
_OUTPUTS_DOC = f'{_CSV}, any of: {", ".join(sorted(OUTPUT_MODALITIES))}; or "all". Default: text'
_INPUTS_DOC = f'{_CSV}, all of: {", ".join(sorted(INPUT_MODALITIES))}; or "all" (no filter)'


def _csv_of(values: Any, *, alone: str | None = None) -> str:
    """A pattern for a comma-separated list of ``values`` (or ``alone`` by itself), as the handler reads it."""
    one = "(" + "|".join(sorted(values)) + ")"
    return "^(" + (f"{alone}|" if alone else "") + f"{one}(,{one})*)?$"


class ModelFilters(_Struct):
    """GET /models/count (and the filters of GET /models)."""

    output_modalities: (
        Annotated[str, Meta(description=_OUTPUTS_DOC, pattern=_csv_of(OUTPUT_MODALITIES, alone="all"))] | UnsetType
    ) = UNSET
    input_modalities: (
        Annotated[str, Meta(description=_INPUTS_DOC, pattern=_csv_of(INPUT_MODALITIES, alone="all"))] | UnsetType
    ) = UNSET
    supported_parameters: Annotated[str, Meta(description="comma-separated, all of")] | UnsetType = UNSET
    model_authors: Annotated[str, Meta(description="comma-separated, any of")] | UnsetType = UNSET
    providers: Annotated[str, Meta(description="comma-separated provider slugs, any of")] | UnsetType = UNSET
    q: Annotated[str, Meta(description="Substring of the id, name or an alias")] | UnsetType = UNSET
    arch: Annotated[str, Meta(description="Tokenizer family")] | UnsetType = UNSET
    context: Annotated[int, Meta(ge=1, description="Minimum context length")] | UnsetType = UNSET
    min_price: Annotated[float, Meta(ge=0, description="Prompt price, USD per million tokens")] | UnsetType = UNSET
    max_price: Annotated[float, Meta(ge=0, description="Prompt price, USD per million tokens")] | UnsetType = UNSET
    min_output_price: Annotated[float, Meta(ge=0, description="USD per million tokens")] | UnsetType = UNSET
    max_output_price: Annotated[float, Meta(ge=0, description="USD per million tokens")] | UnsetType = UNSET
    min_age_days: Annotated[int, Meta(ge=0)] | UnsetType = UNSET
    max_age_days: Annotated[int, Meta(ge=0)] | UnsetType = UNSET
    zdr: Annotated[bool, Meta(description="Only models with a zero-data-retention endpoint")] | UnsetType = UNSET
    sort: Annotated[str, _enum(SORTS, "Orders needing usage data keep the default (newest first)")] | UnsetType = UNSET
    category: Annotated[str, Meta(description="Accepted and ignored: no such data here")] | UnsetType = UNSET
    distillable: Annotated[str, Meta(description="Accepted and ignored")] | UnsetType = UNSET
    region: Annotated[str, Meta(description="Accepted and ignored")] | UnsetType = UNSET


class ModelsQuery(ModelFilters):
    """GET /models and /models/user: the filters, and a page (the whole list when both are omitted)."""

    offset: Annotated[int, Meta(ge=0)] | UnsetType = UNSET
    limit: Annotated[int, Meta(ge=1, le=MAX_LIMIT)] | UnsetType = UNSET


class KeysQuery(_Struct):
    offset: Annotated[int, Meta(ge=0, le=OFFSET_MAX, description="Pages of 100, most recent first")] | UnsetType = UNSET
    include_disabled: bool | UnsetType = UNSET
    include_expired: bool | UnsetType = UNSET
    workspace_id: str | UnsetType = UNSET


class GenerationQuery(_Struct):
    id: Annotated[str, Meta(min_length=1, description="The generation id (gen-...)")]
