"""Every field of the `provider` object (behaviors §3.2), each with a test that fails when it is ignored.

Most call the planner directly (no HTTP); the ones whose effect is an HTTP answer or the upstream
body go through a gateway.
"""

from __future__ import annotations

import pytest
from routing_helpers import chat, config, endpoint, model, plan, provider, routing_for, slugs

from omnirouter.api.errors import ApiError

PARAMS = ["max_tokens", "temperature"]


def catalog() -> dict:
    """pf/m: five standard endpoints (prices 1..5 per million each way) and a priority-tier one."""
    providers = [
        provider("alpha", data_policy={"zdr": True}),
        provider("beta", data_policy={"training": True}),
        provider("gamma", data_policy={"retains_prompts": True}),
        provider("delta"),
    ]
    eps = [
        endpoint("alpha", prompt=1, completion=1, quantization="fp8", supported_parameters=[*PARAMS, "tools"]),
        endpoint("beta", prompt=2, completion=2, quantization="mxfp8", supported_parameters=PARAMS),
        endpoint("gamma", prompt=3, completion=3, quantization="bf16", supported_parameters=[*PARAMS, "top_k"]),
        endpoint("delta", prompt=4, completion=4, quantization="fp4", supported_parameters=PARAMS),
        endpoint("delta", prompt=5, completion=5, quantization="nvfp4", tag="delta/turbo", supported_parameters=PARAMS),
        endpoint(
            "delta", prompt=8, completion=8, tag="delta/priority", variant="priority", supported_parameters=PARAMS
        ),
    ]
    models = [
        model("pf/m", eps, supported_parameters=PARAMS),
        model("pf/other", [endpoint("alpha", prompt=9, completion=9), endpoint("beta", prompt=0.5, completion=0.5)]),
        model("pf/distill", [endpoint("alpha", prompt=1, completion=1)], distillable=True),
    ]
    return config(providers, models)


@pytest.fixture
def routing():
    return routing_for(catalog(), seed=11)


def order_of(routing, **prefs) -> list[str]:
    return slugs(plan(routing, {"model": prefs.pop("model", "pf/m"), "provider": prefs}))


def unavailable(routing, **prefs) -> dict:
    with pytest.raises(ApiError) as info:
        plan(routing, {"model": prefs.pop("model", "pf/m"), "provider": prefs})
    return info.value.body()["error"]


STANDARD = {"alpha", "beta", "gamma", "delta", "delta/turbo"}


# -- order and allow_fallbacks


def test_order_puts_named_endpoints_first_then_the_rest(routing):
    for _ in range(20):  # the rest is load-balanced; the named ones are always first, in order
        got = order_of(routing, order=["gamma", "beta"])
        assert got[:2] == ["gamma", "beta"] and set(got) == STANDARD


def test_order_base_slug_names_all_of_a_providers_endpoints(routing):
    assert order_of(routing, order=["delta"])[:2] == ["delta", "delta/turbo"]
    assert order_of(routing, order=["delta/turbo", "alpha"])[:2] == ["delta/turbo", "alpha"]


def test_order_of_providers_that_do_not_serve_the_model_is_skipped(routing):
    assert order_of(routing, order=["nobody", "gamma"])[0] == "gamma"


def test_allow_fallbacks_false_keeps_only_the_ordered_endpoints(routing):
    assert order_of(routing, order=["gamma", "beta"], allow_fallbacks=False) == ["gamma", "beta"]
    assert order_of(routing, order=["gamma", "beta"], allow_fallbacks=True)[2:] != []


def test_allow_fallbacks_false_without_order_keeps_the_primary_only(routing):
    assert len(order_of(routing, allow_fallbacks=False)) == 1
    assert order_of(routing, sort="price", allow_fallbacks=False) == ["alpha"]


def test_order_wins_over_sort(routing):
    assert order_of(routing, order=["gamma"], sort="price")[0] == "gamma"
    assert order_of(routing, order=["gamma"], sort={"by": "price", "partition": "none"})[0] == "gamma"


