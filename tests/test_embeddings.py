"""POST /embeddings and GET /embeddings/models end to end: the `openai` SDK (floats and base64), the
official OpenRouter Python SDK's typed methods, the OpenAPI document, every upstream API (fakes on
loopback), the sandbox's word-overlap vectors, batching in order, fallbacks, exact money, and bad input
refused with nothing recorded. @openrouter/sdk and the AI SDK provider: tests/sdk_ts/embeddings.mjs."""

from __future__ import annotations

import base64
import json
import os
import struct
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import openai
import pytest
from openrouter import OpenRouter, errors

from omnirouter.governance.byok_crypto import new_key
from omnirouter.testing.fakes.core import Delay, Reply, Status
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
from omnirouter.testing.similarity import cosine, vector
from tests.gateway import Gateway, generation, key_usage
from tests.sdk_ts_run import run_steps
from tests.spec_validation import spec_available, validate_response
from tests.test_openapi import conforms as own_document_conforms

KEYS = {"primary": "sk-embed-primary-4242", "cohere": "co-embed-4242", "bedrock": "brk-embed-4242", "azure": "az-4242"}
ENV = {name: f"OMNI_TEST_EMBED_{name.upper()}_KEY" for name in KEYS}
SMALL = {"prompt": "0.00000002"}  # USD per input token
BACKUP = {"prompt": "0.00000003"}
OTHER = {"prompt": "0.0000001", "request": "0.00001"}
SANDBOX_PRICE = Decimal("0.0000001")  # sandbox/embed's price per input token (catalog/loader.py)
FAKES = {
    "primary": FakeOpenAIEmbed,
    "backup": FakeOpenAIEmbed,
    "gemini": FakeGeminiEmbed,
    "cohere": FakeCohereEmbed,
    "voyage": FakeVoyageEmbed,
    "jina": FakeJinaEmbed,
    "bedrock": FakeBedrockEmbed,
    "azure": FakeAzureEmbed,
}
TEXTS = ["the cat sat on the mat", "a dog in the fog", "the cat on a mat again", "quantum chromodynamics"]
EMBED = {"input_modalities": ["text", "image"], "output_modalities": ["embeddings"]}


def model(id_: str, *endpoints: tuple[str, str, dict[str, str]]) -> dict[str, Any]:
    return {
        "id": id_,
        "name": id_,
        "context_length": 8192,
        "architecture": EMBED,
        "endpoints": [{"provider": p, "upstream_model": m, "pricing": price} for p, m, price in endpoints],
    }


def config(urls: dict[str, str]) -> dict[str, Any]:
    def provider(slug: str, api: str, **extra: Any) -> dict[str, Any]:
        return {"slug": slug, "name": slug.title(), "api": api, "base_url": urls[slug], **extra}

    return {
        "providers": [
            provider("primary", "openai", api_key_env=ENV["primary"]),
            provider("backup", "openai"),
            provider("gemini", "gemini"),
            provider("cohere", "cohere", api_key_env=ENV["cohere"]),
            provider("voyage", "voyage"),
            provider("jina", "jina"),
            provider("bedrock", "bedrock", region="us-east-1", api_key_env=ENV["bedrock"]),
            provider("azure", "azure", api_key_env=ENV["azure"]),
        ],
        "models": [
            model("openai/text-embedding-3-small", ("primary", "text-embedding-3-small", SMALL)),
            model("test/embed-two", ("primary", "te3-small", SMALL), ("backup", "te3-small-backup", BACKUP)),
            model("google/gemini-embedding-001", ("gemini", "gemini-embedding-001", OTHER)),
            model("cohere/embed-v4.0", ("cohere", "embed-v4.0", OTHER)),
            model("voyage/voyage-3.5", ("voyage", "voyage-3.5", OTHER)),
            model("jina/jina-embeddings-v3", ("jina", "jina-embeddings-v3", OTHER)),
            model("amazon/titan-embed-text-v2", ("bedrock", "amazon.titan-embed-text-v2:0", OTHER)),
            model("cohere/embed-english-v3-bedrock", ("bedrock", "cohere.embed-english-v3", OTHER)),
            model("azure/text-embedding-3-large", ("azure", "te3-large-deployment", OTHER)),
        ],
    }


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, Any]]:
    handles = {name: cls.run_in_thread(api_key=KEYS.get(name)) for name, cls in FAKES.items()}
    yield handles
    for handle in handles.values():
        handle.stop()


