"""The spec validation helpers themselves: they accept good bodies and reject bad ones readably."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from tests.spec_validation import (
    SPEC_PATH,
    ValidationError,
    parse_sse,
    require_spec,
    spec_available,
    validate,
    validate_response,
    validate_sse,
)

CHAT_RESULT: dict[str, Any] = {
    "id": "chatcmpl-123",
    "object": "chat.completion",
    "created": 1677652288,
    "model": "openai/gpt-4o",
    "system_fingerprint": "fp_44709d6fcb",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Paris."}}],
    "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
}
CHUNK: dict[str, Any] = {
    "id": "chatcmpl-123",
    "object": "chat.completion.chunk",
    "created": 1677652288,
    "model": "openai/gpt-4o",
    "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": None}],
}


@pytest.fixture(autouse=True)
def _spec() -> None:
    require_spec()


def test_spec_path_is_beside_the_checkout() -> None:
    assert SPEC_PATH.parts[-3:] == ("shared", "spec", "openrouter-openapi.json")
    assert spec_available()


def test_good_chat_result_validates() -> None:
    validate(CHAT_RESULT, "ChatResult")
    validate_response("sendChatCompletionRequest", CHAT_RESULT)
    validate(CHUNK, "ChatStreamChunk")


def test_missing_choices_fails_readably() -> None:
    body = copy.deepcopy(CHAT_RESULT)
    del body["choices"]
    with pytest.raises(ValidationError, match="'choices' is a required property"):
        validate(body, "ChatResult")
    with pytest.raises(ValidationError, match="sendChatCompletionRequest"):
        validate_response("sendChatCompletionRequest", body)


def test_nested_error_names_the_location() -> None:
    body = copy.deepcopy(CHAT_RESULT)
    body["choices"][0]["finish_reason"] = "done"
    with pytest.raises(ValidationError) as info:
        validate(body, "ChatResult")
    assert "$.choices[0].finish_reason" in str(info.value)
    assert len(str(info.value)) < 1000  # no schema dump


def test_error_responses_by_status() -> None:
    validate_response("sendChatCompletionRequest", {"error": {"code": 429, "message": "Slow down"}}, "429")
    with pytest.raises(ValidationError):
        validate_response("sendChatCompletionRequest", {"message": "Slow down"}, "429")


def test_unknown_names_raise_key_error() -> None:
    with pytest.raises(KeyError):
        validate({}, "NoSuchSchema")
    with pytest.raises(KeyError):
        validate_response("noSuchOperation", {})
    with pytest.raises(KeyError):
        validate_response("sendChatCompletionRequest", {}, "299")


def test_sse_stream_validation() -> None:
    good = f": OPENROUTER PROCESSING\n\ndata: {json.dumps(CHUNK)}\n\ndata: [DONE]\n\n"
    events = validate_sse("sendChatCompletionRequest", good)
    assert [e["data"]["id"] for e in events] == ["chatcmpl-123"]
    assert parse_sse(good.encode())[-1] == {"data": "[DONE]"}

    with pytest.raises(ValidationError, match=r"\[DONE\]"):
        validate_sse("sendChatCompletionRequest", f"data: {json.dumps(CHUNK)}\n\n")
    bad = {**CHUNK, "object": "chat.completion"}
    with pytest.raises(ValidationError, match="event 0"):
        validate_sse("sendChatCompletionRequest", f"data: {json.dumps(bad)}\n\ndata: [DONE]\n\n")
    with pytest.raises(ValidationError, match="not JSON"):
        validate_sse("sendChatCompletionRequest", "data: {oops\n\ndata: [DONE]\n\n")
