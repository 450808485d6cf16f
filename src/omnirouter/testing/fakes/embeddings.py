"""Fake embeddings APIs: OpenAI (`POST /v1/embeddings`), Azure OpenAI (a deployment's `/embeddings`),
Gemini (`:batchEmbedContents`), Cohere (`POST /v2/embed`), Voyage (`/v1/embeddings`,
`/v1/multimodalembeddings`) and Jina (`/v1/embeddings`), each on the shared fake core (real HTTP on
loopback, scripted ``Status``/``Delay``/``Reset``/``BrokenJSON`` faults, recorded requests, the
provider's auth and error envelope).

A ``Reply`` (or no script) answers with deterministic vectors: each input's hashed bag of words
(testing/similarity.py) in the asked dimensions (``dims`` by default), so equal texts embed alike.
``Reply(prompt_tokens=N)`` sets the reported tokens (one per word otherwise), ``Reply(usage={...})``
replaces the usage object, ``Reply(headers=...)`` adds headers. Each fake refuses what its API
refuses: more inputs than its batch limit, blank inputs, a missing or unknown ``input_type``.

    async with FakeCohereEmbed(api_key="co-key") as fake:
        fake.script(Status(503))
        ...  # a provider with api "cohere" and base_url fake.base_url
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any, ClassVar

from aiohttp import web

from omnirouter.testing.fakes.core import (
    FakeServer,
    Reply,
    Route,
    Step,
    Stream,
    Wire,
    WireError,
    json_response,
)
from omnirouter.testing.fakes.gemini import GeminiWire
from omnirouter.testing.fakes.openai import OpenAIWire
from omnirouter.testing.similarity import vector, words

__all__ = [
    "AzureEmbeddingsWire",
    "CohereEmbedWire",
    "EmbeddingsFake",
    "EmbeddingsWire",
    "FakeAzureEmbed",
    "FakeCohereEmbed",
    "FakeGeminiEmbed",
    "FakeJinaEmbed",
    "FakeOpenAIEmbed",
    "FakeVoyageEmbed",
    "Inputs",
    "image_word",
    "token_count",
]

DEFAULT_DIMS = 64


def token_count(texts: list[str]) -> int:
    """What the fakes report by default: one token per word, at least one per input."""
    return sum(max(1, len(words(t))) for t in texts)


def image_word(data: str) -> str:
    return "img" + hashlib.blake2b(data.encode(), digest_size=6).hexdigest()


class Inputs:
    """What one request asks to embed, as texts (images stand as a word naming their data)."""

    def __init__(self, texts: list[str], dims: int | None = None) -> None:
        self.texts = texts
        self.dims = dims


class EmbeddingsWire(Wire):
    """One embeddings API: ``inputs`` reads a request, ``answer`` writes the vectors."""

    max_inputs: ClassVar[int] = 2048

    def inputs(self, body: Any, request: web.Request) -> Inputs:
        raise NotImplementedError

    def answer(self, body: Any, request: web.Request, vectors: list[list[float]], tokens: int, reply: Reply) -> Any:
        raise NotImplementedError

    def answer_headers(self, tokens: int) -> dict[str, str]:
        return {}


def _bearer_auth(request: web.Request, api_key: str) -> WireError | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme != "Bearer" or token.strip() != api_key:
        return WireError(401, "invalid api token")
    return None


def _texts(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(t, str) for t in value):
        raise WireError(400, f"{what} must be a non-empty list of strings")
    if not all(t.strip() for t in value):
        raise WireError(400, f"{what} must not contain empty strings")
    return value


class EmbeddingsFake(FakeServer):
    """A fake embeddings upstream: scripted faults as every fake, a ``Reply`` answers with vectors."""

    wire: ClassVar[EmbeddingsWire]

    def __init__(self, *, dims: int = DEFAULT_DIMS, **options: Any) -> None:
        super().__init__(**options)
        self.dims = dims

    async def _perform(self, step: Step | None, ex: Any, route: Route) -> web.StreamResponse:
        if step is not None and (not isinstance(step, Reply) or isinstance(step, Stream)):
            return await super()._perform(step, ex, route)
        reply = step or Reply()
        wire = self.wire
        try:
            if not isinstance(ex.json, dict):
                raise WireError(400, "The request body must be a JSON object")
            asked = wire.inputs(ex.json, ex.request)
        except WireError as err:
            return self._error(err)
        if len(asked.texts) > wire.max_inputs:
            return self._error(WireError(400, f"at most {wire.max_inputs} inputs per request, got {len(asked.texts)}"))
        dims = asked.dims or self.dims
        vectors = [vector(t, dims) for t in asked.texts]
        tokens = reply.prompt_tokens if reply.prompt_tokens is not None else token_count(asked.texts)
        headers = {**wire.answer_headers(tokens), **(reply.headers or {})}
        return json_response(wire.answer(ex.json, ex.request, vectors, tokens, reply), headers=headers)


# -- OpenAI --------------------------------------------------------------------------------------------


def _b64(v: list[float]) -> str:
    import array

    return base64.b64encode(array.array("f", v).tobytes()).decode()


class OpenAIEmbeddingsWire(OpenAIWire, EmbeddingsWire):
    """``POST /v1/embeddings``: strings, token arrays, or ``{"content": [parts]}`` objects."""

    name: ClassVar[str] = "FakeOpenAIEmbed"
    max_inputs: ClassVar[int] = 2048

    def routes(self) -> list[Route]:
        return [Route("POST", "/embeddings")]

    def inputs(self, body: Any, request: web.Request) -> Inputs:
        if not isinstance(body.get("model"), str):
            raise WireError(400, "you must provide a model parameter", "model")
        value = body.get("input")
        items = value if isinstance(value, list) and value and not isinstance(value[0], int) else [value]
        texts = []
        for item in items:
            if isinstance(item, str) and item:
                texts.append(item)
            elif isinstance(item, list) and item and all(type(t) is int for t in item):
                texts.append(" ".join(f"t{t}" for t in item))
            elif isinstance(item, dict) and isinstance(item.get("content"), list):
                texts.append(" ".join(_part_text(p) for p in item["content"]))
            else:
                raise WireError(400, "'$.input' is invalid. Please check the API reference.", "input")
        dims = body.get("dimensions")
        if dims is not None and (type(dims) is not int or dims < 1):
            raise WireError(400, "Invalid value for 'dimensions'", "dimensions")
        if body.get("encoding_format", "float") not in ("float", "base64"):
            raise WireError(400, "Invalid value for 'encoding_format'", "encoding_format")
        return Inputs(texts, dims)

    def answer(self, body: Any, request: web.Request, vectors: list[list[float]], tokens: int, reply: Reply) -> Any:
        as_b64 = body.get("encoding_format") == "base64"
        return {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": _b64(v) if as_b64 else v}
                for i, v in enumerate(vectors)
            ],
            "model": reply.model or body["model"],
            "usage": reply.usage or {"prompt_tokens": tokens, "total_tokens": tokens},
        }


def _part_text(part: Any) -> str:
    if not isinstance(part, dict):
        raise WireError(400, "content parts must be objects")
    if part.get("type") == "text":
        return str(part.get("text", ""))
    if part.get("type") == "image_url":
        return image_word(str((part.get("image_url") or {}).get("url", "")))
    raise WireError(400, f"unsupported content part {part.get('type')!r}")


class FakeOpenAIEmbed(EmbeddingsFake):
    """A fake OpenAI embeddings API; its ``base_url`` ends in ``/v1``."""

    wire: ClassVar[EmbeddingsWire] = OpenAIEmbeddingsWire()


class AzureEmbeddingsWire(OpenAIEmbeddingsWire):
    """Azure OpenAI's ``POST /openai/deployments/{deployment}/embeddings?api-version=...``, ``api-key``
    auth; the deployment names the model (a body's ``model`` is optional and ignored)."""

    name: ClassVar[str] = "FakeAzureEmbed"
    base_path: ClassVar[str] = ""

    def routes(self) -> list[Route]:
        return [Route("POST", "/openai/deployments/{deployment}/embeddings")]

    def inputs(self, body: Any, request: web.Request) -> Inputs:
        if not request.query.get("api-version"):
            raise WireError(404, "Resource not found")
        return super().inputs({"model": request.match_info["deployment"], **body}, request)

    def answer(self, body: Any, request: web.Request, vectors: list[list[float]], tokens: int, reply: Reply) -> Any:
        return super().answer({"model": request.match_info["deployment"], **body}, request, vectors, tokens, reply)

    def check_auth(self, request: web.Request, api_key: str) -> WireError | None:
        if request.headers.get("api-key") != api_key:
            return WireError(401, "Access denied due to invalid subscription key or wrong API endpoint.")
        return None


class FakeAzureEmbed(EmbeddingsFake):
    """A fake Azure OpenAI resource serving embeddings; its ``base_url`` is the resource URL."""

    wire: ClassVar[EmbeddingsWire] = AzureEmbeddingsWire()


# -- Gemini --------------------------------------------------------------------------------------------


class GeminiEmbeddingsWire(GeminiWire, EmbeddingsWire):
    """``POST /v1beta/models/{model}:batchEmbedContents``; each request names ``models/{model}``."""

    name: ClassVar[str] = "FakeGeminiEmbed"
    max_inputs: ClassVar[int] = 100
    TASK_TYPES: ClassVar[frozenset[str]] = frozenset(
        {
            "TASK_TYPE_UNSPECIFIED",
            "RETRIEVAL_QUERY",
            "RETRIEVAL_DOCUMENT",
            "SEMANTIC_SIMILARITY",
            "CLASSIFICATION",
            "CLUSTERING",
            "QUESTION_ANSWERING",
            "FACT_VERIFICATION",
            "CODE_RETRIEVAL_QUERY",
        }
    )

    def routes(self) -> list[Route]:
        return [Route("POST", "/models/{model}:batchEmbedContents")]

    def inputs(self, body: Any, request: web.Request) -> Inputs:
        model = "models/" + request.match_info["model"]
        reqs = body.get("requests")
        if not isinstance(reqs, list) or not reqs:
            raise WireError(400, "* BatchEmbedContentsRequest.requests: must not be empty")
        texts, dims = [], None
        for i, r in enumerate(reqs):
            if not isinstance(r, dict) or r.get("model") != model:
                raise WireError(400, f"Model in request {i} does not match the model {model!r} of the batch.")
            if r.get("taskType") is not None and r["taskType"] not in self.TASK_TYPES:
                raise WireError(400, f"Invalid value at 'requests[{i}].task_type' ({r['taskType']})")
            parts = (r.get("content") or {}).get("parts")
            if not isinstance(parts, list) or not parts:
                raise WireError(
                    400, f"* BatchEmbedContentsRequest.requests[{i}].content.parts: contents must not be empty"
                )
            text = []
            for p in parts:
                if isinstance(p.get("text"), str) and p["text"].strip():
                    text.append(p["text"])
                elif isinstance(p.get("inlineData"), dict) and p["inlineData"].get("data"):
                    text.append(
                        image_word("data:" + p["inlineData"].get("mimeType", "") + ";base64," + p["inlineData"]["data"])
                    )
                else:
                    raise WireError(400, f"* requests[{i}].content.parts: empty or unsupported part")
            texts.append(" ".join(text))
            dims = r.get("outputDimensionality", dims)
        return Inputs(texts, dims)

    def answer(self, body: Any, request: web.Request, vectors: list[list[float]], tokens: int, reply: Reply) -> Any:
        out: dict[str, Any] = {"embeddings": [{"values": v} for v in vectors]}
        if reply.usage is not None:
            out["usageMetadata"] = reply.usage
        return out


class FakeGeminiEmbed(EmbeddingsFake):
    """A fake Gemini embeddings API; its ``base_url`` ends in ``/v1beta``. Like Gemini, it reports no
    token counts unless ``Reply(usage={"promptTokenCount": N})`` says to."""

    wire: ClassVar[EmbeddingsWire] = GeminiEmbeddingsWire()


# -- Cohere --------------------------------------------------------------------------------------------


class CohereEmbedWire(EmbeddingsWire):
    """Cohere's ``POST /v2/embed``: ``texts`` or ``inputs`` (content with images), a required
    ``input_type``, ``embedding_types``; billed tokens in ``meta.billed_units``."""

    name: ClassVar[str] = "FakeCohereEmbed"
    base_path: ClassVar[str] = ""
    max_inputs: ClassVar[int] = 96
    INPUT_TYPES: ClassVar[frozenset[str]] = frozenset(
        {"search_document", "search_query", "classification", "clustering", "image"}
    )

    def routes(self) -> list[Route]:
        return [Route("POST", "/v2/embed")]

    def inputs(self, body: Any, request: web.Request) -> Inputs:
        return cohere_inputs(body, needs_model=True)

    def answer(self, body: Any, request: web.Request, vectors: list[list[float]], tokens: int, reply: Reply) -> Any:
        return cohere_answer(body, vectors, tokens, reply)

    def error_body(self, status: int, message: str | None = None, param: str | None = None) -> Any:
        return {"id": secrets.token_hex(8), "message": message or f"request failed with status {status}"}

    def check_auth(self, request: web.Request, api_key: str) -> WireError | None:
        return _bearer_auth(request, api_key)


def cohere_inputs(body: Any, *, needs_model: bool) -> Inputs:
    """Cohere's embed body (Cohere's API, and Cohere on Bedrock without the model)."""
    if needs_model and not isinstance(body.get("model"), str):
        raise WireError(400, "invalid request: model must be specified")
    if body.get("input_type") not in CohereEmbedWire.INPUT_TYPES:
        raise WireError(
            400, "invalid request: input_type must be one of " + ", ".join(sorted(CohereEmbedWire.INPUT_TYPES))
        )
    types = body.get("embedding_types")
    if types is not None and types != ["float"]:
        raise WireError(400, "invalid request: this fake embeds floats only")
    if "texts" in body:
        texts = _texts(body["texts"], "texts")
    elif isinstance(body.get("inputs"), list) and body["inputs"]:
        texts = [" ".join(_part_text(p) for p in (item or {}).get("content") or []) for item in body["inputs"]]
    else:
        raise WireError(400, "invalid request: one of texts, images or inputs must be specified")
    return Inputs(texts, body.get("output_dimension"))


def cohere_answer(body: Any, vectors: list[list[float]], tokens: int, reply: Reply) -> dict[str, Any]:
    return {
        "id": secrets.token_hex(16),
        "embeddings": {"float": vectors},
        "texts": body.get("texts", []),
        "meta": reply.usage or {"api_version": {"version": "2"}, "billed_units": {"input_tokens": tokens}},
        "response_type": "embeddings_by_type",
    }


class FakeCohereEmbed(EmbeddingsFake):
    """A fake Cohere API (``/v2/embed``); its ``base_url`` is the API root."""

    wire: ClassVar[EmbeddingsWire] = CohereEmbedWire()


# -- Voyage and Jina --------------------------------------------------------------------------------------


def _detail_error(status: int, message: str | None) -> dict[str, Any]:
    return {"detail": message or f"request failed with status {status}"}


def _list_answer(body: Any, vectors: list[list[float]], usage: dict[str, Any], reply: Reply) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"object": "embedding", "embedding": v, "index": i} for i, v in enumerate(vectors)],
        "model": reply.model or body.get("model"),
        "usage": reply.usage or usage,
    }


