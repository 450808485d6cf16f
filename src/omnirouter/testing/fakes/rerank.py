"""Fake rerank upstreams: Cohere's v2 API (`POST /v2/rerank`) and Jina's (`POST /v1/rerank`, also what
vLLM and Infinity serve), on the fakes' core (real HTTP on loopback, scripted faults, recording).

Unscripted, a fake ranks the documents by the words they share with the query (the sandbox's measure,
testing/similarity.py), best first, cut at `top_n`. A ``Ranked`` step overrides the scores or the
usage; the core's ``Status``, ``Delay``, ``Reset`` and ``BrokenJSON`` steps work as for chat.

    async with FakeCohereRerank() as cohere:
        cohere.script(Status(503))          # the first rerank fails, the next is ranked
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

from omnirouter.testing.fakes.core import (
    FakeServer,
    FakeThread,
    Reply,
    Route,
    Step,
    Wire,
    WireError,
    _Exchange,
    json_response,
)
from omnirouter.testing.similarity import cosine, vector, words

__all__ = ["FakeCohereRerank", "FakeJinaRerank", "Ranked", "overlap_scores"]


@dataclass(frozen=True)
class Ranked:
    """A rerank answer. ``scores`` (one per document, in input order) replace the word-overlap scores;
    ``search_units`` (Cohere's billed units) and ``total_tokens`` (Jina's usage) replace the counted
    ones; ``omit_usage`` leaves Cohere's ``meta`` or Jina's ``usage`` out; ``results`` is sent verbatim
    instead of the ranking (an answer naming a document that does not exist)."""

    scores: list[float] | None = None
    search_units: int | None = None
    total_tokens: int | None = None
    omit_usage: bool = False
    results: list[dict[str, Any]] | None = None


def overlap_scores(query: str, documents: list[str]) -> list[float]:
    """Each document's score: the cosine of its words' vector and the query's, clamped to [0, 1]."""
    q = vector(query)
    return [round(min(1.0, max(0.0, cosine(q, vector(d)))), 6) for d in documents]


class _RerankWire(Wire):
    """What the two APIs share: bearer auth, one POST route, a ranking of text documents."""

    route_path: ClassVar[str] = "/rerank"

    def routes(self) -> list[Route]:
        return [Route("POST", self.route_path)]

    def check_auth(self, request: web.Request, api_key: str) -> WireError | None:
        if request.headers.get("Authorization") != f"Bearer {api_key}":
            return WireError(401, "invalid api token")
        return None

    def request(self, body: Any) -> tuple[str, str, list[str], int | None]:
        """(model, query, document texts, top_n) of a valid request; WireError otherwise."""
        if not isinstance(body, dict):
            raise WireError(400, "invalid request: body must be a JSON object")
        model, query, documents, top_n = body.get("model"), body.get("query"), body.get("documents"), body.get("top_n")
        if not isinstance(model, str) or not model:
            raise WireError(400, "invalid request: model is required", "model")
        if not isinstance(query, str) or not query:
            raise WireError(400, "invalid request: query must be a non-empty string", "query")
        if not isinstance(documents, list) or not documents:
            raise WireError(400, "invalid request: documents must be a non-empty list", "documents")
        if top_n is not None and (not isinstance(top_n, int) or top_n < 1):
            raise WireError(400, "invalid request: top_n must be a positive integer", "top_n")
        return model, query, [self.text(d, i) for i, d in enumerate(documents)], top_n

    def text(self, document: Any, index: int) -> str:
        if isinstance(document, str):
            return document
        raise WireError(400, f"invalid request: documents[{index}] must be a string", "documents")

    def answer(self, model: str, query: str, texts: list[str], top_n: int | None, step: Ranked) -> dict[str, Any]:
        raise NotImplementedError


class CohereRerankWire(_RerankWire):
    name = "Cohere"
    base_path = ""
    route_path = "/v2/rerank"

    def error_body(self, status: int, message: str | None = None, param: str | None = None) -> Any:
        return {"id": secrets.token_hex(16), "message": message or f"HTTP {status}"}

    def answer(self, model: str, query: str, texts: list[str], top_n: int | None, step: Ranked) -> dict[str, Any]:
        answer: dict[str, Any] = {"id": secrets.token_hex(16), "results": _results(query, texts, top_n, step)}
        if not step.omit_usage:
            units = step.search_units if step.search_units is not None else math.ceil(len(texts) / 100)
            answer["meta"] = {"api_version": {"version": "2"}, "billed_units": {"search_units": units}}
        return answer


class JinaRerankWire(_RerankWire):
    name = "Jina"
    base_path = "/v1"

    def error_body(self, status: int, message: str | None = None, param: str | None = None) -> Any:
        return {"detail": message or f"HTTP {status}"}

    def text(self, document: Any, index: int) -> str:
        # jina-reranker-m0 takes {"text"} or {"image"} objects beside strings; an image ranks by its URL's words.
        if isinstance(document, dict) and isinstance(document.get("text") or document.get("image"), str):
            return str(document.get("text") or document.get("image"))
        return super().text(document, index)

    def answer(self, model: str, query: str, texts: list[str], top_n: int | None, step: Ranked) -> dict[str, Any]:
        answer: dict[str, Any] = {"model": model, "results": _results(query, texts, top_n, step)}
        if not step.omit_usage:
            # Tokens as a cross-encoder reads them: the query beside each document.
            counted = sum(len(words(query)) + len(words(t)) for t in texts)
            tokens = step.total_tokens if step.total_tokens is not None else counted
            answer["usage"] = {"total_tokens": tokens, "prompt_tokens": tokens}
        return answer


def _results(query: str, texts: list[str], top_n: int | None, step: Ranked) -> list[dict[str, Any]]:
    if step.results is not None:
        return step.results
    scores = step.scores if step.scores is not None else overlap_scores(query, texts)
    order = sorted(range(len(texts)), key=lambda i: (-scores[i], i))
    return [{"index": i, "relevance_score": scores[i]} for i in order[:top_n]]


class _FakeRerank(FakeServer):
    wire: ClassVar[_RerankWire]

    async def _perform(self, step: Step | Ranked | None, ex: _Exchange, route: Route) -> web.StreamResponse:
        if step is None or isinstance(step, Reply | Ranked):
            ranked = step if isinstance(step, Ranked) else Ranked()
            try:
                model, query, texts, top_n = self.wire.request(ex.json)
            except WireError as err:
                return self._error(err)
            return json_response(self.wire.answer(model, query, texts, top_n, ranked))
        return await super()._perform(step, ex, route)


class FakeCohereRerank(_FakeRerank):
    """Cohere's rerank API at /v2/rerank (a provider `api: cohere` with this base_url)."""

    wire = CohereRerankWire()

    @classmethod
    def run_in_thread(cls, **kwargs: Any) -> FakeThread[FakeCohereRerank]:
        return FakeThread(cls(**kwargs))


class FakeJinaRerank(_FakeRerank):
    """Jina's rerank API at /v1/rerank; base_url ends in /v1 (a provider `api: jina` with this base_url)."""

    wire = JinaRerankWire()

    @classmethod
    def run_in_thread(cls, **kwargs: Any) -> FakeThread[FakeJinaRerank]:
        return FakeThread(cls(**kwargs))
