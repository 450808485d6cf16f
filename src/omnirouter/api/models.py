"""The model catalog API: GET /models (+ /count, /user), /model/{author}/{slug},
/models/{author}/{slug}/endpoints, /providers and /endpoints/zdr.

Only what this gateway can serve is listed: models with at least one live endpoint (a provider that
is configured and enabled). The catalog is immutable, so each catalog's response bodies are built once
(`_View`) and requests only filter, sort and slice precomputed entries.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from weakref import WeakKeyDictionary

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from omnirouter.api import auth
from omnirouter.api.errors import ApiError
from omnirouter.api.jsonio import JSONResponse, encode, money
from omnirouter.catalog.catalog import Catalog, split_variants
from omnirouter.catalog.types import Endpoint, Model, Pricing, Provider
from omnirouter.routing.stats import LISTING_WINDOW, EndpointStats

# Vocabulary of the OpenAPI document (OutputModality, InputModality, the getModels query enums).
OUTPUT_MODALITIES = frozenset({"text", "image", "embeddings", "audio", "video", "rerank", "speech", "transcription"})
INPUT_MODALITIES = frozenset({"text", "image", "file", "audio", "video"})
SORTS = frozenset({
    "most-popular", "newest", "top-weekly", "pricing-low-to-high", "pricing-high-to-low",
    "context-high-to-low", "throughput-high-to-low", "latency-low-to-high", "intelligence-high-to-low",
    "coding-high-to-low", "agentic-high-to-low", "design-arena-elo-high-to-low",
})  # fmt: skip
DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
_DEFAULT_PARAMETER_KEYS = frozenset(
    {"temperature", "top_p", "top_k", "frequency_penalty", "presence_penalty", "repetition_penalty"}
)
_MILLION = Decimal(1_000_000)
_JSON = "application/json"


def price_str(value: Decimal) -> str:
    """A price as the listing writes it: a plain decimal string, no exponent ("0.0000025", "0")."""
    return format(money(value), "f")


def pricing_body(p: Pricing) -> dict[str, Any]:
    body: dict[str, Any] = {
        "prompt": price_str(p.prompt),
        "completion": price_str(p.completion),
        "request": price_str(p.request),
        "image": price_str(p.image),
        "web_search": price_str(p.web_search),
        "internal_reasoning": price_str(p.internal_reasoning),
    }
    if p.input_cache_read is not None:
        body["input_cache_read"] = price_str(p.input_cache_read)
    if p.input_cache_write is not None:
        body["input_cache_write"] = price_str(p.input_cache_write)
    if p.discount:
        body["discount"] = p.discount
    return body


def endpoint_body(catalog: Catalog, model: Model, ep: Endpoint) -> dict[str, Any]:
    """A `PublicEndpoint`. Uptime, latency and throughput are null until routing measures them."""
    provider = catalog.providers[ep.provider]
    params = catalog.endpoint_supported_parameters(model, ep)
    tools = "tools" in params
    tool_choice = tools and "tool_choice" in params
    implicit = ep.supports_implicit_caching
    if implicit is None:
        implicit = ep.pricing.input_cache_read is not None and ep.pricing.input_cache_write is None
    return {
        "name": ep.name or f"{provider.name} | {model.id}",
        "model_id": model.canonical_slug or model.id,
        "model_name": model.name,
        "context_length": catalog.endpoint_context_length(model, ep) or 0,
        "pricing": pricing_body(ep.pricing),
        "provider_name": provider.name,
        "tag": ep.slug,
        "quantization": ep.quantization,
        "max_completion_tokens": ep.max_completion_tokens,
        "max_prompt_tokens": ep.max_prompt_tokens,
        "supported_parameters": list(params),
        "status": 0,
        "uptime_last_30m": None,
        "uptime_last_5m": None,
        "uptime_last_1d": None,
        "latency_last_30m": None,
        "throughput_last_30m": None,
        "supports_implicit_caching": implicit,
        # Required by the official SDK's PublicEndpoint model, though newer than the OpenAPI file.
        "supports_tool_choice": {
            "auto": tools,
            "none": tool_choice,
            "required": tool_choice,
            "function": tool_choice,
        },
        "native_tools": {},
        "service_tier": None,
        "supports_diarization": False,
    }


@dataclass(slots=True)
class _Entry:
    """One live model: its `Model` body and the keys the list filters use."""

    model: Model
    body: dict[str, Any]
    search: tuple[str, ...]
    providers: frozenset[str]
    params: frozenset[str]
    inputs: frozenset[str]
    outputs: frozenset[str]
    prompt: Decimal  # USD per token, of the listed (cheapest) endpoint
    completion: Decimal
    context: int
    zdr: bool
    model_bytes: bytes  # GET /model/{author}/{slug}
    endpoints_bytes: bytes  # GET /models/{author}/{slug}/endpoints


class _View:
    """A catalog's API bodies, built once."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        entries = [self._entry(m) for m in catalog.live_models()]
        entries.sort(key=lambda e: (-e.model.created, e.model.id))  # default order: newest first
        self.entries = entries
        self.by_id = {e.model.id: e for e in entries}
        zdr = [
            endpoint_body(catalog, e.model, ep)
            for e in entries
            for ep in catalog.live_endpoints(e.model)
            if catalog.providers[ep.provider].data_policy.zdr
        ]
        self.zdr_bytes = encode({"data": zdr})
        live_providers = {ep.provider for e in entries for ep in catalog.live_endpoints(e.model)}
        self.providers_bytes = encode(
            {"data": [_provider_body(p) for p in catalog.providers.values() if p.slug in live_providers]}
        )
        default = [e for e in entries if "text" in e.outputs]
        self.default_list_bytes = encode(
            {"data": [e.body for e in default], "total_count": len(default), "links": {"next": None}}
        )
        self.default_count_bytes = encode({"data": {"count": len(default)}})

    def _entry(self, model: Model) -> _Entry:
        catalog = self.catalog
        live = catalog.live_endpoints(model)
        # The listed price is the cheapest live endpoint's, as default routing favours it.
        top = min(live, key=lambda ep: ep.pricing.prompt + ep.pricing.completion)
        params: list[str] = []
        for ep in live:
            params += [p for p in catalog.endpoint_supported_parameters(model, ep) if p not in params]
        contexts = [c for ep in live if (c := catalog.endpoint_context_length(model, ep)) is not None]
        context = model.context_length if model.context_length is not None else max(contexts, default=None)
        arch = model.architecture
        body: dict[str, Any] = {
            "id": model.id,
            "canonical_slug": model.canonical_slug or model.id,
            "hugging_face_id": model.hugging_face_id,
            "name": model.name,
            "created": model.created,
            "description": model.description,
            "context_length": context,
            "architecture": {
                "modality": arch.modality,
                "input_modalities": list(arch.input_modalities),
                "output_modalities": list(arch.output_modalities),
                "tokenizer": arch.tokenizer,
                "instruct_type": arch.instruct_type,
            },
            "pricing": pricing_body(top.pricing),
            "top_provider": {
                "context_length": catalog.endpoint_context_length(model, top),
                "max_completion_tokens": top.max_completion_tokens,
                "is_moderated": top.is_moderated,
            },
            "per_request_limits": None,
            "supported_parameters": params,
            "default_parameters": _default_parameters(model),
            "supported_voices": None,
            "knowledge_cutoff": model.knowledge_cutoff,
            "expiration_date": model.expiration_date,
            "links": {"details": f"/api/v1/models/{model.id}/endpoints"},
        }
        if model.coding_score is not None:  # the one benchmark this gateway knows (ModelBenchmarks)
            body["benchmarks"] = {
                "artificial_analysis": {
                    "intelligence_index": None,
                    "coding_index": round(model.coding_score * 100, 4),
                    "agentic_index": None,
                },
                "design_arena": [],
            }
        if model.reasoning is not None:
            r = model.reasoning
            reasoning: dict[str, Any] = {
                "mandatory": r.mandatory,
                "default_enabled": r.default_enabled,
                "supported_efforts": r.supported_efforts,
                "default_effort": r.default_effort,
            }
            if r.supports_max_tokens:
                reasoning["supports_max_tokens"] = True
            body["reasoning"] = reasoning
        endpoints = {
            "id": model.id,
            "name": model.name,
            "created": model.created,
            "description": model.description,
            "architecture": body["architecture"],
            "endpoints": [endpoint_body(catalog, model, ep) for ep in live],
        }
        names = (model.id, model.name, model.canonical_slug or "", *model.aliases)
        return _Entry(
            model=model,
            body=body,
            search=tuple(n.lower() for n in names if n),
            providers=frozenset(ep.provider for ep in live),
            params=frozenset(params),
            inputs=frozenset(arch.input_modalities),
            outputs=frozenset(arch.output_modalities),
            prompt=top.pricing.prompt,
            completion=top.pricing.completion,
            context=context or 0,
            zdr=any(catalog.providers[ep.provider].data_policy.zdr for ep in live),
            model_bytes=encode({"data": body}),
            endpoints_bytes=encode({"data": endpoints}),
        )

    def lookup(self, author: str, slug: str) -> _Entry | None:
        """`author/slug`, with variant suffixes and aliases resolved (behaviors §4.1)."""
        name = f"{author}/{slug}"
        model = self.catalog.model(name) or self.catalog.model(split_variants(name)[0])
        return self.by_id.get(model.id) if model is not None else None


