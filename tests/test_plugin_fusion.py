"""The fusion plugin: a panel answers first, then the request's model writes the answer from theirs,
in every format, streamed and not, each call billed and recorded exactly."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import anthropic
import httpx
import openai
import pytest
from openrouter import OpenRouter

from omnirouter.store import repo
from omnirouter.testing import Reply, Status
from tests.conftest import ALPHA_PRICES, BETA_PRICES, REASONER_PRICES, standard_config
from tests.gateway import Gateway, generation, key_usage

QUESTION = "Which is larger, 9.11 or 9.9?"
PANEL = ["test/alpha", "test/beta"]
FINAL = "test/reasoner"  # served by fake_a, after the panel's alpha call there
FUSION = {"id": "fusion", "analysis_models": PANEL}


def D(prices: dict[str, str], name: str) -> Decimal:
    return Decimal(prices[name])


ALPHA_COST = 10 * D(ALPHA_PRICES, "prompt") + 4 * D(ALPHA_PRICES, "completion")
BETA_COST = 11 * D(BETA_PRICES, "prompt") + 5 * D(BETA_PRICES, "completion") + D(BETA_PRICES, "request")
FINAL_COST = 200 * D(REASONER_PRICES, "prompt") + 6 * D(REASONER_PRICES, "completion")


def script(fake_a: Any, fake_b: Any) -> None:
    fake_a.fake.script(
        Reply("Alpha: 9.9 is larger.", prompt_tokens=10, completion_tokens=4),
        Reply("9.9 is larger than 9.11.", prompt_tokens=200, completion_tokens=6),
    )
    fake_b.fake.script(Reply("Beta: 9.9, since .90 > .11.", prompt_tokens=11, completion_tokens=5))


def ask(
    gw: Gateway, key: str, client: str, stream: bool, plugins: list[dict[str, Any]] | None = None
) -> tuple[str, str]:
    """The answer's text and its generation id, through one SDK in one format."""
    plugins = [FUSION] if plugins is None else plugins
    messages = [{"role": "user", "content": QUESTION}]
    if client == "openai-chat":
        sdk = openai.OpenAI(base_url=gw.api, api_key=key, max_retries=0)
        if stream:
            chunks = list(sdk.chat.completions.create(model=FINAL, messages=messages, stream=True,
                                                      extra_body={"plugins": plugins}))  # fmt: skip
            return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices), chunks[0].id
        done = sdk.chat.completions.create(model=FINAL, messages=messages, extra_body={"plugins": plugins})
        return done.choices[0].message.content or "", done.id
    if client == "openai-responses":
        sdk = openai.OpenAI(base_url=gw.api, api_key=key, max_retries=0)
        if stream:
            events = list(
                sdk.responses.create(model=FINAL, input=QUESTION, stream=True, extra_body={"plugins": plugins})
            )
            final = next(e for e in events if e.type == "response.completed").response
        else:
            final = sdk.responses.create(model=FINAL, input=QUESTION, extra_body={"plugins": plugins})
        return final.output_text, "gen-" + final.id.removeprefix("resp_")
    if client == "anthropic":
        sdk = anthropic.Anthropic(base_url=gw.url + "/api", auth_token=key, max_retries=0)
        if stream:
            with sdk.messages.stream(model=FINAL, max_tokens=256, messages=messages,
                                     extra_body={"plugins": plugins}) as s:  # fmt: skip
                message = s.get_final_message()
        else:
            message = sdk.messages.create(
                model=FINAL, max_tokens=256, messages=messages, extra_body={"plugins": plugins}
            )
        return "".join(b.text for b in message.content if b.type == "text"), message.id
    assert client == "openrouter"
    with OpenRouter(api_key=key, server_url=gw.api) as sdk:
        if stream:
            chunks = list(sdk.chat.send(model=FINAL, messages=messages, plugins=plugins, stream=True))
            return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices), chunks[0].id
        res = sdk.chat.send(model=FINAL, messages=messages, plugins=plugins)
        return str(res.choices[0].message.content), res.id


