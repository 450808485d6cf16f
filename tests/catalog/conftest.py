"""Fixtures for the catalog tests."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from catalog_helpers import build_catalog, make_client
from starlette.requests import Request
from starlette.testclient import TestClient

from omnirouter.api.errors import ApiError


@pytest.fixture
def client_for(tmp_path: Path) -> Callable[..., TestClient]:
    def factory(
        env: Mapping[str, str] | None = None, config: dict[str, Any] | None = None, sandbox: bool = False
    ) -> TestClient:
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
