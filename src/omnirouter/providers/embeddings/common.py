"""What every embeddings upstream handler shares: the answer, the request's normalised inputs, batching
to a provider's limit (batches sent concurrently, joined in input order) and small wire helpers.

The request a handler receives is the dict request.parse made: `items(request)` are its inputs, all
of one kind (`kind`): "text" (strings), "tokens" (lists of token ids) or "multimodal" (lists of content
parts, as the OpenRouter schema writes them); `dimensions`, `input_type` and `user` as sent.
"""

from __future__ import annotations

import array
import asyncio
import base64
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from omnirouter.accounting.units import Units
from omnirouter.providers.answers import ErrorOf, body_of, error_from_body
from omnirouter.providers.base import UpstreamError
from omnirouter.providers.embeddings.request import items

# Batches of one request in flight at once: enough to hide an upstream's latency, few enough not to
# trip its rate limit with one client request (Titan takes one input per call: 2048 inputs, 2048 calls).
CONCURRENT_BATCHES = 8

T = TypeVar("T")
S = TypeVar("S")


# A vector as a list of floats, or as the JSON array the upstream sent (msgspec.Raw), passed through to
# the client unparsed: decoding and re-encoding 1536 floats per input was most of a request's cost.
Vector = list[float] | msgspec.Raw


@dataclass(slots=True)
class Embeddings:
    """One request's vectors, in input order, and the input tokens the upstream billed."""

    vectors: list[Vector]
    prompt_tokens: int

    @property
    def units(self) -> Units:
        return Units(input_tokens=self.prompt_tokens)


def batch_size(upstream: Any, default: int) -> int:
    """Inputs per upstream call: the endpoint's `embedding_batch_size`, else its provider's, else the
    API's documented limit."""
    return upstream.endpoint.embedding_batch_size or upstream.provider.embedding_batch_size or default


def cut(items: Sequence[T], size: int, budget: int | None = None) -> list[list[T]]:
    """`items` in order, in batches of at most `size` and, with a `budget`, of at most that many
    estimated tokens (an input alone over it still goes, alone: the upstream says what it thinks)."""
    if budget is None:
        return [list(items[i : i + size]) for i in range(0, len(items), size)]
    batches: list[list[T]] = []
    batch: list[T] = []
    spent = 0
    for item in items:
        cost = rough_tokens(item)
        if batch and (len(batch) == size or spent + cost > budget):
            batches.append(batch)
            batch, spent = [], 0
        batch.append(item)
        spent += cost
    if batch:
        batches.append(batch)
    return batches