def record(gw: Gateway, gen_id: str) -> dict[str, Any]:
    """The generation's stored row (its `plugins` record is not part of GET /generation)."""
    gw.flush()

    async def read() -> dict[str, Any]:
        async with gw.state.db.engine.connect() as conn:
            return await repo.get_generation(conn, gen_id)

    assert gw.loop is not None
    return asyncio.run_coroutine_threadsafe(read(), gw.loop).result(timeout=10)


def credits_usage(gw: Gateway) -> Decimal:
    with gw.admin() as admin:
        return json.loads(admin.get("/credits").text, parse_float=Decimal)["data"]["total_usage"]


CLIENTS = ["openai-chat", "openai-responses", "anthropic", "openrouter"]


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("client", CLIENTS)
def test_panel_then_final_answer_billed_and_recorded(make_gateway, fake_a, fake_b, client, stream):
    gw = make_gateway()
    key = gw.create_key()["key"]
    script(fake_a, fake_b)
    text, gen_id = ask(gw, key, client, stream)
    assert text == "9.9 is larger than 9.11."

    # Each panelist got the conversation alone, not streamed; the final model got their answers.
    alpha, final = fake_a.fake.requests
    (beta,) = fake_b.fake.requests
    for panelist in (alpha.json, beta.json):
        assert not panelist.get("stream")
        assert [m["role"] for m in panelist["messages"]] == ["user"]
        assert QUESTION in json.dumps(panelist["messages"])
    assert (alpha.json["model"], beta.json["model"], final.json["model"]) == ("alpha-upstream", "beta-upstream",
                                                                             "reasoner-up")  # fmt: skip
    assert final.json.get("stream", False) is stream
    context = final.json["messages"][0]
    assert context["role"] == "system" and final.json["messages"][-1]["role"] == "user"
    assert '<panel_answer model="test/alpha">\nAlpha: 9.9 is larger.\n</panel_answer>' in context["content"]
    assert '<panel_answer model="test/beta">\nBeta: 9.9, since .90 > .11.\n</panel_answer>' in context["content"]

    # Three generations, each exact; the final one names the panel's.
    final_gen = generation(gw, key, gen_id)
    assert (final_gen["model"], final_gen["total_cost"], final_gen["streamed"]) == (FINAL, FINAL_COST, stream)
    panel = record(gw, gen_id)["plugins"]["fusion"]
    assert [p["model"] for p in panel] == PANEL
    costs = {}
    for entry in panel:
        sub = generation(gw, key, entry["id"])
        assert sub["model"] == entry["model"] and sub["streamed"] is False and sub["finish_reason"] == "stop"
        costs[sub["model"]] = sub["total_cost"]
    assert costs == {"test/alpha": ALPHA_COST, "test/beta": BETA_COST}
    total = ALPHA_COST + BETA_COST + FINAL_COST
    assert key_usage(gw, key) == total
    assert credits_usage(gw) == total


def test_a_failed_panelist_leaves_the_rest(gateway, api_key, fake_a, fake_b):
    fake_a.fake.script(Reply("Alpha: 9.9.", prompt_tokens=10, completion_tokens=4), Reply("final answer"))
    fake_b.fake.script(Status(500))  # beta fails (its one endpoint; the gateway may retry it once)
    fake_b.fake.always(Status(500))
    text, gen_id = ask(gateway, api_key, "openai-chat", False)
    assert text == "final answer"
    context = fake_a.fake.last_request.json["messages"][0]["content"]
    assert "test/alpha" in context and "test/beta" not in context
    assert "1 more panel model(s) failed and are left out." in context
    failed = next(p for p in record(gateway, gen_id)["plugins"]["fusion"] if p["model"] == "test/beta")
    assert failed["error"]
    assert generation(gateway, api_key, failed["id"])["total_cost"] == 0  # recorded, not charged


def test_every_panelist_failing_fails_the_request(gateway, api_key, fake_a, fake_b):
    fake_a.fake.always(Status(500))
    fake_b.fake.always(Status(500))
    with gateway.client(api_key) as c:
        r = c.post("/chat/completions", json={"model": FINAL, "messages": [{"role": "user", "content": QUESTION}],
                                              "plugins": [FUSION]})  # fmt: skip
    assert r.status_code == 502, r.text
    message = r.json()["error"]["message"]
    assert message.startswith("fusion: every analysis model failed (test/alpha: ")
    assert "test/beta: " in message
    assert all(req.json["model"] != "reasoner-up" for req in fake_a.fake.requests)  # no final call
    assert key_usage(gateway, api_key) == 0


