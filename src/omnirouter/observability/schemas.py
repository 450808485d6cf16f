"""The shapes of the analytics and dataset operations (OpenRouter's document's), for the OpenAPI
document and for decoding request bodies."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

# -- /activity
Day = Annotated[
    str,
    Meta(pattern=r"^\d{4}-\d{2}-\d{2}$", description="A single UTC date in the last 30 completed days (YYYY-MM-DD)"),
]


class ActivityQuery(msgspec.Struct, kw_only=True):
    date: Day | None = None
    api_key_hash: Annotated[str, Meta(description="A key's hash, as the keys API returns it")] | None = None
    user_id: Annotated[str, Meta(description="An organisation member's id: their keys' activity")] | None = None
    group_by: Literal["workspace"] | None = None
    workspace_id: Annotated[str, Meta(description="Only activity attributed to this workspace")] | None = None


class ActivityItem(msgspec.Struct, kw_only=True, omit_defaults=True):
    date: str
    model: str
    model_permaslug: str
    endpoint_id: str
    provider_name: str
    usage: Decimal
    byok_usage_inference: Decimal
    requests: int
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    cached_tokens: Annotated[int, Meta(description="Prompt tokens read from the provider's prompt cache")]
    workspace_id: str | None = None


class ActivityResponse(msgspec.Struct):
    data: list[ActivityItem]


# -- /analytics/meta
class MetricMeta(msgspec.Struct):
    name: str
    display_label: str
    is_rate: bool
    display_format: Literal["number", "currency", "percent", "latency", "throughput"]


class NamedMeta(msgspec.Struct):
    name: str
    display_label: str


class OperatorMeta(msgspec.Struct):
    name: Literal["eq", "neq", "in", "not_in", "gt", "gte", "lt", "lte"]
    value_type: Literal["scalar", "array"]


class GranularityMeta(msgspec.Struct):
    name: Literal["minute", "hour", "day", "week", "month"]
    display_label: str


class AnalyticsMeta(msgspec.Struct):
    metrics: list[MetricMeta]
    dimensions: list[NamedMeta]
    operators: list[OperatorMeta]
    granularities: list[GranularityMeta]


class AnalyticsMetaResponse(msgspec.Struct):
    data: AnalyticsMeta


# -- /analytics/query
FilterValue = str | float | list[str | float]


class QueryFilter(msgspec.Struct, forbid_unknown_fields=True):
    field: Annotated[str, Meta(description="A dimension (GET /analytics/meta)")]
    operator: Annotated[str, Meta(description="An operator (GET /analytics/meta)")]
    value: FilterValue
    include_unset: bool | None = None


class TimeRange(msgspec.Struct, forbid_unknown_fields=True):
    start: Annotated[str, Meta(extra_json_schema={"format": "date-time"})]
    end: Annotated[str, Meta(extra_json_schema={"format": "date-time"})]


class OrderBy(msgspec.Struct, forbid_unknown_fields=True):
    field: str
    direction: Literal["asc", "desc"]


class AnalyticsQueryRequest(msgspec.Struct, kw_only=True):
    metrics: Annotated[list[str], Meta(min_length=1, description="Metrics (GET /analytics/meta)")]
    dimensions: Annotated[list[str], Meta(max_length=2, description="Dimensions to group by")] | None = None
    filters: Annotated[list[QueryFilter], Meta(max_length=20)] | None = None
    granularity: Annotated[str, Meta(description="minute, hour, day, week or month")] | None = None
    time_range: TimeRange | None = None
    order_by: OrderBy | None = None
    limit: Annotated[int, Meta(ge=1, le=10_000, description="Rows at most; 1000 by default")] | None = None
    group_limit: Annotated[int, Meta(ge=1, le=10_000, description="Rows at most per dimension values")] | None = None
    classifier_dimensions: dict[str, Any] | None = None
    classifier_filters: dict[str, Any] | None = None


class QueryMetadata(msgspec.Struct):
    query_time_ms: float
    row_count: int
    truncated: bool


class QueryData(msgspec.Struct, kw_only=True):
    data: list[dict[str, Any]]
    metadata: QueryMetadata
    warnings: list[str] | None = None


class AnalyticsQueryResponse(msgspec.Struct):
    data: QueryData


# -- /generation/feedback
FeedbackCategory = Literal[
    "latency", "incoherence", "incorrect_response", "formatting", "billing", "api_error", "other"
]


class SubmitGenerationFeedbackRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    generation_id: Annotated[str, Meta(min_length=1)]
    category: FeedbackCategory
    comment: Annotated[str, Meta(max_length=1000)] | None = None


class FeedbackRecorded(msgspec.Struct):
    success: Literal[True]


class SubmitGenerationFeedbackResponse(msgspec.Struct):
    data: FeedbackRecorded


# -- /datasets/*, /classifications/task and /benchmarks: OpenRouter's shapes, plus `scope` in the datasets'
# meta (whose data it is: this instance's own traffic, not OpenRouter's).
Scope = Annotated[str, Meta(description="Whose data this is: this instance's own traffic")]


class RankingsDailyItem(msgspec.Struct):
    date: Annotated[str, Meta(description="The day (or the first day of the week or month), YYYY-MM-DD")]
    model_permaslug: Annotated[str, Meta(description="A model, or `other` for the rest beyond the top 50")]
    total_tokens: Annotated[str, Meta(description="Prompt + completion tokens, as a decimal string")]


class RankingsDailyMeta(msgspec.Struct, kw_only=True):
    as_of: str
    version: Literal["v1"]
    start_date: str
    end_date: str
    scope: Scope


class RankingsDailyResponse(msgspec.Struct):
    data: list[RankingsDailyItem]
    meta: RankingsDailyMeta


class AppRankingsItem(msgspec.Struct, kw_only=True):
    rank: int
    app_id: Annotated[int, Meta(description="A stable number for the app's X-Title")]
    app_name: str
    total_tokens: str
    total_requests: int


class AppRankingsResponse(msgspec.Struct):
    data: list[AppRankingsItem]
    meta: RankingsDailyMeta


class SessionCostItem(msgspec.Struct, kw_only=True):
    app_slug: str
    app_name: str
    turn_range: Literal["1-turn", "2-9-turns", "10-49-turns", "50-plus-turns"]
    model_permaslug: str
    median_session_cost_usd: Decimal


class SessionCostMeta(msgspec.Struct, kw_only=True):
    as_of: str
    version: Literal["v1"]
    window_days: int | None
    window_end_date: str | None
    scope: Scope


class SessionCostResponse(msgspec.Struct):
    data: list[SessionCostItem]
    meta: SessionCostMeta


class TaskClassificationModel(msgspec.Struct):
    id: str
    tag_usage_share: float
    tag_token_share: float


class TaskClassificationItem(msgspec.Struct, kw_only=True):
    tag: str
    display_name: str
    macro_category: str
    usage_share: float
    token_share: float
    category_usage_share: float
    category_token_share: float
    models: list[TaskClassificationModel]


class TaskClassificationMacroCategory(msgspec.Struct, kw_only=True):
    key: str
    label: str
    usage_share: float
    token_share: float


class TaskClassifications(msgspec.Struct, kw_only=True):
    window_days: int
    as_of: str
    classifications: list[TaskClassificationItem]
    macro_categories: list[TaskClassificationMacroCategory]


class TaskClassificationResponse(msgspec.Struct):
    data: TaskClassifications


class UnifiedBenchmarkPricing(msgspec.Struct):
    prompt: str
    completion: str


class UnifiedBenchmarksAAItem(msgspec.Struct, kw_only=True):
    source: Literal["artificial-analysis"]
    model_permaslug: str
    display_name: str
    intelligence_index: float | None
    coding_index: float | None
    agentic_index: float | None
    pricing: UnifiedBenchmarkPricing | None


class TournamentStats(msgspec.Struct, kw_only=True):
    first_place: int | None
    second_place: int | None
    third_place: int | None
    fourth_place: int | None
    total: int | None


class UnifiedBenchmarksDAItem(msgspec.Struct, kw_only=True):
    source: Literal["design-arena"]
    model_permaslug: str
    display_name: str
    arena: str
    category: str
    elo: float
    win_rate: float
    avg_generation_time_ms: float | None
    tournament_stats: TournamentStats
    pricing: UnifiedBenchmarkPricing | None


class UnifiedBenchmarksORItem(msgspec.Struct, kw_only=True):
    source: Literal["openrouter"]
    model_permaslug: str
    display_name: str
    benchmark_type: Literal["gpqa_diamond", "tau_bench_verified_airline"]
    accuracy: float
    accuracy_stddev: float | None
    avg_cost_per_task: Decimal | None
    total_tasks: int
    last_run_timestamp: str


class UnifiedBenchmarksSearchRunConfig(msgspec.Struct, kw_only=True):
    max_agent_turns: int | None
    reasoning_effort: str | None
    temperature: float | None


class UnifiedBenchmarksSearchItem(msgspec.Struct, kw_only=True):
    source: Literal["openrouter"]
    model_permaslug: str
    display_name: str
    benchmark_type: Literal["search_browsecomp", "search_hle", "search_dsqa", "search_widesearch"]
    primary_metric: Literal["accuracy", "f1_by_item"]
    primary_score: float
    total_tasks: int
    avg_cost_per_task: Decimal | None
    avg_latency_per_task_ms: float | None
    search_engine: str
    search_surface: Literal["server-tool", "plugin"]
    last_run_timestamp: str
    run_config: UnifiedBenchmarksSearchRunConfig | None = None


# The four item shapes share no tag msgspec could tell them by (two are source=openrouter), so the list's
# items are described as a oneOf of their components (openapi_doc makes BENCHMARK_ITEMS components).
BENCHMARK_ITEMS = (
    UnifiedBenchmarksAAItem,
    UnifiedBenchmarksDAItem,
    UnifiedBenchmarksORItem,
    UnifiedBenchmarksSearchItem,
)
BenchmarkItem = Annotated[
    Any, Meta(extra_json_schema={"oneOf": [{"$ref": f"#/components/schemas/{t.__name__}"} for t in BENCHMARK_ITEMS]})
]


class UnifiedBenchmarksMeta(msgspec.Struct, kw_only=True):
    as_of: str
    version: Literal["v1"]
    source: Literal["artificial-analysis", "design-arena", "openrouter"] | None
    source_url: str | None
    citation: str | None
    model_count: int
    task_type: str | None


class UnifiedBenchmarksResponse(msgspec.Struct):
    data: list[BenchmarkItem]
    meta: UnifiedBenchmarksMeta
