"""Providers enabled from the environment, routed with the bundled catalog's names and prices."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from omnirouter.catalog.loader import load_bundled
from omnirouter.testing import Reply

HELLO = [{"role": "user", "content": "hello"}]


def bundled_price(model_id: str, provider: str) -> tuple[Decimal, Decimal]:
    model = next(m for m in load_bundled().models if m.id == model_id)
    ep = next(e for e in model.endpoints if e.provider == provider)
    return ep.pricing.prompt, ep.pricing.completion


@pytest.mark.parametrize(
    ("env", "slug", "model", "upstream", "name"),
    [
        ("OPENAI_API_KEY", "openai", "openai/gpt-4o-mini", "gpt-4o-mini", "OpenAI"),
        ("OPENROUTER_API_KEY", "openrouter", "openai/gpt-4o-mini", "openai/gpt-4o-mini", "OpenRouter"),
        # The bundled Anthropic provider speaks Messages: tests/test_anthropic_upstream.py
    ],
)
def test_env_key_enables_a_bundled_provider(make_gateway, fake_a, monkeypatch, env, slug, model, upstream, name):
    secret = "sk-test-" + slug
    monkeypatch.setenv(env, secret)
    # Point the bundled provider at the fake; everything else (models, prices, key) is the catalog's.
    gw = make_gateway({"providers": [{"slug": slug, "base_url": fake_a.base_url}]})
    key = gw.create_key()["key"]
    fake_a.fake.script(Reply("hi", prompt_tokens=1000, completion_tokens=100))
    with gw.client(key) as c:
        r = c.post("/chat/completions", json={"model": model, "messages": HELLO, "provider": {"only": [slug]}})
    assert r.status_code == 200, r.text
    body = json.loads(r.text, parse_float=Decimal)
    sent = fake_a.fake.last_request
    assert sent.json["model"] == upstream
    assert sent.headers["Authorization"] == f"Bearer {secret}"
    assert body["provider"] == name
    prompt, completion = bundled_price(model, slug)
    assert body["usage"]["cost"] == 1000 * prompt + 100 * completion


def test_without_keys_bundled_models_are_not_listed(gateway):
    with gateway.client(gateway.create_key()["key"]) as c:
        ids = {m["id"] for m in c.get("/models").json()["data"]}
    assert "test/alpha" in ids
    assert "openai/gpt-4o-mini" not in ids


def test_a_provider_whose_wire_format_has_no_adapter_is_not_routable(make_gateway, fake_a, monkeypatch):
    """A provider declared with a wire format that has no adapter yet must not look servable."""
    monkeypatch.setenv("NATIVE_KEY", "sk-ant-test")
    config = {
        "providers": [{"slug": "native-cohere", "name": "Native Cohere", "api": "ai21-native",
                       "base_url": fake_a.base_url, "api_key_env": "NATIVE_KEY"}],
        "models": [{"id": "test/native", "name": "Native", "context_length": 8192,
                    "endpoints": [{"provider": "native-cohere", "upstream_model": "command-x"}]}],
    }  # fmt: skip
    gw = make_gateway(config)
    key = gw.create_key()["key"]
    with gw.client(key) as c:
        assert "test/native" not in {m["id"] for m in c.get("/models").json()["data"]}
        r = c.post("/chat/completions", json={"model": "test/native", "messages": HELLO})
    assert r.status_code == 404
    assert r.json()["error"]["availability"]["code"] == "no_endpoints"
    assert fake_a.fake.requests == []
