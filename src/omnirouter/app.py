"""Builds the ASGI app from settings: wiring only."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from omnirouter import dashboard, modalities, observability
from omnirouter.accounting.ledger import Ledger
from omnirouter.accounting.ratelimit import RateLimits
from omnirouter.api import analytics as analytics_api
from omnirouter.api import (
    byok,
    consent,
    count_tokens,
    credits,
    generation,
    health,
    keys,
    models,
    oauth,
    openapi,
    unavailable,
)
from omnirouter.api import datasets as datasets_api
from omnirouter.api import guardrails as guardrails_api
from omnirouter.api import observability as observability_api
from omnirouter.api import presets as presets_api
from omnirouter.api import workspaces as workspaces_api
from omnirouter.api.errors import MASKED_500_MESSAGE, ApiError, error_response
from omnirouter.api.jsonio import JSONResponse
from omnirouter.catalog.catalog import Catalog
from omnirouter.catalog.loader import load_catalog
from omnirouter.cluster import redis as cluster_redis
from omnirouter.cluster.budgets import Leases
from omnirouter.cluster.changes import Changes
from omnirouter.cluster.health import SharedHealth
from omnirouter.cluster.routing_link import RoutingLink
from omnirouter.cluster.stats import SharedStats
from omnirouter.cluster.sticky import SharedSticky
from omnirouter.formats.anthropic_messages import MESSAGES
from omnirouter.formats.openai_chat import CHAT
from omnirouter.formats.openai_responses import RESPONSES
from omnirouter.formats.text_completions import COMPLETIONS
from omnirouter.governance import byok_crypto
from omnirouter.governance.bootstrap import ensure_management_key
from omnirouter.governance.keys import KeyStore
from omnirouter.observability import logs, scrape
from omnirouter.observability import watch as observing
from omnirouter.observability.deliverer import Deliverer
from omnirouter.pipeline.endpoint import InferenceEndpoint
from omnirouter.pipeline.modality import ModalityEndpoint
from omnirouter.pipeline.stream import KeepAlive
from omnirouter.plugins.fusion import FusionRouter
from omnirouter.providers import build_adapters
from omnirouter.providers.base import Adapter
from omnirouter.providers.http1 import Pool
from omnirouter.routing.engine import Routing
from omnirouter.routing.health import Health
from omnirouter.routing.plan import Planner
from omnirouter.routing.routers import AutoRouter, FreeRouter, ParetoRouter
from omnirouter.routing.stats import EndpointStats
from omnirouter.routing.sticky import Sticky
from omnirouter.settings import Settings
from omnirouter.shutdown import Shutdown, cut_streams
from omnirouter.startup_errors import one_line_failure, quiet_lifespan_send
from omnirouter.state import AppState
from omnirouter.store.db import Database
from omnirouter.store.writer import Recorder

log = logging.getLogger("omnirouter")


# The inference operations: each is the one pipeline speaking one client format (formats/).
INFERENCE: dict[str, InferenceEndpoint] = {
    "/chat/completions": InferenceEndpoint(CHAT),
    "/completions": InferenceEndpoint(COMPLETIONS),
    "/messages": InferenceEndpoint(MESSAGES),
    "/responses": InferenceEndpoint(RESPONSES),
}
GC_THRESHOLDS = (20_000, 20, 50)
API_ROOTS = ("/api/v1", "/v1")


def api_routes() -> list[Any]:
    return [
        *(Route(path, endpoint, methods=["POST"]) for path, endpoint in INFERENCE.items()),
        *models.routes,
        *keys.routes,
        *credits.routes,
        *count_tokens.routes,
        *generation.routes,
        *analytics_api.routes,
        *datasets_api.routes,
        *presets_api.routes,
        *guardrails_api.routes,
        *workspaces_api.routes,
        *oauth.routes,
        *byok.routes,
        *observability_api.routes,
        *(route for module in modalities.modules() for route in module.routes),
        *openapi.routes,
        *health.routes,
        *scrape.routes,
    ]


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    message = {404: "Not Found", 405: "Method Not Allowed"}.get(exc.status_code, exc.detail)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return error_response(ApiError(exc.status_code, message, headers=headers or None))


def _allowed_methods(request: Request) -> str:
    """Every method served at the request's path: Starlette's own 405 names only the methods of the
    first route whose path matched, and /keys, /keys/{hash} are several routes."""
    path, root = request.scope["path"], request.scope.get("app_root_path", "")
    path = path.removeprefix(root) if root else path
    methods: set[str] = set()
    for mount in request.app.routes:
        if isinstance(mount, Mount) and (match := mount.path_regex.match(path)):
            sub = "/" + match["path"]
            methods |= {m for r in mount.routes if isinstance(r, Route) and r.path_regex.match(sub) for m in r.methods}
    return ", ".join(sorted(methods))


async def _client_gone(request: Request, exc: Exception) -> JSONResponse:
    """The client left, or was cut off for stalling, before its body came: nothing to log, and the
    answer reaches no one."""
    return error_response(ApiError(408, "Request Timeout"))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(ApiError(500, MASKED_500_MESSAGE))


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """503 while the database is unreachable (one log line per outage), else a 500 as any other."""
    if (err := unavailable.answer(request.app.state.omni, exc)) is not None:
        return error_response(err)
    return await _unexpected(request, exc)


async def build_state(settings: Settings) -> AppState:
    cluster_redis.check(settings.redis_url, settings.db_url)
    db = Database(settings.db_url)
    await db.migrate()
    catalog = load_catalog(
        config=settings.catalog_config(),
        env=os.environ,
        sandbox=settings.sandbox,
        data_dir=settings.data_dir,
        config_source=settings.config or "config file",
    )
    byok_crypto.bind(db, byok_crypto.keyring_of(settings))  # before the first load of BYOK keys
    ledger, key_store = Ledger(), KeyStore()
    key_store.unknown.ttl = settings.sync_interval  # by then a key made on another worker is synced
    recorder = Recorder(
        db,
        ledger,
        key_store,
        flush_interval=settings.flush_interval,
        sync_interval=settings.sync_interval,
        journal_dir=settings.data_dir if settings.journal else None,
        derived=observability.derived(),
    )
    st = AppState(
        settings=settings,
        catalog=catalog,
        db=db,
        keys=key_store,
        ledger=ledger,
        recorder=recorder,
        redis=cluster_redis.connect(settings.redis_url) if settings.redis_url else None,
        governance=recorder.governance,
    )
    st.rate_limits = RateLimits(db, st.redis, settings.rate_limit_window_seconds)
    st.leases = recorder.leases = Leases(ledger, db, st.redis)
    return st


def build_routing(settings: Settings, catalog: Catalog, adapters: dict[str, Adapter], shared: bool = False) -> Routing:
    """`shared`: with Redis, the circuits, statistics and sticky sessions every instance shares
    (cluster/routing_link.py keeps them in step); the request path works on them alike."""
    if shared:
        health, stats, sticky = SharedHealth(), SharedStats(), SharedSticky()
    else:
        health, stats, sticky = Health(), EndpointStats(), Sticky()
    routers = {
        "openrouter/auto": AutoRouter(catalog, settings.auto_router_models),
        "openrouter/free": FreeRouter(catalog),
        "openrouter/pareto-code": ParetoRouter(catalog),
        "openrouter/fusion": FusionRouter(catalog),
    }
    planner = Planner(catalog, health, stats, default_model=settings.default_model, routers=routers)
    return Routing(planner=planner, health=health, stats=stats, sticky=sticky, adapters=adapters)


def create_app(settings: Settings | None = None) -> Gateway:
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        st = await one_line_failure(build_state(settings), settings)
        changes = Changes.attach(st.db, st.redis)  # what this worker changes, the others hear of at once
        minted = await ensure_management_key(
            st.db, settings.management_key.get_secret_value() if settings.management_key else None
        )
        if minted:  # started without the CLI (which mints it first): show it once, on the terminal, not in logs
            print(f"Created a management key (shown only this once; store it now): {minted}", file=sys.stderr)
        st.http = Pool()
        st.routing = build_routing(settings, st.catalog, build_adapters(st.http), shared=st.redis is not None)
        link = None
        if st.redis is not None:  # circuits, endpoint statistics and sticky sessions shared with the others
            link = RoutingLink(st.redis, st.routing, stats_interval=settings.cluster_stats_interval)
            await link.start()
        st.keepalive = KeepAlive(settings.stream_keepalive_seconds)
        stop_observing = observing.start(st)  # metrics and traces of each round's generations
        shutdown = Shutdown(settings.shutdown_timeout)
        st.readiness = health.Readiness(shutdown, st.db, st.redis)
        shutdown.install(lambda: cut_streams(st.keepalive, settings.shutdown_timeout))
        await st.recorder.start()
        # Background work of the operations beyond chat (video jobs' polls), closed before the recorder.
        closers = [await module.start(st) for module in modalities.modules() if hasattr(module, "start")]
        st.deliverer = Deliverer(st.db, settings)  # observability destinations' events, off the request path
        await st.deliverer.start()
        changes.follow(lambda force: st.recorder.sync(force=force))  # and what they change, this one
        app.state.omni = st
        # Everything built so far (catalog, routes, SQLAlchemy's compiled statements, modules) lives as
        # long as the worker: keep it out of the collector's sweeps, which otherwise rescan it over and
        # over as requests allocate, and collect the young generation less often.
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        try:
            yield
        finally:
            shutdown.close()
            if st.drains:  # cancelled streams still reading a non-abortable upstream to bill it in full
                # Stopping on a signal: until shutdown_timeout; then each bills what it read.
                bound = shutdown.remaining() if shutdown.draining else settings.upstream_total_timeout
                await asyncio.wait(st.drains, timeout=bound)
                for task in list(st.drains):
                    task.cancel()
                await asyncio.gather(*st.drains, return_exceptions=True)
            await changes.close()
            for close in closers:
                await close()
            await st.deliverer.close()
            await st.rate_limits.close()
            if link is not None:
                await link.close()
            await st.recorder.close()
            stop_observing()  # after the last round: its generations are counted and traced too
            st.http.close()
            await st.db.close()
            if st.redis is not None:
                await st.redis.aclose()

    routes = api_routes()
    starlette = Starlette(
        # The probes also at the root, where orchestrators usually look for them, and the metrics
        # where scrapers do.
        routes=[
            *health.routes,
            *scrape.routes,
            *consent.routes,
            *(Mount(root, routes=routes) for root in API_ROOTS),
            *(dashboard.routes() if settings.dashboard else []),  # the web UI at / (docs/dashboard.md)
        ],
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            ClientDisconnect: _client_gone,
            **dict.fromkeys(unavailable.DATABASE_ERRORS, _database_error),
            Exception: _unexpected,
        },
        lifespan=lifespan,
    )
    # The operations beyond chat (pipeline/modality.py) skip Starlette's router too: it costs an
    # embeddings request a fifth of its CPU.
    posts = {**INFERENCE, **{r.path: r.endpoint for r in routes if isinstance(r, Route) and _modality_post(r)}}
    return Gateway(starlette, {root + path: endpoint for root in API_ROOTS for path, endpoint in posts.items()})


def _modality_post(route: Route) -> bool:
    return isinstance(route.endpoint, ModalityEndpoint) and route.methods == {"POST"} and "{" not in route.path


class Gateway:
    """The ASGI app: the inference paths go straight to their handlers, everything else through
    Starlette's router and middleware (which cost more than the rest of a request's work)."""

    def __init__(self, starlette: Starlette, fast: dict[str, ASGIApp]) -> None:
        self.starlette = starlette
        self.fast = fast

    @property
    def state(self) -> Any:
        return self.starlette.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and (handler := self.fast.get(scope["path"])):
            scope["app"] = self.starlette  # handlers reach the app's state as they do under Starlette
            await handler(scope, receive, send)
            return
        if scope["type"] == "lifespan":  # a failure to start in one line, not Starlette's traceback
            send = quiet_lifespan_send(send)
        elif scope["type"] == "http":  # the inference handlers above name their requests themselves
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k == logs.HEADER}
            send = logs.with_request_id(send, logs.request_id(headers, logs.new_request_id()))
        await self.starlette(scope, receive, send)
