"""Feature scenarios for every client format x upstream API: a tool round trip, parallel tool calls,
JSON schema output, reasoning (billed; signed thinking sent back where both sides sign it), a
cache hit billed at the cache prices."""

from __future__ import annotations

import base64
import itertools
import json
import re
from typing import Any

import pytest

from omnirouter.formats.anthropic_terms import FOREIGN
from omnirouter.testing import Reply
from tests.scenarios.clients import FORMATS, Ask
from tests.scenarios.conftest import Pair
from tests.scenarios.upstreams import APIS, all_upstreams

STREAM = [pytest.param(False, id="json"), pytest.param(True, id="stream")]
WEATHER = {
    "name": "weather",
    "description": "Current weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
CITY = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["name", "population"],
    "additionalProperties": False,
}
SIGNING = {api for api, up in all_upstreams().items() if up.signs_reasoning}


@pytest.mark.parametrize("stream", STREAM)
def test_tool_round_trip(pair: Pair, stream: bool) -> None:
    """A call, its result sent back, then the final text."""
    pair.up.primary.script(Reply(tool_calls=[{"name": "weather", "arguments": {"city": "Oslo"}}]), Reply("Cold: -3C."))
    conv = pair.driver.conversation()
    pair.driver.user(conv, "Weather in Oslo?")
    ask = Ask(tools=[WEATHER])
    first = pair.driver.ask(pair.up.model, conv, ask, stream=stream)
    assert first.finish == "tool_calls"
    [(call_id, name, args)] = first.tool_calls
    assert (name, args) == ("weather", {"city": "Oslo"})
    assert "Current weather in a city" in json.dumps(pair.up.last_body())  # the tool was offered
    pair.settle(first)

    pair.driver.follow(conv, first)
    pair.driver.tool_results(conv, {call_id: "-3C and snowing"})
    second = pair.driver.ask(pair.up.model, conv, ask, stream=stream)
    assert (second.text, second.finish, second.tool_calls) == ("Cold: -3C.", "stop", [])
    sent = json.dumps(pair.up.last_body())
    assert sent.rindex("Oslo") < sent.index("-3C and snowing")  # the call, then its result
    pair.settle(second)


@pytest.mark.parametrize("stream", STREAM)
def test_parallel_tool_calls(pair: Pair, stream: bool) -> None:
    calls = [{"name": "weather", "arguments": {"city": "Paris"}}, {"name": "weather", "arguments": {"city": "Rome"}}]
    pair.up.primary.script(Reply(tool_calls=calls), Reply("Paris 18C, Rome 24C."))
    conv = pair.driver.conversation()
    pair.driver.user(conv, "Weather in Paris and Rome?")
    ask = Ask(tools=[WEATHER])
    first = pair.driver.ask(pair.up.model, conv, ask, stream=stream)
    assert [(n, a) for _, n, a in first.tool_calls] == [("weather", {"city": "Paris"}), ("weather", {"city": "Rome"})]
    ids = [i for i, _, _ in first.tool_calls]
    assert len(set(ids)) == 2 and all(ids)
    assert first.finish == "tool_calls"
    pair.settle(first)

    pair.driver.follow(conv, first)
    pair.driver.tool_results(conv, {ids[0]: "18C", ids[1]: "24C"})
    second = pair.driver.ask(pair.up.model, conv, ask, stream=stream)
    assert second.text == "Paris 18C, Rome 24C."
    sent = json.dumps(pair.up.last_body())
    assert sent.rindex("Paris") < sent.rindex("Rome") < sent.index("18C") < sent.index("24C")
    pair.settle(second)


@pytest.mark.parametrize("stream", STREAM)
def test_json_schema_output(pair: Pair, stream: bool) -> None:
    """response_format (chat), text.format (Responses), output_config.format (Messages): every
    pair can express a JSON schema, and every upstream gets it in its own field."""
    pair.up.primary.script(Reply('{"name": "Paris", "population": 2100000}'))
    conv = pair.driver.conversation()
    pair.driver.user(conv, "A big city?")
    answer = pair.driver.ask(pair.up.model, conv, Ask(schema=CITY), stream=stream)
    assert json.loads(answer.text) == {"name": "Paris", "population": 2100000}
    sent = pair.up.schema_of(pair.up.last_body())
    assert sent["properties"] == CITY["properties"] and sent["required"] == CITY["required"]
    pair.settle(answer)