@pytest.fixture(autouse=True)
def _fresh_fakes(request: pytest.FixtureRequest) -> None:
    if "fakes" in request.fixturenames:
        for handle in request.getfixturevalue("fakes").values():
            handle.reset()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fakes: dict[str, Any]) -> Iterator[Gateway]:
    os.environ.update({ENV[name]: KEYS[name] for name in KEYS})
    try:
        gateway = Gateway(
            tmp_path_factory.mktemp("embeddings"),
            config({name: handle.base_url for name, handle in fakes.items()}),
            sandbox=True,
        )
        gateway.start()
    finally:
        for name in KEYS:
            os.environ.pop(ENV[name], None)
    yield gateway
    gateway.stop()


@pytest.fixture
def key(gw: Gateway) -> str:
    return gw.create_key(name="embeddings")["key"]


def post(gw: Gateway, key: str, body: Any) -> httpx.Response:
    return httpx.post(gw.api + "/embeddings", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def answer(r: httpx.Response) -> dict[str, Any]:
    """A 200's body, checked against the document, its cost a Decimal (as the ledger holds it)."""
    assert r.status_code == 200, r.text
    body = r.json()
    conforms(body)
    body["usage"]["cost"] = Decimal(json.loads(r.text, parse_float=str)["usage"]["cost"])
    return body


def conforms(body: Any, status: str = "200") -> None:
    """Valid against OpenRouter's document, and strictly against the server's own."""
    own_document_conforms("/embeddings", "post", int(status), body)
    if spec_available():
        validate_response("createEmbeddings", body, status)


def assert_vectors(got: list[list[float]], texts: list[str], dims: int) -> None:
    assert len(got) == len(texts)
    for v, t in zip(got, texts, strict=True):
        assert v == pytest.approx(vector(t, dims), abs=1e-6)


# -- the openai SDK ------------------------------------------------------------------------------------


def test_openai_sdk_floats_usage_and_exact_cost(gw: Gateway, key: str, fakes: dict[str, Any]) -> None:
    client = openai.OpenAI(api_key=key, base_url=gw.api)
    raw = client.embeddings.with_raw_response.create(
        model="openai/text-embedding-3-small", input=TEXTS, encoding_format="float", dimensions=32
    )
    res = raw.parse()
    assert_vectors([d.embedding for d in res.data], TEXTS, 32)
    assert [d.index for d in res.data] == [0, 1, 2, 3]
    tokens = token_count(TEXTS)
    assert res.usage.prompt_tokens == tokens == res.usage.total_tokens
    body = answer(httpx.Response(200, content=raw.content))
    cost = tokens * Decimal(SMALL["prompt"])
    assert body["usage"]["cost"] == cost and body["usage"]["is_byok"] is False
    assert body["model"] == "openai/text-embedding-3-small" and body["provider"] == "Primary"
    # What the upstream was asked, with the provider's key.
    (sent,) = fakes["primary"].requests
    assert sent.headers["Authorization"] == f"Bearer {KEYS['primary']}"
    assert sent.json["model"] == "text-embedding-3-small" and sent.json["dimensions"] == 32
    # The generation and the key's usage say the same, exactly.
    gen = generation(gw, key, body["id"])
    assert gen["total_cost"] == cost and gen["tokens_prompt"] == tokens and gen["api_type"] == "embeddings"
    assert key_usage(gw, key) == cost


def test_openai_sdk_base64_decodes_to_the_same_vectors(gw: Gateway, key: str) -> None:
    client = openai.OpenAI(api_key=key, base_url=gw.api)
    # Without encoding_format the SDK asks for base64 itself and decodes it.
    res = client.embeddings.create(model="openai/text-embedding-3-small", input=TEXTS[0])
    assert_vectors([res.data[0].embedding], TEXTS[:1], 64)
    r = post(gw, key, {"model": "sandbox/embed", "input": TEXTS, "encoding_format": "base64"})
    body = answer(r)
    assert all(isinstance(d["embedding"], str) for d in body["data"])
    floats = client.embeddings.create(model="sandbox/embed", input=TEXTS, encoding_format="float")
    for f, b in zip(floats.data, body["data"], strict=True):
        raw = base64.b64decode(b["embedding"])
        assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == pytest.approx(f.embedding, abs=1e-6)


# -- the sandbox and the official Python SDK ---------------------------------------------------------------


def test_sandbox_similarity_reflects_shared_words_through_the_python_sdk(gw: Gateway, key: str) -> None:
    with OpenRouter(api_key=key, server_url=gw.api) as sdk:
        res = sdk.embeddings.generate(model="sandbox/embed", input=TEXTS, input_type="search_document")
    vectors = [d.embedding for d in res.data]
    assert cosine(vectors[0], vectors[2]) > 0.5 > cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[3])
    tokens = sum(len(t.split()) for t in TEXTS)
    assert res.usage is not None and res.usage.prompt_tokens == tokens
    assert Decimal(str(res.usage.cost)) == tokens * SANDBOX_PRICE