class VoyageWire(EmbeddingsWire):
    """Voyage's ``POST /v1/embeddings`` (``input``, ``input_type`` query/document, ``output_dimension``)
    and ``POST /v1/multimodalembeddings`` (``inputs`` of content with ``image_url``/``image_base64``)."""

    name: ClassVar[str] = "FakeVoyageEmbed"
    base_path: ClassVar[str] = "/v1"
    max_inputs: ClassVar[int] = 1000

    def routes(self) -> list[Route]:
        return [Route("POST", "/embeddings"), Route("POST", "/multimodalembeddings")]

    def inputs(self, body: Any, request: web.Request) -> Inputs:
        if not isinstance(body.get("model"), str):
            raise WireError(400, "Field 'model' is required")
        if body.get("input_type") not in (None, "query", "document"):
            raise WireError(400, "Value for 'input_type' must be one of None, 'query', 'document'")
        if request.path.endswith("/multimodalembeddings"):
            items = body.get("inputs")
            if not isinstance(items, list) or not items:
                raise WireError(400, "Field 'inputs' must be a non-empty list")
            texts = []
            for item in items:
                text = []
                for p in (item or {}).get("content") or []:
                    if p.get("type") == "text":
                        text.append(p.get("text", ""))
                    elif p.get("type") in ("image_url", "image_base64"):
                        text.append(image_word(p.get(p["type"], "")))
                    else:
                        raise WireError(400, f"Unsupported content type {p.get('type')!r}")
                texts.append(" ".join(text))
            return Inputs(texts)
        value = body.get("input")
        return Inputs(_texts([value] if isinstance(value, str) else value, "input"), body.get("output_dimension"))

    def answer(self, body: Any, request: web.Request, vectors: list[list[float]], tokens: int, reply: Reply) -> Any:
        return _list_answer(body, vectors, {"total_tokens": tokens}, reply)

    def error_body(self, status: int, message: str | None = None, param: str | None = None) -> Any:
        return _detail_error(status, message)

    def check_auth(self, request: web.Request, api_key: str) -> WireError | None:
        return _bearer_auth(request, api_key)


