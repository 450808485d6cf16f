"""`openrouter:web_fetch`: fetch a page and extract its text (web/fetch.py, with its server-side
request forgery rules). Parameters as OpenRouter documents them: `allowed_domains`,
`blocked_domains`, `max_content_tokens`, `max_uses`; at most 50 fetches per request, as OpenRouter's
own fetcher. Each page fetched costs `web_fetch_price` (0 by default, as OpenRouter's own fetcher is
free), the same fee as the web-fetch plugin's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from omnirouter.accounting.cost import ZERO
from omnirouter.errors import GatewayError
from omnirouter.jsonio import encode
from omnirouter.servertools.tools import Result, error

NAME = "web_fetch"
TYPE = "openrouter:web_fetch"
HARD_LIMIT = 50


def check(params: dict[str, Any], settings: Any, where: str) -> None:
    for name in ("max_uses", "max_content_tokens"):
        value = params.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise GatewayError(400, f"Invalid request: {where}.{name} must be a positive integer")
    for name in ("allowed_domains", "blocked_domains"):
        value = params.get(name)
        if value is not None and (not isinstance(value, list) or not all(isinstance(d, str) for d in value)):
            raise GatewayError(400, f"Invalid request: {where}.{name} must be an array of domains")


def function(params: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": NAME,
        "description": "Fetch a web page or document by its URL and return its text content.",
        "parameters": {
            "type": "object",
            "properties": {"url": {"type": "string", "description": "The http or https URL to fetch"}},
            "required": ["url"],
        },
    }


async def run(settings: Any, tool: Any, args: dict[str, Any]) -> Result:
    from omnirouter.web.fetch import fetch_page

    params = tool.params
    url = args.get("url")
    item: dict[str, Any] = {"type": TYPE, "url": str(url or "")}
    if not isinstance(url, str) or not url.strip():
        return error("web_fetch needs a `url` string", item)
    most = min(int(params.get("max_uses") or HARD_LIMIT), HARD_LIMIT)
    if tool.uses >= most:
        return error(f"The web fetch limit of this request ({most} fetches) was reached", item)
    try:
        page = await fetch_page(
            settings,
            url,
            allowed_domains=params.get("allowed_domains"),
            blocked_domains=params.get("blocked_domains"),
            max_content_tokens=params.get("max_content_tokens"),
        )
    except GatewayError as err:
        return error(err.message, item)
    fetched = {
        "url": page.url,
        "title": page.title or "",
        "content": page.text,
        "status": "completed",
        "retrieved_at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    item.update(url=page.url, title=page.title or "", content=page.text, status="completed", httpStatus=200,
                content_type=page.content_type, retrieved_at=fetched["retrieved_at"])  # fmt: skip
    fee = getattr(settings, "web_fetch_price", None) or ZERO
    return Result(encode(fetched).decode(), item, fee=fee, counted="fetch", details={"num_fetches": 1})
