"""Jina's rerank API (`api: jina`): `POST {base_url}/rerank` (base https://api.jina.ai/v1, as for Jina's
embeddings), Bearer auth when a key is set. vLLM (base http://host:8000/v1) and Infinity (base
http://host:7997) speak it too: documents as strings (objects with an `image` for multimodal models such as
jina-reranker-m0), scores in `results`, tokens in `usage.total_tokens`. No search units: they are
counted as Cohere counts them, for endpoints priced per search unit."""

from __future__ import annotations

from typing import Any

import msgspec

from omnirouter.pipeline.modality import Upstream
from omnirouter.providers.rerank.ranking import (
    Ranking,
    answer_of,
    count,
    estimated_tokens,
    ranked,
    search_units,
    top_n_for,
)


def _document(doc: str | dict[str, Any]) -> str | dict[str, Any]:
    # Text alone goes as a string, which every server of this shape takes; an image needs the object.
    if isinstance(doc, str) or doc.get("image") is None:
        return doc if isinstance(doc, str) else doc.get("text") or ""
    return {k: doc[k] for k in ("text", "image") if doc.get(k) is not None}


async def rerank(upstream: Upstream, request: dict[str, Any]) -> Ranking:
    documents = request["documents"]
    payload: dict[str, Any] = {
        "model": upstream.endpoint.upstream_model,
        "query": request["query"],
        "documents": [_document(d) for d in documents],
        "return_documents": False,  # the gateway echoes the client's own documents
    }
    if (top_n := top_n_for(request)) is not None:
        payload["top_n"] = top_n
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if upstream.api_key:
        headers["Authorization"] = f"Bearer {upstream.api_key}"
    resp = await upstream.send("POST", upstream.url("/rerank"), headers=headers, body=msgspec.json.encode(payload))
    answer = await answer_of(resp)
    usage = answer.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    tokens = count(usage.get("total_tokens"))
    if tokens is None:
        tokens = count(usage.get("prompt_tokens"))
    return Ranking(
        ranked(answer, len(documents), top_n),
        search_units=search_units(len(documents)),
        total_tokens=estimated_tokens(request["query"], documents) if tokens is None else tokens,
        upstream_id=answer.get("id") if isinstance(answer.get("id"), str) else None,
    )
