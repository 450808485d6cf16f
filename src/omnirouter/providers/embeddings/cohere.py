"""Cohere embeddings (`api: cohere`): `POST {base_url}/v2/embed` (base https://api.cohere.com), Bearer
auth. Text goes as `texts`, content with images as `inputs`; `input_type` is required by Cohere's v3+
models ("search_document" when the client names none); `embedding_types: ["float"]`. The billed input
tokens come in `meta.billed_units`. Token arrays are not accepted. The Cohere-on-Bedrock body is the
same without the model (providers/embeddings/bedrock.py builds it with `body()`)."""

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
    refused,
)
from omnirouter.providers.embeddings.request import items

MAX_INPUTS = 96  # Cohere's limit of texts per call
API = "Cohere"
DEFAULT_INPUT_TYPE = "search_document"


class _Floats(msgspec.Struct):
    float_: list[list[float]] = msgspec.field(name="float", default_factory=list)


class _Billed(msgspec.Struct):
    input_tokens: int | None = None
    images: int | None = None


class _Meta(msgspec.Struct):
    billed_units: _Billed = msgspec.field(default_factory=_Billed)


class Answer(msgspec.Struct):
    # By type ({"float": [...]}) when embedding_types is sent; Bedrock's older models send the bare list.
    embeddings: _Floats | list[list[float]]
    meta: _Meta = msgspec.field(default_factory=_Meta)

    def vectors(self) -> list[list[float]]:
        return self.embeddings if isinstance(self.embeddings, list) else self.embeddings.float_


decode_answer = msgspec.json.Decoder(Answer).decode


def _part(part: dict[str, Any]) -> dict[str, Any]:
    if part["type"] == "text":
        return {"type": "text", "text": part["text"]}
    if part["type"] == "image_url":
        return {"type": "image_url", "image_url": {"url": part["image_url"]["url"]}}
    raise refused(f"{API} embeds text and images, not {part['type']}")


def body(request: dict[str, Any], batch: list[Any]) -> dict[str, Any]:
    """The embed request for one batch, without the model."""
    kind = request["kind"]
    if kind == "tokens":
        raise refused(f"{API} takes text or multimodal input, not token arrays")
    out: dict[str, Any] = {
        "input_type": request.get("input_type") or DEFAULT_INPUT_TYPE,
        "embedding_types": ["float"],
    }
    if kind == "multimodal":
        out["inputs"] = [{"content": [_part(p) for p in parts]} for parts in batch]
    else:
        out["texts"] = batch
    if request.get("dimensions") is not None:
        out["output_dimension"] = request["dimensions"]
    return out


async def embed(upstream: Any, request: dict[str, Any]) -> Embeddings:
    url = upstream.url("/v2/embed")
    headers = bearer(upstream.api_key)

    async def call(batch: list[Any]) -> Embeddings:
        payload = {"model": upstream.endpoint.upstream_model, **body(request, batch)}
        raw, _ = await post(upstream, url, payload, headers)
        answer = decoded(raw, decode_answer, API)
        return Embeddings(checked(answer.vectors(), len(batch), API), answer.meta.billed_units.input_tokens or 0)

    return await in_batches(items(request), batch_size(upstream, MAX_INPUTS), call)
