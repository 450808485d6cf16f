"""The fault matrix (issue 4): every upstream fault x (stream or not) x (fallbacks allowed or not).

One model served by the faulty endpoint (tried first through `provider.order`) and a healthy Fake B.
Each case asserts what the client sees, which endpoint served, the attempts recorded in
/generation, the faulty endpoint's circuit afterwards and what was billed. Faults before the first
byte fall back when allowed; faults after the first streamed chunk cannot: the error goes in-band
and zero-completion insurance waives the charge.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from routing_helpers import (
    attempts,
    chat,
    closed_port_url,
    config,
    cost_of,
    endpoint,
    generation,
    key_usage,
    model,
    per_million,
    provider,
)
from tests.gateway import Gateway

from omnirouter.testing import BrokenJSON, Delay, Reset, Status, Step, Stream

FIRST_BYTE_TIMEOUT = 0.3
B_PRICES = per_million(3, 15)


@dataclass(frozen=True)
class Fault:
    name: str
    step: Step | None  # None: a refused connection (the first endpoint's provider is a closed port)
    status: int  # what the client sees when this was the only attempt
    attempt_status: int  # the attempt's status in provider_responses
    mid_stream: bool = False  # when streaming, the fault comes after the first chunk
    retry_after: float | None = None


FAULTS = [
    Fault("refused", None, 502, 502),
    Fault("reset", Reset(), 502, 502),
    Fault("stall-before-first-byte", Delay(2.0), 408, 408),
    Fault("stall-mid-stream", Stream(stall_after=1, stall_seconds=2.0), 408, 408, mid_stream=True),
    Fault("408", Status(408), 408, 408),
    Fault("429-retry-after", Status(429, retry_after=7), 429, 429, retry_after=7),
    Fault("429", Status(429), 429, 429),
    Fault("500", Status(500), 500, 500),
    Fault("502", Status(502), 502, 502),
    Fault("503", Status(503), 503, 503),
    Fault("529", Status(529), 503, 529),
    Fault("broken-json", BrokenJSON(), 502, 502),
    Fault("truncated-stream", Stream(stop_after=2), 502, 502, mid_stream=True),
]


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fake_a: Any, fake_b: Any) -> Iterator[Gateway]:
    providers = [
        provider("fake-a", fake_a.base_url),
        provider("fake-b", fake_b.base_url),
        provider("dead", closed_port_url()),
    ]
    models = [
        model("fm/duo", [endpoint("fake-a", "duo-a", 1, 2), endpoint("fake-b", "duo-b", 3, 15)]),
        model("fm/refused", [endpoint("dead", "refused-dead", 1, 2), endpoint("fake-b", "refused-b", 3, 15)]),
    ]
    gateway = Gateway(
        tmp_path_factory.mktemp("faults"),
        config(providers, models),
        upstream_first_byte_timeout=FIRST_BYTE_TIMEOUT,
        upstream_connect_timeout=0.5,
        stream_keepalive_seconds=5.0,  # longer than any stall here: errors before the first byte stay JSON
    ).start()
    yield gateway
    gateway.stop()


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("fallbacks", [True, False], ids=["fallbacks", "no-fallbacks"])
@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_fault(gw, key, fake_a, fake_b, fault: Fault, fallbacks: bool, stream: bool):
    if fault.step is None:
        model_id, first_slug, first_name, b_model = "fm/refused", "dead", "Dead", "refused-b"
    else:
        model_id, first_slug, first_name, b_model = "fm/duo", "fake-a", "Fake A", "duo-b"
        fake_a.fake.script(fault.step)
    health = gw.state.routing.health
    before = key_usage(gw, key)
    body = {
        "model": model_id,
        "stream": stream,
        "provider": {"order": [first_slug], "allow_fallbacks": fallbacks},
    }
    answer = chat(gw, key, body)
    billed = key_usage(gw, key) - before

    # The faulty endpoint's circuit is open whatever happened next; the healthy one's is closed.
    assert health.state((model_id, first_slug)) == "open"
    assert health.state((model_id, "fake-b")) == "closed"
    later = time.monotonic() + 8
    if fault.retry_after is not None:  # Retry-After: 7 -> cooling for 7 s, not the default 30
        assert health.state((model_id, first_slug), now=time.monotonic() + 5) == "open"
        assert health.state((model_id, first_slug), now=later) == "half_open"
    else:
        assert health.state((model_id, first_slug), now=later) == "open"

    if stream and fault.mid_stream:
        # Bytes reached the client: no fallback, the error in-band, the stream ended cleanly, nothing billed.
        assert answer.status == 200 and answer.done
        assert answer.provider == first_name
        errors = [e for e in answer.events if "error" in e]
        assert len(errors) == 1
        assert errors[0]["error"]["code"] == fault.status
        assert errors[0]["choices"][0]["finish_reason"] == "error"
        assert answer.content  # the first chunks were relayed before the fault
        assert answer.cost == 0 and billed == 0
        assert fake_b.fake.requests == []
        gen = generation(gw, key, answer.gen_id)
        assert attempts(gen) == [(first_name, 200)]
        assert gen["finish_reason"] == "error" and gen["total_cost"] == 0
        return

    if fallbacks:
        assert answer.status == 200, answer.body
        assert answer.provider == "Fake B"
        assert [r.model for r in fake_b.fake.requests] == [b_model]
        assert answer.cost == cost_of(answer.usage, B_PRICES) > 0
        assert billed == answer.cost
        gen = generation(gw, key, answer.gen_id)
        assert attempts(gen) == [(first_name, fault.attempt_status), ("Fake B", 200)]
        assert gen["provider_name"] == "Fake B" and gen["total_cost"] == answer.cost
        if stream:
            assert answer.done and answer.headers["content-type"].startswith("text/event-stream")
        return

    # No fallback: the upstream's error, as a JSON answer (nothing was committed), nothing billed.
    assert answer.status == fault.status, answer.body
    assert answer.headers["content-type"].startswith("application/json")
    error = answer.error
    assert error["code"] == fault.status
    assert error["metadata"]["provider_name"] == first_name
    if fault.retry_after is not None:
        assert answer.headers["retry-after"] == "7"
    assert fake_b.fake.requests == []
    assert billed == Decimal(0)
