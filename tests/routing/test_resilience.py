"""Resilience: the circuit breaker (a dead endpoint costs one failed attempt, not one per request),
half-open probes, Retry-After, the per-request deadline, and the answer when every endpoint failed."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from routing_helpers import attempts, chat, closed_port_url, config, endpoint, generation, model, provider

from omnirouter.routing.health import Health
from omnirouter.testing import Delay, Status

KEY = ("m", "e")


class Clock:
    """Monotonic seconds that move only when the test says so: cooling periods without sleeping."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- the circuit breaker on its own


def test_a_failure_opens_the_circuit_for_the_cooling_period():
    clock = Clock()
    health = Health(cooldown=30, clock=clock)
    assert health.state(KEY) == "closed" and not health.deprioritised(KEY)
    health.failed(KEY)
    clock.advance(29.9)
    assert health.state(KEY) == "open" and health.deprioritised(KEY)
    clock.advance(0.1)
    assert health.state(KEY) == "half_open"
    assert not health.deprioritised(KEY)  # one request may probe it at its normal place


def test_half_open_lets_one_probe_through_at_a_time():
    clock = Clock()
    health = Health(cooldown=30, clock=clock)
    health.failed(KEY)
    clock.advance(30)
    health.attempt_started(KEY)  # the probe
    assert health.deprioritised(KEY)  # everyone else keeps it at the end meanwhile
    health.succeeded(KEY)
    assert health.state(KEY) == "closed" and not health.deprioritised(KEY)


def test_a_probe_that_never_reports_back_frees_its_slot():
    clock = Clock()
    health = Health(cooldown=30, clock=clock)
    health.failed(KEY)
    clock.advance(30)
    health.attempt_started(KEY)
    clock.advance(59)
    assert health.deprioritised(KEY)
    clock.advance(1)  # PROBE_TIMEOUT_SECONDS: another request may probe it
    assert not health.deprioritised(KEY)


def test_a_failed_probe_reopens_for_twice_as_long():
    clock = Clock()
    health = Health(cooldown=30, clock=clock)
    health.failed(KEY)
    clock.advance(30)
    health.attempt_started(KEY)
    health.failed(KEY)
    clock.advance(59.9)
    assert health.state(KEY) == "open"  # 60 s this time
    clock.advance(0.1)
    assert health.state(KEY) == "half_open"


def test_retry_after_sets_the_cooling_period():
    clock = Clock()
    health = Health(cooldown=30, clock=clock)
    health.failed(KEY, retry_after=7)
    clock.advance(6.9)
    assert health.state(KEY) == "open"
    clock.advance(0.1)
    assert health.state(KEY) == "half_open"


def test_retry_after_is_capped_like_every_cooling_period():
    clock = Clock()
    health = Health(clock=clock)
    health.failed(KEY, retry_after=86_400)  # a daily quota: still worth a probe every 5 minutes
    clock.advance(299)
    assert health.state(KEY) == "open"
    clock.advance(1)
    assert health.state(KEY) == "half_open"


# -- through the gateway


def duo(first_url: str, b_url: str) -> dict[str, Any]:
    """re/m: endpoint `first` at $1/M and Fake B at $100/M, so default routing tries `first` first
    (odds 10,000 to 1; the planner's RNG is seeded too)."""
    providers = [provider("first", first_url), provider("fake-b", b_url)]
    return config(providers, [model("re/m", [endpoint("first", "m-first", 1, 1), endpoint("fake-b", "m-b", 100, 100)])])


@pytest.mark.parametrize("fault", ["503", "refused"])
def test_a_dead_endpoint_costs_one_failed_attempt_not_one_per_request(make_gateway, fake_a, fake_b, fault):
    if fault == "refused":
        gw = make_gateway(duo(closed_port_url(), fake_b.base_url))
    else:
        gw = make_gateway(duo(fake_a.base_url, fake_b.base_url))
        fake_a.fake.always(Status(503))
    gw.state.routing.planner.rng = random.Random(1)
    key = gw.create_key()["key"]
    answers = [chat(gw, key, {"model": "re/m"}) for _ in range(5)]
    assert [a.provider for a in answers] == ["Fake B"] * 5
    assert len(fake_a.fake.requests) == (1 if fault == "503" else 0)
    first = "First"
    assert attempts(generation(gw, key, answers[0].gen_id))[0] == (first, 503 if fault == "503" else 502)
    for a in answers[1:]:  # straight to the healthy endpoint
        assert attempts(generation(gw, key, a.gen_id)) == [("Fake B", 200)]
    assert gw.state.routing.health.state(("re/m", "first")) == "open"


def test_after_the_cooldown_a_probe_goes_back_and_success_closes_the_circuit(make_gateway, fake_a, fake_b):
    gw = make_gateway(duo(fake_a.base_url, fake_b.base_url))
    gw.state.routing.planner.rng = random.Random(2)
    health = gw.state.routing.health
    health.clock = clock = Clock()
    key = gw.create_key()["key"]
    fake_a.fake.script(Status(503))
    assert chat(gw, key, {"model": "re/m"}).provider == "Fake B"
    clock.advance(29)
    assert chat(gw, key, {"model": "re/m"}).provider == "Fake B"  # cooling: a is not asked
    assert len(fake_a.fake.requests) == 1
    clock.advance(1)
    assert health.state(("re/m", "first")) == "half_open"
    assert chat(gw, key, {"model": "re/m"}).provider == "First"  # the probe, and it succeeds
    assert health.state(("re/m", "first")) == "closed"
    assert len(fake_a.fake.requests) == 2


