"""import_openrouter_models: a GET /models dump refreshes prices and adds models via OpenRouter."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from omnirouter.catalog.importer import import_openrouter_models
from omnirouter.catalog.loader import load_catalog


def or_model(model_id: str, prompt: str, completion: str, **extra: Any) -> dict[str, Any]:
    """One entry as OpenRouter's GET /models writes it."""
    entry = {
        "id": model_id,
        "canonical_slug": model_id,
        "name": extra.pop("name", model_id),
        "created": 1750000000,
        "description": extra.pop("description", ""),
        "context_length": extra.pop("context_length", 128000),
        "architecture": {
            "modality": "text->text",
            "input_modalities": ["text"],
            "output_modalities": ["text"],
            "tokenizer": "Other",
            "instruct_type": None,
        },
        "pricing": {"prompt": prompt, "completion": completion, "request": "0", "image": "0"},
        "top_provider": {
            "context_length": extra.pop("context_length_top", 128000),
            "max_completion_tokens": extra.pop("max_completion_tokens", 16384),
            "is_moderated": True,
        },
        "per_request_limits": None,
        "supported_parameters": ["max_tokens", "temperature", "tools"],
        "default_parameters": {"temperature": 0.7, "top_p": None, "bogus": 3},
        "supported_voices": None,
        "links": {"details": f"/api/v1/models/{model_id}/endpoints"},
    }
    entry["pricing"].update(extra.pop("cache", {}))
    entry.update(extra)
    return entry


@pytest.fixture
def dump(tmp_path: Path) -> Path:
    path = tmp_path / "models.json"
    path.write_text(
        json.dumps(
            {
                "data": [
                    # OpenAI raised gpt-4o's prompt price: the openrouter and openai endpoints follow.
                    or_model(
                        "openai/gpt-4o",
                        "0.000003",
                        "0.00001",
                        name="OpenAI: GPT-4o (2024-11-20)",
                        description="Updated description",
                        context_length=128000,
                    ),
                    # Same prices as bundled, new metadata only.
                    or_model(
                        "anthropic/claude-sonnet-4",
                        "0.000003",
                        "0.000015",
                        name="Anthropic: Claude Sonnet 4",
                        description="Sonnet, refreshed",
                        context_length=1000000,
                        context_length_top=1000000,
                        cache={"input_cache_read": "0.0000003", "input_cache_write": "0.00000375"},
                    ),
                    # Open-weight: OpenRouter's price is no one host's, so only its own endpoint moves.
                    or_model("meta-llama/llama-3.3-70b-instruct", "0.0000001", "0.00000032"),
                    # Not in the bundled catalog: added, served through OpenRouter.
                    or_model(
                        "x-ai/grok-4",
                        "0.000003",
                        "0.000015",
                        name="xAI: Grok 4",
                        context_length=256000,
                        context_length_top=256000,
                    ),
                    # Open weights: OpenRouter's price may be another host's, so DeepSeek's own list price stays.
                    or_model(
                        "deepseek/deepseek-chat", "0.0000003", "0.00000085", hugging_face_id="deepseek-ai/DeepSeek-V3"
                    ),
                    # Routers and ~latest aliases are not models a catalog can price.
                    or_model("openrouter/auto", "-1", "-1"),
                    or_model("~anthropic/claude-opus-latest", "0.000005", "0.000025"),
                ]
            }
        )
    )
    return path


