"""The client's `POST /embeddings` body, checked and normalised for the handlers.

`input` may be a string, an array of strings, an array of token ids, an array of token-id arrays, or
an array of `{"content": [parts]}` objects (the spec's multimodal form); one request holds one kind.
It becomes `kind` and the inputs, which `items()` returns (a list of strings, of token-id lists, or of
part lists). Text and content are kept as user messages (`messages`), where the guardrails' content
filters look: a filter blocks an input or redacts it in place before any provider sees it. Everything
a client may get wrong is a 400 naming the field, before anything is planned, reserved or recorded.
"""

from __future__ import annotations

from typing import Any

import msgspec

from omnirouter.errors import GatewayError

MAX_INPUTS = 2048  # inputs per request, as OpenAI allows; batches to each provider are cut smaller
MAX_DIMENSIONS = 8192  # no embeddings model makes more (OpenAI, Gemini: 3072); the sandbox makes what is asked
ENCODING_FORMATS = ("float", "base64")
PART_TYPES = ("text", "image_url", "input_audio", "input_video", "file")
# Above any tokenizer's vocabulary (the largest are ~10^6), and what the served schema bounds ids by.
MAX_TOKEN_ID = 2**31 - 1

_decode = msgspec.json.Decoder().decode


def _bad(message: str) -> GatewayError:
    return GatewayError(400, message)


def _token_ids(values: list[Any], where: str) -> list[int]:
    if not values:
        raise _bad(f"`{where}` is an empty token array")
    for i, v in enumerate(values):
        if type(v) is float and v.is_integer():  # JSON has one number type: 42.0 is the token 42
            v = values[i] = int(v)
        if type(v) is not int or not 0 <= v <= MAX_TOKEN_ID:
            raise _bad(f"`{where}` must hold token ids (integers from 0 to {MAX_TOKEN_ID}), found {v!r}")
    return values


def _part(part: Any, where: str) -> dict[str, Any]:
    if not isinstance(part, dict) or part.get("type") not in PART_TYPES:
        raise _bad(f"`{where}` must be a content part with `type` one of {', '.join(PART_TYPES)}")
    kind = part["type"]
    if kind == "text":
        if not isinstance(part.get("text"), str) or not part["text"]:
            raise _bad(f"`{where}.text` must be a non-empty string")
    elif kind == "image_url":
        image = part.get("image_url")
        if not isinstance(image, dict) or not isinstance(image.get("url"), str) or not image["url"]:
            raise _bad(f"`{where}.image_url.url` must be a non-empty string")
    elif not isinstance(part.get(kind), dict):
        raise _bad(f"`{where}.{kind}` must be an object")
    return part


def _multimodal(item: Any, where: str) -> list[dict[str, Any]]:
    content = item.get("content") if isinstance(item, dict) else None
    if not isinstance(content, list) or not content:
        raise _bad(f"`{where}.content` must be a non-empty array of content parts")
    return [_part(p, f"{where}.content[{i}]") for i, p in enumerate(content)]


def inputs_of(value: Any) -> tuple[str, list[Any]]:
    """(kind, inputs) of the `input` field."""
    if isinstance(value, str):
        if not value:
            raise _bad("`input` must not be empty")
        return "text", [value]
    if not isinstance(value, list):
        raise _bad("`input` must be a string, an array of strings, token ids or token arrays, or content objects")
    if not value:
        raise _bad("`input` must not be empty")
    first = value[0]
    if type(first) is int or (type(first) is float and first.is_integer()):  # one token array
        return "tokens", [_token_ids(value, "input")]
    if len(value) > MAX_INPUTS:
        raise _bad(f"`input` holds {len(value)} inputs; at most {MAX_INPUTS} are accepted in one request")
    if isinstance(first, str):
        for i, text in enumerate(value):
            if not isinstance(text, str):
                raise _bad(f"`input[{i}]` must be a string like the other inputs")
            if not text:
                raise _bad(f"`input[{i}]` must not be empty")
        return "text", value
    if isinstance(first, list):
        for i, ids in enumerate(value):
            if not isinstance(ids, list):
                raise _bad(f"`input[{i}]` must be a token array like the other inputs")
            _token_ids(ids, f"input[{i}]")
        return "tokens", value
    if isinstance(first, dict):
        return "multimodal", [_multimodal(item, f"input[{i}]") for i, item in enumerate(value)]
    raise _bad("`input` must be a string, an array of strings, token ids or token arrays, or content objects")


def parse(raw: bytes) -> dict[str, Any]:
    """The request as the handlers read it (see the module docstring); routing fields kept as sent."""
    try:
        body = _decode(raw)
    except msgspec.DecodeError:
        raise _bad("The request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object")
    model, models = body.get("model"), body.get("models")
    if not (isinstance(model, str) and model) and not (isinstance(models, list) and models):
        raise _bad("`model` is required: the embeddings model to use")
    if "input" not in body or body["input"] is None:
        raise _bad("`input` is required: the text, tokens or content to embed")
    kind, inputs = inputs_of(body.pop("input"))
    fmt = body.get("encoding_format")
    if fmt is None:
        body["encoding_format"] = "float"
    elif fmt not in ENCODING_FORMATS:
        raise _bad(f"`encoding_format` must be one of {', '.join(ENCODING_FORMATS)}, got {fmt!r}")
    dims = body.get("dimensions")
    if type(dims) is float and dims.is_integer():  # JSON has one number type: 1536.0 is the integer 1536
        dims = body["dimensions"] = int(dims)
    if dims is not None and (type(dims) is not int or not 1 <= dims <= MAX_DIMENSIONS):
        raise _bad(f"`dimensions` must be an integer from 1 to {MAX_DIMENSIONS}, got {dims!r}")
    for name in ("input_type", "user"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise _bad(f"`{name}` must be a string")
    body["kind"] = kind
    if kind == "tokens":
        body["inputs"] = inputs
    else:
        body["messages"] = [{"role": "user", "content": item} for item in inputs]
    return body


def items(request: dict[str, Any]) -> list[Any]:
    """The inputs to embed, in order: strings, token-id lists, or content-part lists (by `kind`)."""
    if request["kind"] == "tokens":
        return request["inputs"]
    return [m["content"] for m in request["messages"]]


def token_bound(request: dict[str, Any], context_length: int | None) -> int:
    """The most input tokens the request can be billed for: a byte-level tokenizer makes at most one
    token per UTF-8 byte (two more for its special tokens); a non-text part at most a context's worth."""
    kind, cap, inputs = request["kind"], context_length or 0, items(request)

    def capped(n: int) -> int:
        return min(n, cap) if cap else n

    if kind == "tokens":
        return sum(len(ids) for ids in inputs)
    if kind == "text":
        return sum(capped(len(t.encode()) + 2) for t in inputs)
    total = 0
    for parts in inputs:
        n = 2
        for p in parts:
            n += len(p["text"].encode()) if p["type"] == "text" else (cap or 8192)
        total += capped(n)
    return total
