"""Server tools (openrouter:datetime, openrouter:web_search, openrouter:web_fetch) run by the gateway
in a loop with the model, in the three client formats, streamed and not, billed per step."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import anthropic
import openai
import pytest
from openrouter import OpenRouter

from omnirouter.testing import Reply, Status
from omnirouter.testing.fakes.pages import FakePages
from omnirouter.testing.fakes.search import DEFAULT_PAGES, FakeSearch
from tests.conftest import ALPHA_PRICES, standard_config
from tests.gateway import Gateway, generation, key_usage
from tests.sdk_ts_run import run_steps

ASK = [{"role": "user", "content": "what time is it?"}]
DATETIME = {"type": "openrouter:datetime"}
WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}


def price(prompt: int, completion: int) -> Decimal:
    return prompt * Decimal(ALPHA_PRICES["prompt"]) + completion * Decimal(ALPHA_PRICES["completion"])


def calls_datetime(**tokens: int) -> Reply:
    return Reply("", tool_calls=[{"id": "call_dt1", "name": "datetime", "arguments": {}}],
                 finish_reason="tool_calls", **tokens)  # fmt: skip


def _tool_result(request: dict) -> dict:
    """The datetime result the gateway gave the model, from the second step's request."""
    tool_messages = [m for m in request["messages"] if m["role"] == "tool"]
    assert len(tool_messages) == 1
    return json.loads(tool_messages[0]["content"])


