"""Brave Search API: GET {base}/res/v1/web/search?q=...&count=N with the key in X-Subscription-Token."""

from __future__ import annotations

from typing import Any

import aiohttp

from omnirouter.web.engines import EngineError, Query, answer, items

BASE_URL = "https://api.search.brave.com"
KEY_ENV = "BRAVE_API_KEY"


async def run(http: aiohttp.ClientSession, base_url: str, key: str | None, q: Query) -> list[dict[str, Any]]:
    headers = {"Accept": "application/json", "X-Subscription-Token": key or ""}
    params = {"q": q.text, "count": str(q.count)}
    async with http.get(f"{base_url}/res/v1/web/search", params=params, headers=headers) as r:
        data = await answer(r)
    if not isinstance(data, dict):
        raise EngineError("answered without a list of results")
    web = data.get("web") or {}  # no "web" section: nothing found
    return [
        {"url": i.get("url"), "title": i.get("title"), "content": i.get("description"), "published": i.get("page_age")}
        for i in items(web.get("results") if isinstance(web, dict) else None)
    ]
