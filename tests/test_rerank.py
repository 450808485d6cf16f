"""POST /rerank end to end: the official SDKs' typed methods, the OpenAPI document, Cohere's and Jina's
upstream APIs (fakes on loopback), the sandbox, fallbacks, exact money per search unit and per token,
and bad input refused with nothing recorded."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from openrouter import OpenRouter, errors

from omnirouter.testing.fakes.core import BrokenJSON, Status
from omnirouter.testing.fakes.rerank import FakeCohereRerank, FakeJinaRerank, Ranked, overlap_scores
from tests.gateway import Gateway, generation, key_usage
from tests.sdk_ts_run import run_steps
from tests.spec_validation import spec_available, validate_response

COHERE_KEY = "co-test-secret-4242"
COHERE_KEY_ENV = "OMNI_TEST_COHERE_RERANK_KEY"
SANDBOX_UNIT = Decimal("0.002")  # sandbox/rerank's price per search unit (catalog/loader.py)
COHERE_PRICES = {"search_unit": "0.002"}
JINA_PRICES = {"prompt": "0.00000002"}
BOTH_PRICES = {"search_unit": "0.001", "prompt": "0.00000005", "request": "0.0001"}

QUERY = "What is the capital of France?"
DOCS = [
    "Berlin is the capital of Germany.",
    "Paris is the capital of France.",
    "Bananas are yellow.",
    "France is a country in Europe.",
]


def config(cohere: str, jina: str) -> dict[str, Any]:
    return {
        "providers": [
            {"slug": "cohere", "name": "Cohere", "api": "cohere", "base_url": cohere, "api_key_env": COHERE_KEY_ENV},
            {"slug": "jina", "name": "Jina", "api": "jina", "base_url": jina},
            {"slug": "vllm", "name": "Local vLLM", "api": "openai", "base_url": jina},
        ],
        "models": [
            {
                "id": "cohere/rerank-v3.5",
                "name": "Cohere: Rerank 3.5",
                "architecture": {"input_modalities": ["text"], "output_modalities": ["rerank"]},
                "endpoints": [
                    {"provider": "cohere", "upstream_model": "rerank-v3.5", "pricing": COHERE_PRICES},
                    {"provider": "jina", "upstream_model": "jina-reranker-v2", "pricing": JINA_PRICES},
                ],
            },
            {
                "id": "jina/reranker-m0",
                "name": "Jina: Reranker m0",
                "architecture": {"input_modalities": ["text", "image"], "output_modalities": ["rerank"]},
                "endpoints": [{"provider": "jina", "upstream_model": "jina-reranker-m0", "pricing": BOTH_PRICES}],
            },
            {
                "id": "baai/bge-reranker-v2-m3",
                "name": "BGE reranker on vLLM",
                "architecture": {"input_modalities": ["text"], "output_modalities": ["rerank"]},
                "endpoints": [
                    {"provider": "vllm", "upstream_model": "BAAI/bge-reranker-v2-m3", "pricing": JINA_PRICES}
                ],
            },
            {
                "id": "cohere/rerank-only",
                "name": "Cohere: one endpoint",
                "architecture": {"input_modalities": ["text"], "output_modalities": ["rerank"]},
                "endpoints": [{"provider": "cohere", "upstream_model": "rerank-english", "pricing": COHERE_PRICES}],
            },
        ],
    }


@pytest.fixture(scope="module")
def cohere() -> Iterator[Any]:
    handle = FakeCohereRerank.run_in_thread(api_key=COHERE_KEY)
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def jina() -> Iterator[Any]:
    handle = FakeJinaRerank.run_in_thread()
    yield handle
    handle.stop()


@pytest.fixture(autouse=True)
def _fresh_fakes(request: pytest.FixtureRequest) -> None:
    for name in ("cohere", "jina"):
        if name in request.fixturenames:
            request.getfixturevalue(name).reset()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, cohere: Any, jina: Any) -> Iterator[Gateway]:
    os.environ[COHERE_KEY_ENV] = COHERE_KEY
    try:
        gateway = Gateway(tmp_path_factory.mktemp("rerank"), config(cohere.base_url, jina.base_url), sandbox=True)
        gateway.start()
    finally:
        os.environ.pop(COHERE_KEY_ENV, None)
    yield gateway
    gateway.stop()


@pytest.fixture
def key(gw: Gateway) -> str:
    return gw.create_key(name="rerank")["key"]


def post(gw: Gateway, key: str, body: Any) -> httpx.Response:
    return httpx.post(gw.api + "/rerank", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def exact(r: httpx.Response) -> dict[str, Any]:
    """The body with numbers as Decimals, as the ledger holds them."""
    return json.loads(r.text, parse_float=Decimal)


def conforms(body: Any) -> None:
    if spec_available():
        validate_response("createRerank", body)


# -- the sandbox, through the official Python SDK


def test_sandbox_ranks_by_shared_words_through_the_python_sdk(gw: Gateway, key: str) -> None:
    with OpenRouter(api_key=key, server_url=gw.api) as sdk:
        res = sdk.rerank.rerank(model="sandbox/rerank", query=QUERY, documents=DOCS, top_n=3, user="u-7")
    # "Paris is the capital of France." shares the most words with the query, bananas none.
    assert [r.index for r in res.results] == [1, 0, 3]
    scores = [r.relevance_score for r in res.results]
    assert scores == sorted(scores, reverse=True) and 0 < scores[-1] < scores[0] <= 1
    assert [r.document.text for r in res.results] == [DOCS[1], DOCS[0], DOCS[3]]
    assert res.model == "sandbox/rerank" and res.id.startswith("gen-")
    assert res.usage is not None and res.usage.search_units == 1 and res.usage.total_tokens > 0
    gen = generation(gw, key, res.id)
    assert gen["api_type"] == "rerank" and gen["model"] == "sandbox/rerank" and gen["external_user"] == "u-7"
    assert gen["native_tokens_prompt"] == res.usage.total_tokens
    assert gen["total_cost"] == SANDBOX_UNIT == Decimal(str(res.usage.cost))


def test_sandbox_is_deterministic_and_answers_the_document(gw: Gateway, key: str) -> None:
    body = {"model": "sandbox/rerank", "query": QUERY, "documents": DOCS}
    first, second = post(gw, key, body), post(gw, key, body)
    assert first.status_code == second.status_code == 200, first.text
    conforms(first.json())
    assert first.json()["results"] == second.json()["results"]
    assert len(first.json()["results"]) == len(DOCS)  # no top_n: every document, best first
    assert first.headers["x-generation-id"] == first.json()["id"]


def test_search_units_per_started_hundred_documents_cost_exactly(gw: Gateway, key: str) -> None:
    documents = [f"document number {i} about france" for i in range(250)]
    r = post(gw, key, {"model": "sandbox/rerank", "query": "france", "documents": documents, "top_n": 5})
    assert r.status_code == 200, r.text
    body = exact(r)
    assert body["usage"]["search_units"] == 3
    assert body["usage"]["cost"] == 3 * SANDBOX_UNIT
    assert len(body["results"]) == 5
    assert generation(gw, key, body["id"])["total_cost"] == 3 * SANDBOX_UNIT
    assert key_usage(gw, key) == 3 * SANDBOX_UNIT


def test_documents_as_objects_are_echoed_as_sent(gw: Gateway, key: str) -> None:
    docs = [{"text": "Paris is in France"}, {"text": "A photo of Paris", "image": "https://example.com/p.png"}, "x"]
    r = post(gw, key, {"model": "sandbox/rerank", "query": "Paris France", "documents": docs})
    assert r.status_code == 200, r.text
    conforms(r.json())
    by_index = {res["index"]: res["document"] for res in r.json()["results"]}
    assert by_index == {0: docs[0], 1: docs[1], 2: {"text": "x"}}


def test_return_documents_false_leaves_documents_out(gw: Gateway, key: str) -> None:
    r = post(gw, key, {"model": "sandbox/rerank", "query": QUERY, "documents": DOCS, "return_documents": False})
    assert r.status_code == 200, r.text
    assert [set(res) for res in r.json()["results"]] == [{"index", "relevance_score"}] * len(DOCS)


def test_top_n_beyond_the_documents_returns_them_all(gw: Gateway, key: str) -> None:
    r = post(gw, key, {"model": "sandbox/rerank", "query": QUERY, "documents": DOCS[:2], "top_n": 10.0})
    assert r.status_code == 200, r.text
    assert [res["index"] for res in r.json()["results"]] == [1, 0]


# -- Cohere's and Jina's APIs


def test_cohere_is_asked_in_its_format_and_billed_its_search_units(gw: Gateway, key: str, cohere: Any) -> None:
    cohere.script(Ranked(search_units=2))  # long documents: Cohere bills more than one unit
    r = post(gw, key, {"model": "cohere/rerank-v3.5", "query": QUERY, "documents": DOCS, "top_n": 2})
    assert r.status_code == 200, r.text
    body = exact(r)
    conforms(r.json())
    sent = cohere.requests[-1]
    assert sent.path == "/v2/rerank"
    assert sent.headers["Authorization"] == f"Bearer {COHERE_KEY}"
    assert sent.json == {"model": "rerank-v3.5", "query": QUERY, "documents": DOCS, "top_n": 2}
    expected = overlap_scores(QUERY, DOCS)
    assert [(x["index"], x["relevance_score"]) for x in body["results"]] == [
        (1, Decimal(str(expected[1]))),
        (0, Decimal(str(expected[0]))),
    ]
    assert body["provider"] == "Cohere" and body["model"] == "cohere/rerank-v3.5"
    assert body["usage"]["search_units"] == 2 and body["usage"]["cost"] == 2 * Decimal("0.002")
    gen = generation(gw, key, body["id"])
    assert gen["provider_name"] == "Cohere" and gen["total_cost"] == body["usage"]["cost"]


def test_cohere_scores_are_ordered_by_the_gateway(gw: Gateway, key: str, cohere: Any) -> None:
    # An upstream's results in any order come back best first, ties in input order.
    scores = {2: 0.1, 0: 0.5, 1: 0.9, 3: 0.5}
    cohere.script(Ranked(results=[{"index": i, "relevance_score": s} for i, s in scores.items()]))
    r = post(gw, key, {"model": "cohere/rerank-only", "query": QUERY, "documents": DOCS})
    assert r.status_code == 200, r.text
    assert [x["index"] for x in r.json()["results"]] == [1, 0, 3, 2]
    # An upstream that answers more than top_n is cut to it.
    cohere.script(Ranked(results=[{"index": i, "relevance_score": s} for i, s in scores.items()]))
    r = post(gw, key, {"model": "cohere/rerank-only", "query": QUERY, "documents": DOCS, "top_n": 2})
    assert [x["index"] for x in r.json()["results"]] == [1, 0]


def test_jina_is_asked_in_its_format_and_billed_per_token_and_unit(gw: Gateway, key: str, jina: Any) -> None:
    jina.script(Ranked(total_tokens=1234))
    docs = ["Paris, France", {"image": "https://example.com/eiffel.png"}]
    r = post(gw, key, {"model": "jina/reranker-m0", "query": "Paris", "documents": docs, "top_n": 1})
    assert r.status_code == 200, r.text
    body = exact(r)
    conforms(r.json())
    sent = jina.requests[-1]
    assert sent.path == "/v1/rerank"
    assert sent.json == {
        "model": "jina-reranker-m0",
        "query": "Paris",
        "documents": docs,
        "return_documents": False,
        "top_n": 1,
    }
    assert [x["index"] for x in body["results"]] == [0]
    assert body["results"][0]["document"] == {"text": "Paris, France"}
    # Both prices apply: 1234 tokens, one search unit, and the price per request.
    expected = 1234 * Decimal(BOTH_PRICES["prompt"]) + Decimal(BOTH_PRICES["search_unit"]) + Decimal("0.0001")
    assert body["usage"] == {"search_units": 1, "total_tokens": 1234, "cost": expected}
    gen = generation(gw, key, body["id"])
    assert gen["total_cost"] == expected and gen["provider_name"] == "Jina"
    assert key_usage(gw, key) == expected


def test_an_openai_compatible_server_is_asked_in_jinas_shape(gw: Gateway, key: str, jina: Any) -> None:
    r = post(gw, key, {"model": "baai/bge-reranker-v2-m3", "query": QUERY, "documents": DOCS, "top_n": 1})
    assert r.status_code == 200, r.text
    assert jina.requests[-1].path == "/v1/rerank" and jina.requests[-1].json["model"] == "BAAI/bge-reranker-v2-m3"
    body = exact(r)
    assert body["provider"] == "Local vLLM" and [x["index"] for x in body["results"]] == [1]
    assert body["usage"]["cost"] == body["usage"]["total_tokens"] * Decimal(JINA_PRICES["prompt"]) > 0


def test_cohere_failing_falls_back_to_jina(gw: Gateway, key: str, cohere: Any, jina: Any) -> None:
    cohere.script(Status(503))
    jina.script(Ranked(total_tokens=100))
    body = {"model": "cohere/rerank-v3.5", "query": QUERY, "documents": DOCS,
            "provider": {"order": ["cohere", "jina"]}}  # fmt: skip
    r = post(gw, key, body)
    assert r.status_code == 200, r.text
    answer = exact(r)
    assert len(cohere.requests) == 1 and len(jina.requests) == 1
    assert answer["provider"] == "Jina"
    assert answer["results"][0]["index"] == 1
    # Billed at Jina's endpoint's price: its tokens (per token only), nothing for Cohere's failure.
    assert answer["usage"]["cost"] == 100 * Decimal(JINA_PRICES["prompt"])
    gen = generation(gw, key, answer["id"])
    assert [p["provider_name"] for p in gen["provider_responses"]] == ["Cohere", "Jina"]
    assert [p["status"] for p in gen["provider_responses"]] == [503, 200]
    assert gen["total_cost"] == answer["usage"]["cost"]


def test_models_fall_back_in_order(gw: Gateway, key: str, cohere: Any) -> None:
    cohere.script(Status(500))
    r = post(gw, key, {"models": ["cohere/rerank-only", "sandbox/rerank"], "query": QUERY, "documents": DOCS})
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "sandbox/rerank" and r.json()["usage"]["cost"] == float(SANDBOX_UNIT)


@pytest.mark.parametrize(
    ("step", "status"),
    [
        (Status(429, {"message": "You are using a Trial key, which is limited"}), 429),
        (Status(400, {"message": "invalid request: too many tokens"}), 400),
        (Status(503), 503),
    ],
)
def test_an_upstream_error_comes_back_with_its_status(
    gw: Gateway, key: str, cohere: Any, step: Status, status: int
) -> None:
    cohere.always(step)
    r = post(gw, key, {"model": "cohere/rerank-only", "query": QUERY, "documents": DOCS})
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == status
    if isinstance(step.body, dict):
        assert step.body["message"] in error["message"] or step.body["message"] in json.dumps(error["metadata"])
    assert COHERE_KEY not in r.text
    assert key_usage(gw, key) == 0


def test_jinas_validation_error_comes_back_as_its_status_and_words(gw: Gateway, key: str, jina: Any) -> None:
    detail = [{"loc": ["body", "documents"], "msg": "too many tokens in document 3", "type": "value_error"}]
    jina.script(Status(422, {"detail": detail}))
    r = post(gw, key, {"model": "jina/reranker-m0", "query": QUERY, "documents": DOCS})
    assert r.status_code == 422, r.text
    assert r.json()["error"]["message"] == "too many tokens in document 3"
    assert r.json()["error"]["metadata"]["provider_name"] == "Jina"
    assert key_usage(gw, key) == 0


def test_an_answer_naming_no_document_is_the_upstreams_fault(gw: Gateway, key: str, cohere: Any) -> None:
    cohere.script(Ranked(results=[{"index": 7, "relevance_score": 0.5}]))
    r = post(gw, key, {"model": "cohere/rerank-only", "query": QUERY, "documents": DOCS})
    assert r.status_code == 502, r.text
    cohere.script(BrokenJSON())
    assert post(gw, key, {"model": "cohere/rerank-only", "query": QUERY, "documents": DOCS}).status_code == 502
    assert key_usage(gw, key) == 0


def test_cohere_refuses_an_image_document_unsent(gw: Gateway, key: str, cohere: Any) -> None:
    docs = ["text", {"image": "https://example.com/a.png"}]
    r = post(gw, key, {"model": "cohere/rerank-only", "query": QUERY, "documents": docs})
    assert r.status_code == 400 and "documents[1]" in r.json()["error"]["message"], r.text
    assert cohere.requests == []


# -- bad input: a clear 4xx, nothing sent upstream, nothing charged or recorded

BAD_BODIES = [
    ({"model": "cohere/rerank-v3.5", "query": "", "documents": DOCS}, "query"),
    ({"model": "cohere/rerank-v3.5", "query": QUERY, "documents": []}, "documents"),
    ({"model": "cohere/rerank-v3.5", "query": QUERY, "documents": ["d"] * 1001}, "documents"),
    ({"model": "cohere/rerank-v3.5", "query": QUERY, "documents": DOCS, "top_n": 0}, "top_n"),
    ({"model": "cohere/rerank-v3.5", "query": QUERY, "documents": DOCS, "top_n": 1.5}, "top_n"),
    ({"model": "cohere/rerank-v3.5", "query": QUERY, "documents": [{}]}, "documents[0]"),
    ({"model": "cohere/rerank-v3.5", "query": QUERY, "documents": [3]}, "documents"),
    ({"model": "cohere/rerank-v3.5", "documents": DOCS}, "query"),
    ({"model": "cohere/rerank-v3.5", "query": QUERY}, "documents"),
    ({"model": "cohere/rerank-v3.5", "query": QUERY, "documents": DOCS, "return_documents": "no"}, "return_documents"),
    ({"query": QUERY, "documents": DOCS}, "model"),
    ({"model": "nobody/nothing", "query": QUERY, "documents": DOCS}, "nobody/nothing"),
    ({"model": "sandbox/echo", "query": QUERY, "documents": DOCS}, "does not support rerank"),
    (["not", "an", "object"], "JSON object"),
]


@pytest.mark.parametrize(("body", "named"), BAD_BODIES, ids=[str(i) for i in range(len(BAD_BODIES))])
def test_bad_input_is_refused_and_nothing_recorded(
    gw: Gateway, key: str, cohere: Any, jina: Any, body: Any, named: str
) -> None:
    r = post(gw, key, body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == 400 and named in error["message"], error
    if spec_available():
        validate_response("createRerank", r.json(), "400")
    assert cohere.requests == [] and jina.requests == []
    assert key_usage(gw, key) == 0
    gen_id = r.headers["x-generation-id"]
    with gw.client(key) as c:
        assert c.get("/generation", params={"id": gen_id}).status_code == 404


def test_invalid_json_is_refused(gw: Gateway, key: str) -> None:
    r = httpx.post(gw.api + "/rerank", content=b"{not json", headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 400 and r.json()["error"]["code"] == 400


def test_without_a_key_401(gw: Gateway) -> None:
    r = httpx.post(gw.api + "/rerank", json={"model": "sandbox/rerank", "query": "q", "documents": ["d"]})
    assert r.status_code == 401


def test_the_python_sdk_raises_its_typed_error(gw: Gateway, key: str) -> None:
    with OpenRouter(api_key=key, server_url=gw.api) as sdk, pytest.raises(errors.BadRequestResponseError):
        sdk.rerank.rerank(model="sandbox/rerank", query="", documents=DOCS)


def test_a_key_over_its_limit_is_refused_before_the_upstream(gw: Gateway, cohere: Any) -> None:
    poor = gw.create_key(name="poor", limit=0.001)["key"]  # less than one search unit (0.002)
    r = post(gw, poor, {"model": "cohere/rerank-only", "query": QUERY, "documents": DOCS})
    assert r.status_code == 402, r.text
    assert cohere.requests == []


# -- the official SDKs' conformance checks (collected by tests/test_sdk_conformance.py)


def rerank_rerank(ctx: Any) -> None:
    res = ctx.sdk.rerank.rerank(model="sandbox/rerank", query="capital of France", documents=DOCS, top_n=2)
    assert [r.index for r in res.results] == [1, 0], res
    assert res.results[0].document.text == DOCS[1]
    assert res.usage is not None and res.usage.search_units == 1 and Decimal(str(res.usage.cost)) == SANDBOX_UNIT


CONFORMANCE = {"rerank.rerank": rerank_rerank}


def test_the_conformance_checks_pass(gw: Gateway, key: str) -> None:
    """What tests/test_sdk_conformance.py runs, here against this module's gateway."""
    with OpenRouter(api_key=key, server_url=gw.api) as sdk:
        for check in CONFORMANCE.values():
            check(SimpleNamespace(sdk=sdk, gw=gw, key=key))


# -- @openrouter/sdk (node): tests/sdk_ts/rerank.mjs, one JSON line per check


def test_typescript_sdk(gw: Gateway, key: str, cohere: Any) -> None:
    config = {"serverURL": gw.api, "apiKey": key, "cohereModel": "cohere/rerank-only"}
    results = run_steps("rerank.mjs", config)
    assert set(results) == {"rerank.rerank", "rerank.upstream", "rerank.errors"}
    assert all(r["ok"] for r in results.values()), results
    assert len(cohere.requests) == 1
    assert key_usage(gw, key) == SANDBOX_UNIT + Decimal(COHERE_PRICES["search_unit"])
