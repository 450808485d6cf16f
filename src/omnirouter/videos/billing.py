"""The charge for a completed video job, made by whichever worker saw it complete, long after the
request that submitted it: what `ModalityCall.settle` does at the end of a request, without one.

Exactly once: the caller charges only after its conditional UPDATE recorded the completion
(videos/jobs.py `complete`). The generation and the spend are journaled together, as chat's are."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from omnirouter.accounting import meter
from omnirouter.accounting.byok import fee_cost
from omnirouter.accounting.cost import Cost
from omnirouter.accounting.ledger import INSTANCE, ZERO, Reservation
from omnirouter.accounting.units import Units, priced
from omnirouter.catalog.types import Endpoint, Model, Provider
from omnirouter.governance import budgets
from omnirouter.pipeline.call import GENERATION_TEXT
from omnirouter.state import AppState
from omnirouter.store.fit import fit
from omnirouter.videos.jobs import Job


def scopes(st: AppState, key_hash: str) -> tuple[str, ...]:
    """The ledger scopes the job's key counts its spend under (its own and the instance's at least)."""
    key = st.keys.by_hash.get(key_hash)
    if key is None:  # deleted since: its spend still counts for the instance
        return ("key:" + key_hash, INSTANCE)
    return meter.scopes_of(key, budgets.for_key(st.governance, key))


def cost_of(st: AppState, job: Job, endpoint: Endpoint, units: Units) -> Cost:
    """At the endpoint's prices; a job on the workspace's own key costs the instance's BYOK fee."""
    cost = priced(endpoint.pricing, units)
    return fee_cost(cost, st.settings.byok_fee_percent) if job.byok_key_id is not None else cost


def charge_completed(
    st: AppState,
    job: Job,
    model: Model,
    provider: Provider,
    endpoint: Endpoint,
    units: Units,
    held: Reservation | None = None,
) -> Cost:
    """Charge the key for what the job made, at the endpoint's prices, and record its generation.
    `held`: the worst case this worker reserved when the job was submitted, replaced by the cost."""
    cost = cost_of(st, job, endpoint, units)
    reservation = held if held is not None else st.ledger.reserve(scopes(st, job.key_hash), ZERO)
    spend = st.ledger.settle(reservation, cost.total, byok_cost=cost.byok_usage)
    st.recorder.record(fit(_row(job, model, provider, endpoint, cost, error=None), GENERATION_TEXT), None, spend)
    return cost


def record_failed(st: AppState, job: Job, model: Model, provider: Provider, endpoint: Endpoint, message: str) -> None:
    """A failed job costs nothing; its generation says why it failed."""
    row = _row(job, model, provider, endpoint, Cost(total=ZERO), error={"code": 502, "message": message})
    st.recorder.record(fit(row, GENERATION_TEXT), None)


def _row(
    job: Job, model: Model, provider: Provider, endpoint: Endpoint, cost: Cost, error: dict[str, Any] | None
) -> dict[str, Any]:
    took = int((datetime.now(UTC) - job.created_at).total_seconds() * 1000)
    request = job.request
    return {
        "id": job.generation_id,
        "request_id": job.generation_id,
        "key_hash": job.key_hash,
        "session_id": None,
        "upstream_id": job.upstream_id,
        "model": model.id,
        "provider_name": provider.name,
        "provider_slug": endpoint.slug,
        "api_type": "video",
        "streamed": False,
        "cancelled": False,
        "finish_reason": "error" if error else "stop",
        "native_finish_reason": "failed" if error else "completed",
        "created_at": job.created_at,
        "latency_ms": took,
        "generation_time_ms": took,
        "tokens_prompt": 0,
        "tokens_completion": 0,
        "native_tokens_prompt": 0,
        "native_tokens_completion": 0,
        "native_tokens_reasoning": 0,
        "native_tokens_cached": 0,
        "native_tokens_cache_write": 0,
        "total_cost": cost.total,
        # What the provider bills the workspace's own key (only BYOK jobs have one, as chat's).
        "upstream_inference_cost": cost.byok_usage if cost.is_byok else None,
        "cache_discount": None,
        "is_byok": job.byok_key_id is not None,
        "http_referer": None,
        "app_title": None,
        "user_agent": None,
        "external_user": request.get("user") if isinstance(request.get("user"), str) else None,
        "provider_responses": None,
        "error": error,
        "throughput": None,
        "preset_id": None,
        "plugins": None,
        "guardrail_actions": None,
        "workspace_id": job.workspace_id,
    }