def rough_tokens(item: Any) -> int:
    """An input's tokens, roughly, for cutting batches: a token id each, four characters a token."""
    if isinstance(item, str):
        return len(item) // 4 + 1
    return sum(1 if isinstance(x, int) else len(x.get("text", "")) // 4 + 1 for x in item)


async def in_batches(
    items: Sequence[T],
    size: int,
    embed: Callable[[list[T]], Awaitable[Embeddings]],
    concurrency: int = CONCURRENT_BATCHES,
    budget: int | None = None,
) -> Embeddings:
    """`embed` over `items` cut into batches (`cut`), at most `concurrency` at a time; the vectors
    joined in order, the tokens summed. The first failure cancels the other batches."""
    batches = cut(items, size, budget)
    if len(batches) == 1:
        return await embed(batches[0])
    gate = asyncio.Semaphore(concurrency)

    async def one(batch: list[T]) -> Embeddings:
        async with gate:
            return await embed(batch)

    tasks = [asyncio.ensure_future(one(batch)) for batch in batches]
    try:
        parts = await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    vectors: list[list[float]] = []
    for part in parts:
        vectors += part.vectors
    return Embeddings(vectors, sum(p.prompt_tokens for p in parts))


def estimated_tokens(texts: Sequence[str]) -> int:
    """Tokens of texts whose upstream reports none (Gemini's batchEmbedContents): four characters a token."""
    return sum(max(1, (len(t) + 3) // 4) for t in texts)


def bearer(api_key: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def refused(message: str) -> UpstreamError:
    """An input this upstream API cannot take (tokens to Cohere, images to Titan text): a 400 the client
    sees at once, as the upstream itself would answer."""
    return UpstreamError(message, status=400, kind="http")


def texts_of(request: dict[str, Any], api: str) -> list[str]:
    """The request's inputs as strings, for APIs that take text only."""
    kind = request["kind"]
    if kind == "text":
        return items(request)
    what = "token arrays" if kind == "tokens" else "multimodal content"
    raise refused(f"{api} takes text input only, not {what}")


def count_or_estimate(count: Any, texts: Sequence[str]) -> int:
    return count if isinstance(count, int) and count >= 0 else estimated_tokens(texts)


def floats(vector: Vector) -> list[float]:
    """A vector's floats, whichever form it came in."""
    if isinstance(vector, msgspec.Raw):
        return msgspec.json.decode(vector, type=list[float])
    return vector


def raw_vector(raw: msgspec.Raw) -> Vector:
    """An upstream's embedding kept as sent when it is a JSON array; a base64 string (a server that
    answers base64 whatever it is asked) decoded to floats."""
    if memoryview(raw)[:1] == b"[":
        return raw
    try:
        text = msgspec.json.decode(raw, type=str)
        return decode_base64_floats(text)
    except (msgspec.DecodeError, ValueError):
        raise UpstreamError(
            "The provider sent an embedding that is neither an array nor base64", status=502, kind="protocol"
        ) from None


def checked(vectors: list[Vector], expected: int, api: str) -> list[Vector]:
    if len(vectors) != expected:
        raise UpstreamError(
            f"{api} answered {len(vectors)} embeddings for {expected} inputs", status=502, kind="protocol"
        )
    return vectors


_DATA_URL = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)(?:;[^,]*)?;base64,(?P<data>.*)$", re.DOTALL)


def data_url(url: str) -> tuple[str, str] | None:
    """(mime type, base64 data) of a `data:...;base64,` URL; None for any other URL."""
    match = _DATA_URL.match(url)
    return (match["mime"], match["data"]) if match else None


def decode_base64_floats(text: str) -> list[float]:
    """An embedding sent as base64 little-endian float32s (OpenAI's `encoding_format: base64`)."""
    values = array.array("f")
    values.frombytes(base64.b64decode(text))
    if sys.byteorder == "big":
        values.byteswap()
    return values.tolist()


def encode_base64_floats(vector: list[float]) -> str:
    """The inverse: what OpenAI sends for `encoding_format: base64`, and its SDK decodes."""
    values = array.array("f", vector)
    if sys.byteorder == "big":
        values.byteswap()
    return base64.b64encode(values.tobytes()).decode("ascii")


def error_of_answer(status: int, text: str, headers: Any = None) -> UpstreamError:
    """An error answer in OpenAI's and Google's envelope, or Cohere's `{"message"}` and Voyage's and
    Jina's `{"detail"}`: its message kept for the client."""
    err = error_from_body(status, text, headers)
    if err.provider_code is None:
        try:
            body = msgspec.json.decode(text)
        except msgspec.DecodeError:
            return err
        message = body.get("message") or body.get("detail") if isinstance(body, dict) else None
        if isinstance(message, str) and message:
            err.message = message
            err.args = (message,)
    return err


async def post(
    upstream: Any, url: str, payload: Any, headers: dict[str, str], error_of: ErrorOf = error_of_answer
) -> tuple[bytes, dict[str, str]]:
    """POST `payload` as JSON; the 200 answer's body and headers, else the upstream's error."""
    resp = await upstream.send("POST", url, headers=headers, body=msgspec.json.encode(payload))
    return await body_of(resp, error_of), resp.headers


def decoded(raw: bytes, decode: Callable[[bytes], S], api: str) -> S:
    """An answer decoded into its Struct; a 502 naming the API when it does not fit."""
    try:
        return decode(raw)
    except msgspec.DecodeError as exc:
        raise UpstreamError(
            f"{api} sent an embeddings answer that does not parse: {exc}",
            status=502,
            raw=raw[:2000].decode(errors="replace"),
            kind="protocol",
        ) from None
