"""The context-compression plugin (middle-out): a prompt too long for the endpoint loses messages from
its middle, as the upstream receives it, in every client format; without compression it is a 400
that suggests it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from openrouter import OpenRouter

from omnirouter.plugins.context_compression import compress
from omnirouter.store import repo
from omnirouter.testing import Reply, Stream
from tests.conftest import ALPHA_PRICES, standard_config
from tests.gateway import Gateway
from tests.sdk_ts_run import run_steps

SYSTEM = {"role": "system", "content": "You are terse."}


def turns(n: int, size: int = 400) -> list[dict[str, Any]]:
    """n alternating user/assistant messages, each naming its position, `size` characters long."""
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i}: " + "x" * size} for i in range(n)]


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fake_a: Any, fake_b: Any) -> Iterator[Gateway]:
    config = standard_config(fake_a.base_url, fake_b.base_url)
    ep = {"provider": "fake-a", "pricing": ALPHA_PRICES}
    config["models"] += [
        # 2,048 tokens: compressed by default
        {"id": "test/small", "name": "Small", "context_length": 2048, "endpoints": [{**ep, "upstream_model": "small"}]},
        # 16,384 tokens: compressed only when asked
        {"id": "test/mid", "name": "Mid", "context_length": 16384, "endpoints": [{**ep, "upstream_model": "mid"}]},
        {"id": "test/roomy", "name": "Roomy", "context_length": 100000,
         "endpoints": [{**ep, "upstream_model": "roomy"}]},
        {"id": "test/capped", "name": "Capped", "context_length": 100000, "max_messages": 10,
         "endpoints": [{**ep, "upstream_model": "capped"}]},
        {"id": "test/pair", "name": "Pair", "context_length": 4096, "endpoints": [
            {**ep, "upstream_model": "pair-small", "context_length": 1500},
            {"provider": "fake-b", "upstream_model": "pair-large", "pricing": ALPHA_PRICES, "context_length": 3000},
        ]},
    ]  # fmt: skip
    gateway = Gateway(tmp_path_factory.mktemp("compression"), config).start()
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def key(gw: Gateway) -> str:
    return str(gw.create_key(name="compression")["key"])


def oai(gw: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=gw.api, max_retries=0)


def stored(gw: Any, gen_id: str) -> dict[str, Any]:
    """The generation's stored row (its `plugins` record is not part of GET /generation)."""
    gw.flush()

    async def read() -> dict[str, Any]:
        async with gw.state.db.engine.connect() as conn:
            return await repo.get_generation(conn, gen_id)

    return asyncio.run_coroutine_threadsafe(read(), gw.loop).result(timeout=10)


def contents(recorded: Any) -> list[str]:
    return [
        m["content"] if isinstance(m["content"], str) else m["content"][0]["text"] for m in recorded.json["messages"]
    ]


def assert_middle_out(sent: list[str], original: list[dict[str, Any]]) -> None:
    """The system message, the first turn and the last arrived; what was dropped came from the middle."""
    texts = [m["content"] for m in original]
    assert sent[0] == texts[0] and sent[1] == texts[1] and sent[-1] == texts[-1]
    assert len(sent) < len(texts)
    kept = [texts.index(t) for t in sent]
    assert kept == sorted(kept)
    gap = [i for i in range(kept[0], kept[-1]) if i not in kept]  # one contiguous hole in the middle
    assert gap == list(range(gap[0], gap[-1] + 1))


def test_small_context_compresses_by_default(gw, key, fake_a):
    messages = [SYSTEM, *turns(30)]
    fake_a.fake.script(Reply("fits now"))
    raw = oai(gw, key).chat.completions.with_raw_response.create(model="test/small", messages=messages, max_tokens=100)
    assert raw.parse().choices[0].message.content == "fits now"
    recorded = fake_a.fake.last_request
    sent = contents(recorded)
    assert_middle_out(sent, messages)
    assert len(recorded.body) / 4 + 100 <= 2048  # what went upstream fits the endpoint's context
    done = stored(gw, raw.headers["x-generation-id"])["plugins"]["compressed"]
    assert done["messages_dropped"] == len(messages) - len(sent) and done["messages_after"] == len(sent)
    assert done["context_length"] == 2048 and done["prompt_tokens_after"] + 100 <= 2048


def test_transforms_empty_turns_it_off_and_the_400_suggests_it(gw, key, fake_a):
    with pytest.raises(openai.BadRequestError) as caught:
        oai(gw, key).chat.completions.create(
            model="test/small", messages=[SYSTEM, *turns(30)], extra_body={"transforms": []}
        )
    assert caught.value.status_code == 400
    error = caught.value.body
    assert "middle-out" in error["message"] and "2048" in error["message"]
    assert error["metadata"]["error_type"] == "context_length_exceeded"
    assert not fake_a.fake.requests


def test_larger_contexts_compress_only_when_asked(gw, key, fake_a):
    messages = [SYSTEM, *turns(200, 400)]  # ~21,000 tokens against 16,384
    client = oai(gw, key)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="test/mid", messages=messages)
    assert "context-compression" in caught.value.body["message"]
    fake_a.fake.script(Reply("plugin"), Reply("legacy"))
    answer = client.chat.completions.create(
        model="test/mid", messages=messages, extra_body={"plugins": [{"id": "context-compression"}]}
    )
    assert answer.choices[0].message.content == "plugin"
    assert_middle_out(contents(fake_a.fake.requests[-1]), messages)
    answer = client.chat.completions.create(
        model="test/mid", messages=messages, extra_body={"transforms": ["middle-out"]}
    )
    assert answer.choices[0].message.content == "legacy"
    assert_middle_out(contents(fake_a.fake.requests[-1]), messages)


