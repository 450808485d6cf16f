"""OpenAI's Responses API wire, and FakeOpenAIResponses: the fake that speaks it.

``POST /v1/responses`` answers as OpenAI does: a ``response`` object whose ``output`` holds items
with ids (``reasoning``, ``message`` with ``output_text`` parts, ``function_call``), or SSE events
with an ``event:`` line and a ``sequence_number`` from 0 (``response.created``,
``response.in_progress``, each item's ``response.output_item.added``, its part and delta events and
``response.output_item.done``, then ``response.completed`` or ``response.incomplete`` with the whole
response and usage; no ``[DONE]``). Reasoning items carry ``encrypted_content`` only when the
request has ``include: ["reasoning.encrypted_content"]``, and a summary only when ``reasoning.summary``
asks for one. Errors use OpenAI's envelope; auth is a Bearer key. A mid-stream fault
(``Stream(error_after=K)``) is ``response.failed``, or an ``error`` event when ``Stream(error=...)``
gives one (``{"code", "message"}``).

It refuses what OpenAI refuses and a translating client could get wrong: ``max_output_tokens`` below
16, a ``function_call_output`` that answers no earlier ``function_call``, a reasoning item whose
``encrypted_content`` it did not issue, ``messages`` (the chat field) instead of ``input``.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, overload

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
    WireError,
    encode_json,
    text_of,
)
from omnirouter.testing.fakes.openai import OpenAIWire

__all__ = ["FakeOpenAIResponses", "FakeOpenAIResponsesThread", "ResponsesWire"]

_DEFAULT_MODELS = ("gpt-5", "gpt-5-mini", "o4-mini", "gpt-4.1")
_ENCRYPTED = "reasoning.encrypted_content"
_ARGUMENT_PIECE = 8


@dataclass(slots=True)
class ResponsesRequest(NormalRequest):
    """The normal request, plus what a Responses answer echoes or depends on."""

    body: dict[str, Any] = field(default_factory=dict)
    summary: bool = False  # reasoning.summary asked for a summary
    encrypted: bool = False  # include asks for reasoning.encrypted_content


def _hex() -> str:
    return secrets.token_hex(24)


def usage_json(c: Completion) -> dict[str, Any] | None:
    if c.raw_usage is not None:
        return c.raw_usage
    u = c.usage
    if u is None:
        return None
    return {
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.prompt_tokens + u.completion_tokens,
    }


def _status(c: Completion) -> tuple[str, dict[str, Any] | None]:
    """The response's status and incomplete_details for the planned finish."""
    if c.finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if c.finish_verbatim and c.finish_reason not in ("stop", "tool_calls", "completed"):
        return "incomplete", {"reason": c.finish_reason}
    return "completed", None


