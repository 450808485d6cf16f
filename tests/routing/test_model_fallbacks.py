"""Model fallbacks (behaviors §3.3-3.4): `models` after `model`, the deprecated `route`, billing at the
model actually used, and which upstream 400s move on to the next model."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from routing_helpers import (
    attempts,
    chat,
    config,
    cost_of,
    endpoint,
    generation,
    model,
    per_million,
    plan,
    provider,
    routing_for,
    running_gateway,
    slugs,
)
from tests.gateway import Gateway

from omnirouter.testing import Reply, Status

CONTEXT_400 = Status(
    400,
    {
        "error": {
            "message": "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens.",
            "type": "invalid_request_error",
            "code": "context_length_exceeded",
        }
    },
)


def catalog(a: str = "http://127.0.0.1:9/v1", b: str = "http://127.0.0.1:9/v1", c: str = "http://127.0.0.1:9/v1"):
    providers = [provider("fake-a", a), provider("fake-b", b), provider("fake-c", c)]
    models = [
        model("mf/one", [endpoint("fake-a", "one-up", 1, 1)]),
        model("mf/two", [endpoint("fake-b", "two-up", 2, 3)]),
        model("mf/three", [endpoint("fake-c", "three-up", 3, 3)]),
    ]
    return config(providers, models)


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fake_a: Any, fake_b: Any, fake_c: Any) -> Iterator[Gateway]:
    with running_gateway(tmp_path_factory, catalog(fake_a.base_url, fake_b.base_url, fake_c.base_url)) as gateway:
        yield gateway


def test_model_is_tried_first_then_models_in_order():
    routing = routing_for(catalog())
    assert slugs(plan(routing, {"model": "mf/three", "models": ["mf/one", "mf/two"]})) == [
        "mf/three@fake-c",
        "mf/one@fake-a",
        "mf/two@fake-b",
    ]
    assert slugs(plan(routing, {"models": ["mf/two", "mf/one"]})) == ["mf/two@fake-b", "mf/one@fake-a"]
    # The model repeated in models is tried once.
    assert slugs(plan(routing, {"model": "mf/one", "models": ["mf/one", "mf/two"]})) == [
        "mf/one@fake-a",
        "mf/two@fake-b",
    ]


def test_route_is_the_deprecated_alias_of_sort_partition():
    routing = routing_for(catalog())
    body = {"model": "mf/three", "models": ["mf/two", "mf/one"], "provider": {"sort": "price"}}
    assert slugs(plan(routing, {**body, "route": "fallback"}))[0] == "mf/three@fake-c"  # partition model
    assert slugs(plan(routing, {**body, "route": "sort"})) == [  # partition none: cheapest anywhere first
        "mf/one@fake-a",
        "mf/two@fake-b",
        "mf/three@fake-c",
    ]


def test_failing_model_falls_back_and_bills_the_model_used(gw, key, fake_a, fake_b, fake_c):
    fake_a.fake.script(Status(503))
    fake_b.fake.script(Reply("from two", prompt_tokens=100, completion_tokens=10))
    answer = chat(gw, key, {"model": "mf/one", "models": ["mf/two", "mf/three"]})
    assert answer.status == 200, answer.body
    assert answer.body["model"] == "mf/two" and answer.provider == "Fake B"
    assert answer.cost == cost_of(answer.usage, per_million(2, 3)) == Decimal("0.00023")
    assert fake_c.fake.requests == []
    gen = generation(gw, key, answer.gen_id)
    assert gen["model"] == "mf/two" and gen["total_cost"] == answer.cost
    assert attempts(gen) == [("Fake A", 503), ("Fake B", 200)]


@pytest.mark.parametrize("route", ["fallback", None])
def test_route_fallback_is_accepted(gw, key, fake_a, fake_b, route):
    fake_a.fake.script(Status(502))
    body = {"models": ["mf/one", "mf/two"], "route": route}
    answer = chat(gw, key, body)
    assert answer.status == 200, answer.body
    assert answer.body["model"] == "mf/two"


def test_context_length_400_falls_back_to_the_next_model(gw, key, fake_a, fake_b):
    fake_a.fake.script(CONTEXT_400)
    answer = chat(gw, key, {"model": "mf/one", "models": ["mf/two"]})
    assert answer.status == 200, answer.body
    assert answer.body["model"] == "mf/two"
    # Too long a prompt is not the endpoint's fault: its circuit stays closed.
    assert gw.state.routing.health.state(("mf/one", "fake-a")) == "closed"


def test_other_400s_do_not_fall_back(gw, key, fake_a, fake_b):
    fake_a.fake.script(Status(400, {"error": {"message": "messages[0].content is invalid", "code": "invalid_value"}}))
    answer = chat(gw, key, {"model": "mf/one", "models": ["mf/two"]})
    assert answer.status == 400
    assert "invalid" in answer.error["message"]
    assert fake_b.fake.requests == []


def test_last_models_error_is_returned_when_all_fail(gw, key, fake_a, fake_b):
    fake_a.fake.script(Status(503))
    fake_b.fake.script(Status(503))
    answer = chat(gw, key, {"model": "mf/one", "models": ["mf/two"]})
    assert answer.status == 503
    assert [e["provider"] for e in answer.error["metadata"]["previous_errors"]] == ["Fake A", "Fake B"]


# -- unknown ids in `model`/`models` (decision in docs/api.md): skipped while another listed model can serve


def test_unknown_ids_are_skipped_in_the_plan():
    routing = routing_for(catalog())
    body = {"model": "mf/nope", "models": ["mf/one", "~mf/nothing", "mf/two"]}
    assert slugs(plan(routing, body)) == ["mf/one@fake-a", "mf/two@fake-b"]


def test_unknown_model_falls_back_to_the_next_listed_model(gw, key, fake_a, fake_b):
    fake_b.fake.script(Reply("from two"))
    answer = chat(gw, key, {"models": ["mf/typo", "mf/two"]})
    assert answer.status == 200, answer.body
    assert answer.body["model"] == "mf/two" and answer.content == "from two"
    assert fake_a.fake.requests == []
    assert attempts(generation(gw, key, answer.gen_id)) == [("Fake B", 200)]


def test_only_unknown_ids_are_a_400_naming_each(gw, key, fake_a):
    answer = chat(gw, key, {"model": "mf/typo", "models": ["~mf/nothing"]})
    assert answer.status == 400
    error = answer.error
    assert error["availability"]["code"] == "model_not_found"
    assert error["availability"]["requested_models"] == ["mf/typo", "~mf/nothing"]
    assert "mf/typo" in error["message"] and "~mf/nothing" in error["message"]
    assert fake_a.fake.requests == []


def test_unknown_id_is_named_when_the_known_models_are_filtered_out(gw, key, fake_b):
    """Nothing routable: the unknown id is the error (400), as the likeliest mistake to fix."""
    answer = chat(gw, key, {"models": ["mf/typo", "mf/two"], "provider": {"ignore": ["fake-b"]}})
    assert answer.status == 400
    assert answer.error["availability"]["code"] == "model_not_found"
    assert answer.error["message"] == "mf/typo is not a valid model ID"
    assert fake_b.fake.requests == []
