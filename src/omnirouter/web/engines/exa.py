"""Exa: POST {base}/search {query, numResults, includeDomains, excludeDomains, contents}, key in x-api-key.
Asks for highlights (the passages that answer the query) and a capped text, the snippet preferring them."""

from __future__ import annotations

from typing import Any

import aiohttp

from omnirouter.web.engines import EngineError, Query, answer, items

BASE_URL = "https://api.exa.ai"
KEY_ENV = "EXA_API_KEY"
TEXT_CHARS = 2000


async def run(http: aiohttp.ClientSession, base_url: str, key: str | None, q: Query) -> list[dict[str, Any]]:
    body: dict[str, Any] = {
        "query": q.text,
        "numResults": q.count,
        "contents": {"text": {"maxCharacters": TEXT_CHARS}, "highlights": True},
    }
    if q.include:
        body["includeDomains"] = q.include
    if q.exclude:
        body["excludeDomains"] = q.exclude
    async with http.post(f"{base_url}/search", json=body, headers={"x-api-key": key or ""}) as r:
        data = await answer(r)
    if not isinstance(data, dict):
        raise EngineError("answered without a list of results")
    out = []
    for i in items(data.get("results")):
        highlights = i.get("highlights")
        snippet = " ... ".join(h for h in highlights if isinstance(h, str)) if isinstance(highlights, list) else ""
        out.append({"url": i.get("url"), "title": i.get("title"), "content": snippet or i.get("text") or "",
                    "published": i.get("publishedDate")})  # fmt: skip
    return out
