"""Embeddings on AWS Bedrock (`api: bedrock`), through InvokeModel: `POST /model/{modelId}/invoke`.

Two model families have their own bodies: Amazon Titan (`amazon.titan-embed-text-v2:0` and v1, one
input per call: `inputText`, `dimensions`; `amazon.titan-embed-image-v1` also `inputImage`) and Cohere
on Bedrock (`cohere.embed-*`: Cohere's body without the model, up to 96 texts a call). Requests carry
a Bedrock API key as a Bearer token, or are signed with SigV4 from the standard AWS credential chain,
as the chat adapter (providers/bedrock.py) does; the region and base URL are resolved the same way.
"""

from __future__ import annotations

import asyncio
import functools
import os
from typing import Any
from urllib.parse import quote

import msgspec

from omnirouter.providers.answers import body_of
from omnirouter.providers.aws import AwsIdentity, secrets_of, sign
from omnirouter.providers.base import UpstreamError
from omnirouter.providers.bedrock import BEARER_ENV, error_from_response
from omnirouter.providers.embeddings import cohere
from omnirouter.providers.embeddings.common import (
    Embeddings,
    batch_size,
    checked,
    count_or_estimate,
    data_url,
    decoded,
    in_batches,
    refused,
)
from omnirouter.providers.embeddings.request import items

API = "Bedrock"
COHERE_MAX_INPUTS = 96
TOKEN_COUNT_HEADER = "x-amzn-bedrock-input-token-count"
_identity = AwsIdentity()  # one credential chain for every Bedrock embeddings call, resolved on first use


class _Titan(msgspec.Struct, rename="camel"):
    embedding: list[float]
    input_text_token_count: int | None = None


_decode_titan = msgspec.json.Decoder(_Titan).decode


async def _base(provider: Any) -> str:
    if provider.base_url:
        return provider.base_url.rstrip("/")
    region = provider.region or await asyncio.to_thread(_identity.region)
    if not region:
        raise UpstreamError(f"Bedrock provider {provider.slug} has no region: set `region` or AWS_REGION", status=401)
    return f"https://bedrock-runtime.{region}.amazonaws.com"


async def _auth(upstream: Any, url: str, body: bytes) -> tuple[dict[str, str], tuple[str, ...]]:
    headers = {"Content-Type": "application/json", "Accept": "application/json", **upstream.provider.headers}
    token = upstream.api_key or os.environ.get(BEARER_ENV)
    if token:
        headers["Authorization"] = f"Bearer {token}"
        return headers, (token,)
    frozen = await _identity.frozen()
    region = upstream.provider.region or await asyncio.to_thread(_identity.region) or ""
    return sign(frozen, region, url, body, headers), secrets_of(frozen)


async def _invoke(upstream: Any, url: str, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = msgspec.json.encode(payload)
    headers, secrets = await _auth(upstream, url, body)
    resp = await upstream.send("POST", url, headers=headers, body=body)
    return await body_of(resp, functools.partial(error_from_response, secrets=secrets)), resp.headers


def _image(part: dict[str, Any]) -> str | None:
    found = data_url(part["image_url"]["url"])
    return found[1] if found else None


def _titan_payload(model: str, request: dict[str, Any], item: Any) -> dict[str, Any]:
    image_model = "titan-embed-image" in model
    payload: dict[str, Any] = {}
    if request["kind"] == "multimodal":
        if not image_model:
            raise refused(f"{model} embeds text only")
        for part in item:
            if part["type"] == "text":
                payload["inputText"] = (payload.get("inputText", "") + " " + part["text"]).strip()
            elif part["type"] == "image_url" and "inputImage" not in payload and (found := _image(part)):
                payload["inputImage"] = found
            else:
                raise refused(f"{model} embeds a text and one image given as a data: URL")
    else:
        payload["inputText"] = item
    dims = request.get("dimensions")
    if dims is not None:
        if image_model:
            payload["embeddingConfig"] = {"outputEmbeddingLength": dims}
        elif "text-v1" not in model:
            payload["dimensions"] = dims
    if "text-v2" in model:
        payload["normalize"] = True
    return payload


async def embed(upstream: Any, request: dict[str, Any]) -> Embeddings:
    if request["kind"] == "tokens":
        raise refused(f"{API} takes text input, not token arrays")
    model = upstream.endpoint.upstream_model
    url = f"{await _base(upstream.provider)}/model/{quote(model, safe='')}/invoke"

    if "cohere.embed" in model:

        async def call(batch: list[Any]) -> Embeddings:
            raw, headers = await _invoke(upstream, url, cohere.body(request, batch))
            answer = decoded(raw, cohere.decode_answer, API)
            vectors = checked(answer.vectors(), len(batch), API)
            count = answer.meta.billed_units.input_tokens
            if count is None and (header := headers.get(TOKEN_COUNT_HEADER, "")).isdigit():
                count = int(header)
            return Embeddings(vectors, count_or_estimate(count, [t for t in batch if isinstance(t, str)]))

        return await in_batches(items(request), batch_size(upstream, COHERE_MAX_INPUTS), call)

    async def titan(batch: list[Any]) -> Embeddings:
        (item,) = batch
        raw, headers = await _invoke(upstream, url, _titan_payload(model, request, item))
        answer = decoded(raw, _decode_titan, API)
        count = answer.input_text_token_count
        if count is None and (header := headers.get(TOKEN_COUNT_HEADER, "")).isdigit():
            count = int(header)
        return Embeddings([answer.embedding], count_or_estimate(count, [item] if isinstance(item, str) else []))

    return await in_batches(items(request), 1, titan)
