"""Failure scenarios for every client format x upstream API: an upstream error before the first
token (a client error of the right class and status in the format's envelope; a 429 that falls back
to a second endpoint), and an error after the first token (in-band, in the format's own way)."""

from __future__ import annotations

import anthropic
import openai
import pytest

from omnirouter.testing import Reply, Status, Stream
from tests.scenarios.clients import (
    Ask,
    check_chat_order,
    check_messages_order,
    check_responses_order,
    documented_statuses,
    exact,
)
from tests.scenarios.conftest import Pair
from tests.spec_validation import spec_available, validate_response

STREAM = [pytest.param(False, id="json"), pytest.param(True, id="stream")]


# upstream status -> (the gateway's status, the openai SDK's class, the anthropic SDK's class)
STATUSES: dict[int | str, tuple[int, type[Exception], type[Exception]]] = {
    400: (400, openai.BadRequestError, anthropic.BadRequestError),
    # The operator's key refused upstream is not the caller's fault: a 502, as when every endpoint fails.
    "refused": (502, openai.InternalServerError, anthropic.InternalServerError),
    429: (429, openai.RateLimitError, anthropic.RateLimitError),
    503: (503, openai.InternalServerError, anthropic.ServiceUnavailableError),
}
CASES = [pytest.param(400, False, id="400-json"), pytest.param(400, True, id="400-stream"),
         pytest.param(429, False, id="429-json"), pytest.param(429, True, id="429-stream"),
         pytest.param("refused", False, id="key-refused-json"), pytest.param(503, True, id="503-stream")]  # fmt: skip
ENVELOPE_TYPES = {400: "invalid_request_error", 429: "rate_limit_error", 503: "overloaded_error"}


@pytest.mark.parametrize(("upstream_status", "stream"), CASES)
def test_upstream_error_before_the_first_token(pair: Pair, upstream_status: int | str, stream: bool) -> None:
    """An endpoint's error before anything was sent is the client's error, in its format's envelope
    with the status its SDK raises the right class for (nothing was billed)."""
    model = pair.up.model_refused if upstream_status == "refused" else pair.up.model
    if upstream_status != "refused":
        pair.up.primary.script(Status(int(upstream_status)))
    conv = pair.driver.conversation()
    pair.driver.user(conv, "hello")
    status, openai_class, anthropic_class = STATUSES[upstream_status]
    with pytest.raises(anthropic_class if pair.fmt == "messages" else openai_class) as info:
        pair.driver.ask(model, conv, stream=stream)
    assert info.value.status_code == status
    response = pair.driver.recorder.last.response
    assert response.status_code == status and response.headers["content-type"].startswith("application/json")
    body = exact(bytes(pair.driver.recorder.last.body))
    if spec_available() and str(status) in documented_statuses(pair.driver.operation):
        validate_response(pair.driver.operation, response.json(), status=str(status))
    if pair.fmt == "messages":  # Anthropic's envelope
        assert body["type"] == "error" and body["error"]["message"]
        if upstream_status in ENVELOPE_TYPES:
            assert body["error"]["type"] == ENVELOPE_TYPES[int(upstream_status)]
    else:  # OpenRouter's, on chat and Responses alike
        assert body["error"]["code"] == status and body["error"]["message"]
    assert len(pair.up.primary.requests) == 1  # one endpoint: nothing else to try
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


@pytest.mark.parametrize("stream", STREAM)
def test_upstream_429_falls_back_to_another_api(pair: Pair, stream: bool) -> None:
    """The backup speaks another API: the request is translated for it, even where the first
    attempt passed the client's body through."""
    other = pair.upstreams[pair.up.other_api]
    pair.up.primary.script(Status(429))
    other.backup.script(Reply("from the other API", prompt_tokens=10, completion_tokens=3))
    conv = pair.driver.conversation("Be brief.")
    pair.driver.user(conv, "hello")
    order = [f"{pair.api}-a", f"{other.api}-b"]
    answer = pair.driver.ask(pair.up.model_across, conv, Ask(provider_order=order), stream=stream)
    assert answer.text == "from the other API"
    assert other.system_of(other.backup.requests[-1].json) == "Be brief."
    pair.settle(answer, provider=other.backup_name())


FAULTS = {
    "upstream-error-event": Stream("alpha beta gamma delta", error_after=2),  # the upstream's own in-band error
    "connection-reset": Stream("alpha beta gamma delta", reset_after=2),
    "malformed-event": Stream("alpha beta gamma delta", broken_chunk_at=2),
    "ends-unfinished": Stream("alpha beta gamma delta", stop_after=2),  # no finish, no usage
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_error_after_the_first_token(pair: Pair, fault: str) -> None:
    """The stream has begun (200 sent): the failure arrives in-band, the format's way: a chat error
    chunk (then usage and [DONE]), an Anthropic `error` event, a Responses `response.failed`."""
    pair.up.primary.script(FAULTS[fault])
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
