"""Each embeddings upstream handler against the fake of its API, over real HTTP on loopback: the
request each API expects (auth, fields, batch limits, input_type words), vectors joined in input
order across concurrent batches, tokens as the API reports them, failures as UpstreamError."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from omnirouter.catalog.types import Endpoint, Provider
from omnirouter.providers.base import Timeouts, UpstreamError
from omnirouter.providers.embeddings import HANDLERS
from omnirouter.providers.embeddings.common import decode_base64_floats, encode_base64_floats, floats
from omnirouter.providers.embeddings.request import parse
from omnirouter.providers.http1 import Pool, request_head, split_url
from omnirouter.testing.fakes.core import BrokenJSON, Delay, Reply, Reset, Status
from omnirouter.testing.fakes.embeddings import (
    FakeAzureEmbed,
    FakeCohereEmbed,
    FakeGeminiEmbed,
    FakeJinaEmbed,
    FakeOpenAIEmbed,
    FakeVoyageEmbed,
    token_count,
)
from omnirouter.testing.fakes.embeddings_bedrock import FakeBedrockEmbed
from omnirouter.testing.similarity import vector

TIMEOUTS = Timeouts(connect=5, first_byte=10, total=30)
TEXTS = ["the cat sat on the mat", "a dog in the fog", "the cat on a mat again", "quantum chromodynamics"]
IMAGE = "data:image/png;base64,iVBORw0KGgo="


class SizedEndpoint(Endpoint, kw_only=True):
    """An endpoint configured with its own batch size (the catalog's `embedding_batch_size`)."""

    embedding_batch_size: int | None = None


class LoopbackUpstream:
    """One attempt at one endpoint, offering a handler what pipeline/modality.py's Upstream does."""

    def __init__(self, pool: Pool, provider: Provider, endpoint: Endpoint, api_key: str | None) -> None:
        self.pool, self.provider, self.endpoint, self.api_key = pool, provider, endpoint, api_key
        self.timeouts = TIMEOUTS

    def url(self, path: str) -> str:
        return self.provider.base_url.rstrip("/") + path

    async def send(
        self, method: str, url: str, *, headers: dict[str, str] | None = None, body: bytes = b"", stream: bool = False
    ) -> Any:
        origin, path = split_url(url)
        head = request_head(origin, method, path, {**self.provider.headers, **(headers or {})})
        return await self.pool.request(origin, head + b"%d\r\n\r\n%b" % (len(body), body), self.timeouts, stream=stream)


def embed(
    fake_cls: type,
    api: str,
    model: str,
    body: dict[str, Any],
    *,
    script: tuple[Any, ...] = (),
    fake_key: str = "k",
    api_key: str | None = "k",
    batch: int | None = None,
    supported: list[str] | None = None,
) -> tuple[Any, Any]:
    """(the handler's Embeddings, or the UpstreamError it raised; the fake) for one request."""

    async def go() -> tuple[Any, Any]:
        async with fake_cls(api_key=fake_key) as fake:
            fake.script(*script)
            provider = Provider(slug="p", name="P", api=api, base_url=fake.base_url, region="us-east-1")
            endpoint = SizedEndpoint(
                provider="p", upstream_model=model, embedding_batch_size=batch, supported_parameters=supported
            )
            request = parse(msgspec.json.encode({"model": "x/y", **body}))
            try:
                result = await HANDLERS[api](LoopbackUpstream(Pool(), provider, endpoint, api_key), request)
            except UpstreamError as err:
                result = err
            return result, fake

    return asyncio.run(go())


def assert_vectors(result: Any, texts: list[str], dims: int) -> None:
    assert not isinstance(result, Exception), result
    assert len(result.vectors) == len(texts)
    for got, text in zip(result.vectors, texts, strict=True):
        assert floats(got) == pytest.approx(vector(text, dims))


# -- OpenAI-compatible ----------------------------------------------------------------------------------


def test_openai_sends_its_body_and_bearer_key_and_reads_its_usage() -> None:
    result, fake = embed(
        FakeOpenAIEmbed,
        "openai",
        "text-embedding-3-small",
        {"input": TEXTS, "dimensions": 32, "input_type": "search_query", "user": "u1"},
    )
    assert_vectors(result, TEXTS, 32)
    assert result.prompt_tokens == token_count(TEXTS)
    (sent,) = fake.requests
    assert sent.headers["Authorization"] == "Bearer k"
    # input_type is not OpenAI's: left out unless the endpoint lists it.
    assert sent.json == {
        "model": "text-embedding-3-small",
        "input": TEXTS,
        "encoding_format": "float",
        "dimensions": 32,
        "user": "u1",
    }
    _, fake = embed(
        FakeOpenAIEmbed, "openai", "nv-embed", {"input": "hi", "input_type": "query"}, supported=["input_type"]
    )
    assert fake.requests[0].json["input_type"] == "query"


def test_openai_forwards_token_arrays_and_multimodal_content() -> None:
    result, fake = embed(FakeOpenAIEmbed, "openai", "m", {"input": [[1, 2, 3], [4, 5]]})
    assert fake.requests[0].json["input"] == [[1, 2, 3], [4, 5]]
    assert_vectors(result, ["t1 t2 t3", "t4 t5"], 64)
    content = [{"type": "text", "text": "a red bus"}, {"type": "image_url", "image_url": {"url": IMAGE}}]
    result, fake = embed(FakeOpenAIEmbed, "openai", "m", {"input": [{"content": content}]})
    assert fake.requests[0].json["input"] == [{"content": content}]
    assert len(result.vectors) == 1


def test_batches_are_cut_to_the_configured_size_sent_concurrently_and_joined_in_order() -> None:
    texts = [f"item {i} " + "word " * (i % 3) for i in range(23)]
    # The first batch is slow: the others answer before it, and the order still holds.
    result, fake = embed(FakeOpenAIEmbed, "openai", "m", {"input": texts}, batch=5, script=(Delay(0.3, then=Reply()),))
    assert_vectors(result, texts, 64)
    assert sorted(len(r.json["input"]) for r in fake.requests) == [3, 5, 5, 5, 5]
    assert fake.requests[0].json["input"] == texts[:5]  # it arrived first, answered last
    assert result.prompt_tokens == token_count(texts)


def test_batches_also_stay_under_openais_tokens_per_request() -> None:
    long = "word " * 80_000  # ~100,000 tokens each, as estimated: two fit under the 250,000 budget
    texts = [f"{i} {long}" for i in range(5)]
    result, fake = embed(FakeOpenAIEmbed, "openai", "m", {"input": texts})
    assert sorted(len(r.json["input"]) for r in fake.requests) == [1, 2, 2]
    assert_vectors(result, texts, 64)


def test_one_failed_batch_fails_the_attempt_with_the_upstream_status() -> None:
    texts = [f"item {i}" for i in range(10)]
    err, _ = embed(FakeOpenAIEmbed, "openai", "m", {"input": texts}, batch=4, script=(Reply(), Status(503)))
    assert isinstance(err, UpstreamError) and err.status == 503 and err.retryable


@pytest.mark.parametrize(
    ("step", "status", "kind"),
    [
        (Status(429, retry_after=2), 429, "http"),
        (Reset(), None, None),
        (BrokenJSON(), 502, "protocol"),
        (Status(400, {"error": {"message": "bad dims", "code": "invalid"}}), 400, "http"),
    ],
)
def test_upstream_faults_are_upstream_errors(step: Any, status: int | None, kind: str | None) -> None:
    err, _ = embed(FakeOpenAIEmbed, "openai", "m", {"input": "hello"}, script=(step,))
    assert isinstance(err, UpstreamError)
    assert err.status == status
    if kind:
        assert err.kind == kind
    if status == 429:
        assert err.retry_after == 2
    if status == 400:
        assert err.message == "bad dims" and not err.retryable


def test_an_answer_with_too_few_vectors_is_the_upstreams_fault() -> None:
    short = {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.5, 0.5]}]}
    err, _ = embed(FakeOpenAIEmbed, "openai", "m", {"input": ["a b", "c d"]}, script=(Status(200, short),))
    assert isinstance(err, UpstreamError) and err.status == 502 and err.retryable
    assert "1 embeddings for 2 inputs" in err.message


