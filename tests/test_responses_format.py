"""The Responses client format on its own: request -> internal chat request, chat completion ->
Response object, chat stream -> `response.*` events, errors; checked against the OpenAPI document
and parsed by the official `openai` SDK's types."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pydantic
import pytest
from openai import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent

from omnirouter import servertools
from omnirouter.errors import GatewayError
from omnirouter.formats import openai_chat
from omnirouter.formats.openai_responses import RESPONSES
from omnirouter.jsonio import encode
from tests.spec_validation import parse_sse, require_spec, validate, validate_response, validate_sse

OP = "createResponses"
GEN = "gen-1700000000-abcdefghijABCDEFGHIJ"
EVENTS = pydantic.TypeAdapter(ResponseStreamEvent)
CODEX_FIXTURE = Path(__file__).parent / "fixtures" / "cli" / "codex_tool_turn.json"


def parse(body: dict[str, Any]) -> dict[str, Any]:
    out = RESPONSES.parse(body, {})
    openai_chat.parse(out)  # what the pipeline does next: the internal request must be valid chat
    return out


def bad(body: Any) -> str:
    with pytest.raises(GatewayError) as info:
        RESPONSES.parse(body, {})
    assert info.value.status == 400
    return info.value.message


def completion(message: dict[str, Any], finish: str = "stop", **extra: Any) -> dict[str, Any]:
    return {
        "id": GEN,
        "object": "chat.completion",
        "created": 1700000000,
        "model": "test/alpha",
        "provider": "Fake A",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", **message},
                "finish_reason": finish,
                "native_finish_reason": finish,
                "logprobs": None,
            }
        ],
        "usage": USAGE,
        **extra,
    }


USAGE = {
    "prompt_tokens": 12,
    "completion_tokens": 30,
    "total_tokens": 42,
    "prompt_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 2, "audio_tokens": 0, "video_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 10, "audio_tokens": 0},
    "cost": Decimal("0.000072"),
    "is_byok": False,
    "cost_details": {
        "upstream_inference_cost": Decimal("0.000072"),
        "upstream_inference_prompt_cost": Decimal("0.000012"),
        "upstream_inference_completions_cost": Decimal("0.00006"),
    },
}


def rendered(body: dict[str, Any], message: dict[str, Any], finish: str = "stop", **extra: Any) -> dict[str, Any]:
    """Render through JSON, as a client receives it; validated by the spec and the SDK."""
    request = RESPONSES.parse(body, {})
    out = json.loads(encode(RESPONSES.render(completion(message, finish, **extra), request)))
    require_spec()
    validate_response(OP, out)
    Response.model_validate(out)
    return out


# -- requests


def test_string_input_and_instructions():
    out = parse({"model": "test/alpha", "input": "Tell me a joke", "instructions": "Be brief."})
    assert out["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Tell me a joke"},
    ]
    assert out["model"] == "test/alpha" and out["stream"] is False


def test_items_become_chat_messages():
    body = {
        "model": "test/alpha",
        "input": [
            {"role": "developer", "content": "Answer in French."},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "What is this?"},
                {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "low"},
                {"type": "input_file", "filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"},
            ]},
            {"type": "message", "id": "msg_1", "role": "assistant",
             "content": [{"type": "output_text", "text": "Un chat."}]},
            {"role": "user", "content": "Merci"},
        ],
    }  # fmt: skip
    require_spec()
    validate(body, "ResponsesRequest")
    out = parse(body)
    assert out["messages"] == [
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}},
            {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}},
        ]},
        {"role": "assistant", "content": "Un chat."},
        {"role": "user", "content": "Merci"},
    ]  # fmt: skip


def test_reasoning_message_and_calls_make_one_assistant_turn():
    body = {
        "model": "test/alpha",
        "input": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Two cities."}],
             "encrypted_content": "ENC", "format": "openai-responses-v1"},
            {"type": "message", "id": "msg_1", "role": "assistant",
             "content": [{"type": "output_text", "text": "Checking."}]},
            {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": '{"city":"Paris"}'},
            {"type": "function_call", "call_id": "c2", "name": "weather", "arguments": '{"city":"Rome"}'},
            {"type": "function_call_output", "call_id": "c1", "output": "18C"},
            {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "21C"}]},
        ],
    }  # fmt: skip
    require_spec()
    validate(body, "ResponsesRequest")
    messages = parse(body)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool"]
    turn = messages[1]
    assert turn["content"] == "Checking."
    assert [c["id"] for c in turn["tool_calls"]] == ["c1", "c2"]
    assert turn["tool_calls"][0]["function"] == {"name": "weather", "arguments": '{"city":"Paris"}'}
    assert turn["reasoning_details"] == [
        {"type": "reasoning.summary", "summary": "Two cities.", "id": "rs_1", "format": "openai-responses-v1"},
        {"type": "reasoning.encrypted", "data": "ENC", "id": "rs_1", "format": "openai-responses-v1"},
    ]
    assert messages[2] == {"role": "tool", "tool_call_id": "c1", "content": "18C"}
    assert messages[3]["content"] == [{"type": "text", "text": "21C"}]


def thought(text: str, signature: str) -> dict[str, Any]:
    return {"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": text}],
            "signature": signature}  # fmt: skip


def test_interleaved_reasoning_and_calls_stay_one_turn():
    body = {"model": "m", "input": [
        {"role": "user", "content": "Check both files"},
        thought("first", "S1"),
        {"type": "function_call", "call_id": "c1", "name": "read", "arguments": '{"f":"a"}'},
        thought("second", "S2"),
        {"type": "function_call", "call_id": "c2", "name": "read", "arguments": '{"f":"b"}'},
        {"type": "function_call_output", "call_id": "c1", "output": "A"},
        {"type": "function_call_output", "call_id": "c2", "output": "B"},
        {"role": "assistant", "content": "Reading."},
        {"role": "assistant", "content": "Both say hello."},
    ]}  # fmt: skip
    messages = parse(body)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "tool", "assistant"]
    assert [c["id"] for c in messages[1]["tool_calls"]] == ["c1", "c2"]
    assert [d["signature"] for d in messages[1]["reasoning_details"]] == ["S1", "S2"]
    assert messages[4]["content"] == "Reading.\n\nBoth say hello."


def test_signed_reasoning_text_round_trips_to_reasoning_details():
    body = {"model": "m", "input": [
        {"role": "user", "content": "hi"},
        {"type": "reasoning", "id": "rs_9", "summary": [], "content": [{"type": "reasoning_text", "text": "hmm"}],
         "signature": "SIG", "format": "anthropic-claude-v1"},
        {"role": "assistant", "content": "hello"},
    ]}  # fmt: skip
    turn = parse(body)["messages"][1]
    assert turn["reasoning_details"] == [
        {"type": "reasoning.text", "text": "hmm", "signature": "SIG", "id": "rs_9", "format": "anthropic-claude-v1"}
    ]
    assert turn["content"] == "hello"


def test_options_map_to_chat_fields():
    body = {
        "model": "test/alpha",
        "models": ["test/beta"],
        "input": "hi",
        "tools": [
            {"type": "function", "name": "get_weather", "description": "Weather", "strict": True,
             "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
            {"type": "web_search"},
        ],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "parallel_tool_calls": False,
        "reasoning": {"effort": "high", "summary": "auto"},
        "text": {"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": True},
                 "verbosity": "low"},
        "max_output_tokens": 256,
        "temperature": 0.3,
        "top_p": 0.9,
        "user": "u-1",
        "metadata": {"k": "v"},
        "provider": {"order": ["fake-a"]},
        "plugins": [{"id": "response-healing"}],
        "session_id": "s1",
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "stream": True,
    }  # fmt: skip
    require_spec()
    validate(body, "ResponsesRequest")
    out = parse(body)  # the hosted web search is kept for the gateway's openrouter:web_search (servertools/)
    assert out["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}, "strict": True}},
        {"type": "web_search"}]  # fmt: skip
    assert out["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert out["parallel_tool_calls"] is False
    assert out["reasoning"] == {"effort": "high", "summary": "auto"}
    assert out["response_format"] == {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"},
                                                                             "strict": True}}  # fmt: skip
    assert out["verbosity"] == "low"
    assert out["max_tokens"] == 256
    assert (out["temperature"], out["top_p"], out["user"]) == (0.3, 0.9, "u-1")
    assert "metadata" not in out and out.echo["metadata"] == {"k": "v"}
    assert (out["models"], out["provider"], out["plugins"], out["session_id"]) == (
        ["test/beta"], {"order": ["fake-a"]}, [{"id": "response-healing"}], "s1")  # fmt: skip
    assert out["stream"] is True
    assert "include" not in out and "store" not in out and "input" not in out


def test_json_object_and_text_formats():
    assert parse({"model": "m", "input": "x", "text": {"format": {"type": "json_object"}}})["response_format"] == {
        "type": "json_object"
    }
    assert "response_format" not in parse({"model": "m", "input": "x", "text": {"format": {"type": "text"}}})


def test_allowed_tools_keeps_only_those_named():
    tool = {"type": "function", "parameters": {"type": "object"}}
    choice = {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "b"}]}
    out = parse(
        {"model": "m", "input": "x", "tools": [{**tool, "name": "a"}, {**tool, "name": "b"}], "tool_choice": choice}
    )
    assert out["tool_choice"] == "required"
    assert [t["function"]["name"] for t in out["tools"]] == ["b"]


def test_a_choice_without_function_tools_is_not_sent():
    out = parse({"model": "m", "input": "x", "tools": [{"type": "file_search"}], "tool_choice": "required"})
    assert "tools" not in out and "tool_choice" not in out
    # A hosted web search is kept for the server-tool stage, which drops it (and the choice) when the
    # gateway has no search engine (servertools/__init__.py).
    out = parse({"model": "m", "input": "x", "tools": [{"type": "web_search"}], "tool_choice": "required"})
    assert out["tools"] == [{"type": "web_search"}]
    prepared = dict(out)
    assert servertools.prepare(prepared, type("S", (), {"web_search": None})()) is None
    assert "tools" not in prepared and "tool_choice" not in prepared


def test_codex_cli_request_is_accepted():
    body = json.loads(CODEX_FIXTURE.read_text())["body"]
    out = parse(body)
    assert [m["role"] for m in out["messages"]] == ["developer", "developer", "user", "user", "assistant", "tool"]
    names = [t["function"]["name"] for t in out["tools"] if t["type"] == "function"]
    assert "exec_command" in names and "multi_agent_v1__spawn_agent" in names  # namespace members, flattened
    assert out["messages"][-1]["tool_call_id"] == "call_1"
    assert out["stream"] is True


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ([], "JSON object"),
        ({"model": "m"}, "`input` is required"),
        ({"model": "m", "input": []}, "`input` is required"),
        ({"model": "m", "input": ""}, "`input` is required"),
        ({"model": "m", "input": [{"type": "function_call_output", "call_id": "nope", "output": "x"}]},
         "no function_call item before it has that call_id"),
        ({"model": "m", "input": [{"type": "web_search_call", "id": "w"}]},
         "input[0] has type 'web_search_call'"),
        ({"model": "m", "input": [{"role": "user", "content": [{"type": "output_text", "text": "x"}]}]},
         "belongs in an assistant message"),
        ({"model": "m", "input": [{"role": "user", "content": [{"type": "bogus"}]}]},
         "content part of type 'bogus'"),
        ({"model": "m", "input": [{"role": "assistant", "content": [{"type": "input_image", "image_url": "u"}]}]},
         "output_text or refusal"),
        ({"model": "m", "input": [{"role": "system", "content": [{"type": "input_image", "image_url": "u"}]}]},
         "only input_text"),
        ({"model": "m", "input": [{"role": "robot", "content": "x"}]}, "Invalid request"),
        ({"model": "m", "input": [{"type": "item_reference", "id": "msg_1"}]}, "not stored"),
        ({"model": "m", "input": "x", "store": True}, "store: true is not supported"),
        ({"model": "m", "input": "x", "previous_response_id": "resp_1"}, "previous_response_id is not supported"),
        ({"model": "m", "input": "x", "background": True}, "background"),
        ({"model": "m", "input": "x", "max_output_tokens": 0}, "max_output_tokens"),
        ({"model": "m", "input": "x", "tool_choice": {"type": "mcp"}}, "tool_choice must be"),
        ({"model": "m", "input": "x", "tools": [{"type": "function"}]}, "tools[0]"),
        ({"model": "m", "input": "x", "text": {"format": {"type": "json_schema"}}}, "Invalid request"),
    ],
)  # fmt: skip
def test_bad_input_is_a_clear_400(body, says):
    assert says in bad(body)


# -- answers


def test_text_answer():
    out = rendered({"model": "test/alpha", "input": "hi", "instructions": "Be brief.", "temperature": 0.5},
                   {"content": "Hello!"})  # fmt: skip
    assert out["id"] == "resp_1700000000-abcdefghijABCDEFGHIJ"
    assert (out["object"], out["status"], out["model"], out["created_at"]) == (
        "response", "completed", "test/alpha", 1700000000)  # fmt: skip
    assert out["instructions"] == "Be brief." and out["temperature"] == 0.5 and out["tools"] == []
    [message] = out["output"]
    assert message["type"] == "message" and message["role"] == "assistant" and message["status"] == "completed"
    assert message["content"] == [{"type": "output_text", "text": "Hello!", "annotations": [], "logprobs": []}]
    assert Response.model_validate(out).output_text == "Hello!"


def test_usage_in_responses_names_with_cost_to_the_digit():
    raw = RESPONSES.render(completion({"content": "x"}), {})
    text = encode(raw).decode()
    assert '"cost":0.000072' in text
    assert raw["usage"] == {
        "input_tokens": 12,
        "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 2},
        "output_tokens": 30,
        "output_tokens_details": {"reasoning_tokens": 10},
        "total_tokens": 42,
        "cost": Decimal("0.000072"),
        "is_byok": False,
        "cost_details": {
            "upstream_inference_cost": Decimal("0.000072"),
            "upstream_inference_input_cost": Decimal("0.000012"),
            "upstream_inference_output_cost": Decimal("0.00006"),
        },
    }


def test_tool_calls_answer_as_function_call_items():
    tools = [{"type": "function", "name": "weather", "parameters": {"type": "object"}}]
    out = rendered(
        {"model": "m", "input": "x", "tools": tools},
        {"content": None, "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}},
            {"id": "call_b", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Rome"}'}},
        ]},
        "tool_calls",
    )  # fmt: skip
    assert [i["type"] for i in out["output"]] == ["function_call", "function_call"]
    assert [(i["call_id"], i["name"], i["arguments"]) for i in out["output"]] == [
        ("call_a", "weather", '{"city":"Paris"}'), ("call_b", "weather", '{"city":"Rome"}')]  # fmt: skip
    assert out["tools"] == tools and out["status"] == "completed"


def test_namespaced_tool_call_answers_with_its_namespace():
    tools = [{"type": "namespace", "name": "agents", "description": "d",
              "tools": [{"type": "function", "name": "spawn", "parameters": {"type": "object"}}]}]  # fmt: skip
    request = RESPONSES.parse({"model": "m", "input": "x", "tools": tools}, {})
    assert request["tools"][0]["function"]["name"] == "agents__spawn"
    call = {"id": "c", "type": "function", "function": {"name": "agents__spawn", "arguments": "{}"}}
    out = RESPONSES.render(completion({"content": None, "tool_calls": [call]}, "tool_calls"), request)
    assert (out["output"][0]["name"], out["output"][0]["namespace"]) == ("spawn", "agents")
    # ... and the client's next turn, sending that call back, names the same chat function
    back = parse({"model": "m", "tools": tools, "input": [
        {"type": "function_call", "call_id": "c", "name": "spawn", "namespace": "agents", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "ok"}]})  # fmt: skip
    assert back["messages"][0]["tool_calls"][0]["function"]["name"] == "agents__spawn"


def test_reasoning_details_answer_as_reasoning_items():
    out = rendered({"model": "m", "input": "x"}, {
        "content": "42",
        "reasoning": "Let me think. And again.",
        "reasoning_details": [
            {"type": "reasoning.text", "text": "Let me think.", "signature": "S1", "format": "anthropic-claude-v1"},
            {"type": "reasoning.text", "text": " And again.", "signature": "S2", "format": "anthropic-claude-v1"},
            {"type": "reasoning.summary", "summary": "Thought twice.", "id": "rs_up", "format": "openai-responses-v1"},
            {"type": "reasoning.encrypted", "data": "ENC", "id": "rs_up", "format": "openai-responses-v1"},
        ],
    })  # fmt: skip
    kinds = [i["type"] for i in out["output"]]
    assert kinds == ["reasoning", "reasoning", "reasoning", "message"]
    first, second, third = out["output"][:3]
    assert first["content"] == [{"type": "reasoning_text", "text": "Let me think."}] and first["signature"] == "S1"
    assert second["signature"] == "S2" and first["id"] != second["id"]
    assert third["id"] == "rs_up" and third["summary"] == [{"type": "summary_text", "text": "Thought twice."}]
    assert third["encrypted_content"] == "ENC"
    # Sent back as input, each item gives the reasoning_details it came from.
    back = parse({"model": "m", "input": [{"role": "user", "content": "x"}, *out["output"]]})
    details = [d for m in back["messages"] for d in m.get("reasoning_details", [])]
    assert [d["type"] for d in details] == ["reasoning.text", "reasoning.text", "reasoning.summary",
                                            "reasoning.encrypted"]  # fmt: skip
    assert [d.get("signature") for d in details[:2]] == ["S1", "S2"]


def test_plain_reasoning_text_is_one_reasoning_item():
    out = rendered({"model": "m", "input": "x"}, {"content": "ok", "reasoning": "because"})
    assert out["output"][0]["content"] == [{"type": "reasoning_text", "text": "because"}]


def test_length_is_incomplete():
    out = rendered({"model": "m", "input": "x", "max_output_tokens": 5}, {"content": "Once upon"}, "length")
    assert out["status"] == "incomplete"
    assert out["incomplete_details"] == {"reason": "max_output_tokens"}
    assert out["max_output_tokens"] == 5
    assert out["output"][0]["status"] == "incomplete"


def test_error_in_a_finished_choice_is_a_failed_response():
    request = RESPONSES.parse({"model": "m", "input": "x"}, {})
    c = completion({"content": "partial"}, "error")
    c["choices"][0]["error"] = {
        "code": 429,
        "message": "Rate limited",
        "metadata": {"error_type": "rate_limit_exceeded"},
    }
    out = json.loads(encode(RESPONSES.render(c, request)))
    require_spec()
    validate_response(OP, out)
    assert out["status"] == "failed"
    assert out["error"] == {"code": "rate_limit_exceeded", "message": "Rate limited"}
    assert out["error_type"] == "rate_limit_exceeded"


def test_errors_keep_openrouters_envelope():
    status, body = RESPONSES.error(GatewayError(402, "Insufficient credits", {"error_type": "payment_required"}))
    assert status == 402
    assert body == {"error": {"code": 402, "message": "Insufficient credits",
                              "metadata": {"error_type": "payment_required"}}}  # fmt: skip
    require_spec()
    validate_response(OP, body, status="402")
    validate_response(OP, RESPONSES.error(GatewayError(400, "bad"))[1], status="400")


# -- streams


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"id": GEN, "object": "chat.completion.chunk", "created": 1700000000, "model": "test/alpha"}
    if delta is not None:
        base["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish, "native_finish_reason": finish}]
    return {**base, **extra}


def last(**extra: Any) -> dict[str, Any]:
    return chunk(choices=[], usage=USAGE, **extra)


def stream(body: dict[str, Any], chunks: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """Encode the chunks; check the events against the spec and the SDK's own stream state."""
    request = RESPONSES.parse(body, {})
    enc = RESPONSES.encoder(request)
    raw = b"".join(enc.chunk(c) for c in chunks) + enc.done()
    text = raw.decode()
    require_spec()
    events = [e["data"] for e in validate_sse(OP, text)]
    for sse in parse_sse(text)[:-1]:
        assert sse["event"] == json.loads(sse["data"])["type"]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    state = ResponseStreamState(input_tools=omit, text_format=omit)
    for e in events:
        if e["type"] != "response.debug":  # OpenRouter's own event, which the SDK passes on unparsed
            state.handle_event(EVENTS.validate_python(e))
    return events, text


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"].removeprefix("response.") for e in events]


