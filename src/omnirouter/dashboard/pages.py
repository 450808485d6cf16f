"""The dashboard's pages (GET): usage, generations, keys, providers, models, credits, playground."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from omnirouter.accounting.ledger import INSTANCE
from omnirouter.api.generation import generation_object
from omnirouter.api.jsonio import decode
from omnirouter.catalog.catalog import Catalog
from omnirouter.dashboard import charts, queries, usage
from omnirouter.dashboard.web import Viewer, page, render
from omnirouter.governance import key_service as ks
from omnirouter.routing.stats import LISTING_WINDOW
from omnirouter.state import state
from omnirouter.store import repo

RANGES = (7, 30, 90)
UPTIME_WINDOWS = (("5m", 300), ("30m", 1800), ("1d", 86400))


def key_names(request: Request) -> dict[str, str]:
    return {h: f"{k.name} ({k.label})" for h, k in state(request).keys.by_hash.items()}


@page
async def overview(request: Request, viewer: Viewer) -> Response:
    """Usage and spend over time, by model, provider or key."""
    st = state(request)
    days = int(d) if (d := request.query_params.get("days", "30")).isdigit() and int(d) in RANGES else 30
    by = request.query_params.get("by", "model")
    if by not in ("model", "provider", "key") or (by == "key" and not viewer.is_management):
        by = "model"
    last = datetime.now(UTC).date()
    first = last - timedelta(days=days - 1)
    rows, source = await usage.by_day(st, by, first, viewer.own_key)
    names = key_names(request) if by == "key" else {}
    spend: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
    requests: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
    totals: dict[str, list[Any]] = defaultdict(lambda: [Decimal(0), 0, 0])
    for day, value, cost, count, tokens in rows:
        name = names.get(value or "", value) if by == "key" else value
        name = name or "(none)"
        spend[(day, name)] += cost
        requests[(day, name)] += count
        total = totals[name]
        total[0] += cost
        total[1] += count
        total[2] += tokens
    table = sorted(totals.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))
    return render(
        request,
        "overview.html",
        viewer,
        days=days,
        ranges=RANGES,
        by=by,
        source=source,
        spend_chart=charts.stacked_bars(spend, first, last, f"Spend per day by {by}"),
        requests_chart=charts.stacked_bars(requests, first, last, f"Requests per day by {by}", unit="n"),
        table=table,
        total_spend=sum((t[0] for _, t in table), Decimal(0)),
        total_requests=sum(t[1] for _, t in table),
        total_tokens=sum(t[2] for _, t in table),
    )


@page
async def generations(request: Request, viewer: Viewer) -> Response:
    st = state(request)
    filters = queries.Filters.parse(request.query_params)
    rows, more = await queries.generation_page(st.db, filters, viewer.own_key)
    query = {k: v for k, v in request.query_params.items() if k != "page" and v}
    keys = []
    if viewer.is_management:
        names = key_names(request)
        keys = sorted(((h, n) for h, n in names.items() if not st.keys.by_hash[h].is_management), key=lambda kv: kv[1])

    def page_link(n: int) -> str:
        return "/generations?" + urlencode({**query, "page": n})

    return render(
        request,
        "generations.html",
        viewer,
        rows=rows,
        filters=filters,
        choices=await queries.choices(st.db, viewer.own_key),
        keys=keys,
        names=key_names(request),
        statuses=queries.STATUSES,
        newer=page_link(filters.page - 1) if filters.page > 0 else None,
        older=page_link(filters.page + 1) if more else None,
    )


@page
async def generation(request: Request, viewer: Viewer) -> Response:
    st = state(request)
    gen_id = request.path_params["id"]
    row = st.recorder.unflushed.get(gen_id)
    if row is None and "\x00" not in gen_id:
        async with st.db.engine.connect() as conn:
            row = await repo.get_generation(conn, gen_id)
    if row is None or (viewer.own_key is not None and row["key_hash"] != viewer.own_key):
        return render(request, "error.html", viewer, status=404, message=f"Generation {gen_id} not found")
    content = None
    if st.settings.log_prompts:
        content = st.recorder.unflushed_content.get(gen_id)
        if content is None:
            async with st.db.engine.connect() as conn:
                content = await repo.get_generation_content(conn, gen_id)
    return render(
        request,
        "generation.html",
        viewer,
        g=generation_object(row),
        outcome=queries.status_of(row),
        key_name=key_names(request).get(row["key_hash"], row["key_hash"][:12]),
        key_hash=row["key_hash"],
        breakdown=cost_breakdown(st.catalog, row),
        content=readable_content(content) if content else None,
        log_prompts=st.settings.log_prompts,
        error=row["error"],
    )


def readable_content(stored: dict[str, Any]) -> dict[str, Any]:
    """The logged prompt (messages, or a prompt string) and output, for the detail page."""
    prompt = decode(stored["prompt"])
    output = decode(stored["completion"]) if stored.get("completion") else None
    messages = prompt if isinstance(prompt, list) else [{"role": "prompt", "content": prompt}]
    if isinstance(output, dict):
        output = output.get("content")
    elif isinstance(output, list):
        output = "".join(str((m or {}).get("content") or "") for m in output if isinstance(m, dict))
    return {"messages": [_message(m) for m in messages], "completion": output}


def _message(m: Any) -> tuple[str, str]:
    if not isinstance(m, dict):
        return "", str(m)
    content = m.get("content")
    if isinstance(content, list):  # parts: their text, and a note of anything else
        content = "\n".join(p.get("text") or f"[{p.get('type', 'part')}]" for p in content if isinstance(p, dict))
    return str(m.get("role", "")), "" if content is None else str(content)


def cost_breakdown(catalog: Catalog, row: dict[str, Any]) -> list[tuple[str, int | None, Decimal | None, Decimal]]:
    """(item, units, unit price, amount) at the catalog's current prices for the endpoint that answered."""
    model = catalog.model(row["model"])
    endpoint = None
    if model is not None:
        endpoint = next((ep for ep in model.endpoints if ep.slug == row["provider_slug"]), None)
        endpoint = endpoint or next((ep for ep in model.endpoints if ep.provider == row["provider_slug"]), None)
    if endpoint is None:
        return []
    p = endpoint.pricing
    cached = row["native_tokens_cached"] or 0
    reasoning = row["native_tokens_reasoning"] or 0
    lines: list[tuple[str, int | None, Decimal | None, Decimal]] = []
    prompt_price_tokens = row["tokens_prompt"] - (cached if p.input_cache_read is not None else 0)
    lines.append(("Prompt tokens", prompt_price_tokens, p.prompt, p.prompt * prompt_price_tokens))
    if cached and p.input_cache_read is not None:
        lines.append(("Cached prompt tokens", cached, p.input_cache_read, p.input_cache_read * cached))
    if reasoning and p.internal_reasoning:
        completion = row["tokens_completion"] - reasoning
        lines.append(("Completion tokens", completion, p.completion, p.completion * completion))
        lines.append(("Reasoning tokens", reasoning, p.internal_reasoning, p.internal_reasoning * reasoning))
    else:
        lines.append(
            ("Completion tokens", row["tokens_completion"], p.completion, p.completion * row["tokens_completion"])
        )
    if p.request:
        lines.append(("Per-request fee", 1, p.request, p.request))
    return lines


