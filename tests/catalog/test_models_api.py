"""The models API, through HTTP: filters, pagination, lookups, and bodies valid against the OpenAPI file."""

from __future__ import annotations

import copy
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import openrouter
import pytest
from catalog_helpers import SPEC_NAMED_KEYS, build_catalog, make_client, per_million
from starlette.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ holds the shared helpers
from spec_validation import require_spec, spec_available, validate_response

IMAGE_MODEL_CONFIG = {
    "providers": [{"slug": "local-vllm", "name": "Local vLLM", "base_url": "http://127.0.0.1:8001/v1"}],
    "models": [
        {
            "id": "acme/pixel-1",
            "name": "Acme: Pixel 1",
            "context_length": 4096,
            "architecture": {"input_modalities": ["text"], "output_modalities": ["image"]},
            "endpoints": [
                {
                    "provider": "local-vllm",
                    "upstream_model": "pixel-1",
                    "pricing": {"prompt": "0.000001", "completion": "0.000004"},
                }
            ],
        }
    ],
}


def check(operation_id: str, body: Any, status: str = "200") -> None:
    if spec_available():
        validate_response(operation_id, body, status)


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    """Every bundled provider but Google and OpenRouter has a key: all names are in the spec's enum."""
    return make_client(build_catalog(tmp_path, env=SPEC_NAMED_KEYS))


def ids(body: dict[str, Any]) -> list[str]:
    return [m["id"] for m in body["data"]]


# ----------------------------------------------------------------------------------------- GET /models


def test_lists_only_what_configured_providers_serve(client: TestClient) -> None:
    r = client.get("/api/v1/models")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    check("getModels", body)
    listed = set(ids(body))
    assert body["total_count"] == len(listed) and body["links"] == {"next": None}
    assert {"openai/gpt-4o", "anthropic/claude-sonnet-4", "meta-llama/llama-3.3-70b-instruct"} <= listed
    assert not any(m.startswith("google/") for m in listed)  # no GEMINI_API_KEY


def test_model_entry_carries_real_prices_as_strings(client: TestClient) -> None:
    entry = next(m for m in client.get("/api/v1/models").json()["data"] if m["id"] == "openai/gpt-4o")
    assert entry["pricing"]["prompt"] == "0.0000025" and entry["pricing"]["completion"] == "0.00001"
    assert entry["pricing"]["input_cache_read"] == "0.00000125"
    assert entry["context_length"] == 128000
    assert entry["top_provider"] == {
        "context_length": 128000,
        "max_completion_tokens": 16384,
        "is_moderated": False,
    }
    assert entry["architecture"]["input_modalities"] == ["text", "image", "file"]
    assert "tools" in entry["supported_parameters"]
    assert entry["links"]["details"] == "/api/v1/models/openai/gpt-4o/endpoints"
    o3 = next(m for m in client.get("/api/v1/models").json()["data"] if m["id"] == "openai/o3")
    assert o3["reasoning"]["mandatory"] is True and o3["reasoning"]["supported_efforts"] == [
        "high",
        "medium",
        "low",
    ]


def test_listed_price_is_the_cheapest_live_host(client: TestClient) -> None:
    llama = next(
        m for m in client.get("/api/v1/models").json()["data"] if m["id"] == "meta-llama/llama-3.3-70b-instruct"
    )
    # DeepInfra ($0.13/$0.40) undercuts Groq ($0.59/$0.79), Together and Fireworks ($0.88-0.90).
    assert per_million(llama["pricing"]["prompt"]) == Decimal("0.13")
    assert per_million(llama["pricing"]["completion"]) == Decimal("0.40")


