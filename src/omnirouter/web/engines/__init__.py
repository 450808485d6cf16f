"""One module per search engine API. Each has ``BASE_URL`` (its public API; None when there is none),
``KEY_ENV`` (the variable its key is read from by default; None when it needs no key) and
``async run(http, base_url, key, query) -> list[dict]`` giving results as
``{url, title, content, published?}``, raising EngineError for an answer that is not results."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import aiohttp


@dataclass(frozen=True)
class Query:
    text: str
    count: int
    include: list[str] = field(default_factory=list)  # bare domains the engine may filter by
    exclude: list[str] = field(default_factory=list)


class EngineError(Exception):
    """What went wrong, phrased to follow "the <engine> engine ..."; never carries the key."""


async def answer(response: aiohttp.ClientResponse) -> Any:
    """The JSON of a successful answer; EngineError for a failed or unreadable one."""
    if response.status >= 400:
        raise EngineError(f"answered HTTP {response.status}")
    try:
        return await response.json(content_type=None)
    except ValueError:
        raise EngineError("answered something that is not JSON") from None


def items(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise EngineError("answered without a list of results")
    return [v for v in value if isinstance(v, dict)]


def _load() -> dict[str, ModuleType]:
    from omnirouter.web.engines import brave, exa, firecrawl, perplexity, searxng, tavily

    return {"searxng": searxng, "brave": brave, "tavily": tavily, "exa": exa, "firecrawl": firecrawl,
            "perplexity": perplexity}  # fmt: skip


ENGINES: dict[str, ModuleType] = _load()