@pytest.mark.parametrize("stream", STREAM)
def test_reasoning_tokens_are_billed(pair: Pair, stream: bool) -> None:
    thought = "Six times seven is forty-two."
    pair.up.primary.script(Reply("42", reasoning=thought, reasoning_tokens=30, prompt_tokens=40, completion_tokens=31))
    conv = pair.driver.conversation()
    pair.driver.user(conv, "6*7?")
    answer = pair.driver.ask(pair.up.model, conv, Ask(reasoning=True), stream=stream)
    assert answer.text == "42"
    assert answer.reasoning == thought
    assert (answer.tokens.prompt, answer.tokens.completion) == (40, 31)
    # Bedrock's Converse usage does not count reasoning: it is billed as completion there.
    reasoning = 30 if pair.up.reports_reasoning_tokens else 0
    if answer.tokens.reasoning is not None:
        assert answer.tokens.reasoning == reasoning
    gen = pair.settle(answer)  # reasoning tokens at the internal_reasoning price, the rest at completion's
    assert gen["native_tokens_reasoning"] == reasoning


# Known gaps, each a strict xfail: the day it works, the mark must go.
SIGNED_GAPS: dict[tuple[str, str], str] = {}


def held(native: Any) -> str:
    """What the client holds, with another provider's reasoning that a Messages client carries in a
    redacted_thinking block (formats/anthropic_terms.redacted_data) unwrapped."""
    text = json.dumps(native)
    wrapped = re.findall(re.escape(FOREIGN) + r"([A-Za-z0-9_=-]+)", text)
    return text + "".join(base64.urlsafe_b64decode(w).decode() for w in wrapped)


def _signed_pairs() -> list[object]:
    out = []
    for fmt, api in itertools.product(FORMATS, APIS):
        if (fmt, api) in SIGNED_GAPS:
            gap = pytest.mark.xfail(strict=True, reason=SIGNED_GAPS[fmt, api])
            out.append(pytest.param(f"{fmt}-{api}", id=f"{fmt}-{api}", marks=gap))
        elif api in SIGNING:
            out.append(pytest.param(f"{fmt}-{api}", id=f"{fmt}-{api}"))
        else:
            skip = pytest.mark.skip(reason=f"{api} reasoning carries no signature")
            out.append(pytest.param(f"{fmt}-{api}", id=f"{fmt}-{api}-unsigned-upstream", marks=skip))
    return out


@pytest.mark.parametrize("pair", _signed_pairs(), indirect=True)
@pytest.mark.parametrize("stream", STREAM)
def test_signed_thinking_round_trips(pair: Pair, stream: bool) -> None:
    """Signed reasoning before a tool call reaches the client with its signature, and goes back to
    the upstream with it (FakeAnthropic and FakeBedrock refuse a signature they did not issue)."""
    signature = f"sig-{pair.fmt}-{pair.api}-{stream}"
    pair.up.primary.script(
        Reply(
            tool_calls=[{"name": "weather", "arguments": {"city": "Oslo"}}],
            reasoning="The user wants Oslo's weather.",
            reasoning_signature=signature,
        ),
        Reply("Cold."),
    )
    conv = pair.driver.conversation()
    pair.driver.user(conv, "Weather in Oslo?")
    ask = Ask(tools=[WEATHER], reasoning=True)
    first = pair.driver.ask(pair.up.model, conv, ask, stream=stream)
    assert signature in held(first.native), "the client's answer lost the signature"
    if pair.api != "gemini":  # Gemini signs the call, and shows no thought text with it
        assert first.reasoning == "The user wants Oslo's weather."
    pair.settle(first)

    pair.driver.follow(conv, first)
    pair.driver.tool_results(conv, {first.tool_calls[0][0]: "-3C"})
    second = pair.driver.ask(pair.up.model, conv, ask, stream=stream)
    assert second.text == "Cold."
    assert signature in json.dumps(pair.up.last_body()), "the signature did not go back upstream"
    pair.settle(second)


@pytest.mark.parametrize("stream", STREAM)
def test_cache_hit_billed_at_cache_prices(pair: Pair, stream: bool) -> None:
    writes = 100 if pair.up.reports_cache_writes else None
    pair.up.primary.script(Reply("cached", prompt_tokens=1000, cached_tokens=600, cache_write_tokens=writes,
                                 completion_tokens=10))  # fmt: skip
    conv = pair.driver.conversation("A long shared instruction. " * 20)
    pair.driver.user(conv, "summarise")
    answer = pair.driver.ask(pair.up.model, conv, stream=stream)
    assert answer.text == "cached"
    t = answer.tokens
    assert (t.prompt, t.cached, t.completion) == (1000, 600, 10)
    assert t.cache_write == (writes or 0)  # Responses' usage names them too (input_tokens_details)
    gen = pair.settle(answer)
    assert gen["native_tokens_cached"] == 600
