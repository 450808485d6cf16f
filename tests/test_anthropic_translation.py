"""The chat <-> Anthropic Messages translation, without a server: what Claude is sent for a chat
request, and what a chat client gets back for Claude's message and stream events."""

from __future__ import annotations

import json
from typing import Any

import pytest

from omnirouter.providers.anthropic_answer import StreamDecoder, completion_of
from omnirouter.providers.anthropic_request import messages_request
from omnirouter.providers.base import UpstreamError

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def request(**body: Any) -> dict[str, Any]:
    body.setdefault("model", "claude-x")
    return messages_request(body, endpoint_max=8192)[0]


def test_system_messages_become_system_blocks_with_their_cache_marks() -> None:
    out = request(
        messages=[
            {"role": "system", "content": "Be brief."},
            {
                "role": "system",
                "content": [{"type": "text", "text": "Long doc", "cache_control": {"type": "ephemeral"}}],
            },
            {"role": "user", "content": "Hi"},
        ]
    )
    assert out["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Long doc", "cache_control": {"type": "ephemeral"}},
    ]
    assert out["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
    assert out["max_tokens"] == 8192  # the endpoint's limit when the request sets none


def test_images_and_pdfs_become_image_and_document_blocks() -> None:
    out = request(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                    {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"}},
                    {"type": "file", "file": {"file_data": "data:text/plain;base64,aGkgdGhlcmU="}},
                ],
            }
        ]
    )
    blocks = out["messages"][0]["content"]
    assert blocks[1] == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    assert blocks[2] == {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
    assert blocks[3] == {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
        "title": "a.pdf",
    }
    assert blocks[4] == {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "hi there"}}


def test_tool_round_trip_with_signed_thinking() -> None:
    out = request(
        messages=[
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": None,
                "reasoning_details": [
                    {
                        "type": "reasoning.text",
                        "text": "Two cities.",
                        "signature": "sig-1",
                        "format": "anthropic-claude-v1",
                    },
                    {"type": "reasoning.encrypted", "data": "opaque", "format": "anthropic-claude-v1"},
                    {"type": "reasoning.encrypted", "data": "x", "format": "openai-responses-v1"},
                ],
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "id": "toolu_2",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Rome"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "toolu_2", "content": "24C"},
            {"role": "user", "content": "Thanks"},
        ],
        tools=[{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}, "strict": True}}],
        tool_choice="required",
        parallel_tool_calls=False,
        reasoning={"max_tokens": 2000},
    )
    assistant, results = out["messages"][1], out["messages"][2]
    assert assistant["content"] == [
        {"type": "thinking", "thinking": "Two cities.", "signature": "sig-1"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {"city": "Rome"}},
    ]
    assert results == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "24C"},
            {"type": "text", "text": "Thanks"},
        ],
    }
    assert out["tools"] == [{"name": "weather", "input_schema": {"type": "object"}}]  # strict needs the beta
    assert out["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert out["thinking"] == {"type": "enabled", "budget_tokens": 2000}


def test_strict_tools_kept_with_the_beta_and_streamed_tools_stream_eagerly() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}, "strict": True}}],
    }
    out, _ = messages_request(body, endpoint_max=None, betas="structured-outputs-2025-11-13", stream=True)
    assert out["tools"] == [
        {"name": "f", "input_schema": {"type": "object"}, "strict": True, "eager_input_streaming": True}
    ]
    assert out["stream"] is True and out["max_tokens"] == 4096


@pytest.mark.parametrize(
    ("reasoning", "max_tokens", "budget"),
    [
        ({"effort": "high"}, 10000, 8000),
        ({"effort": "low"}, 2000, 1024),  # never below Anthropic's minimum
        ({"enabled": True}, 10000, 5000),  # enabled alone is medium
        ({"max_tokens": 50000}, 10000, 9999),  # the budget stays below max_tokens
        ({"effort": "none"}, 10000, None),
        ({"effort": "high"}, 1024, None),  # no room for the minimum budget
        ({"exclude": True}, 10000, None),  # hiding reasoning does not ask for it
        ({"exclude": True, "effort": "low"}, 10000, 2000),
    ],
)
def test_reasoning_becomes_a_thinking_budget(reasoning: dict[str, Any], max_tokens: int, budget: int | None) -> None:
    out = request(messages=[{"role": "user", "content": "x"}], reasoning=reasoning, max_tokens=max_tokens,
                  temperature=0.3)  # fmt: skip
    if budget is None:
        assert "thinking" not in out and out["temperature"] == 0.3
    else:
        assert out["thinking"] == {"type": "enabled", "budget_tokens": budget}
        assert "temperature" not in out  # Anthropic refuses sampling settings while thinking


