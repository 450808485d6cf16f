"""Fixtures for the routing tests: a third fake upstream, and gateways over configs the tests build."""

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


@pytest.fixture
def fakes(fake_a: Any, fake_b: Any, fake_c: Any) -> dict[str, FakeOpenAIThread]:
    """The three fakes by provider slug, reset (fake_a and fake_b by the top-level conftest)."""
    return {"fake-a": fake_a, "fake-b": fake_b, "fake-c": fake_c}
