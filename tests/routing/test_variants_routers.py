"""Model variants and router models (behaviors §4.2-4.3): :nitro, :floor, :exacto, :free, :extended,
:thinking, :online; openrouter/auto, openrouter/free and ~author/family-latest."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from routing_helpers import (
    chat,
    config,
    cost_of,
    endpoint,
    model,
    per_million,
    plan,
    provider,
    routing_for,
    running_gateway,
    slugs,
)
from tests.gateway import Gateway

from omnirouter.api.errors import ApiError
from omnirouter.testing import Reply

NOWHERE = "http://127.0.0.1:9/v1"


def catalog(a: str = NOWHERE, b: str = NOWHERE, c: str = NOWHERE) -> dict:
    providers = [provider("fake-a", a), provider("fake-b", b), provider("fake-c", c)]
    ep = endpoint
    vr_m = [
        ep("fake-a", "m-a", 2, 2, supported_parameters=["max_tokens", "tools"]),
        ep("fake-b", "m-b", 1, 1, supported_parameters=["max_tokens", "web_search_options"]),
        ep("fake-a", "m-a-prio", 4, 4, tag="fake-a/priority", variant="priority"),
        ep("fake-b", "m-b-flex", 0.5, 0.5, tag="fake-b/flex", variant="flex"),
        ep("fake-c", "m-c-free", 0, 0, tag="fake-c/free", variant="free"),
        ep("fake-c", "m-c-ext", 3, 3, tag="fake-c/extended", variant="extended", context_length=1_000_000),
        ep("fake-a", "m-a-think", 5, 5, tag="fake-a/thinking", variant="thinking"),
    ]
    models = [
        model("vr/m", vr_m, supported_parameters=["max_tokens"]),
        model("vr/nosearch", [ep("fake-a", "nosearch-a", 1, 1, supported_parameters=["max_tokens"])]),
        model("vr/gratis", [ep("fake-c", "gratis-c", 0, 0)]),
        model("auto/cheap", [ep("fake-a", "cheap-a", 1, 1)], supported_parameters=["tools"]),
        model("auto/mid", [ep("fake-b", "mid-b", 5, 5)]),
        model("auto/dear", [ep("fake-c", "dear-c", 20, 20)], supported_parameters=["tools"]),
        model("fam/widget-1", [ep("fake-a", "w1", 1, 1)], created=100),
        model("fam/widget-2", [ep("fake-b", "w2", 1, 1)], created=300),
        model("fam/widget-1.5", [ep("fake-c", "w15", 1, 1)], created=200),
        model("fam/widgetry", [ep("fake-c", "wy", 1, 1)], created=900),  # another family: same prefix only
    ]
    return config(providers, models)


@pytest.fixture
def routing():
    return routing_for(catalog(), seed=4)


def seed_throughput(routing, model_id: str, slug: str, tps: float) -> None:
    for _ in range(3):
        routing.stats.record_success((model_id, slug), ttft=0.2, tokens=int(tps), generation_seconds=1.0)


# -- variants that rewrite the request


def test_nitro_sorts_by_throughput_and_admits_priority_tier(routing):
    assert "fake-a/priority" not in slugs(plan(routing, {"model": "vr/m"}))
    seed_throughput(routing, "vr/m", "fake-a/priority", 400)
    seed_throughput(routing, "vr/m", "fake-a", 100)
    seed_throughput(routing, "vr/m", "fake-b", 200)
    assert slugs(plan(routing, {"model": "vr/m:nitro"})) == ["fake-a/priority", "fake-b", "fake-a"]


def test_floor_sorts_by_price_and_admits_flex_tier(routing):
    assert "fake-b/flex" not in slugs(plan(routing, {"model": "vr/m"}))
    assert slugs(plan(routing, {"model": "vr/m:floor"})) == ["fake-b/flex", "fake-b", "fake-a"]


def test_exacto_sorts_by_tool_call_success(routing):
    for ok in (True, True, True):
        routing.stats.record_tool_call(("vr/m", "fake-a"), ok)
    for ok in (True, False, False):
        routing.stats.record_tool_call(("vr/m", "fake-b"), ok)
    assert slugs(plan(routing, {"model": "vr/m:exacto"})) == ["fake-a", "fake-b"]
    # An explicit provider.sort takes precedence over the variant's.
    assert slugs(plan(routing, {"model": "vr/m:exacto", "provider": {"sort": "price"}})) == ["fake-b", "fake-a"]
    assert slugs(plan(routing, {"model": "vr/m", "provider": {"sort": "exacto"}})) == ["fake-a", "fake-b"]


# -- variants with their own endpoint pools


@pytest.mark.parametrize(
    ("variant", "pool"),
    [(":free", ["fake-c/free"]), (":extended", ["fake-c/extended"]), (":thinking", ["fake-a/thinking"])],
)
def test_pool_variants_select_their_own_endpoints(routing, variant, pool):
    assert slugs(plan(routing, {"model": "vr/m" + variant})) == pool
    assert not set(pool) & set(slugs(plan(routing, {"model": "vr/m"})))


def test_free_variant_of_a_model_served_free_by_standard_endpoints(routing):
    assert slugs(plan(routing, {"model": "vr/gratis:free"})) == ["fake-c"]


def test_free_variant_that_ended_is_404_free_variant_ended(routing):
    with pytest.raises(ApiError) as info:
        plan(routing, {"model": "vr/nosearch:free"})
    error = info.value.body()["error"]
    assert error["code"] == 404
    assert error["availability"]["code"] == "free_variant_ended"
    assert error["availability"]["fallback_models"] == ["vr/nosearch"]  # the paid slug


def test_pool_variant_without_endpoints_is_404(routing):
    with pytest.raises(ApiError) as info:
        plan(routing, {"model": "vr/nosearch:extended"})
    assert info.value.body()["error"]["availability"]["code"] == "no_endpoints"


def test_online_keeps_endpoints_with_native_search(routing):
    p = plan(routing, {"model": "vr/m:online"})
    assert slugs(p) == ["fake-b"]
    assert p.plugins == [{"id": "web"}]
    assert slugs(plan(routing, {"model": "vr/m", "plugins": [{"id": "web"}]})) == ["fake-b"]
    with pytest.raises(ApiError) as info:
        plan(routing, {"model": "vr/nosearch:online"})
    assert info.value.status == 404


# -- routers


def auto(cost_tier: str | None = None, **plugin: Any) -> dict[str, Any]:
    settings = {"id": "auto-router", "allowed_models": ["auto/*"], **plugin}
    if cost_tier:
        settings["cost_tier"] = cost_tier
    return {"model": "openrouter/auto", "plugins": [settings]}


def models_of(p) -> list[str]:
    return [c.model.id for c in p.candidates]


def test_auto_cost_tier_low_picks_the_cheapest_and_high_the_dearest(routing):
    assert models_of(plan(routing, auto()))[0] == "auto/cheap"  # low is the default
    assert models_of(plan(routing, auto("low"))) == ["auto/cheap", "auto/mid", "auto/dear"]
    assert models_of(plan(routing, auto("high"))) == ["auto/dear", "auto/mid", "auto/cheap"]
    assert models_of(plan(routing, auto("medium")))[0] == "auto/mid"


def test_auto_allowed_and_excluded_models_take_wildcards(routing):
    assert models_of(plan(routing, auto(excluded_models=["auto/c*"]))) == ["auto/mid", "auto/dear"]
    assert models_of(plan(routing, auto(allowed_models=["fam/widget-?"]))) == ["fam/widget-1", "fam/widget-2"]


def test_auto_only_considers_tool_capable_models_for_tool_calls(routing):
    body = {**auto("high"), "tools": [{"type": "function", "function": {"name": "f"}}]}
    assert models_of(plan(routing, body)) == ["auto/dear", "auto/cheap"]


def test_auto_with_nothing_allowed_is_404(routing):
    with pytest.raises(ApiError) as info:
        plan(routing, auto(allowed_models=["nobody/*"]))
    assert info.value.status == 404
    assert "No models match" in info.value.message


def test_auto_is_sticky_per_session(routing):
    assert models_of(plan(routing, auto("low"), session="s1"))[0] == "auto/cheap"
    # The same session keeps its model while it is among the top candidates; another one does not.
    assert models_of(plan(routing, auto("medium"), session="s1"))[0] == "auto/cheap"
    assert models_of(plan(routing, auto("medium"), session="s2"))[0] == "auto/mid"
    assert models_of(plan(routing, auto("medium")))[0] == "auto/mid"


def test_auto_reports_the_auto_strategy(routing):
    assert plan(routing, auto()).strategy == "auto"
    assert plan(routing, {"model": "openrouter/free"}).strategy == "free"
    assert plan(routing, {"model": "~fam/widget-latest"}).strategy == "latest"


def test_openrouter_free_picks_free_endpoints_only(routing):
    seen = set()
    for _ in range(10):
        p = plan(routing, {"model": "openrouter/free"})
        assert all(c.endpoint.pricing.is_free for c in p.candidates)
        seen.add(p.candidates[0].model.id)
    assert seen == {"vr/m", "vr/gratis"}  # at random among the free models


def test_latest_resolves_to_the_newest_of_the_family(routing):
    assert models_of(plan(routing, {"model": "~fam/widget-latest"})) == ["fam/widget-2"]
    with pytest.raises(ApiError) as info:
        plan(routing, {"model": "~fam/gadget-latest"})
    assert info.value.status == 400  # no unrelated fallback


# -- over HTTP: what the upstream gets, the model reported and the bill


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fake_a: Any, fake_b: Any, fake_c: Any) -> Iterator[Gateway]:
    with running_gateway(tmp_path_factory, catalog(fake_a.base_url, fake_b.base_url, fake_c.base_url)) as gateway:
        yield gateway


def test_online_sends_web_search_options_upstream(gw, key, fake_b):
    answer = chat(gw, key, {"model": "vr/m:online"})
    assert answer.status == 200, answer.body
    assert answer.body["model"] == "vr/m"
    sent = fake_b.fake.last_request.json
    assert sent["model"] == "m-b" and sent["web_search_options"] == {}
    assert chat(gw, key, {"model": "vr/nosearch:online"}).status == 404


def test_free_variant_costs_nothing(gw, key, fake_c):
    fake_c.fake.script(Reply("free!", prompt_tokens=50, completion_tokens=5))
    answer = chat(gw, key, {"model": "vr/m:free"})
    assert answer.status == 200, answer.body
    assert fake_c.fake.last_request.json["model"] == "m-c-free"
    assert answer.cost == 0 and answer.usage["completion_tokens"] == 5


def test_openrouter_free_costs_nothing_and_names_the_model(gw, key):
    answer = chat(gw, key, {"model": "openrouter/free"})
    assert answer.status == 200, answer.body
    assert answer.body["model"] in {"vr/m", "vr/gratis"} and answer.cost == 0


def test_nitro_bills_the_priority_tier_that_served(gw, key, fake_a):
    seed_throughput(gw.state.routing, "vr/m", "fake-a/priority", 1000)
    fake_a.fake.script(Reply("fast", prompt_tokens=100, completion_tokens=10))
    answer = chat(gw, key, {"model": "vr/m:nitro"})
    assert answer.status == 200, answer.body
    assert fake_a.fake.last_request.json["model"] == "m-a-prio"
    assert answer.cost == cost_of(answer.usage, per_million(4, 4)) == Decimal("0.00044")


def test_extended_uses_the_extended_endpoint(gw, key, fake_c):
    answer = chat(gw, key, {"model": "vr/m:extended"})
    assert answer.status == 200, answer.body
    assert fake_c.fake.last_request.json["model"] == "m-c-ext"


def test_auto_answers_with_the_concrete_model_at_its_price(gw, key, fake_c):
    fake_c.fake.script(Reply("dear", prompt_tokens=10, completion_tokens=10))
    answer = chat(gw, key, auto("max"))
    assert answer.status == 200, answer.body
    assert answer.body["model"] == "auto/dear"
    assert answer.cost == cost_of(answer.usage, per_million(20, 20))
    assert "plugins" not in fake_c.fake.last_request.json
    assert chat(gw, key, auto(allowed_models=["nobody/*"])).status == 404


def test_latest_answers_with_the_concrete_model(gw, key, fake_b):
    answer = chat(gw, key, {"model": "~fam/widget-latest"})
    assert answer.status == 200, answer.body
    assert answer.body["model"] == "fam/widget-2"
    assert fake_b.fake.last_request.json["model"] == "w2"


def test_auto_ranks_by_the_price_of_live_endpoints():
    cfg = catalog()
    cfg["providers"].append(provider("off", enabled=False))
    mid = next(m for m in cfg["models"] if m["id"] == "auto/mid")
    mid["endpoints"].append(endpoint("off", "mid-off", 0.01, 0.01))  # switched off: not a price anyone pays
    assert models_of(plan(routing_for(cfg), auto("low")))[0] == "auto/cheap"


def test_auto_sessions_are_bounded(routing, monkeypatch):
    from omnirouter.routing import routers

    monkeypatch.setattr(routers, "MAX_SESSIONS", 20)
    router = routing.planner.routers["openrouter/auto"]
    for i in range(100):
        plan(routing, auto(), session=f"s{i}")
    assert len(router._sessions) <= 20
    assert "s99" in router._sessions