def test_output_modalities_default_to_text(tmp_path: Path) -> None:
    client = make_client(build_catalog(tmp_path, env={"OPENAI_API_KEY": "k"}, config=IMAGE_MODEL_CONFIG))
    assert "acme/pixel-1" not in ids(client.get("/api/v1/models").json())
    assert ids(client.get("/api/v1/models?output_modalities=image").json()) == ["acme/pixel-1"]
    everything = client.get("/api/v1/models?output_modalities=all").json()
    assert "acme/pixel-1" in ids(everything) and "openai/gpt-4o" in ids(everything)
    assert set(ids(client.get("/api/v1/models?output_modalities=text,image").json())) == set(ids(everything))
    count = client.get("/api/v1/models/count").json()
    check("listModelsCount", count)
    assert count["data"]["count"] == len(everything["data"]) - 1
    assert client.get("/api/v1/models/count?output_modalities=all").json()["data"]["count"] == len(everything["data"])


def test_filter_by_supported_parameters(client: TestClient) -> None:
    body = client.get("/api/v1/models?supported_parameters=tools,reasoning").json()
    check("getModels", body)
    found = ids(body)
    assert "openai/o3" in found and "anthropic/claude-sonnet-4" in found
    assert "openai/gpt-4o" not in found and "anthropic/claude-3.5-haiku" not in found
    for m in body["data"]:
        assert {"tools", "reasoning"} <= set(m["supported_parameters"])


def test_filter_by_input_modalities(client: TestClient) -> None:
    found = ids(client.get("/api/v1/models?input_modalities=image").json())
    assert "openai/gpt-4o" in found and "meta-llama/llama-4-scout" in found
    assert "meta-llama/llama-3.3-70b-instruct" not in found
    files = ids(client.get("/api/v1/models?input_modalities=image,file").json())
    assert "openai/gpt-4o" in files and "meta-llama/llama-4-scout" not in files  # needs both


def test_filter_by_text_author_and_provider(client: TestClient) -> None:
    assert set(ids(client.get("/api/v1/models?q=LLAMA 3.3").json())) == {"meta-llama/llama-3.3-70b-instruct"}
    assert "anthropic/claude-sonnet-4" in ids(client.get("/api/v1/models?q=claude-sonnet-4-20250514").json())
    anthropic = ids(client.get("/api/v1/models?model_authors=anthropic").json())
    assert anthropic and all(m.startswith("anthropic/") for m in anthropic)
    both = set(ids(client.get("/api/v1/models?model_authors=anthropic,mistralai").json()))
    assert both == set(anthropic) | set(ids(client.get("/api/v1/models?model_authors=mistralai").json()))
    groq = set(ids(client.get("/api/v1/models?providers=groq").json()))
    assert "meta-llama/llama-3.1-8b-instruct" in groq and "qwen/qwen3-32b" in groq
    assert "openai/gpt-4o" not in groq and "meta-llama/llama-3.1-70b-instruct" not in groq


def test_filter_by_price_and_context(client: TestClient) -> None:
    cheap = client.get("/api/v1/models?max_price=0.2").json()["data"]
    assert cheap and all(per_million(m["pricing"]["prompt"]) <= Decimal("0.2") for m in cheap)
    assert "openai/gpt-4o-mini" in ids({"data": cheap}) and "openai/gpt-4o" not in ids({"data": cheap})
    dear = client.get("/api/v1/models?min_price=10").json()["data"]
    assert set(ids({"data": dear})) == {"anthropic/claude-opus-4.1", "anthropic/claude-opus-4"}
    out = client.get("/api/v1/models?max_output_price=0.5").json()["data"]
    assert out and all(per_million(m["pricing"]["completion"]) <= Decimal("0.5") for m in out)
    long = ids(client.get("/api/v1/models?context=1000000").json())
    assert set(long) == {"openai/gpt-4.1", "openai/gpt-4.1-mini", "openai/gpt-4.1-nano"}


def test_filter_by_zdr(client: TestClient) -> None:
    found = set(ids(client.get("/api/v1/models?zdr=true").json()))
    # Groq, Fireworks and DeepInfra retain nothing; OpenAI and Anthropic keep prompts for 30 days.
    assert "meta-llama/llama-3.3-70b-instruct" in found and "openai/gpt-oss-120b" in found
    assert "openai/gpt-4o" not in found and "anthropic/claude-sonnet-4" not in found


