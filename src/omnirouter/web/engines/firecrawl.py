"""Firecrawl: POST {base}/v1/search {query, limit}, bearer key; answers {success, data: [{url, title,
description}]} (v2 nests the list as data.web: both are read)."""

from __future__ import annotations

from typing import Any

import aiohttp

from omnirouter.web.engines import EngineError, Query, answer, items

BASE_URL = "https://api.firecrawl.dev"
KEY_ENV = "FIRECRAWL_API_KEY"


async def run(http: aiohttp.ClientSession, base_url: str, key: str | None, q: Query) -> list[dict[str, Any]]:
    body = {"query": q.text, "limit": q.count}
    async with http.post(f"{base_url}/v1/search", json=body, headers={"Authorization": f"Bearer {key}"}) as r:
        data = await answer(r)
    if not isinstance(data, dict) or data.get("success") is False:
        raise EngineError("answered that the search failed")
    found = data.get("data")
    if isinstance(found, dict):
        found = found.get("web")
    return [
        {"url": i.get("url"), "title": i.get("title"), "content": i.get("description") or i.get("markdown")}
        for i in items(found)
    ]
