"""Routing health shared by three instances through Redis (cluster/routing_link.py): a provider that
fails on one instance is put last on the others, endpoint statistics are the cluster's, a sticky
session keeps its endpoint on every instance, and all of it survives Redis going away and coming back.
Without Redis (backend "database") each instance keeps its own, as one process always has.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest

from omnirouter.testing import Status
from tests.cluster import Cluster, backends, cluster  # noqa: F401  (the fixture)

MODEL = "hc/m"
CACHED = "hc/cached"
PER_M = Decimal("0.000001")
HELLO = [{"role": "user", "content": "hello there"}]


def _prices(prompt: int, cache_read: int | None = None) -> dict[str, str]:
    out = {"prompt": str(prompt * PER_M), "completion": str(prompt * PER_M)}
    if cache_read is not None:
        out["input_cache_read"] = str(cache_read * PER_M)
    return out


def two_providers(cheap_url: str, dear_url: str) -> dict[str, Any]:
    """hc/m: "cheap" at $1/M (first by price) and "dear" at $100/M, the fallback; hc/cached the same
    two, both with cheaper cache reads, so a session sticks to whichever served it."""
    providers = [
        {"slug": "cheap", "name": "Cheap", "api": "openai", "base_url": cheap_url},
        {"slug": "dear", "name": "Dear", "api": "openai", "base_url": dear_url},
    ]

    def model(model_id: str, cache: bool) -> dict[str, Any]:
        eps = [
            {"provider": "cheap", "upstream_model": "c", "pricing": _prices(1, 0 if cache else None)},
            {"provider": "dear", "upstream_model": "d", "pricing": _prices(100, 10 if cache else None)},
        ]
        return {"id": model_id, "name": model_id, "context_length": 100_000, "endpoints": eps}

    return {"providers": providers, "models": [model(MODEL, False), model(CACHED, True)]}


def chat(api: str, key: str, **body: Any) -> httpx.Response:
    body = {"model": MODEL, "messages": HELLO, "provider": {"sort": "price"}, **body}
    return httpx.post(api + "/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def attempts(api: str, key: str, gen_id: str) -> list[tuple[str, int]]:
    deadline = time.monotonic() + 5
    while True:
        r = httpx.get(api + "/generation", params={"id": gen_id}, headers={"Authorization": f"Bearer {key}"})
        if r.status_code == 200:
            return [(p["provider_name"], p["status"]) for p in r.json()["data"]["provider_responses"]]
        assert time.monotonic() < deadline, r.text
        time.sleep(0.02)


def within(seconds: float, check: Callable[[], bool]) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.02)
    return check()


def circuits_in_redis(c: Cluster) -> bytes:
    assert c.redis is not None
    return c.redis.command("HKEYS", "omnirouter:{health}:circuits")


def subscribers(c: Cluster) -> int:
    assert c.redis is not None
    reply = c.redis.command("PUBSUB", "NUMSUB", "omnirouter:{health}:events").split(b"\r\n")
    return int(reply[-2].lstrip(b":"))


def fail_on_first_instance(c: Cluster, key: str, fake_a: Any) -> None:
    """cheap answers 503 once, to instance 0, which falls back to dear and opens cheap's circuit."""
    fake_a.fake.script(Status(503))
    r = chat(c.apis[0], key)
    assert r.status_code == 200 and r.json()["provider"] == "Dear", r.text
    assert attempts(c.apis[0], key, r.json()["id"]) == [("Cheap", 503), ("Dear", 200)]
    assert len(fake_a.fake.requests) == 1


@pytest.mark.parametrize("backend", backends())
def test_a_provider_failing_on_one_instance_is_put_last_on_the_others(cluster, fake_a, fake_b, backend):  # noqa: F811
    c = cluster(3, backend=backend, config=two_providers(fake_a.base_url, fake_b.base_url))
    key = c.create_key()["key"]
    fail_on_first_instance(c, key, fake_a)
    if backend == "redis":  # published (one script writes the hash and publishes): the others apply it
        assert within(2, lambda: b"cheap" in circuits_in_redis(c))
    for i in (1, 2):
        r = chat(c.apis[i], key)
        assert r.status_code == 200, r.text
        seen = attempts(c.apis[i], key, r.json()["id"])
        if backend == "redis":  # straight to the healthy provider: cheap is not asked again
            assert seen == [("Dear", 200)]
        else:  # each instance learns for itself, at the cost of one failed attempt (cheap answers again)
            assert seen == [("Cheap", 200)]
    assert len(fake_a.fake.requests) == (1 if backend == "redis" else 3)


