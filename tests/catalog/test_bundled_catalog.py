"""The bundled catalog: real providers, real list prices, and values the OpenAPI enums accept."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from omnirouter.catalog.loader import load_bundled

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ holds the shared helpers
from spec_validation import SPEC_PATH, require_spec

D = Decimal
DATA = load_bundled()
PROVIDERS = {p.slug: p for p in DATA.providers}
MODELS = {m.id: m for m in DATA.models}


def per_million(model_id: str, provider: str) -> tuple[Decimal, Decimal]:
    ep = next(e for e in MODELS[model_id].endpoints if e.provider == provider)
    return ep.pricing.prompt * 1_000_000, ep.pricing.completion * 1_000_000


def test_providers_are_the_documented_upstreams() -> None:
    expected = {
        "openai": ("openai", "https://api.openai.com/v1", "OPENAI_API_KEY"),
        "anthropic": ("anthropic", "https://api.anthropic.com/v1", "ANTHROPIC_API_KEY"),
        "google-ai-studio": ("gemini", "https://generativelanguage.googleapis.com/v1beta", "GEMINI_API_KEY"),
        "mistral": ("openai", "https://api.mistral.ai/v1", "MISTRAL_API_KEY"),
        "groq": ("openai", "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
        "together": ("openai", "https://api.together.xyz/v1", "TOGETHER_API_KEY"),
        "deepseek": ("openai", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
        "fireworks": ("openai", "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY"),
        "deepinfra": ("openai", "https://api.deepinfra.com/v1/openai", "DEEPINFRA_API_KEY"),
        "openrouter": ("openai", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    }
    assert set(PROVIDERS) == set(expected)
    for slug, (api, base_url, key_env) in expected.items():
        p = PROVIDERS[slug]
        assert (p.api, p.api_key_env) == (api, key_env), slug
        if base_url:
            assert p.base_url == base_url, slug
        assert p.api_key is None and not p.enabled, "the bundled file holds no secrets and enables nothing"
        assert p.data_policy.privacy_policy_url and p.data_policy.terms_of_service_url, slug
    assert PROVIDERS["google-ai-studio"].name == "Google AI Studio"


def test_cancellation_support_follows_the_documented_list() -> None:
    # behaviors §2.4: streaming cancellation stops billing only on these providers.
    for slug in ("openai", "anthropic", "together", "deepseek", "fireworks", "deepinfra"):
        assert PROVIDERS[slug].can_abort, slug
    for slug in ("groq", "google-ai-studio", "mistral"):
        assert not PROVIDERS[slug].can_abort, slug


def test_data_policies() -> None:
    assert PROVIDERS["deepseek"].data_policy.training  # its privacy policy allows training on inputs
    assert not any(p.data_policy.training for s, p in PROVIDERS.items() if s != "deepseek")
    assert PROVIDERS["openai"].data_policy.retention_days == 30
    assert {s for s, p in PROVIDERS.items() if p.data_policy.zdr} == {"groq", "fireworks", "deepinfra"}


@pytest.mark.parametrize(
    ("model_id", "provider", "prompt", "completion"),
    [
        ("openai/gpt-4o", "openai", "2.50", "10"),
        ("openai/gpt-4o-mini", "openai", "0.15", "0.60"),
        ("openai/gpt-4.1", "openai", "2", "8"),
        ("openai/gpt-5", "openai", "1.25", "10"),
        ("openai/gpt-5-nano", "openai", "0.05", "0.40"),
        ("openai/o4-mini", "openai", "1.10", "4.40"),
        ("anthropic/claude-sonnet-4", "anthropic", "3", "15"),
        ("anthropic/claude-opus-4.1", "anthropic", "15", "75"),
        ("anthropic/claude-3.5-haiku", "anthropic", "0.80", "4"),
        ("google/gemini-2.5-pro", "google-ai-studio", "1.25", "10"),
        ("google/gemini-2.5-flash", "google-ai-studio", "0.30", "2.50"),
        ("mistralai/mistral-large", "mistral", "2", "6"),
        ("meta-llama/llama-3.3-70b-instruct", "groq", "0.59", "0.79"),
        ("meta-llama/llama-3.1-8b-instruct", "groq", "0.05", "0.08"),
        ("meta-llama/llama-3.3-70b-instruct", "together", "0.88", "0.88"),
        ("openai/gpt-oss-120b", "groq", "0.15", "0.60"),
    ],
)
def test_list_prices(model_id: str, provider: str, prompt: str, completion: str) -> None:
    assert per_million(model_id, provider) == (D(prompt), D(completion))


def test_cache_prices() -> None:
    sonnet = next(e for e in MODELS["anthropic/claude-sonnet-4"].endpoints if e.provider == "anthropic")
    assert sonnet.pricing.input_cache_write * 1_000_000 == D("3.75")  # 1.25x prompt, 5-minute TTL
    assert sonnet.pricing.input_cache_read * 1_000_000 == D("0.30")
    gpt4o = next(e for e in MODELS["openai/gpt-4o"].endpoints if e.provider == "openai")
    assert gpt4o.pricing.input_cache_read * 1_000_000 == D("1.25")
    assert gpt4o.pricing.input_cache_write is None  # OpenAI caches implicitly, without a write charge


def test_every_endpoint_names_a_bundled_provider_and_has_sane_limits() -> None:
    assert 30 <= len(MODELS) <= 50
    for model in DATA.models:
        assert model.id.count("/") == 1 and ":" not in model.id
        assert model.endpoints, model.id
        assert model.context_length and model.context_length >= 8192, model.id
        for ep in model.endpoints:
            assert ep.provider in PROVIDERS, (model.id, ep.provider)
            assert ep.pricing.prompt > 0 and ep.pricing.completion > 0, (model.id, ep.provider)
            if ep.max_completion_tokens is not None:
                assert ep.max_completion_tokens <= (ep.context_length or model.context_length)


def test_openrouter_serves_every_model_at_the_listed_price() -> None:
    for model in DATA.models:
        eps = [e for e in model.endpoints if e.provider == "openrouter"]
        assert len(eps) == 1, model.id
        assert eps[0].upstream_model == model.id
        others = [e for e in model.endpoints if e.provider != "openrouter"]
        assert any(e.pricing == eps[0].pricing for e in others), model.id


def test_open_weight_models_have_several_hosts_at_different_prices() -> None:
    llama = MODELS["meta-llama/llama-3.3-70b-instruct"]
    hosts = {e.provider: e for e in llama.endpoints}
    assert {"groq", "together", "deepinfra", "fireworks"} <= set(hosts)
    assert len({e.pricing.prompt for e in hosts.values()}) >= 3
    assert hosts["together"].quantization == "fp8"
    assert MODELS["openai/gpt-oss-120b"].hugging_face_id == "openai/gpt-oss-120b"


def supported(model_id: str, provider: str) -> set[str]:
    model = MODELS[model_id]
    ep = next(e for e in model.endpoints if e.provider == provider)
    return set(ep.supported_parameters if ep.supported_parameters is not None else model.supported_parameters)


STRUCTURED = {"response_format", "structured_outputs"}
GEMINI = ("google/gemini-2.5-pro", "google/gemini-2.5-flash", "google/gemini-2.0-flash-001")
CLAUDE_WITH_STRUCTURED_OUTPUTS = (
    "anthropic/claude-opus-4.5",
    "anthropic/claude-opus-4.1",
    "anthropic/claude-sonnet-4.5",
    "anthropic/claude-haiku-4.5",
)


@pytest.mark.parametrize(
    ("model_id", "provider"),
    [(m, "openrouter") for m in CLAUDE_WITH_STRUCTURED_OUTPUTS]
    + [(m, "openai") for m in ("openai/gpt-4o", "openai/gpt-4o-mini", "openai/gpt-4.1", "openai/gpt-5", "openai/o3")]
    + [(m, "google-ai-studio") for m in GEMINI],
)
def test_structured_outputs_where_the_endpoint_enforces_a_schema(model_id: str, provider: str) -> None:
    assert set(MODELS[model_id].supported_parameters) >= STRUCTURED
    assert supported(model_id, provider) >= STRUCTURED


def test_anthropic_takes_structured_outputs_where_its_api_enforces_a_schema() -> None:
    # The native Messages API enforces a JSON schema (output_config.format) for the Claude 4.5
    # models; Opus 4.1 had it only as a beta, so its Anthropic endpoint is not sent response_format.
    for model_id in CLAUDE_WITH_STRUCTURED_OUTPUTS:
        if model_id == "anthropic/claude-opus-4.1":
            assert supported(model_id, "anthropic") == set(MODELS[model_id].supported_parameters) - STRUCTURED
        else:
            assert supported(model_id, "anthropic") >= STRUCTURED, model_id
    # Claude models before 4.1 have no structured outputs anywhere.
    for model_id in ("anthropic/claude-sonnet-4", "anthropic/claude-opus-4", "anthropic/claude-3.5-haiku"):
        assert not STRUCTURED & set(MODELS[model_id].supported_parameters), model_id


def test_values_are_in_the_openapi_vocabulary() -> None:
    require_spec()
    schemas = json.loads(SPEC_PATH.read_text())["components"]["schemas"]
    parameters = set(schemas["Parameter"]["enum"])
    tokenizers = set(schemas["ModelGroup"]["enum"])
    instruct = set(schemas["InstructType"]["enum"])
    quantizations = set(schemas["Quantization"]["enum"])
    inputs, outputs = set(schemas["InputModality"]["enum"]), set(schemas["OutputModality"]["enum"])
    names = set(schemas["ProviderName"]["enum"])
    for p in DATA.providers:
        # OpenRouter itself is not an upstream of OpenRouter, so its name is not in the enum.
        assert p.name in names or p.slug == "openrouter", p.name
    for m in DATA.models:
        assert set(m.supported_parameters) <= parameters, m.id
        assert m.architecture.tokenizer in tokenizers, m.id
        assert m.architecture.instruct_type in instruct, m.id
        assert set(m.architecture.input_modalities) <= inputs and set(m.architecture.output_modalities) <= outputs
        for ep in m.endpoints:
            assert ep.quantization is None or ep.quantization in quantizations, (m.id, ep.provider)
            assert set(ep.supported_parameters or []) <= parameters, (m.id, ep.provider)
