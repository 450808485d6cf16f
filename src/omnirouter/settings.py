"""Every setting in one place: environment (``OMNIROUTER_*``) over an optional YAML file over defaults.

docs/configuration.md lists them all; keep it in step with this file.
"""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, Field, PositiveFloat, PositiveInt, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

CONFIG_ENV = "OMNIROUTER_CONFIG"
# The config file's catalog sections; everything else at its top level is a setting.
CATALOG_SECTIONS = ("providers", "models")


def read_config_file(path: str | os.PathLike[str] | None) -> dict[str, Any]:
    if not path:
        return {}
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: the config file must be a YAML mapping")
    return data


class _FileSource(PydanticBaseSettingsSource):
    """Settings from the YAML file named by OMNIROUTER_CONFIG (its non-catalog top-level keys)."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        data = read_config_file(os.environ.get(CONFIG_ENV))
        self._data = {k: v for k, v in data.items() if k not in CATALOG_SECTIONS}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in self._data.items() if k in self.settings_cls.model_fields}


class FileParserOCR(BaseModel):
    """A Mistral-OCR-compatible API (POST {base_url}/v1/ocr) for the file-parser's mistral-ocr engine."""

    base_url: str = "https://api.mistral.ai"
    api_key_env: str = "MISTRAL_API_KEY"  # the variable holding the key, never the key itself
    model: str = "mistral-ocr-latest"
    price_per_page: Annotated[Decimal, Field(ge=0)] = Decimal("0.002")  # USD; OpenRouter: $2 per 1,000 pages
    timeout: PositiveFloat = 120.0  # seconds for one document


class WebSearch(BaseModel):
    """The self-hosted (or operator-paid) search engine behind the `web` plugin and the
    openrouter:web_search tool (web/search.py). Keys are read from the variable `api_key_env` names."""

    engine: Literal["searxng", "brave", "tavily", "exa", "firecrawl", "perplexity"] = "searxng"
    base_url: str | None = None  # default: the engine's public API (SearXNG has none: required)
    api_key_env: str | None = None  # default: BRAVE_API_KEY, TAVILY_API_KEY, ... (SearXNG: none)
    price_per_search: Annotated[Decimal, Field(ge=0)] = Decimal(0)  # USD charged per search
    timeout: PositiveFloat = 10.0  # seconds for one search

    @model_validator(mode="after")
    def _searxng_has_an_address(self) -> WebSearch:
        if self.engine == "searxng" and not self.base_url:
            raise ValueError("web_search: engine searxng needs base_url (the SearXNG instance)")
        return self


