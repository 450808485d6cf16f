"""load_catalog: keys from the environment, config-file merging, the sandbox, malformed input."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from catalog_helpers import build_catalog

from omnirouter.catalog.loader import load_catalog

LOCAL_VLLM = """
providers:
  - slug: local-vllm
    name: Local vLLM
    api: openai
    base_url: http://127.0.0.1:8001/v1
models:
  - id: meta-llama/llama-3.1-8b-instruct
    name: Llama 3.1 8B Instruct
    context_length: 131072
    endpoints:
      - provider: local-vllm
        upstream_model: meta-llama/Llama-3.1-8B-Instruct
        pricing: {prompt: "0.0000001", completion: "0.0000002"}
"""


def live_providers(catalog, model_id: str) -> list[str]:
    return [ep.provider for ep in catalog.live_endpoints(catalog.model(model_id))]


def test_without_keys_nothing_is_live(tmp_path: Path) -> None:
    catalog = build_catalog(tmp_path)
    assert catalog.models  # the bundled catalog is there...
    assert catalog.live_models() == []  # ...but no provider has a key
    assert not any(p.enabled for p in catalog.providers.values())


def test_a_key_in_the_environment_enables_its_provider(tmp_path: Path) -> None:
    catalog = build_catalog(tmp_path, env={"OPENAI_API_KEY": "sk-test-123", "UNRELATED": "x"})
    openai = catalog.provider("openai")
    assert openai.enabled and openai.api_key == "sk-test-123"
    assert "sk-test-123" not in repr(openai)
    assert not catalog.provider("anthropic").enabled
    live = {m.id for m in catalog.live_models()}
    assert "openai/gpt-4o" in live and "anthropic/claude-sonnet-4" not in live
    assert all(m.author == "openai" for m in catalog.live_models())
    # gpt-oss is open-weight: OpenAI's own API does not serve it, so an OpenAI key alone does not either.
    assert "openai/gpt-oss-120b" not in live
    assert live_providers(catalog, "openai/gpt-4o") == ["openai"]


def test_an_empty_key_does_not_enable(tmp_path: Path) -> None:
    catalog = build_catalog(tmp_path, env={"GROQ_API_KEY": ""})
    assert not catalog.provider("groq").enabled


def test_openrouter_key_makes_every_bundled_model_servable(tmp_path: Path) -> None:
    catalog = build_catalog(tmp_path, env={"OPENROUTER_API_KEY": "sk-or-v1-abc"})
    assert len(catalog.live_models()) == len(catalog.models)
    assert live_providers(catalog, "anthropic/claude-sonnet-4") == ["openrouter"]
    ep = catalog.live_endpoints(catalog.model("anthropic/claude-sonnet-4"))[0]
    assert ep.upstream_model == "anthropic/claude-sonnet-4"
    assert ep.pricing.prompt == Decimal("0.000003")


def test_config_adds_a_keyless_local_provider_to_a_bundled_model(tmp_path: Path) -> None:
    config = yaml.safe_load(LOCAL_VLLM)
    catalog = build_catalog(tmp_path, env={"GROQ_API_KEY": "gsk"}, config=config)
    vllm = catalog.provider("local-vllm")
    assert vllm.enabled and vllm.api_key is None and vllm.base_url == "http://127.0.0.1:8001/v1"
    model = catalog.model("meta-llama/llama-3.1-8b-instruct")
    assert model.name == "Llama 3.1 8B Instruct"  # the config's metadata replaces the bundled one
    # The bundled hosts stay; the local server is added beside them.
    assert {"groq", "together", "fireworks", "deepinfra", "openrouter", "local-vllm"} <= {
        ep.provider for ep in model.endpoints
    }
    assert live_providers(catalog, "meta-llama/llama-3.1-8b-instruct") == ["groq", "local-vllm"]
    local = next(ep for ep in model.endpoints if ep.provider == "local-vllm")
    assert local.upstream_model == "meta-llama/Llama-3.1-8B-Instruct"
    assert (local.pricing.prompt, local.pricing.completion) == (Decimal("1E-7"), Decimal("2E-7"))
    # Fields the config left out keep their bundled values.
    assert model.architecture.tokenizer == "Llama3"
    assert model.hugging_face_id == "meta-llama/Llama-3.1-8B-Instruct"


def test_config_endpoint_replaces_the_one_with_the_same_provider(tmp_path: Path) -> None:
    config = {
        "models": [
            {
                "id": "meta-llama/llama-3.3-70b-instruct",
                "endpoints": [
                    {
                        "provider": "groq",
                        "upstream_model": "llama-3.3-70b-specdec",
                        "pricing": {"prompt": 0.00000059, "completion": 0.00000099},
                    },
                ],
            }
        ]
    }
    catalog = build_catalog(tmp_path, env={"GROQ_API_KEY": "gsk"}, config=config)
    model = catalog.model("meta-llama/llama-3.3-70b-instruct")
    groq = [ep for ep in model.endpoints if ep.provider == "groq"]
    assert len(groq) == 1 and groq[0].upstream_model == "llama-3.3-70b-specdec"
    # YAML floats become the decimal they were written as, not a binary approximation.
    assert groq[0].pricing.completion == Decimal("0.00000099")
    assert model.name == "Meta: Llama 3.3 70B Instruct"  # no metadata given: unchanged


def test_config_adds_a_new_model_and_derives_its_modality(tmp_path: Path) -> None:
    config = yaml.safe_load(LOCAL_VLLM)
    config["models"].append(
        {
            "id": "acme/vision-7b",
            "context_length": 32768,
            "architecture": {"input_modalities": ["text", "image"]},
            "endpoints": [{"provider": "local-vllm", "upstream_model": "acme/Vision-7B"}],
        }
    )
    catalog = build_catalog(tmp_path, config=config)
    model = catalog.model("acme/vision-7b")
    assert model.name == "acme/vision-7b"
    assert model.architecture.modality == "text+image->text"
    assert model.endpoints[0].pricing.is_free  # no pricing given: free, as a local server is
    assert [m.id for m in catalog.live_models()] == ["meta-llama/llama-3.1-8b-instruct", "acme/vision-7b"]


def test_config_overrides_fields_of_a_bundled_provider(tmp_path: Path) -> None:
    config = {"providers": [{"slug": "openai", "base_url": "http://proxy.internal/v1", "data_policy": {"zdr": True}}]}
    catalog = build_catalog(tmp_path, config=config)
    openai = catalog.provider("openai")
    assert openai.base_url == "http://proxy.internal/v1"
    assert openai.name == "OpenAI" and openai.api_key_env == "OPENAI_API_KEY"
    assert openai.data_policy.zdr and openai.data_policy.retention_days == 30  # merged, not replaced
    assert not openai.enabled  # it still needs OPENAI_API_KEY

    catalog = build_catalog(tmp_path, env={"OPENAI_API_KEY": "k"}, config=config)
    assert catalog.provider("openai").enabled


def test_config_can_switch_a_provider_off(tmp_path: Path) -> None:
    config = {"providers": [{"slug": "groq", "enabled": False}]}
    catalog = build_catalog(tmp_path, env={"GROQ_API_KEY": "gsk", "OPENAI_API_KEY": "k"}, config=config)
    assert not catalog.provider("groq").enabled and catalog.provider("openai").enabled


def test_config_provider_with_key_env_needs_the_key(tmp_path: Path) -> None:
    config = yaml.safe_load(LOCAL_VLLM)
    config["providers"][0]["api_key_env"] = "VLLM_KEY"
    assert not build_catalog(tmp_path, config=config).provider("local-vllm").enabled
    catalog = build_catalog(tmp_path, env={"VLLM_KEY": "secret"}, config=config)
    assert catalog.provider("local-vllm").enabled and catalog.provider("local-vllm").api_key == "secret"


def test_sandbox(tmp_path: Path) -> None:
    assert build_catalog(tmp_path).provider("sandbox") is None
    catalog = build_catalog(tmp_path, sandbox=True)
    sandbox = catalog.provider("sandbox")
    assert sandbox.enabled and sandbox.api == "sandbox" and sandbox.name == "Sandbox (offline, deterministic)"
    assert sandbox.data_policy.zdr and not sandbox.data_policy.training
    assert [m.id for m in catalog.live_models()] == [
        "sandbox/echo", "sandbox/chat", "sandbox/embed", "sandbox/rerank", "sandbox/image", "sandbox/speech",
        "sandbox/transcribe", "sandbox/video",
    ]  # fmt: skip
    for model_id in ("sandbox/echo", "sandbox/chat"):
        model = catalog.model(model_id)
        (ep,) = model.endpoints
        assert ep.provider == "sandbox" and ep.max_completion_tokens == 128_000
        assert model.context_length == 200_000
        assert ep.pricing.prompt == Decimal("0.000001") and ep.pricing.completion == Decimal("0.000002")
    # One model per operation beyond chat, priced in its own unit (accounting/units.py).
    assert catalog.model("sandbox/embed").architecture.output_modalities == ["embeddings"]
    assert catalog.model("sandbox/speech").endpoints[0].pricing.character == Decimal("0.000015")
    others = [m for m in catalog.models.values() if not m.id.startswith("sandbox/")]
    assert not any(ep.provider == "sandbox" for m in others for ep in m.endpoints)


def test_imported_snapshot_is_overlaid(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    snapshot = {
        "models": [
            {
                "id": "x-ai/grok-4",
                "name": "xAI: Grok 4",
                "context_length": 256000,
                "endpoints": [
                    {
                        "provider": "openrouter",
                        "upstream_model": "x-ai/grok-4",
                        "pricing": {"prompt": "0.000003", "completion": "0.000015"},
                    }
                ],
            }
        ]
    }
    (data_dir / "catalog.json").write_text(json.dumps(snapshot))
    catalog = load_catalog(config=None, env={"OPENROUTER_API_KEY": "k"}, sandbox=False, data_dir=data_dir)
    grok = catalog.model("x-ai/grok-4")
    assert grok is not None and catalog.live_endpoints(grok)[0].pricing.completion == Decimal("0.000015")
    assert catalog.model("openai/gpt-4o") is not None  # the bundled catalog is still underneath


def test_broken_snapshot_names_the_file(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "catalog.json").write_text('{"models": [{"id": 3}]}')
    with pytest.raises(ValueError, match=r"catalog\.json"):
        load_catalog(config=None, env={}, sandbox=False, data_dir=data_dir)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"providers": {"slug": "x"}}, r"omnirouter\.yaml: `providers` must be a list"),
        ({"providers": ["local"]}, r"providers\[0\]: expected a mapping"),
        ({"providers": [{"name": "No slug"}]}, r"providers\[0\]\.slug: required"),
        ({"providers": [{"slug": "Bad Slug"}]}, r"providers\[0\]\.slug"),
        (
            {"providers": [{"slug": "x", "base_ur": "http://h"}]},
            r"providers\[0\]: unknown field\(s\) 'base_ur'",
        ),
        (
            {"providers": [{"slug": "x", "data_policy": {"zdr": "yes"}}]},
            r"Expected `bool`, got `str` - at `providers\[0\]\.data_policy\.zdr`",
        ),
        ({"models": [{"id": "no-author"}]}, r"models\[0\]\.id: required, of the form author/slug"),
        (
            {"models": [{"id": "a/b", "context_lenght": 5}]},
            r"models\[0\]: unknown field\(s\) 'context_lenght'",
        ),
        (
            {"models": [{"id": "a/b", "context_length": "big"}]},
            r"Expected `int \| null`, got `str` - at `models\[0\]\.context_length`",
        ),
        (
            {"models": [{"id": "a/b", "endpoints": [{"provider": "nope", "upstream_model": "m"}]}]},
            r"models\[0\]\.endpoints\[0\]\.provider: unknown provider 'nope'",
        ),
        (
            {
                "models": [
                    {
                        "id": "a/b",
                        "endpoints": [{"provider": "groq", "upstream_model": "m", "pricing": {"prompt": "cheap"}}],
                    }
                ]
            },
            r"Invalid decimal string - at `models\[0\]\.endpoints\[0\]\.pricing\.prompt`",
        ),
        (
            {
                "models": [
                    {
                        "id": "a/b",
                        "endpoints": [{"provider": "groq", "upstream_model": "m", "pricing": {"promt": "0.1"}}],
                    }
                ]
            },
            r"models\[0\]\.endpoints\[0\]\.pricing: unknown field\(s\) 'promt'",
        ),
        (
            {"models": [{"id": "a/b", "endpoints": [{"provider": "groq"}]}]},
            r"missing required field `upstream_model` - at `models\[0\]\.endpoints\[0\]`",
        ),
    ],
)
def test_malformed_config_is_a_clear_error(tmp_path: Path, config: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        load_catalog(config=config, env={}, sandbox=False, data_dir=tmp_path, config_source="omnirouter.yaml")
    assert str(info.value).startswith("omnirouter.yaml: ")
