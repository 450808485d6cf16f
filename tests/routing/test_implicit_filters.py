"""Filters applied without being asked (behaviors §3.1, §8.1): context length, max_tokens against the
endpoint's maximum output, tools and response_format as soft preferences, and unsupported
parameters dropped unless `require_parameters`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from routing_helpers import chat, config, endpoint, model, plan, provider, routing_for, running_gateway, slugs
from tests.gateway import Gateway

from omnirouter.api.errors import ApiError

ONLY_MAX_TOKENS = ["max_tokens"]


def catalog(a_url: str = "http://127.0.0.1:9/v1", b_url: str = "http://127.0.0.1:9/v1") -> dict:
    providers = [provider("fake-a", a_url), provider("fake-b", b_url)]
    models = [
        # small: 1,000-token context and 256 tokens of output at most; big: 100,000 and no output limit.
        model(
            "if/ctx",
            [
                endpoint("fake-a", "ctx-small", 1, 1, context_length=1000, max_completion_tokens=256),
                endpoint("fake-b", "ctx-big", 5, 5),
            ],
        ),
        model(
            "if/caps",
            [
                endpoint("fake-a", "caps-a", 1, 1, supported_parameters=["max_tokens", "temperature"]),
                endpoint("fake-b", "caps-b", 5, 5, supported_parameters=["max_tokens", "tools", "response_format"]),
            ],
        ),
        model("if/plain", [endpoint("fake-a", "plain-a", 1, 1, supported_parameters=ONLY_MAX_TOKENS)]),
    ]
    return config(providers, models)


@pytest.fixture
def routing():
    return routing_for(catalog(), seed=2)


def words(tokens: int) -> list[dict[str, str]]:
    """A prompt of about `tokens` tokens by the gateway's estimate (request bytes / 4)."""
    return [{"role": "user", "content": "x" * (tokens * 4)}]


# -- context length and max_tokens


def test_prompt_too_long_for_an_endpoints_context_excludes_it(routing):
    assert set(slugs(plan(routing, {"model": "if/ctx", "messages": words(100)}))) == {"fake-a", "fake-b"}
    assert slugs(plan(routing, {"model": "if/ctx", "messages": words(1200)})) == ["fake-b"]


def test_prompt_plus_max_tokens_counts_against_the_context(routing):
    body = {"model": "if/ctx", "messages": words(800)}
    assert "fake-a" in slugs(plan(routing, body))
    assert slugs(plan(routing, {**body, "max_tokens": 250})) == ["fake-b"]


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
def test_max_tokens_over_the_endpoints_maximum_output_excludes_it(routing, field):
    assert set(slugs(plan(routing, {"model": "if/ctx", field: 256}))) == {"fake-a", "fake-b"}
    assert slugs(plan(routing, {"model": "if/ctx", field: 257})) == ["fake-b"]


def test_nothing_long_enough_is_400_context_length_exceeded_without_compression(routing):
    """Behaviors §8.6: the error suggests compression; with it (on by default for contexts of 8k or
    less), the small endpoint is kept, to compress the prompt for (plugins/context_compression.py)."""
    with pytest.raises(ApiError) as info:
        plan(routing, {"model": "if/ctx", "messages": words(200_000), "transforms": []})
    error = info.value.body()["error"]
    assert error["code"] == 400
    assert error["metadata"]["error_type"] == "context_length_exceeded" and "middle-out" in error["message"]
    assert slugs(plan(routing, {"model": "if/ctx", "messages": words(200_000)})) == ["fake-a"]


# -- tools and response_format: soft preferences

TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]


def test_tools_prefer_endpoints_that_support_them(routing):
    assert set(slugs(plan(routing, {"model": "if/caps"}))) == {"fake-a", "fake-b"}
    assert slugs(plan(routing, {"model": "if/caps", "tools": TOOLS})) == ["fake-b"]


def test_response_format_prefers_endpoints_that_support_it(routing):
    body = {"model": "if/caps", "response_format": {"type": "json_object"}}
    assert slugs(plan(routing, body)) == ["fake-b"]