def test_text_stream_event_order():
    events, text = stream({"model": "test/alpha", "input": "hi"}, [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk({}, "stop"),
        last(),
    ])  # fmt: skip
    assert kinds(events) == [
        "created", "in_progress", "output_item.added", "content_part.added", "output_text.delta",
        "output_text.delta", "output_text.done", "content_part.done", "output_item.done", "completed",
    ]  # fmt: skip
    assert text.endswith("data: [DONE]\n\n")
    assert events[0]["response"]["status"] == "in_progress" and events[0]["response"]["output"] == []
    assert [e["delta"] for e in events if e["type"] == "response.output_text.delta"] == ["Hel", "lo"]
    done = events[-1]["response"]
    assert done["status"] == "completed" and done["id"] == events[0]["response"]["id"]
    assert done["output"][0]["content"][0]["text"] == "Hello"
    assert done["usage"]["cost"] == 0.000072 and done["usage"]["input_tokens"] == 12
    assert '"cost":0.000072' in text  # the ledger's digits


def test_reasoning_then_text_then_tool_calls():
    tools = [{"type": "function", "name": "weather", "parameters": {"type": "object"}}]
    events, _ = stream({"model": "m", "input": "x", "tools": tools}, [
        chunk({"reasoning": "Think", "reasoning_details": [{"type": "reasoning.text", "text": "Think", "index": 0}]}),
        chunk({"reasoning": "ing", "reasoning_details": [{"type": "reasoning.text", "text": "ing", "index": 0}]}),
        chunk({"reasoning_details": [{"type": "reasoning.text", "text": "", "signature": "SIG", "index": 0}]}),
        chunk({"content": "Let me check."}),
        chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                               "function": {"name": "weather", "arguments": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_2", "type": "function",
                               "function": {"name": "weather", "arguments": '{"city":"Rome"}'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        chunk({}, "tool_calls"),
        last(),
    ])  # fmt: skip
    assert kinds(events) == [
        "created", "in_progress",
        "output_item.added", "reasoning_text.delta", "reasoning_text.delta", "reasoning_text.done",
        "output_item.done",
        "output_item.added", "content_part.added", "output_text.delta", "output_text.done", "content_part.done",
        "output_item.done",
        "output_item.added", "function_call_arguments.delta",
        "output_item.added", "function_call_arguments.delta", "function_call_arguments.delta",
        "function_call_arguments.done", "output_item.done", "function_call_arguments.done", "output_item.done",
        "completed",
    ]  # fmt: skip
    final = events[-1]["response"]
    reasoning, message, first, second = final["output"]
    assert reasoning["content"] == [{"type": "reasoning_text", "text": "Thinking"}] and reasoning["signature"] == "SIG"
    assert message["content"][0]["text"] == "Let me check."
    assert (first["call_id"], first["arguments"]) == ("call_1", '{"city":"Paris"}')
    assert (second["call_id"], second["arguments"]) == ("call_2", '{"city":"Rome"}')
    assert [e["output_index"] for e in events if e["type"] == "response.output_item.added"] == [0, 1, 2, 3]


def test_summary_and_encrypted_reasoning_stream():
    events, _ = stream({"model": "m", "input": "x"}, [
        chunk({"reasoning_details": [{"type": "reasoning.summary", "summary": "Plan", "id": "rs_u", "index": 0}]}),
        chunk({"reasoning_details": [{"type": "reasoning.summary", "summary": " it", "id": "rs_u", "index": 0}]}),
        chunk({"reasoning_details": [{"type": "reasoning.encrypted", "data": "ENC", "id": "rs_u", "index": 0}]}),
        chunk({"content": "Done"}, "stop"),
        last(),
    ])  # fmt: skip
    assert kinds(events)[2:9] == [
        "output_item.added", "reasoning_summary_part.added", "reasoning_summary_text.delta",
        "reasoning_summary_text.delta", "reasoning_summary_text.done", "reasoning_summary_part.done",
        "output_item.done",
    ]  # fmt: skip
    item = events[8]["item"]
    assert item["id"] == "rs_u" and item["summary"] == [{"type": "summary_text", "text": "Plan it"}]
    assert item["encrypted_content"] == "ENC"


def test_refusal_stream():
    events, _ = stream({"model": "m", "input": "x"}, [
        chunk({"content": "Sorry."}),
        chunk({"refusal": "I can't "}),
        chunk({"refusal": "help with that."}, "stop"),
        last(),
    ])  # fmt: skip
    assert kinds(events)[2:] == [
        "output_item.added", "content_part.added", "output_text.delta", "content_part.added", "refusal.delta",
        "refusal.delta", "output_text.done", "content_part.done", "refusal.done", "content_part.done",
        "output_item.done", "completed",
    ]  # fmt: skip
    assert [e["content_index"] for e in events if e["type"] == "response.refusal.delta"] == [1, 1]
    assert events[-1]["response"]["output"][0]["content"] == [
        {"type": "output_text", "text": "Sorry.", "annotations": [], "logprobs": []},
        {"type": "refusal", "refusal": "I can't help with that."},
    ]


def test_refusal_answer():
    out = rendered({"model": "m", "input": "x"}, {"content": None, "refusal": "No."})
    assert out["output"][0]["content"] == [{"type": "refusal", "refusal": "No."}]


def test_length_stream_ends_incomplete():
    events, _ = stream({"model": "m", "input": "x"}, [chunk({"content": "Once"}, "length"), last()])
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert events[-2]["item"]["status"] == "incomplete"


def test_error_after_first_token_is_response_failed():
    error = {"code": 502, "message": "Internal Server Error", "metadata": {"error_type": "provider_unavailable"}}
    events, _ = stream({"model": "m", "input": "x"}, [
        chunk({"content": "partial"}),
        chunk({"content": ""}, "error", error=error),
        last(),
    ])  # fmt: skip
    assert kinds(events)[-4:] == ["output_text.done", "content_part.done", "output_item.done", "failed"]
    failed = events[-1]["response"]
    assert failed["status"] == "failed"
    assert failed["error"] == {"code": "server_error", "message": "Internal Server Error"}
    assert failed["error_type"] == "provider_unavailable"
    assert failed["output"][0]["content"][0]["text"] == "partial"


def test_error_before_any_content_without_usage_still_ends_the_response():
    # A keep-alive committed the stream, then every provider failed: the error chunk, then done().
    error = {"code": 429, "message": "Rate limit exceeded", "metadata": {"error_type": "rate_limit_exceeded"}}
    events, _ = stream({"model": "m", "input": "x"}, [chunk({"content": ""}, "error", error=error)])
    assert kinds(events) == ["created", "in_progress", "failed"]
    assert events[-1]["response"]["error"]["code"] == "rate_limit_exceeded"


def test_debug_echo_is_a_debug_event():
    events, _ = stream({"model": "m", "input": "x"}, [
        chunk(choices=[], debug={"echo_upstream_body": {"model": "alpha-upstream"}}),
        chunk({"content": "hi"}, "stop"),
        last(),
    ])  # fmt: skip
    assert kinds(events)[:3] == ["created", "in_progress", "debug"]
    assert events[2]["debug"] == {"echo_upstream_body": {"model": "alpha-upstream"}}
