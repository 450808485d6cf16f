"""One gateway per test process, routing to two fakes of each upstream API; each scenario runs once
per pair of client format x upstream API (the `pair` fixture)."""

from __future__ import annotations

import itertools
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import httpx2
import pytest

from tests.gateway import Gateway
from tests.scenarios.clients import DRIVERS, FORMATS, Answer, Driver, Recorder, Tokens, exact
from tests.scenarios.upstreams import APIS, Upstream, all_upstreams, gateway_config, price, started
from tests.spec_validation import spec_available, validate_response

PAIRS = [f"{fmt}-{api}" for fmt, api in itertools.product(FORMATS, APIS)]


@pytest.fixture(scope="session", autouse=True)
def _say_when_unvalidated() -> None:
    if not spec_available():
        warnings.warn(
            "tests/scenarios: ../shared/spec/openrouter-openapi.json not found beside the checkout; answers and "
            "events are not validated against OpenRouter's OpenAPI document (order and money still are)",
            stacklevel=1,
        )


@pytest.fixture(scope="session")
def upstreams() -> Iterator[dict[str, Upstream]]:
    yield from started(all_upstreams())


@pytest.fixture(scope="session")
def scenario_gateway(tmp_path_factory: pytest.TempPathFactory, upstreams: dict[str, Upstream]) -> Iterator[Gateway]:
    gw = Gateway(tmp_path_factory.mktemp("scenarios"), gateway_config(upstreams)).start()
    yield gw
    gw.stop()


@pytest.fixture(scope="session")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="session")
def http(recorder: Recorder) -> Iterator[dict[str, Any]]:
    """The SDKs' HTTP clients (built once: a client loads the CA bundle), recording what they read:
    the openai SDK's on httpx, the anthropic SDK's on its fork, httpx2."""
    clients = {module.__name__: recorder.client(module) for module in (httpx, httpx2)}
    yield clients
    for client in clients.values():
        client.close()


@dataclass
class Pair:
    """One client format against one upstream API, with a fresh key, and the money it has spent."""

    fmt: str
    api: str
    driver: Driver
    up: Upstream
    gw: Gateway
    http: dict[str, Any]
    upstreams: dict[str, Upstream]
    spent: Decimal = Decimal(0)
    answers: list[Answer] = field(default_factory=list)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http["httpx"].get(
            self.gw.api + path, params=params, headers={"Authorization": f"Bearer {self.driver.key}"}
        )

    def generation(self, gen_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + 5
        while (r := self.get("/generation", id=gen_id)).status_code == 404 and time.monotonic() < deadline:
            time.sleep(0.01)  # written as the answer goes out, read back from memory: rarely a wait
        assert r.status_code == 200, r.text
        if spec_available():
            validate_response("getGeneration", r.json())
        return exact(r.content)["data"]

    def key_usage(self) -> Decimal:
        r = self.get("/key")
        assert r.status_code == 200, r.text
        if spec_available():
            validate_response("getCurrentKey", r.json())
        return exact(r.content)["data"]["usage"]

    def settle(self, answer: Answer, *, provider: str | None = None) -> dict[str, Any]:
        """The answer's cost is the catalog prices times its tokens, to the digit, and the same in
        /generation and in the key's usage (with every earlier answer of the test)."""
        # Every parameter the scenarios send is one the endpoints list: nothing may be dropped.
        assert "x-omnirouter-dropped-params" not in answer.headers, answer.headers["x-omnirouter-dropped-params"]
        gen = self.generation(answer.generation_id)
        t = answer.tokens
        reasoning = gen["native_tokens_reasoning"] or 0
        if t.reasoning is not None:
            assert t.reasoning == reasoning
        assert (gen["native_tokens_prompt"], gen["native_tokens_completion"]) == (t.prompt, t.completion)
        assert (gen["native_tokens_cached"] or 0) == t.cached
        assert gen["total_cost"] == answer.cost == expected_cost(t, reasoning), (gen["total_cost"], answer.cost)
        self.spent += answer.cost
        assert self.key_usage() == self.spent
        assert gen["provider_name"] == (provider or f"{self.api.capitalize()} A")
        return gen


def expected_cost(t: Tokens, reasoning: int) -> Decimal:
    uncached = t.prompt - t.cached - t.cache_write
    return (
        uncached * price("prompt")
        + t.cached * price("input_cache_read")
        + t.cache_write * price("input_cache_write")
        + (t.completion - reasoning) * price("completion")
        + reasoning * price("internal_reasoning")
        + price("request")
    )


@pytest.fixture(params=PAIRS)
def pair(
    request: pytest.FixtureRequest,
    upstreams: dict[str, Upstream],
    scenario_gateway: Gateway,
    recorder: Recorder,
    http: dict[str, Any],
) -> Pair:
    fmt, api = request.param.split("-", 1)
    for upstream in upstreams.values():
        upstream.reset()
    recorder.exchanges.clear()
    key = scenario_gateway.create_key(name=request.node.name[:100])["key"]
    driver = DRIVERS[fmt](scenario_gateway.api, key, http, recorder)
    return Pair(fmt, api, driver, upstreams[api], scenario_gateway, http, upstreams)
