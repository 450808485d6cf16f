"""The chat <-> Gemini generateContent translation, without a network."""

from __future__ import annotations

import json

import pytest

from omnirouter.errors import GatewayError
from omnirouter.providers import gemini_wire as gw
from omnirouter.providers.gemini import error_from_body


def test_system_turns_and_parts() -> None:
    body = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp"}},
                    {
                        "type": "file",
                        "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
                    },
                ],
            },
            {"role": "assistant", "content": "Un chat."},
            {"role": "user", "content": "Merci"},
        ],
        "max_tokens": 50,
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 40,
        "stop": "END",
        "seed": 7,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.3,
    }
    out = gw.request_body(body, "gemini-2.5-flash")
    assert out["systemInstruction"] == {"parts": [{"text": "Be brief."}, {"text": "Use French."}]}
    assert [c["role"] for c in out["contents"]] == ["user", "model", "user"]
    assert out["contents"][0]["parts"] == [
        {"text": "What is this?"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"mimeType": "image/webp", "fileUri": "https://example.com/cat.webp"}},
        {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
    ]
    assert out["generationConfig"] == {
        "maxOutputTokens": 50,
        "temperature": 0.2,
        "topP": 0.9,
        "topK": 40,
        "seed": 7,
        "presencePenalty": 0.1,
        "frequencyPenalty": 0.3,
        "stopSequences": ["END"],
    }
    assert "thinkingConfig" not in out["generationConfig"]


def test_tool_round_trip_keeps_signatures_and_names() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Rome"}'},
                    },
                ],
                "reasoning_details": [
                    {"type": "reasoning.encrypted", "data": "SIG1", "id": "call_1", "format": "google-gemini-v1"},
                    {"type": "reasoning.encrypted", "data": "FOREIGN", "id": "call_2", "format": "openai-responses-v1"},
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
            {"role": "tool", "tool_call_id": "call_2", "content": "sunny"},
            {"role": "user", "content": "Thanks"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "weather",
                    "description": "Weather now",
                    "parameters": {
                        "$schema": "http://json-schema.org/draft-07/schema#",
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "city": {"type": "string", "format": "uri-reference"},
                            "unit": {"type": ["string", "null"], "enum": ["c", "f"]},
                            "when": {"$ref": "#/$defs/When"},
                        },
                        "required": ["city", "gone"],
                        "$defs": {"When": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}},
                    },
                },
            },
            {"type": "function", "function": {"name": "now", "parameters": {"type": "object", "properties": {}}}},
        ],
        "tool_choice": {"type": "function", "function": {"name": "weather"}},
    }
    out = gw.request_body(body, "gemini-3-pro-preview")
    model_turn = out["contents"][1]
    assert model_turn["role"] == "model"
    assert model_turn["parts"] == [
        {"functionCall": {"name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": "SIG1"},
        {"functionCall": {"name": "weather", "args": {"city": "Rome"}}},
    ]
    # Both results and the next user message are one user turn.
    assert out["contents"][2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "weather", "response": {"temp": 21}}},
            {"functionResponse": {"name": "weather", "response": {"output": "sunny"}}},
            {"text": "Thanks"},
        ],
    }
    decls = out["tools"][0]["functionDeclarations"]
    assert decls[0]["parameters"] == {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "nullable": True, "enum": ["c", "f"]},
            "when": {"type": "string", "format": "date-time", "nullable": True},
        },
        "required": ["city"],
    }
    assert decls[1] == {"name": "now"}
    assert out["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}}


def test_unsigned_history_gets_the_placeholder_signature() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "a", "content": "1"},
        ]
    }
    parts = gw.request_body(body, "gemini-3-flash")["contents"][1]["parts"]
    assert parts == [{"functionCall": {"name": "f", "args": {}}, "thoughtSignature": gw.SKIP_SIGNATURE}]