def test_sorts(client: TestClient) -> None:
    def avg(m: dict[str, Any]) -> Decimal:
        return Decimal(m["pricing"]["prompt"]) + Decimal(m["pricing"]["completion"])

    low = client.get("/api/v1/models?sort=pricing-low-to-high").json()["data"]
    assert [avg(m) for m in low] == sorted(avg(m) for m in low)
    high = client.get("/api/v1/models?sort=pricing-high-to-low").json()["data"]
    assert [avg(m) for m in high] == sorted((avg(m) for m in high), reverse=True)
    assert high[0]["id"].startswith("anthropic/claude-opus-4")
    ctx = client.get("/api/v1/models?sort=context-high-to-low").json()["data"]
    assert [m["context_length"] for m in ctx] == sorted((m["context_length"] for m in ctx), reverse=True)
    newest = client.get("/api/v1/models?sort=newest").json()["data"]
    assert [m["created"] for m in newest] == sorted((m["created"] for m in newest), reverse=True)
    # Without usage data, popularity keeps the default order (newest first).
    assert ids({"data": client.get("/api/v1/models?sort=most-popular").json()["data"]}) == ids({"data": newest})


def test_pagination_walks_the_whole_list(client: TestClient) -> None:
    full = ids(client.get("/api/v1/models").json())
    seen: list[str] = []
    url: str | None = "/api/v1/models?limit=7"
    pages = 0
    while url:
        body = client.get(url).json()
        check("getModels", body)
        assert body["total_count"] == len(full)
        assert len(body["data"]) <= 7
        seen += ids(body)
        url = body["links"]["next"]
        pages += 1
        if url:
            assert parse_qs(urlsplit(url).query)["limit"] == ["7"]
    assert seen == full and pages == -(-len(full) // 7)
    assert client.get("/api/v1/models?offset=2").json()["data"][0]["id"] == full[2]  # limit defaults to 500
    past = client.get("/api/v1/models?offset=1000&limit=5").json()
    assert past["data"] == [] and past["total_count"] == len(full) and past["links"]["next"] is None


def test_pagination_keeps_filters_in_the_next_link(client: TestClient) -> None:
    first = client.get("/api/v1/models?model_authors=openai&limit=3").json()
    query = parse_qs(urlsplit(first["links"]["next"]).query)
    assert query["model_authors"] == ["openai"] and query["offset"] == ["3"]
    second = client.get(first["links"]["next"]).json()
    assert all(m.startswith("openai/") for m in ids(second))


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=1001",
        "limit=ten",
        "offset=-1",
        "sort=cheapest",
        "output_modalities=smell",
        "input_modalities=text,hologram",
        "min_price=-1",
        "max_price=abc",
        "max_price=NaN",
        "context=0",
        "zdr=maybe",
        "min_age_days=x",
    ],
)
def test_invalid_query_values_are_400(client: TestClient, query: str) -> None:
    r = client.get(f"/api/v1/models?{query}")
    assert r.status_code == 400, query
    body = r.json()
    assert body["error"]["code"] == 400 and query.split("=")[0] in body["error"]["message"]
    check("getModels", body, "400")
    if not query.startswith(("limit", "offset")):  # the count takes the same filters, but no pages
        assert client.get(f"/api/v1/models/count?{query}").status_code == 400


def test_unknown_category_and_unknown_parameters_are_ignored(client: TestClient) -> None:
    full = ids(client.get("/api/v1/models").json())
    assert ids(client.get("/api/v1/models?category=programming").json()) == full
    assert ids(client.get("/api/v1/models?category=underwater-basket-weaving&use_rss=false").json()) == full


# ---------------------------------------------------------------------------------------- /models/user


def test_models_user_requires_a_key(client: TestClient, fake_auth: str) -> None:
    r = client.get("/api/v1/models/user")
    assert r.status_code == 401
    check("listModelsUser", r.json(), "401")
    r = client.get("/api/v1/models/user?limit=5", headers={"Authorization": f"Bearer {fake_auth}"})
    assert r.status_code == 200
    body = r.json()
    check("listModelsUser", body)
    assert len(body["data"]) == 5 and body["total_count"] == len(ids(client.get("/api/v1/models").json()))