@page
async def keys(request: Request, viewer: Viewer) -> Response:
    return await keys_page(request, viewer)


async def keys_page(
    request: Request, viewer: Viewer, *, status: int = 200, new_secret: str | None = None, **context: Any
) -> Response:
    st = state(request)
    if viewer.is_management:
        listed = [k for k in st.keys.by_hash.values() if not k.is_management]
        listed.sort(key=lambda k: (k.disabled, k.name.lower(), k.created_at), reverse=False)
    else:
        listed = [viewer.key]
    rows = [ks.key_object(st.ledger, k, st.keys) for k in listed]
    resets = ("", "daily", "weekly", "monthly")
    return render(
        request, "keys.html", viewer, status=status, keys=rows, new_secret=new_secret, resets=resets, **context
    )


@page
async def providers(request: Request, viewer: Viewer) -> Response:
    st = state(request)
    routing = st.routing
    by_provider: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for model in st.catalog.models.values():
        for ep in model.endpoints:
            key = (model.id, ep.slug)
            latency = routing.stats.latency(key, LISTING_WINDOW)
            throughput = routing.stats.throughput(key, LISTING_WINDOW)
            by_provider[ep.provider].append(
                {
                    "model": model.id,
                    "slug": ep.slug,
                    "upstream_model": ep.upstream_model,
                    "circuit": routing.health.state(key),
                    "uptime": {name: routing.stats.uptime(key, w) for name, w in UPTIME_WINDOWS},
                    "latency": latency,
                    "throughput": throughput,
                }
            )
    rows = [
        {"provider": p, "endpoints": by_provider.get(slug, [])}
        for slug, p in sorted(st.catalog.providers.items(), key=lambda kv: (not kv[1].enabled, kv[1].name.lower()))
    ]
    return render(request, "providers.html", viewer, providers=rows)


@page
async def models(request: Request, viewer: Viewer) -> Response:
    st = state(request)
    shown = sorted(st.catalog.live_models(), key=lambda m: m.id)
    rows = []
    for m in shown:
        endpoints = st.catalog.live_endpoints(m)
        rows.append((m, endpoints, [st.catalog.provider(ep.provider) for ep in endpoints]))
    return render(request, "models.html", viewer, models=rows)


@page
async def credits(request: Request, viewer: Viewer) -> Response:
    st = state(request)
    ledger = st.ledger
    if viewer.is_management:
        used = ledger.spent(INSTANCE, "total")[0]
        return render(
            request,
            "credits.html",
            viewer,
            funded=ledger.credits,
            used=used,
            remaining=None if ledger.credits is None else ledger.credits - used,
            grants=await queries.credit_history(st.db),
            windows=ledger.all_windows(INSTANCE),
        )
    return render(request, "credits.html", viewer, key=ks.key_object(st.ledger, viewer.key, st.keys))


@page
async def playground(request: Request, viewer: Viewer) -> Response:
    return playground_page(request, viewer)


def playground_page(request: Request, viewer: Viewer, *, status: int = 200, new_secret: str | None = None) -> Response:
    st = state(request)
    shown = sorted((m.id for m in st.catalog.live_models()), key=str.lower)
    chosen = request.query_params.get("model") or st.settings.default_model or (shown[0] if shown else "")
    return render(request, "playground.html", viewer, status=status, models=shown, chosen=chosen, new_secret=new_secret)
