"""Fixtures for the routing tests: a third fake upstream, for setups with three endpoints, and for
modules that define a module-scoped gateway `gw`: a key on it, and closed circuits for every test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from omnirouter.testing import FakeOpenAI, FakeOpenAIThread


@pytest.fixture(scope="session")
def fake_c() -> Iterator[FakeOpenAIThread]:
    handle = FakeOpenAI.run_in_thread()
    yield handle
    handle.stop()


@pytest.fixture(autouse=True)
def _reset_fake_c(request: pytest.FixtureRequest) -> None:
    if "fake_c" in request.fixturenames:
        request.getfixturevalue("fake_c").fake.reset()


@pytest.fixture(scope="module")
def key(gw: Any) -> str:
    return gw.create_key()["key"]


@pytest.fixture(autouse=True)
def _fresh_circuits(request: pytest.FixtureRequest) -> None:
    """Each test starts with every circuit closed, so one test's faults do not reroute the next."""
    if "gw" in request.fixturenames:
        request.getfixturevalue("gw").state.routing.health.reset()
