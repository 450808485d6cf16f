"""`openrouter:web_search`: a search through the engine the operator configures (web/search.py).

Parameters as OpenRouter documents them: `max_results` (default 5), `allowed_domains` /
`excluded_domains`, `max_uses` (searches per request; past it the model is told the limit was hit),
`max_total_results` (results per request, default 50). `engine` names OpenRouter's hosted engines:
here the operator's engine always runs, whatever it says. Each search costs the engine's fee.
"""

from __future__ import annotations

from typing import Any

from omnirouter.errors import GatewayError
from omnirouter.jsonio import encode
from omnirouter.servertools.tools import Result, error

NAME = "web_search"
TYPE = "openrouter:web_search"
DEFAULT_RESULTS = 5
DEFAULT_TOTAL_RESULTS = 50


def check(params: dict[str, Any], settings: Any, where: str) -> None:
    for name in ("max_results", "max_uses", "max_total_results"):
        value = params.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise GatewayError(400, f"Invalid request: {where}.{name} must be a positive integer")
    for name in ("allowed_domains", "excluded_domains"):
        value = params.get(name)
        if value is not None and (not isinstance(value, list) or not all(isinstance(d, str) for d in value)):
            raise GatewayError(400, f"Invalid request: {where}.{name} must be an array of domains")
    if getattr(settings, "web_search", None) is None:
        raise GatewayError(400, "openrouter:web_search is not available: this gateway has no search engine configured")


def function(params: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": NAME,
        "description": "Search the web for current information. Returns results with their URL, title and content.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string", "description": "The search query"}},
            "required": ["query"],
        },
    }


async def run(settings: Any, tool: Any, args: dict[str, Any]) -> Result:
    from omnirouter.web.search import search

    params = tool.params
    query = args.get("query")
    item: dict[str, Any] = {"type": TYPE, "action": {"type": "search", "query": str(query or "")}}
    if not isinstance(query, str) or not query.strip():
        return error("web_search needs a `query` string", item)
    if (most := params.get("max_uses")) is not None and tool.uses >= most:
        return error(f"The web search limit of this request ({most} searches) was reached", item)
    given = tool.state.get("results", 0)
    left = int(params.get("max_total_results") or DEFAULT_TOTAL_RESULTS) - given
    if left <= 0:
        return error("The limit of search results for this request was reached", item)
    try:
        outcome = await search(
            settings,
            query,
            max_results=min(int(params.get("max_results") or DEFAULT_RESULTS), left),
            include_domains=params.get("allowed_domains"),
            exclude_domains=params.get("excluded_domains"),
        )
    except GatewayError as err:
        return error(err.message, item)
    tool.state["results"] = given + len(outcome.results)
    results = [{"url": r.url, "title": r.title, "content": r.content} for r in outcome.results]
    item["action"]["sources"] = [{"type": "url", "url": r["url"]} for r in results]
    item["status"] = "completed"
    item["results"] = results  # for the Messages answer's web_search_tool_result (not in the Responses item)
    return Result(
        encode({"query": query, "results": results}).decode(),
        item,
        fee=outcome.fee,
        counted="search",
        details={"web_search_engine": outcome.engine, "num_search_results": len(results)},
    )
