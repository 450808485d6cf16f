"""Jina AI embeddings (`api: jina`): `POST {base_url}/embeddings` (base https://api.jina.ai/v1),
Bearer auth, OpenAI's answer shape. The request's `task` stands for `input_type`; a multimodal input is
one `{"text"}` or `{"image"}` object (an image as a URL or base64). Token arrays are not accepted."""

from __future__ import annotations

from typing import Any

from omnirouter.providers.embeddings.common import (
    Embeddings,
    batch_size,
    bearer,
    data_url,
    decoded,
    in_batches,
    post,
    refused,
)
from omnirouter.providers.embeddings.openai import decode_answer
from omnirouter.providers.embeddings.request import items

MAX_INPUTS = 2048
API = "Jina"

# OpenRouter's retrieval vocabulary onto Jina's tasks; Jina's own task names pass as sent.
TASKS = {
    "search_query": "retrieval.query",
    "query": "retrieval.query",
    "search_document": "retrieval.passage",
    "document": "retrieval.passage",
    "classification": "classification",
    "clustering": "separation",
    "semantic_similarity": "text-matching",
}


def _input(parts: list[dict[str, Any]]) -> dict[str, Any]:
    if len(parts) != 1:
        raise refused(f"{API} embeds one text or one image per input, not {len(parts)} parts")
    part = parts[0]
    if part["type"] == "text":
        return {"text": part["text"]}
    if part["type"] == "image_url":
        url = part["image_url"]["url"]
        found = data_url(url)
        return {"image": found[1] if found else url}
    raise refused(f"{API} embeds text and images, not {part['type']}")


async def embed(upstream: Any, request: dict[str, Any]) -> Embeddings:
    kind = request["kind"]
    if kind == "tokens":
        raise refused(f"{API} takes text or multimodal input, not token arrays")
    url = upstream.url("/embeddings")
    headers = bearer(upstream.api_key)
    input_type = request.get("input_type")
    task = TASKS.get(input_type, input_type) if input_type else None

    async def call(batch: list[Any]) -> Embeddings:
        body: dict[str, Any] = {
            "model": upstream.endpoint.upstream_model,
            "input": [_input(parts) for parts in batch] if kind == "multimodal" else batch,
            "embedding_type": "float",
        }
        if task is not None:
            body["task"] = task
        if request.get("dimensions") is not None:
            body["dimensions"] = request["dimensions"]
        raw, _ = await post(upstream, url, body, headers)
        return decoded(raw, decode_answer, API).embeddings(len(batch), API)

    return await in_batches(items(request), batch_size(upstream, MAX_INPUTS), call)
