"""The schema. Alembic migrations in store/migrations create and evolve it."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from omnirouter.store.types import Money

metadata = MetaData()

api_keys = Table(
    "api_keys",
    metadata,
    Column("hash", String(64), primary_key=True),  # SHA-256 of the key; the key itself is never stored
    Column("name", String(255), nullable=False),
    Column("label", String(64), nullable=False),  # masked key, e.g. sk-or-v1-0e6...1c96
    Column("is_management", Boolean, nullable=False, default=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("limit", Money, nullable=True),
    Column("limit_reset", String(16), nullable=True),
    Column("include_byok_in_limit", Boolean, nullable=False, default=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("workspace_id", String(64), nullable=True),
    Column("creator_user_id", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=True),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("external_user", String(255), nullable=True),  # a partner's end-user id (`external.user`)
    Column("last_used_at", DateTime(timezone=True), nullable=True),  # written by the recorder's flush
    Column("rpm_limit", Integer, nullable=True),  # requests per minute, across every worker and instance
    Column("tpm_limit", Integer, nullable=True),  # tokens per minute, likewise
    # Every request of the key uses the response cache (cache/), kept this many seconds; null: only when asked.
    Column("response_cache_ttl_seconds", Integer, nullable=True),
)

# Spend counters. scope is "key:<hash>", "instance", or a guardrail's or workspace's budget
# (governance/budgets.py); period is "total", "day", "week" or "month"; period_start is the window's
# first day (1970-01-01 for "total"). A window's row appears when it is first spent in, so reading
# "the current day" is a primary-key lookup.
usage_counters = Table(
    "usage_counters",
    metadata,
    Column("scope", String(200), primary_key=True),
    Column("period", String(8), primary_key=True),
    Column("period_start", String(10), primary_key=True),
    Column("usage", Money, nullable=False),
    Column("byok_usage", Money, nullable=False),
    Column("requests", BigInteger, nullable=False, default=0),
)

# What each worker or instance (`holder`) holds of a shared budget (cluster/budgets.py) when the database,
# not Redis, is where they meet. A bucket is "<scope>|<period>|<period_start>" of usage_counters.
budget_leases = Table(
    "budget_leases",
    metadata,
    Column("bucket", String(240), primary_key=True),
    Column("holder", String(64), primary_key=True),
    Column("amount", Money, nullable=False),
    Column("expires_at", BigInteger, nullable=False),  # epoch milliseconds: a dead holder's lease lapses
)

# Each rate-limited key's counts in the current window (accounting/ratelimit.py), when the database
# is where workers and instances meet: "<slot>:<count>,..." per kind, read and written under the row's lock.
rate_windows = Table(
    "rate_windows",
    metadata,
    Column("key_hash", String(64), primary_key=True),
    Column("requests", Text, nullable=False),
    Column("tokens", Text, nullable=False),
)

# Credits funded by the operator (`omnirouter credits add`). Their sum is the instance's balance;
# none at all means credit is unlimited and only tracked.
credit_grants = Table(
    "credit_grants",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("amount", Money, nullable=False),
    Column("note", String(255), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

generations = Table(
    "generations",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("request_id", String(40), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("session_id", String(256), nullable=True),
    Column("upstream_id", String(255), nullable=True),
    Column("model", String(255), nullable=False),
    Column("provider_name", String(255), nullable=True),
    Column("provider_slug", String(255), nullable=True),
    Column("api_type", String(16), nullable=False, default="completions"),
    Column("streamed", Boolean, nullable=False),
    Column("cancelled", Boolean, nullable=False, default=False),
    Column("finish_reason", String(32), nullable=True),
    Column("native_finish_reason", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("latency_ms", Integer, nullable=True),
    Column("generation_time_ms", Integer, nullable=True),
    Column("tokens_prompt", Integer, nullable=False, default=0),
    Column("tokens_completion", Integer, nullable=False, default=0),
    Column("native_tokens_prompt", Integer, nullable=False, default=0),
    Column("native_tokens_completion", Integer, nullable=False, default=0),
    Column("native_tokens_reasoning", Integer, nullable=False, default=0),
    Column("native_tokens_cached", Integer, nullable=False, default=0),
    Column("native_tokens_cache_write", Integer, nullable=False, default=0),
    Column("total_cost", Money, nullable=False),
    Column("upstream_inference_cost", Money, nullable=True),
    Column("cache_discount", Money, nullable=True),
    Column("is_byok", Boolean, nullable=False, default=False),
    Column("http_referer", String(1024), nullable=True),
    Column("app_title", String(255), nullable=True),
    Column("user_agent", String(512), nullable=True),
    Column("external_user", String(255), nullable=True),
    Column("provider_responses", JSON, nullable=True),
    Column("error", JSON, nullable=True),
    Column("throughput", Float, nullable=True),
    Column("preset_id", String(36), nullable=True),  # the preset the request used (governance/presets.py)
    Column("guardrail_actions", JSON, nullable=True),  # what guardrails redacted or flagged (None: nothing)
    Column("workspace_id", String(64), nullable=True),  # the key's workspace when it ran (None: before 0005)
    # What plugins did (plugins/run.py): fees by name, web_search_engine, num_search_results, cache ...
    Column("plugins", JSON, nullable=True),
    Index("ix_generations_key_created", "key_hash", "created_at"),
    Index("ix_generations_created", "created_at"),  # analytics over a time range (0013)
)

# Prompts and completions, only when the operator turned prompt logging on.
generation_content = Table(
    "generation_content",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("prompt", Text, nullable=False),  # JSON of the request's messages
    Column("completion", Text, nullable=True),  # JSON of the output
)

# Workspaces (governance/workspaces.py). Keys, guardrails, BYOK keys and presets belong to one; the
# default workspace (DEFAULT_WORKSPACE_ID, created by migration 0005) always exists.
workspaces = Table(
    "workspaces",
    metadata,
    Column("id", String(64), primary_key=True),  # a UUID
    Column("name", String(100), nullable=False),
    Column("slug", String(50), nullable=False, unique=True),
    Column("description", String(500), nullable=True),
    Column("default_text_model", String(255), nullable=True),
    Column("default_image_model", String(255), nullable=True),
    Column("default_provider_sort", String(32), nullable=True),
    Column("include_byok_in_budgets", Boolean, nullable=False, default=False),
    Column("is_observability_io_logging_enabled", Boolean, nullable=False, default=False),
    Column("is_observability_broadcast_enabled", Boolean, nullable=False, default=False),
    Column("is_data_discount_logging_enabled", Boolean, nullable=False, default=True),
    Column("io_logging_sampling_rate", Float, nullable=False, default=1.0),
    Column("io_logging_api_key_ids", JSON, nullable=True),
    Column("created_by", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=True),
)

# A workspace's budgets: at most one per interval ("daily", "weekly", "monthly", "lifetime").
workspace_budgets = Table(
    "workspace_budgets",
    metadata,
    Column("id", String(64), primary_key=True),  # a UUID
    Column("workspace_id", String(64), nullable=False),
    Column("interval", String(16), nullable=False),
    Column("limit_usd", Money, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("workspace_id", "interval", name="uq_workspace_budgets_interval"),
)

# The organisation's members, created by the operator (`omnirouter members add`).
members = Table(
    "members",
    metadata,
    Column("id", String(64), primary_key=True),  # "user_..."
    Column("email", String(255), nullable=False, unique=True),
    Column("first_name", String(100), nullable=True),
    Column("last_name", String(100), nullable=True),
    Column("role", String(16), nullable=False),  # "admin" or "member" (the API says org:admin, org:member)
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Who belongs to which workspace (every member belongs to the default one implicitly: no rows for it).
workspace_members = Table(
    "workspace_members",
    metadata,
    Column("id", String(64), primary_key=True),  # a UUID
    Column("workspace_id", String(64), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("role", String(16), nullable=False),  # "admin" or "member"
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("workspace_id", "user_id", name="uq_workspace_members_user"),
)

# OAuth PKCE authorisation codes (governance/oauth.py): each is exchanged at most once (used_at) for a
# new inference key with the limits it carries. The code itself is never stored, only its SHA-256.
oauth_codes = Table(
    "oauth_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("callback_url", String(2048), nullable=False),
    Column("code_challenge", String(128), nullable=True),  # none: the code alone is exchanged
    Column("code_challenge_method", String(8), nullable=True),  # "S256" or "plain"
    Column("key_name", String(255), nullable=False),  # the key's name: key_label, else the app (callback host)
    Column("key_limit", Money, nullable=True),
    Column("key_limit_reset", String(16), nullable=True),
    Column("key_expires_at", DateTime(timezone=True), nullable=True),
    Column("workspace_id", String(64), nullable=True),
    Column("creator_user_id", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),  # the code's: a few minutes
    Column("used_at", DateTime(timezone=True), nullable=True),
    Column("key_hash", String(64), nullable=True),  # the key it was exchanged for
)

# Provider keys a workspace brings (BYOK; governance/byok_service.py). `secret` is the key encrypted with
# OMNIROUTER_ENCRYPTION_KEY (Fernet), never the key itself; `label` is its masked snippet. A deleted
# row keeps no secret. Keys of one provider are tried in ascending sort_order.
byok_keys = Table(
    "byok_keys",
    metadata,
    Column("id", String(36), primary_key=True),  # a UUID
    Column("workspace_id", String(64), nullable=False),
    Column("provider", String(64), nullable=False),  # a configured provider's slug
    Column("name", String(255), nullable=True),
    Column("label", String(64), nullable=False),
    Column("secret", Text, nullable=False),
    Column("sort_order", Integer, nullable=False),
    Column("allowed_models", JSON, nullable=True),
    Column("allowed_api_key_hashes", JSON, nullable=True),
    Column("allowed_user_ids", JSON, nullable=True),
    Column("declared_region", String(16), nullable=True),
    Column("declared_zdr", Boolean, nullable=True),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("is_fallback", Boolean, nullable=False, default=False),
    Column("is_required", Boolean, nullable=False, default=False),
    Column("is_byok_only", Boolean, nullable=False, default=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=True),
    Index("ix_byok_keys_workspace_provider", "workspace_id", "provider"),
)

# Guardrails (governance/guardrails.py, guardrail_service.py): policies that act once assigned to keys or
# members; a workspace's default guardrail (workspace_default) acts on all of its traffic. Lists are JSON.
guardrails = Table(
    "guardrails",
    metadata,
    Column("id", String(36), primary_key=True),  # a UUID (a workspace default's is derived from the workspace)
    Column("name", String(200), nullable=False),
    Column("description", String(1000), nullable=True),
    Column("workspace_id", String(64), nullable=False),
    Column("workspace_default", Boolean, nullable=False, default=False),
    Column("limit_usd", Money, nullable=True),
    Column("reset_interval", String(16), nullable=True),
    Column("include_byok_in_budgets", Boolean, nullable=False, default=False),
    Column("allowed_models", JSON, nullable=True),
    Column("ignored_models", JSON, nullable=True),
    Column("allowed_providers", JSON, nullable=True),
    Column("ignored_providers", JSON, nullable=True),
    Column("content_filters", JSON, nullable=True),
    Column("content_filter_builtins", JSON, nullable=True),
    Column("enforce_zdr", Boolean, nullable=True),
    Column("enforce_zdr_anthropic", Boolean, nullable=True),
    Column("enforce_zdr_openai", Boolean, nullable=True),
    Column("enforce_zdr_google", Boolean, nullable=True),
    Column("enforce_zdr_xai", Boolean, nullable=True),
    Column("enforce_zdr_other", Boolean, nullable=True),
    Column("enable_free_model_publication", Boolean, nullable=True),
    Column("enable_free_model_training", Boolean, nullable=True),
    Column("enable_paid_model_training", Boolean, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("workspace_id", "name", name="uq_guardrails_workspace_name"),
)

# A key holds at most one direct guardrail (assigning another replaces it); likewise a member.
guardrail_key_assignments = Table(
    "guardrail_key_assignments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("guardrail_id", String(36), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("assigned_by", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("key_hash", name="uq_guardrail_key_assignments_key"),
    Index("ix_guardrail_key_assignments_guardrail", "guardrail_id"),
)
guardrail_member_assignments = Table(
    "guardrail_member_assignments",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("guardrail_id", String(36), nullable=False),
    Column("user_id", String(64), nullable=False),  # members.id
    Column("assigned_by", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("user_id", name="uq_guardrail_member_assignments_user"),
    Index("ix_guardrail_member_assignments_guardrail", "guardrail_id"),
)

# One row whose version bumps on every management change, so other workers know to reload.
state_version = Table(
    "state_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
)

# Presets (governance/presets.py): named, versioned request configurations of a workspace, used as
# `model: "@preset/slug"`, a `preset` field, or `model@preset/slug`. The designated version is the
# active one; versions are never changed once written.
presets = Table(
    "presets",
    metadata,
    Column("id", String(36), primary_key=True),  # a UUID
    Column("workspace_id", String(64), nullable=False),
    Column("slug", String(64), nullable=False),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=True),
    Column("status", String(16), nullable=False),  # active, disabled or archived
    Column("status_updated_at", DateTime(timezone=True), nullable=True),
    Column("designated_version_id", String(36), nullable=True),
    Column("creator_user_id", String(64), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("workspace_id", "slug", name="uq_presets_workspace_slug"),
)

preset_versions = Table(
    "preset_versions",
    metadata,
    Column("id", String(36), primary_key=True),  # a UUID
    Column("preset_id", String(36), ForeignKey("presets.id"), nullable=False),
    Column("version", Integer, nullable=False),  # 1, 2, ... per preset
    Column("system_prompt", Text, nullable=True),
    Column("config", JSON, nullable=False),  # the internal (chat) request's fields a preset holds
    Column("creator_id", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("preset_id", "version", name="uq_preset_versions_number"),
)

# -- videos ----------------------------------------------------------------------------------------
# Video generation jobs (videos/jobs.py): submitted upstream at POST /videos, then polled by whichever
# worker claims the job's lease (`lease_token` until `lease_until`), and billed once when it completes
# (`billed_at`, set in the same conditional UPDATE that records the completion). Content lives under the
# data dir until `expires_at`.
video_jobs = Table(
    "video_jobs",
    metadata,
    Column("id", String(40), primary_key=True),  # gen-vid-<unix time>-<20 base62>
    Column("key_hash", String(64), nullable=False),
    Column("generation_id", String(40), nullable=False),  # the generation recorded when it completes
    Column("model", String(255), nullable=False),
    Column("provider_slug", String(255), nullable=False),  # the provider that took the job
    Column("endpoint_slug", String(255), nullable=False),  # the model's endpoint (its tag)
    Column("upstream_id", String(512), nullable=False),  # the job's (or operation's) id at the provider
    Column("status", String(16), nullable=False),  # pending, in_progress, completed, failed, expired
    Column("error", Text, nullable=True),
    Column("request", JSON, nullable=False),  # the validated request, for the upstream's content and billing
    Column("seconds", Money, nullable=True),  # seconds of video made (what was billed)
    Column("cost", Money, nullable=True),
    Column("outputs", Integer, nullable=False, default=0),  # videos stored under the data dir
    Column("workspace_id", String(64), nullable=True),
    Column("byok_key_id", String(36), nullable=True),  # the workspace's BYOK key it was submitted with
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True), nullable=True),
    Column("billed_at", DateTime(timezone=True), nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=True),  # when the stored content goes
    Column("next_poll_at", DateTime(timezone=True), nullable=False),
    Column("poll_interval", Float, nullable=False),  # seconds until the next poll, doubled up to the max
    Column("poll_errors", Integer, nullable=False, default=0),  # upstream failures in a row
    Column("lease_token", String(36), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Index("ix_video_jobs_status_next_poll", "status", "next_poll_at"),
    Index("ix_video_jobs_key", "key_hash", "created_at"),
)

# Files (issue 16; files/records.py): uploads referenced by id in later requests. The row is written
# once the content is whole in its store (files/stores.py), so a listed file can always be read; the
# content is the store's, by id. Owned by the key that uploaded it; ids sort by creation time.
files = Table(
    "files",
    metadata,
    Column("id", String(40), primary_key=True),  # or_file_<10 base62 of ms time><14 random base62>
    Column("key_hash", String(64), nullable=False),
    Column("workspace_id", String(64), nullable=True),
    Column("filename", String(255), nullable=False),
    Column("mime_type", String(128), nullable=False),  # as the bytes say (files/sniff.py)
    Column("size_bytes", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("purpose", String(32), nullable=False),  # OpenAI's purpose as uploaded (default user_data)
    Column("store", String(8), nullable=False),  # local or s3: where the content was put
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_files_key_id", "key_hash", "id"),
)

# -- observability destinations (issue 17; observability/destinations.py) ---------------------------
# Where each generation is also sent (webhook, OTLP collector, Langfuse, ...). Secret config fields
# (keys, header values) are one Fernet token in `secrets` (governance/byok_crypto.py), shown only as
# the masks in `masked`; `config` holds the rest. The counters are the deliverer's (observability/deliverer.py).
observability_destinations = Table(
    "observability_destinations",
    metadata,
    Column("id", String(36), primary_key=True),  # a UUID
    Column("workspace_id", String(64), nullable=False),
    Column("type", String(32), nullable=False),
    Column("name", String(255), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("privacy_mode", Boolean, nullable=False),
    Column("broadcast_generation_cost", Boolean, nullable=False),
    Column("broadcast_generation_identity", Boolean, nullable=False),
    Column("broadcast_generation_request_context", Boolean, nullable=False),
    Column("broadcast_generation_cost_allocation", Boolean, nullable=False),
    Column("regions", JSON, nullable=False),  # OpenRouter's data regions, kept as given (one region here)
    Column("sampling_rate", Float, nullable=False),
    Column("api_key_hashes", JSON, nullable=True),
    Column("filter_rules", JSON, nullable=True),
    Column("config", JSON, nullable=False),  # the config without its secret fields
    Column("secrets", Text, nullable=False),  # Fernet token of the secret fields' JSON ("" once deleted)
    Column("masked", JSON, nullable=False),  # the secret fields as shown: masked snippets
    Column("delivered_count", BigInteger, nullable=False, default=0),  # events delivered
    Column("failed_count", BigInteger, nullable=False, default=0),  # event deliveries that failed (retried)
    Column("last_error", String(300), nullable=True),  # the last failure's status or exception type
    Column("last_delivered_at", DateTime(timezone=True), nullable=True),
    Column("deleted", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_observability_destinations_workspace", "workspace_id", "deleted"),
)

# One row per (destination, generation) to deliver, written in the generation's transaction
# (store/derived.py) and deleted once delivered. A worker claims rows with a conditional UPDATE of the
# lease (`lease_token` until `lease_until`), so each is sent by one worker at a time.
observability_outbox = Table(
    "observability_outbox",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("destination_id", String(36), nullable=False),
    Column("generation_id", String(40), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("lease_token", String(36), nullable=True),
    Column("lease_until", DateTime(timezone=True), nullable=True),
    Index("ix_observability_outbox_due", "destination_id", "next_attempt_at"),
)

# -- analytics (issue 17; observability/rollups.py) -------------------------------------------------
# Generations summed by UTC hour and by what /activity and /analytics/query group on, written by the
# derived hook in the transaction that writes the generations themselves (store/derived.py), so the
# sums always equal the generations'. Grouping columns hold "" for "none" (they are the unique key,
# which NULL would not be). `day` is the hour's UTC date, what /activity groups on.
generation_rollups = Table(
    "generation_rollups",
    metadata,
    Column("hour", DateTime(timezone=True), nullable=False),
    Column("day", String(10), nullable=False),  # YYYY-MM-DD
    Column("key_hash", String(64), nullable=False),
    Column("workspace_id", String(64), nullable=False),
    Column("model", String(255), nullable=False),
    Column("provider_slug", String(255), nullable=False),
    Column("provider_name", String(255), nullable=False),
    Column("api_type", String(16), nullable=False),
    Column("app", String(255), nullable=False),  # the X-Title (app_title)
    Column("requests", BigInteger, nullable=False),
    Column("errors", BigInteger, nullable=False),
    Column("cancelled", BigInteger, nullable=False),
    Column("prompt_tokens", BigInteger, nullable=False),
    Column("completion_tokens", BigInteger, nullable=False),
    Column("reasoning_tokens", BigInteger, nullable=False),
    Column("cached_tokens", BigInteger, nullable=False),
    Column("usage", Money, nullable=False),  # total_cost: what the credits paid
    Column("byok_usage", Money, nullable=False),  # upstream_inference_cost of BYOK requests
    Column("latency_ms", BigInteger, nullable=False),  # sum over the `latency_count` that had one
    Column("latency_count", BigInteger, nullable=False),
    Column("generation_time_ms", BigInteger, nullable=False),
    Column("generation_time_count", BigInteger, nullable=False),
    UniqueConstraint(
        "hour",
        "key_hash",
        "workspace_id",
        "model",
        "provider_slug",
        "provider_name",
        "api_type",
        "app",
        name="uq_generation_rollups_grain",
    ),
    Index("ix_generation_rollups_day", "day"),
)

# The same sums by UTC day, without API or app: exactly what GET /activity groups and filters on
# (observability/activity.py), so its rows stay few however thinly traffic spreads over the hours.
generation_daily = Table(
    "generation_daily",
    metadata,
    Column("day", String(10), nullable=False),  # YYYY-MM-DD
    Column("key_hash", String(64), nullable=False),
    Column("workspace_id", String(64), nullable=False),
    Column("model", String(255), nullable=False),
    Column("provider_slug", String(255), nullable=False),
    Column("provider_name", String(255), nullable=False),
    Column("requests", BigInteger, nullable=False),
    Column("prompt_tokens", BigInteger, nullable=False),
    Column("completion_tokens", BigInteger, nullable=False),
    Column("reasoning_tokens", BigInteger, nullable=False),
    Column("cached_tokens", BigInteger, nullable=False),
    Column("usage", Money, nullable=False),
    Column("byok_usage", Money, nullable=False),
    UniqueConstraint(
        "day", "key_hash", "workspace_id", "model", "provider_slug", "provider_name", name="uq_generation_daily_grain"
    ),
)

# Feedback on a generation (POST /generation/feedback): any number per generation.
generation_feedback = Table(
    "generation_feedback",
    metadata,
    Column("id", String(36), primary_key=True),  # a UUID
    Column("generation_id", String(40), nullable=False),
    Column("key_hash", String(64), nullable=False),  # the key that submitted it
    Column("workspace_id", String(64), nullable=True),  # the generation's
    Column("category", String(32), nullable=False),
    Column("comment", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_generation_feedback_generation", "generation_id"),
)

# The web dashboard's session-signing secret (dashboard/secret.py), made once, shared by every
# instance: one row, id 1. Unused when OMNIROUTER_DASHBOARD_SECRET is set.
dashboard_secret = Table(
    "dashboard_secret",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("secret", String(64), nullable=False),  # 32 random bytes, hex
    Column("created_at", DateTime(timezone=True), nullable=False),
)
