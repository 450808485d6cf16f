"""Answers about the route: `openrouter_metadata` (X-OpenRouter-Metadata: enabled), the availability
error object with its codes and `excluded_by`, and `debug.echo_upstream_body` on streams."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from routing_helpers import (
    attempts,
    chat,
    closed_port_url,
    config,
    endpoint,
    generation,
    model,
    provider,
    running_gateway,
)
from tests.gateway import Gateway
from tests.spec_validation import spec_available, validate, validate_response

from omnirouter.testing import Status

METADATA = {"X-OpenRouter-Metadata": "enabled"}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fake_a: Any, fake_b: Any) -> Iterator[Gateway]:
    providers = [provider("fake-a", fake_a.base_url), provider("fake-b", fake_b.base_url)]
    providers.append(provider("gone", closed_port_url(), enabled=False))
    models = [
        model("ra/m", [endpoint("fake-a", "ra-a", 1, 1), endpoint("fake-b", "ra-b", 3, 3)]),
        model("ra/other", [endpoint("fake-b", "other-b", 2, 2)]),
        model("ra/orphan", [endpoint("gone", "orphan", 1, 1)]),
        model("ra/fam-1", [endpoint("fake-a", "fam1", 1, 1)], created=10),
    ]
    with running_gateway(tmp_path_factory, config(providers, models)) as gateway:
        yield gateway


ORDER_AB = {"provider": {"order": ["fake-a", "fake-b"]}}


def check_metadata(meta: dict[str, Any]) -> None:
    if spec_available():
        validate(meta, "OpenRouterMetadata")


# -- openrouter_metadata


def test_metadata_only_when_asked(gw, key):
    assert "openrouter_metadata" not in chat(gw, key, {"model": "ra/m"}).body
    assert "openrouter_metadata" in chat(gw, key, {"model": "ra/m"}, headers=METADATA).body


def test_metadata_lists_the_attempts_and_the_endpoint_selected(gw, key, fake_a):
    fake_a.fake.script(Status(503))
    answer = chat(gw, key, {"model": "ra/m", **ORDER_AB}, headers=METADATA)
    assert answer.status == 200 and answer.provider == "Fake B"
    meta = answer.body["openrouter_metadata"]
    check_metadata(meta)
    assert meta["requested"] == "ra/m" and meta["strategy"] == "direct"
    assert meta["attempt"] == 2
    assert meta["attempts"] == [
        {"provider": "Fake A", "model": "ra/m", "status": 503},
        {"provider": "Fake B", "model": "ra/m", "status": 200},
    ]
    assert meta["endpoints"]["total"] == 2
    assert meta["endpoints"]["available"] == [
        {"provider": "Fake A", "model": "ra/m", "selected": False},
        {"provider": "Fake B", "model": "ra/m", "selected": True},
    ]


def test_metadata_counts_the_endpoints_the_filters_left_out(gw, key):
    meta = chat(gw, key, {"model": "ra/m", "provider": {"ignore": ["fake-a"]}}, headers=METADATA).body[
        "openrouter_metadata"
    ]
    assert meta["endpoints"]["total"] == 2
    assert meta["endpoints"]["available"] == [{"provider": "Fake B", "model": "ra/m", "selected": True}]


def test_metadata_on_the_final_stream_chunk(gw, key):
    answer = chat(gw, key, {"model": "ra/m", "stream": True}, headers=METADATA)
    assert answer.done
    with_meta = [i for i, e in enumerate(answer.events) if "openrouter_metadata" in e]
    assert with_meta == [len(answer.events) - 1]  # the last chunk before [DONE], with the usage
    final = answer.events[-1]
    assert final["choices"] == [] and "usage" in final
    check_metadata(final["openrouter_metadata"])


@pytest.mark.parametrize(
    ("body", "strategy"),
    [
        ({"model": "ra/m", "models": ["ra/other"]}, "fallback"),
        ({"model": "~ra/fam-latest"}, "latest"),
        ({"model": "openrouter/auto", "plugins": [{"id": "auto-router", "allowed_models": ["ra/m"]}]}, "auto"),
    ],
)
def test_metadata_strategy(gw, key, body, strategy):
    meta = chat(gw, key, body, headers=METADATA).body["openrouter_metadata"]
    check_metadata(meta)
    assert meta["strategy"] == strategy


# -- availability errors


def availability(answer, status: int, code: str) -> dict[str, Any]:
    assert answer.status == status, answer.body
    error = answer.error
    if spec_available():
        validate_response("sendChatCompletionRequest", answer.body, status=str(status))
    assert error["code"] == status and error["http_status"] == status
    a = error["availability"]
    assert a["code"] == code and a["requested_models"] and a["docs_url"].startswith("https://")
    return error


def test_unknown_model_is_model_not_found(gw, key):
    error = availability(chat(gw, key, {"model": "ra/nope"}), 400, "model_not_found")
    assert error["availability"]["retryable"] is False and "excluded_by" not in error["availability"]


def test_model_nobody_serves_is_no_endpoints(gw, key):
    availability(chat(gw, key, {"model": "ra/orphan"}), 404, "no_endpoints")


def test_filters_leaving_nothing_is_constraint_filtered_with_excluded_by(gw, key):
    body = {"model": "ra/m", "provider": {"ignore": ["fake-a"], "max_price": {"prompt": 2}}}
    error = availability(chat(gw, key, body), 404, "constraint_filtered")
    assert error["availability"]["excluded_by"] == ["allowed_providers", "max_price"]


def test_all_rate_limited_is_capacity_exhausted(gw, key, fake_a, fake_b):
    fake_a.fake.script(Status(429, retry_after=3))
    fake_b.fake.script(Status(429, retry_after=5))
    answer = chat(gw, key, {"model": "ra/m", **ORDER_AB})
    error = availability(answer, 429, "capacity_exhausted")
    assert error["availability"]["retryable"] is True
    assert error["availability"]["retry_after"] == 3 and answer.headers["retry-after"] == "3"
    assert [(e["provider"], e["status"]) for e in error["metadata"]["previous_errors"]] == [
        ("Fake A", 429),
        ("Fake B", 429),
    ]


def test_all_failing_is_temporarily_unavailable(gw, key, fake_a, fake_b):
    fake_a.fake.script(Status(429))
    fake_b.fake.script(Status(502))
    error = availability(chat(gw, key, {"model": "ra/m", **ORDER_AB}), 503, "temporarily_unavailable")
    assert error["availability"]["retryable"] is True
    assert [(e["provider"], e["status"]) for e in error["metadata"]["previous_errors"]] == [
        ("Fake A", 429),
        ("Fake B", 502),
    ]


# -- debug.echo_upstream_body


def test_echo_upstream_body_one_chunk_per_attempt(gw, key, fake_a):
    fake_a.fake.script(Status(503))
    body = {"model": "ra/m", "stream": True, "debug": {"echo_upstream_body": True}, **ORDER_AB}
    answer = chat(gw, key, body)
    assert answer.status == 200 and answer.done
    debug = [e for e in answer.events if "debug" in e]
    assert [e["debug"]["echo_upstream_body"]["model"] for e in debug] == ["ra-a", "ra-b"]
    assert all(e["choices"] == [] for e in debug)
    assert answer.events[: len(debug)] == debug  # before any content
    echoed = debug[1]["debug"]["echo_upstream_body"]
    assert echoed["stream"] is True and "provider" not in echoed and "debug" not in echoed
    assert echoed["messages"] == [{"role": "user", "content": "hello there"}]


def test_echo_upstream_body_is_ignored_without_stream(gw, key, fake_a):
    answer = chat(gw, key, {"model": "ra/m", "debug": {"echo_upstream_body": True}, **ORDER_AB})
    assert answer.status == 200
    assert "debug" not in answer.body
    assert "debug" not in fake_a.fake.last_request.json


def test_in_band_availability_error_after_the_stream_was_committed(gw, key, fake_a, fake_b):
    fake_a.fake.script(Status(503))
    fake_b.fake.script(Status(502))
    # The debug chunk commits the stream before any attempt answers.
    body = {"model": "ra/m", "stream": True, "debug": {"echo_upstream_body": True}, **ORDER_AB}
    answer = chat(gw, key, body)
    assert answer.status == 200
    error = next(e["error"] for e in answer.events if "error" in e)
    assert error["code"] == 503
    assert error["availability"]["code"] == "temporarily_unavailable"
    assert [p["provider"] for p in error["metadata"]["previous_errors"]] == ["Fake A", "Fake B"]


def test_a_request_that_failed_everywhere_still_has_its_attempts_in_generation(gw, key, fake_a, fake_b):
    fake_a.fake.script(Status(503))
    fake_b.fake.script(Status(502))
    answer = chat(gw, key, {"model": "ra/m", **ORDER_AB})
    assert answer.status == 503
    gen = generation(gw, key, answer.gen_id, timeout=0.3)
    assert attempts(gen) == [("Fake A", 503), ("Fake B", 502)]
    assert gen["total_cost"] == 0
