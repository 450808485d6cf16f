"""Which endpoints to try for a request, in which order.

For each requested model (`model`, then `models` fallbacks): its live endpoints, filtered by the
`provider` preferences and the request's needs; ordered by `provider.order`, else at random weighted
by the inverse square of price among endpoints that have not failed recently, the failing ones last.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from omnirouter.api.errors import ApiError
from omnirouter.catalog.catalog import Catalog
from omnirouter.catalog.types import Endpoint, Model, Provider
from omnirouter.formats.openai_chat import ChatRequest
from omnirouter.routing.availability import availability_error
from omnirouter.routing.health import Health


@dataclass(frozen=True)
class Candidate:
    model: Model
    endpoint: Endpoint
    provider: Provider
    supported: list[str] | None  # the endpoint's supported_parameters


def requested_models(req: ChatRequest, default_model: str | None) -> list[str]:
    ids = [req.model] if req.model else []
    for m in req.models or []:
        if m not in ids:
            ids.append(m)
    if not ids:
        if default_model:
            return [default_model]
        raise ApiError(400, 'No model specified: set "model" (or "models")')
    return ids


def _matches(slugs: list[str], ep: Endpoint) -> bool:
    """A base slug ("deepinfra") matches all of that provider's endpoints; a full one only itself."""
    return any(s == ep.slug or s == ep.provider for s in slugs)


def _weight(ep: Endpoint) -> float:
    price = float(ep.pricing.prompt + ep.pricing.completion)
    return 1e30 if price <= 0 else 1.0 / (price * price)


def _load_balanced(model: Model, eps: list[Endpoint], health: Health, rng: random.Random) -> list[Endpoint]:
    healthy = [e for e in eps if not health.recently_failed(model.id, e.slug)]
    failing = [e for e in eps if health.recently_failed(model.id, e.slug)]
    # Weighted sampling without replacement (Efraimidis-Spirakis): key = u ** (1 / w).
    keyed = sorted(healthy, key=lambda e: rng.random() ** (1.0 / _weight(e)), reverse=True)
    return keyed + failing


def plan(
    catalog: Catalog,
    req: ChatRequest,
    params: set[str],
    health: Health,
    *,
    default_model: str | None = None,
    rng: random.Random | None = None,
) -> list[Candidate]:
    rng = rng or random.Random()
    ids = requested_models(req, default_model)
    prefs = req.provider
    require_all = bool(prefs and prefs.require_parameters)
    completion_limit = req.completion_limit
    candidates: list[Candidate] = []
    excluded: list[str] = []
    served_any = False

    for model_id in ids:
        model = catalog.model(model_id)
        if model is None:
            raise availability_error("model_not_found", f"{model_id} is not a valid model ID", ids)
        eps = catalog.live_endpoints(model)
        served_any = served_any or bool(eps)
        kept: list[Endpoint] = []
        for ep in eps:
            supported = catalog.endpoint_supported_parameters(model, ep)
            if prefs and prefs.only and not _matches(prefs.only, ep):
                excluded.append("allowed_providers")
                continue
            if prefs and prefs.ignore and _matches(prefs.ignore, ep):
                excluded.append("allowed_providers")
                continue
            if require_all and supported and not params <= set(supported):
                excluded.append("require_parameters")
                continue
            if completion_limit and ep.max_completion_tokens and completion_limit > ep.max_completion_tokens:
                excluded.append("context_length")
                continue
            kept.append(ep)

        no_fallbacks = bool(prefs and prefs.allow_fallbacks is False)
        if prefs and prefs.order:
            first: list[Endpoint] = []
            for slug in prefs.order:
                first += [e for e in kept if _matches([slug], e) and not any(e is f for f in first)]
            rest = [] if no_fallbacks else [e for e in kept if not any(e is f for f in first)]
            ordered = first + _load_balanced(model, rest, health, rng)
        else:
            ordered = _load_balanced(model, kept, health, rng)[: 1 if no_fallbacks else None]
        for ep in ordered:
            provider = catalog.provider(ep.provider)
            if provider is not None:
                candidates.append(Candidate(model, ep, provider, catalog.endpoint_supported_parameters(model, ep)))

    if not candidates:
        if not served_any:
            raise availability_error(
                "no_endpoints",
                f"No endpoints found for {', '.join(ids)}: no configured provider serves it",
                ids,
            )
        raise availability_error(
            "constraint_filtered",
            "No endpoints found that match your request's routing constraints",
            ids,
            excluded_by=sorted(set(excluded)),
        )
    return candidates
