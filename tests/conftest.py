"""Shared fixtures: fake upstreams on loopback, and gateways configured to route to them."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from omnirouter.testing import FakeOpenAI, FakeOpenAIThread
from tests.cluster import cluster  # noqa: F401  (the fixture, for every test module)
from tests.gateway import Gateway, postgres_url
from tests.served import Served

# Prices in USD per token, as the catalog writes them.
ALPHA_PRICES = {"prompt": "0.000001", "completion": "0.000002"}
BETA_PRICES = {
    "prompt": "0.000003",
    "completion": "0.000015",
    "input_cache_read": "0.0000003",
    "input_cache_write": "0.00000375",
    "request": "0.0001",
}
REASONER_PRICES = {"prompt": "0.0000011", "completion": "0.0000044", "internal_reasoning": "0.000005"}


def standard_config(a: str, b: str) -> dict[str, Any]:
    return {
        "providers": [
            {"slug": "fake-a", "name": "Fake A", "api": "openai", "base_url": a},
            {"slug": "fake-b", "name": "Fake B", "api": "openai", "base_url": b, "can_abort": False},
        ],
        "models": [
            {
                "id": "test/alpha",
                "name": "Alpha",
                "context_length": 32768,
                "supported_parameters": ["max_tokens", "temperature", "top_p", "stop", "tools", "tool_choice"],
                "endpoints": [
                    {
                        "provider": "fake-a",
                        "upstream_model": "alpha-upstream",
                        "pricing": ALPHA_PRICES,
                        "max_completion_tokens": 4096,
                    },
                ],
            },
            {
                "id": "test/beta",
                "name": "Beta",
                "context_length": 200000,
                "endpoints": [{"provider": "fake-b", "upstream_model": "beta-upstream", "pricing": BETA_PRICES}],
            },
            {
                "id": "test/gamma",
                "name": "Gamma (two providers)",
                "context_length": 65536,
                "endpoints": [
                    {"provider": "fake-a", "upstream_model": "gamma-a", "pricing": ALPHA_PRICES},
                    {"provider": "fake-b", "upstream_model": "gamma-b", "pricing": BETA_PRICES},
                ],
            },
            {
                "id": "test/reasoner",
                "name": "Reasoner",
                "context_length": 131072,
                "endpoints": [{"provider": "fake-a", "upstream_model": "reasoner-up", "pricing": REASONER_PRICES}],
            },
        ],
    }


@pytest.fixture(scope="session", autouse=True)
def _require_services_in_ci() -> None:
    if os.environ.get("CI") == "true" and os.environ.get("OMNIROUTER_DATABASE_URL") and postgres_url() is None:
        pytest.fail("OMNIROUTER_DATABASE_URL is set but is not a postgresql+asyncpg URL")


@pytest.fixture(scope="session")
def fake_a() -> Iterator[FakeOpenAIThread]:
    handle = FakeOpenAI.run_in_thread()
    yield handle
    handle.stop()


@pytest.fixture(scope="session")
def fake_b() -> Iterator[FakeOpenAIThread]:
    handle = FakeOpenAI.run_in_thread()
    yield handle
    handle.stop()


@pytest.fixture(autouse=True)
def _reset_fakes(request: pytest.FixtureRequest) -> None:
    """Each test starts with fakes that have no script and no recorded requests."""
    for name in ("fake_a", "fake_b"):
        if name in request.fixturenames:
            request.getfixturevalue(name).fake.reset()


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory, fake_a: Any, fake_b: Any) -> Iterator[Gateway]:
    gw = Gateway(tmp_path_factory.mktemp("gw"), standard_config(fake_a.base_url, fake_b.base_url)).start()
    yield gw
    gw.stop()


@pytest.fixture
def make_gateway(tmp_path: Path, fake_a: Any, fake_b: Any) -> Iterator[Callable[..., Gateway]]:
    """A gateway of the test's own (other settings), stopped after the test."""
    started: list[Gateway] = []

    def make(config: dict[str, Any] | None = None, **settings: Any) -> Gateway:
        sub = tmp_path / f"gw{len(started)}"
        sub.mkdir()
        gw = Gateway(sub, config or standard_config(fake_a.base_url, fake_b.base_url), **settings).start()
        started.append(gw)
        return gw

    yield make
    for gw in started:
        gw.stop()


@pytest.fixture
def api_key(gateway: Gateway) -> str:
    """A fresh inference key with no limit."""
    return gateway.create_key()["key"]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start `omnirouter serve` processes (args, then OMNIROUTER_* env); killed and their databases
    dropped after the test."""
    started: list[Served] = []

    def start(*args: str, **env: str) -> Served:
        started.append(Served(tmp_path, *args, **env))
        return started[-1]

    yield start
    for s in started:
        if s.proc.poll() is None:
            s.stop(signal.SIGKILL, drop=False)
    for s in started:
        s.database.drop()


# Tests of what no database changes: client formats and their translation, upstream wire formats,
# routing decisions, the fakes, the catalog, processes and connections, the browser UI, the docs. They
# run in the SQLite pass only, as the tests marked sqlite_pass do. (Paths below tests/.)
DATABASE_INDEPENDENT = (
    "routing/", "scenarios/", "testing/", "catalog/",
    "test_anthropic_translation.py", "test_openai_responses_translation.py", "test_messages_format.py",
    "test_responses_format.py", "test_messages_to_anthropic.py", "test_schema_example.py",
    "test_anthropic_upstream.py", "test_bedrock_upstream.py", "test_gemini_upstream.py", "test_gemini_wire.py",
    "test_azure.py", "test_openai_responses_upstream.py", "test_embeddings_upstreams.py", "test_videos_gemini.py",
    "test_images_chat.py", "test_upstream_http1.py", "test_upstream_proxy.py", "test_client_connections.py",
    "test_workers.py", "test_uvicorn_internals.py", "test_cli_clients.py", "test_dashboard_browser.py",
    "test_packaging.py", "test_docs.py", "test_deploy_files.py", "test_client_inference.py", "test_client.py",
    # Plugins whose records and money take the path test_plugin_web, test_plugin_fusion and
    # test_response_cache run on both databases: what they decide does not depend on one.
    "test_plugin_web_fetch.py", "test_plugin_file_parser.py", "test_plugin_healing.py",
    "test_plugin_compression.py", "test_plugin_moderation.py", "test_pareto_router.py", "test_server_tools.py",
)  # fmt: skip
TESTS = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of what only PostgreSQL has (Redis is refused beside SQLite, LISTEN/NOTIFY) belong to the
    PostgreSQL pass of the suite, and tests of what no database changes (DATABASE_INDEPENDENT, the
    benchmark harness) to the SQLite pass: the other pass leaves them out rather than skipping them."""
    for item in items:
        if item.path.relative_to(TESTS).as_posix().startswith(DATABASE_INDEPENDENT):
            if item.get_closest_marker("postgres_pass"):
                raise pytest.UsageError(f"{item.nodeid}: a postgres_pass test in a DATABASE_INDEPENDENT module")
            item.add_marker(pytest.mark.sqlite_pass)
    other = "sqlite_pass" if postgres_url() is not None else "postgres_pass"
    left = [item for item in items if item.get_closest_marker(other)]
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = [item for item in items if not item.get_closest_marker(other)]