def test_a_signature_back_from_a_messages_client_goes_on_the_first_call() -> None:
    """A Messages client returns Gemini's signature as redacted_thinking: no call id, Anthropic's label."""
    body = {
        "messages": [
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "content": "Let me look.",
                "tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{}"}}],
                "reasoning_details": [
                    {"type": "reasoning.text", "text": "hm", "signature": "CLAUDE", "format": "anthropic-claude-v1"},
                    {"type": "reasoning.encrypted", "data": "SIG", "format": "anthropic-claude-v1"},
                ],
            },
            {"role": "tool", "tool_call_id": "a", "content": "1"},
        ]
    }
    parts = gw.request_body(body, "gemini-3-flash")["contents"][1]["parts"]
    assert parts == [{"text": "Let me look."}, {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "SIG"}]


def test_tool_result_without_its_call_is_the_clients_error() -> None:
    with pytest.raises(GatewayError) as exc:
        gw.request_body({"messages": [{"role": "tool", "tool_call_id": "nope", "content": "1"}]}, "gemini-2.5-pro")
    assert exc.value.status == 400


@pytest.mark.parametrize(
    ("choice", "config"),
    [("auto", {"mode": "AUTO"}), ("none", {"mode": "NONE"}), ("required", {"mode": "ANY"})],
)
def test_tool_choice(choice: str, config: dict[str, str]) -> None:
    body = {
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "tool_choice": choice,
    }
    assert gw.request_body(body, "m")["toolConfig"] == {"functionCallingConfig": config}


def test_response_formats() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": False}
    body = {
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "t", "strict": True, "schema": schema}},
    }
    config = gw.request_body(body, "m")["generationConfig"]
    assert config == {"responseMimeType": "application/json", "responseJsonSchema": schema}
    # Gemini 2.0 takes only the OpenAPI subset, in responseSchema.
    assert gw.request_body(body, "gemini-2.0-flash-001")["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseSchema": {"type": "object", "properties": {"a": {"type": "integer"}}},
    }
    body["response_format"] = {"type": "json_object"}
    assert gw.request_body(body, "m")["generationConfig"] == {"responseMimeType": "application/json"}


@pytest.mark.parametrize(
    ("model", "extra", "thinking"),
    [
        ("gemini-2.5-flash", {"reasoning": {"max_tokens": 2000}}, {"includeThoughts": True, "thinkingBudget": 2000}),
        ("gemini-2.5-pro", {"reasoning": {"effort": "high"}, "max_tokens": 10000},
         {"includeThoughts": True, "thinkingBudget": 8000}),
        ("gemini-2.5-pro", {"reasoning": {"effort": "low"}}, {"includeThoughts": True, "thinkingBudget": 2048}),
        ("gemini-2.5-flash", {"reasoning": {"effort": "medium", "exclude": True}},
         {"includeThoughts": False, "thinkingBudget": 8192}),
        ("gemini-2.5-flash", {"reasoning": {"enabled": False}}, {"thinkingBudget": 0}),
        ("gemini-3-pro-preview", {"reasoning": {"effort": "xhigh"}},
         {"includeThoughts": True, "thinkingLevel": "high"}),
        ("gemini-3-flash", {"reasoning_effort": "minimal"}, {"includeThoughts": True, "thinkingLevel": "minimal"}),
        ("gemini-3-flash", {"reasoning": {"effort": "none"}}, {"thinkingLevel": "minimal"}),
        ("gemini-2.5-flash", {"reasoning": {}}, {"includeThoughts": True}),
    ],
)  # fmt: skip
def test_reasoning_as_thinking_config(model: str, extra: dict, thinking: dict) -> None:
    body = {"messages": [{"role": "user", "content": "x"}], **extra}
    assert gw.request_body(body, model)["generationConfig"]["thinkingConfig"] == thinking