_views: WeakKeyDictionary[Catalog, _View] = WeakKeyDictionary()


def _view(request: Request) -> _View:
    catalog: Catalog = request.app.state.omni.catalog
    view = _views.get(catalog)
    if view is None:
        view = _views[catalog] = _View(catalog)
    return view


def _default_parameters(model: Model) -> dict[str, float | int | None] | None:
    # The schema allows only these keys (additionalProperties: false).
    params = model.default_parameters
    if not params:
        return None
    kept = {k: v for k, v in params.items() if k in _DEFAULT_PARAMETER_KEYS}
    return kept or None


def _provider_body(p: Provider) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": p.name,
        "slug": p.slug,
        "privacy_policy_url": p.data_policy.privacy_policy_url,
        "terms_of_service_url": p.data_policy.terms_of_service_url,
        "status_page_url": p.status_page_url,
    }
    if p.headquarters:
        body["headquarters"] = p.headquarters
    if p.datacenters:
        body["datacenters"] = p.datacenters
    return body


# ---------------------------------------------------------------------------------------------- query


def _csv(value: str | None) -> list[str]:
    return [v.strip().lower() for v in (value or "").split(",") if v.strip()]


def _int_param(request: Request, name: str, minimum: int, maximum: int | None = None) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "" or raw == "null":
        return None
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ApiError(400, f"Invalid `{name}`: expected an integer {bound}, got {raw!r}")
    return value


