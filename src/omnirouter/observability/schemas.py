"""The shapes of the analytics and dataset operations (OpenRouter's document's), for the OpenAPI
document and for decoding request bodies."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta


# -- /activity
class ActivityQuery(msgspec.Struct, kw_only=True):
    date: Annotated[str, Meta(description="A single UTC date in the last 30 completed days (YYYY-MM-DD)")] | None = None
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
