"""Which endpoints to try for a request, in which order (behaviors §3-4).

For each requested model (`model`, then `models` fallbacks; routers and `~latest` resolved first):
the endpoint pool its variant selects, minus what the hard filters exclude (`provider` preferences,
context length, `max_tokens`, prices), narrowed by the soft preferences (tools, response_format).
Then the order: `provider.sort` (or a variant's) by price, throughput, latency or tool success;
else `provider.order`; else a session's sticky endpoint first and the rest at random weighted by the
inverse square of price. Endpoints whose circuit is open go last, except those named in
`provider.order`, which is followed as given; `preferred_*` thresholds move slow endpoints after
every fast one, across models.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgspec

from omnirouter.catalog.catalog import Catalog, split_variants
from omnirouter.catalog.types import Endpoint, Model, Provider
from omnirouter.errors import GatewayError
from omnirouter.formats.openai_chat import ChatRequest, Percentiles, ProviderPrefs, SortConfig
from omnirouter.routing.availability import availability_error
from omnirouter.routing.health import Health
from omnirouter.routing.stats import EndpointStats

MILLION = Decimal(1_000_000)
# Quantization families: asking for fp4 admits its microscaling variants (behaviors §3.2).
QUANT_FAMILY = {"fp4": {"fp4", "mxfp4", "nvfp4"}, "fp8": {"fp8", "mxfp8"}}
# Variants that pick a separate pool of endpoints; the others rewrite the request.
POOL_VARIANTS = ("free", "extended", "thinking")
# Service-tier endpoints join the pool only with the variant that asks for them.
TIER_OF_VARIANT = {"nitro": "priority", "floor": "flex"}
SORT_OF_VARIANT = {"nitro": "throughput", "floor": "price", "exacto": "exacto"}
# openrouter_metadata.strategy of a router's choices (RoutingStrategy in the OpenAPI document).
STRATEGY_OF_ROUTER = {
    "openrouter/auto": "auto",
    "openrouter/free": "free",
    "openrouter/pareto-code": "pareto",
    "openrouter/fusion": "fusion",
}


# A router model's chooser: (request, plugins, needs tools, session) -> model ids to try in order.
Router = Callable[[ChatRequest, list[Any] | None, bool, str | None], list[str]]


@dataclass(frozen=True)
class Candidate:
    model: Model
    endpoint: Endpoint
    provider: Provider
    supported: list[str] | None  # the endpoint's supported_parameters
    # A BYOK key to call the endpoint with (governance/byok_store.py), instead of the provider's own.
    byok: Any = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.model.id, self.endpoint.slug)


@dataclass
class Plan:
    candidates: list[Candidate]
    requested: list[str]
    strategy: str = "direct"  # RoutingStrategy: direct, auto, free, latest, fallback
    total_endpoints: int = 0
    plugins: list[dict] = field(default_factory=list)  # added by variants such as :online
    byok: bool = False  # some candidates carry BYOK keys (governance/byok_store.py)


def _too_long(context: int, needs: Needs) -> GatewayError:
    """No endpoint's context holds the prompt (behaviors §8.6: 400, suggesting compression)."""
    completion = needs.completion_limit or 0
    return GatewayError(
        400,
        f"This endpoint's maximum context length is {context} tokens. However, you requested about "
        f"{needs.prompt_tokens + completion} tokens ({needs.prompt_tokens} of text input, {completion} in the "
        'output). Please reduce the length of either one, or use the "middle-out" transform (plugin '
        '"context-compression") to compress your prompt automatically.',
        {"error_type": "context_length_exceeded"},
    )


def writes_text(model: Model) -> bool:
    """A model that chat may plan: one answering in text (or images, alongside text)."""
    outputs = model.architecture.output_modalities
    return "text" in outputs or "image" in outputs