def test_chat_datetime_loop_non_streaming(gateway, api_key, fake_a):
    fake_a.fake.script(calls_datetime(prompt_tokens=20, completion_tokens=5),
                       Reply("It is noon.", prompt_tokens=40, completion_tokens=4))  # fmt: skip
    client = openai.OpenAI(base_url=gateway.api, api_key=api_key)
    before = datetime.now(UTC)
    raw = client.chat.completions.with_raw_response.create(model="test/alpha", messages=ASK, tools=[DATETIME])
    completion = raw.parse()
    assert completion.choices[0].message.content == "It is noon."
    assert completion.choices[0].finish_reason == "stop"
    assert not completion.choices[0].message.tool_calls
    # The model saw a function, then the tool's answer after its own call.
    first, second = fake_a.fake.requests[-2].json, fake_a.fake.requests[-1].json
    assert [t["function"]["name"] for t in first["tools"]] == ["datetime"]
    assert second["messages"][-2]["tool_calls"][0]["id"] == "call_dt1"
    result = _tool_result(second)
    assert result["timezone"] == "UTC"
    stamp = datetime.fromisoformat(result["datetime"].replace("Z", "+00:00"))
    assert before - timedelta(seconds=1) <= stamp <= datetime.now(UTC)
    body = json.loads(raw.http_response.text, parse_float=Decimal)
    usage = body["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (60, 9)
    assert usage["cost"] == price(20, 5) + price(40, 4)
    assert usage["server_tool_use_details"]["tool_calls_executed"] == 1
    gen = generation(gateway, api_key, completion.id)
    assert len(gen["provider_responses"]) == 2
    assert gen["total_cost"] == price(20, 5) + price(40, 4)
    assert (gen["tokens_prompt"], gen["tokens_completion"]) == (60, 9)
    assert key_usage(gateway, api_key) == price(20, 5) + price(40, 4)


def test_chat_datetime_loop_streaming(gateway, api_key, fake_a):
    fake_a.fake.script(Reply("Let me check. ", tool_calls=[{"id": "call_dt2", "name": "datetime", "arguments": {}}],
                             finish_reason="tool_calls", prompt_tokens=20, completion_tokens=6),
                       Reply("It is noon.", prompt_tokens=40, completion_tokens=4))  # fmt: skip
    client = openai.OpenAI(base_url=gateway.api, api_key=api_key)
    chunks = list(client.chat.completions.create(model="test/alpha", messages=ASK, tools=[DATETIME], stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Let me check. It is noon."
    assert not any(c.choices and c.choices[0].delta.tool_calls for c in chunks)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage_chunks = [c for c in chunks if c.usage is not None]
    assert len(usage_chunks) == 1
    usage = usage_chunks[0].usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (60, 10)
    extra = usage.model_extra or {}
    assert extra["server_tool_use_details"]["tool_calls_executed"] == 1
    assert Decimal(str(extra["cost"])) == price(20, 6) + price(40, 4)
    assert _tool_result(fake_a.fake.requests[-1].json)["timezone"] == "UTC"
    gen = generation(gateway, api_key, chunks[0].id)
    assert len(gen["provider_responses"]) == 2
    assert gen["total_cost"] == price(20, 6) + price(40, 4)
    assert key_usage(gateway, api_key) == price(20, 6) + price(40, 4)


@pytest.mark.parametrize("stream", [False, True])
def test_responses_datetime_item(gateway, api_key, fake_a, stream):
    fake_a.fake.script(calls_datetime(prompt_tokens=20, completion_tokens=5),
                       Reply("It is noon.", prompt_tokens=40, completion_tokens=4))  # fmt: skip
    tools = [{"type": "openrouter:datetime", "parameters": {"timezone": "Asia/Tokyo"}}]
    client = OpenRouter(api_key=api_key, server_url=gateway.api)
    if stream:
        events = list(client.responses.send(model="test/alpha", input="what time is it?", tools=tools, stream=True))
        response = events[-1].response
    else:
        response = client.responses.send(model="test/alpha", input="what time is it?", tools=tools)
    kinds = [item.type for item in response.output]
    assert kinds == ["openrouter:datetime", "message"]
    item = response.output[0]
    assert item.timezone == "Asia/Tokyo"
    stamp = datetime.fromisoformat(item.datetime_)
    assert stamp.utcoffset() == datetime.now(ZoneInfo("Asia/Tokyo")).utcoffset()
    assert response.output[1].content[0].text == "It is noon."
    assert (response.usage.input_tokens, response.usage.output_tokens) == (60, 9)
    assert response.usage.server_tool_use_details.tool_calls_executed == 1
    assert Decimal(str(response.usage.cost)) == price(20, 5) + price(40, 4)
    assert _tool_result(fake_a.fake.requests[-1].json)["timezone"] == "Asia/Tokyo"


@pytest.mark.parametrize("stream", [False, True])
def test_messages_datetime_usage(gateway, api_key, fake_a, stream):
    fake_a.fake.script(calls_datetime(prompt_tokens=20, completion_tokens=5),
                       Reply("It is noon.", prompt_tokens=40, completion_tokens=4))  # fmt: skip
    client = anthropic.Anthropic(base_url=gateway.url + "/api", auth_token=api_key, max_retries=0)
    kwargs = {"model": "test/alpha", "max_tokens": 100, "messages": ASK, "tools": [DATETIME]}
    if stream:
        with client.messages.stream(**kwargs) as s:
            message = s.get_final_message()
    else:
        message = client.messages.create(**kwargs)
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "It is noon."
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (60, 9)
    assert message.usage.server_tool_use.web_search_requests == 0
    gen = generation(gateway, api_key, message.id)
    assert len(gen["provider_responses"]) == 2 and gen["total_cost"] == price(20, 5) + price(40, 4)


def test_a_client_function_ends_the_loop(gateway, api_key, fake_a):
    fake_a.fake.script(calls_datetime(prompt_tokens=20, completion_tokens=5),
                       Reply("", tool_calls=[{"id": "call_w", "name": "get_weather", "arguments": {"city": "Paris"}}],
                             finish_reason="tool_calls", prompt_tokens=40, completion_tokens=4))  # fmt: skip
    client = openai.OpenAI(base_url=gateway.api, api_key=api_key)
    res = client.chat.completions.create(model="test/alpha", messages=ASK, tools=[DATETIME, WEATHER])
    assert res.choices[0].finish_reason == "tool_calls"
    assert [c.function.name for c in res.choices[0].message.tool_calls] == ["get_weather"]
    assert res.usage.model_extra["server_tool_use_details"]["tool_calls_executed"] == 1


@pytest.mark.parametrize(
    "limits", [{"max_tool_calls": 1}, {"stop_server_tools_when": [{"type": "step_count_is", "step_count": 1}]}]
)
def test_the_budget_ends_with_a_turn_without_tools(gateway, api_key, fake_a, limits):
    fake_a.fake.script(calls_datetime(prompt_tokens=20, completion_tokens=5),
                       Reply("Done.", prompt_tokens=40, completion_tokens=4))  # fmt: skip
    with gateway.client(api_key) as c:
        r = c.post("/chat/completions", json={"model": "test/alpha", "messages": ASK, "tools": [DATETIME], **limits})
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "Done."
    last = fake_a.fake.requests[-1].json
    assert last["tool_choice"] == "none"  # the last turn may not call a tool
    assert "max_tool_calls" not in last and "stop_server_tools_when" not in last


@pytest.mark.parametrize(
    ("condition", "fires"),
    [
        ({"type": "has_tool_call", "tool_name": "datetime"}, True),
        ({"type": "has_tool_call", "tool_name": "web_fetch"}, False),
        ({"type": "max_tokens_used", "max_tokens": 24}, True),  # the first step used 25
        ({"type": "max_tokens_used", "max_tokens": 25}, False),
        ({"type": "max_cost", "max_cost_in_dollars": 0.000029}, True),  # the first step cost 0.00003
        ({"type": "max_cost", "max_cost_in_dollars": 0.00003}, False),
        ({"type": "finish_reason_is", "reason": "tool_calls"}, True),
        ({"type": "step_count_is", "step_count": 2}, False),
    ],
)
def test_stop_conditions(gateway, api_key, fake_a, condition, fires):
    fake_a.fake.script(calls_datetime(prompt_tokens=20, completion_tokens=5),
                       Reply("Done.", prompt_tokens=40, completion_tokens=4))  # fmt: skip
    with gateway.client(api_key) as c:
        r = c.post("/chat/completions", json={"model": "test/alpha", "messages": ASK, "tools": [DATETIME],
                                              "stop_server_tools_when": [condition]})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "Done."
    assert (fake_a.fake.requests[-1].json.get("tool_choice") == "none") is fires


def test_bad_server_tool_configuration_is_a_400(gateway, api_key):
    with gateway.client(api_key) as c:
        mars = [{"type": "openrouter:datetime", "parameters": {"timezone": "Mars/Olympus"}}]
        bad_zone = c.post("/chat/completions", json={"model": "test/alpha", "messages": ASK, "tools": mars})
        unknown = c.post("/chat/completions", json={"model": "test/alpha", "messages": ASK,
                         "tools": [{"type": "openrouter:teleport"}]})  # fmt: skip
        bad_stop = c.post("/chat/completions", json={"model": "test/alpha", "messages": ASK, "tools": [DATETIME],
                          "stop_server_tools_when": [{"type": "when_bored"}]})  # fmt: skip
    assert bad_zone.status_code == 400 and "Mars/Olympus" in bad_zone.json()["error"]["message"]
    assert unknown.status_code == 400 and "openrouter:teleport" in unknown.json()["error"]["message"]
    assert bad_stop.status_code == 400


def test_a_key_that_cannot_pay_another_step_ends_the_loop(gateway, fake_a):
    key = gateway.create_key(limit=0.0001)["key"]  # room for one step's worst case at max_tokens 10
    fake_a.fake.script(Reply("Checking.", tool_calls=[{"id": "call_dt", "name": "datetime", "arguments": {}}],
                             finish_reason="tool_calls", prompt_tokens=100, completion_tokens=5))  # fmt: skip
    seen = len(fake_a.fake.requests)
    with gateway.client(key) as c:
        r = c.post("/chat/completions", json={"model": "test/alpha", "messages": ASK, "tools": [DATETIME],
                                              "max_tokens": 10})  # fmt: skip
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    assert (choice["message"]["content"], choice["finish_reason"]) == ("Checking.", "stop")
    assert "tool_calls" not in choice["message"]
    assert len(fake_a.fake.requests) == seen + 1  # the tool did not run, no second step
    assert key_usage(gateway, key) == price(100, 5)  # over the limit by at most one step


@pytest.mark.parametrize("stream", [False, True])
def test_a_later_step_that_fails_bills_the_steps_before(gateway, api_key, fake_a, stream):
    fake_a.fake.script(calls_datetime(prompt_tokens=20, completion_tokens=5), Status(400), Status(400))
    with gateway.client(api_key) as c:
        r = c.post("/chat/completions", json={"model": "test/alpha", "messages": ASK, "tools": [DATETIME],
                                              "stream": stream})  # fmt: skip
    if stream:
        assert r.status_code == 200
        events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
        assert any("error" in e for e in events)
        gen_id = events[0]["id"]
    else:
        assert r.status_code == 400, r.text
        gen_id = r.headers["x-generation-id"]
    gen = generation(gateway, api_key, gen_id)
    assert gen["total_cost"] == price(20, 5)
    assert [a["status"] for a in gen["provider_responses"]] == [200, 400]
    assert key_usage(gateway, api_key) == price(20, 5)


def test_typescript_sdk_parses_the_loop(gateway, api_key, fake_a):
    for _ in range(4):  # chat, chat streamed, responses, responses streamed: two steps each
        fake_a.fake.script(calls_datetime(prompt_tokens=20, completion_tokens=5),
                           Reply("It is noon.", prompt_tokens=40, completion_tokens=4))  # fmt: skip
    config = {"serverURL": gateway.api, "apiKey": api_key, "model": "test/alpha", "answer": "It is noon.",
              "cost": float(price(20, 5) + price(40, 4))}  # fmt: skip
    results = run_steps("server_tools.mjs", config)
    assert set(results) == {"servertools.chat.send", "servertools.chat.send(stream)", "servertools.responses.send",
                            "servertools.responses.send(stream)"}  # fmt: skip
    assert all(r["ok"] for r in results.values()), results
    assert key_usage(gateway, api_key) == 4 * (price(20, 5) + price(40, 4))


# -- web_search and web_fetch: the operator's search engine (SearXNG's API, faked) and loopback pages

FEE = Decimal("0.004")
FETCH_FEE = Decimal("0.001")
SEARCH_CALL = {"id": "call_ws1", "name": "web_search", "arguments": {"query": "launch news"}}
ARTICLE = (
    "<html><head><title>Launch notes</title></head><body><article><p>"
    + "The rocket launched on Tuesday. " * 8
    + "</p></article></body></html>"
)


@pytest.fixture(scope="module")
def searxng() -> Iterator[Any]:
    handle = FakeSearch.run_in_thread("searxng", api_key=None)
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def pages() -> Iterator[Any]:
    with FakePages.run_in_thread() as p:
        yield p


@pytest.fixture(scope="module")
def web_gw(tmp_path_factory: pytest.TempPathFactory, fake_a: Any, fake_b: Any, searxng: Any) -> Iterator[Gateway]:
    engine = {"engine": "searxng", "base_url": searxng.base_url, "price_per_search": str(FEE)}
    gw = Gateway(tmp_path_factory.mktemp("servertools"), standard_config(fake_a.base_url, fake_b.base_url),
                 web_search=engine, web_fetch_allow_private=True, web_fetch_price=str(FETCH_FEE)).start()  # fmt: skip
    yield gw
    gw.stop()


@pytest.fixture
def web_key(web_gw: Gateway) -> str:
    return web_gw.create_key()["key"]


def tool_results(fake: Any) -> list[Any]:
    """The tool results the gateway gave the model in the last step's request."""
    return [json.loads(m["content"]) for m in fake.fake.requests[-1].json["messages"] if m["role"] == "tool"]


def _searched_then_answered(fake_a: Any) -> None:
    searching = Reply("", tool_calls=[SEARCH_CALL], finish_reason="tool_calls", prompt_tokens=30, completion_tokens=5)
    fake_a.fake.script(searching, Reply("It launched on Tuesday.", prompt_tokens=90, completion_tokens=6))


def test_chat_web_search_is_billed_and_recorded(web_gw, web_key, fake_a, searxng):
    _searched_then_answered(fake_a)
    client = openai.OpenAI(base_url=web_gw.api, api_key=web_key)
    tools = [{"type": "openrouter:web_search", "parameters": {"max_results": 2}}]
    res = client.chat.completions.create(model="test/alpha", messages=ASK, tools=tools)
    assert res.choices[0].message.content == "It launched on Tuesday."
    assert searxng.fake.requests[-1].query == "launch news"
    results = tool_results(fake_a)[0]
    assert [r["url"] for r in results["results"]] == [p.url for p in DEFAULT_PAGES[:2]]
    details = res.usage.model_extra["server_tool_use_details"]
    assert (details["web_search_requests"], details["tool_calls_executed"]) == (1, 1)
    expected = price(30, 5) + price(90, 6) + FEE
    assert Decimal(str(res.usage.model_extra["cost"])) == expected
    gen = generation(web_gw, web_key, res.id)
    assert gen["total_cost"] == expected and len(gen["provider_responses"]) == 2
    assert (gen["web_search_engine"], gen["num_search_results"]) == ("searxng", 2)
    assert key_usage(web_gw, web_key) == expected


def test_responses_stream_shows_the_search_item(web_gw, web_key, fake_a, searxng):
    _searched_then_answered(fake_a)
    client = OpenRouter(api_key=web_key, server_url=web_gw.api)
    events = list(client.responses.send(model="test/alpha", input="launch?", stream=True,
                                        tools=[{"type": "openrouter:web_search"}]))  # fmt: skip
    added = [e.item for e in events if e.type == "response.output_item.added"]
    assert [i.type for i in added] == ["openrouter:web_search", "message"]
    response = events[-1].response
    search = response.output[0]
    assert search.action.query == "launch news"
    assert [s.url for s in search.action.sources] == [p.url for p in DEFAULT_PAGES]
    assert response.output[1].content[0].text == "It launched on Tuesday."
    assert response.usage.server_tool_use_details.web_search_requests == 1
    assert Decimal(str(response.usage.cost)) == price(30, 5) + price(90, 6) + FEE


@pytest.mark.parametrize("stream", [False, True])
def test_messages_web_search_blocks(web_gw, web_key, fake_a, searxng, stream):
    _searched_then_answered(fake_a)
    client = anthropic.Anthropic(base_url=web_gw.url + "/api", auth_token=web_key, max_retries=0)
    kwargs = {"model": "test/alpha", "max_tokens": 100, "messages": ASK, "tools": [{"type": "openrouter:web_search"}]}
    if stream:
        with client.messages.stream(**kwargs) as s:
            message = s.get_final_message()
    else:
        message = client.messages.create(**kwargs)
    assert [b.type for b in message.content] == ["server_tool_use", "web_search_tool_result", "text"]
    use, result, text = message.content
    assert (use.name, use.input) == ("web_search", {"query": "launch news"})
    assert result.tool_use_id == use.id
    assert [r.url for r in result.content] == [p.url for p in DEFAULT_PAGES]
    assert text.text == "It launched on Tuesday."
    assert message.usage.server_tool_use.web_search_requests == 1
    gen = generation(web_gw, web_key, message.id)
    assert gen["total_cost"] == price(30, 5) + price(90, 6) + FEE


def test_hosted_search_shorthand_is_hoisted(web_gw, web_key, fake_a, searxng):
    _searched_then_answered(fake_a)
    with web_gw.client(web_key) as c:
        r = c.post(
            "/responses", json={"model": "test/alpha", "input": "launch?", "tools": [{"type": "web_search_preview"}]}
        )
    assert r.status_code == 200, r.text
    assert [t["function"]["name"] for t in fake_a.fake.requests[-2].json["tools"]] == ["web_search"]
    assert [i["type"] for i in r.json()["output"]] == ["openrouter:web_search", "message"]


def test_anthropic_web_search_tool_is_hoisted(web_gw, web_key, fake_a, searxng):
    _searched_then_answered(fake_a)
    client = anthropic.Anthropic(base_url=web_gw.url + "/api", auth_token=web_key, max_retries=0)
    tool = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
    message = client.messages.create(model="test/alpha", max_tokens=100, messages=ASK, tools=[tool])
    assert [b.type for b in message.content] == ["server_tool_use", "web_search_tool_result", "text"]
    assert [t["function"]["name"] for t in fake_a.fake.requests[-2].json["tools"]] == ["web_search"]
    assert message.usage.server_tool_use.web_search_requests == 1


def test_max_uses_refuses_the_second_search(web_gw, web_key, fake_a, searxng):
    searxng.fake.reset()
    twice = [SEARCH_CALL, {**SEARCH_CALL, "id": "call_ws2"}]
    fake_a.fake.script(Reply("", tool_calls=twice, finish_reason="tool_calls", prompt_tokens=30, completion_tokens=5),
                       Reply("Done.", prompt_tokens=90, completion_tokens=2))  # fmt: skip
    tools = [{"type": "openrouter:web_search", "parameters": {"max_uses": 1}}]
    with web_gw.client(web_key) as c:
        r = c.post("/chat/completions", json={"model": "test/alpha", "messages": ASK, "tools": tools})
    assert r.status_code == 200, r.text
    assert len(searxng.fake.requests) == 1
    second = tool_results(fake_a)[1]
    assert "limit" in second["error"]
    details = r.json()["usage"]["server_tool_use_details"]
    assert (details["tool_calls_requested"], details["tool_calls_executed"], details["web_search_requests"]) == (
        2,
        1,
        1,
    )
    assert Decimal(str(r.json()["usage"]["cost"])) == price(30, 5) + price(90, 2) + FEE


def test_typescript_sdk_parses_web_search_and_web_fetch(web_gw, web_key, fake_a, pages):
    url = pages.page("/ts-launch", ARTICLE)
    _searched_then_answered(fake_a)
    fake_a.fake.script(Reply("", tool_calls=[{"id": "call_wf", "name": "web_fetch", "arguments": {"url": url}}],
                             finish_reason="tool_calls", prompt_tokens=30, completion_tokens=5),
                       Reply("It launched on Tuesday.", prompt_tokens=90, completion_tokens=6))  # fmt: skip
    steps = price(30, 5) + price(90, 6)
    config = {"serverURL": web_gw.api, "apiKey": web_key, "model": "test/alpha", "answer": "It launched on Tuesday.",
              "pageUrl": url, "searchCost": float(steps + FEE), "fetchCost": float(steps + FETCH_FEE)}  # fmt: skip
    results = run_steps("server_tools.mjs", config)
    assert set(results) == {"servertools.chat.send(web_search)", "servertools.responses.send(web_fetch)"}
    assert all(r["ok"] for r in results.values()), results
    assert key_usage(web_gw, web_key) == 2 * steps + FEE + FETCH_FEE


@pytest.mark.parametrize("stream", [False, True])
def test_web_fetch_reads_a_loopback_page(web_gw, web_key, fake_a, pages, stream):
    url = pages.page("/launch", ARTICLE)
    fake_a.fake.script(Reply("", tool_calls=[{"id": "call_wf", "name": "web_fetch", "arguments": {"url": url}}],
                             finish_reason="tool_calls", prompt_tokens=30, completion_tokens=5),
                       Reply("Tuesday.", prompt_tokens=200, completion_tokens=2))  # fmt: skip
    client = anthropic.Anthropic(base_url=web_gw.url + "/api", auth_token=web_key, max_retries=0)
    kwargs = {"model": "test/alpha", "max_tokens": 100, "messages": ASK, "tools": [{"type": "openrouter:web_fetch"}]}
    if stream:
        with client.messages.stream(**kwargs) as s:
            message = s.get_final_message()
    else:
        message = client.messages.create(**kwargs)
    fetched = tool_results(fake_a)[0]
    assert fetched["url"] == url and "The rocket launched on Tuesday." in fetched["content"]
    assert [b.type for b in message.content] == ["server_tool_use", "web_fetch_tool_result", "text"]
    result = message.content[1].content
    assert result.url == url and "The rocket launched on Tuesday." in result.content.source.data
    assert message.usage.server_tool_use.web_fetch_requests == 1
    gen = generation(web_gw, web_key, message.id)
    assert gen["total_cost"] == price(30, 5) + price(200, 2) + FETCH_FEE
    assert gen["num_fetches"] == 1
