"""Gemini embeddings (`api: gemini`): `POST {base_url}/models/{model}:batchEmbedContents` (base_url the
API version root, https://generativelanguage.googleapis.com/v1beta), `x-goog-api-key` auth. Each input
is one request of the batch: `content.parts`, `taskType` (from `input_type`) and
`outputDimensionality` (from `dimensions`). The API reports no token counts: when the answer has no
`usageMetadata`, tokens are estimated at four characters each. Images go inline from `data:` URLs."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import msgspec

from omnirouter.providers.embeddings.common import (
    Embeddings,
    batch_size,
    checked,
    count_or_estimate,
    data_url,
    decoded,
    in_batches,
    post,
    refused,
)
from omnirouter.providers.embeddings.request import items

MAX_INPUTS = 100  # batchEmbedContents' limit of requests per batch
API = "Gemini"

TASK_TYPES = {
    "search_query": "RETRIEVAL_QUERY",
    "query": "RETRIEVAL_QUERY",
    "search_document": "RETRIEVAL_DOCUMENT",
    "document": "RETRIEVAL_DOCUMENT",
    "classification": "CLASSIFICATION",
    "clustering": "CLUSTERING",
    "semantic_similarity": "SEMANTIC_SIMILARITY",
    "question_answering": "QUESTION_ANSWERING",
    "fact_verification": "FACT_VERIFICATION",
    "code_retrieval_query": "CODE_RETRIEVAL_QUERY",
}


class _Values(msgspec.Struct):
    values: list[float]


class _UsageMetadata(msgspec.Struct, rename="camel"):
    prompt_token_count: int | None = None


class _Answer(msgspec.Struct, rename="camel"):
    embeddings: list[_Values]
    usage_metadata: _UsageMetadata = msgspec.field(default_factory=_UsageMetadata)


_decode = msgspec.json.Decoder(_Answer).decode


def task_type(input_type: str | None) -> str | None:
    """Gemini's taskType for OpenRouter's `input_type`; Gemini's own names (any case) pass as sent."""
    if not input_type:
        return None
    return TASK_TYPES.get(input_type.lower(), input_type.upper())


def _part(part: dict[str, Any]) -> dict[str, Any]:
    if part["type"] == "text":
        return {"text": part["text"]}
    if part["type"] == "image_url":
        found = data_url(part["image_url"]["url"])
        if found is None:
            raise refused(f"{API} takes images inline, as data: URLs")
        return {"inlineData": {"mimeType": found[0], "data": found[1]}}
    raise refused(f"{API} embeds text and images, not {part['type']}")


def _texts(parts: list[dict[str, Any]]) -> str:
    return " ".join(p["text"] for p in parts if p["type"] == "text")


async def embed(upstream: Any, request: dict[str, Any]) -> Embeddings:
    kind = request["kind"]
    if kind == "tokens":
        raise refused(f"{API} takes text or multimodal input, not token arrays")
    model = upstream.endpoint.upstream_model.removeprefix("models/")
    url = upstream.url(f"/models/{quote(model, safe='-._~')}:batchEmbedContents")
    headers = {"Content-Type": "application/json"}
    if upstream.api_key:
        headers["x-goog-api-key"] = upstream.api_key
    shared: dict[str, Any] = {}
    if (task := task_type(request.get("input_type"))) is not None:
        shared["taskType"] = task
    if request.get("dimensions") is not None:
        shared["outputDimensionality"] = request["dimensions"]

    async def call(batch: list[Any]) -> Embeddings:
        if kind == "multimodal":
            contents = [{"parts": [_part(p) for p in parts]} for parts in batch]
            texts = [_texts(parts) for parts in batch]
        else:
            contents = [{"parts": [{"text": text}]} for text in batch]
            texts = batch
        payload = {"requests": [{"model": f"models/{model}", "content": c, **shared} for c in contents]}
        raw, _ = await post(upstream, url, payload, headers)
        answer = decoded(raw, _decode, API)
        vectors = checked([e.values for e in answer.embeddings], len(batch), API)
        return Embeddings(vectors, count_or_estimate(answer.usage_metadata.prompt_token_count, texts))

    return await in_batches(items(request), batch_size(upstream, MAX_INPUTS), call)