@dataclass
class Needs:
    """What the request asks of an endpoint, beyond the `provider` object."""

    params: set[str]
    prompt_tokens: int
    completion_limit: int | None
    tools: bool = False
    response_format: bool = False
    web_search: bool = False  # the `web` plugin or `:online`: endpoints with native search
    # ... only where some have it: the gateway's own engine (web/search.py) searches for the others
    web_engine: bool = False
    plugins: list[Any] | None = None
    # Context compression (behaviors §8.6): True when the request asks for it, False when it turns it
    # off, None by default (on for endpoints of at most COMPRESSED_BY_DEFAULT tokens of context).
    compress: bool | None = None
    shrink: bool = False  # set by the planner: it kept endpoints the prompt fits only once compressed
    # The models the operation may use: chat needs text or images out; embeddings, speech... their own
    # (pipeline/modality.py).
    serves: Callable[[Model], bool] = writes_text


@dataclass
class Selection:
    """What the planner found for the requested models before the prompt's length and the order."""

    strategy: str
    per_model: list[tuple[Model, list[Endpoint], str | None, bool]] = field(default_factory=list)  # +sort, search
    excluded: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    free_ended: list[str] = field(default_factory=list)
    plugins: list[dict] = field(default_factory=list)
    total: int = 0
    served_any: bool = False
    online: bool = False


MEMO_ENTRIES = 4096  # distinct selections remembered; past that the memo starts over
COMPRESSED_BY_DEFAULT = 8192  # endpoints with this much context or less compress too long a prompt unasked


def _matches(slugs: list[str], ep: Endpoint, provider_name: str | None = None) -> bool:
    """A base slug ("deepinfra") matches all of that provider's endpoints except service-tier ones;
    a full slug ("deepinfra/turbo") only itself. The provider's display name ("DeepInfra", the
    OpenAPI ProviderName) counts as its base slug, case-insensitively."""
    names = {ep.provider.lower(), (provider_name or ep.provider).lower()}
    for s in slugs:
        s = s.lower()
        if s == ep.slug.lower() or (s in names and ep.variant not in ("priority", "flex")):
            return True
    return False


def _unknown_message(ids: list[str]) -> str:
    if len(ids) == 1:
        base = ids[0]
        return f"No model matches {base}" if base.startswith("~") else f"{base} is not a valid model ID"
    return f"{', '.join(ids)} are not valid model IDs"


def _price(ep: Endpoint) -> Decimal:
    return ep.pricing.prompt + ep.pricing.completion


def _race(ep: Endpoint, rng: random.Random) -> tuple[int, float]:
    """A draw in the exponential race that samples endpoints without replacement, weighted by the
    inverse square of price: Exp(1) * price**2, smallest first, so P(first) = weight / sum of weights.
    (The textbook u ** (1 / weight) rounds to 1.0 at sub-cent per-million prices and ties.) Free
    endpoints race among themselves ahead of every paid one."""
    price = float(_price(ep))
    return (0, rng.random()) if price <= 0 else (1, rng.expovariate(1.0) * price * price)


def _quant_ok(wanted: list[str], ep: Endpoint) -> bool:
    q = (ep.quantization or "unknown").lower()
    return any(q in QUANT_FAMILY.get(w.lower(), {w.lower()}) for w in wanted)


def _max_price_ok(prefs: ProviderPrefs, ep: Endpoint) -> bool:
    mp = prefs.max_price
    if mp is None:
        return True
    p = ep.pricing
    checks = ((mp.prompt, p.prompt * MILLION), (mp.completion, p.completion * MILLION), (mp.request, p.request),
              (mp.image, p.image))  # fmt: skip
    return all(limit is None or value <= Decimal(str(limit)) for limit, value in checks)


def _sort_key(by: str, stats: EndpointStats, model: Model) -> Callable[[Endpoint], tuple]:
    def throughput(ep: Endpoint) -> float:
        t = stats.throughput((model.id, ep.slug))
        return -(t["p50"] if t else 0.0)

    def latency(ep: Endpoint) -> float:
        lat = stats.latency((model.id, ep.slug))
        return lat["p50"] if lat else float("inf")

    if by == "price":
        return lambda ep: (_price(ep),)
    if by == "throughput":
        return lambda ep: (throughput(ep), _price(ep))
    if by == "latency":
        return lambda ep: (latency(ep), _price(ep))
    # exacto: measured tool-call success first, then throughput
    return lambda ep: (-(stats.tool_success((model.id, ep.slug)) or 0.0), throughput(ep), _price(ep))


