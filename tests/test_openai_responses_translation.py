"""The `api: openai-responses` translation in both directions, field by field (the gateway tests in
test_openai_responses_upstream.py run it end to end)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from omnirouter.providers.base import UpstreamError
from omnirouter.providers.responses_answer import StreamDecoder, completion_of
from omnirouter.providers.responses_request import responses_request


def request(**body: Any) -> dict[str, Any]:
    return responses_request({"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}], **body})[0]


def test_messages_become_items() -> None:
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "Rule one."}]},
        {"role": "developer", "content": "Rule two."},
        {"role": "user", "content": [
            {"type": "text", "text": "Look:"},
            {"type": "image_url", "image_url": {"url": "https://x/cat.png", "detail": "low"}},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}},
        ]},
        {"role": "assistant", "content": "A cat.", "refusal": None},
        {"role": "system", "content": "Now be brief."},
        {"role": "user", "content": "More?"},
    ]  # fmt: skip
    body = request(messages=messages)
    assert body["instructions"] == "Rule one.\n\nRule two." and body["store"] is False
    user, assistant, developer, last = body["input"]
    assert user["content"] == [
        {"type": "input_text", "text": "Look:"},
        {"type": "input_image", "image_url": "https://x/cat.png", "detail": "low"},
        {"type": "input_file", "file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"},
    ]
    assert assistant == {"type": "message", "role": "assistant",
                         "content": [{"type": "output_text", "text": "A cat.", "annotations": []}]}  # fmt: skip
    assert developer == {"type": "message", "role": "developer", "content": "Now be brief."}
    assert last["content"] == "More?"


def test_only_openais_encrypted_reasoning_goes_back() -> None:
    details = [
        {"type": "reasoning.summary", "summary": "Thought.", "id": "rs_1", "format": "openai-responses-v1"},
        {"type": "reasoning.encrypted", "data": "gAAA1", "id": "rs_1", "format": "openai-responses-v1"},
        {"type": "reasoning.text", "text": "Claude's.", "signature": "sig", "format": "anthropic-claude-v1"},
        {"type": "reasoning.encrypted", "data": "gem", "id": "call_1", "format": "google-gemini-v1"},
        {"type": "reasoning.summary", "summary": "No ciphertext.", "id": "rs_2", "format": "openai-responses-v1"},
    ]
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    turn = {"role": "assistant", "content": None, "reasoning_details": details, "tool_calls": [call]}
    body = request(messages=[{"role": "user", "content": "q"}, turn, {"role": "tool", "tool_call_id": "call_1",
                                                                     "content": "ok"}])  # fmt: skip
    items = body["input"]
    assert [i["type"] for i in items] == ["message", "reasoning", "function_call", "function_call_output"]
    assert items[1] == {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Thought."}],
                        "encrypted_content": "gAAA1"}  # fmt: skip
    assert body["include"] == ["reasoning.encrypted_content"]


def test_options() -> None:
    body = request(max_tokens=5, stop=["x"], seed=3, frequency_penalty=1, logit_bias={"1": 2}, top_k=4,
                   tools=[{"type": "function", "function": {"name": "f", "parameters": {}, "strict": True}}],
                   tool_choice={"type": "function", "function": {"name": "f"}},
                   response_format={"type": "json_object"}, verbosity="low")  # fmt: skip
    assert body["max_output_tokens"] == 16  # OpenAI's minimum
    assert not {"stop", "seed", "frequency_penalty", "logit_bias", "top_k", "max_tokens"} & body.keys()
    empty = {"type": "object", "properties": {}}  # (OpenAI wants an object schema)
    assert body["tools"] == [{"type": "function", "name": "f", "parameters": empty, "strict": True}]
    assert body["tool_choice"] == {"type": "function", "name": "f"}
    assert body["text"] == {"format": {"type": "json_object"}, "verbosity": "low"}
    assert "reasoning" not in body and "include" not in body


@pytest.mark.parametrize(
    ("fields", "reasoning", "exclude"),
    [
        ({"reasoning": {"effort": "max"}}, {"effort": "xhigh", "summary": "auto"}, False),
        ({"reasoning": {"enabled": False}}, {"effort": "none"}, False),
        ({"reasoning": {"effort": "low", "exclude": True}}, {"effort": "low"}, True),
        ({"reasoning": {"max_tokens": 6000}, "max_tokens": 10000}, {"effort": "medium", "summary": "auto"}, False),
        ({"reasoning_effort": "minimal"}, {"effort": "minimal", "summary": "auto"}, False),
        ({"include_reasoning": False}, None, True),
    ],
)
def test_reasoning(fields: dict[str, Any], reasoning: dict[str, Any] | None, exclude: bool) -> None:
    body, excluded = responses_request({"model": "m", "messages": [{"role": "user", "content": "q"}], **fields})
    assert body.get("reasoning") == reasoning and excluded is exclude
    assert ("include" in body) is (reasoning is not None and reasoning["effort"] != "none")


def response(output: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    usage = {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4}, "output_tokens": 6,
             "output_tokens_details": {"reasoning_tokens": 2}, "total_tokens": 16}  # fmt: skip
    return {"id": "resp_1", "object": "response", "created_at": 1, "model": "gpt-5", "status": "completed",
            "output": output, "usage": usage, **fields}  # fmt: skip


def test_a_response_as_a_chat_completion() -> None:
    text = {"type": "output_text", "text": "See [1].", "annotations": [
        {"type": "url_citation", "url": "https://x", "title": "X", "start_index": 4, "end_index": 7}]}  # fmt: skip
    done = completion_of(response([
        {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Hmm."}],
         "encrypted_content": "gAAA"},
        {"type": "message", "id": "msg_1", "role": "assistant",
         "content": [text, {"type": "refusal", "refusal": "No."}]},
    ]))  # fmt: skip
    choice = done["choices"][0]
    message = choice["message"]
    assert message["content"] == "See [1]." and message["refusal"] == "No." and message["reasoning"] == "Hmm."
    assert message["annotations"][0]["url_citation"]["url"] == "https://x"
    assert message["reasoning_details"] == [
        {"type": "reasoning.summary", "summary": "Hmm.", "id": "rs_1", "format": "openai-responses-v1"},
        {"type": "reasoning.encrypted", "data": "gAAA", "id": "rs_1", "format": "openai-responses-v1"},
    ]
    assert (choice["finish_reason"], choice["native_finish_reason"]) == ("stop", "completed")
    assert done["usage"] == {"prompt_tokens": 10, "completion_tokens": 6, "total_tokens": 16,
                             "prompt_tokens_details": {"cached_tokens": 4},
                             "completion_tokens_details": {"reasoning_tokens": 2}}  # fmt: skip


def test_an_incomplete_or_failed_response() -> None:
    cut = completion_of(response([], status="incomplete", incomplete_details={"reason": "max_output_tokens"}))
    assert cut["choices"][0]["finish_reason"] == "length"
    filtered = completion_of(response([], status="incomplete", incomplete_details={"reason": "content_filter"}))
    assert filtered["choices"][0]["finish_reason"] == "content_filter"
    with pytest.raises(UpstreamError) as caught:
        completion_of(response([], status="failed", error={"code": "rate_limit_exceeded", "message": "Slow."}))
    assert caught.value.status == 429 and caught.value.message == "Slow."


def feed(decoder: StreamDecoder, *events: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for e in events:
        decoder.feed(msgspec.json.encode(e), out)
    return out


def test_stream_events_as_chunks() -> None:
    decoder = StreamDecoder()
    call = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f", "arguments": ""}
    chunks = feed(
        decoder,
        {"type": "response.created", "response": {"id": "resp_1", "model": "gpt-5", "created_at": 1}},
        {"type": "response.output_item.added", "output_index": 0, "item": call},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": '{"a":'},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": "1}"},
        {"type": "response.completed", "response": response([{**call, "arguments": '{"a":1}'}])},
    )
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0]["tool_calls"][0]["id"] == "call_1" and deltas[0]["role"] == "assistant"
    assert "".join(d["tool_calls"][0]["function"]["arguments"] for d in deltas if d.get("tool_calls")) == '{"a":1}'
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls" and chunks[-1]["usage"]["prompt_tokens"] == 10
    assert decoder.done


def test_an_error_event_fails_the_stream() -> None:
    with pytest.raises(UpstreamError) as caught:
        feed(StreamDecoder(), {"type": "error", "code": "context_length_exceeded", "message": "Too long."})
    assert caught.value.status == 400 and caught.value.provider_code == "context_length_exceeded"


def test_a_streamed_citation_is_an_annotation() -> None:
    cite = {"type": "url_citation", "url": "https://x", "title": "X", "start_index": 0, "end_index": 3}
    event = {"type": "response.output_text.annotation.added", "item_id": "msg_1", "output_index": 0,
             "content_index": 0, "annotation_index": 0, "annotation": cite}  # fmt: skip
    chunks = feed(StreamDecoder(), event)
    assert chunks[0]["choices"][0]["delta"]["annotations"][0]["url_citation"]["url"] == "https://x"
