"""GET /metrics, traces of the gateway itself, request ids and JSON logs (observability/metrics.py,
tracing.py, logs.py), through real HTTP on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client.parser import text_string_to_metric_families

from omnirouter.governance.byok_crypto import new_key as new_encryption_key
from omnirouter.testing import Reply, Status, Stream
from tests.conftest import standard_config
from tests.gateway import Gateway, generation
from tests.observability_receivers import Receiver
from tests.sdk_ts_run import run_steps
from tests.served import Served

HELLO = [{"role": "user", "content": "hello there"}]
TOKEN = "scrape-token-for-tests-0123456789"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples(text).items() if n == name and want <= ls)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fake_a: Any, fake_b: Any, receiver: Receiver) -> Iterator[Gateway]:
    g = Gateway(
        tmp_path_factory.mktemp("metrics"),
        standard_config(fake_a.base_url, fake_b.base_url),
        metrics_token=TOKEN,
        otel_endpoint=receiver.url,
        encryption_key=new_encryption_key(),  # for a destination's webhook secret
        observability_poll_interval=0.05,
    ).start()
    yield g
    g.stop()


@pytest.fixture(scope="module")
def key(gw: Gateway) -> str:
    return gw.create_key(name="metrics key")["key"]


def scrape(gw: Gateway, bearer: str | None = TOKEN) -> str:
    gw.flush()  # each flush round shows the metrics its generations
    r = httpx.get(gw.url + "/metrics", headers={"Authorization": f"Bearer {bearer}"} if bearer else {})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


def test_metrics_count_what_was_sent(gw: Gateway, key: str, fake_a: Any) -> None:
    before = scrape(gw)
    labels = {"model": "test/alpha", "provider": "Fake A", "key": "metrics key"}
    costs: list[Decimal] = []
    with gw.client(key) as c:
        for _ in range(3):
            fake_a.fake.script(Reply("hi!", prompt_tokens=30, completion_tokens=5))
            r = c.post("/chat/completions", json={"model": "test/alpha", "messages": HELLO})
            assert r.status_code == 200, r.text
            costs.append(json.loads(r.text, parse_float=Decimal)["usage"]["cost"])
        fake_a.fake.script(Stream(content="a b c", prompt_tokens=11, completion_tokens=3))
        with c.stream(
            "POST", "/chat/completions", json={"model": "test/alpha", "messages": HELLO, "stream": True}
        ) as s:
            events = [line for line in s.iter_lines() if line.startswith("data: {")]
        costs.append(Decimal(str(json.loads(events[-1][6:], parse_float=Decimal)["usage"]["cost"])))
    after = scrape(gw)

    def delta(name: str, **more: str) -> float:
        return value(after, name, **more) - value(before, name, **more)

    assert delta("omnirouter_requests_total", **labels, outcome="ok", api_type="completions") == 4
    assert delta("omnirouter_tokens_total", **labels, kind="prompt") == 3 * 30 + 11
    assert delta("omnirouter_tokens_total", **labels, kind="completion") == 3 * 5 + 3
    assert sum(costs) > 0
    assert delta("omnirouter_cost_usd_total", **labels) == pytest.approx(float(sum(costs)), rel=1e-12)
    assert delta("omnirouter_upstream_attempts_total", provider="Fake A", status="200") == 4
    assert delta("omnirouter_request_duration_seconds_count", model="test/alpha", provider="Fake A") == 4
    assert delta("omnirouter_time_to_first_token_seconds_count", model="test/alpha", provider="Fake A") == 1
    assert delta("omnirouter_gateway_overhead_seconds_count", api_type="completions") == 4
    # The overhead is the gateway's own time: well under the whole request's.
    overhead = delta("omnirouter_gateway_overhead_seconds_sum", api_type="completions")
    assert 0 < overhead < delta("omnirouter_request_duration_seconds_sum", model="test/alpha", provider="Fake A")
    assert value(after, "omnirouter_streams_in_flight") == 0
    assert "omnirouter_recorder_queue_depth" in after
    assert key not in after and "sk-or-v1" not in after  # key names, never keys


def test_errors_and_circuits(gw: Gateway, key: str, fake_a: Any) -> None:
    before = scrape(gw)
    assert httpx.post(gw.api + "/chat/completions", json={"model": "test/alpha", "messages": HELLO}).status_code == 401
    fake_a.fake.script(Status(503))
    with gw.client(key) as c:
        r = c.post(
            "/chat/completions",
            json={"model": "test/alpha", "messages": HELLO, "provider": {"only": ["fake-a"]}},
        )
    assert r.status_code >= 500, r.text
    after = scrape(gw)
    assert (
        value(after, "omnirouter_errors_total", status="401", type="unauthorized")
        - value(before, "omnirouter_errors_total", status="401", type="unauthorized")
        == 1
    )
    assert (
        value(after, "omnirouter_errors_total", status=str(r.status_code))
        - value(before, "omnirouter_errors_total", status=str(r.status_code))
        == 1
    )
    labels = {"model": "test/alpha", "provider": "Fake A", "key": "metrics key", "outcome": "error"}
    assert (
        value(after, "omnirouter_requests_total", **labels) - value(before, "omnirouter_requests_total", **labels) == 1
    )
    assert value(after, "omnirouter_upstream_attempts_total", provider="Fake A", status="503") >= 1
    assert value(after, "omnirouter_circuit_state", model="test/alpha", endpoint="fake-a") == 2  # open
    gw.state.routing.health.reset()


def test_destination_deliveries(gw: Gateway, key: str, fake_a: Any, receiver: Receiver) -> None:
    with gw.admin() as admin:
        made = admin.post("/observability/destinations", json={
            "type": "webhook", "name": "metrics hook", "config": {"url": receiver.url + "/metrics-hook"},
        })  # fmt: skip
    assert made.status_code == 201, made.text
    dest = made.json()["data"]["id"]
    fake_a.fake.script(Reply("hi!"))
    with gw.client(key) as c:
        assert c.post("/chat/completions", json={"model": "test/alpha", "messages": HELLO}).status_code == 200
    receiver.wait(lambda got: any(r.path == "/metrics-hook" for r in got))
    deadline = time.monotonic() + 20
    while value(scrape(gw), "omnirouter_destination_events_total", destination=dest, outcome="delivered") < 1:
        assert time.monotonic() < deadline
    with gw.admin() as admin:
        admin.delete(f"/observability/destinations/{dest}")


def test_protection(gw: Gateway, key: str) -> None:
    for path in ("/metrics", "/api/v1/metrics"):
        assert httpx.get(gw.url + path).status_code == 401
        assert httpx.get(gw.url + path, headers={"Authorization": f"Bearer {key}"}).status_code == 403
        assert httpx.get(gw.url + path, headers={"Authorization": "Bearer not-the-token"}).status_code == 401
        r = httpx.get(gw.url + path, headers={"Authorization": f"Bearer {gw.management_key}"})
        assert r.status_code == 200 and "omnirouter_requests_total" in r.text


def test_request_id_header_and_generation(gw: Gateway, key: str, fake_a: Any) -> None:
    with gw.client(key) as c:
        fake_a.fake.script(Reply("hi!"))
        r = c.post("/chat/completions", json={"model": "test/alpha", "messages": HELLO})
        assert r.headers["x-request-id"] == r.json()["id"]  # the generation id by default
        fake_a.fake.script(Reply("hi!"))
        mine = "3f2b8c1e-7a4d-4e2a-9d6b-1c5e8f0a2b3c"
        r = c.post("/chat/completions", json={"model": "test/alpha", "messages": HELLO}, headers={"X-Request-Id": mine})
        assert r.headers["x-request-id"] == mine
        assert generation(gw, key, r.json()["id"])["request_id"] == mine
        # Not an id (spaces, or key-like): replaced by the gateway's own.
        for bad in ("two words", "sk-or-v1-" + "a" * 64):
            fake_a.fake.script(Reply("hi!"))
            r = c.post(
                "/chat/completions", json={"model": "test/alpha", "messages": HELLO}, headers={"X-Request-Id": bad}
            )
            assert r.headers["x-request-id"] == r.json()["id"]
        fake_a.fake.script(Stream(content="a"))
        with c.stream("POST", "/chat/completions", json={"model": "test/alpha", "messages": HELLO, "stream": True},
                      headers={"X-Request-Id": "stream-1"}) as s:  # fmt: skip
            assert s.headers["x-request-id"] == "stream-1"
            s.read()
        # Errors and management routes too.
        r = httpx.post(gw.api + "/chat/completions", json={}, headers={"X-Request-Id": "refused-1"})
        assert r.status_code == 401 and r.headers["x-request-id"] == "refused-1"
        assert c.get("/key").headers["x-request-id"].startswith("req-")


def _spans(receiver: Receiver, gen_id: str) -> list[Any]:
    def found(requests: list[Any]) -> list[Any] | None:
        spans = []
        for req in requests:
            if req.path != "/v1/traces":
                continue
            export = ExportTraceServiceRequest.FromString(req.body)
            for rs in export.resource_spans:
                for ss in rs.scope_spans:
                    spans.extend(ss.spans)
        root = [s for s in spans if any(a.key == "omnirouter.generation_id" and a.value.string_value == gen_id
                                        for a in s.attributes)]  # fmt: skip
        if not root:
            return None
        tree = [s for s in spans if s.trace_id == root[0].trace_id]
        return tree if len(tree) >= 4 else None

    return receiver.wait(found)


def test_traces(gw: Gateway, key: str, fake_a: Any, receiver: Receiver) -> None:
    fake_a.fake.script(Status(503), Reply("hi!", prompt_tokens=7, completion_tokens=2))
    with gw.client(key) as c:
        r = c.post(
            "/chat/completions",
            json={"model": "test/gamma", "messages": HELLO, "provider": {"order": ["fake-a", "fake-b"]}},
            headers={"X-Request-Id": "traced-1"},
        )
    assert r.status_code == 200, r.text
    gen_id = r.json()["id"]
    gw.flush()
    spans = _spans(receiver, gen_id)
    by_name: dict[str, list[Any]] = {}
    for s in spans:
        by_name.setdefault(s.name, []).append(s)
    (root,) = by_name["completions test/gamma"]
    attrs = {a.key: a.value for a in root.attributes}
    assert attrs["omnirouter.request_id"].string_value == "traced-1"
    assert attrs["omnirouter.key"].string_value == "metrics key"
    assert attrs["gen_ai.provider.name"].string_value == "Fake B"
    assert attrs["omnirouter.attempts"].int_value == 2
    assert Decimal(attrs["omnirouter.cost_usd"].string_value) == Decimal(str(r.json()["usage"]["cost"]))
    assert [len(by_name[n]) for n in ("plan", "attempt", "settle")] == [1, 2, 1]
    for child in spans:
        if child is not root:
            assert child.parent_span_id == root.span_id
            assert root.start_time_unix_nano <= child.start_time_unix_nano <= child.end_time_unix_nano
            assert child.end_time_unix_nano <= root.end_time_unix_nano
    first, second = sorted(by_name["attempt"], key=lambda s: s.start_time_unix_nano)
    status = {s.name: {a.key: a.value for a in s.attributes} for s in (first,)}
    assert status["attempt"]["http.response.status_code"].int_value == 503
    assert {a.key: a.value for a in second.attributes}["gen_ai.provider.name"].string_value == "Fake B"
    assert by_name["plan"][0].end_time_unix_nano <= first.start_time_unix_nano


def test_off(tmp_path: Path, fake_a: Any, fake_b: Any) -> None:
    g = Gateway(tmp_path, standard_config(fake_a.base_url, fake_b.base_url), metrics="off").start()
    try:
        assert g.state.recorder.watch is None  # nothing watches the generations: no cost at all
        r = httpx.get(g.url + "/metrics", headers={"Authorization": f"Bearer {g.management_key}"})
        assert r.status_code == 404
    finally:
        g.stop()


def test_two_workers_and_json_logs(tmp_path: Path, fake_a: Any, fake_b: Any) -> None:
    """`serve --workers 2`: a scrape, whichever worker answers, sums both; logs are JSON with the
    request id on the line a request logged."""
    import yaml

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(standard_config(fake_a.base_url, fake_b.base_url)))
    management = "sk-or-v1-" + "b" * 64
    served = Served(
        tmp_path, "--workers", "2", "--config", str(config),
        OMNIROUTER_MANAGEMENT_KEY=management, OMNIROUTER_METRICS="open", OMNIROUTER_LOG_FORMAT="json",
        OMNIROUTER_LOG_LEVEL="debug", OMNIROUTER_FLUSH_INTERVAL="0.05",
    )  # fmt: skip
    try:
        admin = httpx.post(served.api + "/keys", json={"name": "two workers"},
                           headers={"Authorization": f"Bearer {management}"})  # fmt: skip
        key = admin.json()["key"]
        n = 24
        for i in range(n):  # a connection each: the kernel spreads them over the workers
            fake_a.fake.script(Reply("hi!", prompt_tokens=10, completion_tokens=2))
            r = httpx.post(served.api + "/chat/completions", json={"model": "test/alpha", "messages": HELLO},
                           headers={"Authorization": f"Bearer {key}", "X-Request-Id": f"two-{i}"})  # fmt: skip
            assert r.status_code == 200, r.text
        labels = {"model": "test/alpha", "key": "two workers", "outcome": "ok"}
        deadline = time.monotonic() + 20
        seen = []
        while len(seen) < 6:
            text = httpx.get(f"http://127.0.0.1:{served.port}/metrics").text  # open: no bearer
            if value(text, "omnirouter_requests_total", **labels) == n:
                seen.append(value(text, "omnirouter_tokens_total", kind="prompt", key="two workers"))
            assert time.monotonic() < deadline, text
        assert seen == [n * 10] * 6
        files = list((tmp_path / "data" / "metrics").glob("counter_*.db"))
        assert len(files) == 2, files  # both workers wrote their counts
    finally:
        out = served.stop()
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    answered = [line for line in lines if line["message"].startswith("POST /api/v1/chat/completions answered")]
    assert len(answered) == n
    assert {line["request_id"] for line in answered} == {f"two-{i}" for i in range(n)}
    assert all(line["level"] == "debug" and line["logger"] == "omnirouter" for line in answered)
    assert key not in out and management not in out


# -- SDK conformance (tests/test_sdk_conformance.py): no SDK has a method for /metrics, so a plain
# request, as the health probes' checks are.


def get_metrics(c: Any) -> None:
    r = httpx.get(c.gw.api + "/metrics", headers={"Authorization": f"Bearer {c.gw.management_key}"})
    assert r.status_code == 200 and "# TYPE omnirouter_requests_total counter" in r.text
    refused = httpx.get(c.gw.api + "/metrics", headers={"Authorization": f"Bearer {c.key}"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == 403


CONFORMANCE = {"GET /metrics": get_metrics}


def test_the_conformance_checks_pass(gw: Gateway, key: str) -> None:
    for check in CONFORMANCE.values():
        check(SimpleNamespace(gw=gw, key=key))


def test_typescript(gw: Gateway) -> None:
    results = run_steps("metrics.mjs", {"serverURL": gw.api, "apiKey": gw.management_key})
    assert set(results) == {"GET /metrics"} and all(r["ok"] for r in results.values()), results