def test_completion_with_thoughts_calls_and_usage() -> None:
    data = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "Thinking about ", "thought": True},
                        {"text": "the weather.", "thought": True},
                        {"text": "Let me check."},
                        {"functionCall": {"name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": "S1"},
                        {"functionCall": {"name": "weather", "args": {"city": "Rome"}}},
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 120,
            "cachedContentTokenCount": 100,
            "candidatesTokenCount": 30,
            "thoughtsTokenCount": 12,
            "totalTokenCount": 162,
        },
        "modelVersion": "gemini-2.5-flash",
        "responseId": "resp-1",
    }
    out = gw.completion(data, "fallback")
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["native_finish_reason"] == "STOP"
    msg = choice["message"]
    assert msg["content"] == "Let me check."
    assert msg["reasoning"] == "Thinking about the weather."
    calls = msg["tool_calls"]
    assert [json.loads(c["function"]["arguments"]) for c in calls] == [{"city": "Paris"}, {"city": "Rome"}]
    assert calls[0]["id"] != calls[1]["id"]
    assert msg["reasoning_details"] == [
        {"type": "reasoning.text", "text": "Thinking about the weather.", "format": "google-gemini-v1", "index": 0},
        {"type": "reasoning.encrypted", "data": "S1", "id": calls[0]["id"], "format": "google-gemini-v1", "index": 0},
    ]
    assert out["usage"] == {
        "prompt_tokens": 120,
        "completion_tokens": 42,
        "total_tokens": 162,
        "prompt_tokens_details": {"cached_tokens": 100},
        "completion_tokens_details": {"reasoning_tokens": 12},
    }
    assert out["id"] == "resp-1" and out["model"] == "gemini-2.5-flash"

    # The answer sent back next turn carries the signature on its call again.
    history = [{"role": "user", "content": "x"}, msg]
    history += [{"role": "tool", "tool_call_id": c["id"], "content": "{}"} for c in calls]
    parts = gw.request_body({"messages": history}, "gemini-3-pro")["contents"][1]["parts"]
    assert parts[1] == {"functionCall": {"name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": "S1"}
    assert "thoughtSignature" not in parts[2]


@pytest.mark.parametrize(
    ("native", "finish"),
    [("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("RECITATION", "content_filter"),
     ("MALFORMED_FUNCTION_CALL", "error"), ("OTHER", "stop")],
)  # fmt: skip
def test_finish_reasons(native: str, finish: str) -> None:
    data = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": native}]}
    choice = gw.completion(data, "m")["choices"][0]
    assert (choice["finish_reason"], choice["native_finish_reason"]) == (finish, native)


def test_blocked_prompt_is_a_content_filter_finish() -> None:
    data = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 9}}
    out = gw.completion(data, "m")
    assert out["choices"][0]["finish_reason"] == "content_filter"
    assert out["choices"][0]["native_finish_reason"] == "PROHIBITED_CONTENT"
    assert out["usage"]["prompt_tokens"] == 9 and out["usage"]["completion_tokens"] == 0


def test_stream_state() -> None:
    state = gw.StreamState("m")
    chunks = state.chunks(
        {
            "candidates": [{"content": {"role": "model", "parts": [{"text": "Hmm", "thought": True}]}}],
            "usageMetadata": {"promptTokenCount": 5},
            "responseId": "r1",
        }
    )
    # Some models send finishReason STOP on every event: only the end decides.
    chunks += state.chunks({"candidates": [{"content": {"parts": [{"text": "Hel"}]}, "finishReason": "STOP"}]})
    chunks += state.chunks(
        {
            "candidates": [
                {
                    "content": {"parts": [{"text": "lo"}, {"functionCall": {"name": "f", "args": {"a": 1}}}]},
                    "finishReason": "STOP",
                }
            ],
            "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 3, "thoughtsTokenCount": 2},
        }
    )
    assert state.finished
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks)
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0]["role"] == "assistant" and deltas[0]["reasoning"] == "Hmm"
    assert "role" not in deltas[1] and deltas[1]["content"] == "Hel"
    assert deltas[2]["content"] == "lo" and deltas[2]["tool_calls"][0]["index"] == 0
    assert deltas[2]["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"a":1}'}
    finish, tail = state.end_chunks()
    assert finish["choices"][0]["finish_reason"] == "tool_calls"
    assert finish["choices"][0]["native_finish_reason"] == "STOP"
    assert {c["id"] for c in [*chunks, finish, tail]} == {"r1"}
    assert tail["choices"] == []
    assert (
        tail["usage"]["completion_tokens"] == 5 and tail["usage"]["completion_tokens_details"]["reasoning_tokens"] == 2
    )


def test_stream_state_of_a_blocked_prompt() -> None:
    state = gw.StreamState("m")
    assert state.chunks({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 4}}) == []
    assert state.finished
    blocked, tail = state.end_chunks()
    assert blocked["choices"][0]["finish_reason"] == "content_filter"
    assert blocked["choices"][0]["native_finish_reason"] == "SAFETY"
    assert tail["usage"]["prompt_tokens"] == 4


