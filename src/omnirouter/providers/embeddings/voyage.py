"""Voyage AI embeddings (`api: voyage`): `POST {base_url}/embeddings` (base https://api.voyageai.com/v1)
for text, `/multimodalembeddings` for content with images. OpenAI's answer shape; the request names
`input_type` "query" or "document" and `output_dimension`. Token arrays are not accepted."""

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

MAX_INPUTS = 1000  # Voyage's limit of texts per request
MAX_MULTIMODAL_INPUTS = 1000
API = "Voyage"

# OpenRouter's retrieval vocabulary (Cohere's words) onto Voyage's two kinds.
INPUT_TYPES = {"search_query": "query", "query": "query", "search_document": "document", "document": "document"}


def _part(part: dict[str, Any]) -> dict[str, Any]:
    if part["type"] == "text":
        return {"type": "text", "text": part["text"]}
    if part["type"] == "image_url":
        url = part["image_url"]["url"]
        if data_url(url):
            return {"type": "image_base64", "image_base64": url}
        return {"type": "image_url", "image_url": url}
    raise refused(f"{API} embeds text and images, not {part['type']}")


async def embed(upstream: Any, request: dict[str, Any]) -> Embeddings:
    kind = request["kind"]
    if kind == "tokens":
        raise refused(f"{API} takes text or multimodal input, not token arrays")
    multimodal = kind == "multimodal"
    url = upstream.url("/multimodalembeddings" if multimodal else "/embeddings")
    headers = bearer(upstream.api_key)
    input_type = INPUT_TYPES.get(request.get("input_type") or "")

    async def call(batch: list[Any]) -> Embeddings:
        body: dict[str, Any] = {"model": upstream.endpoint.upstream_model}
        if multimodal:
            body["inputs"] = [{"content": [_part(p) for p in parts]} for parts in batch]
        else:
            body["input"] = batch
            if request.get("dimensions") is not None:
                body["output_dimension"] = request["dimensions"]
        if input_type is not None:
            body["input_type"] = input_type
        raw, _ = await post(upstream, url, body, headers)
        return decoded(raw, decode_answer, API).embeddings(len(batch), API)

    size = batch_size(upstream, MAX_MULTIMODAL_INPUTS if multimodal else MAX_INPUTS)
    return await in_batches(items(request), size, call)