class _Answer:
    """One answer's output items (ids fixed once, shared by the JSON and the stream)."""

    def __init__(self, c: Completion, wire: ResponsesWire) -> None:
        req = c.request
        self.c = c
        self.reasoning_id = "rs_" + _hex() if c.reasoning is not None else None
        self.message_id = "msg_" + _hex() if c.content or not c.tool_calls else None
        self.call_ids = ["fc_" + _hex() for _ in c.tool_calls or ()]
        self.summary = isinstance(req, ResponsesRequest) and req.summary
        self.encrypted: str | None = None
        if c.reasoning is not None and isinstance(req, ResponsesRequest) and req.encrypted:
            self.encrypted = "gAAAAA" + (c.reasoning_signature or _hex())
            wire.issued.add(self.encrypted)

    def reasoning(self, done: bool) -> dict[str, Any]:
        item: dict[str, Any] = {"id": self.reasoning_id, "type": "reasoning", "summary": []}
        if done and self.summary:
            item["summary"] = [{"type": "summary_text", "text": self.c.reasoning}]
        if self.encrypted is not None:
            item["encrypted_content"] = self.encrypted
        return item

    def message(self, status: str, text: str | None) -> dict[str, Any]:
        content = [] if text is None else [_text_part(text)]
        return {"id": self.message_id, "type": "message", "status": status, "content": content, "role": "assistant"}

    def call(self, i: int, status: str, arguments: str) -> dict[str, Any]:
        call = (self.c.tool_calls or [])[i]
        return {"id": self.call_ids[i], "type": "function_call", "status": status, "arguments": arguments,
                "call_id": call.id, "name": call.name}  # fmt: skip

    def output(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if self.reasoning_id is not None:
            out.append(self.reasoning(done=True))
        if self.message_id is not None:
            out.append(self.message("completed", self.c.content or ""))
        out += [self.call(i, "completed", call.arguments) for i, call in enumerate(self.c.tool_calls or ())]
        return out

    def response(self, status: str, *, finished: bool) -> dict[str, Any]:
        c = self.c
        body = c.request.body if isinstance(c.request, ResponsesRequest) else {}
        text = body.get("text") if isinstance(body.get("text"), dict) else {}
        reasoning = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else {}
        out: dict[str, Any] = {
            "id": c.id,
            "object": "response",
            "created_at": c.created,
            "status": status,
            "background": False,
            "completed_at": None,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "max_tool_calls": None,
            "model": c.model,
            "output": [],
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": None,
            "prompt_cache_key": body.get("prompt_cache_key"),
            "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
            "safety_identifier": body.get("safety_identifier"),
            "service_tier": "default",
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": {"format": {"type": "text"}, "verbosity": "medium", **text},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_logprobs": 0,
            "top_p": body.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": None,
            "user": body.get("user"),
            "metadata": body.get("metadata") or {},
        }
        if finished:
            status, details = _status(c)
            out["status"], out["incomplete_details"] = status, details
            out["completed_at"] = c.created
            out["output"] = self.output()
            out["usage"] = usage_json(c)
        return out


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


Event = tuple[str, dict[str, Any]]


class _Events(Frames):
    """The events of one streamed response. Sequence numbers are given as events are written, so an
    error or a malformed event placed by a fault fits the count too."""

    def __init__(self, c: Completion, wire: ResponsesWire) -> None:
        self.a = _Answer(c, wire)
        self.seq = 0
        self.groups: list[list[Event]] = []
        self._plan()

    def render(self, events: list[Event]) -> bytes:
        out = []
        for kind, payload in events:
            payload = {"type": kind, **payload, "sequence_number": self.seq}
            self.seq += 1
            out.append(b"event: " + kind.encode() + b"\ndata: " + encode_json(payload) + b"\n\n")
        return b"".join(out)

    def _plan(self) -> None:
        a, c = self.a, self.a.c
        index = 0
        if a.reasoning_id is not None:
            ids = {"item_id": a.reasoning_id, "output_index": index}
            opened: list[Event] = [("response.output_item.added", {"output_index": index, "item": a.reasoning(False)})]
            pieces = c.reasoning_tokens if a.summary else []
            if pieces:
                part = {"type": "summary_text", "text": ""}
                opened.append(("response.reasoning_summary_part.added", {**ids, "summary_index": 0, "part": part}))
                delta = "response.reasoning_summary_text.delta"
                groups = [[(delta, {**ids, "summary_index": 0, "delta": t, "obfuscation": "x"})] for t in pieces]
                text = c.reasoning or ""
                groups[-1] += [
                    ("response.reasoning_summary_text.done", {**ids, "summary_index": 0, "text": text}),
                    ("response.reasoning_summary_part.done",
                     {**ids, "summary_index": 0, "part": {"type": "summary_text", "text": text}}),
                ]  # fmt: skip
            else:
                groups = [[]]
            groups[0] = opened + groups[0]
            groups[-1].append(("response.output_item.done", {"output_index": index, "item": a.reasoning(True)}))
            self.groups += groups
            index += 1
        if a.message_id is not None:
            ids = {"item_id": a.message_id, "output_index": index, "content_index": 0}
            opened = [
                ("response.output_item.added", {"output_index": index, "item": a.message("in_progress", None)}),
                ("response.content_part.added", {**ids, "part": _text_part("")}),
            ]
            groups = [[("response.output_text.delta", {**ids, "delta": t, "logprobs": [], "obfuscation": "x"})]
                      for t in c.tokens] or [[]]  # fmt: skip
            text = c.content or ""
            groups[0] = opened + groups[0]
            groups[-1] += [
                ("response.output_text.done", {**ids, "text": text, "logprobs": []}),
                ("response.content_part.done", {**ids, "part": _text_part(text)}),
                ("response.output_item.done", {"output_index": index, "item": a.message("completed", text)}),
            ]
            self.groups += groups
            index += 1
        for i, call in enumerate(c.tool_calls or ()):
            ids = {"item_id": a.call_ids[i], "output_index": index}
            args = call.arguments
            pieces = [args[k : k + _ARGUMENT_PIECE] for k in range(0, len(args), _ARGUMENT_PIECE)]
            groups = [[("response.function_call_arguments.delta", {**ids, "delta": p, "obfuscation": "x"})]
                      for p in pieces] or [[]]  # fmt: skip
            groups[0].insert(0, ("response.output_item.added", {"output_index": index,
                                                                "item": a.call(i, "in_progress", "")}))  # fmt: skip
            groups[-1] += [
                ("response.function_call_arguments.done", {**ids, "name": call.name, "arguments": args}),
                ("response.output_item.done", {"output_index": index, "item": a.call(i, "completed", args)}),
            ]
            self.groups += groups
            index += 1

    def head(self) -> bytes:
        started = self.a.response("in_progress", finished=False)
        return self.render([("response.created", {"response": started}),
                            ("response.in_progress", {"response": started})])  # fmt: skip

    def body(self) -> Sequence[bytes]:
        return _Rendered(self)

    def finish(self) -> bytes:
        final = self.a.response("completed", finished=True)
        return self.render([(f"response.{final['status']}", {"response": final})])

    def broken(self) -> bytes:
        return b'event: response.output_text.delta\ndata: {"type": "response.output_text.delta", "delta": \n\n'

    def error(self, stream: Stream) -> bytes:
        if stream.error is not None:
            err = stream.error
            return self.render([("error", {"code": err.get("code"), "message": err.get("message", "An error occurred."),
                                           "param": err.get("param")})])  # fmt: skip
        failed = self.a.response("failed", finished=False)
        failed["error"] = {"code": "server_error", "message": "An error occurred while processing your request. "
                           "You can retry your request."}  # fmt: skip
        return self.render([("response.failed", {"response": failed})])


class _Rendered(Sequence[bytes]):
    """The body events, each group rendered when the server writes it (in order, once)."""

    def __init__(self, events: _Events) -> None:
        self.events = events

    def __len__(self) -> int:
        return len(self.events.groups)

    @overload
    def __getitem__(self, k: int) -> bytes: ...
    @overload
    def __getitem__(self, k: slice) -> Sequence[bytes]: ...
    def __getitem__(self, k: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(k, slice):
            return [self.events.render(g) for g in self.events.groups[k]]
        return self.events.render(self.events.groups[k])


class ResponsesWire(OpenAIWire):
    """OpenAI Responses: ``POST /responses`` (and OpenAI's ``GET /models``), Bearer auth."""

    name: ClassVar[str] = "FakeOpenAIResponses"
    default_models: ClassVar[tuple[str, ...]] = _DEFAULT_MODELS
    # Reasoning models reason whenever asked; the summary shows only when reasoning.summary is set.
    reasoning_by_default: ClassVar[bool] = True

    def __init__(self) -> None:
        self.issued: set[str] = set()  # encrypted reasoning the fake handed out

    def routes(self) -> list[Route]:
        return [Route("POST", "/responses"), *(r for r in super().routes() if r.method == "GET")]

    def parse(self, body: Any, request: web.Request) -> NormalRequest:
        if not isinstance(body, dict):
            raise WireError(400, "We could not parse the JSON body of your request.")
        model = self.require_model(body, request)
        if "messages" in body:
            raise WireError(400, "Unknown parameter: 'messages'.", "messages")
        limit = body.get("max_output_tokens")
        if limit is not None and (not isinstance(limit, int) or limit < 16):
            raise WireError(400, f"Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, "
                            f"but got {limit} instead.", "max_output_tokens")  # fmt: skip
        system = [body["instructions"]] if isinstance(body.get("instructions"), str) else []
        messages, chars = self._input(body.get("input"), system)
        reasoning = body.get("reasoning")
        reasoning = reasoning if isinstance(reasoning, dict) else {}
        include = body.get("include") or []
        tools = [self._tool(i, t) for i, t in enumerate(body.get("tools") or ())]
        return ResponsesRequest(
            model=model,
            stream=body.get("stream") is True,
            messages=messages,
            system="\n".join(system) if system else None,
            tools=[t for t in tools if t is not None],
            max_tokens=limit,
            reasoning=bool(reasoning) and reasoning.get("effort") != "none",
            prompt_chars=chars + sum(len(s) for s in system),
            body=body,
            summary=reasoning.get("summary") is not None,
            encrypted=_ENCRYPTED in include,
        )

    @staticmethod
    def _tool(i: int, tool: Any) -> Tool | None:
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise WireError(400, f"Missing required parameter: 'tools[{i}].type'.", f"tools[{i}].type")
        if tool["type"] != "function":
            return None
        if "function" in tool:  # the chat shape
            raise WireError(400, f"Missing required parameter: 'tools[{i}].name'.", f"tools[{i}].name")
        if not tool.get("name"):
            raise WireError(400, f"Missing required parameter: 'tools[{i}].name'.", f"tools[{i}].name")
        return Tool(tool["name"], tool.get("description"), tool.get("parameters"))

    def _input(self, raw: Any, system: list[str]) -> tuple[list[Message], int]:
        if isinstance(raw, str):
            return [Message("user", raw)], len(raw)
        if not isinstance(raw, list) or not raw:
            raise WireError(400, "Missing required parameter: 'input'.", "input")
        out: list[Message] = []
        calls: set[str] = set()
        chars = 0
        for i, item in enumerate(raw):
            if not isinstance(item, dict):
                raise WireError(400, f"Invalid type for 'input[{i}]'.", f"input[{i}]")
            kind = item.get("type", "message" if "role" in item else None)
            if kind == "message":
                role = item.get("role")
                if role not in ("user", "assistant", "system", "developer"):
                    raise WireError(400, f"Invalid value: '{role}'. Supported values are: 'assistant', 'system', "
                                    "'developer', and 'user'.", f"input[{i}].role")  # fmt: skip
                text = text_of(item.get("content"))
                chars += len(text)
                if role in ("system", "developer"):
                    system.append(text)
                else:
                    out.append(Message(role, text))
            elif kind == "function_call":
                if not item.get("call_id") or not isinstance(item.get("arguments"), str):
                    raise WireError(400, f"Missing required parameter: 'input[{i}].call_id'.", f"input[{i}]")
                calls.add(item["call_id"])
                chars += len(item["arguments"])
            elif kind == "function_call_output":
                if item.get("call_id") not in calls:
                    raise WireError(400, f"No tool call found for function call output with call_id "
                                    f"{item.get('call_id')}.", "input")  # fmt: skip
                output = item.get("output")
                text = output if isinstance(output, str) else text_of(output)
                chars += len(text)
                out.append(Message("tool", text))
            elif kind == "reasoning":
                if not isinstance(item.get("summary"), list):
                    raise WireError(400, f"Missing required parameter: 'input[{i}].summary'.", f"input[{i}].summary")
                encrypted = item.get("encrypted_content")
                if encrypted is not None and encrypted not in self.issued:
                    raise WireError(400, f"The encrypted content for item {item.get('id')} could not be verified.")
            else:
                raise WireError(400, f"Invalid value: '{kind}'.", f"input[{i}].type")
        return out, chars

    def completion_id(self) -> str:
        return "resp_" + _hex()

    def completion_json(self, c: Completion) -> dict[str, Any]:
        return _Answer(c, self).response("completed", finished=True)

    def frames(self, c: Completion) -> Frames:
        return _Events(c, self)


class FakeOpenAIResponses(FakeServer):
    """A fake OpenAI Responses upstream over real HTTP on loopback; its base_url ends in /v1, as a
    provider's `base_url` for `api: openai-responses` does."""

    wire: ClassVar[ResponsesWire] = ResponsesWire()  # type: ignore[misc]

    @classmethod
    def run_in_thread(cls, **kwargs: Any) -> FakeOpenAIResponsesThread:
        """Start a fake on its own event loop in a daemon thread (for synchronous clients)."""
        return FakeOpenAIResponsesThread(cls(**kwargs))


class FakeOpenAIResponsesThread(FakeThread[FakeOpenAIResponses]):
    """A FakeOpenAIResponses served from a daemon thread with its own event loop."""


if __name__ == "__main__":
    from omnirouter.testing.fakes.core import main

    main(FakeOpenAIResponses, "python -m omnirouter.testing.fakes.openai_responses")