def test_sub_calls_do_not_fuse_again(gateway, api_key, fake_a):
    """A request at depth 1 (what the panel's sub-calls carry) runs as if fusion were not named."""
    fake_a.fake.script(Reply("plain"))
    with gateway.client(api_key) as c:
        r = c.post("/chat/completions", headers={"x-openrouter-fusion-depth": "1"},
                   json={"model": "test/alpha", "messages": [{"role": "user", "content": QUESTION}],
                         "plugins": [FUSION]})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "plain"
    (only,) = fake_a.fake.requests  # no panel ran
    assert [m["role"] for m in only.json["messages"]] == ["user"]


@pytest.mark.parametrize("depth", ["2", "-1", "deep"])
def test_a_depth_beyond_the_limit_is_refused(gateway, api_key, fake_a, depth):
    with gateway.client(api_key) as c:
        r = c.post("/chat/completions", headers={"x-openrouter-fusion-depth": depth},
                   json={"model": "test/alpha", "messages": [{"role": "user", "content": "hi"}]})  # fmt: skip
    assert r.status_code == 400
    assert "x-openrouter-fusion-depth" in r.json()["error"]["message"]
    assert fake_a.fake.requests == []


@pytest.mark.parametrize(
    ("plugin", "message"),
    [
        ({"id": "fusion"}, "fusion: analysis model '~anthropic/claude-opus-latest' is not in this gateway's catalog"),
        ({"id": "fusion", "analysis_models": ["test/alpha", "nope/nothing"]}, "'nope/nothing' is not in this"),
        ({"id": "fusion", "analysis_models": ["test/alpha"] * 9}, "at most 8"),
        ({"id": "fusion", "analysis_models": []}, "list of 1 to 8 model ids"),
        ({"id": "fusion", "preset": "general-high"}, "name the panel in analysis_models"),
    ],
)
def test_bad_panels_are_a_clear_400(gateway, api_key, fake_a, fake_b, plugin, message):
    sdk = anthropic.Anthropic(base_url=gateway.url + "/api", auth_token=api_key, max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as raised:
        sdk.messages.create(model=FINAL, max_tokens=16, messages=[{"role": "user", "content": "hi"}],
                            extra_body={"plugins": [plugin]})  # fmt: skip
    assert message in raised.value.body["error"]["message"]  # type: ignore[index]
    assert fake_a.fake.requests == [] and fake_b.fake.requests == []


def test_disabled_fusion_does_nothing(gateway, api_key, fake_a, fake_b):
    fake_a.fake.script(Reply("alone"))
    text, _ = ask(gateway, api_key, "openai-chat", False, plugins=[{**FUSION, "enabled": False}])
    assert text == "alone"
    assert len(fake_a.fake.requests) == 1 and fake_b.fake.requests == []


def test_final_call_keeps_leading_system_messages_first(gateway, api_key, fake_a, fake_b):
    script(fake_a, fake_b)
    with httpx.Client(base_url=gateway.api, headers={"Authorization": f"Bearer {api_key}"}, timeout=30) as c:
        r = c.post("/chat/completions", json={
            "model": FINAL, "plugins": [FUSION],
            "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": QUESTION}],
        })  # fmt: skip
    assert r.status_code == 200, r.text
    sent = fake_a.fake.last_request.json["messages"]
    assert [m["role"] for m in sent] == ["system", "system", "user"]
    assert sent[0]["content"] == "Be terse." and "<panel_answer" in sent[1]["content"]


def test_the_fusion_model_alias_answers_with_the_plugins_model(gateway, api_key, fake_a, fake_b):
    """`openrouter/fusion` runs fusion, and the plugin's `model` writes the answer."""
    script(fake_a, fake_b)
    sdk = openai.OpenAI(base_url=gateway.api, api_key=api_key, max_retries=0)
    raw = sdk.chat.completions.with_raw_response.create(
        model="openrouter/fusion",
        messages=[{"role": "user", "content": QUESTION}],
        extra_body={"plugins": [{**FUSION, "model": FINAL}]},
        extra_headers={"X-OpenRouter-Metadata": "enabled"},
    )
    done = raw.parse()
    assert (done.model, done.choices[0].message.content) == (FINAL, "9.9 is larger than 9.11.")
    assert json.loads(raw.http_response.text)["openrouter_metadata"]["strategy"] == "fusion"
    assert "<panel_answer" in fake_a.fake.last_request.json["messages"][0]["content"]
    assert key_usage(gateway, api_key) == ALPHA_COST + BETA_COST + FINAL_COST


