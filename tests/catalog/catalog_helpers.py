"""Helpers for the catalog tests: catalogs built by the real loader, and a tiny API app."""

from __future__ import annotations

import types
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Mount
from starlette.testclient import TestClient

from omnirouter.api.errors import ApiError, error_response
from omnirouter.api.models import routes
from omnirouter.catalog.catalog import Catalog
from omnirouter.catalog.loader import load_catalog
from omnirouter.governance.registry import Governance

MILLION = Decimal(1_000_000)
ALL_APIS = frozenset({"openai", "anthropic", "google", "sandbox"})

# Providers whose display names are in the OpenAPI `ProviderName` enum, so their bodies validate as is.
SPEC_NAMED_KEYS = {
    "OPENAI_API_KEY": "sk-openai",
    "ANTHROPIC_API_KEY": "sk-ant",
    "GROQ_API_KEY": "gsk",
    "TOGETHER_API_KEY": "tg",
    "DEEPINFRA_API_KEY": "di",
    "FIREWORKS_API_KEY": "fw",
    "MISTRAL_API_KEY": "ms",
    "DEEPSEEK_API_KEY": "ds",
}


def per_million(price: str | Decimal) -> Decimal:
    """A per-token price string as USD per million tokens, the unit price lists use."""
    return Decimal(price) * MILLION


def build_catalog(
    tmp_path: Path,
    env: Mapping[str, str] | None = None,
    config: dict[str, Any] | None = None,
    sandbox: bool = False,
) -> Catalog:
    # The listing is what these tests check: they count every bundled wire format as routable,
    # adapters still to come (anthropic, google) included.
    return load_catalog(
        config=config, env=dict(env or {}), sandbox=sandbox, data_dir=tmp_path / "data", routable_apis=ALL_APIS
    )


def make_client(catalog: Catalog) -> TestClient:
    async def api_error(request: Request, exc: Exception) -> Any:
        assert isinstance(exc, ApiError)
        return error_response(exc)

    app = Starlette(routes=[Mount("/api/v1", routes=routes)], exception_handlers={ApiError: api_error})
    app.state.omni = types.SimpleNamespace(catalog=catalog, governance=Governance())  # no guardrails
    return TestClient(app)
