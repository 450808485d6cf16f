"""/messages to an `api: anthropic` provider passes the client's request and the upstream's events
through (pipeline Passthrough): fields the gateway does not know, cache breakpoints and signatures
arrive as sent; the gateway only names the generation, reads usage and adds its cost. A fallback to
an endpoint of another API still translates."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import httpx
import pytest

from omnirouter.testing import FakeAnthropic, FakeAnthropicThread, FakeOpenAI, FakeOpenAIThread, Reply, Status, Stream
from tests.gateway import Gateway

KEY = "sk-ant-test-0123456789"
PRICES = {"prompt": "0.000003", "completion": "0.000015", "input_cache_read": "0.0000003",
          "input_cache_write": "0.00000375"}  # fmt: skip
# What Claude Code sends beside the Messages basics: nothing the gateway reads, all of it Anthropic's.
CLAUDE_CODE_EXTRAS = {
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    "output_config": {"effort": "high"},
}
SYSTEM = [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropicThread]:
    handle = FakeAnthropic.run_in_thread(api_key=KEY)
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def backup() -> Iterator[FakeOpenAIThread]:
    handle = FakeOpenAI.run_in_thread()
    yield handle
    handle.stop()


@pytest.fixture(autouse=True)
def _fresh(fake: FakeAnthropicThread, backup: FakeOpenAIThread) -> None:
    fake.reset()
    backup.reset()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, fake: FakeAnthropicThread,
            backup: FakeOpenAIThread) -> Iterator[Gateway]:  # fmt: skip
    config = {
        "providers": [
            {"slug": "claude", "name": "Claude", "api": "anthropic", "base_url": fake.base_url, "api_key": KEY},
            {"slug": "backup", "name": "Backup", "api": "openai", "base_url": backup.base_url},
        ],
        "models": [{"id": "test/claude", "name": "Claude", "context_length": 200000,
                    "endpoints": [{"provider": "claude", "upstream_model": "claude-sonnet-4-5", "pricing": PRICES}]},
                   {"id": "test/backup", "name": "Backup", "context_length": 200000,
                    "endpoints": [{"provider": "backup", "upstream_model": "gpt-backup", "pricing": PRICES}]}],
    }  # fmt: skip
    gw = Gateway(tmp_path_factory.mktemp("passthrough"), config).start()
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def key(gateway: Gateway) -> str:
    return gateway.create_key()["key"]


@pytest.fixture(scope="module")
def client(gateway: Gateway, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url + "/api", api_key=key, max_retries=0)


def generation(gateway: Gateway, key: str, gen_id: str) -> dict[str, Any]:
    gateway.flush()
    r = httpx.get(f"{gateway.url}/api/v1/generation", params={"id": gen_id}, headers={"Authorization": f"Bearer {key}"})
    r.raise_for_status()
    return r.json()["data"]


def test_the_request_goes_upstream_as_the_client_sent_it(
    client: anthropic.Anthropic, fake: FakeAnthropicThread, gateway: Gateway, key: str
) -> None:
    fake.script(Reply("Hi.", cached_tokens=40, prompt_tokens=60))
    text = {"type": "text", "text": "hello", "cache_control": {"type": "ephemeral"}}
    messages = [{"role": "user", "content": [text]}]
    answer = client.messages.create(
        model="test/claude", max_tokens=300, system=SYSTEM, messages=messages,
        metadata={"user_id": "alice"}, extra_body={**CLAUDE_CODE_EXTRAS, "provider": {"sort": "price"}},
    )  # fmt: skip
    sent = fake.requests[-1].json
    assert sent["model"] == "claude-sonnet-4-5"
    assert {k: sent[k] for k in CLAUDE_CODE_EXTRAS} == CLAUDE_CODE_EXTRAS  # a translation would drop them
    assert sent["system"] == SYSTEM and sent["messages"] == messages  # cache breakpoints where the client put them
    assert "provider" not in sent  # the gateway's own fields stay here
    assert sent["metadata"]["user_id"] != "alice"  # hashed, as every end-user id that leaves
    gen = generation(gateway, key, answer.id)  # the message is the generation
    assert answer.model == "test/claude" and answer.content[0].text == "Hi."
    assert answer.usage.cache_read_input_tokens == 40 and answer.usage.input_tokens == 20
    assert answer.model_extra["provider"] == "Claude"
    cost = Decimal(str(answer.usage.model_extra["cost"]))
    price = {k: Decimal(v) for k, v in PRICES.items()}
    expected = 20 * price["prompt"] + 40 * price["input_cache_read"] + answer.usage.output_tokens * price["completion"]
    assert cost == expected == Decimal(str(gen["total_cost"]))


def test_a_stream_relays_the_upstreams_events_with_signatures_and_cost(
    client: anthropic.Anthropic, fake: FakeAnthropicThread, gateway: Gateway, key: str
) -> None:
    fake.script(Stream("Cold and clear.", reasoning="Oslo in winter.", reasoning_signature="sig-upstream-7"))
    with client.messages.stream(
        model="test/claude", max_tokens=8000, messages=[{"role": "user", "content": "Oslo?"}],
        thinking={"type": "enabled", "budget_tokens": 4000}, extra_body=CLAUDE_CODE_EXTRAS,
    ) as stream:  # fmt: skip
        events = list(stream)
        final = stream.get_final_message()
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop" and kinds[-2] == "message_delta"
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].signature == "sig-upstream-7" and final.content[1].text == "Cold and clear."
    assert fake.requests[-1].json["context_management"] == CLAUDE_CODE_EXTRAS["context_management"]
    gen = generation(gateway, key, final.id)
    assert gen["streamed"] and gen["tokens_completion"] == final.usage.output_tokens
    cost = events[-2].usage.model_extra["cost"]  # message_delta: the upstream's usage, with the gateway's cost
    assert Decimal(str(cost)) == Decimal(str(gen["total_cost"])) > 0


def test_an_error_event_after_the_first_token_is_anthropics_error_event(
    client: anthropic.Anthropic, fake: FakeAnthropicThread
) -> None:
    fake.script(Stream("one two three four", error_after=2))
    ask = [{"role": "user", "content": "count"}]
    # The SDK raises the stream's error event.
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client.messages.stream(model="test/claude", max_tokens=100, messages=ask) as stream,
    ):
        for _ in stream:
            pass
    assert caught.value.body["error"]["type"] in {"api_error", "overloaded_error"}


@pytest.mark.parametrize("streamed", [False, True])
def test_an_overloaded_upstream_falls_back_to_another_api_translated(
    client: anthropic.Anthropic, fake: FakeAnthropicThread, backup: FakeOpenAIThread, streamed: bool
) -> None:
    fake.script(Status(529))
    body = {"model": "test/claude", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}],
            "extra_body": {"models": ["test/backup"]}}  # fmt: skip
    if streamed:
        with client.messages.stream(**body) as stream:
            final = stream.get_final_message()
    else:
        final = client.messages.create(**body)
    assert final.model == "test/backup" and final.content[0].text
    assert backup.requests[-1].json["messages"][-1]["content"] == "hi"  # chat, translated


def test_count_tokens_asks_anthropic_where_the_model_is_served_by_it(
    client: anthropic.Anthropic, fake: FakeAnthropicThread
) -> None:
    long = [{"role": "user", "content": "word " * 400}]
    counted = client.messages.count_tokens(model="test/claude", messages=long, system="Be brief.")
    assert fake.requests[-1].path.endswith("/messages/count_tokens")
    asked = len(fake.requests)
    estimated = client.messages.count_tokens(model="test/backup", messages=long, system="Be brief.")
    assert len(fake.requests) == asked  # no Anthropic endpoint: the gateway's own estimate
    assert counted.input_tokens > 0 and estimated.input_tokens > 0


def test_debug_echo_is_chats_alone(client: anthropic.Anthropic, fake: FakeAnthropicThread) -> None:
    fake.script(Stream("Fine."))
    with client.messages.stream(model="test/claude", max_tokens=50, messages=[{"role": "user", "content": "hi"}],
                                extra_body={"debug": {"echo_upstream_body": True}}) as stream:  # fmt: skip
        kinds = [e.type for e in stream]
    assert kinds.count("message_start") == 1 and stream.get_final_message().content[0].text == "Fine."