def test_token_arrays_and_multimodal_input(gw: Gateway, key: str, fakes: dict[str, Any]) -> None:
    body = answer(post(gw, key, {"model": "sandbox/embed", "input": [[1, 2, 3], [3, 4]], "dimensions": 16}))
    assert_vectors([d["embedding"] for d in body["data"]], ["t1 t2 t3", "t3 t4"], 16)
    assert body["usage"]["prompt_tokens"] == 5
    one = answer(post(gw, key, {"model": "sandbox/embed", "input": [7, 8, 9]}))
    assert len(one["data"]) == 1 and one["usage"]["prompt_tokens"] == 3
    # JSON has one number type: 954.0 is the token 954, as a client that sends floats means it.
    same = answer(post(gw, key, {"model": "sandbox/embed", "input": [7.0, 8, 9.0]}))
    assert same["data"][0]["embedding"] == one["data"][0]["embedding"]
    content = [
        {"type": "text", "text": "a red bus"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    body = answer(post(gw, key, {"model": "openai/text-embedding-3-small", "input": [{"content": content}]}))
    assert len(body["data"]) == 1
    assert fakes["primary"].requests[-1].json["input"] == [{"content": content}]


def test_the_models_listing_names_only_embeddings_models(gw: Gateway, key: str) -> None:
    with OpenRouter(api_key=key, server_url=gw.api) as sdk:
        listed = sdk.embeddings.list_models()
    ids = {m.id for m in listed.result.data}
    assert {"sandbox/embed", "openai/text-embedding-3-small", "amazon/titan-embed-text-v2"} <= ids
    assert "sandbox/echo" not in ids
    with gw.client(key) as c:
        r = c.get("/embeddings/models")
        assert r.status_code == 200
        own_document_conforms("/embeddings/models", "get", 200, r.json())
        if spec_available():
            validate_response("listEmbeddingsModels", r.json())
        page = c.get("/embeddings/models", params={"offset": 1, "limit": 2}).json()
        assert [m["id"] for m in page["data"]] == [m["id"] for m in r.json()["data"]][1:3]
    assert httpx.get(gw.api + "/embeddings/models").status_code == 401


# -- every upstream API --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "fake", "check"),
    [
        ("google/gemini-embedding-001", "gemini", lambda r: r.json["requests"][0]["taskType"] == "RETRIEVAL_QUERY"),
        ("cohere/embed-v4.0", "cohere", lambda r: r.json["input_type"] == "search_query"
         and r.headers["Authorization"] == f"Bearer {KEYS['cohere']}"),
        ("voyage/voyage-3.5", "voyage", lambda r: r.json["input_type"] == "query"),
        ("jina/jina-embeddings-v3", "jina", lambda r: r.json["task"] == "retrieval.query"),
        ("amazon/titan-embed-text-v2", "bedrock", lambda r: r.json["dimensions"] == 256
         and r.headers["Authorization"] == f"Bearer {KEYS['bedrock']}"),
        ("cohere/embed-english-v3-bedrock", "bedrock", lambda r: r.json["input_type"] == "search_query"),
        ("azure/text-embedding-3-large", "azure", lambda r: r.headers["api-key"] == KEYS["azure"]
         and r.path == "/openai/deployments/te3-large-deployment/embeddings"),
    ],
)  # fmt: skip
def test_each_upstream_api(gw: Gateway, key: str, fakes: dict[str, Any], model_id: str, fake: str, check: Any) -> None:
    dims = 256
    body = answer(post(gw, key, {"model": model_id, "input": TEXTS, "input_type": "search_query", "dimensions": dims}))
    assert_vectors([d["embedding"] for d in body["data"]], TEXTS, dims)
    assert fakes[fake].requests and all(check(r) for r in fakes[fake].requests)
    tokens = body["usage"]["prompt_tokens"]
    # Gemini reports no tokens: estimated at four characters each; the others report one a word.
    assert tokens == (sum((len(t) + 3) // 4 for t in TEXTS) if fake == "gemini" else token_count(TEXTS))
    assert body["usage"]["cost"] == tokens * Decimal(OTHER["prompt"]) + Decimal(OTHER["request"])


def test_batches_follow_the_provider_limit_and_keep_the_order(gw: Gateway, key: str, fakes: dict[str, Any]) -> None:
    texts = [f"passage {i} about topic {i % 7}" for i in range(250)]
    fakes["cohere"].script(Delay(0.2, then=Reply()))  # the first batch answers last
    body = answer(post(gw, key, {"model": "cohere/embed-v4.0", "input": texts}))
    assert_vectors([d["embedding"] for d in body["data"]], texts, 64)
    assert [d["index"] for d in body["data"]] == list(range(250))
    assert sorted(len(r.json["texts"]) for r in fakes["cohere"].requests) == [58, 96, 96]
    assert body["usage"]["prompt_tokens"] == token_count(texts)


# -- fallbacks and upstream failures -------------------------------------------------------------------------


def credits_used(gw: Gateway) -> Decimal:
    gw.flush()
    with gw.admin() as admin:
        r = admin.get("/credits")
    assert r.status_code == 200, r.text
    return Decimal(json.loads(r.text, parse_float=str)["data"]["total_usage"])


def test_a_failing_provider_falls_back_to_the_next(gw: Gateway, key: str, fakes: dict[str, Any]) -> None:
    fakes["primary"].script(Status(503))
    before = credits_used(gw)
    order = {"order": ["primary", "backup"]}
    body = answer(post(gw, key, {"model": "test/embed-two", "input": TEXTS, "provider": order}))
    assert body["provider"] == "Backup"
    assert len(fakes["primary"].requests) == 1 and fakes["backup"].requests[0].json["model"] == "te3-small-backup"
    cost = token_count(TEXTS) * Decimal(BACKUP["prompt"])
    assert body["usage"]["cost"] == cost
    gen = generation(gw, key, body["id"])
    assert gen["total_cost"] == cost and gen["provider_name"] == "Backup"
    assert key_usage(gw, key) == cost
    assert credits_used(gw) - before == cost  # the instance's usage (GET /credits) moved by as much


def test_models_fall_back_in_order(gw: Gateway, key: str, fakes: dict[str, Any]) -> None:
    fakes["jina"].script(Status(429))
    body = answer(post(gw, key, {"models": ["jina/jina-embeddings-v3", "voyage/voyage-3.5"], "input": TEXTS}))
    assert body["model"] == "voyage/voyage-3.5"


def test_an_upstream_refusal_comes_back_with_its_status(gw: Gateway, key: str, fakes: dict[str, Any]) -> None:
    fakes["cohere"].script(Status(400, {"id": "x", "message": "invalid request: too long"}))
    r = post(gw, key, {"model": "cohere/embed-v4.0", "input": TEXTS})
    assert r.status_code == 400 and "too long" in r.json()["error"]["message"]
    conforms(r.json(), "400")
    assert key_usage(gw, key) == 0


def test_input_an_api_cannot_take_is_refused_unsent(gw: Gateway, key: str, fakes: dict[str, Any]) -> None:
    r = post(gw, key, {"model": "cohere/embed-v4.0", "input": [[1, 2, 3]]})
    assert r.status_code == 400 and "token arrays" in r.json()["error"]["message"]
    assert fakes["cohere"].requests == [] and key_usage(gw, key) == 0


# -- BYOK ------------------------------------------------------------------------------------------------------------


def test_a_byok_key_is_used_and_billed_its_fee(tmp_path: Path, fakes: dict[str, Any]) -> None:
    """A workspace's own key for the provider (BYOK) calls it instead of the instance's; the answer says
    is_byok, and the key pays the instance's fee, 5% of what the request would have cost."""
    urls = {name: handle.base_url for name, handle in fakes.items()}
    byok_gw = Gateway(tmp_path, config(urls), encryption_key=new_key(), byok_fee_percent=Decimal(5)).start()
    try:
        with byok_gw.admin() as admin:
            r = admin.post("/byok", json={"provider": "voyage", "key": "sk-workspace-own-7777"})
            assert r.status_code == 201, r.text
        key = byok_gw.create_key(name="byok")["key"]
        body = answer(post(byok_gw, key, {"model": "voyage/voyage-3.5", "input": TEXTS}))
        assert body["usage"]["is_byok"] is True
        (sent,) = fakes["voyage"].requests
        assert sent.headers["Authorization"] == "Bearer sk-workspace-own-7777"
        would = token_count(TEXTS) * Decimal(OTHER["prompt"]) + Decimal(OTHER["request"])
        assert body["usage"]["cost"] == would * Decimal("0.05")
        byok_gw.flush()
        with byok_gw.client(key) as c:
            me = json.loads(c.get("/key").text, parse_float=Decimal)["data"]
        assert me["byok_usage"] == would and me["usage"] == would * Decimal("0.05")
    finally:
        byok_gw.stop()


# -- guardrails: their content filters see the inputs -------------------------------------------------------------


def guarded_key(gw: Gateway, **fields: Any) -> str:
    created = gw.create_key(name="guarded")
    with gw.admin() as admin:
        g = admin.post("/guardrails", json={"name": f"embed-{created['data']['hash'][:8]}", **fields})
        assert g.status_code == 201, g.text
        r = admin.post(f"/guardrails/{g.json()['data']['id']}/assignments/keys",
                       json={"key_hashes": [created["data"]["hash"]]})  # fmt: skip
        assert r.status_code == 200, r.text
    return created["key"]


def test_a_content_filter_redacts_inputs_before_the_provider(gw: Gateway, fakes: dict[str, Any]) -> None:
    key = guarded_key(gw, content_filter_builtins=[{"slug": "email", "action": "redact"}])
    content = [{"type": "text", "text": "mail bob@example.com now"}]
    body = answer(post(gw, key, {"model": "openai/text-embedding-3-small",
                                 "input": ["write to alice@example.com", "nothing here"]}))  # fmt: skip
    assert fakes["primary"].requests[-1].json["input"] == ["write to [EMAIL]", "nothing here"]
    answer(post(gw, key, {"model": "openai/text-embedding-3-small", "input": [{"content": content}]}))
    assert fakes["primary"].requests[-1].json["input"][0]["content"][0]["text"] == "mail [EMAIL] now"
    actions = generation(gw, key, body["id"])["guardrail_actions"]
    assert [(a["filter"], a["action"], a["count"]) for a in actions] == [("email", "redacted", 1)]


def test_a_content_filter_blocks_inputs_and_nothing_is_sent(gw: Gateway, fakes: dict[str, Any]) -> None:
    key = guarded_key(gw, content_filter_builtins=[{"slug": "credit-card", "action": "block"}])
    r = post(gw, key, {"model": "openai/text-embedding-3-small", "input": ["ok", "card 4111 1111 1111 1111"]})
    assert r.status_code == 403, r.text
    own_document_conforms("/embeddings", "post", 403, r.json())  # OpenRouter's document lists no 403 here
    assert fakes["primary"].requests == [] and key_usage(gw, key) == 0


# -- bad input ---------------------------------------------------------------------------------------------------

BAD_BODIES = [
    ({"model": "openai/text-embedding-3-small", "input": ""}, "empty"),
    ({"model": "openai/text-embedding-3-small", "input": []}, "empty"),
    ({"model": "openai/text-embedding-3-small", "input": ["a", ""]}, "input[1]"),
    ({"model": "openai/text-embedding-3-small", "input": ["x"] * 2049}, "at most 2048"),
    ({"model": "openai/text-embedding-3-small", "input": ["a", 1]}, "input[1]"),
    ({"model": "openai/text-embedding-3-small", "input": [1.5]}, "token ids"),
    ({"model": "openai/text-embedding-3-small", "input": [2**31]}, "token ids"),
    ({"model": "openai/text-embedding-3-small", "input": [[1, 2**99]]}, "input[0]"),
    ({"model": "openai/text-embedding-3-small", "input": [[1], []]}, "input[1]"),
    ({"model": "openai/text-embedding-3-small", "input": [{"content": []}]}, "content"),
    ({"model": "openai/text-embedding-3-small", "input": [{"content": [{"type": "audio"}]}]}, "type"),
    ({"model": "openai/text-embedding-3-small", "input": {"text": "x"}}, "input"),
    ({"model": "openai/text-embedding-3-small"}, "input"),
    ({"model": "openai/text-embedding-3-small", "input": "x", "encoding_format": "int8"}, "encoding_format"),
    ({"model": "openai/text-embedding-3-small", "input": "x", "dimensions": 0}, "dimensions"),
    ({"model": "openai/text-embedding-3-small", "input": "x", "input_type": 3}, "input_type"),
    ({"input": "x"}, "model"),
    ({"model": "nobody/nothing", "input": "x"}, "nobody/nothing"),
    ({"model": "sandbox/echo", "input": "x"}, "does not support embeddings"),
    (["not", "an", "object"], "JSON object"),
]


@pytest.mark.parametrize(("body", "named"), BAD_BODIES, ids=[str(i) for i in range(len(BAD_BODIES))])
def test_bad_input_is_refused_and_nothing_recorded(
    gw: Gateway, key: str, fakes: dict[str, Any], body: Any, named: str
) -> None:
    r = post(gw, key, body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == 400 and named in error["message"], error
    conforms(r.json(), "400")
    assert all(handle.requests == [] for handle in fakes.values())
    assert key_usage(gw, key) == 0
    with gw.client(key) as c:
        assert c.get("/generation", params={"id": r.headers["x-generation-id"]}).status_code == 404


def test_invalid_json_and_no_key(gw: Gateway, key: str) -> None:
    r = httpx.post(gw.api + "/embeddings", content=b"{not json", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 400 and r.json()["error"]["code"] == 400
    assert httpx.post(gw.api + "/embeddings", json={"model": "sandbox/embed", "input": "x"}).status_code == 401


def test_the_sdks_raise_their_typed_errors(gw: Gateway, key: str) -> None:
    with OpenRouter(api_key=key, server_url=gw.api) as sdk, pytest.raises(errors.BadRequestResponseError):
        sdk.embeddings.generate(model="sandbox/embed", input=[])
    with pytest.raises(openai.BadRequestError):
        openai.OpenAI(api_key=key, base_url=gw.api).embeddings.create(model="sandbox/echo", input="x")


def test_a_key_over_its_limit_is_refused_before_the_upstream(gw: Gateway, fakes: dict[str, Any]) -> None:
    poor = gw.create_key(name="poor", limit=0.000001)["key"]
    r = post(gw, poor, {"model": "cohere/embed-v4.0", "input": ["word " * 500] * 10})
    assert r.status_code == 402, r.text
    assert fakes["cohere"].requests == []


# -- the official SDKs' conformance checks (collected by tests/test_sdk_conformance.py) -----------------------


def embeddings_generate(ctx: Any) -> None:
    res = ctx.sdk.embeddings.generate(model="sandbox/embed", input=["red apples", "green apples", "blue sky"])
    vectors = [d.embedding for d in res.data]
    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2]), res
    assert res.usage is not None and res.usage.prompt_tokens == 6
    assert Decimal(str(res.usage.cost)) == 6 * SANDBOX_PRICE


def embeddings_list_models(ctx: Any) -> None:
    res = ctx.sdk.embeddings.list_models()
    assert "sandbox/embed" in {m.id for m in res.result.data}, res


CONFORMANCE = {"embeddings.generate": embeddings_generate, "embeddings.listModels": embeddings_list_models}


def test_the_conformance_checks_pass(gw: Gateway, key: str) -> None:
    """What tests/test_sdk_conformance.py runs, here against this module's gateway."""
    with OpenRouter(api_key=key, server_url=gw.api) as sdk:
        for check in CONFORMANCE.values():
            check(SimpleNamespace(sdk=sdk, gw=gw, key=key))


# -- @openrouter/sdk and @openrouter/ai-sdk-provider (node): tests/sdk_ts/embeddings.mjs -----------------------


def test_typescript_sdks(gw: Gateway, key: str, fakes: dict[str, Any]) -> None:
    config = {"serverURL": gw.api, "apiKey": key, "upstreamModel": "openai/text-embedding-3-small"}
    results = run_steps("embeddings.mjs", config)
    assert set(results) == {"embeddings.generate", "embeddings.listModels", "embeddings.upstream", "ai.embed",
                            "ai.embedMany", "errors"}  # fmt: skip
    assert all(r["ok"] for r in results.values()), results
    assert len(fakes["primary"].requests) == 1