def _price_param(request: Request, name: str) -> Decimal | None:
    """A price bound in USD per million tokens, as a per-token Decimal."""
    raw = request.query_params.get(name)
    if raw is None or raw == "" or raw == "null":
        return None
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or value < 0:
        raise ApiError(400, f"Invalid `{name}`: expected a non-negative number (USD per million tokens), got {raw!r}")
    return value / _MILLION


def _modalities(request: Request, name: str, allowed: frozenset[str], default: str | None) -> set[str] | None:
    raw = request.query_params.get(name, default)
    values = _csv(raw)
    if not values or values == ["all"]:
        return None
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise ApiError(
            400,
            f"Invalid `{name}`: unknown modality {unknown[0]!r}; expected a comma-separated "
            f"list of {', '.join(sorted(allowed))}" + (' or "all"' if default else ""),
        )
    return set(values)


def _select(request: Request, view: _View) -> list[_Entry]:
    """The entries matching the getModels query filters, in the requested order."""
    q = request.query_params
    outputs = _modalities(request, "output_modalities", OUTPUT_MODALITIES, "text")
    inputs = _modalities(request, "input_modalities", INPUT_MODALITIES, None)
    params = _csv(q.get("supported_parameters"))
    authors = set(_csv(q.get("model_authors")))
    providers = set(_csv(q.get("providers")))
    text = (q.get("q") or "").strip().lower()
    arch = (q.get("arch") or "").strip().lower()
    context = _int_param(request, "context", 1)
    min_prompt, max_prompt = _price_param(request, "min_price"), _price_param(request, "max_price")
    min_out, max_out = _price_param(request, "min_output_price"), _price_param(request, "max_output_price")
    min_age, max_age = _int_param(request, "min_age_days", 0), _int_param(request, "max_age_days", 0)
    zdr = (q.get("zdr") or "false").lower()
    if zdr not in ("true", "false"):
        raise ApiError(400, f'Invalid `zdr`: expected "true", got {q.get("zdr")!r}')
    sort = q.get("sort")
    if sort is not None and sort not in SORTS:
        raise ApiError(400, f"Invalid `sort`: expected one of {', '.join(sorted(SORTS))}, got {sort!r}")
    # `category`, `distillable` and `region` describe data this instance does not have: ignored.
    now = time.time()

    out = []
    for e in view.entries:
        if outputs is not None and not (outputs & e.outputs):
            continue
        if inputs is not None and not inputs <= e.inputs:
            continue
        if params and not all(p in e.params for p in params):
            continue
        if authors and e.model.author.lower() not in authors:
            continue
        if providers and not (providers & e.providers):
            continue
        if text and not any(text in s for s in e.search):
            continue
        if arch and e.model.architecture.tokenizer.lower() != arch:
            continue
        if context is not None and e.context < context:
            continue
        if (min_prompt is not None and e.prompt < min_prompt) or (max_prompt is not None and e.prompt > max_prompt):
            continue
        if (min_out is not None and e.completion < min_out) or (max_out is not None and e.completion > max_out):
            continue
        age_days = (now - e.model.created) / 86400
        if (min_age is not None and age_days < min_age) or (max_age is not None and age_days > max_age):
            continue
        if zdr == "true" and not e.zdr:
            continue
        out.append(e)

    # Sorts needing usage or benchmark data keep the default order: no model has a score here.
    if sort in ("pricing-low-to-high", "pricing-high-to-low"):
        out.sort(key=lambda e: e.prompt + e.completion, reverse=sort == "pricing-high-to-low")
    elif sort == "context-high-to-low":
        out.sort(key=lambda e: e.context, reverse=True)
    return out


