"""A fake Bedrock runtime for embeddings: ``POST /model/{modelId}/invoke`` for Amazon Titan
(``amazon.titan-embed-text-v2:0``: one ``inputText`` a call, ``dimensions`` 256/512/1024,
``normalize``; v1 takes ``inputText`` alone; ``amazon.titan-embed-image-v1`` also ``inputImage`` and
``embeddingConfig``) and Cohere on Bedrock (``cohere.embed-*``: Cohere's body without the model, at
most 96 texts). Auth, errors (``x-amzn-ErrorType``) and SigV4 checking are the chat fake's
(fakes/bedrock.py): ``api_key="ACCESS_KEY_ID:SECRET"`` checks every signature, a Bearer API key works too.
Like Bedrock, it refuses fields a model does not take ("extraneous key"), and reports the input tokens
in ``X-Amzn-Bedrock-Input-Token-Count``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from aiohttp import web

from omnirouter.testing.fakes.bedrock import BedrockWire
from omnirouter.testing.fakes.core import Reply, Route, WireError
from omnirouter.testing.fakes.embeddings import (
    EmbeddingsFake,
    EmbeddingsWire,
    Inputs,
    cohere_answer,
    cohere_inputs,
    image_word,
)

__all__ = ["BedrockEmbeddingsWire", "FakeBedrockEmbed"]

TITAN_KEYS = {
    "text-v2": {"inputText", "dimensions", "normalize", "embeddingTypes"},
    "text-v1": {"inputText"},
    "image": {"inputText", "inputImage", "embeddingConfig"},
}
TITAN_V2_DIMENSIONS = (256, 512, 1024)


def _titan_family(model: str) -> str | None:
    for family in TITAN_KEYS:
        if f"titan-embed-{family}" in model:
            return family
    return None


class BedrockEmbeddingsWire(BedrockWire, EmbeddingsWire):
    name: ClassVar[str] = "FakeBedrockEmbed"
    max_inputs: ClassVar[int] = 96

    def routes(self) -> list[Route]:
        return [Route("POST", "/model/{modelId}/invoke")]

    def inputs(self, body: Any, request: web.Request) -> Inputs:
        model = request.match_info["modelId"]
        if "cohere.embed" in model:
            return cohere_inputs(body, needs_model=False)
        family = _titan_family(model)
        if family is None:
            raise WireError(404, f"The provided model identifier is invalid: {model}")
        extra = sorted(set(body) - TITAN_KEYS[family])
        if extra:
            raise WireError(400, f"Malformed input request: extraneous key [{extra[0]}] is not permitted")
        text = body.get("inputText")
        image = body.get("inputImage")
        if not (isinstance(text, str) and text.strip()) and not image:
            raise WireError(400, "Malformed input request: expected minLength: 1, actual: 0")
        dims = body.get("dimensions")
        if dims is not None and dims not in TITAN_V2_DIMENSIONS:
            raise WireError(400, f"Malformed input request: #/dimensions: {dims} is not a valid enum value")
        if family == "image":
            dims = (body.get("embeddingConfig") or {}).get("outputEmbeddingLength")
        words = [text or ""] + ([image_word(str(image))] if image else [])
        return Inputs([" ".join(words).strip()], dims or (1024 if family == "text-v2" else None))

    def answer(self, body: Any, request: web.Request, vectors: list[list[float]], tokens: int, reply: Reply) -> Any:
        if "cohere.embed" in request.match_info["modelId"]:
            return cohere_answer(body, vectors, tokens, reply)
        return {"embedding": vectors[0], "inputTextTokenCount": tokens, "embeddingsByType": {"float": vectors[0]}}

    def answer_headers(self, tokens: int) -> dict[str, str]:
        return {"X-Amzn-Bedrock-Input-Token-Count": str(tokens)}


class FakeBedrockEmbed(EmbeddingsFake):
    """A fake Bedrock runtime serving embeddings; its ``base_url`` is a provider's ``base_url`` for
    ``api: bedrock``."""

    wire: ClassVar[EmbeddingsWire] = BedrockEmbeddingsWire()

    def _error(self, err: WireError) -> web.Response:
        # As FakeBedrock: `param` carries the exception's name when it is not the status's usual one.
        response = super()._error(err)
        if err.param:
            response.headers["x-amzn-ErrorType"] = f"{err.param}:http://internal.amazon.com/coral/com.amazon.coral/"
        return response