# ---------------------------------------------------------------------------- one model, its endpoints


def test_get_model_by_slug_variant_and_alias(client: TestClient) -> None:
    body = client.get("/api/v1/model/openai/gpt-4o").json()
    check("getModel", body)
    assert body["data"]["id"] == "openai/gpt-4o" and body["data"]["pricing"]["prompt"] == "0.0000025"
    assert client.get("/api/v1/model/openai/gpt-4o:nitro").json() == body
    assert client.get("/api/v1/model/OpenAI/GPT-4o").json() == body
    alias = client.get("/api/v1/model/anthropic/claude-3-5-haiku").json()
    assert alias["data"]["id"] == "anthropic/claude-3.5-haiku"
    dated = client.get("/api/v1/model/anthropic/claude-sonnet-4-20250514:thinking").json()
    assert dated["data"]["id"] == "anthropic/claude-sonnet-4"


def test_get_model_404s(client: TestClient) -> None:
    r = client.get("/api/v1/model/acme/does-not-exist")
    assert r.status_code == 404 and "acme/does-not-exist" in r.json()["error"]["message"]
    check("getModel", r.json(), "404")
    # Known, but no provider with a key serves it here.
    r = client.get("/api/v1/model/google/gemini-2.5-pro")
    assert r.status_code == 404 and "google-ai-studio" in r.json()["error"]["message"]
    assert client.get("/api/v1/models/google/gemini-2.5-pro/endpoints").status_code == 404


def test_endpoints_of_a_model_hosted_four_ways(client: TestClient) -> None:
    r = client.get("/api/v1/models/meta-llama/llama-3.3-70b-instruct/endpoints")
    assert r.status_code == 200
    body = r.json()
    check("listEndpoints", body)
    data = body["data"]
    assert data["id"] == "meta-llama/llama-3.3-70b-instruct" and data["architecture"]["tokenizer"] == "Llama3"
    by_tag = {ep["tag"]: ep for ep in data["endpoints"]}
    assert set(by_tag) == {"groq", "together", "fireworks", "deepinfra"}  # no OpenRouter key: not listed
    groq = by_tag["groq"]
    assert (per_million(groq["pricing"]["prompt"]), per_million(groq["pricing"]["completion"])) == (
        Decimal("0.59"),
        Decimal("0.79"),
    )
    assert groq["provider_name"] == "Groq" and groq["max_completion_tokens"] == 32768
    assert groq["name"] == "Groq | meta-llama/llama-3.3-70b-instruct"
    assert "top_k" not in groq["supported_parameters"]  # Groq's narrower set, not the model's
    assert by_tag["together"]["quantization"] == "fp8" and by_tag["fireworks"]["quantization"] is None
    assert all(ep["context_length"] == 131072 for ep in data["endpoints"])
    assert groq["uptime_last_30m"] is None and groq["latency_last_30m"] is None  # nothing measured yet


def test_implicit_caching_flag(client: TestClient) -> None:
    def endpoint(model: str, tag: str) -> dict[str, Any]:
        eps = client.get(f"/api/v1/models/{model}/endpoints").json()["data"]["endpoints"]
        return next(ep for ep in eps if ep["tag"] == tag)

    assert endpoint("openai/gpt-4o", "openai")["supports_implicit_caching"] is True
    assert endpoint("anthropic/claude-sonnet-4", "anthropic")["supports_implicit_caching"] is False
    assert endpoint("anthropic/claude-sonnet-4", "anthropic")["pricing"]["input_cache_write"] == "0.00000375"


# ---------------------------------------------------------------------------- providers, ZDR endpoints


def test_providers_lists_the_configured_ones(client: TestClient) -> None:
    body = client.get("/api/v1/providers").json()
    check("listProviders", body)
    slugs = {p["slug"] for p in body["data"]}
    assert slugs == {
        "openai",
        "anthropic",
        "groq",
        "together",
        "deepinfra",
        "fireworks",
        "mistral",
        "deepseek",
    }
    openai = next(p for p in body["data"] if p["slug"] == "openai")
    assert openai["name"] == "OpenAI" and openai["headquarters"] == "US"
    assert openai["status_page_url"] == "https://status.openai.com"


