"""Measured endpoint statistics: what requests teach the router shows in
GET /models/{author}/{slug}/endpoints (uptime in percent, latency to first token in ms, throughput in
tokens per second), and feeds the throughput and latency sorts."""

from __future__ import annotations

import time

import httpx
from routing_helpers import chat, client, config, endpoint, model, needs_of, provider, slugs
from tests.spec_validation import spec_available, validate_response

from omnirouter.formats import openai_chat
from omnirouter.routing.stats import EndpointStats, percentiles
from omnirouter.testing import Delay, Reply, Status, Stream


def endpoints(gw, key: str, model_id: str) -> dict[str, dict]:
    with client(gw, key) as c:
        r = c.get(f"/models/{model_id}/endpoints")
    assert r.status_code == 200, r.text
    if spec_available():
        validate_response("listEndpoints", r.json())
    return {ep["tag"]: ep for ep in r.json()["data"]["endpoints"]}


def test_listing_shows_measured_uptime_latency_and_throughput(make_gateway, fake_a, fake_b):
    providers = [provider("fake-a", fake_a.base_url), provider("fake-b", fake_b.base_url)]
    cfg = config(providers, [model("es/m", [endpoint("fake-a", "es-a", 1, 1), endpoint("fake-b", "es-b", 9, 9)])])
    gw = make_gateway(cfg)
    key = gw.create_key()["key"]
    before = endpoints(gw, key, "es/m")["fake-a"]
    assert before["uptime_last_5m"] is None and before["latency_last_30m"] is None

    order = {"provider": {"order": ["fake-a", "fake-b"]}}
    fake_a.fake.script(
        Delay(0.15, then=Reply("slow start")),
        Stream(chunks=20, chunk_delay=0.01, completion_tokens=20),
        Status(503),  # a failure: fake-b answers instead
        Status(429),  # rate limits do not count against uptime
        Reply("ok"),
    )
    for stream in (False, True, False, False, False):
        assert chat(gw, key, {"model": "es/m", "stream": stream, **order}).status == 200

    listed = endpoints(gw, key, "es/m")
    a = listed["fake-a"]
    assert a["uptime_last_5m"] == a["uptime_last_30m"] == a["uptime_last_1d"] == 75.0  # 3 of 4, 429 left out
    assert listed["fake-b"]["uptime_last_5m"] == 100.0
    latency = a["latency_last_30m"]
    assert set(latency) == {"p50", "p75", "p90", "p99"}
    assert latency["p99"] >= 150  # milliseconds: the delayed answer
    assert latency["p50"] <= latency["p75"] <= latency["p90"] <= latency["p99"]
    throughput = a["throughput_last_30m"]
    assert throughput is not None and 20 < throughput["p50"] < 5000  # ~20 tokens over ~0.2 s

    # The listing is public, its measurements are not (the spec: null for unauthenticated requests).
    anonymous = httpx.get(f"{gw.api}/models/es/m/endpoints").json()["data"]["endpoints"]
    assert {ep["tag"]: ep["latency_last_30m"] for ep in anonymous} == {"fake-a": None, "fake-b": None}


def test_measurements_feed_the_sorts(make_gateway, fake_a, fake_b):
    providers = [provider("fake-a", fake_a.base_url), provider("fake-b", fake_b.base_url)]
    cfg = config(providers, [model("es/m", [endpoint("fake-a", "es-a", 1, 1), endpoint("fake-b", "es-b", 9, 9)])])
    gw = make_gateway(cfg)
    key = gw.create_key()["key"]
    fake_a.fake.script(Delay(0.2, then=Stream(chunks=10, chunk_delay=0.03)))
    fake_b.fake.script(Stream(chunks=10))
    for slug in ("fake-a", "fake-b"):
        body = {"model": "es/m", "stream": True, "provider": {"order": [slug], "allow_fallbacks": False}}
        assert chat(gw, key, body).status == 200

    def order(sort: str) -> list[str]:
        body = {"model": "es/m", "messages": [{"role": "user", "content": "hi"}], "provider": {"sort": sort}}
        return slugs(gw.state.routing.planner.plan(openai_chat.parse(body), needs_of(body)))

    assert order("latency") == ["fake-b", "fake-a"]
    assert order("throughput") == ["fake-b", "fake-a"]
    assert order("price") == ["fake-a", "fake-b"]


def test_percentiles_are_nearest_rank():
    assert percentiles([1.0]) == {"p50": 1.0, "p75": 1.0, "p90": 1.0, "p99": 1.0}
    values = [float(v) for v in range(1, 101)]
    assert percentiles(values) == {"p50": 50.0, "p75": 75.0, "p90": 90.0, "p99": 99.0}


def test_stats_forget_samples_outside_the_window(monkeypatch):
    stats = EndpointStats()
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    stats.record_success(("m", "e"), ttft=1.0, tokens=10, generation_seconds=1.0)
    now[0] += 200
    stats.record_success(("m", "e"), ttft=3.0, tokens=30, generation_seconds=1.0)
    assert stats.latency(("m", "e"))["p99"] == 3.0 and stats.latency(("m", "e"))["p50"] == 1.0
    now[0] += 200  # the first sample is now 400 s old: outside the 5-minute routing window
    assert stats.latency(("m", "e")) == {"p50": 3.0, "p75": 3.0, "p90": 3.0, "p99": 3.0}
    assert stats.throughput(("m", "e"), window=1800)["p50"] == 10.0
