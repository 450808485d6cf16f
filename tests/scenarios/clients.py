"""The three client formats as the official SDKs speak them, behind one interface the scenarios use.

A driver builds a conversation in its format, asks the gateway through its SDK (which parses,
raises, and for streams accumulates as real clients do), and returns an ``Answer`` read from the
exact bytes the gateway sent (recorded under the SDK by ``Recorder``): money parsed as Decimal,
every answer and stream event validated against the OpenAPI document, and each format's stream
order checked.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import anthropic
import openai

from tests.spec_validation import SPEC_PATH, parse_sse, spec_available, validate, validate_response

FORMATS = ("chat", "responses", "messages")
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


def exact(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Decimal)


# -- the bytes under the SDK -------------------------------------------------------------------------


@dataclass
class Exchange:
    request: Any
    response: Any  # an httpx or httpx2 Response: the anthropic SDK ships its own fork of httpx
    body: bytearray


class Recorder:
    """Keeps every response's bytes as an SDK reads them, below the SDK: ``client(httpx)`` and
    ``client(httpx2)`` build the SDKs' HTTP clients on transports that tee into ``exchanges``."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []

    def client(self, module: Any) -> Any:
        exchanges = self.exchanges

        class Tee(module.SyncByteStream):  # type: ignore[misc,name-defined]
            def __init__(self, inner: Any, sink: bytearray) -> None:
                self.inner = inner
                self.sink = sink
                self.read_all = False

            def __iter__(self) -> Iterator[bytes]:
                for chunk in self.inner:
                    self.sink += chunk
                    yield chunk
                self.read_all = True

            def close(self) -> None:
                # An SDK that raises on an in-band error stops reading there; what the gateway sent
                # after it (chat's usage chunk and [DONE]) is read here, to be checked too.
                if not self.read_all:
                    for chunk in self.inner:
                        self.sink += chunk
                self.inner.close()

        class Transport(module.HTTPTransport):  # type: ignore[misc,name-defined]
            def handle_request(self, request: Any) -> Any:
                response = super().handle_request(request)
                sink = bytearray()
                response.stream = Tee(response.stream, sink)
                exchanges.append(Exchange(request, response, sink))
                return response

        return module.Client(transport=Transport(retries=0), timeout=30)

    @property
    def last(self) -> Exchange:
        return self.exchanges[-1]


# -- what a scenario gets back -----------------------------------------------------------------------


@dataclass
class Tokens:
    prompt: int  # cached and cache-write tokens included, as OpenAI counts
    completion: int  # reasoning included
    cached: int = 0
    cache_write: int = 0
    reasoning: int | None = None  # None: the format's usage does not say


@dataclass
class Answer:
    text: str
    tool_calls: list[tuple[str, str, Any]]  # id, name, arguments
    reasoning: str
    finish: str  # stop, tool_calls, length (the format's own word mapped)
    usage: dict[str, Any]  # the format's usage object, exact
    tokens: Tokens
    cost: Decimal
    generation_id: str
    native: Any  # what goes back into the conversation as the assistant's turn
    events: list[dict[str, Any]] | None = None  # a stream's events, parsed
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Conversation:
    system: str | None = None
    items: list[Any] = field(default_factory=list)


@dataclass
class Ask:
    """What a scenario asks beside the conversation."""

    tools: list[dict[str, Any]] | None = None  # neutral: name, description, parameters
    schema: dict[str, Any] | None = None  # a JSON schema the answer must follow
    reasoning: bool = False
    provider_order: list[str] | None = None
    max_tokens: int | None = None


class StreamOrderError(AssertionError):
    pass


# -- drivers ------------------------------------------------------------------------------------------