def test_a_tool_call_and_its_results_go_or_stay_together(gw, key, fake_a):
    calls: list[dict[str, Any]] = []
    for n in range(8):  # the middle is tool calls, each answered by two results
        ids = [f"call_{n}_a", f"call_{n}_b"]
        calls.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": i, "type": "function", "function": {"name": "look", "arguments": "{}"}} for i in ids
                ],
            }
        )
        calls += [{"role": "tool", "tool_call_id": i, "content": "r" * 300} for i in ids]
    messages = [SYSTEM, *turns(2), *calls, *turns(2)]  # fmt: skip
    tools = [{"type": "function", "function": {"name": "look", "parameters": {"type": "object", "properties": {}}}}]
    fake_a.fake.script(Reply("done"))
    oai(gw, key).chat.completions.create(model="test/small", messages=messages, tools=tools, max_tokens=1000)
    sent = fake_a.fake.last_request.json["messages"]
    assert len(sent) < len(messages)
    asked = {tc["id"] for m in sent for tc in m.get("tool_calls") or ()}
    answered = {m["tool_call_id"] for m in sent if m["role"] == "tool"}
    assert asked == answered and asked  # every call kept with all its results, some pairs dropped
    assert len(asked) < 16


def test_a_models_message_limit_keeps_half_from_each_end(gw, key, fake_a):
    messages = turns(31, 10)
    fake_a.fake.script(Reply("capped"))
    oai(gw, key).chat.completions.create(
        model="test/capped", messages=messages, extra_body={"plugins": [{"id": "context-compression"}]}
    )
    sent = contents(fake_a.fake.last_request)
    assert len(sent) == 10
    texts = [m["content"] for m in messages]
    assert sent == texts[:5] + texts[-5:]


def test_endpoints_with_half_the_context_are_kept_and_compressed_for(gw, key, fake_a, fake_b):
    messages = [SYSTEM, *turns(40, 400)]  # ~4,400 tokens: the 3,000-token endpoint has half, the 1,500 one not
    fake_b.fake.script(Reply("large"))
    answer = oai(gw, key).chat.completions.create(model="test/pair", messages=messages)
    assert answer.choices[0].message.content == "large"
    assert not fake_a.fake.requests
    recorded = fake_b.fake.last_request
    assert recorded.json["model"] == "pair-large"
    assert_middle_out(contents(recorded), messages)
    assert len(recorded.body) / 4 <= 3000


def test_a_model_that_holds_the_prompt_gets_it_whole_though_a_fallback_could_not(gw, key, fake_a):
    messages = [SYSTEM, *turns(30)]
    fake_a.fake.script(Reply("whole"))
    answer = oai(gw, key).chat.completions.create(
        model="test/roomy", messages=messages, extra_body={"models": ["test/roomy", "test/small"]}
    )
    assert answer.choices[0].message.content == "whole" and answer.model == "test/roomy"
    assert contents(fake_a.fake.last_request) == [m["content"] for m in messages]


def test_streamed_through_the_openrouter_sdk(gw, key, fake_a):
    messages = [SYSTEM, *turns(30)]
    fake_a.fake.script(Stream(content="streamed short"))
    with OpenRouter(api_key=key, server_url=gw.api) as client:
        chunks = list(client.chat.send(model="test/small", messages=messages, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "streamed short"
    assert_middle_out(contents(fake_a.fake.last_request), messages)


def test_responses_api(gw, key, fake_a):
    messages = [SYSTEM, *turns(30)]
    fake_a.fake.script(Reply("from responses"))
    res = oai(gw, key).responses.create(
        model="test/small", input=messages, extra_body={"plugins": [{"id": "context-compression"}]}
    )
    assert res.output_text == "from responses"
    assert_middle_out(contents(fake_a.fake.last_request), messages)


def test_messages_api_with_legacy_transforms(gw, key, fake_a):
    messages = turns(31)
    fake_a.fake.script(Reply("from messages"))
    client = anthropic.Anthropic(api_key=key, base_url=gw.url + "/api", max_retries=0)
    message = client.messages.create(
        model="test/mid", max_tokens=100, system="You are terse.", messages=[*turns(199, 400), messages[-1]],
        extra_body={"transforms": ["middle-out"]},
    )  # fmt: skip
    assert message.content[0].text == "from messages"
    sent = contents(fake_a.fake.last_request)
    assert sent[0] == "You are terse." and sent[1].startswith("turn 0:") and sent[-1] == messages[-1]["content"]
    assert len(sent) < 201


def test_what_cannot_be_dropped_is_cut_in_its_middle():
    body = {"model": "m", "messages": [{"role": "user", "content": "a" * 4000 + "END"}]}
    done = compress(body, 2000, None)
    assert done is not None and done["messages_truncated"] == 1 and done["messages_dropped"] == 0
    text = body["messages"][0]["content"]
    assert text.startswith("aaa") and text.endswith("END") and "\n...\n" in text and len(text) < 2000


def test_typescript_sdk(gw, key, fake_a):
    """tests/sdk_ts/plugins_guard.mjs: the plugin on and off through @openrouter/sdk."""
    fake_a.fake.always(Reply("short"))
    config = {"serverURL": gw.api, "apiKey": key, "compression": {"model": "test/mid", "turns": 200}}
    results = run_steps("plugins_guard.mjs", config)
    assert set(results) == {"compression.chat.send", "compression.off.chat.send"}
    assert all(r["ok"] for r in results.values()), results
    assert len(fake_a.fake.requests) == 1 and len(fake_a.fake.requests[0].json["messages"]) < 200
