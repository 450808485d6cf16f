"""Cohere's rerank API (`api: cohere`): `POST {base_url}/v2/rerank` (base https://api.cohere.com, as for
Cohere's embeddings), Bearer auth: text documents only, scores in `results`, billed in
`meta.billed_units.search_units`."""

from __future__ import annotations

from typing import Any

import msgspec

from omnirouter.pipeline.modality import Upstream
from omnirouter.providers.base import UpstreamError
from omnirouter.providers.rerank.ranking import (
    Ranking,
    answer_of,
    count,
    estimated_tokens,
    ranked,
    search_units,
    top_n_for,
)


def _texts(documents: list[Any]) -> list[str]:
    texts = []
    for i, doc in enumerate(documents):
        if isinstance(doc, dict) and doc.get("text") is None:
            # Refused like the upstream would refuse it, before it is sent: no fallback makes it text.
            raise UpstreamError(f"Cohere reranks text documents only: documents[{i}] has no text", status=400)
        texts.append(doc if isinstance(doc, str) else doc["text"])
    return texts


async def rerank(upstream: Upstream, request: dict[str, Any]) -> Ranking:
    documents = request["documents"]
    payload: dict[str, Any] = {
        "model": upstream.endpoint.upstream_model,
        "query": request["query"],
        "documents": _texts(documents),
    }
    if (top_n := top_n_for(request)) is not None:
        payload["top_n"] = top_n
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if upstream.api_key:
        headers["Authorization"] = f"Bearer {upstream.api_key}"
    resp = await upstream.send("POST", upstream.url("/v2/rerank"), headers=headers, body=msgspec.json.encode(payload))
    answer = await answer_of(resp)
    meta = answer.get("meta")
    billed = meta.get("billed_units") if isinstance(meta, dict) else None
    billed = billed if isinstance(billed, dict) else {}
    # What Cohere billed is what it costs (long documents are billed in several chunks); an answer
    # without it counts as Cohere counts short documents. Cohere reports no tokens for a rerank.
    units = count(billed.get("search_units"))
    tokens = count(billed.get("input_tokens"))
    return Ranking(
        ranked(answer, len(documents), top_n),
        search_units=search_units(len(documents)) if units is None else units,
        total_tokens=estimated_tokens(request["query"], documents) if tokens is None else tokens,
        upstream_id=answer.get("id") if isinstance(answer.get("id"), str) else None,
    )
