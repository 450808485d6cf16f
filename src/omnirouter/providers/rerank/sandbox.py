"""`sandbox/rerank`: offline and deterministic. A document's score is the cosine similarity of its
words and the query's (testing/similarity.py, the measure sandbox embeddings use), clamped to [0, 1]
and rounded to 6 places; search units as Cohere counts them, one per started hundred documents."""

from __future__ import annotations

from typing import Any

from omnirouter.pipeline.modality import Upstream
from omnirouter.providers.rerank.ranking import Ranking, estimated_tokens, search_units, text_of, top_n_for
from omnirouter.testing.similarity import cosine, vector

SCORE_PLACES = 6


def scores(query: str, documents: list[Any]) -> list[float]:
    """Each document's score against the query, in input order."""
    q = vector(query)
    return [round(min(1.0, max(0.0, cosine(q, vector(text_of(d))))), SCORE_PLACES) for d in documents]


async def rerank(upstream: Upstream, request: dict[str, Any]) -> Ranking:
    documents = request["documents"]
    pairs = sorted(enumerate(scores(request["query"], documents)), key=lambda p: (-p[1], p[0]))
    top_n = top_n_for(request)
    return Ranking(
        pairs if top_n is None else pairs[:top_n],
        search_units=search_units(len(documents)),
        total_tokens=estimated_tokens(request["query"], documents),
    )