def test_zdr_endpoints(client: TestClient) -> None:
    body = client.get("/api/v1/endpoints/zdr").json()
    check("listEndpointsZdr", body)
    assert {ep["provider_name"] for ep in body["data"]} == {"Groq", "Fireworks", "DeepInfra"}
    models = {ep["model_id"] for ep in body["data"]}
    assert "meta-llama/llama-3.3-70b-instruct" in models and "openai/gpt-4o" not in models


# ---------------------------------------------------------------------- spec quirks, SDK, catalog swap


def test_gateway_only_provider_names_are_the_sole_deviation_from_the_enum(tmp_path: Path) -> None:
    """`ProviderName` is a closed enum of OpenRouter's upstreams; "OpenRouter", the sandbox and a local
    server cannot be in it. Everything else about those endpoints must still validate."""
    require_spec()
    env = {"OPENROUTER_API_KEY": "k", "GROQ_API_KEY": "k"}
    client = make_client(build_catalog(tmp_path, env=env, config=IMAGE_MODEL_CONFIG, sandbox=True))
    for url, operation in [
        ("/api/v1/models/meta-llama/llama-3.3-70b-instruct/endpoints", "listEndpoints"),
        ("/api/v1/models/sandbox/echo/endpoints", "listEndpoints"),
        ("/api/v1/models/acme/pixel-1/endpoints", "listEndpoints"),
        ("/api/v1/endpoints/zdr", "listEndpointsZdr"),
    ]:
        body = client.get(url).json()
        endpoints = body["data"] if operation == "listEndpointsZdr" else body["data"]["endpoints"]
        names = {ep["provider_name"] for ep in endpoints}
        assert names & {"OpenRouter", "Sandbox (offline, deterministic)", "Local vLLM"}, url
        patched = copy.deepcopy(body)
        for ep in patched["data"] if operation == "listEndpointsZdr" else patched["data"]["endpoints"]:
            ep["provider_name"] = "Groq"
        validate_response(operation, patched)
    for url, operation in [
        ("/api/v1/models?output_modalities=all", "getModels"),
        ("/api/v1/providers", "listProviders"),
        ("/api/v1/model/sandbox/chat", "getModel"),
    ]:
        validate_response(operation, client.get(url).json())


def test_the_official_sdk_parses_every_response(client: TestClient) -> None:
    sdk = openrouter.OpenRouter(api_key="k", server_url="http://testserver/api/v1", client=client)
    page = sdk.models.list(limit=10)
    assert len(page.result.data) == 10 and page.result.total_count > 10
    second = page.next()
    assert second is not None and second.result.data[0].id != page.result.data[0].id
    model = sdk.models.get(author="anthropic", slug="claude-sonnet-4").data
    assert model.pricing.prompt == "0.000003" and model.pricing.input_cache_write == "0.00000375"
    endpoints = sdk.endpoints.list(author="openai", slug="gpt-oss-120b").data.endpoints
    assert {ep.tag for ep in endpoints} == {"groq", "together", "fireworks"}
    assert {ep.quantization for ep in endpoints} == {"mxfp4"}
    assert sdk.models.count().data.count == page.result.total_count
    assert {p.slug for p in sdk.providers.list().data} >= {"openai", "groq"}
    assert sdk.endpoints.list_zdr_endpoints().data


def test_a_new_catalog_is_picked_up(tmp_path: Path) -> None:
    client = make_client(build_catalog(tmp_path, env={"OPENAI_API_KEY": "k"}))
    first = client.get("/api/v1/models").content
    assert client.get("/api/v1/models").content == first  # built once, served as is
    assert "anthropic/claude-sonnet-4" not in first.decode()
    client.app.state.omni.catalog = build_catalog(tmp_path, env={"ANTHROPIC_API_KEY": "k"})
    body = client.get("/api/v1/models").json()
    assert "anthropic/claude-sonnet-4" in ids(body) and "openai/gpt-4o" not in ids(body)
