"""Tavily: POST {base}/search {query, max_results, include_domains, exclude_domains}, bearer key."""

from __future__ import annotations

from typing import Any

import aiohttp

from omnirouter.web.engines import EngineError, Query, answer, items

BASE_URL = "https://api.tavily.com"
KEY_ENV = "TAVILY_API_KEY"


async def run(http: aiohttp.ClientSession, base_url: str, key: str | None, q: Query) -> list[dict[str, Any]]:
    body: dict[str, Any] = {"query": q.text, "max_results": q.count, "search_depth": "basic"}
    if q.include:
        body["include_domains"] = q.include
    if q.exclude:
        body["exclude_domains"] = q.exclude
    async with http.post(f"{base_url}/search", json=body, headers={"Authorization": f"Bearer {key}"}) as r:
        data = await answer(r)
    if not isinstance(data, dict):
        raise EngineError("answered without a list of results")
    return [
        {
            "url": i.get("url"),
            "title": i.get("title"),
            "content": i.get("content"),
            "published": i.get("published_date"),
        }
        for i in items(data.get("results"))
    ]