def _thresholds(value: float | Percentiles | None) -> dict[str, float]:
    """`preferred_*` as cutoffs by percentile: a number is the p50's."""
    if value is None:
        return {}
    if isinstance(value, (int, float)):
        return {"p50": float(value)}
    return {k: float(v) for k in value.__struct_fields__ if (v := getattr(value, k)) is not None}


class Planner:
    def __init__(
        self,
        catalog: Catalog,
        health: Health,
        stats: EndpointStats,
        *,
        default_model: str | None = None,
        rng: random.Random | None = None,
        routers: dict[str, Router] | None = None,
    ) -> None:
        self.catalog = catalog
        self.health = health
        self.stats = stats
        self.default_model = default_model
        self.rng = rng or random.Random()
        self.routers = routers or {}  # "openrouter/auto" -> chooser of model ids
        self._memo: dict[tuple, Selection] = {}
        self._memo_catalog: Catalog | None = None
        self._candidates: dict[tuple[str, str], Candidate] = {}

    # -- public
    def plan(self, req: ChatRequest, needs: Needs, *, sticky: tuple[str, str] | None = None,
             session: str | None = None, byok_providers: frozenset[str] = frozenset(),
             byok_zdr: frozenset[str] = frozenset()) -> Plan:  # fmt: skip
        """`byok_providers`: providers the instance has no key for but the request's workspace brings
        one (governance/byok_store.py): their endpoints are planned too, for its BYOK keys alone.
        `byok_zdr`: providers whose endpoints pass `zdr` for the workspace's keys declared ZDR alone."""
        requested = self.requested(req)
        prefs = req.provider or ProviderPrefs()
        sort_by, partition = self._sort(prefs, req)
        sel = self._selection(requested, req, prefs, needs, session, byok_providers, byok_zdr)
        if sel.online:
            needs.web_search = True
        excluded = list(sel.excluded)
        too_small: list[int] = []  # the contexts of endpoints too small for the prompt
        per_model = [
            (
                model,
                self._prefer_capable(model, self._fits(model, eps, needs, excluded, too_small), needs, web),
                sort_by or by,
            )
            for model, eps, by, web in sel.per_model
        ]
        unknown, free_ended, served_any = sel.unknown, sel.free_ended, sel.served_any
        ordered = self._order(per_model, prefs, partition, sticky)
        ordered = self._preferred_first(ordered, prefs)
        candidates = [c for m, ep in ordered if (c := self._candidate(m, ep)) is not None]
        if not candidates:
            if unknown:
                raise availability_error("model_not_found", _unknown_message(unknown), requested)
            if not served_any and free_ended:
                raise availability_error(
                    "free_variant_ended", f"The free variant of {', '.join(free_ended)} is no longer available",
                    requested, fallback_models=free_ended,
                )  # fmt: skip
            if not served_any:
                raise availability_error(
                    "no_endpoints", f"No endpoints found for {', '.join(requested)}: no configured provider serves it",
                    requested,
                )  # fmt: skip
            if too_small and set(excluded) == {"context_length"}:
                raise _too_long(max(too_small), needs)
            raise availability_error(
                "constraint_filtered",
                "No endpoints found that match your request's routing constraints",
                requested,
                excluded_by=sorted(set(excluded)),
            )
        return Plan(candidates, requested, sel.strategy, total_endpoints=sel.total, plugins=list(sel.plugins))

    def _candidate(self, model: Model, ep: Endpoint) -> Candidate | None:
        """One per endpoint of the catalog (they are immutable), None when its provider is unknown."""
        key = (model.id, ep.slug)
        if (found := self._candidates.get(key)) is None and (p := self.catalog.provider(ep.provider)) is not None:
            supported = self.catalog.endpoint_supported_parameters(model, ep)
            found = self._candidates[key] = Candidate(model, ep, p, supported)
        return found

    def requested(self, req: ChatRequest) -> list[str]:
        ids = [req.model] if req.model else []
        for m in req.models or []:
            if m not in ids:
                ids.append(m)
        if not ids:
            if self.default_model:
                return [self.default_model]
            raise GatewayError(400, 'No model specified: set "model" (or "models")')
        return ids

    # -- steps
    def _selection(
        self,
        requested: list[str],
        req: ChatRequest,
        prefs: ProviderPrefs,
        needs: Needs,
        session: str | None,
        byok_providers: frozenset[str] = frozenset(),
        byok_zdr: frozenset[str] = frozenset(),
    ) -> Selection:
        """Each requested model's endpoints that pass every filter but the prompt's length: the same
        for every request that asks the same of the same catalog, so remembered (router models,
        which choose per request, excepted)."""
        if self._memo_catalog is not self.catalog:
            self._memo.clear()
            self._candidates.clear()
            self._memo_catalog = self.catalog
        routed = self.routers and any(split_variants(m)[0] in self.routers for m in requested)
        key = None
        if not routed:
            key = (
                tuple(requested),
                None if req.provider is None else msgspec.json.encode(req.provider),
                frozenset(needs.params),
                needs.completion_limit,
                needs.tools,
                needs.response_format,
                needs.web_search,
                needs.web_engine,
                byok_providers,
                byok_zdr,
            )
            if (hit := self._memo.get(key)) is not None:
                return hit
        sel = Selection(strategy="fallback" if len(requested) > 1 else "direct")
        web = needs.web_search  # `:online` turns search on for its model and the ones after it
        for model_id, chosen_by in self._expand(requested, req, needs, session):
            base, variants = split_variants(model_id)
            found = self._resolve(base)
            if found is None:
                sel.unknown.append(base)
                continue
            resolved, how = found
            how = chosen_by or how
            if how != "direct" and sel.strategy == "direct":
                sel.strategy = how
            if "online" in variants and not any(p.get("id") == "web" for p in sel.plugins):
                sel.plugins.append({"id": "web"})
                sel.online = web = True
            pool = self._pool(resolved, variants, byok_providers)
            sel.served_any = sel.served_any or bool(pool)
            sel.total += len(pool)
            if not pool and "free" in variants and self._pool(resolved, ()):
                sel.free_ended.append(resolved.id)
            kept = []
            for ep in pool:
                if (reason := self._exclusion(resolved, ep, prefs, needs, byok_zdr)) is None:
                    kept.append(ep)
                else:
                    sel.excluded.append(reason)
            variant_sort = next((SORT_OF_VARIANT[v] for v in variants if v in SORT_OF_VARIANT), None)
            sel.per_model.append((resolved, kept, variant_sort, web))
        if key is not None:
            if len(self._memo) >= MEMO_ENTRIES:
                self._memo.clear()
            self._memo[key] = sel
        return sel

    def _expand(
        self, requested: list[str], req: ChatRequest, needs: Needs, session: str | None
    ) -> list[tuple[str, str | None]]:
        """Router models become the models they choose, in order, each with the router's strategy."""
        out: dict[str, str | None] = {}
        for model_id in requested:
            base = split_variants(model_id)[0]
            router = self.routers.get(base)
            if router is None:
                out.setdefault(model_id, None)
                continue
            for chosen in router(req, needs.plugins, needs.tools, session):
                out.setdefault(chosen, STRATEGY_OF_ROUTER.get(base, "auto"))
        return list(out.items())

    def _resolve(self, base: str) -> tuple[Model, str] | None:
        """The catalog's model for an id (or `~author/family`), and how it was found; None if none matches."""
        if base.startswith("~"):
            model = self.catalog.latest(base[1:])
            return None if model is None else (model, "latest")
        model = self.catalog.model(base)
        return None if model is None else (model, "alias" if model.id != base else "direct")

    def _pool(
        self, model: Model, variants: tuple[str, ...], byok_providers: frozenset[str] = frozenset()
    ) -> list[Endpoint]:
        live = self.catalog.live_endpoints(model)
        if byok_providers:
            live = live + [e for e in model.endpoints if e.provider in byok_providers]  # (not live: keyless)
        pool_variant = next((v for v in variants if v in POOL_VARIANTS), "standard")
        tiers = {TIER_OF_VARIANT[v] for v in variants if v in TIER_OF_VARIANT}
        if pool_variant == "free":
            return [e for e in live if e.variant == "free" or (e.variant == "standard" and e.pricing.is_free)]
        return [e for e in live if e.variant == pool_variant or e.variant in tiers]

    def _fits(
        self, model: Model, eps: list[Endpoint], needs: Needs, excluded: list[str], too_small: list[int]
    ) -> list[Endpoint]:
        """The endpoints whose context holds this prompt and the completion asked for. When none does
        and context compression is on (asked, or by default for small contexts), those it may
        compress for (behaviors §8.6): the ones with at least half the context needed, else the
        largest (plugins/context_compression.py shrinks the prompt to them)."""
        if not needs.serves(model):
            excluded.append("output_modalities")
            return []
        need = needs.prompt_tokens + (needs.completion_limit or 0)
        kept: list[Endpoint] = []
        compressible: list[tuple[int, Endpoint]] = []
        for ep in eps:
            context = self.catalog.endpoint_context_length(model, ep)
            if context and need > context:
                if needs.compress or (needs.compress is None and context <= COMPRESSED_BY_DEFAULT):
                    compressible.append((context, ep))
                else:
                    excluded.append("context_length")
                    too_small.append(context)
            else:
                kept.append(ep)
        if compressible and not kept:
            needs.shrink = True
            halves = [ep for context, ep in compressible if 2 * context >= need]
            return halves or [max(compressible, key=lambda ce: ce[0])[1]]
        excluded += ["context_length"] * len(compressible)
        too_small += [context for context, _ in compressible]
        return kept

    def _exclusion(
        self, model: Model, ep: Endpoint, prefs: ProviderPrefs, needs: Needs, byok_zdr: frozenset[str] = frozenset()
    ) -> str | None:
        provider = self.catalog.provider(ep.provider)
        policy = provider.data_policy if provider else None
        name = provider.name if provider else None
        if prefs.only and not _matches(prefs.only, ep, name):
            return "allowed_providers"
        if prefs.ignore and _matches(prefs.ignore, ep, name):
            return "allowed_providers"
        if prefs.data_collection == "deny" and (policy is None or policy.training or policy.retains_prompts):
            return "data_policy:training"
        if prefs.zdr and (policy is None or not policy.zdr) and ep.provider not in byok_zdr:
            return "data_policy:zdr"
        if prefs.enforce_distillable_text and not model.distillable:
            return "data_policy:training"
        if prefs.quantizations and not _quant_ok(prefs.quantizations, ep):
            return "quantization"
        if not _max_price_ok(prefs, ep):
            return "max_price"
        supported = self.catalog.endpoint_supported_parameters(model, ep)
        if prefs.require_parameters and supported and not needs.params <= set(supported):
            return "require_parameters"
        limit = needs.completion_limit
        if limit and ep.max_completion_tokens and limit > ep.max_completion_tokens:
            return "context_length"
        return None  # the prompt's length is checked per request (_fits): this answer is remembered

    def _prefer_capable(self, model: Model, eps: list[Endpoint], needs: Needs, web: bool) -> list[Endpoint]:
        """tools and response_format are soft: when some endpoints support them, only those are used;
        when none do, the model is still used and the parameter is ignored (behaviors §3.1)."""
        soft = ((needs.tools, {"tools"}), (needs.response_format, {"response_format", "structured_outputs"}))
        for wanted, params in soft:
            if wanted:
                capable = [
                    e for e in eps if params & set(self.catalog.endpoint_supported_parameters(model, e) or params)
                ]
                eps = capable or eps
        if web:  # not soft: answering without searching would pass off stale text as current ...
            native = [e for e in eps if "web_search_options" in self.catalog.endpoint_supported_parameters(model, e)]
            eps = native if native or not needs.web_engine else eps  # ... unless the gateway searches
        return eps

    def _sort(self, prefs: ProviderPrefs, req: ChatRequest) -> tuple[str | None, str]:
        sort = prefs.sort
        partition = {"fallback": "model", "sort": "none"}.get(req.route or "", "model")
        if isinstance(sort, SortConfig):
            return sort.by, sort.partition or partition
        return sort, partition

    def _order(
        self,
        per_model: list[tuple[Model, list[Endpoint], str | None]],
        prefs: ProviderPrefs,
        partition: str,
        sticky: tuple[str, str] | None,
    ) -> list[tuple[Model, Endpoint]]:
        no_fallbacks = prefs.allow_fallbacks is False
        if partition == "none" and not prefs.order and any(by for _, _, by in per_model):
            # One ranking across every model's endpoints (`order`, when given, wins over `sort`).
            by = next(by for _, _, by in per_model if by)
            flat = [(m, e) for m, eps, _ in per_model for e in eps]
            keys = {id(e): _sort_key(by, self.stats, m)(e) for m, e in flat}
            flat.sort(key=lambda me: keys[id(me[1])])
            if no_fallbacks:  # each model's best endpoint only, as with partition "model"
                firsts = {m.id: e for m, e in reversed(flat)}
                flat = [(m, e) for m, e in flat if firsts[m.id] is e]
            return self._failing_last(flat)
        out: list[tuple[Model, Endpoint]] = []
        for model, eps, by in per_model:
            if prefs.order:
                first: list[Endpoint] = []
                for slug in prefs.order:
                    first += [e for e in eps if self._named(slug, e) and not any(e is f for f in first)]
                rest = [] if no_fallbacks else self._balanced(model, [e for e in eps if not any(e is f for f in first)])
                ranked = first + rest
            elif by:
                ranked = [e for _, e in self._failing_last([(model, e) for e in sorted(eps, key=_sort_key(
                    by, self.stats, model))])]  # fmt: skip
            else:
                ranked = self._balanced(model, eps, sticky)
            if no_fallbacks and not prefs.order:
                ranked = ranked[:1]
            out += [(model, e) for e in ranked]
        return out

    def _named(self, slug: str, ep: Endpoint) -> bool:
        provider = self.catalog.provider(ep.provider)
        return _matches([slug], ep, provider.name if provider else None)

    def _failing_last(self, pairs: list[tuple[Model, Endpoint]]) -> list[tuple[Model, Endpoint]]:
        ok = [(m, e) for m, e in pairs if not self.health.deprioritised((m.id, e.slug))]
        return ok + [(m, e) for m, e in pairs if self.health.deprioritised((m.id, e.slug))]

    def _balanced(self, model: Model, eps: list[Endpoint], sticky: tuple[str, str] | None = None) -> list[Endpoint]:
        """Inverse-square price weighting among healthy endpoints, failing ones last."""
        if len(eps) < 2:  # nothing to weigh
            return eps
        healthy = [e for e in eps if not self.health.deprioritised((model.id, e.slug))]
        failing = [e for e in eps if self.health.deprioritised((model.id, e.slug))]
        keys = {id(e): _race(e, self.rng) for e in healthy}
        ranked = sorted(healthy, key=lambda e: keys[id(e)])
        if sticky and sticky[0] == model.id:
            stuck = [e for e in ranked if e.slug == sticky[1]]
            ranked = stuck + [e for e in ranked if e.slug != sticky[1]]
        return ranked + failing

    def _preferred_first(
        self, ordered: list[tuple[Model, Endpoint]], prefs: ProviderPrefs
    ) -> list[tuple[Model, Endpoint]]:
        """Endpoints below `preferred_min_throughput` or above `preferred_max_latency` move after all
        the others, never out (behaviors §3.2). Endpoints without measurements are not penalised."""
        min_tp = _thresholds(prefs.preferred_min_throughput)
        max_lat = _thresholds(prefs.preferred_max_latency)
        if not min_tp and not max_lat:
            return ordered

        def slow(m: Model, e: Endpoint) -> bool:
            tp = self.stats.throughput((m.id, e.slug))
            lat = self.stats.latency((m.id, e.slug))
            return bool(
                (tp and any(tp[p] < v for p, v in min_tp.items() if p in tp))
                or (lat and any(lat[p] > v for p, v in max_lat.items() if p in lat))
            )

        # Open circuits stay last (except in an explicit `order`, which is followed as given): a fast
        # endpoint that just failed is no better than a slow one.
        def rank(me: tuple[Model, Endpoint]) -> int:
            m, e = me
            return 2 if not prefs.order and self.health.deprioritised((m.id, e.slug)) else int(slow(m, e))

        return sorted(ordered, key=rank)  # stable: the order within each group is kept
