"""The per-worker state every handler reaches through ``state(request)``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

    from redis.asyncio import Redis
    from starlette.requests import Request

    from omnirouter.accounting.ledger import Ledger
    from omnirouter.accounting.ratelimit import RateLimits
    from omnirouter.api.health import Readiness
    from omnirouter.catalog.catalog import Catalog
    from omnirouter.cluster.budgets import Leases
    from omnirouter.governance.keys import KeyStore
    from omnirouter.governance.registry import Governance
    from omnirouter.observability.metrics import Metrics
    from omnirouter.pipeline.stream import KeepAlive
    from omnirouter.providers.http1 import Pool
    from omnirouter.routing.engine import Routing
    from omnirouter.settings import Settings
    from omnirouter.store.db import Database
    from omnirouter.store.writer import Recorder


@dataclass
class AppState:
    settings: Settings
    catalog: Catalog
    db: Database
    keys: KeyStore
    ledger: Ledger
    recorder: Recorder
    routing: Routing = None  # type: ignore[assignment]  # set when the worker starts (needs the upstream pool)
    http: Pool | None = None
    keepalive: KeepAlive = None  # type: ignore[assignment]  # set when the worker starts
    drains: set[asyncio.Task[Any]] = field(default_factory=set)  # billing reads of abandoned streams
    redis: Redis | None = None  # with redis_url: what instances share (cluster/)
    leases: Leases | None = None  # this worker's share of the budgets it enforces (cluster/budgets.py)
    rate_limits: RateLimits = None  # type: ignore[assignment]  # keys' rpm_limit/tpm_limit; set by build_state
    governance: Governance = None  # type: ignore[assignment]  # the recorder's snapshots (governance/registry.py)
    readiness: Readiness | None = None  # set when the worker starts: /health/ready and the stop on SIGTERM
    metrics: Metrics | None = None  # GET /metrics (observability/metrics.py); None with metrics: off
    deliverer: Any = None  # observability/deliverer.py: this worker's delivery to observability destinations
    response_cache: Any = None  # cache/__init__.py ResponseCache, made by the first request that asks for it


def state(request: Request) -> AppState:
    return request.app.state.omni
