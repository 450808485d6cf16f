"""The OpenAI Chat Completions wire, and FakeOpenAI: the fake that speaks it.

It sends what real OpenAI sends (JSON bodies, SSE framing, the usage chunk, error envelopes), so the
gateway's real HTTP client runs in every test:

    async with FakeOpenAI() as fake:
        fake.script(Status(429, retry_after=1), Delay(0.2, then=Stream(stop_after=3)))
        ...  # point the gateway (or an SDK) at fake.base_url

This is also the benchmark upstream's hot path: keep the per-request and per-chunk work lean.
"""

from __future__ import annotations

import secrets
from typing import Any, ClassVar

from aiohttp import web

from omnirouter.testing.fakes.core import (
    Completion,
    FakeServer,
    FakeThread,
    Frames,
    Message,
    NormalRequest,
    Route,
    Stream,
    Tool,
    Usage,
    Wire,
    WireError,
    encode_json,
    json_response,
    text_of,
)

__all__ = ["FakeOpenAI", "FakeOpenAIThread", "OpenAIWire", "error_body"]

_FINGERPRINT = "fp_fake0001"
_DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1", "gpt-4.1-mini", "o4-mini")

_ERRORS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to sample from this model.", "invalid_request_error", None),
    404: (
        "The model does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    408: ("Request timed out.", "timeout", None),
    413: ("Request entity too large.", "invalid_request_error", None),
    422: ("Unprocessable entity.", "invalid_request_error", None),
    429: ("Rate limit reached for requests. Please try again later.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
    504: ("Gateway timeout.", "server_error", None),
    529: ("The engine is currently overloaded, please try again later.", "server_error", "overloaded"),
}


def error_body(
    status: int, message: str | None = None, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """OpenAI's error envelope for ``status``."""
    default_message, type_, default_code = _ERRORS.get(
        status, ("Request failed.", "server_error" if status >= 500 else "invalid_request_error", None)
    )
    return {
        "error": {
            "message": message or default_message,
            "type": type_,
            "param": param,
            "code": code or default_code,
        }
    }


def usage_json(c: Completion) -> dict[str, Any] | None:
    """The usage object OpenAI sends: the reply's verbatim one, or the planned counts."""
    if c.raw_usage is not None:
        return c.raw_usage
    u: Usage | None = c.usage
    if u is None:
        return None
    prompt_details: dict[str, int] = {"cached_tokens": u.cached_tokens, "audio_tokens": 0}
    if u.cache_write_tokens is not None:
        prompt_details["cache_write_tokens"] = u.cache_write_tokens
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens + u.completion_tokens,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {
            "reasoning_tokens": u.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _tool_calls_json(c: Completion) -> list[dict[str, Any]]:
    return [
        {"id": t.id, "type": "function", "function": {"name": t.name, "arguments": t.arguments}}
        for t in c.tool_calls or ()
    ]


def _sse(payload: Any) -> bytes:
    return b"data: " + encode_json(payload) + b"\n\n"


_DONE = b"data: [DONE]\n\n"


class _Chunks(Frames):
    """OpenAI's chat.completion.chunk events for one completion."""

    def __init__(self, c: Completion) -> None:
        self.c = c
        self.base = {
            "id": c.id,
            "object": "chat.completion.chunk",
            "created": c.created,
            "model": c.model,
            "service_tier": "default",
            "system_fingerprint": _FINGERPRINT,
        }

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        payload = {
            **self.base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if self.c.include_usage:
            payload["usage"] = None  # OpenAI sends an explicit null on every chunk but the last
        return _sse(payload)

    def head(self) -> bytes:
        if self.c.content is None and self.c.tool_calls:
            return self.chunk({"role": "assistant", "content": None, "refusal": None})
        return self.chunk({"role": "assistant", "content": "", "refusal": None})

    def body(self) -> list[bytes]:
        chunk = self.chunk
        events = [chunk({"reasoning": t}) for t in self.c.reasoning_tokens]
        events += [chunk({"content": t}) for t in self.c.tokens]
        for index, call in enumerate(self.c.tool_calls or ()):
            head = {"index": index, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
            events.append(chunk({"tool_calls": [head]}))
            args = call.arguments
            for i in range(0, len(args), 8):
                events.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": args[i : i + 8]}}]}))
        return events

    def finish(self) -> bytes:
        return self.chunk({}, self.c.finish_reason)

    def usage(self) -> bytes | None:
        if not self.c.include_usage or (usage := usage_json(self.c)) is None:
            return None
        return _sse({**self.base, "choices": [], "usage": usage})

    def done(self) -> bytes:
        return _DONE

    def broken(self) -> bytes:
        head = b'data: {"id": "' + self.c.id.encode()
        return head + b'", "object": "chat.completion.chunk", "choices": [{\n\n'

    def error(self, stream: Stream) -> bytes:
        if stream.error_style == "openrouter":
            err = stream.error or {
                "code": 502,
                "message": "Provider returned error",
                "metadata": {"error_type": "provider_unavailable"},
            }
            return _sse(
                {
                    **self.base,
                    "error": err,
                    "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
                }
            )
        return _sse({"error": stream.error or error_body(500)["error"]})


async def _list_models(fake: FakeServer, request: web.Request) -> web.StreamResponse:
    return json_response({"object": "list", "data": [_model_card(m) for m in fake.models]})


async def _get_model(fake: FakeServer, request: web.Request) -> web.StreamResponse:
    name = request.match_info["model"]
    if name not in fake.models:
        return json_response(error_body(404, f"The model '{name}' does not exist", param="model"), 404)
    return json_response(_model_card(name))


def _model_card(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 1715367049, "owned_by": "system"}


class OpenAIWire(Wire):
    """OpenAI Chat Completions: ``POST /chat/completions``, ``GET /models``, Bearer auth."""

    name: ClassVar[str] = "FakeOpenAI"
    base_path: ClassVar[str] = "/v1"
    default_models: ClassVar[tuple[str, ...]] = _DEFAULT_MODELS
    tool_call_prefix: ClassVar[str] = "call_"
    # OpenAI hides reasoning: reasoning text is sent (as ``reasoning``) only when a Reply sets it.
    reasoning_by_default: ClassVar[bool] = False

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/chat/completions"),
            Route("GET", "/models", handler=_list_models),
            Route("GET", "/models/{model:.+}", handler=_get_model),
        ]

    def require_model(self, body: dict[str, Any], request: web.Request) -> str:
        model = body.get("model")
        if not model:
            raise WireError(400, "Missing required parameter: 'model'.", "model")
        return str(model)

    def parse(self, body: Any, request: web.Request) -> NormalRequest:
        if not isinstance(body, dict):
            raise WireError(400, "We could not parse the JSON body of your request.")
        model = self.require_model(body, request)
        raw_messages = body.get("messages")
        if not isinstance(raw_messages, list):
            raise WireError(400, "Missing required parameter: 'messages'.", "messages")
        messages: list[Message] = []
        system: list[str] = []
        chars = 0
        for m in raw_messages:
            if not isinstance(m, dict):
                continue
            text = text_of(m.get("content"))
            chars += len(text)
            for call in m.get("tool_calls") or ():
                if isinstance(call, dict):
                    chars += len(str((call.get("function") or {}).get("arguments", "")))
            role = m.get("role")
            if role == "system" or role == "developer":
                system.append(text)
            else:
                messages.append(Message(str(role), text))
        tools: list[Tool] = []
        for tool in body.get("tools") or ():
            fn = tool.get("function") if isinstance(tool, dict) else None
            if isinstance(fn, dict) and fn.get("name"):
                tools.append(Tool(fn["name"], fn.get("description"), fn.get("parameters")))
        stream_options = body.get("stream_options")
        return NormalRequest(
            model=model,
            stream=body.get("stream") is True,
            messages=messages,
            system="\n".join(system) if system else None,
            tools=tools,
            max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
            reasoning=bool(body.get("reasoning_effort") or body.get("reasoning")),
            include_usage=isinstance(stream_options, dict) and stream_options.get("include_usage") is True,
            prompt_chars=chars,
        )

    def completion_id(self) -> str:
        return "chatcmpl-" + secrets.token_urlsafe(21)

    def completion_json(self, c: Completion) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": c.content, "refusal": None, "annotations": []}
        if c.reasoning is not None:
            message["reasoning"] = c.reasoning
        if c.tool_calls:
            message["tool_calls"] = _tool_calls_json(c)
        out: dict[str, Any] = {
            "id": c.id,
            "object": "chat.completion",
            "created": c.created,
            "model": c.model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": c.finish_reason}],
        }
        if (usage := usage_json(c)) is not None:
            out["usage"] = usage
        out["service_tier"] = "default"
        out["system_fingerprint"] = _FINGERPRINT
        return out

    def frames(self, c: Completion) -> Frames:
        return _Chunks(c)

    def error_body(self, status: int, message: str | None = None, param: str | None = None) -> Any:
        return error_body(status, message, param=param)

    def check_auth(self, request: web.Request, api_key: str) -> WireError | None:
        header = request.headers.get("Authorization", "")
        if not header:
            message = "You didn't provide an API key. Send it in an Authorization header using Bearer auth."
            return WireError(401, message)
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or token.strip() != api_key:
            return WireError(401, f"Incorrect API key provided: {_shown(token)}.")
        return None

    def response_headers(self, c: Completion) -> dict[str, str]:
        return {"x-request-id": "req_" + secrets.token_hex(16), "openai-processing-ms": "1"}


def _shown(token: str) -> str:
    """A key as OpenAI echoes it in errors: its ends only."""
    return token[:4] + "*" * max(0, len(token) - 8) + token[-4:] if len(token) > 8 else "****"


class FakeOpenAI(FakeServer):
    """A fake OpenAI upstream over real HTTP on loopback.

    Scripted steps apply to ``POST {base}/chat/completions`` only; ``GET {base}/models`` always
    answers with ``models``. Any model name is accepted for completions.
    """

    wire: ClassVar[Wire] = OpenAIWire()

    def __init__(self, *, base_path: str = "/v1", **options: Any) -> None:
        super().__init__(base_path=base_path, **options)

    @classmethod
    def run_in_thread(cls, **kwargs: Any) -> FakeOpenAIThread:
        """Start a fake on its own event loop in a daemon thread (for synchronous clients)."""
        return FakeOpenAIThread(cls(**kwargs))


class FakeOpenAIThread(FakeThread[FakeOpenAI]):
    """A FakeOpenAI served from a daemon thread with its own event loop."""
