"""The AWS Bedrock Converse wire, and FakeBedrock: the fake that speaks it.

``POST /model/{modelId}/converse`` answers with Converse's JSON (``output.message.content`` blocks,
``stopReason``, ``usage`` with ``cacheReadInputTokens``/``cacheWriteInputTokens``);
``POST /model/{modelId}/converse-stream`` with the binary ``application/vnd.amazon.eventstream``
framing Bedrock sends (prelude and message CRC32s, ``:event-type``/``:message-type`` headers, the
``p`` padding field in each payload): ``messageStart``, ``contentBlockStart`` (tool use),
``contentBlockDelta`` (text, ``toolUse.input``, ``reasoningContent`` text and signature),
``contentBlockStop``, ``messageStop``, ``metadata`` with the usage; an in-band failure is an
exception message (``:exception-type``). Errors are ``{"message": ...}`` with the exception's name
in ``x-amzn-ErrorType``.

Auth is checked as AWS checks it: with ``api_key="ACCESS_KEY_ID:SECRET_ACCESS_KEY"`` every request
must carry a SigV4 ``Authorization`` header for service ``bedrock`` that the fake recomputes from the
request it received (a signing bug fails with 403 ``InvalidSignatureException``); a Bedrock API key
(``Authorization: Bearer <api_key>``) is accepted too. Like Bedrock, it refuses what a translating
client could get wrong: unknown fields, turns that do not alternate, blank text, tool blocks without
a ``toolConfig``, a ``toolResult`` that answers no ``toolUse`` of the turn before, reasoning whose
signature it did not issue.

    with FakeBedrock.run_in_thread(api_key="AKIDEXAMPLE:secret") as fake:
        fake.script(Reply("Hi", reasoning="Let me think.", cached_tokens=900))
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import struct
import time
import uuid
import zlib
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote

import msgspec
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
    Wire,
    WireError,
    encode_json,
    signature_of,
    text_of,
)

__all__ = ["BedrockWire", "FakeBedrock", "FakeBedrockThread", "event_message", "sigv4_signature"]

SERVICE = "bedrock"
_DEFAULT_MODELS = ("anthropic.claude-sonnet-4-5-20250929-v1:0", "amazon.nova-pro-v1:0")
_EXCEPTIONS = {
    400: ("ValidationException", "The provided request is not valid"),
    403: ("AccessDeniedException", "You don't have access to the model with the specified model ID."),
    404: ("ResourceNotFoundException", "The requested resource could not be found."),
    408: ("ModelTimeoutException", "The model took too long to respond."),
    424: ("ModelErrorException", "The model encountered an error processing the request."),
    429: ("ThrottlingException", "Too many requests, please wait before trying again."),
    500: ("InternalServerException", "The server encountered an internal error."),
    503: ("ServiceUnavailableException", "The service is temporarily unable to handle the request."),
}
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
_TOP_LEVEL = frozenset(
    {"messages", "system", "inferenceConfig", "toolConfig", "guardrailConfig", "additionalModelRequestFields",
     "additionalModelResponseFieldPaths", "promptVariables", "requestMetadata", "performanceConfig", "outputConfig"}
)  # fmt: skip
_INFERENCE = frozenset({"maxTokens", "temperature", "topP", "stopSequences"})
_BLOCKS = frozenset(
    {"text", "image", "document", "video", "toolUse", "toolResult", "reasoningContent", "cachePoint", "guardContent"}
)
_IMAGE_FORMATS = frozenset({"png", "jpeg", "gif", "webp"})
_DOCUMENT_FORMATS = frozenset({"pdf", "csv", "doc", "docx", "xls", "xlsx", "html", "txt", "md"})
_DOCUMENT_NAME = re.compile(r"^(?! )(?!.*  )[A-Za-z0-9\-()\[\] ]+(?<! )$")
_ARGUMENT_PIECE = 8  # characters of tool input per delta
_SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)


# -- AWS event-stream framing ----------------------------------------------------------------------------


def event_message(headers: dict[str, str], payload: bytes, *, corrupt: bool = False) -> bytes:
    """One event-stream message: prelude (total and headers length, CRC32), string headers, the
    payload, and the CRC32 of all of it (`corrupt` sends a wrong one)."""
    head = b""
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        head += bytes([len(raw_name)]) + raw_name + b"\x07" + struct.pack(">H", len(raw_value)) + raw_value
    prelude = struct.pack(">II", 16 + len(head) + len(payload), len(head))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + head + payload
    crc = zlib.crc32(message) ^ (0xFFFFFFFF if corrupt else 0)
    return message + struct.pack(">I", crc)


def _padding() -> str:
    """Bedrock pads every event payload (`p`) so that sizes do not give the tokens away."""
    return "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[: secrets.randbelow(40) + 1]


def _event(kind: str, payload: dict[str, Any]) -> bytes:
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return event_message(headers, encode_json({**payload, "p": _padding()}))


def _exception(kind: str, message: str) -> bytes:
    headers = {":exception-type": kind, ":content-type": "application/json", ":message-type": "exception"}
    return event_message(headers, encode_json({"message": message}))


# -- SigV4, computed here without botocore, so the adapter's signing is checked by another hand -----------


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def sigv4_signature(
    secret: str,
    *,
    method: str,
    raw_path: str,
    query: str,
    headers: dict[str, str],
    signed: list[str],
    body: bytes,
    amz_date: str,
    scope: str,
) -> str:
    """The SigV4 signature of a request as received: `raw_path` as sent (percent-encoded once; AWS
    services other than S3 encode it again for the canonical request), `headers` lower-cased,
    `signed` the names the Authorization header lists, `scope` `date/region/service/aws4_request`."""
    canonical_query = "&".join(sorted(q for q in query.split("&") if q))
    canonical = "\n".join(
        [
            method,
            quote(raw_path, safe="/~"),
            canonical_query,
            "".join(f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed),
            ";".join(signed),
            hashlib.sha256(body).hexdigest(),
        ]
    )
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    date, region, service, _ = scope.split("/")
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + secret).encode(), date), region), service), "aws4_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/,\s]+)/(?P<scope>[^,\s]+), ?"
    r"SignedHeaders=(?P<signed>[^,\s]+), ?Signature=(?P<signature>[0-9a-f]{64})$"
)


def _check_sigv4(request: web.Request, body: bytes, access_key: str, secret: str) -> WireError | None:
    header = request.headers.get("Authorization", "")
    match = _AUTHORIZATION.match(header)
    if match is None:
        return WireError(403, "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'.")
    if match["key"] != access_key:
        return WireError(403, "The security token included in the request is invalid.", "UnrecognizedClientException")
    scope = match["scope"]
    parts = scope.split("/")
    amz_date = request.headers.get("X-Amz-Date", "")
    if len(parts) != 4 or parts[2] != SERVICE or parts[3] != "aws4_request" or not amz_date.startswith(parts[0]):
        return WireError(403, f"Credential should be scoped to a valid region and service {SERVICE!r}.")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return WireError(403, "X-Amz-Date is not a valid timestamp.", "IncompleteSignatureException")
    if abs(time.time() - signed_at.timestamp()) > 300:
        return WireError(403, "Signature expired.", "InvalidSignatureException")
    signed = match["signed"].split(";")
    must_sign = {"host", "x-amz-date"} | (
        {"x-amz-security-token"} if "X-Amz-Security-Token" in request.headers else set()
    )
    if signed != sorted(signed) or not must_sign <= set(signed):
        return WireError(403, _SIGNATURE_MISMATCH, "InvalidSignatureException")
    headers = {k.lower(): v for k, v in request.headers.items()}
    expected = sigv4_signature(
        secret,
        method=request.method,
        raw_path=request.raw_path.split("?", 1)[0],
        query=request.query_string,
        headers=headers,
        signed=signed,
        body=body,
        amz_date=amz_date,
        scope=scope,
    )
    if not hmac.compare_digest(expected, match["signature"]):
        return WireError(403, _SIGNATURE_MISMATCH, "InvalidSignatureException")
    return None


def _raw_body(request: web.Request) -> bytes:
    # The core reads the body before check_auth, which aiohttp keeps; check_auth is not async.
    body = request._read_bytes
    return body or b""


# -- answers -----------------------------------------------------------------------------------------------


def stop_reason(c: Completion) -> str:
    return c.finish_reason if c.finish_verbatim else _STOP_REASONS.get(c.finish_reason, "end_turn")


def usage_json(c: Completion) -> dict[str, Any]:
    """Converse usage: inputTokens leave out cache reads and writes; totalTokens counts all."""
    if c.raw_usage is not None:
        return c.raw_usage
    u = c.usage
    if u is None:
        return {"inputTokens": 0, "outputTokens": 0, "totalTokens": 0}
    out: dict[str, Any] = {
        "inputTokens": u.uncached_prompt_tokens,
        "outputTokens": u.completion_tokens,
        "totalTokens": u.prompt_tokens + u.completion_tokens,
    }
    if u.cached_tokens or u.cache_write_tokens is not None:
        out["cacheReadInputTokens"] = u.cached_tokens
        out["cacheWriteInputTokens"] = u.cache_write_tokens or 0
    return out


def _content(c: Completion) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if c.reasoning is not None:
        blocks.append(
            {"reasoningContent": {"reasoningText": {"text": c.reasoning, "signature": c.reasoning_signature}}}
        )
    if c.content:
        blocks.append({"text": c.content})
    for call in c.tool_calls or ():
        blocks.append({"toolUse": {"toolUseId": call.id, "name": call.name, "input": call.args}})
    return blocks


class _Events(Frames):
    """ConverseStream's messages for one answer. Each body event is one delta; a tool block's
    contentBlockStart rides with its first delta, every block's contentBlockStop with its last."""

    def __init__(self, c: Completion) -> None:
        self.c = c
        self.events: list[bytes] = []
        index = 0
        if c.reasoning is not None:
            deltas = [{"reasoningContent": {"text": t}} for t in c.reasoning_tokens]
            deltas.append({"reasoningContent": {"signature": c.reasoning_signature}})
            self._block(index, None, deltas)
            index += 1
        if c.tokens:
            self._block(index, None, [{"text": t} for t in c.tokens])
            index += 1
        for call in c.tool_calls or ():
            args = encode_json(call.args).decode()
            pieces = [args[i : i + _ARGUMENT_PIECE] for i in range(0, len(args), _ARGUMENT_PIECE)] or [""]
            start = {"toolUse": {"toolUseId": call.id, "name": call.name}}
            self._block(index, start, [{"toolUse": {"input": p}} for p in pieces])
            index += 1

    def _block(self, index: int, start: dict[str, Any] | None, deltas: list[dict[str, Any]]) -> None:
        events = [_event("contentBlockDelta", {"contentBlockIndex": index, "delta": d}) for d in deltas]
        if start is not None:
            events[0] = _event("contentBlockStart", {"contentBlockIndex": index, "start": start}) + events[0]
        events[-1] += _event("contentBlockStop", {"contentBlockIndex": index})
        self.events.extend(events)

    def head(self) -> bytes:
        return _event("messageStart", {"role": "assistant"})

    def body(self) -> list[bytes]:
        return self.events

    def finish(self) -> bytes:
        return _event("messageStop", {"stopReason": stop_reason(self.c)})

    def usage(self) -> bytes | None:
        if self.c.usage is None and self.c.raw_usage is None:
            return None
        return _event("metadata", {"usage": usage_json(self.c), "metrics": {"latencyMs": 42}})

    def broken(self) -> bytes:
        return event_message(
            {":event-type": "contentBlockDelta", ":content-type": "application/json", ":message-type": "event"},
            b'{"contentBlockIndex":0,"delta":{"text":"x"}}',
            corrupt=True,
        )

    def error(self, stream: Stream) -> bytes:
        err = stream.error or {}
        return _exception(
            str(err.get("type") or "modelStreamErrorException"),
            str(err.get("message") or "The model encountered an error processing the stream."),
        )