def _listing(request: Request, view: _View) -> Response:
    if not request.query_params:
        return Response(view.default_list_bytes, media_type=_JSON)
    selected = _select(request, view)
    offset = _int_param(request, "offset", 0)
    limit = _int_param(request, "limit", 1, MAX_LIMIT)
    next_url = None
    if offset is None and limit is None:  # both omitted: the full list (getModels)
        page = selected
    else:
        offset, limit = offset or 0, limit or DEFAULT_LIMIT
        page = selected[offset : offset + limit]
        if offset + limit < len(selected):
            next_url = str(request.url.include_query_params(offset=offset + limit, limit=limit))
    return JSONResponse({"data": [e.body for e in page], "total_count": len(selected), "links": {"next": next_url}})


# ------------------------------------------------------------------------------------------- handlers


async def list_models(request: Request) -> Response:
    return _listing(request, _view(request))


async def count_models(request: Request) -> Response:
    view = _view(request)
    if not request.query_params:
        return Response(view.default_count_bytes, media_type=_JSON)
    return JSONResponse({"data": {"count": len(_select(request, view))}})


async def list_models_user(request: Request) -> Response:
    key = await auth.inference_key(request)
    view = _view(request)
    # The models the key's guardrails let its requests reach (governance/guardrails.py); all without any.
    guardrails = request.app.state.omni.governance.get("guardrails")
    policy = guardrails.policy(key) if guardrails is not None else None
    if policy is not None and policy.routing:
        allowed = _Allowed(view, [e for e in view.entries if policy.allows_model(e.model, view.catalog)])
        return _listing(request, allowed)  # type: ignore[arg-type]
    return _listing(request, view)


