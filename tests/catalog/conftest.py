"""Shared helpers for the catalog tests: catalogs built by the real loader, and a tiny API app."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Mount
from starlette.testclient import TestClient

from omnirouter.api.errors import ApiError
from omnirouter.api.models import routes
from omnirouter.catalog.catalog import Catalog
from omnirouter.catalog.loader import load_catalog

MILLION = Decimal(1_000_000)

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
    return load_catalog(config=config, env=dict(env or {}), sandbox=sandbox, data_dir=tmp_path / "data")


def make_client(catalog: Catalog) -> TestClient:
    async def api_error(request: Request, exc: Exception) -> Any:
        assert isinstance(exc, ApiError)
        return exc.response()

    app = Starlette(routes=[Mount("/api/v1", routes=routes)], exception_handlers={ApiError: api_error})
    app.state.omni = types.SimpleNamespace(catalog=catalog)
    return TestClient(app)


@pytest.fixture
def client_for(tmp_path: Path) -> Callable[..., TestClient]:
    def factory(env: Mapping[str, str] | None = None, config: dict[str, Any] | None = None,
                sandbox: bool = False) -> TestClient:
        return make_client(build_catalog(tmp_path, env, config, sandbox))

    return factory


@pytest.fixture
def fake_auth(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """`inference_key` accepting only `Bearer good-key`, in place of the real key store."""
    token = "good-key"

    async def inference_key(request: Request) -> object:
        if request.headers.get("authorization") != f"Bearer {token}":
            raise ApiError(401, "Missing Authentication header")
        return types.SimpleNamespace(hash="test")

    try:
        import omnirouter.api.auth as auth
    except ImportError:  # the server's auth module is not there yet: provide a stand-in
        auth = types.ModuleType("omnirouter.api.auth")
        monkeypatch.setitem(sys.modules, "omnirouter.api.auth", auth)
    monkeypatch.setattr(auth, "inference_key", inference_key, raising=False)
    yield token
