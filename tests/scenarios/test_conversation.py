"""Text scenarios for every client format x upstream API: plain text, multi-turn, a system prompt,
image input, a long stream."""

from __future__ import annotations

import json

import pytest

from omnirouter.testing import Reply, Stream
from omnirouter.testing.fakes.core import synthetic
from tests.scenarios.clients import PNG, Ask
from tests.scenarios.conftest import Pair

STREAM = [pytest.param(False, id="json"), pytest.param(True, id="stream")]


@pytest.mark.parametrize("stream", STREAM)
def test_plain_text(pair: Pair, stream: bool) -> None:
    pair.up.primary.script(Reply("Hello from upstream.", prompt_tokens=21, completion_tokens=4))
    conv = pair.driver.conversation()
    pair.driver.user(conv, "hello there")
    answer = pair.driver.ask(pair.up.model, conv, stream=stream)
    assert answer.text == "Hello from upstream."
    assert answer.finish == "stop"
    assert (answer.tokens.prompt, answer.tokens.completion) == (21, 4)
    gen = pair.settle(answer)
    assert gen["streamed"] is stream
    assert "hello there" in json.dumps(pair.up.last_body())


def test_multi_turn(pair: Pair) -> None:
    conv = pair.driver.conversation()
    pair.driver.user(conv, "Capital of France?")
    pair.driver.assistant(conv, "Paris.")
    pair.driver.user(conv, "And of Italy?")
    answer = pair.driver.ask(pair.up.model, conv)
    assert answer.text == "Echo: And of Italy?"  # the fakes echo the last user turn
    body = pair.up.last_body()
    assert pair.up.turns_of(body) == 3
    sent = json.dumps(body)
    assert sent.index("Capital of France?") < sent.index("Paris.") < sent.index("And of Italy?")
    pair.settle(answer)

    pair.driver.follow(conv, answer)
    pair.driver.user(conv, "And of Spain?")
    second = pair.driver.ask(pair.up.model, conv, stream=True)
    assert second.text == "Echo: And of Spain?"
    assert pair.up.turns_of(pair.up.last_body()) == 5
    assert "Echo: And of Italy?" in json.dumps(pair.up.last_body())
    pair.settle(second)


def test_system_prompt(pair: Pair) -> None:
    conv = pair.driver.conversation("Answer in French, tersely.")
    pair.driver.user(conv, "hello")
    answer = pair.driver.ask(pair.up.model, conv, stream=True)
    assert answer.text == "Echo: hello"
    body = pair.up.last_body()
    assert pair.up.system_of(body) == "Answer in French, tersely."
    assert pair.up.turns_of(body) == 1  # the system prompt is not a turn
    pair.settle(answer)


def test_image_input(pair: Pair) -> None:
    pair.up.primary.script(Reply("A single pixel.", prompt_tokens=90, completion_tokens=4))
    conv = pair.driver.conversation()
    pair.driver.user(conv, "What is in this image?", image=True)
    answer = pair.driver.ask(pair.up.model, conv)
    assert answer.text == "A single pixel."
    sent = json.dumps(pair.up.last_body())
    assert PNG in sent  # the image's bytes reach the upstream, in its own shape
    assert "What is in this image?" in sent
    pair.settle(answer)


def test_long_stream(pair: Pair) -> None:
    pair.up.primary.script(Stream(chunks=300))
    conv = pair.driver.conversation()
    pair.driver.user(conv, "talk at length")
    answer = pair.driver.ask(pair.up.model, conv, stream=True)
    assert answer.text == synthetic(300)  # every piece, in order
    assert answer.events is not None and len(answer.events) >= 300
    pair.settle(answer)


@pytest.mark.parametrize("stream", STREAM)
def test_truncated_at_max_tokens(pair: Pair, stream: bool) -> None:
    """The upstream stops at the client's limit, in its own words: chat's `length`, Messages'
    `max_tokens`, Responses' incomplete status (max_output_tokens)."""
    pair.up.primary.script(Reply(synthetic(40)))
    conv = pair.driver.conversation()
    pair.driver.user(conv, "talk at length")
    answer = pair.driver.ask(pair.up.model, conv, Ask(max_tokens=16), stream=stream)
    assert answer.text == synthetic(16)  # the fakes cut at the limit
    assert answer.finish == "length"
    if pair.fmt == "responses":
        final = answer.events[-1]["response"] if answer.events else None
        if final is not None:
            assert answer.events[-1]["type"] == "response.incomplete"
            assert final["incomplete_details"] == {"reason": "max_output_tokens"}
    pair.settle(answer)
