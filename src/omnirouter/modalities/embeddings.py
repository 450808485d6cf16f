"""`POST /embeddings` and `GET /embeddings/models`.

The POST runs on the shared inference pipeline (pipeline/modality.py: auth, plan with provider
preferences and fallbacks, reserve, attempt, settle, record) with one handler per provider API
(providers/embeddings/). It bills input tokens at the endpoint's `prompt` price. The answer is
OpenAI's list of embeddings, each vector as floats, or as base64 little-endian float32s when
`encoding_format` is "base64" (what OpenAI sends and its SDKs decode), with usage, cost and `is_byok`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Send

from omnirouter.accounting.units import Units
from omnirouter.api import auth
from omnirouter.api import schemas as s
from omnirouter.api.models import DEFAULT_LIMIT, MAX_LIMIT, _int_param, _view
from omnirouter.catalog.types import Model
from omnirouter.formats.openai_chat import ProviderPrefs
from omnirouter.jsonio import encode, money
from omnirouter.openapi_doc import Operation
from omnirouter.pipeline.answer import send_json
from omnirouter.pipeline.modality import ModalityCall, ModalityEndpoint
from omnirouter.providers.embeddings import HANDLERS
from omnirouter.providers.embeddings.common import Embeddings, encode_base64_floats, floats
from omnirouter.providers.embeddings.request import MAX_DIMENSIONS, MAX_INPUTS, MAX_TOKEN_ID, parse, token_bound
from omnirouter.routing.plan import Candidate

__all__ = ["OPERATIONS", "TAGS", "EmbeddingsModality", "routes"]


# -- shapes (they also make the OpenAPI document) -----------------------------------------------------


def _part(kind: str, value: dict[str, Any]) -> dict[str, Any]:
    """A content part as the parser takes it: its `type`, and the field of that name."""
    return {"type": "object", "required": ["type", kind], "properties": {"type": {"const": kind}, kind: value}}


_PARTS = [
    _part("text", {"type": "string", "minLength": 1}),
    _part(
        "image_url", {"type": "object", "required": ["url"], "properties": {"url": {"type": "string", "minLength": 1}}}
    ),
    *(_part(kind, {"type": "object"}) for kind in ("input_audio", "input_video", "file")),
]
_TOKEN_ID = {"type": "integer", "minimum": 0, "maximum": MAX_TOKEN_ID}
_INPUT_SCHEMA = {
    "anyOf": [
        {"type": "string", "minLength": 1},
        {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1, "maxItems": MAX_INPUTS},
        {"type": "array", "items": _TOKEN_ID, "minItems": 1},
        {
            "type": "array",
            "items": {"type": "array", "items": _TOKEN_ID, "minItems": 1},
            "minItems": 1,
            "maxItems": MAX_INPUTS,
        },
        {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_INPUTS,
            "items": {
                "type": "object",
                "required": ["content"],
                "properties": {
                    "content": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"oneOf": _PARTS},
                    }
                },
            },
        },
    ]
}


class EmbeddingsRequest(msgspec.Struct, kw_only=True):
    model: Annotated[str, Meta(description="The embeddings model, e.g. openai/text-embedding-3-small")]
    input: Annotated[
        Any,
        Meta(
            description=(f"Text, token, or multimodal input(s) to embed: at most {MAX_INPUTS} inputs, all of one kind"),
            extra_json_schema=_INPUT_SCHEMA,
        ),
    ]
    encoding_format: Literal["float", "base64"] | UnsetType = UNSET
    dimensions: (
        Annotated[int, Meta(ge=1, le=MAX_DIMENSIONS, description="The number of dimensions of the output embeddings")]
        | UnsetType
    ) = UNSET
    input_type: (
        Annotated[str, Meta(description="The type of input (e.g. search_query, search_document)")] | UnsetType
    ) = UNSET
    models: list[str] | UnsetType = UNSET
    provider: ProviderPrefs | UnsetType = UNSET
    user: str | UnsetType = UNSET


class EmbeddingObject(msgspec.Struct):
    embedding: Annotated[list[float] | str, Meta(description="The vector: floats, or base64 float32s")]
    index: int
    object: Literal["embedding"] = "embedding"


class EmbeddingsUsage(msgspec.Struct):
    prompt_tokens: int
    total_tokens: int
    cost: Annotated[Decimal, Meta(description="What the request cost, in USD")]
    is_byok: bool


class EmbeddingsResponse(msgspec.Struct):
    id: str
    model: str
    provider: Annotated[str, Meta(description="The provider that served the request")]
    data: list[EmbeddingObject]
    usage: EmbeddingsUsage
    object: Literal["list"] = "list"


class EmbeddingsModelsQuery(msgspec.Struct, kw_only=True):
    offset: Annotated[int, Meta(ge=0)] | UnsetType = UNSET
    limit: Annotated[int, Meta(ge=1, le=MAX_LIMIT)] | UnsetType = UNSET


# -- the modality ----------------------------------------------------------------------------------------


class EmbeddingsModality:
    name = "embeddings"
    api_type = "embeddings"
    handlers = HANDLERS

    def serves(self, model: Model) -> bool:
        return "embeddings" in model.architecture.output_modalities

    def parse(self, raw: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        return parse(raw)

    def worst_case(self, request: dict[str, Any], cand: Candidate) -> Units:
        context = cand.endpoint.context_length or cand.model.context_length
        return Units(input_tokens=token_bound(request, context))

    async def respond(self, call: ModalityCall, answer: Embeddings, send: Send) -> None:
        cost = call.settle(answer)
        assert call.outcome is not None
        as_base64 = call.body["encoding_format"] == "base64"
        data = [
            EmbeddingObject(encode_base64_floats(floats(v)) if as_base64 else v, i)
            for i, v in enumerate(answer.vectors)
        ]
        cand = call.outcome.candidate
        tokens = answer.prompt_tokens
        payload = EmbeddingsResponse(
            id=call.gen_id,
            model=cand.model.id,
            provider=cand.provider.name,
            data=data,
            usage=EmbeddingsUsage(tokens, tokens, money(cost.total) or Decimal(0), cand.byok is not None),
        )
        await send_json(send, 200, encode(payload), call.gen_id, {})


# -- GET /embeddings/models --------------------------------------------------------------------------------


async def list_embeddings_models(request: Request) -> Response:
    """The live models that make embeddings, in /models' order and shape; a page when offset or limit
    is given (the SDKs send both), the whole list otherwise."""
    await auth.any_key(request)
    entries = [e for e in _view(request).entries if "embeddings" in e.outputs]
    offset = _int_param(request, "offset", 0)
    limit = _int_param(request, "limit", 1, MAX_LIMIT)
    page, next_url = entries, None
    if offset is not None or limit is not None:
        offset, limit = offset or 0, limit or DEFAULT_LIMIT
        page = entries[offset : offset + limit]
        if offset + limit < len(entries):
            next_url = str(request.url.include_query_params(offset=offset + limit, limit=limit))
    body = {"data": [e.body for e in page], "total_count": len(entries), "links": {"next": next_url}}
    return Response(encode(body), media_type="application/json")


routes = [
    Route("/embeddings", ModalityEndpoint(EmbeddingsModality()), methods=["POST"]),
    Route("/embeddings/models", list_embeddings_models, methods=["GET"]),
]

TAGS = {"Embeddings": "Vectors of text, tokens or images, for search and retrieval"}

OPERATIONS = {
    ("/embeddings", "post"): Operation(
        operation_id="createEmbeddings",
        summary="Submit an embedding request",
        tag="Embeddings",
        auth="inference",
        body=EmbeddingsRequest,
        body_description=(
            "Routed like chat: `models` fallbacks, `provider` preferences, BYOK. Inputs are sent to the provider "
            "in batches of its limit, joined in order."
        ),
        response=EmbeddingsResponse,
        headers=("X-Generation-Id",),
        errors=(400, 401, 402, 403, 404, 408, 413, 429, 500, 502, 503),
        description="Embeds the input; billed per input token at the endpoint's prompt price.",
    ),
    ("/embeddings/models", "get"): Operation(
        operation_id="listEmbeddingsModels",
        summary="List all embeddings models",
        tag="Embeddings",
        auth="any",
        query=EmbeddingsModelsQuery,
        response=s.ModelsListResponse,
        errors=(400, 401, 500),
    ),
}
