"""The Anthropic Messages client format on its own: request -> internal chat body, completion ->
Anthropic message, chat chunks -> Anthropic SSE events, GatewayError -> Anthropic error envelope.
Answers and events are validated against the OpenAPI document's Messages schemas."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from omnirouter.errors import GatewayError
from omnirouter.formats import openai_chat
from omnirouter.formats.anthropic_messages import MESSAGES
from omnirouter.formats.anthropic_request import parse_request
from tests.spec_validation import require_spec, validate, validate_response, validate_sse

FIXTURES = Path(__file__).parent / "fixtures" / "cli"
PDF = "JVBERi0xLjQKMSAwIG9iago8PC9UeXBlIC9QYWdlPj4KZW5kb2JqCg=="  # "%PDF-1.4 ... /Type /Page ..."
PNG = "iVBORw0KGgo="


def parse(**body: Any) -> dict[str, Any]:
    body.setdefault("model", "test/alpha")
    body.setdefault("max_tokens", 100)
    out = MESSAGES.parse(body, {})
    openai_chat.parse(out)  # what the pipeline does next: the translation must be a valid chat request
    return out


def refused(body: Any) -> dict[str, Any]:
    with pytest.raises(GatewayError) as info:
        MESSAGES.parse(body, {})
    status, envelope = MESSAGES.error(info.value)
    assert status == 400
    assert envelope["type"] == "error" and envelope["error"]["type"] == "invalid_request_error"
    require_spec()
    validate_response("createMessages", envelope, "400")
    return envelope["error"]


# -- requests


def test_system_string_and_blocks_keep_cache_control() -> None:
    assert parse(system="be brief", messages=[{"role": "user", "content": "hi"}])["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hi"},
    ]
    out = parse(
        system=[{"type": "text", "text": "a"}, {"type": "text", "text": "b", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": "hi"}],
    )
    assert out["messages"][0] == {
        "role": "system",
        "content": [
            {"type": "text", "text": "a"},
            {"type": "text", "text": "b", "cache_control": {"type": "ephemeral"}},
        ],
    }


def test_system_role_messages_inside_messages_stay_in_place() -> None:
    out = parse(
        messages=[
            {"role": "user", "content": "hi"},
            {"role": "system", "content": [{"type": "text", "text": "reminder"}]},
            {"role": "assistant", "content": "hello"},
        ]
    )
    assert [m["role"] for m in out["messages"]] == ["user", "system", "assistant"]
    assert out["messages"][1]["content"] == "reminder"


def test_image_and_document_blocks_become_chat_parts() -> None:
    out = parse(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
                    {
                        "type": "document",
                        "title": "report.pdf",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
                        "cache_control": {"type": "ephemeral"},
                    },
                    {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}},
                    {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain"}},
                    {"type": "text", "text": "summarise"},
                ],
            }
        ]
    )
    assert out["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {
            "type": "file",
            "file": {"filename": "report.pdf", "file_data": f"data:application/pdf;base64,{PDF}"},
            "cache_control": {"type": "ephemeral"},
        },
        {"type": "file", "file": {"filename": "document.pdf", "file_data": "https://example.com/a.pdf"}},
        {"type": "text", "text": "plain"},
        {"type": "text", "text": "summarise"},
    ]


def test_tools_and_tool_choice() -> None:
    tool = {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {}}}
    server_tool = {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
    msgs = [{"role": "user", "content": "weather?"}]
    out = parse(messages=msgs, tools=[tool, server_tool], tool_choice={"type": "auto"})
    assert out["tools"] == [
        {
            "type": "function",
            "function": {"name": "get_weather", "parameters": tool["input_schema"], "description": "Weather"},
        },
        # for the gateway's openrouter:web_search, when it has a search engine (else left out there)
        {"type": "web_search_20250305", "parameters": {"max_uses": 3}},
    ]
    assert out["tool_choice"] == "auto" and "parallel_tool_calls" not in out
    assert parse(messages=msgs, tools=[tool], tool_choice={"type": "any"})["tool_choice"] == "required"
    assert parse(messages=msgs, tools=[tool], tool_choice={"type": "none"})["tool_choice"] == "none"
    named = parse(
        messages=msgs,
        tools=[tool],
        tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
    )
    assert named["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert named["parallel_tool_calls"] is False


def test_tool_use_and_tool_result_round_trip() -> None:
    out = parse(
        messages=[
            {"role": "user", "content": "weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Rome"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_2",
                        "is_error": True,
                        "content": [{"type": "text", "text": "service down"}],
                        "cache_control": {"type": "ephemeral"},
                    },
                    {"type": "text", "text": "and tomorrow?"},
                ],
            },
        ]
    )
    assistant, first, second, user = out["messages"][1:]
    assert assistant == {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": "toolu_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}},
        ],
    }
    assert first == {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"}
    assert second == {
        "role": "tool",
        "tool_call_id": "toolu_2",
        "content": [{"type": "text", "text": "Error: service down", "cache_control": {"type": "ephemeral"}}],
    }
    assert user == {"role": "user", "content": "and tomorrow?"}


def test_thinking_config_and_signed_blocks() -> None:
    msgs = [{"role": "user", "content": "think"}]
    assert parse(messages=msgs, thinking={"type": "enabled", "budget_tokens": 2048})["reasoning"] == {
        "max_tokens": 2048
    }
    assert parse(messages=msgs, thinking={"type": "disabled"})["reasoning"] == {"effort": "none"}
    assert parse(messages=msgs, thinking={"type": "adaptive"})["reasoning"] == {"enabled": True}
    adaptive = parse(
        messages=msgs, thinking={"type": "adaptive", "display": "omitted"}, output_config={"effort": "high"}
    )
    assert adaptive["reasoning"] == {"effort": "high"}
    assert "reasoning" not in parse(messages=msgs)
    out = parse(
        messages=[
            *msgs,
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig-1"},
                    {"type": "redacted_thinking", "data": "opaque"},
                    {"type": "text", "text": "done"},
                ],
            },
            {"role": "user", "content": "again"},
        ]
    )
    assert out["messages"][1] == {
        "role": "assistant",
        "content": "done",
        "reasoning_details": [
            {
                "type": "reasoning.text",
                "text": "hmm",
                "format": "anthropic-claude-v1",
                "index": 0,
                "signature": "sig-1",
            },
            {"type": "reasoning.encrypted", "data": "opaque", "format": "anthropic-claude-v1", "index": 1},
        ],
    }


def test_sampling_user_extensions_and_dropped_fields() -> None:
    out = parse(
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        temperature=0.5,
        top_p=0.9,
        top_k=40,
        stop_sequences=["END"],
        metadata={"user_id": "u-1"},
        provider={"order": ["fake-a"]},
        plugins=[{"id": "web"}],
        route="fallback",
        session_id="s-1",
        models=["test/beta"],
        output_config={"effort": "low", "format": {"type": "json_schema", "schema": {"type": "object"}}},
        context_management={"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        container="ctr_1",
        mcp_servers=[{"type": "url", "url": "https://mcp.example", "name": "x"}],
        service_tier="auto",
        speed="fast",
    )
    assert out == {
        "model": "test/alpha",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 100,
        "stream": True,
        "temperature": 0.5,
        "top_p": 0.9,
        "top_k": 40,
        "stop": ["END"],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": {"type": "object"}, "strict": True},
        },
        "user": "u-1",
        "models": ["test/beta"],
        "provider": {"order": ["fake-a"]},
        "plugins": [{"id": "web"}],
        "route": "fallback",
        "session_id": "s-1",
    }
    assert parse(messages=[{"role": "user", "content": "hi"}], fallbacks=[{"model": "test/beta"}])["models"] == [
        "test/beta"
    ]


@pytest.mark.parametrize("name", ["claude_code_first_turn", "claude_code_tool_turn"])
def test_what_claude_code_sends_is_accepted(name: str) -> None:
    body = json.loads((FIXTURES / f"{name}.json").read_text())["body"]
    out = parse(**body)
    assert out["stream"] is True and out["reasoning"]["effort"] in ("medium", "high")
    assert len(out["tools"]) == len(body["tools"])
    assert [m["role"] for m in out["messages"]][:2] == ["system", "user"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"model": "m", "max_tokens": 5, "messages": []}, "Expected `array` of length >= 1 - at `$.messages`"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "missing required field `max_tokens`"),
        ({"model": "m", "max_tokens": 5}, "missing required field `messages`"),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [
                    {"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f_1"}}]}
                ],
            },
            "file ids are not supported",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": [{"type": "thinking", "thinking": "x"}]}],
            },
            "user messages hold content blocks of type text, image, document",
        ),
        (
            {"model": "m", "max_tokens": 5, "messages": [{"role": "assistant", "content": [{"type": "video"}]}]},
            "assistant messages hold content blocks of type text, tool_use, thinking, redacted_thinking",
        ),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "1"}]}
                ],
            },
            "matches no earlier tool_use",
        ),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "tool", "content": "x"}]}, "role is one of"),
        ({"model": "m", "max_tokens": "many", "messages": [{"role": "user", "content": "x"}]}, "$.max_tokens"),
        (
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "x"}],
                "models": ["a"],
                "fallbacks": [{"model": "b"}],
            },
            "cannot be combined",
        ),
        (["not", "an", "object"], "JSON object"),
    ],
)
def test_bad_input_is_a_400_in_anthropic_envelope(body: Any, says: str) -> None:
    assert says in refused(body)["message"]


# -- answers


def completion(
    message: dict[str, Any], finish: str = "stop", native: str | None = None, **usage: Any
) -> dict[str, Any]:
    return {
        "id": "gen-1",
        "object": "chat.completion",
        "model": "test/alpha",
        "provider": "Fake A",
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish, "native_finish_reason": native or finish}
        ],
        "usage": {
            "prompt_tokens": 100,
            "completion_tokens": 20,
            "total_tokens": 120,
            "prompt_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 10},
            "completion_tokens_details": {"reasoning_tokens": 5},
            "cost": Decimal("0.00042"),
            "is_byok": False,
            "cost_details": {
                "upstream_inference_cost": Decimal("0.00042"),
                "upstream_inference_prompt_cost": Decimal("0.0003"),
                "upstream_inference_completions_cost": Decimal("0.00012"),
            },
            **usage,
        },
    }


def rendered(data: dict[str, Any]) -> dict[str, Any]:
    out = MESSAGES.render(data, {})
    require_spec()
    validate_response("createMessages", json.loads(json.dumps(out, default=float)))
    return out


def test_render_text_usage_and_cost() -> None:
    out = rendered(completion({"role": "assistant", "content": "Hello"}))
    assert out["id"] == "gen-1" and out["type"] == "message" and out["role"] == "assistant"
    assert out["model"] == "test/alpha" and out["provider"] == "Fake A"
    assert out["content"] == [{"type": "text", "text": "Hello", "citations": None}]
    assert out["stop_reason"] == "end_turn" and out["stop_sequence"] is None
    usage = out["usage"]
    assert (usage["input_tokens"], usage["cache_read_input_tokens"], usage["cache_creation_input_tokens"]) == (
        30,
        60,
        10,
    )
    assert usage["output_tokens"] == 20 and usage["output_tokens_details"] == {"thinking_tokens": 5}
    assert usage["cost"] == Decimal("0.00042")


def test_render_thinking_and_tool_calls() -> None:
    message = {
        "role": "assistant",
        "content": None,
        "reasoning": "let me see",
        "reasoning_details": [
            {"type": "reasoning.text", "text": "let me see", "signature": "sig-9", "format": "anthropic-claude-v1"},
            {"type": "reasoning.encrypted", "data": "xyz", "format": "anthropic-claude-v1"},
        ],
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "lookup", "arguments": "{broken"}},
        ],
    }
    out = rendered(completion(message, "tool_calls"))
    assert out["content"] == [
        {"type": "thinking", "thinking": "let me see", "signature": "sig-9"},
        {"type": "redacted_thinking", "data": "xyz"},
        {"type": "tool_use", "id": "call_1", "name": "lookup", "input": {"q": "x"}, "caller": {"type": "direct"}},
        {
            "type": "tool_use",
            "id": "call_2",
            "name": "lookup",
            "input": {"raw_arguments": "{broken"},
            "caller": {"type": "direct"},
        },
    ]
    assert out["stop_reason"] == "tool_use"
    unsigned = rendered(completion({"role": "assistant", "content": "ok", "reasoning": "plain"}))
    assert unsigned["content"][0] == {"type": "thinking", "thinking": "plain", "signature": ""}


@pytest.mark.parametrize(
    ("finish", "native", "stop"),
    [
        ("stop", "stop", "end_turn"),
        ("length", "length", "max_tokens"),
        ("stop", "stop_sequence", "stop_sequence"),
        ("content_filter", "content_filter", "refusal"),
        ("stop", "pause_turn", "pause_turn"),
        ("length", "max_tokens", "max_tokens"),
    ],
)
def test_stop_reasons(finish: str, native: str, stop: str) -> None:
    assert rendered(completion({"role": "assistant", "content": "x"}, finish, native))["stop_reason"] == stop


# -- streams


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "delta": delta or {}, "finish_reason": finish}
    if finish:
        choice["native_finish_reason"] = finish
    return {"id": "gen-7", "object": "chat.completion.chunk", "model": "test/alpha", "provider": "Fake A",
            "choices": [choice], **extra}  # fmt: skip


def final_chunk(**usage: Any) -> dict[str, Any]:
    return {"id": "gen-7", "model": "test/alpha", "choices": [],
            "usage": {"prompt_tokens": 12, "completion_tokens": 7, "cost": Decimal("0.0001"), **usage}}  # fmt: skip


def stream(*chunks: dict[str, Any]) -> list[dict[str, Any]]:
    """The SSE events the encoder writes for these chunks, validated against the spec; with the
    event names checked to match the payloads' types."""
    encoder = MESSAGES.encoder({})
    raw = b"".join(encoder.chunk(c) for c in chunks) + encoder.done()
    text = raw.decode()
    require_spec()
    events = validate_sse("createMessages", text, require_done=False)  # Anthropic's streams end without [DONE]
    for e in events:
        assert e["event"] == e["data"]["type"]
    return [e["data"] for e in events]