def test_other_parameters() -> None:
    out = request(
        messages=[{"role": "user", "content": "x"}],
        stop="END",
        user="hashed-user",
        top_k=5,
        seed=7,
        frequency_penalty=0.5,
        response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}}},
        cache_control={"type": "ephemeral"},
    )
    assert out["stop_sequences"] == ["END"]
    assert out["metadata"] == {"user_id": "hashed-user"}
    assert out["top_k"] == 5
    assert out["output_config"] == {"format": {"type": "json_schema", "schema": {"type": "object"}}}
    assert out["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    assert "seed" not in out and "frequency_penalty" not in out


def test_audio_is_refused_as_the_clients_error() -> None:
    with pytest.raises(UpstreamError) as info:
        request(
            messages=[
                {"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}]}
            ]
        )
    assert info.value.status == 400


MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-x",
    "content": [
        {"type": "thinking", "thinking": "Let me see.", "signature": "sig-a"},
        {"type": "redacted_thinking", "data": "secret"},
        {"type": "text", "text": "Calling."},
        {"type": "tool_use", "id": "toolu_9", "name": "weather", "input": {"city": "Oslo"}},
    ],
    "stop_reason": "tool_use",
    "usage": {
        "input_tokens": 10,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 20,
        "output_tokens": 7,
    },
}


def test_a_message_becomes_a_chat_completion() -> None:
    out = completion_of(json.dumps(MESSAGE).encode())
    message = out["choices"][0]["message"]
    assert message["content"] == "Calling."
    assert message["reasoning"] == "Let me see."
    assert message["reasoning_details"] == [
        {
            "type": "reasoning.text",
            "text": "Let me see.",
            "signature": "sig-a",
            "format": "anthropic-claude-v1",
            "index": 0,
        },
        {"type": "reasoning.encrypted", "data": "secret", "format": "anthropic-claude-v1", "index": 1},
    ]
    assert message["tool_calls"] == [
        {"id": "toolu_9", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}}
    ]
    assert out["choices"][0]["finish_reason"] == "tool_use"
    assert out["usage"] == {
        "prompt_tokens": 130,
        "completion_tokens": 7,
        "total_tokens": 137,
        "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 20},
    }
    assert (
        "reasoning" not in completion_of(json.dumps(MESSAGE).encode(), exclude_reasoning=True)["choices"][0]["message"]
    )


def test_stream_events_become_chunks() -> None:
    events = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_2",
                "model": "claude-x",
                "usage": {"input_tokens": 5, "cache_read_input_tokens": 50, "output_tokens": 1},
            },
        },
        {"type": "ping"},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Hmm."}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig-z"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_stop", "index": 1},
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
        },
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": ""}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": '{"a": 1}'}},
        {"type": "content_block_stop", "index": 2},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 12}},
        {"type": "message_stop"},
    ]
    decoder = StreamDecoder()
    chunks: list[dict[str, Any]] = []
    for event in events:
        decoder.feed(json.dumps(event).encode(), chunks)
    deltas = [c["choices"][0]["delta"] if c["choices"] else None for c in chunks]
    # The role rides on the first chunk with something in it (an error before that can fall back).
    assert deltas[0]["role"] == "assistant" and deltas[0]["reasoning"] == "Hmm."
    assert deltas[1]["reasoning_details"][0]["signature"] == "sig-z"
    assert deltas[2] == {"content": "Hi"}
    assert deltas[3]["tool_calls"][0] == {
        "index": 0,
        "id": "toolu_1",
        "type": "function",
        "function": {"name": "f", "arguments": ""},
    }
    assert deltas[4] == {"tool_calls": [{"index": 0, "function": {"arguments": '{"a": 1}'}}]}
    assert chunks[5]["choices"][0]["finish_reason"] == "tool_use"
    assert chunks[6]["choices"] == [] and chunks[6]["usage"]["prompt_tokens"] == 55
    assert chunks[6]["usage"]["completion_tokens"] == 12
    assert chunks[6]["usage"]["prompt_tokens_details"]["cached_tokens"] == 50
    assert decoder.done and all(c["id"] == "msg_2" for c in chunks)


def test_an_error_event_fails_the_stream_with_its_status() -> None:
    event = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    with pytest.raises(UpstreamError) as info:
        StreamDecoder().feed(json.dumps(event).encode(), [])
    assert info.value.status == 529 and info.value.retryable and info.value.provider_code == "overloaded_error"


def test_temperature_is_clamped_to_anthropics_range() -> None:
    assert request(messages=[{"role": "user", "content": "x"}], temperature=1.6)["temperature"] == 1.0


def test_excluded_reasoning_is_not_streamed() -> None:
    decoder = StreamDecoder(exclude_reasoning=True)
    chunks: list[dict[str, Any]] = []
    for event in (
        {"type": "message_start", "message": {"id": "m", "model": "c", "usage": {"input_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "secret"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "s"}},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "ok"}},
    ):
        decoder.feed(json.dumps(event).encode(), chunks)
    assert [c["choices"][0]["delta"] for c in chunks] == [{"role": "assistant", "content": "ok"}]


def test_a_providers_request_head_keeps_its_key_out_of_reprs() -> None:
    from omnirouter.catalog.types import Provider
    from omnirouter.providers.anthropic import _target

    target = _target(Provider(slug="a", name="A", api="anthropic", base_url="https://h/v1", api_key="sk-ant-secret"))
    assert b"x-api-key: sk-ant-secret\r\n" in target.head
    assert "sk-ant-secret" not in repr(target)
