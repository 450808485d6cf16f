"""Fake web search engines over real HTTP on loopback, one per API the gateway speaks (web/engines/):
SearXNG, Brave, Tavily, Exa, Firecrawl and Perplexity, each on its own route, reading its request
fields, checking the key where that API carries it, and answering in its own JSON shape.

    with FakeSearch.run_in_thread("brave", api_key="k") as brave:
        brave.fake.pages = [Page("https://a.example/x", "A", "snippet")]
        ...                                  # brave.fake.requests: what the gateway asked
        brave.fake.fail = 500                # the next searches answer HTTP 500

Unscripted, a search answers ``DEFAULT_PAGES`` (the fake does not filter by domain: the gateway's own
filter is what tests check; the domain fields the engine received are in ``requests``).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

from omnirouter.testing.fakes.core import FakeThread

__all__ = ["DEFAULT_PAGES", "ENGINES", "FakeSearch", "Page", "SearchRequest"]


@dataclass(frozen=True)
class Page:
    url: str
    title: str
    snippet: str
    published: str | None = None


DEFAULT_PAGES = [
    Page("https://news.example.com/2026/launch", "Launch day", "The launch happened on Tuesday.", "2026-11-30"),
    Page("https://blog.example.org/posts/review", "A review", "Reviewers liked it."),
    Page("https://docs.example.net/guide", "The guide", "How to use it, step by step."),
]


@dataclass
class SearchRequest:
    """What the gateway sent: the query, how many results it asked for, the engine's domain fields."""

    query: str
    count: int | None
    include: list[str] | None = None
    exclude: list[str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: Any = None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class FakeSearch:
    """One engine's API. ``pages`` is what every search finds; ``fail`` (an HTTP status) makes searches
    fail; ``requests`` records each one that passed the key check."""

    def __init__(self, engine: str, *, api_key: str | None = "test-search-key") -> None:
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine}")
        self.engine = engine
        self.api_key = api_key
        self.pages: list[Page] = list(DEFAULT_PAGES)
        self.fail: int | None = None
        self.requests: list[SearchRequest] = []
        self.refused = 0  # searches refused for a missing or wrong key
        self._runner: web.AppRunner | None = None
        self.port = 0

    @classmethod
    def run_in_thread(cls, engine: str, **options: Any) -> FakeThread[FakeSearch]:
        return FakeThread(cls(engine, **options))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        self.pages = list(DEFAULT_PAGES)
        self.fail = None
        self.requests = []
        self.refused = 0

    async def start(self) -> Self:
        method, path, handler = ENGINES[self.engine]
        app = web.Application()

        async def route(request: web.Request) -> web.StreamResponse:
            return await self._handle(request, handler)

        app.router.add_route(method, path, route)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.api_key is not None and _key_of(self.engine, request) != self.api_key:
            self.refused += 1
            return web.json_response({"error": "invalid or missing API key"}, status=401)
        body = await request.json() if request.method == "POST" else None
        recorded = handler.parse(request, body)
        recorded.headers = dict(request.headers)
        recorded.raw = body if body is not None else dict(request.query)
        self.requests.append(recorded)
        if self.fail is not None:
            return web.json_response({"error": "upstream search failure"}, status=self.fail)
        pages = self.pages[: recorded.count] if recorded.count else self.pages
        return web.json_response(handler.answer(pages))


def _key_of(engine: str, request: web.Request) -> str | None:
    """Where each real API carries its key."""
    h = request.headers
    if engine == "brave":
        return h.get("X-Subscription-Token")
    if engine == "exa":
        return h.get("x-api-key")
    auth = h.get("Authorization", "")
    return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None


class _SearXNG:
    @staticmethod
    def parse(request: web.Request, body: Any) -> SearchRequest:
        if request.query.get("format") != "json":
            raise web.HTTPForbidden(text="format not allowed")  # SearXNG's answer when json is off
        return SearchRequest(request.query.get("q", ""), None)

    @staticmethod
    def answer(pages: list[Page]) -> Any:
        return {
            "query": "",
            "number_of_results": 0,
            "results": [
                {"url": p.url, "title": p.title, "content": p.snippet, "engine": "fake", "publishedDate": p.published}
                for p in pages
            ],
            "answers": [],
            "suggestions": [],
            "unresponsive_engines": [],
        }


class _Brave:
    @staticmethod
    def parse(request: web.Request, body: Any) -> SearchRequest:
        return SearchRequest(request.query.get("q", ""), _int(request.query.get("count")))

    @staticmethod
    def answer(pages: list[Page]) -> Any:
        results = [
            {"type": "search_result", "url": p.url, "title": p.title, "description": p.snippet}
            | ({"page_age": p.published} if p.published else {})
            for p in pages
        ]
        return {"type": "search", "query": {"original": ""}, "web": {"type": "search", "results": results}}


class _Tavily:
    @staticmethod
    def parse(request: web.Request, body: Any) -> SearchRequest:
        return SearchRequest(
            body["query"], _int(body.get("max_results")), body.get("include_domains"), body.get("exclude_domains")
        )

    @staticmethod
    def answer(pages: list[Page]) -> Any:
        return {
            "query": "",
            "answer": None,
            "images": [],
            "results": [
                {"url": p.url, "title": p.title, "content": p.snippet, "score": 0.9, "raw_content": None}
                | ({"published_date": p.published} if p.published else {})
                for p in pages
            ],
            "response_time": 0.1,
        }


class _Exa:
    @staticmethod
    def parse(request: web.Request, body: Any) -> SearchRequest:
        return SearchRequest(
            body["query"], _int(body.get("numResults")), body.get("includeDomains"), body.get("excludeDomains")
        )

    @staticmethod
    def answer(pages: list[Page]) -> Any:
        return {
            "requestId": "fake",
            "resolvedSearchType": "neural",
            "results": [
                {
                    "id": p.url,
                    "url": p.url,
                    "title": p.title,
                    "publishedDate": p.published,
                    "author": None,
                    "text": p.snippet + " (full text)",
                    "highlights": [p.snippet],
                    "highlightScores": [0.5],
                }
                for p in pages
            ],
        }


class _Firecrawl:
    @staticmethod
    def parse(request: web.Request, body: Any) -> SearchRequest:
        return SearchRequest(body["query"], _int(body.get("limit")))

    @staticmethod
    def answer(pages: list[Page]) -> Any:
        return {"success": True, "data": [{"url": p.url, "title": p.title, "description": p.snippet} for p in pages]}


class _Perplexity:
    @staticmethod
    def parse(request: web.Request, body: Any) -> SearchRequest:
        domains = body.get("search_domain_filter") or []
        include = [d for d in domains if not d.startswith("-")] or None
        exclude = [d[1:] for d in domains if d.startswith("-")] or None
        return SearchRequest(body["query"], _int(body.get("max_results")), include, exclude)

    @staticmethod
    def answer(pages: list[Page]) -> Any:
        return {
            "id": "fake",
            "results": [
                {"title": p.title, "url": p.url, "snippet": p.snippet, "date": p.published, "last_updated": None}
                for p in pages
            ],
        }


# engine -> (method, path, its wire)
ENGINES: dict[str, tuple[str, str, Any]] = {
    "searxng": ("GET", "/search", _SearXNG),
    "brave": ("GET", "/res/v1/web/search", _Brave),
    "tavily": ("POST", "/search", _Tavily),
    "exa": ("POST", "/search", _Exa),
    "firecrawl": ("POST", "/v1/search", _Firecrawl),
    "perplexity": ("POST", "/search", _Perplexity),
}
