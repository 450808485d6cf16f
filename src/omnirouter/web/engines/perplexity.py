"""Perplexity's Search API: POST {base}/search {query, max_results, search_domain_filter}, bearer key;
answers {results: [{title, url, snippet, date}]}. (Its raw results, not a sonar chat answer: the model
asked for writes the answer, as with the other engines.)"""

from __future__ import annotations

from typing import Any

import aiohttp

from omnirouter.web.engines import EngineError, Query, answer, items

BASE_URL = "https://api.perplexity.ai"
KEY_ENV = "PERPLEXITY_API_KEY"
MAX_DOMAINS = 20  # the API's limit on search_domain_filter


async def run(http: aiohttp.ClientSession, base_url: str, key: str | None, q: Query) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"query": q.text, "max_results": q.count}
    # One list: domains to keep, or "-domain" to drop (the API takes either kind, not both at once).
    domain_filter = q.include or [f"-{d}" for d in q.exclude]
    if domain_filter and len(domain_filter) <= MAX_DOMAINS:
        body["search_domain_filter"] = domain_filter
    async with http.post(f"{base_url}/search", json=body, headers={"Authorization": f"Bearer {key}"}) as r:
        data = await answer(r)
    if not isinstance(data, dict):
        raise EngineError("answered without a list of results")
    return [
        {"url": i.get("url"), "title": i.get("title"), "content": i.get("snippet"), "published": i.get("date")}
        for i in items(data.get("results"))
    ]