# -- requests ----------------------------------------------------------------------------------------------


def _refuse(message: str) -> WireError:
    return WireError(400, message, "ValidationException")


def _check_bytes(value: Any, where: str) -> None:
    try:
        base64.b64decode(value if isinstance(value, str) else "", validate=True)
    except (binascii.Error, ValueError):
        raise _refuse(f"{where}.source.bytes: not valid base64") from None
    if not value:
        raise _refuse(f"{where}.source.bytes: must not be empty")


def _check_output_config(config: Any) -> None:
    if config is None:
        return
    text_format = config.get("textFormat") if isinstance(config, dict) else None
    definition = (
        ((text_format or {}).get("structure") or {}).get("jsonSchema") if isinstance(text_format, dict) else None
    )
    if (
        not isinstance(text_format, dict)
        or text_format.get("type") != "json_schema"
        or not isinstance(definition, dict)
    ):
        raise _refuse("outputConfig.textFormat: needs type json_schema and structure.jsonSchema")
    try:
        schema = msgspec.json.decode(definition.get("schema") or "")
    except (msgspec.DecodeError, TypeError):
        schema = None
    if not isinstance(schema, dict):
        raise _refuse("outputConfig.textFormat.structure.jsonSchema.schema: must be a JSON schema, as a string")


class BedrockWire(Wire):
    """Converse and ConverseStream; SigV4 or Bedrock API key auth."""

    name: ClassVar[str] = "FakeBedrock"
    base_path: ClassVar[str] = ""
    default_models: ClassVar[tuple[str, ...]] = _DEFAULT_MODELS
    tool_call_prefix: ClassVar[str] = "tooluse_"
    reasoning_by_default: ClassVar[bool] = True  # thinking enabled: Claude shows its thinking
    stream_content_type: ClassVar[str] = "application/vnd.amazon.eventstream"

    def __init__(self) -> None:
        self.issued: set[str] = set()  # signatures of the reasoning blocks the fake sent

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/model/{modelId}/converse", stream=False),
            Route("POST", "/model/{modelId}/converse-stream", stream=True),
        ]

    def parse(self, body: Any, request: web.Request) -> NormalRequest:
        if not isinstance(body, dict):
            raise _refuse("The request body is not valid JSON.")
        unknown = sorted(set(body) - _TOP_LEVEL)
        if unknown:
            raise _refuse(f"Unknown field(s) in the request: {', '.join(unknown)}")
        system = self._system(body.get("system"))
        tool_config = body.get("toolConfig")
        tools = self._tools(tool_config)
        messages, chars = self._messages(body.get("messages"), has_tools=tool_config is not None)
        inference = body.get("inferenceConfig") or {}
        if not isinstance(inference, dict) or set(inference) - _INFERENCE:
            raise _refuse(f"inferenceConfig: unknown field(s) {sorted(set(inference) - _INFERENCE)}")
        max_tokens = inference.get("maxTokens")
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            raise _refuse("inferenceConfig.maxTokens: must be a positive integer")
        _check_output_config(body.get("outputConfig"))
        extra = body.get("additionalModelRequestFields") or {}
        thinking = extra.get("thinking") if isinstance(extra, dict) else None
        reasoning = isinstance(thinking, dict) and thinking.get("type") == "enabled"
        if reasoning:
            assert isinstance(thinking, dict)
            budget = thinking.get("budget_tokens")
            if not isinstance(budget, int) or budget < 1024:
                raise _refuse("thinking.budget_tokens: Input should be greater than or equal to 1024")
            if not isinstance(max_tokens, int) or budget >= max_tokens:
                raise _refuse("`max_tokens` must be greater than `thinking.budget_tokens`.")
        return NormalRequest(
            model=request.match_info.get("modelId", ""),
            stream=False,  # the route decides
            messages=messages,
            system=system,
            tools=tools,
            max_tokens=max_tokens,
            reasoning=reasoning,
            prompt_chars=chars + len(system or ""),
        )

    @staticmethod
    def _system(system: Any) -> str | None:
        if system is None:
            return None
        if not isinstance(system, list):
            raise _refuse("system: must be a list of SystemContentBlock")
        for i, block in enumerate(system):
            if (
                not isinstance(block, dict)
                or len(block) != 1
                or not ({"text", "cachePoint", "guardContent"} & set(block))
            ):
                raise _refuse(f"system.{i}: a SystemContentBlock holds one of text, cachePoint, guardContent")
            if "text" in block and not str(block["text"]).strip():
                raise _refuse(f"The text field in the SystemContentBlock object at system.{i} is blank.")
        return text_of(system)

    @staticmethod
    def _tools(config: Any) -> list[Tool]:
        if config is None:
            return []
        if not isinstance(config, dict) or not isinstance(config.get("tools"), list) or not config["tools"]:
            raise _refuse("toolConfig.tools: at least one tool is required")
        out = []
        for i, tool in enumerate(config["tools"]):
            if isinstance(tool, dict) and "cachePoint" in tool:
                continue
            spec = tool.get("toolSpec") if isinstance(tool, dict) else None
            schema = ((spec or {}).get("inputSchema") or {}).get("json") if isinstance(spec, dict) else None
            if not isinstance(spec, dict) or not spec.get("name") or not isinstance(schema, dict):
                raise _refuse(f"toolConfig.tools.{i}: a toolSpec needs a name and inputSchema.json")
            if "description" in spec and not spec["description"]:
                raise _refuse(f"toolConfig.tools.{i}.toolSpec.description: must not be empty")
            out.append(Tool(spec["name"], spec.get("description"), schema))
        choice = config.get("toolChoice")
        if choice is not None and (not isinstance(choice, dict) or len(choice) != 1 or
                                   not ({"auto", "any", "tool"} & set(choice))):  # fmt: skip
            raise _refuse("toolConfig.toolChoice: one of auto, any, tool")
        return out

    def _messages(self, raw: Any, *, has_tools: bool) -> tuple[list[Message], int]:
        if not isinstance(raw, list) or not raw:
            raise _refuse("messages: at least one message is required")
        out: list[Message] = []
        chars = 0
        calls: set[str] = set()  # toolUse ids of the last assistant turn
        for i, m in enumerate(raw):
            role = m.get("role") if isinstance(m, dict) else None
            if role not in ("user", "assistant"):
                raise _refuse(f"messages.{i}.role: must be user or assistant, got {role!r}")
            if role != ("assistant" if i % 2 else "user"):
                raise _refuse("A conversation must start with a user message and alternate user and assistant turns.")
            blocks = m.get("content")
            if not isinstance(blocks, list) or not blocks:
                raise _refuse(f"messages.{i}.content: at least one content block is required")
            texts, results = [], 0
            answered: set[str] = set()
            for j, block in enumerate(blocks):
                where = f"messages.{i}.content.{j}"
                if not isinstance(block, dict) or len(block) != 1 or next(iter(block)) not in _BLOCKS:
                    raise _refuse(f"{where}: a ContentBlock holds exactly one known member")
                kind, value = next(iter(block.items()))
                if kind == "text":
                    if not isinstance(value, str) or not value.strip():
                        raise _refuse(f"The text field in the ContentBlock object at {where} is blank.")
                    texts.append(value)
                elif kind == "image":
                    if not isinstance(value, dict) or value.get("format") not in _IMAGE_FORMATS:
                        raise _refuse(f"{where}.image.format: one of {sorted(_IMAGE_FORMATS)}")
                    if "bytes" in (value.get("source") or {}):
                        _check_bytes(value["source"]["bytes"], f"{where}.image")
                elif kind == "document":
                    if not isinstance(value, dict) or value.get("format") not in _DOCUMENT_FORMATS:
                        raise _refuse(f"{where}.document.format: one of {sorted(_DOCUMENT_FORMATS)}")
                    if not _DOCUMENT_NAME.match(str(value.get("name") or "")):
                        raise _refuse(f"{where}.document.name: letters, digits, single spaces, -()[] only")
                    if "bytes" in (value.get("source") or {}):
                        _check_bytes(value["source"]["bytes"], f"{where}.document")
                elif kind == "reasoningContent":
                    if role != "assistant":
                        raise _refuse(f"{where}: reasoning content belongs to assistant turns")
                    self._check_reasoning(value, where)
                elif kind == "toolUse":
                    if not has_tools:
                        raise _refuse(
                            "The toolConfig field must be defined when using toolUse and toolResult content blocks."
                        )
                    if role != "assistant" or not value.get("toolUseId") or not isinstance(value.get("input"), dict):
                        raise _refuse(f"{where}.toolUse: needs a toolUseId and an input object, in an assistant turn")
                    answered.add(value["toolUseId"])
                    chars += len(encode_json(value["input"]))
                elif kind == "toolResult":
                    if not has_tools:
                        raise _refuse(
                            "The toolConfig field must be defined when using toolUse and toolResult content blocks."
                        )
                    if value.get("toolUseId") not in calls:
                        raise _refuse(
                            f"{where}: the toolResult blocks at this turn exceed or do not match the toolUse "
                            f"blocks of the previous turn ({value.get('toolUseId')})."
                        )
                    results += 1
                    texts.append(text_of(value.get("content")))
            if role == "user" and calls and results < len(calls):
                raise _refuse(
                    f"messages.{i}: Expected toolResult blocks for the toolUse ids {', '.join(sorted(calls))}."
                )
            calls = answered if role == "assistant" else set()
            text = " ".join(texts)
            chars += len(text)
            out.append(Message("tool" if results and results == len(blocks) else role, text))
        return out, chars

    def _check_reasoning(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise _refuse(f"{where}.reasoningContent: must be an object")
        if "redactedContent" in value:
            return
        text = value.get("reasoningText")
        if not isinstance(text, dict):
            raise _refuse(f"{where}.reasoningContent: needs reasoningText or redactedContent")
        signature = text.get("signature")
        if not signature or (signature not in self.issued and signature != signature_of(text.get("text") or "")):
            raise _refuse(f"{where}: Invalid `signature` in `thinking` block")

    def completion_id(self) -> str:
        return str(uuid.uuid4())

    def _issue(self, c: Completion) -> None:
        if c.reasoning_signature:
            self.issued.add(c.reasoning_signature)

    def completion_json(self, c: Completion) -> dict[str, Any]:
        self._issue(c)
        return {
            "output": {"message": {"role": "assistant", "content": _content(c)}},
            "stopReason": stop_reason(c),
            "usage": usage_json(c),
            "metrics": {"latencyMs": 42},
        }

    def frames(self, c: Completion) -> Frames:
        self._issue(c)
        return _Events(c)

    def error_body(self, status: int, message: str | None = None, param: str | None = None) -> Any:
        return {"message": message or _EXCEPTIONS.get(status, ("", "Request failed."))[1]}

    def error_headers(self, status: int) -> dict[str, str]:
        name = _EXCEPTIONS.get(status, ("InternalServerException", ""))[0]
        return {"x-amzn-ErrorType": f"{name}:http://internal.amazon.com/coral/com.amazon.bedrock/",
                "x-amzn-RequestId": str(uuid.uuid4())}  # fmt: skip

    def check_auth(self, request: web.Request, api_key: str) -> WireError | None:
        header = request.headers.get("Authorization", "")
        if not header:
            return WireError(403, "Missing Authentication Token", "MissingAuthenticationTokenException")
        scheme, _, token = header.partition(" ")
        if scheme == "Bearer":
            if not hmac.compare_digest(token.strip().encode(), api_key.encode()):
                return WireError(
                    403, "Invalid API Key format: Must start with pre-defined prefix", "AccessDeniedException"
                )
            return None
        access_key, _, secret = api_key.partition(":")
        return _check_sigv4(request, _raw_body(request), access_key, secret)

    def response_headers(self, c: Completion) -> dict[str, str]:
        return {"x-amzn-RequestId": c.id}


class FakeBedrock(FakeServer):
    """A fake Bedrock runtime over real HTTP on loopback; its base_url is a provider's `base_url`
    for `api: bedrock` (the region's endpoint stands in its place)."""

    wire: ClassVar[Wire] = BedrockWire()

    def _error(self, err: WireError) -> web.Response:
        # `param` carries the exception's name when it is not the status's usual one.
        response = super()._error(err)
        if err.param:
            response.headers["x-amzn-ErrorType"] = f"{err.param}:http://internal.amazon.com/coral/com.amazon.coral/"
        return response

    @classmethod
    def run_in_thread(cls, **kwargs: Any) -> FakeBedrockThread:
        """Start a fake on its own event loop in a daemon thread (for synchronous clients)."""
        return FakeBedrockThread(cls(**kwargs))


class FakeBedrockThread(FakeThread[FakeBedrock]):
    """A FakeBedrock served from a daemon thread with its own event loop."""


if __name__ == "__main__":
    from omnirouter.testing.fakes.core import main

    main(FakeBedrock, "python -m omnirouter.testing.fakes.bedrock")