def test_a_wrong_key_is_the_upstreams_401() -> None:
    err, _ = embed(FakeOpenAIEmbed, "openai", "m", {"input": "hello"}, api_key="wrong")
    assert isinstance(err, UpstreamError) and err.status == 401


def test_azure_sends_to_the_deployment_with_its_api_key() -> None:
    result, fake = embed(FakeAzureEmbed, "azure", "my-embedding-deployment", {"input": TEXTS, "dimensions": 16})
    assert_vectors(result, TEXTS, 16)
    (sent,) = fake.requests
    assert sent.path == "/openai/deployments/my-embedding-deployment/embeddings"
    assert sent.query == {"api-version": "2024-10-21"}
    assert sent.headers["api-key"] == "k" and "Authorization" not in sent.headers
    err, _ = embed(FakeAzureEmbed, "azure", "d", {"input": "x"}, api_key="wrong")
    assert isinstance(err, UpstreamError) and err.status == 401


# -- Gemini ----------------------------------------------------------------------------------------------


def test_gemini_batch_embed_contents_with_task_type_and_dimensions() -> None:
    texts = [f"doc {i} about cats" for i in range(150)]
    result, fake = embed(
        FakeGeminiEmbed,
        "gemini",
        "gemini-embedding-001",
        {"input": texts, "dimensions": 48, "input_type": "search_document"},
    )
    assert_vectors(result, texts, 48)
    assert sorted(len(r.json["requests"]) for r in fake.requests) == [50, 100]  # its limit: 100 a batch
    sent = next(r for r in fake.requests if len(r.json["requests"]) == 100)
    assert sent.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert sent.headers["x-goog-api-key"] == "k" and "Authorization" not in sent.headers
    assert sent.json["requests"][0] == {
        "model": "models/gemini-embedding-001",
        "content": {"parts": [{"text": texts[0]}]},
        "taskType": "RETRIEVAL_DOCUMENT",
        "outputDimensionality": 48,
    }
    # Gemini reports no tokens: four characters a token.
    assert result.prompt_tokens == sum((len(t) + 3) // 4 for t in texts)


def test_gemini_reports_tokens_when_it_does_and_takes_inline_images() -> None:
    content = [{"type": "text", "text": "a red bus"}, {"type": "image_url", "image_url": {"url": IMAGE}}]
    result, fake = embed(
        FakeGeminiEmbed,
        "gemini",
        "gemini-embedding-2",
        {"input": [{"content": content}]},
        script=(Reply(usage={"promptTokenCount": 300}),),
    )
    assert result.prompt_tokens == 300
    parts = fake.requests[0].json["requests"][0]["content"]["parts"]
    assert parts == [{"text": "a red bus"}, {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]
    err, fake = embed(FakeGeminiEmbed, "gemini", "g", {"input": [[1, 2]]})
    assert isinstance(err, UpstreamError) and err.status == 400 and not fake.requests


# -- Cohere ----------------------------------------------------------------------------------------------


def test_cohere_v2_embed_in_batches_of_96_with_a_default_input_type() -> None:
    texts = [f"passage {i}" for i in range(200)]
    result, fake = embed(FakeCohereEmbed, "cohere", "embed-v4.0", {"input": texts, "dimensions": 256})
    assert_vectors(result, texts, 256)
    assert sorted(len(r.json["texts"]) for r in fake.requests) == [8, 96, 96]
    sent = fake.requests[0]
    assert sent.path == "/v2/embed" and sent.headers["Authorization"] == "Bearer k"
    assert sent.json["input_type"] == "search_document" and sent.json["embedding_types"] == ["float"]
    assert sent.json["output_dimension"] == 256 and sent.json["model"] == "embed-v4.0"
    assert result.prompt_tokens == token_count(texts)  # meta.billed_units.input_tokens


def test_cohere_takes_images_as_inputs_refuses_tokens_and_its_errors_keep_their_message() -> None:
    content = [{"type": "image_url", "image_url": {"url": IMAGE}}]
    _, fake = embed(FakeCohereEmbed, "cohere", "embed-v4.0", {"input": [{"content": content}], "input_type": "image"})
    assert fake.requests[0].json["inputs"] == [{"content": content}]
    err, fake = embed(FakeCohereEmbed, "cohere", "embed-v4.0", {"input": [1, 2, 3]})
    assert isinstance(err, UpstreamError) and err.status == 400 and "token arrays" in err.message
    assert not fake.requests
    err, _ = embed(FakeCohereEmbed, "cohere", "embed-v4.0", {"input": "x", "input_type": "nonsense"})
    assert isinstance(err, UpstreamError) and err.status == 400 and "input_type must be one of" in err.message


# -- Voyage and Jina ---------------------------------------------------------------------------------------


def test_voyage_maps_input_type_and_dimensions_and_uses_its_multimodal_route() -> None:
    result, fake = embed(
        FakeVoyageEmbed, "voyage", "voyage-3.5", {"input": TEXTS, "input_type": "search_query", "dimensions": 512}
    )
    assert_vectors(result, TEXTS, 512)
    assert fake.requests[0].json == {
        "model": "voyage-3.5",
        "input": TEXTS,
        "output_dimension": 512,
        "input_type": "query",
    }
    assert result.prompt_tokens == token_count(TEXTS)
    content = [{"type": "text", "text": "a bus"}, {"type": "image_url", "image_url": {"url": IMAGE}}]
    _, fake = embed(FakeVoyageEmbed, "voyage", "voyage-multimodal-3", {"input": [{"content": content}]})
    assert fake.requests[0].path == "/v1/multimodalembeddings"
    assert fake.requests[0].json["inputs"][0]["content"][1] == {"type": "image_base64", "image_base64": IMAGE}


def test_jina_maps_input_type_to_task_and_takes_one_part_per_input() -> None:
    result, fake = embed(
        FakeJinaEmbed,
        "jina",
        "jina-embeddings-v3",
        {"input": TEXTS, "input_type": "search_document", "dimensions": 128},
    )
    assert_vectors(result, TEXTS, 128)
    assert fake.requests[0].json == {
        "model": "jina-embeddings-v3",
        "input": TEXTS,
        "embedding_type": "float",
        "task": "retrieval.passage",
        "dimensions": 128,
    }
    image = [{"content": [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]
    _, fake = embed(FakeJinaEmbed, "jina", "jina-clip-v2", {"input": image})
    assert fake.requests[0].json["input"] == [{"image": "https://example.com/a.png"}]
    two = [{"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
    err, _ = embed(FakeJinaEmbed, "jina", "jina-clip-v2", {"input": two})
    assert isinstance(err, UpstreamError) and err.status == 400


# -- Bedrock ---------------------------------------------------------------------------------------------


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEMBED")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "embed-secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_BEARER_TOKEN_BEDROCK", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")


def test_bedrock_titan_one_signed_invoke_per_input(aws_env: None) -> None:
    result, fake = embed(
        FakeBedrockEmbed,
        "bedrock",
        "amazon.titan-embed-text-v2:0",
        {"input": TEXTS, "dimensions": 256},
        fake_key="AKIDEMBED:embed-secret",
        api_key=None,
    )
    assert_vectors(result, TEXTS, 256)
    assert len(fake.requests) == len(TEXTS)
    sent = sorted(fake.requests, key=lambda r: r.json["inputText"])[0]
    assert sent.path == "/model/amazon.titan-embed-text-v2:0/invoke"
    assert sent.headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEMBED/")
    assert set(sent.json) == {"inputText", "dimensions", "normalize"}
    assert result.prompt_tokens == token_count(TEXTS)  # inputTextTokenCount


def test_bedrock_titan_with_an_api_key_and_a_signing_mistake_refused(aws_env: None) -> None:
    result, fake = embed(
        FakeBedrockEmbed,
        "bedrock",
        "amazon.titan-embed-text-v2:0",
        {"input": "hello"},
        fake_key="brk-key",
        api_key="brk-key",
    )
    assert fake.requests[0].headers["Authorization"] == "Bearer brk-key" and len(result.vectors[0]) == 1024
    err, _ = embed(
        FakeBedrockEmbed,
        "bedrock",
        "amazon.titan-embed-text-v2:0",
        {"input": "hello"},
        fake_key="AKIDEMBED:another-secret",
        api_key=None,
    )
    assert isinstance(err, UpstreamError) and err.status == 403 and "embed-secret" not in str(err.raw)
    err, _ = embed(
        FakeBedrockEmbed,
        "bedrock",
        "amazon.titan-embed-text-v2:0",
        {"input": "hello"},
        fake_key="brk-key",
        api_key="brk-key",
        script=(Status(429),),
    )
    assert isinstance(err, UpstreamError) and err.status == 429 and err.provider_code == "ThrottlingException"


def test_cohere_on_bedrock_batches_texts(aws_env: None) -> None:
    texts = [f"passage {i}" for i in range(100)]
    result, fake = embed(
        FakeBedrockEmbed,
        "bedrock",
        "cohere.embed-english-v3",
        {"input": texts, "input_type": "search_query"},
        fake_key="AKIDEMBED:embed-secret",
        api_key=None,
    )
    assert_vectors(result, texts, 64)
    assert sorted(len(r.json["texts"]) for r in fake.requests) == [4, 96]
    assert "model" not in fake.requests[0].json and fake.requests[0].json["input_type"] == "search_query"
    assert result.prompt_tokens == token_count(texts)


# -- the sandbox, and base64 ----------------------------------------------------------------------------


def test_sandbox_embeds_by_word_overlap_and_counts_words() -> None:
    request = parse(msgspec.json.encode({"model": "sandbox/embed", "input": TEXTS, "dimensions": 128}))
    result = asyncio.run(HANDLERS["sandbox"](None, request))
    assert result.vectors == [vector(t, 128) for t in TEXTS]
    assert result.prompt_tokens == token_count(TEXTS)


def test_base64_is_little_endian_float32() -> None:
    import struct

    v = [0.5, -1.25, 3.0]
    assert encode_base64_floats(v) == __import__("base64").b64encode(struct.pack("<3f", *v)).decode()
    assert decode_base64_floats(encode_base64_floats(v)) == v
