"""The response-healing plugin: malformed JSON in a structured-output answer comes back repaired, in
every client format, and says so (X-Omnirouter-Healed); streams and truncated answers are left alone."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anthropic
import openai
from openrouter import OpenRouter

from omnirouter.store import repo
from omnirouter.testing import FakeAnthropic, Reply, Stream
from tests.conftest import standard_config
from tests.sdk_ts_run import run_steps

ANTHROPIC_KEY = "sk-ant-healing-test"
HEAL = [{"id": "response-healing"}]
ASK = [{"role": "user", "content": "Give me Ada as JSON"}]
BROKEN = '{"name": "Ada", "born": 1815, "languages": ["en", "fr",],'  # trailing comma, no closing bracket
SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "born": {"type": "integer"}},
    "required": ["name", "born"],
}


def chat(gateway: Any, key: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=gateway.api, max_retries=0)


def stored(gw: Any, gen_id: str) -> dict[str, Any]:
    """The generation's stored row (its `plugins` record is not part of GET /generation)."""
    gw.flush()

    async def read() -> dict[str, Any]:
        async with gw.state.db.engine.connect() as conn:
            return await repo.get_generation(conn, gen_id)

    return asyncio.run_coroutine_threadsafe(read(), gw.loop).result(timeout=10)


def test_chat_json_object_answer_is_repaired_and_marked(gateway, api_key, fake_a):
    fake_a.fake.script(Reply(BROKEN))
    raw = chat(gateway, api_key).chat.completions.with_raw_response.create(
        model="test/alpha", messages=ASK, response_format={"type": "json_object"}, extra_body={"plugins": HEAL}
    )
    answer = raw.parse()
    assert json.loads(answer.choices[0].message.content) == {"name": "Ada", "born": 1815, "languages": ["en", "fr"]}
    assert raw.headers["x-omnirouter-healed"] == "true"
    assert stored(gateway, raw.headers["x-generation-id"])["plugins"] == {"healed": True}


def test_fenced_json_with_prose_and_unquoted_keys_through_the_openrouter_sdk(gateway, api_key, fake_a):
    fake_a.fake.script(Reply('Sure! Here it is:\n```json\n{name: "Ada", born: 1815}\n```\nAnything else?'))
    with OpenRouter(api_key=api_key, server_url=gateway.api) as client:
        res = client.chat.send(
            model="test/alpha",
            messages=ASK,
            response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": SCHEMA}},
            plugins=HEAL,
        )
    assert json.loads(res.choices[0].message.content) == {"name": "Ada", "born": 1815}


def test_valid_json_and_requests_without_the_plugin_or_a_json_format_pass_unchanged(gateway, api_key, fake_a):
    client = chat(gateway, api_key)
    fake_a.fake.script(Reply('{"ok": true}'), Reply(BROKEN), Reply(BROKEN))
    valid = client.chat.completions.with_raw_response.create(
        model="test/alpha", messages=ASK, response_format={"type": "json_object"}, extra_body={"plugins": HEAL}
    )
    assert valid.parse().choices[0].message.content == '{"ok": true}'
    assert "x-omnirouter-healed" not in valid.headers
    unasked = client.chat.completions.with_raw_response.create(
        model="test/alpha", messages=ASK, response_format={"type": "json_object"}
    )
    assert unasked.parse().choices[0].message.content == BROKEN
    assert "x-omnirouter-healed" not in unasked.headers
    assert stored(gateway, valid.headers["x-generation-id"])["plugins"] is None
    no_format = client.chat.completions.create(model="test/alpha", messages=ASK, extra_body={"plugins": HEAL})
    assert no_format.choices[0].message.content == BROKEN


def test_output_truncated_by_max_tokens_is_not_healed(gateway, api_key, fake_a):
    fake_a.fake.script(Reply(BROKEN, finish_reason="length"))
    raw = chat(gateway, api_key).chat.completions.with_raw_response.create(
        model="test/alpha", messages=ASK, max_tokens=20, response_format={"type": "json_object"},
        extra_body={"plugins": HEAL},
    )  # fmt: skip
    answer = raw.parse()
    assert answer.choices[0].finish_reason == "length"
    assert answer.choices[0].message.content == BROKEN
    assert "x-omnirouter-healed" not in raw.headers