class Driver:
    name: str
    operation: str  # its operationId in the OpenAPI document
    sentinel: bool  # its streams end with data: [DONE]

    def __init__(self, base_url: str, key: str, http: dict[str, Any], recorder: Recorder) -> None:
        self.key = key
        self.http = http  # the SDKs' HTTP clients, by module name
        self.recorder = recorder
        self.base_url = base_url

    # conversation building
    def conversation(self, system: str | None = None) -> Conversation:
        return Conversation(system)

    def user(self, conv: Conversation, text: str, image: bool = False) -> None:
        raise NotImplementedError

    def assistant(self, conv: Conversation, text: str) -> None:
        raise NotImplementedError

    def follow(self, conv: Conversation, answer: Answer) -> None:
        raise NotImplementedError

    def tool_results(self, conv: Conversation, results: dict[str, str]) -> None:
        raise NotImplementedError

    def ask(self, model: str, conv: Conversation, ask: Ask | None = None, *, stream: bool = False) -> Answer:
        raise NotImplementedError

    def read_failing_stream(self, model: str, conv: Conversation) -> Exception | None:
        """Stream through the SDK to its end or its exception (returned); the events are recorded."""
        raise NotImplementedError

    # validation shared by the formats
    def validated_body(self) -> Any:
        ex = self.recorder.last
        body = ex.response.json()
        if spec_available():
            validate_response(self.operation, body, status=str(ex.response.status_code))
        return exact(bytes(ex.body))

    def validated_events(self) -> list[dict[str, Any]]:
        """The last stream's events (data parsed exactly), each valid against the document."""
        assert self.recorder.last.response.status_code == 200
        events = parse_sse(bytes(self.recorder.last.body))
        if self.sentinel:
            assert events and events[-1]["data"] == "[DONE]", "the stream does not end with data: [DONE]"
            events = events[:-1]
        assert all(e["data"] != "[DONE]" for e in events), "data: [DONE] before the end"
        for e in events:
            if spec_available():
                validate_event(self.operation, {**e, "data": json.loads(e["data"])})
        return [{**e, "data": exact(e["data"])} for e in events]

    def headers(self) -> dict[str, str]:
        return dict(self.recorder.last.response.headers)


@functools.cache
def _spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text())


def _operation(operation: str) -> dict[str, Any]:
    for item in _spec()["paths"].values():
        for op in item.values():
            if isinstance(op, dict) and op.get("operationId") == operation:
                return op
    raise KeyError(operation)


def documented_statuses(operation: str) -> set[str]:
    """The statuses the document gives the operation a body schema for (none without it)."""
    return set(_operation(operation)["responses"]) if spec_available() else set()


@functools.cache
def _event_schemas(operation: str) -> dict[str, str]:
    """The discriminator mapping (event type -> schema name) of an operation's stream events, when
    they are a union that has one."""
    schemas = _spec()["components"]["schemas"]
    stream = _operation(operation)["responses"]["200"]["content"]["text/event-stream"]["schema"]
    data = schemas[stream["$ref"].split("/")[-1]]["properties"]["data"]
    if "$ref" not in data:
        return {}
    mapping = (schemas[data["$ref"].split("/")[-1]].get("discriminator") or {}).get("mapping") or {}
    return {kind: ref.split("/")[-1] for kind, ref in mapping.items()}


def validate_event(operation: str, event: dict[str, Any]) -> None:
    """One stream event against the document. A union of event types is validated through its
    discriminator (the one schema its `type` names), as a client decodes it: checking each event
    against every member of a 50-type union is what made long streams slow to check."""
    mapping = _event_schemas(operation)
    data = event["data"]
    kind = data.get("type") if isinstance(data, dict) else None
    if "event" in event:
        assert event["event"] == kind, f"SSE event name {event['event']!r} for data of type {kind!r}"
    if kind in mapping:
        validate(data, mapping[kind])
    else:
        validate_response(operation, event, content_type="text/event-stream")


def _neutral_finish(word: str | None) -> str:
    return {
        "end_turn": "stop",
        "stop_sequence": "stop",
        "tool_use": "tool_calls",
        "max_tokens": "length",
        "completed": "stop",
        "incomplete": "length",
    }.get(word or "", word or "")