# -- filters


def test_only_is_an_allow_list(routing):
    assert set(order_of(routing, only=["beta", "gamma"])) == {"beta", "gamma"}
    assert set(order_of(routing, only=["delta"])) == {"delta", "delta/turbo"}
    assert order_of(routing, only=["delta/turbo"]) == ["delta/turbo"]


def test_only_with_nothing_left_is_404_allowed_providers(routing):
    error = unavailable(routing, only=["nobody"])
    assert error["code"] == 404
    assert error["availability"]["code"] == "constraint_filtered"
    assert error["availability"]["excluded_by"] == ["allowed_providers"]


def test_ignore_is_a_block_list(routing):
    assert set(order_of(routing, ignore=["alpha", "beta"])) == {"gamma", "delta", "delta/turbo"}
    assert set(order_of(routing, ignore=["delta"])) == {"alpha", "beta", "gamma"}
    assert set(order_of(routing, ignore=["delta/turbo"])) == STANDARD - {"delta/turbo"}


def test_base_slugs_do_not_match_service_tier_endpoints(routing):
    # :nitro admits the priority tier; a base slug in only/ignore still does not reach it.
    assert set(order_of(routing, model="pf/m:nitro", only=["delta"])) == {"delta", "delta/turbo"}
    assert "delta/priority" in order_of(routing, model="pf/m:nitro", ignore=["delta"])
    assert order_of(routing, model="pf/m:nitro", only=["delta/priority"]) == ["delta/priority"]
    assert "delta/priority" not in order_of(routing, model="pf/m:nitro", ignore=["delta/priority"])


def test_data_collection_deny_keeps_providers_that_neither_train_nor_retain(routing):
    assert set(order_of(routing, data_collection="deny")) == {"alpha", "delta", "delta/turbo"}
    assert set(order_of(routing, data_collection="allow")) == STANDARD


def test_zdr_keeps_zero_data_retention_endpoints_only(routing):
    assert order_of(routing, zdr=True) == ["alpha"]
    error = unavailable(routing, zdr=True, ignore=["alpha"])
    assert error["availability"]["excluded_by"] == ["allowed_providers", "data_policy:zdr"]


def test_enforce_distillable_text_keeps_models_whose_author_allows_it(routing):
    error = unavailable(routing, enforce_distillable_text=True)
    assert error["availability"]["code"] == "constraint_filtered"
    p = plan(routing, {"model": "pf/m", "models": ["pf/distill"], "provider": {"enforce_distillable_text": True}})
    assert {c.model.id for c in p.candidates} == {"pf/distill"}


@pytest.mark.parametrize(
    ("wanted", "kept"),
    [
        (["fp8"], {"alpha", "beta"}),  # fp8 admits mxfp8
        (["fp4"], {"delta", "delta/turbo"}),  # fp4 admits nvfp4 (and mxfp4)
        (["mxfp8"], {"beta"}),
        (["bf16", "fp4"], {"gamma", "delta", "delta/turbo"}),
    ],
)
def test_quantizations(routing, wanted, kept):
    assert set(order_of(routing, quantizations=wanted)) == kept


def test_quantizations_with_nothing_left(routing):
    assert unavailable(routing, quantizations=["int4"])["availability"]["excluded_by"] == ["quantization"]


# -- max_price (USD per million tokens; a hard filter)


def test_max_price_is_per_million_tokens(routing):
    assert set(order_of(routing, max_price={"prompt": 2, "completion": 2})) == {"alpha", "beta"}
    assert set(order_of(routing, max_price={"prompt": "3"})) == {"alpha", "beta", "gamma"}  # strings as in the spec
    assert set(order_of(routing, max_price={"completion": 1})) == {"alpha"}