class FakeVoyageEmbed(EmbeddingsFake):
    """A fake Voyage AI API; its ``base_url`` ends in ``/v1``."""

    wire: ClassVar[EmbeddingsWire] = VoyageWire()


class JinaWire(EmbeddingsWire):
    """Jina's ``POST /v1/embeddings``: ``input`` strings or ``{"text"}``/``{"image"}`` objects, ``task``,
    ``dimensions``, ``embedding_type``."""

    name: ClassVar[str] = "FakeJinaEmbed"
    base_path: ClassVar[str] = "/v1"
    max_inputs: ClassVar[int] = 2048
    TASKS: ClassVar[frozenset[str]] = frozenset(
        {
            "retrieval.query",
            "retrieval.passage",
            "text-matching",
            "classification",
            "separation",
            "code.query",
            "code.passage",
        }
    )

    def routes(self) -> list[Route]:
        return [Route("POST", "/embeddings")]

    def inputs(self, body: Any, request: web.Request) -> Inputs:
        if not isinstance(body.get("model"), str):
            raise WireError(422, "Field required: model")
        if body.get("task") is not None and body["task"] not in self.TASKS:
            raise WireError(422, f"Input should be one of {', '.join(sorted(self.TASKS))}")
        items = body.get("input")
        if not isinstance(items, list) or not items:
            raise WireError(422, "Field 'input' must be a non-empty list")
        texts = []
        for item in items:
            if isinstance(item, str) and item.strip():
                texts.append(item)
            elif isinstance(item, dict) and isinstance(item.get("text"), str):
                texts.append(item["text"])
            elif isinstance(item, dict) and isinstance(item.get("image"), str):
                texts.append(image_word(item["image"]))
            else:
                raise WireError(422, "Each input must be a non-empty string, or an object with text or image")
        return Inputs(texts, body.get("dimensions"))

    def answer(self, body: Any, request: web.Request, vectors: list[list[float]], tokens: int, reply: Reply) -> Any:
        return _list_answer(body, vectors, {"total_tokens": tokens, "prompt_tokens": tokens}, reply)

    def error_body(self, status: int, message: str | None = None, param: str | None = None) -> Any:
        return _detail_error(status, message)

    def check_auth(self, request: web.Request, api_key: str) -> WireError | None:
        return _bearer_auth(request, api_key)


class FakeJinaEmbed(EmbeddingsFake):
    """A fake Jina AI API; its ``base_url`` ends in ``/v1``."""

    wire: ClassVar[EmbeddingsWire] = JinaWire()


if __name__ == "__main__":
    from omnirouter.testing.fakes.core import main

    main(FakeOpenAIEmbed, "python -m omnirouter.testing.fakes.embeddings")
