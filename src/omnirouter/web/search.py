"""Web search through the engine the operator configures (`web_search` in the settings): SearXNG's
JSON API by default, or Brave, Tavily, Exa, Firecrawl or Perplexity's search APIs (web/engines/).

Callers (the `web` plugin, the openrouter:web_search server tool) get the results in one shape and
what the search costs; a failure is a GatewayError that names the engine, never its key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp

from omnirouter.errors import GatewayError
from omnirouter.web import domains
from omnirouter.web.engines import ENGINES, EngineError, Query

__all__ = ["SearchOutcome", "SearchResult", "configured", "search"]

MAX_RESULTS = 20  # what one search may ask of an engine (Brave's and Exa's page size caps)


@dataclass(frozen=True)
class SearchResult:
    url: str
    title: str
    content: str  # the snippet, or the page's text where the engine returns it
    published: str | None = None


@dataclass(frozen=True)
class SearchOutcome:
    engine: str  # the engine that ran ("searxng", "brave", ...)
    results: list[SearchResult] = field(default_factory=list)
    fee: Decimal = Decimal(0)  # what this search costs (web_search.price_per_search)


def _failed(engine: str, what: str) -> GatewayError:
    return GatewayError(502, f"Web search failed: the {engine} engine {what}")


def configured(settings: Any) -> Any | None:
    """The `web_search` settings, or None when the operator configured no engine."""
    return getattr(settings, "web_search", None)


async def search(
    settings: Any,
    query: str,
    *,
    max_results: int = 5,
    include_domains: list[str] | None = None,
    exclude_domains: list[str] | None = None,
) -> SearchOutcome:
    """Search the configured engine; the results pass the domain filters, at most `max_results`."""
    cfg = configured(settings)
    if cfg is None:
        raise GatewayError(503, "Web search is not available: no search engine is configured (web_search)")
    engine = ENGINES[cfg.engine]
    key = None
    if (env := cfg.api_key_env or engine.KEY_ENV) is not None:
        key = os.environ.get(env) or None
        if key is None and engine.KEY_ENV is not None:
            raise GatewayError(503, f"Web search is not available: the {cfg.engine} API key ({env}) is not set")
    limit = max(1, min(int(max_results), MAX_RESULTS))
    filtered = bool(include_domains or exclude_domains)
    inc, exc = domains.engine_domains(include_domains, exclude_domains)
    q = Query(
        text=query,
        # Some results may be filtered out afterwards: ask for more than will be kept.
        count=min(limit * 2, MAX_RESULTS) if filtered else limit,
        include=inc,
        exclude=exc,
    )
    base_url = (cfg.base_url or engine.BASE_URL).rstrip("/")
    timeout = aiohttp.ClientTimeout(total=cfg.timeout)
    try:
        async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as http:
            raw = await engine.run(http, base_url, key, q)
    except EngineError as err:
        raise _failed(cfg.engine, str(err)) from None
    except TimeoutError:
        raise _failed(cfg.engine, f"did not answer in {cfg.timeout:g} s") from None
    except aiohttp.ClientError as err:
        raise _failed(cfg.engine, f"is unreachable ({type(err).__name__})") from None
    results: list[SearchResult] = []
    seen: set[str] = set()
    for r in raw:
        url = r.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")) or url in seen:
            continue
        if filtered and not domains.allowed(url, include_domains, exclude_domains):
            continue
        seen.add(url)
        results.append(
            SearchResult(
                url=url,
                title=str(r.get("title") or url),
                content=str(r.get("content") or ""),
                published=str(r["published"]) if r.get("published") else None,
            )
        )
        if len(results) == limit:
            break
    return SearchOutcome(cfg.engine, results, cfg.price_per_search)