def test_max_price_over_http_is_404_constraint_filtered(make_gateway, fake_a, fake_b):
    gw = make_gateway()  # the standard config: test/alpha at $1/M prompt, $2/M completion
    key = gw.create_key()["key"]
    ok = chat(gw, key, {"model": "test/alpha", "provider": {"max_price": {"prompt": 1, "completion": 2}}})
    assert ok.status == 200, ok.body
    answer = chat(gw, key, {"model": "test/alpha", "provider": {"max_price": {"completion": 1.5}}})
    assert answer.status == 404
    availability = answer.error["availability"]
    assert availability["code"] == "constraint_filtered" and availability["excluded_by"] == ["max_price"]
    assert len(fake_a.fake.requests) == 1


# -- require_parameters


def test_require_parameters_keeps_endpoints_supporting_every_parameter(routing):
    body = {"model": "pf/m", "top_k": 5}
    assert set(slugs(plan(routing, body))) == STANDARD  # unsupported parameters are dropped instead
    assert slugs(plan(routing, {**body, "provider": {"require_parameters": True}})) == ["gamma"]


def test_require_parameters_with_nothing_left(routing):
    with pytest.raises(ApiError) as info:
        plan(routing, {"model": "pf/m", "logit_bias": {"1": 1}, "provider": {"require_parameters": True}})
    assert info.value.body()["error"]["availability"]["excluded_by"] == ["require_parameters"]


# -- sort


def test_sort_price(routing):
    assert order_of(routing, sort="price") == ["alpha", "beta", "gamma", "delta", "delta/turbo"]


def seed(routing, model_id: str, slug: str, *, ttft: float = 0.5, tps: float = 50.0, n: int = 5) -> None:
    for _ in range(n):
        routing.stats.record_success((model_id, slug), ttft=ttft, tokens=int(tps * 2), generation_seconds=2.0)


def test_sort_throughput_highest_first_unmeasured_last(routing):
    seed(routing, "pf/m", "gamma", tps=300)
    seed(routing, "pf/m", "beta", tps=100)
    seed(routing, "pf/m", "delta", tps=200)
    assert order_of(routing, sort="throughput")[:3] == ["gamma", "delta", "beta"]
    assert order_of(routing, sort={"by": "throughput"})[:3] == ["gamma", "delta", "beta"]


def test_sort_latency_lowest_first(routing):
    seed(routing, "pf/m", "delta/turbo", ttft=0.1)
    seed(routing, "pf/m", "gamma", ttft=0.4)
    seed(routing, "pf/m", "alpha", ttft=2.0)
    assert order_of(routing, sort="latency")[:3] == ["delta/turbo", "gamma", "alpha"]


def test_sort_partition_model_keeps_fallback_models_last(routing):
    body = {"model": "pf/m", "models": ["pf/other"], "provider": {"sort": {"by": "price", "partition": "model"}}}
    got = slugs(plan(routing, body))
    assert got[:5] == ["pf/m@alpha", "pf/m@beta", "pf/m@gamma", "pf/m@delta", "pf/m@delta/turbo"]
    assert got[5:] == ["pf/other@beta", "pf/other@alpha"]


def test_sort_partition_none_ranks_all_models_together(routing):
    body = {"model": "pf/m", "models": ["pf/other"], "provider": {"sort": {"by": "price", "partition": "none"}}}
    got = slugs(plan(routing, body))
    assert got[:2] == ["pf/other@beta", "pf/m@alpha"] and got[-1] == "pf/other@alpha"
    # allow_fallbacks: false keeps each model's best endpoint, still in the global order.
    body["provider"]["allow_fallbacks"] = False
    assert slugs(plan(routing, body)) == ["pf/other@beta", "pf/m@alpha"]


def test_sort_puts_failing_endpoints_last(routing):
    routing.health.failed(("pf/m", "alpha"))
    assert order_of(routing, sort="price")[-1] == "alpha"


# -- preferred_min_throughput / preferred_max_latency: deprioritise, never exclude