class Chat(Driver):
    name = "chat"
    operation = "sendChatCompletionRequest"
    sentinel = True

    def sdk(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url, api_key=self.key, http_client=self.http["httpx"], max_retries=0)

    def conversation(self, system: str | None = None) -> Conversation:
        return Conversation(system, [{"role": "system", "content": system}] if system else [])

    def user(self, conv: Conversation, text: str, image: bool = False) -> None:
        content: Any = text
        if image:
            content = [
                {"type": "text", "text": text},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            ]
        conv.items.append({"role": "user", "content": content})

    def assistant(self, conv: Conversation, text: str) -> None:
        conv.items.append({"role": "assistant", "content": text})

    def follow(self, conv: Conversation, answer: Answer) -> None:
        conv.items.append(answer.native)

    def tool_results(self, conv: Conversation, results: dict[str, str]) -> None:
        conv.items += [{"role": "tool", "tool_call_id": i, "content": r} for i, r in results.items()]

    def _params(self, model: str, conv: Conversation, ask: Ask) -> dict[str, Any]:
        params: dict[str, Any] = {"model": model, "messages": conv.items}
        if ask.max_tokens:
            params["max_tokens"] = ask.max_tokens
        extra: dict[str, Any] = {}
        if ask.tools:
            params["tools"] = [{"type": "function", "function": t} for t in ask.tools]
        if ask.schema:
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "strict": True, "schema": ask.schema},
            }
        if ask.reasoning:
            extra["reasoning"] = {"max_tokens": 2048}
        if ask.provider_order:
            extra["provider"] = {"order": ask.provider_order}
        if extra:
            params["extra_body"] = extra
        return params

    def ask(self, model: str, conv: Conversation, ask: Ask | None = None, *, stream: bool = False) -> Answer:
        params = self._params(model, conv, ask or Ask())
        client = self.sdk()
        if not stream:
            raw = client.chat.completions.with_raw_response.create(**params)
            sdk_message = raw.parse().choices[0].message
            body = self.validated_body()
            choice = body["choices"][0]
            message = choice["message"]
            calls = [
                (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
                for c in message.get("tool_calls") or ()
            ]
            assert (sdk_message.content or "") == (message.get("content") or "")
            return self._answer(
                body["usage"],
                body["id"],
                message.get("content") or "",
                calls,
                message.get("reasoning") or "",
                choice["finish_reason"],
                sdk_message.model_dump(exclude_none=True),
            )
        sdk_text = "".join(
            c.choices[0].delta.content or ""
            for c in client.chat.completions.create(**params, stream=True, stream_options={"include_usage": True})
            if c.choices
        )
        events = [e["data"] for e in self.validated_events()]
        check_chat_order(events)
        text, reasoning, details, finish = "", "", [], None
        calls_by_index: dict[int, dict[str, Any]] = {}
        for chunk in events:
            for choice in chunk["choices"]:
                delta = choice.get("delta") or {}
                text += delta.get("content") or ""
                reasoning += delta.get("reasoning") or ""
                details += delta.get("reasoning_details") or []
                for call in delta.get("tool_calls") or ():
                    slot = calls_by_index.setdefault(call["index"], {"id": None, "name": "", "arguments": ""})
                    slot["id"] = call.get("id") or slot["id"]
                    fn = call.get("function") or {}
                    slot["name"] += fn.get("name") or ""
                    slot["arguments"] += fn.get("arguments") or ""
                finish = choice.get("finish_reason") or finish
        assert sdk_text == text
        calls = [(c["id"], c["name"], json.loads(c["arguments"])) for _, c in sorted(calls_by_index.items())]
        native: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            native["tool_calls"] = [
                {"id": i, "type": "function", "function": {"name": n, "arguments": json.dumps(a)}} for i, n, a in calls
            ]
        if details:
            native["reasoning_details"] = merge_details(details)
        answer = self._answer(events[-1]["usage"], events[-1]["id"], text, calls, reasoning, finish, native)
        answer.events = events
        return answer

    def read_failing_stream(self, model: str, conv: Conversation) -> Exception | None:
        try:
            for _ in self.sdk().chat.completions.create(**self._params(model, conv, Ask()), stream=True):
                pass
        except openai.APIError as exc:  # the SDK raises on a chunk with an error
            return exc
        return None

    def _answer(
        self,
        usage: dict[str, Any],
        gen_id: str,
        text: str,
        calls: list[Any],
        reasoning: str,
        finish: str | None,
        native: Any,
    ) -> Answer:
        prompt_details = usage.get("prompt_tokens_details") or {}
        tokens = Tokens(
            usage["prompt_tokens"],
            usage["completion_tokens"],
            prompt_details.get("cached_tokens") or 0,
            prompt_details.get("cache_write_tokens") or 0,
            (usage.get("completion_tokens_details") or {}).get("reasoning_tokens"),
        )
        assert self.headers()["x-generation-id"] == gen_id
        return Answer(
            text,
            calls,
            reasoning,
            _neutral_finish(finish),
            usage,
            tokens,
            usage["cost"],
            gen_id,
            native,
            headers=self.headers(),
        )


def merge_details(details: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Streamed reasoning_details pieces joined per index, as a client sends them back."""
    merged: dict[tuple[str, int], dict[str, Any]] = {}
    for d in details:
        slot = merged.setdefault((d["type"], d.get("index", 0)), {**d, "text": ""} if "text" in d else dict(d))
        if "text" in d:
            slot["text"] += d.get("text") or ""
        for name in ("signature", "data", "format", "id"):
            if d.get(name):
                slot[name] = d[name]
    return list(merged.values())


class Responses(Driver):
    name = "responses"
    operation = "createResponses"
    sentinel = True

    def sdk(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url, api_key=self.key, http_client=self.http["httpx"], max_retries=0)

    def user(self, conv: Conversation, text: str, image: bool = False) -> None:
        content: list[dict[str, Any]] = [{"type": "input_text", "text": text}]
        if image:
            content.append({"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "auto"})
        conv.items.append({"role": "user", "content": content})

    def assistant(self, conv: Conversation, text: str) -> None:
        conv.items.append(
            {
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        )

    def follow(self, conv: Conversation, answer: Answer) -> None:
        conv.items += answer.native

    def tool_results(self, conv: Conversation, results: dict[str, str]) -> None:
        conv.items += [{"type": "function_call_output", "call_id": i, "output": r} for i, r in results.items()]

    def _params(self, model: str, conv: Conversation, ask: Ask) -> dict[str, Any]:
        params: dict[str, Any] = {"model": model, "input": conv.items}
        if ask.max_tokens:
            params["max_output_tokens"] = ask.max_tokens
        if conv.system:
            params["instructions"] = conv.system
        if ask.tools:
            params["tools"] = [{"type": "function", **t} for t in ask.tools]
        if ask.schema:
            params["text"] = {"format": {"type": "json_schema", "name": "answer", "strict": True, "schema": ask.schema}}
        if ask.reasoning:  # as the Codex CLI asks: a summary, and the encrypted reasoning to send back
            params["reasoning"] = {"effort": "low", "summary": "auto"}
            params["include"] = ["reasoning.encrypted_content"]
        if ask.provider_order:
            params["extra_body"] = {"provider": {"order": ask.provider_order}}
        return params

    def ask(self, model: str, conv: Conversation, ask: Ask | None = None, *, stream: bool = False) -> Answer:
        params = self._params(model, conv, ask or Ask())
        client = self.sdk()
        if not stream:
            raw = client.responses.with_raw_response.create(**params)
            sdk_text = raw.parse().output_text
            response = self.validated_body()
            answer = self._answer(response)
            assert sdk_text == answer.text
            return answer
        sdk_events = list(client.responses.create(**params, stream=True))
        events = [e["data"] for e in self.validated_events()]
        assert [e.type for e in sdk_events] == [e["type"] for e in events]
        check_responses_order(events)
        final = events[-1]["response"]
        text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
        answer = self._answer(final)
        assert text == answer.text, "the deltas do not add up to the final text"
        answer.events = events
        return answer

    def read_failing_stream(self, model: str, conv: Conversation) -> Exception | None:
        for _ in self.sdk().responses.create(**self._params(model, conv, Ask()), stream=True):
            pass  # response.failed is an event like the others to the SDK
        return None

    def _answer(self, response: dict[str, Any]) -> Answer:
        text, reasoning, calls = "", "", []
        for item in response["output"]:
            if item["type"] == "message":
                text += "".join(p.get("text", "") for p in item["content"] if p["type"] == "output_text")
            elif item["type"] == "function_call":
                calls.append((item["call_id"], item["name"], json.loads(item["arguments"])))
            elif item["type"] == "reasoning":
                reasoning += "".join(p["text"] for p in item.get("content") or ())
                if not item.get("content"):
                    reasoning += "".join(p["text"] for p in item.get("summary") or ())
        usage = response["usage"]
        tokens = Tokens(
            usage["input_tokens"],
            usage["output_tokens"],
            (usage.get("input_tokens_details") or {}).get("cached_tokens") or 0,
            (usage.get("input_tokens_details") or {}).get("cache_write_tokens") or 0,
            (usage.get("output_tokens_details") or {}).get("reasoning_tokens"),
        )
        gen_id = self.headers()["x-generation-id"]
        assert response["id"] == "resp_" + gen_id.removeprefix("gen-")
        finish = "tool_calls" if calls and response["status"] == "completed" else _neutral_finish(response["status"])
        native = json.loads(json.dumps(response["output"], default=str))  # items go back as they came
        return Answer(
            text, calls, reasoning, finish, usage, tokens, usage["cost"], gen_id, native, headers=self.headers()
        )


class Messages(Driver):
    name = "messages"
    operation = "createMessages"
    sentinel = False

    def sdk(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(
            base_url=self.base_url.removesuffix("/v1"),
            auth_token=self.key,
            http_client=self.http["httpx2"],
            max_retries=0,
        )

    def user(self, conv: Conversation, text: str, image: bool = False) -> None:
        content: list[dict[str, Any]] = [{"type": "text", "text": text}]
        if image:
            content.append({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}})
        conv.items.append({"role": "user", "content": content})

    def assistant(self, conv: Conversation, text: str) -> None:
        conv.items.append({"role": "assistant", "content": [{"type": "text", "text": text}]})

    def follow(self, conv: Conversation, answer: Answer) -> None:
        conv.items.append({"role": "assistant", "content": answer.native})

    def tool_results(self, conv: Conversation, results: dict[str, str]) -> None:
        blocks = [{"type": "tool_result", "tool_use_id": i, "content": r} for i, r in results.items()]
        conv.items.append({"role": "user", "content": blocks})

    def _params(self, model: str, conv: Conversation, ask: Ask) -> dict[str, Any]:
        params: dict[str, Any] = {"model": model, "messages": conv.items, "max_tokens": ask.max_tokens or 4096}
        if conv.system:
            params["system"] = conv.system
        if ask.tools:
            params["tools"] = [
                {"name": t["name"], "description": t["description"], "input_schema": t["parameters"]} for t in ask.tools
            ]
        if ask.schema:
            params["output_config"] = {"format": {"type": "json_schema", "schema": ask.schema}}
        if ask.reasoning:
            params["thinking"] = {"type": "enabled", "budget_tokens": 2048}
        if ask.provider_order:
            params["extra_body"] = {"provider": {"order": ask.provider_order}}
        return params

    def ask(self, model: str, conv: Conversation, ask: Ask | None = None, *, stream: bool = False) -> Answer:
        params = self._params(model, conv, ask or Ask())
        client = self.sdk()
        if not stream:
            raw = client.messages.with_raw_response.create(**params)
            sdk_message = raw.parse()
            body = self.validated_body()
            answer = self._answer(body["content"], body["stop_reason"], body["usage"], body["id"])
            answer.native = [b.model_dump(exclude_none=True) for b in sdk_message.content]
            return answer
        with client.messages.stream(**params) as s:
            final = s.get_final_message()
        events = [e["data"] for e in self.validated_events()]
        check_messages_order(events)
        blocks: list[dict[str, Any]] = []
        stop, usage = None, None
        for e in events:
            if e["type"] == "content_block_start":
                blocks.append(dict(e["content_block"]))
                if blocks[-1]["type"] == "tool_use":
                    blocks[-1]["partial"] = ""
            elif e["type"] == "content_block_delta":
                block, d = blocks[e["index"]], e["delta"]
                if d["type"] == "text_delta":
                    block["text"] += d["text"]
                elif d["type"] == "thinking_delta":
                    block["thinking"] += d["thinking"]
                elif d["type"] == "signature_delta":
                    block["signature"] = d["signature"]
                elif d["type"] == "input_json_delta":
                    block["partial"] += d["partial_json"]
            elif e["type"] == "message_delta":
                stop, usage = e["delta"]["stop_reason"], e["usage"]
        for block in blocks:
            if block["type"] == "tool_use":
                block["input"] = json.loads(block.pop("partial") or "{}")
        assert usage is not None
        answer = self._answer(blocks, stop, usage, events[0]["message"]["id"])
        assert [b.model_dump(exclude_none=True).get("text") for b in final.content] == [b.get("text") for b in blocks]
        answer.native = [b.model_dump(exclude_none=True) for b in final.content]
        answer.events = events
        return answer

    def read_failing_stream(self, model: str, conv: Conversation) -> Exception | None:
        try:
            with self.sdk().messages.stream(**self._params(model, conv, Ask())) as s:
                for _ in s:
                    pass
        except anthropic.APIStatusError as exc:  # the SDK raises on an error event
            return exc
        return None

    def _answer(self, blocks: list[dict[str, Any]], stop: str | None, usage: dict[str, Any], msg_id: str) -> Answer:
        text = "".join(b["text"] for b in blocks if b["type"] == "text")
        reasoning = "".join(b["thinking"] for b in blocks if b["type"] == "thinking")
        calls = [(b["id"], b["name"], b["input"]) for b in blocks if b["type"] == "tool_use"]
        cached = usage.get("cache_read_input_tokens") or 0
        written = usage.get("cache_creation_input_tokens") or 0
        tokens = Tokens(usage["input_tokens"] + cached + written, usage["output_tokens"], cached, written, None)
        gen_id = self.headers()["x-generation-id"]
        assert msg_id == gen_id
        return Answer(
            text,
            calls,
            reasoning,
            _neutral_finish(stop),
            usage,
            tokens,
            usage["cost"],
            gen_id,
            blocks,
            headers=self.headers(),
        )


DRIVERS: dict[str, type[Driver]] = {"chat": Chat, "responses": Responses, "messages": Messages}


# -- stream order, per format ------------------------------------------------------------------------


def check_chat_order(chunks: list[dict[str, Any]]) -> None:
    """Role first, content, one finish reason, the usage chunk last (then [DONE], checked apart)."""
    with_choices = [c for c in chunks if c["choices"]]
    if not with_choices or with_choices[0]["choices"][0]["delta"].get("role") != "assistant":
        raise StreamOrderError("the first chunk does not carry role: assistant")
    finishes = [i for i, c in enumerate(chunks) if c["choices"] and c["choices"][0].get("finish_reason")]
    if len(finishes) != 1:
        raise StreamOrderError(f"{len(finishes)} chunks carry a finish_reason")
    last = chunks[-1]
    if last["choices"] or not last.get("usage"):
        raise StreamOrderError("the last chunk is not the usage chunk")
    if finishes[0] != len(chunks) - 2:
        raise StreamOrderError("content after the finish reason")
    if any(c.get("usage") for c in chunks[:-1]):
        raise StreamOrderError("usage before the last chunk")


def check_messages_order(events: list[dict[str, Any]], *, failed: bool = False) -> None:
    """message_start, then per block start, deltas, stop (one block at a time, indexes 0, 1, ...),
    then message_delta and message_stop; a failed stream ends with an error event instead."""
    kinds = [e["type"] for e in events if e["type"] != "ping"]
    real = [e for e in events if e["type"] != "ping"]
    if kinds[0] != "message_start":
        raise StreamOrderError(f"first event {kinds[0]}")
    if failed:
        if kinds[-1] != "error" or "error" in kinds[:-1]:
            raise StreamOrderError(f"a failed stream ends with {kinds[-1]}")
        body = real[1:-1]
    else:
        if kinds[-2:] != ["message_delta", "message_stop"]:
            raise StreamOrderError(f"the stream ends with {kinds[-2:]}")
        body = real[1:-2]
    open_index, next_index = None, 0
    for e in body:
        if e["type"] == "content_block_start":
            if open_index is not None or e["index"] != next_index:
                raise StreamOrderError(f"block {e['index']} starts while {open_index} is open / expected {next_index}")
            open_index = e["index"]
        elif e["type"] == "content_block_delta":
            if e["index"] != open_index:
                raise StreamOrderError(f"delta for block {e['index']} while {open_index} is open")
        elif e["type"] == "content_block_stop":
            if e["index"] != open_index:
                raise StreamOrderError(f"stop for block {e['index']} while {open_index} is open")
            open_index, next_index = None, next_index + 1
        else:
            raise StreamOrderError(f"{e['type']} among the content blocks")
    if not failed and open_index is not None:
        raise StreamOrderError(f"block {open_index} never stops")


_TERMINAL = ("response.completed", "response.failed", "response.incomplete")


def check_responses_order(events: list[dict[str, Any]], *, failed: bool = False) -> None:
    """sequence_number 0..n, response.created first, one terminal event last; every output item
    added before its events and done after them; content parts likewise."""
    numbers = [e["sequence_number"] for e in events]
    if numbers != list(range(len(events))):
        raise StreamOrderError(f"sequence numbers {numbers[:10]}...")
    kinds = [e["type"] for e in events]
    if kinds[0] != "response.created":
        raise StreamOrderError(f"first event {kinds[0]}")
    want = ("response.failed",) if failed else ("response.completed", "response.incomplete")
    if kinds[-1] not in want or any(k in _TERMINAL for k in kinds[:-1]):
        raise StreamOrderError(f"the stream ends with {kinds[-1]}, wanted one of {want} once")
    items: dict[int, str] = {}  # output_index -> "open" | "done"
    parts: dict[tuple[int, int], str] = {}
    for e in events[1:-1]:
        kind, index = e["type"], e.get("output_index")
        if kind == "response.output_item.added":
            if index in items:
                raise StreamOrderError(f"item {index} added twice")
            items[index] = "open"
        elif kind == "response.output_item.done":
            if items.get(index) != "open":
                raise StreamOrderError(f"item {index} done before it was added, or twice")
            if any(state == "open" for (i, _), state in parts.items() if i == index):
                raise StreamOrderError(f"item {index} done with a content part open")
            items[index] = "done"
        elif index is not None:
            if items.get(index) != "open":
                raise StreamOrderError(f"{kind} for item {index} outside added..done")
            part = e.get("content_index")
            if part is None:
                part = e.get("summary_index")
            if kind in ("response.content_part.added", "response.reasoning_summary_part.added"):
                parts[(index, part)] = "open"
            elif kind in ("response.content_part.done", "response.reasoning_summary_part.done"):
                if parts.get((index, part)) != "open":
                    raise StreamOrderError(f"part {index}/{part} done before added")
                parts[(index, part)] = "done"
            elif part is not None and kind.endswith(".delta") and parts.get((index, part), "open") != "open":
                raise StreamOrderError(f"{kind} for a closed part {index}/{part}")
    if not failed and any(state != "done" for state in items.values()):
        raise StreamOrderError("an output item is never done")
    if sorted(items) != list(range(len(items))):
        raise StreamOrderError(f"output indexes {sorted(items)}")