def kinds(events: list[dict[str, Any]]) -> list[str]:
    """Each event's type, with its block's or delta's type for content_block_start/delta."""
    out = []
    for e in events:
        inner = e.get("content_block") or (e.get("delta") if e["type"] == "content_block_delta" else None)
        out.append(f"{e['type']}:{inner['type']}" if inner else e["type"])
    return out


def test_text_stream_event_sequence() -> None:
    events = stream(chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"}), chunk({"content": "lo"}),
                    chunk({}, "stop"), final_chunk())  # fmt: skip
    assert kinds(events) == [
        "message_start",
        "content_block_start:text",
        "content_block_delta:text_delta",
        "content_block_delta:text_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start, delta = events[0]["message"], events[-2]
    assert start["id"] == "gen-7" and start["model"] == "test/alpha" and start["content"] == []
    assert "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta") == "Hello"
    assert delta["delta"]["stop_reason"] == "end_turn"
    assert delta["usage"]["input_tokens"] == 12 and delta["usage"]["output_tokens"] == 7
    assert delta["usage"]["cost"] == 0.0001


def test_thinking_then_text_stream_carries_the_signature() -> None:
    def detail(text: str = "", signature: str | None = None) -> dict[str, Any]:
        d: dict[str, Any] = {"type": "reasoning.text", "text": text, "format": "anthropic-claude-v1", "index": 0}
        if signature:
            d["signature"] = signature
        return d

    events = stream(
        chunk({"reasoning": "Let ", "reasoning_details": [detail("Let ")]}),
        chunk({"reasoning": "me think", "reasoning_details": [detail("me think")]}),
        chunk({"reasoning_details": [detail(signature="sig-abc")]}),
        chunk({"content": "Answer"}),
        chunk({}, "stop"),
        final_chunk(completion_tokens_details={"reasoning_tokens": 4}),
    )
    assert kinds(events) == [
        "message_start",
        "content_block_start:thinking",
        "content_block_delta:thinking_delta",
        "content_block_delta:thinking_delta",
        "content_block_delta:signature_delta",
        "content_block_stop",
        "content_block_start:text",
        "content_block_delta:text_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert [e["index"] for e in events if e["type"] == "content_block_start"] == [0, 1]
    assert events[4]["delta"]["signature"] == "sig-abc"
    assert events[-2]["usage"]["output_tokens_details"] == {"thinking_tokens": 4}


def test_tool_call_stream_partial_json_one_block_per_call() -> None:
    def call(index: int, args: str, name: str | None = None) -> dict[str, Any]:
        c: dict[str, Any] = {"index": index, "function": {"arguments": args}}
        if name:
            c.update(id=f"call_{index}", type="function")
            c["function"]["name"] = name
        return {"tool_calls": [c]}

    events = stream(
        chunk({"content": "Let me look."}),
        chunk(call(0, "", "lookup")),
        chunk(call(0, '{"q": ')),
        chunk(call(0, '"x"}')),
        chunk(call(1, '{"q": "y"}', "lookup")),
        chunk({}, "tool_calls"),
        final_chunk(),
    )
    assert kinds(events) == [
        "message_start",
        "content_block_start:text",
        "content_block_delta:text_delta",
        "content_block_stop",
        "content_block_start:tool_use",
        "content_block_delta:input_json_delta",
        "content_block_delta:input_json_delta",
        "content_block_stop",
        "content_block_start:tool_use",
        "content_block_delta:input_json_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    starts = [e["content_block"] for e in events if e["type"] == "content_block_start"][1:]
    assert [(b["id"], b["name"], b["input"]) for b in starts] == [("call_0", "lookup", {}), ("call_1", "lookup", {})]
    first = "".join(
        e["delta"]["partial_json"] for e in events if e.get("index") == 1 and e["type"] == "content_block_delta"
    )
    assert json.loads(first) == {"q": "x"}
    assert events[-2]["delta"]["stop_reason"] == "tool_use"


def test_tool_calls_without_an_index_are_told_apart_by_their_ids() -> None:
    def call(args: str, name: str | None = None) -> dict[str, Any]:
        c: dict[str, Any] = {"function": {"arguments": args}}
        if name:
            c.update(id=f"call_{name}", type="function")
            c["function"]["name"] = name
        return {"tool_calls": [c]}

    events = stream(chunk(call('{"a"', "one")), chunk(call(": 1}")), chunk(call("{}", "two")), chunk({}, "tool_calls"),
                    final_chunk())  # fmt: skip
    starts = [e["content_block"]["id"] for e in events if e["type"] == "content_block_start"]
    assert starts == ["call_one", "call_two"]
    first = "".join(e["delta"]["partial_json"] for e in events if e.get("index") == 0 and "delta" in e)
    assert json.loads(first) == {"a": 1}


def test_error_mid_stream_is_an_error_event_and_the_end() -> None:
    error = {"code": 502, "message": "Provider returned error", "metadata": {"error_type": "provider_unavailable"}}
    events = stream(
        chunk({"content": "partial"}),
        {**chunk({"content": ""}, "error"), "error": error},
        final_chunk(),
    )
    assert kinds(events) == ["message_start", "content_block_start:text", "content_block_delta:text_delta", "error"]
    assert events[-1] == {
        "type": "error",
        "error": {"type": "api_error", "message": "Provider returned error", "error_type": "provider_unavailable"},
    }
    overloaded = stream({**chunk({}, "error"), "error": {"code": 503, "message": "busy", "metadata": {}}})
    assert overloaded[-1]["error"]["type"] == "overloaded_error"


def test_a_refusal_streams_as_text_with_stop_reason_refusal() -> None:
    events = stream(chunk({"refusal": "I can't help with that."}), chunk({}, "content_filter"), final_chunk())
    assert [e["delta"]["text"] for e in events if e["type"] == "content_block_delta"] == ["I can't help with that."]
    assert events[-2]["delta"]["stop_reason"] == "refusal"


def test_a_stream_that_ends_without_usage_still_closes_the_message() -> None:
    events = stream(chunk({"content": "cut"}))
    assert kinds(events)[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert events[-2]["usage"]["output_tokens"] == 0


# -- errors


@pytest.mark.parametrize(
    ("status", "error_type", "anthropic_type"),
    [
        (400, None, "invalid_request_error"),
        (401, None, "authentication_error"),
        (402, None, "billing_error"),
        (403, None, "permission_error"),
        (404, None, "not_found_error"),
        (408, None, "timeout_error"),
        (413, None, "invalid_request_error"),
        (429, "rate_limit_exceeded", "rate_limit_error"),
        (500, None, "api_error"),
        (502, "provider_unavailable", "api_error"),
        (503, "provider_overloaded", "overloaded_error"),
        (504, "timeout", "timeout_error"),
        (529, None, "overloaded_error"),
        (400, "context_length_exceeded", "invalid_request_error"),
    ],
)
def test_error_envelope_keeps_the_status(status: int, error_type: str | None, anthropic_type: str) -> None:
    metadata = {"error_type": error_type} if error_type else None
    got_status, body = MESSAGES.error(GatewayError(status, "something", metadata))
    assert got_status == status
    assert body["type"] == "error" and body["request_id"] is None
    assert body["error"]["type"] == anthropic_type and body["error"]["message"] == "something"
    require_spec()
    validate(body, "AnthropicMessagesErrorResponse")


def test_integral_floats_are_integers_nested_too() -> None:
    """JSON has one number type: `1024.0` is the integer 1024, wherever the schema asks for one."""
    body = parse_request({"model": "m", "max_tokens": 2000.0, "thinking": {"type": "enabled", "budget_tokens": 1024.0},
                          "messages": [{"role": "user", "content": "hi"}]})  # fmt: skip
    assert body["max_tokens"] == 2000 and body["reasoning"] == {"max_tokens": 1024}


def test_another_providers_encrypted_reasoning_comes_back_as_that_providers() -> None:
    """Anthropic's own redacted thinking is relayed as it is; OpenAI's encrypted reasoning item (or a
    Gemini signature) rides in a redacted_thinking block and, sent back, is that provider's again."""
    from omnirouter.formats.anthropic_terms import encrypted_detail, redacted_data

    claude = {"type": "reasoning.encrypted", "data": "EqQBCkYIBxgC", "format": "anthropic-claude-v1"}
    assert redacted_data(claude) == "EqQBCkYIBxgC"
    assert encrypted_detail("EqQBCkYIBxgC", 0) == {**claude, "index": 0}
    openai = {"type": "reasoning.encrypted", "data": "gAAAAB-opaque", "id": "rs_42", "format": "openai-responses-v1"}
    wrapped = redacted_data(openai)
    assert wrapped != openai["data"]
    assert encrypted_detail(wrapped, 3) == {**openai, "index": 3}
    assert encrypted_detail(wrapped[:-4] + "@@@@", 0)["format"] == "anthropic-claude-v1"  # not ours: as it came
