"""The catalog's shapes: providers, models and the endpoints that serve them.

One model (``openai/gpt-4o``) is served by one or more endpoints, each an (upstream provider,
upstream model name, prices, limits) tuple. Prices are Decimal USD per unit, exactly as the
OpenRouter ``/models`` listing writes them (strings), so money never passes through float.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec

ZERO = Decimal(0)


class Pricing(msgspec.Struct, kw_only=True, omit_defaults=True):
    """USD per token (prompt, completion, cache, reasoning), per request, per image, per search; and for
    the operations beyond chat (accounting/units.py) per generated image, per character of speech, per
    second of transcribed audio or generated video, and per rerank search unit."""

    prompt: Decimal = ZERO
    completion: Decimal = ZERO
    request: Decimal = ZERO
    image: Decimal = ZERO
    web_search: Decimal = ZERO
    image_output: Decimal = ZERO
    character: Decimal = ZERO
    audio_second: Decimal = ZERO
    video_second: Decimal = ZERO
    search_unit: Decimal = ZERO
    internal_reasoning: Decimal = ZERO
    input_cache_read: Decimal | None = None
    input_cache_write: Decimal | None = None
    discount: float = 0.0

    @property
    def is_free(self) -> bool:
        return not (
            self.prompt or self.completion or self.request or self.image_output or self.character
            or self.audio_second or self.video_second or self.search_unit
        )  # fmt: skip


class DataPolicy(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What a provider does with prompts (drives `data_collection`, `zdr` and `/endpoints/zdr`)."""

    training: bool = False
    retains_prompts: bool = False
    retention_days: int | None = None
    zdr: bool = False
    terms_of_service_url: str | None = None
    privacy_policy_url: str | None = None


class Provider(msgspec.Struct, kw_only=True):
    """An upstream API: where to send requests, in which wire format, with which secret."""

    slug: str
    name: str
    api: str = "openai"  # wire format; selects the adapter in omnirouter.providers
    base_url: str = ""
    region: str | None = None  # a cloud region (`api: bedrock`); its endpoint is derived from it
    api_version: str | None = None  # Azure OpenAI's `api-version` query parameter (`api: azure`)
    api_key_env: str | None = None
    api_key: str | None = msgspec.field(default=None)  # resolved secret; never logged or serialised
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    data_policy: DataPolicy = msgspec.field(default_factory=DataPolicy)
    status_page_url: str | None = None
    headquarters: str | None = None  # ISO 3166-1 alpha-2, shown by GET /providers
    datacenters: list[str] | None = None  # ISO 3166-1 alpha-2 codes, shown by GET /providers
    can_abort: bool = True  # stops generating (and billing) when the request is aborted
    connect_timeout: float | None = None
    first_byte_timeout: float | None = None
    ca_file: str | None = None  # PEM bundle of the CAs its TLS certificate is checked against, instead of the default
    embedding_batch_size: int | None = None  # inputs per embeddings call; None: its API's own limit
    enabled: bool = False  # true once a key is configured (or none is needed)

    def __repr__(self) -> str:  # keep the secret out of reprs, logs and tracebacks
        return f"Provider(slug={self.slug!r}, api={self.api!r}, base_url={self.base_url!r})"


class Endpoint(msgspec.Struct, kw_only=True):
    """One provider's offer of one model."""

    provider: str  # provider slug
    upstream_model: str  # the model name the provider's API expects
    pricing: Pricing = msgspec.field(default_factory=Pricing)
    tag: str | None = None  # e.g. "deepinfra/turbo"; defaults to the provider slug
    name: str | None = None  # display name, defaults to "<provider name> | <model id>"
    context_length: int | None = None  # defaults to the model's
    max_completion_tokens: int | None = None
    max_prompt_tokens: int | None = None
    quantization: str | None = None
    supported_parameters: list[str] | None = None  # defaults to the model's
    is_moderated: bool = False
    variant: str = "standard"
    # Caches repeated prompt prefixes without cache_control; None = infer (a cache-read price and no
    # cache-write price means the provider caches on its own, as OpenAI, DeepSeek and Groq do).
    supports_implicit_caching: bool | None = None
    embedding_batch_size: int | None = None  # inputs per embeddings call; None: its provider's

    @property
    def slug(self) -> str:
        return self.tag or self.provider


class Architecture(msgspec.Struct, kw_only=True, omit_defaults=True):
    modality: str = "text->text"
    input_modalities: list[str] = msgspec.field(default_factory=lambda: ["text"])
    output_modalities: list[str] = msgspec.field(default_factory=lambda: ["text"])
    tokenizer: str = "Other"
    instruct_type: str | None = None


class Reasoning(msgspec.Struct, kw_only=True, omit_defaults=True):
    supported_efforts: list[str] | None = None
    default_effort: str | None = None
    default_enabled: bool = False
    supports_max_tokens: bool = False
    mandatory: bool = False


class Model(msgspec.Struct, kw_only=True):
    id: str  # "author/slug"
    name: str
    canonical_slug: str | None = None
    created: int = 0
    description: str = ""
    context_length: int | None = None
    architecture: Architecture = msgspec.field(default_factory=Architecture)
    supported_parameters: list[str] = msgspec.field(default_factory=list)
    default_parameters: dict[str, float | int | None] | None = None
    reasoning: Reasoning | None = None
    hugging_face_id: str | None = None
    distillable: bool = False  # the author allows training on its outputs (`enforce_distillable_text`)
    knowledge_cutoff: str | None = None
    expiration_date: str | None = None
    aliases: list[str] = msgspec.field(default_factory=list)
    # How well it codes, 0 to 1 (the Artificial Analysis Coding Index / 100, as `catalog import` reads
    # it from OpenRouter's /models, or the operator's own): what the pareto router picks by.
    coding_score: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    max_messages: int | None = None  # messages a request may hold (Claude: 1000); context-compression keeps to it
    endpoints: list[Endpoint] = msgspec.field(default_factory=list)

    @property
    def author(self) -> str:
        return self.id.split("/", 1)[0]


class CatalogData(msgspec.Struct, kw_only=True):
    """The on-disk form: the bundled catalog file and the `providers`/`models` of a config file."""

    providers: list[Provider] = msgspec.field(default_factory=list)
    models: list[Model] = msgspec.field(default_factory=list)
