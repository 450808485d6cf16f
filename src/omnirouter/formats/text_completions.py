"""The legacy text-completions format (`POST /completions`: a `prompt` in, `choices[].text` out),
which OpenRouter still serves for older clients, on the one inference pipeline.

The prompt becomes one user message of the internal chat request; every other field (sampling
parameters, `stop`, `max_tokens`, `n`, `seed`, OpenRouter's `model`/`models`/`provider`/`plugins`
...) means what it means in chat and is forwarded as sent. Decisions where the legacy API asks for
more than a chat upstream can do:

- `prompt` is one string, or an array holding one string. Several prompts in one request (OpenAI's
  batch form) and token-id prompts are refused with 400: each prompt is its own generation here,
  with its own cost and record, and no tokenizer is known for an arbitrary upstream. `messages` is
  not read: the prompt is the whole conversation.
- `suffix` (the text that follows an insertion) is accepted and not sent: chat upstreams cannot insert.
- `echo: true` puts the prompt in front of each choice's text (and in the stream's first event).
- `logprobs: n` asks the upstream for token logprobs with `n` alternatives; the answer's chat
  logprobs are rendered in the legacy shape (`tokens`, `token_logprobs`, `top_logprobs`,
  `text_offset`). No logprobs exist for an echoed prompt.
- `best_of` above 1 is refused: choosing among server-side samples is not something a chat
  upstream offers. `tools` and `tool_choice` are chat features and refused here.
- Reasoning a model returns has no place in a text completion and is left out; it is still billed.

Errors use OpenRouter's envelope, as on chat.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from omnirouter.errors import GatewayError
from omnirouter.formats.openai_chat import ProviderPrefs
from omnirouter.jsonio import encode

# Fields of this format that are not chat fields: read here, never forwarded (`messages` is not read:
# the prompt is the conversation).
OWN_FIELDS = frozenset({"prompt", "suffix", "echo", "logprobs", "best_of", "messages"})
CHAT_ONLY_FIELDS = ("tools", "tool_choice", "functions", "function_call")
MAX_LOGPROBS = 20  # chat's top_logprobs limit


class CompletionsRequest(msgspec.Struct, kw_only=True):
    """The fields the gateway acts on (the OpenAPI document's request body); any other field is
    forwarded as chat would forward it."""

    prompt: str | Annotated[list[str], Meta(min_length=1, max_length=1)]
    model: str | None = None
    models: list[str] | None = None
    suffix: str | None = None
    echo: bool | None = None
    logprobs: Annotated[int, Meta(ge=0, le=MAX_LOGPROBS)] | None = None
    best_of: Annotated[int, Meta(ge=1, le=1)] | None = None
    stream: bool | None = False
    max_tokens: Annotated[int, Meta(ge=1)] | None = None
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    top_k: Annotated[int, Meta(ge=0)] | None = None
    frequency_penalty: Annotated[float, Meta(ge=-2, le=2)] | None = None
    presence_penalty: Annotated[float, Meta(ge=-2, le=2)] | None = None
    repetition_penalty: Annotated[float, Meta(ge=0, le=2)] | None = None
    provider: ProviderPrefs | None = None
    route: Literal["fallback", "sort"] | None = None
    user: str | None = None
    session_id: Annotated[str, Meta(max_length=256)] | None = None


INTEGER_FIELDS = ("logprobs", "best_of", "max_tokens", "top_k")


class CompletionsBody(dict[str, Any]):
    """The internal request, plus what the answer needs that the chat form cannot hold."""

    echo: str | None  # the prompt, when the answer starts with it
    logprobs: bool


def _prompt(body: dict[str, Any]) -> str | None:
    prompt = body.get("prompt")
    if prompt is None:
        return None
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        if not prompt:
            raise GatewayError(400, "Invalid request: prompt is an empty array")
        if all(isinstance(p, str) for p in prompt):
            if len(prompt) > 1:
                raise GatewayError(
                    400, f"Invalid request: prompt holds {len(prompt)} prompts; send one prompt per request"
                )
            return prompt[0]
        if all(isinstance(p, int) or (isinstance(p, list) and all(isinstance(t, int) for t in p)) for p in prompt):
            raise GatewayError(400, "Invalid request: token-id prompts are not supported; send the prompt as text")
    raise GatewayError(400, "Invalid request: prompt must be a string or an array of one string")


def parse_request(body: Any) -> CompletionsBody:
    if not isinstance(body, dict):
        raise GatewayError(400, "Request body must be a JSON object")
    prompt = _prompt(body)
    if prompt is None:
        raise GatewayError(400, 'Input required: specify "prompt"')
    for name in CHAT_ONLY_FIELDS:
        if body.get(name) is not None:
            raise GatewayError(400, f"Invalid request: {name} is a Chat Completions field; use /chat/completions")
    for name in INTEGER_FIELDS:  # JSON has one number type: 16.0 is the integer 16
        if isinstance(value := body.get(name), float) and value.is_integer():
            body[name] = int(value)
    if isinstance(best_of := body.get("best_of"), int) and not isinstance(best_of, bool) and best_of > 1:
        raise GatewayError(400, "Invalid request: best_of above 1 is not supported; use n for several completions")
    try:
        req = msgspec.convert(body, CompletionsRequest)
    except msgspec.ValidationError as exc:
        raise GatewayError(400, f"Invalid request: {exc}") from None
    out = CompletionsBody((k, v) for k, v in body.items() if k not in OWN_FIELDS)
    out["messages"] = [{"role": "user", "content": prompt}]
    if req.logprobs is not None:
        out["logprobs"] = True
        out["top_logprobs"] = req.logprobs
    out.echo = prompt if req.echo else None
    out.logprobs = req.logprobs is not None
    return out


def _text(message: Mapping[str, Any] | None) -> str:
    content = (message or {}).get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def legacy_logprobs(chat: Any, offset: int) -> tuple[dict[str, Any] | None, int]:
    """Chat logprobs (`content` token entries) in the legacy shape, the first token at text
    `offset`; and the offset after the last token."""
    entries = chat.get("content") if isinstance(chat, dict) else None
    if not isinstance(entries, list):
        return None, offset
    out: dict[str, Any] = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        token = str(entry.get("token") or "")
        out["tokens"].append(token)
        out["token_logprobs"].append(entry.get("logprob"))
        out["top_logprobs"].append(
            {str(t.get("token")): t.get("logprob") for t in entry.get("top_logprobs") or () if isinstance(t, dict)}
        )
        out["text_offset"].append(offset)
        offset += len(token)
    return out, offset


def _finish(choice: Mapping[str, Any], out: dict[str, Any]) -> None:
    out["finish_reason"] = choice.get("finish_reason")
    if "native_finish_reason" in choice:
        out["native_finish_reason"] = choice["native_finish_reason"]
    if "error" in choice:
        out["error"] = choice["error"]


# Top-level fields of the chat answer kept as they are (`id` is the generation id).
KEPT = ("id", "created", "model", "provider", "system_fingerprint", "usage", "openrouter_metadata", "error", "debug")


class CompletionsEncoder:
    """Chat chunks as `text_completion` events; the echoed prompt goes out with the first one."""

    def __init__(self, echo: str | None, logprobs: bool) -> None:
        self.echo = echo
        self.logprobs = logprobs
        self.offsets: dict[int, int] = {}  # per choice: where its next token starts in the text

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        out: dict[str, Any] = {"object": "text_completion", **{k: chunk[k] for k in KEPT if k in chunk}}
        choices = []
        for choice in chunk.get("choices") or ():
            index = int(choice.get("index") or 0)
            first = index not in self.offsets
            echoed = self.echo if first and self.echo else ""
            piece = echoed + _text(choice.get("delta"))
            start = self.offsets.get(index, 0) + len(echoed)  # where this chunk's generated text begins
            self.offsets[index] = start + len(piece) - len(echoed)
            if not piece and choice.get("finish_reason") is None and "error" not in choice:
                continue  # a role, reasoning or tool delta: nothing a text client reads
            logprobs = None
            if self.logprobs and choice.get("logprobs") is not None:
                logprobs, _ = legacy_logprobs(choice["logprobs"], start)
            item = {"text": piece, "index": index, "logprobs": logprobs, "finish_reason": None}
            _finish(choice, item)
            choices.append(item)
        if not choices and chunk.get("choices") and not any(k in chunk for k in ("usage", "error", "debug")):
            return b""
        out["choices"] = choices
        return b"data: " + encode(out) + b"\n\n"

    @staticmethod
    def done() -> bytes:
        return b"data: [DONE]\n\n"


class CompletionsFormat:
    name = "completions"
    native_api = None  # no upstream speaks it: every request is translated

    def parse(self, body: Any, headers: Mapping[str, str]) -> dict[str, Any]:
        return parse_request(body)

    def render(self, completion: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
        echo = (request.echo if isinstance(request, CompletionsBody) else None) or ""
        out: dict[str, Any] = {"object": "text_completion", **{k: completion[k] for k in KEPT if k in completion}}
        out.setdefault("system_fingerprint", None)
        choices = []
        for choice in completion.get("choices") or ():
            logprobs, _ = legacy_logprobs(choice.get("logprobs"), len(echo))
            item = {
                "text": echo + _text(choice.get("message")),
                "index": choice.get("index") or 0,
                "logprobs": logprobs,
            }
            _finish(choice, item)
            choices.append(item)
        out["choices"] = choices
        return out

    def encoder(self, request: dict[str, Any]) -> CompletionsEncoder:
        if isinstance(request, CompletionsBody):
            return CompletionsEncoder(request.echo, request.logprobs)
        return CompletionsEncoder(None, bool(request.get("logprobs")))

    def error(self, err: GatewayError) -> tuple[int, dict[str, Any]]:
        return err.status, err.body()


COMPLETIONS = CompletionsFormat()