@pytest.mark.postgres_pass  # Redis is refused beside SQLite
def test_a_retry_after_window_is_probed_once_for_the_cluster(cluster, fake_a, fake_b):  # noqa: F811
    """cheap keeps answering 429 with Retry-After: 5. Each instance has a client of its own, and the
    three send their requests at the same moment, round after round, so when the window ends all
    three instances want to try cheap at once: one of them does (they race for the probe slot in
    Redis beforehand), not one each."""
    c = cluster(3, backend="redis", config=two_providers(fake_a.base_url, fake_b.base_url))
    key = c.create_key()["key"]
    fake_a.fake.always(Status(429, retry_after=5))
    assert chat(c.apis[0], key).json()["provider"] == "Dear"
    assert within(2, lambda: b"cheap" in circuits_in_redis(c))
    served = [0, 0, 0]
    failures: list[str] = []
    stop = threading.Event()
    rounds = threading.Barrier(3)

    def client(i: int) -> None:
        while not stop.is_set():
            try:
                rounds.wait(timeout=5)
            except threading.BrokenBarrierError:
                return
            r = chat(c.apis[i], key)
            if r.status_code != 200:
                failures.append(r.text)
            served[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    try:
        assert within(20, lambda: len(fake_a.fake.requests) >= 2), "no probe after the Retry-After window"
        probed_at, counts = time.monotonic(), list(served)
        # The probe failed: a new 5 s window. Every instance serves more requests in it, none probes.
        assert within(4, lambda: all(n >= m + 10 for n, m in zip(served, counts, strict=True)))
        assert time.monotonic() - probed_at < 5, "too slow to tell (the next window may have ended)"
    finally:
        stop.set()
        rounds.abort()
        for t in threads:
            t.join()
    assert failures == []
    assert len(fake_a.fake.requests) == 2


@pytest.mark.postgres_pass  # Redis is refused beside SQLite
def test_statistics_from_one_instance_are_listed_by_the_others(cluster, fake_a, fake_b):  # noqa: F811
    c = cluster(3, backend="redis", config=two_providers(fake_a.base_url, fake_b.base_url))
    key = c.create_key()["key"]

    def cheap(i: int) -> dict[str, Any]:
        r = httpx.get(f"{c.apis[i]}/models/{MODEL}/endpoints", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 200, r.text
        return next(ep for ep in r.json()["data"]["endpoints"] if ep["provider_name"] == "Cheap")

    assert cheap(2)["latency_last_30m"] is None and cheap(2)["uptime_last_5m"] is None
    for _ in range(5):
        assert chat(c.apis[0], key).status_code == 200
    fields = ("latency_last_30m", "throughput_last_30m", "uptime_last_5m", "uptime_last_30m", "uptime_last_1d")
    own = cheap(0)
    assert own["latency_last_30m"] is not None and own["uptime_last_1d"] == 100
    # Instance 2 served nothing: it lists instance 0's measurements (five samples: exactly).
    assert within(5, lambda: all(cheap(2)[f] == own[f] for f in fields)), (cheap(2), own)
    # Failures on instance 1 count everywhere too (uptime is the cluster's: 5 ok, 1 failed).
    fake_a.fake.script(Status(500))
    assert chat(c.apis[1], key).json()["provider"] == "Dear"
    assert within(5, lambda: cheap(2)["uptime_last_5m"] == round(5 / 6 * 100, 2)), cheap(2)


@pytest.mark.postgres_pass  # Redis is refused beside SQLite
def test_a_sticky_session_set_on_one_instance_is_honoured_on_the_others(cluster, fake_a, fake_b):  # noqa: F811
    c = cluster(3, backend="redis", config=two_providers(fake_a.base_url, fake_b.base_url))
    key = c.create_key()["key"]
    # Routed to dear on instance 0 (cheap ignored for this request): the session sticks there.
    first = chat(c.apis[0], key, model=CACHED, session_id="s-1", provider={"ignore": ["cheap"]})
    # (Load balancing, not sort: a sticky endpoint goes first among the ones balanced by price, where
    # cheap is 10,000 times likelier than dear.)
    assert first.json()["provider"] == "Dear", first.text
    # Elsewhere, without the session, price routing picks cheap; with it, dear.
    assert chat(c.apis[1], key, model=CACHED, provider={}).json()["provider"] == "Cheap"
    assert within(
        2, lambda: c.redis is not None and c.redis.command("EXISTS", "omnirouter:{sticky}:s:s-1") == b":1\r\n"
    )
    for i in (1, 2, 1, 2):
        assert chat(c.apis[i], key, model=CACHED, session_id="s-1", provider={}).json()["provider"] == "Dear"


@pytest.mark.postgres_pass  # Redis is refused beside SQLite
def test_redis_lost_and_back_mid_run(cluster, fake_a, fake_b):  # noqa: F811
    """Requests keep succeeding while Redis is down; when it is back (empty) the instances reconnect
    by themselves and share again."""
    c = cluster(3, backend="redis", config=two_providers(fake_a.base_url, fake_b.base_url))
    assert c.redis is not None
    key = c.create_key()["key"]
    statuses: list[int] = []
    stop = threading.Event()

    def load() -> None:
        i = 0
        while not stop.is_set():
            statuses.append(chat(c.apis[i % 3], key, model="sandbox/echo", provider={}).status_code)
            i += 1

    thread = threading.Thread(target=load)
    thread.start()
    try:
        assert within(5, lambda: len(statuses) >= 10)
        c.redis.kill()
        before = len(statuses)
        assert within(10, lambda: len(statuses) >= before + 30)  # served meanwhile, per instance
        c.redis.start()
        assert within(10, lambda: subscribers(c) == 3)  # every instance resubscribed by itself
        after = len(statuses)
        assert within(10, lambda: len(statuses) >= after + 10)
    finally:
        stop.set()
        thread.join()
    assert set(statuses) == {200}, statuses
    fail_on_first_instance(c, key, fake_a)  # shared again
    assert within(2, lambda: b"cheap" in circuits_in_redis(c))
    r = chat(c.apis[1], key)
    assert attempts(c.apis[1], key, r.json()["id"]) == [("Dear", 200)]
    assert len(fake_a.fake.requests) == 1
    output = c.instances[0].stop(drop=False)
    assert output.count("Redis (routing health) unreachable") == 1, (
        output
    )  # one warning for the outage, not one per request
    assert "Redis (routing health) reachable again" in output