def test_the_fusion_model_alias_without_a_servable_default_is_a_400(gateway, api_key, fake_a):
    with gateway.client(api_key) as c:
        r = c.post(
            "/chat/completions", json={"model": "openrouter/fusion", "messages": [{"role": "user", "content": "hi"}]}
        )
    assert r.status_code == 400
    assert (
        r.json()["error"]["message"] == "fusion: model '~anthropic/claude-opus-latest' is not in this gateway's catalog"
    )
    assert fake_a.fake.requests == []


def test_the_final_call_must_fit_the_key_limit_with_the_panels_answers(make_gateway, fake_a, fake_b):
    """The final prompt grows by the panel's answers: its worst case is held again before it is sent."""
    config = standard_config(fake_a.base_url, fake_b.base_url)
    dear = {"prompt": "0.0001", "completion": "0.0001"}  # $100 per million tokens, prompt and completion
    endpoint = {"provider": "fake-a", "upstream_model": "dear-up", "pricing": dear}
    config["models"].append({"id": "test/dear", "name": "Dear", "context_length": 8192, "endpoints": [endpoint]})
    gw = make_gateway(config)
    # Before the panel, the final call's worst case is ~50 prompt and 10 completion tokens: ~$0.006. The
    # panel's answers and the fusion prompt add ~200 tokens: ~$0.026, more than the $0.01 limit leaves.
    key = gw.create_key(limit=0.01)["key"]
    script(fake_a, fake_b)
    with gw.client(key) as c:
        r = c.post("/chat/completions", json={"model": "test/dear", "max_tokens": 10, "plugins": [FUSION],
                                              "messages": [{"role": "user", "content": QUESTION}]})  # fmt: skip
    assert r.status_code in (402, 403), r.text
    assert [req.json["model"] for req in fake_a.fake.requests] == ["alpha-upstream"]  # no final call
    assert key_usage(gw, key) == ALPHA_COST + BETA_COST  # the panel ran and is paid for


def test_panelists_run_the_server_tools_the_plugin_names(gateway, api_key, fake_a, fake_b):
    """`tools` of the plugin go to each panelist, whose server-tool loop the gateway runs."""
    fake_a.fake.script(
        Reply("", tool_calls=[{"id": "call_dt1", "name": "datetime", "arguments": {}}], finish_reason="tool_calls",
              prompt_tokens=10, completion_tokens=4),
        Reply("Alpha: it is noon.", prompt_tokens=20, completion_tokens=5),
        Reply("Noon, say both.", prompt_tokens=200, completion_tokens=6),
    )  # fmt: skip
    fake_b.fake.script(Reply("Beta: 9.9, since .90 > .11.", prompt_tokens=11, completion_tokens=5))
    plugin = {**FUSION, "tools": [{"type": "openrouter:datetime"}]}
    text, gen_id = ask(gateway, api_key, "openai-chat", False, plugins=[plugin])
    assert text == "Noon, say both."
    first, second, final = fake_a.fake.requests
    assert [t["function"]["name"] for t in first.json["tools"]] == ["datetime"]
    assert second.json["messages"][-1]["role"] == "tool"  # the gateway answered the tool call
    assert "tools" not in final.json
    assert (
        '<panel_answer model="test/alpha">\nAlpha: it is noon.\n</panel_answer>' in final.json["messages"][0]["content"]
    )
    alpha = next(p for p in record(gateway, gen_id)["plugins"]["fusion"] if p["model"] == "test/alpha")
    both_steps = (10 + 20) * D(ALPHA_PRICES, "prompt") + (4 + 5) * D(ALPHA_PRICES, "completion")
    assert generation(gateway, api_key, alpha["id"])["total_cost"] == both_steps
    assert key_usage(gateway, api_key) == both_steps + BETA_COST + FINAL_COST
