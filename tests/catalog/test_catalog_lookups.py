"""Catalog lookups: a model by id, alias or canonical slug; live endpoints; endpoint fallbacks."""

from __future__ import annotations

from decimal import Decimal

from omnirouter.catalog.catalog import Catalog, split_variants
from omnirouter.catalog.types import Endpoint, Model, Pricing, Provider


def small_catalog() -> Catalog:
    providers = {
        "up": Provider(slug="up", name="Up", enabled=True),
        "down": Provider(slug="down", name="Down"),  # no key: disabled
    }
    models = {
        "acme/alpha": Model(
            id="acme/alpha",
            name="Alpha",
            canonical_slug="acme/alpha-20250101",
            aliases=["acme/alpha-latest", "acme/a"],
            context_length=8192,
            supported_parameters=["temperature", "tools"],
            endpoints=[
                Endpoint(provider="down", upstream_model="alpha", pricing=Pricing(prompt=Decimal("0.1"))),
                Endpoint(
                    provider="up",
                    upstream_model="alpha",
                    context_length=4096,
                    supported_parameters=["temperature"],
                ),
                Endpoint(provider="up", tag="up/fast", upstream_model="alpha-fast"),
                Endpoint(provider="gone", upstream_model="alpha"),  # provider not in the catalog
            ],
        ),
        "acme/beta": Model(id="acme/beta", name="Beta", endpoints=[Endpoint(provider="down", upstream_model="b")]),
        # An alias that is also another model's id must not shadow that model.
        "acme/a": Model(id="acme/a", name="A", endpoints=[Endpoint(provider="up", upstream_model="a")]),
    }
    return Catalog(providers, models)


def test_model_by_id_alias_canonical_slug_and_case() -> None:
    catalog = small_catalog()
    alpha = catalog.models["acme/alpha"]
    assert catalog.model("acme/alpha") is alpha
    assert catalog.model("acme/alpha-latest") is alpha
    assert catalog.model("acme/alpha-20250101") is alpha
    assert catalog.model("ACME/Alpha") is alpha
    assert catalog.model("Acme/Alpha-Latest") is alpha
    assert catalog.model("acme/a") is catalog.models["acme/a"]
    assert catalog.model("acme/gamma") is None
    assert catalog.model("acme/alpha:nitro") is None  # variants are the caller's to strip


def test_live_endpoints_need_an_enabled_provider() -> None:
    catalog = small_catalog()
    alpha = catalog.models["acme/alpha"]
    assert [ep.slug for ep in catalog.live_endpoints(alpha)] == ["up", "up/fast"]
    assert catalog.live_endpoints(catalog.models["acme/beta"]) == []
    assert [m.id for m in catalog.live_models()] == ["acme/alpha", "acme/a"]
    assert catalog.provider("up").enabled and catalog.provider("gone") is None


def test_endpoint_values_fall_back_to_the_model() -> None:
    catalog = small_catalog()
    alpha = catalog.models["acme/alpha"]
    own, fast = catalog.live_endpoints(alpha)
    assert catalog.endpoint_context_length(alpha, own) == 4096
    assert catalog.endpoint_context_length(alpha, fast) == 8192
    assert catalog.endpoint_supported_parameters(alpha, own) == ["temperature"]
    assert catalog.endpoint_supported_parameters(alpha, fast) == ["temperature", "tools"]


def test_split_variants() -> None:
    assert split_variants("openai/gpt-4o") == ("openai/gpt-4o", ())
    assert split_variants("openai/gpt-oss-20b:free:online") == ("openai/gpt-oss-20b", ("free", "online"))