class _Allowed:
    """The part of a view a key's guardrails allow (what _listing reads of a view)."""

    def __init__(self, view: _View, entries: list[_Entry]) -> None:
        self.catalog = view.catalog
        self.entries = entries
        default = [e for e in entries if "text" in e.outputs]
        self.default_list_bytes = encode(
            {"data": [e.body for e in default], "total_count": len(default), "links": {"next": None}}
        )


async def get_model(request: Request) -> Response:
    entry = _view(request).lookup(request.path_params["author"], request.path_params["slug"])
    if entry is None:
        raise _not_found(request)
    return Response(entry.model_bytes, media_type=_JSON)


async def list_endpoints(request: Request) -> Response:
    entry = _view(request).lookup(request.path_params["author"], request.path_params["slug"])
    if entry is None:
        raise _not_found(request)
    routing = getattr(request.app.state.omni, "routing", None)
    if routing is None or not await _authenticated(request):  # measurements are for key holders only
        return Response(entry.endpoints_bytes, media_type=_JSON)
    body = msgspec.json.decode(entry.endpoints_bytes)
    for ep in body["data"]["endpoints"]:
        _measured(ep, routing.stats, (entry.model.id, ep["tag"]))
    return Response(msgspec.json.encode(body), media_type=_JSON)


async def _authenticated(request: Request) -> bool:
    if "authorization" not in request.headers and "x-api-key" not in request.headers:
        return False
    try:
        await auth.any_key(request)
    except ApiError:
        return False
    return True


def _measured(ep: dict[str, Any], stats: EndpointStats, key: tuple[str, str]) -> None:
    """Fill an endpoint's uptime (percent), latency (ms to first token) and throughput (tokens/s)."""
    for field_name, window in (("uptime_last_5m", 300), ("uptime_last_30m", 1800), ("uptime_last_1d", 86400)):
        rate = stats.uptime(key, window)
        ep[field_name] = None if rate is None else round(rate * 100, 2)
    latency = stats.latency(key, LISTING_WINDOW)
    ep["latency_last_30m"] = None if latency is None else {p: round(v * 1000, 1) for p, v in latency.items()}
    throughput = stats.throughput(key, LISTING_WINDOW)
    ep["throughput_last_30m"] = None if throughput is None else {p: round(v, 1) for p, v in throughput.items()}


async def list_providers(request: Request) -> Response:
    return Response(_view(request).providers_bytes, media_type=_JSON)


async def list_zdr_endpoints(request: Request) -> Response:
    return Response(_view(request).zdr_bytes, media_type=_JSON)


def _not_found(request: Request) -> ApiError:
    name = f"{request.path_params['author']}/{request.path_params['slug']}"
    catalog: Catalog = request.app.state.omni.catalog
    model = catalog.model(name) or catalog.model(split_variants(name)[0])
    if model is not None:  # known, but no configured provider serves it
        return ApiError(
            404,
            f"Model {model.id} has no live endpoints: configure one of its providers "
            f"({', '.join(sorted({ep.provider for ep in model.endpoints}))})",
        )
    return ApiError(404, f"Model {name} not found")


routes: list[Route] = [
    Route("/models", list_models, methods=["GET"]),
    Route("/models/count", count_models, methods=["GET"]),
    Route("/models/user", list_models_user, methods=["GET"]),
    Route("/model/{author}/{slug}", get_model, methods=["GET"]),
    Route("/models/{author}/{slug}/endpoints", list_endpoints, methods=["GET"]),
    Route("/providers", list_providers, methods=["GET"]),
    Route("/endpoints/zdr", list_zdr_endpoints, methods=["GET"]),
]
