"""SearXNG's JSON API: GET {base}/search?q=...&format=json (the instance must allow the json format in
its settings.yml `search.formats`). No key; one configured (api_key_env) is sent as a bearer, for an
instance behind an authenticating proxy."""

from __future__ import annotations

from typing import Any

import aiohttp

from omnirouter.web.engines import EngineError, Query, answer, items

BASE_URL = None
KEY_ENV = None


async def run(http: aiohttp.ClientSession, base_url: str, key: str | None, q: Query) -> list[dict[str, Any]]:
    headers = {"Accept": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    async with http.get(f"{base_url}/search", params={"q": q.text, "format": "json"}, headers=headers) as r:
        if r.status == 403:  # what SearXNG answers when the json format is not enabled
            raise EngineError("refused the JSON format (HTTP 403): enable `json` in its search.formats")
        data = await answer(r)
    if not isinstance(data, dict):
        raise EngineError("answered without a list of results")
    return [
        {"url": i.get("url"), "title": i.get("title"), "content": i.get("content"), "published": i.get("publishedDate")}
        for i in items(data.get("results"))
    ][: q.count]
