"""The schema. Alembic migrations in store/migrations create and evolve it."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
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
)

# Spend counters. scope is "key:<hash>" or "instance"; period is "total", "day", "week" or "month";
# period_start is the window's first day (1970-01-01 for "total"). A window's row appears when it is
# first spent in, so reading "the current day" is a primary-key lookup.
usage_counters = Table(
    "usage_counters",
    metadata,
    Column("scope", String(80), primary_key=True),
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
    Column("bucket", String(120), primary_key=True),
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
    Index("ix_generations_key_created", "key_hash", "created_at"),
)

# Prompts and completions, only when the operator turned prompt logging on.
generation_content = Table(
    "generation_content",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("prompt", Text, nullable=False),  # JSON of the request's messages
    Column("completion", Text, nullable=True),  # JSON of the output
)

# One row whose version bumps on every management change, so other workers know to reload.
state_version = Table(
    "state_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
)
