"""Failure scenarios for every client format x upstream API: an upstream error before the first
token (a client error of the right class and status in the format's envelope; a 429 that falls back
to a second endpoint), and an error after the first token (in-band, in the format's own way)."""

from __future__ import annotations

import anthropic
import openai
import pytest

from omnirouter.testing import Reply, Status, Stream
from tests.scenarios.clients import Ask, check_chat_order, check_messages_order, check_responses_order, exact
from tests.scenarios.conftest import Pair
from tests.spec_validation import spec_available, validate_response

STREAM = [pytest.param(False, id="json"), pytest.param(True, id="stream")]


@pytest.mark.parametrize("stream", STREAM)
def test_upstream_400_before_the_first_token(pair: Pair, stream: bool) -> None:
    pair.up.primary.script(Status(400))
    conv = pair.driver.conversation()
    pair.driver.user(conv, "hello")
    error_class = anthropic.BadRequestError if pair.fmt == "messages" else openai.BadRequestError
    with pytest.raises(error_class) as info:
        pair.driver.ask(pair.up.model, conv, stream=stream)
    assert info.value.status_code == 400
    response = pair.driver.recorder.last.response
    assert response.status_code == 400 and response.headers["content-type"].startswith("application/json")
    body = exact(bytes(pair.driver.recorder.last.body))
    if spec_available():
        validate_response(pair.driver.operation, response.json(), status="400")
    if pair.fmt == "messages":  # Anthropic's envelope
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    else:  # OpenRouter's, on chat and Responses alike
        assert body["error"]["code"] == 400
    assert len(pair.up.primary.requests) == 1  # a request error is not retried elsewhere
    assert pair.up.backup.requests == []
    assert pair.key_usage() == 0


@pytest.mark.parametrize("stream", STREAM)
def test_upstream_429_falls_back_to_the_second_endpoint(pair: Pair, stream: bool) -> None:
    pair.up.primary.script(Status(429, retry_after=1))
    pair.up.backup.script(Reply("from the backup", prompt_tokens=10, completion_tokens=3))
    conv = pair.driver.conversation()
    pair.driver.user(conv, "hello")
    answer = pair.driver.ask(pair.up.model_two, conv, Ask(provider_order=pair.up.order), stream=stream)
    assert answer.text == "from the backup"
    assert len(pair.up.primary.requests) == 1 and len(pair.up.backup.requests) == 1
    pair.settle(answer, provider=pair.up.backup_name())


def test_error_after_the_first_token(pair: Pair) -> None:
    """The stream has begun (200 sent): the failure arrives in-band, the format's way: a chat error
    chunk (then usage and [DONE]), an Anthropic `error` event, a Responses `response.failed`."""
    pair.up.primary.script(Stream("alpha beta gamma delta", error_after=2))
    conv = pair.driver.conversation()
    pair.driver.user(conv, "hello")
    driver = pair.driver
    raised = driver.read_failing_stream(pair.up.model, conv)
    if pair.fmt == "chat":
        assert isinstance(raised, openai.APIError)
        chunks = [e["data"] for e in driver.validated_events()]
        errors = [c for c in chunks if "error" in c]
        assert len(errors) == 1 and errors[0]["choices"][0]["finish_reason"] == "error"
        assert chunks.index(errors[0]) == len(chunks) - 2  # then the usage chunk, then [DONE]
        check_chat_order(chunks)
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        cost = chunks[-1]["usage"]["cost"]
    elif pair.fmt == "messages":
        assert isinstance(raised, anthropic.APIStatusError)
        events = [e["data"] for e in driver.validated_events()]
        check_messages_order(events, failed=True)
        assert events[-1]["error"]["type"] and events[-1]["error"]["message"]
        text = "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
        cost = None
    else:
        assert raised is None
        events = [e["data"] for e in driver.validated_events()]
        check_responses_order(events, failed=True)
        failed = events[-1]["response"]
        assert failed["status"] == "failed" and failed["error"]["code"] and failed["error"]["message"]
        text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
        cost = (failed.get("usage") or {}).get("cost")
    assert text == "alpha beta"  # what came before the failure, and nothing after
    gen_id = driver.headers()["x-generation-id"]
    gen = pair.generation(gen_id)
    assert gen["total_cost"] == pair.key_usage()
    if cost is not None:
        assert cost == gen["total_cost"]