def test_a_stream_without_a_finish_is_not_whole() -> None:
    state = gw.StreamState("m")
    state.chunks({"candidates": [{"content": {"parts": [{"text": "Hel"}]}}]})
    assert not state.finished


def test_google_error_envelope() -> None:
    body = json.dumps(
        {
            "error": {
                "code": 429,
                "message": "Resource has been exhausted (e.g. check quota).",
                "status": "RESOURCE_EXHAUSTED",
                "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}],
            }
        }
    )
    err = error_from_body(429, body)
    assert (err.status, err.provider_code, err.retry_after) == (429, "RESOURCE_EXHAUSTED", 37.0)
    assert err.message.startswith("Resource has been exhausted") and err.retryable
    bad_key = json.dumps(
        {
            "error": {
                "code": 400,
                "message": "API key not valid. Please pass a valid API key.",
                "status": "INVALID_ARGUMENT",
                "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}],
            }
        }
    )
    assert error_from_body(400, bad_key).status == 401
    assert error_from_body(503, "<html>down</html>", {"retry-after": "2"}).retry_after == 2.0


def test_logprobs() -> None:
    body = {"messages": [{"role": "user", "content": "x"}], "logprobs": True, "top_logprobs": 2}
    config = gw.request_body(body, "m")["generationConfig"]
    assert (config["responseLogprobs"], config["logprobs"]) == (True, 2)
    result = {
        "chosenCandidates": [{"token": "Hi", "logProbability": -0.1}, {"token": "!", "logProbability": -0.5}],
        "topCandidates": [
            {"candidates": [{"token": "Hi", "logProbability": -0.1}, {"token": "Hey", "logProbability": -2.0}]},
            {"candidates": [{"token": "!", "logProbability": -0.5}]},
        ],
    }
    data = {"candidates": [{"content": {"parts": [{"text": "Hi!"}]}, "finishReason": "STOP", "logprobsResult": result}]}
    scores = gw.completion(data, "m")["choices"][0]["logprobs"]["content"]
    assert [(s["token"], s["logprob"]) for s in scores] == [("Hi", -0.1), ("!", -0.5)]
    assert [t["token"] for t in scores[0]["top_logprobs"]] == ["Hi", "Hey"]
    assert scores[1]["bytes"] == [33]
    chunk = gw.StreamState("m").chunks(data)[0]
    assert chunk["choices"][0]["logprobs"]["content"][0]["token"] == "Hi"


def test_web_search_is_grounding_with_google_search() -> None:
    body = {"messages": [{"role": "user", "content": "news?"}], "web_search_options": {}}
    assert gw.request_body(body, "m")["tools"] == [{"googleSearch": {}}]
    grounding = {
        "webSearchQueries": ["news"],
        "groundingChunks": [{"web": {"uri": "https://a.example/x", "title": "a.example"}}],
        "groundingSupports": [
            {"segment": {"startIndex": 0, "endIndex": 5, "text": "Hello"}, "groundingChunkIndices": [0]}
        ],
    }
    data = {"candidates": [{"content": {"parts": [{"text": "Hello"}]}, "groundingMetadata": grounding}]}
    message = gw.completion(data, "m")["choices"][0]["message"]
    assert message["annotations"] == [
        {
            "type": "url_citation",
            "url_citation": {
                "url": "https://a.example/x",
                "title": "a.example",
                "content": "Hello",
                "start_index": 0,
                "end_index": 5,
            },
        }
    ]