def test_when_no_endpoint_supports_tools_the_model_is_still_used(routing):
    assert slugs(plan(routing, {"model": "if/plain", "tools": TOOLS})) == ["fake-a"]
    body = {"model": "if/plain", "response_format": {"type": "json_object"}}
    assert slugs(plan(routing, body)) == ["fake-a"]


def test_soft_preferences_never_remove_a_fallback_model(routing):
    p = plan(routing, {"model": "if/caps", "models": ["if/plain"], "tools": TOOLS})
    assert slugs(p) == ["if/caps@fake-b", "if/plain@fake-a"]


# -- over HTTP: what the upstream gets, and the 404s


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fake_a: Any, fake_b: Any) -> Iterator[Gateway]:
    with running_gateway(tmp_path_factory, catalog(fake_a.base_url, fake_b.base_url)) as gateway:
        yield gateway


def test_unsupported_parameters_are_dropped_before_the_upstream(gw, key, fake_a):
    answer = chat(gw, key, {"model": "if/plain", "max_tokens": 20, "temperature": 0.5, "top_k": 3, "seed": 1})
    assert answer.status == 200, answer.body
    sent = fake_a.fake.last_request.json
    assert sent["max_tokens"] == 20
    assert "temperature" not in sent and "top_k" not in sent and "seed" not in sent


def test_unsupported_tools_are_dropped_when_no_endpoint_has_them(gw, key, fake_a):
    answer = chat(gw, key, {"model": "if/plain", "tools": TOOLS, "tool_choice": "auto"})
    assert answer.status == 200, answer.body
    assert "tools" not in fake_a.fake.last_request.json and "tool_choice" not in fake_a.fake.last_request.json


def test_require_parameters_refuses_instead_of_dropping(gw, key, fake_a):
    answer = chat(gw, key, {"model": "if/plain", "temperature": 0.5, "provider": {"require_parameters": True}})
    assert answer.status == 404
    assert answer.error["availability"]["excluded_by"] == ["require_parameters"]
    assert fake_a.fake.requests == []


def test_context_too_long_over_http_is_400(gw, key, fake_a, fake_b):
    answer = chat(gw, key, {"model": "if/ctx", "messages": words(120_000), "transforms": []})
    assert answer.status == 400
    assert answer.error["metadata"]["error_type"] == "context_length_exceeded"
    assert fake_a.fake.requests == [] and fake_b.fake.requests == []


def test_long_prompt_goes_to_the_endpoint_with_room(gw, key, fake_a, fake_b):
    answer = chat(gw, key, {"model": "if/ctx", "messages": words(1500)})
    assert answer.status == 200, answer.body
    assert answer.provider == "Fake B" and fake_a.fake.requests == []


def test_one_planner_answers_each_request_by_its_own_prompt_and_preferences(routing):
    """The planner remembers what it found per model and preferences; the prompt's length is still
    checked per request, and other preferences find other endpoints."""
    short, long = words(100), words(1200)
    only_a = {"only": ["fake-a"]}
    assert set(slugs(plan(routing, {"model": "if/ctx", "messages": short}))) == {"fake-a", "fake-b"}
    assert slugs(plan(routing, {"model": "if/ctx", "messages": long})) == ["fake-b"]
    assert set(slugs(plan(routing, {"model": "if/ctx", "messages": short}))) == {"fake-a", "fake-b"}
    with pytest.raises(ApiError) as caught:
        plan(routing, {"model": "if/ctx", "messages": long, "provider": only_a, "transforms": []})
    assert caught.value.body()["error"]["availability"]["excluded_by"] == ["allowed_providers", "context_length"]
    assert slugs(plan(routing, {"model": "if/ctx", "messages": short, "provider": only_a})) == ["fake-a"]
    assert slugs(plan(routing, {"model": "if/ctx", "messages": short, "max_tokens": 500})) == ["fake-b"]