class ModerationEndpoint(BaseModel):
    """An OpenAI-compatible moderation API (POST {base_url}/moderations) for the moderation plugin."""

    base_url: str = "https://api.openai.com/v1"
    api_key_env: str | None = "OPENAI_API_KEY"  # the variable holding the key, never the key itself; None: no auth
    model: str = "omni-moderation-latest"
    timeout: PositiveFloat = 10.0  # seconds; a moderation pass that takes longer fails (closed: 503)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OMNIROUTER_", extra="ignore")

    # Server
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    # Connections the kernel queues for a busy worker before it drops new ones, which clients then
    # retry only after 1, 3, 7, 15 s (capped by net.core.somaxconn).
    backlog: int = 4096
    # A client that trickles its request (slowloris) holds a connection until these run out: seconds
    # to send a request's complete headers, and of silence while its body is incomplete.
    client_header_timeout: PositiveFloat = 10.0
    client_body_timeout: PositiveFloat = 30.0
    # Past this many open connections a worker answers 503 (each stream holds two sockets: keep it
    # under half the open-files limit). Twice the 10,000-stream target of one instance.
    max_connections_per_worker: PositiveInt = 20_000
    log_level: str = "info"
    debug: bool = False  # full tracebacks for failures at start (serve --debug)
    config: str | None = None  # path of the YAML config file (also: serve --config)
    # On SIGTERM: seconds to finish the requests and streams in flight (new connections are refused
    # and /health/ready answers 503 at once); streams still open then end cleanly, billed for what
    # they relayed. Keep the orchestrator's grace period above it (Kubernetes:
    # terminationGracePeriodSeconds > preStop sleep + shutdown_timeout + a few seconds).
    shutdown_timeout: PositiveFloat = 30.0

    # Storage
    data_dir: Path = Path("omnirouter-data")
    database_url: str | None = None  # default: SQLite in data_dir
    redis_url: str | None = None

    # Keys and money
    management_key: SecretStr | None = None  # bootstrap management key (sk-or-v1-...)
    # Status for an exhausted per-key limit: 402 as documented; 403 is what OpenRouter was observed
    # to send (behaviors §6.5).
    key_limit_status: Literal[402, 403] = 402
    # BYOK (governance/byok_crypto.py): Fernet keys, comma-separated, newest first; without one, BYOK
    # writes are refused. The fee charged on a BYOK request, in percent of what it would have cost.
    encryption_key: SecretStr | None = None
    byok_fee_percent: Annotated[Decimal, Field(ge=0, le=100)] = Decimal(0)

    # Requests
    max_body_bytes: int = 25 * 1024 * 1024
    sandbox: bool = False  # add the offline `sandbox` provider
    default_model: str | None = None  # used when a request names no model
    auto_router_models: list[str] | None = None  # what openrouter/auto may choose (wildcards); None: all
    request_deadline_seconds: float = 600.0  # all attempts of one request, fallbacks included
    log_prompts: bool = False  # store prompts and completions for GET /generation/content
    stream_keepalive_seconds: float = 1.0  # ": OPENROUTER PROCESSING" while the upstream is silent
    upstream_connect_timeout: float = 10.0
    upstream_first_byte_timeout: float = 120.0
    upstream_total_timeout: float = 900.0
    # Response cache (cache/), turned on per request, preset or key: an entry's TTL when none is asked,
    # the most any may ask (seconds), the bytes the in-process store may hold (without redis_url), and
    # what a hit costs (USD; 0: free, as OpenRouter's).
    response_cache_ttl_seconds: Annotated[int, Field(ge=1)] = 300
    response_cache_max_ttl_seconds: Annotated[int, Field(ge=1)] = 86_400
    response_cache_max_bytes: Annotated[int, Field(ge=0)] = 64 * 1024 * 1024
    response_cache_price: Annotated[Decimal, Field(ge=0)] = Decimal(0)

    # Operations beyond chat (issue 16). Files: stored under files_dir (default data_dir/files), or in
    # an S3-compatible bucket when files_s3_url and files_s3_bucket are set (the keys read from the
    # named variables, never from here).
    files_dir: Path | None = None
    files_max_bytes: PositiveInt = 32 * 1024 * 1024
    files_s3_url: str | None = None
    files_s3_bucket: str | None = None
    files_s3_region: str = "us-east-1"
    files_s3_access_key_env: str = "AWS_ACCESS_KEY_ID"
    files_s3_secret_key_env: str = "AWS_SECRET_ACCESS_KEY"
    transcription_max_bytes: PositiveInt = 25 * 1024 * 1024
    # Video jobs: how long finished videos are kept, and the upstream poll's backoff (seconds).
    video_retention_days: PositiveFloat = 7.0
    video_poll_initial: PositiveFloat = 2.0
    video_poll_max: PositiveFloat = 30.0

    # Observability destinations (issue 17; observability/deliverer.py): how often each worker looks for
    # due events, how many it sends to a destination at once, how long a send may take, and the retry
    # backoff after a failed one (seconds, doubling from initial up to max).
    observability_poll_interval: PositiveFloat = 1.0
    observability_batch_size: Annotated[int, Field(ge=1, le=1000)] = 100
    observability_timeout: PositiveFloat = 10.0
    observability_retry_initial: PositiveFloat = 1.0
    observability_retry_max: PositiveFloat = 300.0
    observability_retention_hours: PositiveFloat = 168.0  # an event still undelivered after this is dropped

    # For tests only: the length of the rpm_limit/tpm_limit window (a minute), so that a test need not
    # wait one out. Anything else than 60 makes the limits per that many seconds.
    rate_limit_window_seconds: PositiveInt = 60

    # Background work
    flush_interval: float = 0.25  # seconds between batched writes of generations and counters
    sync_interval: float = 1.0  # seconds between refreshes of keys and counters from the database
    # With redis_url: seconds between pushes of each instance's endpoint statistics to the others
    cluster_stats_interval: PositiveFloat = 1.0
    # Each worker journals what it recorded in data_dir until the database has it: a kill -9 then
    # loses no generation or spend a client was told about (replayed at the next start).
    journal: bool = True
    # While the database is unreachable, what needs it gets 503 with this Retry-After (seconds).
    outage_retry_after: PositiveInt = 5

    # The web dashboard at / (dashboard/): sessions last dashboard_session_hours, signed with
    # dashboard_secret when set, else with a random secret kept in the database (shared by instances).
    dashboard: bool = True
    dashboard_secret: SecretStr | None = None
    dashboard_session_hours: PositiveFloat = 12.0

    # Observability of the gateway itself (issue 17; docs/configuration.md, "Metrics, traces and logs").
    # GET /metrics: "management" (a management key, or metrics_token, as the bearer), "open" (no
    # auth: only behind a network that keeps it private) or "off" (404, and nothing is counted).
    metrics: Literal["off", "management", "open"] = "management"
    metrics_token: SecretStr | None = None  # a bearer for scrapers that can do nothing else
    # OTLP/HTTP traces of each request (request -> plan -> attempts -> settle): off unless an endpoint
    # is set here or in OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT.
    otel_endpoint: str | None = None
    otel_service_name: str = "omnirouter"
    # "json": one JSON object per log line, with the request id of the request that logged it.
    log_format: Literal["text", "json"] = "text"

    # Page fetching (web/fetch.py: the web-fetch plugin, the openrouter:web_fetch tool, file-parser URLs).
    # Loopback, private, link-local and metadata addresses are refused unless web_fetch_allow_private.
    web_fetch_allow_private: bool = False
    web_fetch_max_bytes: PositiveInt = 5 * 1024 * 1024  # a page's body, beyond which the fetch fails
    web_fetch_timeout: PositiveFloat = 15.0  # seconds for one fetch, redirects included
    web_fetch_max_redirects: Annotated[int, Field(ge=0, le=20)] = 5
    web_fetch_price: Annotated[Decimal, Field(ge=0)] = Decimal(0)  # USD per page the web-fetch plugin fetches
    # file-parser: engine mistral-ocr goes to this Mistral-OCR-compatible API ({base_url, api_key_env,
    # model, price_per_page}); without it, PDFs are parsed locally (pdf-text).
    file_parser_ocr: FileParserOCR | None = None
    # moderation plugin, and every request planned to an endpoint with is_moderated: this moderation API
    # ({base_url, api_key_env, model, timeout}); without it, is_moderated endpoints are served unmoderated.
    moderation: ModerationEndpoint | None = None

    # Web search (web/search.py): {engine, base_url, api_key_env, price_per_search, timeout}; in the YAML
    # file or OMNIROUTER_WEB_SEARCH as JSON. Without it, only models with native search can search.
    web_search: WebSearch | None = None

    # Provider secrets from their conventional variables (OPENAI_API_KEY, ...) are read by the
    # catalog loader, not here, so they never sit in a settings dump.

    @field_validator("management_key", "encryption_key", "dashboard_secret", "metrics_token", mode="before")
    @classmethod
    def _blank_key_is_unset(cls, value: Any) -> Any:
        # Compose files pass OMNIROUTER_MANAGEMENT_KEY=${KEY:-}: an empty value means "not configured".
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("encryption_key")
    @classmethod
    def _fernet_keys(cls, value: SecretStr | None) -> SecretStr | None:
        # A malformed key stops the server at start (one line naming it by position, never its value),
        # not the first BYOK request.
        if value is not None:
            from omnirouter.governance.byok_crypto import Keyring

            Keyring.from_setting(value.get_secret_value())
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _FileSource(settings_cls))

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'omnirouter.db').resolve()}"

    def catalog_config(self) -> dict[str, Any]:
        data = read_config_file(self.config or os.environ.get(CONFIG_ENV))
        return {k: data[k] for k in CATALOG_SECTIONS if k in data}