def test_a_stream_is_relayed_as_it_came(gateway, api_key, fake_a):
    fake_a.fake.script(Stream(content=BROKEN))
    chunks = list(
        chat(gateway, api_key).chat.completions.create(
            model="test/alpha", messages=ASK, stream=True, response_format={"type": "json_object"},
            extra_body={"plugins": HEAL},
        )
    )  # fmt: skip
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == BROKEN


def test_responses_api_renders_the_healed_text(gateway, api_key, fake_a):
    fake_a.fake.script(Reply(BROKEN))
    raw = chat(gateway, api_key).responses.with_raw_response.create(
        model="test/alpha", input="Give me Ada as JSON", text={"format": {"type": "json_object"}},
        extra_body={"plugins": HEAL},
    )  # fmt: skip
    assert json.loads(raw.parse().output_text) == {"name": "Ada", "born": 1815, "languages": ["en", "fr"]}
    assert raw.headers["x-omnirouter-healed"] == "true"


def test_messages_api_renders_the_healed_text(gateway, api_key, fake_a):
    fake_a.fake.script(Reply(BROKEN))
    client = anthropic.Anthropic(api_key=api_key, base_url=gateway.url + "/api", max_retries=0)
    raw = client.messages.with_raw_response.create(
        model="test/alpha", max_tokens=256, messages=ASK,
        extra_body={"plugins": HEAL, "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}},
    )  # fmt: skip
    message = raw.parse()
    assert json.loads(message.content[0].text) == {"name": "Ada", "born": 1815, "languages": ["en", "fr"]}
    assert raw.headers["x-omnirouter-healed"] == "true"


def test_messages_to_an_anthropic_upstream_are_healed_too(make_gateway, fake_a, fake_b):
    """A Messages request would pass through to an Anthropic upstream as it came; with healing it is
    translated, so that the healed text is what the client gets."""
    with FakeAnthropic.run_in_thread(api_key=ANTHROPIC_KEY) as claude:
        config = standard_config(fake_a.base_url, fake_b.base_url)
        config["providers"].append(
            {
                "slug": "claude",
                "name": "Claude",
                "api": "anthropic",
                "base_url": claude.base_url,
                "api_key": ANTHROPIC_KEY,
            }
        )
        config["models"].append({"id": "test/claude", "name": "Claude", "context_length": 200000,
                                 "endpoints": [{"provider": "claude", "upstream_model": "claude-up"}]})  # fmt: skip
        gw = make_gateway(config)
        key = gw.create_key()["key"]
        client = anthropic.Anthropic(api_key=key, base_url=gw.url + "/api", max_retries=0)
        output = {"output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}}
        claude.script(Reply(BROKEN), Reply(BROKEN))
        raw = client.messages.with_raw_response.create(
            model="test/claude", max_tokens=256, messages=ASK, extra_body={"plugins": HEAL, **output}
        )
        assert json.loads(raw.parse().content[0].text) == {"name": "Ada", "born": 1815, "languages": ["en", "fr"]}
        assert raw.headers["x-omnirouter-healed"] == "true"
        assert claude.requests[-1].json["output_config"]["format"]["schema"] == SCHEMA
        unhealed = client.messages.create(model="test/claude", max_tokens=256, messages=ASK, extra_body=output)
        assert unhealed.content[0].text == BROKEN


def test_typescript_sdk(gateway, api_key, fake_a):
    """tests/sdk_ts/plugins_guard.mjs: healed answers through @openrouter/sdk, chat and responses."""
    fake_a.fake.always(Reply(BROKEN))
    expected = {"name": "Ada", "born": 1815, "languages": ["en", "fr"]}
    config = {"serverURL": gateway.api, "apiKey": api_key, "healing": {"model": "test/alpha", "expected": expected}}
    results = run_steps("plugins_guard.mjs", config)
    assert set(results) == {"healing.chat.send", "healing.responses.send"}
    assert all(r["ok"] for r in results.values()), results
