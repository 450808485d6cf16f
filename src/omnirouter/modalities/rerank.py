"""`POST /rerank`: a query and documents (strings, or objects with `text` and/or `image`) in, the
documents' relevance scores best first out, on the inference pipeline (pipeline/modality.py).

Upstreams by provider `api` (providers/rerank/): Cohere's v2 API, Jina's (also vLLM's and
Infinity's; an `openai` provider serving a rerank model, such as vLLM, is asked in Jina's shape), the
sandbox. Priced per search unit (`pricing.search_unit`), per token
(`pricing.prompt`), or both, as the endpoint's catalog prices say.

Beyond OpenRouter's document: `return_documents` (default true, as Jina's API), false leaves each
result's `document` out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType
from starlette.routing import Route
from starlette.types import Send

from omnirouter.accounting.units import Units
from omnirouter.catalog.types import Model
from omnirouter.errors import GatewayError
from omnirouter.formats.chat_messages import explain
from omnirouter.formats.openai_chat import ProviderPrefs
from omnirouter.jsonio import encode, money
from omnirouter.openapi_doc import Operation
from omnirouter.pipeline.answer import send_json
from omnirouter.pipeline.modality import Handler, ModalityCall, ModalityEndpoint
from omnirouter.providers.rerank import cohere, jina, sandbox
from omnirouter.providers.rerank.ranking import DOCUMENTS_PER_SEARCH_UNIT, Ranking
from omnirouter.routing.plan import Candidate

MAX_DOCUMENTS = 1000  # Cohere's and Jina's own limit per request
# Cohere bills a document longer than this (with the query) as one more document per started chunk.
COHERE_CHUNK_TOKENS = 500


class DocumentObject(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A structured document: `text`, `image` (a URL or data URI, for multimodal models), or both."""

    text: str | UnsetType = UNSET
    image: str | UnsetType = UNSET


# A document: a string, or an object with a text or an image (or both).
Document = Annotated[
    str | DocumentObject,
    Meta(
        extra_json_schema={
            "if": {"type": "object"},
            "then": {"anyOf": [{"required": ["text"]}, {"required": ["image"]}]},
        }
    ),
]


class RerankRequest(msgspec.Struct, kw_only=True):
    model: str | None = None
    models: list[str] | None = None  # fallbacks, as chat's
    query: Annotated[str, Meta(min_length=1)]
    documents: Annotated[list[Document], Meta(min_length=1, max_length=MAX_DOCUMENTS)]
    top_n: Annotated[int, Meta(ge=1)] | None = None
    return_documents: bool = True
    provider: ProviderPrefs | None = None
    user: str | None = None
    session_id: Annotated[str, Meta(max_length=256)] | None = None
    trace: dict[str, Any] | None = None


