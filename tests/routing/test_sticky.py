"""Sticky routing for prompt-cache locality (behaviors §8.5): a session keeps its endpoint while the
endpoint's cache reads are cheaper than its prompts; a failure forgets it; never with `provider.order`."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from routing_helpers import HELLO, chat, config, endpoint, model, per_million, provider, running_gateway
from tests.gateway import Gateway

from omnirouter.routing.sticky import Sticky
from omnirouter.testing import Reply, Status, Stream

CACHED = per_million(1, 1, input_cache_read=0.1)


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fake_a: Any, fake_b: Any) -> Iterator[Gateway]:
    providers = [provider("fake-a", fake_a.base_url), provider("fake-b", fake_b.base_url)]
    same_price = [endpoint("fake-a", "a-up", 1, 1), endpoint("fake-b", "b-up", 1, 1)]
    for ep in same_price:
        ep["pricing"] = dict(CACHED)
    models = [
        model("st/cached", same_price),
        model("st/nocache", [endpoint("fake-a", "a-up", 1, 1), endpoint("fake-b", "b-up", 1, 1)]),
    ]
    with running_gateway(tmp_path_factory, config(providers, models)) as gateway:
        yield gateway


@pytest.fixture(autouse=True)
def _fresh_state(gw: Gateway) -> None:
    routing = gw.state.routing
    routing.health.reset()
    routing.sticky = Sticky()
    routing.planner.rng = random.Random(8)  # equal prices: a coin toss per request, seeded


def served(gw, key, body: dict[str, Any], n: int, headers: dict[str, str] | None = None) -> Counter:
    out: Counter = Counter()
    for _ in range(n):
        answer = chat(gw, key, body, headers=headers)
        assert answer.status == 200, answer.body
        out[answer.provider] += 1
    return out


def test_without_a_session_requests_spread(gw, key):
    assert len(served(gw, key, {"model": "st/cached"}, 12)) == 2


def test_a_session_keeps_its_endpoint(gw, key):
    first = chat(gw, key, {"model": "st/cached", "session_id": "s-1"}).provider
    assert served(gw, key, {"model": "st/cached", "session_id": "s-1"}, 10) == Counter({first: 10})
    slug = {"Fake A": "fake-a", "Fake B": "fake-b"}[first]
    assert gw.state.routing.sticky.get("s-1") == ("st/cached", slug)


def test_x_session_id_header_works_like_session_id(gw, key):
    counts = served(gw, key, {"model": "st/cached"}, 10, headers={"x-session-id": "hdr-1"})
    assert len(counts) == 1
    assert gw.state.routing.sticky.get("hdr-1") is not None


def test_without_cache_pricing_there_is_no_stickiness(gw, key):
    assert len(served(gw, key, {"model": "st/nocache", "session_id": "s-2"}, 12)) == 2
    assert gw.state.routing.sticky.get("s-2") is None


def test_not_with_provider_order(gw, key, fake_b):
    body = {"model": "st/cached", "session_id": "s-3", "provider": {"order": ["fake-b"]}}
    assert served(gw, key, body, 3) == Counter({"Fake B": 3})
    assert gw.state.routing.sticky.get("s-3") is None
    # A session stuck to Fake A still goes where `order` says.
    gw.state.routing.sticky.remember("s-4", "st/cached", "fake-a")
    assert chat(gw, key, {**body, "session_id": "s-4"}).provider == "Fake B"


def test_a_failed_sticky_endpoint_is_forgotten_and_the_session_moves(gw, key, fake_a, fake_b):
    gw.state.routing.sticky.remember("s-5", "st/cached", "fake-a")
    fake_a.fake.script(Status(503))
    answer = chat(gw, key, {"model": "st/cached", "session_id": "s-5"})
    assert answer.status == 200 and answer.provider == "Fake B"
    assert gw.state.routing.sticky.get("s-5") == ("st/cached", "fake-b")
    assert served(gw, key, {"model": "st/cached", "session_id": "s-5"}, 4) == Counter({"Fake B": 4})


def test_a_stream_that_fails_midway_forgets_the_session(gw, key, fake_a):
    gw.state.routing.sticky.remember("s-6", "st/cached", "fake-a")
    fake_a.fake.script(Stream(stop_after=1))
    answer = chat(gw, key, {"model": "st/cached", "session_id": "s-6", "stream": True})
    assert answer.provider == "Fake A" and any("error" in e for e in answer.events)
    assert gw.state.routing.sticky.get("s-6") is None


def test_a_conversation_without_session_sticks_after_a_cache_hit(gw, key, fake_a, fake_b):
    messages = [{"role": "system", "content": "You are terse."}, *HELLO]
    for fake in (fake_a, fake_b):
        fake.fake.always(Reply("cached", prompt_tokens=2000, cached_tokens=1500))
    first = chat(gw, key, {"model": "st/cached", "messages": messages}).provider
    later = [*messages, {"role": "assistant", "content": "hi"}, {"role": "user", "content": "more"}]
    assert served(gw, key, {"model": "st/cached", "messages": later}, 8) == Counter({first: 8})