def test_import_updates_prices_and_adds_models(tmp_path: Path, dump: Path) -> None:
    data_dir = tmp_path / "data"
    report = import_openrouter_models(dump, data_dir)

    assert report.path == data_dir / "catalog.json" and report.path.is_file()
    assert sorted(report.added) == ["x-ai/grok-4"]
    assert sorted(report.updated) == [
        "anthropic/claude-sonnet-4",
        "deepseek/deepseek-chat",
        "meta-llama/llama-3.3-70b-instruct",
        "openai/gpt-4o",
    ]
    assert sorted(report.skipped) == ["openrouter/auto", "~anthropic/claude-opus-latest"]
    changes = {(c.model, c.provider, c.field): (c.old, c.new) for c in report.price_changes}
    assert changes[("openai/gpt-4o", "openrouter", "prompt")] == (Decimal("0.0000025"), Decimal("0.000003"))
    assert changes[("openai/gpt-4o", "openai", "prompt")] == (Decimal("0.0000025"), Decimal("0.000003"))
    assert ("openai/gpt-4o", "openai", "completion") not in changes  # unchanged
    # The dump lists no cache price for gpt-4o: that is "not said", not "now free" on OpenAI's endpoint.
    assert ("openai/gpt-4o", "openai", "input_cache_read") not in changes
    assert not any(m == "anthropic/claude-sonnet-4" for m, _, _ in changes)
    # OpenRouter's own endpoint takes its prices as published: no cache price listed, none charged.
    assert changes[("meta-llama/llama-3.3-70b-instruct", "openrouter", "prompt")] == (
        Decimal("0.00000013"),
        Decimal("0.0000001"),
    )
    assert not any(m == "meta-llama/llama-3.3-70b-instruct" and p != "openrouter" for m, p, _ in changes)
    assert "openai/gpt-4o on openai: prompt 0.0000025 -> 0.000003" in str(report)
    assert str(report).startswith(f"wrote {report.path}: 1 models added, 4 updated")

    env = {"OPENAI_API_KEY": "k", "OPENROUTER_API_KEY": "k", "GROQ_API_KEY": "k"}
    catalog = load_catalog(config=None, env=env, sandbox=False, data_dir=data_dir)
    gpt4o = catalog.model("openai/gpt-4o")
    assert gpt4o.name == "OpenAI: GPT-4o (2024-11-20)" and gpt4o.description == "Updated description"
    prices = {ep.provider: ep.pricing for ep in catalog.live_endpoints(gpt4o)}
    assert prices["openai"].prompt == prices["openrouter"].prompt == Decimal("0.000003")
    assert prices["openai"].input_cache_read == Decimal("0.00000125")  # kept
    assert gpt4o.default_parameters == {"temperature": 0.7, "top_p": None}

    sonnet = catalog.model("anthropic/claude-sonnet-4")
    assert sonnet.context_length == 1000000 and sonnet.description == "Sonnet, refreshed"
    assert "anthropic/claude-sonnet-4-20250514" in sonnet.aliases  # bundled knowledge survives
    assert {ep.provider for ep in sonnet.endpoints} == {"anthropic", "openrouter"}

    llama = catalog.model("meta-llama/llama-3.3-70b-instruct")
    hosts = {ep.provider: ep.pricing.prompt for ep in llama.endpoints}
    assert hosts["openrouter"] == Decimal("0.0000001") and hosts["groq"] == Decimal("0.00000059")

    deepseek = {ep.provider: ep.pricing.prompt for ep in catalog.model("deepseek/deepseek-chat").endpoints}
    assert deepseek == {"deepseek": Decimal("0.00000028"), "openrouter": Decimal("0.0000003")}

    grok = catalog.model("x-ai/grok-4")
    (ep,) = grok.endpoints
    assert (ep.provider, ep.upstream_model) == ("openrouter", "x-ai/grok-4")
    assert (ep.pricing.prompt, ep.pricing.completion) == (Decimal("0.000003"), Decimal("0.000015"))
    assert ep.context_length == 256000 and ep.max_completion_tokens == 16384 and ep.is_moderated
    assert catalog.model("openrouter/auto") is None

    # Without an OpenRouter key the imported model cannot be served.
    catalog = load_catalog(config=None, env={"OPENAI_API_KEY": "k"}, sandbox=False, data_dir=data_dir)
    assert catalog.live_endpoints(catalog.model("x-ai/grok-4")) == []


def test_reimporting_the_same_dump_changes_nothing(tmp_path: Path, dump: Path) -> None:
    data_dir = tmp_path / "data"
    import_openrouter_models(dump, data_dir)
    again = import_openrouter_models(dump, data_dir)
    assert again.price_changes == []
    assert again.added == []  # grok-4 is now known, from the previous import
    assert "x-ai/grok-4" in again.updated
    # The second file replaced the first, and still carries the first-party price change.
    catalog = load_catalog(config=None, env={"OPENAI_API_KEY": "k"}, sandbox=False, data_dir=data_dir)
    (openai,) = catalog.live_endpoints(catalog.model("openai/gpt-4o"))
    assert openai.pricing.prompt == Decimal("0.000003")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("this is not json", r"not JSON"),
        ('["a", "list"]', r"not an OpenRouter GET /models dump"),
        ('{"models": []}', r"not an OpenRouter GET /models dump"),
        ('{"data": [{"id": "a/b", "name": "B"}]}', r"data\[0\] is not an OpenRouter model"),
        (
            '{"data": [{"id": "a/b", "name": "B", "pricing": {"prompt": "x", "completion": "0"}}]}',
            r"data\[0\] \(a/b\): pricing\.prompt: not a number",
        ),
    ],
)
def test_rejects_files_that_are_not_a_models_dump(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "dump.json"
    path.write_text(content)
    data_dir = tmp_path / "data"
    with pytest.raises(ValueError, match=message) as info:
        import_openrouter_models(path, data_dir)
    assert str(path) in str(info.value)
    assert not (data_dir / "catalog.json").exists()