class RerankDocument(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The document as the client sent it (text and/or image)."""

    text: str | None = None
    image: str | None = None


class RerankResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    index: int  # the document's position in the request
    relevance_score: float
    document: RerankDocument | UnsetType = UNSET  # left out with return_documents false


class RerankUsage(msgspec.Struct, kw_only=True):
    search_units: int
    total_tokens: int
    cost: Decimal  # USD charged


class RerankResponse(msgspec.Struct, kw_only=True):
    id: str  # the generation id, for GET /generation
    model: str
    provider: str
    results: list[RerankResult]  # best first, at most top_n
    usage: RerankUsage


# The request as the document describes it: what the pipeline requires beyond the fields' types.
RerankRequestBody = Annotated[
    RerankRequest,
    Meta(
        extra_json_schema={
            "anyOf": [
                {"required": ["model"], "properties": {"model": {"type": "string", "minLength": 1}}},
                {"required": ["models"], "properties": {"models": {"type": "array", "minItems": 1}}},
            ]
        }
    ),
]

_INTEGER_FIELDS = ("top_n",)


def _request(body: dict[str, Any]) -> RerankRequest:
    try:
        return msgspec.convert(body, RerankRequest)
    except msgspec.ValidationError as exc:
        # JSON has one number type: top_n 3.0 is the integer 3, as JSON Schema reads it.
        changed = False
        for name in _INTEGER_FIELDS:
            if isinstance(value := body.get(name), float) and value.is_integer():
                body[name], changed = int(value), True
        if changed:
            return _request(body)
        raise GatewayError(400, f"Invalid request: {explain(str(exc), body)}") from None


def _worst_tokens(query: str, documents: list[Any]) -> list[int]:
    """Per document, the most tokens the query beside it can be: one a UTF-8 byte."""
    q = len(query.encode())
    return [q + len((d if isinstance(d, str) else d.get("text") or "").encode()) for d in documents]


class Rerank:
    name = "rerank"
    api_type = "rerank"
    # An OpenAI-compatible server that reranks (vLLM) does so in Jina's shape, beside its /v1/chat/completions.
    handlers: Mapping[str, Handler] = {
        "cohere": cohere.rerank,
        "jina": jina.rerank,
        "openai": jina.rerank,
        "sandbox": sandbox.rerank,
    }

    def serves(self, model: Model) -> bool:
        return "rerank" in model.architecture.output_modalities

    def parse(self, raw: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        try:
            body = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            raise GatewayError(400, "Request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise GatewayError(400, "Request body must be a JSON object")
        req = _request(body)
        for i, doc in enumerate(req.documents):
            if isinstance(doc, DocumentObject) and doc.text is UNSET and doc.image is UNSET:
                raise GatewayError(400, f"documents[{i}] needs a text or an image")
        # The routing fields as sent (the seam plans from them); the rest as the handlers read it.
        request = {k: body[k] for k in ("model", "models", "provider", "user", "route") if k in body}
        documents = [d if isinstance(d, str) else msgspec.to_builtins(d) for d in req.documents]
        request.update(query=req.query, documents=documents, top_n=req.top_n, return_documents=req.return_documents)
        return request

    def worst_case(self, request: dict[str, Any], cand: Candidate) -> Units:
        tokens = _worst_tokens(request["query"], request["documents"])
        chunks = sum(max(1, math.ceil(t / COHERE_CHUNK_TOKENS)) for t in tokens)
        return Units(input_tokens=sum(tokens), search_units=math.ceil(chunks / DOCUMENTS_PER_SEARCH_UNIT))

    async def respond(self, call: ModalityCall, answer: Ranking, send: Send) -> None:
        cost = call.settle(answer)
        assert call.outcome is not None
        cand = call.outcome.candidate
        documents = call.body["documents"]
        echo = call.body["return_documents"]
        results = [
            RerankResult(
                index=index,
                relevance_score=score,
                document=_echo(documents[index]) if echo else UNSET,
            )
            for index, score in answer.results
        ]
        payload = RerankResponse(
            id=call.gen_id,
            model=cand.model.id,
            provider=cand.provider.name,
            results=results,
            usage=RerankUsage(
                search_units=answer.search_units, total_tokens=answer.total_tokens, cost=money(cost.total) or Decimal(0)
            ),
        )
        await send_json(send, 200, encode(payload), call.gen_id, {})


def _echo(document: str | dict[str, Any]) -> RerankDocument:
    if isinstance(document, str):
        return RerankDocument(text=document)
    return RerankDocument(text=document.get("text"), image=document.get("image"))


RERANK = Rerank()

routes = [Route("/rerank", ModalityEndpoint(RERANK), methods=["POST"])]

TAGS = {"Rerank": "Documents ordered by their relevance to a query"}

OPERATIONS = {
    ("/rerank", "post"): Operation(
        operation_id="createRerank",
        summary="Submit a rerank request",
        tag="Rerank",
        auth="inference",
        body=RerankRequestBody,
        body_description=(
            "`model` (or `models`, tried in order) must be a rerank model. At most "
            f"{MAX_DOCUMENTS} documents; an object document needs `text` or `image`. `return_documents` "
            "(default true) false leaves each result's `document` out."
        ),
        response=RerankResponse,
        response_description="The documents' indices and scores, best first (at most `top_n`)",
        headers=("X-Generation-Id",),
        errors=(400, 401, 402, 403, 404, 408, 413, 422, 429, 500, 502, 503),
        description=(
            "Routes the request to a provider serving the rerank model, with fallbacks. Priced per search unit "
            f"(one per started {DOCUMENTS_PER_SEARCH_UNIT} documents, or what Cohere bills), per token, or both, "
            "as the endpoint's pricing says; `usage.cost` is what was charged."
        ),
    ),
}
