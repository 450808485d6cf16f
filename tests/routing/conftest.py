"""Fixtures for the routing tests: a third fake upstream, for setups with three endpoints."""

from __future__ import annotations

from collections.abc import Iterator

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