def test_preferred_min_throughput_moves_slow_endpoints_last(routing):
    seed(routing, "pf/m", "alpha", tps=10)
    seed(routing, "pf/m", "beta", tps=100)
    got = order_of(routing, sort="price", preferred_min_throughput=50)
    assert got == ["beta", "gamma", "delta", "delta/turbo", "alpha"]  # unmeasured ones are not penalised


def test_preferred_max_latency_moves_slow_endpoints_last(routing):
    seed(routing, "pf/m", "alpha", ttft=3.0)
    seed(routing, "pf/m", "beta", ttft=0.2)
    assert order_of(routing, sort="price", preferred_max_latency=1)[-1] == "alpha"
    assert order_of(routing, sort="price", preferred_max_latency=5)[0] == "alpha"


def test_preferred_thresholds_by_percentile(routing):
    # alpha: half its requests at 10 tokens/s, half at 100 -> p50 = 10, p90 = 100.
    seed(routing, "pf/m", "alpha", tps=10)
    seed(routing, "pf/m", "alpha", tps=100)
    assert order_of(routing, sort="price", preferred_min_throughput={"p90": 50})[0] == "alpha"
    assert order_of(routing, sort="price", preferred_min_throughput={"p50": 50})[-1] == "alpha"
    assert order_of(routing, sort="price", preferred_min_throughput={"p50": 5, "p90": 200})[-1] == "alpha"  # all apply
    # Latency: a number means p50; null cutoffs are allowed by the schema and ignored.
    seed(routing, "pf/m", "beta", ttft=0.5)
    seed(routing, "pf/m", "beta", ttft=4.0)
    assert order_of(routing, sort="price", preferred_max_latency={"p50": 1, "p99": None})[1] == "beta"
    assert order_of(routing, sort="price", preferred_max_latency={"p90": 1})[-1] == "beta"


def test_preferred_thresholds_never_exclude(routing):
    for slug in STANDARD:
        seed(routing, "pf/m", slug, tps=1, ttft=9)
    got = order_of(routing, preferred_min_throughput=1000, preferred_max_latency=0.01)
    assert set(got) == STANDARD


def test_preferred_thresholds_can_make_a_fallback_model_win(routing):
    for slug in STANDARD:
        seed(routing, "pf/m", slug, tps=5)
    seed(routing, "pf/other", "alpha", tps=500)
    p = plan(routing, {"model": "pf/m", "models": ["pf/other"], "provider": {"preferred_min_throughput": 100}})
    assert slugs(p)[0].startswith("pf/other@")
    assert {c.model.id for c in p.candidates} == {"pf/m", "pf/other"}


def test_preferred_thresholds_keep_failing_endpoints_last(routing):
    seed(routing, "pf/m", "alpha", tps=500)
    seed(routing, "pf/m", "beta", tps=5)
    routing.health.failed(("pf/m", "alpha"))
    assert order_of(routing, sort="price", preferred_min_throughput=100)[-2:] == ["beta", "alpha"]


def test_provider_display_names_match_like_base_slugs(routing):
    # The OpenAPI document types these lists as ProviderName ("DeepInfra") or a slug.
    assert order_of(routing, order=["Gamma"])[0] == "gamma"
    assert set(order_of(routing, only=["DELTA"])) == {"delta", "delta/turbo"}
    assert "alpha" not in order_of(routing, ignore=["Alpha"])


def test_max_price_that_is_not_a_number_is_400(gateway, api_key):
    answer = chat(gateway, api_key, {"model": "test/alpha", "provider": {"max_price": {"prompt": "cheap"}}})
    assert answer.status == 400
    assert "max_price.prompt" in answer.error["message"]


def test_order_is_followed_even_for_an_endpoint_whose_circuit_is_open(routing):
    routing.health.failed(("pf/m", "gamma"))
    assert order_of(routing, order=["gamma", "beta"])[:2] == ["gamma", "beta"]
    assert order_of(routing, sort="price")[-1] == "gamma"  # without order it goes last
