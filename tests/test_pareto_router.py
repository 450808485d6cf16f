"""openrouter/pareto-code: the cheapest model that codes well enough (or the best coder within a
price cap), from the catalog's coding scores, in every format; the scores in /models; the import."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from openrouter import OpenRouter

from omnirouter.catalog.importer import import_openrouter_models
from omnirouter.catalog.loader import load_catalog
from omnirouter.testing import Reply, Status
from tests.gateway import Gateway
from tests.sdk_ts_run import run_steps
from tests.spec_validation import spec_available, validate_response

ROUTER = "openrouter/pareto-code"
CODE = [{"role": "user", "content": "Write a Python function that reverses a list."}]


def model(model_id: str, provider: str, score: float | None, prompt_per_million: str, **extra: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": model_id,
        "name": model_id,
        "context_length": 32768,
        "supported_parameters": ["max_tokens", "temperature", "tools"],
        "endpoints": [{
            "provider": provider,
            "upstream_model": model_id.split("/")[1] + "-up",
            "pricing": {"prompt": str(float(prompt_per_million) / 1e6), "completion": "0.00001"},
        }],
        **extra,
    }  # fmt: skip
    if score is not None:
        entry["coding_score"] = score
    return entry


def config(a: str, b: str) -> dict[str, Any]:
    return {
        "providers": [
            {"slug": "fake-a", "name": "Fake A", "api": "openai", "base_url": a},
            {"slug": "fake-b", "name": "Fake B", "api": "openai", "base_url": b},
        ],
        "models": [
            model("code/weak", "fake-a", 0.4, "0.5", supported_parameters=["max_tokens"]),  # no tools
            model("code/mid", "fake-a", 0.7, "1"),
            model("code/mid-plus", "fake-b", 0.75, "1"),  # as cheap as code/mid, scores higher
            model("code/strong", "fake-a", 0.9, "3"),
            model("code/strongest", "fake-b", 0.95, "10"),
            model("code/unscored", "fake-a", None, "0.1"),  # cheapest, but no score: never chosen
        ],
    }


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fake_a: Any, fake_b: Any):
    g = Gateway(tmp_path_factory.mktemp("pareto"), config(fake_a.base_url, fake_b.base_url)).start()
    yield g
    g.stop()


@pytest.fixture
def key(gw: Gateway) -> str:
    return gw.create_key()["key"]


def chosen(gw: Gateway, key: str, plugin: dict[str, Any] | None, **extra: Any) -> str:
    plugins = [{"id": "pareto-router", **plugin}] if plugin is not None else []
    with gw.client(key) as c:
        r = c.post("/chat/completions", json={"model": ROUTER, "messages": CODE, "plugins": plugins, **extra})
    assert r.status_code == 200, r.text
    return r.json()["model"]


@pytest.mark.parametrize(
    ("plugin", "model_id"),
    [
        # No option: OpenRouter's high tier (0.66); code/mid and code/mid-plus cost the same: the higher score.
        (None, "code/mid-plus"),
        ({}, "code/mid-plus"),
        ({"min_coding_score": 0.3}, "code/weak"),
        ({"min_coding_score": 0.8}, "code/strong"),
        ({"min_coding_score": 0.95}, "code/strongest"),
        ({"min_coding_score": 0.8, "max_price": 5}, "code/strong"),
        # max_price alone: the best coder within the cap.
        ({"max_price": 5}, "code/strong"),
        ({"max_price": 1}, "code/mid-plus"),
        ({"max_price": 100, "price_source": "weighted_avg"}, "code/strongest"),
        ({"max_price": 0.5}, "code/weak"),
        # Disabled: the defaults.
        ({"min_coding_score": 0.3, "enabled": False}, "code/mid-plus"),
    ],
)
def test_the_router_picks_by_score_and_price(gw, key, fake_a, fake_b, plugin, model_id):
    assert chosen(gw, key, plugin) == model_id


def test_tools_need_a_model_that_takes_tools(gw, key):
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]
    assert chosen(gw, key, {"min_coding_score": 0.3}, tools=tools) == "code/mid-plus"  # not code/weak
    with gw.client(key) as c:
        r = c.post("/chat/completions", json={"model": ROUTER, "messages": CODE, "tools": tools,
                                              "plugins": [{"id": "pareto-router", "max_price": 0.5}]})  # fmt: skip
    assert r.status_code == 404, r.text


def test_the_next_candidates_are_fallbacks_in_order(gw, key, fake_a, fake_b):
    fake_b.fake.always(Status(503))  # code/mid-plus's only endpoint is down
    fake_a.fake.script(Reply("def rev(xs): return xs[::-1]"))
    with gw.client(key) as c:
        r = c.post("/chat/completions", headers={"X-OpenRouter-Metadata": "enabled"},
                   json={"model": ROUTER, "messages": CODE})  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "code/mid"
    meta = body["openrouter_metadata"]
    assert meta["strategy"] == "pareto" and meta["requested"] == ROUTER
    assert [e["model"] for e in meta["endpoints"]["available"]] == ["code/mid-plus", "code/mid", "code/strong"]


@pytest.mark.parametrize(
    ("plugin", "status", "message"),
    [
        (
            {"min_coding_score": 0.99, "max_price": 2},
            404,
            "none has a coding score of at least 0.99 and an input price",
        ),
        ({"min_coding_score": 1.5}, 400, "min_coding_score must be between 0 and 1"),
        ({"max_price": -1}, 400, "max_price must be a number of at least 0"),
        ({"max_price": "cheap"}, 400, "max_price must be a number"),
        ({"price_source": "vibes"}, 400, "price_source must be one of prompt, weighted_avg"),
    ],
)
def test_no_candidate_is_a_404_and_bad_options_a_400(gw, key, fake_a, fake_b, plugin, status, message):
    sdk = anthropic.Anthropic(base_url=gw.url + "/api", auth_token=key, max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as raised:
        sdk.messages.create(model=ROUTER, max_tokens=64, messages=CODE,
                            extra_body={"plugins": [{"id": "pareto-router", **plugin}]})  # fmt: skip
    assert raised.value.status_code == status
    assert message in raised.value.body["error"]["message"]  # type: ignore[index]
    assert fake_a.fake.requests == [] and fake_b.fake.requests == []


PLUGIN = {"id": "pareto-router", "min_coding_score": 0.8}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_every_format_and_sdk(gw, key, fake_a, stream):
    """code/strong (fake_a) answers in chat, responses and messages, through the three SDKs."""
    fake_a.fake.always(Reply("def rev(xs): return xs[::-1]"))
    oa = openai.OpenAI(base_url=gw.api, api_key=key, max_retries=0)
    extra = {"plugins": [PLUGIN]}
    if stream:
        chunks = list(oa.chat.completions.create(model=ROUTER, messages=CODE, stream=True, extra_body=extra))
        assert {c.model for c in chunks} == {"code/strong"}
        events = list(oa.responses.create(model=ROUTER, input=CODE[0]["content"], stream=True, extra_body=extra))
        assert next(e for e in events if e.type == "response.completed").response.model == "code/strong"
    else:
        assert oa.chat.completions.create(model=ROUTER, messages=CODE, extra_body=extra).model == "code/strong"
        assert oa.responses.create(model=ROUTER, input=CODE[0]["content"], extra_body=extra).model == "code/strong"
    an = anthropic.Anthropic(base_url=gw.url + "/api", auth_token=key, max_retries=0)
    if stream:
        with an.messages.stream(model=ROUTER, max_tokens=64, messages=CODE, extra_body=extra) as s:
            assert s.get_final_message().model == "code/strong"
    else:
        assert an.messages.create(model=ROUTER, max_tokens=64, messages=CODE, extra_body=extra).model == "code/strong"
    with OpenRouter(api_key=key, server_url=gw.api) as sdk:
        if stream:
            chunks = list(sdk.chat.send(model=ROUTER, messages=CODE, plugins=[PLUGIN], stream=True))
            assert {c.model for c in chunks} == {"code/strong"}
        else:
            assert sdk.chat.send(model=ROUTER, messages=CODE, plugins=[PLUGIN]).model == "code/strong"
    assert {r.json["model"] for r in fake_a.fake.requests} == {"strong-up"}


def test_models_show_the_coding_score_as_the_aa_coding_index(gw, key):
    with gw.client(key) as c:
        r = c.get("/models")
    assert r.status_code == 200
    if spec_available():
        validate_response("getModels", r.json())
    by_id = {m["id"]: m for m in r.json()["data"]}
    assert by_id["code/strong"]["benchmarks"] == {
        "artificial_analysis": {"intelligence_index": None, "coding_index": 90.0, "agentic_index": None},
        "design_arena": [],
    }
    assert "benchmarks" not in by_id["code/unscored"]


def test_a_coding_score_outside_0_to_1_is_a_config_error(tmp_path: Path):
    cfg = config("http://127.0.0.1:9", "http://127.0.0.1:9")
    cfg["models"] = [model("code/bad", "fake-a", 63.2, "1")]
    with pytest.raises(ValueError, match=r"models\[0\].coding_score"):
        load_catalog(config=cfg, env={}, sandbox=False, data_dir=tmp_path)


def test_catalog_import_reads_the_aa_coding_index(tmp_path: Path):
    dump = tmp_path / "models.json"
    entry = {
        "id": "x-ai/grok-code",
        "name": "Grok Code",
        "created": 1750000000,
        "context_length": 256000,
        "architecture": {"modality": "text->text", "input_modalities": ["text"], "output_modalities": ["text"],
                         "tokenizer": "Grok"},
        "pricing": {"prompt": "0.0000002", "completion": "0.0000015"},
        "top_provider": {"context_length": 256000, "max_completion_tokens": 10000, "is_moderated": False},
        "supported_parameters": ["tools"],
        "benchmarks": {"artificial_analysis": {"intelligence_index": 50.1, "coding_index": 63.2,
                                               "agentic_index": None}, "design_arena": []},
    }  # fmt: skip
    unscored = {**entry, "id": "x-ai/grok-plain", "benchmarks": {"design_arena": []}}
    dump.write_text(json.dumps({"data": [entry, unscored]}))
    import_openrouter_models(dump, tmp_path / "data")
    catalog = load_catalog(config=None, env={"OPENROUTER_API_KEY": "k"}, sandbox=False, data_dir=tmp_path / "data")
    assert catalog.model("x-ai/grok-code").coding_score == 0.632
    assert catalog.model("x-ai/grok-plain").coding_score is None


def test_typescript_sdk(gw, key, fake_a, fake_b):
    """tests/sdk_ts/fusion_pareto.mjs: fusion (streamed and not) and the pareto router through @openrouter/sdk."""
    config = {"serverURL": gw.api, "apiKey": key, "panel": ["code/mid", "code/mid-plus"], "finalModel": "code/strong",
              "paretoModel": "code/strong"}  # fmt: skip
    results = run_steps("fusion_pareto.mjs", config)
    assert set(results) == {"fusion.chat.send", "fusion.chat.send(stream)", "pareto.chat.send", "pareto.models.list"}
    assert all(r["ok"] for r in results.values()), results
    # Two fused answers (a panel of two each) and one routed one.
    assert [r.json["model"] for r in fake_b.fake.requests] == ["mid-plus-up"] * 2
    assert sorted(r.json["model"] for r in fake_a.fake.requests) == ["mid-up"] * 2 + ["strong-up"] * 3
