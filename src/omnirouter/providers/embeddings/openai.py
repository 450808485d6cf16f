"""OpenAI-compatible embeddings (`api: openai`): `POST {base_url}/embeddings`, Bearer auth. The same
wire serves OpenAI, vLLM, TEI, Ollama and most hosted open-model APIs; token arrays and multimodal
content are forwarded as the client sent them."""

from __future__ import annotations

from typing import Any

import msgspec

from omnirouter.providers.embeddings.common import (
    Embeddings,
    batch_size,
    bearer,
    checked,
    decoded,
    in_batches,
    post,
    raw_vector,
)
from omnirouter.providers.embeddings.request import items

MAX_INPUTS = 2048  # OpenAI's limit of inputs per request
MAX_BATCH_TOKENS = 250_000  # under OpenAI's 300,000 tokens per request, as estimated (common.rough_tokens)


class _Item(msgspec.Struct):
    embedding: msgspec.Raw  # passed through unparsed (common.Vector)
    index: int = 0


class _Usage(msgspec.Struct):
    prompt_tokens: int | None = None
    total_tokens: int | None = None


class Answer(msgspec.Struct):
    """OpenAI's list of embeddings (Voyage and Jina answer in the same shape)."""

    data: list[_Item]
    usage: _Usage = msgspec.field(default_factory=_Usage)

    def embeddings(self, expected: int, api: str) -> Embeddings:
        items = sorted(self.data, key=lambda item: item.index)
        usage = self.usage
        tokens = usage.prompt_tokens if usage.prompt_tokens is not None else usage.total_tokens
        return Embeddings(checked([raw_vector(item.embedding) for item in items], expected, api), tokens or 0)


decode_answer = msgspec.json.Decoder(Answer).decode


async def embed(upstream: Any, request: dict[str, Any]) -> Embeddings:
    return await embed_at(upstream, request, upstream.url("/embeddings"), bearer(upstream.api_key))


async def embed_at(upstream: Any, request: dict[str, Any], url: str, headers: dict[str, str]) -> Embeddings:
    """OpenAI's embeddings request at `url` (Azure's deployments have their own), in batches."""
    multimodal = request["kind"] == "multimodal"
    # OpenAI refuses parameters it does not know; servers that want `input_type` (NVIDIA NIM) list it
    # in the endpoint's supported_parameters.
    input_type = request.get("input_type")
    if input_type is not None and "input_type" not in (upstream.endpoint.supported_parameters or ()):
        input_type = None

    async def call(batch: list[Any]) -> Embeddings:
        body: dict[str, Any] = {
            "model": upstream.endpoint.upstream_model,
            "input": [{"content": parts} for parts in batch] if multimodal else batch,
            "encoding_format": "float",
        }
        if request.get("dimensions") is not None:
            body["dimensions"] = request["dimensions"]
        if input_type is not None:
            body["input_type"] = input_type
        if request.get("user") is not None:
            body["user"] = request["user"]
        raw, _ = await post(upstream, url, body, headers)
        return decoded(raw, decode_answer, "The provider").embeddings(len(batch), "The provider")

    return await in_batches(items(request), batch_size(upstream, MAX_INPUTS), call, budget=MAX_BATCH_TOKENS)