def test_retry_after_is_honoured_for_that_endpoint(make_gateway, fake_a, fake_b):
    gw = make_gateway(duo(fake_a.base_url, fake_b.base_url))
    gw.state.routing.planner.rng = random.Random(3)
    gw.state.routing.health.clock = clock = Clock()
    key = gw.create_key()["key"]
    fake_a.fake.script(Status(429, retry_after=7))
    assert chat(gw, key, {"model": "re/m"}).provider == "Fake B"
    clock.advance(6)
    assert chat(gw, key, {"model": "re/m"}).provider == "Fake B"
    assert len(fake_a.fake.requests) == 1
    clock.advance(1)  # Retry-After: 7, not the default 30 s cooling period
    assert chat(gw, key, {"model": "re/m"}).provider == "First"
    assert len(fake_a.fake.requests) == 2


def trio(urls: list[str]) -> dict[str, Any]:
    providers = [provider(f"p{i}", url) for i, url in enumerate(urls)]
    eps = [endpoint(f"p{i}", f"up-{i}", 1 + i, 1 + i) for i in range(len(urls))]
    return config(providers, [model("re/trio", eps)])


def test_a_total_deadline_bounds_the_attempts(make_gateway, fake_a, fake_b, fake_c):
    # Each endpoint stalls far longer than the deadline. P0 times out after its first-byte timeout
    # (0.5 s), P1 gets what is left of the request's 1 s, and then the deadline has passed: P2 is never
    # asked. The wall clock is only held to a loose bound, far below the upstreams' stall.
    gw = make_gateway(
        trio([fake_a.base_url, fake_b.base_url, fake_c.base_url]),
        request_deadline_seconds=1.0,
        upstream_first_byte_timeout=0.5,
        stream_keepalive_seconds=5,
    )
    key = gw.create_key()["key"]
    for fake in (fake_a, fake_b, fake_c):
        fake.fake.always(Delay(20))
    body = {"model": "re/trio", "provider": {"sort": "price"}}
    for stream in (False, True):
        gw.state.routing.health.reset()
        started = time.monotonic()
        answer = chat(gw, key, {**body, "stream": stream})
        elapsed = time.monotonic() - started
        assert answer.status == 504, answer.body
        assert answer.error["metadata"]["error_type"] == "timeout"
        previous = answer.error["metadata"]["previous_errors"]
        assert [(e["provider"], e["status"]) for e in previous] == [("P0", 408), ("P1", 408)]
        assert 1.0 <= elapsed < 10
    assert fake_c.fake.requests == []  # the deadline passed before its turn


def test_every_endpoint_failing_lists_the_attempts(make_gateway, fake_a, fake_b, fake_c):
    gw = make_gateway(trio([fake_a.base_url, fake_b.base_url, closed_port_url()]))
    key = gw.create_key()["key"]
    fake_a.fake.script(Status(500))
    fake_b.fake.script(Status(529))
    answer = chat(gw, key, {"model": "re/trio", "provider": {"sort": "price"}})
    assert answer.status == 503
    error = answer.error
    assert error["availability"]["code"] == "temporarily_unavailable"
    assert [(e["provider"], e["status"]) for e in error["metadata"]["previous_errors"]] == [
        ("P0", 500),
        ("P1", 529),
        ("P2", 502),
    ]
    for slug in ("p0", "p1", "p2"):
        assert gw.state.routing.health.state(("re/trio", slug)) == "open"


def test_every_endpoint_rate_limited_is_429(make_gateway, fake_a, fake_b, fake_c):
    gw = make_gateway(trio([fake_a.base_url, fake_b.base_url, fake_c.base_url]))
    key = gw.create_key()["key"]
    for fake in (fake_a, fake_b, fake_c):
        fake.fake.script(Status(429))
    answer = chat(gw, key, {"model": "re/trio"})
    assert answer.status == 429
    assert answer.error["availability"]["code"] == "capacity_exhausted"
    assert len(answer.error["metadata"]["previous_errors"]) == 3


def test_request_errors_neither_fall_back_nor_open_the_circuit(make_gateway, fake_a, fake_b):
    gw = make_gateway(duo(fake_a.base_url, fake_b.base_url))
    key = gw.create_key()["key"]
    for status in (400, 404, 413, 422):
        fake_a.fake.script(Status(status))
        answer = chat(gw, key, {"model": "re/m", "provider": {"order": ["first"]}})
        assert answer.status == status
    assert fake_b.fake.requests == []
    assert gw.state.routing.health.state(("re/m", "first")) == "closed"


def test_first_byte_timeout_per_provider(make_gateway, fake_a, fake_b):
    cfg = duo(fake_a.base_url, fake_b.base_url)
    cfg["providers"][0]["first_byte_timeout"] = 0.2  # the instance's default stays at 120 s
    gw = make_gateway(cfg)
    key = gw.create_key()["key"]
    fake_a.fake.script(Delay(5))
    started = time.monotonic()
    answer = chat(gw, key, {"model": "re/m", "provider": {"order": ["first", "fake-b"]}})
    assert answer.provider == "Fake B" and time.monotonic() - started < 2
    assert attempts(generation(gw, key, answer.gen_id)) == [("First", 408), ("Fake B", 200)]
